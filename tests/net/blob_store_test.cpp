// The blobs of shared files on disk (net/blob_store.h): packs written on the loop and off it,
// damage, a relay's bound, restarts, a pack cut short by a crash, and blob files of earlier
// versions.
#include "net/blob_store.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "tests/temp_dir.h"

using namespace qun;

namespace {

Hash group_id(std::uint8_t n) {
  Hash h;
  h.bytes.fill(n);
  return h;
}

Bytes blob_of(std::size_t size, std::uint8_t fill) { return Bytes(size, fill); }

// The pack files in a group's folder.
std::vector<std::filesystem::path> packs_of(const std::string& home, const Hash& g) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(home + "/" + to_hex(g), ec))
    if (e.path().extension() == ".pack") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// Proves blobs written off the loop (a PackWriter on new_pack) and adopted are stored like puts:
// has, get, counted once, located and read with read_blob_at; and a restarted store finds them
// all again from the packs.
TEST_CASE("a pack written off the loop and adopted is stored like puts, and found after a restart", "[net][files]") {
  test::TempDir dir;
  const Hash g = group_id(1);
  const Bytes a = blob_of(1000, 0xaa), b = blob_of(2000, 0xbb), c = blob_of(3000, 0xcc);
  {
    DiskBlobStore store(dir.path(), 0, null_log_sink());
    CHECK(store.group_bytes(g) == 0);
    const std::string pack = store.new_pack(g);
    PackWriter w;
    REQUIRE(w.open(pack).ok());
    std::vector<PackedBlob> written;
    for (const Bytes* x : {&a, &b}) written.push_back(w.append(blob_id(*x), *x).value());
    w.close();
    CHECK_FALSE(store.has(g, blob_id(a)));  // not counted until adopted
    REQUIRE(store.adopt(g, pack, written).ok());
    REQUIRE(store.adopt(g, pack, written).ok());  // adopting twice counts once
    REQUIRE(store.put(g, blob_id(c), c).ok());
    REQUIRE(store.put(g, blob_id(c), c).ok());  // and a put twice
    CHECK(store.get(g, blob_id(a)) == a);
    CHECK(store.group_blobs(g) == 3);
    CHECK(store.group_bytes(g) == a.size() + b.size() + c.size());
    auto at = store.locate(g, blob_id(b));
    REQUIRE(at);
    CHECK(read_blob_at(*at, blob_id(b)) == b);
    CHECK_FALSE(read_blob_at(*at, blob_id(a)));  // the bytes there are not a's
    CHECK(packs_of(dir.path(), g).size() == 2);  // the adopted pack and the loop's
  }
  DiskBlobStore again(dir.path(), 0, null_log_sink());
  CHECK(again.group_blobs(g) == 3);
  CHECK(again.get(g, blob_id(a)) == a);
  CHECK(again.get(g, blob_id(c)) == c);
}

// Proves a blob damaged on disk is never returned to this node: read_blob_at refuses it (its hash
// is not its id), and the store drops it so that it is fetched again; the pack's other blobs
// stay. serve(), for a peer that checks what it gets, reads the bytes as they are (no hash),
// and drops a blob only when its bytes are gone (a pack cut short or removed).
TEST_CASE("a blob damaged on disk is refused and dropped", "[net][files]") {
  test::TempDir dir;
  DiskBlobStore store(dir.path(), 0, null_log_sink());
  const Hash g = group_id(2);
  const Bytes a = blob_of(4096, 0x11), b = blob_of(4096, 0x22);
  REQUIRE(store.put(g, blob_id(a), a).ok());
  REQUIRE(store.put(g, blob_id(b), b).ok());
  const auto at = store.locate(g, blob_id(a));
  REQUIRE(at);
  {
    std::fstream f(at->pack, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(at->offset + 100));
    f.put(0x12);
  }
  CHECK_FALSE(read_blob_at(*at, blob_id(a)));
  auto served = store.serve(g, blob_id(a));
  REQUIRE(served);
  CHECK(served->size() == a.size());
  CHECK(blob_id(*served) != blob_id(a));  // the damage goes out, for the peer to refuse
  CHECK(store.serve(g, blob_id(b)) == b);
  CHECK_FALSE(store.get(g, blob_id(a)));
  CHECK_FALSE(store.has(g, blob_id(a)));
  CHECK_FALSE(store.serve(g, blob_id(a)));
  CHECK(store.get(g, blob_id(b)) == b);
  // A pack cut before b's bytes end: serving b finds them gone and drops it.
  const auto bat = store.locate(g, blob_id(b));
  REQUIRE(bat);
  std::filesystem::resize_file(bat->pack, bat->offset + 10);
  CHECK_FALSE(store.serve(g, blob_id(b)));
  CHECK_FALSE(store.has(g, blob_id(b)));
}

// Proves a relay's bound counts adopted blobs and puts alike, the oldest dropped first, and that a
// pack is deleted once none of its blobs is kept.
TEST_CASE("blobs count against a relay's bound, oldest dropped first, empty packs deleted", "[net][files]") {
  test::TempDir dir;
  DiskBlobStore store(dir.path(), 2500, null_log_sink());
  const Hash g = group_id(3);
  const Bytes a = blob_of(1000, 1), b = blob_of(1000, 2), c = blob_of(1000, 3);
  const std::string pack = store.new_pack(g);
  {
    PackWriter w;
    REQUIRE(w.open(pack).ok());
    REQUIRE(store.adopt(g, pack, {w.append(blob_id(a), a).value()}).ok());
  }
  REQUIRE(store.put(g, blob_id(b), b).ok());
  REQUIRE(store.put(g, blob_id(c), c).ok());
  CHECK_FALSE(store.has(g, blob_id(a)));
  CHECK(store.has(g, blob_id(b)));
  CHECK(store.has(g, blob_id(c)));
  CHECK(store.group_bytes(g) == 2000);
  CHECK(store.evicted() == 1);
  CHECK_FALSE(std::filesystem::exists(pack));  // a's pack held nothing else
  CHECK(packs_of(dir.path(), g).size() == 1);
}

// Proves a pack cut short by a crash (its last record half written) loses only that record: a
// restarted store counts the whole ones, says what it found in the log, and stores more after.
TEST_CASE("a pack cut short by a crash keeps its whole records", "[net][files]") {
  test::TempDir dir;
  const Hash g = group_id(4);
  const Bytes a = blob_of(5000, 1), b = blob_of(5000, 2), c = blob_of(5000, 3);
  {
    DiskBlobStore store(dir.path(), 0, null_log_sink());
    for (const Bytes* x : {&a, &b, &c}) REQUIRE(store.put(g, blob_id(*x), *x).ok());
  }
  const auto packs = packs_of(dir.path(), g);
  REQUIRE(packs.size() == 1);
  std::filesystem::resize_file(packs[0], std::filesystem::file_size(packs[0]) - 2000);
  std::vector<std::string> logged;
  DiskBlobStore store(dir.path(), 0, [&](const LogRecord& r) { logged.push_back(r.message); });
  CHECK(store.group_blobs(g) == 2);
  CHECK(store.get(g, blob_id(a)) == a);
  CHECK(store.get(g, blob_id(b)) == b);
  CHECK_FALSE(store.has(g, blob_id(c)));
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].find("cut short or damaged") != std::string::npos);
  REQUIRE(store.put(g, blob_id(c), c).ok());
  CHECK(store.get(g, blob_id(c)) == c);
}

// Proves the blob files of earlier versions (one file per blob, named by its id) are moved into
// a pack when the group is first used: still stored, the old files gone, a damaged one dropped.
TEST_CASE("blob files of earlier versions move into a pack", "[net][files]") {
  test::TempDir dir;
  const Hash g = group_id(5);
  const Bytes a = blob_of(3000, 7), b = blob_of(3000, 8);
  const std::string folder = dir.path() + "/" + to_hex(g);
  std::filesystem::create_directories(folder);
  std::ofstream(folder + "/" + to_hex(blob_id(a)), std::ios::binary)
      .write(reinterpret_cast<const char*>(a.data()), static_cast<std::streamsize>(a.size()));
  Bytes damaged = b;
  damaged[10] ^= 1;
  std::ofstream(folder + "/" + to_hex(blob_id(b)), std::ios::binary)
      .write(reinterpret_cast<const char*>(damaged.data()), static_cast<std::streamsize>(damaged.size()));
  DiskBlobStore store(dir.path(), 0, null_log_sink());
  CHECK(store.get(g, blob_id(a)) == a);
  CHECK_FALSE(store.has(g, blob_id(b)));
  CHECK_FALSE(std::filesystem::exists(folder + "/" + to_hex(blob_id(a))));
  CHECK_FALSE(std::filesystem::exists(folder + "/" + to_hex(blob_id(b))));
  CHECK(packs_of(dir.path(), g).size() == 1);
}

// Proves a file being sealed when the node stopped (a pack from new_pack never adopted: the post
// was never made) leaves nothing behind: at the next start its blobs are not counted, never
// offered, and its pack is removed. Before, the pack looked like any other and its blobs stayed
// until the group was left.
TEST_CASE("a pack sealed but never adopted is removed at the next start", "[net][files]") {
  test::TempDir dir;
  const Hash g = group_id(5);
  const Bytes a = blob_of(1000, 0x11), b = blob_of(1000, 0x22);
  std::string pack;
  {
    DiskBlobStore store(dir.path(), 0, null_log_sink());
    REQUIRE(store.put(g, blob_id(a), a).ok());
    pack = store.new_pack(g);
    PackWriter w;
    REQUIRE(w.open(pack).ok());
    REQUIRE(w.append(blob_id(b), b).ok());
    w.close();
  }  // the node stops before the seal's answer
  REQUIRE(std::filesystem::exists(pack));
  DiskBlobStore again(dir.path(), 0, null_log_sink());
  CHECK(again.has(g, blob_id(a)));
  CHECK_FALSE(again.has(g, blob_id(b)));
  CHECK(again.group_blobs(g) == 1);
  CHECK_FALSE(std::filesystem::exists(pack));
  CHECK(packs_of(dir.path(), g).size() == 1);
}
