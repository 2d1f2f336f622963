// The blobs of shared files on disk (net/blob_store.h): what the loop's store and the file
// functions used off the loop (sealing and putting a file together) agree on.
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

}  // namespace

// Proves a blob written off the loop (write_blob_file into the group's folder) and adopted is
// stored like one put: has, get, its bytes counted; and read_blob_file reads what put wrote.
TEST_CASE("a blob written off the loop and adopted is stored like one put", "[net][files]") {
  test::TempDir dir;
  DiskBlobStore store(dir.path(), 0, null_log_sink());
  const Hash g = group_id(1);
  const Bytes a = blob_of(1000, 0xaa);
  const Bytes b = blob_of(2000, 0xbb);
  CHECK(store.group_bytes(g) == 0);  // the group's index is loaded (from its empty folder)
  REQUIRE(write_blob_file(DiskBlobStore::blob_path(store.group_dir(g), blob_id(a)), a).ok());
  CHECK_FALSE(store.has(g, blob_id(a)));  // not counted until adopted
  store.adopt(g, blob_id(a), a.size());
  store.adopt(g, blob_id(a), a.size());  // adopting twice counts once
  REQUIRE(store.put(g, blob_id(b), b).ok());
  CHECK(store.get(g, blob_id(a)) == a);
  CHECK(store.group_bytes(g) == a.size() + b.size());
  CHECK(read_blob_file(DiskBlobStore::blob_path(store.group_dir(g), blob_id(b)), blob_id(b)) == b);
}

// Proves a blob damaged on disk is never returned: read_blob_file refuses it (its hash is not its
// name), and the store drops it so that it is fetched again.
TEST_CASE("a blob damaged on disk is refused and dropped", "[net][files]") {
  test::TempDir dir;
  DiskBlobStore store(dir.path(), 0, null_log_sink());
  const Hash g = group_id(2);
  const Bytes a = blob_of(4096, 0x11);
  const Hash id = blob_id(a);
  REQUIRE(store.put(g, id, a).ok());
  const std::string path = DiskBlobStore::blob_path(store.group_dir(g), id);
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(100);
    f.put(0x12);
  }
  CHECK_FALSE(read_blob_file(path, id));
  CHECK_FALSE(store.get(g, id));
  CHECK_FALSE(store.has(g, id));
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_FALSE(read_blob_file(path, id));  // gone: missing reads as nothing too
}

// Proves a relay's bound counts adopted blobs: past it the oldest go first.
TEST_CASE("adopted blobs count against a relay's bound, oldest dropped first", "[net][files]") {
  test::TempDir dir;
  DiskBlobStore store(dir.path(), 2500, null_log_sink());
  const Hash g = group_id(3);
  const Bytes a = blob_of(1000, 1), b = blob_of(1000, 2), c = blob_of(1000, 3);
  for (const Bytes* x : {&a, &b, &c}) {
    REQUIRE(write_blob_file(DiskBlobStore::blob_path(store.group_dir(g), blob_id(*x)), *x).ok());
    store.adopt(g, blob_id(*x), x->size());
  }
  CHECK_FALSE(store.has(g, blob_id(a)));
  CHECK(store.has(g, blob_id(b)));
  CHECK(store.has(g, blob_id(c)));
  CHECK(store.group_bytes(g) == 2000);
  CHECK(store.evicted() == 1);
}
