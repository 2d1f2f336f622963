// Tests of the relayed-links engine (node/relayed.h) on its own: three engines, Ada and Bob as
// ends and a relay, wired by a tiny router that passes every message through the wire codec.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "crypto/rng.h"
#include "node/relayed.h"

namespace qun {
namespace {

constexpr ConnId ada_to_relay = 1, relay_to_ada = 11;
constexpr ConnId bob_to_relay = 2, relay_to_bob = 12;
constexpr ConnId ada_virtual = 101, bob_virtual = 102;

PublicKey key(std::uint8_t b) {
  PublicKey k;
  k.bytes.fill(b);
  return k;
}

// Three engines and the links between them. Ends hand Incoming to accept() at once (as the Node
// does when it has room), and collect what reaches their virtual connections.
struct Net {
  enum Who { ada, bob, relay };
  std::vector<std::string> logs;
  RelayedLinks e[3];
  PublicKey ids[3] = {key(1), key(2), key(3)};
  bool shares[3] = {true, true, true};  // whether the relay sees a shared group with each end
  std::map<Who, Bytes> received;
  std::map<Who, std::size_t> acked;
  std::map<Who, std::vector<std::string>> ended;
  std::map<Who, bool> connected;
  std::size_t max_relay_queue = 0;  // stream bytes in flight through the relay, at most

  explicit Net(RelayedConfig relay_config = {.relay = true})
      : e{RelayedLinks({}, [this](const LogRecord& r) { logs.push_back(r.message); }),
          RelayedLinks({}, [this](const LogRecord& r) { logs.push_back(r.message); }),
          RelayedLinks(relay_config, [this](const LogRecord& r) { logs.push_back(r.message); })} {}

  // Where a message written on (who, conn) arrives.
  std::pair<Who, ConnId> peer_of(Who who, ConnId conn) {
    if (who == ada) return {relay, relay_to_ada};
    if (who == bob) return {relay, relay_to_bob};
    return conn == relay_to_ada ? std::pair{ada, ada_to_relay} : std::pair{bob, bob_to_relay};
  }

  // Drains every engine until all are quiet.
  void run(Millis now = 0) {
    bool any = true;
    while (any) {
      any = false;
      for (Who w : {ada, bob, relay}) {
        while (auto o = e[w].poll()) {
          any = true;
          handle(now, w, *o);
        }
      }
    }
  }

  void handle(Millis now, Who w, RelayedOutput& o) {
    if (auto* s = std::get_if<relayed_output::Send>(&o)) {
      auto [to, conn] = peer_of(w, s->conn);
      auto decoded = decode_wire(encode_wire(s->message));
      REQUIRE(decoded.ok());
      const bool sh = to == relay ? shares[w] : true;
      e[to].on_message(now, conn, ids[w], sh, decoded.value());
    } else if (auto* in = std::get_if<relayed_output::Incoming>(&o)) {
      REQUIRE(in->relay == ids[relay]);
      e[w].accept(now, in->carrier, in->stream, w == ada ? ada_virtual : bob_virtual);
    } else if (auto* c = std::get_if<relayed_output::Connected>(&o)) {
      connected[w] = true;
      (void)c;
    } else if (auto* d = std::get_if<relayed_output::Deliver>(&o)) {
      auto& r = received[w];
      r.insert(r.end(), d->bytes.begin(), d->bytes.end());
    } else if (auto* a = std::get_if<relayed_output::Acked>(&o)) {
      acked[w] += a->bytes;
    } else if (auto* x = std::get_if<relayed_output::Ended>(&o)) {
      ended[w].push_back(x->reason);
    }
  }

  // Bob reserves on the relay; Ada connects to Bob.
  void reserve_and_connect(Millis now = 0) {
    e[bob].maintain(now, true, {RelayCandidate{bob_to_relay, ids[relay], "198.51.100.10:7000"}});
    run(now);
    e[ada].connect(now, ada_virtual, ids[relay], ids[bob], ada_to_relay);
    run(now);
  }
};

Bytes pattern(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return b;
}

// Proves the whole path: Bob's reservation is taken and gives him a relayed address naming the
// relay; Ada's connect is spliced (both ends connected, the relay counts one link); bytes each
// writes reach the other unchanged and in order, and the relay counts them.
TEST_CASE("relayed: reserve, connect, splice carries bytes both ways", "[node][relayed]") {
  Net n;
  n.reserve_and_connect();
  CHECK(n.e[Net::bob].relayed_address() ==
        "198.51.100.10:7000/via/" + to_hex(n.ids[Net::relay]));
  auto parsed = parse_relayed_address(n.e[Net::bob].relayed_address());
  REQUIRE(parsed);
  CHECK(parsed->relay_address == "198.51.100.10:7000");
  CHECK(parsed->relay == n.ids[Net::relay]);
  CHECK(n.connected[Net::ada]);
  CHECK(n.e[Net::relay].reservations() == 1);
  CHECK(n.e[Net::relay].relayed_links() == 1);
  CHECK(n.e[Net::ada].via(ada_virtual) == n.ids[Net::relay]);
  CHECK(n.e[Net::bob].via(bob_virtual) == n.ids[Net::relay]);

  const Bytes hello = pattern(100), reply = pattern(3000);
  n.e[Net::ada].write(ada_virtual, hello);
  n.run();
  n.e[Net::bob].write(bob_virtual, reply);
  n.run();
  CHECK(n.received[Net::bob] == hello);
  CHECK(n.received[Net::ada] == reply);
  CHECK(n.e[Net::relay].stats().relayed_bytes == hello.size() + reply.size());
  CHECK(!n.e[Net::relay].invariant_violation());
  CHECK(!n.e[Net::ada].invariant_violation());
}

// Proves flow control: Ada writes far more than a window while nothing drains at Bob's side of
// the relay; at most one window leaves her until Bob acknowledges, and then all of it arrives in
// order, with Ada told of every byte acknowledged (what the Node counts as flushed).
TEST_CASE("relayed: a stream sends at most a window until acknowledged", "[node][relayed]") {
  Net n;
  n.reserve_and_connect();
  const Bytes big = pattern(10 * relayed_limits::window_bytes + 123);
  n.e[Net::ada].write(ada_virtual, big);
  // Before anything is routed, only the window is queued as messages.
  std::size_t queued = 0;
  std::vector<RelayedOutput> held;
  while (auto o = n.e[Net::ada].poll()) {
    if (auto* s = std::get_if<relayed_output::Send>(&*o))
      if (auto* d = std::get_if<wire::RelayData>(&s->message)) queued += d->bytes.size();
    held.push_back(std::move(*o));
  }
  CHECK(queued == relayed_limits::window_bytes);
  for (auto& o : held) n.handle(0, Net::ada, o);
  n.run();
  CHECK(n.received[Net::bob] == big);
  // Everything but the last, unacknowledged part below half a window is acknowledged.
  CHECK(n.acked[Net::ada] + relayed_limits::window_bytes / 2 > big.size());
  CHECK(!n.e[Net::ada].invariant_violation());
}

// Proves the relay's bounds: past relayed_links_max it refuses with a reason it logs, and keeps
// carrying the link it has; past relayed_link_bytes_max it closes a link, telling both ends why.
TEST_CASE("relayed: a relay refuses past its link bound and closes a link past its byte bound",
          "[node][relayed]") {
  Net n(RelayedConfig{.relay = true, .relayed_links_max = 1, .relayed_link_bytes_max = 10'000});
  n.reserve_and_connect();
  REQUIRE(n.connected[Net::ada]);
  // A second link (another stream from Ada to Bob) is refused: the relay is full.
  n.e[Net::ada].connect(0, 103, n.ids[Net::relay], n.ids[Net::bob], ada_to_relay);
  n.run();
  REQUIRE(n.ended[Net::ada].size() == 1);
  CHECK_THAT(n.ended[Net::ada][0], Catch::Contains("relay full: 1 relayed links"));
  CHECK(n.e[Net::relay].stats().splices_refused_full == 1);
  bool logged = false;
  for (const auto& l : n.logs) logged |= l.find("relayed link refused") != std::string::npos &&
                                         l.find("relay full") != std::string::npos;
  CHECK(logged);
  // The first still carries.
  n.e[Net::ada].write(ada_virtual, pattern(5000));
  n.run();
  CHECK(n.received[Net::bob].size() == 5000);
  // Past 10,000 bytes it is closed, with the reason at both ends.
  n.e[Net::bob].write(bob_virtual, pattern(6000));
  n.run();
  CHECK(n.e[Net::relay].stats().splices_closed_bytes == 1);
  CHECK(n.e[Net::relay].relayed_links() == 0);
  REQUIRE(n.ended[Net::bob].size() == 1);
  CHECK_THAT(n.ended[Net::bob][0], Catch::Contains("byte bound"));
  CHECK(n.ended[Net::ada].size() == 2);
  CHECK(!n.e[Net::relay].invariant_violation());
}

// Proves who may use a relay: a peer that shares no group with it gets no reservation, and a
// connect to a node without a reservation, or from a stranger, is refused with its reason.
TEST_CASE("relayed: reservations and connects only for members of a served group",
          "[node][relayed]") {
  Net n;
  n.shares[Net::bob] = false;
  n.e[Net::bob].maintain(0, true, {RelayCandidate{bob_to_relay, n.ids[Net::relay], "r:1"}});
  n.run();
  CHECK(n.e[Net::bob].relayed_address().empty());
  CHECK(n.e[Net::relay].reservations() == 0);
  CHECK(n.e[Net::relay].stats().reservations_refused == 1);
  n.e[Net::ada].connect(0, ada_virtual, n.ids[Net::relay], n.ids[Net::bob], ada_to_relay);
  n.run();
  REQUIRE(n.ended[Net::ada].size() == 1);
  CHECK_THAT(n.ended[Net::ada][0], Catch::Contains("no reservation"));
  n.shares[Net::ada] = false;
  n.e[Net::ada].connect(0, 103, n.ids[Net::relay], n.ids[Net::bob], ada_to_relay);
  n.run();
  REQUIRE(n.ended[Net::ada].size() == 2);
  CHECK_THAT(n.ended[Net::ada][1], Catch::Contains("not a member"));
  // A node that is not a relay refuses both.
  Net plain(RelayedConfig{.relay = false});
  plain.reserve_and_connect();
  CHECK(plain.e[Net::bob].relayed_address().empty());
  REQUIRE(plain.ended[Net::ada].size() == 1);
  CHECK_THAT(plain.ended[Net::ada][0], Catch::Contains("not a relay"));
}

// Proves teardown: when Bob's link to the relay closes, the relay ends the splice and tells Ada,
// drops Bob's reservation, and Bob's own stream and reservation end (his address changes back).
TEST_CASE("relayed: a carrier's close ends its streams, splices and reservation", "[node][relayed]") {
  Net n;
  n.reserve_and_connect();
  REQUIRE(n.connected[Net::ada]);
  n.e[Net::relay].on_closed(0, relay_to_bob);
  n.e[Net::bob].on_closed(0, bob_to_relay);
  n.run();
  CHECK(n.e[Net::relay].reservations() == 0);
  CHECK(n.e[Net::relay].relayed_links() == 0);
  REQUIRE(n.ended[Net::ada].size() == 1);
  REQUIRE(n.ended[Net::bob].size() == 1);
  CHECK(n.e[Net::bob].relayed_address().empty());
  CHECK_FALSE(n.e[Net::ada].carries(ada_to_relay));
  CHECK(!n.e[Net::relay].invariant_violation());
}

// Proves that a stranger's stream messages do nothing: data, acks and closes for streams that
// do not exist are ignored by ends and relay alike.
TEST_CASE("relayed: messages about unknown streams are ignored", "[node][relayed]") {
  Net n;
  n.reserve_and_connect();
  n.e[Net::relay].on_message(0, relay_to_ada, n.ids[Net::ada], true, wire::RelayData{77, Bytes{1, 2}});
  n.e[Net::relay].on_message(0, relay_to_ada, n.ids[Net::ada], true, wire::RelayAck{77, 5});
  n.e[Net::bob].on_message(0, bob_to_relay, n.ids[Net::relay], true, wire::RelayClose{9, "x"});
  n.run();
  CHECK(n.e[Net::relay].relayed_links() == 1);
  CHECK(n.ended[Net::bob].empty());
  CHECK(n.received[Net::bob].empty());
  CHECK_FALSE(parse_relayed_address("1.2.3.4:5"));
  CHECK_FALSE(parse_relayed_address("1.2.3.4:5/via/abc"));
}

}  // namespace
}  // namespace qun
