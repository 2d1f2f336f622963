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

std::vector<EventTag> tags(const std::vector<Hash>& ids) {
  std::vector<EventTag> out;
  for (const Hash& id : ids) out.push_back(tag_of(id));
  return out;
}

// Neighbours `from` and `lazy`; the template is `author`'s tree, whose event `id` came first from
// `from`, and a redundant push from `lazy` made that one lazy in it.
void template_from(Broadcast& b, const PublicKey& from, const PublicKey& lazy,
                   const PublicKey& author, const Hash& id) {
  b.neighbor_up(from);
  b.neighbor_up(lazy);
  b.on_admitted(0, {id}, {author}, from, 3);
  (void)drain(b);
  b.on_redundant_push(lazy, {author});
  (void)drain(b);
}

// The author of the events in most tests.
const PublicKey alice = peer_key(100);

// Pushes go to every eager neighbour but the sender, whole and at once; lazy neighbours get the
// ids only after ihave_delay_ms, in one batch with the events' distances.
TEST_CASE("broadcast pushes to eager neighbours and announces to lazy ones", "[node][broadcast]") {
  BroadcastConfig config;
  Broadcast b(config);
  const PublicKey a = peer_key(1), c = peer_key(2), d = peer_key(3);
  for (const auto& p : {a, c, d}) b.neighbor_up(p);
  b.on_prune(d, {alice});  // d asked us to stop pushing alice's events: lazy from now on
  REQUIRE(b.is_lazy(d, alice));
  b.on_admitted(1'000, {event_id(1)}, {alice}, a, 3);
  auto out = drain(b);
  auto pushes = only<bo::Push>(out);
  REQUIRE(pushes.size() == 1);  // c: not a (the sender), not d (lazy)
  CHECK(pushes[0].to == c);
  CHECK(pushes[0].hops == 3);
  CHECK(only<bo::IHave>(out).empty());
  REQUIRE(b.next_deadline() == 1'000 + config.ihave_delay_ms);
  b.on_admitted(1'050, {event_id(2)}, {alice}, std::nullopt, 0);  // to a and c; batched for d
  CHECK(only<bo::Push>(drain(b)).size() == 2);
  b.on_tick(1'100);  // early: nothing
  CHECK(drain(b).empty());
  b.on_tick(1'000 + config.ihave_delay_ms);
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
  tree.on_redundant_push(a, {alice, alice});
  auto out = drain(tree);
  REQUIRE(only<bo::Prune>(out).size() == 1);
  CHECK(only<bo::Prune>(out)[0].to == a);
  CHECK(only<bo::Prune>(out)[0].authors == std::vector<PublicKey>{alice});
  CHECK(tree.is_lazy(a, alice));
  tree.on_too_many_duplicates(a);  // already lazy: no second prune
  CHECK(drain(tree).empty());

  BroadcastConfig flood_config;
  flood_config.flood = true;
  Broadcast flood(flood_config);
  flood.neighbor_up(a);
  flood.on_redundant_push(a, {alice});
  flood.on_prune(a, {alice});
  CHECK(drain(flood).empty());
  CHECK_FALSE(flood.is_lazy(a, alice));
}

// An announced event that no push brings is grafted from its first announcer after
// graft_timeout_ms, then from the next one; an event that arrives in the meantime is not
// grafted. Once the event arrives, the links it was grafted over are eager again in its
// author's tree (not before: the author of an announced id is not known).
TEST_CASE("broadcast grafts missing announced events, announcer after announcer",
          "[node][broadcast]") {
  BroadcastConfig config;
  Broadcast b(config);
  const PublicKey a = peer_key(1), c = peer_key(2);
  b.neighbor_up(a);
  b.neighbor_up(c);
  b.on_prune(a, {alice});
  b.on_prune(c, {alice});
  b.on_ihave(0, a, tags({event_id(1), event_id(2)}), {1, 1});
  b.on_ihave(10, c, tags({event_id(1)}), {2});
  // In no template yet (no push came): the first announcer is asked to attach us, no more.
  const auto attach = only<bo::Graft>(drain(b));
  REQUIRE(attach.size() == 1);
  CHECK(attach[0].to == a);
  CHECK(attach[0].tags.empty());
  REQUIRE(b.next_deadline() == config.graft_timeout_ms);
  b.on_admitted(5, {event_id(2)}, {alice}, a, broadcast_no_hops);  // came by another way
  (void)drain(b);
  b.on_tick(config.graft_timeout_ms);
  auto grafts = only<bo::Graft>(drain(b));
  REQUIRE(grafts.size() == 1);
  CHECK(grafts[0].to == a);
  CHECK(grafts[0].tags == tags({event_id(1)}));
  CHECK(b.is_lazy(a, alice));  // until the event shows whose tree it is
  b.on_tick(2 * config.graft_timeout_ms);
  grafts = only<bo::Graft>(drain(b));
  REQUIRE(grafts.size() == 1);
  CHECK(grafts[0].to == c);
  b.on_admitted(2 * config.graft_timeout_ms + 5, {event_id(1)}, {alice}, c, 2);
  (void)drain(b);
  CHECK(b.missing() == 0);
  CHECK_FALSE(b.is_lazy(a, alice));
  CHECK_FALSE(b.is_lazy(c, alice));
}

// A neighbour that leaves takes its place in the tree with it; one whose link went also takes
// the announcements queued for it.
TEST_CASE("broadcast forgets neighbours that leave", "[node][broadcast]") {
  Broadcast b(BroadcastConfig{});
  const PublicKey a = peer_key(1), c = peer_key(2);
  b.neighbor_up(a);
  b.neighbor_up(c);
  b.on_prune(a, {alice});
  b.on_prune(c, {alice});
  b.on_admitted(0, {event_id(1)}, {alice}, std::nullopt, 0);
  CHECK(b.announcing().size() == 2);
  b.neighbor_down(a);
  b.neighbor_down(c);
  b.drop_announcements(c);
  CHECK_FALSE(b.is_neighbor(a));
  CHECK_FALSE(b.is_neighbor(c));
  CHECK(b.announcing() == std::vector<PublicKey>{a});  // left the set, link still up
  b.on_graft(c, {alice});  // no longer a neighbour: nothing happens
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
  b.on_prune(near, {alice});
  b.on_admitted(0, {event_id(1)}, {alice}, far, 6);
  (void)drain(b);
  b.on_ihave(10, near, tags({event_id(1)}), {4});  // 4 + 1 + 2 > 6: not enough
  CHECK(drain(b).empty());
  b.on_ihave(20, near, tags({event_id(1)}), {2});  // 2 + 1 + 2 <= 6: swap
  auto out = drain(b);
  REQUIRE(only<bo::Graft>(out).size() == 1);
  CHECK(only<bo::Graft>(out)[0].tags.empty());
  CHECK(only<bo::Graft>(out)[0].authors == std::vector<PublicKey>{alice});
  REQUIRE(only<bo::Prune>(out).size() == 1);
  CHECK(only<bo::Prune>(out)[0].to == far);
  CHECK_FALSE(b.is_lazy(near, alice));
  CHECK(b.is_lazy(far, alice));
}

// Each author has its own tree: a link pruned in alice's tree still carries bob's events, a new
// author's first event goes to every neighbour (new_tree_floods), a graft or prune naming an
// author changes only that author's tree, and one naming none prunes every tree. With shared
// trees, a prune for one author is a prune for all.
TEST_CASE("broadcast keeps a tree per author", "[node][broadcast]") {
  const PublicKey bob = peer_key(101), a = peer_key(1), c = peer_key(2);
  BroadcastConfig config;
  config.new_tree_floods = true;
  Broadcast b(config);
  b.neighbor_up(a);
  b.neighbor_up(c);
  b.on_redundant_push(a, {alice});
  (void)drain(b);
  b.on_admitted(0, {event_id(1), event_id(2)}, {alice, bob}, std::nullopt, 0);
  auto pushes = only<bo::Push>(drain(b));
  REQUIRE(pushes.size() == 2);
  for (const auto& p : pushes) {
    if (p.to == a) CHECK(p.ids == std::vector<Hash>{event_id(2)});  // bob's only
    if (p.to == c) CHECK(p.ids == std::vector<Hash>{event_id(1), event_id(2)});
  }
  CHECK(b.announcing() == std::vector<PublicKey>{a});  // alice's event, lazily
  b.on_graft(a, {alice});
  CHECK_FALSE(b.is_lazy(a, alice));
  b.on_prune(c, {bob});
  CHECK(b.is_lazy(c, bob));
  CHECK_FALSE(b.is_lazy(c, alice));
  b.on_prune(a, {});  // every tree
  CHECK(b.is_lazy(a, alice));
  CHECK(b.is_lazy(a, bob));
  CHECK(b.trees() == 2);

  BroadcastConfig shared_config;
  shared_config.tree_per_author = false;
  Broadcast shared(shared_config);
  shared.neighbor_up(a);
  shared.on_prune(a, {alice});
  CHECK(shared.is_lazy(a, bob));
  CHECK(shared.trees() == 1);
}

// Without new_tree_floods, the first author pushed here gives the template: a later new author's
// tree starts as a copy of it and then changes on its own, except that a graft mends the template
// too, and a prune of a link a graft mended takes it out of the template again (links of the
// first author's own tree stay). A new neighbour is eager in every tree but the template, and
// the template is never evicted.
TEST_CASE("broadcast starts new authors' trees as the first author's", "[node][broadcast]") {
  const PublicKey bob = peer_key(101), carol = peer_key(102), a = peer_key(1), c = peer_key(2),
                  d = peer_key(3);
  Broadcast b(BroadcastConfig{});
  b.neighbor_up(a);
  b.neighbor_up(c);
  b.on_admitted(0, {event_id(1)}, {alice}, a, 2);  // alice's first event: the template
  CHECK(only<bo::Push>(drain(b)).size() == 1);     // to c
  b.on_redundant_push(c, {alice});                 // c is lazy in alice's tree
  (void)drain(b);
  b.on_admitted(10, {event_id(2)}, {bob}, a, 3);  // bob is new: alice's tree, c lazy
  CHECK(only<bo::Push>(drain(b)).empty());
  CHECK(b.is_lazy(c, bob));
  b.on_prune(a, {bob});  // bob's tree only: a link of alice's own tree stays in the template
  CHECK(b.is_lazy(a, bob));
  CHECK_FALSE(b.is_lazy(a, alice));
  b.on_graft(c, {bob});  // bob's tree, and the template: mended
  CHECK_FALSE(b.is_lazy(c, bob));
  CHECK_FALSE(b.is_lazy(c, alice));
  b.on_redundant_push(c, {bob});  // a mended link pruned: out of the template again
  (void)drain(b);
  CHECK(b.is_lazy(c, bob));
  CHECK(b.is_lazy(c, alice));
  b.neighbor_up(d);
  CHECK_FALSE(b.is_lazy(d, bob));
  CHECK(b.is_lazy(d, alice));
  for (std::size_t i = 0; i < broadcast_trees_max; ++i) b.on_prune(a, {peer_key(1'000 + i)});
  b.on_prune(a, {carol});
  CHECK(b.is_lazy(d, alice));  // still there, still the template
  CHECK_FALSE(b.invariant_violation());
}

// Near a new author (fewer than new_tree_flood_hops links away: the author and its neighbours by
// default), its tree starts with every neighbour eager, whatever the template says; farther
// away, as the template.
TEST_CASE("broadcast floods a new author's first events near the author", "[node][broadcast]") {
  const PublicKey bob = peer_key(101), carol = peer_key(102), a = peer_key(1), c = peer_key(2),
                  d = peer_key(3);
  BroadcastConfig config;
  REQUIRE(config.new_tree_flood_hops == 2);
  Broadcast b(config);
  for (const auto& p : {a, c, d}) b.neighbor_up(p);
  b.on_admitted(0, {event_id(1)}, {alice}, a, 3);  // the template
  (void)drain(b);
  b.on_redundant_push(c, {alice});
  b.on_redundant_push(d, {alice});
  (void)drain(b);
  b.on_admitted(10, {event_id(2)}, {bob}, a, 1);  // from bob's neighbour a: we are 1 away
  CHECK(only<bo::Push>(drain(b)).size() == 2);    // c and d
  b.on_admitted(20, {event_id(3)}, {carol}, a, 2);  // 2 away from carol: the template
  CHECK(only<bo::Push>(drain(b)).empty());
  CHECK(b.is_lazy(c, carol));
}

// Trees are bounded: past broadcast_trees_max authors, the least recently used author's tree is
// forgotten, and its next event goes to every neighbour again (a new tree).
TEST_CASE("broadcast forgets the least recently used tree past its bound", "[node][broadcast]") {
  Broadcast b(BroadcastConfig{});
  const PublicKey a = peer_key(1);
  b.neighbor_up(a);
  for (std::size_t i = 0; i < broadcast_trees_max; ++i) b.on_prune(a, {peer_key(1'000 + i)});
  CHECK(b.trees() == broadcast_trees_max);
  b.on_prune(a, {peer_key(1'000)});  // used again: now the most recent
  b.on_prune(a, {alice});            // one more author: peer_key(1'001) goes
  CHECK(b.trees() == broadcast_trees_max);
  CHECK(b.is_lazy(a, peer_key(1'000)));
  CHECK_FALSE(b.is_lazy(a, peer_key(1'001)));
  CHECK(b.is_lazy(a, alice));
  CHECK_FALSE(b.invariant_violation());
}

// The first push of the template author comes down the link this node hangs by (its parent),
// which it asks to attach it: the parent's template may be another author's tree, lazy on that
// link (the first author's is), and new authors' events must still come down it.
TEST_CASE("broadcast asks the peer its template came from to attach it", "[node][broadcast]") {
  const PublicKey bob = peer_key(101), a = peer_key(1), c = peer_key(2);
  Broadcast b(BroadcastConfig{});
  b.neighbor_up(a);
  b.neighbor_up(c);
  b.on_admitted(0, {event_id(1)}, {alice}, a, 3);
  auto grafts = only<bo::Graft>(drain(b));
  REQUIRE(grafts.size() == 1);
  CHECK(grafts[0].to == a);
  CHECK(grafts[0].tags.empty());
  CHECK(grafts[0].authors.empty());
  b.on_attach(a);  // the answer: no more messages
  CHECK(drain(b).empty());
  // The parent's side: the first author, whose template is bob's tree with a lazy in it.
  Broadcast parent(BroadcastConfig{});
  template_from(parent, c, a, bob, event_id(2));
  REQUIRE(parent.is_lazy(a, bob));
  parent.on_attach(a);
  grafts = only<bo::Graft>(drain(parent));
  REQUIRE(grafts.size() == 1);
  CHECK(grafts[0].to == a);
  parent.on_admitted(10, {event_id(3)}, {peer_key(102)}, c, 3);  // a new author
  const auto pushes = only<bo::Push>(drain(parent));
  REQUIRE(pushes.size() == 1);
  CHECK(pushes[0].to == a);
}

// A node hangs in the template by the link its template author's events come by. When that
// link goes, the tree below the node is cut off: it asks another neighbour (lazy in the template
// if it can) to attach it, an empty Graft; the answer (the same message) attaches it, and the
// attachment is eager in every new author's tree on both ends.
TEST_CASE("broadcast asks to be attached when the link it hangs by goes", "[node][broadcast]") {
  const PublicKey bob = peer_key(101), carol = peer_key(102), a = peer_key(1), c = peer_key(2),
                  d = peer_key(3);
  Broadcast b(BroadcastConfig{});
  for (const auto& p : {a, c, d}) b.neighbor_up(p);
  b.on_admitted(0, {event_id(1)}, {alice}, a, 3);  // the template; we hang by a
  (void)drain(b);
  b.on_redundant_push(d, {alice});  // d lazy; c stays eager (below us)
  (void)drain(b);
  b.neighbor_down(c);  // a child goes: nothing to ask
  CHECK(drain(b).empty());
  b.neighbor_up(c);  // back, lazy in the template; we still hang by a
  CHECK(drain(b).empty());
  b.neighbor_down(a);  // our parent goes
  auto grafts = only<bo::Graft>(drain(b));
  REQUIRE(grafts.size() == 1);
  CHECK(grafts[0].tags.empty());
  CHECK(grafts[0].authors.empty());
  const PublicKey asked = grafts[0].to;
  CHECK((asked == c || asked == d));
  b.neighbor_up(peer_key(4));  // asked already: no second request
  CHECK(only<bo::Graft>(drain(b)).empty());
  b.on_attach(asked);  // the answer
  CHECK(drain(b).empty());
  b.on_admitted(10, {event_id(2)}, {bob}, peer_key(4), 3);  // a new author
  const auto pushes = only<bo::Push>(drain(b));
  REQUIRE(pushes.size() == 1);
  CHECK(pushes[0].to == asked);
  // The other side: a neighbour's request is answered once, and it is eager in new trees.
  Broadcast other(BroadcastConfig{});
  template_from(other, a, c, alice, event_id(1));
  other.on_attach(c);
  grafts = only<bo::Graft>(drain(other));
  REQUIRE(grafts.size() == 1);
  CHECK(grafts[0].to == c);
  other.on_attach(c);  // asked again: no second answer
  CHECK(drain(other).empty());
  other.on_admitted(10, {event_id(3)}, {carol}, a, 3);
  CHECK(only<bo::Push>(drain(other)).size() == 1);  // to c
  CHECK_FALSE(other.is_lazy(c, carol));
  CHECK(other.is_lazy(c, alice));  // the template itself is unchanged
}

// A node that joined after the template formed has none, and its neighbours made it lazy in
// theirs: the first announcement of an event it lacks makes it ask the announcer to attach it;
// then new authors' trees start with only the attachment eager (not every neighbour).
TEST_CASE("broadcast attaches a late joiner at its first announcement", "[node][broadcast]") {
  const PublicKey bob = peer_key(101), a = peer_key(1), c = peer_key(2);
  Broadcast b(BroadcastConfig{});
  b.neighbor_up(a);
  b.neighbor_up(c);
  CHECK(drain(b).empty());  // no template: nothing to attach to yet
  b.on_ihave(0, c, tags({event_id(1)}), {2});
  auto grafts = only<bo::Graft>(drain(b));
  REQUIRE(grafts.size() == 1);
  CHECK(grafts[0].to == c);
  CHECK(grafts[0].tags.empty());
  b.on_ihave(1, a, tags({event_id(2)}), {2});  // asked already
  CHECK(only<bo::Graft>(drain(b)).empty());
  b.on_attach(c);
  CHECK(drain(b).empty());
  b.on_admitted(10, {event_id(3)}, {bob}, a, 3);  // from a, before any template
  const auto pushes = only<bo::Push>(drain(b));
  REQUIRE(pushes.size() == 1);
  CHECK(pushes[0].to == c);
  CHECK(b.is_lazy(a, bob));
}

// A new link to a neighbour already in the set keeps the neighbour's place in the template.
TEST_CASE("broadcast keeps a known neighbour's template link on a new link", "[node][broadcast]") {
  const PublicKey a = peer_key(1), c = peer_key(2);
  Broadcast b(BroadcastConfig{});
  b.neighbor_up(a);
  b.neighbor_up(c);
  b.on_admitted(0, {event_id(1)}, {alice}, a, 3);
  (void)drain(b);
  b.neighbor_up(c);  // the same neighbour, a new link
  CHECK_FALSE(b.is_lazy(c, alice));
  CHECK(drain(b).empty());
}

// A node whose parent goes hangs by an attachment it already has (one the neighbour asked for):
// asking that neighbour again would go unanswered, and the request would never be retried.
TEST_CASE("broadcast hangs by an attachment it already has", "[node][broadcast]") {
  const PublicKey a = peer_key(1), c = peer_key(2), d = peer_key(3);
  Broadcast b(BroadcastConfig{});
  b.neighbor_up(a);
  b.neighbor_up(c);
  b.on_admitted(0, {event_id(1)}, {alice}, a, 3);  // parent a, asked
  (void)drain(b);
  b.on_attach(a);  // answered
  b.on_attach(c);  // c asks us: answered
  REQUIRE(only<bo::Graft>(drain(b)).size() == 1);
  b.neighbor_down(a);  // the parent goes; c is attached already
  CHECK(drain(b).empty());
  b.neighbor_up(d);  // hanging by c: nothing to ask
  CHECK(drain(b).empty());
}

}  // namespace
}  // namespace qun
