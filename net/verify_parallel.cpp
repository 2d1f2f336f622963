#include "net/verify_parallel.h"

#include <algorithm>
#include <thread>

namespace qun {

namespace {

// Fewer events than this are not worth a thread: starting one costs tens of microseconds, and a
// signature check about 50 (Ed25519 in libsodium), so a slice of 256 is ~13 ms of work.
constexpr std::size_t signature_slice_min = 256;

}  // namespace

std::vector<bool> verify_on_all_cores(const std::vector<Event>& events) {
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t threads =
      std::max<std::size_t>(1, std::min(cores, events.size() / signature_slice_min));
  // One byte per event: std::vector<bool> packs bits, which threads cannot write apart.
  std::vector<char> ok(events.size(), 0);
  auto check = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) ok[i] = verify_event(events[i]) ? 1 : 0;
  };
  const std::size_t slice = (events.size() + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < threads; ++t)
    pool.emplace_back(check, std::min(events.size(), t * slice), std::min(events.size(), (t + 1) * slice));
  check(0, std::min(events.size(), slice));
  for (auto& th : pool) th.join();
  return std::vector<bool>(ok.begin(), ok.end());
}

}  // namespace qun
