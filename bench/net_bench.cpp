// net_bench: the overlay over real `qun node` processes on loopback, running the workload of the
// js-libp2p gossipsub reference harness (../shared/peers/gossipsub, bench.mjs) so that the two
// can be compared side by side on the same machine.
//
//   net_bench [--nodes N] [--messages M] [--size B] [--rate R] [--degree D] [--seed S]
//             [--warmup S] [--idle S] [--drain S] [--deadline S] [--qun PATH]
//             [--node-arg ARG]... [--json] [--peer-results DIR] [--tox-results DIR]
//             [--keep] [--verbose]
//             [--groups G]
//
// What it does, in the harness's order:
//  1. N homes in a fresh temporary folder, `qun init --home H --name nK` each.
//  2. The harness's seeded topology (its mulberry32 generator, bit for bit, so one seed gives the
//     same graph and the same publishers in both): each node picks D distinct random others, the
//     union of those edges is made connected, and each edge is dialled by the node that picked
//     it, here as `--peer` on its `qun node` command line. Listening ports are chosen before
//     start (below the kernel's ephemeral range, so no outgoing connection can take one first).
//  3. Node 0 creates a group and an invite; every other node joins with `qun join`.
//     With --groups G > 1, node 0 then creates G - 1 more groups and every node joins each of
//     them too, so that the idle window measures a node in G groups (issue 13: one node in 100
//     groups); the posts still go to the first group.
//  4. Each node's control socket (net/control.h) is subscribed; the warm-up runs, then an idle
//     window measures background traffic, then M posts of B bytes of text go out at R posts/s
//     from publishers picked at random, each post's text carrying its index and the publish time
//     (CLOCK_MONOTONIC microseconds, read right before the request is written). Deliveries are
//     the subscription's "message" events; latency is the event's received_us minus that time,
//     both CLOCK_MONOTONIC on this machine. Then up to --drain seconds for the last deliveries.
//  5. Reported (same field names as the harness's results/*.json): delivery ratio over distinct
//     (message, receiver) pairs, the publisher not counted; latency p50/p90/p99/max; time to the
//     last receiver per message; TCP bytes written by all nodes (the node's own transport
//     counters from `status`) from the end of the idle window to the end of the drain, per
//     payload byte delivered, gross and net of the idle rate; CPU seconds per node in that window
//     (utime+stime from /proc/PID/stat); peak RSS per node (VmHWM from /proc/PID/status).
//
// Every child is started by this process and only those are ever signalled, by pid. Children
// die with this process (PR_SET_PDEATHSIG), SIGINT/SIGTERM/SIGHUP kill them all, and a hard
// deadline (--deadline, an alarm) does the same. Benchmarks never fail CI: the exit status is 1
// only when the bench cannot run at all (bad flags, no qun binary, no node came up), 2 at the
// deadline, 130 on SIGINT. Misbehaving nodes are reported under "problems", not failed.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli/control_client.h"

#ifndef QUN_BINARY_PATH
#define QUN_BINARY_PATH "qun"
#endif

namespace qun {
namespace {

using Json = control::Json;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Limits. The defaults are the harness's (bench.mjs parseArgs), so that a run with no flags is the
// harness's default run.

// Children this process may have at once: N nodes plus the short commands run beside them.
constexpr std::size_t children_max = 4096;
// Nodes: the harness goes to 100; the limit leaves room and bounds the fd and port use.
constexpr std::size_t nodes_max = 1000;
// Groups every node is in with --groups: a node replicates at most 1,024 (the tags of one hello,
// wire_limits::groups_max); the bench's own target is 100.
constexpr std::size_t groups_max = 1024;
// Short commands (init, group create, invite, join) run this many at once: the machine has two
// cores, and the harness dials 4 at a time per worker for the same reason.
constexpr std::size_t command_concurrency = 4;
// A short command that has not finished in this time is killed and reported.
constexpr int command_timeout_ms = 60'000;
// How long a node may take to open its control socket after start.
constexpr int node_ready_timeout_ms = 30'000;
// A `status` round over all nodes must finish in this time.
constexpr int snapshot_timeout_ms = 15'000;
// After the warm-up, up to this many more seconds while some node does not see every member or
// is not synced (the harness extends its warm-up by up to 10 s while any mesh is empty).
constexpr int warmup_extra_s = 10;
// After the drain, trailing acknowledgements and announcements flush before the last byte
// snapshot (the harness waits 300 ms too).
constexpr int settle_ms = 300;
// The first post goes out this long after the schedule is made (the harness: 500 ms).
constexpr std::int64_t schedule_lead_us = 500'000;
// On stop, nodes get SIGTERM and this long to flush and exit before SIGKILL.
constexpr int stop_grace_ms = 5'000;
// The post text starts with "i=<index> t=<monotonic us> ", at most this long.
constexpr std::size_t text_header_bytes_max = 40;
// Lines of a failed node's log quoted in a problem report.
constexpr std::size_t log_tail_lines = 6;

// ---------------------------------------------------------------------------------------------
// Children: a registry readable from signal handlers, so that every exit path kills them all.

volatile sig_atomic_t g_child_pids[children_max];  // 0 = free slot
const char* g_temp_dir_for_signal = nullptr;       // set once, before any child starts
bool g_keep_temp_dir = false;                      // --keep

void register_child(pid_t pid) {
  for (auto& slot : g_child_pids) {
    if (slot == 0) {
      slot = pid;
      return;
    }
  }
  // More children than slots is a bug in this file (nodes_max + concurrency << children_max).
  kill(pid, SIGKILL);
  std::abort();
}

void unregister_child(pid_t pid) {
  for (auto& slot : g_child_pids) {
    if (slot == pid) slot = 0;
  }
}

void kill_all_children() {
  for (auto& slot : g_child_pids) {
    const pid_t pid = slot;
    if (pid > 0) kill(pid, SIGKILL);
  }
}

void write_stderr(const char* s) {
  const ssize_t n = write(STDERR_FILENO, s, std::strlen(s));
  (void)n;
}

// Async-signal-safe: kill, waitpid, fork, execv, write and _exit only.
extern "C" void on_fatal_signal(int sig) {
  kill_all_children();
  for (auto& slot : g_child_pids) {
    const pid_t pid = slot;
    if (pid > 0) waitpid(pid, nullptr, 0);
  }
  write_stderr(sig == SIGALRM ? "net_bench: hard deadline reached; killed every node\n"
                              : "net_bench: interrupted; killed every node\n");
  if (g_temp_dir_for_signal != nullptr && !g_keep_temp_dir) {
    // Every node is reaped, so nothing writes there any more.
    const pid_t rm = fork();
    if (rm == 0) {
      const char* const args[] = {"/bin/rm", "-rf", g_temp_dir_for_signal, nullptr};
      execv(args[0], const_cast<char* const*>(args));
      _exit(127);
    }
    if (rm > 0) waitpid(rm, nullptr, 0);
  } else if (g_temp_dir_for_signal != nullptr) {
    write_stderr("net_bench: temporary homes left in ");
    write_stderr(g_temp_dir_for_signal);
    write_stderr("\n");
  }
  _exit(sig == SIGALRM ? 2 : 128 + sig);
}

std::int64_t now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

std::int64_t start_us = now_us();

void log_progress(const std::string& what) {
  std::fprintf(stderr, "[net_bench +%.1fs] %s\n", static_cast<double>(now_us() - start_us) / 1e6,
               what.c_str());
}

// A failure that ends the run once nodes exist: main stops them and removes the homes first.
struct Fatal {
  std::string what;
};

[[noreturn]] void die(const std::string& what) {
  kill_all_children();
  std::fprintf(stderr, "net_bench: %s\n", what.c_str());
  std::exit(1);
}

// Forks and execs argv with stdin from /dev/null, stdout and stderr to the given fds (-1: to
// /dev/null), in the folder cwd (empty: ours; a node runs in its home, so that a core dump, where
// the system writes them to the working folder, lands beside its log). The child dies with us.
// Returns the pid, registered.
pid_t spawn(const std::vector<std::string>& argv, int out_fd, int err_fd,
            const std::string& cwd = "") {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) die(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    // Undo our handlers and mask for the child.
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    const int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, STDIN_FILENO);
    dup2(out_fd >= 0 ? out_fd : null_fd, STDOUT_FILENO);
    dup2(err_fd >= 0 ? err_fd : null_fd, STDERR_FILENO);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    execv(args[0], args.data());
    const char msg[] = "net_bench: exec of the qun binary failed\n";
    const ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    _exit(127);
  }
  register_child(pid);
  return pid;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return std::string("signal ") + strsignal(WTERMSIG(status)) +
           (WCOREDUMP(status) ? " (core dumped)" : "");
  }
  return "status " + std::to_string(status);
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  return s.substr(b);
}

std::string last_lines(const std::string& text, std::size_t count) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (std::size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); ++i) {
    out += "    " + lines[i] + "\n";
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A short command: its output and how it ended.
struct CommandResult {
  std::vector<std::string> argv;
  bool timed_out = false;
  int status = 0;
  std::string out, err;
  bool ok() const { return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string describe() const {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return "`" + cmd + "` " + (timed_out ? "timed out" : describe_status(status)) +
           (trim(err).empty() ? "" : ", stderr: " + trim(err)) +
           (trim(out).empty() ? "" : ", stdout: " + trim(out));
  }
};

// Runs the commands, `concurrency` at a time, each bounded by timeout_ms; results in order.
std::vector<CommandResult> run_commands(const std::vector<std::vector<std::string>>& commands,
                                        std::size_t concurrency, int timeout_ms) {
  struct Running {
    std::size_t index;
    pid_t pid;
    int out_fd, err_fd;
    std::int64_t deadline_us;
  };
  std::vector<CommandResult> results(commands.size());
  std::vector<Running> running;
  std::size_t next = 0;
  while (next < commands.size() || !running.empty()) {
    while (next < commands.size() && running.size() < concurrency) {
      int out_pipe[2], err_pipe[2];
      if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) die("pipe failed");
      const pid_t pid = spawn(commands[next], out_pipe[1], err_pipe[1]);
      close(out_pipe[1]);
      close(err_pipe[1]);
      results[next].argv = commands[next];
      running.push_back(
          {next, pid, out_pipe[0], err_pipe[0], now_us() + std::int64_t{timeout_ms} * 1000});
      ++next;
    }
    std::vector<pollfd> fds;
    for (const auto& r : running) {
      fds.push_back({r.out_fd, POLLIN, 0});
      fds.push_back({r.err_fd, POLLIN, 0});
    }
    (void)poll(fds.data(), fds.size(), 50);
    for (std::size_t k = 0; k < running.size();) {
      Running& r = running[k];
      CommandResult& res = results[r.index];
      char buf[4096];
      for (int* fd : {&r.out_fd, &r.err_fd}) {
        if (*fd < 0) continue;
        pollfd p{*fd, POLLIN, 0};
        while (poll(&p, 1, 0) > 0) {
          const ssize_t n = read(*fd, buf, sizeof buf);
          if (n <= 0) {
            close(*fd);
            *fd = -1;
            break;
          }
          (fd == &r.out_fd ? res.out : res.err).append(buf, static_cast<std::size_t>(n));
        }
      }
      int status = 0;
      pid_t w = 0;
      if (r.out_fd < 0 && r.err_fd < 0) {
        w = waitpid(r.pid, &status, 0);
      } else if (now_us() > r.deadline_us) {
        kill(r.pid, SIGKILL);
        w = waitpid(r.pid, &status, 0);
        res.timed_out = true;
      } else {
        w = waitpid(r.pid, &status, WNOHANG);
        // Exited with its pipes still open (inherited by a grandchild): take what is there.
      }
      if (w == r.pid) {
        unregister_child(r.pid);
        res.status = status;
        if (r.out_fd >= 0) close(r.out_fd);
        if (r.err_fd >= 0) close(r.err_fd);
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(k));
        continue;
      }
      ++k;
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// The harness's generator and topology, bit for bit (bench.mjs: mulberry32, the edge loop, the
// union-find that joins components), so that a seed gives the same graph and publishers.

class Mulberry32 {
 public:
  explicit Mulberry32(std::uint32_t seed) : t_(seed) {}
  double next() {
    t_ += 0x6D2B79F5u;
    std::uint32_t r = (t_ ^ (t_ >> 15)) * (1u | t_);
    r = (r + (r ^ (r >> 7)) * (61u | r)) ^ r;
    return static_cast<double>(r ^ (r >> 14)) / 4294967296.0;
  }
  std::size_t below(std::size_t n) {
    return static_cast<std::size_t>(std::floor(next() * static_cast<double>(n)));
  }

 private:
  std::uint32_t t_;
};

struct Edge {
  std::size_t a, b;    // as the harness keys it: a < b, except edges added for connectivity
  std::size_t dialer;  // the node that picked the other
  std::size_t target() const { return dialer == a ? b : a; }
};

struct Topology {
  std::vector<Edge> edges;  // in the harness's insertion order
  std::size_t added_for_connectivity = 0;
  std::vector<std::size_t> degree;
};

Topology make_topology(Mulberry32& rng, std::size_t n, std::size_t want_degree) {
  Topology t;
  std::set<std::pair<std::size_t, std::size_t>> seen;
  for (std::size_t i = 0; i < n; ++i) {
    // A JS Set keeps insertion order: so does this vector.
    std::vector<std::size_t> picks;
    const std::size_t want = std::min(want_degree, n - 1);
    while (picks.size() < want) {
      const std::size_t j = rng.below(n);
      if (j != i && std::find(picks.begin(), picks.end(), j) == picks.end()) picks.push_back(j);
    }
    for (std::size_t j : picks) {
      const auto key = std::minmax(i, j);
      if (seen.insert(key).second) t.edges.push_back({key.first, key.second, i});
    }
  }
  std::vector<std::size_t> parent(n);
  for (std::size_t i = 0; i < n; ++i) parent[i] = i;
  // The harness compresses paths in its find; that changes no root, so a plain walk gives the
  // same roots and so the same edges added for connectivity.
  auto root = [&](std::size_t x) {
    while (parent[x] != x) x = parent[x];
    return x;
  };
  for (const Edge& e : t.edges) parent[root(e.a)] = root(e.b);
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t r = root(i);
    if (std::find(roots.begin(), roots.end(), r) == roots.end()) roots.push_back(r);
  }
  for (std::size_t k = 1; k < roots.size(); ++k) {
    t.edges.push_back({roots[0], roots[k], roots[0]});
    ++t.added_for_connectivity;
  }
  t.degree.assign(n, 0);
  for (const Edge& e : t.edges) ++t.degree[e.a], ++t.degree[e.b];
  return t;
}

// ---------------------------------------------------------------------------------------------
// /proc readers.

// utime + stime of a process, in seconds; nullopt once it is gone.
std::optional<double> cpu_seconds(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return std::nullopt;
  std::istringstream in(stat.substr(close_paren + 2));
  // Fields from 3 (state) on; utime and stime are fields 14 and 15.
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int k = 3; k <= 15 && in >> field; ++k) {
    if (k == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (k == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return static_cast<double>(utime + stime) / ticks;
}

// A "Name:   value kB" line of /proc/PID/status, in KiB.
std::optional<double> status_kib(pid_t pid, const std::string& name) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + ":", 0) == 0) {
      return std::strtod(line.c_str() + name.size() + 1, nullptr);
    }
  }
  return std::nullopt;
}

// Loopback ports for the nodes, below the ephemeral range (so that no outgoing connection of an
// earlier node can take one as its source port before its owner listens). Each is probed by
// binding it; all stay bound until every one is found, so they are distinct.
std::vector<std::uint16_t> pick_ports(std::size_t count) {
  unsigned low = 32768;
  {
    std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
    unsigned lo = 0, hi = 0;
    if (in >> lo >> hi && lo > 2048) low = lo;
  }
  const unsigned first = 10'000;
  if (low <= first + count) die("the ephemeral port range leaves no room for fixed ports");
  // Start at a place that depends on our pid, so two benches at once rarely probe the same.
  const unsigned span = low - first;
  unsigned candidate = first + static_cast<unsigned>(getpid()) % span;
  std::vector<int> held;
  std::vector<std::uint16_t> ports;
  for (unsigned tries = 0; ports.size() < count && tries < span; ++tries) {
    const unsigned port = first + (candidate - first + tries) % span;
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      held.push_back(fd);
      ports.push_back(static_cast<std::uint16_t>(port));
    } else {
      close(fd);
    }
  }
  for (int fd : held) close(fd);
  if (ports.size() < count) die("could not find enough free loopback ports");
  return ports;
}

// ---------------------------------------------------------------------------------------------
// Statistics, as the harness computes them.

std::optional<double> pct(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return std::nullopt;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size())) - 1;
  const auto i =
      static_cast<std::size_t>(std::clamp(rank, 0.0, static_cast<double>(sorted.size() - 1)));
  return sorted[i];
}

double mean(const std::vector<double>& xs) {
  double s = 0;
  for (double x : xs) s += x;
  return xs.empty() ? 0 : s / static_cast<double>(xs.size());
}

Json rounded(std::optional<double> x, int digits) {
  if (!x || !std::isfinite(*x)) return nullptr;
  const double scale = std::pow(10.0, digits);
  return std::round(*x * scale) / scale;
}

// A figure for a table: "-" for null, 3 significant digits below 100.
std::string cell(const Json& v) {
  if (v.is_null()) return "-";
  if (v.is_number_float()) {
    char buf[64];
    const double d = v.get<double>();
    std::snprintf(buf, sizeof buf, std::fabs(d) >= 1000 ? "%.0f" : "%.3g", d);
    if (std::fabs(d) < 1000 && std::fabs(d) >= 100) std::snprintf(buf, sizeof buf, "%.1f", d);
    return buf;
  }
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// ---------------------------------------------------------------------------------------------
// Options.

struct Options {
  std::size_t nodes = 20;
  std::size_t messages = 200;
  std::size_t size = 200;
  double rate = 50;
  std::size_t degree = 6;
  std::uint32_t seed = 1;
  double warmup_s = 6;
  double idle_s = 3;
  double drain_s = 10;
  unsigned deadline_s = 300;
  std::string qun = QUN_BINARY_PATH;
  std::vector<std::string> node_args;
  bool json = false;
  std::string peer_results;
  std::string tox_results;
  bool keep = false;
  bool verbose = false;
  bool dry_run = false;
  std::size_t groups = 1;
};

void usage() {
  std::printf(
      "usage: net_bench [--nodes N (20)] [--messages M (200)] [--size B (200)] [--rate R (50)]\n"
      "                 [--degree D (6)] [--seed S (1)] [--warmup S (6)] [--idle S (3)]\n"
      "                 [--drain S (10)] [--deadline S (300)] [--qun PATH] [--node-arg ARG]...\n"
      "                 [--json] [--peer-results DIR] [--tox-results DIR] [--keep] [--verbose] [--dry-run]\n"
      "                 [--groups G (1)]\n"
      "Runs N `qun node` processes on 127.0.0.1 with the workload of the gossipsub harness\n"
      "(shared/peers/gossipsub) and reports delivery, latency, bytes, CPU and RSS per node.\n"
      "--peer-results DIR puts the harness's matching results/*.json beside it, with ratios.\n"
      "--tox-results DIR does the same with the Tox NGC harness's (shared/peers/toxcore).\n"
      "--dry-run prints the topology and the publishers as JSON and starts nothing.\n"
      "--groups G puts every node in G groups (posts go to the first); the idle window then\n"
      "measures what G groups cost an idle node (CPU, bytes, connections, RSS).\n"
      "qun binary: %s\n",
      QUN_BINARY_PATH);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    auto number = [&]() -> double {
      const std::string v = value();
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !std::isfinite(d) || d < 0) {
        die(a + " needs a non-negative number, got " + v);
      }
      return d;
    };
    if (a == "--nodes")
      o.nodes = static_cast<std::size_t>(number());
    else if (a == "--messages")
      o.messages = static_cast<std::size_t>(number());
    else if (a == "--size")
      o.size = static_cast<std::size_t>(number());
    else if (a == "--rate")
      o.rate = number();
    else if (a == "--degree")
      o.degree = static_cast<std::size_t>(number());
    else if (a == "--seed")
      o.seed = static_cast<std::uint32_t>(number());
    else if (a == "--warmup")
      o.warmup_s = number();
    else if (a == "--idle")
      o.idle_s = number();
    else if (a == "--drain")
      o.drain_s = number();
    else if (a == "--deadline")
      o.deadline_s = static_cast<unsigned>(number());
    else if (a == "--qun")
      o.qun = value();
    else if (a == "--node-arg")
      o.node_args.push_back(value());
    else if (a == "--json")
      o.json = true;
    else if (a == "--peer-results")
      o.peer_results = value();
    else if (a == "--tox-results")
      o.tox_results = value();
    else if (a == "--keep")
      o.keep = true;
    else if (a == "--verbose")
      o.verbose = true;
    else if (a == "--dry-run")
      o.dry_run = true;
    else if (a == "--groups")
      o.groups = static_cast<std::size_t>(number());
    else if (a == "--help" || a == "-h")
      usage(), std::exit(0);
    else
      die("unknown option " + a + " (see --help)");
  }
  if (o.nodes < 2 || o.nodes > nodes_max) die("--nodes must be 2.." + std::to_string(nodes_max));
  if (o.messages < 1) die("--messages must be at least 1");
  if (o.rate <= 0) die("--rate must be positive");
  if (o.degree < 1) die("--degree must be at least 1");
  if (o.size < text_header_bytes_max) {
    die("--size must be at least " + std::to_string(text_header_bytes_max) +
        " (the text carries the index and the publish time)");
  }
  if (o.deadline_s < 10) die("--deadline must be at least 10 seconds");
  if (o.groups < 1 || o.groups > groups_max) die("--groups must be 1.." + std::to_string(groups_max));
  return o;
}

// The post text: "i=<index> t=<publish us> " padded with 'x' to exactly `size` bytes (UTF-8).
std::string post_text(std::size_t index, std::int64_t publish_us, std::size_t size) {
  std::string s = "i=" + std::to_string(index) + " t=" + std::to_string(publish_us) + " ";
  s.resize(size, 'x');
  return s;
}

// The index from a post text, if it is one of ours.
std::optional<std::size_t> text_index(const std::string& text) {
  if (text.rfind("i=", 0) != 0) return std::nullopt;
  char* end = nullptr;
  const unsigned long long i = std::strtoull(text.c_str() + 2, &end, 10);
  if (end == text.c_str() + 2 || *end != ' ') return std::nullopt;
  return static_cast<std::size_t>(i);
}

std::optional<std::int64_t> json_int(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return std::nullopt;
  const Json& v = j[key];
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) return static_cast<std::int64_t>(v.get<double>());
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The run.

struct Node {
  std::size_t index = 0;
  std::string home;
  std::uint16_t port = 0;
  pid_t pid = 0;
  bool exited = false;
  std::optional<ControlClient> client;
  bool joined = false;
  std::map<std::uint64_t, std::string> pending;  // request id -> op
  std::map<std::uint64_t, Json> responses;       // answered requests kept for their caller
};

// One byte/CPU reading of every node.
struct Snapshot {
  std::int64_t t_us = 0;
  std::vector<std::optional<std::int64_t>> written, read;
  // The overlay's own counters (status "overlay"): event copies received and duplicates.
  std::vector<std::optional<std::int64_t>> events_received, events_duplicate;
  std::vector<std::optional<double>> cpu_s;
  double self_cpu_s = 0;
};

double self_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {}
  Json run();
  void cleanup();

 private:
  void problem(const std::string& what) {
    if (problems_.size() < 50) problems_.push_back(what);
    log_progress("problem: " + what);
  }
  void check_exits();
  void pump(int timeout_ms);
  void on_message(Node& node, Json message);
  std::optional<Json> await_response(Node& node, std::uint64_t id, int timeout_ms);
  Snapshot snapshot();
  Json overlay_state();
  std::string node_log_tail(const Node& node) {
    return last_lines(read_file(node.home + "/node.log"), log_tail_lines);
  }
  std::vector<std::string> qun_cmd(const Node& node, std::vector<std::string> words) {
    std::vector<std::string> argv{o_.qun};
    argv.insert(argv.end(), words.begin(), words.end());
    argv.push_back("--home");
    argv.push_back(node.home);
    return argv;
  }

  Options o_;
  std::string temp_dir_;
  std::vector<Node> nodes_;
  std::vector<std::string> problems_;
  std::string group_;
  // Per message: publisher, publish time, and per node the latency (us) of its first delivery.
  std::vector<std::size_t> publisher_;
  std::vector<std::int64_t> publish_us_;
  std::vector<std::vector<std::int64_t>> latency_us_;  // -1: not delivered
  std::size_t delivered_ = 0;
  std::size_t published_ = 0, publish_errors_ = 0;
  std::size_t foreign_messages_ = 0, missing_received_us_ = 0, duplicate_deliveries_ = 0;
  std::size_t posts_answered_ = 0;
  bool measuring_ = false;
};

void Bench::check_exits() {
  for (Node& n : nodes_) {
    if (n.pid <= 0 || n.exited) continue;
    int status = 0;
    if (waitpid(n.pid, &status, WNOHANG) == n.pid) {
      unregister_child(n.pid);
      n.exited = true;
      n.client.reset();
      problem("node " + std::to_string(n.index) + " (pid " + std::to_string(n.pid) +
              ") exited on its own: " + describe_status(status) + "; last lines of " + n.home +
              "/node.log:\n" + node_log_tail(n));
    }
  }
}

void Bench::on_message(Node& node, Json m) {
  if (m.contains("stream")) {
    if (m["stream"] != "message") return;
    const Json& msg = m.contains("message") ? m["message"] : Json();
    if (!msg.is_object() || !msg.contains("text") || !msg["text"].is_string()) return;
    const auto i = text_index(msg["text"].get<std::string>());
    // There is one group: no need to match the stream's group id with what `group create`
    // printed (a full id, which may be printed in another form).
    if (!i || *i >= publish_us_.size() || publish_us_[*i] == 0) {
      ++foreign_messages_;
      return;
    }
    if (node.index == publisher_[*i]) return;  // the publisher does not count itself
    std::int64_t received = 0;
    if (auto r = json_int(m, "received_us")) {
      received = *r;
    } else {
      // Read late, by us: an upper bound on the node's delivery time.
      ++missing_received_us_;
      received = now_us();
    }
    std::int64_t& slot = latency_us_[*i][node.index];
    if (slot >= 0) {
      ++duplicate_deliveries_;
      return;
    }
    slot = std::max<std::int64_t>(0, received - publish_us_[*i]);
    ++delivered_;
    return;
  }
  if (!m.contains("id")) return;
  const auto id = json_int(m, "id");
  if (!id) return;
  auto p = node.pending.find(static_cast<std::uint64_t>(*id));
  if (p == node.pending.end()) return;
  const std::string op = p->second;
  node.pending.erase(p);
  if (op == "post") {
    ++posts_answered_;
    if (!m.value("ok", false)) {
      ++publish_errors_;
      if (publish_errors_ <= 3) {
        problem("post on node " + std::to_string(node.index) +
                " failed: " + m.value("error", std::string("(no error text)")));
      }
    }
    return;
  }
  node.responses[static_cast<std::uint64_t>(*id)] = std::move(m);
}

void Bench::pump(int timeout_ms) {
  std::vector<pollfd> fds;
  std::vector<Node*> owners;
  for (Node& n : nodes_) {
    if (n.client) {
      fds.push_back({n.client->fd(), POLLIN, 0});
      owners.push_back(&n);
    }
  }
  if (fds.empty()) {
    if (timeout_ms > 0) usleep(static_cast<useconds_t>(timeout_ms) * 1000);
    return;
  }
  const int r = poll(fds.data(), fds.size(), timeout_ms);
  if (r <= 0) return;
  for (std::size_t k = 0; k < fds.size(); ++k) {
    if (fds[k].revents == 0) continue;
    Node& n = *owners[k];
    auto got = n.client->read_available();
    if (!got) {
      n.client.reset();
      problem("node " + std::to_string(n.index) +
              " closed its control connection: " + got.error().message());
      continue;
    }
    for (Json& m : *got) on_message(n, std::move(m));
  }
}

std::optional<Json> Bench::await_response(Node& node, std::uint64_t id, int timeout_ms) {
  const std::int64_t deadline = now_us() + std::int64_t{timeout_ms} * 1000;
  for (;;) {
    auto it = node.responses.find(id);
    if (it != node.responses.end()) {
      Json r = std::move(it->second);
      node.responses.erase(it);
      return r;
    }
    if (!node.client || now_us() >= deadline) return std::nullopt;
    pump(static_cast<int>(std::min<std::int64_t>(50, (deadline - now_us()) / 1000 + 1)));
  }
}

Snapshot Bench::snapshot() {
  Snapshot s;
  const std::size_t n = nodes_.size();
  s.written.assign(n, std::nullopt);
  s.read.assign(n, std::nullopt);
  s.events_received.assign(n, std::nullopt);
  s.events_duplicate.assign(n, std::nullopt);
  s.cpu_s.assign(n, std::nullopt);
  const std::int64_t t0 = now_us();
  std::vector<std::optional<std::uint64_t>> ids(n);
  for (Node& node : nodes_) {
    if (!node.client) continue;
    auto id = node.client->send("status");
    if (!id) continue;
    ids[node.index] = *id;
    node.pending[*id] = "status";
  }
  for (Node& node : nodes_) {
    if (node.pid > 0 && !node.exited) s.cpu_s[node.index] = cpu_seconds(node.pid);
  }
  s.self_cpu_s = self_cpu_seconds();
  const std::int64_t deadline = now_us() + std::int64_t{snapshot_timeout_ms} * 1000;
  for (Node& node : nodes_) {
    if (!ids[node.index]) continue;
    const int left = static_cast<int>(std::max<std::int64_t>(0, (deadline - now_us()) / 1000));
    auto r = await_response(node, *ids[node.index], left);
    if (!r) {
      problem("node " + std::to_string(node.index) + " did not answer `status` in time");
      continue;
    }
    const Json& res = (*r)["result"];
    if (!r->value("ok", false) || !res.is_object() || !res.contains("transport")) {
      static bool told = false;
      if (!told) {
        told = true;
        problem("`status` of node " + std::to_string(node.index) +
                " has no \"transport\" object: " + r->dump().substr(0, 400));
      }
      continue;
    }
    s.written[node.index] = json_int(res["transport"], "bytes_written");
    s.read[node.index] = json_int(res["transport"], "bytes_read");
    if (res.contains("overlay")) {
      s.events_received[node.index] = json_int(res["overlay"], "events_received");
      s.events_duplicate[node.index] = json_int(res["overlay"], "events_duplicate");
    }
  }
  s.t_us = (t0 + now_us()) / 2;
  return s;
}

// Every node's view of the group from `status`: its active peers (the analogue of gossipsub's
// mesh), its connections, the members it knows and whether it is synced.
Json Bench::overlay_state() {
  std::vector<std::pair<Node*, std::uint64_t>> asked;
  for (Node& node : nodes_) {
    if (!node.client) continue;
    auto id = node.client->send("status");
    if (!id) continue;
    node.pending[*id] = "status";
    asked.emplace_back(&node, *id);
  }
  std::vector<double> active, conns, members;
  std::size_t synced = 0;
  const std::int64_t deadline = now_us() + std::int64_t{snapshot_timeout_ms} * 1000;
  for (auto& [node, id] : asked) {
    const int left = static_cast<int>(std::max<std::int64_t>(0, (deadline - now_us()) / 1000));
    auto r = await_response(*node, id, left);
    if (!r || !(*r)["result"].is_object()) continue;
    const Json& res = (*r)["result"];
    if (o_.verbose && node->index == 0) log_progress("node 0 status: " + res.dump());
    conns.push_back(static_cast<double>(json_int(res, "peers").value_or(0)));
    if (!res.contains("groups") || !res["groups"].is_array() || res["groups"].empty()) continue;
    const Json* found = &res["groups"][0];
    for (const Json& each : res["groups"]) {
      if (each.is_object() && each.value("id", std::string()) == group_) found = &each;
    }
    const Json& g = *found;
    active.push_back(static_cast<double>(json_int(g, "active_peers").value_or(0)));
    members.push_back(static_cast<double>(json_int(g, "members").value_or(0)));
    if (g.value("synced", false)) ++synced;
  }
  std::sort(active.begin(), active.end());
  std::sort(conns.begin(), conns.end());
  std::sort(members.begin(), members.end());
  auto first = [](const std::vector<double>& v) {
    return v.empty() ? Json(nullptr) : Json(v.front());
  };
  auto last = [](const std::vector<double>& v) {
    return v.empty() ? Json(nullptr) : Json(v.back());
  };
  const bool ready = synced == nodes_.size() && !members.empty() &&
                     members.front() >= static_cast<double>(nodes_.size()) && active.front() > 0;
  return Json{{"min", first(active)},
              {"median", pct(active, 50) ? Json(*pct(active, 50)) : Json(nullptr)},
              {"max", last(active)},
              {"connMin", first(conns)},
              {"connMedian", pct(conns, 50) ? Json(*pct(conns, 50)) : Json(nullptr)},
              {"connMax", last(conns)},
              {"membersMin", first(members)},
              {"synced", synced},
              {"ready", ready}};
}

void Bench::cleanup() {
  // Stop the nodes: SIGTERM, a grace period, then SIGKILL; only our own children, by pid.
  for (Node& n : nodes_) {
    n.client.reset();
    if (n.pid > 0 && !n.exited) kill(n.pid, SIGTERM);
  }
  const std::int64_t deadline = now_us() + std::int64_t{stop_grace_ms} * 1000;
  for (Node& n : nodes_) {
    if (n.pid <= 0 || n.exited) continue;
    int status = 0;
    while (waitpid(n.pid, &status, WNOHANG) == 0) {
      if (now_us() >= deadline) {
        kill(n.pid, SIGKILL);
        waitpid(n.pid, &status, 0);
        problem("node " + std::to_string(n.index) + " did not stop within " +
                std::to_string(stop_grace_ms) + " ms of SIGTERM; killed");
        break;
      }
      usleep(10'000);
    }
    n.exited = true;
    unregister_child(n.pid);
  }
  if (!temp_dir_.empty()) {
    if (o_.keep) {
      log_progress("homes kept in " + temp_dir_);
    } else {
      std::error_code ec;
      fs::remove_all(temp_dir_, ec);
    }
  }
}

Json Bench::run() {
  const std::size_t N = o_.nodes;
  log_progress("N=" + std::to_string(N) + " M=" + std::to_string(o_.messages) +
               " size=" + std::to_string(o_.size) + "B rate=" + std::to_string(o_.rate) +
               "/s degree=" + std::to_string(o_.degree) + " seed=" + std::to_string(o_.seed) +
               " qun=" + o_.qun);

  // Topology and publishers from one generator, in the harness's order.
  Mulberry32 rng(o_.seed);
  const Topology topo = make_topology(rng, N, o_.degree);
  publisher_.resize(o_.messages);
  for (auto& p : publisher_) p = rng.below(N);
  publish_us_.assign(o_.messages, 0);
  latency_us_.assign(o_.messages, std::vector<std::int64_t>(N, -1));
  const double mean_degree = 2.0 * static_cast<double>(topo.edges.size()) / static_cast<double>(N);
  log_progress("topology: " + std::to_string(topo.edges.size()) + " undirected edges (" +
               std::to_string(topo.added_for_connectivity) + " added for connectivity), mean " +
               "degree " + std::to_string(mean_degree));

  // Homes.
  char tmpl[] = "/tmp/qun-net-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw Fatal{std::string("mkdtemp: ") + std::strerror(errno)};
  temp_dir_ = tmpl;
  g_temp_dir_for_signal = strdup(temp_dir_.c_str());
  g_keep_temp_dir = o_.keep;
  nodes_.resize(N);
  for (std::size_t i = 0; i < N; ++i) {
    nodes_[i].index = i;
    nodes_[i].home = temp_dir_ + "/n" + std::to_string(i);
  }
  std::vector<std::vector<std::string>> inits;
  for (const Node& n : nodes_) {
    inits.push_back({o_.qun, "init", "--home", n.home, "--name", "n" + std::to_string(n.index)});
  }
  const std::int64_t setup_start = now_us();
  for (const auto& r : run_commands(inits, command_concurrency, command_timeout_ms)) {
    if (!r.ok()) throw Fatal{"init failed: " + r.describe()};
  }
  log_progress("initialised " + std::to_string(N) + " homes in " + temp_dir_);

  // Start every node, listening on its port and dialling its picks.
  const std::vector<std::uint16_t> ports = pick_ports(N);
  std::vector<std::vector<std::size_t>> dials(N);
  for (const Edge& e : topo.edges) dials[e.dialer].push_back(e.target());
  for (Node& n : nodes_) {
    n.port = ports[n.index];
    std::vector<std::string> argv{o_.qun, "node",     "--home",
                                  n.home, "--listen", "127.0.0.1:" + std::to_string(n.port)};
    for (std::size_t j : dials[n.index]) {
      argv.push_back("--peer");
      argv.push_back("127.0.0.1:" + std::to_string(ports[j]));
    }
    argv.insert(argv.end(), o_.node_args.begin(), o_.node_args.end());
    const int log_fd =
        open((n.home + "/node.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    n.pid = spawn(argv, log_fd, log_fd, n.home);
    close(log_fd);
  }
  // Ready: the control socket answers `status`.
  const std::int64_t ready_deadline = now_us() + std::int64_t{node_ready_timeout_ms} * 1000;
  for (Node& n : nodes_) {
    while (!n.client && !n.exited) {
      auto c = ControlClient::connect(n.home + "/control.sock");
      if (c) {
        auto st = c->request("status", Json::object(), 10'000);
        if (st) {
          n.client.emplace(std::move(c).value());
          break;
        }
      }
      check_exits();
      if (now_us() >= ready_deadline) {
        problem("node " + std::to_string(n.index) + " did not open its control socket within " +
                std::to_string(node_ready_timeout_ms) + " ms; last lines of its log:\n" +
                node_log_tail(n));
        break;
      }
      usleep(50'000);
    }
  }
  std::size_t ready = 0;
  for (const Node& n : nodes_) ready += n.client ? 1 : 0;
  log_progress(std::to_string(ready) + "/" + std::to_string(N) + " nodes ready");
  if (ready == 0) throw Fatal{"no node came up"};

  // The group: created on node 0, joined by every other node through one invite.
  Node& first = nodes_[0];
  if (!first.client) throw Fatal{"node 0 is not running, so there is no group to create"};
  const auto created =
      run_commands({qun_cmd(first, {"group", "create", "bench"})}, 1, command_timeout_ms)[0];
  if (!created.ok()) throw Fatal{"group create failed: " + created.describe()};
  group_ = trim(created.out);
  first.joined = true;
  // An explicit expiry, so that the code is worthless soon after the run.
  const auto invited = run_commands(
      {qun_cmd(first, {"invite", group_, "--uses", std::to_string(N), "--expires", "1h"})}, 1,
      command_timeout_ms)[0];
  if (!invited.ok()) throw Fatal{"invite failed: " + invited.describe()};
  const std::string code = trim(invited.out);
  std::vector<std::vector<std::string>> joins;
  for (std::size_t i = 1; i < N; ++i) joins.push_back(qun_cmd(nodes_[i], {"join", code}));
  const std::int64_t join_start = now_us();
  const auto joined = run_commands(joins, command_concurrency, command_timeout_ms);
  std::size_t join_failures = 0;
  for (std::size_t k = 0; k < joined.size(); ++k) {
    Node& n = nodes_[k + 1];
    if (joined[k].ok() && trim(joined[k].out) == group_) {
      n.joined = true;
    } else {
      ++join_failures;
      if (join_failures <= 3)
        problem("join on node " + std::to_string(n.index) + ": " + joined[k].describe());
    }
  }
  const double join_s = static_cast<double>(now_us() - join_start) / 1e6;
  log_progress("group " + group_.substr(0, 16) + ": " + std::to_string(N - 1 - join_failures) +
               "/" + std::to_string(N - 1) + " joins in " + std::to_string(join_s) + " s");

  // More groups, if asked: each created on node 0 and joined by every other node.
  std::size_t extra_groups = 0, extra_join_failures = 0;
  double extra_s = 0;
  if (o_.groups > 1) {
    const std::int64_t extra_start = now_us();
    for (std::size_t g = 1; g < o_.groups; ++g) {
      const std::string name = "bench" + std::to_string(g);
      const auto made =
          run_commands({qun_cmd(first, {"group", "create", name})}, 1, command_timeout_ms)[0];
      if (!made.ok()) {
        problem("group create " + name + ": " + made.describe());
        continue;
      }
      const std::string gid = trim(made.out);
      const auto inv = run_commands(
          {qun_cmd(first, {"invite", gid, "--uses", std::to_string(N), "--expires", "1h"})}, 1,
          command_timeout_ms)[0];
      if (!inv.ok()) {
        problem("invite to " + name + ": " + inv.describe());
        continue;
      }
      std::vector<std::vector<std::string>> more;
      for (std::size_t i = 1; i < N; ++i) {
        if (nodes_[i].joined) more.push_back(qun_cmd(nodes_[i], {"join", trim(inv.out)}));
      }
      for (const auto& r : run_commands(more, command_concurrency, command_timeout_ms)) {
        if (!r.ok() || trim(r.out) != gid) {
          if (++extra_join_failures <= 3) problem("join " + name + ": " + r.describe());
        }
      }
      ++extra_groups;
    }
    extra_s = static_cast<double>(now_us() - extra_start) / 1e6;
    log_progress(std::to_string(extra_groups) + " more groups, " +
                 std::to_string(extra_join_failures) + " failed joins, in " +
                 std::to_string(extra_s) + " s");
  }

  // Subscribe every node, then warm up while reading whatever streams in.
  for (Node& n : nodes_) {
    if (!n.client) continue;
    auto r = n.client->request("subscribe", Json::object(), 10'000);
    if (!r) {
      problem("subscribe on node " + std::to_string(n.index) + ": " + r.error().message());
      n.client.reset();
    }
  }
  const double setup_s = static_cast<double>(now_us() - setup_start) / 1e6;
  const std::int64_t warm_end = now_us() + static_cast<std::int64_t>(o_.warmup_s * 1e6);
  while (now_us() < warm_end) {
    pump(static_cast<int>(std::min<std::int64_t>(200, (warm_end - now_us()) / 1000 + 1)));
    check_exits();
  }
  // Like the harness (which extends its warm-up while any mesh is empty), wait up to
  // warmup_extra_s more while any node does not yet see every member or is not synced.
  Json mesh;
  for (int extra = 0;; ++extra) {
    mesh = overlay_state();
    if (mesh.value("ready", false) || extra >= warmup_extra_s) break;
    const std::int64_t until = now_us() + 1'000'000;
    while (now_us() < until) pump(100);
    check_exits();
  }
  log_progress("overlay: active peers min/median/max = " + cell(mesh["min"]) + "/" +
               cell(mesh["median"]) + "/" + cell(mesh["max"]) + "; connections min/median/max = " +
               cell(mesh["connMin"]) + "/" + cell(mesh["connMedian"]) + "/" +
               cell(mesh["connMax"]) + "; members seen min " + cell(mesh["membersMin"]) + "/" +
               std::to_string(N) + "; synced " + cell(mesh["synced"]) + "/" + std::to_string(N));

  // Idle window: background traffic with no posts.
  const Snapshot a = snapshot();
  const std::int64_t idle_end = now_us() + static_cast<std::int64_t>(o_.idle_s * 1e6);
  while (now_us() < idle_end) {
    pump(static_cast<int>(std::min<std::int64_t>(200, (idle_end - now_us()) / 1000 + 1)));
  }
  const Snapshot b = snapshot();
  check_exits();

  // Publish on schedule, reading deliveries in between.
  measuring_ = true;
  const double interval_us = 1e6 / o_.rate;
  const std::int64_t t0 = now_us() + schedule_lead_us;
  log_progress("publishing " + std::to_string(o_.messages) + " posts over " +
               std::to_string(static_cast<double>(o_.messages) * interval_us / 1e6) + " s");
  std::int64_t last_check = now_us();
  for (std::size_t i = 0; i < o_.messages;) {
    const std::int64_t due =
        t0 + static_cast<std::int64_t>(std::llround(static_cast<double>(i) * interval_us));
    const std::int64_t now = now_us();
    if (now < due) {
      pump(static_cast<int>(std::min<std::int64_t>((due - now + 999) / 1000, 50)));
      continue;
    }
    Node& p = nodes_[publisher_[i]];
    if (p.client) {
      const std::int64_t t = now_us();
      publish_us_[i] = t;
      auto id = p.client->send("post", Json{{"group", group_}, {"text", post_text(i, t, o_.size)}});
      if (id) {
        p.pending[*id] = "post";
        ++published_;
      } else {
        ++publish_errors_;
      }
    } else {
      ++publish_errors_;
    }
    ++i;
    if (now - last_check > 1'000'000) {
      check_exits();
      last_check = now;
    }
  }
  const std::size_t expected = (N - 1) * o_.messages;
  const std::int64_t drain_end = now_us() + static_cast<std::int64_t>(o_.drain_s * 1e6);
  while (now_us() < drain_end && delivered_ < expected) {
    pump(static_cast<int>(std::min<std::int64_t>(100, (drain_end - now_us()) / 1000 + 1)));
    if (now_us() - last_check > 1'000'000) {
      check_exits();
      last_check = now_us();
    }
  }
  const std::int64_t settle_end = now_us() + settle_ms * 1000;
  while (now_us() < settle_end) pump(static_cast<int>((settle_end - now_us()) / 1000 + 1));
  check_exits();
  const Snapshot c = snapshot();
  log_progress("deliveries: " + std::to_string(delivered_) + "/" + std::to_string(expected));

  // Peak RSS and lifetime CPU, read before the nodes stop.
  std::vector<double> rss_mib(N, 0), cpu_total(N, 0);
  for (Node& n : nodes_) {
    if (n.exited || n.pid <= 0) continue;
    rss_mib[n.index] = status_kib(n.pid, "VmHWM").value_or(0) / 1024.0;
    cpu_total[n.index] = cpu_seconds(n.pid).value_or(0);
  }

  // ---- analysis, as bench.mjs does it ----
  std::vector<double> lat_ms, last_ms;
  std::size_t full = 0;
  for (std::size_t i = 0; i < o_.messages; ++i) {
    std::size_t count = 0;
    double worst = 0;
    for (std::size_t k = 0; k < N; ++k) {
      const std::int64_t l = latency_us_[i][k];
      if (l < 0) continue;
      lat_ms.push_back(static_cast<double>(l) / 1000.0);
      worst = std::max(worst, static_cast<double>(l) / 1000.0);
      ++count;
    }
    if (count == N - 1) {
      ++full;
      last_ms.push_back(worst);
    }
  }
  std::sort(lat_ms.begin(), lat_ms.end());
  std::sort(last_ms.begin(), last_ms.end());
  const double payload_bytes = static_cast<double>(delivered_) * static_cast<double>(o_.size);

  // Sums of per-node differences over the nodes that answered both times: a node that died in
  // between is left out (and the result marked incomplete) rather than counted as negative.
  auto delta = [&](const std::vector<std::optional<std::int64_t>>& from,
                   const std::vector<std::optional<std::int64_t>>& to, bool& complete) {
    double s = 0;
    for (std::size_t k = 0; k < from.size(); ++k) {
      if (from[k] && to[k]) {
        s += static_cast<double>(*to[k] - *from[k]);
      } else {
        complete = false;
      }
    }
    return s;
  };
  bool bytes_complete = true;
  const double idle_bytes = delta(a.written, b.written, bytes_complete);
  const double win_bytes = delta(b.written, c.written, bytes_complete);
  const double win_read_bytes = delta(b.read, c.read, bytes_complete);
  const double idle_dur_s = static_cast<double>(b.t_us - a.t_us) / 1e6;
  const double win_dur_s = static_cast<double>(c.t_us - b.t_us) / 1e6;
  const double idle_rate = idle_bytes / idle_dur_s;
  const double net_bytes = win_bytes - idle_rate * win_dur_s;

  Json per_process = Json::array();
  std::vector<double> cpu_win, cpu_idle, cpu_life, rss;
  for (const Node& n : nodes_) {
    const std::size_t k = n.index;
    const bool have = a.cpu_s[k] && b.cpu_s[k] && c.cpu_s[k];
    const double w = have ? *c.cpu_s[k] - *b.cpu_s[k] : 0;
    const double idle = have ? *b.cpu_s[k] - *a.cpu_s[k] : 0;
    if (have) {
      cpu_win.push_back(w);
      cpu_idle.push_back(idle);
      cpu_life.push_back(cpu_total[k]);
      rss.push_back(rss_mib[k]);
    }
    per_process.push_back({{"node", k},
                           {"pid", n.pid},
                           {"nodes", 1},
                           {"cpuTotalS", rounded(cpu_total[k], 3)},
                           {"cpuWindowS", have ? rounded(w, 3) : Json(nullptr)},
                           {"cpuIdleS", have ? rounded(idle, 3) : Json(nullptr)},
                           {"maxRssMiB", rounded(rss_mib[k], 2)},
                           {"bytesWritten", c.written[k] ? Json(*c.written[k]) : Json(nullptr)},
                           {"peers", dials[k].size()},
                           {"joined", n.joined},
                           {"exited", n.exited}});
  }
  std::sort(cpu_win.begin(), cpu_win.end());
  std::sort(cpu_life.begin(), cpu_life.end());
  std::sort(rss.begin(), rss.end());
  auto max_of = [](const std::vector<double>& v) {
    return v.empty() ? std::optional<double>() : std::optional<double>(v.back());
  };
  auto opt_mean = [](const std::vector<double>& v) {
    return v.empty() ? std::optional<double>() : std::optional<double>(mean(v));
  };

  if (missing_received_us_ > 0) {
    problem(std::to_string(missing_received_us_) +
            " message events had no received_us; their "
            "latency uses the time net_bench read them (an upper bound)");
  }
  if (!bytes_complete) {
    problem(
        "byte counts are missing for some nodes (stopped or not answering): bytes and event "
        "copies are over the nodes that answered, and so understate the total");
  }

  // Event copies received per delivery in the window (all event kinds, so joins' and acks'
  // events too, though there should be none in the window): the overlay's redundancy.
  bool overlay_complete = true;
  const double copies = delta(b.events_received, c.events_received, overlay_complete);
  const double dups = delta(b.events_duplicate, c.events_duplicate, overlay_complete);
  Json overlay = {
      {"windowEventsReceived", copies},
      {"windowEventsDuplicate", dups},
      {"copiesPerDelivery",
       delivered_ > 0 ? rounded(copies / static_cast<double>(delivered_), 2) : Json(nullptr)},
      {"complete", overlay_complete}};
  const auto& std_minmax = std::minmax_element(topo.degree.begin(), topo.degree.end());
  Json bytes = {
      {"idleWindowS", rounded(idle_dur_s, 2)},
      {"idleBytesPerSecAllNodes", rounded(idle_rate, 0)},
      {"windowS", rounded(win_dur_s, 2)},
      {"windowBytesWritten", rounded(win_bytes, 0)},
      {"windowBytesRead", rounded(win_read_bytes, 0)},
      {"deliveredPayloadBytes", rounded(payload_bytes, 0)},
      {"amplificationGross", payload_bytes > 0 ? rounded(win_bytes / payload_bytes, 2) : nullptr},
      {"amplificationNetOfIdle",
       payload_bytes > 0 ? rounded(net_bytes / payload_bytes, 2) : nullptr},
      {"bytesPerMessagePerNode", rounded(win_bytes / static_cast<double>(o_.messages * N), 0)},
      {"complete", bytes_complete}};
  if (!bytes_complete && win_bytes == 0) {
    for (const char* k :
         {"idleBytesPerSecAllNodes", "windowBytesWritten", "windowBytesRead", "amplificationGross",
          "amplificationNetOfIdle", "bytesPerMessagePerNode"}) {
      bytes[k] = nullptr;
    }
  }
  char host_name[256] = {};
  gethostname(host_name, sizeof host_name - 1);
  std::string cpu_model;
  {
    std::istringstream in(read_file("/proc/cpuinfo"));
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("model name", 0) == 0) {
        cpu_model = trim(line.substr(line.find(':') + 1));
        break;
      }
    }
  }
  double load1 = 0;
  getloadavg(&load1, 1);

  Json result = {
      {"impl", "qun"},
      {"qun", o_.qun},
      {"host",
       {{"cpus", sysconf(_SC_NPROCESSORS_ONLN)},
        {"cpuModel", cpu_model},
        {"memGiB", std::llround(static_cast<double>(sysconf(_SC_PHYS_PAGES)) *
                                static_cast<double>(sysconf(_SC_PAGE_SIZE)) / 1073741824.0)},
        {"loadavg1", rounded(load1, 2)}}},
      {"params",
       {{"nodes", N},
        {"procs", N},
        {"messages", o_.messages},
        {"size", o_.size},
        {"rate", o_.rate},
        {"degree", o_.degree},
        {"seed", o_.seed},
        {"warmup", o_.warmup_s},
        {"idle", o_.idle_s},
        {"drain", o_.drain_s},
        {"deadline", o_.deadline_s},
        {"nodeArgs", o_.node_args},
        {"startupSec", rounded(setup_s, 2)}}},
      {"topology",
       {{"edges", topo.edges.size()},
        {"addedForConnectivity", topo.added_for_connectivity},
        {"meanDegree", rounded(mean_degree, 2)},
        {"minDegree", *std_minmax.first},
        {"maxDegree", *std_minmax.second}}},
      {"group",
       {{"joins", N - 1 - join_failures},
        {"joinFailures", join_failures},
        {"joinSec", rounded(join_s, 2)}}},
      // qun's counterpart of the harness's "mesh": active peers in the group per node.
      {"mesh", mesh},
      {"overlay", overlay},
      {"publish",
       {{"scheduled", o_.messages},
        {"published", published_},
        {"publishErrors", publish_errors_},
        {"answered", posts_answered_}}},
      {"delivery",
       {{"expected", expected},
        {"delivered", delivered_},
        {"ratio", rounded(static_cast<double>(delivered_) / static_cast<double>(expected), 3)},
        {"messagesFullyDelivered", full},
        {"duplicateEvents", duplicate_deliveries_},
        {"foreignEvents", foreign_messages_}}},
      {"latencyMs",
       {{"p50", rounded(pct(lat_ms, 50), 2)},
        {"p90", rounded(pct(lat_ms, 90), 2)},
        {"p99", rounded(pct(lat_ms, 99), 2)},
        {"max", rounded(max_of(lat_ms), 2)},
        {"mean", rounded(opt_mean(lat_ms), 2)}}},
      {"lastDeliveryMs",
       {{"p50", rounded(pct(last_ms, 50), 2)},
        {"p99", rounded(pct(last_ms, 99), 2)},
        {"max", rounded(max_of(last_ms), 2)}}},
      {"bytes", bytes},
      {"groups",
       {{"count", 1 + extra_groups},
        {"extraJoinFailures", extra_join_failures},
        {"extraSetupSec", rounded(extra_s, 2)},
        // What G groups cost a node doing nothing: its CPU as a share of one core, the bytes it
        // writes, and its connections (links are shared across groups).
        {"idleCpuPctPerNodeMean",
         idle_dur_s > 0 && !cpu_idle.empty() ? rounded(mean(cpu_idle) / idle_dur_s * 100, 3)
                                             : Json(nullptr)},
        {"idleCpuPctPerNodeMax",
         idle_dur_s > 0 && !cpu_idle.empty()
             ? rounded(*std::max_element(cpu_idle.begin(), cpu_idle.end()) / idle_dur_s * 100, 3)
             : Json(nullptr)},
        {"idleBytesPerSecPerNode", rounded(idle_rate / static_cast<double>(N), 0)},
        {"connectionsPerNodeMedian", mesh["connMedian"]},
        {"connectionsPerNodeMax", mesh["connMax"]}}},
      {"cpuPerNodeS",
       {{"windowMean", rounded(opt_mean(cpu_win), 3)},
        {"windowMax", rounded(max_of(cpu_win), 3)},
        {"idleMean", rounded(opt_mean(cpu_idle), 3)},
        {"lifetimeMean", rounded(opt_mean(cpu_life), 3)},
        {"lifetimeMax", rounded(max_of(cpu_life), 3)}}},
      {"peakRssPerNodeMiB",
       {{"mean", rounded(opt_mean(rss), 2)}, {"max", rounded(max_of(rss), 2)}}},
      // This process decodes every delivery from N control sockets: its CPU in the window is
      // taken from the same two cores as the nodes' (the harness counts deliveries in-process).
      {"benchCpuWindowS", rounded(c.self_cpu_s - b.self_cpu_s, 3)},
      {"perProcess", per_process},
      {"wallSec", rounded(static_cast<double>(now_us() - start_us) / 1e6, 2)},
      {"problems", problems_}};
  return result;
}

// ---------------------------------------------------------------------------------------------
// Output.

std::optional<double> num(const Json& j, const std::string& pointer) {
  try {
    const Json& v = j.at(Json::json_pointer(pointer));
    if (v.is_number()) return v.get<double>();
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// The compared figures: label, JSON pointer, the goals as bounds on ours/theirs (0: none): issue
// 5's against gossipsub, issue 13's against Tox NGC (p99, bytes per payload byte gross and CPU per
// node no worse than Tox's in the same run). The Tox harness names its fields as the gossipsub
// one does, but for the time to form the group (tox_pointer).
struct Row {
  const char* label;
  const char* pointer;
  double goal_ratio_max;
  double tox_goal_ratio_max = 0;
  const char* tox_pointer = nullptr;  // nullptr: the same as ours
};
constexpr Row rows[] = {
    {"delivery ratio", "/delivery/ratio", 0},
    {"mesh (active peers) median", "/mesh/median", 0},
    {"connections median", "/mesh/connMedian", 0},
    {"event copies per delivery", "/overlay/copiesPerDelivery", 0},
    {"messages fully delivered", "/delivery/messagesFullyDelivered", 0},
    {"published", "/publish/published", 0},
    {"latency p50 ms", "/latencyMs/p50", 0},
    {"latency p90 ms", "/latencyMs/p90", 0},
    {"latency p99 ms", "/latencyMs/p99", 1.0, 1.0},
    {"latency max ms", "/latencyMs/max", 0},
    {"last receiver p50 ms", "/lastDeliveryMs/p50", 0},
    {"last receiver p99 ms", "/lastDeliveryMs/p99", 0},
    {"bytes/payload byte (gross)", "/bytes/amplificationGross", 1.0 / 3, 1.0},
    {"bytes/payload byte (net of idle)", "/bytes/amplificationNetOfIdle", 1.0 / 3},
    {"bytes/message/node", "/bytes/bytesPerMessagePerNode", 0},
    {"idle bytes/s (all nodes)", "/bytes/idleBytesPerSecAllNodes", 0},
    {"CPU s/node (window mean)", "/cpuPerNodeS/windowMean", 0.1, 1.0},
    {"CPU s/node (window max)", "/cpuPerNodeS/windowMax", 0},
    {"CPU s/node (idle mean)", "/cpuPerNodeS/idleMean", 0},
    {"CPU s/node (lifetime mean)", "/cpuPerNodeS/lifetimeMean", 0},
    {"peak RSS MiB/node (mean)", "/peakRssPerNodeMiB/mean", 0.1},
    {"peak RSS MiB/node (max)", "/peakRssPerNodeMiB/max", 0},
    {"groups per node", "/groups/count", 0},
    {"idle CPU % of a core/node (max)", "/groups/idleCpuPctPerNodeMax", 0},
    {"idle bytes/s/node", "/groups/idleBytesPerSecPerNode", 0},
    {"group formed s", "/group/joinSec", 0, 0, "/join/joinSec"},
    {"wall s", "/wallSec", 0},
};

std::string pad(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

// A reference harness's result put beside ours.
struct Peer {
  std::string name;   // column heading
  std::string ratio;  // ratio column heading
  Json result;
  std::string file;
  bool tox = false;   // which goals and pointers apply (Row)
};

std::string peer_pointer(const Row& r, const Peer& peer) {
  return peer.tox && r.tox_pointer ? r.tox_pointer : r.pointer;
}

void print_table(const Json& ours, const std::vector<Peer>& peers) {
  const Json& p = ours["params"];
  std::printf("net_bench: N=%s M=%s size=%sB rate=%s/s degree=%s seed=%s (one process per node)\n",
              cell(p["nodes"]).c_str(), cell(p["messages"]).c_str(), cell(p["size"]).c_str(),
              cell(p["rate"]).c_str(), cell(p["degree"]).c_str(), cell(p["seed"]).c_str());
  std::printf("topology: %s edges (%s added for connectivity), mean degree %s; joins %s/%s\n",
              cell(ours["topology"]["edges"]).c_str(),
              cell(ours["topology"]["addedForConnectivity"]).c_str(),
              cell(ours["topology"]["meanDegree"]).c_str(), cell(ours["group"]["joins"]).c_str(),
              std::to_string(p["nodes"].get<std::size_t>() - 1).c_str());
  for (const Peer& peer : peers) {
    const Json& tp = peer.result["params"];
    if (peer.tox) {
      std::printf("tox: %s (messages=%s, rate=%s, size=%s, wake=%s)\n", peer.file.c_str(),
                  cell(tp["messages"]).c_str(), cell(tp["rate"]).c_str(), cell(tp["size"]).c_str(),
                  cell(tp["wake"]).c_str());
    } else {
      std::printf("gossipsub: %s (procs=%s, messages=%s, rate=%s, size=%s, flood=%s)\n", peer.file.c_str(),
                  cell(tp["procs"]).c_str(), cell(tp["messages"]).c_str(), cell(tp["rate"]).c_str(),
                  cell(tp["size"]).c_str(), cell(tp["flood"]).c_str());
    }
  }
  std::printf("\n| %s | %9s |", pad("metric", 32).c_str(), "qun");
  for (const Peer& peer : peers)
    std::printf(" %9s | %9s | %-16s |", peer.name.c_str(), peer.ratio.c_str(), "goal");
  std::printf("\n|%s|%s|", std::string(34, '-').c_str(), std::string(11, '-').c_str());
  for (std::size_t i = 0; i < peers.size(); ++i)
    std::printf("%s|%s|%s|", std::string(11, '-').c_str(), std::string(11, '-').c_str(),
                std::string(18, '-').c_str());
  std::printf("\n");
  for (const Row& r : rows) {
    const Json ptr_ours = ours.value(Json::json_pointer(r.pointer), Json());
    std::printf("| %s | %9s |", pad(r.label, 32).c_str(), cell(ptr_ours).c_str());
    for (const Peer& peer : peers) {
      const std::string pointer = peer_pointer(r, peer);
      const Json ptr_theirs = peer.result.value(Json::json_pointer(pointer), Json());
      const auto a = num(ours, r.pointer), b = num(peer.result, pointer);
      const double goal_max = peer.tox ? r.tox_goal_ratio_max : r.goal_ratio_max;
      std::string ratio = "-", goal;
      if (a && b && *b != 0) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3g", *a / *b);
        ratio = buf;
        if (goal_max > 0) {
          char g[64];
          std::snprintf(g, sizeof g, "<= %.3g: %s", goal_max, *a / *b <= goal_max ? "met" : "MISSED");
          goal = g;
        }
      }
      if (!peer.tox && std::string(r.pointer) == "/delivery/ratio" && a) {
        goal = std::string("100%: ") + (*a >= 1.0 ? "met" : "MISSED");
      }
      std::printf(" %9s | %9s | %-16s |", cell(ptr_theirs).c_str(), ratio.c_str(), goal.c_str());
    }
    std::printf("\n");
  }
  std::printf(
      "\nbench process CPU in the window: %s s (decoding every delivery from the control "
      "sockets, on the same cores)\n",
      cell(ours["benchCpuWindowS"]).c_str());
  if (!ours["problems"].empty()) {
    std::printf("problems:\n");
    for (const auto& pr : ours["problems"]) std::printf("  - %s\n", pr.get<std::string>().c_str());
  }
}

// The harness's result for the same N, preferring the same rate, messages and size, one process
// per node, flood publishing (its default) and the same seed; ties go to the newest file.
std::optional<std::pair<Json, std::string>> pick_peer_result(const std::string& dir,
                                                             const Options& o) {
  std::optional<std::pair<Json, std::string>> best;
  int best_score = -1;
  fs::file_time_type best_time{};
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".json") continue;
    Json j;
    try {
      j = Json::parse(read_file(entry.path().string()));
    } catch (const std::exception&) {
      continue;
    }
    if (!j.is_object() || !j.contains("params")) continue;
    const Json& p = j["params"];
    if (p.value("nodes", 0.0) != static_cast<double>(o.nodes)) continue;
    int score = 0;
    if (p.contains("rate") && p["rate"].is_number() && p["rate"].get<double>() == o.rate)
      score += 16;
    if (p.value("messages", 0.0) == static_cast<double>(o.messages)) score += 8;
    if (p.value("size", 0.0) == static_cast<double>(o.size)) score += 8;
    if (p.value("procs", 0.0) == static_cast<double>(o.nodes)) score += 4;
    if (p.value("flood", true)) score += 2;
    if (p.value("seed", 0.0) == static_cast<double>(o.seed)) score += 1;
    // Tox: the loop that wakes on a packet, the stronger latency bar (the harness's README).
    if (p.value("wake", std::string()) == "socket") score += 1;
    const auto t = entry.last_write_time(ec);
    if (score > best_score || (score == best_score && t > best_time)) {
      best_score = score;
      best_time = t;
      best = std::make_pair(std::move(j), entry.path().string());
    }
  }
  if (ec)
    std::fprintf(stderr, "net_bench: cannot read %s: %s\n", dir.c_str(), ec.message().c_str());
  return best;
}

}  // namespace
}  // namespace qun

int main(int argc, char** argv) {
  using namespace qun;
  const Options o = parse(argc, argv);
  if (o.dry_run) {
    // The seeded choices alone, to check them against the harness's (same seed, same graph).
    Mulberry32 rng(o.seed);
    const Topology topo = make_topology(rng, o.nodes, o.degree);
    Json edges = Json::array(), publishers = Json::array();
    for (const Edge& e : topo.edges) edges.push_back({e.a, e.b, e.dialer});
    for (std::size_t i = 0; i < o.messages; ++i) publishers.push_back(rng.below(o.nodes));
    std::printf("%s\n", Json{{"edges", edges},
                             {"addedForConnectivity", topo.added_for_connectivity},
                             {"publishers", publishers}}
                            .dump()
                            .c_str());
    return 0;
  }
  if (access(o.qun.c_str(), X_OK) != 0) {
    die("no qun binary at " + o.qun + " (build target qun, or pass --qun PATH)");
  }
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGALRM}) sigaction(sig, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  alarm(o.deadline_s);

  Bench bench(o);
  Json result;
  try {
    result = bench.run();
  } catch (const Fatal& f) {
    bench.cleanup();
    die(f.what);
  } catch (const std::exception& e) {
    bench.cleanup();
    die(std::string("internal error: ") + e.what());
  }
  bench.cleanup();
  alarm(0);

  std::vector<Peer> peers;
  auto pick = [&](const std::string& dir, const char* name, const char* ratio, bool tox) {
    if (dir.empty()) return;
    if (auto found = pick_peer_result(dir, o))
      peers.push_back(Peer{name, ratio, std::move(found->first), found->second, tox});
    else
      std::fprintf(stderr, "net_bench: no %s result with nodes=%zu in %s\n", name, o.nodes, dir.c_str());
  };
  pick(o.peer_results, "gossipsub", "qun/gs", false);
  pick(o.tox_results, "tox", "qun/tox", true);
  if (o.json) {
    for (const Peer& peer : peers) {
      Json ratios = Json::object();
      for (const Row& r : rows) {
        const auto a = num(result, r.pointer), b = num(peer.result, peer_pointer(r, peer));
        ratios[r.pointer] = (a && b && *b != 0) ? rounded(*a / *b, 3) : Json(nullptr);
      }
      result[peer.tox ? "tox" : "peer"] = {{"file", peer.file}, {"result", peer.result}, {"ratios", ratios}};
    }
    std::printf("%s\n", result.dump().c_str());
  } else {
    print_table(result, peers);
  }
  return 0;
}
