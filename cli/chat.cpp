#include "cli/chat.h"

#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "cli/chat_model.h"
#include "cli/chat_view.h"
#include "cli/control_client.h"

namespace qun {
namespace {

using chat::Json;

// How often a lost node is tried again.
constexpr std::int64_t reconnect_ms = 1000;
// The longest the full-screen loop sleeps without input: notices expire and the status is
// polled on this beat.
constexpr int idle_poll_ms = 250;
// Line mode: posts sent but not yet acknowledged. Reading stdin pauses at this many, so a large
// input is streamed rather than queued whole in the socket and the node.
constexpr std::size_t line_posts_in_flight_max = 64;

volatile sig_atomic_t stop_signal = 0;

extern "C" void on_stop_signal(int sig) { stop_signal = sig; }

// Catches the terminating signals for the life of the object, without SA_RESTART so that poll()
// returns and the loop can restore the terminal on its way out.
class StopSignals {
 public:
  StopSignals() {
    stop_signal = 0;
    for (std::size_t i = 0; i < std::size(signals_); ++i) {
      struct sigaction sa {};
      sa.sa_handler = on_stop_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = 0;
      ::sigaction(signals_[i], &sa, &previous_[i]);
    }
  }
  ~StopSignals() {
    for (std::size_t i = 0; i < std::size(signals_); ++i)
      ::sigaction(signals_[i], &previous_[i], nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  static constexpr int signals_[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  struct sigaction previous_[std::size(signals_)]{};
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ncursesw needs a UTF-8 LC_CTYPE to read and draw multi-byte text. When the environment names
// none (LANG unset, or C), C.UTF-8 is assumed: every terminal qun targets speaks UTF-8.
void use_utf8_locale() {
  ::setlocale(LC_ALL, "");
  const char* codeset = ::nl_langinfo(CODESET);
  if (codeset != nullptr &&
      (std::strcmp(codeset, "UTF-8") == 0 || std::strcmp(codeset, "utf8") == 0))
    return;
  if (::setlocale(LC_CTYPE, "C.UTF-8") == nullptr) ::setlocale(LC_CTYPE, "C.utf8");
}

// ---------------------------------------------------------------------------------------------
// Full screen.

class FullScreen {
 public:
  FullScreen(const ChatOptions& options, std::unique_ptr<chat::View> view)
      : options_(options),
        view_(std::move(view)),
        model_(chat::ChatModel::Config{options.group, chat::local_time, options.auto_fetch_bytes_max,
                                       options.open_dir, options.save_dir,
                                       std::getenv("DISPLAY") || std::getenv("WAYLAND_DISPLAY")}) {}

  int run() {
    StopSignals signals;
    for (;;) {
      const std::int64_t now = now_ms();
      if (!connection_ && now >= next_connect_ms_) connect(now);
      model_.on_tick(now);
      if (drain()) return 0;
      if (stop_signal != 0) return 128 + stop_signal;
      view_->draw(model_.layout(view_->cols(), view_->rows()));

      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {-1, POLLIN, 0}};
      if (connection_) fds[1].fd = connection_->fd();
      int timeout = idle_poll_ms;
      if (!connection_)
        timeout =
            static_cast<int>(std::clamp<std::int64_t>(next_connect_ms_ - now, 0, idle_poll_ms));
      const int r = ::poll(fds, 2, timeout);
      if (r < 0 && errno != EINTR) return 1;
      if (stop_signal != 0) return 128 + stop_signal;
      // Read keys also after EINTR: a SIGWINCH leaves a KEY_RESIZE for get_wch.
      if (r < 0 || (fds[0].revents & POLLIN)) {
        for (const auto& key : view_->read_keys()) model_.on_key(key);
        if (auto focused = view_->focus_change()) {
          focused_ = *focused;
          send_focus();
        }
      } else if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
        return 1;  // the terminal went away
      }
      if (r > 0 && connection_ && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) read_node();
    }
  }

 private:
  void connect(std::int64_t now) {
    auto c = ControlClient::connect(options_.socket_path);
    if (!c.ok()) {
      // No node at all reads best as the plain "not running"; anything else says why.
      model_.on_disconnected(c.error().code() == Errc::not_found ? "" : c.error().context());
      next_connect_ms_ = now + reconnect_ms;
      return;
    }
    connection_.emplace(std::move(c).value());
    model_.on_connected();
    send_focus();
  }

  // Tells the node whether this window has focus, so that it notifies of mentions only while no
  // chat is looked at (net/notify.h). Focused from the start: a terminal that never reports
  // focus makes "attached" mean "focused". The answer is not waited for (nor in_flight_).
  void send_focus() {
    if (connection_) (void)connection_->send("focus", Json{{"focused", focused_}});
  }

  void lose_connection(const std::string& reason) {
    connection_.reset();
    next_connect_ms_ = now_ms() + reconnect_ms;
    model_.on_disconnected(reason);
    auto lost = std::move(in_flight_);
    in_flight_.clear();
    for (auto& [id, request] : lost) model_.on_response(request, Error(Errc::io, reason));
  }

  // Opens a saved file with the desktop's opener (xdg-open), detached, where there is a display;
  // without one the model's notice already says where the file is.
  static void open_file(const std::string& path) {
    if (!std::getenv("DISPLAY") && !std::getenv("WAYLAND_DISPLAY")) return;
    const pid_t pid = ::fork();
    if (pid != 0) {
      if (pid > 0) ::waitpid(pid, nullptr, 0);  // the middle child exits at once
      return;
    }
    // The opener runs in a grandchild, so it outlives nothing of ours and leaves no zombie.
    if (::fork() != 0) _exit(0);
    ::setsid();
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    ::execlp("xdg-open", "xdg-open", path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }

  // Carries out the model's actions. True when it asked to quit.
  bool drain() {
    while (auto action = model_.poll()) {
      if (std::holds_alternative<chat::Quit>(*action)) return true;
      if (std::holds_alternative<chat::Bell>(*action)) {
        view_->bell();
        continue;
      }
      if (auto* open = std::get_if<chat::OpenFile>(&*action)) {
        open_file(open->path);
        continue;
      }
      auto& request = std::get<chat::NodeRequest>(*action);
      if (!connection_) {
        model_.on_response(request, Error(Errc::io, "not connected to the node"));
        continue;
      }
      auto id = connection_->send(request.op, request.args);
      if (!id.ok()) {
        model_.on_response(request, id.error());
        lose_connection("stopped");
        continue;
      }
      in_flight_.emplace(*id, std::move(request));
    }
    return false;
  }

  void read_node() {
    auto messages = connection_->read_available();
    if (!messages.ok()) {
      lose_connection(messages.error().code() == Errc::io ? "stopped" : messages.error().context());
      return;
    }
    for (auto& m : *messages) {
      if (m.contains("stream")) {
        model_.on_stream(m);
        continue;
      }
      if (!m.contains("id") || !m["id"].is_number_unsigned()) continue;
      auto it = in_flight_.find(m["id"].get<std::uint64_t>());
      if (it == in_flight_.end()) continue;
      chat::NodeRequest request = std::move(it->second);
      in_flight_.erase(it);
      if (m.value("ok", false)) {
        model_.on_response(request, m.contains("result") ? m["result"] : Json());
      } else {
        model_.on_response(request, Error(Errc::invalid_argument,
                                          m.value("error", std::string("request failed"))));
      }
    }
  }

  const ChatOptions& options_;
  std::unique_ptr<chat::View> view_;
  chat::ChatModel model_;
  std::optional<ControlClient> connection_;
  std::map<std::uint64_t, chat::NodeRequest> in_flight_;
  std::int64_t next_connect_ms_ = 0;
  bool focused_ = true;
};

int run_full_screen(const ChatOptions& options) {
  use_utf8_locale();
  auto view = chat::View::open();
  if (!view.ok()) {
    std::fprintf(stderr, "qun chat: %s\n", view.error().context().c_str());
    return 1;
  }
  FullScreen screen(options, std::move(view).value());
  return screen.run();  // the View's destructor gives the terminal back
}

// ---------------------------------------------------------------------------------------------
// Line mode.

void print_message(const ChatOptions& options, const std::string& group, const std::string& own_id,
                   const Json& value) {
  if (options.json) {
    const Json out = chat::message_json_line(value, group, own_id);
    const std::string line = out.dump(-1, ' ', false, Json::error_handler_t::replace);
    std::fprintf(stdout, "%s\n", line.c_str());
  } else {
    auto m = chat::parse_message(value);
    if (!m.ok()) return;
    const std::string line = chat::message_line(*m, chat::local_time);
    std::fprintf(stdout, "%s\n", line.c_str());
  }
  std::fflush(stdout);
}

int fail(const std::string& what) {
  std::fprintf(stderr, "qun chat: %s\n", what.c_str());
  return 1;
}

int run_lines(const ChatOptions& options) {
  if (!options.group) {
    std::fprintf(stderr,
                 "qun chat: without a terminal, give the group: qun chat GROUP (lines from stdin "
                 "are posted to it)\n");
    return 2;
  }
  auto connection = ControlClient::connect(options.socket_path);
  if (!connection.ok()) return fail(connection.error().context());
  ControlClient& node = *connection;
  auto self = node.request("id");
  if (!self.ok()) return fail(self.error().context());
  const std::string own_id = self->value("id", std::string());
  auto list = node.request("group.list");
  if (!list.ok()) return fail(list.error().context());
  auto group = chat::resolve_group(*list, *options.group);
  if (!group.ok()) return fail(group.error().context());
  auto subscribed = node.request("subscribe", Json{{"group", *group}});
  if (!subscribed.ok()) return fail(subscribed.error().context());

  std::set<std::uint64_t> in_flight;
  std::string partial;    // the line being read
  bool overlong = false;  // the line being read is already past the bound: skipped
  std::size_t line_number = 0;
  bool eof = false;
  bool failed = false;

  auto post = [&](std::string line) -> bool {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return true;
    if (line.size() > limits::post_text_bytes_max) {
      std::fprintf(stderr,
                   "qun chat: line %zu: message too large: %zu bytes, at most %zu; not sent\n",
                   line_number, line.size(), limits::post_text_bytes_max);
      failed = true;
      return true;
    }
    auto id = node.send("post", Json{{"group", *group}, {"text", line}});
    if (!id.ok()) return false;
    in_flight.insert(*id);
    return true;
  };
  auto refuse_overlong = [&] {
    ++line_number;
    std::fprintf(stderr, "qun chat: line %zu: message too large: more than %zu bytes; not sent\n",
                 line_number, limits::post_text_bytes_max);
    failed = true;
  };

  for (;;) {
    if (eof && in_flight.empty()) break;
    const bool want_stdin = !eof && in_flight.size() < line_posts_in_flight_max;
    pollfd fds[2] = {{want_stdin ? STDIN_FILENO : -1, POLLIN, 0}, {node.fd(), POLLIN, 0}};
    const int r = ::poll(fds, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16 * 1024];
      const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && errno != EINTR && errno != EAGAIN) return fail("cannot read stdin");
      if (n == 0) {
        eof = true;
        if (overlong) {
          refuse_overlong();
        } else if (!partial.empty() && !post(std::move(partial))) {
          return fail("the node stopped");
        }
        partial.clear();
      }
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == '\n') {
          if (overlong) {
            refuse_overlong();
          } else if (!post(std::move(partial))) {
            return fail("the node stopped");
          }
          partial.clear();
          overlong = false;
          continue;
        }
        if (overlong) continue;
        partial += buf[i];
        // One byte of slack for a '\r' before the newline.
        if (partial.size() > limits::post_text_bytes_max + 1) {
          overlong = true;
          partial.clear();
        }
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      auto messages = node.read_available();
      if (!messages.ok()) return fail("the node stopped");
      for (const auto& m : *messages) {
        if (m.contains("stream")) {
          if (m.value("stream", std::string()) == "message" &&
              m.value("group", std::string()) == *group && m.contains("message"))
            print_message(options, *group, own_id, m["message"]);
          continue;
        }
        if (!m.contains("id") || !m["id"].is_number_unsigned()) continue;
        in_flight.erase(m["id"].get<std::uint64_t>());
        if (!m.value("ok", false)) {
          std::fprintf(stderr, "qun chat: %s\n",
                       m.value("error", std::string("post failed")).c_str());
          failed = true;
        }
      }
    }
  }
  return failed ? 1 : 0;
}

}  // namespace

int run_chat(const ChatOptions& options) {
  if (::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO)) return run_full_screen(options);
  return run_lines(options);
}

}  // namespace qun
