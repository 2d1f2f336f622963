// CatchUp: one group's anti-entropy, the reconciliation that brings a peer what pushes did not
// (it was offline, partitioned, or joined late). Peers compare heads: each side offers its heads
// (an offer, on connect, and every offer_interval_ms to one random neighbour not yet in step
// with our current heads: neither offered them by us nor offering the same heads itself; when
// every neighbour is in step, at least once per offer_interval_max_ms to one at random); a side that lacks
// one asks for what it lacks by sending its own heads (a request); the side asked sends every
// event outside the causal past of those heads, in stored (parents-first) order, in batches paced
// by a send window per peer.
//
// The engine owns its state (per-peer catch-up queues, heads requests held back by
// heads_reply_gap_ms, heads being fetched from another peer, the peers we asked for events) and
// its timers (held-back requests, the pump, the periodic offer, the fetch expiry). It knows peers
// by key and reads the group's events through the `Group` passed to the inputs that need it; it
// holds no links and no replica.
//
// Calling contract (the node's shape, node/node.h): feed one input, then drain poll() until it
// returns nullopt and act on each output in order (Heads: send our heads, as an offer or a
// request; Events: send those encoded events, with no hop count); then arm a timer for
// next_deadline() and call on_tick when it is due. Time never goes backwards; an early or extra
// on_tick does nothing. Randomness (which neighbour gets the periodic offer) comes from the Rng
// passed to on_tick. Not thread-safe.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/time.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/rng.h"
#include "node/group.h"
#include "node/timer.h"

namespace qun {

struct CatchUpConfig {
  // Heads are offered to one random neighbour this often (OverlayConfig::sync_interval_ms).
  Millis offer_interval_ms = 15'000;
  // ... but when every neighbour is in step, at most this often
  // (OverlayConfig::sync_interval_max_ms says why).
  Millis offer_interval_max_ms = 240'000;
  // With no neighbour to offer to, the offer is tried again this soon (the node's maintenance
  // interval, when its active set may have filled).
  Millis offer_retry_ms = 1'000;
  // Events from a peer we asked for events within this time count as catch-up
  // (OverlayConfig::catch_up_solicited_ms says why 60 s).
  Millis solicited_ms = 60'000;
  // Catch-up bytes in flight per peer (OverlayConfig::send_window_bytes says why 2 MiB).
  std::size_t send_window_bytes = 2 * 1024 * 1024;
};

// Event batches sent per peer per pump: bounds the bytes one peer can make us queue in one step
// (each batch is at most wire_limits::events_bytes_max).
inline constexpr std::size_t catch_up_batches_per_pump = 4;
// How often a peer with catch-up left is pumped again.
inline constexpr Millis catch_up_pump_ms = 20;
// Heads are not requested again from the same peer within this time (no ping-pong).
inline constexpr Millis heads_reply_gap_ms = 1'000;
// After asking one peer for heads it offered, a node does not ask another for the same heads for
// this long, so that two peers do not both send it the same missing events.
inline constexpr Millis catch_up_wait_ms = 2'000;

namespace catch_up_output {
struct Heads {  // send `to` our heads: a request for what we lack (want), or an offer
  PublicKey to;
  bool want;
};
struct Events {  // send `to` these events (encoded for a group message), distance unknown
  PublicKey to;
  std::vector<Bytes> events;
};
}  // namespace catch_up_output
using CatchUpOutput = std::variant<catch_up_output::Heads, catch_up_output::Events>;

class CatchUp {
 public:
  using Has = std::function<bool(const Hash&)>;
  // Bytes queued to a peer and not yet written (none: no link to it, its queue is dropped).
  using InFlight = std::function<std::optional<std::size_t>(const PublicKey&)>;

  CatchUp() = default;
  // The periodic offer first fires at first_offer_at (the node spreads groups' offers at random).
  CatchUp(CatchUpConfig config, Millis first_offer_at);
  // Moves the next periodic offer to `at` (a group added again).
  void schedule_offer(Millis at) { timers_.set(Timer::offer, at); }

  // Neighbours (the active set), as peer sampling adds and removes them: the periodic offer goes
  // to one of them.
  void neighbor_up(const PublicKey& peer) { neighbors_.insert(peer); }
  void neighbor_down(const PublicKey& peer) {
    neighbors_.erase(peer);
    in_step_.erase(peer);
  }
  // The peer's link is gone, or it may no longer sync the group: what was queued or awaited for
  // it goes (its catch-up, a held-back request, the record that we asked it for events).
  void peer_gone(const PublicKey& peer);

  // Offers our heads to `peer` (a link came up, a relay took the group on).
  void offer(Millis now, const PublicKey& peer);
  // Asks `peer` for what we lack: sends our heads as a request, or, within heads_reply_gap_ms of
  // the last request to it, once the gap has passed.
  void request(Millis now, const PublicKey& peer);
  // The same, `wait` from now (or sooner if a request to it is due sooner): a pushed event
  // whose parents we lack, which are likely still on their way by push (node.cpp, ingest).
  void request_after(Millis now, const PublicKey& peer, Millis wait);
  // We asked `peer` for events by other means (a graft): what it sends is catch-up too.
  void solicit(Millis now, const PublicKey& peer) { solicited_[peer] = now; }
  // Whether events from `peer` with no hop count are ones we asked for (catch-up, metered by the
  // time their authors claim) rather than pushes.
  bool solicited(Millis now, const PublicKey& peer) const;

  // `peer` offered its heads: if it holds any we lack that no other peer is sending us, ask it.
  void on_offer(Millis now, const PublicKey& peer, const std::vector<Hash>& heads, const Has& has);
  // `peer` asked for what it lacks, sending its heads: queue every event of `group` outside their
  // causal past, in stored order, and send the first batches.
  void on_request(Millis now, const PublicKey& peer, const std::vector<Hash>& heads,
                  const Group& group, const InFlight& in_flight);

  void on_tick(Millis now, const Group& group, Rng& rng, const InFlight& in_flight);
  [[nodiscard]] std::optional<CatchUpOutput> poll();
  [[nodiscard]] std::optional<Millis> next_deadline() const { return timers_.next_deadline(); }

  // Peers with catch-up queued.
  std::vector<PublicKey> sending() const;
  bool sending_to(const PublicKey& peer) const { return queues_.count(peer) != 0; }
  std::size_t neighbors() const { return neighbors_.size(); }
  bool is_neighbor(const PublicKey& peer) const { return neighbors_.count(peer) != 0; }

  // The first invariant that does not hold, or none (checked after every input in test builds).
  std::optional<std::string> invariant_violation() const;

 private:
  // A heads request to `peer` held back until `at` (or sooner, if one is due sooner): sent from
  // on_tick by retry_requests.
  void defer(const PublicKey& peer, Millis at);

  enum class Timer {
    heads_retry,   // requests held back by heads_reply_gap_ms or request_after (deferred_)
    pump,          // the next catch-up batches (queues_), every catch_up_pump_ms
    offer,         // heads offered to one random neighbour
    fetch_expiry,  // the earliest fetching_ entry ends
    count
  };

  // Notes the heads a neighbour offered or will hold (ignored for peers not neighbours).
  void note_heads(const PublicKey& peer, const std::vector<Hash>& heads);
  void pump(Millis now, const PublicKey& peer, const Group& group, const InFlight& in_flight);
  void retry_requests(Millis now);
  void expire_fetching(Millis now);

  CatchUpConfig config_;
  std::set<PublicKey> neighbors_;
  std::map<PublicKey, std::deque<Hash>> queues_;  // events still to send each peer
  std::map<PublicKey, Millis> requested_;         // when we last requested heads from each peer
  std::map<PublicKey, Millis> deferred_;          // held-back requests, and when they are due
  std::map<Hash, Millis> fetching_;               // heads some peer is sending us, until when
  std::map<PublicKey, Millis> solicited_;         // peers we asked for events, when
  // Neighbours' last known heads: those we last offered them in a periodic offer, or those they
  // last offered or sent us (at most wire_limits::ids_max each, one entry per neighbour). A
  // neighbour whose entry equals our heads is in step and gets no periodic offer.
  std::map<PublicKey, std::set<Hash>> in_step_;
  Millis last_offer_at_ = 0;  // the last periodic offer
  TimerTable<Timer> timers_;
  std::deque<CatchUpOutput> out_;
};

}  // namespace qun
