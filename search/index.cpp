#include "search/index.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <map>

#include "base/utf8.h"

namespace qun::search {
namespace {

// The prepared statements, by index into Index::stmts_.
enum Stmt {
  find_by_idp,
  max_slot,
  insert_post,
  insert_doc,
  update_channel,
  update_doc,
  delete_post,
  delete_doc,
  group_rows,
  doc_body,
  post_by_rid,
  distinct_groups,
  count_all,
  count_group,
  scan_docs,
  stmt_count,
};

const char* const stmt_sql[stmt_count] = {
    "SELECT rid, id, channel FROM posts WHERE idp = ?1",
    "SELECT max(rid) FROM posts WHERE rid BETWEEN ?1 AND ?2",
    "INSERT INTO posts(rid, idp, id, grp, channel, author, time_ms) VALUES(?1,?2,?3,?4,?5,?6,?7)",
    "INSERT INTO docs(rowid, body) VALUES(?1, ?2)",
    "UPDATE posts SET channel = ?2 WHERE rid = ?1",
    "UPDATE docs SET body = ?2 WHERE rowid = ?1",
    "DELETE FROM posts WHERE rid = ?1",
    "DELETE FROM docs WHERE rowid = ?1",
    "SELECT rid, id, channel FROM posts WHERE grp = ?1 ORDER BY rid DESC",
    "SELECT body FROM docs WHERE rowid = ?1",
    "SELECT id, grp, channel, author, time_ms FROM posts WHERE rid = ?1",
    "SELECT DISTINCT grp FROM posts",
    "SELECT count(*) FROM posts",
    "SELECT count(*) FROM posts WHERE grp = ?1",
    "SELECT rowid, body FROM docs ORDER BY rowid DESC",
};

// FTS5's leaf size (its pgsz). A leaf is written once it passes this, so it can run over by
// one term's entry: 384 bytes of room keep leaves within a page of fts_page_bytes rather than
// spilling to an overflow page (FTS5's default is 4050 in SQLite's default 4096).
constexpr int fts_leaf_bytes = fts_page_bytes - 384;
static_assert(fts_leaf_bytes > 0 && fts_leaf_bytes < fts_page_bytes);

// The schema. posts holds what a result shows besides the text, by rowid; docs is the FTS5
// table with the trigram tokenizer that holds the text, under the same rowid. (FTS5's
// "external content" form, the text kept once in posts, indexes four times slower here:
// search_bench.) idp, the first 8 bytes of the id, finds a post by id with a small index.
// columnsize=0: FTS5 keeps no per-row token counts (a table beside the index, written for
// every post), which only its ranking functions read; results here come by rowid, unranked.
// FTS5's leaf pages fill the file's pages (fts_leaf_bytes), and its pending terms flush at
// fts_pending_bytes_max.
const std::string schema_sql =
    "CREATE TABLE posts(rid INTEGER PRIMARY KEY, idp INTEGER NOT NULL, id BLOB NOT NULL,"
    " grp BLOB NOT NULL, channel BLOB NOT NULL, author BLOB NOT NULL, time_ms INTEGER NOT NULL);"
    "CREATE INDEX posts_idp ON posts(idp);"
    "CREATE INDEX posts_grp ON posts(grp);"
    "CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='trigram', columnsize=0);"
    "INSERT INTO docs(docs, rank) VALUES('pgsz', " +
    std::to_string(fts_leaf_bytes) +
    ");"
    "INSERT INTO docs(docs, rank) VALUES('hashsize', " +
    std::to_string(fts_pending_bytes_max) + ");";

// Set on every open: page_size only takes effect on a new, empty file (before WAL is on).
// synchronous=OFF: the index is derived data; a file a crash damaged is rebuilt (Damage).
const std::string pragmas_sql = "PRAGMA page_size=" + std::to_string(fts_page_bytes) +
                                "; PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
                                " PRAGMA cache_size=-" +
                                std::to_string(cache_bytes / 1024) + ";";

Errc errc_of(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Errc::malformed;
    case SQLITE_FULL:
      return Errc::disk_full;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return Errc::io;
    default:
      return Errc::internal;
  }
}

Error sqlite_error(sqlite3* db, int rc, const std::string& what) {
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error(errc_of(rc), what + ": " + (msg ? msg : sqlite3_errstr(rc)));
}

template <typename Fixed>
void bind_fixed(sqlite3_stmt* s, int i, const Fixed& b) {
  sqlite3_bind_blob(s, i, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
}

template <typename Fixed>
Fixed column_fixed(sqlite3_stmt* s, int i) {
  Fixed out;
  const void* p = sqlite3_column_blob(s, i);
  if (p && static_cast<std::size_t>(sqlite3_column_bytes(s, i)) == out.size())
    std::memcpy(out.data(), p, out.size());
  return out;
}

std::string column_text(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

// Resets a statement when it goes out of scope, so it never holds a read lock past its use.
struct Reset {
  sqlite3_stmt* s;
  ~Reset() {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
};

bool is_space(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
         c == 0xA0 || c == 0x3000;  // no-break space, ideographic space
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Whether `text` contains `folded` (ASCII lowercase), ASCII case folded, without copying.
bool contains_folded(std::string_view text, std::string_view folded) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return std::search(text.begin(), text.end(), folded.begin(), folded.end(),
                     [&](char a, char b) { return lower(a) == b; }) != text.end();
}

std::string_view column_view(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  return p ? std::string_view(reinterpret_cast<const char*>(p),
                              static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
           : std::string_view();
}

std::int64_t id_prefix(const Hash& id) {
  std::int64_t v;
  std::memcpy(&v, id.data(), sizeof v);
  return v;
}

std::int64_t rowid_base(std::uint64_t order_key) {
  return static_cast<std::int64_t>(std::min(order_key, order_key_max) << rowid_slot_bits);
}

// An FTS5 phrase: the term in double quotes, its own quotes doubled.
std::string fts_phrase(const std::string& term) {
  std::string out = "\"";
  for (char c : term) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<std::vector<Term>> parse_query(std::string_view text) {
  if (text.size() > query_bytes_max)
    return Error(Errc::too_large, "the search is too long: " + std::to_string(text.size()) +
                                      " bytes, at most " + std::to_string(query_bytes_max));
  const std::string valid = utf8::make_valid(text);
  std::vector<Term> terms;
  std::string cur;
  std::size_t chars = 0;
  auto flush = [&]() -> Result<void> {
    if (cur.empty()) return ok_result();
    if (terms.size() == query_terms_max)
      return Error(Errc::too_large,
                   "the search has too many words: at most " + std::to_string(query_terms_max));
    terms.push_back(Term{std::move(cur), chars < 3});
    cur.clear();
    chars = 0;
    return ok_result();
  };
  for (std::size_t pos = 0; pos < valid.size();) {
    const std::size_t start = pos;
    const char32_t c = utf8::next(valid, pos);
    if (is_space(c) || utf8::is_control(c)) {
      QUN_TRY_VOID(flush());
      continue;
    }
    cur.append(valid, start, pos - start);
    ++chars;
  }
  QUN_TRY_VOID(flush());
  if (terms.empty()) return Error(Errc::invalid_argument, "nothing to search for");
  return terms;
}

std::string make_snippet(std::string_view text, const std::vector<Term>& terms) {
  const std::string folded = ascii_lower(text);
  std::size_t at = std::string::npos;
  for (const auto& t : terms) {
    const std::size_t f = folded.find(ascii_lower(t.text));
    if (f < at) at = f;
  }
  if (at == std::string::npos) at = 0;
  // Up to a quarter of the snippet before the match, so the match shows near its start.
  std::vector<std::size_t> starts;  // code point starts before `at`
  for (std::size_t pos = 0; pos < at;) {
    starts.push_back(pos);
    (void)utf8::next(text, pos);
  }
  const std::size_t before = std::min(starts.size(), snippet_chars_max / 4);
  const std::size_t begin = before > 0 ? starts[starts.size() - before] : at;
  std::string out = begin > 0 ? "…" : "";
  std::size_t pos = begin, chars = 0;
  while (pos < text.size() && chars < snippet_chars_max) {
    const std::size_t s = pos;
    const char32_t c = utf8::next(text, pos);
    if (c == '\n' || c == '\r' || c == '\t') out += ' ';
    else out.append(text.substr(s, pos - s));
    ++chars;
  }
  if (pos < text.size()) out += "…";
  return out;
}

Result<std::unique_ptr<Index>> Index::open(const std::string& path) {
  std::optional<std::string> why;
  for (int attempt = 0; attempt < 2; ++attempt) {
    struct stat st {};
    const bool existed = ::stat(path.c_str(), &st) == 0;
    if (!existed) why = why.value_or("created");
    // Created 0600 before SQLite sees it: posts are plaintext. SQLite gives its journal files
    // the database file's mode.
    int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return Error(Errc::io, "cannot create " + path + ": " + std::strerror(errno));
    ::fchmod(fd, 0600);
    ::close(fd);
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    std::unique_ptr<Index> index(new Index(db));
    if (rc != SQLITE_OK) return sqlite_error(db, rc, "cannot open " + path);
    sqlite3_extended_result_codes(db, 0);
    // What to rebuild from: a damaged file, or another schema.
    std::optional<std::string> rebuild;
    rc = sqlite3_exec(db, pragmas_sql.c_str(), nullptr, nullptr, nullptr);
    int version = -1;
    if (rc == SQLITE_OK) {
      sqlite3_stmt* s = nullptr;
      rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr);
      if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        version = sqlite3_column_int(s, 0);
        rc = SQLITE_OK;
      }
      sqlite3_finalize(s);
    }
    if (rc != SQLITE_OK) {
      if (errc_of(rc) != Errc::malformed) return sqlite_error(db, rc, "cannot read " + path);
      rebuild = std::string("damaged (") + sqlite3_errstr(rc) + ")";
    } else if (version == 0) {
      // Empty (just created): make the schema.
      rc = sqlite3_exec(db, schema_sql.c_str(), nullptr, nullptr, nullptr);
      if (rc != SQLITE_OK) {
        if (errc_of(rc) == Errc::malformed) {
          rebuild = std::string("damaged (") + sqlite3_errstr(rc) + ")";
        } else {
          return Error(errc_of(rc) == Errc::internal ? Errc::internal : errc_of(rc),
                       "cannot create the search index " + path +
                           " (SQLite with FTS5 and its trigram tokenizer, 3.34 or later, is "
                           "needed): " + sqlite3_errmsg(db));
        }
      } else {
        rc = sqlite3_exec(db, ("PRAGMA user_version=" + std::to_string(schema_version)).c_str(),
                          nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) return sqlite_error(db, rc, "cannot write " + path);
        why = why.value_or("created");
      }
    } else if (version != schema_version) {
      rebuild = "schema " + std::to_string(version) + " is not " + std::to_string(schema_version);
    }
    if (!rebuild) {
      auto prepared = index->prepare();
      if (prepared.ok()) {
        // Touch the tables, so that damage in their first pages shows now, not at the first post.
        auto n = index->size();
        if (n.ok()) {
          index->rebuilt_because_ = why;
          return index;
        }
        prepared = n.error();
      }
      if (prepared.error().code() != Errc::malformed) return prepared.error();
      rebuild = "damaged (" + prepared.error().context() + ")";
    }
    if (attempt == 1) break;
    index.reset();
    remove_files(path);
    why = *rebuild;
  }
  return Error(Errc::malformed, "the search index " + path + " stays damaged after rebuilding it");
}

void Index::remove_files(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((path + suffix).c_str());
}

Index::~Index() {
  for (auto* s : stmts_) sqlite3_finalize(s);
  if (db_) sqlite3_close(db_);
}

Result<void> Index::prepare() {
  for (int i = 0; i < stmt_count; ++i) {
    sqlite3_stmt* s = nullptr;
    const int rc = sqlite3_prepare_v3(db_, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return sqlite_error(db_, rc, "search index");
    stmts_.push_back(s);
  }
  return ok_result();
}

sqlite3_stmt* Index::stmt(int which) {
  assert(which >= 0 && static_cast<std::size_t>(which) < stmts_.size());
  return stmts_[static_cast<std::size_t>(which)];
}

Error Index::error(const char* what) {
  return sqlite_error(db_, sqlite3_errcode(db_), std::string("search index: ") + what);
}

Result<void> Index::begin() {
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return error("begin");
  return ok_result();
}

Result<void> Index::commit() {
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    auto e = error("commit");
    rollback();
    return e;
  }
  return ok_result();
}

void Index::rollback() {
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

bool Index::step_done(sqlite3_stmt* s) {
  const int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc == SQLITE_DONE;
}

Result<std::optional<std::int64_t>> Index::find(const Hash& id, Hash* channel) {
  sqlite3_stmt* s = stmt(find_by_idp);
  Reset r{s};
  sqlite3_bind_int64(s, 1, id_prefix(id));
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (column_fixed<Hash>(s, 1) != id) continue;
    if (channel) *channel = column_fixed<Hash>(s, 2);
    return std::optional<std::int64_t>(sqlite3_column_int64(s, 0));
  }
  if (rc != SQLITE_DONE) return error("find");
  return std::optional<std::int64_t>();
}

Result<std::string> Index::body(std::int64_t rid) {
  sqlite3_stmt* s = stmt(doc_body);
  Reset r{s};
  sqlite3_bind_int64(s, 1, rid);
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) return column_text(s, 0);
  if (rc == SQLITE_DONE) return std::string();
  return error("read");
}

// Inserts a post not in the index, at the first free slot of its order key. A post whose
// millisecond already has 2^16 posts (only a hostile author's) is left out.
Result<void> Index::insert(const Post& p) {
  const std::int64_t base = rowid_base(p.order_key);
  std::int64_t rid = base;
  {
    sqlite3_stmt* s = stmt(max_slot);
    Reset r{s};
    sqlite3_bind_int64(s, 1, base);
    sqlite3_bind_int64(s, 2, base + (std::int64_t{1} << rowid_slot_bits) - 1);
    if (sqlite3_step(s) != SQLITE_ROW) return error("slot");
    if (sqlite3_column_type(s, 0) != SQLITE_NULL) rid = sqlite3_column_int64(s, 0) + 1;
  }
  if (rid >= base + (std::int64_t{1} << rowid_slot_bits)) return ok_result();
  sqlite3_stmt* s = stmt(insert_post);
  sqlite3_bind_int64(s, 1, rid);
  sqlite3_bind_int64(s, 2, id_prefix(p.id));
  bind_fixed(s, 3, p.id);
  bind_fixed(s, 4, p.group);
  bind_fixed(s, 5, p.channel);
  bind_fixed(s, 6, p.author);
  sqlite3_bind_int64(s, 7, static_cast<std::int64_t>(std::min<std::uint64_t>(p.time_ms, INT64_MAX)));
  if (!step_done(s)) return error("insert");
  s = stmt(insert_doc);
  sqlite3_bind_int64(s, 1, rid);
  sqlite3_bind_text(s, 2, p.text.data(), static_cast<int>(p.text.size()), SQLITE_STATIC);
  if (!step_done(s)) return error("insert");
  return ok_result();
}

Result<void> Index::update(std::int64_t rid, const Post& p, bool channel_changed,
                           bool text_changed) {
  if (channel_changed) {
    sqlite3_stmt* s = stmt(update_channel);
    sqlite3_bind_int64(s, 1, rid);
    bind_fixed(s, 2, p.channel);
    if (!step_done(s)) return error("update");
  }
  if (text_changed) {
    sqlite3_stmt* s = stmt(update_doc);
    sqlite3_bind_int64(s, 1, rid);
    sqlite3_bind_text(s, 2, p.text.data(), static_cast<int>(p.text.size()), SQLITE_STATIC);
    if (!step_done(s)) return error("update");
  }
  return ok_result();
}

Result<void> Index::erase(std::int64_t rid) {
  sqlite3_stmt* s = stmt(delete_doc);
  sqlite3_bind_int64(s, 1, rid);
  if (!step_done(s)) return error("delete");
  s = stmt(delete_post);
  sqlite3_bind_int64(s, 1, rid);
  if (!step_done(s)) return error("delete");
  return ok_result();
}

// Runs `body` in one transaction: committed when it succeeds, rolled back when it fails.
template <typename F>
Result<void> Index::transaction(F&& body) {
  QUN_TRY_VOID(begin());
  if (auto done = body(); !done.ok()) {
    rollback();
    return done;
  }
  return commit();
}

Result<void> Index::put(std::span<const Post> posts) { return upsert(posts, true); }

Result<void> Index::update_existing(std::span<const Post> posts) { return upsert(posts, false); }

Result<void> Index::upsert(std::span<const Post> posts, bool insert_missing) {
  if (posts.empty()) return ok_result();
  return transaction([&]() -> Result<void> {
    for (const Post& p : posts) {
      Hash channel;
      QUN_TRY(std::optional<std::int64_t> rid, find(p.id, &channel));
      if (!rid) {
        if (insert_missing) QUN_TRY_VOID(insert(p));
        continue;
      }
      QUN_TRY(std::string text, body(*rid));
      QUN_TRY_VOID(update(*rid, p, channel != p.channel, text != p.text));
    }
    return ok_result();
  });
}

Result<void> Index::remove(std::span<const Hash> ids) {
  if (ids.empty()) return ok_result();
  return transaction([&]() -> Result<void> {
    for (const Hash& id : ids) {
      QUN_TRY(std::optional<std::int64_t> rid, find(id, nullptr));
      if (rid) QUN_TRY_VOID(erase(*rid));
    }
    return ok_result();
  });
}

Result<void> Index::drop_group(const Hash& group) {
  std::vector<std::int64_t> rids;
  {
    sqlite3_stmt* s = stmt(group_rows);
    Reset r{s};
    bind_fixed(s, 1, group);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) rids.push_back(sqlite3_column_int64(s, 0));
    if (rc != SQLITE_DONE) return error("read group");
  }
  return transaction([&]() -> Result<void> {
    for (auto rid : rids) QUN_TRY_VOID(erase(rid));
    return ok_result();
  });
}

Result<SyncStats> Index::sync_group(const Hash& group, std::span<const Post> posts) {
  struct Row {
    std::int64_t rid;
    Hash channel;
  };
  std::map<Hash, Row> have;
  {
    sqlite3_stmt* s = stmt(group_rows);
    Reset r{s};
    bind_fixed(s, 1, group);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
      have.emplace(column_fixed<Hash>(s, 1),
                   Row{sqlite3_column_int64(s, 0), column_fixed<Hash>(s, 2)});
    if (rc != SQLITE_DONE) return error("read group");
  }
  SyncStats stats;
  QUN_TRY_VOID(transaction([&]() -> Result<void> {
    for (const Post& p : posts) {
      auto it = have.find(p.id);
      if (it == have.end()) {
        QUN_TRY_VOID(insert(p));
        ++stats.added;
        continue;
      }
      QUN_TRY(std::string text, body(it->second.rid));
      const bool channel_changed = it->second.channel != p.channel;
      if (channel_changed || text != p.text) {
        QUN_TRY_VOID(update(it->second.rid, p, channel_changed, text != p.text));
        ++stats.changed;
      }
      have.erase(it);
    }
    for (const auto& [id, row] : have) {
      QUN_TRY_VOID(erase(row.rid));
      ++stats.removed;
    }
    return ok_result();
  }));
  return stats;
}

Result<std::vector<Hash>> Index::groups() {
  std::vector<Hash> out;
  sqlite3_stmt* s = stmt(distinct_groups);
  Reset r{s};
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(column_fixed<Hash>(s, 0));
  if (rc != SQLITE_DONE) return error("groups");
  return out;
}

Result<std::size_t> Index::size(const std::optional<Hash>& group) {
  sqlite3_stmt* s = stmt(group ? count_group : count_all);
  Reset r{s};
  if (group) bind_fixed(s, 1, *group);
  if (sqlite3_step(s) != SQLITE_ROW) return error("count");
  return static_cast<std::size_t>(sqlite3_column_int64(s, 0));
}

Result<std::vector<Hit>> Index::search(const Query& query) {
  if (query.limit == 0 || query.limit > results_max)
    return Error(Errc::invalid_argument,
                 "the limit is 1 to " + std::to_string(results_max) + " results");
  QUN_TRY(std::vector<Term> terms, parse_query(query.text));
  std::string match;
  std::vector<std::string> filters;  // short terms, ASCII folded
  for (const auto& t : terms) {
    if (t.short_term) {
      filters.push_back(ascii_lower(t.text));
    } else {
      if (!match.empty()) match += " AND ";
      match += fts_phrase(t.text);
    }
  }
  // Candidates newest first, as (rowid, text): the trigram matches of the long terms; else,
  // for short terms only, the group's posts (when one group is asked for) or every post.
  sqlite3_stmt* s = nullptr;
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owned(nullptr, sqlite3_finalize);
  const bool by_group = match.empty() && query.group;
  if (!match.empty()) {
    const char* sql = "SELECT rowid, body FROM docs WHERE docs MATCH ?1 ORDER BY rowid DESC";
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) return error("query");
    owned.reset(s);
    sqlite3_bind_text(s, 1, match.data(), static_cast<int>(match.size()), SQLITE_STATIC);
  } else if (by_group) {
    s = stmt(group_rows);
    bind_fixed(s, 1, *query.group);
  } else {
    s = stmt(scan_docs);
  }
  Reset reset{s};

  std::vector<Hit> out;
  std::size_t examined = 0;
  int rc = SQLITE_DONE;
  while (out.size() < query.limit && examined < short_scan_posts_max &&
         (rc = sqlite3_step(s)) == SQLITE_ROW) {
    ++examined;
    const std::int64_t rid = sqlite3_column_int64(s, 0);
    std::string by_group_text;
    if (by_group) {
      QUN_TRY(by_group_text, body(rid));
    }
    const std::string_view text = by_group ? std::string_view(by_group_text) : column_view(s, 1);
    bool all = true;
    for (const auto& f : filters) all = all && contains_folded(text, f);
    if (!all) continue;
    Hit h;
    {
      sqlite3_stmt* m = stmt(post_by_rid);
      Reset rm{m};
      sqlite3_bind_int64(m, 1, rid);
      const int found = sqlite3_step(m);
      if (found == SQLITE_DONE) continue;  // cannot happen: both rows go in one transaction
      if (found != SQLITE_ROW) return error("query");
      h.post.id = column_fixed<Hash>(m, 0);
      h.post.group = column_fixed<Hash>(m, 1);
      h.post.channel = column_fixed<Hash>(m, 2);
      h.post.author = column_fixed<PublicKey>(m, 3);
      h.post.time_ms = static_cast<std::uint64_t>(sqlite3_column_int64(m, 4));
    }
    if (query.group && h.post.group != *query.group) continue;
    if (query.channel && h.post.channel != *query.channel) continue;
    if (query.exclude_authors.count(h.post.author)) continue;
    h.post.order_key = static_cast<std::uint64_t>(rid) >> rowid_slot_bits;
    h.snippet = make_snippet(text, terms);
    h.post.text = std::string(text);
    out.push_back(std::move(h));
  }
  if (out.size() < query.limit && examined < short_scan_posts_max && rc != SQLITE_DONE)
    return error("query");
  return out;
}

}  // namespace qun::search
