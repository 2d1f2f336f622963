// Checking many events' signatures on every core (net/verify_parallel.h).
#include "net/verify_parallel.h"

#include <catch2/catch.hpp>

#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

// Proves the verdicts land at their events' places whatever the slicing: a history long enough
// for several slices, with forged events (a changed field under the old signature) scattered
// through it and at both ends, gives false exactly for those.
TEST_CASE("signatures checked on every core are each event's own verdict", "[net]") {
  Peer f(0);
  constexpr std::uint64_t t0 = 1'700'000'000'000;
  auto founder = must(Replica::create_group(f.at(t0), "club", "ada", GroupSettings{}));
  for (int i = 0; i < 1200; ++i) must(founder.post(f.at(t0 + 1 + i), "p"));
  std::vector<Event> events;
  for (const auto* rec : founder.group().ordered()) events.push_back(rec->event);
  const std::vector<std::size_t> forged{0, 1, 255, 256, 257, 600, events.size() - 1};
  for (std::size_t i : forged) {  // a changed field, a new id, the old signature
    events[i].time_ms += 1;
    events[i].id = hash(encode_header(events[i]));
  }
  const std::vector<bool> ok = verify_on_all_cores(events);
  REQUIRE(ok.size() == events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    INFO("event " << i);
    const bool is_forged = std::find(forged.begin(), forged.end(), i) != forged.end();
    CHECK(ok[i] == !is_forged);
  }
  CHECK(verify_on_all_cores({}).empty());
}
