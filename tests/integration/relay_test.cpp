// Relays: an offline member catches up through a relay, and the relay cannot read what it holds.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// Proves two things.
// 1. A member that was offline while others posted gets everything through a relay when the
//    poster is gone. How: R runs `qun node --relay`; A creates the group and adds R with
//    `qun relay add`; B joins, waits until R holds what B holds, and stops. A posts, waits until
//    R holds everything A holds, and stops. B starts again with no --peer (A is gone, so the only
//    source is R, which B must find from the group itself) and must list A's posts.
// 2. A relay stores nothing it can read. How: after the run, R is stopped and every byte of
//    every file under R's home (the LMDB files included) is searched for the posts' text and the
//    group's name, random strings that cannot occur by chance. As a control that the search
//    would find plaintext if it were there, B's `qun log` shows the same strings.
TEST_CASE("an offline member gets the posts through a relay, which cannot read them",
          "[integration]") {
  Cluster cluster;
  AliceBobRelay nodes = start_alice_bob_relay(cluster);
  Node &r = nodes.relay, &a = nodes.alice, &b = nodes.bob;  // the relay trusts alice, the admin
  CHECK(r.json({"id"}).value("relay", false));

  const std::string group_name = "orchard-" + random_hex(12);
  const std::string group = create_group(a, group_name);
  a.ok({"relay", "add", group, r.address()});
  REQUIRE(invite_and_join(a, b, group) == group);
  a.ok({"post", group, "welcome, bob"});
  wait_for_posts(b, group, {"welcome, bob"});
  wait_until(
      [&] {
        auto held = events_held(r, group);
        return held > 0 && held == events_held(b, group) && held == events_held(a, group);
      },
      propagate_bound, "the relay holds every event alice and bob hold");
  auto b_stopped = b.stop();
  REQUIRE(b_stopped);
  CHECK(describe_status(*b_stopped) == "exit 0");

  std::vector<std::string> posts;
  for (int i = 0; i < 3; ++i)
    posts.push_back("secret-post-" + std::to_string(i) + "-" + random_hex(16));
  for (const auto& text : posts) a.ok({"post", group, text});
  // Every kind of issue 12 carries its own secret: the relay learns only the kind.
  const std::string channel = "chan-" + random_hex(12), renamed = "chan-" + random_hex(12);
  const std::string edited = "edited-" + random_hex(16), reaction = "re-" + random_hex(12);
  const std::string reply = "reply-" + random_hex(16), nick = "nick-" + random_hex(12);
  const std::string new_name = "orchard-" + random_hex(12), doomed = "doomed-" + random_hex(16);
  const std::string first = a.json({"post", group, "to be edited"}).value("id", std::string());
  a.ok({"edit", group, first, edited});
  a.ok({"react", group, first, reaction});
  a.ok({"channel", "create", group, channel});
  a.ok({"channel", "rename", group, channel, renamed});
  a.ok({"post", group, reply, "--reply", first, "--channel", renamed, "--me"});
  const std::string gone = a.json({"post", group, doomed}).value("id", std::string());
  a.ok({"delete", group, gone});
  a.ok({"mute", group, b.id(), "--for", "1h"});
  a.ok({"unmute", group, b.id()});
  a.ok({"nick", nick});
  a.ok({"group", "rename", group, new_name});
  a.ok({"group", "set", group, "history", "on"});
  const std::vector<std::string> conversation_secrets{channel, renamed, edited, reaction,
                                                      reply,   nick,    new_name};
  wait_until([&] { return events_held(r, group) == events_held(a, group); }, propagate_bound,
             "the relay holds every event alice holds, her new posts included");
  auto a_stopped = a.stop();
  REQUIRE(a_stopped);
  CHECK(describe_status(*a_stopped) == "exit 0");

  b.start();
  wait_for_posts(b, group, posts);
  // The control: these strings are what a leak would look like.
  const auto b_log = log_of(b, group);
  for (const auto& text : posts) CHECK(has_text(b_log, text));
  wait_until([&] { return has_text(log_of(b, group), reply); }, propagate_bound,
             "bob reads alice's conversation acts");
  {
    // The control for the new kinds: bob's log shows each secret (as a text, an emoji or a
    // name), so a search of the relay's files would find it if it were there.
    const std::string dump = b.ok({"log", group, "--json", "--all"});
    for (const auto& secret : conversation_secrets) {
      INFO("bob's log lacks " << secret);
      CHECK(dump.find(secret) != std::string::npos);
    }
  }
  b.stop();

  auto r_stopped = r.stop();
  REQUIRE(r_stopped);
  CHECK(describe_status(*r_stopped) == "exit 0");
  std::vector<std::string> secrets = posts;
  secrets.push_back(group_name);
  secrets.push_back("welcome, bob");
  secrets.insert(secrets.end(), conversation_secrets.begin(), conversation_secrets.end());
  secrets.push_back(doomed);
  for (const auto& secret : secrets) {
    auto leaks = files_containing(r.home(), secret);
    INFO("plaintext '" << secret << "' found in the relay's files:");
    for (const auto& f : leaks) INFO("  " << f.string());
    CHECK(leaks.empty());
  }
  // And the relay's log on stderr never prints plaintext either.
  for (const auto& secret : secrets) CHECK(r.log().find(secret) == std::string::npos);
}

// Proves the operator's bounds and `qun relay drop` (issue 5, "Relays"): a relay started with
// --max-groups 1 --max-group-bytes 8000 takes one group and refuses a second `qun relay add`
// with one line; past the byte bound it drops the payloads of the group's oldest posts (counted
// in `qun status` as payloads_dropped, with bytes held within the bound, nothing refused, and a
// logged reason) and keeps serving what it holds; `qun relay drop` on the relay's home removes the group from its
// status, which frees the slot for the second group.
TEST_CASE("a relay keeps to --max-groups and --max-group-bytes, and drops a group on request",
          "[integration]") {
  constexpr std::int64_t group_bytes_max = 8000;
  Cluster cluster;
  Node& r = cluster.add("relay");
  Node& a = cluster.add("alice");
  a.start();
  NodeOptions relay = NodeOptions::as_relay();
  relay.extra_args = {"--max-groups", "1", "--max-group-bytes", std::to_string(group_bytes_max),
                      "--relay-allow", a.id()};
  r.start(relay);
  const std::string one = create_group(a, "one");
  const std::string two = create_group(a, "two");
  a.ok({"relay", "add", one, r.address()});
  Outcome refused = a.qun({"relay", "add", two, r.address()});
  INFO(refused.describe());
  CHECK(!refused.ok());
  CHECK(!refused.timed_out);
  CHECK(refused.err_lines().size() == 1);

  // Twenty posts of 1000 bytes: well past the byte bound.
  for (int i = 0; i < 20; ++i)
    a.ok({"post", one, std::to_string(i) + std::string(1000, static_cast<char>('a' + i))});
  wait_until([&] { return status_of_group(r, one).value("events", 0) >= 22; }, propagate_bound,
             "the relay holds the group's events and all twenty posts");
  Json usage = status_of_group(r, one);
  INFO("relay usage: " << usage.dump());
  CHECK(usage.value("bytes", group_bytes_max + 1) <= group_bytes_max);
  CHECK(usage.value("payloads_dropped", 0) > 0);
  CHECK(usage.value("events_refused", -1) == 0);
  CHECK(r.running());
  CHECK(r.log().find("relay group over its bound") != std::string::npos);

  r.ok({"relay", "drop", one});
  wait_until([&] { return status_of_group(r, one).is_null(); }, propagate_bound,
             "the relay no longer lists the dropped group");
  a.ok({"relay", "add", two, r.address()});
  wait_until([&] { return status_of_group(r, two).is_object(); }, propagate_bound,
             "the relay serves the second group in the freed slot");
}

}  // namespace
}  // namespace qun::integration
