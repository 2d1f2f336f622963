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
// Damage. A damaged file is an operating error, never a crash: open() reads LMDB's two meta
// pages with pread() before LMDB maps the file and refuses a file shorter than its last commit
// wrote (LMDB would SIGBUS at the first read past the end); every value a read returns is
// checked to lie inside the file before it is copied; LMDB's own checks (MDB_CORRUPTED,
// MDB_PAGE_NOTFOUND) and ours come back as Errc::malformed, "the database file F is damaged
// (...)". What stays out of reach is a file truncated by someone else while it is mapped: that
// still faults, as does damage inside LMDB's own page structure (LMDB keeps no checksums and
// trusts the offsets in its pages); exit_on_damage_fault() turns such a fault into one line and
// an exit status.
//
// Thread-safety: one Store per process; use it from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "crypto/hash.h"
#include "base/result.h"

namespace qun {

// 2: events of format 2 (ids commit to the payload by hash; stubs stored in place of events
// whose payload was dropped). A store of schema 1 holds format 1 events, which this qun cannot
// read: it is refused with Errc::version_mismatch.
inline constexpr std::uint32_t store_schema_version = 2;

struct StoreOptions {
  // LMDB map size: the most the database may hold. Past it, commits fail with Errc::disk_full.
  std::size_t map_bytes = std::size_t{1} << 32;  // 4 GiB of address space, not of disk
};

// LMDB reports a short write as EIO ("Input/output error"), and a short write is how a full
// file system usually shows: a commit that fails with EIO while the file system has less than
// this free is reported as a full disk. 1 MiB is 256 pages of 4 KiB, more than one group commit
// of small events writes, and far below what any working node has free.
inline constexpr std::uint64_t disk_full_free_bytes = std::uint64_t{1} << 20;

// The exit status of a process that exit_on_damage_fault() ended: EX_IOERR of sysexits.h.
inline constexpr int map_fault_exit_status = 74;

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
  // Replaces the stored bytes of an event already stored (same id, same group, same place in
  // the order): a stub for its full form when its payload is dropped, and back. Nothing when
  // the id is not stored (an event is stored whole first, with put_event).
  void replace_event(const Hash& id, ByteView encoded);
  // Deletes one event record, not its index entries: for an event that has none (damage took
  // them), which delete_group cannot find and put_event would take as stored already.
  void delete_event(const Hash& id);

  bool empty() const { return ops_.empty(); }
  std::size_t size() const { return ops_.size(); }

  enum class Op { put_event, add_head, remove_head, put_pending, remove_pending, put_group,
                  put_key, put_meta, delete_group, delete_event, replace_event };
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
  // Errc::version_mismatch (a database of another schema version; message names both),
  // Errc::malformed (the data file is damaged: truncated, or meta pages or tables that do not
  // read; the message names the file and says what to do).
  [[nodiscard]] static Result<std::unique_ptr<Store>> open(const std::string& dir,
                                                           const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The LMDB data file of a store directory.
  static std::string data_file(const std::string& dir) { return dir + "/data.mdb"; }

  // Applies the batch in one transaction. Errors: Errc::disk_full (nothing of the batch was
  // applied and the store stays usable; the message says which: "database full" when the LMDB
  // map is full, "disk full" when the file system is, including a short write on a file system
  // with less than disk_full_free_bytes left), Errc::io, Errc::malformed (damaged file).
  [[nodiscard]] Result<void> commit(const WriteBatch& batch);

  [[nodiscard]] Result<std::optional<Bytes>> get_event(const Hash& id) const;
  [[nodiscard]] Result<bool> has_event(const Hash& id) const;
  // Calls visit(id, order_key, encoded) for the group's events in order, starting after
  // `after` (an order key and id) when given; stops early when visit returns false.
  using EventVisitor = std::function<bool(const Hash& id, std::uint64_t order_key, ByteView encoded)>;
  [[nodiscard]] Result<void> for_each_event(const Hash& group, const EventVisitor& visit) const;
  // Every stored event of every group, by id: for a repair that looks for events whose index
  // entries were lost. visit gets (id, encoded).
  using StoredEventVisitor = std::function<bool(const Hash& id, ByteView encoded)>;
  [[nodiscard]] Result<void> for_each_stored_event(const StoredEventVisitor& visit) const;
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
  // Groups that have events (order or arrival entries), whether or not they have a record in
  // `groups`: a group whose record was lost to damage is still found here. Sorted, unique.
  // Errors: store errors (a damaged table fails the whole listing).
  [[nodiscard]] Result<std::vector<Hash>> groups_with_events() const;

  // From now on, a SIGBUS or SIGSEGV inside an LMDB call, or at an address in the map of the
  // store opened last, prints `prefix` and one line naming that store's file and what to do on
  // stderr, and ends the process with map_fault_exit_status. Such a fault comes from the file:
  // truncated by someone else while mapped, unreadable (a disk error), or damaged inside LMDB's
  // page structure, which LMDB reads without checks (a damaged node offset makes it read past
  // its page, damaged node flags make it dereference garbage). Any other fault goes to the
  // handler installed before. Call once, before open(), in a process with one long-lived store
  // (the daemon); later calls do nothing.
  static void exit_on_damage_fault(std::string_view prefix);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qun
