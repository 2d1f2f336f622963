// Conversation: the messages of one group as they stand now (current text, edited, deleted or
// redacted, reactions, channel, reply), its channels, its mutes and who did what, derived from
// the group's accepted history and the plaintexts this node can open (docs/protocol.md,
// "Conversation").
//
// Group decides from clear fields who may author each kind (a redaction needs a moderator, a
// channel event an admin, revocation wins); the rules that need the encrypted content (editing
// only one's own post, a mute's target and duration, a post's channel) are decided here, by a
// deterministic fold over the accepted history in order: the same events and the same keys give
// the same conversation on every node, whatever order the events arrived in. Nothing here reads
// a clock: a mute's end is compared with the muted author's post's order key (its event time,
// never older than anything its author had seen), and a node compares it with its own clock
// only to show whether someone is muted now.
//
// A node that cannot open an event (history hidden from newcomers, a key it never got) treats it
// as unreadable: it has no effect here. Nodes holding the same keys agree; docs/protocol.md,
// "Known limits", says what a newcomer without old keys may see differently.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "node/group.h"

namespace qun {

struct PostView {
  Hash id;
  PublicKey author;
  std::uint64_t time_ms = 0;
  std::uint64_t order_key = 0;
  bool readable = false;          // this node opened it (else text is none, channel #general)
  Hash channel;                   // the channel's id (the group id for #general)
  std::optional<Hash> reply_to;   // the post it answers
  bool action = false;            // a /me action
  std::optional<std::string> text;  // the newest version; none when deleted or unreadable
  bool edited = false;
  std::vector<Hash> edits;        // accepted edit events, oldest first (every version is kept)
  bool deleted = false;           // deleted by its author, or redacted
  std::optional<PublicKey> redacted_by;  // the moderator, when redacted
  std::optional<Hash> removed_by;        // the delete or redact event
  // Emoji -> who reacted with it (at most reactions_per_post_max emoji).
  std::map<std::string, std::set<PublicKey>> reactions;

  bool operator==(const PostView&) const = default;
};

struct ChannelView {
  Hash id;                          // the channel event that created it; the group id: #general
  std::optional<std::string> name;  // none when this node cannot read its events
  bool archived = false;

  bool operator==(const ChannelView&) const = default;
};

struct MuteView {
  PublicKey member;
  Hash event;                  // the mute
  PublicKey by;
  std::uint64_t from_ms = 0;   // the mute's order key
  std::optional<std::uint64_t> until_ms;  // none: until unmuted

  bool operator==(const MuteView&) const = default;
};

// One accepted act on a post, a member or a channel, for `log --follow` and the moderation log.
struct ConversationAction {
  Hash event;
  EventKind kind = EventKind::react;
  PublicKey author;
  std::uint64_t time_ms = 0;
  std::optional<Hash> target_event;      // react, edit, delete, redact; channel: the channel
  std::optional<PublicKey> target_member;  // mute, ban, set-role, remove
  bool on = true;                        // react/unreact, mute/unmute, ban/unban
  std::string detail;                    // react: the emoji; channel: the name; set-role: role
  std::uint64_t duration_ms = 0;         // mute: 0 until unmuted
  std::optional<ChannelOp> channel_op;   // channel
  // True for the moderation log: redact, mute, ban, remove, set-role, channel, set-settings,
  // set-name and set-topic.
  bool moderation = false;

  bool operator==(const ConversationAction&) const = default;
};

struct Conversation {
  std::vector<PostView> posts;            // shown posts, in the group's order
  std::map<Hash, std::size_t> post_index;  // id -> position in posts
  std::vector<ChannelView> channels;      // #general first, then in order of creation
  // Each member's mute in force at the end of the log (it may have run out by a clock: compare
  // until_ms), absent when never muted or unmuted since.
  std::map<PublicKey, MuteView> mutes;
  std::vector<ConversationAction> actions;  // accepted acts, in order
  // Accepted events of the conversation kinds (and posts) that had no effect here, and why.
  std::map<Hash, std::string> refused;

  const PostView* post(const Hash& id) const;
  const ChannelView* channel(const Hash& id) const;
  // The channel of that name that is not archived, else the first archived one.
  const ChannelView* channel_named(std::string_view name) const;
  // Whether a post by `member` at order key `at_ms` would be refused by a mute in force.
  std::optional<MuteView> muted(const PublicKey& member, std::uint64_t at_ms) const;

  bool operator==(const Conversation&) const = default;
};

// Opens the ciphertext of a conversation event (react, edit, delete, redact, mute, channel,
// post, set-nick): the plaintext, or none when this node cannot.
using OpenFn = std::function<std::optional<Bytes>(const Event&)>;

// What to fold: everything, or only what decides whether a new post may be made (channels and
// mutes: no post, reaction, edit or deletion is opened, so authoring a post costs one
// decryption per channel and mute event, not one per post of the history).
enum class ConversationScope { full, channels_and_mutes };

Conversation build_conversation(const Group& group, const OpenFn& open,
                                ConversationScope scope = ConversationScope::full);

struct FoldState;

// ConversationCache: one group's full conversation kept between reads, so that a read (`qun log`,
// the group list, a stream) does not fold the whole history again: a long history costs one
// decryption per event on every read otherwise (issue 13, "Long histories").
//
// get() returns exactly what build_conversation(group, open, scope) returns now. It folds again from the
// start when the generation changed (Replica::fold_generation: anything but accepted events
// appended at the end of the history, such as a late event sorting earlier, an acceptance
// changed, a key learned, a payload dropped or restored), when it is given another Group, or
// when an appended event is one the fold cannot take at its place (a mute, or a change of roles
// or membership: the first pass judges every mute against the roles at the end of the log).
// Otherwise it folds only the appended events onto what it holds, and nothing at all when the
// history did not grow. tests/node/conversation_test.cpp compares it with full folds.
//
// The reference it returns stays valid until the next get() or the cache's destruction. It
// holds the group's posts with their text: memory grows with the history, like one full fold.
class ConversationCache {
 public:
  explicit ConversationCache(ConversationScope scope = ConversationScope::full);
  ~ConversationCache();
  ConversationCache(ConversationCache&&) noexcept;
  ConversationCache& operator=(ConversationCache&&) noexcept;
  ConversationCache(const ConversationCache&) = delete;
  ConversationCache& operator=(const ConversationCache&) = delete;

  const Conversation& get(const Group& group, const OpenFn& open, std::uint64_t generation);

  struct Stats {
    std::uint64_t hits = 0;         // nothing new: the conversation as held
    std::uint64_t incremental = 0;  // appended events folded onto it
    std::uint64_t full = 0;         // folded from the start
  };
  const Stats& stats() const { return stats_; }

 private:
  ConversationScope scope_;
  std::unique_ptr<FoldState> state_;
  const Group* group_ = nullptr;  // the group folded (compared only, never read)
  std::uint64_t generation_ = 0;
  std::size_t folded_ = 0;        // history entries folded
  Hash last_;                     // the last of them
  Stats stats_;
};

}  // namespace qun
