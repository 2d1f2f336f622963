// Offloading: blocking file work (reading, sealing and writing a shared file) runs on libuv's
// thread pool, so the daemon's loop keeps moving posts meanwhile; sealing or putting together a
// 100 MiB file takes about 0.4 s of CPU and disk, which on the loop would hold up every link.
//
// offload(loop, work, done): runs `work` on a pool thread, then `done` on the loop. `work` must
// touch nothing the loop owns (it gets what it needs by value and leaves its result where `done`
// reads it); `done` runs even while the loop is stopping (an in-flight job keeps the loop alive
// until it ends), so it must check whether what it reports to still exists.
#pragma once

#include <uv.h>

#include <functional>

namespace qun {

void offload(uv_loop_t* loop, std::function<void()> work, std::function<void()> done);

}  // namespace qun
