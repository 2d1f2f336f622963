// Relay events (node/payload.h RelayPayload, resolution in node/group.cpp): who may name a
// group's relays, what GroupState::relays holds, how relay events show in the history, their
// bounds and their strict payload decoding. The Node side (serving, byte bound, members keeping
// relay links) is tested in the simulator: tests/sim/relay_sim_test.cpp.
#include <catch2/catch.hpp>

#include "base/codec.h"
#include "node/limits.h"
#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;
constexpr std::uint64_t day_ms = 86'400'000;

Peer founder() {
  Peer f(0);
  f.replica = std::make_unique<Replica>(
      must(Replica::create_group(f.at(t0), "club", "ada", GroupSettings{})));
  return f;
}

// `who` joins through the founder's replica, and the founder learns of the join.
void join(Peer& f, Peer& who, std::uint64_t now) {
  auto [ev, code] = must(f.replica->invite(f.at(now), 1, now + day_ms, {}));
  (void)ev;
  who.replica = std::make_unique<Replica>(code.group, &who.key);
  sync(*f.replica, *who.replica);
  must(who.replica->join(who.at(now + 1), code, "n"));
  sync(*who.replica, *f.replica);
}

// A relay event signed by `author` on top of `on`'s heads, bypassing Replica's checks: what a
// modified client could send.
Event forge_relay(const Replica& on, const SigningKey& author, const PublicKey& relay,
                  const std::string& address, bool active, std::uint64_t time_ms) {
  Event e;
  e.group = on.id();
  e.author = author.public_key();
  e.parents = on.group().next_parents();
  e.depth = on.group().next_depth(e.parents);
  e.time_ms = time_ms;
  e.kind = EventKind::relay;
  e.epoch = on.state().epoch;
  e.payload = encode_payload(RelayPayload{relay, address, active});
  sign_event(e, author);
  return e;
}

PublicKey relay_key(std::uint64_t n) { return identity(500 + n).public_key(); }

}  // namespace

// Proves an admin names a relay: GroupState::relays maps its key to its address, the history
// shows a relay entry (target = relay, text = address, relay_active) that a keyless replica
// reads too; naming it again changes the address; un-naming removes it.
TEST_CASE("relay: the founder names, moves and un-names a relay", "[node][relay]") {
  Peer f = founder();
  const PublicKey r = relay_key(1);
  Event named = must(f.replica->set_relay(f.at(t0 + 10), r, "10.0.0.5:7000", true));
  CHECK(named.kind == EventKind::relay);
  CHECK(f.replica->state().relays == std::map<PublicKey, std::string>{{r, "10.0.0.5:7000"}});
  Message m = f.replica->history().back();
  CHECK(m.kind == EventKind::relay);
  CHECK(m.author == f.key.public_key());
  CHECK(m.target == r);
  CHECK(m.text == "10.0.0.5:7000");
  CHECK(m.relay_active);

  // A relay's replica (no keys) resolves and shows the same: the payload is clear.
  Replica keyless(f.replica->id(), nullptr);
  sync(*f.replica, keyless);
  CHECK(keyless.state().relays == f.replica->state().relays);
  CHECK(keyless.history().back().text == "10.0.0.5:7000");

  must(f.replica->set_relay(f.at(t0 + 20), r, "relay.example:7000", true));
  CHECK(f.replica->state().relays.at(r) == "relay.example:7000");

  must(f.replica->set_relay(f.at(t0 + 30), r, "ignored", false));
  CHECK(f.replica->state().relays.empty());
  m = f.replica->history().back();
  CHECK(m.kind == EventKind::relay);
  CHECK(m.target == r);
  CHECK(m.text == "");
  CHECK_FALSE(m.relay_active);

  // Un-naming a relay the group does not name is refused before anything is signed.
  auto again = f.replica->set_relay(f.at(t0 + 40), r, "", false);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code() == Errc::not_found);
}

// Proves (g): a member without admin rights cannot name relays. Replica refuses to author it;
// a forged relay event by the member is admitted (the author is a member) but resolution gives
// it no effect and keeps it out of the history; one by an outsider is rejected at admission.
TEST_CASE("relay: relay events by a non-admin are rejected", "[node][relay]") {
  Peer f = founder();
  Peer bob(1);
  join(f, bob, t0 + 10);
  const PublicKey r = relay_key(2);

  auto refused = bob.replica->set_relay(bob.at(t0 + 20), r, "10.0.0.9:7000", true);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code() == Errc::unauthorized);
  CHECK(bob.replica->state().relays.empty());

  const auto history_before = f.replica->state().history;
  Event forged = forge_relay(*bob.replica, bob.key, r, "10.0.0.9:7000", true, t0 + 21);
  auto report = f.replica->ingest({forged});
  REQUIRE(report.admitted.size() == 1);
  const EventRecord* rec = f.replica->group().find(forged.id);
  REQUIRE(rec);
  CHECK_FALSE(rec->accepted);
  CHECK(rec->why_not == "needs admin rights");
  CHECK(f.replica->state().relays.empty());
  CHECK(f.replica->state().history == history_before);

  // An outsider's relay event never enters the DAG.
  Peer mallory(7);
  Event outsider = forge_relay(*f.replica, mallory.key, r, "10.0.0.9:7000", true, t0 + 22);
  auto rejected = f.replica->ingest({outsider});
  CHECK(rejected.rejected.size() == 1);
  CHECK_FALSE(f.replica->group().has(outsider.id));

  // Once promoted, bob may name relays.
  must(f.replica->set_role(f.at(t0 + 30), bob.key.public_key(), Role::admin));
  sync(*f.replica, *bob.replica);
  must(bob.replica->set_relay(bob.at(t0 + 40), r, "10.0.0.9:7000", true));
  sync(*bob.replica, *f.replica);
  CHECK(f.replica->state().relays.count(r) == 1);
}

// Proves relay events are privileged: an admin's relay event concurrent with its demotion is
// void on every replica, whatever the order they learn the two in (revocation wins).
TEST_CASE("relay: a demotion voids a concurrent relay event", "[node][relay]") {
  Peer f = founder();
  Peer bob(1);
  join(f, bob, t0 + 10);
  must(f.replica->set_role(f.at(t0 + 20), bob.key.public_key(), Role::admin));
  sync(*f.replica, *bob.replica);
  Event named = must(bob.replica->set_relay(bob.at(t0 + 30), relay_key(3), "r:1", true));
  Event demotion = must(f.replica->set_role(f.at(t0 + 40), bob.key.public_key(), Role::member));
  f.replica->ingest({named});
  bob.replica->ingest({demotion});
  for (Replica* r : {f.replica.get(), bob.replica.get()}) {
    CHECK(r->state().relays.empty());
    CHECK_FALSE(r->group().find(named.id)->accepted);
  }
  CHECK(f.replica->state().history == bob.replica->state().history);
}

// Proves the bound: a group names at most relays_max relays. Replica refuses the next one
// (too_large), a forged one has no effect, and renaming a named relay still works at the bound.
TEST_CASE("relay: at most relays_max relays", "[node][relay]") {
  Peer f = founder();
  for (std::size_t i = 0; i < limits::relays_max; ++i) {
    must(f.replica->set_relay(f.at(t0 + 10 + i), relay_key(100 + i), "r:" + std::to_string(i),
                              true));
  }
  CHECK(f.replica->state().relays.size() == limits::relays_max);
  auto one_more = f.replica->set_relay(f.at(t0 + 100), relay_key(999), "r:x", true);
  REQUIRE_FALSE(one_more.ok());
  CHECK(one_more.error().code() == Errc::too_large);

  Event forged = forge_relay(*f.replica, f.key, relay_key(999), "r:x", true, t0 + 101);
  f.replica->ingest({forged});
  CHECK_FALSE(f.replica->group().find(forged.id)->accepted);
  CHECK(f.replica->state().relays.size() == limits::relays_max);

  must(f.replica->set_relay(f.at(t0 + 102), relay_key(100), "moved:1", true));
  CHECK(f.replica->state().relays.at(relay_key(100)) == "moved:1");
}

// Proves Replica checks the address before signing: empty and over-long addresses are refused.
TEST_CASE("relay: set_relay refuses unusable addresses", "[node][relay]") {
  Peer f = founder();
  auto empty = f.replica->set_relay(f.at(t0 + 1), relay_key(4), "", true);
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().code() == Errc::invalid_argument);
  auto longer = f.replica->set_relay(f.at(t0 + 2), relay_key(4),
                                     std::string(limits::address_bytes_max + 1, 'a'), true);
  REQUIRE_FALSE(longer.ok());
  CHECK(longer.error().code() == Errc::invalid_argument);
  must(f.replica->set_relay(f.at(t0 + 3), relay_key(4),
                            std::string(limits::address_bytes_max, 'a'), true));
}

// Proves the payload codec: it round-trips, and the decoder refuses (so admission rejects) an
// active relay without an address, an inactive one with one, an address past the bound, an
// active flag other than 0/1, a key of the wrong size and a wrong field count.
TEST_CASE("relay: the payload decodes strictly", "[node][relay][payload]") {
  const RelayPayload p{relay_key(5), "10.0.0.5:7000", true};
  auto back = decode_relay(encode_payload(p));
  REQUIRE(back.ok());
  CHECK(back->relay == p.relay);
  CHECK(back->address == p.address);
  CHECK(back->active);
  auto off = decode_relay(encode_payload(RelayPayload{relay_key(5), "", false}));
  REQUIRE(off.ok());
  CHECK_FALSE(off->active);

  auto write = [](auto&& fields) {
    codec::Writer w;
    fields(w);
    return w.take();
  };
  // [relay, address, active] with the given address and active flag.
  const PublicKey k = relay_key(5);
  auto relay = [&](const std::string& address, std::uint64_t active) {
    return write([&](codec::Writer& w) { w.array(3).fixed(k).str(address).uint(active); });
  };
  CHECK(decode_relay(relay("a", 1)).ok());
  CHECK_FALSE(decode_relay(relay("", 1)).ok());
  CHECK_FALSE(decode_relay(relay("a", 0)).ok());
  CHECK_FALSE(decode_relay(relay(std::string(limits::address_bytes_max + 1, 'a'), 1)).ok());
  CHECK_FALSE(decode_relay(relay("a", 2)).ok());
  CHECK_FALSE(decode_relay(write([&](codec::Writer& w) {
                w.array(3).bin(Bytes(31, 1)).str("a").uint(1);
              })).ok());
  CHECK_FALSE(decode_relay(write([&](codec::Writer& w) { w.array(2).fixed(k).str("a"); })).ok());
  CHECK_FALSE(decode_relay(write([&](codec::Writer& w) {
                w.array(4).fixed(k).str("a").uint(1).uint(1);
              })).ok());

  // check_payload applies it to relay events: a malformed one is rejected at admission.
  Peer f = founder();
  Event bad = forge_relay(*f.replica, f.key, k, "a", true, t0 + 1);
  bad.payload = relay("", 1);
  sign_event(bad, f.key);
  CHECK_FALSE(check_payload(bad).ok());
  CHECK(f.replica->ingest({bad}).rejected.size() == 1);
}

// Proves relay events survive the event codec (kind 12 is in range) and keep their id.
TEST_CASE("relay: relay events encode and decode", "[node][relay][event]") {
  Peer f = founder();
  Event named = must(f.replica->set_relay(f.at(t0 + 1), relay_key(6), "r:6", true));
  auto back = decode_event(encode(named));
  REQUIRE(back.ok());
  CHECK(back->kind == EventKind::relay);
  CHECK(back->id == named.id);
  CHECK(std::string(event_kind_name(EventKind::relay)) == "relay");
}
