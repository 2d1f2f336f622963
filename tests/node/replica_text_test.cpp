// Authoring refuses text that would reach other people's terminals or scripts broken: invalid
// UTF-8 anywhere, control characters in nicks, group names and topics, and in posts other than
// newlines and tabs (issue 11, items 2 and 3). Text from peers is not checked here: readers
// neutralise it (app/render.h), since another implementation may send anything.
#include <catch2/catch.hpp>

#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

namespace {
constexpr std::uint64_t t0 = 1'700'000'000'000;
}  // namespace

// Proves: each authoring entry point refuses invalid UTF-8 and ESC with invalid_argument and
// makes no event; a post keeps its newlines and tabs.
TEST_CASE("authoring refuses invalid UTF-8 and control characters", "[node][replica]") {
  Peer a(0);
  CHECK(Replica::create_group(a.at(t0), "lob\x1b[31mby", "ada", GroupSettings{}).error().code() ==
        Errc::invalid_argument);
  CHECK(Replica::create_group(a.at(t0), "lobby", "\x1b[31mevil", GroupSettings{}).error().code() ==
        Errc::invalid_argument);
  CHECK(Replica::create_group(a.at(t0), "\xff", "ada", GroupSettings{}).error().code() ==
        Errc::invalid_argument);
  Replica r = must(Replica::create_group(a.at(t0), "lobby", "ada", GroupSettings{}));
  const std::size_t events = r.group().size();

  auto bad_post = r.post(a.at(t0 + 1), "\xff\xfe bad");
  REQUIRE(!bad_post.ok());
  CHECK(bad_post.error().code() == Errc::invalid_argument);
  CHECK(bad_post.error().context().find("UTF-8") != std::string::npos);
  auto esc_post = r.post(a.at(t0 + 1), "\x1b[31mRED \x1b]0;pwned\x07");
  REQUIRE(!esc_post.ok());
  CHECK(esc_post.error().context().find("U+001B") != std::string::npos);
  CHECK(!r.set_topic(a.at(t0 + 1), "a\nb").ok());
  CHECK(!r.set_topic(a.at(t0 + 1), "\xc2\x9b").ok());
  CHECK(!r.set_name(a.at(t0 + 1), "x\x07").ok());
  CHECK(r.group().size() == events);

  auto lines = must(r.post(a.at(t0 + 2), "line one\nline two\twith a tab"));
  CHECK(r.history().back().text == std::optional<std::string>("line one\nline two\twith a tab"));
  CHECK(r.set_topic(a.at(t0 + 3), "").ok());
}
