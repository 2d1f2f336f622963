// Notifications: a post that mentions this node's nick, arriving while no chat client is
// focused, runs the user's notification command (docs/chat.md, "Notifications").
//
// Notifier is the decision, plain code with no IO: which control clients are chat windows and
// whether any has focus, the rate bound, and the command's arguments. run_command is the IO: it
// starts the command with uv_spawn (argv directly, never a shell) and reaps it.
//
// Focus: a chat client says {"op": "focus", "focused": B} on its control connection. It sends
// true when it attaches, false when the terminal reports focus lost (and true when regained);
// a terminal that never reports focus leaves it "focused while attached". A client that goes
// (its connection closes) counts no longer. Line-mode chat (bots, scripts) never sends focus.
//
// Single-threaded: call everything on the loop's thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "base/time.h"

namespace qun::notify {

// Runs within any window of notify_window_ms: a burst of mentions (a busy channel calling your
// name, or one peer repeating it on purpose) shows at most this many notifications, which is
// what a person reads in a minute; the rest are counted and dropped.
inline constexpr std::size_t runs_per_window_max = 6;
inline constexpr Millis window_ms = 60'000;
// Commands running at once. A notifier takes milliseconds; one that hangs (a broken script)
// must not let a stream of mentions fork without bound. Past it, the notification is dropped.
inline constexpr std::size_t children_max = 4;
// Bytes of the post's text passed on: a notification shows a line or two, and a 16 KiB post
// (limits::post_text_bytes_max) does not belong in a popup. Cut at a UTF-8 boundary, with "…".
inline constexpr std::size_t text_bytes_max = 512;

// The default command where a desktop session exists (DISPLAY or WAYLAND_DISPLAY set and
// notify-send on PATH): notify-send with "NICK in GROUP" as summary and the text as body.
// Empty (no notifications) otherwise.
std::vector<std::string> desktop_command();

// The argv for one notification. Arguments of `command` holding {nick}, {group} or {text} have
// them replaced (in one pass: replaced text is never scanned again); when none holds any, the
// three are appended as the last arguments. `text` is cut to text_bytes_max; NUL bytes (which
// argv cannot carry) become U+FFFD.
std::vector<std::string> arguments(const std::vector<std::string>& command, std::string_view nick,
                                   std::string_view group, std::string_view text);

struct NotifierStats {
  std::uint64_t runs = 0;             // commands started
  std::uint64_t skipped_focused = 0;  // mentions while a chat client was focused
  std::uint64_t dropped_rate = 0;     // past runs_per_window_max
};

class Notifier {
 public:
  explicit Notifier(std::vector<std::string> command) : command_(std::move(command)) {}

  // A control client's focus (its id is the control server's).
  void set_focus(std::uint64_t client, bool focused) { focus_[client] = focused; }
  void client_gone(std::uint64_t client) { focus_.erase(client); }
  bool focused() const;

  // A mention arrived: the argv to run, or nullopt (no command, a chat is focused, or past the
  // rate bound; counted in stats()).
  std::optional<std::vector<std::string>> on_mention(Millis now, std::string_view nick,
                                                     std::string_view group, std::string_view text);
  const NotifierStats& stats() const { return stats_; }
  const std::vector<std::string>& command() const { return command_; }

 private:
  std::vector<std::string> command_;
  std::map<std::uint64_t, bool> focus_;  // chat clients that said whether they are focused
  std::deque<Millis> recent_;            // run times within the window, oldest first
  NotifierStats stats_;
};

// The IO side: a Notifier whose commands are started with uv_spawn (argv[0] searched on PATH,
// argv as given, stdin, stdout and stderr on /dev/null) and reaped from the loop. At most
// children_max run at once: past it, or when the program cannot start, one log line and the
// notification is dropped. close() (at shutdown) lets go of children still running: they finish
// on their own and the loop no longer waits for them.
class Notifications {
 public:
  Notifications(uv_loop_t* loop, std::vector<std::string> command, LogSink log);
  ~Notifications();
  Notifications(const Notifications&) = delete;
  Notifications& operator=(const Notifications&) = delete;

  Notifier& notifier() { return notifier_; }
  void on_mention(std::string_view nick, std::string_view group, std::string_view text);
  std::size_t running() const { return children_.size(); }
  std::uint64_t failed() const { return failed_; }
  void close();

 private:
  struct Child;
  static void on_exit(uv_process_t* process, std::int64_t status, int signal);
  uv_loop_t* loop_;
  Notifier notifier_;
  LogSink log_;
  std::map<uv_process_t*, Child*> children_;
  std::uint64_t failed_ = 0;
};

}  // namespace qun::notify
