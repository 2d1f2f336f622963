// Relay slots (issue 10, finding 10): the operator decides who may claim them.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// Proves, with real processes, that a stranger cannot fill a relay's slots and that the operator
// can let a requester in. How: R runs `qun node --relay --max-groups 2 --relay-allow A`. S, a
// stranger, asks R to serve three groups of its own: each `qun relay add` fails with one line
// saying it waits for the operator, R serves none, and `qun relay requests` lists them. A (on the
// allow-list) asks for its group: accepted at once. Then the operator approves one of S's groups
// by id (`qun relay approve GROUP`): R serves it (S is its founder, so it stays past probation);
// R is then full (2 groups), and approving S's key refuses nothing already held but takes nothing
// more: `qun relay add` for another of S's groups is refused with "relay full".
TEST_CASE("a stranger cannot fill a relay's slots; an approved requester can", "[integration][relay]") {
  Cluster cluster;
  Node& r = cluster.add("relay");
  Node& a = cluster.add("alice");
  Node& s = cluster.add("stranger");
  a.start();
  s.start();
  NodeOptions relay = NodeOptions::as_relay();
  relay.extra_args = {"--max-groups", "2", "--relay-allow", a.id()};
  r.start(relay);

  std::vector<std::string> theirs;
  for (int k = 0; k < 3; ++k) {
    theirs.push_back(create_group(s, "squat-" + std::to_string(k)));
    Outcome refused = s.qun({"relay", "add", theirs.back(), r.address()});
    INFO(refused.describe());
    CHECK(!refused.ok());
    CHECK(refused.err_lines().size() == 1);
    CHECK(refused.err.find("approv") != std::string::npos);
  }
  Json waiting = r.json({"relay", "requests"});
  CHECK(waiting.size() == 3);
  for (const auto& g : theirs) CHECK(status_of_group(r, g).is_null());

  const std::string mine = create_group(a, "mine");
  a.ok({"post", mine, "hello"});
  a.ok({"relay", "add", mine, r.address()});
  wait_until([&] { return status_of_group(r, mine).is_object(); }, propagate_bound,
             "the relay serves the allowed admin's group");

  Json approved = r.json({"relay", "approve", theirs[0]});
  CHECK(approved.value("group", "") == theirs[0]);
  wait_until([&] { return status_of_group(r, theirs[0]).value("events", 0) > 0; }, propagate_bound,
             "the relay serves and catches up the approved group");
  CHECK(r.json({"relay", "requests"}).size() == 2);
  // Full now: allowing the stranger's key takes nothing more on.
  Json allowed = r.json({"relay", "approve", s.id()});
  CHECK(allowed.value("key", "") == s.id());
  CHECK(allowed["groups"].empty());
  Outcome full = s.qun({"relay", "add", theirs[1], r.address()});
  CHECK(!full.ok());
  CHECK(full.err.find("relay full") != std::string::npos);
  CHECK(status_of_group(r, theirs[1]).is_null());
  // The allow-list survives a restart (the home's relay-allow file).
  CHECK(file_contents(r.home() / "relay-allow").find(s.id()) != std::string::npos);
}

// Proves a member flooding posts far past --max-group-bytes cannot keep a join off the relay,
// nor keep the relay from forwarding it and the newest posts, and that what the relay dropped
// shows as gone. How: R runs with --max-group-bytes 20000 and allows A. A creates the group and
// adds R; B and D join; D stops. B posts thirty 1000-byte posts (about 43 KB stored whole, with
// their headers and the group's other events): R refuses nothing and drops the payloads of the
// oldest (payloads_dropped), about 22 of them. B
// stops. A invites C and C joins (the join names the flood as parents). R must hold C's join.
// Then A and C stop, and D starts again with no --peer: the relay is its only source. D must
// list C's join, read B's last post, and show B's first post with "text": null and
// "stored": false.
TEST_CASE("a flooding member cannot keep a join off a relay", "[integration][relay]") {
  // The stubs of the thirty posts and the group's other events take about 11 KB (a relay's
  // status in one run: 43 events, 11,078 bytes, every payload dropped). With a bound of 12,000
  // that left no room for the newest post's payload (about 1,060 bytes) whenever the group's
  // bookkeeping came out a little larger (seen under ASan); 20,000 keeps room for about eight.
  constexpr std::int64_t group_bytes_max = 20000;
  Cluster cluster;
  Node& r = cluster.add("relay");
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  Node& c = cluster.add("carol");
  Node& d = cluster.add("dave");
  a.start();
  NodeOptions relay = NodeOptions::as_relay();
  relay.extra_args = {"--max-group-bytes", std::to_string(group_bytes_max), "--relay-allow", a.id()};
  r.start(relay);
  b.start(NodeOptions::with_peers({a.address()}));
  c.start(NodeOptions::with_peers({a.address()}));
  d.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "flooded");
  a.ok({"relay", "add", group, r.address()});
  REQUIRE(invite_and_join(a, b, group) == group);
  REQUIRE(invite_and_join(a, d, group) == group);
  d.stop();
  std::vector<std::string> flood;
  for (int i = 0; i < 30; ++i) {
    flood.push_back(std::to_string(i) + std::string(1000, static_cast<char>('a' + i % 26)));
    b.ok({"post", group, flood.back()});
  }
  wait_for_posts(a, group, {flood.back()});
  wait_until([&] { return status_of_group(r, group).value("payloads_dropped", 0) >= 10; },
             propagate_bound, "the relay drops the oldest posts' payloads past its byte bound");
  b.stop();

  REQUIRE(invite_and_join(a, c, group) == group);
  auto join_of = [&](const Node& n) {
    for (const auto& line : log_of(n, group))
      if (line.value("kind", "") == "join" && line.value("author", "") == c.id()) return true;
    return false;
  };
  wait_until([&] { return join_of(r); }, propagate_bound, "the relay holds carol's join");
  Json usage = status_of_group(r, group);
  INFO("relay usage: " << usage.dump());
  CHECK(usage.value("events_refused", -1) == 0);
  CHECK(usage.value("bytes", group_bytes_max + 1) <= group_bytes_max);
  a.stop();
  c.stop();
  d.start();
  wait_until([&] { return join_of(d); }, propagate_bound,
             "dave, back with only the relay to reach, gets carol's join from it");
  auto post_line = [&](const std::string& text_start) {
    Json found;
    for (const auto& line : log_of(d, group)) {
      if (line.value("kind", "") != "post") continue;
      const auto t = line.find("text");
      if (t != line.end() && t->is_string() && t->get<std::string>() == text_start) found = line;
    }
    return found;
  };
  wait_until([&] { return post_line(flood.back()).is_object(); }, propagate_bound,
             "dave reads bob's newest post from the relay");
  std::size_t gone = 0, posts = 0;
  for (const auto& line : log_of(d, group)) {
    if (line.value("kind", "") != "post") continue;
    ++posts;
    if (line.value("stored", true)) continue;
    ++gone;
    CHECK(line["text"].is_null());
  }
  CHECK(posts == flood.size());
  CHECK(gone >= 10);
  const Outcome shown = d.qun({"log", group});
  CHECK(shown.out.find("(no longer stored by any peer you reached)") != std::string::npos);
}

}  // namespace
}  // namespace qun::integration
