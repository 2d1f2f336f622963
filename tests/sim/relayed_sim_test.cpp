// Relayed links on the simulated network (issue 14): two members behind NAT (nobody can dial
// them) reach each other through their group's relay. Each reserves a slot on the relay and
// advertises its relayed address; they learn each other's from shuffles, and one links to the
// other through the relay with a Link of their own, end to end. Every test prints the command
// that reproduces it on failure.
#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>

#include "tests/sim/fixture.h"

using namespace qun;
using namespace qun::sim;
using namespace qun::sim::test;

namespace {

// The relay node i's established link to `peer` goes through, if it is relayed; nullopt when
// there is no such link, and an empty optional inside when it is direct.
std::optional<std::optional<PublicKey>> link_to(Simulation& sim, std::size_t i, std::size_t peer) {
  for (const auto& p : sim.node(i).peers())
    if (p.established && p.id == sim.identity(peer).public_key()) return p.via;
  return std::nullopt;
}

}  // namespace

// Proves relayed links end to end in the overlay: Ada and Bob are behind NAT, the relay names
// and serves their group. Both reserve on the relay (their relayed address names it), link to
// each other through it (each side's peers() shows the link with `via` the relay), and a post of
// Ada's reaches Bob over that link, while the relay forwards only stream bytes it cannot read
// (its splice counts them). When the relay crashes, the relayed link ends with it.
TEST_CASE("relayed: two members behind NAT link through their relay and chat", "[sim][relayed]") {
  Simulation sim(config_for_test(1401));
  INFO("reproduce: " << sim.repro());
  const std::size_t relay = sim.add_relay();
  const std::size_t ada = sim.add_node_behind_nat();
  const std::size_t bob = sim.add_node_behind_nat();
  const PublicKey relay_id = sim.identity(relay).public_key();

  const Hash g = sim.create_group(ada, "homes");
  sim.set_relay(ada, g, relay);
  sim.request_serve(ada, g, relay);
  sim.run_for(2'000);
  REQUIRE(sim.node(relay).group(g) != nullptr);
  sim.join_group(bob, ada, g);  // Ada's own address does not work: Bob finds the relay

  REQUIRE(sim.run_until(
      [&] {
        return sim.node(ada).relayed().reserved_relay() == relay_id &&
               sim.node(bob).relayed().reserved_relay() == relay_id;
      },
      sim.now() + 30'000));
  CHECK(sim.node(bob).relayed().relayed_address() ==
        sim.address(relay) + "/via/" + to_hex(relay_id));

  REQUIRE(sim.run_until(
      [&] {
        auto a = link_to(sim, ada, bob);
        auto b = link_to(sim, bob, ada);
        return a && b && *a == relay_id && *b == relay_id;
      },
      sim.now() + 60'000));
  CHECK(sim.node(relay).relayed().relayed_links() == 1);

  const std::uint64_t relayed_before = sim.node(relay).relayed().stats().relayed_bytes;
  std::vector<Hash> post = sim.post(ada, g, "hello over the relayed link");
  REQUIRE(sim.run_until(
      [&] { return sim.node(bob).group(g)->group().has(post.back()); }, sim.now() + 10'000));
  CHECK(sim.node(relay).relayed().stats().relayed_bytes > relayed_before);
  CHECK(sim.node(bob).group(g)->state().is_member(sim.identity(bob).public_key()));

  sim.crash(relay);
  REQUIRE(sim.run_until([&] { return !link_to(sim, ada, bob) && !link_to(sim, bob, ada); },
                        sim.now() + 10'000));
  CHECK_FALSE(sim.node(ada).relayed().reserved_relay());
}

// Proves the relay's bound in the overlay: with room for no relayed link, the relay refuses
// every connect (counted as full) and members behind NAT still read each other's posts through
// the relay's store-and-forward, which does not depend on relayed links.
TEST_CASE("relayed: a relay with no room refuses relayed links and keeps serving the group",
          "[sim][relayed]") {
  Simulation sim(config_for_test(1402));
  INFO("reproduce: " << sim.repro());
  NodeConfig full = Simulation::open_relay();
  full.relayed_links_max = 0;
  const std::size_t relay = sim.add_relay(full);
  const std::size_t ada = sim.add_node_behind_nat();
  const std::size_t bob = sim.add_node_behind_nat();

  const Hash g = sim.create_group(ada, "homes");
  sim.set_relay(ada, g, relay);
  sim.request_serve(ada, g, relay);
  sim.run_for(2'000);
  sim.join_group(bob, ada, g);
  REQUIRE(sim.run_until([&] { return sim.node(relay).relayed().stats().splices_refused_full > 0; },
                        sim.now() + 60'000));
  CHECK(sim.node(relay).relayed().relayed_links() == 0);
  CHECK_FALSE(link_to(sim, ada, bob));

  std::vector<Hash> post = sim.post(bob, g, "through the relay's store");
  REQUIRE(sim.run_until(
      [&] { return sim.node(ada).group(g)->group().has(post.back()); }, sim.now() + 10'000));
}
