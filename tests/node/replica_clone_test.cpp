// Replica::clone_for: a copy for another member must equal what that member gets by ingesting
// every event itself: same history and heads, the keys sealed to it (so it reads posts), none
// of the original's other keys, and it can author events the original then accepts.
#include <catch2/catch.hpp>

#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

namespace {
constexpr std::uint64_t t0 = 1'700'000'000'000;
}  // namespace

TEST_CASE("clone_for equals a replica built by ingest", "[node][replica]") {
  Peer founder(0), bob(1), carol(2), eve(3);
  founder.replica = std::make_unique<Replica>(
      must(Replica::create_group(founder.at(t0), "club", "ada", GroupSettings{})));
  must(founder.replica->add(founder.at(t0 + 1), bob.key.public_key()));
  must(founder.replica->add(founder.at(t0 + 2), carol.key.public_key()));
  must(founder.replica->post(founder.at(t0 + 3), "hello"));

  Replica by_ingest(founder.replica->id(), &bob.key);
  by_ingest.ingest(all_events(*founder.replica));
  Replica cloned = founder.replica->clone_for(&bob.key);

  CHECK(cloned.state().history == by_ingest.state().history);
  CHECK(cloned.group().heads() == by_ingest.group().heads());
  CHECK(cloned.keyring().size() == by_ingest.keyring().size());
  CHECK(cloned.take_new_keys().size() == by_ingest.take_new_keys().size());
  auto posts = cloned.history();
  REQUIRE(!posts.empty());
  CHECK(posts.back().text == std::optional<std::string>("hello"));

  // The clone authors as bob; the founder admits it like any peer's event.
  auto reply = must(cloned.post(bob.at(t0 + 4), "hi"));
  auto report = founder.replica->ingest(reply);
  CHECK(report.admitted.size() == reply.size());
  CHECK(founder.replica->history().back().text == std::optional<std::string>("hi"));

  // A non-member's clone holds no key: it cannot read.
  Replica outsider = founder.replica->clone_for(&eve.key);
  CHECK(outsider.keyring().size() == 0);
  CHECK(!outsider.history().back().text.has_value());
  // A relay's clone (no identity) replicates without keys.
  Replica relay = founder.replica->clone_for(nullptr);
  CHECK(relay.group().size() == founder.replica->group().size());
  CHECK(relay.keyring().size() == 0);
}
