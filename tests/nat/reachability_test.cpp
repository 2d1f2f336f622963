// Knowing one's own reachability (issue 14), with real nodes behind real NAT: a node in a home
// learns the address its router shows the internet (observed addresses) and that it cannot be
// dialled there (dial-back), whether its router keeps ports or picks a new one per connection;
// a relay on the internet learns it can be dialled.
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

std::string host_of(const std::string& address) { return address.substr(0, address.rfind(':')); }

// Waits until `qun id --json` on n reports `reachability` with an observed address on `host`,
// and returns that answer.
Json wait_reachability(const Node& n, const std::string& reachability, const std::string& host) {
  Json last;
  integration::wait_until(
      [&] {
        last = n.json({"id"});
        return last.value("reachability", "") == reachability && last["observed"].is_string() &&
               host_of(last["observed"].get<std::string>()) == host;
      },
      integration::propagate_bound, n.name() + " is " + reachability + " seen from " + host);
  return last;
}

// Proves observed addresses and dial-back end to end: Ada (behind a port-keeping NAT) and Bob
// (behind a symmetric one) each link to a relay on the internet by asking it to serve a group;
// each hears the router's public address from the relay and is reported "behind NAT", since the
// relay's dial-back to the router finds nothing; the relay hears its own address from them, is
// dialled back by them and reports "reachable", and advertises that address.
TEST_CASE("reachability: nodes behind NAT see their router's address and are behind NAT, a relay "
          "on the internet is reachable",
          "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  HomeNetwork net({{.symmetric = false}, {.symmetric = true}});
  Cluster cluster;
  auto& relay = cluster.add("relay");
  relay.start(in(net, net.internet_ns(0), net.internet_ip(0), true));
  auto& ada = cluster.add("ada");
  ada.start(in(net, net.home_ns(0), net.home_ip(0)));
  auto& bob = cluster.add("bob");
  bob.start(in(net, net.home_ns(1), net.home_ip(1)));

  // Before any link, nothing is known.
  Json before = ada.json({"id"});
  CHECK(before["observed"].is_null());
  CHECK(before["reachability"] == "unknown");

  // A link to the relay: asking it to serve a group (it refuses an admin it does not know, but
  // the link comes up first, and reachability runs on every link).
  for (Node* n : {&ada, &bob}) {
    const std::string group = n->ok({"group", "create", "home-of-" + n->name()});
    n->qun({"relay", "add", group, relay.address()});
  }
  Json a = wait_reachability(ada, "behind_nat", net.router_public_ip(0));
  Json b = wait_reachability(bob, "behind_nat", net.router_public_ip(1));
  // Behind NAT, a node keeps advertising its own (LAN) address: the public one does not work.
  CHECK(a["advertised"] == ada.address());
  CHECK(b["advertised"] == bob.address());
  Json r = wait_reachability(relay, "reachable", net.internet_ip(0));
  CHECK(r["advertised"] == relay.address());

  // The same in words, and in `qun status`.
  CHECK_THAT(ada.ok({"id"}), Catch::Contains("behind NAT, seen as " + net.router_public_ip(0) + ":"));
  CHECK_THAT(relay.ok({"status"}), Catch::Contains("reachable, seen as " + relay.address()));
  Json s = bob.json({"status"});
  CHECK(s["reachability"] == "behind_nat");
  CHECK(host_of(s["observed"].get<std::string>()) == net.router_public_ip(1));
}

// Proves reachability over IPv6: a home with IPv6 and no NAT (its router routes it, no filter)
// is told its own global address and is dialled back there, so it is reachable and advertises
// the address it listens on; the relay it links to over IPv6 is reachable too.
TEST_CASE("reachability: a node in a home with IPv6 and no NAT is reachable over IPv6", "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  HomeNetwork net(std::vector<HomeSpec>{{.ipv6 = true}});
  Cluster cluster;
  auto& relay = cluster.add("relay");
  relay.start(in(net, net.internet_ns(0), "[" + net.internet_ip6(0) + "]", true));
  auto& ada = cluster.add("ada");
  ada.start(in(net, net.home_ns(0), "[" + net.home_ip6(0) + "]"));
  const std::string group = ada.ok({"group", "create", "six"});
  ada.qun({"relay", "add", group, relay.address()});
  Json a = wait_reachability(ada, "reachable", "[" + net.home_ip6(0) + "]");
  CHECK(a["advertised"] == ada.address());
  Json r = wait_reachability(relay, "reachable", "[" + net.internet_ip6(0) + "]");
  CHECK(r["advertised"] == relay.address());
}

}  // namespace
}  // namespace qun::nat
