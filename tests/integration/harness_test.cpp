// Checks of the harness itself, on /bin/sh rather than qun, so that a harness bug shows up as
// its own failure rather than as a flaky integration test.
#include "tests/integration/harness.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>

namespace qun::integration {
namespace {

// Proves: run() captures stdout, stderr and the exit code; feeds stdin; kills an overrunning
// child within its bound; returns promptly when a grandchild keeps the pipes open; gives the
// child no QUN_HOME and none of our file descriptors.
TEST_CASE("harness: run captures output and status, and bounds time", "[integration][harness]") {
  Cluster cluster;
  Outcome o = run({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, cluster.env());
  CHECK(o.exited);
  CHECK(o.code == 3);
  CHECK(o.out == "out\n");
  CHECK(o.err_lines() == std::vector<std::string>{"err"});

  const std::string big(1 << 20, 'x');
  CHECK(run({"/bin/cat"}, cluster.env(), big).out == big);

  const auto start = std::chrono::steady_clock::now();
  Outcome slow = run({"/bin/sleep", "30"}, cluster.env(), {}, Millis(200));
  CHECK(slow.timed_out);
  CHECK(!slow.ok());
  Outcome detached = run({"/bin/sh", "-c", "sleep 30 & echo started"}, cluster.env());
  CHECK(detached.ok());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));

  ::setenv("QUN_HOME", "/must/not/leak", 1);
  Outcome env = run({"/bin/sh", "-c", "echo \"${QUN_HOME-unset}\""}, child_env());
  ::unsetenv("QUN_HOME");
  CHECK(env.trimmed_out() == "unset");
  // ls lists its own descriptors: 0, 1, 2 and the one it reads the directory with.
  Outcome fds = run({"/bin/ls", "/proc/self/fd"}, cluster.env());
  CHECK(fds.out == "0\n1\n2\n3\n");

  Outcome missing = run({"/nonexistent/qun"}, cluster.env());
  CHECK(!missing.ok());
  CHECK(missing.err.find("cannot run") != std::string::npos);
}

// Proves: Process::stop escalates to SIGKILL when SIGTERM is ignored, within its bound.
TEST_CASE("harness: stop kills a child that ignores SIGTERM", "[integration][harness]") {
  Cluster cluster;
  const fs::path ready = cluster.dir() / "ready";
  Process p = Process::spawn(
      {"/bin/sh", "-c", "trap '' TERM; touch " + ready.string() + "; while :; do sleep 1; done"},
      cluster.env(), cluster.dir() / "logs/stubborn.log");
  wait_until([&] { return fs::exists(ready); }, Millis(5'000), "the child set its trap");
  const auto start = std::chrono::steady_clock::now();
  auto status = p.stop(Millis(200));
  REQUIRE(status);
  CHECK(describe_status(*status) == "signal 9 (Killed)");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
}

// Proves: files_containing finds a needle anywhere in a file, across its 1 MiB read chunks,
// and nowhere else; it is the relay and kick tests' "no plaintext on disk" check.
TEST_CASE("harness: files_containing finds bytes across chunk boundaries",
          "[integration][harness]") {
  Cluster cluster;
  const fs::path dir = cluster.make_dir("scan");
  const std::string needle = "needle-" + random_hex(8);
  {
    std::ofstream f(dir / "straddle", std::ios::binary);
    f << std::string((1 << 20) - 5, '\0') << needle << std::string(100, '\0');
  }
  {
    std::ofstream f(dir / "clean", std::ios::binary);
    f << std::string(3 << 20, 'n') << needle.substr(0, needle.size() - 1);
  }
  auto found = files_containing(dir, needle);
  REQUIRE(found.size() == 1);
  CHECK(found[0].filename() == "straddle");
}

}  // namespace
}  // namespace qun::integration
