// Store: a node's persistence, one LMDB environment per node home.
//
// The store knows events only as (group, id, order key, bytes): it does not decode them, so it
// depends on crypto/ (for Hash) and nothing above. Every write goes through one WriteBatch that
// commits in one LMDB write transaction: all of it or none of it. When commit() returns ok, the
// batch is on disk (LMDB syncs on commit): a kill -9 after that loses none of it.
//
// Tables (LMDB named databases):
//   meta     string -> bytes                 schema version and node-wide values
//   events   id -> encoded event             every stored event of every group
//   order    group|order_key_be64|id -> ""   each group's events in a stable topological order
//   arrival  group|seq_be64 -> id            each group's events in the order this node stored them
//   heads    group|id -> ""                  each group's current heads
//   pending  group|id -> encoded event       events waiting for missing parents
//   groups   group -> bytes                  a group's state record (opaque to the store)
//   keys     group|epoch_be64|key_id -> bytes  group epoch keys (the node encrypts them at rest)
//
// Thread-safety: one Store per process; use it from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/hash.h"
#include "crypto/result.h"

namespace qun {

inline constexpr std::uint32_t store_schema_version = 1;

struct StoreOptions {
  // LMDB map size: the most the database may hold. Past it, commits fail with Errc::disk_full.
  std::size_t map_bytes = std::size_t{1} << 32;  // 4 GiB of address space, not of disk
};

// One batch of writes, applied atomically by Store::commit. Operations apply in the order added.
class WriteBatch {
 public:
  void put_event(const Hash& group, const Hash& id, std::uint64_t order_key, ByteView encoded);
  void add_head(const Hash& group, const Hash& id);
  void remove_head(const Hash& group, const Hash& id);
  void put_pending(const Hash& group, const Hash& id, ByteView encoded);
  void remove_pending(const Hash& group, const Hash& id);
  void put_group(const Hash& group, ByteView record);
  void put_key(const Hash& group, std::uint64_t epoch, const Hash& key_id, ByteView record);
  void put_meta(const std::string& key, ByteView value);
  // Deletes everything of the group: events, order, arrival, heads, pending, record and keys.
  void delete_group(const Hash& group);

  bool empty() const { return ops_.empty(); }
  std::size_t size() const { return ops_.size(); }

  enum class Op { put_event, add_head, remove_head, put_pending, remove_pending, put_group,
                  put_key, put_meta, delete_group };
  struct Entry {
    Op op;
    Hash group;
    Hash id;
    std::uint64_t number = 0;  // order key, or epoch
    Bytes bytes;
    std::string name;
  };
  const std::vector<Entry>& entries() const { return ops_; }

 private:
  std::vector<Entry> ops_;
};

struct StoredKey {
  std::uint64_t epoch;
  Hash key_id;
  Bytes record;
};

class Store {
 public:
  // Creates the directory's database if absent. Errors: Errc::io (cannot create or open),
  // Errc::version_mismatch (a database of another schema version; message names both).
  [[nodiscard]] static Result<std::unique_ptr<Store>> open(const std::string& dir,
                                                           const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Applies the batch in one transaction. Errors: Errc::disk_full (map or disk full; nothing of
  // the batch was applied and the store stays usable), Errc::io.
  [[nodiscard]] Result<void> commit(const WriteBatch& batch);

  [[nodiscard]] Result<std::optional<Bytes>> get_event(const Hash& id) const;
  [[nodiscard]] Result<bool> has_event(const Hash& id) const;
  // Calls visit(id, order_key, encoded) for the group's events in order, starting after
  // `after` (an order key and id) when given; stops early when visit returns false.
  using EventVisitor = std::function<bool(const Hash& id, std::uint64_t order_key, ByteView encoded)>;
  [[nodiscard]] Result<void> for_each_event(const Hash& group, const EventVisitor& visit) const;
  // The group's events in the order this node stored them, from arrival sequence `from_seq`
  // (0 = the first). visit gets (seq, id).
  using ArrivalVisitor = std::function<bool(std::uint64_t seq, const Hash& id)>;
  [[nodiscard]] Result<void> for_each_arrival(const Hash& group, std::uint64_t from_seq,
                                              const ArrivalVisitor& visit) const;
  [[nodiscard]] Result<std::uint64_t> event_count(const Hash& group) const;
  [[nodiscard]] Result<std::vector<Hash>> heads(const Hash& group) const;
  [[nodiscard]] Result<std::vector<std::pair<Hash, Bytes>>> pending(const Hash& group) const;
  [[nodiscard]] Result<std::optional<Bytes>> get_group(const Hash& group) const;
  [[nodiscard]] Result<std::vector<Hash>> groups() const;
  [[nodiscard]] Result<std::vector<StoredKey>> keys(const Hash& group) const;
  [[nodiscard]] Result<std::optional<Bytes>> get_meta(const std::string& key) const;
  // Bytes the store's data occupies (LMDB pages in use), for status and relay quotas.
  [[nodiscard]] Result<std::uint64_t> used_bytes() const;

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qun
