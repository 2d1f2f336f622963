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

// Proves two members behind IPv4 NATs that keep no ports (symmetric: a hole punch over IPv4
// fails), each with a global IPv6 address, link directly over IPv6: each listens on its LAN IPv4
// address and its IPv6 one and advertises both (`qun id`'s `addresses`); Ada's code carries her
// IPv6 address; Bob joins with it and his link to Ada is direct, at that address. With the relay
// (IPv4 only) stopped, they keep chatting over it.
TEST_CASE("ipv6: members behind IPv4 NATs with global IPv6 link directly over IPv6", "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  HomeNetwork net({{.symmetric = true, .ipv6 = true}, {.symmetric = true, .ipv6 = true}});
  Cluster cluster;
  auto both = [&](int k) {
    integration::NodeOptions o = in(net, net.home_ns(k), net.home_ip(k));
    o.extra_args = {"--listen", "[" + net.home_ip6(k) + "]:0"};
    return o;
  };
  auto& relay = cluster.add("relay");
  integration::NodeOptions r = in(net, net.internet_ns(0), net.internet_ip(0), true);
  auto& ada = cluster.add("ada");
  ada.start(both(0));
  r.extra_args = {"--relay-allow", ada.id()};
  relay.start(r);
  auto& bob = cluster.add("bob");
  bob.start(both(1));

  auto six = [](const integration::Node& n) {
    const Json id = n.json({"id"});
    for (const auto& a : id["listen"])
      if (a.get<std::string>().front() == '[') return a.get<std::string>();
    return std::string();
  };
  const std::string ada6 = six(ada);
  const std::string bob6 = six(bob);
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
  const Json back = link_to(ada, bob.id());
  REQUIRE_FALSE(back.is_null());
  CHECK(back["via"].is_null());
  CHECK(back["address"] == bob6);  // from Bob's hello: where Ada would dial him

  ada.ok({"post", group, "over six"});
  integration::wait_for_posts(bob, group, {"over six"});
  relay.stop();
  bob.ok({"post", group, "still here"});
  integration::wait_for_posts(ada, group, {"still here"});
}

}  // namespace
}  // namespace qun::nat
