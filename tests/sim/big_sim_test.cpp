// The harness at scale (hidden: run with "[.sim-big]"). Measures what a 1,000-node test costs
// in setup (create_big_group) and in spreading one post, so the 1,000-node tests stay cheap.
// The completion check counts deliveries in the callback: checking every replica after every
// step would be O(N) per step.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include "tests/sim/fixture.h"

using namespace qun;
using namespace qun::sim;
using namespace qun::sim::test;

TEST_CASE("a 1,000-member group: setup and one post to everyone", "[.sim-big]") {
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point a) {
    return std::chrono::duration<double>(clock::now() - a).count();
  };
  SimConfig config = config_for_test(1000);
  config.record_deliveries = false;
  Simulation sim(config);
  INFO("reproduce: " << sim.repro());
  // QUN_SIM_NODES overrides the size (to find the limits of a machine).
  const char* env_n = std::getenv("QUN_SIM_NODES");
  const std::size_t n = env_n ? std::strtoull(env_n, nullptr, 10) : 1000;
  auto t = clock::now();
  std::vector<std::size_t> members;
  for (std::size_t i = 0; i < n; ++i) members.push_back(sim.add_node());
  const double nodes_s = secs(t);
  t = clock::now();
  const Hash g = sim.create_big_group(members);
  const double group_s = secs(t);
  t = clock::now();
  sim.run_for(10'000);
  const double warm_s = secs(t);
  std::size_t got = 0;
  Hash id;
  sim.on_delivered([&](std::size_t, const Hash& group, const std::vector<Hash>& ids, Millis) {
    for (const Hash& d : ids)
      if (group == g && d == id) ++got;
  });
  t = clock::now();
  const Millis posted = sim.now();
  id = sim.post(n / 2, g, "to everyone").back();
  // The author's own Delivered fires inside post(), before `id` is known: n - 1 remain.
  const bool all = sim.run_until([&] { return got == n - 1; }, posted + 30'000);
  const double spread_s = secs(t);
  WARN(n << " nodes: add_node " << nodes_s << " s, create_big_group " << group_s
         << " s, 10 s virtual warm-up " << warm_s << " s, post to all " << (sim.now() - posted)
         << " ms virtual in " << spread_s << " s; steps " << sim.stats().steps << ", bytes "
         << sim.stats().bytes_sent);
  std::size_t no_active = 0, active_total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t a = sim.node(i).active_peers(g).size();
    active_total += a;
    if (a == 0) ++no_active;
  }
  WARN("delivered to " << got << " of " << n << ", holders " << sim.holders(g, id)
                       << "; active peers: mean " << double(active_total) / double(n) << ", "
                       << no_active << " nodes without any");
  std::ifstream maps("/proc/self/maps");
  std::size_t vmas = 0;
  for (std::string line; std::getline(maps, line);) ++vmas;
  WARN("memory mappings: " << vmas << " (vm.max_map_count is usually 65530)");
  CHECK(all);
}
