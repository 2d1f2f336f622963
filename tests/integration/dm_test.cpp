// Direct messages (issue 15): a DM to an offline member arrives through a relay of a group both
// share, and the relay's home holds no DM plaintext.
#include <catch2/catch.hpp>
#include <fstream>

#include "tests/integration/harness.h"
#include "tests/integration/irc_client.h"

namespace qun::integration {
namespace {

// Proves the path of a first direct message to someone offline, end to end between real
// processes. How: alice (the admin the relay's operator allows) and bob share a group that relay
// R serves; alice stops. Bob, whom the operator never allowed, runs `qun dm alice TEXT`: a new
// direct group is created, names R, and R takes it on because both are members of a group it
// serves, and holds all of it. Bob stops too. Alice starts with no --peer: she links to R for
// the shared group, R offers her the direct group, she fetches it; `dm list` counts one unread
// message, `group list` marks it direct and names it `@bob`, and `qun log @bob` shows it. Alice
// answers with `qun dm bob TEXT`, which posts in the same group (no second one). Then R is
// stopped and every file of its home is searched for both messages: not found (the control:
// alice's log shows them).
TEST_CASE("a DM to an offline member arrives through a relay, whose home holds no DM plaintext",
          "[integration][dm]") {
  Cluster cluster;
  AliceBobRelay nodes = start_alice_bob_relay(cluster);
  Node &r = nodes.relay, &a = nodes.alice, &b = nodes.bob;

  const std::string group = create_group(a, "lobby-" + random_hex(8));
  a.ok({"relay", "add", group, r.address()});
  REQUIRE(invite_and_join(a, b, group) == group);
  a.ok({"post", group, "hello bob"});
  wait_for_posts(b, group, {"hello bob"});
  wait_until([&] { return events_held(r, group) > 0 && events_held(r, group) == events_held(b, group); },
             propagate_bound, "the relay holds the shared group");
  REQUIRE(a.stop());

  const std::string secret = "dm-secret-" + random_hex(16);
  Json opened = b.json({"dm", "alice", secret});
  CHECK(opened.value("created", false));
  const std::string dm = opened.value("group", std::string());
  REQUIRE(dm.size() == 64);
  wait_until([&] { return events_held(r, dm) > 0 && events_held(r, dm) == events_held(b, dm); },
             propagate_bound, "the relay holds bob's direct group");
  REQUIRE(b.stop());

  a.start();
  // Before any `qun log`, which marks what it shows as read.
  wait_until(
      [&] {
        Json list = a.json({"dm", "list"});
        return list.is_array() && list.size() == 1 && list[0].value("unread", 0) == 1;
      },
      propagate_bound, "alice lists one direct conversation with one unread message");
  CHECK(a.json({"dm", "list"})[0].value("group", std::string()) == dm);
  Json entry = group_entry(a, dm);
  CHECK(entry.value("direct", false));
  CHECK(entry.value("name", std::string()) == "@bob");
  CHECK(has_text(log_of(a, "@bob"), secret));

  const std::string answer = "dm-answer-" + random_hex(16);
  Json replied = a.json({"dm", "bob", answer});
  CHECK_FALSE(replied.value("created", true));
  CHECK(replied.value("group", std::string()) == dm);
  wait_until([&] { return events_held(r, dm) == events_held(a, dm); }, propagate_bound,
             "the relay holds alice's answer");
  CHECK(has_text(log_of(a, dm), answer));
  a.stop();

  REQUIRE(r.stop());
  for (const auto& text : {secret, answer}) {
    auto leaks = files_containing(r.home(), text);
    INFO("DM plaintext '" << text << "' found in the relay's files");
    CHECK(leaks.empty());
    CHECK(r.log().find(text) == std::string::npos);
  }
}

// Alice founds a group with no relay and bob joins; bob opens a DM with alice (so he founds
// it), which reaches her. Returns the group's id and the DM's.
std::pair<std::string, std::string> open_dm_before_relay(const Node& a, const Node& b) {
  const std::string group = create_group(a, "lobby-" + random_hex(8));
  REQUIRE(invite_and_join(a, b, group) == group);
  Json opened = b.json({"dm", "alice", "hello alice"});
  REQUIRE(opened.value("created", false));
  const std::string dm = opened.value("group", std::string());
  REQUIRE(dm.size() == 64);
  wait_for_posts(a, dm, {"hello alice"});
  return {group, dm};
}

// Proves that a DM opened before any shared group named a relay picks one up later, and then
// reaches an offline member through it. How: alice and bob share a group with no relay; bob
// opens a DM with alice (it names no relay, and R does not hold it). Then alice names R in the
// shared group: bob's node, the DM's founder, names R in the DM too and offers it to R, which
// takes it on. Bob stops; alice's `qun dm bob TEXT` reaches R. Alice stops; bob starts again
// with no --peer (alice is offline: only R has the message) and reads it.
TEST_CASE("a DM opened before its members' group had a relay names the relay once it has one",
          "[integration][dm][relay]") {
  Cluster cluster;
  AliceBobRelay nodes = start_alice_bob_relay(cluster);
  Node &r = nodes.relay, &a = nodes.alice, &b = nodes.bob;

  const auto [group, dm] = open_dm_before_relay(a, b);
  CHECK(events_held(r, dm) == -1);  // no relay yet: R was never offered it

  a.ok({"relay", "add", group, r.address()});
  wait_until([&] { return events_held(r, dm) > 0 && events_held(r, dm) == events_held(b, dm); },
             propagate_bound, "the relay the shared group names now holds the DM");
  CHECK(b.log().find("names relay") != std::string::npos);
  REQUIRE(b.stop());

  const std::string secret = "dm-late-relay-" + random_hex(16);
  Json sent = a.json({"dm", "bob", secret});
  CHECK_FALSE(sent.value("created", true));
  CHECK(sent.value("group", std::string()) == dm);
  wait_until([&] { return events_held(r, dm) == events_held(a, dm); }, propagate_bound,
             "the relay holds alice's message to offline bob");
  REQUIRE(a.stop());

  b.start();
  wait_for_posts(b, dm, {secret});
}

// Proves the founder's node names a relay the shared group named while it was offline. How:
// bob opens a DM with alice while their group has no relay, and stops; alice names R in the
// group; bob starts again (with alice's address): his node learns of R from the shared group
// and names it in the DM, and R takes the DM on. Without bob's node, nobody would: alice's node
// may not name relays in a DM bob founded.
TEST_CASE("a DM's founder names a relay its shared group named while it was offline",
          "[integration][dm][relay]") {
  Cluster cluster;
  AliceBobRelay nodes = start_alice_bob_relay(cluster);
  Node &r = nodes.relay, &a = nodes.alice, &b = nodes.bob;

  const auto [group, dm] = open_dm_before_relay(a, b);
  REQUIRE(b.stop());

  a.ok({"relay", "add", group, r.address()});
  CHECK(events_held(r, dm) == -1);  // alice's node names no relay in bob's DM
  b.start(NodeOptions::with_peers({a.address()}));
  wait_until([&] { return events_held(r, dm) > 0 && events_held(r, dm) == events_held(b, dm); },
             propagate_bound, "the relay holds the DM once its founder is back");
  CHECK(b.log().find("names relay") != std::string::npos);
}

// Proves a relay keeps DMs only between members of the communities it serves. How: alice (the
// admin) and bob share a group relay R serves; bob DMs alice and R takes the DM on. Alice kicks
// bob: he is in no group R serves any more, and R drops the DM (its log says why) within its
// re-check interval and the kick's propagation, while alice's node keeps the conversation.
TEST_CASE("a relay drops a DM once one of its members is in no group it serves",
          "[integration][dm][relay]") {
  Cluster cluster;
  AliceBobRelay nodes = start_alice_bob_relay(cluster);
  Node &r = nodes.relay, &a = nodes.alice, &b = nodes.bob;

  const std::string group = create_group(a, "lobby-" + random_hex(8));
  a.ok({"relay", "add", group, r.address()});
  REQUIRE(invite_and_join(a, b, group) == group);
  wait_until([&] { return events_held(r, group) > 0 && events_held(r, group) == events_held(b, group); },
             propagate_bound, "the relay holds the shared group");
  const std::string dm = b.json({"dm", "alice", "hello alice"}).value("group", std::string());
  REQUIRE(dm.size() == 64);
  wait_until([&] { return events_held(r, dm) > 0 && events_held(r, dm) == events_held(b, dm); },
             propagate_bound, "the relay holds bob's direct group");

  a.ok({"kick", group, b.id()});
  // The relay's re-check runs at most every 10 s (direct::relay_recheck_interval_ms).
  wait_until([&] { return events_held(r, dm) == -1; }, propagate_bound + Millis{10'000},
             "the relay drops the DM of a member it no longer serves");
  CHECK(r.log().find("in no group served here any more") != std::string::npos);
  CHECK(events_held(r, group) > 0);  // the community's group stays served
  CHECK(events_held(a, dm) > 0);     // the conversation stays on its members' nodes
}

// Proves blocking end to end: bob blocks alice; alice's `qun dm bob TEXT` creates the group on
// her side, but bob's node drops her offer (its log says why) and lists no conversation; a
// `qun dm alice` from bob is refused with the way out; after `qun dm unblock alice` the offer
// comes again and bob reads the message; `qun dm block alice` then removes the conversation
// from bob's node.
TEST_CASE("a blocked member's DM is dropped, and arrives once unblocked", "[integration][dm]") {
  Cluster cluster;
  Trio t = start_trio(cluster, "lobby-" + random_hex(6));
  Node& a = t.alice;
  Node& b = t.bob;
  b.ok({"dm", "block", "alice"});
  CHECK(b.json({"dm", "blocked"}).size() == 1);
  const std::string secret = "dm-blocked-" + random_hex(12);
  const std::string dm = a.json({"dm", "bob", secret}).value("group", std::string());
  wait_until([&] { return b.log().find("direct offer dropped group=" + dm.substr(0, 8)) != std::string::npos; },
             propagate_bound, "bob's node drops alice's offer");
  CHECK(b.log().find("reason=blocked peer") != std::string::npos);
  CHECK(b.json({"dm", "list"}).empty());
  Outcome refused = b.qun({"dm", "alice", "hi"});
  CHECK_FALSE(refused.ok());
  CHECK(refused.err.find("you blocked alice; `qun dm unblock alice` first") != std::string::npos);

  b.ok({"dm", "unblock", "alice"});
  wait_for_posts(b, dm, {secret});
  b.ok({"dm", "block", "alice"});
  CHECK(b.json({"dm", "list"}).empty());
  CHECK(group_entry(b, dm).is_null());
}

}  // namespace
}  // namespace qun::integration

namespace qun::integration {

// Proves direct messages between an IRC client and a member on another node (issue 16's
// private queries), with real processes: ada's IRC client sends `PRIVMSG bob`, which creates
// the direct group and reaches bob's node (`qun log @ada`); bob answers with `qun dm ada`, and
// the client gets it as a PRIVMSG from bob to ada (a query window in irssi or weechat).
TEST_CASE("qun irc: a private message is a direct message, both ways", "[integration][irc][dm]") {
  Cluster cluster;
  Node& ada = cluster.add("ada");
  Node& bob = cluster.add("bob");
  ada.start();
  bob.start();
  const std::string group = create_group(ada, "lobby");
  invite_and_join(ada, bob, group);

  IrcGateway gateway(cluster, ada);
  IrcClient irc(gateway.port());
  irc.login(gateway.password(), "ada");
  irc.wait_for(" 366 ada #lobby ", "the client is in #lobby");
  const std::string canary = random_hex(6);
  irc.send("PRIVMSG bob :just between us " + canary);
  wait_until(
      [&] {
        Json list = bob.json({"dm", "list"});
        return list.is_array() && list.size() == 1;
      },
      propagate_bound, "bob's node has the direct conversation");
  wait_for_posts(bob, "@ada", {"just between us " + canary});
  bob.ok({"dm", "ada", "got it " + canary});
  irc.wait_for(":bob!" + bob.id().substr(0, 8) + "@qun PRIVMSG ada :got it " + canary,
               "bob's answer as a private message");
  CHECK_FALSE(irc.has("JOIN #@"));
}

}  // namespace qun::integration

namespace qun::integration {

// Proves a direct message runs the notification command like a mention (issue 16,
// "Notifications"): bob's config sets a command that writes its arguments to a file; alice's
// `qun dm bob TEXT` (no mention of bob in it) runs it once with alice's nick, the conversation's
// name (@alice) and the text.
TEST_CASE("a direct message runs the notification command", "[integration][dm]") {
  Cluster cluster;
  const fs::path out = cluster.dir() / "notified.txt";
  const fs::path script = cluster.dir() / "notifier.sh";
  {
    std::ofstream s(script);
    s << "#!/bin/sh\nprintf '%s|' \"$@\" > '" << out.string() << ".tmp'\nmv '" << out.string()
      << ".tmp' '" << out.string() << "'\n";
  }
  fs::permissions(script, fs::perms::owner_all);
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  {
    std::ofstream config(b.home() / "config.toml");
    config << "[notify]\ncommand = [\"" << script.string() << "\"]\n";
  }
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, group) == group);
  // Bob's join reaches alice by gossip: `qun dm bob` needs her to know him.
  wait_until([&] { return a.json({"members", group}).size() == 2; }, propagate_bound,
             "alice knows bob as a member");
  a.ok({"dm", "bob", "a quiet word"});
  wait_until([&] { return fs::exists(out); }, propagate_bound, "the notifier ran");
  CHECK(file_contents(out) == "alice|@alice|a quiet word|");
}

}  // namespace qun::integration
