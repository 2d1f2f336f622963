// Group protocol attacks by members and code holders (issue 10, findings 3 to 6), each played by
// a test: a far-future clock, replayed and backdated joins, an expired code used with old
// parents, a closed code that still reads, and junk, partial and wrong-key rekeys.
#include <catch2/catch.hpp>

#include <functional>

#include "node/limits.h"
#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;
constexpr std::uint64_t day_ms = 86'400'000;
// The largest time an event can carry (event.h: time_ms at most 2^63 - 1).
constexpr std::uint64_t time_max = (std::uint64_t{1} << 63) - 1;

Peer founder_of(const std::string& name) {
  Peer f(0);
  f.replica = std::make_unique<Replica>(
      must(Replica::create_group(f.at(t0), name, "ada", GroupSettings{})));
  return f;
}

// A replica for `p` that has everything `from` has.
void fresh_copy(Peer& p, const Replica& from) {
  p.replica = std::make_unique<Replica>(from.id(), &p.key);
  sync(from, *p.replica);
}

void join_and_sync(Peer& founder, Peer& who, std::uint64_t now, const std::string& nick) {
  auto [ev, code] = must(founder.replica->invite(founder.at(now), 5, now + day_ms, {}));
  (void)ev;
  fresh_copy(who, *founder.replica);
  must(who.replica->join(who.at(now + 1), code, nick));
  sync(*who.replica, *founder.replica);
}

std::vector<std::string> texts(const Replica& r) {
  std::vector<std::string> out;
  for (const auto& m : r.history())
    if (m.kind == EventKind::post) out.push_back(m.text.value_or("<unreadable>"));
  return out;
}

// Runs `p`'s upkeep at `now` and returns what it authored.
std::vector<Event> upkeep(Peer& p, std::uint64_t now) { return p.replica->upkeep(p.at(now)); }

// Everyone gets everything.
void sync_all(std::vector<Peer*> peers) {
  for (auto* a : peers)
    for (auto* b : peers) sync(*a->replica, *b->replica);
}

}  // namespace

// Finding 3. Proves a member's post dated 2^63 - 1 no longer makes later joins "expired": the
// order key orders events and is never compared with an invite's expiry. Before the fix the
// join resolved as "invite expired" (its order key exceeded every expiry) and join() failed.
TEST_CASE("a far-future post does not lock the group against joins", "[node][group][invite]") {
  Peer f = founder_of("club");
  Peer bob(1), carol(2);
  join_and_sync(f, bob, t0 + 10, "bob");
  must(bob.replica->post(bob.at(time_max), "from the end of time"));
  sync(*bob.replica, *f.replica);
  auto [ev, code] = must(f.replica->invite(f.at(t0 + 20), 1, t0 + day_ms, {}));
  (void)ev;
  fresh_copy(carol, *f.replica);
  must(carol.replica->join(carol.at(t0 + 30), code, "carol"));
  sync_all({&f, &bob, &carol});
  for (auto* p : {&f, &bob, &carol}) CHECK(p->replica->state().is_member(carol.key.public_key()));
  // Carol can post and be read.
  must(carol.replica->post(carol.at(t0 + 40), "carol here"));
  sync_all({&f, &bob, &carol});
  CHECK(texts(*f.replica).back() == "carol here");
}

// Finding 5, the lead's walk-through. B joins with the last use of a one-use code and the
// closer (the invite's creator) sees it and closes the invite as used up; M replays the code
// with a backdated join that sorts before B's. Before any close, M takes the use and B fails
// (what every node showed before the fix, for good). Once the close is in: first pass M takes the
// use and B fails; the close revokes M's join (concurrent with it), the fold restarts, B takes
// the use and the close is accepted. Every arrival order gives that result.
TEST_CASE("a backdated join loses to the honest join the closer saw", "[node][group][invite]") {
  Peer f = founder_of("club");
  auto [ev, code] = must(f.replica->invite(f.at(t0 + 10), 1, t0 + day_ms, {}));
  (void)ev;
  Peer b(1), m(2);
  fresh_copy(b, *f.replica);
  fresh_copy(m, *f.replica);
  const auto base = all_events(*f.replica);
  Event b_join = must(b.replica->join(b.at(t0 + 1000), code, "bob"));
  // M never saw B's join: its join names the same parents and an earlier time.
  Event m_join = must(m.replica->join(m.at(t0 + 500), code, "mallory"));
  REQUIRE(f.replica->group().order_key_for(m_join.parents, m_join.time_ms) <
          f.replica->group().order_key_for(b_join.parents, b_join.time_ms));

  // The creator sees B's join and closes the used-up invite at once.
  f.replica->ingest({b_join});
  auto closes = upkeep(f, t0 + 1100);
  REQUIRE(closes.size() == 1);
  CHECK(closes[0].kind == EventKind::close_invite);
  b.replica->ingest(closes);
  // The close makes B's first post rekey first (the code's bundle held the current key).
  auto b_posted = must(b.replica->post(b.at(t0 + 1200), "bob's first post"));
  REQUIRE(b_posted.size() == 2);
  const Event b_rekey = b_posted[0], b_post = b_posted[1];

  // Without the close, the backdated join wins (the old outcome).
  Replica no_close(f.replica->id(), nullptr);
  no_close.ingest(base);
  no_close.ingest({b_join, m_join});
  CHECK(no_close.state().is_member(m.key.public_key()));
  CHECK_FALSE(no_close.state().is_member(b.key.public_key()));

  std::vector<std::vector<Event>> orders = {
      {m_join, b_join, closes[0], b_rekey, b_post},
      {b_join, closes[0], b_rekey, b_post, m_join},
      {m_join, closes[0], b_join, b_rekey, b_post},
  };
  for (auto& order : orders) {
    Replica r(f.replica->id(), nullptr);
    r.ingest(base);
    for (auto& e : order) r.ingest({e});
    CHECK(r.state().is_member(b.key.public_key()));
    CHECK_FALSE(r.state().is_member(m.key.public_key()));
    CHECK(r.state().invites.begin()->second.uses == 1);
    CHECK(r.state().invites.begin()->second.closed_by == closes[0].id);
    const auto* rec = r.group().find(b_post.id);
    REQUIRE(rec);
    CHECK(rec->accepted);
  }
  // M itself, once it hears of the close, sees that it is no member and cannot post.
  m.replica->ingest(all_events(*b.replica));
  CHECK_FALSE(m.replica->state().is_member(m.key.public_key()));
  CHECK_FALSE(m.replica->post(m.at(t0 + 2000), "mine now").ok());
}

// Finding 5, expiry. Proves an expired code used with old parents and an old time (made after
// expiry by a holder whose copy stops before it) fails once an expired close exists, whichever
// arrives first; and that the close cannot be made before the expiry.
TEST_CASE("an expired code with old parents fails once a close exists", "[node][group][invite]") {
  Peer f = founder_of("club");
  const std::uint64_t expires = t0 + 100;
  auto [ev, code] = must(f.replica->invite(f.at(t0 + 10), 3, expires, {}));
  (void)ev;
  Peer m(2);
  fresh_copy(m, *f.replica);  // M's copy stops here, before the expiry
  const auto base = all_events(*f.replica);
  // Too early: nobody can close an unexpired invite as expired.
  const Hash invite = f.replica->state().invites.begin()->first;
  CHECK(f.replica->close_invite(f.at(expires - 1), invite, InviteCloseReason::expired)
            .error()
            .code() == Errc::unauthorized);
  CHECK(upkeep(f, expires + limits::invite_close_grace_ms - 1).empty());
  auto closes = upkeep(f, expires + limits::invite_close_grace_ms);
  REQUIRE(closes.size() == 1);
  // A day later M joins, claiming to be back before the expiry.
  Event m_join = must(m.replica->join(m.at(t0 + 50), code, "mallory"));
  for (bool join_first : {true, false}) {
    Replica r(f.replica->id(), nullptr);
    r.ingest(base);
    if (join_first) {
      r.ingest({m_join});
      CHECK(r.state().is_member(m.key.public_key()));  // until the close arrives
      r.ingest(closes);
    } else {
      r.ingest(closes);
      r.ingest({m_join});
    }
    CHECK_FALSE(r.state().is_member(m.key.public_key()));
    CHECK(r.state().invites.at(invite).revoked);
  }
}

// Finding 6. Proves the holder of a code that is used up, revoked or expired reads nothing posted
// after the close: the close makes the next post start a new epoch whose key is not sealed to
// the closed invite (before the fix the post used the key the invite's bundle carried).
TEST_CASE("a closed code reads nothing posted after the close", "[node][group][invite][keys]") {
  for (auto reason : {InviteCloseReason::used_up, InviteCloseReason::revoked,
                      InviteCloseReason::expired}) {
    INFO("reason " << invite_close_reason_name(reason));
    Peer f = founder_of("club");
    Peer bob(1), holder(3);
    join_and_sync(f, bob, t0 + 10, "bob");
    sync(*f.replica, *bob.replica);
    const std::uint64_t expires = t0 + 1000;
    auto [ev, code] = must(f.replica->invite(f.at(t0 + 20), 1, expires, {}));
    (void)ev;
    sync(*f.replica, *bob.replica);
    // The holder keeps the code (it leaked, or it was used by someone else).
    fresh_copy(holder, *f.replica);
    holder.replica->hold_invite(code);
    must(f.replica->post(f.at(t0 + 30), "before the close"));
    std::uint64_t now = t0 + 40;
    if (reason == InviteCloseReason::used_up) {
      Peer carol(2);
      fresh_copy(carol, *f.replica);
      f.replica->ingest({must(carol.replica->join(carol.at(now), code, "carol"))});
      REQUIRE(upkeep(f, now).size() == 1);
    } else if (reason == InviteCloseReason::revoked) {
      const Hash invite = f.replica->state().invites.rbegin()->first;
      must(f.replica->close_invite(f.at(now), invite, InviteCloseReason::revoked));
    } else {
      now = expires + limits::invite_close_grace_ms;
      REQUIRE(upkeep(f, now).size() == 1);
    }
    CHECK(f.replica->state().needs_rekey());
    auto posted = must(f.replica->post(f.at(now + 10), "after the close"));
    CHECK(posted.front().kind == EventKind::rekey);
    sync(*f.replica, *holder.replica);
    sync(*f.replica, *bob.replica);
    CHECK(texts(*holder.replica) ==
          std::vector<std::string>{"before the close", "<unreadable>"});
    CHECK(texts(*bob.replica) == std::vector<std::string>{"before the close", "after the close"});
  }
}

// Proves who may revoke: the invite's creator or an admin, not another member; and that a
// closed invite cannot be closed again.
TEST_CASE("only the creator or an admin revokes an invite", "[node][group][invite]") {
  Peer f = founder_of("club");
  Peer bob(1);
  join_and_sync(f, bob, t0 + 10, "bob");
  auto [ev, code] = must(f.replica->invite(f.at(t0 + 20), 3, t0 + day_ms, {}));
  (void)code;
  sync(*f.replica, *bob.replica);
  auto by_bob = bob.replica->close_invite(bob.at(t0 + 30), ev.id, InviteCloseReason::revoked);
  REQUIRE_FALSE(by_bob.ok());
  CHECK(by_bob.error().code() == Errc::unauthorized);
  // Nor can bob claim it is used up.
  CHECK_FALSE(bob.replica->close_invite(bob.at(t0 + 30), ev.id, InviteCloseReason::used_up).ok());
  must(f.replica->close_invite(f.at(t0 + 40), ev.id, InviteCloseReason::revoked));
  CHECK(f.replica->close_invite(f.at(t0 + 50), ev.id, InviteCloseReason::revoked).error().code() ==
        Errc::already_exists);
}

// Finding 4. Proves junk, partial and per-member-wrong rekeys are detected by the members they
// fail (the key check), and healed by those members' upkeep within heal_delay_ms_max: afterwards
// every honest member reads every honest member's new posts, also when the bad rekeyer is the
// founder. The healing rekey names the bad one. Before the fix, the members blinded by the rekey
// could not post (no key) or posted what others could not read, and nothing healed it.
TEST_CASE("bad rekeys are detected and healed", "[node][group][keys]") {
  enum class Bad { junk, partial, wrong_key };
  for (Bad bad : {Bad::junk, Bad::partial, Bad::wrong_key}) {
    for (bool founder_is_bad : {false, true}) {
      INFO("attack " << static_cast<int>(bad) << " by the founder " << founder_is_bad);
      Peer f = founder_of("club");
      Peer a(1), b(2), c(3);
      for (auto* p : {&a, &b, &c}) join_and_sync(f, *p, t0 + 10, "m");
      sync_all({&f, &a, &b, &c});
      Peer& villain = founder_is_bad ? f : c;
      std::vector<Peer*> honest;
      for (auto* p : {&f, &a, &b, &c})
        if (p != &villain) honest.push_back(p);
      // The partial rekey reaches the villain and the first honest member only.
      const PublicKey lucky = honest.front()->key.public_key();
      Event e = crafted_rekey(villain, t0 + 100, [&](const PublicKey& who, const SymmetricKey& k)
                                                     -> std::optional<Bytes> {
        if (who == villain.key.public_key()) return sealed_to(who, k.view(), villain.rng);
        switch (bad) {
          case Bad::junk: {
            Bytes junk(32 + seal_overhead_bytes);
            villain.rng.fill(junk);
            return junk;
          }
          case Bad::partial:
            if (who != lucky) return std::nullopt;
            return sealed_to(who, k.view(), villain.rng);
          case Bad::wrong_key: {
            SymmetricKey other = random_key(villain.rng);
            return sealed_to(who, other.view(), villain.rng);
          }
        }
        return std::nullopt;
      });
      villain.replica->ingest({e});
      REQUIRE(villain.replica->state().current_key_event == e.id);
      sync_all({&f, &a, &b, &c});
      // Detection: every member the rekey failed knows it.
      std::size_t blinded = 0;
      for (auto* p : honest) {
        const bool fails = bad != Bad::partial || p->key.public_key() != lucky;
        CHECK(p->replica->unverified_key() == (fails ? std::optional<Hash>(e.id) : std::nullopt));
        blinded += fails;
      }
      CHECK(blinded >= 2);
      // Healing: each blinded member's upkeep rekeys within heal_delay_ms_max of noticing; the
      // first heal to arrive cancels the others'.
      std::vector<Event> heals;
      const std::uint64_t noticed = t0 + 200;
      for (std::uint64_t now = noticed; now <= noticed + limits::heal_delay_ms_max; now += 100) {
        for (auto* p : honest) {
          auto out = upkeep(*p, now);
          for (auto& h : out) heals.push_back(h);
          if (!out.empty()) sync_all({&f, &a, &b, &c});
        }
      }
      REQUIRE_FALSE(heals.empty());
      auto heal = decode_rekey(heals.front().payload).value();
      CHECK(heal.replaces == e.id);
      for (auto* p : honest) CHECK_FALSE(p->replica->unverified_key());
      // Every honest member posts; every honest member reads them all.
      std::uint64_t now = noticed + limits::heal_delay_ms_max + 100;
      std::vector<std::string> want;
      for (auto* p : honest) {
        const std::string text = "after the heal " + std::to_string(now);
        must(p->replica->post(p->at(now++), text));
        want.push_back(text);
        sync_all({&f, &a, &b, &c});
      }
      for (auto* p : honest) {
        auto got = texts(*p->replica);
        REQUIRE(got.size() >= want.size());
        CHECK(std::vector<std::string>(got.end() - static_cast<long>(want.size()), got.end()) == want);
      }
    }
  }
}

// Proves posting never uses a key the node cannot verify: a blinded member that posts before
// its upkeep heals rekeys first (naming the bad event) instead of failing or posting unreadably.
TEST_CASE("a blinded member's post heals first", "[node][group][keys]") {
  Peer f = founder_of("club");
  Peer a(1);
  join_and_sync(f, a, t0 + 10, "a");
  sync_all({&f, &a});
  Event e = crafted_rekey(f, t0 + 100, [&](const PublicKey& who, const SymmetricKey& k) {
    return std::optional<Bytes>(who == f.key.public_key() ? sealed_to(who, k.view(), f.rng)
                                                          : Bytes(32 + seal_overhead_bytes, 7));
  });
  f.replica->ingest({e});
  sync(*f.replica, *a.replica);
  auto out = must(a.replica->post(a.at(t0 + 200), "still readable"));
  REQUIRE(out.size() == 2);
  CHECK(decode_rekey(out[0].payload).value().replaces == e.id);
  sync(*a.replica, *f.replica);
  CHECK(texts(*f.replica) == std::vector<std::string>{"still readable"});
}

// Proves a key bundle cannot smuggle a wrong key: an add whose bundle carries a key that does
// not match its event's key check is refused, counted, and never used.
TEST_CASE("a wrong key in a bundle is refused", "[node][group][keys]") {
  Peer f = founder_of("club");
  Peer a(1);
  Rng rng = Rng::from_u64(99);
  std::vector<BundleKey> keys;
  keys.push_back({0, f.replica->id(), random_key(rng)});
  AddPayload p;
  p.member = a.key.public_key();
  p.bundle_box = sealed_to(a.key.public_key(), encode_bundle(keys), rng);
  Event e;
  e.group = f.replica->id();
  e.author = f.key.public_key();
  e.parents = f.replica->group().next_parents();
  e.depth = f.replica->group().next_depth(e.parents);
  e.time_ms = t0 + 10;
  e.kind = EventKind::add;
  e.payload = encode_payload(p);
  sign_event(e, f.key);
  f.replica->ingest({e});
  fresh_copy(a, *f.replica);
  CHECK(a.replica->state().is_member(a.key.public_key()));
  CHECK(a.replica->keyring().size() == 0);
  CHECK(a.replica->keys_refused() == 1);
  CHECK(a.replica->unverified_key() == f.replica->id());
}
