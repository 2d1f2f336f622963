// DiskBlobStore: the blobs of shared files (node/file.h) on disk, under the node home, in *packs*:
// files/<group id hex>/<pack number, 16 hex digits>.pack, each a run of records
//
//     magic "qbl1" (4 bytes) | blob length (u32 little-endian) | blob id (32) | the blob
//
// appended in the order the blobs were stored. One file per blob cost a file creation per 64 KiB
// chunk (1,600 for a 100 MiB file, and a relay's disk full of small files); a pack holds up to
// pack_bytes_max. The loop appends to one pack per group at a time and starts a new one past the
// bound or after a restart; a file sealed off the loop is written to a pack of its own
// (new_pack, PackWriter, then adopt). A read checks the blob against its id (its BLAKE2b-256),
// so a record damaged on disk is dropped and fetched again rather than served. At start a
// group's packs are scanned (headers only); a record cut short by a crash, or a header that does
// not parse, ends its pack's scan (the bytes stay, unread). A blob served to a peer is not
// hashed here: the peer checks it against the id it asked for (BlobStore::serve). Blobs are ciphertext: the home of a
// relay holds no file plaintext, and a member's holds what any peer of the group could send it.
//
// A relay bounds each group (group_bytes_max > 0): past it, the group's oldest blobs (by when
// they were stored) are dropped first, as its events' payloads are (docs/relay.md); a pack is
// deleted once none of its blobs is kept, so the disk holds the bound plus the partly dropped
// packs at the old end (about one pack). A member's store holds what it sent or fetched, and is
// not bounded here: each `qun fetch` is a person's choice, at most file_limits::file_bytes_max.
//
// Blob files of earlier versions (files/<group>/<blob id hex>, one per blob) are moved into a
// pack when the group is first used.
//
// Not thread-safe: the daemon's loop owns it. PackWriter and read_blob_at are safe on any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "node/transfer.h"

namespace qun {

namespace blob_store_limits {
// A pack's size past which the loop starts another: 8 MiB is 128 chunks, so a 100 MiB file is 13
// files rather than 1,600, and a relay's default bound per group (1 GiB) frees space in steps
// of under 1%.
inline constexpr std::uint64_t pack_bytes_max = 8ull * 1024 * 1024;
// A record's header: magic, length, id.
inline constexpr std::size_t record_header_bytes = 4 + 4 + 32;
inline constexpr char record_magic[4] = {'q', 'b', 'l', '1'};
}  // namespace blob_store_limits

// Where a stored blob's bytes are.
struct BlobLocation {
  std::string pack;            // the pack's path
  std::uint64_t offset = 0;    // of the blob's bytes (after its header)
  std::uint32_t bytes = 0;
};

// A blob appended to a pack: its id, the offset of its bytes, their length.
struct PackedBlob {
  Hash id;
  std::uint64_t offset = 0;
  std::uint32_t bytes = 0;
};

// Appends records to one pack (safe on any thread; one writer per pack). A failed append leaves
// the pack as it was (cut back to its last whole record) where the file system allows it.
class PackWriter {
 public:
  PackWriter() = default;
  ~PackWriter();
  PackWriter(const PackWriter&) = delete;
  PackWriter& operator=(const PackWriter&) = delete;
  PackWriter(PackWriter&& o) noexcept;
  PackWriter& operator=(PackWriter&& o) noexcept;

  // Opens (creating it and its folder) the pack at `path` for appending after `size` bytes.
  [[nodiscard]] Result<void> open(const std::string& path, std::uint64_t size = 0);
  [[nodiscard]] Result<PackedBlob> append(const Hash& id, ByteView blob);
  bool is_open() const { return fd_ >= 0; }
  std::uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  void close();

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// Reads the blob at `at`, checked against `id` (nullopt if missing, cut short or damaged).
std::optional<Bytes> read_blob_at(const BlobLocation& at, const Hash& id);

class DiskBlobStore final : public BlobStore {
 public:
  DiskBlobStore(std::string dir, std::uint64_t group_bytes_max, LogSink log);

  bool has(const Hash& group, const Hash& id) const override;
  std::optional<Bytes> get(const Hash& group, const Hash& id) const override;
  // Not checked against its id (BlobStore::serve): the peer checks it.
  std::optional<Bytes> serve(const Hash& group, const Hash& id) const override;
  Result<void> put(const Hash& group, const Hash& id, ByteView blob) override;

  // A pack for a writer off the loop (a file being sealed): its path, a number nothing else
  // uses, named `NUMBER.pack.sealing` until adopted (one left by a node stopped meanwhile is
  // removed at the next start). Its blobs count once adopted; if the writer gives up it removes
  // the pack.
  std::string new_pack(const Hash& group);
  // Renames `pack` (from new_pack) into its place and counts the blobs a PackWriter appended to
  // it: from now on they are stored like puts here (a blob already stored is not counted twice;
  // adopting again only counts). Errc::io when the rename fails (the pack is then removed).
  [[nodiscard]] Result<void> adopt(const Hash& group, const std::string& pack, const std::vector<PackedBlob>& blobs);
  // Where a stored blob is, for reading it off the loop with read_blob_at.
  std::optional<BlobLocation> locate(const Hash& group, const Hash& id) const;
  // Drops one blob (damaged on disk, or found bad when a file is put together).
  void remove(const Hash& group, const Hash& id);
  // Removes every blob of a group (left, dropped).
  void remove_group(const Hash& group);
  // Blobs and their bytes stored for a group.
  std::size_t group_blobs(const Hash& group) const;
  std::uint64_t group_bytes(const Hash& group) const;
  // Blobs evicted past group_bytes_max since start.
  std::uint64_t evicted() const { return evicted_; }

 private:
  struct Entry {
    std::uint64_t sequence = 0;  // age: the order in which blobs were stored
    std::uint64_t pack = 0;
    std::uint64_t offset = 0;
    std::uint32_t bytes = 0;
  };
  struct Pack {
    std::size_t live = 0;       // blobs of the index in it
    bool writing = false;       // being written (the loop's current pack, or new_pack's)
  };
  struct Index {  // a group's blobs
    std::set<std::pair<std::uint64_t, Hash>> by_age;  // (sequence, id)
    std::map<Hash, Entry> blobs;
    std::map<std::uint64_t, Pack> packs;
    std::uint64_t bytes = 0;
    std::uint64_t next_pack = 0;
    std::optional<std::uint64_t> current;  // the loop's pack
    PackWriter writer;                     // open on the loop's pack
  };
  std::string group_dir(const Hash& group) const;
  std::string pack_path(const Hash& group, std::uint64_t pack) const;
  Index& index(const Hash& group) const;
  void load(const Hash& group, Index& idx);
  void count(const Hash& group, Index& idx, const Hash& id, const Entry& e);
  void drop(const Hash& group, Index& idx, std::map<Hash, Entry>::iterator it);
  Result<void> append(const Hash& group, Index& idx, const Hash& id, ByteView blob);

  std::string dir_;
  std::uint64_t group_bytes_max_;
  LogSink log_;
  mutable std::map<Hash, Index> index_;  // loaded from disk on a group's first use
  mutable std::uint64_t sequence_ = 0;
  std::uint64_t evicted_ = 0;
};

}  // namespace qun
