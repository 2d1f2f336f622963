// Damaged groups in the store: bytes flipped in a group's event records, order entries, group
// record and stored keys. Each must make load_replica fail with the reason (so that the daemon
// names the group as damaged instead of loading a silently shorter group), leave the other
// groups loading, and salvage_replica must keep every event that still reads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/codec.h"
#include "node/group_store.h"
#include "tests/node/fixture.h"
#include "tests/temp_dir.h"

using namespace qun;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;
constexpr int posts_per_group = 12;

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
// Flips `n` bytes of the file at `skip` past every place where `pattern` occurs: LMDB copies a
// page on write, so older copies of a record may sit in free pages beside the live one.
void flip_at(const std::string& file, const Bytes& pattern, std::size_t skip, std::size_t n) {
  Bytes bytes = read_file(file);
  std::size_t found = 0;
  for (auto at = bytes.begin();
       (at = std::search(at, bytes.end(), pattern.begin(), pattern.end())) != bytes.end(); ++at) {
    const auto from = static_cast<std::size_t>(at - bytes.begin()) + skip;
    REQUIRE(from + n <= bytes.size());
    for (std::size_t i = 0; i < n; ++i) bytes[from + i] ^= 0x5a;
    ++found;
  }
  REQUIRE(found > 0);
  write_file(file, bytes);
}

// One member's store with two groups it founded, each with posts_per_group posts.
struct TwoGroups {
  qun::test::TempDir dir{"qun-group-damage"};
  Peer me{0};
  SymmetricKey storage = storage_key_for(me.key);
  Replica a = must(Replica::create_group(me.at(t0), "alpha", "ada", GroupSettings{}));
  Replica b = must(Replica::create_group(me.at(t0 + 1), "beta", "ada", GroupSettings{}));

  TwoGroups() {
    auto store = must(Store::open(db()));
    for (Replica* r : {&a, &b}) {
      for (int i = 0; i < posts_per_group; ++i)
        must(r->post(me.at(t0 + 10 + static_cast<std::uint64_t>(i)), "post " + std::to_string(i)));
      IngestReport all;
      for (const auto* rec : r->group().ordered()) all.admitted.push_back(rec->event.id);
      REQUIRE(persist(*store, *r, all, r->take_new_keys(), &storage).ok());
    }
  }
  std::string db() const { return dir.path() + "/db"; }
  std::string file() const { return Store::data_file(db()); }
  Result<Replica> load(const Store& s, const Replica& r) {
    return load_replica(s, r.id(), &me.key, &storage);
  }
  // The sixth event of the group (a post), as stored.
  const Event& victim(const Replica& r) const { return r.group().ordered()[5]->event; }
};

void check_damaged(const Result<Replica>& loaded, const std::string& why) {
  REQUIRE_FALSE(loaded.ok());
  INFO(loaded.error().message());
  CHECK_THAT(loaded.error().context(), Catch::Contains(why));
}

}  // namespace

// Proves that bytes flipped inside one stored event make that group fail to load with the reason
// (the daemon then names it), while the other group loads whole; and that salvage keeps every
// other event, so that a repair loses only what catch-up fetches again.
TEST_CASE("a damaged event record fails its group's load and is salvaged around",
          "[node][store][damage]") {
  TwoGroups t;
  const Event& victim = t.victim(t.a);
  const Bytes encoded = encode(victim);
  flip_at(t.file(), encoded, encoded.size() / 2, 16);

  auto store = must(Store::open(t.db()));
  check_damaged(t.load(*store, t.a), "stored event " + short_hex(victim.id) + " does not decode");
  Replica other = must(t.load(*store, t.b));
  CHECK(other.group().size() == t.b.group().size());

  Salvage s = salvage_replica(*store, t.a.id(), &t.me.key, &t.storage);
  CHECK(s.events_unread == 1);
  CHECK(s.keys_unread == 0);
  CHECK(s.scans_complete);
  // Everything before the victim is admitted; the posts after it wait for it as pending.
  CHECK(s.events_kept == 5);
  CHECK(s.replica.group().pending_size() == t.a.group().size() - 6);
  CHECK(s.replica.keyring().size() == t.a.keyring().size());

  // Written back, the group loads (what is missing comes from peers) and the victim, once it
  // arrives, completes it.
  WriteBatch batch;
  rewrite_into(batch, s.replica, &t.storage);
  REQUIRE(store->commit(batch).ok());
  Replica back = must(t.load(*store, t.a));
  CHECK(back.group().size() == 5);
  back.ingest({victim});
  CHECK(back.group().size() == t.a.group().size());
  CHECK(back.state().history == t.a.state().history);
}

// Proves that a damaged group record (informational, but its event count guards the load) fails
// the load with the reason, instead of being ignored.
TEST_CASE("a damaged group record fails its group's load", "[node][store][damage]") {
  TwoGroups t;
  // The record is [1, events, epoch, members]; its key is the group id, just before it in the
  // leaf page, so the id followed by the record's array header finds it.
  codec::Writer w;
  w.array(4).uint(1).uint(t.a.group().size());
  Bytes pattern(t.a.id().bytes.begin(), t.a.id().bytes.end());
  const Bytes head = w.take();
  pattern.insert(pattern.end(), head.begin(), head.end());
  flip_at(t.file(), pattern, t.a.id().bytes.size(), 2);
  auto store = must(Store::open(t.db()));
  check_damaged(t.load(*store, t.a), "its group record does not decode");
  CHECK(t.load(*store, t.b).ok());
}

// Proves that an order entry whose group bytes were damaged (the event drops out of its group's
// scan) is caught by the record's event count: before, the group loaded shorter, silently.
TEST_CASE("an event lost from its group's order fails the load by count", "[node][store][damage]") {
  TwoGroups t;
  const Event& victim = t.victim(t.a);
  const EventRecord* rec = t.a.group().find(victim.id);
  REQUIRE(rec);
  Bytes order_key(t.a.id().bytes.begin(), t.a.id().bytes.end());
  put_u64_be(order_key, rec->order_key);
  order_key.insert(order_key.end(), victim.id.bytes.begin(), victim.id.bytes.end());
  flip_at(t.file(), order_key, 3, 1);  // inside the group id: the entry leaves the group
  auto store = must(Store::open(t.db()));
  check_damaged(t.load(*store, t.a),
                "5 of its " + std::to_string(t.a.group().size()) + " events load");
  // Salvage finds the event again through the arrival index.
  Salvage s = salvage_replica(*store, t.a.id(), &t.me.key, &t.storage);
  CHECK(s.events_unread == 0);
  CHECK(s.events_kept == t.a.group().size());
}

// Proves that a stored key that no longer opens fails the load, and that salvage drops just
// that key (keys sealed to this member come back from the events).
TEST_CASE("a damaged stored key fails the load and is dropped by salvage", "[node][store][damage]") {
  TwoGroups t;
  auto store = must(Store::open(t.db()));
  auto keys = must(store->keys(t.a.id()));
  REQUIRE(keys.size() == 1);
  Bytes record = keys.front().record;
  store.reset();
  flip_at(t.file(), record, record.size() - 8, 4);
  store = must(Store::open(t.db()));
  check_damaged(t.load(*store, t.a), "a stored group key does not open");
  Salvage s = salvage_replica(*store, t.a.id(), &t.me.key, &t.storage);
  CHECK(s.keys_unread == 1);
  CHECK(s.events_kept == t.a.group().size());
  // The founder's key is sealed to it in the create event: re-learned, the posts read.
  CHECK(s.replica.keyring().size() == t.a.keyring().size());
  auto history = s.replica.history();
  REQUIRE(!history.empty());
  CHECK(history.back().text == "post " + std::to_string(posts_per_group - 1));
}

// Proves that an event whose order entry and arrival entry were both lost to damage is still
// found by the repair (a scan of every stored event) and rewritten with fresh index entries.
// Without that, the orphaned record stayed, a put of the same event coming back from a peer
// took it as stored and wrote no index entries, and the group loaded one event short for good.
TEST_CASE("an event orphaned by damage is found and re-indexed by salvage", "[node][store][damage]") {
  TwoGroups t;
  const Event& victim = t.victim(t.a);
  const EventRecord* rec = t.a.group().find(victim.id);
  REQUIRE(rec);
  Bytes order_key(t.a.id().bytes.begin(), t.a.id().bytes.end());
  put_u64_be(order_key, rec->order_key);
  order_key.insert(order_key.end(), victim.id.bytes.begin(), victim.id.bytes.end());
  // The last byte of the id: the entry now names no stored event, and its key still sorts in
  // place. (Flipping a byte of the group id instead leaves a key of another group in the middle
  // of this group's range, which ends every prefix scan there, depending on the page layout.)
  flip_at(t.file(), order_key, order_key.size() - 1, 1);
  // The arrival entry: key group|seq, value the id; events arrived in order, so its seq is 5.
  Bytes arrival(t.a.id().bytes.begin(), t.a.id().bytes.end());
  put_u64_be(arrival, 5);
  arrival.insert(arrival.end(), victim.id.bytes.begin(), victim.id.bytes.end());
  flip_at(t.file(), arrival, arrival.size() - 4, 1);

  auto store = must(Store::open(t.db()));
  CHECK_FALSE(t.load(*store, t.a).ok());
  Salvage s = salvage_replica(*store, t.a.id(), &t.me.key, &t.storage);
  CHECK(s.orphans == std::vector<Hash>{victim.id});
  CHECK(s.events_kept == t.a.group().size());
  WriteBatch batch;
  rewrite_into(batch, s.replica, &t.storage, s.orphans);
  REQUIRE(store->commit(batch).ok());
  Replica back = must(t.load(*store, t.a));
  CHECK(back.group().size() == t.a.group().size());
  CHECK(back.state().history == t.a.state().history);
  // The other group's events were not taken for this group's orphans.
  CHECK(must(t.load(*store, t.b)).group().size() == t.b.group().size());
}

// Proves that a damaged event record that only the arrival index still names (its order entry
// was lost too) is deleted by the repair, so that the event, fetched again from a peer, is
// stored anew. Before, the damaged record stayed: the put of the fetched event took its id as
// stored already, and the group failed its next load.
TEST_CASE("a damaged record the order index lost is deleted by the repair", "[node][store][damage]") {
  TwoGroups t;
  const Event victim = t.victim(t.a);
  const EventRecord* rec = t.a.group().find(victim.id);
  REQUIRE(rec);
  const Bytes encoded = encode(victim);
  flip_at(t.file(), encoded, encoded.size() / 2, 16);
  Bytes order_key(t.a.id().bytes.begin(), t.a.id().bytes.end());
  put_u64_be(order_key, rec->order_key);
  order_key.insert(order_key.end(), victim.id.bytes.begin(), victim.id.bytes.end());
  flip_at(t.file(), order_key, order_key.size() - 1, 1);

  auto store = must(Store::open(t.db()));
  CHECK_FALSE(t.load(*store, t.a).ok());
  Salvage s = salvage_replica(*store, t.a.id(), &t.me.key, &t.storage);
  CHECK(s.events_unread == 1);
  CHECK(s.unreadable == std::vector<Hash>{victim.id});
  WriteBatch batch;
  rewrite_into(batch, s.replica, &t.storage, s.stale());
  REQUIRE(store->commit(batch).ok());

  // The victim comes back from a peer and is persisted as the daemon does.
  Replica back = must(t.load(*store, t.a));
  IngestReport report = back.ingest({victim});
  REQUIRE(!report.admitted.empty());
  REQUIRE(persist(*store, back, report, back.take_new_keys(), &t.storage).ok());
  Replica again = must(t.load(*store, t.a));
  CHECK(again.group().size() == t.a.group().size());
  CHECK(again.state().history == t.a.state().history);
  CHECK(must(t.load(*store, t.b)).group().size() == t.b.group().size());
}
