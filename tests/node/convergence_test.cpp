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
  std::vector<std::tuple<Hash, std::uint32_t, bool>> invites;
  std::uint64_t epoch;
  std::optional<Hash> key, name, topic;
  std::vector<Hash> heads;
  bool operator==(const Digest&) const = default;
};

Digest digest(const Replica& r) {
  Digest d;
  const auto& s = r.state();
  d.history = s.history;
  for (const auto& [id, m] : s.members) d.members.emplace_back(id, static_cast<int>(m.role), m.role_grant);
  for (const auto& [id, inv] : s.invites) d.invites.emplace_back(id, inv.uses, inv.revoked);
  d.epoch = s.epoch;
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

// Plays a random group life: members act on their own replicas and sync partially, so many
// events are concurrent. Returns the union of all events.
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

  for (std::size_t step = 0; step < steps; ++step) {
    now += 1 + rng.uniform(50);
    // Clocks disagree: each member's clock is off by up to a second.
    Peer& p = *peers[rng.uniform(peers.size())];
    const std::uint64_t skewed = now + rng.uniform(1000);
    // Membership churn in the first 150 steps only, so long histories keep their members.
    const auto roll = step < 150 ? rng.uniform(100) : rng.uniform(80);
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
    } else {
      (void)p.replica->rekey(p.at(skewed));
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
    bad_sig.id = hash(encode_body(bad_sig));  // right id, old signature
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
