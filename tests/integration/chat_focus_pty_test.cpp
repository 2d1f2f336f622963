// `qun chat`'s focus reports through a real terminal (issue 16, "notifications"): the client
// turns on focus reporting (DECSET 1004) and turns the terminal's ESC [ O and ESC [ I into the
// node's "focus" request, so that a mention notifies only while no chat is focused. Here the
// terminal is a tmux pane (harness.h, Tmux) and the focus reports are the bytes a terminal sends.
#include <catch2/catch.hpp>
#include <fstream>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// The notification command: a script that writes its last argument (the text) to a new file of
// DIR per run (written aside, then renamed, so a file seen is a whole run).
fs::path write_notifier(Cluster& cluster, const fs::path& dir) {
  const fs::path script = cluster.dir() / "notifier.sh";
  std::ofstream s(script);
  s << "#!/bin/sh\nfor a in \"$@\"; do t=$a; done\nout='" << dir.string()
    << "'/run.$$\nprintf '%s' \"$t\" > \"$out.tmp\"\nmv \"$out.tmp\" \"$out\"\n";
  s.close();
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

std::vector<std::string> runs(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() != ".tmp") out.push_back(file_contents(e.path()));
  return out;
}

}  // namespace

// Proves: while bob's `qun chat` runs in a terminal and the terminal has not said otherwise, a
// mention of bob notifies nothing (counted as skipped for focus); after the terminal reports
// focus lost (ESC [ O) a mention runs the notification command; after focus regained (ESC [ I)
// it runs nothing again. How: each focus report is followed by a line bob types and posts; the
// chat sends the focus request before that post on its one control connection, which the node
// answers in order, so once the post is in bob's log the focus is the node's. Whether a mention
// ran nothing is read from bob's metrics after bob's node holds it (the decision is made on
// delivery).
TEST_CASE("qun chat in a pty: terminal focus reports decide whether a mention notifies",
          "[integration][chat]") {
  if (!tmux_available()) {
    WARN("tmux not installed; skipping the chat focus test");
    return;
  }
  Cluster cluster;
  const fs::path notified = cluster.make_dir("notified");
  const fs::path script = write_notifier(cluster, notified);
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  {
    std::ofstream config(b.home() / "config.toml");
    config << "metrics = \"127.0.0.1:0\"\n[notify]\ncommand = [\"" << script.string() << "\"]\n";
  }
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string metrics = b.json({"id"})["metrics"].get<std::string>();
  const std::string group = create_group(a, "lobby");
  REQUIRE(invite_and_join(a, b, group) == group);

  Tmux tmux(cluster);
  tmux.start("bob", 100, 30, {qun_binary() + " --home '" + b.home().string() + "' chat lobby"});
  tmux.wait_for("bob", "node: connected");
  // bob types a line; once his node holds it, everything the chat sent before it was handled.
  int said = 0;
  auto say = [&] {
    const std::string line = "bob says " + std::to_string(++said);
    tmux.type("bob", line);
    tmux.key("bob", "Enter");
    wait_for_posts(b, group, {line});
  };
  auto focused_skips = [&] {
    return metric_sample(http_get(metrics, "/metrics"),
                         "qun_notifications_total{result=\"focused\"}");
  };
  say();

  a.ok({"post", group, "bob: one"});
  wait_for_posts(b, group, {"bob: one"});
  CHECK(focused_skips() == 1);

  tmux.raw("bob", "\033[O");  // the terminal lost focus
  say();
  a.ok({"post", group, "bob: two"});
  wait_until([&] { return runs(notified).size() == 1; }, propagate_bound, "the notifier ran");
  CHECK(runs(notified) == std::vector<std::string>{"bob: two"});

  tmux.raw("bob", "\033[I");  // and got it back
  say();
  a.ok({"post", group, "bob: three"});
  wait_for_posts(b, group, {"bob: three"});
  CHECK(focused_skips() == 2);
  CHECK(runs(notified).size() == 1);
  // The focus reports are input the chat consumed: nothing of them reached the input line.
  tmux.wait_for("bob", "bob: three");
  CHECK(tmux.screen("bob").find("[O") == std::string::npos);
  CHECK(tmux.screen("bob").find("[I") == std::string::npos);
}

}  // namespace qun::integration
