// Tests for node/reachability.h: addresses, observed addresses, the dial-back exchange from
// both ends, the verdict rule and the bounds, on the engine alone (sans-IO: times are passed in,
// outputs drained by hand).
#include "node/reachability.h"

#include <catch2/catch.hpp>

namespace qun {
namespace {

namespace rl = reach_limits;

PublicKey key(std::uint8_t n) {
  PublicKey k;
  k.bytes.fill(n);
  return k;
}

std::vector<ReachOutput> drain(Reachability& r) {
  std::vector<ReachOutput> out;
  while (auto o = r.poll()) out.push_back(std::move(*o));
  return out;
}

// The only output, which must be a Send of message type T on conn.
template <typename T>
T sent(Reachability& r, ConnId conn) {
  auto out = drain(r);
  REQUIRE(out.size() == 1);
  auto* s = std::get_if<reach_output::Send>(&out[0]);
  REQUIRE(s);
  CHECK(s->conn == conn);
  auto* m = std::get_if<T>(&s->message);
  REQUIRE(m);
  return *m;
}

// A node at 10.1.0.2:7420 behind a router 198.51.100.1, linked to public peer n over conn n,
// which reports it sees the node from the router's port 4000+n. Returns the DialBack it asks.
std::optional<wire::DialBack> link_public(Reachability& r, Millis now, std::uint8_t n) {
  r.on_link_up(now, n, key(n), "198.51.100." + std::to_string(10 + n) + ":7420");
  auto observed = sent<wire::Observed>(r, n);
  CHECK(observed.address == "198.51.100." + std::to_string(10 + n) + ":7420");
  r.on_message(now, n, key(n), wire::Observed{"198.51.100.1:" + std::to_string(4000 + n)});
  auto out = drain(r);
  if (out.empty()) return std::nullopt;
  REQUIRE(out.size() == 1);
  auto& s = std::get<reach_output::Send>(out[0]);
  CHECK(s.conn == n);
  return std::get<wire::DialBack>(s.message);
}

TEST_CASE("reachability: addresses parse to one spelling, and public ones are told apart",
          "[node][reachability]") {
  // Proves HOST:PORT parsing takes IP literals only (IPv6 in brackets) with ports 1 to 65535,
  // writes each address one way, and classifies loopback, private, link-local, shared and
  // unspecified addresses as not public.
  CHECK(parse_host_port("198.51.100.1:4000")->str() == "198.51.100.1:4000");
  CHECK(parse_host_port("[2001:DB8:0::1]:7420")->str() == "[2001:db8::1]:7420");
  for (const char* bad : {"", "host:1", "1.2.3.4", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:x",
                          "::1:5", "[::1]", "[::1]5", "1.2.3.4:5:6", "example.org:7420"})
    CHECK_FALSE(parse_host_port(bad));
  for (const char* pub : {"198.51.100.1:1", "8.8.8.8:1", "[2001:db8::1]:1", "[::ffff:8.8.8.8]:1"})
    CHECK(is_public_host(*parse_host_port(pub)));
  for (const char* priv :
       {"10.1.0.2:1", "172.16.0.1:1", "172.31.255.1:1", "192.168.1.1:1", "127.0.0.1:1",
        "169.254.0.1:1", "100.64.0.1:1", "0.0.0.0:1", "224.0.0.1:1", "[::1]:1", "[::]:1",
        "[fd00::1]:1", "[fe80::1]:1", "[::ffff:10.0.0.1]:1"})
    CHECK_FALSE(is_public_host(*parse_host_port(priv)));
  CHECK(is_public_host(*parse_host_port("172.32.0.1:1")));
}

TEST_CASE("reachability: a node behind NAT learns its public address and that it is behind NAT",
          "[node][reachability]") {
  // Proves the requester's side: every link is told what it is seen from; a public observer is
  // asked to dial back the listening port; an "unreachable" verdict makes the node behind NAT,
  // advertising its own address, and shows the router's address as observed.
  Reachability r("10.1.0.2:7420");
  CHECK(r.status() == Reachable::unknown);
  CHECK_FALSE(r.observed());
  auto ask = link_public(r, 100, 1);
  REQUIRE(ask);
  CHECK(ask->port == 7420);
  CHECK(r.is_probe_from(key(1)));
  CHECK(r.next_deadline() == 100 + rl::dial_back_timeout_ms);
  r.on_message(200, 1, key(1), wire::DialBackResult{ask->nonce, wire::DialBackOutcome::unreachable});
  CHECK(r.status() == Reachable::behind_nat);
  CHECK(r.observed() == "198.51.100.1:4001");
  CHECK(r.advertised() == "10.1.0.2:7420");
  CHECK_FALSE(r.is_probe_from(key(1)));
  // The next check waits for recheck_interval_ms.
  CHECK(r.next_deadline() == 200 + rl::recheck_interval_ms);
  r.on_tick(200 + rl::recheck_interval_ms - 1);
  CHECK(drain(r).empty());
  r.on_tick(200 + rl::recheck_interval_ms);
  auto again = sent<wire::DialBack>(r, 1);
  CHECK(again.nonce != ask->nonce);
}

TEST_CASE("reachability: a dial-back that gets through makes the public address advertised",
          "[node][reachability]") {
  Reachability r("10.1.0.2:7420");
  auto ask = link_public(r, 0, 1);
  REQUIRE(ask);
  r.on_message(5, 1, key(1), wire::DialBackResult{ask->nonce, wire::DialBackOutcome::reachable});
  CHECK(r.status() == Reachable::reachable);
  CHECK(r.advertised() == "198.51.100.1:7420");  // the public host, on the listening port
}

TEST_CASE("reachability: only public observers are asked, and stray answers change nothing",
          "[node][reachability]") {
  // Proves a peer on the same LAN (which sees the private address) is never asked, and that an
  // answer with the wrong nonce, on the wrong link, or after the link closed is ignored.
  Reachability r("10.1.0.2:7420");
  r.on_link_up(0, 1, key(1), "10.1.0.3:7420");
  (void)sent<wire::Observed>(r, 1);
  r.on_message(0, 1, key(1), wire::Observed{"10.1.0.2:50000"});
  CHECK(drain(r).empty());
  CHECK(r.observed() == "10.1.0.2:50000");
  CHECK_FALSE(r.next_deadline());
  // A peer's garbage observation is ignored.
  r.on_message(0, 1, key(1), wire::Observed{"not an address"});
  CHECK(r.observed() == "10.1.0.2:50000");

  auto ask = link_public(r, 0, 2);
  REQUIRE(ask);
  CHECK(r.observed() == "198.51.100.1:4002");  // public beats private
  r.on_message(1, 2, key(2), wire::DialBackResult{ask->nonce + 1, wire::DialBackOutcome::reachable});
  r.on_message(1, 1, key(1), wire::DialBackResult{ask->nonce, wire::DialBackOutcome::reachable});
  CHECK(r.status() == Reachable::unknown);
  r.on_closed(2, 2);
  r.on_message(3, 2, key(2), wire::DialBackResult{ask->nonce, wire::DialBackOutcome::reachable});
  CHECK(r.status() == Reachable::unknown);
}

TEST_CASE("reachability: no answer, a refusal or a closed link gives no verdict and a retry",
          "[node][reachability]") {
  Reachability r("10.1.0.2:7420");
  auto ask = link_public(r, 0, 1);
  REQUIRE(ask);
  r.on_tick(rl::dial_back_timeout_ms - 1);
  CHECK(drain(r).empty());
  r.on_tick(rl::dial_back_timeout_ms);
  CHECK(r.status() == Reachable::unknown);
  CHECK(r.next_deadline() == rl::dial_back_timeout_ms + rl::retry_interval_ms);
  r.on_tick(rl::dial_back_timeout_ms + rl::retry_interval_ms);
  auto second = sent<wire::DialBack>(r, 1);
  r.on_message(rl::dial_back_timeout_ms + rl::retry_interval_ms, 1, key(1),
               wire::DialBackResult{second.nonce, wire::DialBackOutcome::refused});
  CHECK(r.status() == Reachable::unknown);
  CHECK_FALSE(r.is_probe_from(key(1)));
}

TEST_CASE("reachability: the verdict is the majority of distinct peers, so one liar cannot flip it",
          "[node][reachability]") {
  // Proves the status rule: the latest verdict of each of up to verdicts_max peers, reachable on
  // a majority or a tie, and that the peer without a verdict is asked before one with.
  Reachability r("10.1.0.2:7420");
  Millis now = 0;
  auto verdict = [&](ConnId conn, wire::DialBackOutcome outcome) {
    auto ask = sent<wire::DialBack>(r, conn);
    r.on_message(now, conn, key(static_cast<std::uint8_t>(conn)), wire::DialBackResult{ask.nonce, outcome});
    now += rl::recheck_interval_ms;
    r.on_tick(now);
  };
  r.on_link_up(now, 1, key(1), "198.51.100.11:7420");
  r.on_message(now, 1, key(1), wire::Observed{"198.51.100.1:4001"});
  r.on_link_up(now, 2, key(2), "198.51.100.12:7420");
  r.on_message(now, 2, key(2), wire::Observed{"198.51.100.1:4002"});
  r.on_link_up(now, 3, key(3), "198.51.100.13:7420");
  r.on_message(now, 3, key(3), wire::Observed{"198.51.100.1:4003"});
  // Drop the three Observed sends; the first DialBack goes to peer 1.
  auto out = drain(r);
  REQUIRE(out.size() == 4);
  auto first = std::get<wire::DialBack>(std::get<reach_output::Send>(out[1]).message);
  r.on_message(now, 1, key(1), wire::DialBackResult{first.nonce, wire::DialBackOutcome::reachable});
  CHECK(r.status() == Reachable::reachable);  // the liar alone
  now += rl::recheck_interval_ms;
  r.on_tick(now);
  verdict(2, wire::DialBackOutcome::unreachable);
  CHECK(r.status() == Reachable::reachable);  // a tie
  verdict(3, wire::DialBackOutcome::unreachable);
  CHECK(r.status() == Reachable::behind_nat);  // two honest peers outvote it
  // Peer 1 (the oldest verdict) is asked next.
  auto next = sent<wire::DialBack>(r, 1);
  CHECK(next.port == 7420);
}

TEST_CASE("reachability: as the dialler, a dial-back goes only to the link's own address, bounded",
          "[node][reachability]") {
  // Proves the server's side: the probe targets the IP the request came from on the port asked
  // for, expecting the requester's identity; its outcome goes back with the nonce; a peer asking
  // again within dial_back_serve_interval_ms, a link with no known address, and requests past
  // dial_backs_in_flight_max are refused.
  Reachability r("198.51.100.10:7420");
  r.on_link_up(0, 1, key(1), "198.51.100.1:4001");
  (void)sent<wire::Observed>(r, 1);
  r.on_message(0, 1, key(1), wire::DialBack{42, 7420});
  auto out = drain(r);
  REQUIRE(out.size() == 1);
  auto d = std::get<reach_output::Dial>(out[0]);
  CHECK(d.address == "198.51.100.1:7420");
  CHECK(d.expected == key(1));
  r.probe_dialed(d.probe, 900);
  CHECK_FALSE(r.probe_done(1, 901, true));  // not a probe
  CHECK(r.probe_done(1, 900, false));
  auto result = sent<wire::DialBackResult>(r, 1);
  CHECK(result.nonce == 42);
  CHECK(result.outcome == wire::DialBackOutcome::unreachable);
  CHECK(r.stats().dial_backs_served == 1);

  r.on_message(2, 1, key(1), wire::DialBack{43, 7420});
  CHECK(sent<wire::DialBackResult>(r, 1).outcome == wire::DialBackOutcome::refused);
  r.on_link_up(2, 2, key(2), "");  // the driver did not know the address
  r.on_message(2, 2, key(2), wire::DialBack{1, 7420});
  CHECK(sent<wire::DialBackResult>(r, 2).outcome == wire::DialBackOutcome::refused);

  // In flight: dial_backs_in_flight_max probes at once, the next refused.
  Millis now = rl::dial_back_serve_interval_ms;
  for (std::uint8_t n = 10; n < 10 + rl::dial_backs_in_flight_max + 1; ++n) {
    r.on_link_up(now, n, key(n), "198.51.100." + std::to_string(n) + ":5000");
    (void)sent<wire::Observed>(r, n);
    r.on_message(now, n, key(n), wire::DialBack{n, 7420});
    auto o = drain(r);
    REQUIRE(o.size() == 1);
    if (n < 10 + rl::dial_backs_in_flight_max) {
      auto dial = std::get<reach_output::Dial>(o[0]);
      r.probe_dialed(dial.probe, 1000 + n);
    } else {
      auto s = std::get<reach_output::Send>(o[0]);
      CHECK(std::get<wire::DialBackResult>(s.message).outcome == wire::DialBackOutcome::refused);
    }
  }
  // A probe that comes up answers "reachable"; one whose requester's link is gone answers nobody.
  CHECK(r.probe_done(now, 1010, true));
  CHECK(sent<wire::DialBackResult>(r, 10).outcome == wire::DialBackOutcome::reachable);
  r.on_closed(now, 11);
  CHECK(r.probe_done(now, 1011, true));
  CHECK(drain(r).empty());
}

TEST_CASE("reachability: a busy node neither asks for a dial-back nor fails one it cannot start",
          "[node][reachability]") {
  // Proves both ends of the connection limit: a node without room for one more connection asks
  // no dial-back (the probe would be closed on arrival and read as "behind NAT"), and asks once
  // it has room again; a node that cannot start a probe it was asked for answers "refused" (no
  // verdict), never "unreachable".
  Reachability r("10.1.0.2:7420");
  r.set_room(false);
  CHECK_FALSE(link_public(r, 0, 1));  // observed, but no request without room
  CHECK(r.stats().dial_backs_asked == 0);
  r.set_room(true);
  r.on_tick(rl::retry_interval_ms);
  auto out = drain(r);
  REQUIRE(out.size() == 1);
  CHECK(std::holds_alternative<wire::DialBack>(std::get<reach_output::Send>(out[0]).message));

  Reachability server("198.51.100.10:7420");
  server.on_link_up(0, 1, key(1), "198.51.100.1:4001");
  (void)sent<wire::Observed>(server, 1);
  server.on_message(0, 1, key(1), wire::DialBack{7, 7420});
  auto o = drain(server);
  REQUIRE(o.size() == 1);
  server.probe_not_started(std::get<reach_output::Dial>(o[0]).probe);
  auto result = sent<wire::DialBackResult>(server, 1);
  CHECK(result.nonce == 7);
  CHECK(result.outcome == wire::DialBackOutcome::refused);
  CHECK(server.stats().dial_backs_refused == 1);
}

TEST_CASE("reachability: a node that does not listen asks nothing and has nothing due",
          "[node][reachability]") {
  // Proves an engine without a listen address (a node nobody can dial, which seeks a relay)
  // never asks for a dial-back and so names no deadline, even with a public observer: before,
  // it named a check that on_tick never ran, due again after every tick, and a driver that
  // honours deadlines (the simulator) spun at that instant.
  Reachability r("");
  r.on_link_up(0, 1, key(1), "198.51.100.11:7420");
  (void)sent<wire::Observed>(r, 1);
  r.on_message(0, 1, key(1), wire::Observed{"198.51.100.1:4001"});
  CHECK(drain(r).empty());
  CHECK(r.next_deadline() == std::nullopt);
  r.on_tick(1'000'000);
  CHECK(drain(r).empty());
  CHECK(r.observed() == "198.51.100.1:4001");
  CHECK(r.status() == Reachable::unknown);
}

TEST_CASE("reachability: observations are bounded to observers_max peers", "[node][reachability]") {
  Reachability r("10.1.0.2:7420");
  for (std::uint8_t n = 1; n <= rl::observers_max + 8; ++n)
    r.on_message(n, n, key(n), wire::Observed{"10.9.0." + std::to_string(n) + ":1"});
  // The newest observations stay, the oldest went: the latest of one report each wins.
  CHECK(r.observers() == rl::observers_max);
  CHECK(r.observed() == "10.9.0." + std::to_string(rl::observers_max + 8) + ":1");
}

}  // namespace
}  // namespace qun
