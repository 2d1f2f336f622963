// The integration harness (harness.h): child processes, node homes and the per-test fixture.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

#ifndef QUN_BIN
#define QUN_BIN "qun"
#endif

namespace qun::integration {
namespace {

using Clock = std::chrono::steady_clock;

// Set by the listener below when an assertion of the running test case fails.
bool g_test_failed = false;

struct FailureListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    g_test_failed = false;
    TestEventListenerBase::testCaseStarting(info);
  }
  bool assertionEnded(const Catch::AssertionStats& stats) override {
    if (!stats.assertionResult.isOk()) g_test_failed = true;
    return true;
  }
};
CATCH_REGISTER_LISTENER(FailureListener)

// Children get SIGPIPE back to its default disposition; the harness itself ignores it so that a
// child closing its stdin early shows up as EPIPE rather than killing the test binary.
struct IgnoreSigpipe {
  IgnoreSigpipe() { ::signal(SIGPIPE, SIG_IGN); }
} const ignore_sigpipe;

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::pair<Fd, Fd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  return {Fd(fds[0]), Fd(fds[1])};
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> result;
  result.reserve(strings.size() + 1);
  for (const auto& s : strings) result.push_back(const_cast<char*>(s.c_str()));
  result.push_back(nullptr);
  return result;
}

std::string join_args(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) {
    if (!line.empty()) line += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$") == std::string::npos;
    line += plain ? a : "'" + a + "'";
  }
  return line;
}

// Forks and execs argv[0] with in/out/err as its stdin/stdout/stderr, in its own process group,
// killed if we die. Throws std::runtime_error if the exec fails (the child is reaped).
pid_t spawn_child(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  int in_fd, int out_fd, int err_fd) {
  if (argv.empty()) throw std::runtime_error("empty argv");
  // Everything the child touches is prepared before fork: after it, only async-signal-safe calls.
  auto args = c_strings(argv);
  auto envp = c_strings(env);
  auto [error_read, error_write] = make_pipe();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGCHLD, SIGHUP}) ::sigaction(sig, &action, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) ::_exit(127);
    // The test process may hold hundreds of sockets (the flood test); none may leak into a node.
    const int keep = error_write.get();
    if (keep > 3) ::close_range(3, static_cast<unsigned>(keep - 1), 0);
    ::close_range(static_cast<unsigned>(keep + 1), ~0U, 0);
    ::execve(args[0], args.data(), envp.data());
    const int e = errno;
    [[maybe_unused]] auto n = ::write(keep, &e, sizeof e);
    ::_exit(127);
  }
  error_write.reset();
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(error_read.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    int status;
    ::waitpid(pid, &status, 0);
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(exec_errno));
  }
  return pid;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Waits up to bound for pid to exit; returns its raw status if it did (and reaps it).
std::optional<int> wait_pid(pid_t pid, Millis bound) {
  const auto deadline = Clock::now() + bound;
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  for (;;) {
    int status;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return std::nullopt;  // not our child (already reaped)
    auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    auto left = std::chrono::duration_cast<Millis>(deadline - now) + Millis(1);
    if (pidfd.open()) {
      pollfd p{pidfd.get(), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(left.count()));
    } else {
      std::this_thread::sleep_for(std::min(left, Millis(5)));
    }
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string tail(const std::string& text, std::size_t bytes_max) {
  if (text.size() <= bytes_max) return text;
  auto cut = text.find('\n', text.size() - bytes_max);
  if (cut == std::string::npos) cut = text.size() - bytes_max;
  return "[... " + std::to_string(cut) + " bytes cut ...]\n" + text.substr(cut);
}

fs::path temp_root() {
  // Unix socket paths are limited to 108 bytes and the control socket lives in a home, so a
  // long $TMPDIR is not used.
  const char* tmp = std::getenv("TMPDIR");
  if (tmp != nullptr && *tmp != '\0' && std::strlen(tmp) < 48) return tmp;
  return "/tmp";
}

}  // namespace

std::string qun_binary() {
  const char* env = std::getenv("QUN_BIN");
  return env != nullptr && *env != '\0' ? env : QUN_BIN;
}

// ---- Outcome ----

std::string Outcome::trimmed_out() const {
  auto end = out.find_last_not_of(" \t\r\n");
  auto begin = out.find_first_not_of(" \t\r\n");
  return end == std::string::npos ? std::string() : out.substr(begin, end + 1 - begin);
}

std::vector<std::string> Outcome::err_lines() const {
  std::vector<std::string> lines;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  while (!lines.empty() && lines.back().find_first_not_of(" \t\r") == std::string::npos)
    lines.pop_back();
  return lines;
}

std::string Outcome::describe() const {
  std::ostringstream s;
  s << "$ " << join_args(argv) << "\n  -> ";
  if (timed_out) s << "TIMED OUT (killed), ";
  if (exited)
    s << "exit " << code;
  else if (signal != 0)
    s << "signal " << signal << " (" << ::strsignal(signal) << ")";
  else
    s << "not started";
  s << "\n  stdout: " << (out.empty() ? "(empty)" : tail(out, 4000))
    << "\n  stderr: " << (err.empty() ? "(empty)" : tail(err, 4000));
  return s.str();
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) +
           ")";
  return "status " + std::to_string(status);
}

bool exited_cleanly(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::vector<std::string> child_env(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  auto key_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (key_of(entry) == "QUN_HOME") continue;
    bool replaced = std::any_of(extra.begin(), extra.end(),
                                [&](const std::string& x) { return key_of(x) == key_of(entry); });
    if (!replaced) env.emplace_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  // Every node the tests start checks its invariants after every input (NodeConfig).
  if (std::none_of(env.begin(), env.end(), [&](const std::string& e) { return key_of(e) == "QUN_CHECK_INVARIANTS"; }))
    env.emplace_back("QUN_CHECK_INVARIANTS=1");
  return env;
}

// ---- run ----

Outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            std::string_view input, Millis bound) {
  Outcome outcome;
  outcome.argv = argv;
  auto [in_read, in_write] = make_pipe();
  auto [out_read, out_write] = make_pipe();
  auto [err_read, err_write] = make_pipe();
  pid_t pid;
  try {
    pid = spawn_child(argv, env, in_read.get(), out_write.get(), err_write.get());
  } catch (const std::exception& e) {
    outcome.err = e.what();
    return outcome;
  }
  in_read.reset();
  out_write.reset();
  err_write.reset();
  set_nonblocking(in_write.get());
  set_nonblocking(out_read.get());
  set_nonblocking(err_read.get());
  if (input.empty()) in_write.reset();

  const auto deadline = Clock::now() + bound;
  std::size_t written = 0;
  std::optional<int> status;
  char buffer[65536];
  auto drain = [&](Fd& fd, std::string& into) {
    for (;;) {
      ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      if (n > 0) {
        into.append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) fd.reset();
      return;
    }
  };
  for (;;) {
    std::vector<pollfd> fds;
    if (out_read.open()) fds.push_back({out_read.get(), POLLIN, 0});
    if (err_read.open()) fds.push_back({err_read.get(), POLLIN, 0});
    if (in_write.open()) fds.push_back({in_write.get(), POLLOUT, 0});
    if (fds.empty() && status) break;
    // Once the child has exited, only what is already in the pipes is read: a grandchild that
    // kept them open must not hold us here.
    int timeout_ms = status ? 0 : 20;
    int ready = fds.empty() ? 0 : ::poll(fds.data(), fds.size(), timeout_ms);
    if (fds.empty() && !status) std::this_thread::sleep_for(Millis(timeout_ms));
    if (ready > 0) {
      for (const auto& p : fds) {
        if (p.revents == 0) continue;
        if (p.fd == out_read.get()) drain(out_read, outcome.out);
        if (p.fd == err_read.get()) drain(err_read, outcome.err);
        if (p.fd == in_write.get()) {
          ssize_t n = ::write(in_write.get(), input.data() + written, input.size() - written);
          if (n > 0) written += static_cast<std::size_t>(n);
          if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size())
            in_write.reset();
        }
      }
    } else if (status) {
      break;
    }
    if (!status) {
      int s;
      if (::waitpid(pid, &s, WNOHANG) == pid) status = s;
    }
    if (!status && Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      int s;
      ::waitpid(pid, &s, 0);
      status = s;
      outcome.timed_out = true;
      if (out_read.open()) drain(out_read, outcome.out);
      if (err_read.open()) drain(err_read, outcome.err);
      break;
    }
  }
  if (WIFEXITED(*status)) {
    outcome.exited = true;
    outcome.code = WEXITSTATUS(*status);
  } else if (WIFSIGNALED(*status)) {
    outcome.signal = WTERMSIG(*status);
  }
  return outcome;
}

// ---- Process ----

Process Process::spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                       const fs::path& log_path, const fs::path& stdout_path) {
  Fd log(::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  if (!log.open()) throw std::runtime_error("cannot open log " + log_path.string());
  Fd out;
  if (!stdout_path.empty()) {
    out = Fd(::open(stdout_path.c_str(), O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0644));
    if (!out.open()) throw std::runtime_error("cannot open " + stdout_path.string());
  }
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Process process;
  process.pid_ = spawn_child(argv, env, null.get(), out.open() ? out.get() : log.get(), log.get());
  return process;
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(std::exchange(other.status_, std::nullopt)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = std::exchange(other.pid_, -1);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

Process::~Process() { stop(); }

bool Process::running() {
  if (pid_ < 0 || status_) return false;
  int s;
  if (::waitpid(pid_, &s, WNOHANG) == pid_) {
    status_ = s;
    return false;
  }
  return true;
}

std::optional<int> Process::wait_exit(Millis bound) {
  if (pid_ < 0 || status_) return status_;
  status_ = wait_pid(pid_, bound);
  return status_;
}

std::optional<int> Process::stop(Millis bound) {
  if (pid_ < 0) return std::nullopt;
  if (!running()) return status_;
  ::kill(pid_, SIGTERM);
  if (wait_exit(bound)) return status_;
  kill9();
  return status_;
}

void Process::kill9() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  // A SIGKILLed process is reaped within milliseconds; the bound only guards against a bug.
  status_ = wait_pid(pid_, Millis(10'000));
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

// ---- Node ----

Node::Node(Cluster& cluster, std::string name, fs::path home)
    : cluster_(cluster),
      name_(std::move(name)),
      home_(std::move(home)),
      log_path_(cluster.dir() / ("logs/" + name_ + ".log")) {}

Node::~Node() = default;

Outcome Node::qun(std::vector<std::string> args, std::string_view input, Millis bound) const {
  std::vector<std::string> argv{qun_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--home");
  argv.push_back(home_.string());
  return run(argv, cluster_.env(), input, bound);
}

std::string Node::ok(std::vector<std::string> args, std::string_view input, Millis bound) const {
  Outcome outcome = qun(std::move(args), input, bound);
  if (!outcome.ok()) FAIL("[" << name_ << "] command failed:\n" << outcome.describe());
  return outcome.trimmed_out();
}

Json Node::json(std::vector<std::string> args) const {
  args.push_back("--json");
  Outcome outcome = qun(std::move(args));
  if (!outcome.ok()) FAIL("[" << name_ << "] command failed:\n" << outcome.describe());
  Json value = Json::parse(outcome.out, nullptr, false);
  if (value.is_discarded())
    FAIL("[" << name_ << "] stdout is not one JSON value:\n" << outcome.describe());
  return value;
}

std::vector<Json> Node::json_lines(std::vector<std::string> args) const {
  args.push_back("--json");
  Outcome outcome = qun(std::move(args));
  if (!outcome.ok()) FAIL("[" << name_ << "] command failed:\n" << outcome.describe());
  std::vector<Json> lines;
  std::istringstream in(outcome.out);
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json value = Json::parse(line, nullptr, false);
    if (value.is_discarded())
      FAIL("[" << name_ << "] a stdout line is not JSON: " << line << "\n" << outcome.describe());
    lines.push_back(std::move(value));
  }
  return lines;
}

void Node::start(NodeOptions options) {
  if (running()) FAIL("[" << name_ << "] start: already running");
  std::vector<std::string> argv = options.wrapper;
  for (std::string a : {qun_binary(), std::string("node"), std::string("--home"), home_.string()})
    argv.push_back(std::move(a));
  if (!options.listen.empty()) {
    argv.push_back("--listen");
    argv.push_back(options.listen);
  }
  // The node is ready when it reports a bound port on the host it was asked to listen on (all
  // addresses when it was given none: the node's default).
  const std::string listen = options.listen.empty() ? "0.0.0.0:0" : options.listen;
  const std::string host = listen.substr(0, listen.rfind(':') + 1);
  for (const auto& peer : options.peers) {
    argv.push_back("--peer");
    argv.push_back(peer);
  }
  if (options.relay) argv.push_back("--relay");
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  ++starts_;
  {
    std::ofstream log(log_path_, std::ios::app);
    log << "==== start #" << starts_ << ": " << join_args(argv) << "\n";
  }
  try {
    process_ = std::make_unique<Process>(Process::spawn(argv, cluster_.env(), log_path_));
  } catch (const std::exception& e) {
    FAIL("[" << name_ << "] cannot start qun node: " << e.what());
  }
  id_.clear();
  address_.clear();
  Outcome last;
  wait_until(
      [&] {
        if (!process_->running())
          FAIL("[" << name_ << "] qun node exited during start-up with "
                   << describe_status(*process_->status()) << "; log:\n"
                   << tail(log(), 8000));
        last = qun({"id", "--json"}, {}, Millis(5'000));
        if (!last.ok()) return false;
        Json id = Json::parse(last.out, nullptr, false);
        if (!id.is_object() || !id.contains("listen") || !id["listen"].is_array()) return false;
        for (const auto& address : id["listen"]) {
          if (!address.is_string()) continue;
          std::string a = address.get<std::string>();
          if (a.rfind(host, 0) == 0 && a != host + "0") {
            address_ = a;
            id_ = id.value("id", "");
            return true;
          }
        }
        return false;
      },
      node_ready_bound, "[" + name_ + "] qun node answers `qun id --json` with a bound port");
  INFO("[" << name_ << "] node " << id_ << " on " << address_);
}

std::optional<int> Node::stop() {
  if (!process_) return std::nullopt;
  return process_->stop();
}

void Node::kill9() {
  if (process_) process_->kill9();
}

bool Node::running() { return process_ && process_->running(); }

std::string Node::log() const { return read_file(log_path_); }

// ---- Cluster ----

Cluster::Cluster() {
  std::string pattern = (temp_root() / "qun-it-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  fs::create_directories(dir_ / "logs");
  fs::create_directories(dir_ / "xdg");
  // Nodes read no config file of the person running the tests (XDG_CONFIG_HOME), and show no
  // desktop notification on their screen (no DISPLAY: notify.command defaults to none).
  env_ = child_env({"XDG_DATA_HOME=" + (dir_ / "xdg").string(),
                    "XDG_CONFIG_HOME=" + (dir_ / "xdg-config").string(), "DISPLAY=",
                    "WAYLAND_DISPLAY="});
}

Cluster::~Cluster() {
  // Stop in reverse order of creation; every node is reaped before the directory goes. A node
  // still running must stop cleanly on SIGTERM (exit 0 within stop_bound): a crash, a hang or a
  // sanitizer report at shutdown fails the test. Not while unwinding: the test already failed.
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    Node& node = **it;
    const bool was_running = node.running();
    auto status = node.stop();
    if (was_running && status && !exited_cleanly(*status) && std::uncaught_exceptions() == 0)
      FAIL_CHECK("[" << node.name()
                     << "] qun node did not stop cleanly on SIGTERM: " << describe_status(*status));
  }
  if (current_test_failed()) dump_logs();
  if (std::getenv("QUN_KEEP_TEST_DIRS") != nullptr) {
    std::cerr << "integration: kept test directory " << dir_ << "\n";
    return;
  }
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

Node& Cluster::add_uninitialised(const std::string& name) {
  fs::path home = dir_ / name;
  fs::create_directories(home);
  fs::permissions(home, fs::perms::owner_all);
  nodes_.push_back(std::make_unique<Node>(*this, name, home));
  return *nodes_.back();
}

Node& Cluster::add(const std::string& name) {
  Node& node = add_uninitialised(name);
  node.ok({"init", "--name", name});
  return node;
}

fs::path Cluster::make_dir(const std::string& name) {
  fs::path path = dir_ / name;
  fs::create_directories(path);
  return path;
}

Outcome Cluster::qun_raw(std::vector<std::string> args, std::string_view input,
                         Millis bound) const {
  std::vector<std::string> argv{qun_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, env_, input, bound);
}

void Cluster::dump_logs() const {
  for (const auto& node : nodes_) {
    std::cerr << "----- log of " << node->name() << " (" << node->log_path() << ") -----\n"
              << tail(node->log(), 32'000) << "----- end of " << node->name() << " -----\n";
  }
}

// ---- helpers ----

void wait_until(const std::function<bool()>& predicate, Millis bound, std::string_view what) {
  const auto deadline = Clock::now() + bound;
  for (;;) {
    const bool last = Clock::now() >= deadline;
    if (predicate()) return;
    if (last) FAIL("timed out after " << bound.count() << " ms waiting until " << what);
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    std::this_thread::sleep_for(std::clamp(left, Millis(0), poll_interval));
  }
}

std::string file_contents(const fs::path& path) { return read_file(path); }

bool current_test_failed() { return g_test_failed || std::uncaught_exceptions() > 0; }

std::vector<Json> parse_json_lines(std::string_view text) {
  std::vector<Json> lines;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    lines.push_back(Json::parse(line, nullptr, false));
  }
  return lines;
}

std::vector<fs::path> files_containing(const fs::path& dir, std::string_view needle) {
  std::vector<fs::path> found;
  if (needle.empty()) return found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    // Chunks overlap by needle.size() - 1 bytes so a match across a boundary is seen.
    std::string window;
    std::vector<char> chunk(1 << 20);
    bool hit = false;
    while (!hit && in) {
      in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      window.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
      hit = window.find(needle) != std::string::npos;
      if (window.size() >= needle.size()) window.erase(0, window.size() - (needle.size() - 1));
    }
    if (hit) found.push_back(entry.path());
  }
  return found;
}

std::vector<std::string> texts(const std::vector<Json>& log_lines) {
  std::vector<std::string> result;
  for (const auto& line : log_lines)
    if (line.is_object() && line.contains("text") && line["text"].is_string())
      result.push_back(line["text"].get<std::string>());
  return result;
}

std::vector<std::string> ids(const std::vector<Json>& log_lines) {
  std::vector<std::string> result;
  for (const auto& line : log_lines)
    if (line.is_object() && line.contains("id") && line["id"].is_string())
      result.push_back(line["id"].get<std::string>());
  return result;
}

bool has_text(const std::vector<Json>& log_lines, std::string_view text) {
  auto all = texts(log_lines);
  return std::find(all.begin(), all.end(), text) != all.end();
}

std::string text_of(const Json& line) {
  if (line.is_object() && line.contains("text") && line["text"].is_string())
    return line["text"].get<std::string>();
  return {};
}

std::string random_hex(std::size_t bytes) {
  static std::random_device device;
  static const char digits[] = "0123456789abcdef";
  std::string result;
  for (std::size_t i = 0; i < bytes; ++i) {
    auto byte = static_cast<unsigned>(device()) & 0xff;
    result += digits[byte >> 4];
    result += digits[byte & 0xf];
  }
  return result;
}

// ---- community helpers ----

namespace {
bool is_hex_token(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}
}  // namespace

NodeOptions relay_for(const Node& admin) {
  NodeOptions relay = NodeOptions::as_relay();
  relay.extra_args = {"--relay-allow", admin.id()};
  return relay;
}

AliceBobRelay start_alice_bob_relay(Cluster& cluster) {
  Node& r = cluster.add("relay");
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  r.start(relay_for(a));
  b.start(NodeOptions::with_peers({a.address()}));
  return {r, a, b};
}

std::string create_group(const Node& admin, const std::string& name) {
  std::string id = admin.ok({"group", "create", name});
  INFO("`qun group create` must print only the group id; printed: " << id);
  REQUIRE(is_hex_token(id));
  return id;
}

std::string invite_and_join(const Node& inviter, const Node& joiner, const std::string& group,
                            std::vector<std::string> invite_args) {
  std::vector<std::string> args{"invite", group};
  args.insert(args.end(), invite_args.begin(), invite_args.end());
  std::string code = inviter.ok(args);
  INFO("`qun invite` must print only the code; printed: " << code);
  REQUIRE(!code.empty());
  REQUIRE(code.find_first_of(" \t\n") == std::string::npos);
  std::string joined = joiner.ok({"join", code});
  INFO("`qun join` must print only the group id; printed: " << joined);
  REQUIRE(is_hex_token(joined));
  return joined;
}

std::vector<Json> log_of(const Node& node, const std::string& group) {
  return node.json_lines({"log", group});
}

void wait_for_posts(const Node& node, const std::string& group,
                    const std::vector<std::string>& wanted, Millis bound) {
  std::string what = "[" + node.name() + "] has the posts";
  for (const auto& w : wanted) what += " '" + w + "'";
  wait_until(
      [&] {
        auto log = log_of(node, group);
        return std::all_of(wanted.begin(), wanted.end(),
                           [&](const std::string& w) { return has_text(log, w); });
      },
      bound, what);
}

bool holds_event(const Node& node, const std::string& group, const std::string& id) {
  for (const auto& line : log_of(node, group))
    if (line.value("id", std::string()) == id) return true;
  return false;
}

std::int64_t events_held(const Node& node, const std::string& group) {
  Json g = status_of_group(node, group);
  if (!g.is_object() || !g.contains("events") || !g["events"].is_number_integer()) return -1;
  return g["events"].get<std::int64_t>();
}

Json status_of_group(const Node& node, const std::string& group_id) {
  Json status = node.json({"status"});
  if (status.contains("groups") && status["groups"].is_array())
    for (const auto& g : status["groups"])
      if (g.is_object() && g.value("id", "") == group_id) return g;
  return Json();
}

Json group_entry(const Node& node, const std::string& group_id) {
  for (const auto& g : node.json({"group", "list"}))
    if (g.value("id", "") == group_id) return g;
  return Json();
}

Trio start_trio(Cluster& cluster, const std::string& group_name) {
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  Node& c = cluster.add("carol");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  c.start(NodeOptions::with_peers({a.address(), b.address()}));
  const std::string group = create_group(a, group_name);
  REQUIRE(invite_and_join(a, b, group) == group);
  REQUIRE(invite_and_join(a, c, group) == group);
  return Trio{a, b, c, group};
}

// ---- Terminals -----------------------------------------------------------------------------

bool tmux_available() { return ::access(tmux_path, X_OK) == 0; }

Tmux::Tmux(Cluster& cluster) : socket_(cluster.dir() / "tmux.sock") {
  env_ = cluster.env();
  std::erase_if(env_, [](const std::string& e) {
    return e.rfind("LANG=", 0) == 0 || e.rfind("LC_", 0) == 0 || e.rfind("TMUX", 0) == 0;
  });
  env_.push_back("LANG=C.UTF-8");
  server_ = Process::spawn({tmux_path, "-S", socket_.string(), "-D", "-f", "/dev/null"}, env_,
                           cluster.dir() / "logs" / "tmux.log");
  wait_until([&] { return fs::exists(socket_); }, command_bound, "the tmux server is up");
}

Tmux::~Tmux() {
  (void)tmux({"kill-server"});
  server_.stop();
}

Outcome Tmux::tmux(std::vector<std::string> args) const {
  args.insert(args.begin(), {tmux_path, "-S", socket_.string()});
  return run(args, env_);
}

void Tmux::must(std::vector<std::string> args) const {
  Outcome o = tmux(std::move(args));
  INFO(o.describe());
  REQUIRE(o.ok());
}

void Tmux::start(const std::string& session, int cols, int rows,
                 std::vector<std::string> argv) const {
  std::vector<std::string> args{
      "new-session", "-d", "-s", session, "-x", std::to_string(cols), "-y", std::to_string(rows)};
  args.insert(args.end(), argv.begin(), argv.end());
  must(std::move(args));
}

std::string Tmux::screen(const std::string& session, bool joined) const {
  std::vector<std::string> args{"capture-pane", "-p", "-t", session};
  if (joined) args.insert(args.begin() + 2, "-J");
  return tmux(args).out;
}

std::vector<std::string> Tmux::lines(const std::string& session) const {
  std::vector<std::string> out;
  std::istringstream in(screen(session));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void Tmux::type(const std::string& session, const std::string& text) const {
  must({"send-keys", "-t", session, "-l", text});
}

void Tmux::key(const std::string& session, const std::string& key) const {
  must({"send-keys", "-t", session, key});
}

void Tmux::raw(const std::string& session, std::string_view bytes) const {
  std::vector<std::string> args{"send-keys", "-t", session, "-H"};
  static const char* hex = "0123456789abcdef";
  for (unsigned char c : bytes) args.push_back({hex[c >> 4], hex[c & 15]});
  must(std::move(args));
}

void Tmux::wait_for(const std::string& session, const std::string& text, Millis bound) const {
  wait_until([&] { return screen(session).find(text) != std::string::npos; }, bound,
             session + "'s screen shows \"" + text + "\"");
}

void Tmux::wait_for_line(const std::string& session,
                         const std::function<bool(const std::string&)>& p,
                         const std::string& what) const {
  wait_until(
      [&] {
        for (const auto& line : lines(session))
          if (p(line)) return true;
        return false;
      },
      propagate_bound, session + "'s screen has " + what);
}

// ---- HTTP on loopback ---------------------------------------------------------------------

std::string http_get(const std::string& address, const std::string& path) {
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
        reply.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return reply;
}

double metric_sample(const std::string& scrape, const std::string& series) {
  std::istringstream in(scrape);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

}  // namespace qun::integration
