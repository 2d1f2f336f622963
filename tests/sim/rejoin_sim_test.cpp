// Former members coming back (issue 11, item 1). Members shun a removed or departed member: they
// stop sending it the group's events. A former member that holds a new, open invite shows it
// (wire::Holder) and is synced again, so it can fetch the invite, join, and be a member once
// more: with the keys a newcomer gets, never those of epochs it missed while out when the
// group's history is hidden from newcomers. Every test prints the command that reproduces it.
#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/sim/fixture.h"

using namespace qun;
using namespace qun::sim;
using namespace qun::sim::test;

namespace {

// Members of the test group (node 0 founds it; 1..4 join through node 0).
constexpr std::size_t members = 5;
// Virtual time for an event to spread to five nodes: a few round trips of 20 ms plus catch-up,
// whose slowest path is the 15 s anti-entropy interval (OverlayConfig::sync_interval_ms).
constexpr Millis spread_ms_max = 30'000;
// Invites in these tests never expire: a day past the sim's clock.
constexpr std::uint64_t day_ms = 86'400'000;

struct Scene {
  // node 0 founds the group; the others join through it; 10 s to form the overlay.
  Scene(std::uint64_t seed, bool history_visible) : sim(config_for_test(seed)) {
    for (std::size_t i = 0; i < members; ++i) sim.add_node();
    g = sim.create_group(0, "g", {.history_visible = history_visible, .members_can_invite = true});
    for (std::size_t i = 1; i < members; ++i) sim.join_group(i, 0, g);
    sim.run_for(10'000);
  }
  Simulation sim;
  Hash g;
  Rng rng = Rng::from_u64(11);
  Authoring as(std::size_t i) { return Authoring{sim.identity(i), rng, sim_epoch_ms + sim.now()}; }
  Replica& replica(std::size_t i) { return *sim.node(i).group(g); }
  void publish(std::size_t i, const std::vector<Event>& events) {
    sim.node(i).publish(sim.now(), g, events);
  }
  bool member_everywhere(std::size_t who, bool member) {
    const PublicKey& id = sim.identity(who).public_key();
    for (std::size_t i = 0; i < members; ++i) {
      if (i == who || !sim.online(i) || !sim.node(i).group(g)) continue;
      if (replica(i).state().is_member(id) != member) return false;
    }
    return true;
  }
};

std::optional<std::string> text_at(Scene& s, std::size_t i, const Hash& id) {
  auto m = s.replica(i).message(id);
  return m ? m->text : std::nullopt;
}

// A former member `who` whose node still holds the group takes the invite, shows it, and joins
// once the invite has arrived. Returns the join's id.
Hash come_back(Scene& s, std::size_t who, const InviteCode& code) {
  s.replica(who).hold_invite(code);
  s.sim.node(who).announce_invite(s.sim.now(), s.g);
  const PublicKey invite_key = invite_signing_key(code.secret).public_key();
  auto has_invite = [&] {
    for (const auto& [id, inv] : s.replica(who).state().invites)
      if (inv.invite_key == invite_key) return true;
    return false;
  };
  REQUIRE(s.sim.run_until(has_invite, s.sim.now() + spread_ms_max));
  auto join = s.replica(who).join(s.as(who), code, "back");
  REQUIRE(join.ok());
  s.publish(who, {*join});
  return join->id;
}

}  // namespace

// Proves a kicked member re-invited comes back: before it shows the new invite nobody sends it
// anything (it misses what is posted while it is out); after, it fetches the invite, joins, every
// node lists it as a member again, its post reaches and is read by everyone, and it reads what
// is posted after its return. The group hides history from newcomers, so it cannot read a post
// of an epoch that began and ended while it was out, only the current epoch's (as any newcomer).
// Without wire::Holder, members keep shunning it and the invite never reaches it.
TEST_CASE("a removed member with a new invite is synced and joins again", "[sim][rejoin]") {
  Scene s(71, /*history_visible=*/false);
  INFO("reproduce: " << s.sim.repro());
  const std::size_t kicked = 3;
  auto removal = s.replica(0).remove(s.as(0), s.sim.identity(kicked).public_key());
  REQUIRE(removal.ok());
  s.publish(0, *removal);
  REQUIRE(s.sim.run_until([&] { return s.member_everywhere(kicked, false); },
                          s.sim.now() + spread_ms_max));
  CHECK(s.replica(kicked).group().has(removal->front().id));  // it learns of its removal
  // While it is out: a post in the removal's epoch, a rekey, a post in the next epoch.
  const Hash missed = s.sim.post(1, s.g, "missed").back();
  auto rekey = s.replica(2).rekey(s.as(2));
  REQUIRE(rekey.ok());
  s.publish(2, *rekey);
  const Hash current = s.sim.post(2, s.g, "current epoch").back();
  s.sim.run_for(spread_ms_max);
  CHECK_FALSE(s.replica(kicked).group().has(missed));
  CHECK_FALSE(s.replica(kicked).group().has(current));

  auto invited = s.replica(1).invite(s.as(1), 1, sim_epoch_ms + s.sim.now() + day_ms,
                                     {s.sim.address(1)});
  REQUIRE(invited.ok());
  s.publish(1, {invited->first});
  const Hash join = come_back(s, kicked, invited->second);
  REQUIRE(s.sim.run_until([&] { return s.member_everywhere(kicked, true); },
                          s.sim.now() + spread_ms_max));
  // The old removal stays in history; the join follows it.
  const auto& history = s.replica(0).state().history;
  auto at = [&](const Hash& id) { return std::find(history.begin(), history.end(), id); };
  CHECK(at(removal->front().id) < at(join));
  CHECK(s.replica(0).state().role_of(s.sim.identity(kicked).public_key()) == Role::member);

  const Hash back = s.sim.post(kicked, s.g, "I am back").back();
  const Hash welcome = s.sim.post(4, s.g, "welcome back").back();
  REQUIRE(s.sim.run_until(
      [&] { return s.sim.holders(s.g, back) == members && s.sim.holders(s.g, welcome) == members; },
      s.sim.now() + spread_ms_max));
  for (std::size_t i = 0; i < members; ++i) CHECK(text_at(s, i, back) == "I am back");
  CHECK(text_at(s, kicked, welcome) == "welcome back");
  // Keys: the current epoch's (from the invite's bundle), never the epoch it missed entirely.
  REQUIRE(s.replica(kicked).group().has(missed));
  CHECK_FALSE(text_at(s, kicked, missed).has_value());
  CHECK(text_at(s, kicked, current) == "current epoch");
}

// Proves a founder who left, deleted the group and comes back with a fresh replica and an invite
// from another admin is synced, joins and posts; in a group whose history is visible it reads
// what was posted while it was out, as any newcomer would (docs/protocol.md, "Coming back").
TEST_CASE("a founder who left comes back with a fresh replica and a new invite", "[sim][rejoin]") {
  Scene s(72, /*history_visible=*/true);
  INFO("reproduce: " << s.sim.repro());
  const std::size_t founder = 0;
  auto left = s.replica(founder).leave(s.as(founder));
  REQUIRE(left.ok());
  s.publish(founder, {*left});
  REQUIRE(s.sim.run_until([&] { return s.member_everywhere(founder, false); },
                          s.sim.now() + spread_ms_max));
  s.sim.remove_group(founder, s.g);
  const Hash missed = s.sim.post(2, s.g, "while you were away").back();
  s.sim.run_for(spread_ms_max);

  // Succession made the eldest remaining member an admin; it invites the founder back.
  auto invited = s.replica(1).invite(s.as(1), 1, sim_epoch_ms + s.sim.now() + day_ms,
                                     {s.sim.address(1)});
  REQUIRE(invited.ok());
  s.publish(1, {invited->first});
  auto fresh = std::make_unique<Replica>(s.g, &s.sim.identity(founder));
  fresh->hold_invite(invited->second);
  s.sim.node(founder).add_group(s.sim.now(), std::move(fresh), {s.sim.address(1)});
  const PublicKey invite_key = invite_signing_key(invited->second.secret).public_key();
  REQUIRE(s.sim.run_until(
      [&] {
        for (const auto& [id, inv] : s.replica(founder).state().invites)
          if (inv.invite_key == invite_key) return true;
        return false;
      },
      s.sim.now() + spread_ms_max));
  auto join = s.replica(founder).join(s.as(founder), invited->second, "founder");
  REQUIRE(join.ok());
  s.publish(founder, {*join});
  REQUIRE(s.sim.run_until([&] { return s.member_everywhere(founder, true); },
                          s.sim.now() + spread_ms_max));
  const Hash back = s.sim.post(founder, s.g, "hello again").back();
  REQUIRE(s.sim.run_until([&] { return s.sim.holders(s.g, back) == members; },
                          s.sim.now() + spread_ms_max));
  for (std::size_t i = 0; i < members; ++i) CHECK(text_at(s, i, back) == "hello again");
  CHECK(text_at(s, founder, missed) == "while you were away");
  CHECK(s.replica(1).state().role_of(s.sim.identity(founder).public_key()) == Role::member);
}

// Proves the shunning still holds for a former member without an open invite: a kicked member
// holding a code that someone else used up shows it, and no member syncs with it (it never gets
// the join that used the code, nor anything after its removal).
TEST_CASE("a former member showing a used-up invite stays shunned", "[sim][rejoin]") {
  Scene s(73, /*history_visible=*/false);
  INFO("reproduce: " << s.sim.repro());
  const std::size_t kicked = 2;
  auto removal = s.replica(0).remove(s.as(0), s.sim.identity(kicked).public_key());
  REQUIRE(removal.ok());
  s.publish(0, *removal);
  REQUIRE(s.sim.run_until([&] { return s.member_everywhere(kicked, false); },
                          s.sim.now() + spread_ms_max));
  auto invited = s.replica(1).invite(s.as(1), 1, sim_epoch_ms + s.sim.now() + day_ms,
                                     {s.sim.address(1)});
  REQUIRE(invited.ok());
  s.publish(1, {invited->first});
  // A newcomer uses the code up (as Simulation::join_group does, with this code).
  const std::size_t newcomer = s.sim.add_node();
  auto replica = std::make_unique<Replica>(s.g, &s.sim.identity(newcomer));
  std::vector<Event> events;
  for (const EventRecord* rec : s.replica(1).group().ordered()) events.push_back(rec->event);
  replica->ingest(std::move(events));
  auto join = replica->join(s.as(newcomer), invited->second, "new");
  REQUIRE(join.ok());
  s.sim.node(newcomer).add_group(s.sim.now(), std::move(replica), {s.sim.address(1)});
  s.sim.node(newcomer).publish(s.sim.now(), s.g, {*join});
  REQUIRE(s.sim.run_until([&] { return s.sim.holders(s.g, join->id) == members; },
                          s.sim.now() + spread_ms_max));
  // The kicked member shows the used-up code: nobody syncs with it.
  s.replica(kicked).hold_invite(invited->second);
  s.sim.node(kicked).announce_invite(s.sim.now(), s.g);
  s.sim.run_for(spread_ms_max);
  CHECK_FALSE(s.replica(kicked).group().has(invited->first.id));
  CHECK_FALSE(s.replica(kicked).group().has(join->id));
  CHECK(s.sim.node(kicked).active_peers(s.g).empty());
}
