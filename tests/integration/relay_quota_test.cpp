// Relay slots (issue 10, finding 10): the operator decides who may claim them.
#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// Proves, with real processes, that a stranger cannot fill a relay's slots and that the operator
// can let a requester in. How: R runs `qun node --relay --max-groups 2 --relay-allow A`. S, a
// stranger, asks R to serve three groups of its own: each `qun relay add` fails with one line
// saying it waits for the operator, R serves none, and `qun relay requests` lists them. A (on the
// allow-list) asks for its group: accepted at once. Then the operator approves one of S's groups
// by id (`qun relay approve GROUP`): R serves it (S is its founder, so it stays past probation);
// R is then full (2 groups), and approving S's key refuses nothing already held but takes nothing
// more: `qun relay add` for another of S's groups is refused with "relay full".
TEST_CASE("a stranger cannot fill a relay's slots; an approved requester can", "[integration][relay]") {
  Cluster cluster;
  Node& r = cluster.add("relay");
  Node& a = cluster.add("alice");
  Node& s = cluster.add("stranger");
  a.start();
  s.start();
  NodeOptions relay = NodeOptions::as_relay();
  relay.extra_args = {"--max-groups", "2", "--relay-allow", a.id()};
  r.start(relay);

  std::vector<std::string> theirs;
  for (int k = 0; k < 3; ++k) {
    theirs.push_back(create_group(s, "squat-" + std::to_string(k)));
    Outcome refused = s.qun({"relay", "add", theirs.back(), r.address()});
    INFO(refused.describe());
    CHECK(!refused.ok());
    CHECK(refused.err_lines().size() == 1);
    CHECK(refused.err.find("approv") != std::string::npos);
  }
  Json waiting = r.json({"relay", "requests"});
  CHECK(waiting.size() == 3);
  for (const auto& g : theirs) CHECK(status_of_group(r, g).is_null());

  const std::string mine = create_group(a, "mine");
  a.ok({"post", mine, "hello"});
  a.ok({"relay", "add", mine, r.address()});
  wait_until([&] { return status_of_group(r, mine).is_object(); }, propagate_bound,
             "the relay serves the allowed admin's group");

  Json approved = r.json({"relay", "approve", theirs[0]});
  CHECK(approved.value("group", "") == theirs[0]);
  wait_until([&] { return status_of_group(r, theirs[0]).value("events", 0) > 0; }, propagate_bound,
             "the relay serves and catches up the approved group");
  CHECK(r.json({"relay", "requests"}).size() == 2);
  // Full now: allowing the stranger's key takes nothing more on.
  Json allowed = r.json({"relay", "approve", s.id()});
  CHECK(allowed.value("key", "") == s.id());
  CHECK(allowed["groups"].empty());
  Outcome full = s.qun({"relay", "add", theirs[1], r.address()});
  CHECK(!full.ok());
  CHECK(full.err.find("relay full") != std::string::npos);
  CHECK(status_of_group(r, theirs[1]).is_null());
  // The allow-list survives a restart (the home's relay-allow file).
  CHECK(file_contents(r.home() / "relay-allow").find(s.id()) != std::string::npos);
}

}  // namespace
}  // namespace qun::integration
