#include "node/relayed.h"

#include <algorithm>

namespace qun {

namespace {
constexpr std::string_view via_marker = "/via/";
constexpr std::size_t key_hex_chars = 2 * PublicKey::size();

std::string cut_reason(std::string reason) {
  if (reason.size() > wire_limits::reason_bytes_max) reason.resize(wire_limits::reason_bytes_max);
  return reason;
}
}  // namespace

std::optional<RelayedAddress> parse_relayed_address(std::string_view address) {
  const auto at = address.rfind(via_marker);
  if (at == std::string_view::npos || at == 0) return std::nullopt;
  const std::string_view hex = address.substr(at + via_marker.size());
  if (hex.size() != key_hex_chars) return std::nullopt;
  auto bytes = from_hex(hex);
  if (!bytes || bytes->size() != PublicKey::size()) return std::nullopt;
  RelayedAddress r;
  r.relay_address = std::string(address.substr(0, at));
  std::copy(bytes->begin(), bytes->end(), r.relay.data());
  return r;
}

std::string relayed_address(const std::string& relay_address, const PublicKey& relay) {
  return relay_address + std::string(via_marker) + to_hex(relay);
}

RelayedLinks::RelayedLinks(RelayedConfig config, LogSink log)
    : config_(config), log_(std::move(log)) {}

void RelayedLinks::note(LogLevel level, std::string message) {
  log_(LogRecord{level, "relayed", std::move(message)});
}

std::optional<RelayedOutput> RelayedLinks::poll() {
  if (out_.empty()) return std::nullopt;
  RelayedOutput o = std::move(out_.front());
  out_.pop_front();
  return o;
}

// ------------------------------------------------------------------ reservation (as an end)

void RelayedLinks::maintain(Millis now, bool want, const std::vector<RelayCandidate>& candidates) {
  if (!want) {
    if (reservation_) {
      out_.push_back(relayed_output::Send{reservation_->carrier, wire::RelayReserve{false}});
      const bool had = reservation_->accepted;
      reservation_.reset();
      if (had) out_.push_back(relayed_output::AddressChanged{});
    }
    return;
  }
  if (reservation_ || now < reserve_retry_at_ || candidates.empty()) return;
  const RelayCandidate& c = candidates.front();
  reservation_ = Reservation{c.conn, c.relay, c.address, false};
  out_.push_back(relayed_output::Send{c.conn, wire::RelayReserve{true}});
}

std::string RelayedLinks::relayed_address() const {
  if (!reservation_ || !reservation_->accepted || reservation_->address.empty()) return {};
  return qun::relayed_address(reservation_->address, reservation_->relay);
}

std::optional<PublicKey> RelayedLinks::reserved_relay() const {
  if (!reservation_ || !reservation_->accepted) return std::nullopt;
  return reservation_->relay;
}

// ------------------------------------------------------------------ streams (as an end)

void RelayedLinks::connect(Millis, ConnId conn, const PublicKey& relay, const PublicKey& target,
                           std::optional<ConnId> carrier) {
  Stream& s = streams_[conn];
  s.relay = relay;
  s.peer = target;
  if (carrier) send_connect(conn, s, *carrier);
}

void RelayedLinks::send_connect(ConnId conn, Stream& s, ConnId carrier) {
  std::uint32_t& next = next_stream_[carrier];
  // Our own stream numbers stay below relay_stream_first; a link would need 2^31 relayed links
  // to run out, and the Node closes idle links long before.
  if (next >= wire_limits::relay_stream_first) return end(conn, "out of stream numbers", false);
  s.carrier = carrier;
  s.stream = next++;
  by_stream_[{carrier, s.stream}] = conn;
  out_.push_back(relayed_output::Send{carrier, wire::RelayConnect{s.peer, s.stream}});
}

bool RelayedLinks::waits_for(const PublicKey& relay) const {
  for (const auto& [conn, s] : streams_)
    if (s.carrier == 0 && s.relay == relay) return true;
  return false;
}

void RelayedLinks::accept(Millis, ConnId carrier, std::uint32_t stream, ConnId conn) {
  if (by_stream_.count({carrier, stream})) return;
  Stream& s = streams_[conn];
  s.carrier = carrier;
  s.stream = stream;
  s.open = true;
  if (reservation_) s.relay = reservation_->relay;
  by_stream_[{carrier, stream}] = conn;
  ++stats_.links_opened;
  out_.push_back(relayed_output::Send{carrier, wire::RelayAnswer{stream, true, ""}});
}

void RelayedLinks::refuse(Millis, ConnId carrier, std::uint32_t stream, const std::string& reason) {
  out_.push_back(relayed_output::Send{carrier, wire::RelayAnswer{stream, false, cut_reason(reason)}});
}

std::optional<PublicKey> RelayedLinks::via(ConnId conn) const {
  auto it = streams_.find(conn);
  if (it == streams_.end()) return std::nullopt;
  return it->second.relay;
}

void RelayedLinks::write(ConnId conn, const Bytes& bytes) {
  auto it = streams_.find(conn);
  if (it == streams_.end()) return;
  it->second.out.insert(it->second.out.end(), bytes.begin(), bytes.end());
  flush(conn, it->second);
}

// Sends what the window allows, in messages of at most relay_data_bytes_max.
void RelayedLinks::flush(ConnId, Stream& s) {
  if (!s.open) return;
  std::size_t at = 0;
  while (at < s.out.size() && s.inflight < relayed_limits::window_bytes) {
    const std::size_t n = std::min({s.out.size() - at, relayed_limits::window_bytes - s.inflight,
                                    wire_limits::relay_data_bytes_max});
    wire::RelayData d{s.stream, Bytes(s.out.begin() + static_cast<long>(at),
                                      s.out.begin() + static_cast<long>(at + n))};
    out_.push_back(relayed_output::Send{s.carrier, std::move(d)});
    s.inflight += n;
    at += n;
  }
  s.out.erase(s.out.begin(), s.out.begin() + static_cast<long>(at));
}

// Ends a virtual connection of ours: the Node closes it (Ended), and the relay is told unless
// it told us.
void RelayedLinks::end(ConnId conn, const std::string& reason, bool tell_relay) {
  auto it = streams_.find(conn);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  if (s.carrier != 0) {
    if (tell_relay)
      out_.push_back(relayed_output::Send{s.carrier, wire::RelayClose{s.stream, cut_reason(reason)}});
    by_stream_.erase({s.carrier, s.stream});
  }
  streams_.erase(it);
  out_.push_back(relayed_output::Ended{conn, reason});
}

void RelayedLinks::on_link_up(Millis, ConnId conn, const PublicKey& peer) {
  for (auto& [id, s] : streams_)
    if (s.carrier == 0 && s.relay == peer) send_connect(id, s, conn);
}

void RelayedLinks::on_closed(Millis, ConnId conn) {
  // A virtual connection the Node closed: tell the relay (no Ended: the Node knows).
  if (auto it = streams_.find(conn); it != streams_.end()) {
    if (it->second.carrier != 0) {
      out_.push_back(relayed_output::Send{it->second.carrier, wire::RelayClose{it->second.stream, "closed"}});
      by_stream_.erase({it->second.carrier, it->second.stream});
    }
    streams_.erase(it);
    return;
  }
  // A carrier: its streams, its reservation, and (on a relay) its splices and reservation end.
  std::vector<ConnId> ended;
  for (const auto& [id, s] : streams_)
    if (s.carrier == conn) ended.push_back(id);
  for (ConnId id : ended) end(id, "link to the relay closed", false);
  next_stream_.erase(conn);
  if (reservation_ && reservation_->carrier == conn) {
    const bool had = reservation_->accepted;
    reservation_.reset();
    if (had) {
      note(LogLevel::info, "reservation lost: link to the relay closed");
      out_.push_back(relayed_output::AddressChanged{});
    }
  }
  for (auto it = reserved_.begin(); it != reserved_.end();)
    it = it->second == conn ? reserved_.erase(it) : std::next(it);
  std::vector<std::uint64_t> splices;
  for (const auto& [id, sp] : splices_)
    if (sp.caller.conn == conn || sp.target.conn == conn) splices.push_back(id);
  for (auto id : splices) {
    const Splice& sp = splices_.at(id);
    end_splice(id, "the other end's link to the relay closed", sp.caller.conn != conn,
               sp.target.conn != conn);
  }
  next_relay_stream_.erase(conn);
}

bool RelayedLinks::carries(ConnId conn) const {
  if (reservation_ && reservation_->carrier == conn) return true;
  for (const auto& [id, c] : reserved_)
    if (c == conn) return true;
  for (const auto& [key, id] : by_stream_)
    if (key.first == conn) return true;
  for (const auto& [half, id] : splice_of_)
    if (half.conn == conn) return true;
  return false;
}

void RelayedLinks::on_message(Millis now, ConnId conn, const PublicKey& peer, bool shares_group,
                              const WireMessage& m) {
  // A message about a stream the relay spliced is the relay's; the rest are an end's, but for
  // the two only a relay answers.
  if (std::holds_alternative<wire::RelayReserve>(m) || std::holds_alternative<wire::RelayConnect>(m))
    return on_relay_message(now, conn, peer, shares_group, m);
  std::optional<std::uint32_t> stream;
  if (auto* a = std::get_if<wire::RelayAnswer>(&m)) stream = a->stream;
  if (auto* d = std::get_if<wire::RelayData>(&m)) stream = d->stream;
  if (auto* k = std::get_if<wire::RelayAck>(&m)) stream = k->stream;
  if (auto* c = std::get_if<wire::RelayClose>(&m)) stream = c->stream;
  if (stream && splice_of_.count(Half{conn, *stream}))
    return on_relay_message(now, conn, peer, shares_group, m);
  on_end_message(now, conn, peer, m);
}

void RelayedLinks::on_end_message(Millis now, ConnId conn, const PublicKey& peer, const WireMessage& m) {
  auto find = [&](std::uint32_t stream) -> std::pair<ConnId, Stream*> {
    auto it = by_stream_.find({conn, stream});
    if (it == by_stream_.end()) return {0, nullptr};
    return {it->second, &streams_.at(it->second)};
  };
  if (auto* r = std::get_if<wire::RelayReserveReply>(&m)) {
    if (!reservation_ || reservation_->carrier != conn || reservation_->accepted) return;
    if (r->accepted) {
      reservation_->accepted = true;
      note(LogLevel::info, "reservation accepted relay=" + short_hex(peer));
      out_.push_back(relayed_output::AddressChanged{});
    } else {
      note(LogLevel::info, "reservation refused relay=" + short_hex(peer) + " reason=" + r->reason);
      reservation_.reset();
      reserve_retry_at_ = now + relayed_limits::reserve_retry_ms;
    }
  } else if (auto* in = std::get_if<wire::RelayIncoming>(&m)) {
    // Only the relay holding our reservation may bring us callers.
    if (!reservation_ || reservation_->carrier != conn || !reservation_->accepted ||
        in->stream < wire_limits::relay_stream_first || by_stream_.count({conn, in->stream})) {
      out_.push_back(relayed_output::Send{conn, wire::RelayAnswer{in->stream, false, "no reservation"}});
      return;
    }
    out_.push_back(relayed_output::Incoming{conn, in->stream, peer, in->caller});
  } else if (auto* a = std::get_if<wire::RelayAnswer>(&m)) {
    auto [id, s] = find(a->stream);
    if (!s || s->open) return;
    if (!a->accepted) {
      ++stats_.links_failed;
      return end(id, "relay refused: " + a->reason, false);
    }
    s->open = true;
    ++stats_.links_opened;
    out_.push_back(relayed_output::Connected{id});
    flush(id, *s);
  } else if (auto* d = std::get_if<wire::RelayData>(&m)) {
    auto [id, s] = find(d->stream);
    if (!s || !s->open) return;
    s->unacked_in += d->bytes.size();
    // The relay forwards at most a window unacknowledged: more is a relay not following the
    // protocol, and the link through it ends.
    if (s->unacked_in > relayed_limits::window_bytes) return end(id, "window exceeded", true);
    out_.push_back(relayed_output::Deliver{id, d->bytes});
    // Acknowledge in half windows: few acks, and the sender never waits with a full window
    // while we sit on a small unacknowledged rest (it has at least half a window of credit).
    if (s->unacked_in >= relayed_limits::window_bytes / 2) {
      out_.push_back(relayed_output::Send{conn, wire::RelayAck{d->stream, static_cast<std::uint32_t>(s->unacked_in)}});
      s->unacked_in = 0;
    }
  } else if (auto* k = std::get_if<wire::RelayAck>(&m)) {
    auto [id, s] = find(k->stream);
    if (!s || !s->open) return;
    const std::size_t n = std::min<std::size_t>(k->bytes, s->inflight);
    s->inflight -= n;
    if (n > 0) out_.push_back(relayed_output::Acked{id, n});
    flush(id, *s);
  } else if (auto* c = std::get_if<wire::RelayClose>(&m)) {
    auto [id, s] = find(c->stream);
    if (!s) return;
    end(id, c->reason.empty() ? std::string("closed by the peer") : c->reason, false);
  }
}

// ------------------------------------------------------------------ as a relay

void RelayedLinks::refuse_connect(Millis now, ConnId conn, std::uint32_t stream,
                                  const PublicKey& caller, const std::string& reason) {
  ++stats_.splices_refused;
  out_.push_back(relayed_output::Send{conn, wire::RelayAnswer{stream, false, cut_reason(reason)}});
  if (!refusal_logged_at_ || now >= *refusal_logged_at_ + relayed_limits::refusal_log_interval_ms) {
    refusal_logged_at_ = now;
    note(LogLevel::warn, "relayed link refused caller=" + short_hex(caller) + " reason=" + reason);
  }
}

std::size_t RelayedLinks::relayed_links() const {
  std::size_t n = 0;
  for (const auto& [id, sp] : splices_) n += sp.open ? 1 : 0;
  return n;
}

void RelayedLinks::on_relay_message(Millis now, ConnId conn, const PublicKey& peer,
                                    bool shares_group, const WireMessage& m) {
  if (auto* r = std::get_if<wire::RelayReserve>(&m)) {
    if (!r->active) {
      auto it = reserved_.find(peer);
      if (it != reserved_.end() && it->second == conn) reserved_.erase(it);
      return;
    }
    std::string why;
    if (!config_.relay) why = "not a relay";
    else if (!shares_group) why = "not a member of a group this relay serves";
    if (!why.empty()) {
      ++stats_.reservations_refused;
      out_.push_back(relayed_output::Send{conn, wire::RelayReserveReply{false, why}});
      return;
    }
    // One reservation per peer, on the link it last asked on: links are bounded by the Node
    // (connections_max), so reservations are too.
    reserved_[peer] = conn;
    ++stats_.reservations_accepted;
    note(LogLevel::info, "reservation taken peer=" + short_hex(peer));
    out_.push_back(relayed_output::Send{conn, wire::RelayReserveReply{true, ""}});
    return;
  }
  if (auto* c = std::get_if<wire::RelayConnect>(&m)) {
    if (!config_.relay) return refuse_connect(now, conn, c->stream, peer, "not a relay");
    if (!shares_group)
      return refuse_connect(now, conn, c->stream, peer, "not a member of a group this relay serves");
    if (c->stream >= wire_limits::relay_stream_first || splice_of_.count(Half{conn, c->stream}))
      return refuse_connect(now, conn, c->stream, peer, "bad stream number");
    auto target = reserved_.find(c->target);
    if (target == reserved_.end() || c->target == peer)
      return refuse_connect(now, conn, c->stream, peer, "no reservation for that node");
    if (splices_.size() >= config_.relayed_links_max) {
      ++stats_.splices_refused_full;
      return refuse_connect(now, conn, c->stream, peer,
                            "relay full: " + std::to_string(config_.relayed_links_max) +
                                " relayed links");
    }
    std::uint32_t& next = next_relay_stream_[target->second];
    if (next < wire_limits::relay_stream_first) next = wire_limits::relay_stream_first;
    if (next == UINT32_MAX) return refuse_connect(now, conn, c->stream, peer, "out of stream numbers");
    const std::uint64_t id = next_splice_++;
    Splice sp;
    sp.caller = Half{conn, c->stream};
    sp.target = Half{target->second, next++};
    sp.caller_id = peer;
    sp.target_id = c->target;
    splice_of_[sp.caller] = id;
    splice_of_[sp.target] = id;
    out_.push_back(relayed_output::Send{sp.target.conn, wire::RelayIncoming{peer, sp.target.stream}});
    splices_.emplace(id, sp);
    return;
  }
  // The rest name a spliced stream (on_message checked).
  std::uint32_t stream = 0;
  std::visit(
      [&](const auto& msg) {
        if constexpr (requires { msg.stream; }) stream = msg.stream;
      },
      m);
  const std::uint64_t id = splice_of_.at(Half{conn, stream});
  Splice& sp = splices_.at(id);
  const bool from_caller = sp.caller == Half{conn, stream};
  const Half& other = from_caller ? sp.target : sp.caller;
  if (auto* a = std::get_if<wire::RelayAnswer>(&m)) {
    if (from_caller || sp.open) return;  // only the target answers, once
    if (!a->accepted) {
      ++stats_.splices_refused;
      note(LogLevel::info, "relayed link refused by the target caller=" + short_hex(sp.caller_id) +
                               " target=" + short_hex(sp.target_id) + " reason=" + a->reason);
      out_.push_back(relayed_output::Send{sp.caller.conn,
                                          wire::RelayAnswer{sp.caller.stream, false, cut_reason("refused by the peer: " + a->reason)}});
      splice_of_.erase(sp.caller);
      splice_of_.erase(sp.target);
      splices_.erase(id);
      return;
    }
    sp.open = true;
    ++stats_.splices_opened;
    note(LogLevel::info, "relayed link up caller=" + short_hex(sp.caller_id) +
                             " target=" + short_hex(sp.target_id));
    out_.push_back(relayed_output::Send{sp.caller.conn, wire::RelayAnswer{sp.caller.stream, true, ""}});
  } else if (auto* d = std::get_if<wire::RelayData>(&m)) {
    if (!sp.open) return end_splice(id, "data before the link was accepted", true, true);
    std::size_t& inflight = from_caller ? sp.inflight_to_target : sp.inflight_to_caller;
    inflight += d->bytes.size();
    if (inflight > relayed_limits::window_bytes) {
      ++stats_.splices_closed_window;
      return end_splice(id, "window exceeded", true, true);
    }
    sp.bytes += d->bytes.size();
    if (sp.bytes > config_.relayed_link_bytes_max) {
      ++stats_.splices_closed_bytes;
      note(LogLevel::warn, "relayed link closed caller=" + short_hex(sp.caller_id) +
                               " target=" + short_hex(sp.target_id) + " reason=byte bound of " +
                               std::to_string(config_.relayed_link_bytes_max) + " bytes reached");
      return end_splice(id, "relayed link byte bound reached", true, true);
    }
    stats_.relayed_bytes += d->bytes.size();
    out_.push_back(relayed_output::Send{other.conn, wire::RelayData{other.stream, d->bytes}});
  } else if (auto* k = std::get_if<wire::RelayAck>(&m)) {
    if (!sp.open) return;
    // An ack from the caller frees what went to the caller.
    std::size_t& inflight = from_caller ? sp.inflight_to_caller : sp.inflight_to_target;
    inflight -= std::min<std::size_t>(inflight, k->bytes);
    out_.push_back(relayed_output::Send{other.conn, wire::RelayAck{other.stream, k->bytes}});
  } else if (auto* c = std::get_if<wire::RelayClose>(&m)) {
    end_splice(id, c->reason, !from_caller, from_caller);
  }
}

void RelayedLinks::end_splice(std::uint64_t id, const std::string& reason, bool tell_caller,
                              bool tell_target) {
  auto it = splices_.find(id);
  if (it == splices_.end()) return;
  const Splice sp = it->second;
  if (tell_caller) {
    if (sp.open)
      out_.push_back(relayed_output::Send{sp.caller.conn, wire::RelayClose{sp.caller.stream, cut_reason(reason)}});
    else
      out_.push_back(relayed_output::Send{sp.caller.conn, wire::RelayAnswer{sp.caller.stream, false, cut_reason(reason)}});
  }
  if (tell_target)
    out_.push_back(relayed_output::Send{sp.target.conn, wire::RelayClose{sp.target.stream, cut_reason(reason)}});
  splice_of_.erase(sp.caller);
  splice_of_.erase(sp.target);
  splices_.erase(it);
}

std::optional<std::string> RelayedLinks::invariant_violation() const {
  // Every (carrier, stream) entry names a stream of ours on that carrier, and back.
  for (const auto& [key, id] : by_stream_) {
    auto it = streams_.find(id);
    if (it == streams_.end() || it->second.carrier != key.first || it->second.stream != key.second)
      return "relayed: a stream index entry names no matching stream";
  }
  for (const auto& [id, s] : streams_) {
    if (s.carrier != 0 && !by_stream_.count({s.carrier, s.stream}))
      return "relayed: a stream on a carrier is missing from the index";
    // An end never has more than a window in flight.
    if (s.inflight > relayed_limits::window_bytes) return "relayed: a stream's window overrun";
  }
  // Every splice's two halves index it, and the relay never carries more than its bound.
  for (const auto& [id, sp] : splices_) {
    auto a = splice_of_.find(sp.caller);
    auto b = splice_of_.find(sp.target);
    if (a == splice_of_.end() || b == splice_of_.end() || a->second != id || b->second != id)
      return "relayed: a splice is not indexed by both its halves";
  }
  if (splice_of_.size() != 2 * splices_.size()) return "relayed: a stale splice index entry";
  if (splices_.size() > config_.relayed_links_max) return "relayed: more splices than the bound";
  return std::nullopt;
}

}  // namespace qun
