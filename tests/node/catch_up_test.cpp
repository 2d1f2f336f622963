// Tests for node/catch_up.h: one group's catch-up engine on its own, fed inputs by hand and
// drained after each, with a real group's events but no links, node or clock: offers that ask
// only for what is missing and not already coming, requests held back by the gap, what a request
// sends and in what order, pacing by the send window, the periodic offer, and forgetting a peer.
#include "node/catch_up.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "fixture.h"
#include "node/event.h"

namespace qun {
namespace {

namespace co = catch_up_output;
using test::must;

PublicKey peer_key(std::uint64_t n) { return test::identity(0xc0 + n).public_key(); }

std::vector<CatchUpOutput> drain(CatchUp& c) {
  std::vector<CatchUpOutput> out;
  while (auto o = c.poll()) out.push_back(std::move(*o));
  REQUIRE_FALSE(c.invariant_violation());
  return out;
}

template <typename T>
std::vector<T> only(const std::vector<CatchUpOutput>& out) {
  std::vector<T> v;
  for (const auto& o : out)
    if (const auto* t = std::get_if<T>(&o)) v.push_back(*t);
  return v;
}

// A group of one member with `posts` posts after its create event.
struct History {
  explicit History(std::size_t posts) : author(1) {
    author.replica =
        std::make_unique<Replica>(must(Replica::create_group(author.at(1), "g", "a", {})));
    for (std::size_t i = 0; i < posts; ++i)
      (void)must(author.replica->post(author.at(2 + i), "post " + std::to_string(i)));
  }
  const Group& group() const { return author.replica->group(); }
  std::vector<Hash> ids() const {
    std::vector<Hash> v;
    for (const auto* rec : group().ordered()) v.push_back(rec->event.id);
    return v;
  }
  test::Peer author;
};

// Decodes a batch back to ids, to compare with what the group holds.
std::vector<Hash> ids_of(const std::vector<Bytes>& batch, const Hash& gid) {
  std::vector<Hash> v;
  for (const auto& b : batch) v.push_back(must(decode_event_in(b, gid)).id);
  return v;
}

// Bytes in flight per peer, as a node's links would report them; absent: no link.
struct Links {
  std::map<PublicKey, std::size_t> in_flight;
  CatchUp::InFlight fn() const {
    return [this](const PublicKey& p) -> std::optional<std::size_t> {
      auto it = in_flight.find(p);
      if (it == in_flight.end()) return std::nullopt;
      return it->second;
    };
  }
};

const CatchUp::Has holds_nothing = [](const Hash&) { return false; };

// An offer of heads we lack is answered by a request (our heads, want); another peer's offer of
// the same heads while the first is sending them asks nothing, until catch_up_wait_ms has passed.
// Heads we hold ask nothing at all.
TEST_CASE("catch-up asks for offered heads once, not twice in the wait", "[node][catch_up]") {
  History history(0);
  Rng rng = Rng::from_u64(1);
  CatchUp c(CatchUpConfig{}, 1'000'000);
  const PublicKey a = peer_key(1), b = peer_key(2), d = peer_key(3);
  const Hash h = hash(as_bytes("a head we lack"));
  c.on_offer(1'000, a, {h}, holds_nothing);
  auto asks = only<co::Heads>(drain(c));
  REQUIRE(asks.size() == 1);
  CHECK(asks[0].to == a);
  CHECK(asks[0].want);
  CHECK(c.solicited(1'000, a));  // what a sends now is catch-up
  c.on_offer(1'500, b, {h}, holds_nothing);
  CHECK(drain(c).empty());  // a is sending it
  c.on_offer(1'500, d, {h}, [&](const Hash& x) { return x == h; });
  CHECK(drain(c).empty());  // held
  c.on_tick(1'000 + catch_up_wait_ms, history.group(), rng, Links{}.fn());
  drain(c);
  c.on_offer(1'000 + catch_up_wait_ms, b, {h}, holds_nothing);
  asks = only<co::Heads>(drain(c));
  REQUIRE(asks.size() == 1);
  CHECK(asks[0].to == b);
}

// A second request to the same peer within heads_reply_gap_ms is held back, not lost: it goes out
// when the gap has passed, from on_tick; an early tick sends nothing.
TEST_CASE("catch-up holds a request back by the gap, then sends it", "[node][catch_up]") {
  History history(0);
  Rng rng = Rng::from_u64(2);
  CatchUp c(CatchUpConfig{}, 1'000'000);
  const PublicKey a = peer_key(1);
  c.request(5'000, a);
  CHECK(only<co::Heads>(drain(c)).size() == 1);
  c.request(5'300, a);
  CHECK(drain(c).empty());
  REQUIRE(c.next_deadline() == 5'000 + heads_reply_gap_ms);
  c.on_tick(5'900, history.group(), rng, Links{}.fn());
  CHECK(drain(c).empty());
  c.on_tick(5'000 + heads_reply_gap_ms, history.group(), rng, Links{}.fn());
  auto asks = only<co::Heads>(drain(c));
  REQUIRE(asks.size() == 1);
  CHECK(asks[0].to == a);
  CHECK(asks[0].want);
  CHECK(c.next_deadline() == 1'000'000);  // only the periodic offer is left
}

// A request after a wait (a pushed event whose parents are missing) goes out when the wait is
// over, not before; a second one with a shorter wait brings it forward, a longer one does not
// put it off.
TEST_CASE("catch-up sends a request after a wait when it is due", "[node][catch_up]") {
  History history(0);
  Rng rng = Rng::from_u64(3);
  CatchUp c(CatchUpConfig{}, 1'000'000);
  const PublicKey a = peer_key(1);
  c.request_after(5'000, a, 300);
  CHECK(drain(c).empty());
  REQUIRE(c.next_deadline() == 5'300);
  c.request_after(5'100, a, 100);  // sooner: 5'200
  c.request_after(5'150, a, 300);  // later: still 5'200
  REQUIRE(c.next_deadline() == 5'200);
  c.on_tick(5'199, history.group(), rng, Links{}.fn());
  CHECK(drain(c).empty());
  c.on_tick(5'200, history.group(), rng, Links{}.fn());
  auto asks = only<co::Heads>(drain(c));
  REQUIRE(asks.size() == 1);
  CHECK(asks[0].to == a);
  CHECK(asks[0].want);
  CHECK(c.next_deadline() == 1'000'000);
  CHECK_FALSE(c.invariant_violation());
}

// A request names the peer's heads: it gets every event outside their causal past, in stored
// order (parents first), and nothing it holds. A request from a peer holding everything gets
// nothing.
TEST_CASE("catch-up sends what is outside the requester's heads, in order", "[node][catch_up]") {
  History history(6);
  const auto ids = history.ids();  // create, then 6 posts, one chain
  const Hash gid = history.author.replica->id();
  Links links;
  const PublicKey a = peer_key(1);
  links.in_flight[a] = 0;
  CatchUp c(CatchUpConfig{}, 1'000'000);
  c.on_request(100, a, {ids[2]}, history.group(), links.fn());  // a holds the first three
  auto batches = only<co::Events>(drain(c));
  REQUIRE(batches.size() == 1);
  CHECK(batches[0].to == a);
  CHECK(ids_of(batches[0].events, gid) == std::vector<Hash>(ids.begin() + 3, ids.end()));
  CHECK_FALSE(c.sending_to(a));  // all sent: nothing queued
  c.on_request(200, a, {ids.back()}, history.group(), links.fn());
  CHECK(drain(c).empty());
  // Heads we do not know count for nothing: the peer gets everything.
  c.on_request(300, a, {hash(as_bytes("unknown"))}, history.group(), links.fn());
  batches = only<co::Events>(drain(c));
  REQUIRE(batches.size() == 1);
  CHECK(ids_of(batches[0].events, gid) == ids);
}

// Catch-up is paced by the send window: a pump sends batches while the peer's bytes in flight
// (the link's, plus what this pump sent) are under send_window_bytes, and the rest follows every
// catch_up_pump_ms as the link drains. A peer whose link is gone loses its queue.
TEST_CASE("catch-up paces batches by the send window", "[node][catch_up]") {
  History history(40);
  const auto ids = history.ids();
  const Hash gid = history.author.replica->id();
  const std::size_t one = encode_for_group_message(history.group().find(ids[5])->event).size();
  CatchUpConfig config;
  config.send_window_bytes = 10 * one;  // about ten posts in flight
  CatchUp c(config, 1'000'000);
  Rng rng = Rng::from_u64(3);
  Links links;
  const PublicKey a = peer_key(1);
  links.in_flight[a] = 8 * one;  // the link already holds eight posts' worth
  c.on_request(0, a, {}, history.group(), links.fn());
  std::vector<Hash> got;
  for (const auto& b : only<co::Events>(drain(c))) {
    auto v = ids_of(b.events, gid);
    got.insert(got.end(), v.begin(), v.end());
  }
  // What fits the window's remainder (a batch always carries at least one event), then stop.
  CHECK(got.size() >= 1);
  CHECK(got.size() <= 3);
  REQUIRE(c.sending_to(a));
  REQUIRE(c.next_deadline() == catch_up_pump_ms);
  Millis now = 0;
  for (int step = 0; step < 100 && c.sending_to(a); ++step) {
    links.in_flight[a] = 0;  // the driver wrote everything since
    now += catch_up_pump_ms;
    c.on_tick(now, history.group(), rng, links.fn());
    for (const auto& b : only<co::Events>(drain(c))) {
      auto v = ids_of(b.events, gid);
      got.insert(got.end(), v.begin(), v.end());
      CHECK(v.size() <= 10);
    }
  }
  CHECK(got == ids);  // all of it, in order, once
  // A queue for a peer with no link is dropped at its next pump.
  c.on_request(now, a, {}, history.group(), links.fn());
  drain(c);
  REQUIRE(c.sending_to(a));
  links.in_flight.erase(a);
  c.on_tick(now + catch_up_pump_ms, history.group(), rng, links.fn());
  CHECK(drain(c).empty());
  CHECK_FALSE(c.sending_to(a));
}

// A peer gone (link closed, shunned) takes its queue, its held-back request and the record of
// our asking it with it; the timers that only served it stop.
TEST_CASE("catch-up forgets a peer that is gone", "[node][catch_up]") {
  History history(20);
  CatchUpConfig config;
  config.send_window_bytes = 1;  // one event per pump
  Links links;
  const PublicKey a = peer_key(1);
  links.in_flight[a] = 0;
  CatchUp c(config, 1'000'000);
  c.request(0, a);
  c.request(10, a);  // held back
  c.on_request(10, a, {}, history.group(), links.fn());
  drain(c);
  REQUIRE(c.sending_to(a));
  REQUIRE(c.solicited(10, a));
  c.peer_gone(a);
  CHECK_FALSE(c.sending_to(a));
  CHECK_FALSE(c.solicited(10, a));
  CHECK(c.next_deadline() == 1'000'000);
  REQUIRE_FALSE(c.invariant_violation());
}

// The periodic offer goes every offer_interval_ms to one random neighbour not yet in step with
// our heads; with no neighbour it is tried again after offer_retry_ms. Once every neighbour has
// been offered the current heads, nothing goes out until offer_interval_max_ms after the last
// offer (then one, at random); new heads put every neighbour behind again. The pick is the
// injected Rng's: the same seed, the same peers.
TEST_CASE("catch-up offers heads periodically to neighbours not in step", "[node][catch_up]") {
  CatchUpConfig config;
  auto run = [&](std::uint64_t seed) {
    History history(0);
    Rng rng = Rng::from_u64(seed);
    CatchUp c(config, 500);
    c.on_tick(500, history.group(), rng, Links{}.fn());
    CHECK(drain(c).empty());  // nobody to offer to
    CHECK(c.next_deadline() == 500 + config.offer_retry_ms);
    for (std::uint64_t n = 1; n <= 4; ++n) c.neighbor_up(peer_key(n));
    std::vector<PublicKey> to;
    Millis now = 500 + config.offer_retry_ms;
    auto tick = [&] {
      c.on_tick(now, history.group(), rng, Links{}.fn());
      auto offers = only<co::Heads>(drain(c));
      REQUIRE(c.next_deadline() == now + config.offer_interval_ms);
      now += config.offer_interval_ms;
      REQUIRE(offers.size() <= 1);
      for (const auto& o : offers) {
        CHECK_FALSE(o.want);
        CHECK(c.is_neighbor(o.to));
      }
      return offers;
    };
    // Each neighbour once, then quiet.
    std::set<PublicKey> told;
    for (int i = 0; i < 4; ++i) {
      auto offers = tick();
      REQUIRE(offers.size() == 1);
      CHECK(told.insert(offers[0].to).second);
      to.push_back(offers[0].to);
    }
    const Millis last = now - config.offer_interval_ms;
    while (now < last + config.offer_interval_max_ms) CHECK(tick().empty());
    // The keepalive: one offer, to anyone, then quiet again.
    auto keepalive = tick();
    REQUIRE(keepalive.size() == 1);
    to.push_back(keepalive[0].to);
    CHECK(tick().empty());
    // New heads: every neighbour is behind again.
    (void)must(history.author.replica->post(history.author.at(100), "news"));
    told.clear();
    for (int i = 0; i < 4; ++i) {
      auto offers = tick();
      REQUIRE(offers.size() == 1);
      CHECK(told.insert(offers[0].to).second);
    }
    CHECK(tick().empty());
    return to;
  };
  const auto first = run(7);
  CHECK(first == run(7));
}

// A neighbour that offers the heads we hold is in step: the periodic offer skips it.
TEST_CASE("catch-up offers no heads to a neighbour that offered the same", "[node][catch_up]") {
  History history(2);
  CatchUpConfig config;
  Rng rng = Rng::from_u64(3);
  CatchUp c(config, 1'000);
  c.neighbor_up(peer_key(1));
  c.neighbor_up(peer_key(2));
  const std::vector<Hash> ours(history.group().heads().begin(), history.group().heads().end());
  c.on_offer(900, peer_key(1), ours, [&](const Hash& h) { return history.group().has(h); });
  CHECK(drain(c).empty());  // nothing lacking, nothing asked
  Millis now = 1'000;
  c.on_tick(now, history.group(), rng, Links{}.fn());
  auto offers = only<co::Heads>(drain(c));
  REQUIRE(offers.size() == 1);
  CHECK(offers[0].to == peer_key(2));
  c.on_tick(now + config.offer_interval_ms, history.group(), rng, Links{}.fn());
  CHECK(drain(c).empty());
  // Once it leaves and comes back, what we knew of it is gone: it is offered again.
  c.neighbor_down(peer_key(1));
  c.neighbor_up(peer_key(1));
  c.on_tick(now + 2 * config.offer_interval_ms, history.group(), rng, Links{}.fn());
  offers = only<co::Heads>(drain(c));
  REQUIRE(offers.size() == 1);
  CHECK(offers[0].to == peer_key(1));
}

}  // namespace
}  // namespace qun
