// Direct conversations in the chat (issue 15): /msg and /query ask the node for the direct
// group with a member (op "dm"), open it, and list it under "direct" in the groups pane.
#include <catch2/catch.hpp>

#include "cli/chat_model.h"
#include "tests/cli/chat_fake_node.h"

using namespace qun;
using namespace qun::chat;
using namespace qun::chat::test;

// Proves the commands parse as irssi's: /msg needs a nick and a text, /query a nick and takes
// an optional text; both keep the text whole (spaces inside it).
TEST_CASE("chat: /msg and /query parse like irssi's", "[chat][dm]") {
  auto msg = parse_command("/msg bob hello there");
  REQUIRE(msg.ok());
  CHECK(msg->kind == Command::Kind::msg);
  CHECK(msg->arg == "bob");
  CHECK(msg->arg2 == "hello there");
  CHECK_FALSE(parse_command("/msg bob").ok());
  CHECK(parse_command("/msg bob").error().context() == "usage: /msg NICK TEXT (a direct message)");
  CHECK_FALSE(parse_command("/msg").ok());
  auto query = parse_command("/query bob");
  REQUIRE(query.ok());
  CHECK(query->kind == Command::Kind::query);
  CHECK(query->arg2.empty());
  CHECK(parse_command("/QUERY bob hi")->arg2 == "hi");
  CHECK_FALSE(parse_command("/query").ok());
}

// Proves /msg end to end against the fake node: it asks for "dm" with the member's id (the
// label bob names in the group's roster) and the text, opens the new conversation, which the
// pane lists under a "direct" heading after the groups, with the title saying what it is; a
// line typed there posts to the direct group; /query bob from another group opens the same one
// without sending anything.
TEST_CASE("chat: /msg opens a direct conversation listed under direct", "[chat][dm]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.add_group("g2", "ops");
  node.connect();
  node.type("/msg bob are you there?");
  node.key(Key::Kind::enter);
  REQUIRE(node.dm_requests.size() == 1);
  CHECK(node.dm_requests[0]["member"] == std::string(64, 'b'));
  CHECK(node.dm_requests[0]["text"] == "are you there?");
  REQUIRE(node.model.selected_group().has_value());
  CHECK(*node.model.selected_group() == "d1");
  CHECK(node.model.group("d1")->direct);
  const std::string screen = node.screen();
  INFO(screen);
  CHECK(screen.find("@bob \u00B7 direct conversation") != std::string::npos);
  // The pane: the groups, then the heading, then the conversation.
  const Frame f = node.model.layout(80, 24);
  std::vector<std::string> pane;
  for (const auto& row : f.groups) pane.push_back(row_text(row));
  REQUIRE(pane.size() >= 4);
  CHECK(pane[0].find("lobby") != std::string::npos);
  CHECK(pane[1].find("ops") != std::string::npos);
  CHECK(pane[2].find("direct") == 0);
  CHECK(pane[3].find("@bob") != std::string::npos);
  CHECK(pane[3].find("3 ") == 0);  // numbered on from the groups, for Alt+3
  // A line typed in the conversation is a post to the direct group.
  node.type("see you at 5");
  node.key(Key::Kind::enter);
  REQUIRE_FALSE(node.posts.empty());
  CHECK(node.posts.back()["group"] == "d1");
  // From another group, /query opens the same conversation and sends nothing.
  node.key(Key::Kind::alt_digit, 1);
  CHECK(*node.model.selected_group() == "g1");
  node.type("/query bob");
  node.key(Key::Kind::enter);
  REQUIRE(node.dm_requests.size() == 2);
  CHECK_FALSE(node.dm_requests[1].contains("text"));
  CHECK(*node.model.selected_group() == "d1");
}
