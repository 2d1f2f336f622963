#include "cli/irc.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>

#include "base/bytes.h"
#include "cli/control_client.h"
#include "cli/irc_session.h"
#include "crypto/rng.h"
#include "net/home.h"

namespace qun {
namespace {

// IRC clients at once. A person runs one or two (irssi, and weechat to try it); each holds a
// control connection of the node's 64 (net/control_server.h), so 16 leave room for the CLI.
constexpr std::size_t irc_clients_max = 16;
// Unsent bytes queued for one client: the node's bound for a control subscriber
// (control_client_queue_bytes_max), since what a client is sent is what the node streamed.
constexpr std::size_t irc_client_queue_bytes_max = 16 * 1024 * 1024;
// A connection that has not registered (PASS, NICK, USER) within this is closed: clients send
// all three at once, so only something that is not an IRC client waits longer.
constexpr std::uint64_t register_timeout_ms = 30'000;
// Random bytes of a new password: 128 bits, written as 32 hex digits.
constexpr std::size_t password_bytes = 16;

void say(const std::string& line) {
  std::fprintf(stderr, "qun irc: %s\n", line.c_str());
  std::fflush(stderr);
}

std::string local_clock(std::int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M", &tm);
  return buf;
}

class Gateway;

struct Client {
  Gateway* gateway = nullptr;
  std::uint64_t number = 0;
  uv_tcp_t tcp{};
  uv_poll_t node_poll{};
  uv_timer_t register_timer{};
  int handles_open = 0;
  bool node_polling = false;
  bool reading = false;
  bool closing = false;
  irc::LineReader reader;
  std::unique_ptr<irc::Session> session;
  std::optional<ControlClient> node;
  std::map<std::uint64_t, std::uint64_t> tokens;  // control request id -> session token
};

struct WriteReq {
  uv_write_t req{};
  std::string data;
};

class Gateway {
 public:
  Gateway(const IrcOptions& options, std::string password)
      : options_(options), password_(std::move(password)) {}

  int run() {
    uv_loop_init(&loop_);
    sockaddr_storage sa{};
    if (!parse_listen(options_.listen, &sa)) {
      say("--listen " + options_.listen + " is not HOST:PORT with an IP address (127.0.0.1:6667)");
      return 2;
    }
    uv_tcp_init(&loop_, &listener_);
    listener_.data = this;
    int r = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&sa), 0);
    if (r == 0)
      r = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16, [](uv_stream_t* s, int status) {
        static_cast<Gateway*>(s->data)->on_connection(status);
      });
    if (r != 0) {
      say("cannot listen on " + options_.listen + ": " + uv_strerror(r) +
          "; pick another port with --listen 127.0.0.1:PORT");
      uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
      uv_run(&loop_, UV_RUN_DEFAULT);
      uv_loop_close(&loop_);
      return 1;
    }
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    char host[INET6_ADDRSTRLEN] = {};
    int port = 0;
    if (bound.ss_family == AF_INET6) {
      auto* a6 = reinterpret_cast<sockaddr_in6*>(&bound);
      uv_ip6_name(a6, host, sizeof host);
      port = ntohs(a6->sin6_port);
    } else {
      auto* a4 = reinterpret_cast<sockaddr_in*>(&bound);
      uv_ip4_name(a4, host, sizeof host);
      port = ntohs(a4->sin_port);
    }
    const std::string address = bound.ss_family == AF_INET6
                                    ? "[" + std::string(host) + "]:" + std::to_string(port)
                                    : std::string(host) + ":" + std::to_string(port);
    if (!loopback(sa))
      say("warning: " + options_.listen +
          " is not a loopback address: anyone who can reach it and knows the password can "
          "read and post as you");
    std::printf("qun irc: listening on %s; the password (PASS) is in %s\n", address.c_str(),
                irc_password_path(options_.home).c_str());
    std::fflush(stdout);
    if (!options_.beside_node && !ControlClient::connect(home::socket_path(options_.home)).ok())
      say("no node is running on " + options_.home +
          " yet: clients are turned away until `qun node` runs");

    uv_signal_init(&loop_, &sigint_);
    uv_signal_init(&loop_, &sigterm_);
    sigint_.data = sigterm_.data = this;
    auto on_signal = [](uv_signal_t* s, int) { static_cast<Gateway*>(s->data)->stop(); };
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return 0;
  }

 private:
  static bool parse_listen(const std::string& text, sockaddr_storage* sa) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    std::string host = text.substr(0, colon);
    const std::string port_text = text.substr(colon + 1);
    if (port_text.empty() || port_text.size() > 5 ||
        port_text.find_first_not_of("0123456789") != std::string::npos)
      return false;
    const int port = std::stoi(port_text);
    if (port > 65535) return false;
    if (host == "localhost") host = "127.0.0.1";
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      return uv_ip6_addr(host.substr(1, host.size() - 2).c_str(), port,
                         reinterpret_cast<sockaddr_in6*>(sa)) == 0;
    return uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(sa)) == 0;
  }

  static bool loopback(const sockaddr_storage& sa) {
    if (sa.ss_family == AF_INET)
      return (ntohl(reinterpret_cast<const sockaddr_in*>(&sa)->sin_addr.s_addr) >> 24) == 127;
    const auto* a6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    static const in6_addr any_loopback = IN6ADDR_LOOPBACK_INIT;
    return std::memcmp(&a6->sin6_addr, &any_loopback, sizeof any_loopback) == 0;
  }

  void stop() {
    stopping_ = true;
    uv_signal_stop(&sigint_);
    uv_signal_stop(&sigterm_);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    auto clients = clients_;
    for (auto* c : clients) close_client(c, "qun irc stopped", true);
  }

  void on_connection(int status) {
    if (status < 0 || stopping_) return;
    auto* c = new Client;
    c->gateway = this;
    c->number = ++accepted_;
    uv_tcp_init(&loop_, &c->tcp);
    c->tcp.data = c;
    ++c->handles_open;
    if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_),
                  reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
      c->closing = true;
      uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_handle_closed);
      return;
    }
    clients_.push_back(c);
    uv_timer_init(&loop_, &c->register_timer);
    c->register_timer.data = c;
    ++c->handles_open;
    if (clients_.size() > irc_clients_max) {
      write(c, "ERROR :Closing link: too many IRC clients at once (" +
                   std::to_string(irc_clients_max) + ")\r\n");
      return close_client(c, "too many clients", true);
    }
    auto node = ControlClient::connect(home::socket_path(options_.home));
    if (!node.ok()) {
      write(c, "ERROR :Closing link: no qun node is running on " + options_.home +
                   "; start it with qun node\r\n");
      return close_client(c, "no node", true);
    }
    c->node.emplace(std::move(node).value());
    irc::Config config;
    config.password = password_;
    config.password_path = irc_password_path(options_.home);
    config.clock = local_clock;
    c->session = std::make_unique<irc::Session>(std::move(config));
    uv_poll_init(&loop_, &c->node_poll, c->node->fd());
    c->node_poll.data = c;
    ++c->handles_open;
    c->node_polling = true;
    uv_poll_start(&c->node_poll, UV_READABLE, [](uv_poll_t* p, int, int) {
      auto* cl = static_cast<Client*>(p->data);
      cl->gateway->on_node_readable(cl);
    });
    uv_timer_start(&c->register_timer, [](uv_timer_t* t) {
      auto* cl = static_cast<Client*>(t->data);
      if (cl->session && !cl->session->registered()) {
        cl->gateway->write(cl, "ERROR :Closing link: registration timed out\r\n");
        cl->gateway->close_client(cl, "registration timed out", true);
      }
    }, register_timeout_ms, 0);
    start_reading(c);
    say("client " + std::to_string(c->number) + " connected");
  }

  void start_reading(Client* c) {
    if (c->reading || c->closing) return;
    c->reading = true;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static char storage[64 * 1024];
          *buf = uv_buf_init(storage, sizeof storage);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* cl = static_cast<Client*>(s->data);
          cl->gateway->on_client_bytes(cl, n, buf);
        });
  }

  void on_client_bytes(Client* c, ssize_t n, const uv_buf_t* buf) {
    if (c->closing) return;
    if (n < 0) return close_client(c, n == UV_EOF ? "client closed" : uv_strerror(static_cast<int>(n)), false);
    c->reader.feed(std::string_view(buf->base, static_cast<std::size_t>(n)));
    while (auto line = c->reader.next()) {
      c->session->on_line(*line);
      if (!drain(c)) return;
    }
  }

  void on_node_readable(Client* c) {
    if (c->closing) return;
    auto messages = c->node->read_available();
    if (!messages.ok()) {
      c->session->on_node_lost("its control socket closed");
      drain(c);
      return;
    }
    for (auto& m : *messages) {
      if (m.contains("stream")) {
        c->session->on_stream(m);
      } else if (m.contains("id") && m["id"].is_number_unsigned()) {
        auto it = c->tokens.find(m["id"].get<std::uint64_t>());
        if (it == c->tokens.end()) continue;
        const std::uint64_t token = it->second;
        c->tokens.erase(it);
        if (m.value("ok", false)) {
          c->session->on_response(token, m.contains("result") ? m["result"] : irc::Json());
        } else {
          c->session->on_response(
              token, Error(Errc::invalid_argument, m.value("error", std::string("request failed"))));
        }
      }
      if (!drain(c)) return;
    }
  }

  // Carries out the session's outputs. False when the client is being closed.
  bool drain(Client* c) {
    while (auto out = c->session->poll()) {
      if (auto* line = std::get_if<irc::ToClient>(&*out)) {
        write(c, std::move(line->line));
      } else if (auto* req = std::get_if<irc::NodeRequest>(&*out)) {
        auto id = c->node->send(req->op, req->args);
        if (!id.ok()) {
          c->session->on_node_lost("its control socket closed");
          continue;
        }
        c->tokens[*id] = req->token;
      } else if (auto* close = std::get_if<irc::Close>(&*out)) {
        close_client(c, close->reason, true);
        return false;
      }
    }
    if (c->closing) return false;
    if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&c->tcp)) >
        irc_client_queue_bytes_max) {
      close_client(c, "the client stopped reading", false);
      return false;
    }
    // Back-pressure: while the node works through a burst of posts, the client waits.
    if (c->session->wants_input()) {
      start_reading(c);
    } else if (c->reading) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
      c->reading = false;
    }
    return true;
  }

  void write(Client* c, std::string data) {
    if (c->closing) return;
    auto* w = new WriteReq;
    w->data = std::move(data);
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    w->req.data = w;
    const int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1,
                           [](uv_write_t* req, int) { delete static_cast<WriteReq*>(req->data); });
    if (r != 0) delete w;
  }

  // Closes a client; with flush, what was written goes out first (the ERROR line).
  void close_client(Client* c, const std::string& reason, bool flush) {
    if (c->closing) return;
    c->closing = true;
    say("client " + std::to_string(c->number) + " closed: " + reason);
    std::erase(clients_, c);
    if (c->node_polling) uv_poll_stop(&c->node_poll);
    uv_timer_stop(&c->register_timer);
    if (c->node_polling) uv_close(reinterpret_cast<uv_handle_t*>(&c->node_poll), on_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->register_timer), on_handle_closed);
    if (c->reading) uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
    auto* shutdown = new uv_shutdown_t;
    shutdown->data = c;
    if (flush && uv_shutdown(shutdown, reinterpret_cast<uv_stream_t*>(&c->tcp),
                             [](uv_shutdown_t* s, int) {
                               auto* cl = static_cast<Client*>(s->data);
                               delete s;
                               uv_close(reinterpret_cast<uv_handle_t*>(&cl->tcp), on_handle_closed);
                             }) == 0)
      return;
    delete shutdown;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_handle_closed);
  }

  static void on_handle_closed(uv_handle_t* h) { release(static_cast<Client*>(h->data)); }
  static void release(Client* c) {
    if (--c->handles_open == 0) delete c;
  }

  const IrcOptions& options_;
  std::string password_;
  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_signal_t sigint_{}, sigterm_{};
  std::vector<Client*> clients_;
  std::uint64_t accepted_ = 0;
  bool stopping_ = false;
};

}  // namespace

Result<std::string> irc_password(const std::string& home) {
  const std::string path = irc_password_path(home);
  struct stat st {};
  if (::stat(home.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Error(Errc::io, "no node home at " + home + "; create one with qun init");
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return Error(Errc::io, "cannot read " + path + ": " + std::strerror(errno));
    std::uint8_t raw[password_bytes];
    Rng::from_os().fill(raw);
    const std::string password = to_hex(ByteView(raw, sizeof raw));
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Error(Errc::io, "cannot create " + path + ": " + std::strerror(errno));
    const std::string line = password + "\n";
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::fsync(fd);
    ::close(fd);
    if (!written) return Error(Errc::io, "cannot write " + path + "; free some space and retry");
    say("created the password file " + path + " (mode 0600): give its contents to your client");
    return password;
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error(Errc::io, path + " has mode " + mode + ", so others may read it; run chmod 600 " +
                               path + " (or delete it for a new password)");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error(Errc::io, "cannot read " + path + ": " + std::strerror(errno));
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  std::string password(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  if (auto nl = password.find_first_of("\r\n"); nl != std::string::npos) password.resize(nl);
  if (password.empty())
    return Error(Errc::io, path + " holds no password; delete it and a new one is made");
  return password;
}

Result<IrcChild> IrcChild::start(const IrcOptions& options) {
  // Everything the child needs is made before fork: after it, only async-signal-safe calls.
  const std::string self = "/proc/self/exe";
  std::vector<std::string> args{"qun",      "--home",       options.home,   "irc",
                                "--listen", options.listen, "--beside-node"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0)
    return Error(Errc::io, std::string("cannot start the IRC gateway: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);  // the node ended before the line above
    ::execv(self.c_str(), argv.data());
    ::_exit(127);
  }
  return IrcChild(pid);
}

IrcChild::~IrcChild() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

int run_irc(const IrcOptions& options) {
  auto password = irc_password(options.home);
  if (!password.ok()) {
    say(password.error().context());
    return 1;
  }
  Gateway gateway(options, std::move(password).value());
  return gateway.run();
}

}  // namespace qun
