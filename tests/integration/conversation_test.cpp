// The conversation commands of issue 12 between real processes: replies, channels, reactions,
// edits, deletes, moderators, mutes, bans, nicks, group rename and settings, each through the
// CLI with its JSON and its one-line errors, and what `log --follow` streams.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// The log entry with this id (null when absent).
Json entry(const std::vector<Json>& log, const std::string& id) {
  for (const auto& e : log)
    if (e.value("id", std::string()) == id) return e;
  return Json();
}

bool has_kind_target(const std::vector<Json>& lines, const std::string& kind,
                     const std::string& target) {
  for (const auto& l : lines)
    if (l.value("kind", std::string()) == kind && l.value("target", std::string()) == target)
      return true;
  return false;
}

}  // namespace

// Proves the contract end to end: alice (founder) and bob (member) on two nodes, and carol who
// becomes a moderator. Every act by one is seen by the others; what a member may not do is
// refused with one line; a muted member's post is refused; a banned member is out and cannot
// join again until unbanned; `log --follow --json` streams the acts with "kind" and "target".
TEST_CASE("conversation commands between nodes", "[integration][conversation]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  Node& c = cluster.add("carol");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  c.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "town");
  REQUIRE(invite_and_join(a, b, group) == group);
  REQUIRE(invite_and_join(a, c, group) == group);

  const fs::path err = cluster.dir() / "logs/follow.log";
  const fs::path out = cluster.dir() / "follow.out";
  Process follow = Process::spawn(
      {qun_binary(), "log", group, "--follow", "--json", "--home", c.home().string()},
      cluster.env(), err, out);

  // post --json gives the id; a reply and a /me name theirs.
  const std::string first = a.json({"post", group, "hello town"}).value("id", std::string());
  REQUIRE(first.size() == 64);
  wait_for_posts(b, group, {"hello town"});
  const std::string reply =
      b.json({"post", group, "hi alice", "--reply", first.substr(0, 12)}).value("id", std::string());
  REQUIRE(reply.size() == 64);
  b.ok({"post", group, "waves", "--me"});

  // Channels: admins only.
  auto refused = b.qun({"channel", "create", group, "dev"});
  CHECK(refused.code == 1);
  CHECK(refused.err.find("needs an admin") != std::string::npos);
  a.ok({"channel", "create", group, "dev"});
  wait_until([&] { return b.json({"channel", "list", group}).size() == 2; }, propagate_bound,
             "bob sees #dev");
  const std::string in_dev =
      b.json({"post", group, "build is green", "--channel", "dev"}).value("id", std::string());
  auto dev_log = b.json_lines({"log", group, "--channel", "dev"});
  REQUIRE(dev_log.size() == 1);
  CHECK(dev_log[0].value("id", std::string()) == in_dev);
  a.ok({"channel", "rename", group, "dev", "devel"});
  wait_until([&] { return b.qun({"post", group, "x", "--channel", "devel"}).code == 0; },
             propagate_bound, "bob posts in the renamed #devel");
  CHECK(b.qun({"post", group, "x", "--channel", "nope"}).err.find("no channel #nope") !=
        std::string::npos);

  // Reactions, edits, deletes.
  wait_for_posts(a, group, {"hi alice"});
  a.ok({"react", group, reply.substr(0, 10), "👍"});
  b.ok({"edit", group, reply, "hi alice!"});
  auto not_yours = a.qun({"edit", group, reply, "mine"});
  CHECK(not_yours.code == 1);
  CHECK(not_yours.err.find("only its author can edit") != std::string::npos);
  auto not_yours_del = c.qun({"delete", group, first});
  CHECK(not_yours_del.err.find("only its author can delete") != std::string::npos);
  const std::string oops = b.json({"post", group, "oops"}).value("id", std::string());
  b.ok({"delete", group, oops});
  CHECK(b.qun({"react", group, "zz", "👍"}).err.find("not a message id") != std::string::npos);

  // A moderator: promote --to moderator; it may redact anyone's message and mute members.
  a.ok({"promote", group, c.id(), "--to", "moderator"});
  wait_until(
      [&] {
        for (const auto& m : c.json({"members", group}))
          if (m.value("self", false)) return m.value("role", std::string()) == "moderator";
        return false;
      },
      propagate_bound, "carol is a moderator");
  const std::string spam = b.json({"post", group, "buy now"}).value("id", std::string());
  wait_until([&] { return c.qun({"delete", group, spam}).code == 0; }, propagate_bound,
             "carol redacts bob's spam");
  c.ok({"mute", group, b.id(), "--for", "1h"});
  wait_until(
      [&] {
        for (const auto& m : b.json({"members", group}))
          if (m.value("id", std::string()) == b.id()) return m["muted_until"].is_number_unsigned();
        return false;
      },
      propagate_bound, "bob's node lists him muted, with muted_until");
  auto muted = b.qun({"post", group, "let me speak"});
  CHECK(muted.code == 1);
  CHECK(muted.err.find("you are muted") != std::string::npos);
  CHECK(c.qun({"mute", group, a.id()}).err.find("cannot be muted") != std::string::npos);
  c.ok({"unmute", group, b.id()});
  wait_until([&] { return b.qun({"post", group, "thanks"}).code == 0; }, propagate_bound,
             "bob posts again once unmuted");

  // Nick, group rename, settings.
  b.ok({"nick", "robert"});
  a.ok({"group", "rename", group, "city"});
  a.ok({"group", "set", group, "invites", "members"});
  CHECK(b.qun({"group", "set", group, "history", "off"}).code == 1);
  CHECK(a.qun({"group", "set", group, "history", "maybe"}).err.find("on or off") !=
        std::string::npos);
  wait_until(
      [&] {
        for (const auto& m : a.json({"members", group}))
          if (m.value("id", std::string()) == b.id()) return m.value("nick", std::string()) == "robert";
        return false;
      },
      propagate_bound, "alice sees bob's new nick");

  // Demote, ban, unban.
  a.ok({"demote", group, c.id()});
  CHECK(c.qun({"ban", group, b.id()}).code == 1);
  a.ok({"ban", group, b.id()});
  wait_until(
      [&] {
        auto members = c.json({"members", group});
        return members.size() == 2;
      },
      propagate_bound, "bob is out");
  CHECK(a.qun({"ban", group, b.id()}).err.find("already banned") != std::string::npos);
  a.ok({"unban", group, b.id()});

  // What the follower streamed: the acts with kind and target.
  wait_until(
      [&] {
        auto lines = parse_json_lines(file_contents(out));
        return has_kind_target(lines, "react", reply) && has_kind_target(lines, "edit", reply) &&
               has_kind_target(lines, "delete", oops) && has_kind_target(lines, "redact", spam) &&
               has_kind_target(lines, "mute", b.id()) && has_kind_target(lines, "ban", b.id());
      },
      propagate_bound, "the follower streams react, edit, delete, redact, mute and ban");
  follow.stop();

  // The log as it stands, read on alice's node.
  auto log = a.json_lines({"log", group});
  CHECK(entry(log, reply).value("text", std::string()) == "hi alice!");
  CHECK(entry(log, oops)["text"].is_null());
}

}  // namespace qun::integration
