// Offloading blocking file work to libuv's thread pool (net/offload.h).
#include "net/offload.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/net/uv_loop.h"

using namespace qun;

namespace {

// How long the work below waits for the loop to prove it is still turning: a bound for a slow,
// loaded machine (the timer it waits for is due after 1 ms), never reached when all is well.
constexpr auto loop_turn_bound = std::chrono::seconds(20);

}  // namespace

// Proves the work runs off the loop and the loop keeps turning meanwhile: the work waits until a
// timer on the loop has fired, which could never happen if the work held the loop; `done` runs
// afterwards on the loop's thread and sees the work's result.
TEST_CASE("offloaded work runs on another thread while the loop keeps turning", "[net]") {
  test::Loop l;
  std::atomic<bool> timer_fired{false};
  bool saw_timer = false;
  std::thread::id work_thread;
  bool done = false;
  std::thread::id done_thread;

  uv_timer_t timer;
  uv_timer_init(&l.loop, &timer);
  timer.data = &timer_fired;
  uv_timer_start(
      &timer, [](uv_timer_t* t) { static_cast<std::atomic<bool>*>(t->data)->store(true); }, 1, 0);

  offload(
      &l.loop,
      [&] {
        work_thread = std::this_thread::get_id();
        const auto until = std::chrono::steady_clock::now() + loop_turn_bound;
        while (!timer_fired.load() && std::chrono::steady_clock::now() < until)
          std::this_thread::yield();
        saw_timer = timer_fired.load();
      },
      [&] {
        done = true;
        done_thread = std::this_thread::get_id();
      });
  REQUIRE(l.run_until([&] { return done; }, 30'000));
  CHECK(saw_timer);
  CHECK(work_thread != std::this_thread::get_id());
  CHECK(done_thread == std::this_thread::get_id());
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  l.finish();
}

// Proves every job's `done` runs once, in a loop that runs until nothing is left (as the
// daemon's does when it stops): a job in flight keeps the loop alive rather than being lost.
TEST_CASE("a loop run dry waits for every offloaded job", "[net]") {
  test::Loop l;
  constexpr int jobs = 16;
  std::atomic<int> worked{0};
  int finished = 0;
  for (int i = 0; i < jobs; ++i) offload(&l.loop, [&] { ++worked; }, [&] { ++finished; });
  l.finish();
  CHECK(worked.load() == jobs);
  CHECK(finished == jobs);
}
