// Tests for node/relay_service.h: what a relay decides about serve requests, on its own, fed
// inputs by hand and drained after each, with real replicas for the groups it judges but no
// links, node or clock: who is refused, kept waiting for the operator or taken on; quotas and
// slots; probation kept for an admin, dropped for a stranger or a group whose data never comes;
// and the refusal that follows a drop.
#include "node/relay_service.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "fixture.h"
#include "node/direct.h"

namespace qun {
namespace {

namespace ro = relay_output;
using test::must;

std::vector<RelayOutput> drain(RelayService& r) {
  std::vector<RelayOutput> out;
  while (auto o = r.poll()) out.push_back(std::move(*o));
  REQUIRE_FALSE(r.invariant_violation());
  return out;
}

template <typename T>
std::vector<T> only(const std::vector<RelayOutput>& out) {
  std::vector<T> v;
  for (const auto& o : out)
    if (const auto* t = std::get_if<T>(&o)) v.push_back(*t);
  return v;
}

Hash group_id(std::uint64_t n) { return hash(as_bytes("group " + std::to_string(n))); }

// The groups a node would hold: those the service took on (as the node would on TakeOn).
struct Holder {
  std::set<Hash> held;
  RelayService::Held fn() const {
    return [this](const Hash& g) { return held.count(g) != 0; };
  }
  std::vector<RelayOutput> drain(RelayService& r) {
    auto out = qun::drain(r);
    for (const auto& t : only<ro::TakeOn>(out)) held.insert(t.group);
    for (const auto& d : only<ro::Drop>(out)) held.erase(d.group);
    return out;
  }
};

RelayServiceConfig relay_config(std::set<PublicKey> allow = {}) {
  RelayServiceConfig c;
  c.relay = true;
  c.allow = std::move(allow);
  return c;
}

// A node that is no relay refuses, and takes nothing on.
TEST_CASE("relay service: a node that is no relay refuses", "[node][relay_service]") {
  RelayService r(RelayServiceConfig{}, null_log_sink());
  const PublicKey a = test::identity(1).public_key();
  r.on_serve(0, a, group_id(1), "a:1", false, 0);
  auto replies = only<ro::Reply>(drain(r));
  REQUIRE(replies.size() == 1);
  CHECK_FALSE(replies[0].accepted);
  CHECK(replies[0].reason == "not a relay");
  CHECK(r.probation_groups().empty());
}

// An allowed requester's group is taken on at once (TakeOn with its address, then the accepted
// reply, in that order) and put on probation; its offered heads are what the relay waits for,
// and once it holds them and the requester is an admin there, the group is kept.
TEST_CASE("relay service: an allowed admin's group is taken on and kept", "[node][relay_service]") {
  test::Peer founder(1);
  founder.replica =
      std::make_unique<Replica>(must(Replica::create_group(founder.at(1), "g", "f", {})));
  const Hash gid = founder.replica->id();
  const PublicKey a = founder.key.public_key();
  RelayService r(relay_config({a}), null_log_sink());
  r.on_serve(100, a, gid, "founder:1", false, 0);
  auto out = drain(r);
  REQUIRE(out.size() == 2);
  REQUIRE(std::holds_alternative<ro::TakeOn>(out[0]));
  CHECK(std::get<ro::TakeOn>(out[0]).hints == std::vector<std::string>{"founder:1"});
  REQUIRE(std::holds_alternative<ro::Reply>(out[1]));
  CHECK(std::get<ro::Reply>(out[1]).accepted);
  CHECK(r.is_requester(gid, a));
  CHECK(r.next_deadline() == 100 + serve_probation_ms);
  r.on_heads(gid, a, std::vector<Hash>(founder.replica->group().heads().begin(),
                                       founder.replica->group().heads().end()));
  Replica empty(gid, nullptr);
  r.review(200, gid, empty);  // nothing held yet, not stalled: still waiting
  CHECK(drain(r).empty());
  CHECK(r.on_probation(gid));
  r.review(300, gid, *founder.replica);  // holds the heads; the requester founded the group
  CHECK(only<ro::Drop>(drain(r)).empty());
  CHECK_FALSE(r.on_probation(gid));
  CHECK_FALSE(r.next_deadline());
  // A second request for a group held is accepted without another take-on.
  r.on_serve(400, a, gid, "", true, 1);
  out = drain(r);
  REQUIRE(out.size() == 1);
  CHECK(std::get<ro::Reply>(out[0]).accepted);
}

// A requester that is not an admin of the group it asked for: the group is dropped once the
// relay holds the offered heads, and the requester is refused for that group afterwards. A
// group whose data never comes is dropped when the probation stalls, from on_tick.
TEST_CASE("relay service: probation drops a stranger's group, and a group with no data",
          "[node][relay_service]") {
  test::Peer founder(1), stranger(2);
  founder.replica =
      std::make_unique<Replica>(must(Replica::create_group(founder.at(1), "g", "f", {})));
  const Hash gid = founder.replica->id();
  const PublicKey s = stranger.key.public_key();
  RelayService r(relay_config({s}), null_log_sink());
  r.on_serve(0, s, gid, "", false, 0);
  drain(r);
  r.on_heads(gid, s, std::vector<Hash>(founder.replica->group().heads().begin(),
                                       founder.replica->group().heads().end()));
  r.review(10, gid, *founder.replica);
  auto drops = only<ro::Drop>(drain(r));
  REQUIRE(drops.size() == 1);
  CHECK(drops[0].group == gid);
  CHECK(drops[0].reason == "the requester is not an admin of the group");
  CHECK(r.probation_groups().empty());
  CHECK(r.claimed_groups().empty());
  r.on_serve(20, s, gid, "", false, 0);
  auto replies = only<ro::Reply>(drain(r));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].reason == "refused: not an admin of the group");

  // No data at all: dropped when no event came for serve_probation_ms.
  const Hash nothing = group_id(9);
  Replica empty(nothing, nullptr);
  r.on_serve(1'000, s, nothing, "", false, 0);
  drain(r);
  r.on_progress(5'000, nothing);  // an event arrived: the wait starts again
  REQUIRE(r.next_deadline() == 5'000 + serve_probation_ms);
  auto find = [&](const Hash& g) -> const Replica* { return g == nothing ? &empty : nullptr; };
  r.on_tick(4'999 + serve_probation_ms, find);
  CHECK(drain(r).empty());
  r.on_tick(5'000 + serve_probation_ms, find);
  drops = only<ro::Drop>(drain(r));
  REQUIRE(drops.size() == 1);
  CHECK(drops[0].reason == "no create event within 60 s");
}

// A requester not on the allow-list is refused and kept waiting for the operator (at most
// serve_waiting_per_requester_max per requester, serve_waiting_max in all, oldest out); approve
// takes the group on with the requesters' addresses; allow adds the key and takes on what it asked
// for, within its probation quota.
TEST_CASE("relay service: the operator approves waiting requests", "[node][relay_service]") {
  RelayService r(relay_config(), null_log_sink());
  Holder h;
  const PublicKey a = test::identity(1).public_key(), b = test::identity(2).public_key();
  for (std::uint64_t n = 1; n <= 6; ++n) r.on_serve(n, a, group_id(n), "a:1", false, 0);
  auto replies = only<ro::Reply>(h.drain(r));
  REQUIRE(replies.size() == 6);
  for (const auto& rep : replies) {
    CHECK_FALSE(rep.accepted);
    CHECK(rep.waiting);
  }
  REQUIRE(r.waiting().size() == serve_waiting_per_requester_max);
  CHECK(r.waiting().front().group == group_id(3));  // 1 and 2 made room
  CHECK(r.approve(10, group_id(1), std::nullopt, h.fn(), h.held.size()).error().code() ==
        Errc::not_found);
  r.on_serve(11, b, group_id(3), "b:1", false, 0);
  h.drain(r);
  REQUIRE(r.approve(12, group_id(3), std::nullopt, h.fn(), h.held.size()).ok());
  auto takes = only<ro::TakeOn>(h.drain(r));
  REQUIRE(takes.size() == 1);
  CHECK(takes[0].hints == std::vector<std::string>{"a:1", "b:1"});
  CHECK(r.is_requester(group_id(3), a));
  CHECK(r.is_requester(group_id(3), b));
  CHECK(r.waiting().size() == 3);  // a's 4, 5, 6
  // Allowing a takes on its other groups, up to serve_probation_per_peer_max on probation.
  auto taken = r.allow(13, a, h.fn(), h.held.size());
  CHECK(taken.size() == serve_probation_per_peer_max - 1);
  CHECK(h.drain(r).size() == taken.size());
  CHECK(r.allowed().count(a));
  // Full: the relay refuses what would pass its slots.
  RelayServiceConfig small = relay_config({b});
  small.groups_max = 1;
  RelayService full(small, null_log_sink());
  full.on_serve(0, b, group_id(1), "", false, 1);
  replies = only<ro::Reply>(drain(full));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].reason == "relay full: serving 1 groups");
}

// The waiting list stays within serve_waiting_max however many requesters ask.
TEST_CASE("relay service: the waiting list is bounded", "[node][relay_service]") {
  RelayService r(relay_config(), null_log_sink());
  for (std::uint64_t n = 0; n < 2 * serve_waiting_max; ++n)
    r.on_serve(n, test::identity(100 + n).public_key(), group_id(n), "", false, 0);
  drain(r);
  CHECK(r.waiting().size() == serve_waiting_max);
  CHECK(r.waiting().back().group == group_id(2 * serve_waiting_max - 1));
}

}  // namespace
}  // namespace qun

namespace qun {
namespace {

// Proves the relay's side of direct groups (node/direct.h): a direct offer from a peer that is
// a member of no group served here is dropped (nothing taken on); from a member it is taken on
// whatever the allow-list, on probation as direct, and
// stops at direct::relay_groups_per_member_max; its probation is judged by the node's judge:
// kept (with Kept, so the node offers it to the members) when the judge has no objection,
// dropped with the judge's reason otherwise, and then refused for a while.
TEST_CASE("relay service: direct offers from members, judged by the node", "[node][relay_service][direct]") {
  test::Peer ada(1), bob(2);
  RelayServiceConfig config = relay_config();
  config.groups_per_requester_max = 1;
  RelayService r(config, null_log_sink());
  Holder h;
  std::string verdict;  // what the judge says
  r.set_direct_judge([&](const Hash&, const Replica&, const std::set<PublicKey>&) { return verdict; });
  const PublicKey a = ada.key.public_key();
  CHECK_FALSE(r.on_direct_offer(0, a, group_id(1), "", false, 0, false, 0));
  CHECK(only<ro::TakeOn>(h.drain(r)).empty());
  CHECK(r.on_direct_offer(0, a, group_id(1), "", false, 0, true, 0));
  CHECK(only<ro::TakeOn>(h.drain(r)).size() == 1);
  CHECK(r.taken_as_direct(group_id(1)));
  CHECK(r.is_requester(group_id(1), a));
  // Past the per-member bound: dropped.
  CHECK_FALSE(r.on_direct_offer(0, a, group_id(2), "", false, 1, true,
                                direct::relay_groups_per_member_max));
  // Kept: a real direct group, caught up, the judge has no objection.
  ada.replica = std::make_unique<Replica>(must(Replica::create_direct(ada.at(1), "ada", bob.key.public_key())));
  Replica keyless(ada.replica->id(), nullptr);
  test::sync(*ada.replica, keyless);
  const Hash dm = ada.replica->id();
  CHECK(r.on_direct_offer(0, a, dm, "", false, 1, true, 1));
  h.drain(r);
  const auto& dm_heads = keyless.group().heads();
  r.on_heads(dm, a, {dm_heads.begin(), dm_heads.end()});
  r.review(10, dm, keyless);
  auto out = h.drain(r);
  REQUIRE(only<ro::Kept>(out).size() == 1);
  CHECK_FALSE(r.on_probation(dm));
  // Dropped: the judge objects; the offerer is refused for that group afterwards.
  test::Peer cy(3);
  cy.replica = std::make_unique<Replica>(must(Replica::create_direct(cy.at(1), "cy", bob.key.public_key())));
  Replica other(cy.replica->id(), nullptr);
  test::sync(*cy.replica, other);
  const PublicKey c = cy.key.public_key();
  CHECK(r.on_direct_offer(0, c, other.id(), "", false, 2, true, 0));
  h.drain(r);
  const auto& other_heads = other.group().heads();
  r.on_heads(other.id(), c, {other_heads.begin(), other_heads.end()});
  verdict = "a member of the direct group is in no group served here";
  r.review(10, other.id(), other);
  out = h.drain(r);
  REQUIRE(only<ro::Drop>(out).size() == 1);
  CHECK(only<ro::Drop>(out)[0].reason == verdict);
  CHECK_FALSE(r.on_direct_offer(20, c, other.id(), "", false, 2, true, 0));
}

}  // namespace
}  // namespace qun
