// A bad rekey in a live group, on the simulated network: the members it fails detect it (the key
// check) and heal it on their own (Replica::upkeep, which the daemon runs once a second) within a
// few seconds of virtual time; afterwards every honest member reads every honest member's posts.
// Reports the time to heal. Standalone: no adversary framework is assumed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <iostream>

#include "crypto/seal.h"
#include "node/limits.h"
#include "tests/sim/fixture.h"

using namespace qun;
using namespace qun::sim;
using namespace qun::sim::test;

namespace {

// The daemon's housekeeping period, which drives upkeep (net/daemon.cpp).
constexpr Millis upkeep_interval_ms = 1'000;
// What "healed within a few seconds" means here: the heal delay (below 3 s), one upkeep period
// to notice, one to act, and propagation across the group with margin.
constexpr Millis heal_bound_ms = limits::heal_delay_ms_max + 2 * upkeep_interval_ms + 3'000;

enum class Bad { junk, partial, wrong_key };

// A rekey at the next epoch by node `villain`, committing to one key but sealing what `bad`
// says: junk boxes, boxes to the villain and one other member only, or another key per member.
Event bad_rekey(Simulation& sim, std::size_t villain, const Hash& g, Bad bad, Rng& rng) {
  const Replica& r = *sim.node(villain).group(g);
  const SigningKey& me = sim.identity(villain);
  const SymmetricKey key = random_key(rng);
  const std::uint64_t epoch = r.state().epoch + 1;
  RekeyPayload p;
  p.key_check = key_check(key, g, epoch);
  std::size_t sealed = 0;
  for (const auto& [id, m] : r.state().members) {
    auto box_of = [&](ByteView plain) { return seal(to_x25519(id).value(), plain, rng); };
    if (id == me.public_key()) {
      p.members.push_back({id, box_of(key.view())});
      continue;
    }
    switch (bad) {
      case Bad::junk: {
        Bytes junk(32 + seal_overhead_bytes);
        rng.fill(junk);
        p.members.push_back({id, junk});
        break;
      }
      case Bad::partial:
        if (sealed++ == 0) p.members.push_back({id, box_of(key.view())});
        break;
      case Bad::wrong_key: {
        const SymmetricKey other = random_key(rng);
        p.members.push_back({id, box_of(other.view())});
        break;
      }
    }
  }
  Event e;
  e.group = g;
  e.author = me.public_key();
  e.parents = r.group().next_parents();
  e.depth = r.group().next_depth(e.parents);
  e.time_ms = sim_epoch_ms + sim.now();
  e.kind = EventKind::rekey;
  e.epoch = epoch;
  e.payload = encode_payload(p);
  sign_event(e, me);
  return e;
}

bool healed(Simulation& sim, const Hash& g, const std::vector<std::size_t>& honest,
            std::uint64_t bad_epoch) {
  if (!sim.converged(g)) return false;
  for (std::size_t i : honest) {
    const Replica* r = sim.node(i).group(g);
    if (r->state().epoch <= bad_epoch || r->unverified_key()) return false;
  }
  return true;
}

}  // namespace

// Proves finding 4 is healed across a live group: for a junk, a partial and a per-member-wrong
// rekey, by an ordinary member and by the founder, every honest member ends with a verified key
// of a later epoch within heal_bound_ms of virtual time, and then every honest member reads
// every honest member's new posts. Prints the time to heal of each run.
TEST_CASE("a bad rekey is healed within seconds across a group", "[sim][keys]") {
  constexpr std::size_t members = 12;
  for (Bad bad : {Bad::junk, Bad::partial, Bad::wrong_key}) {
    for (std::size_t villain : {std::size_t{5}, std::size_t{0}}) {
      Simulation sim(config_for_test(41 + static_cast<std::uint64_t>(bad) * 7 + villain));
      INFO("reproduce: " << sim.repro() << " (attack " << static_cast<int>(bad) << ", villain "
                         << villain << ")");
      for (std::size_t i = 0; i < members; ++i) sim.add_node();
      const Hash g = sim.create_group(0, "heal");
      for (std::size_t i = 1; i < members; ++i) sim.join_group(i, i - 1, g);
      REQUIRE(sim.run_until([&] { return sim.converged(g); }, sim.now() + 20'000));
      // Upkeep as the daemon runs it; the one-use invites are closed here (used up).
      for (int round = 0; round < 8; ++round) {
        for (std::size_t i = 0; i < members; ++i) sim.upkeep(i, g);
        sim.run_for(upkeep_interval_ms);
      }
      REQUIRE(sim.run_until([&] { return sim.converged(g); }, sim.now() + 20'000));
      std::vector<std::size_t> honest;
      for (std::size_t i = 0; i < members; ++i)
        if (i != villain) honest.push_back(i);
      // Everyone holds a verified key before the attack.
      for (std::size_t i : honest) REQUIRE_FALSE(sim.node(i).group(g)->unverified_key());

      Rng rng = Rng::from_u64(sim.config().seed ^ 0xbad);
      const Event e = bad_rekey(sim, villain, g, bad, rng);
      const std::uint64_t bad_epoch = e.epoch;
      const Millis attacked = sim.now();
      sim.node(villain).group(g)->ingest({e});
      sim.publish(villain, g, {e});
      // Drive upkeep every second until healed, up to the bound.
      Millis healed_at = 0;
      while (sim.now() < attacked + heal_bound_ms) {
        for (std::size_t i = 0; i < members; ++i) sim.upkeep(i, g);
        if (sim.run_until([&] { return healed(sim, g, honest, bad_epoch); },
                          sim.now() + upkeep_interval_ms)) {
          healed_at = sim.now();
          break;
        }
      }
      REQUIRE(healed_at != 0);
      // The healing rekeys name the bad one.
      std::size_t heals = 0;
      for (const auto& m : sim.node(honest.front()).group(g)->history())
        heals += m.kind == EventKind::rekey && m.replaces == e.id;
      CHECK(heals >= 1);
      std::cout << "heal_sim: attack " << static_cast<int>(bad) << " by node " << villain
                << ": healed in " << (healed_at - attacked) << " ms of virtual time by " << heals
                << " healing rekey(s), " << members << " members, seed " << sim.config().seed
                << "\n";
      // Every honest member posts; every honest member reads every one of those posts.
      std::vector<Hash> posts;
      for (std::size_t i : honest) {
        for (const Hash& id : sim.post(i, g, "after " + std::to_string(i))) posts.push_back(id);
        sim.run_for(50);
      }
      REQUIRE(sim.run_until(
          [&] {
            for (std::size_t i : honest)
              for (const Hash& id : posts)
                if (!sim.node(i).group(g)->group().has(id)) return false;
            return true;
          },
          sim.now() + 10'000));
      for (std::size_t i : honest) {
        const Replica& r = *sim.node(i).group(g);
        for (const Hash& id : posts) {
          auto m = r.message(id);
          REQUIRE(m);
          if (m->kind == EventKind::post) CHECK(m->text.has_value());
        }
      }
    }
  }
}
