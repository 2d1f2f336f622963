// How the CLI and `qun chat` turn what the node says into text for people: one set of words for
// every history entry ("alice removed bob", "carol cleared the topic"), which entries are
// bookkeeping, and how text from other people is made safe to print on a terminal.
//
// Everything here is peer input on its way out: nicks, group names, topics and posts may hold
// any bytes another implementation sent. No function here throws on such text or passes a
// control character through to a terminal: invalid UTF-8 shows as U+FFFD, ESC as U+241B (␛),
// other C0 controls as their Control Pictures (U+2400-U+241F), DEL as U+2421 (␡) and C1 controls
// as U+FFFD. The chat draws with its own sanitizer (cli/chat_model.h, which also measures
// widths); both use the words here.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "net/control.h"

namespace qun::render {

using Json = control::Json;

// One history entry as the node's `log` answer and `message` stream give it (docs/cli.md).
struct Entry {
  std::string id;      // event id (hex)
  std::string author;  // hex
  std::optional<std::string> nick;
  std::int64_t time_ms = 0;  // the author's clock, Unix ms
  std::string kind;          // "post", "join", ...
  std::optional<std::string> text;  // null when this node cannot read it
  bool stored = true;  // post: false when only its stub reached this node (text is null)
  std::optional<std::string> target;
  std::optional<std::string> target_nick;
  std::optional<std::string> role;
  // A healing rekey: who authored the bad key event it replaces (docs/protocol.md, "Bad rekeys").
  std::optional<std::string> replaces_author;
  std::optional<std::string> replaces_nick;
  // The conversation kinds (issue 12): a post as it stands now, and what an act says.
  bool edited = false;
  bool deleted = false;
  std::map<std::string, std::size_t> reactions;  // emoji -> how many reacted
  bool undo = false;                 // react, mute, ban: taken back
  std::optional<std::string> op;     // channel: create, rename, archive
  std::uint64_t duration_ms = 0;     // mute: for how long, 0 until unmuted
  // A file post (issue 15): the file it shares ("file" in the JSON); the text is its caption.
  struct File {
    std::string name;
    std::uint64_t size = 0;
    std::string media_type;
  };
  std::optional<File> file;
};

// Reads one entry. Errc::malformed when id, author or kind is missing or not a string; other
// fields of the wrong type are treated as absent. Never throws.
[[nodiscard]] Result<Entry> parse_entry(const Json& value);

// What an unreadable post says in place of its text.
inline constexpr const char* unreadable_text = "[unreadable: no key for this message]";
// What a post whose text was dropped (only its stub reached this node) says in its place.
inline constexpr const char* not_stored_text = "(no longer stored by any peer you reached)";

// Events that are bookkeeping rather than conversation (an invite is shown when someone joins
// with it; a rekey follows a removal or leave, which is shown; nodes close used-up and expired
// invites on their own). The chat hides them; `qun log`
// hides them unless --all.
bool bookkeeping(std::string_view kind);

// The name shown for someone, unsanitized: the nick, else the first 8 hex digits of the id.
std::string name(const std::optional<std::string>& nick, std::string_view id);

// The words of a history entry other than a post's text: "alice removed bob", "alice set the
// topic: ...", "alice cleared the topic". actor and target are names as the caller shows them
// (already made safe); text and role come from the entry. For a post: "actor: text". The result
// is not sanitized: the caller makes it safe for where it goes.
std::string event_words(std::string_view kind, std::string_view actor, std::string_view target,
                        const std::optional<std::string>& text,
                        const std::optional<std::string>& role);

// A size for people: "512 B", "12 KiB", "2.3 MiB" (binary units, one decimal under 10).
std::string size_words(std::uint64_t bytes);
// A shared file as one line, unsanitized: "📎 name · 2.3 MiB".
std::string file_words(const Entry::File& file);

// Text made safe for a terminal (see the header comment). With keep_line_breaks, newlines and
// tabs pass through (a post's own lines); otherwise a newline shows as U+21B5 (↵) and a tab as a
// space, so the result is one line.
std::string for_terminal(std::string_view text, bool keep_line_breaks);

// The words of an entry other than a post: event_words, and those of the conversation kinds
// ("alice muted bob for 2h", "alice reacted 👍", "alice created the channel #dev"): the one set
// of words the CLI, `qun modlog` and the chat use. Not sanitized.
std::string entry_words(const Entry& e, std::string_view actor, std::string_view target);

// One entry for `qun log`: "TIME  nick: text" for a post ("(edited)" and reactions after it, a
// deleted one as "(message deleted)"), "TIME  * words" otherwise, safe for a terminal. The continuation lines of a multi-line post are indented under the first line's
// nick, so each entry's lines stand apart from the next entry's time column.
std::string log_entry(const Entry& e, std::string_view time);

// A JSON value as one line that never throws: invalid UTF-8 (which control::decode never
// yields, but a value built elsewhere might hold) is replaced by U+FFFD.
std::string json_line(const Json& value);

// The words for an entry that removed this node (own_id) from its group: "you were removed from
// GROUP by ACTOR"; nullopt for any other entry. group and actor are names as the caller shows
// them. The chat and `log --follow` say it as soon as the removal arrives, with the way back.
std::optional<std::string> removed_you_words(const Entry& e, std::string_view own_id,
                                             std::string_view group, std::string_view actor);

// A member the group's succession rule made admin (docs/protocol.md, "Succession"): "bob is now
// an admin: the last admin left", "you are now an admin: the last admin was removed".
std::string succession_words(std::string_view who, bool you, bool last_admin_removed);

// A duration in its largest whole unit: "45m", "2h", "3d" ("90s" below a minute, at least "1s").
std::string duration_words(std::uint64_t ms);

// "1 member", "2 members".
std::string plural(std::uint64_t n, std::string_view one, std::string_view many);

}  // namespace qun::render
