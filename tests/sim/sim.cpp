#include "tests/sim/sim.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <utility>

#include "node/event.h"
#include "node/reachability.h"

namespace qun::sim {

// One node's "disk" for one group: what its Persist outputs (and the helpers that hand it a
// replica) wrote. Events are kept encoded, as a store would; duplicates are harmless (ingest
// ignores them), so nothing is de-duplicated.
struct Simulation::GroupDisk {
  // Events written once for every member of a big group, shared instead of copied per member.
  std::shared_ptr<const std::vector<Bytes>> base;
  std::vector<Bytes> events;
  // Where each event persisted through handle_persist sits in `events`, so that a dropped (or
  // restored) payload replaces its stored form as the store's replace_event does.
  std::map<Hash, std::size_t> event_at;
  std::map<std::pair<std::uint64_t, Hash>, SymmetricKey> keys;
  std::vector<std::string> peer_hints;
};

struct Simulation::Host {
  explicit Host(Rng rng) : author_rng(std::move(rng)) {}

  // One end of a connection. The direction from this end to the peer is modelled here: when
  // its wire is free again, and when its last chunk arrives (nothing arrives before that).
  struct Conn {
    std::size_t peer;
    ConnId peer_conn;
    std::uint64_t link;  // unique per connection, so stale actions are ignored
    std::uint64_t wire_free_us = 0;
    Millis last_arrival_ms = 0;
    bool dead = false;  // severed: on_closed is on its way, bytes are dropped
  };

  NodeConfig config;
  Nat nat = Nat::none;  // dials to it fail unless none (add_node_behind_nat)
  bool ipv6 = false;    // it has address6(i), which no NAT stands in front of (Ipv6)
  std::unique_ptr<SigningKey> identity;
  std::unique_ptr<Node> node;  // null while crashed
  Rng author_rng;              // for the helpers' authoring (invite, join, post)
  std::optional<Millis> timer_at;
  std::uint64_t timer_generation = 0;
  ConnId next_inbound = inbound_conn_first;
  std::map<ConnId, Conn> conns;
  struct Dialing {
    std::uint64_t token;  // of its connect action
    std::size_t target;   // npos for an address that is no node
    bool punch;           // Dial::punch
    bool v6 = false;      // to the target's IPv6 address: no NAT on the way
  };
  std::map<ConnId, Dialing> dialing;  // outbound connections not yet up
  std::map<Hash, GroupDisk> disk;
  bool stopped = false;
  std::vector<Action> held;  // actions that arrived while stopped, replayed by resume()
};

struct Simulation::Action {
  enum class Kind : std::uint8_t { tick, connect, arrive, closed, flushed };
  Millis at = 0;
  std::uint64_t sequence = 0;
  Kind kind = Kind::tick;
  std::size_t node = 0;
  ConnId conn = 0;
  // tick: the timer generation; connect: the dial token; arrive and closed: the link.
  std::uint64_t token = 0;
  std::size_t target = 0;  // connect: the node dialed (npos for an address that is no node)
  bool retry = false;      // connect: a punch dial's second look, punch_syn_wait_ms later
  Bytes bytes;             // arrive
};

namespace {

constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

// Min-heap order on (time, sequence): equal times resolve in insertion order.
template <typename A>
bool later(const A& a, const A& b) {
  return a.at != b.at ? a.at > b.at : a.sequence > b.sequence;
}

std::optional<std::size_t> parse_address(std::string_view address) {
  constexpr std::string_view prefix = "sim:";
  if (address.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view digits = address.substr(prefix.size());
  std::size_t index = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
    return std::nullopt;
  }
  return index;
}

}  // namespace

std::uint64_t seed_from_env(std::uint64_t fallback) {
  const char* s = std::getenv("QUN_SEED");
  return s ? std::strtoull(s, nullptr, 10) : fallback;
}

Simulation::Simulation(SimConfig config)
    : config_(std::move(config)), rng_(Rng::from_u64(config_.seed)) {
  if (config_.jitter_ms > config_.latency_ms) fail("jitter_ms must not exceed latency_ms");
  if (config_.bandwidth_bytes_per_s == 0) fail("bandwidth_bytes_per_s must be positive");
  if (!(config_.loss >= 0.0 && config_.loss < 1.0)) fail("loss must be in [0, 1)");
  // Thousands of in-process nodes cannot each hold guarded pages (see crypto/secret.h).
  set_secret_memory_guarded(false);
}

Simulation::~Simulation() = default;

Simulation::Host& Simulation::host(std::size_t i) {
  if (i >= hosts_.size()) fail("no node " + std::to_string(i));
  return *hosts_[i];
}

const Simulation::Host& Simulation::host(std::size_t i) const {
  if (i >= hosts_.size()) fail("no node " + std::to_string(i));
  return *hosts_[i];
}

void Simulation::fail(const std::string& what) const {
  throw std::logic_error("simulation: " + what + "\n  reproduce: " + repro());
}

std::string Simulation::repro() const {
  const char* dir = std::getenv("QUN_TEST_BIN_DIR");
  std::string binary = dir ? std::string(dir) + "/qun_sim_tests" : std::string("qun_sim_tests");
  return "QUN_SEED=" + std::to_string(config_.seed) + " " + binary + " \"" + config_.test_name +
         "\"";
}

void Simulation::mix(std::uint64_t v) {
  for (int b = 0; b < 8; ++b) {
    trace_ ^= (v >> (8 * b)) & 0xff;
    trace_ *= 0x100000001b3;  // FNV-1a 64-bit prime
  }
}

// --- nodes -----------------------------------------------------------------------------------

std::size_t Simulation::add_node(NodeConfig config) {
  const std::size_t i = hosts_.size();
  auto h = std::make_unique<Host>(rng_.fork());
  h->identity = std::make_unique<SigningKey>(SigningKey::generate(rng_));
  h->config = std::move(config);
  by_id_.emplace(h->identity->public_key(), i);
  hosts_.push_back(std::move(h));
  hosts_.back()->config.listen_address = address(i);
  if (!side_.empty()) side_.push_back(npos);  // a node added while partitioned: its own side
  start_node(i);
  return i;
}

std::size_t Simulation::add_node_behind_nat(NodeConfig config, Nat nat, Ipv6 ipv6) {
  if (ipv6 != Ipv6::none && !config_.ip_addresses) fail("a node with IPv6 needs ip_addresses");
  if (nat == Nat::none) fail("add_node_behind_nat with Nat::none");
  if (nat != Nat::closed && !config_.ip_addresses) fail("a NAT that can be punched needs ip_addresses");
  const std::size_t i = add_node(std::move(config));
  Host& h = host(i);
  h.nat = nat;
  if (nat == Nat::closed) {
    h.config.listen_address.clear();
  } else {
    // Its LAN address: 10.A.B.C, as its public host is 20.A.B.C.
    h.config.listen_address = "10" + public_host(i).substr(2) + ":" + std::to_string(sim_listen_port);
  }
  if (ipv6 != Ipv6::none) {
    h.ipv6 = true;
    if (ipv6 == Ipv6::listens) h.config.other_addresses = {address6(i)};
  }
  start_node(i);  // again, with the config for its place behind the router
  return i;
}

std::size_t Simulation::add_relay(NodeConfig config) {
  config.relay = true;
  return add_node(std::move(config));
}

void Simulation::start_node(std::size_t i) {
  Host& h = host(i);
  LogSink log = null_log_sink();
  if (config_.log) {
    log = [this, i](const LogRecord& r) { config_.log(i, r); };
  }
  h.node = std::make_unique<Node>(h.config, *h.identity, rng_.fork(), std::move(log));
  arm(i);
}

Node& Simulation::node(std::size_t i) {
  Host& h = host(i);
  if (!h.node) fail("node " + std::to_string(i) + " is crashed");
  return *h.node;
}

const SigningKey& Simulation::identity(std::size_t i) const { return *host(i).identity; }

std::string Simulation::address(std::size_t i) const {
  (void)host(i);
  if (!config_.ip_addresses) return "sim:" + std::to_string(i);
  return public_host(i) + ":" + std::to_string(sim_listen_port);
}

std::string Simulation::public_host(std::size_t i) const {
  return "20." + std::to_string((i >> 16) & 0xff) + "." + std::to_string((i >> 8) & 0xff) + "." +
         std::to_string(i & 0xff);
}

Nat Simulation::nat(std::size_t i) const { return host(i).nat; }

std::string Simulation::address6(std::size_t i) const {
  (void)host(i);
  char hex[32];
  std::snprintf(hex, sizeof hex, "%zx:%zx", (i >> 16) & 0xffff, i & 0xffff);
  // One spelling per address (parse_host_port's), as the node compares its own addresses.
  return parse_host_port("[2001:db8::" + std::string(hex) + "]:" + std::to_string(sim_listen_port))->str();
}

std::size_t Simulation::target_of(std::string_view address) const {
  if (!config_.ip_addresses) return parse_address(address).value_or(npos);
  if (!address.empty() && address.front() == '[') {  // a node with IPv6, at address6
    for (std::size_t i = 0; i < hosts_.size(); ++i)
      if (hosts_[i]->ipv6 && address6(i) == address) return i;
    return npos;
  }
  // "20.A.B.C:7000" only: a LAN address (10.*) or another port leads nowhere.
  const std::string prefix = "20.";
  const std::string suffix = ":" + std::to_string(sim_listen_port);
  if (address.size() <= prefix.size() + suffix.size() || address.substr(0, prefix.size()) != prefix ||
      address.substr(address.size() - suffix.size()) != suffix)
    return npos;
  std::string_view rest = address.substr(prefix.size(), address.size() - prefix.size() - suffix.size());
  std::size_t index = 0;
  for (int part = 0; part < 3; ++part) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec != std::errc() || end == rest.data() || value > 255) return npos;
    index = (index << 8) | value;
    rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
    if (part < 2) {
      if (rest.empty() || rest.front() != '.') return npos;
      rest.remove_prefix(1);
    }
  }
  if (!rest.empty()) return npos;
  return index;
}

bool Simulation::online(std::size_t i) const { return host(i).node != nullptr; }

std::optional<std::size_t> Simulation::find(const PublicKey& id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

// --- the loop --------------------------------------------------------------------------------

void Simulation::schedule(Millis at, Action action) {
  action.at = std::max(at, now_);
  action.sequence = sequence_++;
  queue_.push_back(std::move(action));
  std::push_heap(queue_.begin(), queue_.end(), later<Action>);
}

bool Simulation::step(Millis deadline) {
  if (queue_.empty() || queue_.front().at > deadline) return false;
  std::pop_heap(queue_.begin(), queue_.end(), later<Action>);
  Action action = std::move(queue_.back());
  queue_.pop_back();
  if (action.at != same_ms_at_) {
    same_ms_at_ = action.at;
    same_ms_steps_ = 0;
  }
  now_ = action.at;
  ++stats_.steps;
  if (++run_steps_ > steps_per_run_max || ++same_ms_steps_ > steps_same_ms_max) {
    throw std::runtime_error("simulation: step bound exceeded at t=" + std::to_string(now_) +
                             " ms (a livelock?)\n  reproduce: " + repro());
  }
  mix(action.at);
  mix(static_cast<std::uint64_t>(action.kind));
  mix(action.node);
  mix(action.conn);
  mix(action.bytes.size());
  dispatch(action);
  return true;
}

void Simulation::dispatch(Action& a) {
  Host& h = host(a.node);
  if (!h.node) {
    // Crashed: whatever was on its way is gone. (Peers learn of the crash through sever.)
    if (a.kind == Action::Kind::arrive) ++stats_.arrivals_dropped;
    return;
  }
  if (h.stopped) {
    // Stopped: nothing is handled until resume(); its timer is re-armed then.
    if (a.kind != Action::Kind::tick) h.held.push_back(std::move(a));
    return;
  }
  if (a.kind == Action::Kind::flushed) {
    // Bytes to a stopped peer stay in the pipe: the sender hears of them once it resumes.
    auto c = h.conns.find(a.conn);
    if (c != h.conns.end() && c->second.peer < hosts_.size() && hosts_[c->second.peer]->stopped) {
      hosts_[c->second.peer]->held.push_back(std::move(a));
      return;
    }
  }
  switch (a.kind) {
    case Action::Kind::tick:
      if (a.token != h.timer_generation) return;  // re-armed since: stale
      h.timer_at.reset();
      ++stats_.timers_fired;
      input(a.node, [&](Node& n) { n.on_tick(now_); });
      return;
    case Action::Kind::connect: {
      auto d = h.dialing.find(a.conn);
      if (d == h.dialing.end() || d->second.token != a.token) return;  // closed while dialing
      const bool punch = d->second.punch;
      const bool v6 = d->second.v6;
      const bool up = a.target != npos && a.target < hosts_.size() && online(a.target) &&
                      !host(a.target).stopped && reachable(a.node, a.target);
      if (up && punch && host(a.target).nat != Nat::none && host(a.target).nat != Nat::closed) {
        // Into a NAT: only a simultaneous open, with the target's punch dial to this node,
        // through NATs that keep the listening port on both ends.
        const bool ports_kept = host(a.target).nat == Nat::port_preserving && h.nat != Nat::symmetric;
        Host& t = host(a.target);
        auto other = std::find_if(t.dialing.begin(), t.dialing.end(), [&](const auto& e) {
          return e.second.punch && e.second.target == a.node;
        });
        if (ports_kept && other != t.dialing.end()) {
          const ConnId other_conn = other->first;
          t.dialing.erase(other);
          h.dialing.erase(d);
          open_simultaneous(a.node, a.conn, a.target, other_conn);
          return;
        }
        if (ports_kept && !a.retry) {  // the SYN is retransmitted: one more look later
          Action again = a;
          again.retry = true;
          schedule(now_ + punch_syn_wait_ms, std::move(again));
          return;
        }
      }
      h.dialing.erase(d);
      const bool ok = up && (host(a.target).nat == Nat::none || v6);
      if (!ok) {
        ++stats_.dials_failed;
        input(a.node, [&](Node& n) { n.on_closed(now_, a.conn); });
        return;
      }
      Host& t = host(a.target);
      ConnId inbound = t.next_inbound++;
      while (t.conns.count(inbound) || t.dialing.count(inbound)) inbound = t.next_inbound++;
      const std::uint64_t link = next_link_++;
      h.conns.emplace(a.conn, Host::Conn{.peer = a.target, .peer_conn = inbound, .link = link});
      t.conns.emplace(inbound, Host::Conn{.peer = a.node, .peer_conn = a.conn, .link = link});
      ++stats_.connections;
      // What each end sees: the target's listening address; the dialer's public host and its
      // source port (the listening port for a punch through a NAT that keeps ports).
      std::string to_target, from_dialer;
      if (v6) {
        to_target = address6(a.target);
        auto from = *parse_host_port(address6(a.node));
        from.port = static_cast<std::uint16_t>(sim_ephemeral_port_first + link % sim_ephemeral_ports);
        from_dialer = from.str();
      } else if (config_.ip_addresses) {
        to_target = address(a.target);
        const std::uint16_t port =
            punch && h.nat != Nat::symmetric
                ? sim_listen_port
                : static_cast<std::uint16_t>(sim_ephemeral_port_first + link % sim_ephemeral_ports);
        from_dialer = public_host(a.node) + ":" + std::to_string(port);
      }
      input(a.node, [&](Node& n) { n.on_connected(now_, a.conn, true, to_target); });
      // The dialer's outputs cannot have crashed the target (callbacks run after draining).
      if (online(a.target))
        input(a.target, [&](Node& n) { n.on_connected(now_, inbound, false, from_dialer); });
      return;
    }
    case Action::Kind::arrive: {
      auto c = h.conns.find(a.conn);
      if (c == h.conns.end() || c->second.link != a.token || c->second.dead) {
        ++(cut_links_.count(a.token) ? stats_.arrivals_dropped : stats_.arrivals_after_close);
        return;
      }
      stats_.bytes_delivered += a.bytes.size();
      input(a.node, [&](Node& n) { n.on_bytes(now_, a.conn, a.bytes); });
      return;
    }
    case Action::Kind::flushed: {
      auto c = h.conns.find(a.conn);
      if (c == h.conns.end() || c->second.link != a.token || c->second.dead) return;
      input(a.node, [&](Node& n) { n.on_flushed(now_, a.conn, a.target); });
      return;
    }
    case Action::Kind::closed: {
      auto c = h.conns.find(a.conn);
      if (c == h.conns.end() || c->second.link != a.token) return;
      h.conns.erase(c);
      input(a.node, [&](Node& n) { n.on_closed(now_, a.conn); });
      return;
    }
  }
}

template <typename F>
void Simulation::input(std::size_t i, F&& f) {
  Host& h = host(i);
  if (!h.node) fail("input to crashed node " + std::to_string(i));
  if (h.stopped) fail("input to stopped node " + std::to_string(i));
  f(*h.node);
  drain(i);
  arm(i);
  flush_callbacks();
}

void Simulation::drain(std::size_t i) {
  Host& h = host(i);
  while (auto out = h.node->poll()) {
    std::visit(
        [&](auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, node_output::Dial>) {
            handle_dial(i, o.conn, o.address, o.punch);
          } else if constexpr (std::is_same_v<T, node_output::Send>) {
            handle_send(i, o.conn, std::move(o.bytes));
          } else if constexpr (std::is_same_v<T, node_output::Close>) {
            handle_close(i, o.conn);
          } else if constexpr (std::is_same_v<T, node_output::Persist>) {
            handle_persist(i, o);
          } else if constexpr (std::is_same_v<T, node_output::Delivered>) {
            handle_delivered(i, o);
          } else if constexpr (std::is_same_v<T, node_output::ServeAnswer>) {
            serve_answers_.push_back({i, o, now_});
          } else if constexpr (std::is_same_v<T, node_output::GroupAdded>) {
            handle_group_change(i, o.group, true, "");
          } else if constexpr (std::is_same_v<T, node_output::FileMessage> ||
                               std::is_same_v<T, node_output::FileLaneReady>) {
            // The simulator moves no files (node/transfer.h has its own tests).
          } else {
            static_assert(std::is_same_v<T, node_output::GroupDropped>);
            handle_group_change(i, o.group, false, o.reason);
          }
        },
        *out);
  }
}

void Simulation::arm(std::size_t i) {
  Host& h = host(i);
  const std::optional<Millis> deadline = h.node->next_deadline();
  if (deadline == h.timer_at) return;  // the pending timer (or none) still stands
  h.timer_at = deadline;
  ++h.timer_generation;
  if (deadline) {
    Action a;
    a.kind = Action::Kind::tick;
    a.node = i;
    a.token = h.timer_generation;
    schedule(*deadline, std::move(a));
  }
}

void Simulation::flush_callbacks() {
  // Callbacks may feed inputs (post, publish) that deliver more: those queue here and run in
  // this same loop, never nested inside a node's drain.
  if (flushing_) return;
  flushing_ = true;
  std::size_t next = 0;
  while (next < pending_callbacks_.size()) {
    PendingCallback cb = std::move(pending_callbacks_[next++]);
    callback_(cb.node, cb.group, cb.ids, now_);
  }
  pending_callbacks_.clear();
  flushing_ = false;
}

// --- outputs ---------------------------------------------------------------------------------

void Simulation::open_simultaneous(std::size_t a, ConnId a_conn, std::size_t b, ConnId b_conn) {
  const std::uint64_t link = next_link_++;
  host(a).conns.emplace(a_conn, Host::Conn{.peer = b, .peer_conn = b_conn, .link = link});
  host(b).conns.emplace(b_conn, Host::Conn{.peer = a, .peer_conn = a_conn, .link = link});
  ++stats_.connections;
  ++stats_.simultaneous_opens;
  input(a, [&](Node& n) { n.on_connected(now_, a_conn, true, address(b)); });
  if (online(b) && !host(b).stopped)
    input(b, [&](Node& n) { n.on_connected(now_, b_conn, true, address(a)); });
}

void Simulation::handle_dial(std::size_t i, ConnId conn, const std::string& address, bool punch) {
  Host& h = host(i);
  if (h.conns.count(conn) || h.dialing.count(conn)) {
    fail("node " + std::to_string(i) + " dialed with connection id " + std::to_string(conn) +
         " that is in use");
  }
  ++stats_.dials;
  if (punch) ++stats_.punch_dials;
  const std::uint64_t token = next_dial_++;
  const std::size_t target = target_of(address);
  // An IPv6 dial needs IPv6 at the dialer's end too.
  const bool v6 = !address.empty() && address.front() == '[';
  h.dialing.emplace(conn, Host::Dialing{token, v6 && !h.ipv6 ? npos : target, punch, v6});
  Action a;
  a.kind = Action::Kind::connect;
  a.node = i;
  a.conn = conn;
  a.token = token;
  a.target = target;
  schedule(now_ + config_.connect_ms, std::move(a));
}

Millis Simulation::one_way_delay_ms() {
  Millis d = config_.latency_ms - config_.jitter_ms;
  if (config_.jitter_ms > 0) d += rng_.uniform(2 * config_.jitter_ms + 1);
  return d;
}

void Simulation::handle_send(std::size_t i, ConnId conn, Bytes bytes) {
  Host& h = host(i);
  auto it = h.conns.find(conn);
  if (it == h.conns.end() || it->second.dead) {
    ++stats_.sends_dropped;  // the sim closed it (partition, peer crash); on_closed is coming
    return;
  }
  Host::Conn& c = it->second;
  ++stats_.sends;
  stats_.bytes_sent += bytes.size();
  // Serialisation: the direction's wire sends one chunk after another at the bandwidth.
  const std::uint64_t start_us = std::max(now_ * 1000, c.wire_free_us);
  c.wire_free_us = start_us + bytes.size() * 1'000'000 / config_.bandwidth_bytes_per_s;
  Millis arrival = (c.wire_free_us + 999) / 1000 + one_way_delay_ms();
  if (config_.loss > 0) {
    const auto threshold = static_cast<std::uint64_t>(config_.loss * 1'000'000);
    for (std::uint32_t r = 0; r < retransmits_max && rng_.uniform(1'000'000) < threshold; ++r) {
      arrival += config_.rto_ms;
      ++stats_.retransmits;
    }
  }
  // A stream: nothing overtakes what was sent before it on this direction.
  arrival = std::max(arrival, c.last_arrival_ms);
  c.last_arrival_ms = arrival;
  // The sender learns the bytes left once they are serialised onto the wire.
  Action f;
  f.kind = Action::Kind::flushed;
  f.node = i;
  f.conn = conn;
  f.token = c.link;
  f.target = bytes.size();
  schedule((c.wire_free_us + 999) / 1000, std::move(f));
  Action a;
  a.kind = Action::Kind::arrive;
  a.node = c.peer;
  a.conn = c.peer_conn;
  a.token = c.link;
  a.bytes = std::move(bytes);
  schedule(arrival, std::move(a));
}

void Simulation::handle_close(std::size_t i, ConnId conn) {
  Host& h = host(i);
  ++stats_.closes;
  if (h.dialing.erase(conn)) return;  // the dial's completion will find no token
  if (!h.conns.count(conn)) return;   // already severed by the sim: on_closed is on its way
  sever(i, conn, /*notify_self=*/false, config_.latency_ms);
}

void Simulation::sever(std::size_t i, ConnId conn, bool notify_self, Millis delay) {
  Host& h = host(i);
  auto it = h.conns.find(conn);
  if (it == h.conns.end()) return;
  Host::Conn c = it->second;
  if (notify_self) {
    it->second.dead = true;
    Action a;
    a.kind = Action::Kind::closed;
    a.node = i;
    a.conn = conn;
    a.token = c.link;
    schedule(now_, std::move(a));
  } else {
    h.conns.erase(it);
  }
  Host& p = host(c.peer);
  auto pc = p.conns.find(c.peer_conn);
  if (pc == p.conns.end() || pc->second.link != c.link) return;
  Action a;
  a.kind = Action::Kind::closed;
  a.node = c.peer;
  a.conn = c.peer_conn;
  a.token = c.link;
  if (delay == 0) {
    // A cut: the peer hears of it now and in-flight bytes are lost.
    cut_links_.insert(c.link);
    pc->second.dead = true;
    schedule(now_, std::move(a));
  } else {
    // An orderly close: the FIN follows the bytes sent before it.
    schedule(std::max(now_ + delay, c.last_arrival_ms), std::move(a));
  }
}

void Simulation::handle_persist(std::size_t i, const node_output::Persist& p) {
  ++stats_.persists;
  if (!config_.keep_disk) return;
  Host& h = host(i);
  GroupDisk& g = h.disk[p.group];
  const Replica* replica = h.node->group(p.group);
  for (const Hash& id : p.report.admitted) {
    const EventRecord* rec = replica ? replica->group().find(id) : nullptr;
    if (!rec) {
      fail("node " + std::to_string(i) + " persisted event " + short_hex(id) +
           " that its replica does not hold");
    }
    g.event_at[id] = g.events.size();
    g.events.push_back(encode(rec->event));
  }
  for (const auto* ids : {&p.report.payloads_dropped, &p.report.payloads_restored}) {
    for (const Hash& id : *ids) {
      auto at = g.event_at.find(id);
      const EventRecord* rec = replica ? replica->group().find(id) : nullptr;
      if (at != g.event_at.end() && rec) g.events[at->second] = encode(rec->event);
    }
  }
  for (const BundleKey& k : p.keys) g.keys.try_emplace({k.epoch, k.source}, k.key.clone());
}

void Simulation::handle_delivered(std::size_t i, const node_output::Delivered& d) {
  stats_.deliveries += d.events.size();
  if (config_.record_deliveries) {
    const std::optional<std::size_t> from = d.from ? find(*d.from) : std::nullopt;
    for (const Hash& id : d.events) deliveries_.push_back({i, d.group, id, now_, from});
  }
  if (callback_) pending_callbacks_.push_back({i, d.group, d.events});
}

void Simulation::handle_group_change(std::size_t i, const Hash& group, bool added,
                                     const std::string& why) {
  group_changes_.push_back({i, group, added, why, now_});
  if (!config_.keep_disk) return;
  // Like a daemon: record a group taken on (its events follow as Persist); delete a dropped one.
  if (added) {
    host(i).disk.try_emplace(group);
  } else {
    host(i).disk.erase(group);
  }
}

// --- running ---------------------------------------------------------------------------------

void Simulation::run_for(Millis duration) { run_until(now_ + duration); }

void Simulation::run_until(Millis deadline) {
  run_steps_ = 0;
  while (step(deadline)) {
  }
  now_ = std::max(now_, deadline);
}

bool Simulation::run_until(const std::function<bool()>& done, Millis deadline) {
  run_steps_ = 0;
  if (done()) return true;
  while (step(deadline)) {
    if (done()) return true;
  }
  now_ = std::max(now_, deadline);
  return done();
}

// --- faults ----------------------------------------------------------------------------------

bool Simulation::reachable(std::size_t a, std::size_t b) const {
  if (side_.empty()) return true;
  return side_[a] == side_[b] && (side_[a] != npos || a == b);
}

void Simulation::partition(const std::vector<std::vector<std::size_t>>& sides) {
  side_.assign(hosts_.size(), npos);
  for (std::size_t s = 0; s < sides.size(); ++s) {
    for (std::size_t i : sides[s]) {
      (void)host(i);
      if (side_[i] != npos) fail("node " + std::to_string(i) + " is in two sides");
      side_[i] = s;
    }
  }
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    std::vector<ConnId> cut;
    for (const auto& [conn, c] : hosts_[i]->conns) {
      if (!c.dead && !reachable(i, c.peer)) cut.push_back(conn);
    }
    for (ConnId conn : cut) sever(i, conn, /*notify_self=*/true, 0);
  }
}

void Simulation::heal() { side_.clear(); }

void Simulation::stop(std::size_t i) {
  Host& h = host(i);
  if (!h.node || h.stopped) fail("node " + std::to_string(i) + " is not running");
  h.stopped = true;
}

void Simulation::resume(std::size_t i) {
  Host& h = host(i);
  if (!h.stopped) fail("node " + std::to_string(i) + " is not stopped");
  h.stopped = false;
  std::vector<Action> held = std::move(h.held);
  h.held.clear();
  // Replayed at now, in the order they came (a flush report goes back to its sender).
  for (Action& a : held) schedule(now_, std::move(a));
  h.timer_at.reset();
  ++h.timer_generation;
  arm(i);
}

bool Simulation::stopped(std::size_t i) const { return host(i).stopped; }

void Simulation::crash(std::size_t i) {
  Host& h = host(i);
  if (!h.node) fail("node " + std::to_string(i) + " is already crashed");
  std::vector<ConnId> conns;
  for (const auto& [conn, c] : h.conns) conns.push_back(conn);
  for (ConnId conn : conns) {
    Host::Conn c = h.conns.at(conn);
    cut_links_.insert(c.link);
    Host& p = host(c.peer);
    auto pc = p.conns.find(c.peer_conn);
    if (pc != p.conns.end() && pc->second.link == c.link && !pc->second.dead) {
      // The peer's bytes go nowhere from now on; it notices after one latency (a reset).
      pc->second.dead = true;
      Action a;
      a.kind = Action::Kind::closed;
      a.node = c.peer;
      a.conn = c.peer_conn;
      a.token = c.link;
      schedule(now_ + config_.latency_ms, std::move(a));
    }
  }
  h.conns.clear();
  h.dialing.clear();
  h.node.reset();
  h.stopped = false;
  h.held.clear();
  h.timer_at.reset();
  ++h.timer_generation;
}

void Simulation::restart(std::size_t i) {
  Host& h = host(i);
  if (h.node) fail("node " + std::to_string(i) + " is running");
  if (!config_.keep_disk) fail("restart needs SimConfig::keep_disk");
  start_node(i);
  for (const auto& [group, g] : h.disk) {
    // A relay's replicas hold no identity: it reads nothing.
    auto replica =
        std::make_unique<Replica>(group, h.config.relay ? nullptr : h.identity.get());
    for (const auto& [at, key] : g.keys) replica->restore_key(at.first, at.second, key);
    std::vector<Event> events;
    auto load = [&](const std::vector<Bytes>& stored) {
      for (const Bytes& bytes : stored) {
        auto e = decode_event(bytes);
        if (!e.ok()) fail("a stored event of node " + std::to_string(i) + " does not decode");
        events.push_back(std::move(e).value());
      }
    };
    if (g.base) load(*g.base);
    load(g.events);
    replica->ingest(std::move(events));
    (void)replica->take_new_keys();  // all on disk already
    std::vector<std::string> hints = g.peer_hints;
    std::size_t added = 0;
    for (std::size_t j = 0; j < hosts_.size() && added < restart_peer_hints_max; ++j) {
      if (j == i || !online(j) || !replica->state().is_member(identity(j).public_key())) continue;
      std::string a = address(j);
      if (std::find(hints.begin(), hints.end(), a) != hints.end()) continue;
      hints.push_back(std::move(a));
      ++added;
    }
    input(i, [&](Node& n) { n.add_group(now_, std::move(replica), hints); });
  }
}

// --- helpers ---------------------------------------------------------------------------------

Authoring Simulation::authoring(std::size_t i) {
  Host& h = host(i);
  return Authoring{*h.identity, h.author_rng, sim_epoch_ms + now_};
}

void Simulation::disk_add_replica(std::size_t i, const Replica& replica,
                                  const std::vector<std::string>& peer_hints) {
  if (!config_.keep_disk) return;
  GroupDisk& g = host(i).disk[replica.id()];
  for (const EventRecord* rec : replica.group().ordered()) {
    g.event_at[rec->event.id] = g.events.size();
    g.events.push_back(encode(rec->event));
  }
  for (BundleKey& k : replica.keyring().bundle(std::numeric_limits<std::size_t>::max())) {
    g.keys.try_emplace({k.epoch, k.source}, std::move(k.key));
  }
  g.peer_hints.insert(g.peer_hints.end(), peer_hints.begin(), peer_hints.end());
}

Hash Simulation::create_group(std::size_t founder, const std::string& name,
                              GroupSettings settings) {
  (void)node(founder);
  auto created =
      Replica::create_group(authoring(founder), name, "n" + std::to_string(founder), settings);
  if (!created.ok()) fail("create_group: " + created.error().message());
  auto replica = std::make_unique<Replica>(std::move(created).value());
  const Hash id = replica->id();
  disk_add_replica(founder, *replica, {});
  input(founder, [&](Node& n) { n.add_group(now_, std::move(replica), {}); });
  return id;
}

void Simulation::join_group(std::size_t joiner, std::size_t inviter, const Hash& group) {
  Replica* source = node(inviter).group(group);
  if (!source) fail("join_group: inviter " + std::to_string(inviter) + " lacks the group");
  if (node(joiner).group(group)) fail("join_group: node " + std::to_string(joiner) + " has it");
  const Millis day_ms = 86'400'000;
  auto invited =
      source->invite(authoring(inviter), 1, sim_epoch_ms + now_ + day_ms, {address(inviter)});
  if (!invited.ok()) fail("join_group: invite: " + invited.error().message());
  auto [invite_event, code] = std::move(invited).value();
  input(inviter, [&](Node& n) { n.publish(now_, group, {invite_event}); });

  source = node(inviter).group(group);
  std::vector<Event> events;
  for (const EventRecord* rec : source->group().ordered()) events.push_back(rec->event);
  auto replica = std::make_unique<Replica>(group, host(joiner).identity.get());
  replica->ingest(std::move(events));
  auto joined = replica->join(authoring(joiner), code, "n" + std::to_string(joiner));
  if (!joined.ok()) fail("join_group: join: " + joined.error().message());
  Event join_event = std::move(joined).value();
  // Written like an application stores a group it joined, before the node runs it; the join
  // event is persisted again by publish, which is harmless.
  const std::vector<std::string> hints{address(inviter)};
  disk_add_replica(joiner, *replica, hints);
  input(joiner, [&](Node& n) { n.add_group(now_, std::move(replica), hints); });
  input(joiner, [&](Node& n) { n.publish(now_, group, {join_event}); });
}

void Simulation::add_group(std::size_t i, std::unique_ptr<Replica> replica,
                           const std::vector<std::string>& hints) {
  input(i, [&](Node& n) { n.add_group(now_, std::move(replica), hints); });
}

void Simulation::publish(std::size_t i, const Hash& group, const std::vector<Event>& events) {
  input(i, [&](Node& n) { n.publish(now_, group, events); });
}

std::vector<Hash> Simulation::post(std::size_t i, const Hash& group, const std::string& text) {
  Replica* replica = node(i).group(group);
  if (!replica) fail("post: node " + std::to_string(i) + " lacks the group");
  auto posted = replica->post(authoring(i), text);
  if (!posted.ok()) fail("post: " + posted.error().message());
  std::vector<Event> events = std::move(posted).value();
  std::vector<Hash> ids;
  for (const Event& e : events) ids.push_back(e.id);
  input(i, [&](Node& n) { n.publish(now_, group, events); });
  return ids;
}

std::vector<Hash> Simulation::upkeep(std::size_t i, const Hash& group) {
  Replica* replica = node(i).group(group);
  if (!replica) return {};
  std::vector<Event> events = replica->upkeep(authoring(i));
  std::vector<Hash> ids;
  for (const Event& e : events) ids.push_back(e.id);
  if (!events.empty()) input(i, [&](Node& n) { n.publish(now_, group, events); });
  return ids;
}

Hash Simulation::set_relay(std::size_t admin, const Hash& group, std::size_t relay, bool active) {
  Replica* replica = node(admin).group(group);
  if (!replica) fail("set_relay: node " + std::to_string(admin) + " lacks the group");
  auto named = replica->set_relay(authoring(admin), identity(relay).public_key(), address(relay),
                                  active);
  if (!named.ok()) fail("set_relay: " + named.error().message());
  Event e = std::move(named).value();
  const Hash id = e.id;
  input(admin, [&](Node& n) { n.publish(now_, group, {e}); });
  return id;
}

void Simulation::request_serve(std::size_t i, const Hash& group, std::size_t relay) {
  request_serve(i, group, address(relay));
}

void Simulation::request_serve(std::size_t i, const Hash& group, const std::string& address) {
  input(i, [&](Node& n) { n.request_serve(now_, group, address); });
}

void Simulation::remove_group(std::size_t i, const Hash& group) {
  input(i, [&](Node& n) { n.remove_group(now_, group); });
}

Hash Simulation::create_big_group(const std::vector<std::size_t>& members,
                                  const std::vector<std::size_t>& relays) {
  if (members.empty()) fail("create_big_group: no members");
  const std::size_t founder = members.front();
  for (std::size_t m : members) (void)node(m);
  auto created =
      Replica::create_group(authoring(founder), "big", "n" + std::to_string(founder),
                            GroupSettings{.history_visible = true, .members_can_invite = true});
  if (!created.ok()) fail("create_big_group: " + created.error().message());
  Replica origin = std::move(created).value();
  for (std::size_t k = 1; k < members.size(); ++k) {
    auto added = origin.add(authoring(founder), identity(members[k]).public_key());
    if (!added.ok()) fail("create_big_group: add: " + added.error().message());
  }
  for (std::size_t relay : relays) {
    auto named = origin.set_relay(authoring(founder), identity(relay).public_key(), address(relay), true);
    if (!named.ok()) fail("create_big_group: set_relay: " + named.error().message());
  }
  std::shared_ptr<const std::vector<Bytes>> base;
  if (config_.keep_disk) {
    auto encoded = std::make_shared<std::vector<Bytes>>();
    for (const EventRecord* rec : origin.group().ordered()) encoded->push_back(encode(rec->event));
    base = std::move(encoded);
  }
  for (std::size_t m : members) {
    auto replica = std::make_unique<Replica>(origin.clone_for(host(m).identity.get()));
    std::vector<std::string> hints;
    if (m != founder) hints.push_back(address(founder));
    for (std::size_t tries = 0; hints.size() < big_group_peer_hints_max && members.size() > 1 &&
                                tries < 4 * big_group_peer_hints_max;
         ++tries) {
      const std::size_t other = members[rng_.uniform(members.size())];
      std::string a = address(other);
      if (other == m || std::find(hints.begin(), hints.end(), a) != hints.end()) continue;
      hints.push_back(std::move(a));
    }
    if (config_.keep_disk) {
      GroupDisk& g = host(m).disk[origin.id()];
      g.base = base;
      for (BundleKey& k : replica->keyring().bundle(std::numeric_limits<std::size_t>::max())) {
        g.keys.try_emplace({k.epoch, k.source}, std::move(k.key));
      }
      g.peer_hints = hints;
    }
    input(m, [&](Node& n) { n.add_group(now_, std::move(replica), hints); });
  }
  return origin.id();
}

// --- observation -----------------------------------------------------------------------------

bool Simulation::converged(const Hash& group) const {
  const std::set<Hash>* first = nullptr;
  for (const auto& h : hosts_) {
    if (!h->node) continue;
    const Replica* r = h->node->group(group);
    if (!r) continue;
    if (!first) {
      first = &r->group().heads();
    } else if (r->group().heads() != *first) {
      return false;
    }
  }
  return first != nullptr;
}

Bytes Simulation::disk_bytes(std::size_t i, const Hash& group) const {
  Bytes out;
  auto it = host(i).disk.find(group);
  if (it == host(i).disk.end()) return out;
  auto add = [&](const std::vector<Bytes>& events) {
    for (const Bytes& e : events) out.insert(out.end(), e.begin(), e.end());
  };
  if (it->second.base) add(*it->second.base);
  add(it->second.events);
  return out;
}

bool Simulation::disk_has(std::size_t i, const Hash& group) const {
  return host(i).disk.count(group) != 0;
}

std::size_t Simulation::disk_key_count(std::size_t i, const Hash& group) const {
  auto it = host(i).disk.find(group);
  return it == host(i).disk.end() ? 0 : it->second.keys.size();
}

std::size_t Simulation::holders(const Hash& group, const Hash& id) const {
  std::size_t n = 0;
  for (const auto& h : hosts_) {
    if (!h->node) continue;
    const Replica* r = h->node->group(group);
    if (r && r->group().has(id)) ++n;
  }
  return n;
}

}  // namespace qun::sim
