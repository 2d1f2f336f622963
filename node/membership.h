// Membership: one group's peer sampling, after HyParView (Leitão et al., 2007) and iroh-gossip's
// proto/hyparview.rs. Of the peers holding the group, a small active set carries its broadcast
// (neighbours, asked for with Neighbor and accepted or refused with NeighborReply, left with
// Disconnect), and a larger passive list of known addresses (from invite hints, shared links and
// shuffles) refills it. Every shuffle_interval_ms the engine trades a sample of what it knows with
// one random active peer, backing off (the interval doubles up to shuffle_interval_max_ms) while
// the active set stays the same, so that a node in many settled groups is quiet, and coming back to
// the base interval within a maintenance round when the set changes; every explore_interval_ms
// (backing off the same way, up to explore_interval_max_ms) it dials one random passive peer it has
// no link to (anti-entropy beyond the active set); maintain() fills the active set up to its
// target, and redials active peers whose link closed (lost_redial_ms: what rejoins the halves of a
// healed partition, whose sets refilled on each side). A member keeps one of the relays the group
// names in its active set where it can (it asks a linked relay, or dials one, and waits
// relay_retry_ms after a failure).
//
// The engine owns its state (active set with each peer's link, passive list, neighbor requests
// in flight, the named relays and whether each serves the group) and its timers (shuffle,
// explore). It knows peers by key and their links only by the node's opaque id; what it needs to
// know of links (who is linked, dialing, banned, sharing the group) it asks through the Links
// passed to the inputs that choose peers. It tells the other engines of the group about its
// neighbours through Up and Down outputs (iroh-gossip's NeighborUp and NeighborDown).
//
// Calling contract (the node's shape, node/node.h): feed one input, then drain poll() until it
// returns nullopt and act on each output in order (Up, Down: tell the group's other engines;
// Neighbor, NeighborReply, Disconnect, Shuffle: send the message to the peer; Dial: open a link);
// then arm a timer for next_deadline() and call on_tick when it is due. Time never goes
// backwards; an early or extra on_tick does nothing. Randomness comes from the Rng passed to the
// inputs that draw. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/time.h"
#include "crypto/keys.h"
#include "crypto/rng.h"
#include "node/timer.h"
#include "node/wire.h"

namespace qun {

// Refusing peers remembered per group (Membership::refused_): a group's candidates are the
// linked peers sharing it, at most the node's connections_max (256).
inline constexpr std::size_t refusals_max = 256;

// Healing (Membership::lost_): an active peer whose link closed is redialed even when the set has
// refilled, since the set refills from the peers still in reach, which after a partition are all
// on this side: waiting for an exploration (backed off up to explore_interval_max_ms, 320 s)
// left the halves of a healed partition apart for minutes. The first redial comes after
// lost_redial_ms (2 s: a link lost to a restart or a network change is usually back by then,
// dialed by either side), each failure doubles the wait up to lost_redial_max_ms (30 s: a healed
// partition is rejoined within that much plus a few round trips, by whichever of the peers that
// lost a link across it redials first; a peer gone for good costs one failed dial per 30 s), and
// the peer is given up after lost_keep_ms (10 min; explorations cover longer partitions).
inline constexpr Millis lost_redial_ms = 2'000;
inline constexpr Millis lost_redial_max_ms = 30'000;
inline constexpr Millis lost_keep_ms = 600'000;
// Lost peers remembered per group: a full active set lost at once (active_max, 7) twice over;
// a relay's larger set heals through its members' redials. Past it, none is added.
inline constexpr std::size_t lost_max = 16;

// Sharing links across groups (Membership::maintain, "consolidation"): a node in many groups whose
// active sets were filled at random holds about as many links as it has active slots (5 per group,
// few peers in common), each carrying one group. So a group whose set is full and holds a peer
// active in no other group (a link that carries this group alone) asks the linked peer whose link
// carries the most other groups to be a neighbour, and once it accepts gives the lone peer's place
// up: that link closes when idle, and the link count falls towards what the groups' overlaps allow.
// (Giving up the least loaded peer whatever its load, not only a lone one, churned more and saved
// fewer links in the simulator: the peer given up refills its own set, often with a new link.) One
// such request per group is in flight at a time. A peer given up this way has its requests refused
// for shed_hold_ms (320 s, shuffle_interval_max_ms: a settled group's pace), and one that told us
// it gave our place up is not asked again before the refusal wait, so that the two ends do not take
// each other back at once and swap again. Against a hostile peer: only links this node dialed
// itself count (an address it picked at random from the group's passive list), so no peer can make
// itself preferred by linking to us or by asking to be our neighbour; a group keeps its full set (a
// peer fills one place of five, however many groups it shares with us).
inline constexpr Millis shed_hold_ms = 320'000;
// Peers given up by consolidation remembered per group (Membership::shed_): one change a
// maintenance round over shed_hold_ms would be 320; a group's candidates are its linked peers,
// at most connections_max (256). Past it, none is added.
inline constexpr std::size_t shed_max = 256;

struct MembershipConfig {
  // The active set's target and cap, the passive list's bound and a shuffle's size
  // (OverlayConfig says where each number comes from; a relay's cap is relay_active_max).
  std::size_t active_target = 5;
  std::size_t active_max = 7;
  std::size_t passive_max = 32;
  std::size_t shuffle_peers = 8;
  Millis shuffle_interval_ms = 10'000;
  Millis shuffle_interval_max_ms = 320'000;  // OverlayConfig's says why
  Millis explore_interval_ms = 20'000;
  Millis explore_interval_max_ms = 320'000;  // OverlayConfig's says why
  // A shuffle or an exploration with no active peer is tried again this soon (the node's
  // maintenance interval, when the active set may have filled).
  Millis retry_ms = 1'000;
  Millis relay_retry_ms = 10'000;
  bool share_links = true;   // OverlayConfig's says why
  std::string self_address;  // this node's listen address: never a passive entry
  PublicKey self;            // this node: never a passive or active peer
};

// The node's links as the engine needs them, for the group at hand.
class MembershipLinks {
 public:
  virtual ~MembershipLinks() = default;
  // An established link to the peer is up.
  virtual bool linked(const PublicKey& peer) const = 0;
  // ... and it shares the group.
  virtual bool shares(const PublicKey& peer) const = 0;
  // Peers whose established link shares the group, in the node's link order.
  virtual std::vector<PublicKey> sharing() const = 0;
  // A connection to the address exists (up or being opened).
  virtual bool dialing(const std::string& address) const = 0;
  // The peer is banned at `now`.
  virtual bool banned(const PublicKey& peer, Millis now) const = 0;
  // The address of a link, by the node's id ("" if unknown).
  virtual std::string address(std::uint64_t link) const = 0;
  // The address the peer of a link announces, handed on to others in samples: a LAN address
  // this node dialed is no use elsewhere ("" if unknown).
  virtual std::string advertised(std::uint64_t link) const = 0;
  // A former member of the group: never remembered.
  virtual bool former(const PublicKey& peer) const = 0;
  // In how many of the node's other groups the peer is active: how many groups its link carries
  // besides this one.
  virtual std::size_t carries_other(const PublicKey& peer) const = 0;
  // This node opened the established link to the peer (dialed an address it chose), rather
  // than the peer linking to it.
  virtual bool dialed(const PublicKey& peer) const = 0;
};

namespace membership_output {
struct Up {  // `peer` joined the active set (again: a new link): the other engines take it in
  PublicKey peer;
};
struct Down {  // `peer` left the active set
  PublicKey peer;
};
struct Neighbor {  // ask `to` to take us into its active set
  PublicKey to;
  bool high_priority;  // we have no active peer at all
};
struct NeighborReply {
  PublicKey to;
  bool accepted;
};
struct Disconnect {  // tell `to` it left our active set
  PublicKey to;
};
struct Shuffle {  // send `to` this sample (the node adds itself first, if reachable)
  PublicKey to;
  bool reply;
  std::vector<PeerInfo> peers;
};
struct Dial {  // open a link to `address` (expected: the identity we know for it)
  std::string address;
  std::optional<PublicKey> expected;
};
}  // namespace membership_output
using MembershipOutput =
    std::variant<membership_output::Up, membership_output::Down, membership_output::Neighbor,
                 membership_output::NeighborReply, membership_output::Disconnect,
                 membership_output::Shuffle, membership_output::Dial>;

class Membership {
 public:
  using LinkId = std::uint64_t;  // the node's connection id

  Membership() = default;
  explicit Membership(MembershipConfig config) : config_(std::move(config)) {}
  // Sets the periodic timers (the node draws their first times, to spread groups).
  void schedule(Millis shuffle_at, Millis explore_at);

  // Notes an address where the group may be reached (and the identity there, if known) in the
  // passive list: not this node, not an active peer; past passive_max a random entry goes, but
  // never a relay the group names.
  void remember(const std::string& address, std::optional<PublicKey> id, Rng& rng);
  // Forgets the passive entries of these identities (former members).
  void forget_identities(const std::set<PublicKey>& ids);
  // The relays the group names now: their addresses join the passive list (and stay there);
  // relays no longer named leave it.
  void set_relays(const std::map<PublicKey, std::string>& named, Rng& rng);
  // The relay `peer` says (in its hello) whether it holds the group. Ignored for other peers.
  void note_serving(const PublicKey& peer, bool serving);

  // A link to `peer` now shares the group: ask it to be a neighbour if the set has room (and no
  // longer redial it, if it was lost).
  void on_shared(const PublicKey& peer);
  // Messages from a peer over link `link` (whose address is `address`).
  void on_neighbor(Millis now, const PublicKey& peer, LinkId link, const std::string& address,
                   bool high_priority, Rng& rng, const MembershipLinks& links);
  void on_neighbor_reply(Millis now, const PublicKey& peer, LinkId link,
                         const std::string& address, bool accepted, Rng& rng,
                         const MembershipLinks& links);
  // A shuffle (already cleared of banned peers): a request is answered with our own sample; the
  // peers offered join the passive list.
  void on_shuffle(const PublicKey& peer, bool reply, const std::vector<PeerInfo>& peers, Rng& rng,
                  const MembershipLinks& links);
  // A sample of shuffle_peers peers to hand a node this one has no room for (the node sends it as
  // a shuffle answer and closes the link): active peers and known passive ones, those with a
  // public address first, then relayed ones, then private ones (a relayed address needs a link
  // to its relay, which may be as full as this node; a private one works only on its LAN; a
  // newcomer behind NAT can use only public ones).
  std::vector<PeerInfo> hand_out(Rng& rng, const MembershipLinks& links) const;

  // Why a peer leaves (node.cpp, remove_peer: the one way a peer leaves a group's overlay).
  enum class Gone {
    disconnected,  // it sent Disconnect
    dropped,       // we gave its place up: told so
    shunned,       // it may no longer sync the group: told so, not remembered
    link_closed,   // its link (`link`) is gone: it leaves only if that is the link the set names
  };
  // Takes `peer` out of the active set (Down; Disconnect when dropped or shunned) and puts the
  // link's `address` back in the passive list unless shunned or `banned`; a closed link or a
  // shunned peer also cancels our neighbor request to it. An active peer whose link closed is
  // redialed (lost_redial_ms) until a link to it is up again; one that sent Disconnect is not
  // asked again before a refusal's wait. Returns whether it was active.
  bool remove(Millis now, const PublicKey& peer, std::optional<LinkId> link,
              const std::string& address, Gone why, bool banned, Rng& rng);

  // Once a maintenance interval: keeps a relay in the active set, fills the set up to its target
  // from linked peers sharing the group (those on links this node dialed that other groups use
  // first), then by dialing passive entries, and redials lost peers that are due; a full set
  // asks a peer whose link other groups use to replace a peer active in this group alone
  // (shed_hold_ms). After a change of the active set, brings a backed-off shuffle forward to
  // within shuffle_interval_ms.
  void maintain(Millis now, Rng& rng, const MembershipLinks& links);
  void on_tick(Millis now, Rng& rng, const MembershipLinks& links);
  [[nodiscard]] std::optional<MembershipOutput> poll();
  [[nodiscard]] std::optional<Millis> next_deadline() const { return timers_.next_deadline(); }

  const std::map<PublicKey, LinkId>& active() const { return active_; }
  bool is_active(const PublicKey& peer) const { return active_.count(peer) != 0; }
  std::optional<LinkId> link_of(const PublicKey& peer) const;
  std::size_t passive_size() const { return passive_.size(); }
  // Active peers whose link closed and that are being redialed (healing).
  std::size_t lost_size() const { return lost_.size(); }
  bool is_relay(const PublicKey& peer) const { return relays_.count(peer) != 0; }
  // The interval to the next shuffle after the last one (backed off while the set is stable).
  Millis shuffle_every() const { return shuffle_every_; }
  Millis explore_every() const { return explore_every_; }
  const std::map<PublicKey, std::string>& relays() const { return relays_; }
  // Whether a named relay holds the group, from its last hello (none: no hello since start).
  std::optional<bool> serving(const PublicKey& relay) const;

  // The first invariant that does not hold, or none (checked after every input in test builds).
  std::optional<std::string> invariant_violation() const;

 private:
  enum class Timer { shuffle, explore, count };

  std::size_t room() const;  // neighbours still wanted: target less active and asked
  void ask(const PublicKey& peer);
  void activate(const PublicKey& peer, LinkId link, const std::string& address);
  std::optional<PublicKey> pick_victim(Rng& rng) const;
  void consolidate(Millis now, Rng& rng, const MembershipLinks& links);
  void shed(Millis now, const PublicKey& victim, const MembershipLinks& links, Rng& rng);
  std::vector<PublicKey> alone_here(const MembershipLinks& links) const;
  void drop(Millis now, const PublicKey& victim, const MembershipLinks& links, Rng& rng);
  std::vector<PeerInfo> sample(std::size_t n, Rng& rng, const MembershipLinks& links) const;
  std::optional<PublicKey> random_active(Rng& rng) const;
  void keep_relay(Millis now, Rng& rng, const MembershipLinks& links);
  void redial_lost(Millis now, Rng& rng, const MembershipLinks& links);

  MembershipConfig config_;
  std::map<PublicKey, LinkId> active_;
  std::set<PublicKey> asked_;                                // neighbor requests in flight
  // Peers that refused our neighbor request (their active set was full): maintain does not ask
  // them again before `until`; the wait doubles with each refusal in a row, from
  // shuffle_interval_ms up to shuffle_interval_max_ms, so that a group whose set cannot fill
  // does not ask the same full peers every maintenance round. Entries go once a wait has passed
  // twice over, or when the peer's link closes; at most refusals_max (past it, none is added).
  struct Refusal {
    Millis until = 0;
    Millis wait = 0;
  };
  std::map<PublicKey, Refusal> refused_;
  void note_refusal(Millis now, const PublicKey& peer);
  // Consolidation (shed_hold_ms): the linked peer asked to take a single-use peer's place, and
  // the peers given up that way, with when their requests are taken again.
  std::optional<PublicKey> swap_;
  std::map<PublicKey, Millis> shed_;
  // Active peers whose link closed (healing, lost_redial_ms): redialed at `at`, then after
  // `wait` doubled, until a link to them is up or `until` passes.
  struct Lost {
    std::string address;
    Millis at = 0;
    Millis wait = 0;
    Millis until = 0;
  };
  std::map<PublicKey, Lost> lost_;
  std::map<std::string, std::optional<PublicKey>> passive_;  // address -> id when known
  std::map<PublicKey, std::string> relays_;                  // named by the group's state
  Millis relay_retry_at_ = 0;  // no new attempt to link a relay before this
  // Whether each relay linked since holds the group, from its last hello. Entries of relays no
  // longer named are ignored.
  std::map<PublicKey, bool> relay_serving_;
  std::set<std::string> dialed_;  // within maintain: addresses dialed by keep_relay
  TimerTable<Timer> timers_;
  std::deque<MembershipOutput> out_;
  // The shuffle's back-off: the interval after the last shuffle, and whether the active set
  // changed since (then the next shuffle goes back to the base interval).
  Millis shuffle_every_ = config_.shuffle_interval_ms;
  bool active_changed_ = true;
  // The same for explorations: the interval after the last one, and whether the active set
  // changed since.
  Millis explore_every_ = config_.explore_interval_ms;
  bool explore_changed_ = true;
};

}  // namespace qun
