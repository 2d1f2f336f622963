#include "tests/sim/adversary.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "node/event.h"
#include "node/limits.h"
#include "node/payload.h"
#include "crypto/seal.h"

namespace qun::sim::adversary {
namespace {

// An honest post must reach every honest member within this, attack or not: the sim's links
// take 20 +- 10 ms one way and a post crosses a handful of hops; a second covers a few graft
// rounds (graft_timeout_ms 300) behind a congested link.
constexpr Millis latency_bound_ms = 3'000;
// After the attack: time for the overlay to repair itself (links closed during the attack are
// replaced by maintenance every second; a catch-up round every sync_interval_ms, 15 s).
constexpr Millis settle_ms = 10'000;
// Bound on the final rounds (every honest post everywhere, then equal heads): several sync
// intervals.
constexpr Millis converge_bound_ms = 60'000;
// Before the attack: joins spread and every member links up.
constexpr Millis warm_up_ms = 3'000;

// Honest identities' short hex, to find honest-on-honest bans in the logs.
std::string short_id(Simulation& sim, std::size_t i) {
  return short_hex(sim.identity(i).public_key());
}

Authoring authoring(Simulation& sim, std::size_t i, Rng& rng) {
  return Authoring{sim.identity(i), rng, sim_epoch_ms + sim.now()};
}

// ---- behaviours -----------------------------------------------------------------------------

// A member that stops reading (SIGSTOP) for the whole attack: its neighbours' queues to it fill
// until they close it as not reading (finding 1 of issue 10).
class SlowReader final : public Behaviour {
 public:
  std::string name() const override { return "slow-reader"; }
  void setup(Arena& a) override {
    node_ = a.sim.add_node();
    a.sim.join_group(node_, a.honest[a.rng.uniform(a.honest.size())], a.group);
  }
  void act(Arena& a) override {
    if (stopped_) return;
    a.sim.stop(node_);
    stopped_ = true;
  }
  void finish(Arena& a) override {
    if (stopped_) a.sim.resume(node_);
    stopped_ = false;
  }
  std::vector<std::size_t> nodes() const override { return {node_}; }

 private:
  std::size_t node_ = 0;
  bool stopped_ = false;
};

// A member posting as fast as it can: 20 posts of 1 KiB every 10 ms, 2,000 a second (issue 10's
// flood ran at 6,500). Its own node forwards all of them (a patched node would too).
class Spammer final : public Behaviour {
 public:
  static constexpr std::size_t posts_per_act = 20;
  static constexpr std::size_t text_bytes = 1024;
  std::string name() const override { return "spammer"; }
  void setup(Arena& a) override {
    node_ = a.sim.add_node();
    a.sim.join_group(node_, a.honest[a.rng.uniform(a.honest.size())], a.group);
    key_ = a.sim.identity(node_).public_key();
  }
  void act(Arena& a) override {
    for (std::size_t k = 0; k < posts_per_act; ++k) {
      (void)a.sim.post(node_, a.group, std::to_string(count_++) + std::string(text_bytes, 's'));
    }
  }
  std::vector<std::size_t> nodes() const override { return {node_}; }
  std::vector<PublicKey> bounded_authors() const override { return {key_}; }

 private:
  std::size_t node_ = 0;
  std::size_t count_ = 0;
  PublicKey key_;
};

// A removed member's key in an attacker's hands (finding 8): the member K is kicked by the
// founder; a member M holding K's key pushes posts signed with it (junk ciphertext, 5 of 4 KiB
// every 10 ms, each naming the last as parent, the first naming the heads before the kick),
// through M's node as if M were forwarding them.
class RemovedKey final : public Behaviour {
 public:
  static constexpr std::size_t posts_per_act = 5;
  static constexpr std::size_t text_bytes = 4096;
  std::string name() const override { return "removed-key"; }
  void setup(Arena& a) override {
    kicked_ = a.sim.add_node();
    pusher_ = a.sim.add_node();
    a.sim.join_group(kicked_, a.honest[a.rng.uniform(a.honest.size())], a.group);
    a.sim.join_group(pusher_, a.honest[a.rng.uniform(a.honest.size())], a.group);
    kicked_key_ = a.sim.identity(kicked_).public_key();
    a.sim.run_for(warm_up_ms);
    const Group& before = a.sim.node(kicked_).group(a.group)->group();
    parents_ = before.next_parents();
    epoch_ = a.sim.node(kicked_).group(a.group)->state().epoch;
    const std::size_t founder = a.honest[0];
    auto removal = a.sim.node(founder).group(a.group)->remove(
        authoring(a.sim, founder, a.rng), a.sim.identity(kicked_).public_key());
    if (!removal.ok()) throw std::logic_error("removed-key: remove: " + removal.error().message());
    a.sim.publish(founder, a.group, *removal);
    // Let the removal spread before anyone else joins: a join concurrent with a removal leaves
    // the joiner without the new epoch's key until someone rekeys (a protocol matter of its own,
    // not what this behaviour tests).
    a.sim.run_for(warm_up_ms);
  }
  void act(Arena& a) override {
    Replica* pusher = a.sim.node(pusher_).group(a.group);
    if (!pusher) return;
    std::vector<Event> posts;
    for (std::size_t k = 0; k < posts_per_act; ++k) {
      Event e;
      e.group = a.group;
      e.author = kicked_key_;
      e.parents = parents_;
      e.depth = pusher->group().next_depth(e.parents);
      e.time_ms = sim_epoch_ms + a.sim.now();
      e.kind = EventKind::post;
      e.epoch = epoch_;
      TextPayload junk;
      junk.text.nonce.bytes[0] = static_cast<std::uint8_t>(count_++);
      junk.text.data = Bytes(text_bytes, 0x6b);  // ciphertext nobody can open
      e.payload = encode_payload(junk);
      sign_event(e, a.sim.identity(kicked_));
      parents_ = {e.id};
      auto report = pusher->ingest({e});
      if (!report.rejected.empty())
        throw std::logic_error("removed-key: rejected: " + report.rejected.front().second);
      posts.push_back(std::move(e));
    }
    a.sim.publish(pusher_, a.group, posts);
  }
  std::vector<std::size_t> nodes() const override { return {kicked_, pusher_}; }
  std::vector<PublicKey> bounded_authors() const override { return {kicked_key_}; }
  std::vector<PublicKey> removed_authors() const override { return {kicked_key_}; }

 private:
  std::size_t kicked_ = 0;
  std::size_t pusher_ = 0;
  std::size_t count_ = 0;
  std::vector<Hash> parents_;
  std::uint64_t epoch_ = 0;
  PublicKey kicked_key_;
};

// A stranger who knows only the group id (finding 7): it runs an ordinary node holding an empty
// replica of the group and links to every honest member, which syncs with anybody while it
// holds nothing. The honest members must give it nothing: no event, no head, no peer.
class Stranger final : public Behaviour {
 public:
  std::string name() const override { return "stranger"; }
  void setup(Arena& a) override {
    node_ = a.sim.add_node();
    std::vector<std::string> hints;
    for (std::size_t i : a.honest) hints.push_back(a.sim.address(i));
    a.sim.add_group(node_, std::make_unique<Replica>(a.group, &a.sim.identity(node_)), hints);
  }
  void act(Arena&) override {}
  std::vector<std::size_t> nodes() const override { return {node_}; }
  std::string verdict(Arena& a) const override {
    const Replica* r = a.sim.node(node_).group(a.group);
    const std::size_t got = r ? r->group().size() + r->group().pending_size() : 0;
    const std::size_t peers = a.sim.node(node_).passive_size(a.group);
    if (got == 0 && peers <= a.honest.size()) return "";
    return "a stranger with only the group id got " + std::to_string(got) + " events and knows " +
           std::to_string(peers) + " peers";
  }

 private:
  std::size_t node_ = 0;
};

// A member whose rekeys blind everyone else (finding 4): once a second it authors a rekey whose
// boxes are junk for every other member, or hold another key than the one committed to (every
// second time). Each honest member detects it (the key check) and heals: its next post rekeys
// first, naming the bad event, so every honest post stays readable to every honest member.
class BadRekeyer final : public Behaviour {
 public:
  static constexpr Millis interval_ms = 1'000;
  std::string name() const override { return "bad-rekeyer"; }
  void setup(Arena& a) override {
    node_ = a.sim.add_node();
    a.sim.join_group(node_, a.honest[a.rng.uniform(a.honest.size())], a.group);
  }
  void act(Arena& a) override {
    if (a.sim.now() < next_ms_) return;
    next_ms_ = a.sim.now() + interval_ms;
    Replica* r = a.sim.node(node_).group(a.group);
    if (!r || !r->state().is_member(a.sim.identity(node_).public_key())) return;
    const SigningKey& me = a.sim.identity(node_);
    const SymmetricKey key = random_key(a.rng);
    const bool wrong_key = count_++ % 2 == 1;
    RekeyPayload p;
    p.key_check = key_check(key, a.group, r->state().epoch + 1);
    for (const auto& [id, m] : r->state().members) {
      auto x = to_x25519(id);
      if (!x.ok()) continue;
      if (id == me.public_key()) {
        p.members.push_back({id, seal(*x, key.view(), a.rng)});
      } else if (wrong_key) {
        const SymmetricKey other = random_key(a.rng);
        p.members.push_back({id, seal(*x, other.view(), a.rng)});
      } else {
        Bytes junk(32 + seal_overhead_bytes);
        a.rng.fill(junk);
        p.members.push_back({id, std::move(junk)});
      }
    }
    Event e;
    e.group = a.group;
    e.author = me.public_key();
    e.parents = r->group().next_parents();
    e.depth = r->group().next_depth(e.parents);
    e.time_ms = sim_epoch_ms + a.sim.now();
    e.kind = EventKind::rekey;
    e.epoch = r->state().epoch + 1;
    e.payload = encode_payload(p);
    sign_event(e, me);
    auto report = r->ingest({e});
    if (!report.rejected.empty())
      throw std::logic_error("bad-rekeyer: rejected: " + report.rejected.front().second);
    a.sim.publish(node_, a.group, {e});
  }
  std::vector<std::size_t> nodes() const override { return {node_}; }

 private:
  std::size_t node_ = 0;
  std::size_t count_ = 0;
  Millis next_ms_ = 0;
};

// A member whose clock is at the end of time (finding 3): every second it posts dated just
// below 2^63 - 1, which pushes the order key of every later event above it. Honest members keep
// posting, reading and converging; nothing in resolution compares order keys with times.
class FarFutureClock final : public Behaviour {
 public:
  static constexpr Millis interval_ms = 1'000;
  static constexpr std::uint64_t time_max = (std::uint64_t{1} << 63) - 1;
  std::string name() const override { return "far-future-clock"; }
  void setup(Arena& a) override {
    node_ = a.sim.add_node();
    a.sim.join_group(node_, a.honest[a.rng.uniform(a.honest.size())], a.group);
  }
  void act(Arena& a) override {
    if (a.sim.now() < next_ms_) return;
    next_ms_ = a.sim.now() + interval_ms;
    Replica* r = a.sim.node(node_).group(a.group);
    if (!r || !r->state().is_member(a.sim.identity(node_).public_key())) return;
    Rng& rng = a.rng;
    auto posted = r->post(Authoring{a.sim.identity(node_), rng, time_max - a.sim.now()},
                          "from the end of time");
    if (!posted.ok()) return;
    a.sim.publish(node_, a.group, *posted);
  }
  std::vector<std::size_t> nodes() const override { return {node_}; }

 private:
  std::size_t node_ = 0;
  Millis next_ms_ = 0;
};

// A replayed, backdated join (finding 5): the founder makes a one-use invite; M copies the group
// and signs a join with the code at once, but keeps it; B joins with the same code, and the
// founder's node closes the used-up invite (Replica::upkeep, as the daemon does every second).
// During the attack a colluding member C forwards M's join (M itself cannot sync any more: its
// invite is closed), which sorts before B's (older parents and time). The close revokes it (M's
// join is concurrent with the close), so every honest member lists B and not M.
class JoinReplay final : public Behaviour {
 public:
  std::string name() const override { return "join-replay"; }
  void setup(Arena& a) override {
    b_ = a.sim.add_node();
    m_ = a.sim.add_node();
    c_ = a.sim.add_node();
    a.sim.join_group(c_, a.honest[a.rng.uniform(a.honest.size())], a.group);
    const std::size_t inviter = a.honest[0];
    Replica* founder = a.sim.node(inviter).group(a.group);
    auto made = founder->invite(authoring(a.sim, inviter, a.rng), 1, invite_expiry_ms, {});
    if (!made.ok()) throw std::logic_error("join-replay: invite: " + made.error().message());
    a.sim.publish(inviter, a.group, {made->first});
    std::vector<Event> events;
    for (const EventRecord* rec : founder->group().ordered()) events.push_back(rec->event);
    m_replica_ = std::make_unique<Replica>(a.group, &a.sim.identity(m_));
    m_replica_->ingest(events);
    auto m_join = m_replica_->join(authoring(a.sim, m_, a.rng), made->second, "mallory");
    if (!m_join.ok()) throw std::logic_error("join-replay: M's join: " + m_join.error().message());
    m_join_ = *m_join;
    a.sim.run_for(join_gap_ms);  // B joins later: its join sorts after M's
    auto b = std::make_unique<Replica>(a.group, &a.sim.identity(b_));
    b->ingest(events);
    auto b_join = b->join(authoring(a.sim, b_, a.rng), made->second, "bob");
    if (!b_join.ok()) throw std::logic_error("join-replay: B's join: " + b_join.error().message());
    b_join_ = *b_join;
    a.sim.add_group(b_, std::move(b), {a.sim.address(inviter)});
    a.sim.publish(b_, a.group, {b_join_});
  }
  void act(Arena& a) override {
    // The founder's daemon closes the invite once B's join is in (upkeep once a second).
    if (a.sim.now() >= next_upkeep_ms_) {
      next_upkeep_ms_ = a.sim.now() + upkeep_interval_ms;
      a.sim.upkeep(a.honest[0], a.group);
    }
    if (replayed_ || a.sim.now() < replay_at_ms_) return;
    if (replay_at_ms_ == 0) {
      replay_at_ms_ = a.sim.now() + replay_delay_ms;
      return;
    }
    replayed_ = true;
    Replica* c = a.sim.node(c_).group(a.group);
    auto report = c->ingest({m_join_});
    if (!report.rejected.empty())
      throw std::logic_error("join-replay: rejected: " + report.rejected.front().second);
    a.sim.publish(c_, a.group, {m_join_});
  }
  std::vector<std::size_t> nodes() const override { return {b_, m_, c_}; }
  std::string verdict(Arena& a) const override {
    for (std::size_t i : a.honest) {
      const Replica* r = a.sim.node(i).group(a.group);
      if (!r->group().has(m_join_.id)) return "M's join never reached honest node " + std::to_string(i);
      if (!r->state().is_member(a.sim.identity(b_).public_key()))
        return "honest node " + std::to_string(i) + " does not list B, who joined first";
      if (r->state().is_member(a.sim.identity(m_).public_key()))
        return "honest node " + std::to_string(i) + " lists M, whose backdated join took B's use";
    }
    return "";
  }

 private:
  static constexpr std::uint64_t invite_expiry_ms = sim_epoch_ms + 365ull * 86'400'000;
  static constexpr Millis join_gap_ms = 100;
  static constexpr Millis upkeep_interval_ms = 1'000;
  static constexpr Millis replay_delay_ms = 500;
  std::size_t b_ = 0, m_ = 0, c_ = 0;
  bool replayed_ = false;
  std::unique_ptr<Replica> m_replica_;
  Event m_join_, b_join_;
  Millis next_upkeep_ms_ = 0;
  Millis replay_at_ms_ = 0;
};

bool sanitized() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#else
  return false;
#endif
}

}  // namespace

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = {
      {"slow-reader", "a member that stops reading (SIGSTOP) during the attack",
       [] { return std::make_unique<SlowReader>(); }},
      {"spammer", "a member posting 2,000 posts a second",
       [] { return std::make_unique<Spammer>(); }},
      {"removed-key", "a member pushing posts signed by a kicked member's key",
       [] { return std::make_unique<RemovedKey>(); }},
      {"stranger", "a node that knows only the group id and links to every member",
       [] { return std::make_unique<Stranger>(); }},
      {"bad-rekeyer", "a member authoring junk or wrong-key rekeys every second",
       [] { return std::make_unique<BadRekeyer>(); }},
      {"far-future-clock", "a member posting dated 2^63 - 1 every second",
       [] { return std::make_unique<FarFutureClock>(); }},
      {"join-replay", "a code holder replaying a one-use code with a backdated join",
       [] { return std::make_unique<JoinReplay>(); }},
  };
  return entries;
}

std::string Scenario::describe() const {
  std::ostringstream s;
  s << "seed " << seed << ": " << honest << " honest members; attack " << attack_ms << " ms by";
  for (const auto& b : behaviours) s << " " << b;
  if (overlay.flood) s << "; raw push";
  return s.str();
}

std::string Figures::describe() const {
  std::ostringstream s;
  s << "honest max: " << honest_events_stored_max << " events, " << honest_bytes_stored_max
    << " bytes stored; attackers' events stored at most " << bounded_events_stored_max
    << " (" << removed_events_stored_max << " by removed members' keys); honest total: " << honest_events_received << " event copies received, "
    << honest_events_over_rate << " dropped over rate, " << honest_events_former_author
    << " dropped as former members'; honest post latency max " << honest_latency_max_ms << " ms";
  return s.str();
}

Scenario pick(std::uint64_t seed) {
  Scenario sc;
  sc.seed = seed;
  Rng rng = Rng::from_u64(seed ^ 0x5eed'ad7e'0000'0001ull);
  sc.honest = 4 + rng.uniform(4);
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.name);
  if (const char* forced = std::getenv("QUN_ADVERSARY")) {
    std::stringstream in(forced);
    for (std::string name; std::getline(in, name, ',');)
      if (!name.empty()) sc.behaviours.push_back(name);
  } else {
    for (std::size_t i = names.size(); i > 1; --i) std::swap(names[i - 1], names[rng.uniform(i)]);
    const std::size_t n = 1 + rng.uniform(std::min<std::size_t>(3, names.size()));
    sc.behaviours.assign(names.begin(), names.begin() + static_cast<long>(n));
  }
  // The sanitizer tree runs everything ~10 times slower: a shorter attack still floods well past
  // the bounds (see run()).
  sc.attack_ms = sanitized() ? 1'000 : 2'000;
  return sc;
}

Outcome run(const Scenario& sc, SimConfig config) {
  config.seed = sc.seed;
  // Honest-on-honest closes for misbehaving (warn "closing conn=... peer=... reason=...").
  std::vector<std::pair<std::size_t, std::string>> closes;
  config.log = [&closes](std::size_t node, const LogRecord& r) {
    if (r.level == LogLevel::warn && r.message.rfind("closing conn=", 0) == 0)
      closes.push_back({node, r.message});
  };
  Simulation sim(config);
  Outcome outcome;
  auto fail = [&](const std::string& what) {
    if (!outcome.ok) return;
    outcome.ok = false;
    outcome.failure = what + "\n  scenario: " + sc.describe() + "\n  reproduce: " + sim.repro();
  };

  Arena arena{sim, Hash{}, {}, Rng::from_u64(sc.seed ^ 0xa7e0'a000'0000'0002ull)};
  NodeConfig honest_config;
  honest_config.overlay = sc.overlay;
  for (std::size_t i = 0; i < sc.honest; ++i) arena.honest.push_back(sim.add_node(honest_config));
  arena.group = sim.create_group(arena.honest[0], "arena");
  for (std::size_t i = 1; i < sc.honest; ++i)
    sim.join_group(arena.honest[i], arena.honest[arena.rng.uniform(i)], arena.group);
  sim.run_for(warm_up_ms);

  std::vector<std::unique_ptr<Behaviour>> behaviours;
  for (const auto& name : sc.behaviours) {
    auto e = std::find_if(registry().begin(), registry().end(),
                          [&](const Entry& x) { return x.name == name; });
    if (e == registry().end()) {
      fail("no behaviour named " + name);
      return outcome;
    }
    behaviours.push_back(e->make());
    behaviours.back()->setup(arena);
  }
  sim.run_for(warm_up_ms);
  const Hash& g = arena.group;
  std::set<PublicKey> bounded;
  for (const auto& b : behaviours)
    for (const auto& k : b->bounded_authors()) bounded.insert(k);
  std::set<PublicKey> removed;
  for (const auto& b : behaviours)
    for (const auto& k : b->removed_authors()) removed.insert(k);
  auto count_by = [&](std::size_t i, const std::set<PublicKey>& authors) {
    std::uint64_t n = 0;
    for (const EventRecord* rec : sim.node(i).group(g)->group().ordered())
      if (authors.count(rec->event.author)) ++n;
    return n;
  };
  std::map<std::size_t, std::uint64_t> bounded_before, removed_before;
  for (std::size_t i : arena.honest) {
    bounded_before[i] = count_by(i, bounded);
    removed_before[i] = count_by(i, removed);
  }

  // The attack, with every honest member posting now and then.
  std::map<Hash, Millis> honest_posts;  // id -> when posted
  std::map<Hash, std::string> honest_texts;
  std::size_t posted = 0;
  const Millis attack_start = sim.now();
  for (Millis t = 0; t < sc.attack_ms; t += sc.act_interval_ms) {
    for (auto& b : behaviours) b->act(arena);
    if (t % sc.honest_post_interval_ms == 0) {
      for (std::size_t i : arena.honest) {
        const std::string text = "honest " + std::to_string(i) + " #" + std::to_string(posted++);
        const std::vector<Hash> ids = sim.post(i, g, text);  // a rekey, then the post
        for (const Hash& id : ids) honest_posts[id] = sim.now();
        honest_texts[ids.back()] = text;
      }
    }
    sim.run_for(sc.act_interval_ms);
  }
  const Millis attack_s_ceil = (sim.now() - attack_start + 999) / 1000;
  for (auto& b : behaviours) b->finish(arena);
  sim.run_for(settle_ms);
  for (std::size_t i : arena.honest) {
    for (const Hash& id : sim.post(i, g, "marker " + std::to_string(i)))
      honest_posts[id] = sim.now();
  }
  auto all_have_honest = [&] {
    for (std::size_t i : arena.honest) {
      const Group& r = sim.node(i).group(g)->group();
      for (const auto& [id, at] : honest_posts)
        if (!r.has(id)) return false;
    }
    return true;
  };
  if (!sim.run_until(all_have_honest, sim.now() + converge_bound_ms))
    fail("honest posts did not reach every honest member");
  auto honest_converged = [&] {
    const std::set<Hash>& heads = sim.node(arena.honest[0]).group(g)->group().heads();
    for (std::size_t i : arena.honest)
      if (sim.node(i).group(g)->group().heads() != heads) return false;
    return true;
  };
  if (!sim.run_until(honest_converged, sim.now() + converge_bound_ms))
    fail("honest members did not converge (different heads)");

  // Figures and bounds.
  Figures& f = outcome.figures;
  std::map<Hash, std::set<std::size_t>> reached;
  std::map<Hash, Millis> last_reached;
  std::set<std::size_t> honest_set(arena.honest.begin(), arena.honest.end());
  for (const Delivery& d : sim.delivery_log()) {
    auto p = honest_posts.find(d.event);
    if (p == honest_posts.end() || !honest_set.count(d.node)) continue;
    reached[d.event].insert(d.node);
    last_reached[d.event] = std::max(last_reached[d.event], d.at - p->second);
  }
  for (const auto& [id, at] : last_reached) f.honest_latency_max_ms = std::max(f.honest_latency_max_ms, at);
  // Every post event (a rekey comes without a delivery of its own to some nodes) is delivered
  // everywhere; the checks below look at what members can read.
  const std::uint64_t allowance =
      (sc.overlay.author_burst_events + sc.overlay.author_events_per_s * attack_s_ceil) *
      (2 + vouched_rate_factor);
  for (std::size_t i : arena.honest) {
    const Node& n = sim.node(i);
    const Replica* r = n.group(g);
    f.honest_events_stored_max = std::max<std::uint64_t>(f.honest_events_stored_max, r->group().size());
    f.honest_bytes_stored_max = std::max(f.honest_bytes_stored_max, n.group_bytes(g));
    f.honest_events_received += n.stats().events_received;
    f.honest_events_over_rate += n.stats().events_over_rate;
    f.honest_events_former_author += n.stats().events_former_author;
    const std::uint64_t grew = count_by(i, bounded) - bounded_before[i];
    const std::uint64_t grew_removed = count_by(i, removed) - removed_before[i];
    f.removed_events_stored_max = std::max(f.removed_events_stored_max, grew_removed);
    if (grew_removed > 0) {
      fail("honest node " + std::to_string(i) + " stored " + std::to_string(grew_removed) +
           " events by a removed member's key");
    }
    f.bounded_events_stored_max = std::max(f.bounded_events_stored_max, grew);
    if (grew > allowance) {
      fail("honest node " + std::to_string(i) + " stored " + std::to_string(grew) +
           " events by attackers' keys, past the rate bounds' " + std::to_string(allowance));
    }
    if (r->group().pending_size() > limits::pending_events_max)
      fail("honest node " + std::to_string(i) + " holds too many pending events");
    // Every honest post is readable.
    std::set<std::string> readable;
    for (const auto& m : r->history())
      if (m.kind == EventKind::post && m.text) readable.insert(*m.text);
    for (const auto& [id, text] : honest_texts)
      if (!readable.count(text)) fail("honest node " + std::to_string(i) + " cannot read '" + text + "'");
  }
  if (f.honest_latency_max_ms > latency_bound_ms) {
    fail("an honest post took " + std::to_string(f.honest_latency_max_ms) +
         " ms to reach every honest member");
  }
  for (const auto& b : behaviours)
    if (std::string v = b->verdict(arena); !v.empty()) fail(b->name() + ": " + v);
  // No honest member closed another as misbehaving (that is a ban).
  for (const auto& [node, message] : closes) {
    if (!honest_set.count(node)) continue;
    for (std::size_t j : arena.honest)
      if (message.find("peer=" + short_id(sim, j)) != std::string::npos)
        fail("honest node " + std::to_string(node) + " banned honest node " + std::to_string(j) +
             ": " + message);
  }
  return outcome;
}

}  // namespace qun::sim::adversary
