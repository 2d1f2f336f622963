// Adversarial simulation (issue 10, "Tests"), after TigerBeetle's VOPR: one seed picks a group of
// honest members and a few Byzantine behaviours, runs the attack in the simulator, and checks
// the properties that must hold for the honest members whatever the attackers do:
//   - every honest member survives, and no honest member bans another;
//   - every honest post reaches every honest member, readable, within a latency bound, during
//     the attack and after it;
//   - once the attack ends and everyone posts once more, the honest members converge (same
//     heads);
//   - each honest member stores at most what the rate bounds let the attackers' keys put there,
//     and its pending (parentless) events stay within limits::pending_events_max.
// A failure names the seed, the scenario and the one command line that replays it.
//
// Adding a behaviour (the `protocol` helper adds rekey, join and clock attacks this way):
//   1. Derive from Behaviour below: setup() adds and joins the nodes it controls (through the
//      Simulation's helpers) before the attack; act() runs every Scenario::act_interval_ms of
//      virtual time during it; finish() undoes what must be undone when it ends (a stopped node
//      resumes). nodes() names the nodes it controls: they are left out of the honest checks.
//      bounded_authors() names the keys whose events the honest members must bound, and
//      removed_authors() those removed before the attack, whose events they must not store.
//      verdict() reports what the behaviour's own nodes must not have got.
//   2. Add one line to registry() in adversary.cpp. pick() then draws it for some seeds, and
//      `QUN_ADVERSARY=<name>[,<name>...]` forces a choice.
// Each behaviour draws its randomness from Arena::rng, so a seed replays it exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/sim/sim.h"

namespace qun::sim::adversary {

// What behaviours act on.
struct Arena {
  Simulation& sim;
  Hash group;
  std::vector<std::size_t> honest;  // the honest members; honest[0] founded the group
  Rng rng;
};

class Behaviour {
 public:
  virtual ~Behaviour() = default;
  virtual std::string name() const = 0;
  virtual void setup(Arena& arena) = 0;
  virtual void act(Arena& arena) = 0;
  virtual void finish(Arena&) {}
  virtual std::vector<std::size_t> nodes() const = 0;
  virtual std::vector<PublicKey> bounded_authors() const { return {}; }
  // Keys removed from the group before the attack: honest members store none of their events
  // from the attack (nobody honest builds on them).
  virtual std::vector<PublicKey> removed_authors() const { return {}; }
  // After the run: what the behaviour itself saw that must not have happened (a stranger that
  // got events), or "" when nothing did.
  virtual std::string verdict(Arena&) const { return ""; }
};

struct Entry {
  std::string name;
  std::string what;  // one line, for the scenario's description
  std::function<std::unique_ptr<Behaviour>()> make;
};
// Every behaviour the adversarial simulation knows.
const std::vector<Entry>& registry();

// One run, derived from a seed.
struct Scenario {
  std::uint64_t seed = 1;
  std::size_t honest = 5;
  std::vector<std::string> behaviours;  // registry names
  Millis attack_ms = 3'000;
  Millis act_interval_ms = 10;
  Millis honest_post_interval_ms = 500;
  // Honest nodes' overlay settings (a test may turn raw push on, or rate bounds off to measure
  // what they prevent).
  OverlayConfig overlay;
  std::string describe() const;
};

// The scenario for a seed: 4 to 7 honest members and one to three behaviours (all different),
// or the ones QUN_ADVERSARY names. Under a sanitizer build the attack is shorter.
Scenario pick(std::uint64_t seed);

// What a run measured (for reports and before/after figures).
struct Figures {
  std::uint64_t honest_events_stored_max = 0;   // events in one honest member's replica
  std::uint64_t honest_bytes_stored_max = 0;    // Node::group_bytes
  std::uint64_t honest_events_received = 0;     // event copies received, all honest members
  std::uint64_t honest_events_over_rate = 0;
  std::uint64_t honest_events_former_author = 0;
  std::uint64_t bounded_events_stored_max = 0;  // events by bounded authors, one honest member
  std::uint64_t removed_events_stored_max = 0;  // events by removed authors, one honest member
  Millis honest_latency_max_ms = 0;             // an honest post reaching every honest member
  std::string describe() const;
};

struct Outcome {
  bool ok = true;
  std::string failure;  // what broke, the scenario and the reproduction line
  Figures figures;
};

// Runs a scenario; config.seed is set from the scenario. Never throws for a property failure
// (it returns it); a simulator error (a livelock) propagates with its reproduction line.
Outcome run(const Scenario& scenario, SimConfig config);

}  // namespace qun::sim::adversary
