// Tests for node/relay_bound.h: how a relay keeps one group within its byte bound, on its own,
// around a real replica's ingest with no node: past the bound the oldest posts lose their payload
// (stubs stay, in order key order) and the drops reach the report; past twice the bound new posts
// are refused and the group counts as full, while below it nothing is refused.
#include "node/relay_bound.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "fixture.h"
#include "node/event.h"

namespace qun {
namespace {

using test::must;

// A founder's group with `posts` posts of about 1 KB each, and a relay's empty replica of it.
struct Served {
  explicit Served(std::size_t posts) : founder(1) {
    founder.replica =
        std::make_unique<Replica>(must(Replica::create_group(founder.at(1), "g", "f", {})));
    for (std::size_t i = 0; i < posts; ++i)
      (void)must(founder.replica->post(founder.at(2 + i), std::string(1000, 'a' + i % 26)));
    relay = std::make_unique<Replica>(founder.replica->id(), nullptr);
  }
  std::vector<Event> events() const { return test::all_events(*founder.replica); }
  test::Peer founder;
  std::unique_ptr<Replica> relay;
};

// Past the bound, the oldest posts' payloads go first, until the group fits; their stubs stay
// (the group still has every event), the report names each drop, and the posts noted as held are
// exactly those that kept their payload.
TEST_CASE("relay bound: the oldest posts become stubs past the bound", "[node][relay_bound]") {
  Served s(20);
  const auto events = s.events();
  const std::uint64_t all = [&] {
    std::uint64_t n = 0;
    for (const auto& e : events) n += event_stored_bytes(e);
    return n;
  }();
  const std::uint64_t bound = all / 2;
  RelayBound b(s.relay->id(), bound, null_log_sink());
  std::vector<Event> batch = b.admit(0, s.relay->group(), events);
  REQUIRE(batch.size() == events.size());  // well within twice the bound
  IngestReport report = s.relay->ingest(std::move(batch));
  REQUIRE(report.admitted.size() == events.size());
  b.after_ingest(0, *s.relay, report);
  const Group& g = s.relay->group();
  CHECK(g.stored_bytes() + g.pending_bytes() <= bound);
  REQUIRE_FALSE(report.payloads_dropped.empty());
  CHECK(b.payloads_dropped() == report.payloads_dropped.size());
  CHECK(b.posts_held() + report.payloads_dropped.size() == 20);
  // The drops are the oldest posts, in order: the posts in stored order, first ones first.
  std::vector<Hash> posts;
  for (const auto* rec : g.ordered())
    if (payload_droppable(rec->event.kind)) posts.push_back(rec->event.id);
  CHECK(std::vector<Hash>(posts.begin(),
                          posts.begin() + static_cast<long>(report.payloads_dropped.size())) ==
        report.payloads_dropped);
  for (const Hash& id : report.payloads_dropped) CHECK(g.find(id)->event.payload_dropped);
  CHECK(g.size() == events.size());
  CHECK_FALSE(b.invariant_violation(g));
  CHECK_FALSE(b.full());
}

// Past relay_structure_factor times the bound, new posts are refused (nothing waits for them),
// counted, and the group is full; duplicates are not counted as refused.
TEST_CASE("relay bound: past the cap new posts are refused", "[node][relay_bound]") {
  Served s(10);
  auto events = s.events();
  // Take the create and the first five posts in; the bound is a fifth of what that holds.
  IngestReport first = s.relay->ingest(std::vector<Event>(events.begin(), events.begin() + 6));
  REQUIRE(first.admitted.size() == 6);
  const std::uint64_t bound = s.relay->group().stored_bytes() / (2 * relay_structure_factor);
  RelayBound b(s.relay->id(), bound, null_log_sink());
  b.load(s.relay->group());
  CHECK(b.posts_held() == 5);
  auto kept = b.admit(10, s.relay->group(), events);  // six duplicates, five new posts
  CHECK(kept.empty());
  CHECK(b.refused_events() == 5);
  CHECK(b.full());
  CHECK_FALSE(b.invariant_violation(s.relay->group()));
}

}  // namespace
}  // namespace qun
