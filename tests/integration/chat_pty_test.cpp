// `qun chat` in a real terminal: two full-screen clients, each in a tmux pane (a real pty and a
// real terminal emulator whose screen we can read), on two real nodes.
//
// tmux is the harness's (tests/integration/harness.h, Tmux): a child of this test in the
// foreground, on a socket inside the Cluster's directory, so it is private to the test and dies
// with it (PR_SET_PDEATHSIG through the harness's Process); its panes die with it. Every wait polls the captured screen within a
// bound (wait_until); nothing waits by sleeping.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <sstream>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Starts `qun chat GROUP` for node in a new tmux session named after it. The pane's shell
// records the tty modes before and after, and the client's exit status, then keeps the pane open.
void start_chat(const Tmux& tmux, const Cluster& cluster, const Node& node, const std::string& group,
                int cols, int rows) {
  const std::string d = cluster.dir().string() + "/" + node.name();
  const std::string script = "stty -g > " + quote(d + ".before") + "; " + quote(qun_binary()) +
                             " --home " + quote(node.home().string()) + " chat " + quote(group) +
                             "; echo $? > " + quote(d + ".rc.tmp") + "; stty -g > " +
                             quote(d + ".after") + "; mv " + quote(d + ".rc.tmp") + " " +
                             quote(d + ".rc") + "; echo chat-exited; exec sleep 600";
  tmux.start(node.name(), cols, rows, {script});
}

// Waits for the pane's client to exit; returns its exit status text.
std::string wait_exit(const Cluster& cluster, const Node& node) {
  const fs::path rc = cluster.dir() / (node.name() + ".rc");
  wait_until([&] { return fs::exists(rc); }, command_bound, node.name() + "'s chat exits");
  return file_contents(rc);
}

std::string tty_modes(const Cluster& cluster, const Node& node, const char* when) {
  return file_contents(cluster.dir() / (node.name() + "." + when));
}

std::string status_line(const std::vector<std::string>& lines) {
  return lines.size() >= 2 ? lines[lines.size() - 2] : "";
}

}  // namespace

// Proves the full-screen client works on a real terminal against real nodes: a line typed in
// one client appears on the other's screen (with CJK text); a resize re-lays out and wraps; an
// invite code from /invite sits on rows of its own, and copied off the screen with its line
// breaks it lets a third node join; scrolled up, new messages are announced and Alt+End jumps
// down to them; a node that stops is reported, a line sent meanwhile shows
// as pending and goes out when it is back; /kick from the client removes a member on both sides
// and the removed member is told at once; Ctrl+C and /quit exit 0 and leave the tty modes exactly as
// they were (stty -g before == after) and the alternate screen left.
TEST_CASE("qun chat in a pty: two clients, resize, reconnect, kick, quit", "[integration][chat]") {
  if (!tmux_available()) {
    WARN("tmux not installed; skipping the pty chat test");
    return;
  }
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, group) == group);
  a.ok({"topic", group, "tea and biscuits"});

  Tmux tmux(cluster);
  start_chat(tmux, cluster, a, group, 100, 30);
  start_chat(tmux, cluster, b, group, 90, 24);
  for (const char* who : {"alice", "bob"}) {
    tmux.wait_for(who, "node: connected");
    tmux.wait_for(who, "lobby");
  }
  tmux.wait_for("alice", "tea and biscuits");  // the topic in the title

  // A line typed in bob's client appears on alice's screen.
  const std::string hello = "hello from bob \u65E5\u672C\u8A9E " + random_hex(4);
  tmux.type("bob", hello);
  tmux.key("bob", "Enter");
  tmux.wait_for("alice", "bob: " + hello);
  tmux.wait_for("bob", "bob: " + hello);
  wait_for_posts(a, group, {hello});

  // Resize alice's terminal below the groups pane's threshold; a long line wraps within it.
  tmux.must({"resize-window", "-t", "alice", "-x", "50", "-y", "15"});
  const std::string tail = "END" + random_hex(3);
  b.ok({"post", group,
        "a long line that cannot fit in fifty columns and so must wrap onto more rows " + tail});
  tmux.wait_for("alice", tail);
  {
    const auto lines = tmux.lines("alice");
    REQUIRE(lines.size() == 15);
    CHECK(status_line(lines).find("node: connected") != std::string::npos);
    bool wrapped = false;
    for (const auto& line : lines) {
      CHECK(line.size() <= 50 * 4);  // bytes; the pane itself is 50 columns
      if (line.find(tail) != std::string::npos && line.find("bob:") == std::string::npos &&
          line.rfind("   ", 0) == 0)
        wrapped = true;  // an indented continuation row
    }
    CHECK(wrapped);
    CHECK(tmux.screen("alice").find("\u2502") == std::string::npos);  // no groups pane at 50
  }
  tmux.must({"resize-window", "-t", "alice", "-x", "100", "-y", "30"});
  tmux.wait_for("alice", "\u2502");  // the groups pane is back

  // An invite code made in the chat sits on rows of its own across the whole screen, from
  // column 0 (over the groups pane); copied off the screen as a person selects it, whole rows
  // with the line breaks the window put in, it still works with `qun join`.
  tmux.type("alice", "/invite 1 1h");
  tmux.key("alice", "Enter");
  tmux.wait_for("alice", "valid 1 hour");
  std::string copied;
  {
    bool in_code = false;
    for (auto line : tmux.lines("alice")) {
      while (!line.empty() && line.back() == ' ') line.pop_back();
      if (line.rfind("qun2", 0) == 0) in_code = true;
      if (!in_code) continue;
      if (line.empty() || line.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                 "0123456789-_") != std::string::npos)
        break;
      copied += (copied.empty() ? "" : "\n") + line;
    }
  }
  INFO("copied: " << copied);
  REQUIRE(copied.rfind("qun2", 0) == 0);
  CHECK(copied.find('\n') != std::string::npos);  // 100 columns: the code takes two rows
  Node& c = cluster.add("carol");
  c.start(NodeOptions::with_peers({a.address()}));
  CHECK(c.ok({"join", copied}) == group);
  tmux.wait_for("alice", "carol joined");

  // Scrolled up, bob is told that something new arrived below, and Alt+End (sent by the
  // terminal as a modified End key) takes him back down to it.
  for (int i = 0; i < 30; ++i) a.ok({"post", group, "filler " + std::to_string(i)});
  tmux.wait_for("bob", "filler 29");
  tmux.key("bob", "PPage");
  tmux.wait_for("bob", "scrolled up");
  const std::string below = "arrived below " + random_hex(3);
  a.ok({"post", group, below});
  tmux.wait_for("bob", "1 new message below");
  CHECK(tmux.screen("bob").find(below) == std::string::npos);
  tmux.key("bob", "M-End");
  tmux.wait_for("bob", below);
  CHECK(tmux.screen("bob").find("new message below") == std::string::npos);

  // Bob's node stops: his client says so; what he sends meanwhile is shown as pending and goes
  // out when the node is back.
  b.stop();
  tmux.wait_for("bob", "node: not running");
  const std::string kept = "kept while away " + random_hex(3);
  tmux.type("bob", kept);
  tmux.key("bob", "Enter");
  tmux.wait_for("bob", kept + " (pending");
  b.start(NodeOptions::with_peers({a.address()}));
  tmux.wait_for("bob", "node: connected");
  tmux.wait_for("alice", "bob: " + kept);
  wait_until([&] { return tmux.screen("bob").find("(pending") == std::string::npos; },
             propagate_bound, "bob's pending line goes once the node has the message");

  // /kick from alice's client.
  tmux.type("alice", "/kick bob");
  tmux.key("alice", "Enter");
  tmux.wait_for("alice", "alice removed bob");
  wait_until(
      [&] {
        for (const auto& m : a.json({"members", group}))
          if (m.value("id", "") == b.id()) return false;
        return true;
      },
      propagate_bound, "bob is no longer a member on alice's node");
  tmux.wait_for("bob", "alice removed bob");
  tmux.wait_for("bob", "you were removed from lobby by alice");
  tmux.wait_for("bob", "not a member");

  // Ctrl+C in alice's client, /quit in bob's: both exit 0 with the terminal as it was.
  tmux.key("alice", "C-c");
  CHECK(wait_exit(cluster, a) == "0\n");
  tmux.type("bob", "/quit");
  tmux.key("bob", "Enter");
  CHECK(wait_exit(cluster, b) == "0\n");
  for (const Node* n : {&a, &b}) {
    INFO(n->name());
    CHECK_FALSE(tty_modes(cluster, *n, "before").empty());
    CHECK(tty_modes(cluster, *n, "before") == tty_modes(cluster, *n, "after"));
    tmux.wait_for(n->name(), "chat-exited", command_bound);
    CHECK(tmux.screen(n->name()).find("node: connected") == std::string::npos);
  }
}

// Proves the conversation layer works between two real nodes in two real terminals (issue 12):
// alice selects bob's message with Alt+Up and answers it with /reply, and bob sees the quote of
// his message above her answer; she reacts with /react and bob sees the emoji and its count;
// Up on her empty input opens her message for editing and bob sees the new text marked
// (edited); bob deletes his message with /delete and alice sees it, and the quote of it in her
// reply, as "message deleted".
TEST_CASE("qun chat in a pty: reply, react, edit and delete between two nodes",
          "[integration][chat]") {
  if (!tmux_available()) {
    WARN("tmux not installed; skipping the pty chat test");
    return;
  }
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, group) == group);
  const std::string question = "lunch at noon " + random_hex(3) + "?";
  b.ok({"post", group, question});

  Tmux tmux(cluster);
  start_chat(tmux, cluster, a, group, 100, 30);
  start_chat(tmux, cluster, b, group, 100, 30);
  for (const char* who : {"alice", "bob"}) tmux.wait_for(who, "bob: " + question);

  // Alt+Up selects the newest message, bob's question; /reply answers it.
  tmux.key("alice", "M-Up");
  tmux.wait_for("alice", "selected:");
  tmux.type("alice", "/reply yes, at noon");
  tmux.key("alice", "Enter");
  tmux.wait_for("bob", "\u250C\u2500 bob: " + question);
  tmux.wait_for("bob", "alice: yes, at noon");

  // Alt+Up twice: past her reply to bob's question; /react puts a thumbs up under it.
  tmux.key("alice", "M-Up");
  tmux.key("alice", "M-Up");
  tmux.type("alice", "/react \U0001F44D");
  tmux.key("alice", "Enter");
  tmux.wait_for("bob", "\U0001F44D 1");

  // Up on alice's empty input opens her reply for editing; Enter saves the new text.
  tmux.key("alice", "Up");
  tmux.wait_for("alice", "edit> yes, at noon");
  tmux.type("alice", " or one");
  tmux.key("alice", "Enter");
  tmux.wait_for("bob", "alice: yes, at noon or one (edited)");

  // Bob deletes his question: both screens say so, and the reply's quote too.
  tmux.key("bob", "M-Up");
  tmux.key("bob", "M-Up");
  tmux.type("bob", "/delete");
  tmux.key("bob", "Enter");
  tmux.wait_for("alice", "bob: message deleted");
  tmux.wait_for("alice", "\u250C\u2500 bob: message deleted");
  CHECK(tmux.screen("alice").find(question) == std::string::npos);
  CHECK(tmux.screen("alice").find("\U0001F44D") == std::string::npos);
  // The nodes hold what the screens show: the question deleted, the reply edited and replying.
  for (const Node* n : {&a, &b}) {
    wait_until(
        [&] {
          bool deleted = false, edited = false;
          for (const auto& m : log_of(*n, group)) {
            if (m.value("kind", "") != "post") continue;
            if (m.value("deleted", false) && m["text"].is_null()) deleted = true;
            if (m.value("edited", false) && m["reply_to"].is_string() &&
                text_of(m) == "yes, at noon or one")
              edited = true;
          }
          return deleted && edited;
        },
        propagate_bound, n->name() + "'s log has the question deleted and the reply edited");
  }
}

// Proves the line mode (`qun chat GROUP --json` without a terminal, as a bot runs it) marks each
// JSON line with "self": true for the lines the bot itself posted, false for other members'.
TEST_CASE("qun chat line mode: JSON lines say which posts are our own", "[integration][chat]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "bots");
  REQUIRE(invite_and_join(a, b, group) == group);

  // The bot reads its stdin from a fifo that this test holds open, so it runs until we close it.
  const fs::path fifo = cluster.dir() / "bot.in";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const int writer = ::open(fifo.c_str(), O_RDWR);
  REQUIRE(writer >= 0);
  const fs::path out = cluster.dir() / "bot.out";
  Process bot = Process::spawn({"/bin/sh", "-c",
                                "exec " + quote(qun_binary()) + " --home " +
                                    quote(b.home().string()) + " chat " + quote(group) +
                                    " --json < " + quote(fifo.string())},
                               cluster.env(), cluster.dir() / "logs/bot.log", out);
  auto lines = [&] { return parse_json_lines(file_contents(out)); };
  // The subscription is up once a post from alice arrives; then the bot posts its own.
  wait_until(
      [&] {
        a.ok({"post", group, "ping"});
        return has_text(lines(), "ping");
      },
      propagate_bound, "the bot prints alice's post");
  const std::string said = "pong from the bot\n";
  REQUIRE(::write(writer, said.data(), said.size()) == static_cast<ssize_t>(said.size()));
  wait_until([&] { return has_text(lines(), "pong from the bot"); }, propagate_bound,
             "the bot prints its own post");
  for (const auto& line : lines()) {
    INFO(line.dump());
    REQUIRE(line.contains("self"));
    // Lines of other kinds (an invite closed when bob used it up) carry "text": null.
    CHECK(line["self"] == (text_of(line) == "pong from the bot"));
    CHECK(line["group"] == group);
  }
  ::close(writer);
  auto ended = bot.wait_exit(command_bound);
  REQUIRE(ended);
  CHECK(WIFEXITED(*ended));
  CHECK(WEXITSTATUS(*ended) == 0);
}

// Proves the node lists groups by name, not by hash id (the chat's sidebar and Alt+N numbers
// follow this order), gives two groups of one name labels that tell them apart, and lists members
// by role, then nick.
TEST_CASE("group list sorts by name and labels groups of one name", "[integration][chat]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  std::map<std::string, std::string> ids;
  for (const char* name : {"zeta", "lobby", "Alpha", "mid"}) ids[name] = create_group(a, name);
  const std::string second_lobby = create_group(a, "lobby");
  std::vector<std::string> names, labels;
  for (const auto& g : a.json({"group", "list"})) {
    names.push_back(g.value("name", ""));
    labels.push_back(g.value("label", ""));
  }
  CHECK(names == std::vector<std::string>{"Alpha", "lobby", "lobby", "mid", "zeta"});
  CHECK(labels[0] == "Alpha");
  // The two lobbies, in the order this node joined them (created them, here; the wall clock
  // decides, so only the labels are checked, not which comes first).
  CHECK(std::set<std::string>{labels[1], labels[2]} ==
        std::set<std::string>{"lobby\u00B7" + ids["lobby"].substr(0, 4),
                              "lobby\u00B7" + second_lobby.substr(0, 4)});

  REQUIRE(invite_and_join(a, b, ids["mid"]) == ids["mid"]);
  wait_until([&] { return a.json({"members", ids["mid"]}).size() == 2; }, propagate_bound,
             "bob's join reaches alice");
  std::vector<std::string> roles;
  for (const auto& m : a.json({"members", ids["mid"]})) roles.push_back(m.value("role", ""));
  CHECK(roles == std::vector<std::string>{"founder", "member"});
}

// Proves `qun log GROUP --follow` says at once, on stderr, that this node was removed, by whom,
// and what to do (before, nothing told a follower until a post failed).
TEST_CASE("log --follow announces being removed", "[integration][chat]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "ops");
  REQUIRE(invite_and_join(a, b, group) == group);
  const fs::path err = cluster.dir() / "logs/follow.log";
  const fs::path out = cluster.dir() / "follow.out";
  Process follow = Process::spawn(
      {qun_binary(), "log", "ops", "--follow", "--home", b.home().string()}, cluster.env(), err,
      out);
  wait_until(
      [&] {
        a.ok({"post", group, "are you there?"});
        return file_contents(out).find("are you there?") != std::string::npos;
      },
      propagate_bound, "the follower prints alice's post");
  a.ok({"kick", group, b.id()});
  wait_until(
      [&] {
        return file_contents(err).find("you were removed from ops by alice; to come back") !=
               std::string::npos;
      },
      propagate_bound, "the follower announces the removal");
  CHECK(file_contents(out).find("alice removed bob") != std::string::npos);
  follow.stop();
}

}  // namespace qun::integration
