// Stubs: events whose payload was dropped (docs/protocol.md, "Stubs"). A stub keeps the id,
// signature and place in the DAG of the event it stands for; nothing can be forged through one.
#include <catch2/catch.hpp>

#include <filesystem>

#include "node/group_store.h"
#include "node/limits.h"
#include "tests/node/fixture.h"
#include "tests/temp_dir.h"

using namespace qun;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;

// A founder with a member (bob) and a few posts; bob's replica holds everything.
struct Club {
  Peer f{0}, bob{1};
  Replica founder = must(Replica::create_group(f.at(t0), "club", "ada", GroupSettings{}));
  Replica bob_r{founder.id(), &bob.key};
  std::vector<Hash> posts;

  Club() {
    auto [ev, code] = must(founder.invite(f.at(t0 + 1), 1, t0 + 100000, {}));
    (void)ev;
    bob_r.ingest(all_events(founder));
    founder.ingest({must(bob_r.join(bob.at(t0 + 2), code, "bob"))});
    for (int i = 0; i < 3; ++i) {
      auto out = must(founder.post(f.at(t0 + 10 + static_cast<std::uint64_t>(i)), "post " + std::to_string(i)));
      posts.push_back(out.back().id);
    }
    bob_r.ingest(all_events(founder));
  }

  const Event& event(const Hash& id) const { return founder.group().find(id)->event; }
};

}  // namespace

// Proves a stub has the full event's id, verifies, round-trips through both encodings (the
// stored one and the one inside a group message) and is much smaller than a large post.
TEST_CASE("a stub keeps the id and signature of its event", "[node][stub]") {
  Club c;
  const Event& full = c.event(c.posts[0]);
  Event stub = make_stub(full);
  CHECK(stub.id == full.id);
  CHECK(stub.payload_dropped);
  CHECK(stub.payload.empty());
  CHECK(stub.payload_hash == hash(full.payload));
  CHECK(verify_event(stub));
  auto d = decode_event(encode(stub));
  REQUIRE(d.ok());
  CHECK(d->id == full.id);
  CHECK(d->payload_dropped);
  CHECK(verify_event(*d));
  CHECK(d->encoded_bytes == encode(stub).size());
  CHECK(stub_stored_bytes(full) == encode(stub).size());
  CHECK(stub_stored_bytes(stub) == encode(stub).size());
  for (std::size_t n : {0, 200, 255, 256, 65535, 65536}) {
    Event sized = full;
    sized.payload.assign(n, 7);
    sized.encoded_bytes = 0;
    CHECK(stub_stored_bytes(sized) == encode(make_stub(sized)).size());
  }
  auto in = decode_event_in(encode_for_group_message(stub), full.group);
  REQUIRE(in.ok());
  CHECK(in->id == full.id);
  CHECK(in->encoded_bytes == encode(stub).size());
  // A stub's header is what the id hashes: the full form and the stub share it.
  CHECK(encode_header(stub) == encode_header(full));
}

// Proves a stub whose payload hash was changed has another id, so the author's signature does
// not cover it and the group refuses it; and that a stub of a kind whose payload the group
// needs (here the create) does not even decode.
TEST_CASE("a forged stub is refused", "[node][stub]") {
  Club c;
  Event forged = make_stub(c.event(c.posts[1]));
  forged.payload_hash.bytes[0] ^= 1;
  forged.encoded_bytes = 0;
  auto d = decode_event(encode(forged));
  REQUIRE(d.ok());
  CHECK(d->id != c.posts[1]);
  CHECK_FALSE(verify_event(*d));
  Replica fresh(c.founder.id(), nullptr);
  std::vector<Event> events;
  for (const Event& e : all_events(c.founder))
    if (e.id != c.posts[1]) events.push_back(e);
  auto report = fresh.ingest(events);
  CHECK(report.rejected.empty());
  auto bad = fresh.ingest({*d});
  REQUIRE(bad.rejected.size() == 1);
  CHECK(bad.rejected[0].second == "bad signature");
  CHECK_FALSE(fresh.group().has(c.posts[1]));

  // Stub form for a kind that is not droppable: malformed.
  const Event* create_event = nullptr;
  for (const auto* rec : c.founder.group().ordered())
    if (rec->event.kind == EventKind::create) create_event = &rec->event;
  REQUIRE(create_event);
  Event as_stub = *create_event;
  as_stub.payload_dropped = true;
  as_stub.payload_hash = hash(create_event->payload);
  as_stub.payload.clear();
  auto refused = decode_event(encode(as_stub));
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().context(), Catch::Contains("cannot have its payload dropped"));
}

// Proves a replica that receives stubs admits them like the full events (same heads, history
// and state), shows their posts as not stored with no text, and that later events built on a
// stub are admitted.
TEST_CASE("stubs take their event's place in the DAG", "[node][stub]") {
  Club c;
  Peer cy(2);
  Replica cy_r(c.founder.id(), &cy.key);
  std::vector<Event> events;
  for (const Event& e : all_events(c.founder))
    events.push_back(e.kind == EventKind::post && e.id != c.posts[2] ? make_stub(e) : e);
  auto report = cy_r.ingest(events);
  CHECK(report.rejected.empty());
  CHECK(report.pending == 0);
  CHECK(cy_r.state().history == c.founder.state().history);
  CHECK(cy_r.group().heads() == c.founder.group().heads());
  CHECK(cy_r.state().members.size() == c.founder.state().members.size());
  // Read through a replica of the founder's (whose key the create event seals to it).
  Replica reader(c.founder.id(), &c.f.key);
  reader.ingest(events);
  auto m0 = reader.message(c.posts[0]);
  REQUIRE(m0);
  CHECK_FALSE(m0->stored);
  CHECK_FALSE(m0->text);
  auto m2 = reader.message(c.posts[2]);
  REQUIRE(m2);
  CHECK(m2->stored);
  CHECK(m2->text == "post 2");
  // A post on top of the stubs is admitted everywhere.
  auto next = must(c.bob_r.post(c.bob.at(t0 + 50), "after"));
  CHECK(cy_r.ingest(next).admitted.size() == next.size());
  CHECK(reader.ingest(next).admitted.size() == next.size());
}

// Proves a stub never replaces a payload a replica holds (ingesting it is a duplicate and the
// text stays), and that a full copy gives a stub its payload back.
TEST_CASE("a stub never replaces a payload, a full copy restores one", "[node][stub]") {
  Club c;
  auto report = c.bob_r.ingest({make_stub(c.event(c.posts[0]))});
  CHECK(report.duplicates == 1);
  CHECK(report.payloads_restored.empty());
  CHECK_FALSE(c.bob_r.group().find(c.posts[0])->event.payload_dropped);
  CHECK(c.bob_r.message(c.posts[0])->text == "post 0");

  const std::uint64_t bytes_full = c.bob_r.group().stored_bytes();
  auto dropped = c.bob_r.drop_payload(c.posts[0]);
  REQUIRE(dropped.payloads_dropped == std::vector<Hash>{c.posts[0]});
  CHECK(c.bob_r.group().stored_bytes() < bytes_full);
  CHECK_FALSE(c.bob_r.message(c.posts[0])->stored);
  // Dropping twice, or dropping what the group needs, changes nothing.
  CHECK(c.bob_r.drop_payload(c.posts[0]).payloads_dropped.empty());
  const Hash create = c.founder.id();
  CHECK(c.bob_r.drop_payload(create).payloads_dropped.empty());

  auto back = c.bob_r.ingest({c.event(c.posts[0])});
  CHECK(back.payloads_restored == std::vector<Hash>{c.posts[0]});
  CHECK(c.bob_r.message(c.posts[0])->text == "post 0");
  CHECK(c.bob_r.group().stored_bytes() == bytes_full);
}

// Proves a dropped payload is dropped in the store too: after a restart the replica holds the
// stub (same history, the post not stored), and a restored payload is stored whole again.
TEST_CASE("dropped payloads persist as stubs", "[node][stub][store]") {
  qun::test::TempDir dir{"qun-stub"};
  Club c;
  const SymmetricKey storage = storage_key_for(c.bob.key);
  {
    auto store = must(Store::open(dir.path()));
    IngestReport all;
    for (const auto* rec : c.bob_r.group().ordered()) all.admitted.push_back(rec->event.id);
    REQUIRE(persist(*store, c.bob_r, all, c.bob_r.take_new_keys(), &storage).ok());
    for (const Hash& id : {c.posts[0], c.posts[1]})
      REQUIRE(persist(*store, c.bob_r, c.bob_r.drop_payload(id), {}, &storage).ok());
    auto restored = c.bob_r.ingest({c.event(c.posts[1])});
    REQUIRE(persist(*store, c.bob_r, restored, {}, &storage).ok());
  }
  auto store = must(Store::open(dir.path()));
  Replica back = must(load_replica(*store, c.founder.id(), &c.bob.key, &storage));
  CHECK(back.state().history == c.founder.state().history);
  CHECK(back.group().stored_bytes() == c.bob_r.group().stored_bytes());
  CHECK_FALSE(back.message(c.posts[0])->stored);
  CHECK(back.message(c.posts[1])->text == "post 1");
  CHECK(back.message(c.posts[2])->text == "post 2");
  auto stored = store->get_event(c.posts[0]);
  REQUIRE(stored.ok());
  REQUIRE(stored->has_value());
  CHECK(decode_event(**stored)->payload_dropped);
}
