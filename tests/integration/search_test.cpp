// `qun search` between real nodes (issue 15, "Search"): CJK substrings found newest first in two
// groups, edits and deletions followed, hidden members left out, nothing of a group left, and
// search.db rebuilt when deleted or damaged.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// The results of `qun search ARGS --json`, one object each, newest first.
std::vector<Json> search(const Node& node, std::vector<std::string> args) {
  args.insert(args.begin(), "search");
  return node.json_lines(args);
}

std::vector<std::string> result_texts(const std::vector<Json>& results) {
  std::vector<std::string> out;
  for (const auto& r : results) out.push_back(r.value("text", ""));
  return out;
}

// Waits until `qun search ARGS` finds exactly `texts`, in that order.
void wait_for_results(const Node& node, std::vector<std::string> args,
                      const std::vector<std::string>& texts, std::string_view what) {
  wait_until([&] { return result_texts(search(node, args)) == texts; }, propagate_bound, what);
}

std::string search_db(const Node& node) { return (node.home() / "search.db").string(); }

}  // namespace

// Proves, with two real nodes: posts in two groups, one from a peer, are found by CJK
// substrings of two and of four characters, newest first, in one group or in all, with their
// group, channel, nick and id; an edit is found by its new text only and a deletion not at all;
// a hidden member's posts are left out; after bob leaves a group, his node finds nothing of it.
TEST_CASE("qun search finds CJK substrings newest first and follows edits, deletions and leaves",
          "[integration][search]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string cafe = create_group(a, "cafe");
  const std::string work = create_group(a, "work");
  REQUIRE(invite_and_join(a, b, cafe) == cafe);

  a.ok({"post", cafe, "今日はいい天気ですね"});
  b.ok({"post", cafe, "明日は天気が悪いらしい"});
  wait_for_posts(a, cafe, {"明日は天気が悪いらしい"});
  a.ok({"post", work, "deploy bot: 天気 API is back"});
  b.ok({"post", cafe, "hello relay world"});

  // Two characters (the scan of the newest posts), in every group, newest first.
  wait_for_results(a, {"天気"},
                   {"deploy bot: 天気 API is back", "明日は天気が悪いらしい", "今日はいい天気ですね"},
                   "alice finds 天気 in both groups, bob's post too");
  // Four characters (the trigram index), in one group.
  const auto found = search(a, {"cafe", "いい天気"});
  REQUIRE(found.size() == 1);
  CHECK(found[0].value("group", "") == cafe);
  CHECK(found[0].value("group_name", "") == "cafe");
  CHECK(found[0].value("channel", "") == "general");
  CHECK(found[0].value("nick", "") == "alice");
  CHECK(found[0].value("snippet", "").find("いい天気") != std::string::npos);
  const std::string first_id = found[0].value("id", "");
  CHECK(result_texts(search(a, {"cafe", "天気"})) ==
        std::vector<std::string>{"明日は天気が悪いらしい", "今日はいい天気ですね"});
  CHECK(result_texts(search(a, {"work", "API"})) ==
        std::vector<std::string>{"deploy bot: 天気 API is back"});
  // People's output: one line per result with the group, the nick and the start of the id.
  const std::string human = a.ok({"search", "いい天気"});
  CHECK(human.find("cafe") != std::string::npos);
  CHECK(human.find("alice: 今日はいい天気ですね") != std::string::npos);
  CHECK(human.find("[" + first_id.substr(0, 8) + "]") != std::string::npos);

  // An edit is found by its new text only; a deletion is not found at all.
  a.ok({"edit", cafe, first_id, "今日は雨です"});
  wait_for_results(a, {"雨です"}, {"今日は雨です"}, "the edit is found by its new text");
  CHECK(search(a, {"いい天気"}).empty());
  wait_for_results(b, {"relay"}, {"hello relay world"}, "bob finds his own post");
  const std::string relay_id = search(b, {"relay"})[0].value("id", "");
  b.ok({"delete", cafe, relay_id});
  wait_for_results(a, {"relay"}, {}, "bob's deleted post is gone from alice's results");
  CHECK(search(b, {"relay"}).empty());

  // Hiding is a view filter: the posts stay indexed and come back on unhide.
  a.ok({"hide", "bob"});
  CHECK(result_texts(search(a, {"cafe", "天気"})) == std::vector<std::string>{});
  a.ok({"unhide", "bob"});
  CHECK(result_texts(search(a, {"cafe", "天気"})) ==
        std::vector<std::string>{"明日は天気が悪いらしい"});

  // Nothing of a group left.
  wait_for_results(b, {"天気"}, {"明日は天気が悪いらしい"}, "bob's node has the edit too");
  b.ok({"leave", cafe});
  CHECK(search(b, {"天気"}).empty());
  CHECK(search(b, {"雨"}).empty());

  // Errors are one line.
  const Outcome empty = a.qun({"search", " "});
  CHECK(empty.code == 1);
  CHECK(empty.err.find("nothing to search for") != std::string::npos);
  const Outcome no_group = a.qun({"search", "nosuchgroup", "天気"});
  CHECK(no_group.code == 1);
}

// Proves search.db is private (0600), and that a node whose search.db was deleted, or damaged,
// starts, says so in one log line when damaged, and finds everything again.
TEST_CASE("qun search: search.db rebuilt when deleted or damaged", "[integration][search]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  a.start();
  const std::string cafe = create_group(a, "cafe");
  const std::string work = create_group(a, "work");
  a.ok({"post", cafe, "我们明天见"});
  a.ok({"post", work, "明天 deploy"});
  wait_for_results(a, {"明天"}, {"明天 deploy", "我们明天见"}, "both posts are indexed");
  struct stat st {};
  REQUIRE(::stat(search_db(a).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  a.stop();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(search_db(a) + suffix);
  a.start();
  wait_for_results(a, {"明天"}, {"明天 deploy", "我们明天见"}, "the deleted index is rebuilt");

  a.stop();
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(search_db(a) + suffix);
  std::ofstream(search_db(a), std::ios::trunc) << std::string(4096, 'Z');
  a.start();
  wait_for_results(a, {"明天"}, {"明天 deploy", "我们明天见"}, "the damaged index is rebuilt");
  CHECK(a.log().find("search index " + search_db(a) + " rebuilt: damaged") != std::string::npos);
  a.ok({"post", cafe, "明天 again"});
  wait_for_results(a, {"明天"}, {"明天 again", "明天 deploy", "我们明天见"},
                   "new posts are indexed after the rebuild");
}

}  // namespace qun::integration
