// The adversarial simulation (tests/sim/adversary.h): seeds pick honest members and Byzantine
// behaviours; the properties (honest members survive, never ban each other, converge, read and
// post with normal latency, store at most what the rate bounds allow) must hold for every one.
#include <catch2/catch.hpp>
#include <chrono>

#include "tests/sim/adversary.h"
#include "tests/sim/fixture.h"

using namespace qun;
using namespace qun::sim;
using namespace qun::sim::adversary;

namespace {

// Seeds run by default. QUN_SEED runs that one seed only (the reproduction line sets it).
constexpr std::uint64_t seeds_first = 1;
constexpr std::uint64_t seeds_count = 3;

void check(const Scenario& sc) {
  SimConfig config = test::config_for_test(sc.seed);
  INFO(sc.describe());
  const Outcome o = run(sc, config);
  INFO(o.figures.describe());
  INFO(o.failure);
  CHECK(o.ok);
}

}  // namespace

// Proves the properties over a few seeds, each a different mix of behaviours and group size.
TEST_CASE("adversarial seeds: honest members converge, read, post and stay bounded",
          "[sim][adversary]") {
  if (std::getenv("QUN_SEED")) {
    check(pick(seed_from_env(0)));
    return;
  }
  for (std::uint64_t seed = seeds_first; seed < seeds_first + seeds_count; ++seed) check(pick(seed));
}

// Proves each behaviour alone is survived (so a new behaviour is always exercised, whatever the
// seeds above draw).
TEST_CASE("adversarial: every behaviour alone", "[sim][adversary]") {
  for (const auto& e : registry()) {
    Scenario sc = pick(seed_from_env(100));
    sc.behaviours = {e.name};
    check(sc);
  }
}

// Proves finding 9's second half: under raw push (every node forwards every event to every
// active peer, never pruning) and a member's flood, with rate bounds off so that every spam event
// is forwarded (thousands of duplicates per link), no honest member bans another for forwarding
// duplicates. Before: "flooding with events we have" bans cut the overlay.
TEST_CASE("adversarial: raw push under a flood, honest forwarders never ban each other",
          "[sim][adversary]") {
  Scenario sc = pick(seed_from_env(200));
  sc.behaviours = {"spammer"};
  sc.overlay.flood = true;
  sc.overlay.author_events_per_s = 1'000'000;
  sc.overlay.author_burst_events = 1'000'000;
  // The spam is a few thousand events; a smaller duplicate window than the default 5,000 makes
  // each link cross it, as issue 10's 20 s flood at 6,500 a second crossed the default.
  sc.overlay.duplicates_per_window_max = 500;
  SimConfig config = test::config_for_test(sc.seed);
  const Outcome o = run(sc, config);
  INFO(sc.describe() << "\n" << o.figures.describe());
  // With the rate bounds off the spam is stored (the bound check fails by design); what must
  // hold is that nobody was banned and honest posts still spread.
  CHECK(o.failure.find("banned") == std::string::npos);
  CHECK(o.failure.find("did not reach") == std::string::npos);
}

// Figures for issue 10's closing note (hidden: run with "[.adversary-figures]"): one member
// floods at 2,000 posts/s for the attack; honest members' work and store with the rate bounds
// (the default) and without them (as before). CPU is the wall time of each run.
TEST_CASE("adversarial figures: a spam flood with and without rate bounds",
          "[.adversary-figures]") {
  for (const bool bounded : {false, true}) {
    Scenario sc = pick(seed_from_env(300));
    sc.behaviours = {"spammer"};
    if (!bounded) {
      sc.overlay.author_events_per_s = 1'000'000;
      sc.overlay.author_burst_events = 1'000'000;
    }
    const auto start = std::chrono::steady_clock::now();
    const Outcome o = run(sc, test::config_for_test(sc.seed));
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    WARN((bounded ? "with rate bounds: " : "without rate bounds: ")
         << sc.describe() << "\n" << o.figures.describe() << "\nwall time " << secs << " s");
  }
}
