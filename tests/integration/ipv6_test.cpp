// IPv6 end to end (issue 14): nodes that listen on an IPv6 address advertise it, put it in their
// invite codes, dial it and link over it; many homes have IPv6 and no NAT.
#include <catch2/catch.hpp>

#include <algorithm>

#include "node/invite.h"
#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

NodeOptions on_ipv6(std::vector<std::string> peers = {}) {
  NodeOptions o = NodeOptions::with_peers(std::move(peers));
  o.listen = "[::1]:0";
  return o;
}

// Proves listen, advertise, invite, dial and links over IPv6 on ::1: Ada's code names her
// "[::1]:PORT" address, Bob joins with it, and each reads the other's post over the link
// between their IPv6 addresses.
TEST_CASE("ipv6: nodes on ::1 invite, join, link and chat", "[integration][ipv6]") {
  Cluster cluster;
  auto& ada = cluster.add("ada");
  ada.start(on_ipv6());
  auto& bob = cluster.add("bob");
  bob.start(on_ipv6());
  REQUIRE(ada.address().rfind("[::1]:", 0) == 0);
  CHECK(ada.json({"id"})["advertised"] == ada.address());

  const std::string group = create_group(ada, "v6");
  const std::string code = ada.ok({"invite", group});
  auto decoded = decode_invite_code(code);
  REQUIRE(decoded.ok());
  REQUIRE_FALSE(decoded.value().peers.empty());
  CHECK(decoded.value().peers.front() == ada.address());

  CHECK(bob.ok({"join", code}) == group);
  ada.ok({"post", group, "over six"});
  bob.ok({"post", group, "and back"});
  wait_for_posts(bob, group, {"over six"});
  wait_for_posts(ada, group, {"and back"});
  bool linked = false;
  for (const auto& p : bob.json({"peers"}))
    if (p["id"] == ada.id() && p["state"] == "established" && p["address"] == ada.address())
      linked = true;
  CHECK(linked);
}

// Proves a node listening on IPv4 and IPv6 advertises both (`qun id`'s `addresses`), puts both
// in its invite codes, and hands both on in hellos and shuffles: Cy, who listens on IPv6 only
// and hears of Ada only from Bob, links to Ada at her IPv6 address (the one Cy dials first) and
// reads her post over it.
TEST_CASE("ipv6: a node on IPv4 and IPv6 advertises both, and an IPv6 peer links over IPv6",
          "[integration][ipv6]") {
  Cluster cluster;
  auto& ada = cluster.add("ada");
  NodeOptions both;
  both.extra_args = {"--listen", "[::1]:0"};
  ada.start(both);
  const Json id = ada.json({"id"});
  REQUIRE(id["listen"].size() == 2);
  const std::string ada6 = id["listen"][1].get<std::string>();
  REQUIRE(ada6.rfind("[::1]:", 0) == 0);
  CHECK(id["addresses"] == Json::array({ada.address(), ada6}));
  CHECK_THAT(ada.ok({"id"}), Catch::Contains("reach   " + ada.address() + " " + ada6));

  const std::string group = create_group(ada, "both");
  auto decoded = decode_invite_code(ada.ok({"invite", group}));
  REQUIRE(decoded.ok());
  const auto& peers = decoded.value().peers;
  CHECK(std::find(peers.begin(), peers.end(), ada.address()) != peers.end());
  CHECK(std::find(peers.begin(), peers.end(), ada6) != peers.end());

  auto& bob = cluster.add("bob");
  bob.start(on_ipv6());
  CHECK(bob.ok({"join", ada.ok({"invite", group})}) == group);
  // Cy's code names only Bob: Ada's addresses reach Cy in Bob's hello-fed shuffles.
  auto& cy = cluster.add("cy");
  cy.start(on_ipv6({bob.address()}));
  InviteCode code = decode_invite_code(ada.ok({"invite", group})).value();
  code.peers = {bob.address()};
  CHECK(cy.ok({"join", encode_invite_code(code)}) == group);
  ada.ok({"post", group, "over both"});
  wait_for_posts(cy, group, {"over both"});
  wait_until(
      [&] {
        for (const auto& p : cy.json({"peers"}))
          if (p["id"] == ada.id() && p["state"] == "established" && p["address"] == ada6)
            return true;
        return false;
      },
      propagate_bound, "cy links to ada at her IPv6 address");
}

}  // namespace
}  // namespace qun::integration
