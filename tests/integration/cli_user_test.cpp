// A new user's rough edges with the `qun` command (issue 11, items 2, 3, 5, 6, 8, 15, 16, 17),
// each played as the user meets it, with real processes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// A usage error: exit 2, nothing on stdout, one line on stderr.
void require_usage_error(const Outcome& outcome) {
  INFO(outcome.describe());
  CHECK(outcome.exited);
  CHECK(outcome.code == 2);
  CHECK(outcome.out.empty());
  CHECK(outcome.err_lines().size() == 1);
}

// A refusal by the node or the CLI: exit 1, one line on stderr.
void require_one_line_failure(const Outcome& outcome) {
  INFO(outcome.describe());
  CHECK(outcome.exited);
  CHECK(outcome.code == 1);
  CHECK(outcome.out.empty());
  CHECK(outcome.err_lines().size() == 1);
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

std::size_t count_kind(const std::vector<Json>& log, const std::string& kind) {
  return static_cast<std::size_t>(std::count_if(
      log.begin(), log.end(), [&](const Json& j) { return j.value("kind", "") == kind; }));
}

// Proves (items 2 and 3): text that would break others' scripts or terminals is refused when
// authored, with one line and no event: a post of invalid UTF-8 from stdin (before the fix it was
// accepted and every member's `qun log --json` then aborted with exit 134), a post with escape
// sequences, a nick, a group name and a topic with ESC. `qun log --json` keeps working.
TEST_CASE("invalid UTF-8 and control characters are refused when authoring", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  a.start();
  const std::string group = create_group(a, "lobby");
  a.ok({"post", group, "before"});

  Outcome bad = a.qun({"post", group, "-"}, "\xff\xfe bad");
  require_one_line_failure(bad);
  CHECK(contains(bad.err, "UTF-8"));
  Outcome esc = a.qun({"post", group, "\x1b[31mRED \x1b]0;pwned\x07"});
  require_one_line_failure(esc);
  CHECK(contains(esc.err, "control character"));
  CHECK(!contains(esc.err, "\x1b"));
  require_one_line_failure(a.qun({"topic", group, "\x1b[31mtopic"}));
  require_one_line_failure(a.qun({"group", "create", "\x1b[31mevil"}));
  Node& evil = cluster.add_uninitialised("evil");
  require_usage_error(evil.qun({"init", "--name", "\x1b[31mevil"}));
  require_usage_error(evil.qun({"init", "--name", ""}));  // item 16: --name "" is refused

  a.ok({"post", group, "-"}, "multi\nline\twith tab\r\n");
  Outcome log = a.qun({"log", group, "--json"});
  INFO(log.describe());
  REQUIRE(log.ok());
  const auto lines = parse_json_lines(log.out);
  CHECK(texts(lines) == std::vector<std::string>{"before", "multi\nline\twith tab"});
}

// Proves (item 5, and item 16's "-dash text"): every kind of usage error exits 2 with one line
// naming the problem and where help is, never CLI11's own wording or exit codes (106, 109, ...).
TEST_CASE("usage errors exit 2 with one line naming the problem", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"frob"}, "unknown command 'frob'; see qun --help"},
      {{}, "no command given; see qun --help"},
      {{"group", "frob"}, "unknown command 'group frob'"},
      {{"group"}, "'qun group' needs a command"},
      {{"relay"}, "'qun relay' needs a command"},
      {{"post", "lobby"}, "TEXT is required; see qun post --help"},
      {{"post", "lobby", "two", "words"}, "unexpected argument 'words'"},
      {{"post", "lobby", "--dash text"}, "goes after --"},
      {{"log", "lobby", "--limit", "many"}, "--limit"},
      {{"members", "--frob"}, "unknown option '--frob'"},
      {{"invite"}, "GROUP is required"},
      {{"invite", "lobby", "--expires", "5"}, "needs a unit"},
      {{"invite", "lobby", "--expires", "0s"}, "longer than 0"},
      {{"invite", "lobby", "--expires", "3w"}, "unknown unit"},
      {{"node", "--log-level", "loud"}, "--log-level"},
  };
  for (const auto& c : cases) {
    Outcome o = a.qun(c.args);
    require_usage_error(o);
    INFO(o.err);
    CHECK(contains(o.err, c.says));
    CHECK(!contains(o.err, "A subcommand is required"));
  }
  // Help is not an error, and a subcommand's help names the global options and each positional.
  Outcome help = a.qun({"post", "--help"});
  INFO(help.describe());
  CHECK(help.ok());
  CHECK(contains(help.out, "--home"));
  CHECK(contains(help.out, "--json"));
  CHECK(contains(help.out, "unique prefix"));
  CHECK(contains(help.out, "reads it from stdin"));
}

// Proves (items 6, 8, 15, 16): promoting an admin again makes no event and says so; `leave --json`
// prints the id of the leave event (the one other members see); an empty topic reads "cleared the
// topic"; `qun log` indents continuation lines and hides invites and rekeys unless --all; text
// starting with '-' posts after --; grammar says "1 member"; `peers` shows the nick of a peer.
TEST_CASE("promote twice, leave --json, topic, log layout, dashes, grammar and peers", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "lobby");
  CHECK(contains(a.ok({"group", "list"}) + "\n", "lobby  1 member\n"));
  REQUIRE(invite_and_join(a, b, group) == group);

  // Item 16: peers shows bob's nick once linked.
  wait_until([&] { return contains(a.ok({"peers"}), "  bob  "); }, propagate_bound,
             "alice's peers name bob");

  // Item 6.
  a.ok({"promote", group, "bob"});
  Outcome again = a.qun({"promote", group, "bob"});
  require_one_line_failure(again);
  CHECK(contains(again.err, "already an admin"));
  CHECK(count_kind(log_of(a, group), "set-role") == 1);

  // Item 8: topic "" and leave --json.
  a.ok({"topic", group, "books"});
  a.ok({"topic", group, ""});
  // Item 16: a post starting with '-' goes after --.
  a.ok({"post", group, "-dash text"});
  Outcome separated = cluster.qun_raw({"--home", a.home().string(), "post", group, "--", "--two"});
  INFO(separated.describe());
  CHECK(separated.ok());
  a.ok({"post", group, "first line\nsecond line"});
  const std::string human = a.ok({"log", group});
  CHECK(contains(human, "* alice cleared the topic"));
  CHECK(contains(human, "alice: -dash text"));
  CHECK(contains(human, "alice: --two"));
  CHECK(contains(human, "alice: first line\n                  second line"));
  CHECK(!contains(human, "created an invite"));
  CHECK(contains(a.ok({"log", group, "--all"}), "* alice created an invite"));
  // --limit counts the entries shown.
  CHECK(a.ok({"log", group, "--limit", "1"}).find("second line") != std::string::npos);

  Json left = b.json({"leave", group});
  REQUIRE(left["id"].is_string());
  wait_until(
      [&] {
        for (const auto& j : log_of(a, group))
          if (j.value("kind", "") == "leave") return j.value("id", "") == left["id"];
        return false;
      },
      propagate_bound, "alice sees bob's leave event under the id `leave --json` printed");
}

// Proves (item 10): two members of one nick are told apart in `qun log` as in `qun members` and
// the chat, by their labels (`bob·77e0`). How: carol takes the nick bob; a post from each bob
// shows under its author's label in alice's `qun log`, and the two labels differ. Before, both
// lines read "bob: ...".
TEST_CASE("qun log tells apart two members of one nick", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  Node& c = cluster.add("carol");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  c.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, group) == group);
  REQUIRE(invite_and_join(a, c, group) == group);
  c.ok({"nick", "bob"});
  std::map<std::string, std::string> label;  // id -> label on alice's node
  wait_until(
      [&] {
        label.clear();
        for (const auto& m : a.json({"members", group}))
          label[m.value("id", "")] = m.value("label", "");
        return contains(label[c.id()], "bob\u00b7");
      },
      propagate_bound, "alice's node labels the two bobs");
  REQUIRE(contains(label[b.id()], "bob\u00b7"));
  REQUIRE(label[b.id()] != label[c.id()]);
  b.ok({"post", group, "from the first bob"});
  c.ok({"post", group, "from the second bob"});
  wait_for_posts(a, group, {"from the first bob", "from the second bob"});
  const std::string human = a.ok({"log", group});
  CHECK(contains(human, label[b.id()] + ": from the first bob"));
  CHECK(contains(human, label[c.id()] + ": from the second bob"));
}

// Proves (item 17): `qun invite list` shows each invite's creator, uses left and expiry, and its
// state once used up.
TEST_CASE("qun invite list shows uses left, expiry and creator", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "lobby");
  a.ok({"invite", group, "--uses", "3", "--expires", "2h"});
  REQUIRE(invite_and_join(a, b, group) == group);  // a second invite, used once

  // The join reaches alice's node after `qun join` returned on bob's.
  wait_until(
      [&] {
        Json l = a.json({"invite", "list", group});
        return l.size() == 2 && l[1].value("uses_left", 9) == 0;
      },
      propagate_bound, "alice's node counts bob's join against the second invite");
  Json list = a.json({"invite", "list", group});
  REQUIRE(list.is_array());
  REQUIRE(list.size() == 2);
  CHECK(list[0].value("creator_nick", "") == "alice");
  CHECK(list[0].value("uses_left", 0) == 3);
  CHECK(list[0].value("uses_max", 0) == 3);
  CHECK(list[0]["expires"].is_number_unsigned());
  CHECK(list[0].value("state", "") == "open");
  CHECK(list[1].value("uses_left", 9) == 0);
  CHECK(list[1]["expires"].is_null());
  CHECK(list[1].value("state", "") == "used up");

  const std::string human = a.ok({"invite", "list", group});
  CHECK(contains(human, "by alice  3 of 3 uses left  expires "));
  CHECK(contains(human, "by alice  0 of 1 use left  never expires  used up"));
  // bob's node sees the same invites.
  wait_until([&] { return b.json({"invite", "list", group}).size() >= 2; }, propagate_bound,
             "bob lists both invites");

  // Revoking: a third invite, closed by a prefix of its id; its code then lets nobody in, and a
  // second revoke makes no event and says so.
  const std::string code = a.ok({"invite", group});
  Json before = a.json({"invite", "list", group});
  REQUIRE(before.size() == 3);
  const std::string third = before[2].value("id", "");
  Json revoked = a.json({"invite", "revoke", group, third.substr(0, 10)});
  CHECK(revoked.value("invite", "") == third);
  CHECK(a.json({"invite", "list", group})[2].value("state", "") == "revoked");
  Outcome again = a.qun({"invite", "revoke", group, third});
  require_one_line_failure(again);
  CHECK(contains(again.err, "already closed"));
  // The close reaches bob's node: the group shuts the invite everywhere.
  wait_until(
      [&] {
        Json l = b.json({"invite", "list", group});
        return l.size() == 3 && l[2].value("state", "") == "revoked";
      },
      propagate_bound, "bob's node lists the third invite as revoked");
  CHECK(!code.empty());
}

}  // namespace
}  // namespace qun::integration
