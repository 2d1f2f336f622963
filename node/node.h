// Node: one person's node as a sans-IO engine: its groups (Replicas), its connections (secure
// Links), and, per group, the overlay that spreads the group's events between the nodes that
// replicate it (members and relays).
//
// Per group, the node keeps a small active set of peers and a larger passive list of known
// peers, refreshed by shuffles (after HyParView); events spread by eager push along a tree and
// lazy announcements to the other active peers, repaired by grafts (after Plumtree); and peers
// reconcile on connect and periodically by exchanging heads (catch-up). Peer addresses travel
// only inside a group's links, which are encrypted; a node names the groups it holds to a link
// peer only as tags that a peer not knowing the group id cannot match.
//
// Calling contract (like quinn-proto's Connection):
//  - Feed inputs (on_connected, on_bytes, on_closed, on_tick, publish, add_group); after each,
//    drain poll() until it returns nullopt; then arm one timer for next_deadline().
//  - Time never goes backwards. An early or extra on_tick does nothing.
//  - After a Send output's bytes have been written to the transport (TCP: accepted by the
//    kernel), report them with on_flushed. The node keeps at most send_window_bytes of catch-up
//    unflushed per connection and closes a connection whose unflushed bytes pass
//    conn_queue_bytes_max (a peer that does not read).
//  - Inside, an input never re-enters the engine: handlers only queue messages on a connection,
//    and the queued bytes reach the links, and the Send outputs, once at the end of the input,
//    when the links' received messages are handled too; a close decided during the input (a
//    peer not reading, misbehaving) takes effect, as a Close output, at its end.
//  - Connection ids are the driver's: Dial outputs name a new id for an outbound connection
//    (numbered from 2^62 up); the driver assigns ids below 2^62 to inbound ones. Call on_closed
//    exactly once per id it learned of.
//  - add_group takes a replica as it is: the caller persists a new replica's events and keys
//    first (later changes come out as Persist). publish emits Delivered for the author's own
//    events within the call, like any other delivery.
//  - The node never reads a clock, a socket or global randomness: `now` is the driver's monotonic
//    ms, `wall_ms` (in publish) the author's Unix ms, and randomness comes from the injected Rng.
//
// Relays (docs/protocol.md, "Relays"). A group names its relays in relay events; every member
// keeps one of them in its active set where it can, so the relay holds everything members post
// and a member returning while the others are offline catches up from it. request_serve asks a
// relay to take a group on; a relay (NodeConfig::relay) answers, adds the group by itself
// (GroupAdded), catches it up from the requester, and drops it again (GroupDropped) if the
// requester turns out not to be an admin of the group. A relay keeps one group within
// relay_group_bytes_max by dropping its oldest posts' payloads (keeping their stubs), and refuses
// events only past relay_structure_factor times that.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "crypto/rng.h"
#include "node/file_lane.h"
#include "node/link.h"
#include "node/reachability.h"
#include "node/relay_bound.h"
#include "node/relay_service.h"
#include "node/punch.h"
#include "node/relayed.h"
#include "base/log.h"
#include "node/replica.h"
#include "base/time.h"
#include "node/wire.h"

namespace qun {

using ConnId = std::uint64_t;

// Inbound connections taken past OverlayConfig::connections_max only to hand the peer a sample
// of each group's peers (for the groups it may sync), then closed (docs/protocol.md, "A full node
// hands newcomers on"): GossipSub v1.1's peer exchange on PRUNE. Without it a newcomer whose only
// hints are full nodes (the founder and the relays of a large group, which every member links
// to) learns nobody else, and one behind NAT stays isolated. 32: every newcomer dials the same
// few full nodes at once; sim_bench --nodes 1000 --unreachable 0.8 --relays 4 --seed 1 delivered
// 61% of posts without it, 86% with 8 (279 members still without a neighbour when the posts
// began), 100% with 32 (134). Each costs a handshake and a connection's state for a few round
// trips.
inline constexpr std::size_t overflow_conns_max = 32;

struct OverlayConfig {
  // Active peers per group: enough for a connected overlay with a spanning tree plus lazy links
  // (HyParView uses log10(N)+1; 5 covers groups up to 10^4 nodes).
  std::size_t active_target = 5;
  std::size_t active_max = 7;
  // Known peers per group kept for repairs and new links.
  std::size_t passive_max = 32;
  // Peers exchanged in one shuffle.
  std::size_t shuffle_peers = 8;
  Millis shuffle_interval_ms = 10'000;
  // While a group's active set stays the same, its shuffle interval doubles after each shuffle
  // up to this (back to shuffle_interval_ms when the set changes). A shuffle and its answer are
  // about 1 KB, so a node in 100 settled groups sends about 100 KB per this interval, 310 B/s:
  // under a third of issue 13's idle budget of 1 KiB/s, with the passive lists still refreshed
  // every few minutes.
  Millis shuffle_interval_max_ms = 320'000;
  // Anti-entropy: every sync_interval_ms a group offers its heads to one active peer that has
  // not seen them (we offered them, or it offered the same heads), and on connect. When every
  // active peer is in step, nothing is sent, but an offer still goes out at least once per
  // sync_interval_max_ms, in case a request after an offer was lost with its link: about 150 B
  // per group, 63 B/s for 100 groups.
  Millis sync_interval_ms = 15'000;
  Millis sync_interval_max_ms = 240'000;
  // A link to one random passive peer is opened this often (it offers heads on connect): the
  // anti-entropy that reconnects the halves of a healed partition.
  Millis explore_interval_ms = 20'000;
  // While the group's active set stays the same, the exploration interval doubles after each
  // up to this, like the shuffle's (back to explore_interval_ms when the set changes, as when a
  // partition closes links). sim_bench --groups 40 --nodes 100 --group-max 60: at a fixed 20 s,
  // explorations made 63 links per node for 12 groups per node and most of the idle bytes.
  Millis explore_interval_max_ms = 320'000;
  // Groups prefer peers whose link other groups use, and a full set replaces a peer whose link
  // carries it alone with one of those (node/membership.h, shed_hold_ms). Off only to measure
  // what it saves (sim_bench --groups --no-share-links, tests/sim/many_groups_sim_test.cpp).
  bool share_links = true;
  // A lazily announced event not received by push within this time is grafted. An announcement
  // leaves ihave_delay_ms after its sender had the event, so a push on an intact tree is
  // normally in already. sim_bench --nodes 1000 --seed 1 --loss 0.01 --churn 0.1: p99 312 ms at
  // 100 against 380 at 300; without loss or churn (seed 5) 233 against 222 ms, but 1.199 copies
  // per delivery against 1.111 (a graft of a push that was only slow mends the template with a
  // cycle). iroh-gossip waits 80 ms, then 40.
  Millis graft_timeout_ms = 100;
  // A pushed event whose parents are missing asks its sender for them (a heads request) at once
  // (0), or this long after, when parents still on their way by push would be in. Waiting is
  // not better on the whole, so 0. sim_bench --nodes 1000 --overlay tree, at once against 300
  // ms (--pending-wait-ms): seed 1, 1.063 copies per delivery and p99 222 ms against 1.101 and
  // 230; seed 2, 1.209 copies waiting; seed 5, 1.199 and 233 ms (288 deliveries later than
  // 250 ms) against 1.098 and 226 ms (90), the latter on a variant that sent graft mends as
  // their own message. With 1% loss and 10% churn (seed 1): 1.346 and 312 ms against 1.356
  // and 318.
  Millis pending_wait_ms = 0;
  // Lazy announcements are batched this long. sim_bench (5 seeds at 100 nodes, 3 at 1,000, tree
  // optimisation off): 150 ms gave redundancy 1.10 / 1.23 and 3.9 / 4.4 bytes per payload byte,
  // against 1.21 / 1.25 and 4.5 / 4.8 at 50 ms, for p99 latency 402 / 735 ms against 421 / 605;
  // and on loopback (net_bench) it writes a third as many announcement messages.
  Millis ihave_delay_ms = 150;
  // Connections per node, both directions: bounds memory and file descriptors (256: a relay's
  // members each keep one link to it, and a person's node in 100 groups of 5 neighbours shares
  // most links across them). Past it, a few more inbound are taken only to hand the peer other
  // peers (overflow_conns_max).
  std::size_t connections_max = 256;
  // Maintenance period: fill the active set, expire dials.
  Millis maintenance_interval_ms = 1'000;
  Millis dial_timeout_ms = 10'000;
  // A misbehaving peer is refused for this long.
  Millis ban_ms = 10 * 60'000;
  // Event copies a peer may push that we already had, per window, before its link is pruned
  // (made lazy) and the copies are counted in NodeStats::duplicate_prunes. Never a ban: an honest
  // forwarder sends duplicates on every redundant link (under raw push, on all of them).
  std::size_t duplicates_per_window_max = 5'000;
  Millis duplicate_window_ms = 10'000;
  // Per-author rate bounds, per group: a member's new events past them are neither stored nor
  // forwarded, counted (NodeStats::events_over_rate) and logged once a minute per author,
  // unless another member's event names them as parents (docs/protocol.md, "Rate bounds").
  // Pushed events are metered by arrival; catch-up (events we asked for) by the times the
  // author claims, so a long history posted while we were away arrives at once. 20 a second
  // with a burst of 200: a fast typist sends a few posts a second, a paste of many lines or a
  // bridge replaying a channel a few hundred at once, a legitimate bot (alerts, a bridge) well
  // under 20 a second over time; issue 10's flood ran at 6,500 a second.
  std::uint32_t author_events_per_s = 20;
  std::uint32_t author_burst_events = 200;
  // Events with no hop count from a peer count as catch-up (metered by claimed time) when we
  // asked that peer for events (heads request or graft) within this time; otherwise as pushes.
  // Long enough for a send window of catch-up batches at a slow peer's pace.
  Millis catch_up_solicited_ms = 60'000;
  // Catch-up bytes in flight per connection: enough to keep a 100 Mbit/s, 100 ms path busy.
  std::size_t send_window_bytes = 2 * 1024 * 1024;
  // Unflushed bytes past which a peer counts as not reading and is disconnected.
  std::size_t conn_queue_bytes_max = 32 * 1024 * 1024;
  // Plumtree's optimisation: when a lazy peer announces an event at least this many hops closer
  // to its author than the path it came by, that peer becomes eager and the old one lazy, in that
  // author's tree. 0 turns it off, the default. Measured when one tree was shared by every author
  // (a swap that shortened one author's path lengthened others', and swaps made on both ends of a
  // link left cycles): sim_bench with it at 4 against off, redundancy 1.23 against 1.21 at 100
  // nodes, 1.61 against 1.25 at 1,000 (ihave_delay_ms 50). Per-author trees: see sim_bench
  // --optimize-hops.
  std::uint32_t tree_optimize_hops = 0;
  // A broadcast tree per author (node/broadcast.h); false: one tree shared by every author.
  // sim_bench --nodes 1000, seed 1: p99 18 hops (ideal 6) and 582 ms shared, 11 and 219 per
  // author (flooding: 113 ms), redundancy 1.17 against 1.07.
  bool tree_per_author = true;
  // A new author's tree starts with every neighbour eager (its first event floods, as in
  // Plumtree), instead of as a copy of the first author's tree: 4.6 copies per delivery in
  // sim_bench at 1,000 nodes, where most posts are their author's first.
  bool new_tree_floods = false;
  // Nodes fewer than this many links from a new author start its tree with every neighbour
  // eager (BroadcastConfig). sim_bench --nodes 1000 --seed 1 (flooding's p99: 113 ms): 0 gave
  // p99 281 ms and redundancy 1.050; 1 (the author) 258 ms, 1.077; 2 (the author and its
  // neighbours) 219 ms, 1.069; 3: 214 ms, 1.193.
  std::uint32_t new_tree_flood_hops = 2;
  // Naive flooding instead of the tree: push every event to every active peer and never prune.
  // Only for benchmarks, as the baseline the tree is measured against.
  bool flood = false;
  // Active peers per group on a relay. Every member tries to keep a link to one of its group's
  // relays, so a relay takes in many more neighbours than a member would (active_max).
  std::size_t relay_active_max = 64;
  // After a named relay could not be linked (refused, unreachable), a member waits this long
  // before trying a relay of that group again.
  Millis relay_retry_ms = 10'000;
};

// How long request_serve waits for the relay's answer (dial, handshake and reply): a link comes
// up within handshake_timeout_ms, and the relay answers at once.
inline constexpr Millis serve_timeout_ms = 10'000;
// Events another member's event needs as parents (vouched) pass their author's rate bound
// (OverlayConfig::author_events_per_s), up to this many times that bound again, metered by
// arrival. In an honest group the vouched events of an author are those that other nodes stored
// within their own bound, a few times it at most; the cap keeps a member (or a former member's
// key) from laundering a flood through one event that names it as parents.
inline constexpr std::uint64_t vouched_rate_factor = 4;

struct NodeConfig {
  std::string listen_address;  // how others reach this node; empty if it cannot be reached
  // Further addresses others may dial this node at, after listen_address (node/addresses.h):
  // each global IPv6 address it listens on, beside an IPv4 one. At most addresses_max - 1 are
  // advertised.
  std::vector<std::string> other_addresses;
  std::string network_id = "qun";
  bool relay = false;          // a relay stores and forwards groups it cannot read
  // Relay only: groups it serves at most (also bounded by wire_limits::groups_max, the tags a
  // hello can carry), and the stored bytes (encoded events and stubs, and those waiting for
  // parents) of one group past which it drops its oldest posts' payloads.
  std::size_t relay_groups_max = 100;
  std::uint64_t relay_group_bytes_max = std::uint64_t{1} << 30;
  // Relay only: who may claim group slots. A serve request from a key in relay_allow (an admin
  // the operator trusts) is taken on at once; any other is refused and kept in a bounded list
  // (serve_waiting) until the operator approves it (approve_serve, allow_requester). An open
  // relay (relay_open) takes requests from anybody, as before this rule.
  std::set<PublicKey> relay_allow;
  bool relay_open = false;
  // Relay only: groups one requester may have served here at once (its quota): ten communities
  // per admin is generous for a person and keeps one allowed key from taking every slot.
  std::size_t relay_groups_per_requester_max = 10;
  // Relay only: relayed links it carries at once, and bytes per relayed link
  // (node/relayed.h, docs/relay.md).
  std::size_t relayed_links_max = relayed_limits::relayed_links_max_default;
  std::uint64_t relayed_link_bytes_max = relayed_limits::relayed_link_bytes_max_default;
  OverlayConfig overlay;
  // Check the node's invariants (invariant_violation) after every input and abort, naming the
  // one broken, if one does not hold: a bug caught where it happens. On by default, so every
  // node test and simulator run checks them; `qun node` turns it off (it about triples an idle
  // node's CPU) unless QUN_CHECK_INVARIANTS=1 is in its environment, as the integration tests
  // set it.
  bool check_invariants = true;
};

// Outputs, drained in order from poll().
namespace node_output {
struct Dial {  // open a connection to address and report it with on_connected(conn, true)
  ConnId conn;
  std::string address;
  // A hole punch (node/punch.h): dial from the listening port, at once (no backoff), for a
  // simultaneous open with a peer dialling this node at the same moment.
  bool punch = false;
};
struct Send {
  ConnId conn;
  Bytes bytes;
};
struct Close {  // close the connection; do not call on_closed for it afterwards
  ConnId conn;
};
struct Persist {  // write these to the store (group_store.h persist), in this order
  Hash group;
  IngestReport report;
  std::vector<BundleKey> keys;
};
struct Delivered {  // events newly accepted into a group's history (for UIs), in order
  Hash group;
  std::vector<Hash> events;
  std::optional<PublicKey> from;  // the peer they came from; none when authored here
};
struct ServeAnswer {  // the outcome of one request_serve
  Hash group;
  std::string address;             // as passed to request_serve
  std::optional<PublicKey> relay;  // the identity that answered, once a link came up
  bool accepted;
  std::string reason;  // when refused: the relay's words, or this node's ("timed out", ...)
};
struct GroupAdded {  // this relay took on a group: record it (its events follow as Persist)
  Hash group;
};
struct GroupDropped {  // the node dropped a group by itself: delete its data
  Hash group;
  std::string reason;
};
struct FileMessage {  // a file-lane message (wire::Blob*) from a peer sharing its group
  PublicKey peer;
  WireMessage message;
};
struct FileLaneReady {  // the lane to peer has room again after send_file refused one
  PublicKey peer;
};
}  // namespace node_output
using NodeOutput = std::variant<node_output::Dial, node_output::Send, node_output::Close,
                                node_output::Persist, node_output::Delivered,
                                node_output::ServeAnswer, node_output::GroupAdded,
                                node_output::GroupDropped, node_output::FileMessage,
                                node_output::FileLaneReady>;

// Counters for tests, benchmarks and `qun status`.
struct NodeStats {
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t events_sent = 0;             // event copies sent to peers (pushes and catch-up)
  std::uint64_t events_received = 0;         // event copies received from peers
  std::uint64_t events_duplicate = 0;        // ... of which we already had
  std::uint64_t events_rejected = 0;         // ... failing admission
  std::uint64_t messages_malformed = 0;
  std::uint64_t links_closed_misbehaving = 0;
  // Samples of a group's peers handed to a node taken past connections_max (then closed).
  std::uint64_t peers_handed_on = 0;
  std::uint64_t grafts_sent = 0;   // lazily announced events fetched (or links re-grafted)
  std::uint64_t prunes_sent = 0;   // eager links demoted after a duplicate push
  std::uint64_t tree_swaps = 0;    // eager links traded for a markedly shorter lazy one
  std::uint64_t tree_attaches = 0;  // asked a neighbour to attach us to its template tree
  std::uint64_t events_refused_full = 0;  // relay: events refused past relay_structure_factor times relay_group_bytes_max
  std::uint64_t payloads_dropped = 0;     // relay: post payloads dropped (stubs kept) past the bound
  std::uint64_t serves_accepted = 0;      // relay: serve requests accepted
  std::uint64_t serves_refused = 0;       // serve requests refused (full, not a relay, ...)
  std::uint64_t groups_dropped = 0;       // relay: groups dropped after probation
  std::uint64_t serves_waiting = 0;       // relay: requests kept for the operator's approval
  // Pending events (waiting for parents) dropped: past a bound, or because their sender went.
  std::uint64_t events_pending_dropped = 0;
  std::uint64_t duplicate_prunes = 0;     // links pruned for pushing too many duplicates
  std::uint64_t events_former_author = 0;  // dropped: by a former member, needed by nobody
  std::uint64_t events_over_rate = 0;      // dropped: past their author's rate bound
  std::uint64_t direct_offers_taken = 0;    // direct groups offered and fetched (node/direct.h)
  std::uint64_t direct_offers_refused = 0;  // ... dropped: blocked, stranger, bounds, failed check
};

class Node {
 public:
  Node(NodeConfig config, const SigningKey& self, Rng rng, LogSink log = null_log_sink());
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const PublicKey& id() const;
  const NodeConfig& config() const { return config_; }

  // The first of the node's invariants (node.cpp, invariant_violation) that does not hold now,
  // or none: for tests, in any build.
  std::optional<std::string> invariant_violation() const;
  const NodeStats& stats() const { return stats_; }
  // Observed addresses, dial-back verdicts and what this node advertises (node/reachability.h).
  // Of the family of NodeConfig::listen_address.
  const Reachability& reachability() const;
  // Of the other family (IPv6 beside IPv4, or IPv4 beside IPv6), when other_addresses has an
  // address in it; else null. Each family is checked on its own: a home may be reachable on
  // IPv6 and behind NAT on IPv4.
  const Reachability* reachability_other() const;
  // Every address this node advertises, in hellos and shuffles (node/addresses.h): its public,
  // relayed or listen address first, then its other addresses (NodeConfig::other_addresses).
  std::vector<std::string> advertised_addresses() const;
  // Reservations, relayed links and, on a relay, splices (node/relayed.h).
  const RelayedLinks& relayed() const;
  // Hole punches over relayed links (node/punch.h).
  const HolePunch& punch() const;

  // Adds a group this node replicates (created, joined, or loaded from the store), with
  // addresses of nodes that hold it (invite hints, relays). Starts replicating it.
  void add_group(Millis now, std::unique_ptr<Replica> replica,
                 const std::vector<std::string>& peer_addresses);
  // Adds a group rebuilt from what still read of a damaged store (`qun group repair`). What was
  // kept may lack the events that made its peers members, so until this node stops the group
  // may sync with `former_peers` (the peers it was linked to for the group, saved by the
  // daemon) and with any peer it dials itself (the addresses given, the passive list, relays);
  // other peers that dial it are judged by the group's state as always.
  void add_repaired_group(Millis now, std::unique_ptr<Replica> replica,
                          const std::vector<std::string>& peer_addresses,
                          const std::vector<PublicKey>& former_peers);
  void remove_group(Millis now, const Hash& group);
  Replica* group(const Hash& id);
  const Replica* group(const Hash& id) const;
  std::vector<Hash> groups() const;
  // Adds addresses to a group's passive list (e.g. relays named by the group).
  void add_peers(Millis now, const Hash& group, const std::vector<std::string>& addresses);

  // Asks the relay at relay_address to store and forward `group` (which this node holds): dials
  // it (or reuses a link to that address), sends Serve once the link is up, and on acceptance
  // offers the relay its heads so that it catches up. Exactly one ServeAnswer follows, within
  // serve_timeout_ms: the relay's answer, or a refusal of this node's own ("this node does not
  // hold the group", "could not connect", "connection closed", "timed out"). A second call for
  // the same group and address while one is in flight is ignored (its answer serves both).
  void request_serve(Millis now, const Hash& group, const std::string& relay_address);

  // Relay: serve requests awaiting the operator's approval, oldest first.
  std::vector<ServeWaiting> serve_waiting() const;
  // Relay: the operator approves the waiting requests for `group`: the relay takes it on now
  // (on probation as any request: dropped if no requester turns out to be an admin), and dials
  // the requesters if they are not linked. Errors: not_found (no request for that group waits),
  // too_large (the relay serves relay_groups_max groups already).
  [[nodiscard]] Result<void> approve_serve(Millis now, const Hash& group);
  // Relay: adds `requester` to the allow-list and takes on what it asked for and waits (within
  // its quota and the relay's slots). Returns the groups taken on.
  std::vector<Hash> allow_requester(Millis now, const PublicKey& requester);
  // Relay: the allow-list (the config's plus those allowed since).
  const std::set<PublicKey>& relay_allowed() const;

  // A group's replica, already added, started holding an invite (Replica::hold_invite on a
  // group this node left or was removed from): shows the invite (wire::Holder) to every linked
  // peer that holds the group, so that peers which shun former members sync with it again.
  void announce_invite(Millis now, const Hash& group);

  // Files (node/transfer.h): queues a file-lane message (wire::Blob*) for `peer`, which must be
  // linked and share the message's group. It goes out behind every other message
  // (node/file_lane.h). Errors: not_found (no such link, or the group is not shared on it);
  // too_large (the lane is full: FileLaneReady{peer} follows when it has room).
  [[nodiscard]] Result<void> send_file(Millis now, const PublicKey& peer, const WireMessage& m);
  // Linked peers that share `group`: whom to ask for its blobs. Sorted.
  std::vector<PublicKey> linked_peers(const Hash& group) const;
  // Direct groups (node/direct.h): offers from `key`, and direct groups whose other member is
  // `key`, are refused while it is blocked (`qun dm block`). The driver removes direct groups
  // with a key it blocks; blocking changes nothing already held. Unblocking sends every link a
  // new hello, which peers holding a direct group with us answer with an offer.
  void set_blocked(Millis now, const PublicKey& key, bool blocked);
  const std::set<PublicKey>& blocked() const;

  // Events this node authored (already ingested by the Replica): persist and spread them.
  void publish(Millis now, const Hash& group, const std::vector<Event>& events);

  // remote: the socket's peer address ("HOST:PORT") when the driver knows it; the node tells
  // the peer what it sees (node/reachability.h) and dials back there when asked.
  void on_connected(Millis now, ConnId conn, bool outbound, const std::string& remote = {});
  void on_bytes(Millis now, ConnId conn, ByteView bytes);
  void on_closed(Millis now, ConnId conn);
  void on_flushed(Millis now, ConnId conn, std::size_t bytes);
  void on_tick(Millis now);

  [[nodiscard]] std::optional<NodeOutput> poll();
  [[nodiscard]] std::optional<Millis> next_deadline() const;

  // Introspection for status, tests and the simulator.
  struct PeerStatus {
    ConnId conn;
    std::optional<PublicKey> id;
    std::string address;
    bool outbound;
    bool established;
    std::uint64_t bytes_sent;
    std::uint64_t bytes_received;
    std::optional<PublicKey> via;  // the relay a relayed link goes through; none when direct
  };
  std::vector<PeerStatus> peers() const;
  std::vector<PublicKey> active_peers(const Hash& group) const;
  // The group's active peers a new author's events are pushed to (Broadcast::template_peers),
  // for the simulator's checks.
  std::vector<PublicKey> template_peers(const Hash& group) const;
  std::size_t passive_size(const Hash& group) const;
  // The relays the group names (its resolved relay events): identity -> address.
  std::map<PublicKey, std::string> relays(const Hash& group) const;
  // What this node knows of each relay the group names: whether a link to it is up, and
  // whether it holds the group, from the last hello it sent (none before any hello: never linked
  // since start). A relay that drops the group sends a hello without it, so `serving` turns false.
  struct RelayStatus {
    PublicKey id;
    std::string address;
    bool linked = false;
    std::optional<bool> serving;
  };
  std::vector<RelayStatus> relay_status(const Hash& group) const;
  // Stored bytes of a group: the encoded size of every event admitted (on a relay, what
  // relay_group_bytes_max bounds). 0 for an unknown group.
  std::uint64_t group_bytes(const Hash& group) const;
  // Events of a group this relay refused past relay_structure_factor times
  // relay_group_bytes_max (since start).
  std::uint64_t group_events_refused(const Hash& group) const;
  // Posts of a group whose payload this relay dropped past relay_group_bytes_max, keeping their
  // stubs (since start).
  std::uint64_t group_payloads_dropped(const Hash& group) const;

 private:
  struct Impl;
  NodeConfig config_;
  NodeStats stats_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qun
