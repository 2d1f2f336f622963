// Relayed links (issue 14) with real nodes behind real NAT: two members in two homes, neither
// dialable, join with codes made behind NAT and chat over a link of their own spliced by the
// group's relay on the internet; a relay past its bound on relayed links refuses more, says why
// in its log, and keeps serving.
#include <catch2/catch.hpp>
#include <iostream>

#include "tests/integration/harness.h"
#include "tests/nat/home_network.h"
#include "tests/nat/nodes.h"

namespace qun::nat {
namespace {

using integration::Cluster;
using integration::Json;
using integration::Node;
using integration::NodeOptions;

// Waits until n has a link to `peer` that goes through `relay` (`"via"` names it).
void wait_relayed(const Node& n, const Node& peer, const Node& relay) {
  integration::wait_until(
      [&] {
        Json l = link_to(n, peer.id());
        return !l.is_null() && l["via"] == relay.id();
      },
      3 * integration::propagate_bound,
      n.name() + " links to " + peer.name() + " through the relay");
}

// Proves relayed links end to end: Ada (home 1) and Bob (home 2) are behind NAT; the relay on the
// internet serves their group and carries at most one relayed link. Bob joins with a code Ada
// made behind NAT; both reserve on the relay (`qun id` shows their relayed address), link to each
// other through it (`qun peers` shows `"via"`: the relay's id), and chat. Cy (home 3) joins
// later: the relay, full, refuses his relayed link with a logged reason, counts the refusal, and
// keeps serving: Cy reads and is read through the relay's store, and Ada and Bob keep their link.
TEST_CASE("relayed: members behind two NATs chat over a link their relay splices, and a full "
          "relay refuses more and keeps serving",
          "[nat]") {
  if (auto why = HomeNetwork::unavailable()) {
    std::cout << skip_marker << ": " << *why << "\n";
    return;
  }
  HomeNetwork net({{.symmetric = false}, {.symmetric = false}, {.symmetric = false}});
  Cluster cluster;
  auto& ada = cluster.add("ada");
  ada.start(in(net, net.home_ns(0), net.home_ip(0)));
  auto& relay = cluster.add("relay");
  NodeOptions r = in(net, net.internet_ns(0), net.internet_ip(0));
  r.relay = true;
  r.extra_args = {"--relay-allow", ada.id(), "--max-relayed-links", "1"};
  relay.start(r);
  auto& bob = cluster.add("bob");
  bob.start(in(net, net.home_ns(1), net.home_ip(1)));

  const std::string group = integration::create_group(ada, "homes");
  ada.ok({"relay", "add", group, relay.address()});
  integration::wait_until([&] { return ada.json({"id"})["reachability"] == "behind_nat"; },
                          integration::propagate_bound, "Ada knows she is behind NAT");
  CHECK(integration::invite_and_join(ada, bob, group) == group);

  const std::string relayed_prefix = relay.address() + "/via/" + relay.id();
  for (Node* n : {&ada, &bob}) {
    integration::wait_until([&] { return n->json({"id"})["relayed_address"].is_string(); },
                            3 * integration::propagate_bound,
                            n->name() + " holds a reservation on the relay");
    CHECK(n->json({"id"})["relayed_address"] == relayed_prefix);
  }
  wait_relayed(ada, bob, relay);
  wait_relayed(bob, ada, relay);
  CHECK(link_to(ada, relay.id())["via"].is_null());  // the link to the relay itself is direct

  ada.ok({"post", group, "hello from home 1"});
  bob.ok({"post", group, "hello from home 2"});
  integration::wait_for_posts(bob, group, {"hello from home 1"});
  integration::wait_for_posts(ada, group, {"hello from home 2"});
  Json rs = relay.json({"status"})["relayed"];
  CHECK(rs["carried"] == 1);
  CHECK(rs["reservations"] == 2);
  CHECK(rs["bytes"].get<std::uint64_t>() > 0);
  CHECK_THAT(bob.ok({"peers"}), Catch::Contains("via relay"));

  // Cy joins too; his relayed link would be the relay's second.
  auto& cy = cluster.add("cy");
  cy.start(in(net, net.home_ns(2), net.home_ip(2)));
  CHECK(integration::invite_and_join(ada, cy, group) == group);
  integration::wait_until(
      [&] { return relay.json({"status"})["relayed"]["refused_full"].get<std::uint64_t>() > 0; },
      3 * integration::propagate_bound, "the full relay refuses a relayed link");
  CHECK_THAT(relay.log(), Catch::Contains("relayed link refused") &&
                              Catch::Contains("relay full: 1 relayed links"));
  CHECK_THAT(relay.ok({"status"}), Catch::Contains("relaying 1 of at most 1 links"));
  ada.ok({"post", group, "hello everyone"});
  cy.ok({"post", group, "hello from home 3"});
  integration::wait_for_posts(cy, group, {"hello everyone", "hello from home 2"});
  integration::wait_for_posts(bob, group, {"hello from home 3"});
  CHECK(link_to(ada, bob.id())["via"] == relay.id());
  CHECK(relay.json({"status"})["relayed"]["carried"] == 1);
}

}  // namespace
}  // namespace qun::nat
