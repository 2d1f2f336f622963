#include "node/reachability.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace qun {

std::string HostPort::str() const {
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view address) {
  HostPort hp;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return std::nullopt;
    hp.host = std::string(address.substr(1, close - 1));
    hp.v6 = true;
    port = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos || address.find(':') != colon) return std::nullopt;
    hp.host = std::string(address.substr(0, colon));
    port = address.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
    return std::nullopt;
  hp.port = static_cast<std::uint16_t>(value);
  std::array<unsigned char, 16> raw{};
  if (inet_pton(hp.v6 ? AF_INET6 : AF_INET, hp.host.c_str(), raw.data()) != 1) return std::nullopt;
  // One spelling per address, so that two peers' reports of it compare equal.
  char text[INET6_ADDRSTRLEN];
  if (!inet_ntop(hp.v6 ? AF_INET6 : AF_INET, raw.data(), text, sizeof text)) return std::nullopt;
  hp.host = text;
  return hp;
}

bool is_public_host(const HostPort& address) {
  std::array<unsigned char, 16> b{};
  if (inet_pton(address.v6 ? AF_INET6 : AF_INET, address.host.c_str(), b.data()) != 1) return false;
  if (!address.v6) {
    if (b[0] == 0 || b[0] == 10 || b[0] == 127) return false;             // this network, RFC 1918, loopback
    if (b[0] == 172 && (b[1] & 0xf0) == 16) return false;                // RFC 1918
    if (b[0] == 192 && b[1] == 168) return false;                        // RFC 1918
    if (b[0] == 169 && b[1] == 254) return false;                        // link-local
    if (b[0] == 100 && (b[1] & 0xc0) == 64) return false;                // carrier-grade NAT
    if (b[0] >= 224) return false;                                       // multicast, reserved
    return true;
  }
  static const std::array<unsigned char, 16> unspecified{};
  std::array<unsigned char, 16> loopback{};
  loopback[15] = 1;
  if (b == unspecified || b == loopback) return false;
  if ((b[0] & 0xfe) == 0xfc) return false;                // unique local fc00::/7
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;  // link-local fe80::/10
  if (b[0] == 0xff) return false;                         // multicast
  // IPv4-mapped (::ffff:a.b.c.d): as the IPv4 address.
  if (std::all_of(b.begin(), b.begin() + 10, [](unsigned char x) { return x == 0; }) &&
      b[10] == 0xff && b[11] == 0xff) {
    HostPort v4{std::to_string(b[12]) + "." + std::to_string(b[13]) + "." + std::to_string(b[14]) +
                    "." + std::to_string(b[15]),
                address.port, false};
    return is_public_host(v4);
  }
  return true;
}

const char* reachable_name(Reachable r) {
  switch (r) {
    case Reachable::reachable: return "reachable";
    case Reachable::behind_nat: return "behind NAT";
    case Reachable::unknown: break;
  }
  return "unknown";
}

namespace {
// Verdicts and observations are at most a few dozen; when full, serving dial-backs for this
// many peers at once would take longer than the interval anyway.
constexpr std::size_t served_max = 256;
}  // namespace

Reachability::Reachability(std::string listen_address)
    : listen_(std::move(listen_address)), listen_hp_(parse_host_port(listen_)) {}

void Reachability::on_link_up(Millis now, ConnId conn, const PublicKey& peer,
                              const std::string& remote) {
  links_[conn] = peer;
  if (auto hp = parse_host_port(remote)) {
    remotes_[conn] = hp->str();
    out_.push_back(reach_output::Send{conn, wire::Observed{hp->str()}});
  }
  maybe_ask(now);
}

void Reachability::on_closed(Millis now, ConnId conn) {
  links_.erase(conn);
  remotes_.erase(conn);
  if (asked_ && asked_->conn == conn) no_verdict(now);
  probe_done(now, conn, false);
}

void Reachability::on_message(Millis now, ConnId conn, const PublicKey& peer,
                              const WireMessage& message) {
  if (const auto* o = std::get_if<wire::Observed>(&message)) {
    auto hp = parse_host_port(o->address);
    if (!hp) return;  // not an IP literal: nothing to learn from it
    if (!observations_.count(peer) && observations_.size() >= reach_limits::observers_max) {
      auto oldest = std::min_element(observations_.begin(), observations_.end(),
                                     [](const auto& a, const auto& b) { return a.second.at < b.second.at; });
      observations_.erase(oldest);
    }
    observations_[peer] = Observation{hp->str(), is_public_host(*hp), now};
    maybe_ask(now);
  } else if (const auto* d = std::get_if<wire::DialBack>(&message)) {
    on_dial_back(now, conn, peer, *d);
  } else if (const auto* r = std::get_if<wire::DialBackResult>(&message)) {
    if (!asked_ || asked_->conn != conn || asked_->nonce != r->nonce) return;  // not ours, or late
    if (r->outcome == wire::DialBackOutcome::refused) return no_verdict(now);
    const bool ok = r->outcome == wire::DialBackOutcome::reachable;
    verdicts_.erase(std::remove_if(verdicts_.begin(), verdicts_.end(),
                                   [&](const auto& v) { return v.first == peer; }),
                    verdicts_.end());
    verdicts_.emplace_back(peer, ok);
    while (verdicts_.size() > reach_limits::verdicts_max) verdicts_.pop_front();
    asked_.reset();
    next_check_ = now + reach_limits::recheck_interval_ms;
  }
}

void Reachability::on_dial_back(Millis now, ConnId conn, const PublicKey& peer,
                                const wire::DialBack& m) {
  auto refuse = [&] {
    ++stats_.dial_backs_refused;
    out_.push_back(reach_output::Send{conn, wire::DialBackResult{m.nonce, wire::DialBackOutcome::refused}});
  };
  for (auto it = served_.begin(); it != served_.end();)
    it = now >= it->second + reach_limits::dial_back_serve_interval_ms ? served_.erase(it) : std::next(it);
  auto remote = remotes_.find(conn);
  if (remote == remotes_.end() || m.port == 0 || served_.count(peer) || served_.size() >= served_max ||
      probes_.size() >= reach_limits::dial_backs_in_flight_max)
    return refuse();
  // The IP this link comes from, never one the message names.
  HostPort target = *parse_host_port(remote->second);
  target.port = m.port;
  served_[peer] = now;
  ++stats_.dial_backs_served;
  const std::uint64_t probe = next_probe_++;
  probes_[probe] = Probe{conn, m.nonce, std::nullopt};
  out_.push_back(reach_output::Dial{probe, target.str(), peer});
}

void Reachability::probe_dialed(std::uint64_t probe, ConnId conn) {
  auto it = probes_.find(probe);
  if (it != probes_.end()) it->second.conn = conn;
}

bool Reachability::probe_done(Millis, ConnId conn, bool established) {
  for (auto it = probes_.begin(); it != probes_.end(); ++it) {
    if (it->second.conn != conn) continue;
    const auto outcome =
        established ? wire::DialBackOutcome::reachable : wire::DialBackOutcome::unreachable;
    if (links_.count(it->second.request_conn))
      out_.push_back(reach_output::Send{it->second.request_conn,
                                        wire::DialBackResult{it->second.nonce, outcome}});
    probes_.erase(it);
    return true;
  }
  return false;
}

void Reachability::probe_not_started(std::uint64_t probe) {
  auto it = probes_.find(probe);
  if (it == probes_.end()) return;
  ++stats_.dial_backs_refused;
  if (links_.count(it->second.request_conn))
    out_.push_back(reach_output::Send{it->second.request_conn,
                                      wire::DialBackResult{it->second.nonce, wire::DialBackOutcome::refused}});
  probes_.erase(it);
}

bool Reachability::is_probe_from(const PublicKey& peer) const {
  return asked_ && asked_->peer == peer;
}

void Reachability::no_verdict(Millis now) {
  asked_.reset();
  next_check_ = now + reach_limits::retry_interval_ms;
}

// Asks one linked peer that sees this node from a public address to dial it back, when a
// check is due. Only a public observer's verdict says anything about the internet: a peer on
// the same LAN would reach the private address and prove nothing.
void Reachability::maybe_ask(Millis now) {
  if (asked_ || now < next_check_ || !listen_hp_ || !room_) return;
  // The peer asked least recently: prefer one without a verdict yet, then the oldest verdict.
  std::optional<std::pair<ConnId, PublicKey>> pick;
  std::size_t pick_rank = SIZE_MAX;
  for (const auto& [conn, peer] : links_) {
    auto o = observations_.find(peer);
    if (o == observations_.end() || !o->second.is_public) continue;
    std::size_t rank = 0;  // 0: no verdict from it; else 1 + its verdict's age rank
    for (std::size_t i = 0; i < verdicts_.size(); ++i)
      if (verdicts_[i].first == peer) rank = 1 + i;
    if (rank < pick_rank) {
      pick = {conn, peer};
      pick_rank = rank;
    }
  }
  if (!pick) return;
  asked_ = Asked{next_nonce_++, pick->first, pick->second, now + reach_limits::dial_back_timeout_ms};
  ++stats_.dial_backs_asked;
  out_.push_back(reach_output::Send{pick->first, wire::DialBack{asked_->nonce, listen_hp_->port}});
}

void Reachability::on_tick(Millis now) {
  if (asked_ && now >= asked_->deadline) no_verdict(now);
  maybe_ask(now);
}

std::optional<ReachOutput> Reachability::poll() {
  if (out_.empty()) return std::nullopt;
  ReachOutput o = std::move(out_.front());
  out_.pop_front();
  return o;
}

std::optional<Millis> Reachability::next_deadline() const {
  if (asked_) return asked_->deadline;
  // Without room for the probe no check is due: the Node ticks the engine anyway (its
  // maintenance), and set_room(true) then lets the check run.
  if (!room_) return std::nullopt;
  // A node that does not listen has no port to be dialled back on: it never asks (maybe_ask),
  // so nothing is due (a deadline here would be due again after every tick).
  if (!listen_hp_) return std::nullopt;
  // A check is due at next_check_ only if some linked peer could be asked.
  for (const auto& [conn, peer] : links_) {
    auto o = observations_.find(peer);
    if (o != observations_.end() && o->second.is_public) return next_check_;
  }
  return std::nullopt;
}

Reachable Reachability::status() const {
  std::size_t ok = 0;
  for (const auto& [peer, reached] : verdicts_) ok += reached ? 1 : 0;
  if (verdicts_.empty()) return Reachable::unknown;
  return 2 * ok >= verdicts_.size() ? Reachable::reachable : Reachable::behind_nat;
}

std::optional<std::string> Reachability::observed() const {
  // Count reports per address; prefer public ones, then more reporters, then the latest.
  struct Tally {
    bool is_public = false;
    std::size_t count = 0;
    Millis latest = 0;
  };
  std::map<std::string, Tally> tally;
  for (const auto& [peer, o] : observations_) {
    auto& t = tally[o.address];
    t.is_public = o.is_public;
    ++t.count;
    t.latest = std::max(t.latest, o.at);
  }
  const std::pair<const std::string, Tally>* best = nullptr;
  for (const auto& entry : tally) {
    const auto& t = entry.second;
    if (!best || std::tie(t.is_public, t.count, t.latest) >
                     std::tie(best->second.is_public, best->second.count, best->second.latest))
      best = &entry;
  }
  if (!best) return std::nullopt;
  return best->first;
}

std::string Reachability::advertised() const {
  if (status() != Reachable::reachable || !listen_hp_) return listen_;
  auto o = observed();
  if (!o) return listen_;
  auto hp = parse_host_port(*o);
  if (!hp || !is_public_host(*hp)) return listen_;
  hp->port = listen_hp_->port;
  return hp->str();
}

}  // namespace qun
