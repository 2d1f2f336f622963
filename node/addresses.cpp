#include "node/addresses.h"

#include <algorithm>

#include "node/reachability.h"
#include "node/relayed.h"

namespace qun {

bool is_local_address(const std::string& address) {
  auto hp = parse_host_port(address);
  return hp && !is_public_host(*hp);
}

Dialer dialer_of(const std::vector<std::string>& own_addresses) {
  Dialer d;
  for (const auto& a : own_addresses) {
    auto hp = parse_host_port(a);
    if (!hp) continue;
    const bool local = !is_public_host(*hp);
    if (hp->v6) {
      d.v6 = true;
      d.local6 = d.local6 || local;
    } else {
      d.local4 = d.local4 || local;
    }
  }
  return d;
}

std::vector<std::string> clean_addresses(const std::vector<std::string>& addresses) {
  std::vector<std::string> out;
  for (const auto& a : addresses) {
    if (out.size() == address_limits::addresses_max) break;
    if (a.empty() || a.size() > limits::address_bytes_max) continue;
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  return out;
}

namespace {

int rank(const std::string& address, const Dialer& me) {
  if (parse_relayed_address(address)) return 6;
  auto hp = parse_host_port(address);
  if (!hp) return 3;  // a host name: taken to be public, as invite codes do
  if (!is_public_host(*hp)) return (hp->v6 ? me.local6 : me.local4) ? 1 : 5;
  if (hp->v6) return me.v6 ? 2 : 4;
  return 3;
}

}  // namespace

std::vector<std::string> dial_order(const std::vector<std::string>& addresses, const Dialer& me) {
  std::vector<std::string> out = clean_addresses(addresses);
  std::stable_sort(out.begin(), out.end(), [&](const std::string& a, const std::string& b) {
    return rank(a, me) < rank(b, me);
  });
  return out;
}

}  // namespace qun
