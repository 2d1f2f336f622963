// Notifications (net/notify.h): when a mention runs the command (focus, rate bound), the
// arguments it gets (placeholders, appended fields, text cut and cleaned), and a real command
// started and reaped on a loop.
#include "net/notify.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/utf8.h"
#include "tests/net/uv_loop.h"

using namespace qun;
using namespace qun::notify;

TEST_CASE("arguments: placeholders replaced once, or the three fields appended", "[net][notify]") {
  using V = std::vector<std::string>;
  CHECK(arguments({"/bin/n", "-x"}, "bob", "lobby", "hi $(rm -rf ~)") ==
        V{"/bin/n", "-x", "bob", "lobby", "hi $(rm -rf ~)"});
  CHECK(arguments({"notify-send", "--", "{nick} in {group}", "{text}"}, "bob", "lobby", "hey") ==
        V{"notify-send", "--", "bob in lobby", "hey"});
  // Text holding a placeholder is not expanded again.
  CHECK(arguments({"n", "{text}"}, "{group}", "g", "{nick}") == V{"n", "{nick}"});
  CHECK(arguments({}, "a", "b", "c").empty());
}

TEST_CASE("arguments: text is cut at a character boundary and NUL never reaches argv", "[net][notify]") {
  const std::string long_text = std::string(text_bytes_max - 2, 'a') + "日本語";
  const auto argv = arguments({"n"}, "b", "g", long_text);
  const std::string& cut = argv.back();
  CHECK(cut.size() <= text_bytes_max);
  CHECK(utf8::valid(cut));
  CHECK(cut.substr(cut.size() - 3) == "\u2026");
  const auto nul = arguments({"n"}, "b", "g", std::string("a\0b", 3));
  CHECK(nul.back() == "a\uFFFDb");
  CHECK(arguments({"n"}, "b", "g", std::string(text_bytes_max, 'x')).back().size() == text_bytes_max);
}

TEST_CASE("notifier: focus and the rate bound", "[net][notify]") {
  // Proves: no run while a chat client is focused; runs again once it loses focus or goes; at
  // most runs_per_window_max within window_ms, counted when dropped.
  Notifier n({"/bin/n"});
  CHECK(n.on_mention(0, "b", "g", "t"));
  n.set_focus(7, true);
  CHECK_FALSE(n.on_mention(1, "b", "g", "t"));
  CHECK(n.stats().skipped_focused == 1);
  n.set_focus(8, false);
  CHECK_FALSE(n.on_mention(2, "b", "g", "t"));  // 7 still focused
  n.set_focus(7, false);
  CHECK(n.on_mention(3, "b", "g", "t"));
  n.set_focus(7, true);
  n.client_gone(7);
  for (std::size_t i = 2; i < runs_per_window_max; ++i) CHECK(n.on_mention(4, "b", "g", "t"));
  CHECK_FALSE(n.on_mention(5, "b", "g", "t"));
  CHECK(n.stats().dropped_rate == 1);
  CHECK(n.stats().runs == runs_per_window_max);
  CHECK(n.on_mention(window_ms, "b", "g", "t"));  // the first run left the window
  Notifier off({});
  CHECK_FALSE(off.on_mention(0, "b", "g", "t"));
}

TEST_CASE("desktop default needs a display and notify-send", "[net][notify]") {
  const char* display = std::getenv("DISPLAY");
  const std::string saved = display ? display : "";
  ::unsetenv("DISPLAY");
  ::unsetenv("WAYLAND_DISPLAY");
  CHECK(desktop_command().empty());
  if (display) ::setenv("DISPLAY", saved.c_str(), 1);
}

TEST_CASE("a command runs with its argv and is reaped", "[net][notify]") {
  // Proves that the text reaches the program as one argument, verbatim, without a shell.
  const auto dir = std::filesystem::temp_directory_path() / ("qun-notify-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto script = dir / "n.sh";
  const auto out = dir / "argv";
  {
    std::ofstream s(script);
    s << "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"" << out.string() << ".tmp\"\nmv \""
      << out.string() << ".tmp\" \"" << out.string() << "\"\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  test::Loop loop;
  {
    Notifications n(&loop.loop, {script.string()}, null_log_sink());
    n.on_mention("bob", "lobby", "a `b` $(c) ; d | e > f 'g' \"h\"");
    REQUIRE(loop.run_until([&] { return std::filesystem::exists(out) && n.running() == 0; }));
    Notifications missing(&loop.loop, {(dir / "absent").string()}, null_log_sink());
    missing.on_mention("bob", "lobby", "x");
    CHECK(missing.failed() == 1);
  }
  loop.finish();
  std::ifstream in(out, std::ios::binary);
  std::stringstream got;
  got << in.rdbuf();
  using namespace std::string_literals;
  CHECK(got.str() == "bob\0lobby\0a `b` $(c) ; d | e > f 'g' \"h\"\0"s);
  std::filesystem::remove_all(dir);
}
