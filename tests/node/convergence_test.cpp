// Property tests: replicas that receive the same events in any order, in any batches, with
// duplicates and with forged events mixed in, compute identical state and identical history.
//
// Each run derives everything from one seed; a failure prints it. Reproduce one run with
//   qun_node_tests "[convergence]" and QUN_SEED=<seed> in the environment.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>

#include "node/limits.h"
#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;

// A comparable digest of everything resolution decides.
struct Digest {
  std::vector<Hash> history;
  std::vector<std::tuple<PublicKey, int, Hash>> members;
  std::vector<std::tuple<Hash, std::uint32_t, bool, std::optional<Hash>>> invites;
  std::uint64_t epoch;
  bool departed, invite_closed;
  std::optional<Hash> key, name, topic;
  std::vector<Hash> heads;
  bool operator==(const Digest&) const = default;
};

Digest digest(const Replica& r) {
  Digest d;
  const auto& s = r.state();
  d.history = s.history;
  for (const auto& [id, m] : s.members) d.members.emplace_back(id, static_cast<int>(m.role), m.role_grant);
  for (const auto& [id, inv] : s.invites)
    d.invites.emplace_back(id, inv.uses, inv.revoked, inv.closed_by);
  d.epoch = s.epoch;
  d.departed = s.departed_since_rekey;
  d.invite_closed = s.invite_closed_since_rekey;
  d.key = s.current_key_event;
  d.name = s.name_event;
  d.topic = s.topic_event;
  d.heads.assign(r.group().heads().begin(), r.group().heads().end());
  return d;
}

std::uint64_t seed_from_env(std::uint64_t fallback) {
  const char* s = std::getenv("QUN_SEED");
  return s ? std::strtoull(s, nullptr, 10) : fallback;
}

// The largest time an event can carry (event.h).
constexpr std::uint64_t time_max = (std::uint64_t{1} << 63) - 1;

// An invite code some member handed out, and its would-be joiner with a copy of the group taken
// when the code was made: joining from that stale copy with an old time is a backdated join
// (parents and time from before any use or close of the invite).
struct Holder {
  InviteCode code;
  std::unique_ptr<Peer> joiner;
  std::uint64_t made_ms;
};

// Plays a random group life: members act on their own replicas and sync partially, so many
// events are concurrent. Some actions are Byzantine: junk and partial rekeys, posts dated
// 2^63 - 1, and backdated joins replaying a code. Upkeep closes invites (used up, expired) and
// heals bad rekeys. Returns the union of all events.
std::vector<Event> random_history(std::uint64_t seed, std::size_t members, std::size_t steps) {
  Rng rng = Rng::from_u64(seed);
  std::vector<std::unique_ptr<Peer>> peers;
  for (std::size_t i = 0; i < members; ++i) peers.push_back(std::make_unique<Peer>(seed * 100 + i));
  Peer& f = *peers[0];
  std::uint64_t now = t0;
  f.replica = std::make_unique<Replica>(
      must(Replica::create_group(f.at(now), "prop", "p0", GroupSettings{})));
  for (std::size_t i = 1; i < members; ++i) {
    Peer& p = *peers[i];
    ++now;
    auto [ev, code] = must(f.replica->invite(f.at(now), 1, now + 1'000'000, {}));
    (void)ev;
    p.replica = std::make_unique<Replica>(f.replica->id(), &p.key);
    sync(*f.replica, *p.replica);
    must(p.replica->join(p.at(++now), code, "p" + std::to_string(i)));
    sync(*p.replica, *f.replica);
  }
  for (auto& p : peers) sync(*f.replica, *p->replica);

  std::vector<Holder> holders;
  std::uint64_t next_joiner = seed * 100 + 50;
  for (std::size_t step = 0; step < steps; ++step) {
    now += 1 + rng.uniform(50);
    // Clocks disagree: each member's clock is off by up to a second.
    Peer& p = *peers[rng.uniform(peers.size())];
    const std::uint64_t skewed = now + rng.uniform(1000);
    // Membership churn and attacks in the first 150 steps only, so long histories keep their
    // members.
    const auto roll = step < 150 ? rng.uniform(124) : rng.uniform(80);
    if (!p.replica->state().is_member(p.key.public_key())) continue;
    if (roll < 50) {
      (void)p.replica->post(p.at(skewed), "m" + std::to_string(step));
    } else if (roll < 80) {
      Peer& q = *peers[rng.uniform(peers.size())];
      sync(*q.replica, *p.replica);
    } else if (roll < 87) {
      Peer& q = *peers[rng.uniform(peers.size())];
      (void)p.replica->set_role(p.at(skewed), q.key.public_key(),
                                static_cast<Role>(rng.uniform(2)));
    } else if (roll < 92) {
      Peer& q = *peers[rng.uniform(peers.size())];
      if (&q != &p) (void)p.replica->remove(p.at(skewed), q.key.public_key());
    } else if (roll < 94) {
      (void)p.replica->leave(p.at(skewed));
    } else if (roll < 97) {
      (void)p.replica->set_topic(p.at(skewed), "topic " + std::to_string(step));
    } else if (roll < 100) {
      (void)p.replica->rekey(p.at(skewed));
    } else if (roll < 104) {
      // An invite of 1 or 2 uses, expiring within a few steps or much later.
      auto made = p.replica->invite(p.at(skewed), 1 + static_cast<std::uint32_t>(rng.uniform(2)),
                                    skewed + (rng.uniform(2) ? 200 : 1'000'000), {});
      if (!made.ok()) continue;
      Holder h{std::move(made.value().second), std::make_unique<Peer>(next_joiner++), skewed};
      h.joiner->replica = std::make_unique<Replica>(p.replica->id(), &h.joiner->key);
      sync(*p.replica, *h.joiner->replica);
      holders.push_back(std::move(h));
    } else if (roll < 110) {
      if (holders.empty()) continue;
      // A code holder joins: honestly, from a fresh copy at its own time, or backdated, from the
      // copy it took when the code was made and with that time.
      const std::size_t which = rng.uniform(holders.size());
      Holder h = std::move(holders[which]);
      holders.erase(holders.begin() + static_cast<long>(which));
      const bool backdated = rng.uniform(2) == 0;
      if (!backdated) sync(*p.replica, *h.joiner->replica);
      (void)h.joiner->replica->join(h.joiner->at(backdated ? h.made_ms + 1 : skewed), h.code,
                                    backdated ? "replay" : "newcomer");
      peers.push_back(std::move(h.joiner));
    } else if (roll < 114) {
      // Upkeep: closes used-up and expired invites, heals bad rekeys. Sometimes far ahead, so
      // short invites expire.
      (void)p.replica->upkeep(p.at(skewed + (rng.uniform(2) ? 10'000 : 0)));
    } else if (roll < 116) {
      // Revocation of a random invite (refused unless p is its creator or an admin).
      const auto& invites = p.replica->state().invites;
      if (invites.empty()) continue;
      auto it = invites.begin();
      std::advance(it, static_cast<long>(rng.uniform(invites.size())));
      (void)p.replica->close_invite(p.at(skewed), it->first, InviteCloseReason::revoked);
    } else if (roll < 121) {
      // A Byzantine rekey: junk boxes, or boxes for only some members.
      const bool junk = rng.uniform(2) == 0;
      Event e = crafted_rekey(p, skewed, [&](const PublicKey& who, const SymmetricKey& k)
                                             -> std::optional<Bytes> {
        if (junk) return Bytes(32 + seal_overhead_bytes, 0x5a);
        if (rng.uniform(2)) return std::nullopt;
        return sealed_to(who, k.view(), p.rng);
      });
      p.replica->ingest({e});
    } else {
      // A post from a clock at the end of time.
      (void)p.replica->post(p.at(time_max - rng.uniform(1000)), "far future");
    }
  }
  std::map<Hash, Event> all;
  for (auto& p : peers)
    for (auto& e : all_events(*p->replica)) all.emplace(e.id, e);
  std::vector<Event> out;
  for (auto& [id, e] : all) out.push_back(e);
  return out;
}

// Forged events an attacker could send: bad signatures, outsiders, wrong group.
std::vector<Event> forgeries(const std::vector<Event>& real, Rng& rng) {
  std::vector<Event> out;
  Peer mallory(424242);
  for (int i = 0; i < 10; ++i) {
    Event e = real[rng.uniform(real.size())];
    if (e.kind == EventKind::create) continue;
    Event bad_sig = e;
    bad_sig.time_ms += 1;
    bad_sig.id = hash(encode_header(bad_sig));  // right id, old signature
    out.push_back(bad_sig);
    Event outsider = e;
    outsider.author = mallory.key.public_key();
    sign_event(outsider, mallory.key);
    out.push_back(outsider);
  }
  return out;
}

}  // namespace

// Proves convergence: for many random histories, fresh replicas fed the same events in different
// random orders and batch sizes (with duplicates and forgeries mixed in) end in identical state
// and history, equal to the state from feeding them in one batch.
TEST_CASE("replicas converge whatever the delivery order", "[node][convergence]") {
  const std::uint64_t base = seed_from_env(1);
  const int runs = std::getenv("QUN_SEED") ? 1 : 25;
  // What the histories exercised, so the property is not vacuous about the attacks.
  std::size_t closes = 0, joins_refused = 0, heals = 0, far_future = 0;
  for (int run = 0; run < runs; ++run) {
    const std::uint64_t seed = base + static_cast<std::uint64_t>(run);
    INFO("seed " << seed << " (rerun with QUN_SEED=" << seed << ")");
    // Every fifth history is long enough for resolution snapshots (limits::checkpoint_steps),
    // so late events re-fold from a snapshot and must still match the one-batch fold.
    auto events = random_history(seed, 3 + seed % 4, seed % 5 == 0 ? 1200 : 150);
    const Hash group = std::find_if(events.begin(), events.end(), [](const Event& e) {
                         return e.kind == EventKind::create;
                       })->id;
    Replica reference(group, nullptr);
    auto rep = reference.ingest(events);
    REQUIRE(rep.rejected.empty());
    REQUIRE(rep.pending == 0);
    const Digest want = digest(reference);
    for (const auto* rec : reference.group().ordered()) {
      const Event& e = rec->event;
      closes += e.kind == EventKind::close_invite && rec->accepted;
      joins_refused += e.kind == EventKind::join && !rec->accepted;
      heals += e.kind == EventKind::rekey && decode_rekey(e.payload)->replaces.has_value();
      far_future += e.time_ms > time_max - 1000;
    }

    Rng rng = Rng::from_u64(seed ^ 0xabcdef);
    auto forged = forgeries(events, rng);
    for (int order = 0; order < 6; ++order) {
      // Orders 0-3 shuffle everything; 4-5 are like live traffic: the resolved order with events
      // displaced by up to 16 places (concurrent events arriving late).
      const bool live = order >= 4;
      std::vector<Event> stream;
      if (live) {
        for (const auto* rec : reference.group().ordered()) stream.push_back(rec->event);
        for (std::size_t i = 0; i + 1 < stream.size(); ++i)
          std::swap(stream[i], stream[std::min(stream.size() - 1, i + rng.uniform(16))]);
      } else {
        stream = events;
      }
      for (int d = 0; d < 20; ++d) stream.push_back(events[rng.uniform(events.size())]);
      stream.insert(stream.end(), forged.begin(), forged.end());
      if (!live)
        for (std::size_t i = stream.size(); i > 1; --i) std::swap(stream[i - 1], stream[rng.uniform(i)]);
      Replica r(group, nullptr);
      std::size_t pos = 0;
      while (pos < stream.size()) {
        std::size_t n = 1 + rng.uniform(order % 2 || live ? 3 : 40);
        std::vector<Event> batch(stream.begin() + static_cast<long>(pos),
                                 stream.begin() + static_cast<long>(std::min(stream.size(), pos + n)));
        pos += batch.size();
        r.ingest(std::move(batch));
      }
      CHECK(r.group().pending_size() == 0);
      if (events.size() > 2 * limits::checkpoint_steps && live) {
        // Live-like order: late events re-fold from snapshots, not from scratch.
        INFO("resolves: incremental " << r.group().resolve_stats().incremental << " checkpoint " << r.group().resolve_stats().from_checkpoint << " full " << r.group().resolve_stats().full << " events " << events.size());
        CHECK(r.group().resolve_stats().from_checkpoint > 0);
      }
      const Digest got = digest(r);
      if (!(got == want)) {
        UNSCOPED_INFO("history equal " << (got.history == want.history) << " sizes " << got.history.size() << "/" << want.history.size()
             << " members " << (got.members == want.members) << " invites " << (got.invites == want.invites)
             << " epoch " << got.epoch << "/" << want.epoch << " key " << (got.key == want.key)
             << " heads " << (got.heads == want.heads) << " name " << (got.name == want.name) << " topic " << (got.topic == want.topic));
        for (std::size_t i = 0; i < std::min(got.history.size(), want.history.size()); ++i) {
          if (got.history[i] != want.history[i]) {
            const auto* a = r.group().find(got.history[i]);
            const auto* b = r.group().find(want.history[i]);
            for (std::size_t j = 0; j < 6; ++j) {
              const auto* x = r.group().find(got.history[j]);
              const auto* y = r.group().find(want.history[j]);
              UNSCOPED_INFO(j << " got " << event_kind_name(x->event.kind) << " k=" << x->order_key << " " << short_hex(x->event.id) << " | want " << event_kind_name(y->event.kind) << " k=" << y->order_key << " " << short_hex(y->event.id));
            }
            UNSCOPED_INFO("first diff at " << i << " got " << event_kind_name(a->event.kind) << " want " << event_kind_name(b->event.kind) << " why_not(want in r)=" << b->why_not << " r.accepted(want)=" << b->accepted);
            break;
          }
        }
      }
      CHECK(got == want);
      CHECK(r.group().size() == events.size());
    }
  }
  INFO("closes " << closes << " joins refused " << joins_refused << " heals " << heals
                 << " far-future events " << far_future);
  if (runs > 1) {
    CHECK(closes > 0);
    CHECK(joins_refused > 0);
    CHECK(heals > 0);
    CHECK(far_future > 0);
  }
}

// Proves members reading the converged log see the same decrypted history, except for what
// they lack keys for (posts from before they joined are readable: history is visible).
TEST_CASE("members read the same history after sync", "[node][convergence]") {
  const std::uint64_t seed = seed_from_env(7);
  INFO("seed " << seed);
  Rng rng = Rng::from_u64(seed);
  std::vector<Peer> peers;
  for (int i = 0; i < 4; ++i) peers.emplace_back(500 + i);
  std::uint64_t now = t0;
  peers[0].replica = std::make_unique<Replica>(
      must(Replica::create_group(peers[0].at(now), "read", "a", GroupSettings{})));
  for (int i = 1; i < 4; ++i) {
    ++now;
    auto [ev, code] = must(peers[0].replica->invite(peers[0].at(now), 1, now + 100000, {}));
    (void)ev;
    peers[i].replica = std::make_unique<Replica>(code.group, &peers[i].key);
    sync(*peers[0].replica, *peers[i].replica);
    must(peers[i].replica->join(peers[i].at(++now), code, "n"));
    sync(*peers[i].replica, *peers[0].replica);
  }
  for (int step = 0; step < 100; ++step) {
    auto& p = peers[rng.uniform(4)];
    if (rng.uniform(3) == 0) {
      sync(*peers[rng.uniform(4)].replica, *p.replica);
    } else {
      must(p.replica->post(p.at(++now), "s" + std::to_string(step)));
    }
  }
  for (auto& p : peers)
    for (auto& q : peers) sync(*p.replica, *q.replica);
  auto texts = [](const Replica& r) {
    std::vector<std::optional<std::string>> out;
    for (auto& m : r.history()) out.push_back(m.text);
    return out;
  };
  for (auto& p : peers) {
    CHECK(texts(*p.replica) == texts(*peers[0].replica));
    for (auto& m : p.replica->history())
      if (m.kind == EventKind::post) CHECK(m.text.has_value());
  }
}
