// Shared helpers for simulator tests: a SimConfig whose seed comes from QUN_SEED (else the
// test's default) and whose repro() names the running Catch2 test.
#pragma once

#include <catch2/catch.hpp>

#include "tests/sim/sim.h"

namespace qun::sim::test {

inline SimConfig config_for_test(std::uint64_t default_seed) {
  SimConfig c;
  c.seed = seed_from_env(default_seed);
  c.test_name = Catch::getResultCapture().getCurrentTestName();
  return c;
}

// The set of events every online holder of `group` has, as seen by node `i`.
inline std::size_t history_size(Simulation& sim, std::size_t i, const Hash& group) {
  const Replica* r = sim.node(i).group(group);
  return r ? r->group().size() : 0;
}

}  // namespace qun::sim::test
