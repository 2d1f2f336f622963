// HomeNetwork: a small model of the internet and of people's home networks, built from Linux
// network namespaces, for the NAT tests (issue 14). It needs root, iproute2 and nftables; a
// test asks unavailable() first and skips with its reason (see QUN_NAT_SKIP below).
//
// The topology, all in namespaces named "qunnat<PID>-..." (PID: this test process):
//
//   internet hosts 198.51.100.10+i ──┐
//                                    ├── bridge "inet" (the internet; namespace "-net")
//   router k: wan 198.51.100.1+k ────┘
//             lan 10.(k+1).0.1/24, a bridge; its hosts 10.(k+1).0.2+j, default route via it
//
// Each router forwards and masquerades what leaves its wan, and forwards in only what belongs to
// a connection its LAN opened (conntrack) or a port forwarded with forward_port, as a home
// router does. A router with
// `symmetric = false` maps endpoint-independently in practice (Linux masquerade keeps the
// source port when it is free, whatever the destination); `symmetric = true` adds
// `fully-random`, a new random port per connection, which is how a symmetric NAT looks to the
// outside. Internet hosts have no route to the 10.x networks: a dial into a home fails at once.
//
// Lifetime. The constructor first removes what an earlier test process left behind (namespaces
// of a PID that no longer runs, and their processes), then builds the network; on any failure
// it removes what it built and fails the test. The destructor kills every process still inside
// its namespaces and deletes them, which deletes every link and bridge with them. Declare it
// before the integration Cluster, so that the nodes stop (the Cluster's destructor) first.
// Single-threaded; one HomeNetwork per test.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace qun::nat {

// Printed by a test that skips; CTest reports a test whose output matches it as skipped.
inline constexpr const char* skip_marker = "QUN_NAT_SKIP";

struct HomeSpec {
  bool symmetric = false;  // the router maps every connection to a new random port
  int hosts = 1;           // hosts on the home's LAN
  // The home also has IPv6: 2001:db8:(k+1)::/64, routed by its router without NAT and without
  // a filter, as many homes with IPv6 are reachable from outside (internet hosts have
  // 2001:db8::10+i and a route to it, and the routers of homes with IPv6 route to each other's).
  bool ipv6 = false;
  // The router lets no connection from outside into its IPv6 network either (a stateful
  // firewall, as some home routers keep by default): IPv6 without NAT, but not reachable.
  bool ipv6_firewall = false;
  // The router drops what the internet opens towards the router itself, as most home routers
  // do ("stealth"), instead of answering a closed port with a reset as a plain Linux host does.
  // A hole punch needs it: a peer's SYN that arrives before this home's own has left must be
  // lost (its retransmission then finds the router's mapping), not refused.
  bool stealth = false;
};

class HomeNetwork {
 public:
  // Why namespaces cannot be used here (not root, `ip` or `nft` missing, `ip netns add`
  // refused), or nullopt when they can.
  static std::optional<std::string> unavailable();

  HomeNetwork(std::vector<HomeSpec> homes, int internet_hosts = 1);
  ~HomeNetwork();
  HomeNetwork(const HomeNetwork&) = delete;
  HomeNetwork& operator=(const HomeNetwork&) = delete;

  // A host on the internet (0: the one tests use as the relay).
  std::string internet_ns(int i) const;
  std::string internet_ip(int i) const;
  // Host j of home k.
  std::string home_ns(int k, int j = 0) const;
  std::string home_ip(int k, int j = 0) const;
  // Home k's router: its namespace and its address on the internet.
  std::string router_ns(int k) const;
  std::string router_public_ip(int k) const;
  // IPv6 addresses (without brackets): of internet host i, and of host j of home k (ipv6 homes).
  std::string internet_ip6(int i) const;
  std::string home_ip6(int k, int j = 0) const;

  // Forwards TCP `port` of router k's public address to the same port of host j of its LAN: the
  // port forwarding people set up on their routers to be reachable from outside.
  void forward_port(int k, int port, int j = 0);

  // The argv prefix that runs a program in namespace ns: {"/path/ip", "netns", "exec", ns}.
  std::vector<std::string> exec_in(const std::string& ns) const;
  // True when a TCP connection from namespace `from` to HOST:PORT is accepted within a second.
  bool can_connect(const std::string& from, const std::string& address) const;

  // The namespaces this fixture made, for tests of its own cleanup.
  const std::vector<std::string>& namespaces() const { return made_; }

  // Removes namespaces named with the fixture's prefix whose process is gone, with what runs
  // in them. Returns how many it removed.
  static int remove_leftovers();

 private:
  void build();
  void teardown() noexcept;
  void ip(const std::vector<std::string>& args);
  void in(const std::string& ns, const std::vector<std::string>& argv, const std::string& input = {});
  std::string add_ns(const std::string& suffix);

  std::vector<HomeSpec> homes_;
  int internet_hosts_;
  std::string prefix_;
  std::vector<std::string> made_;
};

}  // namespace qun::nat
