// Attacks on the overlay with real processes (issue 10): what one misbehaving or stalled peer
// can do to a group of honest nodes.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <string>

#include "cli/control_client.h"
#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// What the honest nodes queue for a peer that does not read before they cut it off
// (--peer-queue-mib; the default is 32): the smallest the node takes (twice the catch-up
// window), so that the cut comes after a few hundred posts rather than the ~2,300 of the
// issue's run, which under a loaded machine did not always fit in flood_bound.
const std::string peer_queue_mib = "4";
// Posts the flood may take at most. A node closes a peer that does not read once
// --peer-queue-mib wait for it, after the kernel's socket buffers (a few MiB each way on
// loopback) fill: about 2,300 posts of 16 KiB with 32 MiB, in the run. The same number
// leaves room with 4 MiB, and bounds the test if the close never comes.
constexpr int flood_posts_max = 2'500;
// The flood's time bound: each post is one control request (sign, encrypt, commit) answered in
// a few milliseconds; the CTest timeout of this suite is 90 s.
constexpr Millis flood_bound{60'000};
// How often (in posts) the honest nodes' logs are checked for the close.
constexpr int flood_check_every = 100;

// How many of a group's newest posts recent_posts_have reads. Not the last few: the order key of
// each of Bob's flood posts is at least its parent's + 1 ms, and he posts faster than one a
// millisecond, so his keys run ahead of the clock and a post made right after the flood can sort
// among his last few hundred (with the last 5 read, the check failed in every run on main at
// ec47cdc while the post had reached Bob). 400 posts of 16 KiB are ~6.5 MB of JSON, which `qun log` fetches in pages; the whole
// flooded log (~37 MB) would make each check slow under the sanitizers.
constexpr int recent_posts_read = 400;

// The newest posts of a group on node.
bool recent_posts_have(const Node& n, const std::string& group, const std::string& text) {
  return has_text(n.json_lines({"log", group, "--limit", std::to_string(recent_posts_read)}),
                  text);
}

// Whether n logged that it closed `peer` for not reading (the line names the peer by the first
// 8 hex digits of its id).
bool logged_not_reading(const Node& n, const Node& peer) {
  std::istringstream lines(n.log());
  const std::string who = "peer=" + peer.id().substr(0, 8);
  for (std::string line; std::getline(lines, line);)
    if (line.find("peer is not reading") != std::string::npos && line.find(who) != std::string::npos)
      return true;
  return false;
}

// Proves finding 1 of issue 10 is gone: a peer that stops reading (SIGSTOP) while a member
// pushes the largest posts as fast as its node answers used to crash honest nodes (SIGSEGV in
// the loop that pushes to a group's active peers, when the push closed the stalled peer). How:
// four nodes, every one an active peer of every other; D is stopped; B posts 16 KiB posts over
// one control connection until some honest node logs that it closed D for not reading (B
// itself: D restarted just before, so B's new link to D is eager and carries every post). Before
// the fix B died after ~2,300 posts. Then A,
// B and C are all still running and a new post from A reaches B and C.
TEST_CASE("a stopped peer under a flood of large posts is cut off and nobody crashes",
          "[integration][attack]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  Node& c = cluster.add("carol");
  Node& d = cluster.add("dave");
  auto options = [&](std::vector<std::string> peers) {
    NodeOptions o = NodeOptions::with_peers(std::move(peers));
    o.extra_args = {"--peer-queue-mib", peer_queue_mib};
    return o;
  };
  a.start(options({}));
  b.start(options({a.address()}));
  c.start(options({a.address(), b.address()}));
  d.start(options({a.address(), b.address(), c.address()}));
  const std::string group = create_group(a, "flooded");
  REQUIRE(invite_and_join(a, b, group) == group);
  REQUIRE(invite_and_join(a, c, group) == group);
  REQUIRE(invite_and_join(a, d, group) == group);
  a.ok({"post", group, "warm-up"});
  for (const Node* n : {&b, &c, &d}) wait_for_posts(*n, group, {"warm-up"});
  // Dave restarts, so that every link to him is new, and new neighbours start eager (Plumtree):
  // Bob's link to him carries every post Bob makes. (Dave would otherwise have pruned some
  // links, and the others forward only what their rate bound for Bob lets them store.)
  d.stop();
  d.start(options({a.address(), b.address(), c.address()}));
  auto active = [&](const Node& n) {
    Json s = status_of_group(n, group);
    return s.is_null() ? 0 : s.value("active_peers", 0);
  };
  wait_until([&] { return active(d) == 3 && active(b) == 3; }, propagate_bound,
             "Dave is linked again, and an active peer of Bob");
  d.process()->signal(SIGSTOP);
  auto client = ControlClient::connect((b.home() / "control.sock").string());
  REQUIRE(client.ok());
  // The largest post text (limits::post_text_bytes_max), numbered so that no two are equal.
  const std::string big(16 * 1024 - 8, 'z');
  const auto started = std::chrono::steady_clock::now();
  int posted = 0;
  bool cut = false;
  while (posted < flood_posts_max && std::chrono::steady_clock::now() - started < flood_bound) {
    auto r = client->request("post", {{"group", group}, {"text", std::to_string(100'000 + posted) + "-" + big}});
    INFO("post " << posted << ": " << (r.ok() ? "" : r.error().message()));
    REQUIRE(r.ok());
    ++posted;
    if (posted % flood_check_every == 0 &&
        (logged_not_reading(a, d) || logged_not_reading(b, d) || logged_not_reading(c, d))) {
      cut = true;
      break;
    }
  }
  INFO("posted " << posted << " posts of 16 KiB");
#if defined(__SANITIZE_ADDRESS__)
  // Under ASan a post takes ~10 times longer, and flood_bound may pass before Bob has filled
  // his queue for Dave (with the default 32 MiB: 1,792 posts, 28 MiB, in one run): what this
  // tree checks is that the flood crashes nobody; the release tree checks the cut as well.
  if (!cut) WARN("the stopped peer was not cut within the bound (sanitizer build)");
#else
  CHECK(cut);
#endif
  CHECK(a.running());
  CHECK(b.running());
  CHECK(c.running());
  a.ok({"post", group, "after the flood"});
  for (const Node* n : {&b, &c}) {
    wait_until([&] { return recent_posts_have(*n, group, "after the flood"); }, propagate_bound,
               n->name() + " has the post made after the flood");
  }
  d.process()->signal(SIGCONT);
}

}  // namespace
}  // namespace qun::integration
