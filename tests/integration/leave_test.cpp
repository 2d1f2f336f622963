// Leaving a group: the others see the member go, and the leaver's node forgets the group.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// True when a list of group objects (`group list`, or `status`'s "groups") has the group.
bool lists_group(const Json& groups, const std::string& group) {
  for (const auto& g : groups)
    if (g.value("id", "") == group) return true;
  return false;
}

// Proves: `qun leave` takes the group off the leaver's list at once; the leave event reaches the
// others (bob is no longer a member on alice's node); and once it has been sent, the leaver's
// node drops the group entirely (`qun status` no longer has it), so nothing of it is kept.
TEST_CASE("a member who leaves is gone from the group and the group from its node", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "cafe");
  REQUIRE(invite_and_join(a, b, group) == group);
  b.ok({"post", group, "bye all"});
  wait_for_posts(a, group, {"bye all"});

  b.ok({"leave", group});
  CHECK_FALSE(lists_group(b.json({"group", "list"}), group));
  CHECK(lists_group(b.json({"status"})["groups"], group));  // kept until the leave went out
  wait_until(
      [&] {
        for (const auto& m : a.json({"members", group}))
          if (m.value("id", "") == b.id()) return false;
        return true;
      },
      propagate_bound, "alice no longer lists bob as a member");
  wait_until([&] { return !lists_group(b.json({"status"})["groups"], group); }, propagate_bound,
             "bob's node dropped the group after its leave went out");
  // Alice's group goes on.
  a.ok({"post", group, "still here"});
  wait_for_posts(a, group, {"still here"});
}

}  // namespace
}  // namespace qun::integration
