// A kicked member stops receiving the group's content.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// Proves: after `qun kick`, posts made afterwards never reach the kicked member as text, while
// the remaining members keep talking. How: A (admin), B and C are members and C demonstrably
// receives posts. A kicks C by nick. C stays running and connected, and must learn that it was
// removed (so it is still receiving the group's events; the test is not passing just because
// C is cut off). Then A and B post secrets and A posts a marker; once the marker has reached B
// (its parents include A's secret, so B then holds everything posted before it), C's `qun log`
// must show none of the secrets, and after C stops no file in C's home may contain them either
// (C could not even decrypt them to store). Also: MEMBER by unique id prefix (`qun promote`).
TEST_CASE("a kicked member stops receiving content", "[integration]") {
  Cluster cluster;
  const Trio trio = start_trio(cluster, "workshop");
  Node& a = trio.alice;
  Node& b = trio.bob;
  Node& c = trio.carol;
  const std::string& group = trio.group;

  a.ok({"post", group, "before the kick"});
  wait_for_posts(c, group, {"before the kick"});
  wait_for_posts(b, group, {"before the kick"});

  // MEMBER by id prefix: promote bob, and everyone sees his role change.
  auto role_of = [&](const Node& viewer, const std::string& member_id) {
    for (const auto& m : viewer.json({"members", group}))
      if (m.value("id", "") == member_id) return m.value("role", "");
    return std::string();
  };
  const std::string bob_role_before = role_of(a, b.id());
  REQUIRE(!bob_role_before.empty());
  a.ok({"promote", group, b.id().substr(0, 12)});
  wait_until(
      [&] {
        return role_of(c, b.id()) == role_of(a, b.id()) && role_of(a, b.id()) != bob_role_before;
      },
      propagate_bound, "alice and carol see bob's new role");

  a.ok({"kick", group, "carol"});
  wait_until(
      [&] {
        for (const auto& m : b.json({"members", group}))
          if (m.value("id", "") == c.id()) return false;
        return true;
      },
      propagate_bound, "bob no longer lists carol as a member");
  wait_until(
      [&] {
        Json entry = group_entry(c, group);
        return entry.is_null() || entry.value("member", true) == false;
      },
      propagate_bound, "carol's node knows she was removed");
  CHECK(c.running());

  const std::string secret_a = "after-kick-alice-" + random_hex(16);
  const std::string secret_b = "after-kick-bob-" + random_hex(16);
  const std::string marker = "marker-" + random_hex(8);
  a.ok({"post", group, secret_a});
  b.ok({"post", group, secret_b});
  wait_for_posts(a, group, {secret_b});
  a.ok({"post", group, marker});
  wait_for_posts(b, group, {secret_a, secret_b, marker});

  // C's log (if it still shows the group at all) never has the secrets' text.
  Outcome log = c.qun({"log", group, "--json"});
  INFO(log.describe());
  CHECK(!log.timed_out);
  for (const auto& secret : {secret_a, secret_b, marker})
    CHECK(log.out.find(secret) == std::string::npos);
  Outcome plain = c.qun({"log", group});
  for (const auto& secret : {secret_a, secret_b})
    CHECK(plain.out.find(secret) == std::string::npos);

  // C cannot post into the group any more.
  Outcome post = c.qun({"post", group, "am I still here?"});
  CHECK(!post.ok());
  CHECK(post.err_lines().size() == 1);

  c.stop();
  for (const auto& secret : {secret_a, secret_b}) {
    auto leaks = files_containing(c.home(), secret);
    INFO("the kicked member's files hold '" << secret << "'");
    CHECK(leaks.empty());
  }
}

}  // namespace
}  // namespace qun::integration
