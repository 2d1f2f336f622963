// An event of a group's history as the control protocol shows it (docs/cli.md, "Messages"):
// the one JSON form of an event, which `log` answers and the `message` stream carries, and which
// `qun log --json`, `--follow`, the chat and the chat's line mode all read back with
// render::parse_entry.
//
// Pure functions over a replica's resolved state; thread-compatible (the replica must not change
// during the call).
#pragma once

#include "net/control.h"
#include "node/replica.h"

namespace qun::render {

// The entry for message m of replica r: id, author, nick, time, kind, text (null when this node
// cannot read it), and per kind target/target_nick, role, replaces/replaces_author/replaces_nick,
// invite, reason.
//
// A post entry also has (issue 12) "channel" (the channel's name), "reply_to" (an id or null),
// "action" (a /me), "edited", "deleted" (text null when deleted or redacted) and "reactions"
// (emoji -> array of member ids), as the post stands in `conv` (Replica::conversation, built
// once per read). Without a conversation (a stream of fresh events), edited and deleted are
// false and reactions empty, as a post is when it is made; a post the conversation refused (a
// muted author's) gets "refused" with the reason.
control::Json message_json(const Replica& r, const Message& m, const Conversation* conv = nullptr);

// One act of the moderation log (`qun modlog`): redactions, mutes, bans, removals, role changes,
// channel changes, settings, name and topic; {"id", "kind", "author", "nick", "time", "target"
// (a member, post or channel id, or null), "target_nick", "undo" (an unmute or unban), "detail"
// (the role, channel name or emoji), "duration_ms"}.
control::Json action_json(const Replica& r, const ConversationAction& a);

}  // namespace qun::render
