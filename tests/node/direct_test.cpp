// Direct groups (node/direct.h): the resolution rules that keep a DM to its two members, and the
// receiving side's handling of offers (who may offer, blocking, bounds, the check after fetching).
// The Node's part (offers on links, relays serving DMs) runs between real processes in
// tests/integration/dm_test.cpp.
#include <catch2/catch.hpp>

#include "node/direct.h"
#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;
constexpr std::uint64_t day_ms = 86'400'000;

// A direct group founded by `a` with `b`, and b's replica of it after a full sync.
void open_dm(Peer& a, Peer& b) {
  a.replica = std::make_unique<Replica>(must(Replica::create_direct(a.at(t0), "ada", b.key.public_key())));
  b.replica = std::make_unique<Replica>(a.replica->id(), &b.key);
  sync(*a.replica, *b.replica);
}

// An add by `author` on top of `on`'s heads, bypassing Replica's checks: what a modified client
// could send.
Event forge_add(const Replica& on, Peer& author, const PublicKey& member) {
  Event e;
  e.group = on.id();
  e.author = author.key.public_key();
  e.parents = on.group().next_parents();
  e.depth = on.group().next_depth(e.parents);
  e.time_ms = t0 + 10;
  e.kind = EventKind::add;
  e.epoch = on.state().epoch;
  e.payload = encode_payload(AddPayload{member, sealed_to(member, Bytes(40, 1), author.rng)});
  sign_event(e, author.key);
  return e;
}

}  // namespace

// Proves a DM is readable by both and names exactly its two members: after create_direct and a
// sync, both replicas hold the key (b posts and a reads it), the pair is (founder, peer), and
// direct::other gives each the other one.
TEST_CASE("direct: a DM is a group of two that both can read", "[node][direct]") {
  Peer a(1), b(2);
  open_dm(a, b);
  const GroupState& s = b.replica->state();
  CHECK(s.settings.direct);
  REQUIRE(s.members.size() == 2);
  REQUIRE(s.direct_pair.size() == 2);
  CHECK(s.direct_pair[0] == a.key.public_key());
  CHECK(s.direct_pair[1] == b.key.public_key());
  CHECK(direct::other(s, a.key.public_key()) == b.key.public_key());
  CHECK(direct::other(s, b.key.public_key()) == a.key.public_key());
  CHECK_FALSE(direct::other(s, identity(3).public_key()).has_value());
  auto posted = must(b.replica->post(b.at(t0 + 5), "hi ada"));
  a.replica->ingest(posted);
  auto h = a.replica->history();
  CHECK(h.back().text == std::optional<std::string>("hi ada"));
  CHECK(Replica::create_direct(a.at(t0), "ada", a.key.public_key()).error().code() ==
        Errc::invalid_argument);
}

// Proves a third key cannot get in: the founder's second add (through Replica, then forged past
// Replica's checks) is refused by resolution; an invite is refused; set-role, remove, ban and
// set-settings are refused; the members stay the pair, on both replicas.
TEST_CASE("direct: a third key cannot join a direct group", "[node][direct]") {
  Peer a(1), b(2), c(3);
  open_dm(a, b);
  // Replica lets an admin author an add; resolution refuses it in a DM.
  auto add = a.replica->add(a.at(t0 + 10), c.key.public_key());
  if (add.ok()) b.replica->ingest({add.value()});
  Event forged = forge_add(*b.replica, a, c.key.public_key());
  b.replica->ingest({forged});
  const EventRecord* rec = b.replica->group().find(forged.id);
  REQUIRE(rec != nullptr);
  CHECK_FALSE(rec->accepted);
  CHECK(rec->why_not == "a direct group has its two members already");
  // Invites, roles, removal, bans and settings changes are all refused.
  auto inv = a.replica->invite(a.at(t0 + 20), 1, t0 + day_ms, {});
  if (inv.ok()) {
    b.replica->ingest({inv.value().first});
    CHECK_FALSE(b.replica->group().find(inv.value().first.id)->accepted);
  }
  for (auto made : {a.replica->set_role(a.at(t0 + 30), b.key.public_key(), Role::admin),
                    a.replica->set_settings(a.at(t0 + 50), GroupSettings{})}) {
    if (!made.ok()) continue;
    b.replica->ingest({made.value()});
    CHECK_FALSE(b.replica->group().find(made.value().id)->accepted);
  }
  if (auto removal = a.replica->remove(a.at(t0 + 40), b.key.public_key()); removal.ok()) {
    b.replica->ingest(removal.value());
    for (const Event& e : removal.value())
      if (e.kind == EventKind::remove) CHECK_FALSE(b.replica->group().find(e.id)->accepted);
  }
  for (const Replica* r : {a.replica.get(), b.replica.get()}) {
    CHECK(r->state().members.size() == 2);
    CHECK_FALSE(r->state().is_member(c.key.public_key()));
    CHECK(r->state().settings.direct);
    CHECK(r->state().direct_pair.size() == 2);
  }
}

// Proves the direct flag is part of the create's clear payload (bit 2), so a keyless relay sees
// it, and that an ordinary create still decodes as not direct.
TEST_CASE("direct: the direct setting travels in the create's flags", "[node][direct]") {
  Peer a(1), b(2);
  open_dm(a, b);
  Replica keyless(a.replica->id(), nullptr);
  sync(*a.replica, keyless);
  CHECK(keyless.state().settings.direct);
  CHECK(keyless.state().direct_pair.size() == 2);
  Replica plain = must(Replica::create_group(a.at(t0), "club", "ada", GroupSettings{}));
  CHECK_FALSE(plain.state().settings.direct);
  CHECK(plain.state().direct_pair.empty());
}

// Proves who may offer: an offer from a peer that shares no group is dropped (stranger); from a
// blocked key, dropped (blocked), also when it shares a group; a group held already is nothing
// to do; only a co-member's offer is taken, and it is being checked afterwards.
TEST_CASE("direct: an offer from a non-co-member or a blocked key is ignored", "[node][direct]") {
  direct::Offers offers;
  const PublicKey friend_key = identity(1).public_key(), stranger = identity(2).public_key();
  const Hash g = hash(as_bytes("g1"));
  CHECK(offers.on_offer(0, g, stranger, false, false) == direct::OfferDecision::stranger);
  offers.set_blocked(friend_key, true);
  CHECK(offers.on_offer(0, g, friend_key, false, true) == direct::OfferDecision::blocked);
  CHECK_FALSE(offers.checking(g));
  offers.set_blocked(friend_key, false);
  CHECK(offers.on_offer(0, g, friend_key, true, true) == direct::OfferDecision::held);
  CHECK(offers.on_offer(0, g, friend_key, false, true) == direct::OfferDecision::take);
  CHECK(offers.checking(g));
}

// Proves the bounds: at most offers_checking_per_peer_max offers of one peer and
// offers_checking_max in all are checked at once; past them offers are dropped (busy), and an
// offer whose check ends (dropped at its deadline) frees its place and is remembered as refused,
// so offering it again costs nothing.
TEST_CASE("direct: offers being checked are bounded, per peer and in all", "[node][direct]") {
  direct::Offers offers;
  auto gid = [](std::size_t n) { return hash(as_bytes("offer " + std::to_string(n))); };
  const PublicKey one = identity(1).public_key();
  for (std::size_t i = 0; i < direct::offers_checking_per_peer_max; ++i)
    CHECK(offers.on_offer(0, gid(i), one, false, true) == direct::OfferDecision::take);
  CHECK(offers.on_offer(0, gid(100), one, false, true) == direct::OfferDecision::busy);
  std::size_t n = direct::offers_checking_per_peer_max;
  for (std::uint64_t p = 2; offers.checking_count() < direct::offers_checking_max; ++p)
    for (std::size_t i = 0; i < direct::offers_checking_per_peer_max &&
                            offers.checking_count() < direct::offers_checking_max; ++i)
      CHECK(offers.on_offer(0, gid(n++), identity(p).public_key(), false, true) ==
            direct::OfferDecision::take);
  CHECK(offers.on_offer(0, gid(n++), identity(99).public_key(), false, true) ==
        direct::OfferDecision::busy);
  CHECK(offers.checking_count() == direct::offers_checking_max);
  // Nothing arrives: at the deadline every check ends with a drop.
  GroupState empty;
  const auto due = offers.due(direct::offer_wait_ms);
  CHECK(due.size() == direct::offers_checking_max);
  CHECK(offers.due(direct::offer_wait_ms - 1).empty());
  std::string why;
  for (const Hash& g : due)
    CHECK(offers.review(direct::offer_wait_ms, g, empty, one, &why) == direct::Verdict::drop);
  CHECK(why == "offered group's create event did not arrive in time");
  CHECK(offers.checking_count() == 0);
  CHECK(offers.on_offer(0, gid(0), one, false, true) == direct::OfferDecision::refused);
  CHECK(offers.on_offer(0, gid(200), one, false, true) == direct::OfferDecision::take);
}

// Proves the check after fetching: a fetched group that is not direct is dropped at once; a DM
// between two others is dropped; a DM with a blocked member is dropped; a DM naming this node,
// once its add is in, is kept; before the add it waits.
TEST_CASE("direct: an offered group is kept only as a DM naming this node", "[node][direct]") {
  Peer a(1), b(2), c(3);
  std::string why;
  {
    direct::Offers offers;
    Replica plain = must(Replica::create_group(a.at(t0), "club", "ada", GroupSettings{}));
    REQUIRE(offers.on_offer(0, plain.id(), a.key.public_key(), false, true) == direct::OfferDecision::take);
    CHECK(offers.review(1, plain.id(), plain.state(), b.key.public_key(), &why) == direct::Verdict::drop);
    CHECK(why == "offered group is not a direct group");
  }
  open_dm(a, b);
  {
    direct::Offers offers;
    const Hash g = a.replica->id();
    REQUIRE(offers.on_offer(0, g, a.key.public_key(), false, true) == direct::OfferDecision::take);
    CHECK(offers.review(1, g, a.replica->state(), c.key.public_key(), &why) == direct::Verdict::drop);
    CHECK(why == "offered direct group does not name this node");
  }
  {
    direct::Offers offers;
    const Hash g = a.replica->id();
    REQUIRE(offers.on_offer(0, g, identity(9).public_key(), false, true) == direct::OfferDecision::take);
    offers.set_blocked(a.key.public_key(), true);
    CHECK(offers.review(1, g, b.replica->state(), b.key.public_key(), &why) == direct::Verdict::drop);
    CHECK(why == "offered direct group is with a blocked member");
  }
  {
    direct::Offers offers;
    const Hash g = a.replica->id();
    // Only the create so far: it waits for the add.
    Replica partial(g, &b.key);
    partial.ingest({all_events(*a.replica).front()});
    REQUIRE(offers.on_offer(0, g, a.key.public_key(), false, true) == direct::OfferDecision::take);
    CHECK(offers.review(1, g, partial.state(), b.key.public_key(), &why) == direct::Verdict::wait);
    CHECK(offers.review(2, g, b.replica->state(), b.key.public_key(), &why) == direct::Verdict::keep);
    CHECK_FALSE(offers.checking(g));
  }
}
