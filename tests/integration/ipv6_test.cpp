// IPv6 end to end (issue 14): nodes that listen on an IPv6 address advertise it, put it in their
// invite codes, dial it and link over it; many homes have IPv6 and no NAT.
#include <catch2/catch.hpp>

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

}  // namespace
}  // namespace qun::integration
