// Tests for node/broadcast.h: one group's Plumtree engine on its own, fed inputs by hand and
// drained after each, with no links, replicas or clock: which neighbours get pushes and which
// announcements, how redundant pushes prune and missing announcements graft, and its timers.
#include "node/broadcast.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/rng.h"

namespace qun {
namespace {

namespace bo = broadcast_output;

PublicKey peer_key(std::uint64_t n) {
  Rng rng = Rng::from_u64(0xb0ad0000 + n);
  return SigningKey::generate(rng).public_key();
}

Hash event_id(std::uint64_t n) { return hash(as_bytes("event " + std::to_string(n))); }

std::vector<BroadcastOutput> drain(Broadcast& b) {
  std::vector<BroadcastOutput> out;
  while (auto o = b.poll()) out.push_back(std::move(*o));
  REQUIRE_FALSE(b.invariant_violation());
  return out;
}

template <typename T>
std::vector<T> only(const std::vector<BroadcastOutput>& out) {
  std::vector<T> v;
  for (const auto& o : out)
    if (const auto* t = std::get_if<T>(&o)) v.push_back(*t);
  return v;
}

const Broadcast::Has holds_nothing = [](const Hash&) { return false; };

// Pushes go to every eager neighbour but the sender, whole and at once; lazy neighbours get the
// ids only after ihave_delay_ms, in one batch with the events' distances.
TEST_CASE("broadcast pushes to eager neighbours and announces to lazy ones", "[node][broadcast]") {
  BroadcastConfig config;
  Broadcast b(config);
  const PublicKey a = peer_key(1), c = peer_key(2), d = peer_key(3);
  for (const auto& p : {a, c, d}) b.neighbor_up(p);
  b.on_prune(d);  // d asked us to stop pushing: lazy from now on
  REQUIRE(b.is_lazy(d));
  b.on_admitted(1'000, {event_id(1)}, a, 3);
  auto out = drain(b);
  auto pushes = only<bo::Push>(out);
  REQUIRE(pushes.size() == 1);  // c: not a (the sender), not d (lazy)
  CHECK(pushes[0].to == c);
  CHECK(pushes[0].hops == 3);
  CHECK(only<bo::IHave>(out).empty());
  REQUIRE(b.next_deadline() == 1'000 + config.ihave_delay_ms);
  b.on_admitted(1'050, {event_id(2)}, std::nullopt, 0);  // our own: to a and c; batched for d
  CHECK(only<bo::Push>(drain(b)).size() == 2);
  b.on_tick(1'100, holds_nothing);  // early: nothing
  CHECK(drain(b).empty());
  b.on_tick(1'000 + config.ihave_delay_ms, holds_nothing);
  auto ihaves = only<bo::IHave>(drain(b));
  REQUIRE(ihaves.size() == 1);
  CHECK(ihaves[0].to == d);
  CHECK(ihaves[0].ids == std::vector<Hash>{event_id(1), event_id(2)});
  CHECK(ihaves[0].hops == std::vector<std::uint32_t>{3, 0});
  CHECK_FALSE(b.next_deadline());
}

// A push of nothing new prunes its link (lazy, with a Prune to the sender), once; flooding
// never prunes.
TEST_CASE("broadcast prunes a redundant push, except when flooding", "[node][broadcast]") {
  const PublicKey a = peer_key(1);
  Broadcast tree(BroadcastConfig{});
  tree.neighbor_up(a);
  tree.on_redundant_push(a);
  auto out = drain(tree);
  REQUIRE(only<bo::Prune>(out).size() == 1);
  CHECK(only<bo::Prune>(out)[0].to == a);
  CHECK(tree.is_lazy(a));
  tree.on_too_many_duplicates(a);  // already lazy: no second prune
  CHECK(drain(tree).empty());

  BroadcastConfig flood_config;
  flood_config.flood = true;
  Broadcast flood(flood_config);
  flood.neighbor_up(a);
  flood.on_redundant_push(a);
  flood.on_prune(a);
  CHECK(drain(flood).empty());
  CHECK_FALSE(flood.is_lazy(a));
}

// An announced event that no push brings is grafted from its first announcer after
// graft_timeout_ms (which makes that link eager again), then from the next one; an event that
// arrives in the meantime is not grafted.
TEST_CASE("broadcast grafts missing announced events, announcer after announcer",
          "[node][broadcast]") {
  BroadcastConfig config;
  Broadcast b(config);
  const PublicKey a = peer_key(1), c = peer_key(2);
  b.neighbor_up(a);
  b.neighbor_up(c);
  b.on_prune(a);
  b.on_prune(c);
  std::set<Hash> held;
  const Broadcast::Has has = [&](const Hash& id) { return held.count(id) != 0; };
  b.on_ihave(0, a, {event_id(1), event_id(2)}, {1, 1}, has);
  b.on_ihave(10, c, {event_id(1)}, {2}, has);
  CHECK(drain(b).empty());
  REQUIRE(b.next_deadline() == config.graft_timeout_ms);
  held.insert(event_id(2));  // came by another way
  b.on_tick(config.graft_timeout_ms, has);
  auto grafts = only<bo::Graft>(drain(b));
  REQUIRE(grafts.size() == 1);
  CHECK(grafts[0].to == a);
  CHECK(grafts[0].ids == std::vector<Hash>{event_id(1)});
  CHECK_FALSE(b.is_lazy(a));  // a graft makes the link eager
  b.on_tick(2 * config.graft_timeout_ms, has);
  grafts = only<bo::Graft>(drain(b));
  REQUIRE(grafts.size() == 1);
  CHECK(grafts[0].to == c);
  b.on_admitted(2 * config.graft_timeout_ms + 5, {event_id(1)}, c, 2);
  (void)drain(b);
  CHECK(b.missing() == 0);
}

// A neighbour that leaves takes its place in the tree with it; one whose link went also takes
// the announcements queued for it.
TEST_CASE("broadcast forgets neighbours that leave", "[node][broadcast]") {
  Broadcast b(BroadcastConfig{});
  const PublicKey a = peer_key(1), c = peer_key(2);
  b.neighbor_up(a);
  b.neighbor_up(c);
  b.on_prune(a);
  b.on_prune(c);
  b.on_admitted(0, {event_id(1)}, std::nullopt, 0);
  CHECK(b.announcing().size() == 2);
  b.neighbor_down(a);
  b.neighbor_down(c);
  b.drop_announcements(c);
  CHECK_FALSE(b.is_neighbor(a));
  CHECK_FALSE(b.is_neighbor(c));
  CHECK(b.announcing() == std::vector<PublicKey>{a});  // left the set, link still up
  b.on_graft(c);  // no longer a neighbour: nothing happens
  CHECK_FALSE(b.is_neighbor(c));
  CHECK(drain(b).empty());
}

// With the tree optimisation on, a lazy neighbour that announces an event markedly closer to its
// author than the path it came by becomes eager (an empty Graft), and that path lazy (a Prune).
TEST_CASE("broadcast swaps a long tree path for a shorter lazy one", "[node][broadcast]") {
  BroadcastConfig config;
  config.tree_optimize_hops = 2;
  Broadcast b(config);
  const PublicKey far = peer_key(1), near = peer_key(2);
  b.neighbor_up(far);
  b.neighbor_up(near);
  b.on_prune(near);
  b.on_admitted(0, {event_id(1)}, far, 6);
  (void)drain(b);
  const Broadcast::Has has = [](const Hash&) { return true; };
  b.on_ihave(10, near, {event_id(1)}, {4}, has);  // 4 + 1 + 2 > 6: not enough
  CHECK(drain(b).empty());
  b.on_ihave(20, near, {event_id(1)}, {2}, has);  // 2 + 1 + 2 <= 6: swap
  auto out = drain(b);
  REQUIRE(only<bo::Graft>(out).size() == 1);
  CHECK(only<bo::Graft>(out)[0].ids.empty());
  REQUIRE(only<bo::Prune>(out).size() == 1);
  CHECK(only<bo::Prune>(out)[0].to == far);
  CHECK_FALSE(b.is_lazy(near));
  CHECK(b.is_lazy(far));
}

}  // namespace
}  // namespace qun
