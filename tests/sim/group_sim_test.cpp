// Groups of real Node engines on the simulated network: posts spread to every member, under
// loss, across a healed partition, and to a member that crashed and restarted from its disk.
// Each test bounds its virtual time and reports the seed (via repro()) on failure.
#include <catch2/catch.hpp>
#include <set>

#include "tests/sim/fixture.h"

using namespace qun;
using namespace qun::sim;
using namespace qun::sim::test;

namespace {

// True when every node in `nodes` holds every event in `ids`.
bool all_hold(Simulation& sim, const Hash& g, const std::vector<std::size_t>& nodes,
              const std::vector<Hash>& ids) {
  for (std::size_t i : nodes) {
    const Replica* r = sim.node(i).group(g);
    if (!r) return false;
    for (const Hash& id : ids)
      if (!r->group().has(id)) return false;
  }
  return true;
}

std::vector<std::size_t> range(std::size_t n) {
  std::vector<std::size_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// The post texts node i can read, in its history order.
std::vector<std::string> texts(Simulation& sim, std::size_t i, const Hash& g) {
  std::vector<std::string> out;
  for (const auto& m : sim.node(i).group(g)->history())
    if (m.kind == EventKind::post) out.push_back(m.text.value_or("<unreadable>"));
  return out;
}

}  // namespace

TEST_CASE("three nodes: every post reaches everyone, readable, in one order", "[sim]") {
  // Proves the basic path: invite/join through the sim helpers, links, eager push. Every post
  // is delivered (Delivered output) at every node, and all three read the same history.
  Simulation sim(config_for_test(1));
  INFO("reproduce: " << sim.repro());
  for (int i = 0; i < 3; ++i) sim.add_node();
  const Hash g = sim.create_group(0, "three");
  sim.join_group(1, 0, g);
  sim.join_group(2, 1, g);
  sim.run_for(2'000);
  std::vector<Hash> posts;
  for (std::size_t i = 0; i < 3; ++i) {
    for (const Hash& id : sim.post(i, g, "from " + std::to_string(i))) posts.push_back(id);
    sim.run_for(100);
  }
  REQUIRE(sim.run_until([&] { return all_hold(sim, g, range(3), posts); }, sim.now() + 10'000));
  for (const Hash& id : posts) {
    std::set<std::size_t> delivered_at;
    for (const auto& d : sim.delivery_log())
      if (d.event == id) delivered_at.insert(d.node);
    CHECK(delivered_at == std::set<std::size_t>{0, 1, 2});
  }
  CHECK(sim.converged(g));
  CHECK(texts(sim, 0, g) == texts(sim, 1, g));
  CHECK(texts(sim, 0, g) == texts(sim, 2, g));
  CHECK(texts(sim, 0, g).size() == 3);
  for (const auto& t : texts(sim, 0, g)) CHECK(t != "<unreadable>");
}

TEST_CASE("fifty nodes with 1% loss: every post reaches every member", "[sim]") {
  // A 50-member group built with create_big_group (one founder replica, cloned), 1% chunk loss
  // and jitter. Ten members post; every post must reach all 50 within 60 s of virtual time,
  // and the replicas must converge to the same heads.
  SimConfig config = config_for_test(50);
  config.loss = 0.01;
  Simulation sim(config);
  INFO("reproduce: " << sim.repro());
  constexpr std::size_t n = 50;
  for (std::size_t i = 0; i < n; ++i) sim.add_node();
  const Hash g = sim.create_big_group(range(n));
  sim.run_for(5'000);
  std::vector<Hash> posts;
  for (std::size_t k = 0; k < 10; ++k) {
    for (const Hash& id : sim.post(k * 5 + 2, g, "post " + std::to_string(k))) posts.push_back(id);
    sim.run_for(200);
  }
  const Millis start = sim.now();
  REQUIRE(sim.run_until([&] { return all_hold(sim, g, range(n), posts); }, start + 60'000));
  WARN("50 nodes, 1% loss: all posts everywhere after "
       << sim.now() - start << " ms virtual, " << sim.stats().retransmits << " retransmits");
  CHECK(sim.stats().retransmits > 0);
  REQUIRE(sim.run_until([&] { return sim.converged(g); }, sim.now() + 30'000));
  CHECK(texts(sim, n - 1, g) == texts(sim, 0, g));
}

TEST_CASE("a partition heals and both sides converge", "[sim]") {
  // Six members split 3/3. Posts on each side stay on that side while the partition holds
  // (dials across fail); after heal(), the overlay reconnects and catch-up merges the two
  // histories: every node has every post and all heads are equal.
  Simulation sim(config_for_test(2));
  INFO("reproduce: " << sim.repro());
  constexpr std::size_t n = 6;
  for (std::size_t i = 0; i < n; ++i) sim.add_node();
  const Hash g = sim.create_group(0, "split");
  for (std::size_t i = 1; i < n; ++i) sim.join_group(i, i - 1, g);
  sim.run_for(20'000);
  REQUIRE(sim.converged(g));

  sim.partition({{0, 1, 2}, {3, 4, 5}});
  std::vector<Hash> left, right;
  for (int k = 0; k < 3; ++k) {
    for (const Hash& id : sim.post(k, g, "left " + std::to_string(k))) left.push_back(id);
    for (const Hash& id : sim.post(3 + k, g, "right " + std::to_string(k))) right.push_back(id);
    sim.run_for(1'000);
  }
  REQUIRE(sim.run_until([&] { return all_hold(sim, g, {0, 1, 2}, left); }, sim.now() + 20'000));
  REQUIRE(sim.run_until([&] { return all_hold(sim, g, {3, 4, 5}, right); }, sim.now() + 20'000));
  for (const Hash& id : left) CHECK(sim.holders(g, id) == 3);
  for (const Hash& id : right) CHECK(sim.holders(g, id) == 3);
  CHECK(!sim.converged(g));

  sim.heal();
  std::vector<Hash> all = left;
  all.insert(all.end(), right.begin(), right.end());
  const Millis healed = sim.now();
  REQUIRE(sim.run_until([&] { return all_hold(sim, g, range(n), all) && sim.converged(g); },
                        healed + 120'000));
  WARN("partition healed: converged after " << sim.now() - healed << " ms virtual");
  for (std::size_t i = 1; i < n; ++i) CHECK(texts(sim, i, g) == texts(sim, 0, g));
}

TEST_CASE("a crashed member restarts from its disk and catches up", "[sim]") {
  // Node 3 crashes; the others post meanwhile. On restart it rebuilds its replica from what
  // its Persist outputs wrote (events and keys), reconnects using its stored hints, catches
  // up on everything it missed, reads it (keys restored), and its own new post reaches all.
  Simulation sim(config_for_test(4));
  INFO("reproduce: " << sim.repro());
  constexpr std::size_t n = 4;
  for (std::size_t i = 0; i < n; ++i) sim.add_node();
  const Hash g = sim.create_group(0, "crash");
  for (std::size_t i = 1; i < n; ++i) sim.join_group(i, 0, g);
  sim.run_for(5'000);
  std::vector<Hash> before = sim.post(3, g, "before crash");
  REQUIRE(sim.run_until([&] { return all_hold(sim, g, range(n), before); }, sim.now() + 10'000));

  sim.crash(3);
  std::vector<Hash> missed;
  for (std::size_t i = 0; i < 3; ++i) {
    for (const Hash& id : sim.post(i, g, "while down " + std::to_string(i))) missed.push_back(id);
    sim.run_for(2'000);
  }
  REQUIRE(sim.run_until([&] { return all_hold(sim, g, {0, 1, 2}, missed); }, sim.now() + 10'000));

  sim.restart(3);
  REQUIRE(sim.online(3));
  REQUIRE(sim.node(3).group(g) != nullptr);
  CHECK(sim.node(3).group(g)->group().has(before.front()));  // from its disk
  const Millis restarted = sim.now();
  REQUIRE(sim.run_until([&] { return all_hold(sim, g, {3}, missed); }, restarted + 60'000));
  WARN("restarted node caught up after " << sim.now() - restarted << " ms virtual");
  std::vector<Hash> after = sim.post(3, g, "back");
  REQUIRE(sim.run_until([&] { return all_hold(sim, g, range(n), after) && sim.converged(g); },
                        sim.now() + 30'000));
  const auto t3 = texts(sim, 3, g);
  CHECK(t3 == texts(sim, 0, g));
  for (const auto& t : t3) CHECK(t != "<unreadable>");
}
