// The integration harness: runs real `qun` processes on 127.0.0.1 with ephemeral ports and
// temporary homes, for the CTest integration tests (issue 5, "Tests").
//
// What it offers, from the bottom up:
//   run()        runs one command to completion with a time bound (killed on overrun) and
//                captures its stdout, stderr and exit status.
//   Process      a background child (a `qun node`), its stdout and stderr appended to a log
//                file; stop() sends SIGTERM, then SIGKILL after a bound; kill9() is a crash.
//   Node         a node home: `qun init`, start/stop/kill9 of `qun node` on that home (start
//                again to restart, on the same home and, if asked, the same port), and
//                qun(...) to run any command against it (`--home` is always passed).
//   Cluster      the per-test fixture: one temporary directory holding every home and log;
//                its destructor stops every node it started (SIGTERM, then SIGKILL), reaps
//                them, prints their logs when the test failed, and removes the directory.
//   wait_until() polls a predicate within a bound; the only way tests wait for anything.
//
// Ownership and lifetime. A Cluster owns its Nodes (Cluster::add returns a reference valid for
// the Cluster's life); a Node owns at most one running Process. Destructors never throw and
// never leave a child behind: children also get PR_SET_PDEATHSIG(SIGKILL), so a test binary
// killed by CTest's timeout takes its nodes with it.
//
// Environment of children. QUN_HOME is removed and XDG_DATA_HOME points into the Cluster's
// directory, so a command that forgot `--home` can never touch the user's real node.
//
// Failures. Helpers that must succeed (Node::ok, Node::json, start, wait_until) fail the current
// Catch2 test with a message that includes the command, its exit status, stdout and stderr;
// they are for use inside a TEST_CASE only. Threading: single-threaded (fork is used).
//
// Reuse (e.g. a pty chat test): include "tests/integration/harness.h", make a Cluster, add and
// start Nodes, and spawn extra children with Process::spawn (or your own forkpty) using
// cluster.env() and `--home node.home()`. Declare such a Process after the Cluster, so that it
// is stopped before the Cluster removes the directory. Add a test by dropping a *_test.cpp into
// tests/integration/: CMake globs it into qun_integration_tests (CTest prefix "integration: ").
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qun::integration {

using Json = nlohmann::json;
using Millis = std::chrono::milliseconds;
namespace fs = std::filesystem;

// Bounds. The suite must finish well under two minutes on two shared cores, and every loopback
// operation here takes milliseconds, so these are generous ceilings that only a hang reaches.
inline constexpr Millis command_bound{15'000};     // one CLI command (join waits for the join)
inline constexpr Millis node_ready_bound{15'000};  // `qun node` listening and answering `qun id`
inline constexpr Millis stop_bound{5'000};         // SIGTERM to exit, before SIGKILL
inline constexpr Millis propagate_bound{20'000};   // an event reaching another node
inline constexpr Millis poll_interval{50};         // between two checks inside wait_until

// The `qun` binary under test: $QUN_BIN if set, else the path CMake compiled in.
std::string qun_binary();

// The outcome of one finished (or killed) command.
struct Outcome {
  std::vector<std::string> argv;
  bool exited = false;  // ended by exit(); otherwise by `signal` (or not started)
  int code = -1;        // exit code when exited
  int signal = 0;       // terminating signal when not exited
  bool timed_out = false;
  std::string out;
  std::string err;

  bool ok() const { return exited && code == 0; }
  // stdout without trailing whitespace (ids and codes are printed on one line).
  std::string trimmed_out() const;
  // The lines of stderr, without empty trailing lines.
  std::vector<std::string> err_lines() const;
  // Command line, status, stdout and stderr, for failure messages.
  std::string describe() const;
};

// The environment of every child: ours without QUN_HOME, plus `extra` ("KEY=VALUE" entries
// replace ours of the same key).
std::vector<std::string> child_env(const std::vector<std::string>& extra = {});

// Runs argv[0] (a path) to completion with `input` on stdin. On overrun of `bound` the child is
// killed with SIGKILL and the outcome says timed_out. Never fails the test by itself.
Outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            std::string_view input = {}, Millis bound = command_bound);

// A background child. Its stdin is /dev/null and its stdout and stderr are appended to
// log_path (stdout optionally to a file of its own). Movable, not copyable; the destructor stops it
// (SIGTERM, SIGKILL after stop_bound).
class Process {
 public:
  Process() = default;
  // Throws std::runtime_error if the program cannot be started. With stdout_path, stdout goes
  // there instead (truncated first), e.g. to read what `qun log --follow` streams.
  static Process spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                       const fs::path& log_path, const fs::path& stdout_path = {});
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }
  // True while started and not yet exited (reaps it if it has exited).
  bool running();
  // The raw wait status once exited and reaped.
  std::optional<int> status() const { return status_; }
  // Waits up to bound for the child to exit by itself; returns the raw wait status if it did.
  std::optional<int> wait_exit(Millis bound);
  // SIGTERM, then SIGKILL after bound; returns the raw wait status (nullopt if never started).
  std::optional<int> stop(Millis bound = stop_bound);
  // SIGKILL now (a crash) and reap.
  void kill9();
  // Sends a signal without waiting (no-op when not running).
  void signal(int sig);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// "exit 3", "signal 9 (Killed)", ... for a raw wait status.
std::string describe_status(int status);
// True for a raw wait status of exit code 0.
bool exited_cleanly(int status);

class Cluster;

// How to start `qun node` on a home.
struct NodeOptions {
  // --listen; an ephemeral port by default. A restart can pass the previous address() to come
  // back where its peers expect it, as a node with a fixed port does. Empty: no --listen at all
  // (the node's default, 0.0.0.0:7420).
  std::string listen = "127.0.0.1:0";
  std::vector<std::string> peers;       // --peer HOST:PORT each
  bool relay = false;                   // --relay
  std::vector<std::string> extra_args;  // e.g. {"--max-groups", "2"}
  // Run `qun node` through this command, e.g. {"/usr/sbin/ip", "netns", "exec", "NS"} to start
  // it in a network namespace (tests/nat). The CLI commands against the node still run here:
  // the control socket is a path, reachable from any network namespace.
  std::vector<std::string> wrapper;

  static NodeOptions with_peers(std::vector<std::string> addresses) {
    NodeOptions options;
    options.peers = std::move(addresses);
    return options;
  }
  static NodeOptions as_relay() {
    NodeOptions options;
    options.relay = true;
    return options;
  }
};

// One node home, and the `qun node` running on it (if any).
class Node {
 public:
  Node(Cluster& cluster, std::string name, fs::path home);
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();

  const std::string& name() const { return name_; }
  const fs::path& home() const { return home_; }
  const fs::path& log_path() const { return log_path_; }

  // Runs `qun ARGS --home HOME` and returns what happened (never fails the test by itself).
  Outcome qun(std::vector<std::string> args, std::string_view input = {},
              Millis bound = command_bound) const;
  // Like qun() but fails the test unless it exits 0; returns stdout trimmed.
  std::string ok(std::vector<std::string> args, std::string_view input = {},
                 Millis bound = command_bound) const;
  // Runs `qun ARGS --json --home HOME`, requires exit 0 and parses stdout as one JSON value.
  Json json(std::vector<std::string> args) const;
  // Runs `qun ARGS --json --home HOME` and parses one JSON object per stdout line.
  std::vector<Json> json_lines(std::vector<std::string> args) const;

  // Starts `qun node --home HOME --listen ADDRESS ...` and waits (node_ready_bound) until
  // `qun id --json` answers with a bound port. Fails the test if the node exits or never answers.
  void start(NodeOptions options = {});
  // Stops the node (SIGTERM, SIGKILL after stop_bound); returns the raw wait status.
  std::optional<int> stop();
  // Kills the node with SIGKILL (a crash), leaving the home as the crash left it.
  void kill9();
  bool running();

  // The node's identity and listen address, from `qun id --json` at the last start.
  const std::string& id() const { return id_; }
  const std::string& address() const { return address_; }
  // The node process (for tests that signal it directly); null when never started.
  Process* process() { return process_.get(); }
  // The log file's contents (every start of this node appends to it).
  std::string log() const;

 private:
  Cluster& cluster_;
  std::string name_;
  fs::path home_;
  fs::path log_path_;
  std::unique_ptr<Process> process_;
  std::string id_;
  std::string address_;
  int starts_ = 0;
};

// The per-test fixture. Make one at the top of a TEST_CASE.
class Cluster {
 public:
  Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;
  // Stops every node (failing the test if one still running does not exit 0 on SIGTERM),
  // prints the logs if the test failed, removes the directory (kept when QUN_KEEP_TEST_DIRS is
  // set, for debugging).
  ~Cluster();

  const fs::path& dir() const { return dir_; }
  const std::vector<std::string>& env() const { return env_; }
  // Makes a new home named `name` and runs `qun init --name NICK` on it (NICK = name).
  Node& add(const std::string& name);
  // Makes a new home without init.
  Node& add_uninitialised(const std::string& name);
  // A fresh directory inside dir() for test files.
  fs::path make_dir(const std::string& name);
  // Runs qun with exactly these args (no --home added).
  Outcome qun_raw(std::vector<std::string> args, std::string_view input = {},
                  Millis bound = command_bound) const;
  // Prints every node's log to stderr (the destructor does it when the test failed).
  void dump_logs() const;

 private:
  fs::path dir_;
  std::vector<std::string> env_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

// Polls predicate every poll_interval until it returns true; fails the test with "timed out
// after N ms waiting until <what>" when bound passes first. The predicate runs at least once and
// once more at the deadline.
void wait_until(const std::function<bool()>& predicate, Millis bound, std::string_view what);

// True when the current test has already failed an assertion (CHECK or REQUIRE), or an
// exception is propagating. Used by destructors to decide whether to print logs.
bool current_test_failed();

// A file's whole contents ("" if it cannot be read).
std::string file_contents(const fs::path& path);
// Parses one JSON object per non-empty line.
std::vector<Json> parse_json_lines(std::string_view text);
// The bytes of every regular file under dir, concatenated with their names, for "does this
// plaintext appear anywhere" checks. Returns the files whose bytes contain needle.
std::vector<fs::path> files_containing(const fs::path& dir, std::string_view needle);

// Convenience views of `qun log GROUP --json` lines.
std::vector<std::string> texts(const std::vector<Json>& log_lines);
std::vector<std::string> ids(const std::vector<Json>& log_lines);
bool has_text(const std::vector<Json>& log_lines, std::string_view text);

// A log line's text, or "" for lines of kinds that carry "text": null (joins, rekeys, closes).
std::string text_of(const Json& line);

// A random hex string (for plaintext canaries that cannot occur by chance).
std::string random_hex(std::size_t bytes);

// ---- Community helpers: the steps most tests share. All fail the test on error. ----

// The three nodes many tests start with: alice; a relay whose operator allows her
// (`--relay-allow`); and bob, who knows alice's address. All started; the Cluster owns them.
struct AliceBobRelay {
  Node& relay;
  Node& alice;
  Node& bob;
};
AliceBobRelay start_alice_bob_relay(Cluster& cluster);
// The options the relay of start_alice_bob_relay runs with (to restart it).
NodeOptions relay_for(const Node& admin);

// `qun group create NAME` on admin; returns the printed group id (checked to be one hex token).
std::string create_group(const Node& admin, const std::string& name);
// `qun invite GROUP [invite_args]` on inviter, then `qun join CODE` on joiner; requires join to
// print the same group id as the inviter's `group list` holds, and returns it.
std::string invite_and_join(const Node& inviter, const Node& joiner, const std::string& group,
                            std::vector<std::string> invite_args = {});
// `qun log GROUP --json` (the whole history, one object per line).
std::vector<Json> log_of(const Node& node, const std::string& group);
// Whether the event `id` (hex) is in node's log of group.
bool holds_event(const Node& node, const std::string& group, const std::string& id);
// Waits until every text in `wanted` is in node's log of group.
void wait_for_posts(const Node& node, const std::string& group,
                    const std::vector<std::string>& wanted, Millis bound = propagate_bound);
// The number of events a node holds for a group, from `qun status --json` (-1 if it has none).
std::int64_t events_held(const Node& node, const std::string& group);
// The object for group (its full id) in `qun status --json`'s "groups", or null.
Json status_of_group(const Node& node, const std::string& group_id);
// The object for group (its full id) in `qun group list --json`, or null.
Json group_entry(const Node& node, const std::string& group_id);

// The three-member community many tests start from: alice (the founder), bob and carol, each
// on a node of its own in `cluster` (bob peers with alice, carol with both), all members of
// `group`, a group alice created under group_name. Fails the test on any error.
struct Trio {
  Node& alice;
  Node& bob;
  Node& carol;
  std::string group;
};
Trio start_trio(Cluster& cluster, const std::string& group_name);

// ---- Terminals: a private tmux server whose panes are real ptys, for full-screen clients
// (`qun chat`, irssi). tmux runs in the foreground as a child of the test (`tmux -D`, a Process,
// so it dies with the test), on a socket inside the Cluster's directory, with LANG=C.UTF-8 for
// itself and for what it starts. Every wait polls the captured screen within a bound. ----

inline constexpr const char* tmux_path = "/usr/bin/tmux";
// False when tmux is missing (scripts/setup installs it): a terminal test says so and skips.
bool tmux_available();

class Tmux {
 public:
  explicit Tmux(Cluster& cluster);
  ~Tmux();
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  // `tmux ARGS...` on this server; never fails the test by itself.
  Outcome tmux(std::vector<std::string> args) const;
  // The same, failing the test unless it exits 0.
  void must(std::vector<std::string> args) const;
  // A new detached session NAME of cols x rows running argv (one word: a shell command line).
  void start(const std::string& session, int cols, int rows, std::vector<std::string> argv) const;
  // The visible screen; `joined` joins lines the terminal wrapped (capture-pane -J).
  std::string screen(const std::string& session, bool joined = false) const;
  std::vector<std::string> lines(const std::string& session) const;
  // Types text as is (no Enter); key sends one key by tmux's name ("Enter", "C-c", "PPage").
  void type(const std::string& session, const std::string& text) const;
  void key(const std::string& session, const std::string& key) const;
  // Writes raw bytes to the pane's terminal input, as a terminal would send them (escape
  // sequences such as focus reports, which no key name stands for).
  void raw(const std::string& session, std::string_view bytes) const;
  void wait_for(const std::string& session, const std::string& text,
                Millis bound = propagate_bound) const;
  void wait_for_line(const std::string& session, const std::function<bool(const std::string&)>& p,
                     const std::string& what) const;

 private:
  fs::path socket_;
  std::vector<std::string> env_;
  Process server_;
};

// ---- HTTP on loopback, for the metrics endpoint. ----

// GET path from HOST:PORT on 127.0.0.1; the whole reply ("" when nothing answers; 10 s bound).
std::string http_get(const std::string& address, const std::string& path);
// A sample's value in a Prometheus scrape ("name{labels} value" lines), or -1 when absent.
double metric_sample(const std::string& scrape, const std::string& series);

}  // namespace qun::integration
