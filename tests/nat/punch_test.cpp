// Hole punching (issue 14) with real nodes behind real NAT: two members whose routers keep ports
// turn their relayed link into a direct one by dialling each other at the same moment, and keep
// chatting when the relay stops; a member behind a symmetric NAT (a new port per connection)
// cannot be punched to, and keeps chatting over the relayed link.
#include <catch2/catch.hpp>
#include <iostream>

#include "tests/integration/harness.h"
#include "tests/nat/home_network.h"
#include "tests/nat/nodes.h"

namespace qun::nat {
namespace {

using integration::Cluster;
using integration::Json;
using integration::Node;
using integration::NodeOptions;

// Ada in home 0 founds a group served by the relay, and Bob in home 1 joins it with her code.
struct Homes {
  HomeNetwork net;
  Cluster cluster;
  Node* ada = nullptr;
  Node* bob = nullptr;
  Node* relay = nullptr;
  std::string group;

  explicit Homes(bool bob_symmetric)
      : net({{.symmetric = false, .stealth = true}, {.symmetric = bob_symmetric, .stealth = true}}) {
    ada = &cluster.add("ada");
    ada->start(in(net, net.home_ns(0), net.home_ip(0)));
    relay = &cluster.add("relay");
    NodeOptions r = in(net, net.internet_ns(0), net.internet_ip(0));
    r.relay = true;
    r.extra_args = {"--relay-allow", ada->id()};
    relay->start(r);
    bob = &cluster.add("bob");
    bob->start(in(net, net.home_ns(1), net.home_ip(1)));
    group = integration::create_group(*ada, "homes");
    ada->ok({"relay", "add", group, relay->address()});
    integration::wait_until([&] { return ada->json({"id"})["reachability"] == "behind_nat"; },
                            integration::propagate_bound, "Ada knows she is behind NAT");
    REQUIRE(integration::invite_and_join(*ada, *bob, group) == group);
  }
};

std::uint64_t punches(const Node& n, const char* what) {
  return n.json({"status"})["relayed"]["punch"][what].get<std::uint64_t>();
}

// Proves hole punching end to end: Ada and Bob, behind two port-keeping NATs, first link through
// the relay, then punch: both end up with a direct link to each other (`"via"` null), which
// replaced the relayed one. The relay then stops, and
// they keep chatting over the direct link.
TEST_CASE("punch: members behind two NATs end up with a direct link and keep chatting without "
          "the relay",
          "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  Homes h(false);
  Node& ada = *h.ada;
  Node& bob = *h.bob;
  integration::wait_until(
      [&] {
        Json a = link_to(ada, bob.id()), b = link_to(bob, ada.id());
        return !a.is_null() && !b.is_null() && a["via"].is_null() && b["via"].is_null();
      },
      3 * integration::propagate_bound, "Ada and Bob have a direct link");
  CHECK(punches(ada, "succeeded") + punches(bob, "succeeded") >= 2);

  ada.ok({"post", h.group, "before the relay stops"});
  integration::wait_for_posts(bob, h.group, {"before the relay stops"});
  h.relay->stop();
  ada.ok({"post", h.group, "hello without the relay"});
  bob.ok({"post", h.group, "hello back"});
  integration::wait_for_posts(bob, h.group, {"hello without the relay"});
  integration::wait_for_posts(ada, h.group, {"hello back"});
  CHECK(link_to(ada, bob.id())["via"].is_null());
}

// Proves the fallback: Bob's router maps every connection to a new random port, so the address
// Ada is told to dial him at leads nowhere and his dial reaches Ada from a port she does not
// expect. Their punch fails, and they keep their relayed link and chat over it.
TEST_CASE("punch: a member behind a symmetric NAT keeps chatting over the relayed link", "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  Homes h(true);
  Node& ada = *h.ada;
  Node& bob = *h.bob;
  integration::wait_until(
      [&] { return punches(ada, "failed") + punches(bob, "failed") >= 2; },
      3 * integration::propagate_bound, "a punch fails");
  Json l = link_to(ada, bob.id());
  REQUIRE_FALSE(l.is_null());
  CHECK(l["via"] == h.relay->id());
  ada.ok({"post", h.group, "hello through the relay"});
  bob.ok({"post", h.group, "hello back through it"});
  integration::wait_for_posts(bob, h.group, {"hello through the relay"});
  integration::wait_for_posts(ada, h.group, {"hello back through it"});
  CHECK(link_to(bob, ada.id())["via"] == h.relay->id());
}

}  // namespace
}  // namespace qun::nat
