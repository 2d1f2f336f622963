// `qun hide` and `qun unhide` (issue 12, "Each person's filters") between real processes.
#include <catch2/catch.hpp>

#include "cli/control_client.h"
#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

std::vector<std::string> authors(const std::vector<Json>& log) {
  std::vector<std::string> out;
  for (const auto& e : log) out.push_back(e.value("author", ""));
  return out;
}

// Proves hiding is one node's own view: alice hides bob; her `log` (text and JSON), her message
// stream and her unread count leave out everything bob authors, while carol still sees it and
// no event is sent; the list survives a restart; unhiding shows bob's posts again. How: three
// nodes in one group; bob posts before and after the hide; alice's subscriber stream is read
// until a post of carol's made after bob's last one has arrived (the group's event count shows
// bob's post reached alice's node first).
TEST_CASE("hide and unhide a member", "[integration][hide]") {
  Cluster cluster;
  const Trio trio = start_trio(cluster, "garden");
  Node& a = trio.alice;
  Node& b = trio.bob;
  Node& c = trio.carol;
  const std::string& group = trio.group;
  b.ok({"post", group, "bob before"});
  wait_for_posts(a, group, {"bob before"});
  wait_for_posts(c, group, {"bob before"});
  // Alice's node closes both used-up invites on its own; once it has, nothing else authors an
  // event unasked, so the count below can only move if `hide` made one.
  wait_until(
      [&] {
        int closes = 0;
        for (const auto& line : log_of(a, group))
          closes += line.value("kind", "") == "close-invite" && line.value("reason", "") == "used up";
        return closes == 2;
      },
      propagate_bound, "alice's node closed both used-up invites");
  const auto events_before = group_entry(a, group).value("events", 0);

  // Hiding yourself or nobody is refused with one line; a nick from the group hides bob.
  Outcome self = a.qun({"hide", a.id()});
  CHECK(!self.ok());
  CHECK(self.err.find("you cannot hide yourself") != std::string::npos);
  Outcome nobody = a.qun({"hide", "nobody-by-that-name"});
  CHECK(!nobody.ok());
  CHECK(nobody.err.find("no member matches") != std::string::npos);
  Json hid = a.json({"hide", "bob"});
  CHECK(hid.value("member", "") == b.id());
  Outcome again = a.qun({"hide", "bob"});
  CHECK(!again.ok());
  CHECK(again.err.find("already hidden") != std::string::npos);
  // No event was made: the group holds what it held.
  CHECK(group_entry(a, group).value("events", 0) == events_before);

  auto log = log_of(a, group);
  CHECK(!has_text(log, "bob before"));
  for (const auto& author : authors(log)) CHECK(author != b.id());
  CHECK(a.ok({"log", group}).find("bob before") == std::string::npos);
  CHECK(has_text(log_of(c, group), "bob before"));

  auto client = ControlClient::connect((a.home() / "control.sock").string());
  REQUIRE(client.ok());
  REQUIRE(client->request("subscribe", {{"group", group}}).ok());
  b.ok({"post", group, "bob while hidden"});
  wait_for_posts(c, group, {"bob while hidden"});
  wait_until([&] { return group_entry(a, group).value("events", 0) > events_before; },
             propagate_bound, "bob's post reached alice's node");
  c.ok({"post", group, "carol after"});
  std::vector<std::string> streamed;
  wait_until(
      [&] {
        auto m = client->next(100);
        if (m.ok() && m.value() && m.value()->value("stream", "") == "message")
          streamed.push_back(text_of((*m.value())["message"]));
        return std::find(streamed.begin(), streamed.end(), "carol after") != streamed.end();
      },
      propagate_bound, "carol's post on alice's stream");
  CHECK(std::find(streamed.begin(), streamed.end(), "bob while hidden") == streamed.end());
  // Only carol's post is unread for alice (`log` marks the group read, so this comes first).
  CHECK(group_entry(a, group).value("unread", 0) == 1);
  CHECK(!has_text(log_of(a, group), "bob while hidden"));

  a.stop();
  a.start();
  CHECK(a.ok({"hidden"}).find(b.id().substr(0, 8)) != std::string::npos);
  CHECK(!has_text(log_of(a, group), "bob while hidden"));

  a.ok({"unhide", "bob"});
  log = log_of(a, group);
  CHECK(has_text(log, "bob before"));
  CHECK(has_text(log, "bob while hidden"));
  CHECK(a.json({"hidden"}).empty());
  Outcome not_hidden = a.qun({"unhide", "bob"});
  CHECK(!not_hidden.ok());
  CHECK(not_hidden.err.find("no hidden member matches") != std::string::npos);
}

// Proves `qun modlog` lists a removal with who did it to whom, in JSON and in words.
TEST_CASE("the moderation log names a removal", "[integration][hide]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "garden");
  REQUIRE(invite_and_join(a, b, group) == group);
  CHECK(a.json_lines({"modlog", group}).empty());
  a.ok({"kick", group, "bob"});
  auto modlog = a.json_lines({"modlog", group});
  REQUIRE(modlog.size() == 1);
  CHECK(modlog[0].value("kind", "") == "remove");
  CHECK(modlog[0].value("author", "") == a.id());
  CHECK(modlog[0].value("target", "") == b.id());
  CHECK(a.ok({"modlog", group}).find("alice removed bob") != std::string::npos);
}

}  // namespace
}  // namespace qun::integration
