// The bash completion (contrib/bash-completion/qun) as bash runs it on Tab: COMP_WORDS and
// COMP_CWORD set, the completion function called, COMPREPLY read back (issue 16, "completion").
// The zsh completion (contrib/zsh-completion/_qun) the same way: `words` and CURRENT set, _qun
// called, and what it passes to compadd read back (compadd filters by what is typed and quotes,
// so the stand-in here does the filtering); compinit picks it up from $fpath by its #compdef
// line. Commands and options come from the built binary's --help; group names, nicks and
// invites from a real running node.
#include <catch2/catch.hpp>

#include <set>
#include <sstream>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

const std::string completion_script =
    std::string(QUN_SOURCE_DIR) + "/contrib/bash-completion/qun";
const std::string zsh_completion_dir = std::string(QUN_SOURCE_DIR) + "/contrib/zsh-completion";

enum class Shell { bash, zsh };
// Debian's zsh (in /usr/bin; /bin is the same directory on a merged-/usr system).
const std::string zsh_path = "/usr/bin/zsh";

// What Tab offers after `words` (the last one is the word being completed; the first, "qun",
// becomes the binary under test). Requires bash to succeed and to print nothing on stderr: the
// completion must stay quiet, also when no node runs.
std::set<std::string> complete(const Cluster& cluster, std::vector<std::string> words,
                               Shell shell = Shell::bash) {
  words.front() = qun_binary();
  std::vector<std::string> argv{
      "/bin/bash", "--norc", "--noprofile", "-c",
      "source \"$1\" && shift && COMP_WORDS=(\"$@\") && COMP_CWORD=$(($# - 1)) && _qun && "
      "printf '%s\\n' \"${COMPREPLY[@]}\"",
      "bash", completion_script};
  if (shell == Shell::zsh) {
    argv = {zsh_path,
            "-f",
            "-c",
            "compadd() { shift $(( ${@[(i)--]} )); local c; for c; do "
            "[[ $c == ${(Q)words[CURRENT]}* ]] && print -r -- $c; done }; "
            "_files() { print -r -- FILES }; "
            "source \"$1/_qun\" && shift && words=(\"$@\") && CURRENT=$# && _qun",
            "zsh",
            zsh_completion_dir};
  }
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

// Proves the same of the zsh completion: compinit finds it on $fpath by its #compdef line;
// commands and options come from --help; the running node's groups, members and invites are
// offered (as they are: compadd quotes them); with no node, none, silently.
TEST_CASE("zsh completion offers commands, options and the running node's names",
          "[integration][completion]") {
  if (!fs::exists(zsh_path)) {
    WARN("zsh is not installed (scripts/setup installs it): the zsh completion is not tested");
    return;
  }
  Cluster cluster;
  const Outcome found = run({zsh_path, "-f", "-c",
                             "fpath=(\"$1\" $fpath); autoload -U compinit && compinit -u -D && "
                             "print -r -- $_comps[qun]",
                             "zsh", zsh_completion_dir},
                            cluster.env());
  CHECK(found.out == "_qun\n");
  Node& a = cluster.add("ada");
  Node& b = cluster.add("bob");
  const std::string home = a.home().string();
  const Shell z = Shell::zsh;

  CHECK(complete(cluster, {"qun", "gr"}, z) == Words{"group"});
  CHECK(complete(cluster, {"qun", "group", ""}, z) ==
        Words{"create", "list", "rename", "repair", "set"});
  CHECK(complete(cluster, {"qun", "node", "--max-g"}, z) ==
        Words{"--max-groups", "--max-group-bytes", "--max-groups-per-key"});
  CHECK(complete(cluster, {"qun", "node", "--log-level", ""}, z) ==
        Words{"debug", "info", "warn", "error"});
  CHECK(complete(cluster, {"qun", "--home", home, "--j"}, z) == Words{"--json"});
  CHECK(complete(cluster, {"qun", "log", "--home", home, "x", "--f"}, z) == Words{"--follow"});
  CHECK(complete(cluster, {"qun", "--home", ""}, z) == Words{"FILES"});
  CHECK(complete(cluster, {"qun", "--home", home, "post", ""}, z).empty());

  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  create_group(a, "night owls");
  const std::string lobby = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, lobby) == lobby);
  const Json invites = a.json({"invite", "list", "lobby"});
  REQUIRE(invites.size() == 1);
  CHECK(complete(cluster, {"qun", "--home", home, "post", ""}, z) == Words{"lobby", "night owls"});
  CHECK(complete(cluster, {"qun", "post", "--home=" + home, "ni"}, z) == Words{"night owls"});
  CHECK(complete(cluster, {"qun", "--home", home, "kick", "lobby", ""}, z) == Words{"ada", "bob"});
  CHECK(complete(cluster, {"qun", "--home", home, "kick", "night\\ owls", ""}, z) == Words{"ada"});
  CHECK(complete(cluster, {"qun", "--home", home, "invite", "revoke", "lobby", ""}, z) ==
        Words{invites[0]["id"].get<std::string>()});
  CHECK(complete(cluster, {"qun", "--home", home, "invite", ""}, z) ==
        Words{"list", "revoke", "lobby", "night owls"});
  CHECK(complete(cluster, {"qun", "--home", home, "post", "lobby", ""}, z).empty());
}

}  // namespace qun::integration
