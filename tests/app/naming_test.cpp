// The one naming rule (app/naming.h) the node, the CLI and the chat share: whole id, then a
// unique name, then a label, then a unique id prefix; and the one mention rule.
#include "app/naming.h"

#include <catch2/catch.hpp>

using namespace qun;
using namespace qun::naming;

namespace {

const Noun group{"group", "qun group list"};

std::vector<Candidate> groups() {
  return {{"abc123", "lobby"}, {"abd456", "dev"}, {"ffff00", "dev"}, {"beef00", "cafe"},
          {"cafe99", "beef"}};
}

}  // namespace

// Proves each step of the rule in order, and that an ambiguity is an error, never a guess.
TEST_CASE("naming: whole id, name, label, id prefix", "[app]") {
  const auto all = groups();
  CHECK(find("ABC123", all, group).value() == 0);   // whole id, any case
  CHECK(find("lobby", all, group).value() == 0);    // unique name
  CHECK(find("abd", all, group).value() == 1);      // unique id prefix
  CHECK(find("dev\u00B7ff", all, group).value() == 2);  // label: name, then id digits
  CHECK(find("dev\u00B7abd4", all, group).value() == 1);
  // A name wins over an id prefix: "beef" is the name of cafe99 and the start of beef00.
  CHECK(find("beef", all, group).value() == 4);
  CHECK(find("cafe", all, group).value() == 3);
  CHECK(find("cafe9", all, group).value() == 4);
}

// Proves the errors: what went wrong and what to do, on one line, with the query made safe.
TEST_CASE("naming: errors", "[app]") {
  const auto all = groups();
  auto empty = find("", all, group);
  REQUIRE(!empty.ok());
  CHECK(empty.error().code() == Errc::invalid_argument);
  CHECK(empty.error().context() == "name a group");

  auto two_named = find("dev", all, group);
  REQUIRE(!two_named.ok());
  CHECK(two_named.error().code() == Errc::invalid_argument);
  CHECK(two_named.error().context() ==
        "several groups are named 'dev'; use the label `qun group list` shows, or the id");

  auto two_ids = find("ab", all, group);
  REQUIRE(!two_ids.ok());
  CHECK(two_ids.error().code() == Errc::invalid_argument);
  CHECK(two_ids.error().context() == "'ab' matches more than one group; use more of the id");

  auto none = find("nope", all, group);
  REQUIRE(!none.ok());
  CHECK(none.error().code() == Errc::not_found);
  CHECK(none.error().context() == "no group matches 'nope'; see `qun group list`");

  auto hostile = find("\x1b[31m" + std::string(100, 'x'), all, group);
  REQUIRE(!hostile.ok());
  const std::string& words = hostile.error().context();
  CHECK(words.find('\x1b') == std::string::npos);
  CHECK(words.find("\u241B[31m") != std::string::npos);
  CHECK(words.find(std::string(query_shown_chars_max, 'x')) == std::string::npos);
  CHECK(words.find("\u2026'") != std::string::npos);
}

// Proves mentions are whole words compared with Unicode case folding, so the node's mention
// counts and the chat's highlighting agree (they once matched byte-wise and by folding).
TEST_CASE("naming: mentions", "[app]") {
  CHECK(mentions("hey alice!", "alice"));
  CHECK(mentions("ALICE: look", "alice"));
  CHECK(mentions("@Alice", "alice"));
  CHECK_FALSE(mentions("malice in wonderland", "alice"));
  CHECK_FALSE(mentions("alice_bot says hi", "alice"));
  CHECK_FALSE(mentions("alice-2", "alice"));
  CHECK(mentions("ZO\u00CB, tea?", "zo\u00EB"));
  CHECK(mentions("\u00C9MILE!", "\u00E9mile"));
  // A letter beyond ASCII next to the nick makes it part of a longer word.
  CHECK_FALSE(mentions("bob\u00E9 is here", "bob"));
  CHECK_FALSE(mentions("anything", ""));
  CHECK_FALSE(mentions("", "alice"));
}
