// Index: the full-text search index of one node (`qun search`, the chat's /search), a SQLite
// database in the node home (search.db) with an FTS5 table using the trigram tokenizer, so that
// any substring of three characters or more is found in every script (Chinese and Japanese have
// no spaces between words; a word tokenizer would find nothing in them).
//
// What it holds. One row per post this node can read and shows: its id, group, channel, author,
// time and current text (an edited post's newest text; a deleted or redacted post has no row).
// The caller (the daemon) decides what goes in; the index never decrypts anything, and holds no
// text the caller did not hand it. Everything in it is derived from the store: the file can be
// deleted at any time and the caller fills it again (`sync_group` for each group).
//
// Matching. The query is split on white space into terms; a post matches when it contains every
// term (case folded as FTS5's trigram tokenizer folds it). Terms of three characters or more go
// through the trigram index. A term of one or two characters cannot (a trigram index has no
// shorter keys): when the query has a longer term too, the short one filters the posts the
// longer ones found; when every term is short, the newest posts are scanned, at most
// short_scan_posts_max of them (CJK words of two characters are common, and the newest
// matches are the ones people look for). Results come newest first (by the group's order key).
//
// Ordering. A row's rowid is its order key times 2^16 plus a slot, so FTS5 hands matches over
// in rowid order, newest first, and a query stops after `limit` results without sorting every
// match.
//
// Damage. A file that is not a database, is damaged (SQLITE_CORRUPT, SQLITE_NOTADB) or has
// another schema version is deleted and created again empty by open(), which says why in
// rebuilt_because(); damage found later comes back from any call as Errc::malformed, and the
// caller deletes and reopens the file the same way (Index::remove_files).
//
// Thread-safety: one Index per file; use it from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "crypto/hash.h"
#include "crypto/keys.h"

struct sqlite3;
struct sqlite3_stmt;

namespace qun::search {

// 1: posts(rid, idp, id, grp, channel, author, time_ms) and docs (FTS5, trigram, the text) under
// the same rowids. 2: the same in pages of fts_page_bytes, docs without per-row token counts
// (columnsize=0). A file of any other version is rebuilt.
inline constexpr int schema_version = 2;

// SQLite's page size for a new file, and FTS5's leaf pages within it. bench/search_bench: 16 KiB
// pages index 1,000,000 posts about 15% faster than SQLite's default 4 KiB (fewer, fuller
// b-tree pages per flushed segment), queries within a millisecond of before; 64 KiB made
// queries slower and live batches too.
inline constexpr int fts_page_bytes = 16384;
// FTS5 holds the terms of a transaction in memory and writes them out as a segment past this
// many bytes (its default is 1 MiB). A rebuild hands over a whole group in one transaction:
// fewer, larger segments leave fewer to merge (search_bench: 8 MiB indexes a fifth faster
// than 1 MiB). Memory: at most this much more per node.
inline constexpr int fts_pending_bytes_max = 8 << 20;
// SQLite's page cache for the index (it was 32 MiB before; search_bench indexes no faster
// with 128 MiB).
inline constexpr int cache_bytes = 32 << 20;

// A query longer than this is refused: a search box line, far longer than anything people type
// to find a message (Slack caps its search box at 250 characters).
inline constexpr std::size_t query_bytes_max = 256;
// Terms per query: more than a person types; each is one FTS5 phrase or one filter.
inline constexpr std::size_t query_terms_max = 16;
// Results per query, as a `log` page (the daemon's log_page_max).
inline constexpr std::size_t results_max = 500;
inline constexpr std::size_t results_default = 20;
// Candidate posts one query examines at most: the newest posts scanned for a query of short
// terms only (of the group, when one is named), and the trigram matches filtered by group,
// channel, short terms and hidden authors. bench/search_bench: scanning 100,000 posts for a
// character found in none takes about 35 ms of CPU (100 ms on the shared CI machine); half of
// that keeps the slowest query within the 50 ms goal.
inline constexpr std::size_t short_scan_posts_max = 50'000;
// The snippet around the first match: about one line of a terminal.
inline constexpr std::size_t snippet_chars_max = 80;
// Posts that share one order key (the same millisecond) get consecutive slots: 2^16 of them.
inline constexpr int rowid_slot_bits = 16;
// Order keys above this (hostile event times past the year 6400) sort as this one.
inline constexpr std::uint64_t order_key_max = (std::uint64_t{1} << (62 - rowid_slot_bits)) - 1;

struct Post {
  Hash id;
  Hash group;
  Hash channel;  // the group id for #general
  PublicKey author;
  std::uint64_t time_ms = 0;    // the author's clock
  std::uint64_t order_key = 0;  // the group's order (newest first in results)
  std::string text;             // the current text
};

struct Query {
  std::string text;
  std::optional<Hash> group;
  std::optional<Hash> channel;
  std::set<PublicKey> exclude_authors;     // hidden members: left out of results
  std::size_t limit = results_default;     // 1..results_max
};

struct Hit {
  Post post;
  std::string snippet;  // the text around the first match, line breaks as spaces, "…" at cuts
};

// What sync_group changed.
struct SyncStats {
  std::size_t added = 0;
  std::size_t changed = 0;
  std::size_t removed = 0;
};

// The terms of a query (split on white space, at most query_terms_max) and whether each is
// short (under three characters). Errors: invalid_argument (empty, or only white space),
// too_large (past query_bytes_max or query_terms_max).
struct Term {
  std::string text;
  bool short_term = false;
};
[[nodiscard]] Result<std::vector<Term>> parse_query(std::string_view text);

// The text around the first occurrence of any term (ASCII case folded), at most
// snippet_chars_max characters, line breaks as spaces, "…" where it was cut.
std::string make_snippet(std::string_view text, const std::vector<Term>& terms);

class Index {
 public:
  // Opens the index at `path`, creating it (mode 0600) when missing, and rebuilding it empty
  // when it is damaged or of another schema version. Errors: io (the directory cannot be
  // written), internal (SQLite without FTS5 or the trigram tokenizer).
  [[nodiscard]] static Result<std::unique_ptr<Index>> open(const std::string& path);
  // Deletes the index file and SQLite's journal files beside it.
  static void remove_files(const std::string& path);
  ~Index();
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  // Why open() started from an empty index ("created", "schema 0 is not 1", "damaged: ..."),
  // nullopt when it opened an existing one. The caller then refills it from the store.
  const std::optional<std::string>& rebuilt_because() const { return rebuilt_because_; }

  // Adds posts, or replaces the text and channel of posts already in (by id), in one
  // transaction. Errors: malformed (damage), io, disk_full.
  [[nodiscard]] Result<void> put(std::span<const Post> posts);
  // Replaces the text and channel of posts already in (by id); posts not in are left out (an
  // edit of a post the index does not show must not bring it in).
  [[nodiscard]] Result<void> update_existing(std::span<const Post> posts);
  // Removes posts by id (absent ids are fine).
  [[nodiscard]] Result<void> remove(std::span<const Hash> ids);
  // Removes every post of a group.
  [[nodiscard]] Result<void> drop_group(const Hash& group);
  // Makes the group's rows exactly `posts`: adds the missing, replaces changed texts, removes
  // the rest. One transaction.
  [[nodiscard]] Result<SyncStats> sync_group(const Hash& group, std::span<const Post> posts);
  // Groups with at least one row.
  [[nodiscard]] Result<std::vector<Hash>> groups();
  // Rows, in all or one group.
  [[nodiscard]] Result<std::size_t> size(const std::optional<Hash>& group = std::nullopt);
  // Errors: those of parse_query; invalid_argument for a limit of 0 or past results_max.
  [[nodiscard]] Result<std::vector<Hit>> search(const Query& query);

 private:
  explicit Index(sqlite3* db) : db_(db) {}
  Result<void> prepare();
  Result<void> begin();
  Result<void> commit();
  void rollback();
  Result<void> insert(const Post& p);
  Result<void> upsert(std::span<const Post> posts, bool insert_missing);
  Result<void> update(std::int64_t rid, const Post& p, bool channel_changed, bool text_changed);
  Result<void> erase(std::int64_t rid);
  // The rowid of the post with this id (and its channel), or nullopt.
  Result<std::optional<std::int64_t>> find(const Hash& id, Hash* channel);
  Result<std::string> body(std::int64_t rid);
  template <typename F>
  Result<void> transaction(F&& body);
  // Steps a statement that returns no rows, then resets it. True when it ran to the end.
  static bool step_done(sqlite3_stmt* s);
  Error error(const char* what);
  sqlite3_stmt* stmt(int which);

  sqlite3* db_ = nullptr;
  std::vector<sqlite3_stmt*> stmts_;
  std::optional<std::string> rebuilt_because_;
};

}  // namespace qun::search
