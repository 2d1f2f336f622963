// The home network fixture itself (tests/nat/home_network.h): homes reach the internet through
// their routers, nothing on the internet reaches into a home, and every namespace is gone after.
#include <catch2/catch.hpp>
#include <iostream>

#include "tests/integration/harness.h"
#include "tests/nat/home_network.h"

namespace qun::nat {
namespace {

using integration::Cluster;
using integration::NodeOptions;

std::vector<std::string> namespaces_now() {
  auto o = integration::run({"/usr/sbin/ip", "netns", "list"}, integration::child_env());
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < o.out.size()) {
    auto end = o.out.find('\n', start);
    if (end == std::string::npos) end = o.out.size();
    auto line = o.out.substr(start, end - start);
    if (!line.empty()) out.push_back(line.substr(0, line.find(' ')));
    start = end + 1;
  }
  return out;
}

bool exists(const std::string& ns) {
  for (const auto& n : namespaces_now())
    if (n == ns) return true;
  return false;
}

// Proves the topology: a node in each home (one behind a port-keeping router, one behind a
// symmetric one) connects to a relay on the internet, while neither the relay nor the other
// home can open a connection to it; then that the fixture removes every namespace it made.
TEST_CASE("home network: homes reach the internet, the internet does not reach into a home",
          "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  std::vector<std::string> made;
  {
    HomeNetwork net({{.symmetric = false}, {.symmetric = true}});
    made = net.namespaces();
    Cluster cluster;
    auto& relay = cluster.add("relay");
    NodeOptions r = NodeOptions::as_relay();
    r.listen = net.internet_ip(0) + ":0";
    r.wrapper = net.exec_in(net.internet_ns(0));
    relay.start(r);
    auto& ada = cluster.add("ada");
    NodeOptions a;
    a.listen = net.home_ip(0) + ":0";
    a.wrapper = net.exec_in(net.home_ns(0));
    ada.start(a);

    CHECK(net.can_connect(net.home_ns(0), relay.address()));
    CHECK(net.can_connect(net.home_ns(1), relay.address()));
    CHECK_FALSE(net.can_connect(net.internet_ns(0), ada.address()));
    CHECK_FALSE(net.can_connect(net.home_ns(1), ada.address()));
    // The router's own address has nothing listening: a dial to it is refused, not forwarded.
    const std::string port = ada.address().substr(ada.address().rfind(':') + 1);
    CHECK_FALSE(net.can_connect(net.internet_ns(0), net.router_public_ip(0) + ":" + port));
    for (const auto& ns : made) CHECK(exists(ns));
  }
  for (const auto& ns : made) CHECK_FALSE(exists(ns));
}

// Proves the cleanup of leftovers: a namespace named for a test process that no longer runs
// (a pid above any pid_max) is removed by the next fixture, one of a running process is not.
TEST_CASE("home network: leftovers of a dead test process are removed at start", "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  const std::string stale = "qunnat99999999-stale";
  REQUIRE(integration::run({"/usr/sbin/ip", "netns", "add", stale}, integration::child_env()).ok());
  REQUIRE(exists(stale));
  CHECK(HomeNetwork::remove_leftovers() >= 1);
  CHECK_FALSE(exists(stale));
}

}  // namespace
}  // namespace qun::nat
