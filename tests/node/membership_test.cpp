// Tests for node/membership.h: one group's peer sampling (HyParView) on its own, fed inputs by hand
// and drained after each, with a fake view of the node's links and no node, replica or clock: who
// gets into the active set and who makes room, what the passive list keeps, how a peer leaves,
// how maintenance fills the set and keeps a relay linked, and the shuffle and explore timers.
#include "node/membership.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fixture.h"
#include "node/relayed.h"

namespace qun {
namespace {

namespace mo = membership_output;
using Gone = Membership::Gone;

PublicKey key(std::uint64_t n) { return test::identity(0x3e0 + n).public_key(); }
std::string addr(std::uint64_t n) { return "10.0.0." + std::to_string(n) + ":7000"; }

// The node's links as the test sets them.
struct FakeLinks final : MembershipLinks {
  std::set<PublicKey> up, share, banned_peers, formers;
  std::set<std::string> dials;
  std::map<std::uint64_t, std::string> addresses;
  bool linked(const PublicKey& p) const override { return up.count(p) != 0; }
  bool shares(const PublicKey& p) const override { return up.count(p) && share.count(p); }
  std::vector<PublicKey> sharing() const override {
    std::vector<PublicKey> v;
    for (const auto& p : up)
      if (share.count(p)) v.push_back(p);
    return v;
  }
  bool dialing(const std::string& a) const override { return dials.count(a) != 0; }
  bool banned(const PublicKey& p, Millis) const override { return banned_peers.count(p) != 0; }
  std::string address(std::uint64_t link) const override {
    auto it = addresses.find(link);
    return it == addresses.end() ? std::string() : it->second;
  }
  std::string advertised(std::uint64_t link) const override { return address(link); }
  bool former(const PublicKey& p) const override { return formers.count(p) != 0; }
  std::set<PublicKey> elsewhere, outbound;  // active in another group; on a link we dialed
  std::size_t carries_other(const PublicKey& p) const override { return elsewhere.count(p); }
  bool dialed(const PublicKey& p) const override { return outbound.count(p) != 0; }
  // A link `n` to peer key(n) at addr(n), sharing the group.
  void link(std::uint64_t n) {
    up.insert(key(n));
    share.insert(key(n));
    addresses[n] = addr(n);
  }
};

MembershipConfig small_config() {
  MembershipConfig c;
  c.active_target = 2;
  c.active_max = 3;
  c.passive_max = 4;
  c.shuffle_peers = 3;
  c.self_address = "self:1";
  c.self = key(0);
  return c;
}

std::vector<MembershipOutput> drain(Membership& m) {
  std::vector<MembershipOutput> out;
  while (auto o = m.poll()) out.push_back(std::move(*o));
  REQUIRE_FALSE(m.invariant_violation());
  return out;
}

template <typename T>
std::vector<T> only(const std::vector<MembershipOutput>& out) {
  std::vector<T> v;
  for (const auto& o : out)
    if (const auto* t = std::get_if<T>(&o)) v.push_back(*t);
  return v;
}

Membership started(MembershipConfig c = small_config()) {
  Membership m(std::move(c));
  m.schedule(1'000'000, 1'000'000);
  return m;
}

// Neighbor requests are accepted while the set has room (Up, then an accepting reply, and the
// peer's address leaves the passive list); past the cap they are refused, unless the asker has no
// neighbour at all: then a random non-relay neighbour is dropped (Down, Disconnect, and its address
// back to the passive list) to make room.
TEST_CASE("membership accepts neighbours up to the cap, and makes room for a lone peer",
          "[node][membership]") {
  Rng rng = Rng::from_u64(1);
  FakeLinks links;
  Membership m = started();
  m.set_relays({{key(1), addr(1)}}, rng);
  m.remember(addr(2), key(2), rng);
  REQUIRE(m.passive_size() == 2);
  for (std::uint64_t n = 1; n <= 3; ++n) {
    links.link(n);
    m.on_neighbor(0, key(n), n, addr(n), false, rng, links);
    auto out = drain(m);
    REQUIRE(out.size() == 2);
    CHECK(std::get<mo::Up>(out[0]).peer == key(n));
    CHECK(std::get<mo::NeighborReply>(out[1]).accepted);
  }
  CHECK(m.passive_size() == 0);  // 1 and 2 are active now
  links.link(4);
  m.on_neighbor(0, key(4), 4, addr(4), false, rng, links);
  auto out = drain(m);
  REQUIRE(out.size() == 1);
  CHECK_FALSE(std::get<mo::NeighborReply>(out[0]).accepted);
  m.on_neighbor(0, key(4), 4, addr(4), true, rng, links);  // high priority: room is made
  out = drain(m);
  auto downs = only<mo::Down>(out);
  REQUIRE(downs.size() == 1);
  CHECK(downs[0].peer != key(1));  // never the relay while an ordinary peer can go
  REQUIRE(only<mo::Disconnect>(out).size() == 1);
  CHECK(only<mo::Disconnect>(out)[0].to == downs[0].peer);
  CHECK(only<mo::NeighborReply>(out)[0].accepted);
  CHECK(m.is_active(key(4)));
  CHECK(m.active().size() == 3);
  CHECK(m.passive_size() == 1);  // the dropped peer's address
}

// The passive list never holds this node, an active peer or an empty address; past passive_max a
// random entry goes, but never a named relay's.
TEST_CASE("membership's passive list is bounded and keeps relays", "[node][membership]") {
  Rng rng = Rng::from_u64(2);
  Membership m = started();
  m.remember("", std::nullopt, rng);
  m.remember("self:1", std::nullopt, rng);
  m.remember(addr(9), key(0), rng);
  CHECK(m.passive_size() == 0);
  m.set_relays({{key(1), addr(1)}, {key(2), addr(2)}}, rng);
  for (std::uint64_t n = 3; n <= 20; ++n) m.remember(addr(n), key(n), rng);
  drain(m);
  CHECK(m.passive_size() == 4);
  // The relays stayed through every eviction; un-naming one takes its entry out.
  m.set_relays({{key(1), addr(1)}}, rng);
  CHECK(m.passive_size() == 3);
  m.forget_identities({key(1)});
  CHECK(m.passive_size() == 2);
}

// Proves what a full node hands a newcomer (hand_out): at most shuffle_peers peers, those with a
// public address first, then relayed ones, then private ones (which work only on their LAN),
// whatever order the passive list and the draw give, over many draws.
TEST_CASE("membership hands on public addresses first", "[node][membership]") {
  MembershipConfig c = small_config();
  c.passive_max = 16;
  Membership m = started(c);
  FakeLinks links;
  Rng rng = Rng::from_u64(3);
  const PublicKey relay = key(9);
  const std::string relayed = relayed_address("20.0.0.9:7000", relay);
  m.remember("10.0.0.1:7000", key(1), rng);  // private
  m.remember("10.0.0.2:7000", key(2), rng);  // private
  m.remember("20.0.0.3:7000", key(3), rng);  // public
  m.remember("20.0.0.4:7000", key(4), rng);  // public
  m.remember(relayed, key(5), rng);          // relayed
  drain(m);
  for (int draw = 0; draw < 20; ++draw) {
    const auto out = m.hand_out(rng, links);
    REQUIRE(out.size() == c.shuffle_peers);
    CHECK((out[0].id == key(3) || out[0].id == key(4)));
    CHECK((out[1].id == key(3) || out[1].id == key(4)));
    CHECK(out[2].id == key(5));
  }
}

// How a peer leaves: a closed link takes it out only if it is the link the set names; a dropped
// peer is told (Disconnect) and its address kept unless banned; a shunned one is told and not
// kept; a peer that disconnected is not told.
TEST_CASE("membership removes a peer one way, saying why", "[node][membership]") {
  Rng rng = Rng::from_u64(3);
  FakeLinks links;
  Membership m = started();
  for (std::uint64_t n = 1; n <= 3; ++n) {
    links.link(n);
    m.on_neighbor(0, key(n), n, addr(n), false, rng, links);
  }
  drain(m);
  CHECK_FALSE(m.remove(0, key(1), 99, addr(1), Gone::link_closed, false, rng));  // a duplicate link
  CHECK(drain(m).empty());
  CHECK(m.remove(0, key(1), 1, addr(1), Gone::link_closed, false, rng));
  auto out = drain(m);
  REQUIRE(out.size() == 1);
  CHECK(std::holds_alternative<mo::Down>(out[0]));
  CHECK(m.passive_size() == 1);
  CHECK(m.remove(0, key(2), 2, addr(2), Gone::shunned, false, rng));
  out = drain(m);
  CHECK(only<mo::Disconnect>(out).size() == 1);
  CHECK(m.passive_size() == 1);  // not remembered
  CHECK(m.remove(0, key(3), 3, addr(3), Gone::dropped, true, rng));  // banned: not remembered
  CHECK(only<mo::Disconnect>(drain(m)).size() == 1);
  CHECK(m.passive_size() == 1);
  CHECK(m.active().empty());
}

// Maintenance asks linked peers sharing the group first, up to the target (counting requests in
// flight), then dials passive entries that are not linked, banned or being dialed.
TEST_CASE("membership fills the active set from links, then the passive list",
          "[node][membership]") {
  Rng rng = Rng::from_u64(4);
  FakeLinks links;
  Membership m = started();
  links.link(1);
  m.maintain(0, rng, links);
  auto asks = only<mo::Neighbor>(drain(m));
  REQUIRE(asks.size() == 1);
  CHECK(asks[0].to == key(1));
  CHECK(asks[0].high_priority);  // no neighbour yet
  for (std::uint64_t n = 2; n <= 5; ++n) m.remember(addr(n), key(n), rng);
  links.banned_peers.insert(key(2));
  links.dials.insert(addr(3));
  m.maintain(1'000, rng, links);
  auto dials = only<mo::Dial>(drain(m));
  REQUIRE(dials.size() == 1);  // target 2: one asked, one dialed
  CHECK((dials[0].address == addr(4) || dials[0].address == addr(5)));
  // An accepted reply takes the peer in; asking again stops once the set is at its target.
  m.on_neighbor_reply(1'100, key(1), 1, addr(1), true, rng, links);
  CHECK(only<mo::Up>(drain(m)).size() == 1);
}

// A member keeps a named relay in its active set: it asks a linked relay that holds the group,
// else dials one; a refusal or a failed attempt holds the next try back for relay_retry_ms. A
// relay accepted when the set is full takes an ordinary peer's place.
TEST_CASE("membership keeps a relay linked", "[node][membership]") {
  Rng rng = Rng::from_u64(5);
  FakeLinks links;
  MembershipConfig c = small_config();
  c.active_target = 3;
  Membership m = started(c);
  const PublicKey relay = key(7);
  m.set_relays({{relay, addr(7)}}, rng);
  for (std::uint64_t n = 1; n <= 3; ++n) {
    links.link(n);
    m.on_neighbor(0, key(n), n, addr(n), false, rng, links);
  }
  drain(m);
  m.maintain(0, rng, links);  // the relay is not linked: dial it
  auto dials = only<mo::Dial>(drain(m));
  REQUIRE(dials.size() == 1);
  CHECK(dials[0].address == addr(7));
  CHECK(dials[0].expected == relay);
  m.maintain(500, rng, links);  // within relay_retry_ms: nothing
  CHECK(only<mo::Dial>(drain(m)).empty());
  links.link(7);
  m.maintain(c.relay_retry_ms, rng, links);  // linked and sharing: ask it
  auto asks = only<mo::Neighbor>(drain(m));
  REQUIRE(asks.size() == 1);
  CHECK(asks[0].to == relay);
  m.on_neighbor_reply(c.relay_retry_ms + 10, relay, 7, addr(7), true, rng, links);
  auto out = drain(m);
  CHECK(only<mo::Down>(out).size() == 1);  // an ordinary peer made room
  CHECK(m.is_active(relay));
  CHECK(m.active().size() == 3);
  // An ordinary peer accepted into a full set is told to leave at once.
  links.link(8);
  m.on_neighbor_reply(c.relay_retry_ms + 20, key(8), 8, addr(8), true, rng, links);
  out = drain(m);
  REQUIRE(out.size() == 1);
  CHECK(std::get<mo::Disconnect>(out[0]).to == key(8));
  m.note_serving(relay, false);
  m.note_serving(key(1), true);  // not a relay: ignored
  CHECK(m.serving(relay) == false);
  CHECK_FALSE(m.serving(key(1)));
}

// The shuffle timer trades a sample with one random active peer (with none, it retries after
// retry_ms); a shuffle request is answered with our sample and the offered peers are remembered;
// the explore timer dials one passive peer with no link.
TEST_CASE("membership shuffles and explores on its timers", "[node][membership]") {
  Rng rng = Rng::from_u64(6);
  FakeLinks links;
  MembershipConfig c = small_config();
  Membership m(c);
  m.schedule(100, 200);
  m.on_tick(100, rng, links);
  CHECK(drain(m).empty());
  CHECK(m.next_deadline() == 200);
  m.on_tick(200, rng, links);
  CHECK(m.next_deadline() == 100 + c.retry_ms);
  links.link(1);
  m.on_neighbor(300, key(1), 1, addr(1), false, rng, links);
  m.remember(addr(2), key(2), rng);
  m.remember(addr(3), std::nullopt, rng);
  drain(m);
  m.on_tick(100 + c.retry_ms, rng, links);
  auto shuffles = only<mo::Shuffle>(drain(m));
  REQUIRE(shuffles.size() == 1);
  CHECK(shuffles[0].to == key(1));
  CHECK_FALSE(shuffles[0].reply);
  CHECK(shuffles[0].peers.size() == 2);  // the active peer and the passive one with an id
  CHECK(m.next_deadline() == 200 + c.retry_ms);
  m.on_tick(200 + c.retry_ms, rng, links);
  auto dials = only<mo::Dial>(drain(m));
  REQUIRE(dials.size() == 1);
  CHECK((dials[0].address == addr(2) || dials[0].address == addr(3)));
  m.on_shuffle(key(1), false, {{key(4), {addr(4)}}}, rng, links);
  shuffles = only<mo::Shuffle>(drain(m));
  REQUIRE(shuffles.size() == 1);
  CHECK(shuffles[0].reply);
  CHECK(m.passive_size() == 3);
}

// While the active set stays the same, each shuffle doubles the interval to the next, up to
// shuffle_interval_max_ms; a change of the set brings the interval back to the base, and the next
// maintenance round pulls a backed-off shuffle forward to within it.
TEST_CASE("membership's shuffles back off while the active set is stable", "[node][membership]") {
  Rng rng = Rng::from_u64(7);
  FakeLinks links;
  MembershipConfig c = small_config();
  Membership m(c);
  m.schedule(0, 1'000'000'000);
  links.link(1);
  m.on_neighbor(0, key(1), 1, addr(1), false, rng, links);
  drain(m);
  Millis now = 0;
  std::vector<Millis> waits;
  for (int i = 0; i < 8; ++i) {
    m.on_tick(now, rng, links);
    REQUIRE(only<mo::Shuffle>(drain(m)).size() == 1);
    waits.push_back(m.shuffle_every());
    REQUIRE(m.next_deadline() == now + m.shuffle_every());
    now += m.shuffle_every();
  }
  const Millis base = c.shuffle_interval_ms;
  const std::vector<Millis> expected = {base,      2 * base,  4 * base,  8 * base,
                                        16 * base, 32 * base, 32 * base, 32 * base};
  CHECK(waits == expected);
  REQUIRE(c.shuffle_interval_max_ms == 32 * base);
  // A new neighbour: the next maintenance round brings the shuffle within the base interval,
  // and it goes back to the base pace.
  links.link(2);
  m.on_neighbor(now, key(2), 2, addr(2), false, rng, links);
  drain(m);
  m.maintain(now, rng, links);
  drain(m);
  REQUIRE(m.next_deadline());
  CHECK(*m.next_deadline() <= now + base);
  const Millis due = *m.next_deadline();
  m.on_tick(due, rng, links);
  REQUIRE(only<mo::Shuffle>(drain(m)).size() == 1);
  CHECK(m.shuffle_every() == base);
}

// A peer that refuses our neighbor request (its set is full) is not asked again by maintenance
// until a wait that starts at shuffle_interval_ms and doubles with each refusal in a row; its
// link closing forgets the refusal.
TEST_CASE("membership does not ask a refusing peer every round", "[node][membership]") {
  Rng rng = Rng::from_u64(8);
  FakeLinks links;
  MembershipConfig c = small_config();
  Membership m = started(c);
  links.link(1);
  m.maintain(0, rng, links);
  REQUIRE(only<mo::Neighbor>(drain(m)).size() == 1);
  m.on_neighbor_reply(10, key(1), 1, addr(1), false, rng, links);
  drain(m);
  auto asks_at = [&](Millis now) {
    m.maintain(now, rng, links);
    return only<mo::Neighbor>(drain(m)).size();
  };
  CHECK(asks_at(1'000) == 0);
  CHECK(asks_at(10 + c.shuffle_interval_ms - 1) == 0);
  REQUIRE(asks_at(10 + c.shuffle_interval_ms) == 1);
  const Millis second = 20 + c.shuffle_interval_ms;
  m.on_neighbor_reply(second, key(1), 1, addr(1), false, rng, links);
  drain(m);
  CHECK(asks_at(second + c.shuffle_interval_ms) == 0);  // the wait doubled
  REQUIRE(asks_at(second + 2 * c.shuffle_interval_ms) == 1);
  // Its link closes and comes back: asked at once.
  m.on_neighbor_reply(second + 2 * c.shuffle_interval_ms + 1, key(1), 1, addr(1), false, rng,
                      links);
  drain(m);
  (void)m.remove(0, key(1), 1, addr(1), Membership::Gone::link_closed, false, rng);
  drain(m);
  CHECK(asks_at(second + 2 * c.shuffle_interval_ms + 2) == 1);
  // A refusal that crosses the peer's own request, which made it active, is no refusal.
  m.on_neighbor(second + 2 * c.shuffle_interval_ms + 3, key(1), 1, addr(1), false, rng, links);
  m.on_neighbor_reply(second + 2 * c.shuffle_interval_ms + 4, key(1), 1, addr(1), false, rng,
                      links);
  drain(m);
  CHECK(m.is_active(key(1)));
}

// Explorations back off the same way: each doubles the interval to the next while the active
// set stays the same, up to explore_interval_max_ms, and a change (a partition closing links)
// brings a backed-off exploration forward to within explore_interval_ms.
TEST_CASE("membership's explorations back off while the active set is stable",
          "[node][membership]") {
  Rng rng = Rng::from_u64(9);
  FakeLinks links;
  MembershipConfig c = small_config();
  Membership m(c);
  m.schedule(1'000'000'000, 0);
  links.link(1);
  m.on_neighbor(0, key(1), 1, addr(1), false, rng, links);
  m.remember(addr(5), key(5), rng);  // never linked: every exploration dials it
  drain(m);
  Millis now = 0;
  std::vector<Millis> waits;
  for (int i = 0; i < 6; ++i) {
    m.on_tick(now, rng, links);
    REQUIRE(only<mo::Dial>(drain(m)).size() == 1);
    waits.push_back(m.explore_every());
    now += m.explore_every();
  }
  const Millis base = c.explore_interval_ms;
  REQUIRE(c.explore_interval_max_ms == 16 * base);
  CHECK(waits == std::vector<Millis>{base, 2 * base, 4 * base, 8 * base, 16 * base, 16 * base});
  // The active peer's link closes: the next maintenance round brings the exploration forward.
  (void)m.remove(0, key(1), 1, addr(1), Membership::Gone::link_closed, false, rng);
  drain(m);
  m.maintain(now, rng, links);
  drain(m);
  REQUIRE(m.next_deadline());
  CHECK(*m.next_deadline() <= now + base);
  CHECK(m.explore_every() == base);
}

// Healing: an active peer whose link closed is redialed even though the set refilled (first
// within lost_redial_ms, then at doubling waits up to lost_redial_max_ms), until a link to it is
// up again; a peer that sent Disconnect is not lost. Fails without the lost list: after the
// refill nothing dials the lost peer.
TEST_CASE("membership redials an active peer whose link was lost", "[node][membership]") {
  Rng rng = Rng::from_u64(10);
  FakeLinks links;
  Membership m = started();
  for (std::uint64_t n = 1; n <= 2; ++n) {
    links.link(n);
    m.on_neighbor(0, key(n), n, addr(n), false, rng, links);
  }
  drain(m);
  // Peer 1's link closes (a partition); peers 3 and 4, linked, refill the set.
  links.up.erase(key(1));
  (void)m.remove(0, key(1), 1, addr(1), Gone::link_closed, false, rng);
  // Peer 2 says it leaves our set: not lost.
  (void)m.remove(0, key(2), 2, addr(2), Gone::disconnected, false, rng);
  links.link(3);
  links.link(4);
  m.on_neighbor(0, key(3), 3, addr(3), false, rng, links);
  m.on_neighbor(0, key(4), 4, addr(4), false, rng, links);
  drain(m);
  CHECK(m.lost_size() == 1);
  std::vector<Millis> dialed_at;
  for (Millis now = 0; now <= 70'000; now += 1'000) {
    m.maintain(now, rng, links);
    for (const auto& d : only<mo::Dial>(drain(m))) {
      CHECK(d.address == addr(1));  // never peer 2's
      dialed_at.push_back(now);
    }
  }
  // 1-2 s, then 2-4 s, 4-8 s, 8-16 s, 15-30 s, 15-30 s later: five to six dials in 70 s.
  REQUIRE(dialed_at.size() >= 5);
  CHECK(dialed_at.front() <= lost_redial_ms);
  for (std::size_t i = 1; i < dialed_at.size(); ++i)
    CHECK(dialed_at[i] - dialed_at[i - 1] <= lost_redial_max_ms);
  // The peer's link is up again: the redials stop.
  links.link(1);
  m.on_shared(key(1));
  drain(m);
  CHECK(m.lost_size() == 0);
  for (Millis now = 71'000; now <= 140'000; now += 1'000) {
    m.maintain(now, rng, links);
    CHECK(only<mo::Dial>(drain(m)).empty());
  }
}

// Consolidation: a full set holding a peer active in this group alone asks a linked peer that
// other groups use, on a link this node dialed, and once it accepts gives the lone peer's place
// up (Disconnect), refusing its requests for shed_hold_ms; a peer that linked to us, however many
// groups it carries, is never preferred that way (a hostile member cannot make itself everyone's
// neighbour by dialing). Fails without consolidate: nothing asks peer 3 while the set is full.
TEST_CASE("membership shares links across groups, on links it dialed", "[node][membership]") {
  Rng rng = Rng::from_u64(11);
  FakeLinks links;
  Membership m = started();
  for (std::uint64_t n = 1; n <= 2; ++n) {
    links.link(n);
    m.on_neighbor(0, key(n), n, addr(n), false, rng, links);
  }
  drain(m);
  // Peers 4 and 5 linked to us and are active in other groups: not candidates.
  for (std::uint64_t n = 4; n <= 5; ++n) {
    links.link(n);
    links.elsewhere.insert(key(n));
  }
  for (Millis now = 0; now < 5'000; now += 1'000) {
    m.maintain(now, rng, links);
    CHECK(only<mo::Neighbor>(drain(m)).empty());
  }
  // Peer 3, on a link we dialed, is active in another group: asked, one request at a time.
  links.link(3);
  links.elsewhere.insert(key(3));
  links.outbound.insert(key(3));
  m.maintain(5'000, rng, links);
  auto asks = only<mo::Neighbor>(drain(m));
  REQUIRE(asks.size() == 1);
  CHECK(asks[0].to == key(3));
  m.maintain(6'000, rng, links);
  CHECK(only<mo::Neighbor>(drain(m)).empty());
  m.on_neighbor_reply(6'100, key(3), 3, addr(3), true, rng, links);
  auto out = drain(m);
  REQUIRE(only<mo::Disconnect>(out).size() == 1);
  const PublicKey shed = only<mo::Disconnect>(out)[0].to;
  CHECK((shed == key(1) || shed == key(2)));
  CHECK(m.active().size() == 2);
  CHECK(m.is_active(key(3)));
  // The peer given up asks back at once: refused (no swapping back and forth) ...
  const std::uint64_t shed_n = shed == key(1) ? 1 : 2;
  m.on_neighbor(7'000, shed, shed_n, addr(shed_n), false, rng, links);
  auto replies = only<mo::NeighborReply>(drain(m));
  REQUIRE(replies.size() == 1);
  CHECK_FALSE(replies[0].accepted);
  // ... unless it has no neighbour at all, or after shed_hold_ms.
  m.on_neighbor(7'000 + shed_hold_ms, shed, shed_n, addr(shed_n), false, rng, links);
  replies = only<mo::NeighborReply>(drain(m));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].accepted);
}

// A peer that told us it gave our place up is not asked again at once, even with room: asking
// it back would undo its choice (and, for a consolidation, start the swap over).
TEST_CASE("membership does not ask back a peer that disconnected", "[node][membership]") {
  Rng rng = Rng::from_u64(12);
  FakeLinks links;
  Membership m = started();
  links.link(1);
  m.on_neighbor(0, key(1), 1, addr(1), false, rng, links);
  drain(m);
  (void)m.remove(0, key(1), 1, addr(1), Gone::disconnected, false, rng);
  drain(m);
  m.maintain(1'000, rng, links);
  CHECK(only<mo::Neighbor>(drain(m)).empty());
  m.maintain(1'000 + small_config().shuffle_interval_ms, rng, links);
  CHECK(only<mo::Neighbor>(drain(m)).size() == 1);
}

}  // namespace
}  // namespace qun
