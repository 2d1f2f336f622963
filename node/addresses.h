// Address lists (issue 14): a node may be reached at more than one address — its IPv4 address
// (public, relayed or on its LAN) and each global IPv6 address it listens on, since many homes
// have IPv6 and no NAT — and says so in one short list, in hellos, shuffles and invite codes
// (docs/protocol.md, "Addresses"). A dialler orders a peer's list by what works from where it is
// (dial_order) and tries the next address when a dial fails; one link per peer stays the rule.
//
// Pure functions over "HOST:PORT" strings (IPv6 in brackets; a relayed address is
// "RELAY-ADDRESS/via/RELAY-ID", node/relayed.h); no IO.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "node/limits.h"

namespace qun {

namespace address_limits {
// Addresses in one node's list: one IPv4 address (public, relayed or LAN), and up to three IPv6
// ones: a home host has a stable global address per prefix and, with privacy extensions
// (RFC 8981), a temporary one beside it; a few homes have two prefixes. Past it a list is cut,
// and a peer's longer list is refused as malformed.
inline constexpr std::size_t addresses_max = 4;
// Peers whose lists a node keeps (Node's address book), learned from hellos and shuffles: more
// than a node's links (connections_max, 256) and its groups' passive lists together need for the
// peers it may dial; past it the oldest entry goes. At most 1024 * 4 * 256 bytes, 1 MiB.
inline constexpr std::size_t book_peers_max = 1024;
}  // namespace address_limits

// What a dialler knows of itself, from its own addresses: whether it has IPv6 (then a peer's
// global IPv6 address goes before its IPv4 one), and which families it has a private or
// loopback address in (then a peer's address on a private network, perhaps the same one, goes
// first, as a LAN address always did).
struct Dialer {
  bool v6 = false;
  bool local4 = false;
  bool local6 = false;
};
Dialer dialer_of(const std::vector<std::string>& own_addresses);

// True for an IP literal address others on the internet cannot reach: loopback, private
// (RFC 1918, carrier-grade NAT, IPv6 unique local), link-local, unspecified.
bool is_local_address(const std::string& address);

// A list as it may be sent or kept: empty and over-long entries dropped, duplicates dropped
// (the first kept), at most addresses_max.
std::vector<std::string> clean_addresses(const std::vector<std::string>& addresses);

// The order to dial a peer's addresses in, best first (a stable sort, so the peer's own order
// stands within a rank):
//  1. local addresses (private or loopback) in a family where the dialler has one too: the
//     peer may be on the same LAN, and then that is the only address that works (a router does
//     not always loop its public address back to its own LAN);
//  2. global IPv6, when the dialler has IPv6: no NAT on the way;
//  3. public IPv4 and host names;
//  4. global IPv6 when the dialler has none (the dial may still find a route);
//  5. other local addresses (another LAN's, most likely: they fail, after the rest);
//  6. relayed addresses: the relay carries every byte, so a direct address goes first.
std::vector<std::string> dial_order(const std::vector<std::string>& addresses, const Dialer& me);

}  // namespace qun
