// Transport: real TCP on 127.0.0.1 between Nodes driven by Transports on one uv loop. The loop
// runs until a condition holds, bounded by a guard timer that fails the test; nothing sleeps.
#include "net/transport.h"

#include <uv.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crypto/rng.h"
#include "node/node.h"
#include "node/replica.h"
#include "tests/net/uv_loop.h"

using namespace qun;

namespace {

constexpr std::uint64_t wall_ms = 1'700'000'000'000;

using test::Loop;

SigningKey identity(std::uint64_t n) {
  Rng rng = Rng::from_u64(0x7e700000 + n);
  return SigningKey::generate(rng);
}

template <typename T>
T must(Result<T> r) {
  if (!r.ok()) FAIL("unexpected error: " << r.error().message());
  return std::move(r).value();
}

// One node on its own transport: its identity, authoring Rng, what it delivered and logged.
struct Host {
  Host(uv_loop_t* loop, std::uint64_t n, NodeConfig config, TransportConfig tc = {})
      : key(identity(n)), rng(Rng::from_u64(0xa0 + n)) {
    auto sink = [this](const LogRecord& r) {
      if (on_log) on_log(r);
      log.push_back(r);
    };
    transport = std::make_unique<Transport>(loop, sink, tc);
    bound = must(transport->listen({"127.0.0.1:0"}));
    config.listen_address = bound.at(0);
    node = std::make_unique<Node>(config, key, Rng::from_u64(0xb0 + n));
  }
  void start() {
    transport->start(*node, [this](NodeOutput&& o) {
      if (auto* d = std::get_if<node_output::Delivered>(&o)) {
        for (const Hash& e : d->events) delivered[e] = d->from;
        // The app may pump from within its callback: that must defer, not recurse.
        transport->pump();
      }
    });
  }
  Authoring at() { return Authoring{key, rng, wall_ms}; }
  bool has_delivered(const std::vector<Hash>& ids) const {
    return std::all_of(ids.begin(), ids.end(), [&](const Hash& h) { return delivered.count(h); });
  }
  std::size_t logged(const std::string& needle) const {
    return static_cast<std::size_t>(std::count_if(log.begin(), log.end(), [&](const LogRecord& r) {
      return r.message.find(needle) != std::string::npos;
    }));
  }

  SigningKey key;
  Rng rng;
  std::vector<LogRecord> log;
  std::function<void(const LogRecord&)> on_log;
  std::unique_ptr<Transport> transport;
  std::vector<std::string> bound;
  std::unique_ptr<Node> node;
  std::map<Hash, std::optional<PublicKey>> delivered;
};

void shut_down(Loop& loop, std::vector<Host*> hosts) {
  std::size_t done = 0;
  for (Host* h : hosts) h->transport->shutdown([&] { ++done; });
  REQUIRE(done == 0);  // never from within shutdown()
  REQUIRE(loop.run_until([&] { return done == hosts.size(); }));
  for (Host* h : hosts) {
    h->transport.reset();
    h->node.reset();
  }
}

// A port nothing listens on: bound once, then closed.
std::string closed_port_address(Loop& loop) {
  Transport probe(&loop.loop, null_log_sink());
  const std::string address = must(probe.listen({"127.0.0.1:0"})).at(0);
  bool done = false;
  probe.shutdown([&] { done = true; });
  REQUIRE(loop.run_until([&] { return done; }));
  return address;
}

}  // namespace

// Proves the transport carries a group over real TCP: B holds a copy of the group taken before
// A wrote 40 large posts, so B gets them by catch-up, which A sends in windows of 4 KiB and
// continues only as on_flushed reports bytes written (without it, catch-up stalls after the
// first window). Then a post A publishes live is Delivered on B, from A. Shutdown completes,
// calls done once, and leaves no libuv handle behind.
TEST_CASE("transport: two nodes exchange a group's events over TCP", "[net]") {
  Loop loop;
  NodeConfig config_a;
  config_a.overlay.send_window_bytes = 4 * 1024;
  Host a(&loop.loop, 1, config_a);
  Host b(&loop.loop, 2, NodeConfig{});

  Replica origin = must(Replica::create_group(a.at(), "net", "a", GroupSettings{}));
  (void)must(origin.add(a.at(), b.key.public_key()));
  const Hash gid = origin.id();
  auto replica_b = std::make_unique<Replica>(origin.clone_for(&b.key));
  std::vector<Hash> backlog;
  for (int i = 0; i < 40; ++i) {
    for (const Event& e : must(origin.post(a.at(), std::string(1000, 'a' + i % 26))))
      backlog.push_back(e.id);
  }
  a.node->add_group(a.transport->now(), std::make_unique<Replica>(std::move(origin)), {});
  b.node->add_group(b.transport->now(), std::move(replica_b), {a.bound.at(0)});
  a.start();
  b.start();

  REQUIRE(loop.run_until([&] { return b.has_delivered(backlog); }));
  CHECK(a.node->stats().bytes_sent > 40 * 1000);

  auto live = must(a.node->group(gid)->post(a.at(), "hello over tcp"));
  a.node->publish(a.transport->now(), gid, live);
  a.transport->pump();
  std::vector<Hash> live_ids;
  for (const Event& e : live) live_ids.push_back(e.id);
  REQUIRE(loop.run_until([&] { return b.has_delivered(live_ids); }));
  CHECK(b.delivered[live_ids.back()] == std::optional<PublicKey>(a.key.public_key()));

  // Both ends see one established connection, and the transports counted its bytes.
  auto peers_b = b.node->peers();
  REQUIRE(peers_b.size() == 1);
  CHECK(peers_b[0].established);
  CHECK(peers_b[0].outbound);
  CHECK(peers_b[0].id == std::optional<PublicKey>(a.key.public_key()));
  CHECK(a.transport->counters().conns_accepted == 1);
  CHECK(b.transport->counters().dials_started == 1);
  CHECK(b.transport->counters().dials_failed == 0);
  CHECK(a.transport->counters().bytes_written > 40 * 1000);
  CHECK(b.transport->counters().bytes_read > 40 * 1000);
  CHECK(a.transport->connections() == 1);
  // The node counts bytes when it emits a Send, the transport when the kernel takes them: all
  // of A's were written once B has read as much.
  REQUIRE(loop.run_until([&] {
    return a.transport->counters().bytes_written == a.node->stats().bytes_sent &&
           b.transport->counters().bytes_read == a.node->stats().bytes_sent;
  }));
  CHECK(a.logged("listening on 127.0.0.1:") == 1);

  shut_down(loop, {&a, &b});
  loop.finish();
}

// Proves a dial to a port nobody listens on fails and the node hears of it (on_closed: the
// connection leaves its peer list), and that redials of the failing address are held by the
// backoff: the second failure comes no sooner than redial_delay_ms_min after the first, though
// the node asks again every maintenance period (1 s).
TEST_CASE("transport: a failed dial reaches the node and redials back off", "[net]") {
  Loop loop;
  const std::string dead = closed_port_address(loop);
  TransportConfig tc;
  tc.redial_delay_ms_min = 1'500;
  Host c(&loop.loop, 3, NodeConfig{}, tc);
  std::vector<Millis> failed_at;
  c.on_log = [&](const LogRecord& r) {
    if (r.message.rfind("dial failed", 0) == 0) failed_at.push_back(c.transport->now());
  };

  Replica origin = must(Replica::create_group(c.at(), "lonely", "c", GroupSettings{}));
  c.node->add_group(c.transport->now(), std::make_unique<Replica>(std::move(origin)), {dead});
  c.start();

  REQUIRE(loop.run_until([&] { return c.transport->counters().dials_failed >= 1; }));
  // on_closed was given: the node no longer lists the dial.
  REQUIRE(loop.run_until([&] { return c.node->peers().empty(); }, 1'000));
  CHECK(c.transport->connections() == 0);
  CHECK(c.logged("dial failed") == 1);
  for (const LogRecord& r : c.log)
    if (r.message.rfind("dial failed", 0) == 0) CHECK(r.level == LogLevel::info);

  REQUIRE(loop.run_until([&] { return c.transport->counters().dials_failed >= 2; }, 10'000));
  REQUIRE(failed_at.size() >= 2);
  CHECK(failed_at[1] - failed_at[0] >= tc.redial_delay_ms_min);
  CHECK(c.logged("(backoff)") >= 1);

  shut_down(loop, {&c});
  loop.finish();
}

// Proves inbound_conns_max with eviction: of two raw TCP clients that never handshake, the first
// is closed (and counted as evicted) to make room for the second, which stays open.
TEST_CASE("transport: at the inbound limit an unauthenticated connection makes room", "[net]") {
  Loop loop;
  TransportConfig tc;
  tc.inbound_conns_max = 1;
  Host h(&loop.loop, 4, NodeConfig{}, tc);
  h.start();

  struct Client {
    uv_tcp_t tcp{};
    uv_connect_t req{};
    bool connected = false;
    bool eof = false;
  };
  std::vector<std::unique_ptr<Client>> clients;
  sockaddr_in sa{};
  const std::string& bound = h.bound.at(0);
  REQUIRE(uv_ip4_addr("127.0.0.1", std::stoi(bound.substr(bound.rfind(':') + 1)), &sa) == 0);
  for (int i = 0; i < 2; ++i) {
    auto c = std::make_unique<Client>();
    uv_tcp_init(&loop.loop, &c->tcp);
    c->tcp.data = c.get();
    c->req.data = c.get();
    REQUIRE(uv_tcp_connect(&c->req, &c->tcp, reinterpret_cast<const sockaddr*>(&sa),
                           [](uv_connect_t* req, int status) {
                             auto* cl = static_cast<Client*>(req->data);
                             cl->connected = status == 0;
                             if (status != 0) return;
                             uv_read_start(
                                 reinterpret_cast<uv_stream_t*>(&cl->tcp),
                                 [](uv_handle_t*, std::size_t, uv_buf_t* buf) {
                                   static char scratch[4096];
                                   *buf = uv_buf_init(scratch, sizeof scratch);
                                 },
                                 [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
                                   if (n < 0) static_cast<Client*>(s->data)->eof = true;
                                 });
                           }) == 0);
    // One after the other, so the first is the one accepted.
    REQUIRE(loop.run_until([&] {
      return h.transport->counters().conns_accepted + h.transport->counters().conns_refused ==
             static_cast<std::uint64_t>(i + 1);
    }));
    clients.push_back(std::move(c));
  }
  // Neither client completes a handshake: at the limit the older one is evicted for the newer.
  CHECK(h.transport->counters().conns_accepted == 2);
  CHECK(h.transport->counters().conns_evicted == 1);
  CHECK(h.transport->counters().conns_refused == 0);
  REQUIRE(loop.run_until([&] { return clients[0]->eof; }));
  CHECK_FALSE(clients[1]->eof);
  CHECK(h.node->peers().size() == 1);

  for (auto& c : clients) uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), nullptr);
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  // The node hears that the accepted one closed.
  REQUIRE(loop.run_until([&] { return h.node->peers().empty(); }));
  shut_down(loop, {&h});
  loop.finish();
}

// Proves listen's errors name the address and the OS reason in one line, and that IPv6
// literals bind and print bracketed (where the host has IPv6 loopback).
TEST_CASE("transport: listen reports bound addresses and errors", "[net]") {
  Loop loop;
  {
    Transport t(&loop.loop, null_log_sink());
    const auto bound = must(t.listen({"127.0.0.1:0", "localhost:0"}));
    REQUIRE(bound.size() == 2);
    CHECK(bound[0].rfind("127.0.0.1:", 0) == 0);
    CHECK(bound[0] != "127.0.0.1:0");
    CHECK(bound[1].rfind("127.0.0.1:", 0) == 0);

    auto taken = t.listen({bound[0]});
    REQUIRE_FALSE(taken.ok());
    CHECK(taken.error().code() == Errc::io);
    CHECK(taken.error().context() == "cannot listen on " + bound[0] + ": address already in use");

    for (const char* bad : {"127.0.0.1", "127.0.0.1:99999", "::1:7000", "[::1:7000", "host:7000"}) {
      auto r = t.listen({bad});
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code() == Errc::invalid_argument);
      CHECK(r.error().context().rfind(std::string("cannot listen on ") + bad + ": ", 0) == 0);
    }

    auto v6 = t.listen({"[::1]:0"});
    if (v6.ok()) {
      CHECK(v6->at(0).rfind("[::1]:", 0) == 0);
    } else {
      WARN("no IPv6 loopback here: " << v6.error().context());
    }
    bool done = false;
    t.shutdown([&] { done = true; });
    REQUIRE(loop.run_until([&] { return done; }));
  }
  loop.finish();
}

// Proves that destroying a running transport without shutdown (an abrupt exit path) leaves no
// handle behind once the loop has run, even with a dial in flight and a connection open.
TEST_CASE("transport: destroying without shutdown frees every handle", "[net]") {
  Loop loop;
  Host a(&loop.loop, 5, NodeConfig{});
  Host b(&loop.loop, 6, NodeConfig{});
  Replica origin = must(Replica::create_group(a.at(), "net", "a", GroupSettings{}));
  (void)must(origin.add(a.at(), b.key.public_key()));
  auto replica_b = std::make_unique<Replica>(origin.clone_for(&b.key));
  a.node->add_group(a.transport->now(), std::make_unique<Replica>(std::move(origin)), {});
  b.node->add_group(b.transport->now(), std::move(replica_b), {a.bound.at(0)});
  a.start();
  b.start();
  REQUIRE(loop.run_until([&] { return a.transport->counters().conns_accepted == 1; }));
  a.transport.reset();
  b.transport.reset();
  a.node.reset();
  b.node.reset();
  loop.finish();
}
