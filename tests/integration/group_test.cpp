// Three real nodes form a group through invites and agree on its history.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// Proves: invites work across real processes, posts from every member reach every other member,
// and all members show the history in the same order. How: A creates the group and invites B
// (started with --peer A) and C (started with no --peer at all, so it must find the group from
// the address hints in the invite code). Each member posts twice, interleaved. Once every node
// shows all six posts, `qun log --json` must be the same sequence of event ids on all three
// (the order is a deterministic function of the event DAG, so nodes holding the same events
// print the same list), and every post line carries its author, nick, time and kind.
TEST_CASE("three nodes form a group through invites and see the same posts in the same order",
          "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  Node& c = cluster.add("carol");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  c.start();

  const std::string group = create_group(a, "garden");
  REQUIRE(invite_and_join(a, b, group) == group);
  REQUIRE(invite_and_join(a, c, group) == group);

  // Membership converges: every node lists the three members, with their nicks.
  for (Node* n : {&a, &b, &c}) {
    wait_until(
        [&] {
          return n->json({"members", group}).size() == 3;
        },
        propagate_bound, "[" + n->name() + "] lists three members");
  }
  Json members = c.json({"members", group});
  std::vector<std::string> nicks;
  for (const auto& m : members) {
    REQUIRE(m.contains("id"));
    REQUIRE(m.contains("role"));
    nicks.push_back(m.value("nick", ""));
  }
  std::sort(nicks.begin(), nicks.end());
  CHECK(nicks == std::vector<std::string>{"alice", "bob", "carol"});

  const std::vector<std::string> posts{"a1 first from alice", "b1 first from bob",
                                       "c1 first from carol", "a2 second from alice",
                                       "b2 second from bob",  "c2 second from carol"};
  const Node* authors[] = {&a, &b, &c, &a, &b, &c};
  for (std::size_t i = 0; i < posts.size(); ++i) authors[i]->ok({"post", group, posts[i]});

  for (Node* n : {&a, &b, &c}) wait_for_posts(*n, group, posts);

  // Same events, same order. Events still in flight (the other members' joins seen late, say)
  // could make the lists differ for a moment, so this waits for agreement; what it may not do
  // is disagree forever.
  std::vector<std::string> order_a, order_b, order_c;
  wait_until(
      [&] {
        order_a = ids(log_of(a, group));
        order_b = ids(log_of(b, group));
        order_c = ids(log_of(c, group));
        return order_a == order_b && order_b == order_c;
      },
      propagate_bound, "the three logs list the same event ids in the same order");
  CHECK(order_a.size() >= posts.size());

  // The posts' own order is the same everywhere too, and each member's two posts keep their order.
  const auto log = log_of(b, group);
  std::vector<std::string> post_texts;
  for (const auto& line : log) {
    if (!line.contains("text") || !line["text"].is_string()) continue;
    const std::string text = line["text"].get<std::string>();
    if (std::find(posts.begin(), posts.end(), text) == posts.end()) continue;
    post_texts.push_back(text);
    CHECK(line.value("kind", "") == "post");
    CHECK(line.contains("author"));
    CHECK(line.contains("time"));
    CHECK(line["time"].is_number_integer());
    CHECK(line["time"].get<std::int64_t>() > 1'600'000'000'000);  // Unix ms, not seconds
    CHECK(line.value("nick", "") == text.substr(text.rfind(' ') + 1));
  }
  REQUIRE(post_texts.size() == posts.size());
  auto before = [&](const std::string& x, const std::string& y) {
    auto ix = std::find(post_texts.begin(), post_texts.end(), x);
    auto iy = std::find(post_texts.begin(), post_texts.end(), y);
    return ix < iy;
  };
  CHECK(before(posts[0], posts[3]));
  CHECK(before(posts[1], posts[4]));
  CHECK(before(posts[2], posts[5]));

  // Graceful shutdown: SIGTERM stops every node with exit 0.
  for (Node* n : {&c, &b, &a}) {
    auto status = n->stop();
    REQUIRE(status);
    CHECK(describe_status(*status) == "exit 0");
  }
}

}  // namespace
}  // namespace qun::integration
