// A node killed with SIGKILL loses nothing it acknowledged, and catches up when it restarts.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// Proves: `qun post` exiting 0 means the post is stored, not merely queued: A posts three times
// and is killed with SIGKILL the moment the last `qun post` returns, so no graceful shutdown
// flushes anything. Restarted on the same home (which also proves a crash leaves no stale lock
// or control socket that blocks the restart), A must list all three posts at once, before any
// peer could have sent them back. It must then catch up the posts B made while A was down, and
// B must get A's posts (which may not have left A before the kill). A second crash, this time
// during catch-up, must not lose anything either.
TEST_CASE("a node killed with SIGKILL after acknowledged posts keeps them and catches up",
          "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "lighthouse");
  REQUIRE(invite_and_join(a, b, group) == group);
  b.ok({"post", group, "hello from bob"});
  wait_for_posts(a, group, {"hello from bob"});

  const std::vector<std::string> acknowledged{"acked 1", "acked 2", "acked 3 then killed"};
  for (const auto& text : acknowledged) a.ok({"post", group, text});
  a.kill9();
  REQUIRE(a.process()->status());
  CHECK(describe_status(*a.process()->status()) == "signal 9 (Killed)");

  const std::vector<std::string> while_down{"while alice was down 1", "while alice was down 2"};
  for (const auto& text : while_down) b.ok({"post", group, text});

  // A restarts with no --peer: it must find B again from what it saved of the group.
  a.start();
  {
    const auto log = log_of(a, group);
    for (const auto& text : acknowledged) {
      INFO("acknowledged post missing right after the restart: " << text);
      CHECK(has_text(log, text));
    }
  }
  wait_for_posts(a, group, while_down);
  wait_for_posts(b, group, acknowledged);

  // Crash again right after another acknowledged post, restart with --peer, and check again.
  a.ok({"post", group, "acked 4 then killed again"});
  a.kill9();
  b.ok({"post", group, "while alice was down 3"});
  a.start(NodeOptions::with_peers({b.address()}));
  CHECK(has_text(log_of(a, group), "acked 4 then killed again"));
  wait_for_posts(a, group, {"while alice was down 3"});
  wait_for_posts(b, group, {"acked 4 then killed again"});

  // Both replicas hold the same history in the same order.
  wait_until([&] { return ids(log_of(a, group)) == ids(log_of(b, group)); }, propagate_bound,
             "alice and bob list the same events in the same order");
}

}  // namespace
}  // namespace qun::integration
