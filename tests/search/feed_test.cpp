// The Indexer (search/feed.h): what of a replica goes into the index, how edits, deletions and
// a group's departure change it, and a file damaged while the node runs.
#include "search/feed.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "tests/node/fixture.h"
#include "tests/temp_dir.h"

namespace qun::search {
namespace {

using test::must;
using test::Peer;

std::vector<Hash> ids_of(const std::vector<Event>& events) {
  std::vector<Hash> out;
  for (const auto& e : events) out.push_back(e.id);
  return out;
}

std::vector<std::string> found(Indexer& indexer, const std::string& text,
                               std::set<PublicKey> hidden = {}) {
  Query q;
  q.text = text;
  q.exclude_authors = std::move(hidden);
  auto hits = indexer.search(q);
  REQUIRE(hits.ok());
  std::vector<std::string> out;
  for (const auto& h : hits.value()) out.push_back(h.post.text);
  return out;
}

using Texts = std::vector<std::string>;

// A group of one, held by an Indexer whose hooks see it.
struct Fixture {
  Peer alice{1};
  qun::test::TempDir dir{"qun-feed"};
  std::unique_ptr<Replica> replica;
  bool held = true;
  std::vector<LogRecord> logs;
  std::unique_ptr<Indexer> indexer;
  std::uint64_t now = 1'000;

  Fixture() {
    replica = std::make_unique<Replica>(
        must(Replica::create_group(alice.at(now), "cafe", "alice", GroupSettings{})));
    Indexer::Hooks hooks;
    hooks.replica = [this](const Hash& g) -> const Replica* {
      return held && g == replica->id() ? replica.get() : nullptr;
    };
    hooks.groups = [this] { return held ? std::vector<Hash>{replica->id()} : std::vector<Hash>{}; };
    indexer = std::make_unique<Indexer>(dir.file("search.db"), std::move(hooks),
                                        [this](const LogRecord& r) { logs.push_back({r.level, "search", r.message}); });
    indexer->open();
    indexer->tick();
  }
  // Authors with `make` and delivers what it made, as the daemon does after publishing.
  std::vector<Event> deliver(Result<std::vector<Event>> made) {
    std::vector<Event> events = must(std::move(made));
    const auto ids = ids_of(events);
    indexer->on_delivered(*replica, ids);
    return events;
  }
  Authoring at() { return alice.at(now += 1'000); }
};

}  // namespace

// Proves readable_posts is what the conversation shows: current texts, no deleted post.
TEST_CASE("feed: readable_posts holds current texts and no deleted post", "[search]") {
  Peer alice(1);
  Replica r = must(Replica::create_group(alice.at(1'000), "cafe", "alice", GroupSettings{}));
  const Hash a = must(r.post(alice.at(2'000), "first")).back().id;
  const Hash b = must(r.post(alice.at(3'000), "second")).back().id;
  (void)must(r.post(alice.at(4'000), "third"));
  (void)must(r.edit(alice.at(5'000), a, "first, edited"));
  (void)must(r.delete_post(alice.at(6'000), b));
  std::vector<std::string> texts;
  for (const auto& p : readable_posts(r)) {
    texts.push_back(p.text);
    CHECK(p.group == r.id());
    CHECK(p.channel == r.id());
    CHECK(p.author == alice.key.public_key());
  }
  CHECK(texts == Texts{"first, edited", "third"});
}

// Proves the Indexer: posts are found as delivered; an edit by its new text and a deletion not
// at all, at once; the resync agrees; hidden authors are a query filter; a group that goes
// takes its posts.
TEST_CASE("feed: deliveries, edits, deletions, resyncs and a group's departure", "[search]") {
  Fixture f;
  const auto one = f.deliver(f.replica->post(f.at(), "今日はいい天気ですね"));
  const auto two = f.deliver(f.replica->post(f.at(), "天気予報を見た"));
  CHECK(found(*f.indexer, "天気") == Texts{"天気予報を見た", "今日はいい天気ですね"});
  CHECK(found(*f.indexer, "天気", {f.alice.key.public_key()}).empty());

  f.deliver(f.replica->edit(f.at(), one.back().id, "今日は雨"));
  CHECK(found(*f.indexer, "天気") == Texts{"天気予報を見た"});
  CHECK(found(*f.indexer, "雨") == Texts{"今日は雨"});
  f.deliver(f.replica->delete_post(f.at(), two.back().id));
  CHECK(found(*f.indexer, "天気").empty());
  CHECK(f.indexer->pending() == 1);  // the edit and the deletion marked a resync
  f.indexer->tick();
  CHECK(f.indexer->pending() == 0);
  CHECK(found(*f.indexer, "雨") == Texts{"今日は雨"});
  CHECK(found(*f.indexer, "予報").empty());

  f.held = false;
  f.indexer->forget(f.replica->id());
  CHECK(found(*f.indexer, "雨").empty());
}

// Proves a damaged search.db costs one log line and a rebuild, and that the index then fills
// again from the replica: the node's start-up (Indexer::open) with a file that is not a
// database. (Damage found later takes the same way: Indexer::failed deletes and reopens.)
TEST_CASE("feed: a damaged file is rebuilt from the replicas", "[search]") {
  Fixture f;
  f.deliver(f.replica->post(f.at(), "kept through damage"));
  CHECK(found(*f.indexer, "damage") == Texts{"kept through damage"});
  f.indexer.reset();  // closes the file (the node stops)
  const auto size = std::filesystem::file_size(f.dir.file("search.db"));
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(f.dir.file("search.db") + suffix);
  {
    std::fstream out(f.dir.file("search.db"), std::ios::in | std::ios::out | std::ios::binary);
    out << std::string(size, '\xee');
  }
  Indexer::Hooks hooks;
  hooks.replica = [&](const Hash&) -> const Replica* { return f.replica.get(); };
  hooks.groups = [&] { return std::vector<Hash>{f.replica->id()}; };
  f.logs.clear();
  f.indexer = std::make_unique<Indexer>(f.dir.file("search.db"), std::move(hooks), [&](const LogRecord& r) {
    f.logs.push_back({r.level, "search", r.message});
  });
  f.indexer->open();
  REQUIRE(f.logs.size() == 1);
  CHECK(f.logs[0].message.find("rebuilt: damaged") != std::string::npos);
  CHECK(found(*f.indexer, "damage").empty());  // until the resync
  CHECK(f.indexer->pending() == 1);
  f.indexer->tick();
  CHECK(found(*f.indexer, "damage") == Texts{"kept through damage"});
}

// Proves a large group that is new to the index (a rebuild) goes in through the fill, a slice
// at a time, and that what is delivered meanwhile holds: every post is found once the Indexer
// has nothing pending, an edit by its new text and a deleted post not at all. How the ticks
// split the work depends on the clock (the tick's budget), so only the end state is checked, and
// the log line says the fill path ran.
TEST_CASE("feed: a large group new to the index fills in slices; edits meanwhile hold",
          "[search]") {
  Fixture f;
  std::vector<Hash> ids;
  const std::string padding(200, '.');
  const std::size_t n = 2 * fill_slice_bytes / padding.size() + 10;  // three slices
  for (std::size_t i = 0; i < n; ++i)
    ids.push_back(
        must(f.replica->post(f.at(), "post p" + std::to_string(i) + "q about trains " + padding))
            .back()
            .id);
  f.indexer->mark(f.replica->id());  // as at start-up: none of it is in
  CHECK(f.indexer->pending() == 1);
  f.indexer->tick();
  f.deliver(f.replica->edit(f.at(), ids[0], "the first one, about boats"));
  f.deliver(f.replica->delete_post(f.at(), ids[1]));
  for (int i = 0; i < 100 && f.indexer->working(); ++i) f.indexer->tick();
  CHECK(f.indexer->pending() == 0);
  CHECK_FALSE(f.indexer->working());
  bool filled = false;
  for (const auto& l : f.logs)
    filled =
        filled || l.message.find("indexed: " + std::to_string(n) + " posts") != std::string::npos;
  CHECK(filled);
  CHECK(found(*f.indexer, "boats") == Texts{"the first one, about boats"});
  CHECK(found(*f.indexer, "p0q").empty());
  CHECK(found(*f.indexer, "p1q").empty());
  CHECK(found(*f.indexer, "p2q") == Texts{"post p2q about trains " + padding});
  const std::string last = "p" + std::to_string(n - 1) + "q";
  CHECK(found(*f.indexer, last) == Texts{"post " + last + " about trains " + padding});
  Query q;
  q.text = "trains";
  q.limit = results_max;
  CHECK(f.indexer->search(q).value().size() == results_max);
}

}  // namespace qun::search
