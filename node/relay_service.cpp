#include "node/relay_service.h"

#include <algorithm>

#include "node/direct.h"
#include "node/wire.h"

namespace qun {

RelayService::RelayService(RelayServiceConfig config, LogSink log)
    : config_(std::move(config)), log_(std::move(log)) {}

void RelayService::reply(const PublicKey& to, const Hash& group, bool accepted,
                         std::string reason, bool waiting) {
  if (reason.size() > wire_limits::reason_bytes_max) reason.resize(wire_limits::reason_bytes_max);
  if (!accepted) {
    note(LogLevel::info, "serve refused group=" + short_hex(group) + " peer=" + short_hex(to) +
                             " reason=" + reason);
  }
  out_.push_back(relay_output::Reply{to, group, accepted, std::move(reason), waiting});
}

void RelayService::on_serve(Millis now, const PublicKey& peer, const Hash& group,
                            const std::string& address, bool held, std::size_t groups_held) {
  if (!config_.relay) return reply(peer, group, false, "not a relay");
  if (held) {
    // Already serving it. While on probation, this requester's standing counts too.
    if (auto p = probation_.find(group); p != probation_.end()) p->second.requesters.insert(peer);
    return reply(peer, group, true, "");
  }
  auto refused = refusals_.find({group, peer});
  if (refused != refusals_.end() && refused->second > now)
    return reply(peer, group, false, "refused: not an admin of the group");
  if (!config_.open && !config_.allow.count(peer)) {
    keep_waiting(now, group, peer, address);
    return reply(peer, group, false,
                 "waiting for the relay operator's approval (qun relay approve)", true);
  }
  if (auto why = cannot_take_on(peer, groups_held); !why.empty())
    return reply(peer, group, false, why);
  std::vector<std::string> hints;
  if (!address.empty()) hints.push_back(address);
  take_on(now, group, {peer}, std::move(hints));
  reply(peer, group, true, "");
}

std::string RelayService::cannot_take_on(const PublicKey& requester,
                                         std::size_t groups_held) const {
  if (groups_held >= config_.groups_max)
    return "relay full: serving " + std::to_string(groups_held) + " groups";
  std::size_t on_probation = 0, claimed = 0;
  for (const auto& [gid, p] : probation_) on_probation += p.requesters.count(requester);
  for (const auto& [gid, who] : claimants_)
    if (!direct_.count(gid)) claimed += who.count(requester);  // direct groups: their own bound
  if (on_probation >= serve_probation_per_peer_max)
    return "too many groups from you awaiting their data";
  if (claimed >= config_.groups_per_requester_max)
    return "quota: this relay serves " + std::to_string(claimed) + " groups for you already";
  return {};
}

void RelayService::take_on(Millis now, const Hash& group, const std::set<PublicKey>& requesters,
                           std::vector<std::string> hints) {
  note(LogLevel::info, "serving group=" + short_hex(group) + " for peer=" +
                           short_hex(*requesters.begin()));
  probation_[group] = Probation{requesters, {}, now};
  claimants_[group] = requesters;
  rearm();
  // The node adds the group: it sends every link a new hello and matches the group against the
  // tags each peer sent (the requester's included), so the reply reaches a requester that
  // already sees the group shared, and catch-up runs as on any link. A requester not linked is
  // dialed from the hints.
  out_.push_back(relay_output::TakeOn{group, std::move(hints)});
}

bool RelayService::on_direct_offer(Millis now, const PublicKey& peer, const Hash& group,
                                   const std::string& address, bool held,
                                   std::size_t groups_held, bool member_here,
                                   std::size_t direct_of_peer) {
  if (!config_.relay) return false;
  if (held) {
    if (auto p = probation_.find(group); p != probation_.end() && direct_.count(group))
      p->second.requesters.insert(peer);
    return false;
  }
  std::string why;
  std::size_t on_probation = 0;
  for (const auto& [gid, p] : probation_) on_probation += p.requesters.count(peer);
  auto refused = refusals_.find({group, peer});
  if (refused != refusals_.end() && refused->second > now) why = "refused before";
  else if (!member_here) why = "the peer is a member of no group served here";
  else if (groups_held >= config_.groups_max)
    why = "relay full: serving " + std::to_string(groups_held) + " groups";
  else if (on_probation >= serve_probation_per_peer_max)
    why = "too many groups from the peer awaiting their data";
  else if (direct_of_peer >= direct::relay_groups_per_member_max)
    why = "the peer has " + std::to_string(direct_of_peer) + " direct groups here already";
  if (!why.empty()) {
    note(LogLevel::info, "direct offer dropped group=" + short_hex(group) + " peer=" +
                             short_hex(peer) + " reason=" + why);
    return false;
  }
  std::vector<std::string> hints;
  if (!address.empty()) hints.push_back(address);
  direct_.insert(group);
  take_on(now, group, {peer}, std::move(hints));
  return true;
}

// Keeps a refused request for the operator: one entry per (group, requester), at most
// serve_waiting_per_requester_max per requester and serve_waiting_max in all (oldest out).
void RelayService::keep_waiting(Millis now, const Hash& group, const PublicKey& peer,
                                const std::string& address) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (it->group == group && it->requester == peer) {
      waiting_.erase(it);
      break;
    }
  }
  std::size_t mine = 0;
  for (const auto& w : waiting_) mine += w.requester == peer ? 1 : 0;
  if (mine >= serve_waiting_per_requester_max) {
    auto oldest = std::find_if(waiting_.begin(), waiting_.end(),
                               [&](const ServeWaiting& w) { return w.requester == peer; });
    waiting_.erase(oldest);
  }
  if (waiting_.size() >= serve_waiting_max) waiting_.pop_front();
  waiting_.push_back(ServeWaiting{group, peer, address, now});
}

Result<void> RelayService::approve(Millis now, const Hash& group, std::optional<PublicKey> only,
                                   const Held& held, std::size_t groups_held) {
  std::set<PublicKey> requesters;
  std::vector<std::string> hints;
  for (const auto& w : waiting_) {
    if (w.group != group || (only && w.requester != *only)) continue;
    requesters.insert(w.requester);
    if (!w.address.empty()) hints.push_back(w.address);
  }
  if (requesters.empty())
    return Error(Errc::not_found, "no request for group " + short_hex(group) + " waits");
  if (!held(group)) {
    if (groups_held >= config_.groups_max)
      return Error(Errc::too_large, "relay full: serving " + std::to_string(groups_held) + " groups");
    take_on(now, group, requesters, std::move(hints));
  }
  std::erase_if(waiting_, [&](const ServeWaiting& w) {
    return w.group == group && requesters.count(w.requester);
  });
  return ok_result();
}

std::vector<Hash> RelayService::allow(Millis now, const PublicKey& requester, const Held& held,
                                      std::size_t groups_held) {
  config_.allow.insert(requester);
  std::vector<Hash> asked;
  for (const auto& w : waiting_)
    if (w.requester == requester) asked.push_back(w.group);
  std::vector<Hash> taken;
  std::set<Hash> taken_set;
  // The node adds each group taken on only when it drains TakeOn: count them as held already.
  auto held_now = [&](const Hash& g) { return taken_set.count(g) || held(g); };
  for (const Hash& gid : asked) {
    if (!cannot_take_on(requester, groups_held + taken_set.size()).empty()) break;
    const bool was_held = held_now(gid);
    if (!approve(now, gid, requester, held_now, groups_held + taken_set.size()).ok()) continue;
    taken.push_back(gid);
    if (!was_held) taken_set.insert(gid);
  }
  return taken;
}

void RelayService::on_loaded_without_create(Millis now, const Hash& group) {
  if (!config_.relay || probation_.count(group)) return;
  probation_[group] = Probation{{}, {}, now};
  rearm();
}

void RelayService::on_heads(const Hash& group, const PublicKey& peer,
                            const std::vector<Hash>& heads) {
  auto p = probation_.find(group);
  if (p == probation_.end() || !p->second.requesters.count(peer)) return;
  p->second.heads.insert(heads.begin(), heads.end());
}

void RelayService::on_progress(Millis now, const Hash& group) {
  auto p = probation_.find(group);
  if (p == probation_.end()) return;
  p->second.last_progress = now;
  rearm();
}

void RelayService::review(Millis now, const Hash& group, const Replica& replica) {
  auto it = probation_.find(group);
  if (it == probation_.end()) return;
  const Probation& p = it->second;
  const Group& events = replica.group();
  const bool caught_up =
      !p.heads.empty() &&
      std::all_of(p.heads.begin(), p.heads.end(), [&](const Hash& h) { return events.has(h); });
  const bool stalled = now >= p.last_progress + serve_probation_ms;
  if (!caught_up && !stalled) return;
  const GroupState& s = replica.state();
  const bool admin =
      std::any_of(p.requesters.begin(), p.requesters.end(), [&](const PublicKey& r) {
        return s.is_member(r) && at_least(s.role_of(r), Role::admin);
      });
  const bool direct = direct_.count(group) != 0;
  std::string direct_why;
  if (direct && s.created)
    direct_why = direct_judge_ ? direct_judge_(group, replica, p.requesters) : "no judge";
  if (s.created && (direct ? direct_why.empty() : (admin || p.requesters.empty()))) {
    note(LogLevel::info, "serving group=" + short_hex(group) + " confirmed");
    probation_.erase(it);
    rearm();
    if (direct) out_.push_back(relay_output::Kept{group});
    return;
  }
  std::string why;
  if (!s.created) {
    why = "no create event within " + std::to_string(serve_probation_ms / 1000) + " s";
  } else {
    why = direct ? direct_why : "the requester is not an admin of the group";
    for (const PublicKey& r : p.requesters) refuse_later(now, group, r);
  }
  note(LogLevel::warn, "dropping group=" + short_hex(group) + " reason=" + why);
  forget(group);
  out_.push_back(relay_output::Drop{group, std::move(why)});
}

void RelayService::refuse_later(Millis now, const Hash& group, const PublicKey& requester) {
  if (refusals_.size() >= serve_refusals_max) {
    auto oldest = std::min_element(refusals_.begin(), refusals_.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
    refusals_.erase(oldest);
  }
  refusals_[{group, requester}] = now + serve_refusal_ms;
}

void RelayService::forget(const Hash& group) {
  probation_.erase(group);
  claimants_.erase(group);
  direct_.erase(group);
  rearm();
}

// The timer is the earliest probation's stall deadline.
void RelayService::rearm() {
  timers_.stop(Timer::probation);
  for (const auto& [gid, p] : probation_)
    timers_.set_by(Timer::probation, p.last_progress + serve_probation_ms);
}

void RelayService::on_tick(Millis now, const Find& find) {
  if (!timers_.take_expired(Timer::probation, now)) return;
  std::vector<Hash> due;
  for (const auto& [gid, p] : probation_)
    if (now >= p.last_progress + serve_probation_ms) due.push_back(gid);
  for (const Hash& gid : due) {
    if (const Replica* r = find(gid)) {
      review(now, gid, *r);
    } else {
      forget(gid);  // not held: nothing to serve (the node forgets groups it removes)
    }
  }
  rearm();
}

std::optional<RelayOutput> RelayService::poll() {
  if (out_.empty()) return std::nullopt;
  RelayOutput o = std::move(out_.front());
  out_.pop_front();
  return o;
}

bool RelayService::is_requester(const Hash& group, const PublicKey& peer) const {
  auto p = probation_.find(group);
  return p != probation_.end() && p->second.requesters.count(peer) != 0;
}

std::vector<Hash> RelayService::probation_groups() const {
  std::vector<Hash> v;
  for (const auto& [gid, p] : probation_) v.push_back(gid);
  return v;
}

std::vector<Hash> RelayService::claimed_groups() const {
  std::vector<Hash> v;
  for (const auto& [gid, who] : claimants_) v.push_back(gid);
  return v;
}

std::optional<std::string> RelayService::invariant_violation() const {
  auto fail = [](std::string what) { return std::optional<std::string>(std::move(what)); };
  // Bounded lists stay within their bounds (keep_waiting and refuse_later evict first).
  if (waiting_.size() > serve_waiting_max) return fail("relay: waiting serves over their bound");
  if (refusals_.size() > serve_refusals_max) return fail("relay: refusals over their bound");
  // Only a relay takes groups on.
  if (!config_.relay && (!probation_.empty() || !claimants_.empty() || !direct_.empty()))
    return fail("relay: a node that is no relay holds probations or claims");
  // Each probation has its timer: due at the earliest stall deadline.
  std::optional<Millis> earliest_stall;
  for (const auto& [gid, p] : probation_)
    earliest_stall = earliest(earliest_stall, p.last_progress + serve_probation_ms);
  if (timers_.get(Timer::probation) != earliest_stall)
    return fail("relay: the probation timer is not the earliest stall");
  return std::nullopt;
}

}  // namespace qun
