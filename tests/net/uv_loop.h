// A libuv loop for one test of net/: run_until() turns the loop until done() holds or timeout_ms
// passes (returning done()); finish() runs the loop dry and checks that no handle was left behind.
#pragma once

#include <uv.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>

namespace qun::test {

struct Loop {
  uv_loop_t loop{};
  Loop() { REQUIRE(uv_loop_init(&loop) == 0); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  bool run_until(const std::function<bool()>& done, std::uint64_t timeout_ms = 10'000) {
    auto* guard = new uv_timer_t;
    bool expired = false;
    uv_timer_init(&loop, guard);
    guard->data = &expired;
    uv_timer_start(
        guard, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, timeout_ms, 0);
    while (!done() && !expired) uv_run(&loop, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(guard),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    uv_run(&loop, UV_RUN_NOWAIT);
    return done();
  }
  void finish() {
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(uv_loop_close(&loop) == 0);  // every handle was closed and freed
    REQUIRE(uv_loop_init(&loop) == 0);   // for the destructor
  }
};

}  // namespace qun::test
