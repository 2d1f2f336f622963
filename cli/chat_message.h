// Messages of the control protocol as the chat holds them: parsing a history entry, the names
// and words shown for it, the line mode's renderings, and resolving a group by id, prefix or name.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/render.h"
#include "base/result.h"
#include "net/control.h"
#include "node/limits.h"

namespace qun::chat {

using Json = control::Json;

// Bounds on what one message may carry from the node (peer input, relayed): the node refuses
// more (node/limits.h once the conversation kinds are in: Slack's 50 distinct emoji per message
// rounded up to 64, and 64 bytes for the longest emoji ZWJ sequences of about 35); the chat
// drops the rest, so a broken or hostile node cannot make one message grow without bound.
inline constexpr std::size_t reactions_per_message_max = 64;
inline constexpr std::size_t emoji_bytes_max = 64;
// Every member of a group may react with one emoji once.
inline constexpr std::size_t reactors_per_emoji_max = limits::members_max;

// A string field of an object, or nullopt when it is missing or not a string.
std::optional<std::string> json_string(const Json& v, const char* key);
// A count field: an unsigned number, a non-negative integer, or the size of an array; else 0.
std::size_t json_count(const Json& v, const char* key);


// A history entry (render::Entry, the one parsed form of the node's JSON) and what the chat adds
// for its own lines.
struct Message : render::Entry {
  // kind is also "info" / "pending" for local lines; id is empty for them.
  // The conversation layer (issue 12; docs/cli.md, `log --json`). A post's channel is its name,
  // "general" when the node gives none.
  std::string channel = "general";
  std::optional<std::string> reply_to;  // the id of the post this one answers
  // (edited, deleted, undo, op and duration_ms are render::Entry's: one parse for them.)
  bool action = false;   // a /me action: shown as "* nick text"
  // Emoji to the ids of the members who reacted with it, in the node's order.
  std::map<std::string, std::vector<std::string>> reactions;
  // The node gave the conversation fields (reply_to, edited, deleted, reactions) on this post:
  // it keeps replies, reactions, edits and deletions. A post without them comes from a node
  // that does not (yet), and the chat says so rather than send what it would ignore.
  bool conversation = false;
  std::optional<std::string> emoji;       // react: the emoji (the node's "emoji", else its text)
  std::optional<std::string> redacted_by;  // a deleted post: the moderator who redacted it
  // A post the node's conversation refused (its author was muted, its channel archived): every
  // node leaves it out, and so does the chat. The reason, as the node gives it.
  std::optional<std::string> refused;
  std::uint64_t pending = 0;  // kind "pending": a post of ours in the outbox, by its number
  bool error = false;  // info lines only: shown as an error
  bool bare = false;   // info lines only: an invite code to copy, on rows of its own (Style::code)
};

// Reads one message object of the control protocol with render::parse_entry. Errc::malformed
// when a required field is missing or of the wrong type.
[[nodiscard]] Result<Message> parse_message(const Json& value);
// The name shown for an author: the nick, else the first 8 hex digits of the id.
std::string display_nick(const std::optional<std::string>& nick, const std::string& id);
// The one-line text of a system event ("alice removed bob"), without time. Sanitized.
std::string system_text(const Message& m);

// The clock and day of a timestamp, in the local time zone ("14:03", "Tue 14 May 2024").
struct LocalTime {
  std::string clock;
  std::string day;
};
using TimeFormat = std::function<LocalTime(std::int64_t unix_ms)>;
LocalTime local_time(std::int64_t unix_ms);  // the default, through localtime_r

// Picks a group out of a group.list result the way the node does (app/naming.h): the whole id, a
// unique name, a label, a unique id prefix. Errc::not_found or Errc::invalid_argument (ambiguous)
// otherwise.
[[nodiscard]] Result<std::string> resolve_group(const Json& group_list, std::string_view query);

// The line mode's rendering of a message: "HH:MM nick: text" on one line (newlines as ↵).
std::string message_line(const Message& m, const TimeFormat& format);
// The line mode's JSON line for a message the node delivered: the message, plus "group", plus
// "self" (true when own_id wrote it, so a bot can skip its own posts).
Json message_json_line(const Json& message, const std::string& group, const std::string& own_id);

// A node error rewritten in the chat's words: `qun members GROUP` becomes /members, and so on.
std::string chat_words(std::string error);

}  // namespace qun::chat
