// Hostile reactions and edits against real nodes (issue 12): huge emoji and texts, and targets
// in another group, from the command line and as raw control requests that skip the CLI's own
// checks. Each is refused with one line, changes nothing on any node, and crashes nothing.
#include <catch2/catch.hpp>

#include <string>

#include "cli/control_client.h"
#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

std::int64_t events_of(const Node& node, const std::string& group) {
  return group_entry(node, group).value("events", std::int64_t{-1});
}

// The command failed with exactly one line on stderr that contains `words`.
void refused_in_one_line(const Outcome& o, const std::string& words) {
  INFO(o.describe());
  CHECK(o.exited);
  CHECK(o.code == 1);
  REQUIRE(o.err_lines().size() == 1);
  CHECK(o.err_lines()[0].find(words) != std::string::npos);
}

}  // namespace

// Proves: bob (a member of lobby only) and alice (of lobby and of attic) cannot react to or
// edit a post with an emoji or text past the bounds (65 bytes, 100 KB, 3 MB as a raw request),
// nor act in lobby on a post of attic. How: every attempt is made through `qun` and, for the
// largest, straight on the control socket; each answers one line; afterwards both nodes still
// answer, hold the same number of events as before (nothing was authored, nothing reached the
// other node), and the post's reactions and text are unchanged.
TEST_CASE("hostile reactions and edits are refused in one line", "[integration][conversation]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string lobby = create_group(a, "lobby");
  const std::string attic = create_group(a, "attic");
  REQUIRE(invite_and_join(a, b, lobby) == lobby);
  const std::string post = b.json({"post", lobby, "plain words"}).value("id", std::string());
  const std::string elsewhere = a.json({"post", attic, "attic words"}).value("id", std::string());
  REQUIRE(post.size() == 64);
  REQUIRE(elsewhere.size() == 64);
  wait_for_posts(a, lobby, {"plain words"});
  // Both nodes settled: nothing authors on its own once the used-up invite is closed.
  wait_until(
      [&] {
        for (const auto& line : log_of(a, lobby))
          if (line.value("kind", "") == "close-invite") return events_of(a, lobby) == events_of(b, lobby);
        return false;
      },
      propagate_bound, "the invite is closed and both nodes hold the same events");
  const auto lobby_before = events_of(a, lobby), attic_before = events_of(a, attic);

  refused_in_one_line(b.qun({"react", lobby, post, std::string(65, 'x')}), "64 bytes");
  refused_in_one_line(b.qun({"react", lobby, post, std::string(100'000, 'x')}), "64 bytes");
  refused_in_one_line(b.qun({"edit", lobby, post, std::string(100'000, 'x')}), "at most");
  // A target in another group is no message of this one, for a member of both too.
  refused_in_one_line(a.qun({"react", lobby, elsewhere, "x"}), "no message");
  refused_in_one_line(a.qun({"edit", lobby, elsewhere, "mine now"}), "no message");
  refused_in_one_line(a.qun({"delete", lobby, elsewhere}), "no message");
  refused_in_one_line(b.qun({"react", attic, post, "x"}), "");

  // Straight on the control socket, past the CLI's checks: 3 MB, under the 4 MiB frame bound.
  auto client = ControlClient::connect((b.home() / "control.sock").string());
  REQUIRE(client.ok());
  const std::string huge(3'000'000, 'y');
  auto react = client->request("react", {{"group", lobby}, {"event", post}, {"emoji", huge}});
  REQUIRE_FALSE(react.ok());
  CHECK(react.error().context().find('\n') == std::string::npos);
  CHECK(react.error().context().size() < 300);
  auto edit = client->request("edit", {{"group", lobby}, {"event", post}, {"text", huge}});
  REQUIRE_FALSE(edit.ok());
  CHECK(edit.error().context().find('\n') == std::string::npos);
  CHECK(edit.error().context().size() < 300);
  auto cross = client->request("react", {{"group", lobby}, {"event", elsewhere}, {"emoji", "x"}});
  REQUIRE_FALSE(cross.ok());

  // Nothing changed anywhere, and both nodes still answer.
  CHECK(a.qun({"id"}).ok());
  CHECK(b.qun({"id"}).ok());
  CHECK(events_of(a, lobby) == lobby_before);
  CHECK(events_of(b, lobby) == lobby_before);
  CHECK(events_of(a, attic) == attic_before);
  for (const Node* n : {&a, &b}) {
    for (const auto& e : log_of(*n, lobby)) {
      if (e.value("id", std::string()) != post) continue;
      CHECK(e.value("text", std::string()) == "plain words");
      CHECK_FALSE(e.value("edited", true));
      CHECK(e["reactions"].empty());
    }
  }
}

}  // namespace qun::integration
