// The conversation layer as the chat holds it (issue 12): applying reactions, edits, deletions and
// redactions that arrive on the stream to the messages they act on, the short references by
// which a person names a message (`/reply 3fa2 ...`), and the quoted start of a reply's parent.
//
// Pure functions over a buffer's messages (oldest first); thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "cli/chat_message.h"

namespace qun::chat {

// A short reference is the start of a message's id (hex), at least this many digits: 4,096
// values, so in a screen of messages two seldom share one, and typing it is quicker than a nick.
inline constexpr std::size_t ref_digits_min = 3;

// Kinds that act on another message and are not shown as lines of their own.
bool acts_on_message(std::string_view kind);

// Applies a react, edit, delete or redact line to the message it targets in messages. False when
// the line is of another kind or its target is not held (then there is nothing to show: the
// node's `log` gives the message as it stands when it is loaded). An edit or reaction on a
// deleted message changes nothing. Reactions stay within reactions_per_message_max and
// reactors_per_emoji_max.
bool apply_to_target(std::vector<Message>& messages, const Message& line);

// The short reference of every message from the node in messages: the shortest start of its id,
// at least ref_digits_min digits, that no other of them shares.
std::map<std::string, std::string> short_refs(const std::vector<Message>& messages);

// The message a reference names: a short reference or any longer start of its id, or the whole
// id. Errc::not_found when none has it, Errc::invalid_argument when several do (one line each).
[[nodiscard]] Result<std::size_t> resolve_ref(const std::vector<Message>& messages,
                                              std::string_view ref);

// A reference can only be hex digits: anything else typed where one may go is text.
bool looks_like_ref(std::string_view word);

// The start of a post's text on one line, at most cols columns, with "…" when cut; what a reply
// quotes of its parent. Deleted and unreadable posts say so.
std::string quote_start(const Message& parent, int cols);

}  // namespace qun::chat
