// The bash completion (contrib/bash-completion/qun) as bash runs it on Tab: COMP_WORDS and
// COMP_CWORD set, the completion function called, COMPREPLY read back (issue 16, "completion").
// Commands and options come from the built binary's --help; group names, nicks and invites from
// a real running node.
#include <catch2/catch.hpp>

#include <set>
#include <sstream>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

const std::string completion_script =
    std::string(QUN_SOURCE_DIR) + "/contrib/bash-completion/qun";

// What Tab offers after `words` (the last one is the word being completed; the first, "qun",
// becomes the binary under test). Requires bash to succeed and to print nothing on stderr: the
// completion must stay quiet, also when no node runs.
std::set<std::string> complete(const Cluster& cluster, std::vector<std::string> words) {
  words.front() = qun_binary();
  std::vector<std::string> argv{
      "/bin/bash", "--norc", "--noprofile", "-c",
      "source \"$1\" && shift && COMP_WORDS=(\"$@\") && COMP_CWORD=$(($# - 1)) && _qun && "
      "printf '%s\\n' \"${COMPREPLY[@]}\"",
      "bash", completion_script};
  argv.insert(argv.end(), words.begin(), words.end());
  const Outcome outcome = run(argv, cluster.env());
  INFO(outcome.describe());
  REQUIRE(outcome.ok());
  CHECK(outcome.err.empty());
  std::set<std::string> offered;
  std::istringstream lines(outcome.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) offered.insert(line);
  return offered;
}

using Words = std::set<std::string>;

}  // namespace

// Proves that commands, subcommands, options and option values complete from the program's own
// --help, and that with no node running the node's names are simply not offered, silently.
TEST_CASE("bash completion offers commands and options, and nothing from a node that is not running",
          "[integration][completion]") {
  Cluster cluster;
  Node& a = cluster.add("ada");  // initialised, never started
  const std::string home = a.home().string();

  const Words commands = complete(cluster, {"qun", ""});
  for (const char* c : {"init", "node", "group", "invite", "post", "log", "relay", "chat"})
    CHECK(commands.count(c) == 1);
  CHECK(complete(cluster, {"qun", "gr"}) == Words{"group"});
  CHECK(complete(cluster, {"qun", "group", ""}) == Words{"create", "list", "rename", "repair", "set"});
  CHECK(complete(cluster, {"qun", "relay", "re"}) == Words{"requests", "remove"});
  CHECK(complete(cluster, {"qun", "node", "--max-g"}) ==
        Words{"--max-groups", "--max-group-bytes", "--max-groups-per-key"});
  CHECK(complete(cluster, {"qun", "node", "--log-level", ""}) ==
        Words{"debug", "info", "warn", "error"});
  // Global options are offered after the command too, and an option's value is skipped.
  CHECK(complete(cluster, {"qun", "log", "--home", home, "x", "--f"}) == Words{"--follow"});
  CHECK(complete(cluster, {"qun", "--home", home, "--j"}) == Words{"--json"});
  // No node on this home: no groups, no error.
  CHECK(complete(cluster, {"qun", "--home", home, "post", ""}).empty());
  CHECK(complete(cluster, {"qun", "--home", home, "kick", "lobby", ""}).empty());
}

// Proves that group names, nicks and invites complete from the running node of the home the
// command line names (--home DIR and --home=DIR), as labels the node resolves, quoted for the
// shell when they hold spaces.
TEST_CASE("bash completion offers the running node's groups, members and invites",
          "[integration][completion]") {
  Cluster cluster;
  Node& a = cluster.add("ada");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  create_group(a, "night owls");
  const std::string lobby = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, lobby) == lobby);
  const Json invites = a.json({"invite", "list", "lobby"});
  REQUIRE(invites.size() == 1);
  const std::string home = a.home().string();

  CHECK(complete(cluster, {"qun", "--home", home, "post", ""}) == Words{"lobby", "night\\ owls"});
  CHECK(complete(cluster, {"qun", "post", "--home=" + home, "ni"}) == Words{"night\\ owls"});
  CHECK(complete(cluster, {"qun", "--home", home, "kick", "lobby", ""}) == Words{"ada", "bob"});
  CHECK(complete(cluster, {"qun", "--home", home, "promote", "lobby", "b"}) == Words{"bob"});
  // The group typed before the member may itself be quoted.
  CHECK(complete(cluster, {"qun", "--home", home, "kick", "night\\ owls", ""}) == Words{"ada"});
  CHECK(complete(cluster, {"qun", "--home", home, "invite", "revoke", "lobby", ""}) ==
        Words{invites[0]["id"].get<std::string>()});
  // `qun invite GROUP` and `qun invite list`: both the subcommands and the groups.
  const Words after_invite = complete(cluster, {"qun", "--home", home, "invite", ""});
  CHECK(after_invite == Words{"list", "revoke", "lobby", "night\\ owls"});
  // Positionals that name nothing the node lists offer nothing: a post's TEXT.
  CHECK(complete(cluster, {"qun", "--home", home, "post", "lobby", ""}).empty());
}

}  // namespace qun::integration
