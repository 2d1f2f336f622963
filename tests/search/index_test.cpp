// The search index (search/index.h): substring matching in every script, short terms, order,
// filters, updates, group removal, and a damaged or outdated file rebuilt rather than fatal.
#include "search/index.h"
#include "tests/temp_dir.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sqlite3.h>

namespace qun::search {
namespace {

Hash hash(std::uint8_t n) {
  Hash h;
  h.bytes.fill(n);
  return h;
}
PublicKey key(std::uint8_t n) {
  PublicKey k;
  k.bytes.fill(n);
  return k;
}

Post post(std::uint8_t id, std::uint8_t group, std::uint64_t order, std::string text,
          std::uint8_t author = 1) {
  Post p;
  p.id = hash(id);
  p.group = hash(group);
  p.channel = hash(group);
  p.author = key(author);
  p.time_ms = order;
  p.order_key = order;
  p.text = std::move(text);
  return p;
}

std::unique_ptr<Index> open_ok(const std::string& path) {
  auto r = Index::open(path);
  REQUIRE(r.ok());
  return std::move(r).value();
}

// The ids found for `text`, newest first.
std::vector<Hash> ids(Index& index, std::string text, std::optional<Hash> group = std::nullopt) {
  Query q;
  q.text = std::move(text);
  q.group = group;
  auto hits = index.search(q);
  REQUIRE(hits.ok());
  std::vector<Hash> out;
  for (const auto& h : hits.value()) out.push_back(h.post.id);
  return out;
}

using Ids = std::vector<Hash>;

}  // namespace

// Proves CJK text is found by any substring, of three characters and more through the trigram
// index and of one or two through the scan, and that a non-substring is not found.
TEST_CASE("index: CJK substrings of every length are found", "[search]") {
  qun::test::TempDir dir{"qun-search"};
  auto index = open_ok(dir.file("search.db"));
  std::vector<Post> posts{post(1, 1, 100, "今日はいい天気ですね"), post(2, 1, 200, "明日は雨が降るそうです"),
                          post(3, 1, 300, "おはよう! the relay on the VPS is up again")};
  REQUIRE(index->put(posts).ok());
  CHECK(ids(*index, "いい天気") == Ids{hash(1)});
  CHECK(ids(*index, "天気") == Ids{hash(1)});
  CHECK(ids(*index, "雨") == Ids{hash(2)});
  CHECK(ids(*index, "は") == Ids{hash(3), hash(2), hash(1)});  // newest first (おはよう too)
  CHECK(ids(*index, "おはよう") == Ids{hash(3)});
  CHECK(ids(*index, "晴れ").empty());
  CHECK(ids(*index, "天気雨").empty());
}

// Proves Latin text matches without regard to case, every word of a query must be in the post
// (short words too), and the words may be anywhere in it.
TEST_CASE("index: words are substrings, all required, case folded", "[search]") {
  qun::test::TempDir dir{"qun-search"};
  auto index = open_ok(dir.file("search.db"));
  std::vector<Post> posts{post(1, 1, 100, "the relay on the VPS is up again"),
                          post(2, 1, 200, "Did anyone try the new chat client?"),
                          post(3, 1, 300, "relay down, ok?")};
  REQUIRE(index->put(posts).ok());
  CHECK(ids(*index, "RELAY") == Ids{hash(3), hash(1)});
  CHECK(ids(*index, "vps relay") == Ids{hash(1)});
  CHECK(ids(*index, "relay up") == Ids{hash(1)});
  CHECK(ids(*index, "relay ok") == Ids{hash(3)});
  CHECK(ids(*index, "lay") == Ids{hash(3), hash(1)});
  CHECK(ids(*index, "relay cat").empty());
  CHECK(ids(*index, "chat cli") == Ids{hash(2)});
}

// Proves that FTS5's query syntax in a query is taken literally, never as an error.
TEST_CASE("index: query syntax characters are plain text", "[search]") {
  qun::test::TempDir dir{"qun-search"};
  auto index = open_ok(dir.file("search.db"));
  std::vector<Post> posts{post(1, 1, 100, "say \"hi\" AND (NOT *this*) col:x"),
                          post(2, 1, 200, "nothing")};
  REQUIRE(index->put(posts).ok());
  CHECK(ids(*index, "\"hi\"") == Ids{hash(1)});
  CHECK(ids(*index, "AND") == Ids{hash(1)});
  CHECK(ids(*index, "(NOT") == Ids{hash(1)});
  CHECK(ids(*index, "*this*") == Ids{hash(1)});
  CHECK(ids(*index, "col:x") == Ids{hash(1)});
  CHECK(ids(*index, "NEAR(a b)").empty());
}

// Proves the filters: group, channel, hidden authors and the limit, newest first throughout.
TEST_CASE("index: group, channel, hidden authors and limit", "[search]") {
  qun::test::TempDir dir{"qun-search"};
  auto index = open_ok(dir.file("search.db"));
  std::vector<Post> posts{post(1, 1, 100, "deploy one", 1), post(2, 2, 150, "deploy two", 2),
                          post(3, 1, 200, "deploy three", 2), post(4, 2, 250, "deploy four", 1)};
  posts[2].channel = hash(9);
  REQUIRE(index->put(posts).ok());
  CHECK(ids(*index, "deploy") == Ids{hash(4), hash(3), hash(2), hash(1)});
  CHECK(ids(*index, "deploy", hash(1)) == Ids{hash(3), hash(1)});
  CHECK(ids(*index, "de", hash(2)) == Ids{hash(4), hash(2)});
  Query q;
  q.text = "deploy";
  q.group = hash(1);
  q.channel = hash(9);
  auto in_channel = index->search(q);
  REQUIRE(in_channel.ok());
  REQUIRE(in_channel.value().size() == 1);
  CHECK(in_channel.value()[0].post.id == hash(3));
  CHECK(in_channel.value()[0].post.author == key(2));
  CHECK(in_channel.value()[0].post.order_key == 200);
  CHECK(in_channel.value()[0].post.text == "deploy three");
  q = Query{};
  q.text = "deploy";
  q.exclude_authors = {key(2)};
  q.limit = 1;
  auto hidden = index->search(q);
  REQUIRE(hidden.ok());
  REQUIRE(hidden.value().size() == 1);
  CHECK(hidden.value()[0].post.id == hash(4));
  q.limit = 0;
  CHECK(!index->search(q).ok());
  q.limit = results_max + 1;
  CHECK(!index->search(q).ok());
}

// Proves an edited post is found by its new text only, a removed one not at all, and a group's
// removal takes all of its posts and nothing else.
TEST_CASE("index: edits, deletions and a group's removal", "[search]") {
  qun::test::TempDir dir{"qun-search"};
  auto index = open_ok(dir.file("search.db"));
  std::vector<Post> posts{post(1, 1, 100, "lunch at noon"), post(2, 1, 200, "secret plan"),
                          post(3, 2, 300, "lunch tomorrow")};
  REQUIRE(index->put(posts).ok());
  Post edited = posts[0];
  edited.text = "dinner at eight";
  REQUIRE(index->put(std::span<const Post>(&edited, 1)).ok());
  CHECK(ids(*index, "noon").empty());
  CHECK(ids(*index, "dinner") == Ids{hash(1)});
  CHECK(ids(*index, "lunch") == Ids{hash(3)});
  const Hash gone = hash(2);
  REQUIRE(index->remove(std::span<const Hash>(&gone, 1)).ok());
  CHECK(ids(*index, "secret").empty());
  // An edit of a post the index does not hold brings nothing in.
  Post removed = posts[1];
  removed.text = "secret plan, edited";
  REQUIRE(index->update_existing(std::span<const Post>(&removed, 1)).ok());
  CHECK(ids(*index, "secret").empty());
  Post again = edited;
  again.text = "dinner at nine";
  REQUIRE(index->update_existing(std::span<const Post>(&again, 1)).ok());
  CHECK(ids(*index, "dinner nine") == Ids{hash(1)});
  REQUIRE(index->drop_group(hash(2)).ok());
  CHECK(ids(*index, "lunch").empty());
  CHECK(ids(*index, "dinner") == Ids{hash(1)});
  auto groups = index->groups();
  REQUIRE(groups.ok());
  CHECK(groups.value() == std::vector<Hash>{hash(1)});
  CHECK(index->size().value() == 1);
}

// Proves sync_group makes a group's rows exactly what it is given, touching no other group.
TEST_CASE("index: sync_group adds, changes and removes", "[search]") {
  qun::test::TempDir dir{"qun-search"};
  auto index = open_ok(dir.file("search.db"));
  std::vector<Post> before{post(1, 1, 100, "alpha"), post(2, 1, 200, "bravo"),
                           post(3, 1, 300, "charlie"), post(9, 2, 50, "alpha elsewhere")};
  REQUIRE(index->put(before).ok());
  std::vector<Post> now{post(1, 1, 100, "alpha"), post(2, 1, 200, "bravissimo"),
                        post(4, 1, 400, "delta")};
  auto stats = index->sync_group(hash(1), now);
  REQUIRE(stats.ok());
  CHECK(stats.value().added == 1);
  CHECK(stats.value().changed == 1);
  CHECK(stats.value().removed == 1);
  CHECK(ids(*index, "charlie").empty());
  CHECK(ids(*index, "bravissimo") == Ids{hash(2)});
  CHECK(ids(*index, "alpha") == Ids{hash(1), hash(9)});
  CHECK(index->size(hash(1)).value() == 3);
  auto again = index->sync_group(hash(1), now);
  REQUIRE(again.ok());
  CHECK(again.value().added + again.value().changed + again.value().removed == 0);
}

// Proves posts of one millisecond all get a row, in the order they came, and that hostile order
// keys past order_key_max are kept (sorted as the newest).
TEST_CASE("index: posts sharing an order key, and far-future keys", "[search]") {
  qun::test::TempDir dir{"qun-search"};
  auto index = open_ok(dir.file("search.db"));
  std::vector<Post> posts;
  for (std::uint8_t i = 1; i <= 50; ++i) posts.push_back(post(i, 1, 1000, "same moment"));
  posts.push_back(post(60, 1, UINT64_MAX, "same moment from the future"));
  REQUIRE(index->put(posts).ok());
  Query q;
  q.text = "moment";
  q.limit = 100;
  auto hits = index->search(q);
  REQUIRE(hits.ok());
  REQUIRE(hits.value().size() == 51);
  CHECK(hits.value()[0].post.id == hash(60));
  CHECK(hits.value()[1].post.id == hash(50));
  CHECK(hits.value()[50].post.id == hash(1));
}

// Proves the snippet is cut around the match with "…", one line, in whole characters.
TEST_CASE("index: snippets", "[search]") {
  auto terms = parse_query("needle").value();
  std::string text(200, 'a');
  text += "\nneedle\n";
  text += std::string(200, 'b');
  const std::string s = make_snippet(text, terms);
  CHECK(s.rfind("…", 0) == 0);
  CHECK(s.find("a needle b") != std::string::npos);
  CHECK(s.size() < text.size());
  CHECK(s.substr(s.size() - std::string("…").size()) == "…");
  CHECK(make_snippet("short needle", terms) == "short needle");
  // CJK: cut at characters, never inside one.
  std::string cjk;
  for (int i = 0; i < 100; ++i) cjk += "天";
  cjk += "気";
  const std::string c = make_snippet(cjk, parse_query("気").value());
  CHECK(c.find("気") != std::string::npos);
  CHECK(c.size() % 3 == 0);  // "…" and the CJK characters are three bytes each
}

// Proves what a query may be: some text, within the bounds.
TEST_CASE("index: query bounds", "[search]") {
  CHECK(parse_query("").error().code() == Errc::invalid_argument);
  CHECK(parse_query(" \t\u3000 ").error().code() == Errc::invalid_argument);
  CHECK(parse_query(std::string(query_bytes_max + 1, 'x')).error().code() == Errc::too_large);
  std::string many;
  for (std::size_t i = 0; i <= query_terms_max; ++i) many += "word ";
  CHECK(parse_query(many).error().code() == Errc::too_large);
  auto terms = parse_query("天気\u3000relay").value();
  REQUIRE(terms.size() == 2);
  CHECK(terms[0].short_term);
  CHECK(!terms[1].short_term);
}

// Proves the file: created 0600, kept across opens, and rebuilt empty (with the reason) when it
// is not a database, is damaged, or has another schema version.
TEST_CASE("index: the file is private, kept, and rebuilt when damaged or outdated", "[search]") {
  qun::test::TempDir dir{"qun-search"};
  {
    auto index = open_ok(dir.file("search.db"));
    REQUIRE(index->rebuilt_because() == std::optional<std::string>("created"));
    std::vector<Post> posts{post(1, 1, 100, "kept across opens")};
    REQUIRE(index->put(posts).ok());
  }
  struct stat st {};
  REQUIRE(::stat(dir.file("search.db").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  {
    auto index = open_ok(dir.file("search.db"));
    CHECK(!index->rebuilt_because());
    CHECK(ids(*index, "opens") == Ids{hash(1)});
  }
  SECTION("another schema version") {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(dir.file("search.db").c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    auto index = open_ok(dir.file("search.db"));
    REQUIRE(index->rebuilt_because());
    CHECK(index->rebuilt_because()->find("schema 99") != std::string::npos);
    CHECK(index->size().value() == 0);
  }
  SECTION("a file of schema 1 (4 KiB pages, token counts per row)") {
    // The schema before version 2, as a node of that version wrote it: it is rebuilt empty in
    // the new form (16 KiB pages), and the caller fills it again.
    Index::remove_files(dir.file("search.db"));
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(dir.file("search.db").c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "PRAGMA journal_mode=WAL;"
                         "CREATE TABLE posts(rid INTEGER PRIMARY KEY, idp INTEGER NOT NULL,"
                         " id BLOB NOT NULL, grp BLOB NOT NULL, channel BLOB NOT NULL,"
                         " author BLOB NOT NULL, time_ms INTEGER NOT NULL);"
                         "CREATE INDEX posts_idp ON posts(idp);"
                         "CREATE INDEX posts_grp ON posts(grp);"
                         "CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='trigram');"
                         "INSERT INTO posts VALUES(1, 0, x'00', x'00', x'00', x'00', 0);"
                         "INSERT INTO docs(rowid, body) VALUES(1, 'an old row');"
                         "PRAGMA user_version=1;",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    auto index = open_ok(dir.file("search.db"));
    REQUIRE(index->rebuilt_because());
    CHECK(*index->rebuilt_because() == "schema 1 is not 2");
    CHECK(index->size().value() == 0);
    std::vector<Post> posts{post(3, 1, 100, "in the new schema")};
    REQUIRE(index->put(posts).ok());
    CHECK(ids(*index, "schema") == Ids{hash(3)});
    CHECK(ids(*index, "old row").empty());
    index.reset();
    REQUIRE(sqlite3_open(dir.file("search.db").c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    CHECK(sqlite3_column_int(s, 0) == fts_page_bytes);
    sqlite3_finalize(s);
    sqlite3_close(db);
  }
  SECTION("garbage") {
    Index::remove_files(dir.file("search.db"));
    std::ofstream(dir.file("search.db")) << std::string(8192, 'x');
    auto index = open_ok(dir.file("search.db"));
    REQUIRE(index->rebuilt_because());
    CHECK(index->rebuilt_because()->find("damaged") != std::string::npos);
    std::vector<Post> posts{post(2, 1, 100, "after the rebuild")};
    REQUIRE(index->put(posts).ok());
    CHECK(ids(*index, "rebuild") == Ids{hash(2)});
    REQUIRE(::stat(dir.file("search.db").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  SECTION("damaged pages") {
    // Overwrite everything past the header page: the tables' pages no longer read.
    std::filesystem::resize_file(dir.file("search.db"), 4096);
    {
      std::fstream f(dir.file("search.db"), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(100);
      f << std::string(3996, '\xff');
    }
    std::filesystem::remove(dir.file("search.db") + "-wal");
    auto index = open_ok(dir.file("search.db"));
    REQUIRE(index->rebuilt_because());
    CHECK(index->size().value() == 0);
  }
}

}  // namespace qun::search
