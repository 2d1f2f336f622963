// Tests of the hole-punch engine (node/punch.h) on its own: two engines, a starter (the end that
// accepted the relayed link) and a caller, whose messages cross a simulated relayed link with a
// fixed one-way delay, through the wire codec.
#include <catch2/catch.hpp>

#include <deque>
#include <vector>

#include "node/punch.h"

namespace qun {
namespace {

PublicKey key(std::uint8_t b) {
  PublicKey k;
  k.bytes.fill(b);
  return k;
}

constexpr ConnId starter_conn = 7, caller_conn = 9;
constexpr Millis one_way_ms = 40;

// Two engines and the relayed link between them: messages arrive one_way_ms after they leave.
struct Pair {
  HolePunch e[2];  // 0: the starter, 1: the caller
  PublicKey ids[2] = {key(1), key(2)};
  std::string own[2] = {"198.51.100.1:7001", "198.51.100.2:7002"};
  struct InFlight {
    Millis at;
    int to;
    wire::Punch message;
  };
  std::deque<InFlight> wire;
  std::vector<std::pair<int, Millis>> dials;  // who dialled, when
  std::vector<std::string> dialled;           // the address each dial went to
  Millis now = 0;

  void drain() {
    for (int w : {0, 1}) {
      while (auto o = e[w].poll()) {
        if (auto* s = std::get_if<punch_output::Send>(&*o)) {
          auto decoded = decode_wire(encode_wire(s->message));
          REQUIRE(decoded.ok());
          wire.push_back({now + one_way_ms, 1 - w, std::get<wire::Punch>(decoded.value())});
        } else {
          auto& d = std::get<punch_output::Dial>(*o);
          CHECK(d.peer == ids[1 - w]);
          dials.push_back({w, now});
          dialled.push_back(d.address);
        }
      }
    }
  }
  // Runs until `until`, delivering messages and firing timers in time order.
  void run(Millis until) {
    drain();
    while (true) {
      std::optional<Millis> next;
      if (!wire.empty()) next = wire.front().at;
      for (int w : {0, 1}) next = earliest(next, e[w].next_deadline());
      if (!next || *next > until) break;
      now = std::max(now, *next);
      if (!wire.empty() && wire.front().at <= now) {
        auto m = wire.front();
        wire.pop_front();
        e[m.to].on_message(now, m.to == 0 ? starter_conn : caller_conn, ids[1 - m.to], m.message,
                           own[m.to]);
      }
      for (int w : {0, 1}) e[w].on_tick(now, own[w]);
      drain();
    }
    now = until;
  }
  void up() {
    e[0].on_relayed_up(now, starter_conn, ids[1], true, own[0]);
    e[1].on_relayed_up(now, caller_conn, ids[0], false, own[1]);
  }
};

// Proves the exchange and its timing: the starter's connect and the caller's reply cross the
// relayed link (one round trip, 80 ms); the starter sends sync and dials half a round trip later,
// which is when the sync reaches the caller, who dials at once: both dials leave at the same
// moment, each to the other's address.
TEST_CASE("punch: both ends dial each other at the same moment", "[node][punch]") {
  Pair p;
  p.up();
  p.run(1'000);
  REQUIRE(p.dials.size() == 2);
  CHECK(p.dials[0].second == p.dials[1].second);
  CHECK(p.dials[0].second == 3 * one_way_ms);  // connect, reply, then half a round trip
  for (std::size_t i = 0; i < 2; ++i) CHECK(p.dialled[i] == p.own[1 - p.dials[i].first]);
  p.e[0].on_dial_done(p.now, p.ids[1], true);
  p.e[1].on_dial_done(p.now, p.ids[0], true);
  p.run(60'000);
  CHECK(p.dials.size() == 2);  // done: no further attempt
  CHECK(p.e[0].stats().succeeded == 1);
}

// Proves the LAN comes first for two ends behind the same router: each names its LAN address
// second, and when the other's public host is its own, dials that LAN address (routers often
// do not loop their public address back). Behind different routers both dial the public
// addresses, LAN addresses or not; and only private addresses count as LAN ones.
TEST_CASE("punch: ends behind the same router dial each other on their LAN", "[node][punch]") {
  const std::string lan[2] = {"192.168.1.10:7001", "192.168.1.11:7002"};
  {
    Pair p;
    p.own[0] = "198.51.100.1:7001";
    p.own[1] = "198.51.100.1:7002";  // one router, two ports it kept
    p.e[0] = HolePunch(lan[0]);
    p.e[1] = HolePunch(lan[1]);
    p.up();
    p.run(1'000);
    REQUIRE(p.dials.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) CHECK(p.dialled[i] == lan[1 - p.dials[i].first]);
  }
  {
    Pair p;  // two routers: the LAN addresses are no use to the other end
    p.e[0] = HolePunch(lan[0]);
    p.e[1] = HolePunch(lan[1]);
    p.up();
    p.run(1'000);
    REQUIRE(p.dials.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) CHECK(p.dialled[i] == p.own[1 - p.dials[i].first]);
  }
  CHECK(lan_address_of("192.168.1.10:7420") == "192.168.1.10:7420");
  CHECK(lan_address_of("10.0.0.2:7420") == "10.0.0.2:7420");
  CHECK(lan_address_of("[fd00::2]:7420") == "[fd00::2]:7420");
  CHECK(lan_address_of("203.0.113.5:7420").empty());  // public
  CHECK(lan_address_of("127.0.0.1:7420").empty());
  CHECK(lan_address_of("0.0.0.0:7420").empty());
  CHECK(lan_address_of("[fe80::1]:7420").empty());  // link-local: needs a scope to dial
  CHECK(lan_address_of("relay.example:7420").empty());
}

// Proves the retries: each failed attempt is followed, retry_ms later, by a new exchange and
// dials, up to attempts_max attempts per relayed link; then the two stay relayed.
TEST_CASE("punch: a failed punch is retried, at most attempts_max times", "[node][punch]") {
  Pair p;
  p.up();
  for (std::size_t attempt = 1; attempt <= punch_limits::attempts_max + 1; ++attempt) {
    p.run(p.now + punch_limits::retry_ms + 1'000);
    const std::size_t expected = 2 * std::min(attempt, punch_limits::attempts_max);
    CHECK(p.dials.size() == expected);
    p.e[0].on_dial_done(p.now, p.ids[1], false);
    p.e[1].on_dial_done(p.now, p.ids[0], false);
  }
  CHECK(p.e[0].stats().failed == punch_limits::attempts_max);
  CHECK_FALSE(p.e[0].next_deadline());
}

// Proves that nothing is dialled without addresses: an end that has no public address (not
// behind NAT as far as it knows, or no observation) makes or answers an exchange with none, and
// neither end dials. A message out of turn (a sync before any exchange) does nothing either.
TEST_CASE("punch: no address, no dial; messages out of turn are ignored", "[node][punch]") {
  Pair p;
  p.own[1] = "";
  p.up();
  p.run(60'000);
  CHECK(p.dials.empty());
  Pair q;
  q.own[0] = "";
  q.up();
  q.run(60'000);
  CHECK(q.dials.empty());
  Pair r;
  r.e[1].on_relayed_up(0, caller_conn, r.ids[0], false, r.own[1]);
  r.e[1].on_message(0, caller_conn, r.ids[0], wire::Punch{wire::PunchPhase::sync, {}}, r.own[1]);
  r.e[1].on_message(0, 99, r.ids[0], wire::Punch{wire::PunchPhase::connect, {"1.2.3.4:5"}}, r.own[1]);
  r.drain();
  CHECK(r.dials.empty());
  CHECK(r.wire.empty());
}

// Proves a hostile peer at the other end of a relayed link cannot make this node dial without
// end: the answering end dials at most attempts_max times per relayed link, however many
// exchanges the peer starts (each connect and sync naming an address it chose, say a victim's),
// so its messages never turn this node into a source of connection attempts at their rate.
TEST_CASE("punch: a peer starting exchange after exchange gets at most attempts_max dials", "[node][punch]") {
  Pair p;
  p.e[1].on_relayed_up(0, caller_conn, p.ids[0], false, p.own[1]);
  const std::string victim = "203.0.113.80:443";
  for (int round = 0; round < 20; ++round) {
    p.e[1].on_message(p.now, caller_conn, p.ids[0], wire::Punch{wire::PunchPhase::connect, {victim}}, p.own[1]);
    p.e[1].on_message(p.now, caller_conn, p.ids[0], wire::Punch{wire::PunchPhase::sync, {}}, p.own[1]);
    p.wire.clear();  // the answers go to the hostile peer, who ignores them
    p.drain();
    p.e[1].on_dial_done(p.now, p.ids[0], false);
    p.now += 10;
  }
  CHECK(p.dials.size() == punch_limits::attempts_max);
  for (const auto& a : p.dialled) CHECK(a == victim);
}

}  // namespace
}  // namespace qun
