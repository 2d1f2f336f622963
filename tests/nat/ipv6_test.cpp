// IPv6 beside IPv4 NAT (issue 14): many homes have a global IPv6 address and no NAT on it, while
// their IPv4 goes through the router's NAT. Members in two such homes link directly over IPv6,
// where over IPv4 they could only talk through a relay.
#include <catch2/catch.hpp>
#include <iostream>

#include "node/invite.h"
#include "tests/integration/harness.h"
#include "tests/nat/home_network.h"
#include "tests/nat/nodes.h"

namespace qun::nat {
namespace {

using integration::Cluster;
using integration::Json;

// A dial-back's verdict takes at most reach_limits::dial_back_timeout_ms (25 s) after the link it
// is asked on comes up; twice that covers the link coming up first.
constexpr integration::Millis verdict_bound{50'000};

// Options for a node in home k listening on its LAN IPv4 address and its global IPv6 address.
integration::NodeOptions both(const HomeNetwork& net, int k) {
  integration::NodeOptions o = in(net, net.home_ns(k), net.home_ip(k));
  o.extra_args = {"--listen", "[" + net.home_ip6(k) + "]:0"};
  return o;
}

// n's IPv6 listen address, from `qun id`.
std::string six(const integration::Node& n) {
  const Json id = n.json({"id"});
  for (const auto& a : id["listen"])
    if (a.get<std::string>().front() == '[') return a.get<std::string>();
  return std::string();
}

// What both tests start with: Ada in home 0 and Bob in home 1, each listening on its LAN IPv4
// and global IPv6 addresses, and a relay on the internet that takes Ada's groups.
struct Trio {
  integration::Node& ada;
  integration::Node& relay;
  integration::Node& bob;
  std::string ada6, bob6;  // their IPv6 listen addresses
};
Trio start_trio(const HomeNetwork& net, Cluster& cluster) {
  auto& ada = cluster.add("ada");
  ada.start(both(net, 0));
  auto& relay = cluster.add("relay");
  integration::NodeOptions r = in(net, net.internet_ns(0), net.internet_ip(0), true);
  r.extra_args = {"--relay-allow", ada.id()};
  relay.start(r);
  auto& bob = cluster.add("bob");
  bob.start(both(net, 1));
  return Trio{ada, relay, bob, six(ada), six(bob)};
}

// The reachability `qun id --json` shows for one family ("ipv4", "ipv6"), or "" if none.
std::string family_status(const integration::Node& n, const std::string& family) {
  const Json id = n.json({"id"});
  for (const auto& f : id["families"])
    if (f["family"] == family) return f["reachability"].get<std::string>();
  return std::string();
}

// Proves two members behind IPv4 NATs that keep no ports (symmetric: a hole punch over IPv4
// fails), each with a global IPv6 address, link directly over IPv6: each listens on its LAN IPv4
// address and its IPv6 one and advertises both (`qun id`'s `addresses`); Ada's code carries her
// IPv6 address; Bob joins with it and his link to Ada is direct, at that address. With the relay
// (IPv4 only) stopped, they keep chatting over it. Reachability is per family: Ada is behind NAT
// on IPv4 (the relay's dial-back fails) and reachable on IPv6 (Bob's gets through), and `qun id`
// says both.
TEST_CASE("ipv6: members behind IPv4 NATs with global IPv6 link directly over IPv6", "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  HomeNetwork net({{.symmetric = true, .ipv6 = true}, {.symmetric = true, .ipv6 = true}});
  Cluster cluster;
  auto [ada, relay, bob, ada6, bob6] = start_trio(net, cluster);
  REQUIRE(ada6.rfind("[" + net.home_ip6(0) + "]:", 0) == 0);
  CHECK(ada.json({"id"})["addresses"] == Json::array({ada.address(), ada6}));

  const std::string group = integration::create_group(ada, "lobby");
  ada.ok({"relay", "add", group, relay.address()});
  const std::string code = ada.ok({"invite", group});
  auto decoded = decode_invite_code(code);
  REQUIRE(decoded.ok());
  const auto& peers = decoded.value().peers;
  INFO("code peers: " << Json(peers).dump());
  CHECK(std::find(peers.begin(), peers.end(), ada6) != peers.end());
  CHECK(std::find(peers.begin(), peers.end(), relay.address()) != peers.end());

  CHECK(bob.ok({"join", code}) == group);
  integration::wait_until(
      [&] {
        const Json l = link_to(bob, ada.id());
        return !l.is_null() && l["address"] == ada6 && l["via"].is_null();
      },
      integration::propagate_bound, "Bob links to Ada directly at her IPv6 address");
  // Ada's side names where she would dial Bob, from his latest hello: his IPv6 address once his
  // IPv4 address is the relayed one (he says so again when his reservation is taken); before
  // that his LAN address ranks first (node/addresses.h), which under a sanitizer's slower start
  // is what Ada sees at first.
  integration::wait_until(
      [&] {
        const Json back = link_to(ada, bob.id());
        return !back.is_null() && back["via"].is_null() && back["address"] == bob6;
      },
      integration::propagate_bound, "Ada's link to Bob is direct, at his IPv6 address");

  integration::wait_until(
      [&] {
        return family_status(ada, "ipv4") == "behind_nat" && family_status(ada, "ipv6") == "reachable";
      },
      verdict_bound, "Ada is behind NAT on IPv4 and reachable on IPv6");
  const std::string shown = ada.ok({"id"});
  CHECK_THAT(shown, Catch::Contains("public  IPv4 behind NAT, seen as " + net.router_public_ip(0)));
  CHECK_THAT(shown, Catch::Contains("public  IPv6 reachable, seen as " + ada6.substr(0, ada6.rfind(':'))));
  CHECK_THAT(ada.ok({"status"}), Catch::Contains("IPv4 behind NAT") && Catch::Contains("; IPv6 reachable"));
  const Json addresses = ada.json({"id"})["addresses"];
  CHECK(std::find(addresses.begin(), addresses.end(), Json(ada6)) != addresses.end());

  ada.ok({"post", group, "over six"});
  integration::wait_for_posts(bob, group, {"over six"});
  relay.stop();
  bob.ok({"post", group, "still here"});
  integration::wait_for_posts(ada, group, {"still here"});
}

// Proves a home whose router keeps a firewall on IPv6 is found behind NAT on IPv6 too and stops
// advertising its IPv6 address (a dialler would try it first and wait for its dial to time out):
// Bob's IPv6 is open, Ada's shut; Bob cannot dial Ada (her IPv4 NAT is symmetric, her IPv6
// firewalled), but Ada dials Bob's IPv6 address (from his hello over their relayed link, or
// from a shuffle) and links to him directly; over that link Bob's dial-back to her IPv6 address
// fails. (The move from a relayed link on a hello alone: tests/sim/nat_sim_test.cpp.)
TEST_CASE("ipv6: a home with an IPv6 firewall is behind NAT on IPv6 and stops advertising it",
          "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  HomeNetwork net({{.symmetric = true, .ipv6 = true, .ipv6_firewall = true},
                   {.symmetric = true, .ipv6 = true}});
  Cluster cluster;
  auto [ada, relay, bob, ada6, bob6] = start_trio(net, cluster);

  const std::string group = integration::create_group(ada, "lobby");
  ada.ok({"relay", "add", group, relay.address()});
  CHECK(bob.ok({"join", ada.ok({"invite", group})}) == group);
  integration::wait_until(
      [&] {
        const Json l = link_to(ada, bob.id());
        return !l.is_null() && l["via"].is_null() && l["address"] == bob6;
      },
      verdict_bound, "Ada links to Bob directly at his IPv6 address");
  integration::wait_until([&] { return family_status(ada, "ipv6") == "behind_nat"; },
                          verdict_bound, "Ada is behind NAT (a firewall) on IPv6");
  const Json addresses = ada.json({"id"})["addresses"];
  INFO("addresses: " << addresses.dump());
  CHECK(std::find(addresses.begin(), addresses.end(), Json(ada6)) == addresses.end());
  CHECK_THAT(ada.ok({"id"}), Catch::Contains("public  IPv6 behind NAT"));
  auto code = decode_invite_code(ada.ok({"invite", group}));
  REQUIRE(code.ok());
  CHECK(std::find(code.value().peers.begin(), code.value().peers.end(), ada6) ==
        code.value().peers.end());
  integration::wait_until([&] { return family_status(bob, "ipv6") == "reachable"; },
                          verdict_bound, "Bob is reachable on IPv6");
  ada.ok({"post", group, "through the firewall, outwards"});
  integration::wait_for_posts(bob, group, {"through the firewall, outwards"});
}

}  // namespace
}  // namespace qun::nat
