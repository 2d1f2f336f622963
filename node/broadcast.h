// Broadcast: one group's event dissemination, after Plumtree (Leitão et al., 2007) and
// iroh-gossip's proto/plumtree.rs. Of the group's neighbours (the active set, which peer sampling
// keeps), the eager ones get each new event pushed whole and form a spanning tree; the lazy ones
// get only its id, announced in batches (IHave). A push that brings nothing new makes its link
// lazy (Prune); an announced event that no push brings within graft_timeout_ms is fetched from
// an announcer, whose link becomes eager again (Graft). Optionally (tree_optimize_hops), a lazy
// neighbour markedly closer to an event's author than the path it came by takes that path's
// place in the tree.
//
// The engine owns its state (eager and lazy neighbours, missing announced events, the recent
// events' distances) and its timers (announcement batches, grafts). It knows peers by key and
// events by id only: it holds no events, no links and no replica. Whether an event is held is
// asked through the `Has` predicate passed to the inputs that need it.
//
// Calling contract (the node's shape, node/node.h): feed one input, then drain poll() until it
// returns nullopt and act on each output in order (Push: send those events, encoded, with that
// hop count; IHave, Graft, Prune: send the message); then arm a timer for next_deadline() and
// call on_tick when it is due. Time never goes backwards; an early or extra on_tick does nothing.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/time.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "node/timer.h"

namespace qun {

struct BroadcastConfig {
  // A lazily announced event not received by push within this time is grafted.
  Millis graft_timeout_ms = 300;
  // Lazy announcements are batched this long (OverlayConfig::ihave_delay_ms says why 150).
  Millis ihave_delay_ms = 150;
  // Plumtree's tree optimisation threshold in hops; 0 turns it off (OverlayConfig says why).
  std::uint32_t tree_optimize_hops = 0;
  // Every neighbour eager and nothing ever pruned: the flooding baseline of the benchmarks.
  bool flood = false;
};

// The hop count of an event whose distance from its author is unknown (catch-up batches).
inline constexpr std::uint32_t broadcast_no_hops = UINT32_MAX;
// Ids in one IHave or Graft output: wire_limits::ids_max (node/wire.h), which node.cpp asserts.
inline constexpr std::size_t broadcast_ids_max = 1024;
// Recent events whose distance and sender are remembered, for announcements and the tree
// optimisation: a few seconds of a busy group's posts (and the tree settles within seconds).
inline constexpr std::size_t broadcast_seen_max = 4096;

namespace broadcast_output {
struct Push {  // send these events to `to`, each `hops` away from its author
  PublicKey to;
  std::vector<Hash> ids;
  std::uint32_t hops;
};
struct IHave {  // announce these events to `to`; hops[i] is our distance from ids[i]'s author
  PublicKey to;
  std::vector<Hash> ids;
  std::vector<std::uint32_t> hops;
};
struct Graft {  // ask `to` for these events (none: a tree swap) and to push to us again
  PublicKey to;
  std::vector<Hash> ids;
};
struct Prune {  // ask `to` to stop pushing to us
  PublicKey to;
};
}  // namespace broadcast_output
using BroadcastOutput = std::variant<broadcast_output::Push, broadcast_output::IHave,
                                     broadcast_output::Graft, broadcast_output::Prune>;

class Broadcast {
 public:
  using Has = std::function<bool(const Hash&)>;

  explicit Broadcast(BroadcastConfig config = {}) : config_(config) {}

  // Neighbours, as peer sampling adds and removes them. A new neighbour starts eager.
  void neighbor_up(const PublicKey& peer);
  void neighbor_down(const PublicKey& peer);
  // The peer's link is gone, or it may no longer sync the group: the announcements queued for it
  // go too (a neighbour that only left the set still gets those already queued).
  void drop_announcements(const PublicKey& peer);

  // Events newly held (received, caught up or authored here: from none), `hops` from their
  // author (broadcast_no_hops: unknown): pushed to the eager neighbours but `from`, announced to
  // the lazy ones after ihave_delay_ms.
  void on_admitted(Millis now, const std::vector<Hash>& ids, std::optional<PublicKey> from,
                   std::uint32_t hops);
  // A push from `from` (hops: as it carried them) brought only events we held: its link is
  // redundant in the tree, and is pruned.
  void on_redundant_push(const PublicKey& from);
  // `peer` pushed more duplicates than its window allows: its link is pruned, if eager.
  void on_too_many_duplicates(const PublicKey& peer);
  // Messages from a neighbour.
  void on_ihave(Millis now, const PublicKey& peer, const std::vector<Hash>& ids,
                const std::vector<std::uint32_t>& hops, const Has& has);
  void on_graft(const PublicKey& peer);
  void on_prune(const PublicKey& peer);

  void on_tick(Millis now, const Has& has);
  [[nodiscard]] std::optional<BroadcastOutput> poll();
  [[nodiscard]] std::optional<Millis> next_deadline() const { return timers_.next_deadline(); }

  bool is_neighbor(const PublicKey& peer) const { return eager_.count(peer) || lazy_.count(peer); }
  bool is_lazy(const PublicKey& peer) const { return lazy_.count(peer) != 0; }
  // Announcements waiting for their batch, for `peer` (none once sent).
  std::vector<PublicKey> announcing() const;
  std::size_t missing() const { return missing_.size(); }
  std::size_t neighbors() const { return eager_.size() + lazy_.size(); }

  // The first invariant that does not hold, or none (checked after every input in test builds).
  std::optional<std::string> invariant_violation() const;

 private:
  enum class Timer { ihave, graft, count };
  struct Missing {  // an announced event we have not received
    Millis deadline;
    std::vector<PublicKey> announcers;
  };
  struct Seen {
    std::uint32_t hops;  // our distance from the author by the path it came
    std::optional<PublicKey> from;
  };

  void flush_ihave();
  void send_grafts(Millis now, const Has& has);
  void maybe_swap(const PublicKey& peer, const Hash& id, std::uint32_t hops);
  void make_lazy(const PublicKey& peer);  // with a Prune

  BroadcastConfig config_;
  std::set<PublicKey> eager_, lazy_;
  std::map<Hash, Missing> missing_;
  std::map<PublicKey, std::vector<Hash>> ihave_out_;
  std::map<Hash, Seen> seen_;  // recent events, oldest evicted past broadcast_seen_max
  std::deque<Hash> seen_order_;
  TimerTable<Timer> timers_;
  std::deque<BroadcastOutput> out_;
};

}  // namespace qun
