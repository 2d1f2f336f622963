// `qun irc` against two real nodes, driven by a small IRC client written here (issue 16): a line
// sent in the channel reaches a member on the other node, that member's post reaches the IRC
// connection, a wrong password is refused, what arrived while no client was connected is
// played back on the next connection, a group's channels are IRC channels, and `qun node` runs
// the gateway when its configuration says so.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/integration/irc_client.h"

namespace qun::integration {

// Proves: a client gets in with the password from HOME/irc-password (mode 0600) and is joined
// to the group's channel; PRIVMSG reaches bob's node as ada's post; bob's post reaches the client
// as PRIVMSG from bob; a wrong password gets 464 and the connection is closed; a post made while
// no client was connected is played back (with its [HH:MM]) when the next one joins, once;
// when the node stops, the client gets ERROR and is closed, and the gateway turns new ones away
// until it is back.
TEST_CASE("qun irc: a line from an IRC client reaches another node and back", "[integration][irc]") {
  Cluster cluster;
  Node& ada = cluster.add("ada");
  Node& bob = cluster.add("bob");
  ada.start();
  bob.start();
  const std::string group = create_group(ada, "lobby");
  invite_and_join(ada, bob, group);

  IrcGateway gateway(cluster, ada);
  struct stat st {};
  REQUIRE(::stat((ada.home() / "irc-password").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  {
    IrcClient wrong(gateway.port());
    wrong.send("PASS not-the-password");
    wrong.send("NICK ada");
    wrong.send("USER ada 0 * :Ada");
    wrong.wait_for(" 464 ", "the wrong password is refused");
    wait_until([&] { return wrong.closed(); }, command_bound, "the gateway closes the connection");
    CHECK_FALSE(wrong.has(" 001 "));
  }

  const std::string canary = random_hex(6);
  {
    IrcClient irc(gateway.port());
    irc.login(gateway.password(), "ada");
    irc.wait_for(":ada!ada@localhost JOIN #lobby", "the client is in #lobby");
    irc.wait_for(" 366 ada #lobby ", "the names of #lobby");
    CHECK(irc.has(" 353 ada = #lobby :@ada bob"));

    irc.send("PRIVMSG #lobby :hello from irssi-land " + canary);
    wait_for_posts(bob, group, {"hello from irssi-land " + canary});
    const auto bob_log = log_of(bob, group);
    CHECK(bob_log.back()["nick"] == "ada");

    bob.ok({"post", group, "hi from bob " + canary});
    irc.wait_for(":bob!" + bob.id().substr(0, 8) + "@qun PRIVMSG #lobby :hi from bob " + canary,
                 "bob's post on the IRC connection");
    // Peer text with framing bytes: one line per line, nothing injected.
    bob.ok({"post", group, "line one\nQUIT :injected"});
    irc.wait_for("PRIVMSG #lobby :QUIT :injected", "the second line of bob's post");
    CHECK_FALSE(irc.closed());
    irc.send("QUIT :bye");
    wait_until([&] { return irc.closed(); }, command_bound, "the gateway closes after QUIT");
  }

  // While no IRC client is connected, bob posts; the next client gets it played back.
  bob.ok({"post", group, "while you were away " + canary});
  // Waiting with `qun log` would mark it read; the unread count says it arrived.
  wait_until(
      [&] {
        for (const auto& g : ada.json({"group", "list"}))
          if (g["id"] == group && g["unread"].get<int>() >= 1) return true;
        return false;
      },
      propagate_bound, "bob's post reaches ada's node, unread");
  {
    IrcClient irc(gateway.port());
    irc.login(gateway.password(), "ada");
    irc.wait_for("PRIVMSG #lobby :[", "the playback");
    irc.wait_for("] while you were away " + canary, "the post made while away, with its time");
    CHECK_FALSE(irc.has("hi from bob " + canary));  // read before: not played again

    // The node stops: the client is told and disconnected; a new one is turned away with why.
    ada.stop();
    irc.wait_for("ERROR :Closing link: the qun node stopped", "the client hears the node stopped");
    wait_until([&] { return irc.closed(); }, command_bound, "the gateway closes the connection");
  }
  IrcClient late(gateway.port());
  late.wait_for("ERROR :Closing link: no qun node is running", "a new client is turned away");
  CHECK(gateway.process().running());
}

}  // namespace qun::integration

namespace qun::integration {

// Proves, through two real nodes: a channel of the group (issue 12) is an IRC channel
// #lobby/dev, joined on connecting; a line sent there is a post in channel dev on bob's node;
// bob's post in dev arrives in #lobby/dev, his edit of it as "(edited)" from bob; a channel
// created while connected is joined; a mute of bob is MODE +q in the group's channels.
TEST_CASE("qun irc: a group's channels, edits and mutes", "[integration][irc]") {
  Cluster cluster;
  Node& ada = cluster.add("ada");
  Node& bob = cluster.add("bob");
  ada.start();
  bob.start();
  const std::string group = create_group(ada, "lobby");
  invite_and_join(ada, bob, group);
  ada.ok({"channel", "create", group, "dev"});

  IrcGateway gateway(cluster, ada);
  IrcClient irc(gateway.port());
  irc.login(gateway.password(), "ada");
  irc.wait_for(":ada!ada@localhost JOIN #lobby/dev", "the client is in #lobby/dev");
  irc.wait_for(" 366 ada #lobby/dev ", "the names of #lobby/dev");

  const std::string canary = random_hex(6);
  irc.send("PRIVMSG #lobby/dev :in dev " + canary);
  wait_until(
      [&] {
        for (const auto& e : log_of(bob, group))
          if (e.value("text", Json()) == "in dev " + canary && e.value("channel", Json()) == "dev")
            return true;
        return false;
      },
      propagate_bound, "ada's line reaches bob's node in channel dev");

  const std::string bob_src = ":bob!" + bob.id().substr(0, 8) + "@qun";
  const Json posted = bob.json({"post", group, "from bob " + canary, "--channel", "dev"});
  irc.wait_for(bob_src + " PRIVMSG #lobby/dev :from bob " + canary, "bob's post in #lobby/dev");
  CHECK_FALSE(irc.has(" PRIVMSG #lobby :from bob"));
  bob.ok({"edit", group, posted["id"].get<std::string>(), "edited by bob " + canary});
  irc.wait_for(bob_src + " PRIVMSG #lobby/dev :(edited) edited by bob " + canary, "bob's edit");

  ada.ok({"channel", "create", group, "ops"});
  irc.wait_for(":ada!ada@localhost JOIN #lobby/ops", "a new channel is joined");

  ada.ok({"mute", group, bob.id(), "--for", "10m"});
  irc.wait_for(" MODE #lobby +q bob!" + bob.id().substr(0, 8) + "@*", "the mute as +q");
  irc.wait_for(" MODE #lobby/dev +q bob!", "the mute in #lobby/dev too");
}

}  // namespace qun::integration

namespace qun::integration {
namespace {

// True when something accepts TCP connections on 127.0.0.1:port.
bool accepting(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// The port of the gateway a node started, from the line it printed into the node's log (the
// last start's).
int gateway_port(Node& node) {
  int port = 0;
  wait_until(
      [&] {
        const std::string text = node.log();
        const auto at = text.rfind("qun irc: listening on 127.0.0.1:");
        if (at == std::string::npos || at < text.rfind("==== start #")) return false;
        port = std::stoi(text.substr(at + 32));
        return true;
      },
      node_ready_bound, "the gateway the node started prints its port");
  return port;
}

}  // namespace

// Proves: with [irc] enabled = true in the home's config.toml, `qun node` runs the gateway
// itself: an IRC client logs in with HOME/irc-password and gets a peer's post; the gateway stops
// when the node stops (SIGTERM) and when the node is killed (SIGKILL: the child gets SIGTERM from
// the kernel, PR_SET_PDEATHSIG), so no gateway outlives its node.
TEST_CASE("qun irc: qun node runs the gateway when the config enables it", "[integration][irc]") {
  Cluster cluster;
  Node& ada = cluster.add("ada");
  Node& bob = cluster.add("bob");
  {
    std::ofstream config(ada.home() / "config.toml");
    config << "[irc]\nenabled = true\nlisten = \"127.0.0.1:0\"\n";
  }
  CHECK(ada.ok({"config"}).find("enabled = true") != std::string::npos);
  ada.start();
  bob.start();
  const std::string group = create_group(ada, "lobby");
  invite_and_join(ada, bob, group);

  int port = gateway_port(ada);
  std::string password = file_contents(ada.home() / "irc-password");
  password.resize(password.find('\n'));
  {
    IrcClient irc(port);
    irc.login(password, "ada");
    irc.wait_for(":ada!ada@localhost JOIN #lobby", "the client is in #lobby");
    const std::string canary = random_hex(6);
    bob.ok({"post", group, "to the node's gateway " + canary});
    irc.wait_for(" PRIVMSG #lobby :to the node's gateway " + canary, "bob's post");
  }
  const auto status = ada.stop();
  REQUIRE(status);
  CHECK(exited_cleanly(*status));
  wait_until([&] { return !accepting(port); }, stop_bound, "the gateway stops with the node");

  ada.start();
  port = gateway_port(ada);
  CHECK(accepting(port));
  ada.kill9();
  wait_until([&] { return !accepting(port); }, stop_bound,
             "the gateway stops when the node is killed");
}

}  // namespace qun::integration
