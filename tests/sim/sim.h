// Simulation: many qun::Node engines in one process, on one virtual clock, over a simulated
// network of TCP-like connections. After TigerBeetle's packet simulator: every choice (keys,
// node randomness, latency, jitter, loss) derives from SimConfig::seed, so a seed reproduces a
// run exactly, and repro() prints the one command line that replays a failing test.
//
// The network model. A connection is a pair of ordered byte streams, like the TCP connections
// the real transport uses: bytes are never dropped, duplicated or reordered. A Send takes
// bytes / bandwidth to serialise (queued per direction), then latency +- jitter to arrive; with
// probability `loss` a chunk is "lost" and retransmitted after rto_ms, which delays it and
// everything after it on that direction (head-of-line blocking), again for each further loss.
// A Close reaches the peer after the bytes sent before it. Dials take connect_ms and fail (the
// dialer gets on_closed) when the target is offline or across a partition.
//
// NAT (issue 14). A node behind NAT (add_node_behind_nat) cannot be dialled; its own dials go
// out as usual. Of what a home router does, the kinds (Nat) that matter to a simultaneous open
// are modelled: a closed one (the node does not listen at all), one that keeps a LAN port's
// mapping for every destination (port_preserving: most home routers, Linux masquerade), and a
// symmetric one (a new public port per destination). With SimConfig::ip_addresses, a hole
// punch (node/punch.h: both ends dial each other from their listening ports, Dial::punch) opens
// one connection when both ends' NATs are port-preserving (or one end has none) and the two
// dials overlap: the first waits up to punch_syn_wait_ms for the second, as a SYN that a router
// dropped is retransmitted; both ends then get on_connected(outbound = true). A symmetric NAT
// on either end fails every punch. A node behind NAT may also have IPv6 without NAT
// (add_node_behind_nat's Ipv6): it dials IPv6 addresses, and may listen on address6(i) too.
//
// Calling contract. Single-threaded. The Simulation is the Node's driver (node/node.h): it feeds
// each input, drains poll(), then arms one timer for next_deadline(). Tests call the public
// functions between runs or from the delivery callback; the callback runs after the node that
// delivered has been drained, so it may publish, post, crash or partition. Programmer errors
// (an unknown node, a helper whose replica operation fails) throw std::logic_error with repro();
// a run that exceeds the step bounds (a livelock) throws std::runtime_error with repro().
//
// Ownership. The Simulation owns every Node, identity (at a stable address: Replica keeps a
// `const SigningKey*`) and in-memory "disk". Node& references are valid until that node
// crashes or restarts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/aead.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/rng.h"
#include "node/node.h"
#include "base/time.h"

namespace qun::sim {

// Bounds of one run call. A correct run of the largest test (1,000 nodes for minutes of virtual
// time) takes a few million steps; these only catch livelocks (a node re-arming its timer at
// `now` forever, two nodes ping-ponging without end) and turn them into a failure with a seed.
inline constexpr std::uint64_t steps_per_run_max = 500'000'000;
// Steps at one virtual millisecond: 1,000 nodes each handling a burst of messages at the same
// instant stays far below this.
inline constexpr std::uint64_t steps_same_ms_max = 20'000'000;
// Consecutive losses of one chunk: a TCP connection gives up after about this many retransmits
// (Linux tcp_retries2 is 15, but with exponential backoff; ours are constant rto_ms apart).
inline constexpr std::uint32_t retransmits_max = 8;
// Peer addresses handed to a node restarted from its disk (see restart()).
inline constexpr std::size_t restart_peer_hints_max = 4;
// Peer addresses each member of a big group gets (see create_big_group()).
inline constexpr std::size_t big_group_peer_hints_max = 4;
// The authors' wall clock at virtual time 0 (Unix ms, November 2023): event timestamps are
// sim_epoch_ms + now().
inline constexpr std::uint64_t sim_epoch_ms = 1'700'000'000'000;
// A punch dial into a port-preserving NAT waits this long for the other end's punch dial: Linux
// retransmits an unanswered SYN after 1 s and again 2 s later (tcp_syn_retries), so a router
// that opened its mapping within 3 s lets the retransmitted SYN through.
inline constexpr Millis punch_syn_wait_ms = 3'000;
// With SimConfig::ip_addresses, every node's listening port, and its public host: 20.A.B.C with
// A.B.C its index (a public IPv4 block, so reachability counts it as public). A node behind NAT
// listens on 10.A.B.C (a LAN address nobody else can reach) and its router's public host is
// 20.A.B.C; ephemeral source ports are from sim_ephemeral_port_first up, as Linux's.
inline constexpr std::uint16_t sim_listen_port = 7000;
inline constexpr std::uint16_t sim_ephemeral_port_first = 32768;
inline constexpr std::uint16_t sim_ephemeral_ports = 28232;  // 32768..60999
// Inbound connection ids are assigned by the driver from here up. node.cpp names its outbound
// ids from 2^62 up (node.h does not say so); the driver checks that the two never collide.
inline constexpr ConnId inbound_conn_first = 1;

struct SimConfig {
  std::uint64_t seed = 1;
  Millis latency_ms = 20;  // one way
  Millis jitter_ms = 10;   // latency is uniform in [latency - jitter, latency + jitter]
  double loss = 0.0;       // probability that one Send's chunk is lost and retransmitted
  Millis rto_ms = 200;     // retransmission delay per loss
  std::uint64_t bandwidth_bytes_per_s = 10'000'000;  // per direction of each connection
  Millis connect_ms = 40;                            // TCP + dial: about one round trip
  // Record every Delivered (node, group, event, time) in delivery_log(). Off for huge runs.
  bool record_deliveries = true;
  // Keep each node's Persist outputs so restart() can rebuild it. Off for huge runs.
  bool keep_disk = true;
  // For repro(): the Catch2 test name to filter on (set by tests; empty means all).
  std::string test_name;
  // Addresses are "HOST:PORT" IP literals (see sim_listen_port) instead of "sim:<i>", and each
  // end of a connection is told the other's address (Node::on_connected's `remote`: the
  // dialer's public host and source port), so reachability (observed addresses, dial-backs)
  // and hole punching run as on the internet. Off, addresses are "sim:<i>" and remote is empty.
  bool ip_addresses = false;
  // Receives every node's log records (node index first); null drops them.
  std::function<void(std::size_t node, const LogRecord& record)> log;
};

struct Delivery {
  std::size_t node;
  Hash group;
  Hash event;
  Millis at;
  // The node the event came from (Delivered::from); none when authored here or not a sim node.
  std::optional<std::size_t> from;
  bool operator==(const Delivery&) const = default;
};

struct SimStats {
  std::uint64_t steps = 0;
  std::uint64_t dials = 0;
  std::uint64_t dials_failed = 0;  // target offline, partitioned or not a sim address
  std::uint64_t connections = 0;   // established
  std::uint64_t sends = 0;
  std::uint64_t bytes_sent = 0;            // accepted for transmission
  std::uint64_t bytes_delivered = 0;       // handed to on_bytes
  std::uint64_t sends_dropped = 0;         // on a connection the sim already closed
  std::uint64_t arrivals_dropped = 0;      // in flight when a partition or crash cut the link
  std::uint64_t arrivals_after_close = 0;  // reached an end that had closed (normal for TCP)
  std::uint64_t retransmits = 0;
  std::uint64_t closes = 0;  // Close outputs
  std::uint64_t timers_fired = 0;
  std::uint64_t deliveries = 0;  // event ids in Delivered outputs
  std::uint64_t persists = 0;
  std::uint64_t punch_dials = 0;        // Dial::punch outputs
  std::uint64_t simultaneous_opens = 0;  // punch dials met: one connection (in `connections`)
  bool operator==(const SimStats&) const = default;
};

// A ServeAnswer some node emitted, and when.
struct ServeRecord {
  std::size_t node;
  node_output::ServeAnswer answer;
  Millis at;
};

// A group a node added (GroupAdded: a relay took it on) or dropped by itself (GroupDropped).
struct GroupChange {
  std::size_t node;
  Hash group;
  bool added;
  std::string reason;  // GroupDropped's
  Millis at;
};

// What stands between a node and the internet (see the network model above).
enum class Nat : std::uint8_t {
  none,             // dialled at its address
  closed,           // nobody can dial it, and it does not listen (no address of its own)
  port_preserving,  // nobody can dial it, but a simultaneous open gets through
  symmetric,        // nobody can dial it, and every punch fails
};

// A node's IPv6 beside its NAT (add_node_behind_nat): none; `dials`: it can dial IPv6 addresses
// but listens on IPv4 only (so it advertises none); `listens`: it also listens on address6(i),
// which any node with IPv6 dials.
enum class Ipv6 : std::uint8_t { none, dials, listens };

using DeliveryCallback = std::function<void(std::size_t node, const Hash& group,
                                            const std::vector<Hash>& ids, Millis now)>;

class Simulation {
 public:
  explicit Simulation(SimConfig config);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  const SimConfig& config() const { return config_; }

  // Nodes. add_node makes an identity from the sim's Rng, sets config.listen_address to
  // address(i) ("sim:<i>") and starts a Node with its own fork of the sim's Rng.
  std::size_t add_node(NodeConfig config = {});
  // A relay node: add_node with config.relay set. Its groups are keyless replicas (restart
  // rebuilds them with Replica(group, nullptr)). open_relay(): the config of a relay that takes
  // requests from anybody (relay_open), for tests about serving rather than about who may ask.
  std::size_t add_relay(NodeConfig config = open_relay());
  // A node behind NAT: every dial to it fails, as a home router drops what its LAN did not
  // open (but a hole punch through a port-preserving NAT); its own dials go out as usual.
  // Nat::closed: it does not listen (config.listen_address stays empty, so it advertises nothing
  // of its own and seeks a relay reservation, node/relayed.h). port_preserving and symmetric
  // need SimConfig::ip_addresses: it listens on its LAN address, learns its public one from its
  // peers, finds out by dial-back that it is behind NAT, then reserves on a relay and punches.
  // With `ipv6` (and ip_addresses), it also has address6(i), a global IPv6 address that no NAT
  // stands in front of, as many homes have (Ipv6).
  std::size_t add_node_behind_nat(NodeConfig config = {}, Nat nat = Nat::closed,
                                  Ipv6 ipv6 = Ipv6::none);
  static NodeConfig open_relay() {
    NodeConfig c;
    c.relay_open = true;
    return c;
  }
  std::size_t size() const { return hosts_.size(); }
  Node& node(std::size_t i);
  const SigningKey& identity(std::size_t i) const;
  // Where node i is dialled: "sim:<i>", or with ip_addresses "20.A.B.C:7000" (for a node
  // behind NAT, its router's public address, which only a punch gets through).
  std::string address(std::size_t i) const;
  // Node i's IPv6 address, "[2001:db8::A:B]:7000" (A:B: i in two 16-bit groups).
  std::string address6(std::size_t i) const;
  Nat nat(std::size_t i) const;
  bool online(std::size_t i) const;
  // The node whose identity is `id`, if any.
  std::optional<std::size_t> find(const PublicKey& id) const;

  // Virtual time.
  Millis now() const { return now_; }
  void run_for(Millis duration);
  void run_until(Millis deadline);
  // Steps until done() holds (checked before the first step and after each) or the deadline
  // passes; returns done(). Time ends at the step that made done() true, else at the deadline.
  bool run_until(const std::function<bool()>& done, Millis deadline);

  // Faults. partition() closes every connection between different sides (both ends get
  // on_closed now) and makes dials across sides fail until heal(). A node in no side is in a
  // side of its own. crash(i): the node vanishes; its peers get on_closed after latency, bytes
  // in flight to it are dropped, its disk survives. restart(i): a new Node with the same
  // identity and config, a new Rng fork, and every group rebuilt from its disk: Replica(group,
  // &identity), restore_key for each stored key, ingest(the stored events). Its peer hints are
  // the hints it was first given for the group plus up to restart_peer_hints_max online members
  // of the group (lowest index first), standing in for the passive peers a real node keeps.
  void partition(const std::vector<std::vector<std::size_t>>& sides);
  void heal();
  void crash(std::size_t i);
  void restart(std::size_t i);
  // stop(i) is SIGSTOP: node i handles no input (its timers, arrivals, flush reports and closes
  // wait), and bytes its peers send it are not reported flushed to them (as when its TCP receive
  // window and their send buffers are full; the buffers' few MiB are not modelled), so they
  // pile up unflushed at the senders. New dials to it fail. resume(i) (SIGCONT) replays what
  // waited, in order, and re-arms its timer.
  void stop(std::size_t i);
  void resume(std::size_t i);
  bool stopped(std::size_t i) const;

  // Membership helpers: each performs the operation on the replicas (authored with the node's
  // identity, its own test Rng and wall clock sim_epoch_ms + now()), then publishes or hands the
  // replica to the Node. They throw std::logic_error if the operation fails.
  //
  // create_group: the founder creates the group (settings default to members_can_invite, so any
  // member can be an inviter) and add_group()s it with no peers.
  Hash create_group(std::size_t founder, const std::string& name,
                    GroupSettings settings = {.history_visible = true, .members_can_invite = true});
  // join_group: the inviter invites (one use, publishes the invite); the joiner copies every
  // event of the inviter's replica (standing in for fetching them from the invite's peer hint),
  // joins, add_group()s with the inviter's address as hint, and publishes the join.
  void join_group(std::size_t node, std::size_t inviter, const Hash& group);
  // add_group: hands node i a replica as it is (Node::add_group), with peer hints; e.g. an empty
  // replica of a group whose id is all the node knows.
  void add_group(std::size_t i, std::unique_ptr<Replica> replica,
                 const std::vector<std::string>& hints);
  // publish: node i publishes events its replica already holds (Node::publish), e.g. events a
  // test authored or ingested by hand.
  void publish(std::size_t i, const Hash& group, const std::vector<Event>& events);
  // post: authors a post (and the rekey before it, if due) and publishes it; returns the ids.
  std::vector<Hash> post(std::size_t node, const Hash& group, const std::string& text);
  // upkeep: what node i's daemon authors on its own about once a second (Replica::upkeep:
  // invite closes, healing rekeys), published; returns the ids. Nothing if i lacks the group.
  std::vector<Hash> upkeep(std::size_t i, const Hash& group);
  // set_relay: node `admin` names node `relay` (at address(relay)) as a relay of the group, or
  // with active = false stops naming it; publishes the event and returns its id.
  Hash set_relay(std::size_t admin, const Hash& group, std::size_t relay, bool active = true);
  // request_serve: node `i` asks node `relay` (by its address), or whatever is at `address`, to
  // serve the group. The answer arrives as a ServeAnswer (serve_answers()).
  void request_serve(std::size_t i, const Hash& group, std::size_t relay);
  void request_serve(std::size_t i, const Hash& group, const std::string& address);
  // remove_group on node i (its disk keeps the group, as a daemon that only stops serving it).
  void remove_group(std::size_t i, const Hash& group);
  // A group of many members in one step: members[0] founds it and `add`s every other member
  // (one event each) in its replica; every member gets a copy of that replica made with
  // Replica::clone_for (no re-verification: ~1M signature checks for 1,000 members otherwise)
  // and add_group()s it with up to big_group_peer_hints_max hints: the founder and members
  // chosen by the sim's Rng. All replicas start identical, so the overlay carries only new events.
  // `relays` are named by the founder (relay events) before the copies are made, as an invite
  // code carries the group's relays: every member knows them from the start and keeps one as a
  // neighbour. They serve the group once asked (request_serve).
  Hash create_big_group(const std::vector<std::size_t>& members,
                        const std::vector<std::size_t>& relays = {});

  // Observation.
  void on_delivered(DeliveryCallback callback) { callback_ = std::move(callback); }
  const std::vector<Delivery>& delivery_log() const { return deliveries_; }
  const std::vector<ServeRecord>& serve_answers() const { return serve_answers_; }
  const std::vector<GroupChange>& group_changes() const { return group_changes_; }
  // Every byte node i's "disk" holds for a group: its stored events, concatenated (keys are
  // kept apart and not included). Empty if it stores nothing for the group.
  Bytes disk_bytes(std::size_t i, const Hash& group) const;
  bool disk_has(std::size_t i, const Hash& group) const;
  std::size_t disk_key_count(std::size_t i, const Hash& group) const;
  const SimStats& stats() const { return stats_; }
  // A digest of every action the loop took (time, kind, node, sizes): equal for equal runs.
  std::uint64_t trace_digest() const { return trace_; }
  // True when every online node holding `group` has the same heads (and at least one does).
  bool converged(const Hash& group) const;
  // The number of online nodes holding `group` whose replica has event `id`.
  std::size_t holders(const Hash& group, const Hash& id) const;

  // One command line that replays this run: QUN_SEED=<seed> <binary> "<test name>".
  std::string repro() const;

 private:
  struct Host;
  struct Action;
  struct GroupDisk;
  Host& host(std::size_t i);
  const Host& host(std::size_t i) const;
  [[noreturn]] void fail(const std::string& what) const;

  void schedule(Millis at, Action action);
  bool step(Millis deadline);
  void dispatch(Action& action);
  void start_node(std::size_t i);
  // Feeds one input (a call on the node) then drains outputs and re-arms the timer.
  template <typename F>
  void input(std::size_t i, F&& f);
  void drain(std::size_t i);
  void arm(std::size_t i);
  void flush_callbacks();
  void handle_dial(std::size_t i, ConnId conn, const std::string& address, bool punch);
  // The node an address names (npos if none).
  std::size_t target_of(std::string_view address) const;
  std::string public_host(std::size_t i) const;
  // A connection made by a punch dial of each end (both see it as their dial).
  void open_simultaneous(std::size_t a, ConnId a_conn, std::size_t b, ConnId b_conn);
  void handle_send(std::size_t i, ConnId conn, Bytes bytes);
  void handle_close(std::size_t i, ConnId conn);
  void handle_persist(std::size_t i, const node_output::Persist& p);
  void handle_delivered(std::size_t i, const node_output::Delivered& d);
  void handle_group_change(std::size_t i, const Hash& group, bool added, const std::string& why);
  // Takes both ends of a link out of the connection tables; the peer of `i` hears of it after
  // `delay` (0 for partitions, latency for crashes).
  void sever(std::size_t i, ConnId conn, bool notify_self, Millis delay);
  bool reachable(std::size_t a, std::size_t b) const;
  Millis one_way_delay_ms();
  void disk_add_replica(std::size_t i, const Replica& replica,
                        const std::vector<std::string>& peer_hints);
  Authoring authoring(std::size_t i);
  void mix(std::uint64_t v);

  SimConfig config_;
  Rng rng_;
  Millis now_ = 0;
  std::vector<std::unique_ptr<Host>> hosts_;
  std::map<PublicKey, std::size_t> by_id_;
  // The event queue: a binary heap of (time, sequence) over actions.
  std::vector<Action> queue_;
  std::uint64_t sequence_ = 0;
  std::uint64_t run_steps_ = 0;  // in the current run call
  Millis same_ms_at_ = 0;
  std::uint64_t same_ms_steps_ = 0;  // at virtual time same_ms_at_
  std::uint64_t next_link_ = 1;
  std::uint64_t next_dial_ = 1;
  // Side of each node while partitioned (empty when healed).
  std::vector<std::size_t> side_;
  // Links cut by partition or crash, to tell their lost bytes from bytes to a closed end.
  std::set<std::uint64_t> cut_links_;
  std::vector<Delivery> deliveries_;
  std::vector<ServeRecord> serve_answers_;
  std::vector<GroupChange> group_changes_;
  DeliveryCallback callback_;
  struct PendingCallback {
    std::size_t node;
    Hash group;
    std::vector<Hash> ids;
  };
  std::vector<PendingCallback> pending_callbacks_;
  bool flushing_ = false;
  SimStats stats_;
  std::uint64_t trace_ = 0xcbf29ce484222325;  // FNV-1a offset basis
};

// The seed for a test: QUN_SEED from the environment if set, else `fallback`.
std::uint64_t seed_from_env(std::uint64_t fallback);

}  // namespace qun::sim
