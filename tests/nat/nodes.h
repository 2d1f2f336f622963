// qun nodes inside the home networks of tests/nat/home_network.h: how to start one in a
// namespace, and what its links look like.
#pragma once

#include <string>

#include "tests/integration/harness.h"
#include "tests/nat/home_network.h"

namespace qun::nat {

// Options for a node in namespace `ns`, listening on `ip` (an ephemeral port); a relay if asked.
inline integration::NodeOptions in(const HomeNetwork& net, const std::string& ns,
                                   const std::string& ip, bool relay = false) {
  integration::NodeOptions o = relay ? integration::NodeOptions::as_relay() : integration::NodeOptions{};
  o.listen = ip + ":0";
  o.wrapper = net.exec_in(ns);
  return o;
}

// n's established link to the node with id `peer`, as `qun peers --json` shows it (null when
// there is none).
inline integration::Json link_to(const integration::Node& n, const std::string& peer) {
  for (const auto& p : n.json({"peers"}))
    if (p["id"] == peer && p["state"] == "established") return p;
  return integration::Json();
}

}  // namespace qun::nat
