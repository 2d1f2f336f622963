// The application service: what the node decides above the overlay, as plain code driven by
// net/daemon.cpp the way node/ is (docs/architecture.md, "The running node"). It keeps
//   - joins in progress: the invite each waits on, the requests waiting for the answer, and the
//     bound on how long a request waits (join_answer_ms_max) while the join goes on;
//   - relay requests waiting for the relay's answer;
//   - groups this node left, kept until the leave went out (leave_linger_ms, _max);
//   - each group's outbox: ids of own events authored while no peer of the group was linked;
//   - read markers and the unread and mention counts they give;
//   - the members this node hides from its own views (`qun hide`): no event is sent, the list is
//     this node's alone.
//
// Calling contract (STYLE.md, "The engine shape"): inputs are the methods below, each given the
// time where time matters (time never goes backwards; an early or extra on_tick does nothing);
// after every input the driver drains poll() until empty and carries out each output in order:
// a Reply goes to its control client, SaveMeta is written to the store's meta table, DropGroup
// removes the group from the node and deletes its data. No callbacks; no IO, clock, thread or
// randomness here. Single-threaded.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/time.h"
#include "net/control.h"
#include "node/invite.h"
#include "node/replica.h"

namespace qun::app {

using Json = control::Json;
using ClientId = std::uint64_t;  // the control server's id of a client connection

// A `join` request is answered within this time even if no node of the group answered yet (the
// CLI waits 60 s); the join itself goes on in the background and survives restarts.
inline constexpr Millis join_answer_ms_max = 45'000;
// A group this node left is kept (and synced, hidden from listings) at least this long so that
// the leave reaches peers, and while no peer is linked for it, up to leave_linger_ms_max.
inline constexpr Millis leave_linger_ms = 5'000;
inline constexpr Millis leave_linger_ms_max = 10 * 60'000;
static_assert(leave_linger_ms < leave_linger_ms_max);
// Ids of own events kept in a group's outbox list (events authored while no peer of the group
// was linked). The events themselves are in the store and reach peers by catch-up whatever the
// list holds; the list is what `status` and `group list` count. 10,000 is far more than a
// person posts while offline; past it the oldest ids leave the list (not the store).
inline constexpr std::size_t outbox_ids_max = 10'000;
// Unread posts scanned for mentions of the node's nick, newest first: a bound on the work of
// one `group list` per group (1,000 posts is a long absence; older ones still count as unread).
inline constexpr std::size_t mention_scan_max = 1'000;
// Requests waiting on one join or one relay answer. A person asks once or twice; 64 leaves room
// for scripts that retry, and bounds what a local client looping on `join` can queue.
inline constexpr std::size_t waiters_per_answer_max = 64;

// Members one node hides (`qun hide`). A person hides a few troublemakers; 10,000 is far past
// that and keeps the list (32 bytes each, read at start-up) under a megabyte.
inline constexpr std::size_t hidden_members_max = 10'000;
// Keys one node blocks (`qun dm block`): direct groups with them are refused (node/direct.h).
// The same reasoning and bound as hidden members.
inline constexpr std::size_t blocked_members_max = 10'000;

// A control request waiting for an answer that comes later.
struct Waiter {
  ClientId client = 0;
  Json id;  // the request's id, echoed in the answer
  Millis since = 0;
};

namespace output {
// The answer to a waiting request.
struct Reply {
  ClientId client;
  Json id;
  Result<Json> result;
};
// A value for the store's meta table (an empty value deletes the key).
struct SaveMeta {
  std::string key;
  Bytes value;
};
// Remove the group from the node and delete its data (a join failed or was cancelled, a leave
// went out).
struct DropGroup {
  Hash group;
  std::string why;
};
}  // namespace output
using Output = std::variant<output::Reply, output::SaveMeta, output::DropGroup>;

// Meta keys the service writes (and the daemon reads back at start-up).
std::string outbox_key(const Hash& g);
std::string read_key(const Hash& g);
// A channel's own read marker ("read/<group>/<channel>").
std::string read_key(const Hash& g, const Hash& channel);
inline constexpr const char* joins_key = "joins";
inline constexpr const char* hidden_key = "hidden";
inline constexpr const char* blocked_key = "blocked";

// Read markers of one group: each the length of the history read. `group` covers every channel
// (`qun log GROUP` shows them all); a channel's own covers that channel's posts (the chat shows
// one channel at a time, `qun log --channel`). A channel's posts are read up to the larger of
// the two.
struct ReadMarks {
  std::size_t group = 0;
  std::map<Hash, std::size_t> channels;  // channel id (the group id for #general) -> marker
};

// Unread posts (not this node's own, nor a hidden member's) after the read markers, and how
// many of them mention nick (app/naming.h). The newest mention_scan_max posts after the group
// marker are opened: each counts in its channel (by_channel; #general is the group id), unless
// that channel's marker covers it, and is checked for a mention. Older ones count in posts
// only, as unread in no channel in particular: 1,000 unread posts is a long absence.
struct ChannelUnread {
  std::uint64_t posts = 0;
  std::uint64_t mentions = 0;
};
struct Unread {
  std::uint64_t posts = 0;
  std::uint64_t mentions = 0;
  std::map<Hash, ChannelUnread> by_channel;
};
Unread unread(const Replica& r, const ReadMarks& marks, const PublicKey& self,
              const std::string& nick, const std::set<PublicKey>& hidden = {});
inline Unread unread(const Replica& r, std::size_t read_mark, const PublicKey& self,
                     const std::string& nick, const std::set<PublicKey>& hidden = {}) {
  return unread(r, ReadMarks{read_mark, {}}, self, nick, hidden);
}
// A read marker (the length of the history read) as stored, and back; 0 for a value that does
// not read.
Bytes encode_read_mark(std::uint64_t history_size);
std::size_t decode_read_mark(ByteView value);

class Service {
 public:
  // ---- start-up: what the store held -----------------------------------------------------
  // The "joins" meta value: the invite codes of joins in progress. Codes that do not read are
  // skipped. Returns the groups joining.
  std::vector<Hash> load_joins(ByteView value);
  // A group's "outbox/<group>" meta value.
  void load_outbox(const Hash& g, ByteView value);

  // ---- joins --------------------------------------------------------------------------------
  // Starts (or restarts, for a former member) a join with this invite; saved at once.
  void join_started(InviteCode code);
  // Adds a request waiting for the join of g (answered by join_done, join_failed or the
  // deadline). A request past waiters_per_answer_max is answered at once that the join goes on.
  void wait_for_join(const Hash& g, Waiter w);
  bool joining(const Hash& g) const { return joins_.count(g) != 0; }
  const InviteCode* join_code(const Hash& g) const;
  std::vector<Hash> joins() const;
  // The join is authored (or this node was a member already): waiters get {"group"}.
  void join_done(const Hash& g);
  // The join failed or was cancelled: waiters get the reason. Nothing is dropped here: the
  // caller knows whether the group held anything worth keeping.
  void join_failed(const Hash& g, const std::string& why);

  // ---- relay requests -----------------------------------------------------------------------
  void wait_for_serve(const Hash& g, const std::string& address, Waiter w);
  // The relay answered: the requests that wait on it (the caller answers them all alike).
  std::vector<Waiter> take_serve_waiters(const Hash& g, const std::string& address);

  // ---- leaving ------------------------------------------------------------------------------
  // This node left g at now; linked: a peer of g is linked now (the leave goes out at once).
  void left(const Hash& g, Millis now, bool linked);
  bool leaving(const Hash& g) const { return leaving_.count(g) != 0; }
  void forget_leave(const Hash& g) { leaving_.erase(g); }

  // ---- outbox -------------------------------------------------------------------------------
  // Own events just published in g while no peer of g was linked.
  void queue(const Hash& g, const std::vector<Hash>& ids);
  // The ids waiting in g's outbox, oldest first.
  const std::vector<Hash>& outbox(const Hash& g) const;
  // Posts among them (not the rekeys, closes and other bookkeeping authored with them): what
  // the person posted and sees as queued. Ids r no longer holds count as posts.
  std::size_t outbox_posts(const Hash& g, const Replica* r) const;
  // Empties g's outbox (a peer is linked again, or the group is gone). Returns whether it held
  // anything.
  bool clear_outbox(const Hash& g);
  std::vector<Hash> outbox_groups() const;

  // ---- read markers ------------------------------------------------------------------------
  // Everything up to history_size of g is read: in every channel, or with `channel` in that
  // channel only (its own marker).
  void mark_read(const Hash& g, std::uint64_t history_size,
                 const std::optional<Hash>& channel = std::nullopt);

  // ---- hidden members ---------------------------------------------------------------------
  // The "hidden" meta value.
  void load_hidden(ByteView value);
  // Hides a member from this node's views (log, streams, unread counts); saved at once. Errors:
  // already_exists when hidden already, too_large past hidden_members_max.
  [[nodiscard]] Result<void> hide(const PublicKey& member);
  // Errors: not_found when the member is not hidden.
  [[nodiscard]] Result<void> unhide(const PublicKey& member);
  bool hidden(const PublicKey& member) const { return hidden_.count(member) != 0; }
  const std::set<PublicKey>& hidden_members() const { return hidden_; }

  // ---- blocked members (direct groups) -----------------------------------------------------
  // The "blocked" meta value.
  void load_blocked(ByteView value);
  // Errors: already_exists when blocked already, too_large past blocked_members_max.
  [[nodiscard]] Result<void> block(const PublicKey& member);
  // Errors: not_found when the member is not blocked.
  [[nodiscard]] Result<void> unblock(const PublicKey& member);
  const std::set<PublicKey>& blocked_members() const { return blocked_; }

  // ---- time ---------------------------------------------------------------------------------
  // Answers join requests that waited join_answer_ms_max, and drops groups left long enough
  // ago: linked holds the groups with a linked peer now.
  void on_tick(Millis now, const std::set<Hash>& linked);
  // A group is gone from the node: forgets everything of it (its outbox and read marker are
  // deleted from the store).
  // `channels`: the group's channels, whose own read markers go too.
  void forget(const Hash& g, const std::vector<Hash>& channels = {});

  [[nodiscard]] std::optional<Output> poll();

 private:
  struct PendingJoin {
    InviteCode code;
    std::vector<Waiter> waiters;
  };
  struct Leaving {
    Millis since;  // when this node left
    bool linked;   // a peer was linked for the group since then (the leave went out)
  };
  void save_joins();
  void save_outbox(const Hash& g);
  void save_hidden();
  void save_blocked();
  void reply(const Waiter& w, Result<Json> result);

  std::map<Hash, PendingJoin> joins_;
  std::map<std::pair<Hash, std::string>, std::vector<Waiter>> serve_waiters_;
  std::map<Hash, Leaving> leaving_;
  std::map<Hash, std::vector<Hash>> outbox_;
  std::set<PublicKey> hidden_;
  std::set<PublicKey> blocked_;
  std::deque<Output> out_;
};

}  // namespace qun::app
