// Persisting replicas through the LMDB store and reading them back.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "node/group_store.h"
#include "tests/node/fixture.h"
#include "tests/temp_dir.h"

using namespace qun;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;

// Ingests into `r` and persists, as a node does with each batch.
void ingest_and_persist(Store& store, Replica& r, std::vector<Event> events,
                        const SymmetricKey* key) {
  auto report = r.ingest(std::move(events));
  REQUIRE(persist(store, r, report, r.take_new_keys(), key).ok());
}

}  // namespace

// Proves a member's replica reloads from the store with the same state, the same history and
// the keys to read it, and that a relay's copy reloads without any key.
TEST_CASE("replicas survive a restart", "[node][store]") {
  qun::test::TempDir dir{"qun-group-store"};
  Peer f(0), bob(1);
  auto founder = must(Replica::create_group(f.at(t0), "club", "ada", GroupSettings{}));
  Replica bob_r(founder.id(), &bob.key);
  Replica relay(founder.id(), nullptr);
  const SymmetricKey bob_storage = storage_key_for(bob.key);
  {
    auto store = must(Store::open(dir.path() + "/bob"));
    auto relay_store = must(Store::open(dir.path() + "/relay"));
    auto [ev, code] = must(founder.invite(f.at(t0 + 1), 1, t0 + 100000, {}));
    (void)ev;
    ingest_and_persist(*store, bob_r, all_events(founder), &bob_storage);
    auto join = must(bob_r.join(bob.at(t0 + 2), code, "bob"));
    // The join was ingested by join(); persist it and the keys it opened.
    IngestReport own;
    own.admitted = {join.id};
    REQUIRE(persist(*store, bob_r, own, bob_r.take_new_keys(), &bob_storage).ok());
    founder.ingest({join});
    must(founder.post(f.at(t0 + 3), "one"));
    must(founder.remove(f.at(t0 + 4), bob.key.public_key()));
    must(founder.rekey(f.at(t0 + 5)));
    ingest_and_persist(*relay_store, relay, all_events(founder), nullptr);
    ingest_and_persist(*store, bob_r, all_events(founder), &bob_storage);
  }
  auto store = must(Store::open(dir.path() + "/bob"));
  Replica back = must(load_replica(*store, founder.id(), &bob.key, &bob_storage));
  CHECK(back.state().history == bob_r.state().history);
  CHECK(back.group().heads() == bob_r.group().heads());
  CHECK(back.keyring().size() == bob_r.keyring().size());
  REQUIRE(back.history().size() == bob_r.history().size());
  for (std::size_t i = 0; i < back.history().size(); ++i)
    CHECK(back.history()[i].text == bob_r.history()[i].text);
  CHECK(back.name() == "club");

  auto relay_store = must(Store::open(dir.path() + "/relay"));
  Replica relay_back = must(load_replica(*relay_store, founder.id(), nullptr, nullptr));
  CHECK(relay_back.state().history == founder.state().history);
  CHECK(relay_back.keyring().size() == 0);

  // Another identity's storage key cannot open bob's stored keys.
  const SymmetricKey wrong = storage_key_for(f.key);
  auto r = load_replica(*store, founder.id(), &bob.key, &wrong);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == Errc::decrypt_failed);
  CHECK(load_replica(*store, hash(as_bytes("nope")), nullptr, nullptr).error().code() ==
        Errc::not_found);
}

// Proves a load with the caller's signature check (load_replica's `verify`, which the daemon
// spreads over every core) gives the replica a load without one gives, that it is asked about
// every stored event, and that an event it says is forged is not admitted: the group does not
// load (fewer events than its record counts), as a stored event with a bad signature never did.
TEST_CASE("a load that checks signatures outside the replica keeps their verdict",
          "[node][store]") {
  qun::test::TempDir dir{"qun-group-store"};
  Peer f(0);
  auto founder = must(Replica::create_group(f.at(t0), "club", "ada", GroupSettings{}));
  for (int i = 0; i < 20; ++i) must(founder.post(f.at(t0 + 1 + i), "post " + std::to_string(i)));
  const SymmetricKey storage = storage_key_for(f.key);
  auto store = must(Store::open(dir.path() + "/ada"));
  IngestReport all;
  for (const auto* rec : founder.group().ordered()) all.admitted.push_back(rec->event.id);
  REQUIRE(persist(*store, founder, all, founder.take_new_keys(), &storage).ok());

  std::size_t asked = 0;
  auto honest = [&](const std::vector<Event>& events) {
    asked += events.size();
    std::vector<bool> ok;
    for (const auto& e : events) ok.push_back(verify_event(e));
    return ok;
  };
  Replica checked = must(load_replica(*store, founder.id(), &f.key, &storage, honest));
  Replica plain = must(load_replica(*store, founder.id(), &f.key, &storage));
  CHECK(asked == founder.group().size());
  CHECK(checked.group().heads() == plain.group().heads());
  CHECK(checked.state().history == plain.state().history);
  CHECK(checked.history().size() == founder.history().size());  // the create and 20 posts
  CHECK(checked.history().size() == 21);

  const Hash forged = *founder.group().heads().begin();
  auto says_forged = [&](const std::vector<Event>& events) {
    std::vector<bool> ok;
    for (const auto& e : events) ok.push_back(e.id != forged);
    return ok;
  };
  auto r = load_replica(*store, founder.id(), &f.key, &storage, says_forged);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == Errc::malformed);
}

// Proves everything a relay stores is undecryptable to it: no stored byte string contains a
// post's plaintext, and the relay's replica reads no post.
TEST_CASE("a relay stores nothing it can read", "[node][store]") {
  qun::test::TempDir dir{"qun-group-store"};
  Peer f(0);
  auto founder = must(Replica::create_group(f.at(t0), "secret club", "ada", GroupSettings{}));
  const std::string secret = "the password is swordfish";
  must(founder.post(f.at(t0 + 1), secret));
  must(founder.set_topic(f.at(t0 + 2), "topic swordfish"));
  Replica relay(founder.id(), nullptr);
  {
    auto store = must(Store::open(dir.path()));
    ingest_and_persist(*store, relay, all_events(founder), nullptr);
  }
  for (const auto& m : relay.history()) CHECK_FALSE(m.text.has_value());
  CHECK_FALSE(relay.name().has_value());
  // Scan the database file itself for the plaintexts.
  std::string db;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    std::ifstream in(entry.path(), std::ios::binary);
    db.append(std::istreambuf_iterator<char>(in), {});
  }
  CHECK(db.size() > 0);
  CHECK(db.find("swordfish") == std::string::npos);
  CHECK(db.find("secret club") == std::string::npos);
  CHECK(db.find("ada") == std::string::npos);
}

// Proves a persist writes only the pending events this ingest parked (and deletes the ones it
// dropped), not the whole pending set: the reported flood rewrote every pending event on every
// persist (14.5 GB written for 200 MB received). Counts the batch's operations.
TEST_CASE("persist writes the pending set incrementally", "[node][store]") {
  qun::test::TempDir dir{"qun-group-store"};
  Peer f(0);
  auto founder = must(Replica::create_group(f.at(t0), "club", "ada", GroupSettings{}));
  const Hash gid = founder.id();
  Replica relay(gid, nullptr);
  auto store = must(Store::open(dir.path() + "/relay"));
  ingest_and_persist(*store, relay, all_events(founder), nullptr);
  const SigningKey stranger = identity(900);
  const PublicKey from = identity(901).public_key();
  auto count = [](const WriteBatch& b, WriteBatch::Op op) {
    return std::count_if(b.entries().begin(), b.entries().end(),
                         [&](const WriteBatch::Entry& e) { return e.op == op; });
  };
  constexpr std::size_t batches = 20, per_batch = 50;
  std::size_t puts = 0;
  for (std::size_t b = 0; b < batches; ++b) {
    std::vector<Event> events;
    for (std::size_t k = 0; k < per_batch; ++k) events.push_back(orphan_post(stranger, gid, b * per_batch + k));
    auto report = relay.ingest(std::move(events), from);
    WriteBatch batch;
    persist_into(batch, relay, report, {}, nullptr);
    // O(new): this batch's 50, whatever the pending set already holds.
    CHECK(count(batch, WriteBatch::Op::put_pending) == static_cast<long>(per_batch));
    puts += static_cast<std::size_t>(count(batch, WriteBatch::Op::put_pending));
    REQUIRE(store->commit(batch).ok());
  }
  CHECK(puts == batches * per_batch);
  CHECK(must(store->pending(gid)).size() == batches * per_batch);
  // An honest post: one event written, no pending event rewritten.
  auto post = must(founder.post(f.at(t0 + 5), "hello"));
  auto report = relay.ingest(post, identity(902).public_key());
  WriteBatch batch;
  persist_into(batch, relay, report, {}, nullptr);
  CHECK(count(batch, WriteBatch::Op::put_event) == 1);
  CHECK(count(batch, WriteBatch::Op::put_pending) == 0);
  REQUIRE(store->commit(batch).ok());
  // The sender goes: its pending events are deleted, one delete each, and nothing else.
  auto dropped = relay.drop_pending_from(from);
  WriteBatch gone;
  persist_into(gone, relay, dropped, {}, nullptr);
  CHECK(count(gone, WriteBatch::Op::remove_pending) == static_cast<long>(batches * per_batch));
  CHECK(count(gone, WriteBatch::Op::put_pending) == 0);
  REQUIRE(store->commit(gone).ok());
  CHECK(must(store->pending(gid)).empty());
}

// Proves pending events come back from the store at restart as the store's (no sender), so
// that the node can drop them all at once (Node: restored_pending_keep_ms after start-up).
TEST_CASE("pending events reload as the store's", "[node][store]") {
  qun::test::TempDir dir{"qun-group-store"};
  Peer f(0);
  auto founder = must(Replica::create_group(f.at(t0), "club", "ada", GroupSettings{}));
  const Hash gid = founder.id();
  const SigningKey stranger = identity(900);
  {
    Replica relay(gid, nullptr);
    auto store = must(Store::open(dir.path() + "/relay"));
    ingest_and_persist(*store, relay, all_events(founder), nullptr);
    std::vector<Event> events;
    for (std::size_t k = 0; k < 5; ++k) events.push_back(orphan_post(stranger, gid, k));
    auto report = relay.ingest(std::move(events), identity(901).public_key());
    REQUIRE(persist(*store, relay, report, {}, nullptr).ok());
  }
  auto store = must(Store::open(dir.path() + "/relay"));
  Replica back = must(load_replica(*store, gid, nullptr, nullptr));
  CHECK(back.group().pending_size() == 5);
  CHECK(back.group().pending_bytes_from(std::nullopt) == back.group().pending_bytes());
  auto dropped = back.drop_pending_from(std::nullopt);
  REQUIRE(persist(*store, back, dropped, {}, nullptr).ok());
  CHECK(must(store->pending(gid)).empty());
}
