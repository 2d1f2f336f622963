// Coming back, posting with nobody reachable, and relays that stop serving (issue 11, items 1
// and 7), with real `qun node` processes.
#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

bool is_member(const Node& viewer, const std::string& group, const std::string& id) {
  for (const auto& m : viewer.json({"members", group}))
    if (m.value("id", "") == id) return true;
  return false;
}

// The relay entry of `relay_id` in `qun relay list GROUP --json` on node, or null.
Json relay_entry(const Node& node, const std::string& group, const std::string& relay_id) {
  for (const auto& r : node.json({"relay", "list", group}))
    if (r.value("id", "") == relay_id) return r;
  return Json();
}

// `qun invite` on inviter, then `qun join CODE` on joiner (which must print the group id).
void reinvite(const Node& inviter, const Node& joiner, const std::string& group) {
  const std::string code = inviter.ok({"invite", group});
  CHECK(joiner.ok({"join", code}) == group);
}

}  // namespace

// Proves a founder who left and a kicked member can both come back. How: alice founds the group
// with bob (promoted to admin) and carol. alice leaves; her node drops the group; her post is
// refused. bob invites her back and `qun join` answers (it used to wait forever: members shunned
// her). bob kicks carol, who stays running with the group; her post is refused with the reason
// and what to do, and `status` says she is not a member; bob invites her back and she joins with
// the code given in pieces (an unquoted paste of a code a terminal broke over lines). Both then post, and every node reads both
// posts; both are members again on bob's node, with the old leave and removal still in history.
TEST_CASE("a founder who left and a kicked member come back with new invites", "[integration]") {
  Cluster cluster;
  const Trio trio = start_trio(cluster, "lobby");
  Node& a = trio.alice;
  Node& b = trio.bob;
  Node& c = trio.carol;
  const std::string& group = trio.group;
  a.ok({"promote", group, "bob"});
  a.ok({"post", group, "first"});
  wait_for_posts(c, group, {"first"});

  // The founder leaves, and the group goes from her node once the leave went out.
  a.ok({"leave", group});
  wait_until([&] { return !is_member(b, group, a.id()); }, propagate_bound,
             "bob no longer lists alice");
  wait_until([&] { return group_entry(a, group).is_null(); }, propagate_bound,
             "alice's node dropped the group");
  Outcome refused_a = a.qun({"post", group, "alice while out"});
  CHECK_FALSE(refused_a.ok());
  CHECK(refused_a.err_lines().size() == 1);

  reinvite(b, a, group);
  wait_until([&] { return is_member(b, group, a.id()) && is_member(c, group, a.id()); },
             propagate_bound, "bob and carol list alice again");

  // A kicked member that keeps running with the group is refused, told why, and comes back.
  b.ok({"kick", group, "carol"});
  wait_until(
      [&] {
        Json entry = group_entry(c, group);
        return !entry.is_null() && entry.value("member", true) == false;
      },
      propagate_bound, "carol's node knows she was removed");
  Outcome refused_c = c.qun({"post", group, "carol while out"});
  CHECK_FALSE(refused_c.ok());
  REQUIRE(refused_c.err_lines().size() == 1);
  CHECK(refused_c.err_lines()[0].find("you were removed from lobby by bob") != std::string::npos);
  CHECK(refused_c.err_lines()[0].find("qun join") != std::string::npos);
  CHECK(c.ok({"status"}).find("not a member") != std::string::npos);
  CHECK(status_of_group(c, group).value("member", true) == false);
  // carol pastes the code unquoted, as a terminal broke it: the shell gives it in pieces.
  const std::string code = b.ok({"invite", group});
  REQUIRE(code.size() > 60);
  CHECK(c.ok({"join", code.substr(0, 30), code.substr(30, 30), code.substr(60)}) == group);
  wait_until([&] { return is_member(a, group, c.id()) && is_member(b, group, c.id()); },
             propagate_bound, "alice and bob list carol again");

  CHECK(c.ok({"status"}).find("not a member") == std::string::npos);
  CHECK(status_of_group(c, group).value("member", false) == true);

  const std::string from_a = "alice is back " + random_hex(4);
  const std::string from_c = "carol is back " + random_hex(4);
  a.ok({"post", group, from_a});
  c.ok({"post", group, from_c});
  for (const Node* n : {&a, &b, &c}) wait_for_posts(*n, group, {from_a, from_c});
  for (const Node* n : {&a, &b, &c}) {
    const auto log = log_of(*n, group);
    CHECK_FALSE(has_text(log, "alice while out"));
    CHECK_FALSE(has_text(log, "carol while out"));
  }
  // The leave and the removal stay in the history, before the joins that followed them.
  const auto history = log_of(b, group);
  auto first_of = [&](const std::string& kind, const std::string& who) {
    for (std::size_t i = 0; i < history.size(); ++i) {
      const Json& e = history[i];
      if (e.value("kind", "") != kind) continue;
      if (e.value("author", "") == who || e.value("target", "") == who) return i;
    }
    return history.size();
  };
  CHECK(first_of("leave", a.id()) < history.size());
  CHECK(first_of("remove", c.id()) < history.size());
}

// Proves a banned member is told why it cannot post or join, and what helps, and comes back after
// an unban. How: alice bans bob; bob's post is refused with "you were banned from lobby by alice"
// and the unban it needs (it said "you are not a member ... join it with an invite"), and his
// join with a fresh invite fails with one line saying he is banned (it said "banned"). alice
// unbans him; a new invite lets him back in.
TEST_CASE("a banned member is told so, and comes back after an unban", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, group) == group);
  // bob's join is in on his node when `qun join` returns; alice names him once it reached her.
  wait_until([&] { return is_member(a, group, b.id()); }, propagate_bound, "alice lists bob");
  a.ok({"ban", group, "bob"});
  wait_until(
      [&] {
        Json entry = group_entry(b, group);
        return !entry.is_null() && entry.value("member", true) == false;
      },
      propagate_bound, "bob's node knows he was banned");
  Outcome post = b.qun({"post", group, "let me in"});
  CHECK_FALSE(post.ok());
  REQUIRE(post.err_lines().size() == 1);
  CHECK(post.err_lines()[0].find("you were banned from lobby by alice") != std::string::npos);
  CHECK(post.err_lines()[0].find("qun unban") != std::string::npos);

  Outcome join = b.qun({"join", a.ok({"invite", group})});
  CHECK(join.code == 1);
  REQUIRE(join.err_lines().size() == 1);
  CHECK(join.err_lines()[0].find("you are banned from lobby") != std::string::npos);

  a.ok({"unban", group, "bob"});
  reinvite(a, b, group);
  wait_until([&] { return is_member(a, group, b.id()); }, propagate_bound,
             "alice lists bob again");
}

// Proves nothing acknowledged is lost when no peer is reachable. How: alice and bob share a
// group; bob stops. alice's post is accepted (exit 0) with a note on stderr; `group list` and
// `status` say no peer is reachable and count one queued post, also after alice restarts (the
// outbox is in her store). When bob comes back the queue empties and bob reads the post.
TEST_CASE("a post with no reachable peer waits in the outbox until a peer is back",
          "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, group) == group);
  wait_until([&] { return group_entry(a, group).value("reachable", false); }, propagate_bound,
             "alice's node has a peer for the group");
  b.stop();
  wait_until([&] { return !group_entry(a, group).value("reachable", true); }, propagate_bound,
             "alice's node sees no peer for the group");

  const std::string text = "while bob is away " + random_hex(4);
  Outcome posted = a.qun({"post", group, text});
  REQUIRE(posted.ok());
  REQUIRE(posted.err_lines().size() == 1);
  CHECK(posted.err_lines()[0].find("no peer") != std::string::npos);
  CHECK(group_entry(a, group).value("outbox", 0) == 1);
  CHECK(a.ok({"group", "list"}).find("(no peer reachable)") != std::string::npos);
  CHECK(a.ok({"status"}).find("no peer reachable, 1 queued") != std::string::npos);

  const std::string address = a.address();
  a.stop();
  NodeOptions same_port;
  same_port.listen = address;
  a.start(same_port);
  CHECK(status_of_group(a, group).value("outbox", 0) == 1);

  b.start(NodeOptions::with_peers({a.address()}));
  wait_for_posts(b, group, {text});
  wait_until([&] { return group_entry(a, group).value("outbox", 1) == 0; }, propagate_bound,
             "alice's outbox is empty");
}

// Proves members learn that a relay dropped their group, and an admin can un-name it. How:
// alice names a relay; bob's node links it and reports it "serving". The relay's operator runs
// `qun relay drop`: alice's and bob's nodes report it "not serving" (in `relay list` and in
// `status`, which used to say only "synced"). alice runs `qun relay remove`, and the relay is
// no longer named on either node.
TEST_CASE("a relay that drops a group is reported, and an admin removes it", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  Node& r = cluster.add("relay");
  a.start();
  NodeOptions relay = NodeOptions::as_relay();
  relay.extra_args = {"--relay-allow", a.id()};  // the admin the operator trusts
  r.start(relay);
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, group) == group);
  a.ok({"relay", "add", group, r.address()});
  for (const Node* n : {&a, &b}) {
    wait_until([&] { return relay_entry(*n, group, r.id()).value("state", "") == "serving"; },
               propagate_bound, n->name() + " sees the relay serving");
  }

  r.ok({"relay", "drop", group});
  for (const Node* n : {&a, &b}) {
    wait_until(
        [&] { return relay_entry(*n, group, r.id()).value("state", "") == "not serving"; },
        propagate_bound, n->name() + " sees the relay no longer serving");
    CHECK(n->ok({"status"}).find("not serving") != std::string::npos);
  }

  // bob is no admin: refused. alice names it by a prefix of its id.
  CHECK_FALSE(b.qun({"relay", "remove", group, r.id().substr(0, 12)}).ok());
  a.ok({"relay", "remove", group, r.id().substr(0, 12)});
  for (const Node* n : {&a, &b}) {
    wait_until([&] { return n->json({"relay", "list", group}).empty(); }, propagate_bound,
               n->name() + " no longer names the relay");
  }
}

}  // namespace qun::integration
