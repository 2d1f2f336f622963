// Store over LMDB: see store.h for the tables and the contract.
//
// Every LMDB call's return code is checked and turned into an Error; nothing here throws or
// asserts on what is read from disk, because a damaged file is an operating error, not a bug.
#include "store/store.h"

#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <mutex>
#include <set>
#include <utility>

namespace qun {

namespace {

// Eight named databases: meta, events, order, arrival, heads, pending, groups, keys.
constexpr unsigned int named_dbs_max = 8;
// The key under which meta holds the schema version, as a big-endian u32.
constexpr std::string_view schema_key = "schema_version";
constexpr std::size_t schema_value_bytes = 4;
constexpr std::size_t hash_bytes = Hash::size();
constexpr std::size_t u64_bytes = 8;
// Key sizes of the composite tables, from the layouts in store.h.
constexpr std::size_t order_key_bytes = hash_bytes + u64_bytes + hash_bytes;
constexpr std::size_t arrival_key_bytes = hash_bytes + u64_bytes;
constexpr std::size_t pair_key_bytes = hash_bytes + hash_bytes;  // heads, pending
constexpr std::size_t keys_key_bytes = hash_bytes + u64_bytes + hash_bytes;
// The directory is private to the node: it holds encrypted keys and every message.
constexpr mode_t dir_mode = 0700;
constexpr mdb_mode_t file_mode = 0600;
constexpr std::size_t mib_bytes = std::size_t{1} << 20;
constexpr std::size_t kib_bytes = std::size_t{1} << 10;

// LMDB 0.9's data file, as mdb.c lays it out (MDB_page, MDB_meta): pages 0 and 1 are meta pages,
// each a 16-byte page header (pgno 8, pad 2, flags 2, lower 2, upper 2) and then the MDB_meta
// (magic 4, version 4, address 8, map size 8, two MDB_db of 48 bytes whose first u32 in the
// free-list one is the page size, last page 8, txnid 8), all in the machine's byte order. LMDB
// reads these with read() at open and then trusts mm_last_pg of the newer one; we read them the
// same way first, so that a file shorter than that page is refused instead of mapped.
static_assert(MDB_VERSION_MAJOR == 0 && MDB_VERSION_MINOR == 9,
              "check_data_file reads LMDB 0.9's meta page layout; check it for this version");
constexpr std::size_t page_header_bytes = 16;
constexpr std::size_t page_flags_at = 10;
constexpr std::uint16_t page_flag_meta = 0x08;  // P_META
constexpr std::size_t meta_magic_at = page_header_bytes + 0;
constexpr std::size_t meta_version_at = page_header_bytes + 4;
constexpr std::size_t meta_page_size_at = page_header_bytes + 24;  // mm_dbs[FREE_DBI].md_pad
constexpr std::size_t meta_last_page_at = page_header_bytes + 120;
constexpr std::size_t meta_txnid_at = page_header_bytes + 128;
constexpr std::size_t meta_read_bytes = meta_txnid_at + 8;
constexpr std::uint32_t meta_magic = 0xBEEFC0DE;      // MDB_MAGIC
constexpr std::uint32_t meta_data_version = 1;        // MDB_DATA_VERSION
// LMDB's page size is the OS page size, a power of two; these bound what a meta page may claim
// (MDB_MIN_PAGESIZE is 256 in mdb.c's words; MAX_PAGESIZE is 64 KiB).
constexpr std::uint32_t page_bytes_min = 256;
constexpr std::uint32_t page_bytes_max = 1u << 16;

MDB_val to_val(ByteView v) {
  // LMDB never writes through the input key or data of mdb_put/mdb_get without MDB_RESERVE.
  return MDB_val{v.size(), const_cast<std::uint8_t*>(v.data())};
}
ByteView to_view(const MDB_val& v) {
  return ByteView(static_cast<const std::uint8_t*>(v.mv_data), v.mv_size);
}
bool has_prefix(const MDB_val& key, ByteView prefix) {
  // memcmp must not see the null data of an empty view, even for zero bytes.
  if (prefix.empty()) return true;
  return key.mv_size >= prefix.size() &&
         std::memcmp(key.mv_data, prefix.data(), prefix.size()) == 0;
}
Hash hash_at(const MDB_val& v, std::size_t offset) {
  Hash h;
  std::memcpy(h.data(), static_cast<const std::uint8_t*>(v.mv_data) + offset, hash_bytes);
  return h;
}
std::uint64_t u64_at(const MDB_val& v, std::size_t offset) {
  return get_u64_be(static_cast<const std::uint8_t*>(v.mv_data) + offset);
}

Bytes key_of(const Hash& group) { return Bytes(group.bytes.begin(), group.bytes.end()); }
Bytes key_of(const Hash& group, const Hash& id) {
  Bytes k = key_of(group);
  k.insert(k.end(), id.bytes.begin(), id.bytes.end());
  return k;
}
Bytes key_of(const Hash& group, std::uint64_t number) {
  Bytes k = key_of(group);
  // Big-endian, so that LMDB's bytewise key order is numeric order.
  put_u64_be(k, number);
  return k;
}
Bytes key_of(const Hash& group, std::uint64_t number, const Hash& id) {
  Bytes k = key_of(group, number);
  k.insert(k.end(), id.bytes.begin(), id.bytes.end());
  return k;
}

// LMDB forbids opening one environment twice in a process: closing either handle drops the
// other's file locks. We refuse the second open instead, keyed by the directory's identity.
std::mutex open_dirs_mutex;
std::set<std::pair<dev_t, ino_t>> open_dirs;

}  // namespace

// ---------------------------------------------------------------------------------------------
// WriteBatch

void WriteBatch::put_event(const Hash& group, const Hash& id, std::uint64_t order_key,
                           ByteView encoded) {
  ops_.push_back(
      Entry{Op::put_event, group, id, order_key, Bytes(encoded.begin(), encoded.end()), {}});
}
void WriteBatch::add_head(const Hash& group, const Hash& id) {
  ops_.push_back(Entry{Op::add_head, group, id, 0, {}, {}});
}
void WriteBatch::remove_head(const Hash& group, const Hash& id) {
  ops_.push_back(Entry{Op::remove_head, group, id, 0, {}, {}});
}
void WriteBatch::put_pending(const Hash& group, const Hash& id, ByteView encoded) {
  ops_.push_back(Entry{Op::put_pending, group, id, 0, Bytes(encoded.begin(), encoded.end()), {}});
}
void WriteBatch::remove_pending(const Hash& group, const Hash& id) {
  ops_.push_back(Entry{Op::remove_pending, group, id, 0, {}, {}});
}
void WriteBatch::put_group(const Hash& group, ByteView record) {
  ops_.push_back(Entry{Op::put_group, group, {}, 0, Bytes(record.begin(), record.end()), {}});
}
void WriteBatch::put_key(const Hash& group, std::uint64_t epoch, const Hash& key_id,
                         ByteView record) {
  ops_.push_back(Entry{Op::put_key, group, key_id, epoch, Bytes(record.begin(), record.end()), {}});
}
void WriteBatch::put_meta(const std::string& key, ByteView value) {
  ops_.push_back(Entry{Op::put_meta, {}, {}, 0, Bytes(value.begin(), value.end()), key});
}
void WriteBatch::replace_event(const Hash& id, ByteView encoded) {
  ops_.push_back(Entry{Op::replace_event, {}, id, 0, Bytes(encoded.begin(), encoded.end()), {}});
}
void WriteBatch::delete_event(const Hash& id) {
  ops_.push_back(Entry{Op::delete_event, {}, id, 0, {}, {}});
}
void WriteBatch::delete_group(const Hash& group) {
  ops_.push_back(Entry{Op::delete_group, group, {}, 0, {}, {}});
}

// ---------------------------------------------------------------------------------------------
// The environment and its tables. A namespace-level type (Store::Impl only wraps it) so that the
// helpers below can take it without naming Store's private Impl.

namespace store_detail {

struct LmdbEnv {
  MDB_env* env = nullptr;
  std::string dir;
  std::pair<dev_t, ino_t> dir_id{};
  MDB_dbi meta = 0, events = 0, order = 0, arrival = 0, heads = 0, pending = 0, groups = 0,
          keys = 0;
  // Where LMDB mapped the file (find_map_begin): LMDB's API does not say (mdb_env_info's
  // me_mapaddr is only set with MDB_FIXEDMAP).
  std::uintptr_t map_begin = 0;

  LmdbEnv() = default;
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;
  ~LmdbEnv() {
    if (env != nullptr) {
      mdb_env_close(env);
      std::lock_guard<std::mutex> lock(open_dirs_mutex);
      open_dirs.erase(dir_id);
    }
  }

  std::size_t map_bytes() const {
    MDB_envinfo info;
    if (mdb_env_info(env, &info) != 0) return 0;
    return info.me_mapsize;
  }

  // Bytes free to us on the file system that holds the store; nullopt when it cannot be told.
  std::optional<std::uint64_t> free_bytes() const {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  }

  // Turns an LMDB or errno code into an Error a person can act on.
  Error fail(int rc, std::string_view what) const {
    std::string where = std::string(what) + ": " + mdb_strerror(rc) + " (" + dir + ")";
    switch (rc) {
      case MDB_MAP_FULL:
        // The map is a fixed address-space budget, not the disk: freeing disk space does not
        // help, raising the map size or deleting groups does.
        return Error(Errc::disk_full,
                     "database full: the store reached its map size of " +
                         std::to_string(map_bytes() / mib_bytes) + " MiB (" + dir +
                         "); raise the map size (qun node --map-mib) or leave groups, then retry");
      case ENOSPC:
      case EDQUOT:
        return disk_full(rc == EDQUOT ? "the disk quota is used up" : "no space left");
      case EIO: {
        // mdb.c turns a short write into EIO, and a short write is what a full file system
        // gives first; only a device error leaves free space behind.
        auto free = free_bytes();
        if (free && *free < disk_full_free_bytes) return disk_full("a write was cut short");
        return Error(Errc::io, where + "; check the disk (dmesg)");
      }
      case EFBIG:
        return Error(Errc::disk_full, "file too large: " + where +
                                          "; raise the file size limit (ulimit -f), then retry");
      case MDB_BAD_VALSIZE:
        return Error(Errc::invalid_argument, where);
      case MDB_TXN_FULL:
        // Too many dirty pages for one transaction: the caller should split the batch.
        return Error(Errc::too_large, where);
      case MDB_CORRUPTED:
      case MDB_PAGE_NOTFOUND:
      case MDB_INVALID:
      case MDB_VERSION_MISMATCH:
        return damaged(std::string(what) + ": " + mdb_strerror(rc));
      default:
        return Error(Errc::io, where);
    }
  }
  Error disk_full(std::string_view why) const {
    auto free = free_bytes();
    std::string left = free ? ", " + std::to_string(*free / kib_bytes) + " KiB free" : "";
    return Error(Errc::disk_full, "disk full: " + std::string(why) + " (" + dir + left +
                                      "); free space in " + dir + ", then retry");
  }
  // What a damaged file reads as, wherever it is found. The caller says what to do: open()
  // advises restoring or moving the file, the daemon repairing the group.
  Error damaged(std::string_view why) const {
    return Error(Errc::malformed,
                 "the database file " + Store::data_file(dir) + " is damaged (" + std::string(why) + ")");
  }
  Error bad_data(std::string_view what) const { return damaged(what); }

  // A value LMDB returned from a read transaction, checked to lie inside the file: LMDB trusts
  // the sizes stored in its pages, and a damaged size would let a copy run past the end of the
  // file (SIGBUS) or of the map (SIGSEGV). Values outside the map (a write transaction's dirty
  // pages) are not checked; read transactions see no such values.
  Result<ByteView> checked(const MDB_val& v, std::string_view what) const {
    MDB_envinfo info;
    MDB_stat stat;
    if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &stat) != 0)
      return Error(Errc::internal, "environment info");
    const std::uintptr_t begin = map_begin;
    const auto at = reinterpret_cast<std::uintptr_t>(v.mv_data);
    if (begin == 0 || at < begin || at - begin >= info.me_mapsize) return to_view(v);
    const std::uint64_t file_bytes = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
    if (at - begin > file_bytes || v.mv_size > file_bytes - (at - begin))
      return damaged(std::string(what) + ": a value runs past the end of the file");
    return to_view(v);
  }
};

}  // namespace store_detail

struct Store::Impl : store_detail::LmdbEnv {};

namespace {

using Env = store_detail::LmdbEnv;

// Nonzero while this thread is inside an LMDB call. LMDB keeps no checksums and trusts what its
// pages say: damaged node flags or offsets make it dereference garbage, which faults at small or
// wild addresses outside the map. A fault inside an LMDB call is the file's doing (LMDB itself is
// not where our bugs are), so exit_on_damage_fault reports it as a damaged file too.
std::atomic<int> in_lmdb{0};
struct InLmdb {
  InLmdb() { in_lmdb.fetch_add(1); }
  ~InLmdb() { in_lmdb.fetch_sub(1); }
  InLmdb(const InLmdb&) = delete;
  InLmdb& operator=(const InLmdb&) = delete;
};

// A transaction that aborts unless committed; read-only ones hold a snapshot for their life.
class Txn {
 public:
  Txn() = default;
  Txn(Txn&& o) noexcept : txn_(std::exchange(o.txn_, nullptr)) {}
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  ~Txn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  MDB_txn* get() const { return txn_; }
  // mdb_txn_commit frees the handle whether or not it succeeds.
  int commit() {
    InLmdb guard;
    return mdb_txn_commit(std::exchange(txn_, nullptr));
  }

  static int begin(MDB_env* env, bool write, Txn& out) {
    InLmdb guard;
    return mdb_txn_begin(env, nullptr, write ? 0 : MDB_RDONLY, &out.txn_);
  }

 private:
  MDB_txn* txn_ = nullptr;
};

// A cursor closed on scope exit; in a write transaction it must go before the commit.
class Cursor {
 public:
  Cursor() = default;
  Cursor(const Cursor&) = delete;
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  int open(MDB_txn* txn, MDB_dbi dbi) {
    InLmdb guard;
    return mdb_cursor_open(txn, dbi, &cursor_);
  }
  int get(MDB_val& key, MDB_val& val, MDB_cursor_op op) {
    InLmdb guard;
    return mdb_cursor_get(cursor_, &key, &val, op);
  }

 private:
  MDB_cursor* cursor_ = nullptr;
};

// Visits the entries of `dbi` whose key starts with prefix, from the first key >= start.
// visit(key, value) returns false to stop, or an Error to abort.
template <typename Visit>
Result<void> scan(const Env& impl, MDB_txn* txn, MDB_dbi dbi, ByteView prefix, ByteView start,
                  std::string_view what, Visit&& visit) {
  Cursor cursor;
  int rc = cursor.open(txn, dbi);
  if (rc != 0) return impl.fail(rc, what);
  MDB_val key = to_val(start);
  MDB_val val{};
  // LMDB rejects an empty key, so a whole-table scan starts at the first entry instead.
  for (rc = cursor.get(key, val, start.empty() ? MDB_FIRST : MDB_SET_RANGE); rc == 0;
       rc = cursor.get(key, val, MDB_NEXT)) {
    // Every scan is in a read transaction (see checked()).
    QUN_TRY_VOID(impl.checked(key, what));
    QUN_TRY_VOID(impl.checked(val, what));
    if (!has_prefix(key, prefix)) return ok_result();
    Result<bool> more = visit(key, val);
    if (!more.ok()) return more.error();
    if (!*more) return ok_result();
  }
  if (rc != MDB_NOTFOUND) return impl.fail(rc, what);
  return ok_result();
}

Result<void> put(const Env& impl, MDB_txn* txn, MDB_dbi dbi, ByteView key, ByteView value,
                 std::string_view what) {
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  int rc = 0;
  {
    InLmdb guard;
    rc = mdb_put(txn, dbi, &k, &v, 0);
  }
  if (rc != 0) return impl.fail(rc, what);
  return ok_result();
}

// Deleting something absent is not an error: removals are idempotent.
Result<void> del(const Env& impl, MDB_txn* txn, MDB_dbi dbi, ByteView key, std::string_view what) {
  MDB_val k = to_val(key);
  int rc = 0;
  {
    InLmdb guard;
    rc = mdb_del(txn, dbi, &k, nullptr);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return impl.fail(rc, what);
  return ok_result();
}

// Looks a key up; nullopt when absent. The view is valid until the transaction ends.
Result<std::optional<ByteView>> get(const Env& impl, MDB_txn* txn, MDB_dbi dbi, ByteView key,
                                    std::string_view what) {
  MDB_val k = to_val(key);
  MDB_val v{};
  int rc = 0;
  {
    InLmdb guard;
    rc = mdb_get(txn, dbi, &k, &v);
  }
  if (rc == MDB_NOTFOUND) return std::optional<ByteView>();
  if (rc != 0) return impl.fail(rc, what);
  return std::optional<ByteView>(to_view(v));
}

// get() in a read transaction, with the value checked to lie inside the file.
Result<std::optional<ByteView>> get_checked(const Env& impl, MDB_txn* txn, MDB_dbi dbi,
                                            ByteView key, std::string_view what) {
  MDB_val k = to_val(key);
  MDB_val v{};
  int rc = 0;
  {
    InLmdb guard;
    rc = mdb_get(txn, dbi, &k, &v);
  }
  if (rc == MDB_NOTFOUND) return std::optional<ByteView>();
  if (rc != 0) return impl.fail(rc, what);
  QUN_TRY(ByteView view, impl.checked(v, what));
  return std::optional<ByteView>(view);
}

// Deletes every key of `dbi` that starts with prefix. It seeks afresh after each delete rather
// than stepping a cursor past a deleted entry, which keeps it obviously correct across pages.
// on_key sees each key before it goes (for the order table, to delete the event too).
template <typename OnKey>
Result<void> delete_prefix(const Env& impl, MDB_txn* txn, MDB_dbi dbi, ByteView prefix,
                           std::string_view what, OnKey&& on_key) {
  Cursor cursor;
  int rc = cursor.open(txn, dbi);
  if (rc != 0) return impl.fail(rc, what);
  for (;;) {
    MDB_val key = to_val(prefix);
    MDB_val val{};
    rc = cursor.get(key, val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) return ok_result();
    if (rc != 0) return impl.fail(rc, what);
    if (!has_prefix(key, prefix)) return ok_result();
    // Copy the key out: the page it points into may move once we write.
    Bytes doomed(to_view(key).begin(), to_view(key).end());
    QUN_TRY_VOID(on_key(doomed));
    QUN_TRY_VOID(del(impl, txn, dbi, doomed, what));
  }
}

// The arrival sequence the group's next event gets: one past its last arrival key, else 0.
Result<std::uint64_t> next_seq(const Env& impl, MDB_txn* txn, const Hash& group) {
  constexpr std::string_view what = "arrival seek";
  Cursor cursor;
  int rc = cursor.open(txn, impl.arrival);
  if (rc != 0) return impl.fail(rc, what);
  const Bytes prefix = key_of(group);
  const Bytes last_possible = key_of(group, ~std::uint64_t{0});
  MDB_val key = to_val(last_possible);
  MDB_val val{};
  rc = cursor.get(key, val, MDB_SET_RANGE);
  if (rc == 0 && has_prefix(key, prefix)) {
    // Only the exact maximum key can match; the sequence cannot go past it.
    return Error(Errc::too_large, "arrival sequence exhausted (" + impl.dir + ")");
  }
  if (rc == 0) {
    rc = cursor.get(key, val, MDB_PREV);
  } else if (rc == MDB_NOTFOUND) {
    rc = cursor.get(key, val, MDB_LAST);
  }
  if (rc == MDB_NOTFOUND) return std::uint64_t{0};
  if (rc != 0) return impl.fail(rc, what);
  if (!has_prefix(key, prefix)) return std::uint64_t{0};
  if (key.mv_size != arrival_key_bytes) return impl.bad_data("arrival key of wrong size");
  return u64_at(key, hash_bytes) + 1;
}

Result<void> apply_put_event(const Env& impl, MDB_txn* txn, const WriteBatch::Entry& e) {
  QUN_TRY(std::optional<ByteView> existing, get(impl, txn, impl.events, e.id.view(), "get event"));
  // Events are content-addressed: the same id is the same event, so a second put changes
  // nothing, and above all does not give it a second arrival entry.
  if (existing) return ok_result();
  QUN_TRY_VOID(put(impl, txn, impl.events, e.id.view(), e.bytes, "put event"));
  QUN_TRY_VOID(put(impl, txn, impl.order, key_of(e.group, e.number, e.id), {}, "put order"));
  QUN_TRY(std::uint64_t seq, next_seq(impl, txn, e.group));
  QUN_TRY_VOID(put(impl, txn, impl.arrival, key_of(e.group, seq), e.id.view(), "put arrival"));
  return ok_result();
}

Result<void> apply_replace_event(const Env& impl, MDB_txn* txn, const WriteBatch::Entry& e) {
  QUN_TRY(std::optional<ByteView> existing, get(impl, txn, impl.events, e.id.view(), "get event"));
  if (!existing) return ok_result();
  return put(impl, txn, impl.events, e.id.view(), e.bytes, "replace event");
}

Result<void> apply_delete_group(const Env& impl, MDB_txn* txn, const Hash& group) {
  const Bytes prefix = key_of(group);
  auto keep = [](const Bytes&) { return ok_result(); };
  QUN_TRY_VOID(delete_prefix(impl, txn, impl.order, prefix, "delete order",
                             [&](const Bytes& key) -> Result<void> {
                               if (key.size() != order_key_bytes) {
                                 return impl.bad_data("order key of wrong size");
                               }
                               ByteView id(key.data() + hash_bytes + u64_bytes, hash_bytes);
                               return del(impl, txn, impl.events, id, "delete event");
                             }));
  QUN_TRY_VOID(delete_prefix(impl, txn, impl.arrival, prefix, "delete arrival", keep));
  QUN_TRY_VOID(delete_prefix(impl, txn, impl.heads, prefix, "delete heads", keep));
  QUN_TRY_VOID(delete_prefix(impl, txn, impl.pending, prefix, "delete pending", keep));
  QUN_TRY_VOID(delete_prefix(impl, txn, impl.keys, prefix, "delete keys", keep));
  QUN_TRY_VOID(del(impl, txn, impl.groups, prefix, "delete group"));
  return ok_result();
}

Result<void> apply(const Env& impl, MDB_txn* txn, const WriteBatch::Entry& e) {
  using Op = WriteBatch::Op;
  switch (e.op) {
    case Op::put_event:
      return apply_put_event(impl, txn, e);
    case Op::add_head:
      return put(impl, txn, impl.heads, key_of(e.group, e.id), {}, "put head");
    case Op::remove_head:
      return del(impl, txn, impl.heads, key_of(e.group, e.id), "delete head");
    case Op::put_pending:
      return put(impl, txn, impl.pending, key_of(e.group, e.id), e.bytes, "put pending");
    case Op::remove_pending:
      return del(impl, txn, impl.pending, key_of(e.group, e.id), "delete pending");
    case Op::put_group:
      return put(impl, txn, impl.groups, e.group.view(), e.bytes, "put group");
    case Op::put_key:
      return put(impl, txn, impl.keys, key_of(e.group, e.number, e.id), e.bytes, "put key");
    case Op::put_meta:
      if (e.name.empty()) return Error(Errc::invalid_argument, "empty meta key");
      return put(impl, txn, impl.meta, as_bytes(e.name), e.bytes, "put meta");
    case Op::delete_group:
      return apply_delete_group(impl, txn, e.group);
    case Op::delete_event:
      return del(impl, txn, impl.events, e.id.view(), "delete event");
    case Op::replace_event:
      return apply_replace_event(impl, txn, e);
  }
  return Error(Errc::internal, "unknown batch operation");
}

Error io_error(const std::string& dir, std::string_view what, int err) {
  return Error(Errc::io, std::string(what) + ": " + std::strerror(err) + " (" + dir + ")");
}

// Creates the directory (and any missing parents) and checks that it is one.
Result<std::pair<dev_t, ino_t>> prepare_dir(const std::string& dir) {
  if (dir.empty()) return Error(Errc::invalid_argument, "empty store directory");
  std::filesystem::path path(dir);
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    // A failure here shows up more precisely at the mkdir below.
  }
  if (::mkdir(dir.c_str(), dir_mode) != 0 && errno != EEXIST) {
    return io_error(dir, "cannot create the store directory", errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return io_error(dir, "cannot stat the store directory", errno);
  if (!S_ISDIR(st.st_mode)) return io_error(dir, "the store path is not a directory", ENOTDIR);
  return std::pair<dev_t, ino_t>(st.st_dev, st.st_ino);
}

// Reads `bytes` at `offset` in full; false on a short read (the file ends first) or an error.
bool read_at(int fd, std::uint64_t offset, std::uint8_t* out, std::size_t bytes) {
  while (bytes > 0) {
    ssize_t n = ::pread(fd, out, bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out += n;
    offset += static_cast<std::uint64_t>(n);
    bytes -= static_cast<std::size_t>(n);
  }
  return true;
}

template <typename T>
T native_at(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Checks an existing data file before LMDB maps it: both meta pages read and valid, and the
// file as long as the newer meta page's last page says (see the layout above). LMDB maps the
// file and reads pages through the map, so a shorter file would end the process with SIGBUS.
// The error says what is wrong in the words of damaged(); a missing file is fine (a new store).
Result<void> check_data_file(const Env& impl) {
  const std::string path = Store::data_file(impl.dir);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return ok_result();
    return io_error(impl.dir, "cannot open " + path, errno);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return io_error(impl.dir, "cannot stat " + path, errno);
  const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
  // A store is created with both meta pages written, so an empty file was cut, not made.
  if (file_bytes == 0) return impl.damaged("it is empty");
  struct Meta {
    std::uint32_t page_bytes;
    std::uint64_t last_page;
    std::uint64_t txnid;
  };
  auto read_meta = [&](std::uint64_t offset, int index) -> Result<Meta> {
    std::uint8_t page[meta_read_bytes];
    const std::string which = "meta page " + std::to_string(index);
    if (!read_at(fd, offset, page, sizeof page))
      return impl.damaged("truncated to " + std::to_string(file_bytes) + " bytes, inside " + which);
    if ((native_at<std::uint16_t>(page + page_flags_at) & page_flag_meta) == 0 ||
        native_at<std::uint32_t>(page + meta_magic_at) != meta_magic)
      return impl.damaged(which + " is not an LMDB meta page");
    if (native_at<std::uint32_t>(page + meta_version_at) != meta_data_version)
      return impl.damaged(which + " has an unknown LMDB format version");
    Meta m{native_at<std::uint32_t>(page + meta_page_size_at),
           native_at<std::uint64_t>(page + meta_last_page_at),
           native_at<std::uint64_t>(page + meta_txnid_at)};
    if (m.page_bytes < page_bytes_min || m.page_bytes > page_bytes_max ||
        (m.page_bytes & (m.page_bytes - 1)) != 0)
      return impl.damaged(which + " names an impossible page size");
    return m;
  };
  QUN_TRY(Meta first, read_meta(0, 0));
  QUN_TRY(Meta second, read_meta(first.page_bytes, 1));
  // LMDB uses the meta page with the larger transaction id (page 0 on a tie).
  const Meta& newer = second.txnid > first.txnid ? second : first;
  if (newer.last_page > (std::numeric_limits<std::uint64_t>::max() / newer.page_bytes) - 1)
    return impl.damaged("its meta page names an impossible last page");
  const std::uint64_t needed_bytes = (newer.last_page + 1) * newer.page_bytes;
  if (file_bytes < needed_bytes)
    return impl.damaged("truncated: " + std::to_string(file_bytes) + " bytes of the " +
                        std::to_string(needed_bytes) + " its last commit wrote");
  return ok_result();
}

// The fault handler's state: whether it is installed, the prefix, the line to print and the
// map range of the last store opened, set outside the handler and only read in it
// (async-signal-safe: atomics, write, _exit). The line is written before the range is
// published, and a fault before any store is open prints the prefix and a generic line.
constexpr std::size_t fault_line_bytes_max = 1024;
struct MapFault {
  std::atomic<bool> armed{false};
  std::atomic<std::uintptr_t> begin{0};
  std::atomic<std::uintptr_t> end{0};
  std::string prefix;
  char line[fault_line_bytes_max] = {};
  std::atomic<std::size_t> line_bytes{0};
  struct sigaction previous_bus {};
  struct sigaction previous_segv {};
};
MapFault map_fault;

void on_map_fault(int signum, siginfo_t* info, void* context) {
  const auto at = reinterpret_cast<std::uintptr_t>(info->si_addr);
  if (in_lmdb.load() > 0 || (at >= map_fault.begin.load() && at < map_fault.end.load())) {
    ssize_t ignored = ::write(STDERR_FILENO, map_fault.line, map_fault.line_bytes.load());
    (void)ignored;
    ::_exit(map_fault_exit_status);
  }
  // Not the store's doing: whoever handled the signal before us does (or the default action,
  // once the faulting instruction runs again with the previous handler in place).
  const struct sigaction& previous =
      signum == SIGBUS ? map_fault.previous_bus : map_fault.previous_segv;
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(signum, info, context);
    return;
  }
  ::sigaction(signum, &previous, nullptr);
}

// The line the handler prints for the store in `dir`.
void set_fault_line(const std::string& dir) {
  const std::string line =
      map_fault.prefix + "the database file " + Store::data_file(dir) +
      " is damaged, or was truncated while in use (reading it faulted); restore it from a " +
      "backup, or move " + dir + " aside and start again\n";
  const std::size_t n = std::min(line.size(), fault_line_bytes_max);
  map_fault.line_bytes.store(0);
  std::memcpy(map_fault.line, line.data(), n);
  map_fault.line_bytes.store(n);
}

// Finds where LMDB mapped the file, from a value it returns in a read transaction: a value
// stored inline lies in its leaf page, the map starts page-aligned (mmap) and LMDB's page size
// is the OS page size, so the page starts at the value's address rounded down, and its header's
// first 8 bytes are its page number. Checked against the file's last page.
Result<void> find_map_begin(Env& impl) {
  Txn txn;
  int rc = Txn::begin(impl.env, false, txn);
  if (rc != 0) return impl.fail(rc, "begin a read transaction");
  QUN_TRY(std::optional<ByteView> v,
          get(impl, txn.get(), impl.meta, as_bytes(schema_key), "read the schema version"));
  MDB_envinfo info;
  MDB_stat stat;
  if (!v || mdb_env_info(impl.env, &info) != 0 || mdb_env_stat(impl.env, &stat) != 0)
    return impl.damaged("the schema version does not read");
  const std::uintptr_t page_bytes = stat.ms_psize;
  const auto at = reinterpret_cast<std::uintptr_t>(v->data());
  const std::uintptr_t page = at & ~(page_bytes - 1);
  // The page is within the file: open() checked the file's length against its last page, and
  // this value was found through LMDB's checked page numbers.
  const auto pgno = native_at<std::uint64_t>(reinterpret_cast<const std::uint8_t*>(page));
  if (pgno > info.me_last_pgno || pgno * page_bytes > page)
    return impl.damaged("the page holding the schema version names a wrong page number");
  // Confirmed only if the two meta pages are where that puts them (both are inside the file).
  // A map that is not aligned to LMDB's page size (a file made where pages are larger than
  // here) fails this; then the checks that need the map's place are off (map_begin stays 0)
  // rather than wrong, and only the checks inside LMDB calls remain.
  const std::uintptr_t begin = page - pgno * page_bytes;
  for (std::uintptr_t meta = 0; meta < 2; ++meta) {
    const auto* at_meta = reinterpret_cast<const std::uint8_t*>(begin + meta * page_bytes);
    if (native_at<std::uint64_t>(at_meta) != meta ||
        native_at<std::uint32_t>(at_meta + meta_magic_at) != meta_magic)
      return ok_result();
  }
  impl.map_begin = begin;
  return ok_result();
}

// Opens every table and checks or writes the schema version, in one write transaction.
Result<void> init_tables(Env& impl) {
  Txn txn;
  int rc = Txn::begin(impl.env, true, txn);
  if (rc != 0) return impl.fail(rc, "begin the opening transaction");
  const std::pair<const char*, MDB_dbi*> tables[] = {
      {"meta", &impl.meta},       {"events", &impl.events}, {"order", &impl.order},
      {"arrival", &impl.arrival}, {"heads", &impl.heads},   {"pending", &impl.pending},
      {"groups", &impl.groups},   {"keys", &impl.keys},
  };
  static_assert(std::size(tables) == named_dbs_max);
  for (const auto& [name, dbi] : tables) {
    {
      InLmdb guard;
      rc = mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi);
    }
    if (rc != 0) return impl.fail(rc, std::string("open table ") + name);
  }
  QUN_TRY(std::optional<ByteView> stored,
          get(impl, txn.get(), impl.meta, as_bytes(schema_key), "read the schema version"));
  if (!stored) {
    Bytes value;
    for (int shift = 24; shift >= 0; shift -= 8) {
      value.push_back(static_cast<std::uint8_t>(store_schema_version >> shift));
    }
    QUN_TRY_VOID(
        put(impl, txn.get(), impl.meta, as_bytes(schema_key), value, "write the schema version"));
  } else {
    if (stored->size() != schema_value_bytes) return impl.bad_data("schema version of wrong size");
    std::uint32_t version = 0;
    for (std::uint8_t b : *stored) version = (version << 8) | b;
    if (version != store_schema_version) {
      return Error(Errc::version_mismatch,
                   "database schema " + std::to_string(version) + ", this qun reads " +
                       std::to_string(store_schema_version) + " (" + impl.dir + ")");
    }
  }
  rc = txn.commit();
  if (rc != 0) return impl.fail(rc, "commit the opening transaction");
  return ok_result();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Store

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::string& dir, const StoreOptions& options) {
  if (options.map_bytes == 0) return Error(Errc::invalid_argument, "map size of zero");
  QUN_TRY(auto dir_id, prepare_dir(dir));
  {
    std::lock_guard<std::mutex> lock(open_dirs_mutex);
    if (!open_dirs.insert(dir_id).second) {
      return Error(Errc::io, "the store is already open in this process (" + dir + ")");
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->dir_id = dir_id;
  int rc = mdb_env_create(&impl->env);
  if (rc != 0) {
    impl->env = nullptr;
    std::lock_guard<std::mutex> lock(open_dirs_mutex);
    open_dirs.erase(dir_id);
    return impl->fail(rc, "create the environment");
  }
  if (map_fault.armed.load()) set_fault_line(dir);
  // From here the Impl destructor closes the environment and releases the directory.
  auto refuse = [&](const Error& e) {
    if (e.code() != Errc::malformed) return e;
    return Error(e.code(), e.context() + "; restore it from a backup, or move " + dir +
                               " aside and start again (the node then starts with no groups)");
  };
  if (auto checked = check_data_file(*impl); !checked.ok()) return refuse(checked.error());
  rc = mdb_env_set_maxdbs(impl->env, named_dbs_max);
  if (rc != 0) return impl->fail(rc, "set the table count");
  rc = mdb_env_set_mapsize(impl->env, options.map_bytes);
  if (rc != 0) return impl->fail(rc, "set the map size");
  // MDB_NOTLS ties read slots to transactions, not threads, so that a visitor may read the
  // store (get_event inside for_each_arrival) while the outer read transaction is open. Sync on
  // commit stays on: commit() returning ok means the batch is on disk.
  rc = mdb_env_open(impl->env, dir.c_str(), MDB_NOTLS, file_mode);
  if (rc != 0) return refuse(impl->fail(rc, "open the database"));
  // A process killed during a read leaves its reader slot behind; reclaim such slots so they
  // neither run out nor pin old pages forever.
  int dead = 0;
  rc = mdb_reader_check(impl->env, &dead);
  if (rc != 0) return impl->fail(rc, "check stale readers");
  if (auto tables = init_tables(*impl); !tables.ok()) return refuse(tables.error());
  if (auto found = find_map_begin(*impl); !found.ok()) return refuse(found.error());
  if (map_fault.armed.load()) {
    MDB_envinfo info;
    if (mdb_env_info(impl->env, &info) == 0) {
      map_fault.begin.store(impl->map_begin);
      map_fault.end.store(impl->map_begin + info.me_mapsize);
    }
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<void> Store::commit(const WriteBatch& batch) {
  if (batch.empty()) return ok_result();
  Txn txn;
  int rc = Txn::begin(impl_->env, true, txn);
  if (rc != 0) return impl_->fail(rc, "begin a write transaction");
  for (const WriteBatch::Entry& e : batch.entries()) {
    // On any failure the Txn destructor aborts: nothing of the batch is applied.
    QUN_TRY_VOID(apply(*impl_, txn.get(), e));
  }
  rc = txn.commit();
  if (rc != 0) return impl_->fail(rc, "commit");
  return ok_result();
}

Result<std::optional<Bytes>> Store::get_event(const Hash& id) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  QUN_TRY(std::optional<ByteView> v, get_checked(*impl_, txn.get(), impl_->events, id.view(), "get event"));
  if (!v) return std::optional<Bytes>();
  return std::optional<Bytes>(Bytes(v->begin(), v->end()));
}

Result<bool> Store::has_event(const Hash& id) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  QUN_TRY(std::optional<ByteView> v, get_checked(*impl_, txn.get(), impl_->events, id.view(), "get event"));
  return v.has_value();
}

Result<void> Store::for_each_event(const Hash& group, const EventVisitor& visit) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  const Bytes prefix = key_of(group);
  return scan(*impl_, txn.get(), impl_->order, prefix, prefix, "scan order",
              [&](const MDB_val& key, const MDB_val&) -> Result<bool> {
                if (key.mv_size != order_key_bytes)
                  return impl_->bad_data("order key of wrong size");
                const Hash id = hash_at(key, hash_bytes + u64_bytes);
                QUN_TRY(std::optional<ByteView> encoded,
                        get_checked(*impl_, txn.get(), impl_->events, id.view(), "get event"));
                if (!encoded) return impl_->bad_data("order entry without its event");
                return visit(id, u64_at(key, hash_bytes), *encoded);
              });
}

Result<void> Store::for_each_stored_event(const StoredEventVisitor& visit) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  return scan(*impl_, txn.get(), impl_->events, {}, {}, "scan events",
              [&](const MDB_val& key, const MDB_val& val) -> Result<bool> {
                if (key.mv_size != hash_bytes) return impl_->bad_data("event key of wrong size");
                return visit(hash_at(key, 0), to_view(val));
              });
}

Result<void> Store::for_each_arrival(const Hash& group, std::uint64_t from_seq,
                                     const ArrivalVisitor& visit) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  const Bytes prefix = key_of(group);
  return scan(*impl_, txn.get(), impl_->arrival, prefix, key_of(group, from_seq), "scan arrival",
              [&](const MDB_val& key, const MDB_val& val) -> Result<bool> {
                if (key.mv_size != arrival_key_bytes) {
                  return impl_->bad_data("arrival key of wrong size");
                }
                if (val.mv_size != hash_bytes) return impl_->bad_data("arrival id of wrong size");
                return visit(u64_at(key, hash_bytes), hash_at(val, 0));
              });
}

Result<std::uint64_t> Store::event_count(const Hash& group) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  const Bytes prefix = key_of(group);
  std::uint64_t count = 0;
  QUN_TRY_VOID(scan(*impl_, txn.get(), impl_->order, prefix, prefix, "count order",
                    [&](const MDB_val&, const MDB_val&) -> Result<bool> {
                      ++count;
                      return true;
                    }));
  return count;
}

Result<std::vector<Hash>> Store::heads(const Hash& group) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  const Bytes prefix = key_of(group);
  std::vector<Hash> out;
  QUN_TRY_VOID(scan(*impl_, txn.get(), impl_->heads, prefix, prefix, "scan heads",
                    [&](const MDB_val& key, const MDB_val&) -> Result<bool> {
                      if (key.mv_size != pair_key_bytes) {
                        return impl_->bad_data("head key of wrong size");
                      }
                      out.push_back(hash_at(key, hash_bytes));
                      return true;
                    }));
  return out;
}

Result<std::vector<std::pair<Hash, Bytes>>> Store::pending(const Hash& group) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  const Bytes prefix = key_of(group);
  std::vector<std::pair<Hash, Bytes>> out;
  QUN_TRY_VOID(scan(*impl_, txn.get(), impl_->pending, prefix, prefix, "scan pending",
                    [&](const MDB_val& key, const MDB_val& val) -> Result<bool> {
                      if (key.mv_size != pair_key_bytes) {
                        return impl_->bad_data("pending key of wrong size");
                      }
                      ByteView v = to_view(val);
                      out.emplace_back(hash_at(key, hash_bytes), Bytes(v.begin(), v.end()));
                      return true;
                    }));
  return out;
}

Result<std::optional<Bytes>> Store::get_group(const Hash& group) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  QUN_TRY(std::optional<ByteView> v,
          get_checked(*impl_, txn.get(), impl_->groups, group.view(), "get group"));
  if (!v) return std::optional<Bytes>();
  return std::optional<Bytes>(Bytes(v->begin(), v->end()));
}

Result<std::vector<Hash>> Store::groups() const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  std::vector<Hash> out;
  QUN_TRY_VOID(scan(*impl_, txn.get(), impl_->groups, {}, {}, "scan groups",
                    [&](const MDB_val& key, const MDB_val&) -> Result<bool> {
                      if (key.mv_size != hash_bytes) {
                        return impl_->bad_data("group key of wrong size");
                      }
                      out.push_back(hash_at(key, 0));
                      return true;
                    }));
  return out;
}

Result<std::vector<StoredKey>> Store::keys(const Hash& group) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  const Bytes prefix = key_of(group);
  std::vector<StoredKey> out;
  QUN_TRY_VOID(scan(*impl_, txn.get(), impl_->keys, prefix, prefix, "scan keys",
                    [&](const MDB_val& key, const MDB_val& val) -> Result<bool> {
                      if (key.mv_size != keys_key_bytes) {
                        return impl_->bad_data("epoch key entry of wrong size");
                      }
                      ByteView v = to_view(val);
                      out.push_back(StoredKey{u64_at(key, hash_bytes),
                                              hash_at(key, hash_bytes + u64_bytes),
                                              Bytes(v.begin(), v.end())});
                      return true;
                    }));
  return out;
}

Result<std::optional<Bytes>> Store::get_meta(const std::string& key) const {
  if (key.empty()) return Error(Errc::invalid_argument, "empty meta key");
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  QUN_TRY(std::optional<ByteView> v,
          get_checked(*impl_, txn.get(), impl_->meta, as_bytes(key), "get meta"));
  if (!v) return std::optional<Bytes>();
  return std::optional<Bytes>(Bytes(v->begin(), v->end()));
}

Result<std::uint64_t> Store::used_bytes() const {
  MDB_envinfo info;
  int rc = mdb_env_info(impl_->env, &info);
  if (rc != 0) return impl_->fail(rc, "environment info");
  MDB_stat stat;
  rc = mdb_env_stat(impl_->env, &stat);
  if (rc != 0) return impl_->fail(rc, "environment stat");
  // Pages up to the highest one in use, free-list pages included: what the file must hold.
  return (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
}

Result<std::vector<Hash>> Store::groups_with_events() const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  std::set<Hash> found;
  // One seek per group: after a group's first key, jump past every key with its prefix.
  for (MDB_dbi dbi : {impl_->order, impl_->arrival}) {
    Cursor cursor;
    rc = cursor.open(txn.get(), dbi);
    if (rc != 0) return impl_->fail(rc, "scan groups with events");
    MDB_val key{}, val{};
    for (rc = cursor.get(key, val, MDB_FIRST); rc == 0;) {
      QUN_TRY(ByteView k, impl_->checked(key, "scan groups with events"));
      if (k.size() < hash_bytes) return impl_->bad_data("group key of wrong size");
      const Hash group = hash_at(key, 0);
      found.insert(group);
      // The smallest key after every key of this group: its id plus one, as a big number.
      Bytes next = key_of(group);
      std::size_t i = next.size();
      while (i > 0 && ++next[i - 1] == 0) --i;
      if (i == 0) break;  // the all-0xff group was the last possible one
      key = to_val(next);
      rc = cursor.get(key, val, MDB_SET_RANGE);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return impl_->fail(rc, "scan groups with events");
  }
  return std::vector<Hash>(found.begin(), found.end());
}

void Store::exit_on_damage_fault(std::string_view prefix) {
  if (map_fault.armed.exchange(true)) return;
  map_fault.prefix = std::string(prefix);
  const std::string generic = map_fault.prefix + "the database is damaged (reading it faulted)\n";
  const std::size_t n = std::min(generic.size(), fault_line_bytes_max);
  std::memcpy(map_fault.line, generic.data(), n);
  map_fault.line_bytes.store(n);
  struct sigaction action {};
  action.sa_sigaction = on_map_fault;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGBUS, &action, &map_fault.previous_bus);
  ::sigaction(SIGSEGV, &action, &map_fault.previous_segv);
}

}  // namespace qun
