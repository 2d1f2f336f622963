// DiskBlobStore: the blobs of shared files (node/file.h) on disk, under the node home:
// files/<group id hex>/<blob id hex>, one file per blob, written to a temporary name and
// renamed into place. A read checks the blob against its name (its BLAKE2b-256), so a file damaged
// on disk is dropped and fetched again rather than served. Blobs are ciphertext: the home of a
// relay holds no file plaintext, and a member's holds what any peer of the group could send it.
//
// A relay bounds each group (group_bytes_max > 0): past it, the group's oldest blobs (by when
// they were stored) are removed first, as its events' payloads are (docs/relay.md). A member's
// store holds what it sent or fetched, and is not bounded here: each `qun fetch` is a person's
// choice, at most file_limits::file_bytes_max.
//
// Not thread-safe: the daemon's loop owns it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "node/transfer.h"

namespace qun {

class DiskBlobStore final : public BlobStore {
 public:
  DiskBlobStore(std::string dir, std::uint64_t group_bytes_max, LogSink log);

  bool has(const Hash& group, const Hash& id) const override;
  std::optional<Bytes> get(const Hash& group, const Hash& id) const override;
  Result<void> put(const Hash& group, const Hash& id, ByteView blob) override;
  // Counts a blob written to blob_path(group_dir(group), id) by write_blob_file on another
  // thread (a file sealed off the loop): from now on it is stored like one put here.
  void adopt(const Hash& group, const Hash& id, std::uint64_t bytes);
  // Where a group's blobs live (written or read off the loop with the functions below): its
  // folder, and a blob's file in a folder.
  std::string group_dir(const Hash& group) const;
  static std::string blob_path(const std::string& group_dir, const Hash& id);
  // Removes one blob (damaged on disk, or found bad when a file is put together).
  void remove(const Hash& group, const Hash& id);
  // Removes every blob of a group (left, dropped).
  void remove_group(const Hash& group);
  // Bytes of blobs stored for a group.
  std::uint64_t group_bytes(const Hash& group) const;
  // Blobs evicted past group_bytes_max since start.
  std::uint64_t evicted() const { return evicted_; }

 private:
  struct Index {  // a group's blobs, oldest first (relay only)
    std::set<std::pair<std::uint64_t, Hash>> by_age;  // (sequence, id)
    std::map<Hash, std::pair<std::uint64_t, std::uint64_t>> blobs;  // id -> (sequence, bytes)
    std::uint64_t bytes = 0;
  };
  std::string path(const Hash& group, const Hash& id) const;
  Index& index(const Hash& group) const;

  std::string dir_;
  std::uint64_t group_bytes_max_;
  LogSink log_;
  mutable std::map<Hash, Index> index_;  // loaded from disk on a group's first use
  mutable std::uint64_t sequence_ = 0;
  std::uint64_t evicted_ = 0;
};

// The file side of the store, safe on any thread (they touch no index): writes a blob to `path`
// through a temporary name (creating its folder), and reads the blob at `path`, checked against
// its id (nullopt if missing, too large or damaged).
[[nodiscard]] Result<void> write_blob_file(const std::string& path, ByteView blob);
std::optional<Bytes> read_blob_file(const std::string& path, const Hash& id);

}  // namespace qun
