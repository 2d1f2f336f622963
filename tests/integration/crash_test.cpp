// A node killed with SIGKILL loses nothing it acknowledged, and catches up when it restarts.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// Proves: `qun post` exiting 0 means the post is stored, not merely queued: A posts three times
// and is killed with SIGKILL the moment the last `qun post` returns, so no graceful shutdown
// flushes anything. Restarted on the same home (which also proves a crash leaves no stale lock
// or control socket that blocks the restart) and the same port with no --peer, as a node with a
// fixed port comes back, A must list all three posts at once, before any peer could have sent
// them back. It must then catch up the posts B made while A was down (B redials it), and B must
// get A's posts (which may not have left A before the kill). A second crash and a restart on a
// new port with --peer B (now A must dial) must not lose anything either.
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

  // A restarts where B last saw it, with no --peer.
  const std::string a_address = a.address();
  NodeOptions same_port;
  same_port.listen = a_address;
  a.start(same_port);
  REQUIRE(a.address() == a_address);
  {
    const auto log = log_of(a, group);
    for (const auto& text : acknowledged) {
      INFO("acknowledged post missing right after the restart: " << text);
      CHECK(has_text(log, text));
    }
  }
  wait_for_posts(a, group, while_down);
  wait_for_posts(b, group, acknowledged);

  // Crash again right after another acknowledged post, restart on a new port with --peer B.
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
