// Notifications, metrics and the config file on real nodes: a mention from another node runs the
// notification command from the home's config.toml with the right arguments (shell
// metacharacters verbatim), no run while a chat client is focused, and a scrape of a real node's
// /metrics over HTTP.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "cli/control_client.h"
#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// The notification command: a script that writes its argv, NUL-separated, to a new file of
// DIR per run (written aside, then renamed, so a file seen is a whole run).
fs::path write_notifier(Cluster& cluster) {
  const fs::path dir = cluster.make_dir("notified");
  const fs::path script = cluster.dir() / "notifier.sh";
  std::ofstream s(script);
  s << "#!/bin/sh\nout='" << dir.string() << "'/run.$$\n"
    << "for a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$out.tmp\"\nmv \"$out.tmp\" \"$out\"\n";
  s.close();
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

// Each finished run's argv, in no particular order.
std::vector<std::vector<std::string>> runs(const fs::path& dir) {
  std::vector<std::vector<std::string>> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".tmp") continue;
    std::vector<std::string> argv;
    std::string all = file_contents(e.path());
    for (std::size_t at = 0; at < all.size();) {
      const auto end = all.find('\0', at);
      argv.push_back(all.substr(at, end - at));
      at = end == std::string::npos ? all.size() : end + 1;
    }
    out.push_back(argv);
  }
  return out;
}

}  // namespace

// Proves: (1) bob's config.toml in his home sets his notification command, and a post by alice
// (another node) mentioning bob runs it with nick, group and text as separate arguments, the
// text's shell metacharacters arriving verbatim; (2) while a client on bob's control socket says
// it is focused (what `qun chat` says on attaching), a mention runs nothing, and once it goes a
// mention runs again; (3) bob's /metrics counts it: one skipped for focus, two runs. How: the
// command is a script writing its argv to one file per run; "nothing ran" is read from the
// node's own counter (scraped) after bob holds the post, since the decision is made on delivery.
TEST_CASE("a mention runs the notification command, not while a chat is focused", "[integration]") {
  Cluster cluster;
  const fs::path script = write_notifier(cluster);
  const fs::path notified = cluster.dir() / "notified";
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  {
    std::ofstream config(b.home() / "config.toml");
    config << "# bob's node\nmetrics = \"127.0.0.1:0\"\n\n[notify]\ncommand = [\"" << script.string()
           << "\"]\n";
  }
  const Json settings = b.json({"config"});
  CHECK(settings["settings"]["notify.command"]["source"] == (b.home() / "config.toml").string() + ":5");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string metrics = b.json({"id"})["metrics"].get<std::string>();
  const std::string group = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, group) == group);

  const std::string nasty = "bob: look $(touch pwned) `id`; rm -rf ~ | cat > 'x' \"y\" & \\ * ?";
  a.ok({"post", group, nasty});
  wait_until([&] { return runs(notified).size() == 1; }, propagate_bound, "the notifier ran once");
  CHECK(runs(notified)[0] == std::vector<std::string>{"alice", "lobby", nasty});

  // A chat client attached and focused: no run.
  auto chat = ControlClient::connect((b.home() / "control.sock").string());
  REQUIRE(chat.ok());
  REQUIRE(chat->request("focus", Json{{"focused", true}}, 10'000).ok());
  a.ok({"post", group, "bob, are you there?"});
  wait_for_posts(b, group, {"bob, are you there?"});
  std::string scrape = http_get(metrics, "/metrics");
  CHECK(metric_sample(scrape, "qun_notifications_total{result=\"focused\"}") == 1);
  CHECK(metric_sample(scrape, "qun_notifications_total{result=\"run\"}") == 1);

  // Focus lost (the terminal said so), then the client gone: mentions run again.
  REQUIRE(chat->request("focus", Json{{"focused", false}}, 10'000).ok());
  a.ok({"post", group, "@bob ping"});
  wait_until([&] { return runs(notified).size() == 2; }, propagate_bound, "the notifier ran twice");
  chat = Error(Errc::not_found, "closed");  // closes the connection
  a.ok({"post", group, "not a mention of bobby"});
  wait_for_posts(b, group, {"not a mention of bobby"});
  scrape = http_get(metrics, "/metrics");
  CHECK(metric_sample(scrape, "qun_notifications_total{result=\"run\"}") == 2);
  CHECK(metric_sample(scrape, "qun_notifications_total{result=\"focused\"}") == 1);
  CHECK(runs(notified).size() == 2);
}

// Proves that a relay's /metrics is Prometheus text a scraper reads, with the figures
// docs/relay.md lists, and that they are real: the relay's groups, their bytes and the events it
// received match what it serves. How: a relay started with --metrics serves alice's group;
// after alice posts, the scrape must show one group with bytes, events received, a link, the
// store's size and the process's RSS; a wrong path is a 404.
TEST_CASE("a relay's metrics can be scraped", "[integration]") {
  Cluster cluster;
  Node& r = cluster.add("relay");
  Node& a = cluster.add("alice");
  a.start();
  NodeOptions relay = NodeOptions::as_relay();
  relay.extra_args = {"--relay-allow", a.id(), "--metrics", "127.0.0.1:0"};
  r.start(relay);
  const std::string metrics = r.json({"id"})["metrics"].get<std::string>();
  REQUIRE(metrics.rfind("127.0.0.1:", 0) == 0);
  const std::string group = create_group(a, "lobby");
  a.ok({"relay", "add", group, r.address()});
  a.ok({"post", group, "hello relay"});
  wait_until(
      [&] {
        const std::string s = http_get(metrics, "/metrics");
        return metric_sample(s, "qun_groups") == 1 &&
               metric_sample(s, "qun_group_bytes{group=\"" + group + "\"}") > 0 &&
               metric_sample(s, "qun_events_received_total") >= 3;
      },
      propagate_bound, "the relay's metrics show the group and its events");
  const std::string reply = http_get(metrics, "/metrics");
  REQUIRE(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(reply.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  const std::string body = reply.substr(reply.find("\r\n\r\n") + 4);
  // Every line is a comment or "name{labels} value", as the text format says.
  const std::regex line_form(R"((# (HELP|TYPE) [a-z_]+ .*)|([a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+))");
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    INFO(line);
    CHECK(std::regex_match(line, line_form));
  }
  CHECK(metric_sample(body, "qun_node_info{mode=\"relay\",id=\"" + r.id().substr(0, 16) + "\"}") == 1);
  CHECK(metric_sample(body, "qun_links{state=\"established\"}") >= 1);
  CHECK(metric_sample(body, "qun_store_bytes") > 0);
  CHECK(metric_sample(body, "process_resident_memory_bytes") > 1e6);
  CHECK(metric_sample(body, "process_cpu_seconds_total") >= 0);
  CHECK(metric_sample(body, "qun_events_refused_total{reason=\"rejected\"}") == 0);
  CHECK(metric_sample(body, "qun_serve_requests_total{result=\"accepted\"}") == 1);
  CHECK(http_get(metrics, "/").rfind("HTTP/1.1 404", 0) == 0);
}

}  // namespace qun::integration
