// file_bench: file sharing between two real `qun node` processes on loopback (issue 15).
//
//   file_bench [--mib N] [--posts-per-s R] [--qun PATH] [--dir DIR] [--keep]
//
// What it does:
//  1. Two homes in a fresh temporary folder; node A listens on 127.0.0.1, node B links to it.
//     A creates a group, B joins with an invite.
//  2. A file of N MiB (default 64) of random bytes; `file.send` on A seals it (timed).
//  3. The baseline: the same bytes copied over a plain TCP connection on 127.0.0.1, read from the
//     file and written to a new file on the other end, as `qun fetch` reads chunks and writes the
//     file (timed from the first byte sent to the received file closed).
//  4. Post latency idle: A posts 20 times (one every 1/R s); B's subscription stream timestamps
//     each delivery (received_us, CLOCK_MONOTONIC); latency is that minus the time A's request
//     was written (CLOCK_MONOTONIC on this machine too).
//  5. `file.fetch` on B with a path, timed to its answer (every chunk stored, checked against
//     the manifest and written to the file as it arrives, the file renamed into place), while A
//     keeps posting at R per second: the latency of those posts is the chat's while a file moves.
//  6. Prints the figures: seal time, fetch time and throughput, the TCP copy's, their ratio, the
//     bound the design's crypto sets (crypto_floor, below), and
//     post latency p50/p99/max idle and during the transfer.
//
// Only processes this bench started are ever signalled, by pid; they die with it
// (PR_SET_PDEATHSIG). Benchmarks never fail CI: the exit status is 1 only when the bench cannot
// run (no qun binary, a node that does not come up, a step that fails).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sodium.h>

#include "cli/control_client.h"
#include "crypto/hash.h"
#include "crypto/stream.h"
#include "node/file.h"
#include "node/link.h"

namespace {

namespace fs = std::filesystem;
using qun::ControlClient;
using Json = qun::control::Json;

std::int64_t now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "file_bench: %s\n", why.c_str());
  std::exit(1);
}

std::vector<pid_t> children;

void kill_children() {
  for (pid_t pid : children) ::kill(pid, SIGTERM);
  for (pid_t pid : children) ::waitpid(pid, nullptr, 0);
  children.clear();
}

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid < 0) fail("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int run_to_end(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = spawn(args, log);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail("no free port");
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

ControlClient connect_node(const fs::path& home) {
  for (int i = 0; i < 200; ++i) {
    auto c = ControlClient::connect((home / "control.sock").string());
    if (c.ok()) {
      auto id = c->request("id", Json::object(), 2000);
      if (id.ok()) return std::move(c).value();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a node starting up
  }
  fail("node at " + home.string() + " did not come up");
}

Json must(ControlClient& c, const std::string& op, Json args, int timeout_ms = 60'000) {
  auto r = c.request(op, std::move(args), timeout_ms);
  if (!r.ok()) fail(op + ": " + r.error().context());
  return std::move(r).value();
}

// This process's CPU seconds so far, every thread (user + system).
double own_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

struct Copy {
  double seconds = 0;  // from the connection's first byte to `to` closed
  double cpu = 0;      // both threads, the kernel's work for them included
};

// The plain TCP copy: a thread reads `from` and writes it to a loopback connection; this thread
// reads it and writes `to`.
Copy tcp_copy(const fs::path& from, const fs::path& to) {
  const double cpu0 = own_cpu_seconds();
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  ::listen(listener, 1);
  const std::int64_t start = now_us();
  std::thread writer([&] {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    const int in = ::open(from.c_str(), O_RDONLY);
    std::vector<char> buf(1 << 16);
    ssize_t n;
    while ((n = ::read(in, buf.data(), buf.size())) > 0) {
      ssize_t at = 0;
      while (at < n) {
        const ssize_t w = ::write(s, buf.data() + at, static_cast<std::size_t>(n - at));
        if (w <= 0) break;
        at += w;
      }
    }
    ::close(in);
    ::close(s);
  });
  const int conn = ::accept(listener, nullptr, nullptr);
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char> buf(1 << 16);
  ssize_t n;
  while ((n = ::read(conn, buf.data(), buf.size())) > 0) {
    if (::write(out, buf.data(), static_cast<std::size_t>(n)) != n) fail("copy: write failed");
  }
  ::close(out);
  const std::int64_t end = now_us();
  writer.join();
  ::close(conn);
  ::close(listener);
  return {static_cast<double>(end - start) / 1e6, own_cpu_seconds() - cpu0};
}

// The crypto a fetch cannot do without, timed on this thread over the same bytes with qun's own
// functions: the sender's link encryption of each blob (in the link messages node.cpp cuts it
// into), the fetcher's link decryption, each blob's BLAKE2b-256 address and its STREAM opening.
// Their sum is CPU no schedule avoids; spread perfectly over the machine's cores it bounds the
// fetch from below, whatever the copies, system calls and waits around it cost.
struct CryptoFloor {
  double link_seal = 0, link_open = 0, address = 0, chunk_open = 0;
  double total() const { return link_seal + link_open + address + chunk_open; }
};

CryptoFloor crypto_floor(const fs::path& file) {
  using qun::Bytes;
  using qun::ByteView;
  std::ifstream in(file, std::ios::binary);
  std::vector<std::uint8_t> plain((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::array<std::uint8_t, 32> file_key{};
  randombytes_buf(file_key.data(), file_key.size());
  const std::size_t chunk = qun::file_limits::chunk_bytes;
  const std::size_t chunks = (plain.size() + chunk - 1) / chunk;
  std::vector<Bytes> blobs;
  for (std::size_t i = 0; i < chunks; ++i) {
    const std::size_t at = i * chunk, n = std::min(chunk, plain.size() - at);
    blobs.push_back(qun::stream_seal(file_key, i, i + 1 == chunks, ByteView(plain).subspan(at, n)));
  }
  qun::noise::CipherKey seal_key, open_key;
  randombytes_buf(seal_key.mut_view().data(), seal_key.size());
  std::memcpy(open_key.mut_view().data(), seal_key.view().data(), seal_key.size());
  qun::noise::CipherState seal(std::move(seal_key)), open(std::move(open_key));
  const std::size_t piece = qun::message_bytes_max - 1;  // node.cpp's to_outbox
  CryptoFloor f;
  std::vector<Bytes> sealed;
  auto timed = [](double& into, auto&& work) {
    const std::int64_t t = now_us();
    work();
    into += static_cast<double>(now_us() - t) / 1e6;
  };
  for (std::size_t i = 0; i < chunks; ++i) {
    const ByteView blob = blobs[i];
    sealed.clear();
    timed(f.link_seal, [&] {
      for (std::size_t at = 0; at < blob.size(); at += piece)
        sealed.push_back(*seal.encrypt_with_ad(ByteView(), blob.subspan(at, std::min(piece, blob.size() - at))));
    });
    timed(f.link_open, [&] {
      for (const Bytes& m : sealed)
        if (!open.decrypt_with_ad(ByteView(), m).ok()) fail("crypto floor: link decryption failed");
    });
    timed(f.address, [&] { (void)qun::hash(blob); });
    timed(f.chunk_open, [&] {
      if (!qun::stream_open(file_key, i, i + 1 == chunks, blob).ok()) fail("crypto floor: chunk did not open");
    });
  }
  return f;
}

// CPU seconds a process used so far (utime + stime, /proc/PID/stat).
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i)
    if (i == 14 || i == 15) ticks += std::stod(f);
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double pct(std::vector<double> xs, double p) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  return xs[std::min(xs.size() - 1, static_cast<std::size_t>(p * static_cast<double>(xs.size())))];
}

struct Poster {
  ControlClient& a;
  ControlClient& sub;
  std::string group;
  std::map<std::string, std::int64_t> sent;  // text -> publish time
  std::vector<double> latency_ms;
  std::size_t n = 0;

  void post(const std::string& phase) {
    const std::string text = phase + "-" + std::to_string(n++);
    sent[text] = now_us();
    if (!a.send("post", Json{{"group", group}, {"text", text}}).ok()) fail("post failed");
  }
  // Reads what the streams have (a's answers are dropped; sub's deliveries are timed).
  void drain() {
    if (auto r = a.read_available(); !r.ok()) fail("node A stopped");
    auto got = sub.read_available();
    if (!got.ok()) fail("node B stopped");
    for (const auto& m : *got) {
      if (!m.contains("stream") || m["stream"] != "message") continue;
      const Json& t = m["message"]["text"];
      if (!t.is_string()) continue;
      const std::string text = t.get<std::string>();
      auto it = sent.find(text);
      if (it == sent.end()) continue;
      latency_ms.push_back(static_cast<double>(m.value("received_us", std::int64_t{0}) - it->second) / 1e3);
      sent.erase(it);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::size_t mib = 64;
  double rate = 20;
  std::string qun = QUN_BINARY_PATH;
  bool keep = false;
  std::string parent = "/tmp";  // where the two homes, the file and the TCP copy go
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--mib") mib = std::stoul(next());
    else if (a == "--posts-per-s") rate = std::stod(next());
    else if (a == "--qun") qun = next();
    else if (a == "--keep") keep = true;
    else if (a == "--dir") parent = next();
    else fail("usage: file_bench [--mib N] [--posts-per-s R] [--qun PATH] [--dir DIR] [--keep]");
  }
  if (mib == 0 || mib > 100) fail("--mib is 1..100 (qun shares files up to 100 MiB)");
  ::signal(SIGPIPE, SIG_IGN);
  std::string tmpl = parent + "/qun-file-bench-XXXXXX";
  if (!::mkdtemp(tmpl.data())) fail("no temporary folder in " + parent);
  const fs::path dir = tmpl;
  const fs::path home_a = dir / "a", home_b = dir / "b";
  for (const auto& [home, nick] : {std::pair{home_a, "a"}, std::pair{home_b, "b"}})
    if (run_to_end({qun, "init", "--home", home.string(), "--name", nick}, (dir / "init.log").string()) != 0)
      fail("qun init failed (see " + (dir / "init.log").string() + ")");
  const std::string addr_a = "127.0.0.1:" + std::to_string(free_port());
  const std::string addr_b = "127.0.0.1:" + std::to_string(free_port());
  children.push_back(spawn({qun, "node", "--home", home_a.string(), "--listen", addr_a, "--log-level", "warn"},
                           (dir / "a.log").string()));
  children.push_back(spawn({qun, "node", "--home", home_b.string(), "--listen", addr_b, "--peer", addr_a,
                            "--log-level", "warn"},
                           (dir / "b.log").string()));
  std::atexit(kill_children);
  ControlClient a = connect_node(home_a), b = connect_node(home_b);
  const std::string group = must(a, "group.create", Json{{"name", "bench"}}).value("id", "");
  const std::string code = must(a, "invite", Json{{"group", group}}).value("code", "");
  must(b, "join", Json{{"code", code}}, 60'000);

  // The file.
  const fs::path file = dir / "file.bin";
  {
    std::mt19937_64 rng(42);
    std::ofstream out(file, std::ios::binary);
    std::vector<std::uint64_t> block(1 << 13);
    for (std::size_t i = 0; i < mib * 16; ++i) {
      for (auto& x : block) x = rng();
      out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(block.size() * 8));
    }
  }
  const double bytes = static_cast<double>(mib) * 1024 * 1024;
  std::int64_t t0 = now_us();
  const std::string id = must(a, "file.send", Json{{"group", group}, {"path", file.string()}}).value("id", "");
  const double seal_s = static_cast<double>(now_us() - t0) / 1e6;

  const Copy copy = tcp_copy(file, dir / "copy.bin");
  const double copy_s = copy.seconds;
  const CryptoFloor floor = crypto_floor(file);

  // Post latency idle, then during the fetch.
  ControlClient sub = connect_node(home_b);
  must(sub, "subscribe", Json{{"group", group}});
  ControlClient poster_conn = connect_node(home_a);
  Poster poster{poster_conn, sub, group, {}, {}, 0};
  const int gap_ms = static_cast<int>(1000 / rate);
  for (int i = 0; i < 20; ++i) {
    poster.post("idle");
    ::poll(nullptr, 0, gap_ms);
    poster.drain();
  }
  for (int i = 0; i < 50 && !poster.sent.empty(); ++i) {
    ::poll(nullptr, 0, 20);
    poster.drain();
  }
  const std::vector<double> idle = poster.latency_ms;
  poster.latency_ms.clear();

  // The fetch, waited for on b's connection while posting.
  auto started = b.send("file.fetch", Json{{"group", group}, {"event", id}, {"path", (dir / "fetched.bin").string()}});
  if (!started.ok()) fail("file.fetch: " + started.error().context());
  t0 = now_us();
  const double cpu_a0 = cpu_seconds(children[0]), cpu_b0 = cpu_seconds(children[1]);
  std::optional<Json> answer;
  std::int64_t next_post = now_us();
  while (!answer) {
    if (now_us() >= next_post) {
      poster.post("busy");
      next_post += gap_ms * 1000;
    }
    pollfd fds[1] = {{b.fd(), POLLIN, 0}};
    ::poll(fds, 1, 5);
    auto got = b.read_available();
    if (!got.ok()) fail("node B stopped");
    for (auto& m : *got)
      if (m.contains("id") && !m.contains("stream")) answer = m;
    poster.drain();
  }
  const double fetch_s = static_cast<double>(now_us() - t0) / 1e6;
  const double cpu_a = cpu_seconds(children[0]) - cpu_a0, cpu_b = cpu_seconds(children[1]) - cpu_b0;
  if (!answer->value("ok", false)) fail("fetch failed: " + answer->value("error", std::string()));
  for (int i = 0; i < 100 && !poster.sent.empty(); ++i) {
    ::poll(nullptr, 0, 20);
    poster.drain();
  }
  const std::vector<double> busy = poster.latency_ms;
  const bool same = [&] {
    std::ifstream x(file, std::ios::binary), y(dir / "fetched.bin", std::ios::binary);
    return std::equal(std::istreambuf_iterator<char>(x), std::istreambuf_iterator<char>(),
                      std::istreambuf_iterator<char>(y), std::istreambuf_iterator<char>());
  }();

  std::printf("file_bench: %zu MiB between two qun nodes on 127.0.0.1\n", mib);
  std::printf("  send (seal into chunks)   %7.2f s   %8.1f MiB/s\n", seal_s, bytes / 1048576 / seal_s);
  std::printf("  fetch (verified, written) %7.2f s   %8.1f MiB/s   file identical: %s\n", fetch_s,
              bytes / 1048576 / fetch_s, same ? "yes" : "NO");
  std::printf("  CPU during the fetch       sender %.2f s, fetcher %.2f s\n", cpu_a, cpu_b);
  std::printf("  plain TCP copy            %7.2f s   %8.1f MiB/s\n", copy_s, bytes / 1048576 / copy_s);
  std::printf("  fetch / TCP copy          %7.2f x   (goal >= 0.5)\n", copy_s / fetch_s);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("  crypto a fetch needs      %7.2f CPU-s (link seal %.3f, link open %.3f, addresses %.3f, chunk opening %.3f)\n",
              floor.total(), floor.link_seal, floor.link_open, floor.address, floor.chunk_open);
  // A fetch moves the same bytes through sockets and files as the copy does, and does that crypto
  // besides: on this machine's cores, spread perfectly, it cannot take less than their sum over
  // the cores.
  const double best_s = (floor.total() + copy.cpu) / cores;
  std::printf("  the copy's CPU            %7.2f CPU-s; with the crypto, on %u cores at best %.2f s = %.2f x the copy\n",
              copy.cpu, cores, best_s, copy_s / best_s);
  std::printf("  post latency idle         p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  (%zu posts)\n",
              pct(idle, 0.5), pct(idle, 0.99), pct(idle, 1.0), idle.size());
  std::printf("  post latency during fetch p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  (%zu posts, %zu lost)\n",
              pct(busy, 0.5), pct(busy, 0.99), pct(busy, 1.0), busy.size(), poster.sent.size());
  kill_children();
  if (!keep) fs::remove_all(dir);
  else std::printf("  kept %s\n", dir.c_str());
  return 0;
}
