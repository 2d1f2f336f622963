// Group membership, keys and resolution, driven through member replicas.
#include <catch2/catch.hpp>

#include "node/limits.h"
#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;
constexpr std::uint64_t day_ms = 86'400'000;

// Founder creates "club"; returns the founder peer.
Peer founder_of(const std::string& name) {
  Peer f(0);
  f.replica = std::make_unique<Replica>(
      must(Replica::create_group(f.at(t0), name, "ada", GroupSettings{})));
  return f;
}

// `who` joins through an invite made by `inviter`, learning the group only from `source`
// (which may be a relay or any member): the inviter need not be online.
void join_via(Peer& inviter, Peer& who, const Replica& source, std::uint64_t now,
              const std::string& nick) {
  auto [ev, code] = must(inviter.replica->invite(inviter.at(now), 5, now + day_ms, {}));
  (void)ev;
  who.replica = std::make_unique<Replica>(code.group, &who.key);
  sync(*inviter.replica, const_cast<Replica&>(source));
  sync(source, *who.replica);
  must(who.replica->join(who.at(now + 1), code, nick));
}

// `who` joins through the founder's replica, and the founder learns of the join.
void join_and_sync(Peer& founder, Peer& who, std::uint64_t now, const std::string& nick) {
  join_via(founder, who, *founder.replica, now, nick);
  sync(*who.replica, *founder.replica);
}

std::vector<std::string> texts(const Replica& r) {
  std::vector<std::string> out;
  for (const auto& m : r.history())
    if (m.kind == EventKind::post) out.push_back(m.text.value_or("<unreadable>"));
  return out;
}

}  // namespace

// Proves a new group has its founder as the only member, readable name and nick, epoch 0.
TEST_CASE("create makes the founder the only member", "[node][group]") {
  Peer f = founder_of("club");
  const auto& s = f.replica->state();
  REQUIRE(s.members.size() == 1);
  CHECK(s.role_of(f.key.public_key()) == Role::founder);
  CHECK(f.replica->name() == "club");
  CHECK(f.replica->nick(f.key.public_key()) == "ada");
  CHECK(s.epoch == 0);
  CHECK(f.replica->id() == f.replica->group().ordered().front()->event.id);
}

// Proves joining works with the inviter offline (events come from a relay that cannot read),
// and that the newcomer reads history from before the invite (history visible by default).
TEST_CASE("join through a relay while the inviter is offline", "[node][group][invite]") {
  Peer f = founder_of("club");
  must(f.replica->post(f.at(t0 + 10), "before the invite"));
  Replica relay(f.replica->id(), nullptr);
  Peer bob(1);
  join_via(f, bob, relay, t0 + 20, "bob");
  CHECK(bob.replica->state().is_member(bob.key.public_key()));
  CHECK(texts(*bob.replica) == std::vector<std::string>{"before the invite"});
  CHECK(bob.replica->name() == "club");
  // The relay learns the join from bob and agrees; the founder catches up from the relay.
  sync(*bob.replica, relay);
  sync(relay, *f.replica);
  CHECK(f.replica->state().is_member(bob.key.public_key()));
  CHECK(f.replica->nick(bob.key.public_key()) == "bob");
  must(bob.replica->post(bob.at(t0 + 30), "hi from bob"));
  sync(*bob.replica, *f.replica);
  CHECK(texts(*f.replica) == std::vector<std::string>{"before the invite", "hi from bob"});
  // The relay resolves the same membership but reads nothing.
  sync(*f.replica, relay);
  CHECK(relay.state().members.size() == 2);
  CHECK(relay.keyring().size() == 0);
  CHECK(texts(relay) == std::vector<std::string>{"<unreadable>", "<unreadable>"});
}

// Proves a wrong invite secret, a used-up invite and an expired invite are refused, and that a
// join with a forged proof is rejected by every node that checks it.
TEST_CASE("bad invites are refused", "[node][group][invite]") {
  Peer f = founder_of("club");
  auto [ev, code] = must(f.replica->invite(f.at(t0 + 1), 1, t0 + day_ms, {}));
  (void)ev;

  Peer eve(9);
  eve.replica = std::make_unique<Replica>(f.replica->id(), &eve.key);
  sync(*f.replica, *eve.replica);
  InviteCode wrong{code.group, Seed(), {}};
  wrong.secret.mut_view()[0] = 1;
  auto r = eve.replica->join(eve.at(t0 + 2), wrong, "eve");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == Errc::not_found);

  // A forged join: eve signs a join naming the invite with a proof from the wrong key.
  Event forged;
  forged.group = f.replica->id();
  forged.author = eve.key.public_key();
  forged.parents = f.replica->group().next_parents();
  forged.depth = f.replica->group().next_depth(forged.parents);
  forged.time_ms = t0 + 3;
  forged.kind = EventKind::join;
  JoinPayload jp;
  jp.invite = f.replica->state().invites.begin()->first;
  jp.proof = eve.key.sign(join_proof_message(forged.group, eve.key.public_key()));
  jp.profile.data.assign(aead_tag_bytes, 0);
  forged.payload = encode_payload(jp);
  sign_event(forged, eve.key);
  auto report = f.replica->ingest({forged});
  REQUIRE(report.rejected.size() == 1);
  CHECK(report.rejected[0].second == "join proof does not match the invite");
  CHECK_FALSE(f.replica->state().is_member(eve.key.public_key()));

  // One use: the second joiner is refused locally, and its join would not resolve anyway.
  Peer bob(1), carol(2);
  bob.replica = std::make_unique<Replica>(f.replica->id(), &bob.key);
  carol.replica = std::make_unique<Replica>(f.replica->id(), &carol.key);
  sync(*f.replica, *bob.replica);
  must(bob.replica->join(bob.at(t0 + 4), code, "bob"));
  sync(*bob.replica, *carol.replica);
  auto second = carol.replica->join(carol.at(t0 + 5), code, "carol");
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code() == Errc::unauthorized);

  // Expired.
  auto [ev2, short_code] = must(f.replica->invite(f.at(t0 + 6), 3, t0 + 100, {}));
  (void)ev2;
  Peer dan(3);
  dan.replica = std::make_unique<Replica>(f.replica->id(), &dan.key);
  sync(*f.replica, *dan.replica);
  auto late = dan.replica->join(dan.at(t0 + 1000), short_code, "dan");
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().code() == Errc::unauthorized);
}

// Proves a removed member cannot decrypt anything posted after its removal, while remaining
// members can, and that the removal started a new epoch.
TEST_CASE("removal rotates the key", "[node][group][keys]") {
  Peer f = founder_of("club");
  Peer bob(1), carol(2);
  join_and_sync(f, bob, t0 + 10, "bob");
  join_and_sync(f, carol, t0 + 20, "carol");
  sync(*f.replica, *bob.replica);
  must(f.replica->post(f.at(t0 + 30), "all three"));
  must(f.replica->remove(f.at(t0 + 40), bob.key.public_key()));
  must(f.replica->post(f.at(t0 + 50), "after bob left"));
  CHECK(f.replica->state().epoch == 1);
  sync(*f.replica, *bob.replica);
  sync(*f.replica, *carol.replica);
  CHECK_FALSE(bob.replica->state().is_member(bob.key.public_key()));
  CHECK(texts(*bob.replica) ==
        std::vector<std::string>{"all three", "<unreadable>"});
  CHECK(texts(*carol.replica) == std::vector<std::string>{"all three", "after bob left"});
  // Bob holds no key of epoch 1 at all.
  CHECK(bob.replica->keyring().for_epoch(1).empty());
  // Bob's later posts do not count.
  auto bob_post = bob.replica->post(bob.at(t0 + 60), "still here?");
  CHECK_FALSE(bob_post.ok());
}

// Proves a leave forces a rekey before the next post, so the leaver cannot read it.
TEST_CASE("leave rotates the key at the next post", "[node][group][keys]") {
  Peer f = founder_of("club");
  Peer bob(1);
  join_and_sync(f, bob, t0 + 10, "bob");
  must(bob.replica->leave(bob.at(t0 + 20)));
  sync(*bob.replica, *f.replica);
  CHECK(f.replica->state().needs_rekey());
  auto events = must(f.replica->post(f.at(t0 + 30), "bob is gone"));
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == EventKind::rekey);
  sync(*f.replica, *bob.replica);
  CHECK(texts(*bob.replica) == std::vector<std::string>{"<unreadable>"});
  CHECK_FALSE(f.replica->state().needs_rekey());
}

// Proves "removal wins": a post the removed member made concurrently with its removal is
// invalid on every replica, whichever event arrives first.
TEST_CASE("a removal invalidates the removed member's concurrent posts", "[node][group][resolve]") {
  Peer f = founder_of("club");
  Peer bob(1);
  join_and_sync(f, bob, t0 + 10, "bob");
  // Concurrent: bob posts (later clock) while the founder removes him.
  auto post = must(bob.replica->post(bob.at(t0 + 100), "concurrent"));
  auto removal = single(must(f.replica->remove(f.at(t0 + 200), bob.key.public_key())));
  Replica a(f.replica->id(), nullptr), b(f.replica->id(), nullptr);
  auto base = all_events(*f.replica);
  a.ingest(base);
  a.ingest(post);
  b.ingest(base);
  b.ingest({removal});
  b.ingest(post);
  for (Replica* r : {&a, &b}) {
    if (!r->group().has(removal.id)) r->ingest({removal});
    const auto* rec = r->group().find(post[0].id);
    REQUIRE(rec);
    CHECK_FALSE(rec->accepted);
  }
  CHECK(a.state().history == b.state().history);
}

// Proves two admins removing each other concurrently resolve the same way everywhere: the
// removal that comes first in the order wins and the other is void.
TEST_CASE("mutual concurrent removals resolve one way", "[node][group][resolve]") {
  Peer f = founder_of("club");
  Peer bob(1), carol(2);
  join_and_sync(f, bob, t0 + 10, "bob");
  join_and_sync(f, carol, t0 + 20, "carol");
  must(f.replica->set_role(f.at(t0 + 30), bob.key.public_key(), Role::admin));
  must(f.replica->set_role(f.at(t0 + 31), carol.key.public_key(), Role::admin));
  sync(*f.replica, *bob.replica);
  sync(*f.replica, *carol.replica);
  auto r1 = single(must(bob.replica->remove(bob.at(t0 + 40), carol.key.public_key())));
  auto r2 = single(must(carol.replica->remove(carol.at(t0 + 41), bob.key.public_key())));
  Replica x(f.replica->id(), nullptr), y(f.replica->id(), nullptr);
  auto base = all_events(*f.replica);
  x.ingest(base);
  x.ingest({r1});
  x.ingest({r2});
  y.ingest(base);
  y.ingest({r2});
  y.ingest({r1});
  CHECK(x.state().history == y.state().history);
  // r1 has the earlier clock: bob stays, carol goes.
  CHECK(x.state().is_member(bob.key.public_key()));
  CHECK_FALSE(x.state().is_member(carol.key.public_key()));
  CHECK(y.state().is_member(bob.key.public_key()));
  CHECK_FALSE(y.state().is_member(carol.key.public_key()));
}

// Proves a demotion racing a removal by the demoted admin voids the removal everywhere.
TEST_CASE("a demotion voids the demoted admin's concurrent removal", "[node][group][resolve]") {
  Peer f = founder_of("club");
  Peer bob(1), carol(2);
  join_and_sync(f, bob, t0 + 10, "bob");
  join_and_sync(f, carol, t0 + 20, "carol");
  must(f.replica->set_role(f.at(t0 + 30), bob.key.public_key(), Role::admin));
  sync(*f.replica, *bob.replica);
  // Bob's removal sorts before the demotion, yet loses.
  auto removal = single(must(bob.replica->remove(bob.at(t0 + 40), carol.key.public_key())));
  auto demotion = must(f.replica->set_role(f.at(t0 + 50), bob.key.public_key(), Role::member));
  f.replica->ingest({removal});
  bob.replica->ingest({demotion});
  for (Replica* r : {f.replica.get(), bob.replica.get()}) {
    CHECK(r->state().is_member(carol.key.public_key()));
    CHECK(r->state().role_of(bob.key.public_key()) == Role::member);
    CHECK_FALSE(r->group().find(removal.id)->accepted);
  }
  CHECK(f.replica->state().history == bob.replica->state().history);
}

// Proves the group outlives its founder: when the last admin leaves, the longest-standing member
// becomes admin and can invite and moderate.
TEST_CASE("succession after the founder leaves", "[node][group]") {
  Peer f = founder_of("club");
  Peer bob(1), carol(2);
  join_and_sync(f, bob, t0 + 10, "bob");
  join_and_sync(f, carol, t0 + 20, "carol");
  must(f.replica->leave(f.at(t0 + 30)));
  sync(*f.replica, *bob.replica);
  sync(*f.replica, *carol.replica);
  CHECK(bob.replica->state().role_of(bob.key.public_key()) == Role::admin);
  CHECK(carol.replica->state().role_of(bob.key.public_key()) == Role::admin);
  must(bob.replica->post(bob.at(t0 + 40), "still going"));
  Peer dan(3);
  join_via(bob, dan, *bob.replica, t0 + 50, "dan");
  sync(*dan.replica, *bob.replica);
  CHECK(bob.replica->state().members.size() == 3);
  must(bob.replica->remove(bob.at(t0 + 60), carol.key.public_key()));
  CHECK(bob.replica->state().members.size() == 2);
}

// Proves events from outsiders and events with bad signatures are rejected at admission and
// never stored, and that unauthorised actions of members have no effect.
TEST_CASE("forged and unauthorised events change nothing", "[node][group]") {
  Peer f = founder_of("club");
  Peer bob(1);
  join_and_sync(f, bob, t0 + 10, "bob");
  auto before = f.replica->state().history;

  Peer mallory(7);
  Event outsider;
  outsider.group = f.replica->id();
  outsider.author = mallory.key.public_key();
  outsider.parents = f.replica->group().next_parents();
  outsider.depth = f.replica->group().next_depth(outsider.parents);
  outsider.kind = EventKind::set_role;
  outsider.payload = encode_payload(SetRolePayload{mallory.key.public_key(), Role::founder});
  sign_event(outsider, mallory.key);
  auto report = f.replica->ingest({outsider});
  REQUIRE(report.rejected.size() == 1);
  CHECK_FALSE(f.replica->group().has(outsider.id));

  // A member's event re-signed by someone else.
  auto post = must(bob.replica->post(bob.at(t0 + 20), "x"));
  Event bad = post[0];
  bad.signature = mallory.key.sign(as_bytes("nope"));
  CHECK(f.replica->ingest({bad}).rejected.size() == 1);

  // Bob (member) tries to promote himself: admitted, but it has no effect.
  auto self_promote = bob.replica->set_role(bob.at(t0 + 30), bob.key.public_key(), Role::admin);
  CHECK_FALSE(self_promote.ok());
  CHECK(f.replica->state().history == before);
}

// Proves events whose parents are missing wait and are admitted once the parents arrive.
TEST_CASE("pending events wait for their parents", "[node][group]") {
  Peer f = founder_of("club");
  for (int i = 0; i < 5; ++i) must(f.replica->post(f.at(t0 + 10 + i), "m" + std::to_string(i)));
  auto events = all_events(*f.replica);
  Replica r(f.replica->id(), nullptr);
  std::vector<Event> reversed(events.rbegin(), events.rend() - 1);
  auto rep = r.ingest(reversed);
  CHECK(rep.admitted.empty());
  CHECK(rep.pending == 5);
  CHECK(r.group().missing() == std::vector<Hash>{f.replica->id()});
  rep = r.ingest({events.front()});
  CHECK(rep.admitted.size() == 6);
  CHECK(r.state().history == f.replica->state().history);
}

// Proves the pending set is bounded: past pending_events_max the oldest orphans are dropped.
TEST_CASE("pending events are bounded", "[node][group]") {
  Peer f = founder_of("club");
  Replica r(f.replica->id(), nullptr);
  std::vector<Event> orphans;
  for (std::size_t i = 0; i < limits::pending_events_max + 10; ++i) {
    Event e;
    e.group = f.replica->id();
    e.author = f.key.public_key();
    e.parents = {hash(as_bytes("missing" + std::to_string(i)))};
    e.depth = 1;
    e.kind = EventKind::leave;
    e.payload = encode_leave_payload();
    sign_event(e, f.key);
    orphans.push_back(e);
  }
  auto rep = r.ingest(orphans);
  CHECK(rep.pending == limits::pending_events_max);
  CHECK(rep.pending_dropped == 10);
}

// Proves a stranger's parentless events are bounded by the sender's share of the pending set,
// that the share of an honest sender survives the flood, and that the group's bound holds
// however many senders flood: the largest sender loses its oldest first.
TEST_CASE("pending events are bounded per sender and per group", "[node][group]") {
  Peer f = founder_of("club");
  const Hash gid = f.replica->id();
  Replica r(gid, nullptr);
  const SigningKey stranger = identity(900);
  const PublicKey flooder = identity(901).public_key();
  const PublicKey honest = identity(902).public_key();
  // The honest sender's event waits for a parent that will come.
  auto post = must(f.replica->post(f.at(t0 + 10), "hello"));
  REQUIRE(r.ingest({post.back()}, honest).pending == 1);
  // 20 KB junk posts, as in the reported flood, far past the per-sender share.
  constexpr std::size_t junk = 20 * 1024;
  const std::size_t flood = 3 * limits::pending_sender_bytes_max / junk;
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < flood; i += 50) {
    std::vector<Event> batch;
    for (std::size_t k = i; k < std::min(flood, i + 50); ++k)
      batch.push_back(orphan_post(stranger, gid, k, junk));
    auto rep = r.ingest(std::move(batch), flooder);
    dropped += rep.evicted.size();
    CHECK(r.group().pending_bytes_from(flooder) <= limits::pending_sender_bytes_max);
  }
  CHECK(dropped > 0);
  CHECK(r.group().pending_bytes_from(honest) > 0);
  CHECK(r.group().pending_bytes() <= limits::pending_bytes_max);
  // Twenty flooders (each its own link) cannot take the group past its bound either.
  for (std::uint64_t s = 0; s < 20; ++s) {
    const PublicKey from = identity(1000 + s).public_key();
    std::vector<Event> batch;
    for (std::size_t k = 0; k < limits::pending_sender_bytes_max / junk; ++k)
      batch.push_back(orphan_post(stranger, gid, 100'000 * (s + 1) + k, junk));
    (void)r.ingest(std::move(batch), from);
    CHECK(r.group().pending_bytes() <= limits::pending_bytes_max);
  }
  // The honest event is the smallest share: it is still there and is admitted with its parent.
  REQUIRE(r.group().pending_bytes_from(honest) > 0);
  auto rep = r.ingest(all_events(*f.replica));
  CHECK(r.group().has(post.back().id));
  CHECK(r.state().history == f.replica->state().history);
  (void)rep;
}

// Proves what a sender alone sent and still waits is forgotten when it goes, and only that.
TEST_CASE("pending events go with their sender", "[node][group]") {
  Peer f = founder_of("club");
  const Hash gid = f.replica->id();
  Replica r(gid, nullptr);
  const SigningKey stranger = identity(900);
  const PublicKey a = identity(901).public_key();
  const PublicKey b = identity(902).public_key();
  std::vector<Event> from_a, from_b;
  for (std::uint64_t k = 0; k < 10; ++k) from_a.push_back(orphan_post(stranger, gid, k));
  for (std::uint64_t k = 10; k < 13; ++k) from_b.push_back(orphan_post(stranger, gid, k));
  auto rep = r.ingest(from_a, a);
  CHECK(rep.pending_added.size() == 10);
  // The same events again from b are duplicates: they stay a's.
  rep = r.ingest({from_a[0]}, b);
  CHECK(rep.duplicates == 1);
  CHECK(rep.pending_added.empty());
  (void)r.ingest(from_b, b);
  CHECK(r.group().pending_size() == 13);
  rep = r.drop_pending_from(a);
  CHECK(rep.evicted.size() == 10);
  CHECK(r.group().pending_size() == 3);
  CHECK(r.group().pending_bytes_from(a) == 0);
  CHECK(r.group().missing().size() == 3);
  // A pending event that is admitted later no longer counts for its sender.
  auto post = must(f.replica->post(f.at(t0 + 10), "late parent"));
  (void)r.ingest({post.back()}, b);
  CHECK(r.group().pending_bytes_from(b) > 0);
  (void)r.ingest(all_events(*f.replica));
  CHECK(r.group().has(post.back().id));
  rep = r.drop_pending_from(b);
  CHECK(rep.evicted.size() == 3);
  CHECK(r.group().pending_size() == 0);
  CHECK(r.group().pending_bytes() == 0);
}
