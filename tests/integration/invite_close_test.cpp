// Real nodes close used-up invites on their own (the daemon runs Replica::upkeep every second),
// and the close rotates the key before the next post (issue 10, findings 5 and 6).
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// Proves the daemon's hook: once bob joins with alice's one-use invite, alice's node (the
// invite's creator) authors a close-invite "used up" by itself, bob's node receives it, and
// bob's next post starts a new epoch (a rekey first), which alice reads. Before the hook no node
// ever closed an invite, so a replayed join could still take bob's use.
TEST_CASE("a used-up invite is closed by its creator's node and the next post rekeys",
          "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "gate");
  REQUIRE(invite_and_join(a, b, group) == group);

  auto close_in = [&](const Node& n) {
    for (const auto& line : log_of(n, group))
      if (line.value("kind", "") == "close-invite" && line.value("reason", "") == "used up")
        return line;
    return Json();
  };
  wait_until([&] { return !close_in(b).is_null(); }, propagate_bound,
             "[bob] has alice's close of the used-up invite");
  CHECK(close_in(b).value("nick", "") == "alice");

  b.ok({"post", group, "after the close"});
  wait_for_posts(a, group, {"after the close"});
  // Bob's post was preceded by a rekey of his: the close made the current key stale.
  const auto log = log_of(a, group);
  bool rekey_before_post = false;
  for (std::size_t i = 0; i + 1 < log.size(); ++i) {
    rekey_before_post = rekey_before_post ||
                        (log[i].value("kind", "") == "rekey" && text_of(log[i + 1]) == "after the close" &&
                         log[i].value("author", "") == log[i + 1].value("author", ""));
  }
  CHECK(rekey_before_post);
}

}  // namespace
}  // namespace qun::integration
