#include "node/punch.h"

#include "node/reachability.h"

namespace qun {

std::string lan_address_of(const std::string& listen) {
  auto hp = parse_host_port(listen);
  if (!hp || is_public_host(*hp) || hp->port == 0) return {};
  const std::string& h = hp->host;
  if (h.rfind("127.", 0) == 0 || h.rfind("0.", 0) == 0 || h.rfind("169.254.", 0) == 0) return {};
  if (hp->v6 && (h == "::" || h == "::1" || h.rfind("fe80", 0) == 0 || h.rfind("FE80", 0) == 0 ||
                 h.rfind("ff", 0) == 0 || h.rfind("FF", 0) == 0))
    return {};
  return listen;
}

std::optional<PunchOutput> HolePunch::poll() {
  if (out_.empty()) return std::nullopt;
  PunchOutput o = std::move(out_.front());
  out_.pop_front();
  return o;
}

std::optional<Millis> HolePunch::next_deadline() const {
  std::optional<Millis> d;
  for (const auto& [peer, s] : peers_) {
    const bool timed = s.phase == Phase::wait_reply || s.phase == Phase::wait_sync ||
                       s.phase == Phase::dial_at || (s.phase == Phase::idle && s.starts && s.deadline > 0);
    if (timed) d = earliest(d, s.deadline);
  }
  return d;
}

void HolePunch::on_relayed_up(Millis now, ConnId conn, const PublicKey& peer, bool starts,
                              const std::string& own) {
  State& s = peers_[peer];
  s = State{};
  s.conn = conn;
  s.starts = starts;
  s.own = own;
  if (starts) start(now, s);
}

void HolePunch::on_relayed_closed(ConnId conn) {
  for (auto it = peers_.begin(); it != peers_.end();)
    it = it->second.conn == conn && it->second.phase != Phase::dialing ? peers_.erase(it)
                                                                      : std::next(it);
}

// No address on one side yet: the starter asks again later, a bounded number of times.
void HolePunch::wait_for_address(Millis now, State& s) {
  s.phase = Phase::idle;
  s.deadline = 0;
  if (s.starts && s.waits < punch_limits::address_waits_max) {
    ++s.waits;
    s.deadline = now + punch_limits::retry_ms;
  } else {
    s.phase = Phase::done;
  }
}

void HolePunch::start(Millis now, State& s) {
  s.deadline = 0;
  if (s.attempts >= punch_limits::attempts_max) {
    s.phase = Phase::done;
    return;
  }
  if (s.own.empty()) return wait_for_address(now, s);
  ++s.attempts;
  ++stats_.exchanges;
  s.phase = Phase::wait_reply;
  s.sent_at = now;
  s.deadline = now + punch_limits::exchange_timeout_ms;
  out_.push_back(punch_output::Send{s.conn, wire::Punch{wire::PunchPhase::connect, addresses(s)}});
}

std::vector<std::string> HolePunch::addresses(const State& s) const {
  std::vector<std::string> mine;
  if (s.own.empty()) return mine;
  mine.push_back(s.own);
  if (!lan_.empty()) mine.push_back(lan_);
  return mine;
}

std::string HolePunch::pick(const State& s, const std::vector<std::string>& theirs) const {
  if (theirs.empty()) return {};
  if (theirs.size() >= 2 && !s.own.empty()) {
    auto their_public = parse_host_port(theirs[0]);
    auto our_public = parse_host_port(s.own);
    auto their_lan = parse_host_port(theirs[1]);
    if (their_public && our_public && their_lan && their_public->host == our_public->host &&
        !is_public_host(*their_lan))
      return theirs[1];
  }
  return theirs[0];
}

void HolePunch::dial(State& s, const PublicKey& peer) {
  s.phase = Phase::dialing;
  ++stats_.dials;
  out_.push_back(punch_output::Dial{peer, s.address});
}

void HolePunch::on_message(Millis now, ConnId conn, const PublicKey& peer, const wire::Punch& m,
                           const std::string& own) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || it->second.conn != conn) return;
  State& s = it->second;
  if (!own.empty()) s.own = own;
  const std::string theirs = pick(s, m.addresses);
  switch (m.phase) {
    case wire::PunchPhase::connect: {
      if (s.starts || s.phase == Phase::dialing) return;
      // The answering end counts its dials too: a peer starting exchange after exchange would
      // otherwise make this node dial an address of its choosing at the rate of its messages.
      if (s.attempts >= punch_limits::attempts_max) return;
      ++stats_.exchanges;
      out_.push_back(punch_output::Send{conn, wire::Punch{wire::PunchPhase::reply, addresses(s)}});
      s.address = theirs;
      s.phase = theirs.empty() || s.own.empty() ? Phase::idle : Phase::wait_sync;
      s.deadline = now + punch_limits::exchange_timeout_ms;
      return;
    }
    case wire::PunchPhase::reply: {
      if (!s.starts || s.phase != Phase::wait_reply) return;
      const Millis rtt = now - s.sent_at;
      if (theirs.empty()) {  // the peer has no public address (yet): this was no attempt
        --s.attempts;
        return wait_for_address(now, s);
      }
      if (rtt > punch_limits::rtt_max_ms) {  // too slow to time the dials
        s.phase = Phase::done;
        return;
      }
      s.address = theirs;
      out_.push_back(punch_output::Send{conn, wire::Punch{wire::PunchPhase::sync, {}}});
      s.phase = Phase::dial_at;
      s.deadline = now + rtt / 2;
      if (rtt / 2 == 0) dial(s, peer);
      return;
    }
    case wire::PunchPhase::sync: {
      if (s.starts || s.phase != Phase::wait_sync) return;
      ++s.attempts;
      dial(s, peer);
      return;
    }
  }
}

void HolePunch::on_dial_done(Millis now, const PublicKey& peer, bool up) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || it->second.phase != Phase::dialing) return;
  State& s = it->second;
  if (up) {
    ++stats_.succeeded;
    s.phase = Phase::done;
    return;
  }
  ++stats_.failed;
  s.phase = Phase::idle;
  s.deadline = s.starts && s.attempts < punch_limits::attempts_max ? now + punch_limits::retry_ms : 0;
}

void HolePunch::on_tick(Millis now, const std::string& own) {
  for (auto& [peer, s] : peers_) {
    if (!own.empty()) s.own = own;
    switch (s.phase) {
      case Phase::wait_reply:
      case Phase::wait_sync:
        if (now < s.deadline) break;
        s.phase = Phase::idle;  // no answer: the starter retries
        s.deadline = s.starts && s.attempts < punch_limits::attempts_max
                         ? now + punch_limits::retry_ms
                         : 0;
        break;
      case Phase::dial_at:
        if (now >= s.deadline) dial(s, peer);
        break;
      case Phase::idle:
        if (s.starts && s.deadline > 0 && now >= s.deadline) start(now, s);
        break;
      case Phase::dialing:
      case Phase::done:
        break;
    }
  }
}

}  // namespace qun
