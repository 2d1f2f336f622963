// The configuration (cli/config.h): precedence (defaults, files in order, flags), the sources
// `qun config` prints, and one-line errors naming the file, the line and the key.
#include "cli/config.h"

#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>

#include "net/daemon.h"

using namespace qun;
using namespace qun::config;

namespace {

// Parses `args` as the flags of a command with the settings' options.
Settings with_flags(Settings s, std::vector<std::string> args) {
  CLI::App app;
  Flags flags;
  add_flags(app, flags);
  std::reverse(args.begin(), args.end());
  app.parse(args);
  auto merged = merge_flags(s, app, flags);
  REQUIRE(merged.ok());
  return s;
}

std::string error_of(std::string_view text) {
  Settings s = defaults();
  auto r = merge_text(s, text, "/etc/x.toml");
  REQUIRE_FALSE(r.ok());
  return r.error().context();
}

}  // namespace

TEST_CASE("defaults are the daemon's defaults", "[cli][config]") {
  // Proves that a node with no file and no flag runs exactly as it did before config files.
  DaemonOptions applied;
  REQUIRE(config::apply(defaults(), applied).ok());
  const DaemonOptions plain;
  CHECK(applied.listen == std::vector<std::string>{default_listen_address});
  CHECK(applied.peers.empty());
  CHECK_FALSE(applied.advertise);
  CHECK(applied.max_groups == plain.max_groups);
  CHECK(applied.max_group_bytes == plain.max_group_bytes);
  CHECK(applied.max_groups_per_key == plain.max_groups_per_key);
  CHECK(applied.map_bytes == plain.map_bytes);
  CHECK(applied.log_level == LogLevel::info);
  CHECK_FALSE(applied.relay);
  CHECK_FALSE(applied.metrics);
  for (const auto& [key, e] : defaults()) CHECK(e.source == "default");
}

TEST_CASE("a later file overrides an earlier one key by key, and flags override both", "[cli][config]") {
  // Proves the documented precedence: user file < home file < flags, whole values replaced, and
  // that each value's source names the file and line it came from.
  Settings s = defaults();
  REQUIRE(merge_text(s, "peers = [\"a:1\", \"b:2\"]\n[relay]\nmax_groups = 5\nopen = true\n",
                     "/u/config.toml")
              .ok());
  REQUIRE(merge_text(s, "log_level = \"debug\"\n\n[relay]\nmax_groups = 7\n", "/h/config.toml").ok());
  CHECK(s["peers"].value == Json::array({"a:1", "b:2"}));
  CHECK(s["peers"].source == "/u/config.toml:1");
  CHECK(s["relay.max_groups"].value == 7);
  CHECK(s["relay.max_groups"].source == "/h/config.toml:4");
  CHECK(s["relay.open"].value == true);
  CHECK(s["log_level"].source == "/h/config.toml:1");

  s = with_flags(s, {"--peer", "c:3", "--max-groups", "9", "--relay", "--metrics", "127.0.0.1:0"});
  CHECK(s["peers"].value == Json::array({"c:3"}));  // replaced, not appended
  CHECK(s["peers"].source == "flag --peer");
  CHECK(s["relay.max_groups"].value == 9);
  CHECK(s["relay.enabled"].value == true);
  CHECK(s["relay.open"].source == "/u/config.toml:4");  // untouched by flags

  DaemonOptions o;
  REQUIRE(config::apply(s, o).ok());
  CHECK(o.peers == std::vector<std::string>{"c:3"});
  CHECK(o.max_groups == 9);
  CHECK(o.relay);
  CHECK(o.relay_open);
  CHECK(o.log_level == LogLevel::debug);
  CHECK(o.metrics == "127.0.0.1:0");
}

TEST_CASE("notify.command: set, turned off, or the desktop default", "[cli][config]") {
  Settings s = defaults();
  REQUIRE(merge_text(s, "[notify]\ncommand = [\"/bin/n\", \"{text}\"]\n", "f").ok());
  DaemonOptions o;
  REQUIRE(config::apply(s, o).ok());
  CHECK(o.notify_command == std::vector<std::string>{"/bin/n", "{text}"});
  REQUIRE(merge_text(s, "[notify]\ncommand = []\n", "g").ok());
  REQUIRE(config::apply(s, o).ok());
  CHECK(o.notify_command.empty());
}

TEST_CASE("errors are one line naming the file, the line and the key", "[cli][config]") {
  // Proves that every kind of mistake in a file is reported where it is, and that a file with
  // a mistake changes nothing.
  CHECK(error_of("listen = [\"a:1\"]\n[relay]\nmax_grups = 3\n") ==
        "/etc/x.toml:3: unknown key 'relay.max_grups'; `qun config` lists the settings");
  CHECK(error_of("relay = true\n") ==
        "/etc/x.toml:1: unknown key 'relay'; `qun config` lists the settings");
  CHECK(error_of("log_level = 3\n") == "/etc/x.toml:1: log_level must be a string, not an integer");
  CHECK(error_of("\n[relay]\nmax_groups = 0\n") ==
        "/etc/x.toml:3: relay.max_groups must be an integer from 1 to 1000000, not 0");
  CHECK(error_of("peers = [\"a:1\", 2]\n") ==
        "/etc/x.toml:1: peers must be a list of strings, not a list holding an integer");
  CHECK(error_of("[relay]\nenabled = \"yes\"\n") ==
        "/etc/x.toml:2: relay.enabled must be true or false, not a string");
  const std::string syntax = error_of("a = 1\nlog_level = \"x\n");
  CHECK(syntax.rfind("/etc/x.toml:2: ", 0) == 0);
  CHECK(syntax.find('\n') == std::string::npos);

  Settings s = defaults();
  REQUIRE_FALSE(merge_text(s, "peers = [\"a:1\"]\nnope = 1\n", "f").ok());
  CHECK(s["peers"].source == "default");

  CHECK(error_of("log_level = \"loud\"\n") ==
        "/etc/x.toml:1: log_level 'loud' is not debug, info, warn or error");
}

TEST_CASE("a bad flag value is one line naming the flag", "[cli][config]") {
  CLI::App app;
  Flags flags;
  add_flags(app, flags);
  std::vector<std::string> args{"12x", "--max-group-bytes"};
  app.parse(args);
  Settings s = defaults();
  auto r = merge_flags(s, app, flags);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().context() == "--max-group-bytes must be an integer from 1 to 1125899906842624, not '12x'");
  std::vector<std::string> level{"loud", "--log-level"};
  app.parse(level);
  Settings t = defaults();
  auto l = merge_flags(t, app, flags);
  REQUIRE_FALSE(l.ok());
  CHECK(l.error().context() == "--log-level 'loud' is not debug, info, warn or error");
}

TEST_CASE("a missing file is no error; the text form is TOML that reads back", "[cli][config]") {
  // Proves that `qun config` output pasted into a file gives the same settings.
  Settings s = defaults();
  REQUIRE(merge_file(s, "/nonexistent/qun/config.toml").ok());
  REQUIRE(merge_text(s, "peers = [\"x:1\"]\n[notify]\ncommand = [\"a b\", \"\\\"q\\\"\"]\n", "f").ok());
  const std::string text = to_text(s);
  Settings again = defaults();
  REQUIRE(merge_text(again, text, "printed").ok());
  for (const auto& [key, e] : s) CHECK(again[key].value == e.value);
  const Json j = to_json(s, {"/nonexistent/qun/config.toml"});
  CHECK(j["settings"]["peers"]["source"] == "f:1");
  CHECK(j["files"][0]["exists"] == false);
}
