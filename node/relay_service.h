// RelayService: what a relay decides about the groups it is asked to serve (docs/protocol.md,
// "Relays"). A serve request (wire::Serve) is answered at once: refused when this node is no
// relay, when the requester was refused for that group after an earlier probation, when the
// relay is full or the requester past its quota; kept for the operator's approval when the
// requester is not on the allow-list (and the relay is not open); otherwise the group is taken on.
// A group taken on is on probation until the relay holds the heads its requesters offered, or no
// event came for serve_probation_ms: then it is kept if one requester is an admin there (or none
// is known: a group loaded at start-up without its create event, once the create came), and
// dropped otherwise, its requesters refused for it for serve_refusal_ms.
//
// The engine owns the allow-list, the requests waiting for approval, the refusals, each served
// group's probation and claimants, and one timer (the earliest probation deadline). It holds no
// groups, replicas or links: the node says which groups it holds and how many (inputs take them),
// and carries out its outputs: Reply (send wire::ServeReply to the requester), TakeOn (add the
// group: GroupAdded, then an empty replica with these address hints) and Drop (remove the group
// and have its data deleted: GroupDropped).
//
// Calling contract (the node's shape, node/node.h): feed one input, then drain poll() until it
// returns nullopt and act on each output in order; then arm a timer for next_deadline() and call
// on_tick when it is due. Time never goes backwards; an early or extra on_tick does nothing.
// Not thread-safe.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/log.h"
#include "base/result.h"
#include "base/time.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "node/replica.h"
#include "node/timer.h"

namespace qun {

// A relay keeps a group it was asked to serve on probation until it holds the heads the
// requester offered; if no event of the group arrives for this long, it decides with what it
// has: no create event, or a requester that is not an admin, drops the group.
inline constexpr Millis serve_probation_ms = 60'000;
// A requester whose group was dropped for not being an admin is refused for that group this long.
inline constexpr Millis serve_refusal_ms = 10 * 60'000;
// Serve requests a relay keeps for the operator's approval (oldest forgotten first): more than
// a screen of `qun relay requests`. A requester keeps at most serve_waiting_per_requester_max.
inline constexpr std::size_t serve_waiting_max = 64;
inline constexpr std::size_t serve_waiting_per_requester_max = 4;
// Groups one requester may have on probation at a relay at once: an honest admin asks for its
// groups one by one; this keeps a peer naming random group ids from filling the relay's slots.
inline constexpr std::size_t serve_probation_per_peer_max = 4;
// (group, requester) refusals a relay remembers at most (oldest forgotten first).
inline constexpr std::size_t serve_refusals_max = 1024;

// A serve request a relay refused because the requester is not on its allow-list.
struct ServeWaiting {
  Hash group;
  PublicKey requester;
  std::string address;  // where the requester said it listens (may be empty)
  Millis at = 0;        // when it (last) asked
};

struct RelayServiceConfig {
  bool relay = false;  // NodeConfig::relay: a node that is no relay refuses every request
  bool open = false;   // NodeConfig::relay_open: anybody may claim group slots
  // Groups served at most (NodeConfig::relay_groups_max, within wire_limits::groups_max).
  std::size_t groups_max = 100;
  std::size_t groups_per_requester_max = 10;  // NodeConfig::relay_groups_per_requester_max
  std::set<PublicKey> allow;                  // NodeConfig::relay_allow
};

namespace relay_output {
struct Reply {  // send wire::ServeReply{group, accepted, reason} to `to`
  PublicKey to;
  Hash group;
  bool accepted;
  std::string reason;  // when refused; within wire_limits::reason_bytes_max
  bool waiting;        // refused, and kept for the operator's approval
};
struct TakeOn {  // add the group (GroupAdded, an empty replica), with these address hints
  Hash group;
  std::vector<std::string> hints;
};
struct Drop {  // remove the group and delete its data (GroupDropped)
  Hash group;
  std::string reason;
};
struct Kept {  // a direct group's probation ended well: offer it to its members (node/direct.h)
  Hash group;
};
}  // namespace relay_output
using RelayOutput = std::variant<relay_output::Reply, relay_output::TakeOn, relay_output::Drop,
                                 relay_output::Kept>;

class RelayService {
 public:
  // Whether the node holds a group, and the group's replica (none: not held).
  using Held = std::function<bool(const Hash&)>;
  using Find = std::function<const Replica*(const Hash&)>;

  RelayService(RelayServiceConfig config, LogSink log);

  // `peer` (listening at `address`, maybe empty) asks this node to serve `group`. `held`: the
  // node holds the group already; `groups_held`: how many groups it holds.
  void on_serve(Millis now, const PublicKey& peer, const Hash& group, const std::string& address,
                bool held, std::size_t groups_held);
  // Direct groups (node/direct.h). A member offers one (wire::DirectOffer): it is taken on, on
  // probation as direct, when `member_here` (the peer is a member of a group served here) and
  // within the relay's slots, serve_probation_per_peer_max and direct::relay_groups_per_member_max
  // (`direct_of_peer`: direct groups held that name the peer or were taken for it); such a group
  // takes no slot of the peer's quota. Its probation is judged by `judge` (set by the node):
  // kept when it returns no reason. Returns whether the group was taken on.
  using DirectJudge = std::function<std::string(const Hash&, const Replica&,
                                                const std::set<PublicKey>& requesters)>;
  void set_direct_judge(DirectJudge judge) { direct_judge_ = std::move(judge); }
  bool on_direct_offer(Millis now, const PublicKey& peer, const Hash& group,
                       const std::string& address, bool held, std::size_t groups_held,
                       bool member_here, std::size_t direct_of_peer);
  // The group was taken on as a direct group (whether on probation still or kept).
  bool taken_as_direct(const Hash& group) const { return direct_.count(group) != 0; }

  // The operator approves the waiting requests for `group` (of `only` requester if given): the
  // group is taken on unless held. Errors: not_found (no such request waits), too_large (the
  // relay serves groups_max groups already).
  [[nodiscard]] Result<void> approve(Millis now, const Hash& group, std::optional<PublicKey> only,
                                     const Held& held, std::size_t groups_held);
  // Adds `requester` to the allow-list and approves what it asked for and waits, within its quota
  // and the relay's slots. Returns the groups taken on.
  std::vector<Hash> allow(Millis now, const PublicKey& requester, const Held& held,
                          std::size_t groups_held);

  // The node holds a group whose create event it lacks (loaded at start-up after a take-on): it
  // gets the same bounded wait for data as a fresh one, unless already on probation.
  void on_loaded_without_create(Millis now, const Hash& group);
  // `peer` offered or requested with these heads: if it asked for the group, the relay decides
  // once it holds as much.
  void on_heads(const Hash& group, const PublicKey& peer, const std::vector<Hash>& heads);
  // Events of the group were admitted: the probation's wait starts again.
  void on_progress(Millis now, const Hash& group);
  // Something about the group changed (a message of it was handled): settles its probation if
  // it can be (caught up, or stalled), which may Drop it.
  void review(Millis now, const Hash& group, const Replica& replica);
  // The node no longer holds the group: its probation and claims go.
  void forget(const Hash& group);

  void on_tick(Millis now, const Find& find);
  [[nodiscard]] std::optional<RelayOutput> poll();
  [[nodiscard]] std::optional<Millis> next_deadline() const { return timers_.next_deadline(); }

  // Whether `peer` asked for `group` and it is on probation (such a peer may sync it with us).
  bool is_requester(const Hash& group, const PublicKey& peer) const;
  bool on_probation(const Hash& group) const { return probation_.count(group) != 0; }
  std::vector<Hash> probation_groups() const;
  std::vector<Hash> claimed_groups() const;
  const std::deque<ServeWaiting>& waiting() const { return waiting_; }
  const std::set<PublicKey>& allowed() const { return config_.allow; }

  // The first invariant that does not hold, or none (checked after every input in test builds).
  std::optional<std::string> invariant_violation() const;

 private:
  enum class Timer { probation, count };  // the earliest probation deadline
  struct Probation {
    // Who asked (more may ask while it lasts); none for a group loaded without its create.
    std::set<PublicKey> requesters;
    std::set<Hash> heads;      // the heads they offered
    Millis last_progress = 0;  // when the probation began or an event last arrived
  };

  // Why the relay cannot take on another group for `requester` (empty: it can).
  std::string cannot_take_on(const PublicKey& requester, std::size_t groups_held) const;
  void take_on(Millis now, const Hash& group, const std::set<PublicKey>& requesters,
               std::vector<std::string> hints);
  void keep_waiting(Millis now, const Hash& group, const PublicKey& peer,
                    const std::string& address);
  void reply(const PublicKey& to, const Hash& group, bool accepted, std::string reason,
             bool waiting = false);
  void refuse_later(Millis now, const Hash& group, const PublicKey& requester);
  void rearm();
  void note(LogLevel level, std::string message) {
    if (log_) log_(LogRecord{level, "node", std::move(message)});
  }

  RelayServiceConfig config_;
  LogSink log_;
  std::deque<ServeWaiting> waiting_;                            // oldest first
  std::map<std::pair<Hash, PublicKey>, Millis> refusals_;       // until when
  std::map<Hash, Probation> probation_;
  std::map<Hash, std::set<PublicKey>> claimants_;  // whose slot (and quota) each group takes
  std::set<Hash> direct_;      // groups taken on as direct groups (on_direct_offer)
  DirectJudge direct_judge_;
  TimerTable<Timer> timers_;
  std::deque<RelayOutput> out_;
};

}  // namespace qun
