// The control codec (net/control.h) on text from peers: whatever bytes a string holds, what a
// client decodes is valid UTF-8 and prints as JSON (issue 11, item 2: `qun log --json` aborted
// in nlohmann's dump on a post with invalid UTF-8).
#include <catch2/catch.hpp>

#include "net/control.h"

using namespace qun;
using Json = control::Json;

// Proves: invalid bytes in values and keys become U+FFFD on the way out, valid text is kept as
// it is, and the decoded value dumps without throwing. Before the fix the decoded text kept the
// raw bytes and dump() threw type_error 316.
TEST_CASE("control strings are valid UTF-8 after a round trip", "[net][control]") {
  Json message{{"kind", "post"},
               {"text", "\xff\xfe bad"},
               {"nick", "ok \u00e9"},
               {"list", Json::array({"\xc3", "fine"})},
               {"k\xff", 1}};
  auto decoded = control::decode(control::encode(message));
  REQUIRE(decoded.ok());
  const Json& v = decoded.value();
  CHECK(v["text"] == "\uFFFD\uFFFD bad");
  CHECK(v["nick"] == "ok \u00e9");
  CHECK(v["list"][0] == "\uFFFD");
  CHECK(v["list"][1] == "fine");
  CHECK(v.contains("k\uFFFD"));
  std::string dumped;
  REQUIRE_NOTHROW(dumped = v.dump());
  CHECK(Json::parse(dumped) == v);
}
