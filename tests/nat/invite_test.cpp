// Invites that work from home (issue 14): a code made behind NAT carries the group's relay as
// well as the inviter's own address, so a member behind another NAT joins with it through a
// relay on the internet; a member on the inviter's LAN links to it directly, by its LAN address.
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
using integration::Node;
using integration::NodeOptions;

// True when n has an established link to the node with id `peer` at `address` (any address
// when empty).
bool linked(const Node& n, const std::string& peer, const std::string& address = {}) {
  const Json l = link_to(n, peer);
  return !l.is_null() && (address.empty() || l["address"] == address);
}

// Proves the join from home to home: Ada (behind a port-keeping NAT) names a relay on the
// internet in her group and invites Bob (behind a symmetric NAT). Her code carries her LAN
// address and the relay, and says nothing only her LAN could use. Bob joins with it; both post
// and each reads the other's post, through the relay, since neither can dial the other. Then
// Cy, on Ada's LAN, joins with a code of Ada's and links to her directly at her LAN address.
TEST_CASE("invites: a member behind NAT invites members behind another NAT and on its LAN",
          "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  HomeNetwork net({{.symmetric = false, .hosts = 2}, {.symmetric = true}});
  Cluster cluster;
  auto& ada = cluster.add("ada");
  ada.start(in(net, net.home_ns(0, 0), net.home_ip(0, 0)));
  auto& relay = cluster.add("relay");
  NodeOptions r = in(net, net.internet_ns(0), net.internet_ip(0));
  r.relay = true;
  r.extra_args = {"--relay-allow", ada.id()};
  relay.start(r);
  auto& bob = cluster.add("bob");
  bob.start(in(net, net.home_ns(1), net.home_ip(1)));
  auto& cy = cluster.add("cy");
  cy.start(in(net, net.home_ns(0, 1), net.home_ip(0, 1)));

  const std::string group = integration::create_group(ada, "lobby");
  ada.ok({"relay", "add", group, relay.address()});
  integration::wait_until([&] { return ada.json({"id"})["reachability"] == "behind_nat"; },
                          integration::propagate_bound, "Ada knows she is behind NAT");

  const std::string code = ada.ok({"invite", group});
  auto decoded = decode_invite_code(code);
  REQUIRE(decoded.ok());
  const auto& peers = decoded.value().peers;
  INFO("code peers: " << Json(peers).dump());
  REQUIRE_FALSE(peers.empty());
  CHECK(peers.front() == ada.address());  // her own (LAN) address first, for her LAN
  CHECK(std::find(peers.begin(), peers.end(), relay.address()) != peers.end());

  CHECK(bob.ok({"join", code}) == group);
  ada.ok({"post", group, "hello from home 1"});
  bob.ok({"post", group, "hello from home 2"});
  integration::wait_for_posts(bob, group, {"hello from home 1"});
  integration::wait_for_posts(ada, group, {"hello from home 2"});
  // Neither can dial the other: what they said went through the relay (by its store, or by a
  // relayed link through it, never by a direct link).
  for (const auto& p : bob.json({"peers"}))
    if (p["id"] == ada.id()) CHECK(p["via"] == relay.id());
  CHECK(linked(bob, relay.id()));

  CHECK(integration::invite_and_join(ada, cy, group) == group);
  integration::wait_until([&] { return linked(cy, ada.id(), ada.address()); },
                          integration::propagate_bound, "Cy links to Ada at her LAN address");
  ada.ok({"post", group, "hello neighbour"});
  integration::wait_for_posts(cy, group, {"hello neighbour", "hello from home 2"});

  // A group with no relay: Ada's code names nothing outside her LAN, and she is told so.
  const std::string alone = integration::create_group(ada, "kitchen");
  auto invited = ada.qun({"invite", alone});
  REQUIRE(invited.ok());
  CHECK_THAT(invited.err, Catch::Contains("behind NAT") && Catch::Contains("qun relay add"));
}

// Proves a node behind a router that forwards its port is found reachable at the router's
// address, advertises it, and puts it in its codes after its own: Bob, behind another NAT, then
// links to Ada directly at her router's address.
TEST_CASE("invites: a node behind a forwarded port is reachable and its codes carry its public "
          "address",
          "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  HomeNetwork net({{.symmetric = false}, {.symmetric = true}});
  // A fixed port: each namespace has its own ports, and the router forwards this one.
  constexpr int port = 7420;
  net.forward_port(0, port);
  Cluster cluster;
  auto& ada = cluster.add("ada");
  NodeOptions a = in(net, net.home_ns(0), net.home_ip(0));
  a.listen = net.home_ip(0) + ":" + std::to_string(port);
  ada.start(a);
  auto& relay = cluster.add("relay");
  NodeOptions r = in(net, net.internet_ns(0), net.internet_ip(0));
  r.relay = true;
  r.extra_args = {"--relay-allow", ada.id()};
  relay.start(r);
  auto& bob = cluster.add("bob");
  bob.start(in(net, net.home_ns(1), net.home_ip(1)));

  const std::string group = integration::create_group(ada, "lobby");
  ada.ok({"relay", "add", group, relay.address()});
  const std::string public_address = net.router_public_ip(0) + ":" + std::to_string(port);
  integration::wait_until(
      [&] {
        Json id = ada.json({"id"});
        return id["reachability"] == "reachable" && id["advertised"] == public_address;
      },
      integration::propagate_bound, "Ada is reachable at her router's address");

  const std::string code = ada.ok({"invite", group});
  auto decoded = decode_invite_code(code);
  REQUIRE(decoded.ok());
  const auto& peers = decoded.value().peers;
  INFO("code peers: " << Json(peers).dump());
  REQUIRE(peers.size() >= 2);
  CHECK(peers[0] == ada.address());
  CHECK(peers[1] == public_address);

  CHECK(bob.ok({"join", code}) == group);
  integration::wait_until([&] { return linked(bob, ada.id(), public_address); },
                          integration::propagate_bound, "Bob links to Ada at her router's address");
}

}  // namespace
}  // namespace qun::nat
