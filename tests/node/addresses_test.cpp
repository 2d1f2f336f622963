// Address lists (node/addresses.h): what a node keeps of a list, and the order a dialler tries
// a peer's addresses in.
#include <catch2/catch.hpp>

#include "node/addresses.h"
#include "node/limits.h"

using namespace qun;

namespace {
using List = std::vector<std::string>;
const std::string lan4 = "192.168.1.20:7420";
const std::string public4 = "203.0.113.9:7420";
const std::string global6 = "[2001:db8::9]:7420";
const std::string ula6 = "[fd00::9]:7420";
const std::string relayed =
    "198.51.100.1:7420/via/0101010101010101010101010101010101010101010101010101010101010101";
}  // namespace

// Proves a dialler learns from its own addresses whether it has IPv6 and in which families it
// sits on a private network.
TEST_CASE("addresses: a dialler's view of itself", "[node][addresses]") {
  Dialer home = dialer_of({lan4, global6});
  CHECK(home.v6);
  CHECK(home.local4);
  CHECK_FALSE(home.local6);
  Dialer server = dialer_of({public4});
  CHECK_FALSE(server.v6);
  CHECK_FALSE(server.local4);
  Dialer loopback = dialer_of({"127.0.0.1:1", "[::1]:2", "", "relay.example.org:7"});
  CHECK(loopback.v6);
  CHECK(loopback.local4);
  CHECK(loopback.local6);
}

// Proves the order a node dials a peer's list in: a LAN address first when the dialler is on a
// private network of that family too, global IPv6 before IPv4 when the dialler has IPv6 (after
// it when not), another network's private address after every public one, a relayed address
// last; the peer's own order stands within a rank.
TEST_CASE("addresses: dial order", "[node][addresses]") {
  const List peer{relayed, public4, global6, lan4};
  CHECK(dial_order(peer, dialer_of({"192.168.1.5:7420", "[2001:db8::5]:7420"})) ==
        List{lan4, global6, public4, relayed});
  CHECK(dial_order(peer, dialer_of({"192.168.1.5:7420"})) == List{lan4, public4, global6, relayed});
  CHECK(dial_order(peer, dialer_of({"203.0.113.5:7420", "[2001:db8::5]:7420"})) ==
        List{global6, public4, lan4, relayed});
  CHECK(dial_order(peer, dialer_of({"203.0.113.5:7420"})) == List{public4, global6, lan4, relayed});
  // An IPv6 private address first only for a dialler on an IPv6 private network.
  CHECK(dial_order({public4, ula6}, dialer_of({"[fd00::5]:7420"})) == List{ula6, public4});
  CHECK(dial_order({ula6, public4}, dialer_of({"[2001:db8::5]:7420"})) == List{public4, ula6});
  // Host names rank with public IPv4, in the peer's order.
  CHECK(dial_order({"b.example.org:1", public4, "a.example.org:1"}, Dialer{}) ==
        List{"b.example.org:1", public4, "a.example.org:1"});
}

// Proves a list is kept clean and bounded whatever a peer sends: empty, over-long and repeated
// entries go, and at most addresses_max stay (the first ones).
TEST_CASE("addresses: lists are cleaned and bounded", "[node][addresses]") {
  CHECK(clean_addresses({"", public4, public4, std::string(limits::address_bytes_max + 1, 'x'),
                         global6}) == List{public4, global6});
  List many;
  for (int i = 0; i < 10; ++i) many.push_back("192.0.2." + std::to_string(i) + ":7420");
  auto kept = clean_addresses(many);
  REQUIRE(kept.size() == address_limits::addresses_max);
  CHECK(kept.front() == many.front());
  CHECK(dial_order(many, Dialer{}).size() == address_limits::addresses_max);
}
