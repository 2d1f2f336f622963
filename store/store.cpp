// Store over LMDB: see store.h for the tables and the contract.
//
// Every LMDB call's return code is checked and turned into an Error; nothing here throws or
// asserts on what is read from disk, because a damaged file is an operating error, not a bug.
#include "store/store.h"

#include <lmdb.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>
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

  // Turns an LMDB or errno code into an Error a person can act on.
  Error fail(int rc, std::string_view what) const {
    std::string where = std::string(what) + ": " + mdb_strerror(rc) + " (" + dir + ")";
    switch (rc) {
      case MDB_MAP_FULL:
        // The map is a fixed address-space budget, not the disk: freeing disk space does not
        // help, raising the map size or deleting groups does.
        return Error(Errc::disk_full,
                     "the database is full (map size " + std::to_string(map_bytes() / mib_bytes) +
                         " MiB); raise the map size or delete groups (" + dir + ")");
      case ENOSPC:
        return Error(Errc::disk_full, "the disk is full; free disk space (" + where + ")");
      case MDB_BAD_VALSIZE:
        return Error(Errc::invalid_argument, where);
      case MDB_TXN_FULL:
        // Too many dirty pages for one transaction: the caller should split the batch.
        return Error(Errc::too_large, where);
      case MDB_CORRUPTED:
      case MDB_PAGE_NOTFOUND:
      case MDB_INVALID:
        return Error(Errc::malformed, where);
      default:
        return Error(Errc::io, where);
    }
  }
  Error bad_data(std::string_view what) const {
    return Error(Errc::malformed, std::string(what) + " (" + dir + ")");
  }
};

}  // namespace store_detail

struct Store::Impl : store_detail::LmdbEnv {};

namespace {

using Env = store_detail::LmdbEnv;

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
  int commit() { return mdb_txn_commit(std::exchange(txn_, nullptr)); }

  static int begin(MDB_env* env, bool write, Txn& out) {
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
  int open(MDB_txn* txn, MDB_dbi dbi) { return mdb_cursor_open(txn, dbi, &cursor_); }
  int get(MDB_val& key, MDB_val& val, MDB_cursor_op op) {
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
  int rc = mdb_put(txn, dbi, &k, &v, 0);
  if (rc != 0) return impl.fail(rc, what);
  return ok_result();
}

// Deleting something absent is not an error: removals are idempotent.
Result<void> del(const Env& impl, MDB_txn* txn, MDB_dbi dbi, ByteView key, std::string_view what) {
  MDB_val k = to_val(key);
  int rc = mdb_del(txn, dbi, &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) return impl.fail(rc, what);
  return ok_result();
}

// Looks a key up; nullopt when absent. The view is valid until the transaction ends.
Result<std::optional<ByteView>> get(const Env& impl, MDB_txn* txn, MDB_dbi dbi, ByteView key,
                                    std::string_view what) {
  MDB_val k = to_val(key);
  MDB_val v{};
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<ByteView>();
  if (rc != 0) return impl.fail(rc, what);
  return std::optional<ByteView>(to_view(v));
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
    rc = mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi);
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
  // From here the Impl destructor closes the environment and releases the directory.
  rc = mdb_env_set_maxdbs(impl->env, named_dbs_max);
  if (rc != 0) return impl->fail(rc, "set the table count");
  rc = mdb_env_set_mapsize(impl->env, options.map_bytes);
  if (rc != 0) return impl->fail(rc, "set the map size");
  // MDB_NOTLS ties read slots to transactions, not threads, so that a visitor may read the
  // store (get_event inside for_each_arrival) while the outer read transaction is open. Sync on
  // commit stays on: commit() returning ok means the batch is on disk.
  rc = mdb_env_open(impl->env, dir.c_str(), MDB_NOTLS, file_mode);
  if (rc != 0) return impl->fail(rc, "open the database");
  // A process killed during a read leaves its reader slot behind; reclaim such slots so they
  // neither run out nor pin old pages forever.
  int dead = 0;
  rc = mdb_reader_check(impl->env, &dead);
  if (rc != 0) return impl->fail(rc, "check stale readers");
  QUN_TRY_VOID(init_tables(*impl));
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
  QUN_TRY(std::optional<ByteView> v, get(*impl_, txn.get(), impl_->events, id.view(), "get event"));
  if (!v) return std::optional<Bytes>();
  return std::optional<Bytes>(Bytes(v->begin(), v->end()));
}

Result<bool> Store::has_event(const Hash& id) const {
  Txn txn;
  int rc = Txn::begin(impl_->env, false, txn);
  if (rc != 0) return impl_->fail(rc, "begin a read transaction");
  QUN_TRY(std::optional<ByteView> v, get(*impl_, txn.get(), impl_->events, id.view(), "get event"));
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
                        get(*impl_, txn.get(), impl_->events, id.view(), "get event"));
                if (!encoded) return impl_->bad_data("order entry without its event");
                return visit(id, u64_at(key, hash_bytes), *encoded);
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
          get(*impl_, txn.get(), impl_->groups, group.view(), "get group"));
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
          get(*impl_, txn.get(), impl_->meta, as_bytes(key), "get meta"));
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

}  // namespace qun
