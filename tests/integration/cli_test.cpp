// The CLI contract of issue 5 as a user meets it: errors, the home, and naming groups.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <set>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// Checks an outcome is a clean failure: non-zero exit (not a crash, not a hang), nothing on
// stdout, exactly one line on stderr.
void require_one_line_failure(const Outcome& outcome) {
  INFO(outcome.describe());
  CHECK(!outcome.timed_out);
  CHECK(outcome.exited);
  CHECK(outcome.code != 0);
  CHECK(outcome.out.empty());
  CHECK(outcome.err_lines().size() == 1);
}

// Proves: commands that need a node say so in one line naming `qun node` when none runs, and
// exit non-zero at once rather than hang. How: an initialised home whose node was never started
// (and one whose node has stopped, leaving its socket file behind if it leaves any).
TEST_CASE("commands without a running node fail with one line that mentions qun node",
          "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"post", "somegroup", "hello"}, {"id"}, {"group", "list"}, {"status"}, {"peers"}}) {
    Outcome outcome = a.qun(args);
    require_one_line_failure(outcome);
    CHECK(outcome.err.find("qun node") != std::string::npos);
  }

  a.start();
  a.kill9();  // a crash leaves whatever it leaves; the CLI must still say "no node"
  Outcome outcome = a.qun({"post", "somegroup", "hello"});
  require_one_line_failure(outcome);
  CHECK(outcome.err.find("qun node") != std::string::npos);
}

// Proves: a second `qun node` on the same home refuses to start (non-zero exit, promptly), and
// the first keeps running and answering.
TEST_CASE("a second qun node on the same home refuses to start", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  a.start();
  const std::string address = a.address();
  Outcome second = a.qun({"node", "--listen", "127.0.0.1:0"});
  INFO(second.describe());
  CHECK(!second.timed_out);
  CHECK(second.exited);
  CHECK(second.code != 0);
  CHECK(!second.err.empty());
  REQUIRE(a.running());
  Json id = a.json({"id"});
  CHECK(id["listen"].size() >= 1);
  CHECK(id["listen"][0] == address);

  // SIGINT (Ctrl-C) stops the node gracefully, and releases the home for the next node.
  a.process()->signal(SIGINT);
  auto status = a.process()->wait_exit(stop_bound);
  REQUIRE(status);
  CHECK(describe_status(*status) == "exit 0");
  a.start();
  CHECK(a.json({"id"}).value("id", "") == id.value("id", ""));
}

// Proves: without --home, `$QUN_HOME` names the home (the harness removes it from every other
// command's environment, so this is the one place it is set).
TEST_CASE("QUN_HOME names the home when --home is absent", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  a.start();
  Outcome outcome = run({qun_binary(), "id", "--json"},
                        child_env({"QUN_HOME=" + a.home().string(),
                                   "XDG_DATA_HOME=" + (cluster.dir() / "xdg").string()}));
  INFO(outcome.describe());
  REQUIRE(outcome.ok());
  CHECK(Json::parse(outcome.out).value("id", "") == a.id());
}

// Proves: `qun join` with a bad code fails with one clear line (no crash, no hang) and leaves the
// node running: plain garbage, the right prefix with garbage, an empty code and a huge one.
TEST_CASE("qun join with a garbage code gives one clear line", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  a.start();
  for (const std::string& code :
       {std::string("garbage"), std::string("qun1AAAAAAAAAAAAAAAA"), std::string("qun1!!!"),
        std::string(""), "qun1" + std::string(10'000, 'A')}) {
    INFO("code: " << code.substr(0, 40));
    require_one_line_failure(a.qun({"join", code}));
  }
  CHECK(a.running());
  CHECK(a.json({"group", "list"}).empty());
}

// Proves a code pasted in pieces joins when a piece starts with '-' (a base64url digit): before,
// CLI11 took such a piece for an option and `qun join` failed with its usage (or, for a piece
// starting "-h", printed its help and exited 0). How: invites until one's code has a '-' past
// its prefix (about 4 in 5 codes do), then the code split right before it.
TEST_CASE("a code pasted in pieces joins when a piece starts with a dash", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "dashes");
  // Codes are random: the chance that none of 40 has a '-' past "qun2" is below 1e-25.
  constexpr int codes_max = 40;
  std::string code;
  std::size_t dash = std::string::npos;
  for (int i = 0; i < codes_max && dash == std::string::npos; ++i) {
    code = a.ok({"invite", group});
    dash = code.find('-', 5);
  }
  REQUIRE(dash != std::string::npos);
  CHECK(b.ok({"join", code.substr(0, dash), code.substr(dash)}) == group);
}

// Proves a node whose default port is taken still starts: a person's node and the package's
// relay unit on one machine both default to 7420, and under systemd the second one failed at
// once ("cannot listen on 0.0.0.0:7420: address already in use"; tests/packaging/
// systemd_boot.sh found it). How: the test holds 7420 (or someone else does), starts a node
// without --listen, and finds it listening on another port, with a warning that says how to
// choose one. A node told to listen on a taken port still fails: it chose that port.
TEST_CASE("a node whose default port is taken listens on a free one", "[integration]") {
  const int held = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(held >= 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_port = htons(7420);
  any.sin_addr.s_addr = htonl(INADDR_ANY);
  // Nothing else on a test machine listens on 7420 (tests/packaging/systemd_boot.sh runs its
  // relay in a network namespace of its own).
  REQUIRE(::bind(held, reinterpret_cast<sockaddr*>(&any), sizeof any) == 0);
  REQUIRE(::listen(held, 1) == 0);
  Cluster cluster;
  Node& a = cluster.add("alice");
  NodeOptions defaults;
  defaults.listen = "";
  a.start(defaults);
  CHECK(a.address().rfind("0.0.0.0:", 0) == 0);
  CHECK(a.address() != "0.0.0.0:7420");
  CHECK(a.log().find("listening on a free port instead") != std::string::npos);
  // Nobody chose where to listen: IPv6 too, on the same port, where the machine has IPv6.
  const Json listen = a.json({"id"})["listen"];
  const std::string port = a.address().substr(a.address().rfind(':') + 1);
  if (listen.size() == 2)
    CHECK(listen[1] == "[::]:" + port);
  else
    CHECK(a.log().find("listening on IPv4 only") != std::string::npos);
  Node& b = cluster.add("bob");
  Outcome chosen = b.qun({"node", "--listen", "0.0.0.0:7420"});
  INFO(chosen.describe());
  CHECK(chosen.code == 1);
  CHECK(chosen.err.find("cannot listen on 0.0.0.0:7420") != std::string::npos);
  ::close(held);
}

// Proves the naming rules and the basic output contract: GROUP by name and by unique id prefix,
// an ambiguous name refused with one line while the full id still works, `--home` before the
// command, TEXT `-` from stdin, `group create`/`invite` printing only the id/code, and the JSON
// fields of `id`, `group list`, `members`, `peers` and `log`.
TEST_CASE("GROUP by name and by unique id prefix, --home anywhere, text from stdin",
          "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  a.start();

  Json id = a.json({"id"});
  CHECK(id.value("nick", "") == "alice");
  CHECK(id["id"].is_string());
  CHECK(id["listen"].is_array());
  CHECK(id.value("relay", true) == false);

  const std::string books = create_group(a, "books");
  const std::string films = create_group(a, "films");
  REQUIRE(books != films);
  // The shortest prefix of books' id that films' id does not share, and at least 6 characters.
  std::size_t common = 0;
  while (common < books.size() && common < films.size() && books[common] == films[common]) ++common;
  const std::string prefix = books.substr(0, std::max<std::size_t>(6, common + 1));

  a.ok({"post", "books", "by name"});
  a.ok({"post", prefix, "by prefix"});
  a.ok({"post", books, "-"}, "from stdin");
  a.ok({"post", "films", "a film"});

  // `--home` before the command.
  Outcome before = cluster.qun_raw({"--home", a.home().string(), "log", "books", "--json"});
  REQUIRE(before.ok());
  const auto log = parse_json_lines(before.out);
  CHECK(has_text(log, "by name"));
  CHECK(has_text(log, "by prefix"));
  CHECK(has_text(log, "from stdin"));
  CHECK(!has_text(log, "a film"));
  for (const auto& line : log) {
    REQUIRE(line.is_object());
    for (const char* field : {"id", "author", "nick", "time", "text", "kind"}) {
      INFO(line.dump() << " lacks " << field);
      CHECK(line.contains(field));
    }
  }
  CHECK(!has_text(log_of(a, films), "by name"));
  // --limit N gives the last N entries.
  CHECK(texts(a.json_lines({"log", "books", "--limit", "1"})) ==
        std::vector<std::string>{"from stdin"});

  // group list: both groups with their fields.
  Json list = a.json({"group", "list"});
  REQUIRE(list.is_array());
  CHECK(list.size() == 2);
  for (const auto& g : list)
    for (const char* field : {"id", "name", "members", "unread"}) CHECK(g.contains(field));

  // members: alice alone, with a role.
  Json members = a.json({"members", "books"});
  REQUIRE(members.size() == 1);
  CHECK(members[0].value("id", "") == id["id"]);
  CHECK(members[0].value("nick", "") == "alice");
  CHECK(members[0].contains("role"));
  CHECK(a.json({"peers"}).is_array());

  // Ambiguity and unknown names are refused with one line; the full id still works.
  const std::string books2 = create_group(a, "books");
  require_one_line_failure(a.qun({"post", "books", "which books?"}));
  require_one_line_failure(a.qun({"post", "no-such-group", "hello"}));
  a.ok({"post", books2, "into the second books"});
  CHECK(has_text(log_of(a, books2), "into the second books"));
  CHECK(!has_text(log_of(a, books), "into the second books"));

  // `qun topic`, then `qun invite` prints only a code.
  a.ok({"topic", books, "what we read"});
  const std::string code = a.ok({"invite", books, "--uses", "3", "--expires", "1h"});
  CHECK(code.find_first_of(" \n\t") == std::string::npos);
  CHECK(!code.empty());
}

// Proves: `qun log GROUP --follow --json` prints the history and then streams new posts as one
// JSON object per line while it runs, including a post from another member; when the node stops
// and starts again it reconnects and goes on streaming, and catches up with what arrived while
// it was away (issue 11, item 15: it used to exit when the node stopped).
TEST_CASE("qun log --follow streams new posts as they arrive", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "radio");
  REQUIRE(invite_and_join(a, b, group) == group);
  a.ok({"post", group, "history"});

  const fs::path out = cluster.dir() / "follow.out";
  Process follow = Process::spawn(
      {qun_binary(), "log", group, "--follow", "--json", "--home", a.home().string()},
      cluster.env(), cluster.dir() / "logs/follow.log", out);
  auto streamed = [&] { return parse_json_lines(file_contents(out)); };
  wait_until([&] { return has_text(streamed(), "history"); }, propagate_bound,
             "the follower printed the history");
  a.ok({"post", group, "live from alice"});
  b.ok({"post", group, "live from bob"});
  wait_until(
      [&] {
        auto lines = streamed();
        return has_text(lines, "live from alice") && has_text(lines, "live from bob");
      },
      propagate_bound, "the follower streamed both new posts");
  for (const auto& line : streamed()) CHECK(line.is_object());
  CHECK(follow.running());

  // The node restarts: the follower waits for it, then shows what bob posted meanwhile and what
  // comes after, each once.
  const std::string address = a.address();
  a.stop();
  b.ok({"post", group, "while alice was down"});
  CHECK(follow.running());
  NodeOptions again = NodeOptions::with_peers({b.address()});
  again.listen = address;
  a.start(again);
  wait_for_posts(a, group, {"while alice was down"});
  a.ok({"post", group, "after the restart"});
  wait_until(
      [&] {
        auto lines = streamed();
        return has_text(lines, "while alice was down") && has_text(lines, "after the restart");
      },
      propagate_bound, "the follower reconnected and streamed the posts after the restart");
  const auto all = ids(streamed());
  CHECK(std::set<std::string>(all.begin(), all.end()).size() == all.size());
  CHECK(follow.running());
  follow.stop();
}

// Proves `qun log GROUP --follow` announces succession as the chat does (issue 11, item 11), and
// only succession: bob follows; alice (the founder, the only admin) promotes carol, carol leaves
// (alice is still an admin: nothing to say), then alice leaves and the group's rule makes bob
// admin: "qun: you are now an admin: the last admin left", once. Before, the follower printed
// "alice left" and nothing told bob he now ran the group.
TEST_CASE("log --follow announces succession, not promotion", "[integration]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  Node& c = cluster.add("carol");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  c.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "ops");
  REQUIRE(invite_and_join(a, b, group) == group);
  REQUIRE(invite_and_join(a, c, group) == group);
  const fs::path err = cluster.dir() / "logs/follow.log";
  const fs::path out = cluster.dir() / "follow.out";
  Process follow = Process::spawn(
      {qun_binary(), "log", "ops", "--follow", "--home", b.home().string()}, cluster.env(), err,
      out);
  auto printed = [&](const std::string& words) {
    return file_contents(out).find(words) != std::string::npos;
  };
  wait_until(
      [&] {
        a.ok({"post", group, "roll call"});
        return printed("roll call");
      },
      propagate_bound, "the follower prints alice's post");
  a.ok({"promote", group, c.id()});
  wait_until([&] { return printed("alice made carol admin"); }, propagate_bound,
             "the follower prints the promotion");
  c.ok({"leave", group});
  wait_until([&] { return printed("carol left"); }, propagate_bound,
             "the follower prints carol's leave");
  a.ok({"leave", group});
  wait_until([&] { return printed("alice left"); }, propagate_bound,
             "the follower prints alice's leave");
  wait_until(
      [&] {
        return file_contents(err).find("qun: you are now an admin: the last admin left\n") !=
               std::string::npos;
      },
      propagate_bound, "the follower announces the succession");
  follow.stop();
  const std::string said = file_contents(err);
  CHECK(said.find("now an admin") == said.rfind("now an admin"));  // once, and not for carol
  CHECK(said.find("carol is now") == std::string::npos);
  CHECK(b.json({"members", group})[0].value("role", "") == "admin");
}

}  // namespace
}  // namespace qun::integration
