// Listing order and labels (net/listing.h): what `group list`, `members` and the chat show.
#include "net/listing.h"

#include <catch2/catch.hpp>

using namespace qun::listing;

// Proves groups sort by name, case-folded, then by join time, whatever their hash ids, and that
// a group joined later does not move the groups before it in name order.
TEST_CASE("groups sort by name, then join time", "[net][listing]") {
  std::vector<Entry> g = {{"ff01", "ops", 10, 0},
                          {"0a02", "Lobby", 30, 0},
                          {"1b11", "lobby", 20, 0},
                          {"0003", "dev", 40, 0},
                          {"0000", "", UINT64_MAX, 0}};
  auto o = order(g);
  std::vector<std::string> ids;
  for (auto i : o) ids.push_back(g[i].id);
  CHECK(ids == std::vector<std::string>{"0003", "1b11", "0a02", "ff01", "0000"});
  g.push_back({"0001", "zoo", 50, 0});  // joined last, sorts after the rest: numbers stay
  auto o2 = order(g);
  for (std::size_t i = 0; i < o.size() - 1; ++i) CHECK(o2[i] == o[i]);
}

// Proves two entries of one name are told apart by the shortest id prefix of at least 4 digits
// that differs, and unique names stay as they are.
TEST_CASE("labels tell apart entries of the same name", "[net][listing]") {
  std::vector<Entry> g = {{"1b11aa", "lobby", 0, 0},
                          {"77e0bb", "lobby", 0, 0},
                          {"1b1100", "lobby", 0, 0},
                          {"abcd", "ops", 0, 0},
                          {"deadbeef99", "", 0, 0}};
  auto l = labels(g);
  CHECK(l[0] == "lobby\u00B71b11a");
  CHECK(l[1] == "lobby\u00B777e0");
  CHECK(l[2] == "lobby\u00B71b110");
  CHECK(l[3] == "ops");
  CHECK(l[4] == "deadbeef");
}

// Proves members sort by role first (founder, admins, members), then by nick.
TEST_CASE("members sort by role, then nick", "[net][listing]") {
  std::vector<Entry> m = {{"01", "zed", 0, 2}, {"02", "amy", 0, 2}, {"03", "cy", 0, 0},
                          {"04", "Bob", 0, 1}, {"05", "al", 0, 1}};
  std::vector<std::string> nicks;
  for (auto i : order(m)) nicks.push_back(m[i].name);
  CHECK(nicks == std::vector<std::string>{"cy", "al", "Bob", "amy", "zed"});
}
