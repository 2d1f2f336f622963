// Healing a partition does not wait for explorations (issue 13): when a partition cuts active
// links, each side refills its active sets from the peers it still reaches, so that afterwards
// nothing in the sets' state asks for the other side; explorations, backed off up to 320 s,
// were what rejoined the halves. Membership now redials the active peers whose link was lost
// (node/membership.h, lost_redial_ms), and the first redial across the healed cut offers heads
// both ways. Every test prints the command that reproduces it (repro()) on failure.
#include <catch2/catch.hpp>

#include <iostream>
#include <vector>

#include "node/membership.h"
#include "tests/sim/fixture.h"

using namespace qun;
using namespace qun::sim;
using namespace qun::sim::test;

namespace {

// Explorations an hour apart: out of the picture, so that what heals the partition here is the
// redial of lost peers alone (with the default pace, 16 nodes exploring every 320 s heal it in
// about 20-60 s by chance, which is what this test would otherwise measure).
NodeConfig no_exploring() {
  NodeConfig c;
  c.overlay.explore_interval_ms = 3'600'000;
  c.overlay.explore_interval_max_ms = 3'600'000;
  return c;
}

std::uint64_t duplicates(Simulation& sim, std::size_t n) {
  std::uint64_t d = 0;
  for (std::size_t i = 0; i < n; ++i) d += sim.node(i).stats().events_duplicate;
  return d;
}

std::uint64_t received(Simulation& sim, std::size_t n) {
  std::uint64_t d = 0;
  for (std::size_t i = 0; i < n; ++i) d += sim.node(i).stats().events_received;
  return d;
}

}  // namespace

// Proves that a partition whose halves keep full active sets heals by redialing lost peers:
// 16 members split 8/8, each half refills its sets (7 others on a side, target 5) and stays
// apart for 400 s, past the point where the shuffles and explorations have backed off; each
// side posts; after the heal every replica converges within one capped redial wait
// (lost_redial_max_ms) plus a few round trips, where without the redials it waited for the
// next exploration (here an hour away). Counts the event copies that arrived twice while
// converging and prints the time.
TEST_CASE("a partition with full active sets heals without waiting for an exploration",
          "[sim][overlay]") {
  SimConfig config = config_for_test(61);
  config.record_deliveries = false;
  config.keep_disk = false;
  Simulation sim(config);
  INFO("reproduce: " << sim.repro());
  constexpr std::size_t n = 16;
  std::vector<std::size_t> members, left, right;
  for (std::size_t i = 0; i < n; ++i) {
    members.push_back(sim.add_node(no_exploring()));
    (i < n / 2 ? left : right).push_back(i);
  }
  const Hash g = sim.create_big_group(members);
  sim.run_for(30'000);
  REQUIRE(sim.converged(g));
  sim.partition({left, right});
  sim.run_for(400'000);
  // Both halves refilled their sets from their own side.
  for (std::size_t i = 0; i < n; ++i)
    CHECK(sim.node(i).active_peers(g).size() >= OverlayConfig{}.active_target);
  std::vector<Hash> posts;
  for (std::size_t k = 0; k < 3; ++k) {
    for (const Hash& id : sim.post(left[k], g, "left " + std::to_string(k))) posts.push_back(id);
    for (const Hash& id : sim.post(right[k], g, "right " + std::to_string(k))) posts.push_back(id);
  }
  sim.run_for(5'000);
  CHECK_FALSE(sim.converged(g));
  const std::uint64_t dup_before = duplicates(sim, n), received_before = received(sim, n);
  sim.heal();
  const Millis healed = sim.now();
  // One capped redial wait, then a dial (connect_ms), the hellos and heads (a round trip), the
  // request and the events (another), with a second round for the events' own sides: 5 s.
  constexpr Millis converge_bound_ms = lost_redial_max_ms + 5'000;
  REQUIRE(sim.run_until([&] { return sim.converged(g); }, healed + converge_bound_ms));
  const Millis took = sim.now() - healed;
  sim.run_for(2'000);  // copies still in flight at convergence count too
  const std::uint64_t dup = duplicates(sim, n) - dup_before;
  const std::uint64_t got = received(sim, n) - received_before;
  std::cout << "partition_sim: 16 members 8/8, apart 400 s: converged " << took
            << " ms after the heal; " << got << " event copies received, " << dup
            << " of them twice (" << posts.size() << " posts to cross), seed "
            << sim.config().seed << "\n";
  for (const Hash& id : posts) CHECK(sim.holders(g, id) == n);
}
