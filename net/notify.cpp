#include "net/notify.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "base/utf8.h"

namespace qun::notify {
namespace {

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string_view rest(path);
  while (true) {
    const auto colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::string full = dir + "/" + program;
    struct stat st {};
    if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(full.c_str(), X_OK) == 0)
      return true;
    if (colon == std::string_view::npos) return false;
    rest.remove_prefix(colon + 1);
  }
}

// The text for the command: valid UTF-8 without NUL, at most text_bytes_max bytes (cut at a
// character boundary, ending in "…" when cut).
std::string cut(std::string_view text) {
  std::string clean;
  const std::string valid = utf8::make_valid(text);
  for (std::size_t pos = 0; pos < valid.size();) {
    const char32_t c = utf8::next(valid, pos);
    utf8::append(clean, c == 0 ? utf8::replacement : c);
  }
  if (clean.size() <= text_bytes_max) return clean;
  const std::string ellipsis = "\u2026";
  std::string out;
  for (std::size_t pos = 0, start = 0; pos < clean.size(); start = pos) {
    utf8::next(clean, pos);
    if (pos > text_bytes_max - ellipsis.size()) break;
    out.append(clean, start, pos - start);
  }
  return out + ellipsis;
}

}  // namespace

std::vector<std::string> desktop_command() {
  const char* x11 = std::getenv("DISPLAY");
  const char* wayland = std::getenv("WAYLAND_DISPLAY");
  const bool desktop = (x11 && *x11) || (wayland && *wayland);
  if (!desktop || !on_path("notify-send")) return {};
  return {"notify-send", "--app-name=qun", "--", "{nick} in {group}", "{text}"};
}

std::vector<std::string> arguments(const std::vector<std::string>& command, std::string_view nick,
                                   std::string_view group, std::string_view text) {
  const std::string t = cut(text), n = cut(nick), g = cut(group);
  const std::pair<std::string_view, const std::string*> fields[] = {
      {"{nick}", &n}, {"{group}", &g}, {"{text}", &t}};
  std::vector<std::string> argv;
  bool placed = false;
  for (const auto& arg : command) {
    std::string out;
    for (std::size_t i = 0; i < arg.size();) {
      bool hit = false;
      for (const auto& [name, value] : fields) {
        if (arg.compare(i, name.size(), name) == 0) {
          out += *value;
          i += name.size();
          hit = placed = true;
          break;
        }
      }
      if (!hit) out += arg[i++];
    }
    argv.push_back(std::move(out));
  }
  if (!placed && !argv.empty()) {
    argv.push_back(n);
    argv.push_back(g);
    argv.push_back(t);
  }
  return argv;
}

bool Notifier::focused() const {
  for (const auto& [client, focused] : focus_)
    if (focused) return true;
  return false;
}

std::optional<std::vector<std::string>> Notifier::on_mention(Millis now, std::string_view nick,
                                                             std::string_view group,
                                                             std::string_view text) {
  if (command_.empty()) return std::nullopt;
  if (focused()) {
    ++stats_.skipped_focused;
    return std::nullopt;
  }
  while (!recent_.empty() && recent_.front() + window_ms <= now) recent_.pop_front();
  if (recent_.size() >= runs_per_window_max) {
    ++stats_.dropped_rate;
    return std::nullopt;
  }
  recent_.push_back(now);
  ++stats_.runs;
  return arguments(command_, nick, group, text);
}

struct Notifications::Child {
  uv_process_t process{};
  Notifications* owner = nullptr;
};

Notifications::Notifications(uv_loop_t* loop, std::vector<std::string> command, LogSink log)
    : loop_(loop), notifier_(std::move(command)), log_(std::move(log)) {}

Notifications::~Notifications() { close(); }

void Notifications::on_exit(uv_process_t* process, std::int64_t, int) {
  auto* child = static_cast<Child*>(process->data);
  if (child->owner) child->owner->children_.erase(process);
  uv_close(reinterpret_cast<uv_handle_t*>(process),
           [](uv_handle_t* h) { delete static_cast<Child*>(h->data); });
}

void Notifications::on_mention(std::string_view nick, std::string_view group,
                               std::string_view text) {
  auto argv = notifier_.on_mention(uv_now(loop_), nick, group, text);
  if (!argv) return;
  auto warn = [&](const std::string& why) {
    ++failed_;
    log_(LogRecord{LogLevel::warn, "notify", "notification not shown: " + why});
  };
  if (children_.size() >= children_max)
    return warn(std::to_string(children_max) + " notification commands still running");
  std::vector<char*> args;
  for (auto& a : *argv) args.push_back(a.data());
  args.push_back(nullptr);
  uv_stdio_container_t stdio[3];
  for (auto& s : stdio) s.flags = UV_IGNORE;  // /dev/null
  uv_process_options_t options{};
  options.file = args[0];
  options.args = args.data();
  options.exit_cb = &Notifications::on_exit;
  options.stdio_count = 3;
  options.stdio = stdio;
  auto* child = new Child;
  child->process.data = child;
  child->owner = this;
  if (int rc = uv_spawn(loop_, &child->process, &options); rc != 0) {
    // libuv initialised the handle; it must still be closed.
    uv_close(reinterpret_cast<uv_handle_t*>(&child->process),
             [](uv_handle_t* h) { delete static_cast<Child*>(h->data); });
    return warn("cannot run " + (*argv)[0] + ": " + uv_strerror(rc) +
                "; set notify.command in the config file (docs/chat.md)");
  }
  children_[&child->process] = child;
}

void Notifications::close() {
  for (auto& [process, child] : children_) {
    child->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(process),
             [](uv_handle_t* h) { delete static_cast<Child*>(h->data); });
  }
  children_.clear();
}

}  // namespace qun::notify
