#include "tests/nat/home_network.h"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "tests/integration/harness.h"

namespace qun::nat {
namespace {

namespace fs = std::filesystem;
using integration::Millis;
using integration::Outcome;

// Every namespace this fixture makes is named "qunnat<PID>-<what>".
constexpr std::string_view ns_prefix = "qunnat";
// One `ip` or `nft` command: they return in milliseconds; only a wedged kernel reaches this.
constexpr Millis command_bound{10'000};

// s followed by n, built by appending: GCC 12 warns falsely (-Wrestrict) on "p" + to_string(n).
std::string num(std::string s, int n) {
  s += std::to_string(n);
  return s;
}

std::string find_program(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    const std::string path = std::string(dir) + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

Outcome run(const std::vector<std::string>& argv, const std::string& input = {}) {
  return integration::run(argv, integration::child_env(), input, command_bound);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// The namespaces that exist now (`ip netns list` prints "NAME" or "NAME (id: N)").
std::vector<std::string> list_namespaces() {
  std::vector<std::string> out;
  for (const auto& line : lines(run({find_program("ip"), "netns", "list"}).out))
    out.push_back(line.substr(0, line.find(' ')));
  return out;
}

// Kills every process in namespace ns, then deletes it (which deletes its links).
void remove_namespace(const std::string& ns) {
  const std::string ip = find_program("ip");
  for (int round = 0; round < 3; ++round) {
    auto pids = lines(run({ip, "netns", "pids", ns}).out);
    if (pids.empty()) break;
    for (const auto& p : pids) ::kill(static_cast<pid_t>(std::stol(p)), SIGKILL);
    // The killed processes leave the namespace once reaped by their parent (the test's
    // harness, or init for orphans); the next round checks again.
  }
  run({ip, "netns", "delete", ns});
}

}  // namespace

std::optional<std::string> HomeNetwork::unavailable() {
  if (::geteuid() != 0) return "network namespaces need root (run the nat tests as root)";
  if (find_program("ip").empty()) return "`ip` (iproute2) is not installed";
  if (find_program("nft").empty()) return "`nft` is not installed (scripts/setup installs nftables)";
  const std::string probe = std::string(ns_prefix) + std::to_string(::getpid()) + "-probe";
  Outcome added = run({find_program("ip"), "netns", "add", probe});
  if (!added.ok()) return "`ip netns add` fails here: " + added.err;
  run({find_program("ip"), "netns", "delete", probe});
  return std::nullopt;
}

int HomeNetwork::remove_leftovers() {
  int removed = 0;
  for (const auto& ns : list_namespaces()) {
    if (ns.rfind(ns_prefix, 0) != 0) continue;
    const std::string rest = ns.substr(ns_prefix.size());
    const std::string pid = rest.substr(0, rest.find('-'));
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (fs::exists("/proc/" + pid)) continue;  // a test process still running owns it
    remove_namespace(ns);
    ++removed;
  }
  return removed;
}

HomeNetwork::HomeNetwork(std::vector<HomeSpec> homes, int internet_hosts)
    : homes_(std::move(homes)),
      internet_hosts_(internet_hosts),
      prefix_(std::string(ns_prefix) + std::to_string(::getpid()) + "-") {
  remove_leftovers();
  try {
    build();
  } catch (...) {
    teardown();
    throw;
  }
}

HomeNetwork::~HomeNetwork() { teardown(); }

void HomeNetwork::teardown() noexcept {
  try {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) remove_namespace(*it);
  } catch (...) {
  }
  made_.clear();
}

void HomeNetwork::ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv{find_program("ip")};
  argv.insert(argv.end(), args.begin(), args.end());
  Outcome o = run(argv);
  if (!o.ok()) throw std::runtime_error("home network: " + o.describe());
}

void HomeNetwork::in(const std::string& ns, const std::vector<std::string>& argv,
                     const std::string& input) {
  std::vector<std::string> full = exec_in(ns);
  full.insert(full.end(), argv.begin(), argv.end());
  Outcome o = run(full, input);
  if (!o.ok()) throw std::runtime_error("home network: " + o.describe());
}

std::string HomeNetwork::add_ns(const std::string& suffix) {
  const std::string ns = prefix_ + suffix;
  ip({"netns", "add", ns});
  made_.push_back(ns);
  ip({"-n", ns, "link", "set", "lo", "up"});
  return ns;
}

void HomeNetwork::build() {
  const std::string net = add_ns("net");
  ip({"-n", net, "link", "add", "name", "inet", "type", "bridge"});
  ip({"-n", net, "link", "set", "inet", "up"});
  int port = 0;  // bridge ports: p0, p1, ...
  // Plugs a new interface `name` of namespace ns into the internet bridge.
  auto plug = [&](const std::string& ns, const std::string& name) {
    const std::string p = num("p", port++);
    ip({"-n", net, "link", "add", "name", p, "type", "veth", "peer", "name", name, "netns", ns});
    ip({"-n", net, "link", "set", p, "master", "inet", "up"});
  };
  for (int i = 0; i < internet_hosts_; ++i) {
    const std::string ns = add_ns(num("i", i));
    plug(ns, "eth0");
    ip({"-n", ns, "addr", "add", internet_ip(i) + "/24", "dev", "eth0"});
    // nodad: the address is usable at once, not after duplicate address detection.
    ip({"-n", ns, "addr", "add", internet_ip6(i) + "/64", "dev", "eth0", "nodad"});
    ip({"-n", ns, "link", "set", "eth0", "up"});
    for (int k = 0; k < static_cast<int>(homes_.size()); ++k)
      if (homes_[k].ipv6)
        ip({"-n", ns, "-6", "route", "add", num("2001:db8:", k + 1) + "::/64", "via",
            num("2001:db8::", 1 + k)});
  }
  for (int k = 0; k < static_cast<int>(homes_.size()); ++k) {
    const std::string r = add_ns(num("r", k));
    plug(r, "wan");
    ip({"-n", r, "addr", "add", router_public_ip(k) + "/24", "dev", "wan"});
    ip({"-n", r, "link", "set", "wan", "up"});
    ip({"-n", r, "link", "add", "name", "lan", "type", "bridge"});
    ip({"-n", r, "addr", "add", num("10.", k + 1) + ".0.1/24", "dev", "lan"});
    ip({"-n", r, "link", "set", "lan", "up"});
    in(r, {find_program("sysctl"), "-qw", "net.ipv4.ip_forward=1"});
    if (homes_[k].ipv6) {
      ip({"-n", r, "addr", "add", num("2001:db8::", 1 + k) + "/64", "dev", "wan", "nodad"});
      ip({"-n", r, "addr", "add", num("2001:db8:", k + 1) + "::1/64", "dev", "lan", "nodad"});
      in(r, {find_program("sysctl"), "-qw", "net.ipv6.conf.all.forwarding=1"});
    }
    // Masquerade what leaves for the internet; forward in only replies to what the LAN opened.
    const std::string ruleset =
        "table ip qun_home {\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        "    oifname \"wan\" masquerade" +
        std::string(homes_[k].symmetric ? " fully-random" : "") +
        "\n"
        "  }\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter; policy drop;\n"
        "    ct state established,related accept\n"
        "    ct status dnat accept\n"
        "    iifname \"lan\" accept\n"
        "  }\n" +
        std::string(homes_[k].stealth ? "  chain input {\n"
                                        "    type filter hook input priority filter; policy accept;\n"
                                        "    iifname \"wan\" ct state new drop\n"
                                        "  }\n"
                                      : "") +
        "}\n" +
        std::string(homes_[k].ipv6 && homes_[k].ipv6_firewall
                        ? "table ip6 qun_home6 {\n"
                          "  chain forward {\n"
                          "    type filter hook forward priority filter; policy drop;\n"
                          "    ct state established,related accept\n"
                          "    iifname \"lan\" accept\n"
                          "  }\n"
                          "}\n"
                        : "");
    in(r, {find_program("nft"), "-f", "-"}, ruleset);
    for (int j = 0; j < homes_[k].hosts; ++j) {
      const std::string h = add_ns(num("h", k) + num(".", j));
      const std::string p = num("l", j);
      ip({"-n", r, "link", "add", "name", p, "type", "veth", "peer", "name", "eth0", "netns", h});
      ip({"-n", r, "link", "set", p, "master", "lan", "up"});
      ip({"-n", h, "addr", "add", home_ip(k, j) + "/24", "dev", "eth0"});
      ip({"-n", h, "link", "set", "eth0", "up"});
      ip({"-n", h, "route", "add", "default", "via", num("10.", k + 1) + ".0.1"});
      if (homes_[k].ipv6) {
        ip({"-n", h, "addr", "add", home_ip6(k, j) + "/64", "dev", "eth0", "nodad"});
        ip({"-n", h, "-6", "route", "add", "default", "via", num("2001:db8:", k + 1) + "::1"});
      }
    }
  }
  // The internet routes every home's IPv6 prefix: each router reaches the others' through their
  // wan addresses, so two homes with IPv6 reach each other without NAT.
  for (int k = 0; k < static_cast<int>(homes_.size()); ++k)
    for (int m = 0; m < static_cast<int>(homes_.size()); ++m)
      if (k != m && homes_[k].ipv6 && homes_[m].ipv6)
        ip({"-n", router_ns(k), "-6", "route", "add", num("2001:db8:", m + 1) + "::/64", "via",
            num("2001:db8::", 1 + m)});
}

void HomeNetwork::forward_port(int k, int port, int j) {
  const std::string p = std::to_string(port);
  const std::string ruleset =
      "table ip qun_forward {\n"
      "  chain prerouting {\n"
      "    type nat hook prerouting priority dstnat; policy accept;\n"
      "    iifname \"wan\" tcp dport " + p + " dnat to " + home_ip(k, j) + ":" + p + "\n"
      "  }\n"
      "}\n";
  in(router_ns(k), {find_program("nft"), "-f", "-"}, ruleset);
}

std::string HomeNetwork::internet_ns(int i) const { return prefix_ + num("i", i); }
std::string HomeNetwork::internet_ip(int i) const {
  return num("198.51.100.", 10 + i);
}
std::string HomeNetwork::home_ns(int k, int j) const {
  return prefix_ + num("h", k) + num(".", j);
}
std::string HomeNetwork::home_ip(int k, int j) const {
  return num("10.", k + 1) + num(".0.", 2 + j);
}
std::string HomeNetwork::internet_ip6(int i) const { return num("2001:db8::", 10 + i); }
std::string HomeNetwork::home_ip6(int k, int j) const {
  return num("2001:db8:", k + 1) + num("::", 2 + j);
}
std::string HomeNetwork::router_ns(int k) const { return prefix_ + num("r", k); }
std::string HomeNetwork::router_public_ip(int k) const {
  return num("198.51.100.", 1 + k);
}

std::vector<std::string> HomeNetwork::exec_in(const std::string& ns) const {
  return {find_program("ip"), "netns", "exec", ns};
}

bool HomeNetwork::can_connect(const std::string& from, const std::string& address) const {
  const auto colon = address.rfind(':');
  std::vector<std::string> argv = exec_in(from);
  argv.insert(argv.end(), {"/usr/bin/timeout", "1", "/bin/bash", "-c",
                           "exec 3<>/dev/tcp/" + address.substr(0, colon) + "/" +
                               address.substr(colon + 1)});
  return run(argv).ok();
}

}  // namespace qun::nat
