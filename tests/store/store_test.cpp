// Tests of the LMDB store: each table's round trip, per-group iteration, batches, the schema
// version check, group deletion and the errors of open. Crash and full-disk tests are in
// store_crash_test.cpp.
#include "store/store.h"

#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/store/test_util.h"

namespace qun {
namespace {

using store_test::bytes_of;
using store_test::make_hash;
using store_test::numbered_hash;
using store_test::TempDir;

// The meta key under which store.cpp keeps the schema version; the tests write it to fake a
// database of another version.
const std::string schema_meta_key = "schema_version";

std::unique_ptr<Store> open_ok(const std::string& dir, const StoreOptions& options = {}) {
  auto store = Store::open(dir, options);
  INFO((store.ok() ? std::string() : store.error().message()));
  REQUIRE(store.ok());
  return std::move(store).value();
}

void commit_ok(Store& store, const WriteBatch& batch) {
  auto r = store.commit(batch);
  INFO((r.ok() ? std::string() : r.error().message()));
  REQUIRE(r.ok());
}

struct SeenEvent {
  Hash id;
  std::uint64_t order_key;
  Bytes encoded;
};

std::vector<SeenEvent> all_events(const Store& store, const Hash& group) {
  std::vector<SeenEvent> out;
  auto r = store.for_each_event(group, [&](const Hash& id, std::uint64_t key, ByteView encoded) {
    out.push_back(SeenEvent{id, key, Bytes(encoded.begin(), encoded.end())});
    return true;
  });
  INFO((r.ok() ? std::string() : r.error().message()));
  REQUIRE(r.ok());
  return out;
}

std::vector<std::pair<std::uint64_t, Hash>> all_arrivals(const Store& store, const Hash& group,
                                                         std::uint64_t from_seq = 0) {
  std::vector<std::pair<std::uint64_t, Hash>> out;
  auto r = store.for_each_arrival(group, from_seq, [&](std::uint64_t seq, const Hash& id) {
    out.emplace_back(seq, id);
    return true;
  });
  INFO((r.ok() ? std::string() : r.error().message()));
  REQUIRE(r.ok());
  return out;
}

// Proves that events come back byte for byte, and that for_each_event walks a group by order
// key and then by id, whatever order they were written in; also that a visitor can stop early.
TEST_CASE("events round trip and iterate by order key then id", "[store]") {
  TempDir tmp;
  auto store = open_ok(tmp.db());
  const Hash g = make_hash(0x42, 0x01);
  // Written out of order; two share order key 5 and must come back sorted by id.
  const std::vector<std::pair<std::uint64_t, Hash>> written = {{9, make_hash(0x01, 0x09)},
                                                               {5, make_hash(0x03, 0x00)},
                                                               {0, make_hash(0x77, 0x00)},
                                                               {5, make_hash(0x02, 0x00)},
                                                               {1ull << 40, make_hash(0x00, 0x01)}};
  WriteBatch batch;
  for (const auto& [key, id] : written) {
    batch.put_event(g, id, key, bytes_of("event " + to_hex(id)));
  }
  commit_ok(*store, batch);

  for (const auto& [key, id] : written) {
    auto got = store->get_event(id);
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    CHECK(**got == bytes_of("event " + to_hex(id)));
    auto has = store->has_event(id);
    REQUIRE(has.ok());
    CHECK(*has);
  }
  auto missing = store->get_event(make_hash(0x99, 0x99));
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());
  auto has_missing = store->has_event(make_hash(0x99, 0x99));
  REQUIRE(has_missing.ok());
  CHECK_FALSE(*has_missing);

  auto seen = all_events(*store, g);
  REQUIRE(seen.size() == written.size());
  auto sorted = written;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    CHECK(seen[i].order_key == sorted[i].first);
    CHECK(seen[i].id == sorted[i].second);
    CHECK(seen[i].encoded == bytes_of("event " + to_hex(sorted[i].second)));
  }
  auto count = store->event_count(g);
  REQUIRE(count.ok());
  CHECK(*count == written.size());

  int visited = 0;
  auto r =
      store->for_each_event(g, [&](const Hash&, std::uint64_t, ByteView) { return ++visited < 2; });
  REQUIRE(r.ok());
  CHECK(visited == 2);
}

// Proves that every per-group read stays inside its group, using groups whose ids differ only
// in the last byte and groups at the very top of the key space (0xff..), where a scan that does
// not check its prefix, or a sequence lookup that runs off the end, would show.
TEST_CASE("per-group iteration does not leak into adjacent groups", "[store]") {
  TempDir tmp;
  auto store = open_ok(tmp.db());
  const std::vector<Hash> groups = {make_hash(0x10, 0x00), make_hash(0x10, 0x01),
                                    make_hash(0x10, 0x02), make_hash(0xff, 0xfe),
                                    make_hash(0xff, 0xff)};
  // Each group gets a different number of entries, tagged with the group's index.
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    WriteBatch batch;
    for (std::size_t i = 0; i <= gi; ++i) {
      const Hash id = numbered_hash(gi, i);
      batch.put_event(groups[gi], id, i, bytes_of("g" + std::to_string(gi)));
      batch.add_head(groups[gi], id);
      batch.put_pending(groups[gi], numbered_hash(gi, 100 + i), bytes_of("p"));
      batch.put_key(groups[gi], i, numbered_hash(gi, 200 + i), bytes_of("k"));
    }
    batch.put_group(groups[gi], bytes_of("record " + std::to_string(gi)));
    commit_ok(*store, batch);
  }
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    INFO("group " << gi);
    const Hash& g = groups[gi];
    auto events = all_events(*store, g);
    REQUIRE(events.size() == gi + 1);
    for (const auto& e : events) CHECK(e.encoded == bytes_of("g" + std::to_string(gi)));
    auto arrivals = all_arrivals(*store, g);
    REQUIRE(arrivals.size() == gi + 1);
    for (std::size_t i = 0; i < arrivals.size(); ++i) {
      CHECK(arrivals[i].first == i);
      CHECK(arrivals[i].second == numbered_hash(gi, i));
    }
    auto heads = store->heads(g);
    REQUIRE(heads.ok());
    std::vector<Hash> expect_heads;
    for (std::size_t i = 0; i <= gi; ++i) expect_heads.push_back(numbered_hash(gi, i));
    CHECK(*heads == expect_heads);
    auto pending = store->pending(g);
    REQUIRE(pending.ok());
    CHECK(pending->size() == gi + 1);
    auto keys = store->keys(g);
    REQUIRE(keys.ok());
    REQUIRE(keys->size() == gi + 1);
    for (std::size_t i = 0; i < keys->size(); ++i) {
      CHECK((*keys)[i].epoch == i);
      CHECK((*keys)[i].key_id == numbered_hash(gi, 200 + i));
    }
    auto count = store->event_count(g);
    REQUIRE(count.ok());
    CHECK(*count == gi + 1);
  }
  // A group with nothing, between and beyond the others, sees nothing.
  for (const Hash& empty : {make_hash(0x10, 0x03), make_hash(0x0f, 0xff), make_hash(0x00, 0x00)}) {
    CHECK(all_events(*store, empty).empty());
    CHECK(all_arrivals(*store, empty).empty());
    auto heads = store->heads(empty);
    REQUIRE(heads.ok());
    CHECK(heads->empty());
  }
  auto listed = store->groups();
  REQUIRE(listed.ok());
  CHECK(*listed == groups);  // already in key order
}

// Proves that arrival sequences start at 0, count up by one per new event in each group
// independently, continue after a reopen, and that from_seq starts the walk in the middle.
TEST_CASE("arrival sequence is per group and continues across commits and reopen", "[store]") {
  TempDir tmp;
  const Hash a = make_hash(0x20, 0x01);
  const Hash b = make_hash(0x20, 0x02);
  {
    auto store = open_ok(tmp.db());
    for (std::uint64_t i = 0; i < 3; ++i) {
      WriteBatch batch;
      // Order keys descend, so arrival order and topological order differ.
      batch.put_event(a, numbered_hash(1, i), 100 - i, bytes_of("a"));
      batch.put_event(b, numbered_hash(2, i), 100 - i, bytes_of("b"));
      batch.put_event(a, numbered_hash(1, 10 + i), 50 - i, bytes_of("a"));
      commit_ok(*store, batch);
    }
  }
  auto store = open_ok(tmp.db());
  WriteBatch batch;
  batch.put_event(b, numbered_hash(2, 3), 1, bytes_of("b"));
  commit_ok(*store, batch);

  auto arr_a = all_arrivals(*store, a);
  REQUIRE(arr_a.size() == 6);
  const std::vector<Hash> expect_a = {numbered_hash(1, 0), numbered_hash(1, 10),
                                      numbered_hash(1, 1), numbered_hash(1, 11),
                                      numbered_hash(1, 2), numbered_hash(1, 12)};
  for (std::size_t i = 0; i < arr_a.size(); ++i) {
    CHECK(arr_a[i].first == i);
    CHECK(arr_a[i].second == expect_a[i]);
  }
  auto arr_b = all_arrivals(*store, b);
  REQUIRE(arr_b.size() == 4);
  for (std::size_t i = 0; i < arr_b.size(); ++i) {
    CHECK(arr_b[i].first == i);
    CHECK(arr_b[i].second == numbered_hash(2, i));
  }
  auto tail = all_arrivals(*store, a, 4);
  REQUIRE(tail.size() == 2);
  CHECK(tail[0].first == 4);
  CHECK(all_arrivals(*store, a, 6).empty());
  CHECK(all_arrivals(*store, a, ~std::uint64_t{0}).empty());
}

// Proves that putting an event whose id is stored already changes nothing: not its bytes, not
// its order entry, and above all no second arrival entry, within one batch or across batches.
TEST_CASE("put_event is idempotent", "[store]") {
  TempDir tmp;
  auto store = open_ok(tmp.db());
  const Hash g = make_hash(0x30, 0x01);
  const Hash id = make_hash(0xab, 0x01);
  WriteBatch first;
  first.put_event(g, id, 7, bytes_of("original"));
  first.put_event(g, id, 7, bytes_of("original"));
  commit_ok(*store, first);
  WriteBatch again;
  again.put_event(g, id, 8, bytes_of("different"));
  commit_ok(*store, again);

  auto arrivals = all_arrivals(*store, g);
  REQUIRE(arrivals.size() == 1);
  CHECK(arrivals[0].first == 0);
  auto events = all_events(*store, g);
  REQUIRE(events.size() == 1);
  CHECK(events[0].order_key == 7);
  CHECK(events[0].encoded == bytes_of("original"));
  auto count = store->event_count(g);
  REQUIRE(count.ok());
  CHECK(*count == 1);
}

// Proves the round trip of heads, pending, group records, epoch keys and meta, their removal
// (including removing what is absent, which is not an error), and that all of it is still
// there after closing and reopening.
TEST_CASE("heads, pending, groups, keys and meta round trip and persist", "[store]") {
  TempDir tmp;
  const Hash g = make_hash(0x50, 0x01);
  const Hash h1 = make_hash(0x01, 0x01), h2 = make_hash(0x01, 0x02), h3 = make_hash(0x01, 0x03);
  {
    auto store = open_ok(tmp.db());
    WriteBatch batch;
    batch.add_head(g, h1);
    batch.add_head(g, h2);
    batch.add_head(g, h3);
    batch.remove_head(g, h2);
    batch.remove_head(g, make_hash(0x01, 0x09));  // absent
    batch.put_pending(g, h1, bytes_of("waiting 1"));
    batch.put_pending(g, h2, bytes_of("waiting 2"));
    batch.remove_pending(g, h1);
    batch.remove_pending(g, make_hash(0x01, 0x09));  // absent
    batch.put_group(g, bytes_of("old record"));
    batch.put_group(g, bytes_of("group record"));  // later operations win
    batch.put_key(g, 2, h2, bytes_of("epoch 2"));
    batch.put_key(g, 1, h3, bytes_of("epoch 1 b"));
    batch.put_key(g, 1, h1, bytes_of("epoch 1 a"));
    batch.put_meta("node_id", bytes_of("me"));
    batch.put_meta("empty_value", {});
    commit_ok(*store, batch);
  }
  auto store = open_ok(tmp.db());
  auto heads = store->heads(g);
  REQUIRE(heads.ok());
  CHECK(*heads == std::vector<Hash>{h1, h3});
  auto pending = store->pending(g);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK((*pending)[0].first == h2);
  CHECK((*pending)[0].second == bytes_of("waiting 2"));
  auto record = store->get_group(g);
  REQUIRE(record.ok());
  REQUIRE(record->has_value());
  CHECK(**record == bytes_of("group record"));
  auto no_record = store->get_group(make_hash(0x50, 0x02));
  REQUIRE(no_record.ok());
  CHECK_FALSE(no_record->has_value());
  auto keys = store->keys(g);
  REQUIRE(keys.ok());
  REQUIRE(keys->size() == 3);
  // By epoch, then key id.
  CHECK((*keys)[0].epoch == 1);
  CHECK((*keys)[0].key_id == h1);
  CHECK((*keys)[0].record == bytes_of("epoch 1 a"));
  CHECK((*keys)[1].key_id == h3);
  CHECK((*keys)[2].epoch == 2);
  CHECK((*keys)[2].record == bytes_of("epoch 2"));
  auto meta = store->get_meta("node_id");
  REQUIRE(meta.ok());
  REQUIRE(meta->has_value());
  CHECK(**meta == bytes_of("me"));
  auto empty_value = store->get_meta("empty_value");
  REQUIRE(empty_value.ok());
  REQUIRE(empty_value->has_value());
  CHECK((*empty_value)->empty());
  auto absent = store->get_meta("nothing here");
  REQUIRE(absent.ok());
  CHECK_FALSE(absent->has_value());
  auto bad_key = store->get_meta("");
  REQUIRE_FALSE(bad_key.ok());
  CHECK(bad_key.error().code() == Errc::invalid_argument);
  auto used = store->used_bytes();
  REQUIRE(used.ok());
  CHECK(*used > 0);
}

// Proves that a batch failing at its last operation applies nothing of its earlier ones (the
// transaction is aborted), using an invalid meta key as the failing operation.
TEST_CASE("a batch with an invalid operation applies nothing", "[store]") {
  TempDir tmp;
  auto store = open_ok(tmp.db());
  const Hash g = make_hash(0x60, 0x01);
  WriteBatch batch;
  batch.put_event(g, make_hash(0x61, 0x01), 1, bytes_of("e"));
  batch.add_head(g, make_hash(0x61, 0x01));
  batch.put_group(g, bytes_of("record"));
  batch.put_meta(std::string(600, 'k'), bytes_of("v"));  // past LMDB's 511-byte key limit
  auto r = store->commit(batch);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == Errc::invalid_argument);
  auto has = store->has_event(make_hash(0x61, 0x01));
  REQUIRE(has.ok());
  CHECK_FALSE(*has);
  auto heads = store->heads(g);
  REQUIRE(heads.ok());
  CHECK(heads->empty());
  auto groups = store->groups();
  REQUIRE(groups.ok());
  CHECK(groups->empty());
  CHECK(all_arrivals(*store, g).empty());
}

// Proves that delete_group removes a group's events, order and arrival entries, heads,
// pending events, record and keys, and leaves its byte-adjacent neighbours intact. The deleted
// group holds enough events to span many LMDB pages; afterwards its arrival sequence restarts.
TEST_CASE("delete_group removes one group entirely and nothing of another", "[store]") {
  TempDir tmp;
  auto store = open_ok(tmp.db());
  const Hash doomed = make_hash(0x70, 0x01);
  const std::vector<Hash> kept = {make_hash(0x70, 0x00), make_hash(0x70, 0x02)};
  constexpr std::uint64_t doomed_events = 2000;
  for (const Hash& g : {kept[0], doomed, kept[1]}) {
    WriteBatch batch;
    const std::uint64_t n = g == doomed ? doomed_events : 3;
    for (std::uint64_t i = 0; i < n; ++i) {
      const Hash id = numbered_hash(g.bytes[31], i);
      batch.put_event(g, id, i, Bytes(100, 0xee));
      if (i % 100 == 0) batch.add_head(g, id);
    }
    batch.put_pending(g, numbered_hash(g.bytes[31], 1u << 20), bytes_of("p"));
    batch.put_group(g, bytes_of("record"));
    batch.put_key(g, 1, numbered_hash(g.bytes[31], 1u << 21), bytes_of("k"));
    commit_ok(*store, batch);
  }
  WriteBatch del;
  del.delete_group(doomed);
  commit_ok(*store, del);

  CHECK(all_events(*store, doomed).empty());
  CHECK(all_arrivals(*store, doomed).empty());
  for (std::uint64_t i = 0; i < doomed_events; i += 97) {
    auto has = store->has_event(numbered_hash(doomed.bytes[31], i));
    REQUIRE(has.ok());
    CHECK_FALSE(*has);
  }
  auto heads = store->heads(doomed);
  REQUIRE(heads.ok());
  CHECK(heads->empty());
  auto pending = store->pending(doomed);
  REQUIRE(pending.ok());
  CHECK(pending->empty());
  auto record = store->get_group(doomed);
  REQUIRE(record.ok());
  CHECK_FALSE(record->has_value());
  auto keys = store->keys(doomed);
  REQUIRE(keys.ok());
  CHECK(keys->empty());
  auto groups = store->groups();
  REQUIRE(groups.ok());
  CHECK(*groups == kept);

  for (const Hash& g : kept) {
    CHECK(all_events(*store, g).size() == 3);
    CHECK(all_arrivals(*store, g).size() == 3);
    auto h = store->heads(g);
    REQUIRE(h.ok());
    CHECK(h->size() == 1);
    auto p = store->pending(g);
    REQUIRE(p.ok());
    CHECK(p->size() == 1);
    auto k = store->keys(g);
    REQUIRE(k.ok());
    CHECK(k->size() == 1);
    auto rec = store->get_group(g);
    REQUIRE(rec.ok());
    CHECK(rec->has_value());
  }

  // Events can be stored in the group again, and its arrival sequence starts over.
  WriteBatch again;
  again.put_event(doomed, numbered_hash(doomed.bytes[31], 5), 5, bytes_of("back"));
  commit_ok(*store, again);
  auto arrivals = all_arrivals(*store, doomed);
  REQUIRE(arrivals.size() == 1);
  CHECK(arrivals[0].first == 0);
}

// Proves that a database written by another schema version is refused with version_mismatch
// and a message naming both versions, and that a schema value of the wrong size is malformed.
TEST_CASE("opening a database of another schema version fails", "[store]") {
  TempDir tmp;
  {
    auto store = open_ok(tmp.db());
    auto version = store->get_meta(schema_meta_key);
    REQUIRE(version.ok());
    REQUIRE(version->has_value());
    CHECK(**version == Bytes{0, 0, 0, static_cast<std::uint8_t>(store_schema_version)});
    WriteBatch batch;
    // Schema 1: a store of format 1 events, from before ids committed to payloads by hash.
    batch.put_meta(schema_meta_key, Bytes{0, 0, 0, 1});
    commit_ok(*store, batch);
  }
  auto reopened = Store::open(tmp.db());
  REQUIRE_FALSE(reopened.ok());
  CHECK(reopened.error().code() == Errc::version_mismatch);
  CHECK_THAT(reopened.error().context(), Catch::Contains("database schema 1, this qun reads 2"));
  // The failed open must have released the directory: the same process can open it again.
  auto again = Store::open(tmp.db());
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code() == Errc::version_mismatch);

  TempDir tmp2;
  {
    auto store = open_ok(tmp2.db());
    WriteBatch batch;
    batch.put_meta(schema_meta_key, Bytes{1, 2, 3});
    commit_ok(*store, batch);
  }
  auto odd = Store::open(tmp2.db());
  REQUIRE_FALSE(odd.ok());
  CHECK(odd.error().code() == Errc::malformed);
}

// Proves that open fails with Errc::io, and does not crash, on a path that is a file, a path
// below a file, a directory that cannot be created or written, and a directory this process
// has open already (LMDB forbids two handles on one environment in a process).
TEST_CASE("open on an unusable path fails with io", "[store]") {
  TempDir tmp;
  const std::string file = tmp.path() + "/plain_file";
  { std::ofstream(file) << "not a database"; }
  auto check_io = [](const std::string& path) {
    INFO(path);
    auto r = Store::open(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == Errc::io);
    CHECK_THAT(r.error().context(), Catch::Contains(path));
  };
  check_io(file);
  check_io(file + "/db");
  // Cannot be created even by root.
  check_io("/sys/qun_store_test_db");
  if (::geteuid() != 0) {
    const std::string locked = tmp.path() + "/locked";
    REQUIRE(::mkdir(locked.c_str(), 0500) == 0);
    check_io(locked);
    check_io(locked + "/db");
  } else {
    // Root ignores permission bits; an existing /proc directory refuses new files regardless.
    check_io("/proc/self/fdinfo");
  }
  auto first = open_ok(tmp.db());
  check_io(tmp.db());
  first.reset();
  open_ok(tmp.db());  // released on close
}

// Proves that damaged keys on disk (too short for their table) give Errc::malformed from every
// reader instead of a crash or an out-of-bounds read. The damage is written with raw LMDB.
TEST_CASE("a malformed key on disk is reported, not trusted", "[store]") {
  TempDir tmp;
  const Hash g = make_hash(0x80, 0x01);
  { open_ok(tmp.db()); }
  {
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    REQUIRE(mdb_env_set_maxdbs(env, 8) == 0);
    REQUIRE(mdb_env_open(env, tmp.db().c_str(), 0, 0600) == 0);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    // The group id plus three stray bytes: inside the group's prefix, but no valid layout.
    Bytes bad(g.bytes.begin(), g.bytes.end());
    bad.insert(bad.end(), {1, 2, 3});
    for (const char* table : {"order", "arrival", "heads", "pending", "keys", "groups"}) {
      MDB_dbi dbi;
      REQUIRE(mdb_dbi_open(txn, table, 0, &dbi) == 0);
      MDB_val k{bad.size(), bad.data()};
      MDB_val v{0, nullptr};
      REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
    }
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
  }
  auto store = open_ok(tmp.db());
  auto events = store->for_each_event(g, [](const Hash&, std::uint64_t, ByteView) { return true; });
  REQUIRE_FALSE(events.ok());
  CHECK(events.error().code() == Errc::malformed);
  auto arrivals = store->for_each_arrival(g, 0, [](std::uint64_t, const Hash&) { return true; });
  REQUIRE_FALSE(arrivals.ok());
  CHECK(arrivals.error().code() == Errc::malformed);
  auto heads = store->heads(g);
  REQUIRE_FALSE(heads.ok());
  CHECK(heads.error().code() == Errc::malformed);
  auto pending = store->pending(g);
  REQUIRE_FALSE(pending.ok());
  CHECK(pending.error().code() == Errc::malformed);
  auto keys = store->keys(g);
  REQUIRE_FALSE(keys.ok());
  CHECK(keys.error().code() == Errc::malformed);
  auto groups = store->groups();
  REQUIRE_FALSE(groups.ok());
  CHECK(groups.error().code() == Errc::malformed);
  // A write that must read the damaged arrival index fails cleanly too.
  WriteBatch batch;
  batch.put_event(g, make_hash(0x81, 0x01), 1, bytes_of("e"));
  auto put = store->commit(batch);
  REQUIRE_FALSE(put.ok());
  CHECK(put.error().code() == Errc::malformed);
  WriteBatch del;
  del.delete_group(g);
  auto deleted = store->commit(del);
  REQUIRE_FALSE(deleted.ok());
  CHECK(deleted.error().code() == Errc::malformed);
}

// Proves that a visitor may read and write the store while an iteration is open (node code
// fetches each event by id while walking arrivals), and that the walk sees its own snapshot.
TEST_CASE("visitors may call back into the store", "[store]") {
  TempDir tmp;
  auto store = open_ok(tmp.db());
  const Hash g = make_hash(0x90, 0x01);
  WriteBatch batch;
  for (std::uint64_t i = 0; i < 5; ++i) batch.put_event(g, numbered_hash(9, i), i, bytes_of("x"));
  commit_ok(*store, batch);
  std::size_t seen = 0;
  auto r = store->for_each_arrival(g, 0, [&](std::uint64_t seq, const Hash& id) {
    auto e = store->get_event(id);
    REQUIRE(e.ok());
    CHECK(e->has_value());
    WriteBatch more;
    more.put_event(g, numbered_hash(10, seq), 100 + seq, bytes_of("y"));
    auto c = store->commit(more);
    CHECK(c.ok());
    ++seen;
    return true;
  });
  REQUIRE(r.ok());
  CHECK(seen == 5);  // the events committed during the walk are not in its snapshot
  auto count = store->event_count(g);
  REQUIRE(count.ok());
  CHECK(*count == 10);
}

}  // namespace
}  // namespace qun
