// `qun irc` with a real IRC client: irssi from Debian, in a tmux pane (a real terminal whose
// screen we read), against two real nodes (issue 16: "a line typed in irssi reaches a qun member
// on another node, and a post from that member appears in irssi").
//
// tmux is the harness's (tests/integration/harness.h, Tmux): private to the test, dying with it.
// irssi gets a home of its own in the Cluster's directory. Every wait polls the captured screen or the node
// within a bound; nothing sleeps. Without irssi or tmux (scripts/setup installs irssi) the test
// says so and passes without checking anything else.
#include <catch2/catch.hpp>

#include <fstream>

#include "tests/integration/irc_client.h"

namespace qun::integration {
namespace {

const char* const irssi_path = "/usr/bin/irssi";

}  // namespace

// Proves: irssi connects to `qun irc` with the password, a line typed in #lobby reaches bob's
// node as ada's post, and bob's post appears on irssi's screen as bob's message.
TEST_CASE("qun irc with irssi in tmux: typed lines reach another node and back",
          "[integration][irc][irssi]") {
  if (!fs::exists(irssi_path) || !tmux_available()) {
    WARN("skipped: irssi or tmux is not installed (scripts/setup installs irssi)");
    return;
  }
  Cluster cluster;
  Node& ada = cluster.add("ada");
  Node& bob = cluster.add("bob");
  ada.start();
  bob.start();
  const std::string group = create_group(ada, "lobby");
  invite_and_join(ada, bob, group);
  IrcGateway gateway(cluster, ada);

  // irssi's own home: a config that names nothing to connect to but what the command line
  // gives, and no first-run questions.
  const fs::path irssi_home = cluster.make_dir("irssi");
  {
    std::ofstream config(irssi_home / "config");
    config << "settings = { core = { real_name = \"ada\"; user_name = \"ada\"; nick = \"ada\"; }; "
              "\"fe-common/core\" = { theme = \"default\"; }; };\n";
  }
  Tmux tmux(cluster);
  tmux.start("irssi", 160, 40,
             {irssi_path, "--home=" + irssi_home.string(), "--connect=127.0.0.1",
              "--port=" + std::to_string(gateway.port()), "--password=" + gateway.password(),
              "--nick=ada"});
  wait_until([&] { return tmux.screen("irssi", true).find("Welcome to qun") != std::string::npos; },
             propagate_bound, "irssi is connected and welcomed");
  // The gateway joined irssi to #lobby; /join switches to its window (no request goes out).
  tmux.type("irssi", "/join #lobby");
  tmux.key("irssi", "Enter");
  wait_until([&] { return tmux.screen("irssi", true).find("#lobby") != std::string::npos; },
             propagate_bound, "irssi shows #lobby");

  const std::string canary = random_hex(6);
  tmux.type("irssi", "typed in irssi " + canary);
  tmux.key("irssi", "Enter");
  wait_for_posts(bob, group, {"typed in irssi " + canary});
  CHECK(log_of(bob, group).back()["nick"] == "ada");

  bob.ok({"post", group, "bob answers " + canary});
  wait_until(
      [&] {
        const std::string screen = tmux.screen("irssi", true);
        const auto at = screen.find("bob answers " + canary);
        if (at == std::string::npos) return false;
        const auto line_start = screen.rfind('\n', at);
        return screen.substr(line_start + 1, at - line_start).find("bob") != std::string::npos;
      },
      propagate_bound, "bob's post shows in irssi as bob's");
  tmux.type("irssi", "/quit");
  tmux.key("irssi", "Enter");
}

}  // namespace qun::integration
