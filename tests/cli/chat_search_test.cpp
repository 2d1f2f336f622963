// The chat's /search and /jump (cli/chat_search.cpp): results listed newest first and numbered,
// and a jump that opens the group and channel and selects the message, loading older pages of
// the group until it is there.
#include <catch2/catch.hpp>

#include "tests/cli/chat_fake_node.h"

using namespace qun;
using namespace qun::chat;
using namespace qun::chat::test;

namespace {

// The node's answer to a `search` request, as the daemon makes it.
Json result(const std::string& group, const std::string& name, const std::string& id,
            const std::string& channel, const std::string& text) {
  return Json{{"id", id},          {"group", group},         {"group_name", name},
              {"channel", channel}, {"channel_id", group},   {"author", std::string(64, 'b')},
              {"nick", "bob"},      {"time_ms", 1'700'000'000'000}, {"snippet", text},
              {"text", text}};
}

}  // namespace

// Proves the parser: /search needs words, /jump a number.
TEST_CASE("chat: /search and /jump parse", "[chat]") {
  CHECK(!parse_command("/search").ok());
  auto s = parse_command("/search  天気 relay ");
  REQUIRE(s.ok());
  CHECK(s->kind == Command::Kind::search);
  CHECK(s->arg == "天気 relay");
  auto j = parse_command("/jump 3");
  REQUIRE(j.ok());
  CHECK(j->kind == Command::Kind::jump);
  CHECK(j->uses == 3);
  CHECK(!parse_command("/jump").ok());
  CHECK(!parse_command("/jump x").ok());
  CHECK(!parse_command("/jump 1 2").ok());
}

// Proves /search asks the node and lists the results numbered, newest first as the node gave
// them; /jump N opens the result's group and channel and selects the message, after loading
// older pages when it is older than what the chat holds; a number out of range is an error.
TEST_CASE("chat: /search lists results and /jump selects one", "[chat]") {
  FakeNode f;
  f.add_group("g1", "lobby");
  f.add_group("g2", "ops");
  // 150 posts in ops: the first page (100) does not hold the oldest ones.
  for (int i = 0; i < 150; ++i)
    f.logs["g2"].push_back(message("m" + std::to_string(i), std::string(64, 'b'), "bob",
                                   i == 5 ? "deploy 天気 at noon" : "post " + std::to_string(i)));
  f.connect();
  REQUIRE(f.model.selected_group() == std::optional<std::string>("g1"));

  f.answering = false;
  f.type("/search 天気");
  f.key(Key::Kind::enter);
  f.answering = true;
  REQUIRE(f.unanswered.size() == 1);
  const NodeRequest search = f.unanswered[0];
  f.unanswered.clear();
  CHECK(search.op == "search");
  CHECK(search.args.value("text", "") == "天気");
  CHECK(search.args.value("limit", 0) == 20);
  f.model.on_response(search, Json{{"results", Json::array({
                                                   result("g2", "ops", "m5", "general", "deploy 天気 at noon"),
                                                   result("g1", "lobby", "x1", "general", "天気 older"),
                                               })},
                                   {"indexing", 0}});
  f.settle();
  const std::string screen = f.screen(100, 30);
  CHECK(screen.find("search \"天気\": 2 messages, newest first; /jump N shows one") != std::string::npos);
  CHECK(screen.find("1. 2023-11-14 22:13 ops bob: deploy 天気 at noon") != std::string::npos);
  CHECK(screen.find("2. 2023-11-14 22:13 lobby bob: 天気 older") != std::string::npos);

  f.type("/jump 9");
  f.key(Key::Kind::enter);
  REQUIRE(f.model.notice());
  CHECK(f.model.notice()->find("no result 9") != std::string::npos);

  f.type("/jump 1");
  f.key(Key::Kind::enter);
  CHECK(f.model.selected_group() == std::optional<std::string>("g2"));
  CHECK(f.model.selected_message() == std::optional<std::string>("m5"));
  CHECK(f.count("log") >= 2);  // the latest page and at least one older one
}
