// `qun irc` with a real IRC client: irssi from Debian, in a tmux pane (a real terminal whose
// screen we read), against two real nodes (issue 16: "a line typed in irssi reaches a qun member
// on another node, and a post from that member appears in irssi").
//
// tmux runs in the foreground as a child of the test (`tmux -D`, a Process of the harness) on a
// socket inside the Cluster's directory, so it is private to the test and dies with it. irssi
// gets a home of its own in that directory. Every wait polls the captured screen or the node
// within a bound; nothing sleeps. Without irssi or tmux (scripts/setup installs irssi) the test
// says so and passes without checking anything else.
#include <catch2/catch.hpp>

#include <fstream>

#include "tests/integration/irc_client.h"

namespace qun::integration {
namespace {

const char* const tmux_path = "/usr/bin/tmux";
const char* const irssi_path = "/usr/bin/irssi";

class Tmux {
 public:
  explicit Tmux(Cluster& cluster) : socket_(cluster.dir() / "tmux.sock") {
    env_ = cluster.env();
    std::erase_if(env_, [](const std::string& e) {
      return e.rfind("LANG=", 0) == 0 || e.rfind("LC_", 0) == 0 || e.rfind("TMUX", 0) == 0;
    });
    env_.push_back("LANG=C.UTF-8");
    server_ = Process::spawn({tmux_path, "-S", socket_.string(), "-D", "-f", "/dev/null"}, env_,
                             cluster.dir() / "logs" / "tmux.log");
    wait_until([&] { return fs::exists(socket_); }, command_bound, "the tmux server is up");
  }
  ~Tmux() {
    (void)tmux({"kill-server"});
    server_.stop();
  }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  Outcome tmux(std::vector<std::string> args) const {
    args.insert(args.begin(), {tmux_path, "-S", socket_.string()});
    return run(args, env_);
  }
  void must(std::vector<std::string> args) const {
    Outcome o = tmux(std::move(args));
    INFO(o.describe());
    REQUIRE(o.ok());
  }
  std::string screen(const std::string& session) const {
    return tmux({"capture-pane", "-p", "-J", "-t", session}).out;
  }
  // Types text, then Enter.
  void type(const std::string& session, const std::string& text) const {
    must({"send-keys", "-t", session, "-l", text});
    must({"send-keys", "-t", session, "Enter"});
  }

 private:
  fs::path socket_;
  std::vector<std::string> env_;
  Process server_;
};

}  // namespace

// Proves: irssi connects to `qun irc` with the password, a line typed in #lobby reaches bob's
// node as ada's post, and bob's post appears on irssi's screen as bob's message.
TEST_CASE("qun irc with irssi in tmux: typed lines reach another node and back",
          "[integration][irc][irssi]") {
  if (!fs::exists(irssi_path) || !fs::exists(tmux_path)) {
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
  tmux.must({"new-session", "-d", "-s", "irssi", "-x", "160", "-y", "40", irssi_path,
             "--home=" + irssi_home.string(), "--connect=127.0.0.1",
             "--port=" + std::to_string(gateway.port()), "--password=" + gateway.password(),
             "--nick=ada"});
  wait_until([&] { return tmux.screen("irssi").find("Welcome to qun") != std::string::npos; },
             propagate_bound, "irssi is connected and welcomed");
  // The gateway joined irssi to #lobby; /join switches to its window (no request goes out).
  tmux.type("irssi", "/join #lobby");
  wait_until([&] { return tmux.screen("irssi").find("#lobby") != std::string::npos; },
             propagate_bound, "irssi shows #lobby");

  const std::string canary = random_hex(6);
  tmux.type("irssi", "typed in irssi " + canary);
  wait_for_posts(bob, group, {"typed in irssi " + canary});
  CHECK(log_of(bob, group).back()["nick"] == "ada");

  bob.ok({"post", group, "bob answers " + canary});
  wait_until(
      [&] {
        const std::string screen = tmux.screen("irssi");
        const auto at = screen.find("bob answers " + canary);
        if (at == std::string::npos) return false;
        const auto line_start = screen.rfind('\n', at);
        return screen.substr(line_start + 1, at - line_start).find("bob") != std::string::npos;
      },
      propagate_bound, "bob's post shows in irssi as bob's");
  tmux.type("irssi", "/quit");
}

}  // namespace qun::integration
