#include "node/membership.h"

#include <algorithm>

#include "node/reachability.h"
#include "node/relayed.h"

namespace qun {
namespace {

template <typename T>
const T& pick(const std::vector<T>& v, Rng& rng) {
  return v[rng.uniform(v.size())];
}

}  // namespace

void Membership::schedule(Millis shuffle_at, Millis explore_at) {
  timers_.set(Timer::shuffle, shuffle_at);
  timers_.set(Timer::explore, explore_at);
}

void Membership::remember(const std::string& address, std::optional<PublicKey> id, Rng& rng) {
  if (address.empty() || address == config_.self_address) return;
  if (id && *id == config_.self) return;
  if (id && active_.count(*id)) return;
  auto it = passive_.find(address);
  if (it != passive_.end()) {
    if (id) it->second = id;
    return;
  }
  if (passive_.size() >= config_.passive_max) {
    // Evict at random, but never a relay the group names: members keep those within reach.
    std::vector<std::string> evictable;
    for (const auto& [a, pid] : passive_)
      if (!(pid && relays_.count(*pid))) evictable.push_back(a);
    if (evictable.empty()) return;
    passive_.erase(pick(evictable, rng));
  }
  passive_.emplace(address, id);
}

void Membership::forget_identities(const std::set<PublicKey>& ids) {
  std::erase_if(lost_, [&](const auto& l) { return ids.count(l.first) != 0; });
  for (auto it = passive_.begin(); it != passive_.end();)
    it = it->second && ids.count(*it->second) ? passive_.erase(it) : std::next(it);
}

void Membership::set_relays(const std::map<PublicKey, std::string>& named, Rng& rng) {
  if (named == relays_) return;
  for (const auto& [id, address] : relays_) {
    auto still = named.find(id);
    if (still != named.end() && still->second == address) continue;
    auto p = passive_.find(address);
    if (p != passive_.end() && p->second == id) passive_.erase(p);
  }
  relays_ = named;
  for (const auto& [id, address] : named) remember(address, id, rng);
}

void Membership::note_serving(const PublicKey& peer, bool serving) {
  if (is_relay(peer)) relay_serving_[peer] = serving;
}

std::optional<bool> Membership::serving(const PublicKey& relay) const {
  auto s = relay_serving_.find(relay);
  if (s == relay_serving_.end()) return std::nullopt;
  return s->second;
}

std::optional<Membership::LinkId> Membership::link_of(const PublicKey& peer) const {
  auto a = active_.find(peer);
  if (a == active_.end()) return std::nullopt;
  return a->second;
}

std::size_t Membership::room() const {
  const std::size_t taken = active_.size() + asked_.size();
  return taken < config_.active_target ? config_.active_target - taken : 0;
}

void Membership::ask(const PublicKey& peer) {
  asked_.insert(peer);
  out_.push_back(membership_output::Neighbor{peer, active_.empty()});
}

void Membership::on_shared(const PublicKey& peer) {
  lost_.erase(peer);
  if (!active_.count(peer) && room() > 0) ask(peer);
}

void Membership::activate(const PublicKey& peer, LinkId link, const std::string& address) {
  active_[peer] = link;
  active_changed_ = true;
  explore_changed_ = true;
  refused_.erase(peer);
  lost_.erase(peer);
  // Also for a peer active already (a new link): the other engines start it afresh (Plumtree:
  // eager).
  out_.push_back(membership_output::Up{peer});
  passive_.erase(address);
}

// A random active peer to give up for another, other than the group's relays when possible.
std::optional<PublicKey> Membership::pick_victim(Rng& rng) const {
  std::vector<PublicKey> ordinary, all;
  for (const auto& [id, link] : active_) {
    all.push_back(id);
    if (!is_relay(id)) ordinary.push_back(id);
  }
  if (!ordinary.empty()) return pick(ordinary, rng);
  if (!all.empty()) return pick(all, rng);
  return std::nullopt;
}

void Membership::drop(Millis now, const PublicKey& victim, const MembershipLinks& links,
                      Rng& rng) {
  const auto link = link_of(victim);
  const std::string address = link ? links.address(*link) : std::string();
  remove(now, victim, link, address, Gone::dropped,
         links.banned(victim, now) || links.former(victim), rng);
}

void Membership::on_neighbor(Millis now, const PublicKey& peer, LinkId link,
                             const std::string& address, bool high_priority, Rng& rng,
                             const MembershipLinks& links) {
  bool accept = active_.count(peer) || active_.size() < config_.active_max;
  // A peer we gave up to share links elsewhere (consolidate) is not taken back at once, unless
  // it has no neighbour at all.
  if (auto s = shed_.find(peer); s != shed_.end() && !high_priority && !active_.count(peer)) {
    if (now < s->second) accept = false;
    else shed_.erase(s);
  }
  if (!accept && high_priority && !active_.empty()) {
    // A peer with no neighbour at all is always taken in; someone else makes room.
    drop(now, *pick_victim(rng), links, rng);
    accept = true;
  }
  if (accept) activate(peer, link, address);
  out_.push_back(membership_output::NeighborReply{peer, accept});
}

void Membership::on_neighbor_reply(Millis now, const PublicKey& peer, LinkId link,
                                   const std::string& address, bool accepted, Rng& rng,
                                   const MembershipLinks& links) {
  asked_.erase(peer);
  if (!accepted && is_relay(peer)) relay_retry_at_ = now + config_.relay_retry_ms;
  const bool swapping = swap_ == peer;
  if (swapping) swap_.reset();
  if (!accepted) {
    // (A refusal crossing the peer's own request, which made it active, is no refusal.)
    if (active_.count(peer)) return;
    note_refusal(now, peer);
    return;
  }
  // Consolidation: the peer whose link other groups use takes the place of one active in this
  // group alone (made before it comes in when the set is at its cap).
  std::optional<PublicKey> alone;
  if (swapping && !active_.count(peer)) {
    const std::vector<PublicKey> v = alone_here(links);
    if (!v.empty() && links.carries_other(peer) > 0) alone = pick(v, rng);
  }
  if (alone && active_.size() >= config_.active_max) {
    shed(now, *alone, links, rng);
    alone.reset();
  }
  if (active_.size() >= config_.active_max && !active_.count(peer)) {
    // A relay link is worth an ordinary one: make room for it.
    std::optional<PublicKey> victim;
    if (is_relay(peer)) victim = pick_victim(rng);
    if (!victim || is_relay(*victim)) {
      out_.push_back(membership_output::Disconnect{peer});
      return;
    }
    drop(now, *victim, links, rng);
  }
  activate(peer, link, address);
  if (alone && active_.size() > config_.active_target) shed(now, *alone, links, rng);
}

// Gives a peer's place up for one whose link carries more, and refuses its requests for
// shed_hold_ms.
void Membership::shed(Millis now, const PublicKey& victim, const MembershipLinks& links,
                      Rng& rng) {
  drop(now, victim, links, rng);
  if (shed_.count(victim) || shed_.size() < shed_max) shed_[victim] = now + shed_hold_ms;
}

void Membership::note_refusal(Millis now, const PublicKey& peer) {
  auto r = refused_.find(peer);
  if (r == refused_.end() && refused_.size() < refusals_max)
    r = refused_.emplace(peer, Refusal{0, config_.shuffle_interval_ms / 2}).first;
  if (r != refused_.end()) {
    r->second.wait = std::min(2 * r->second.wait, config_.shuffle_interval_max_ms);
    r->second.until = now + r->second.wait;
  }
}

std::vector<PeerInfo> Membership::sample(std::size_t n, Rng& rng,
                                         const MembershipLinks& links) const {
  std::vector<PeerInfo> all;
  for (const auto& [id, link] : active_) {
    std::string address = links.advertised(link);
    if (!address.empty()) all.push_back({id, {std::move(address)}});
  }
  for (const auto& [address, id] : passive_)
    if (id) all.push_back({*id, {address}});
  for (std::size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[rng.uniform(i)]);
  if (all.size() > n) all.resize(n);
  return all;
}

std::vector<PeerInfo> Membership::hand_out(Rng& rng, const MembershipLinks& links) const {
  std::vector<PeerInfo> all = sample(active_.size() + passive_.size(), rng, links);
  // Public addresses first, then relayed ones, then private ones (of use only on their LAN).
  auto rank = [](const PeerInfo& p) {
    const std::string& a = p.addresses.front();
    if (parse_relayed_address(a)) return 1;
    auto hp = parse_host_port(a);
    return hp && is_public_host(*hp) ? 0 : 2;
  };
  std::stable_sort(all.begin(), all.end(),
                   [&](const PeerInfo& x, const PeerInfo& y) { return rank(x) < rank(y); });
  if (all.size() > config_.shuffle_peers) all.resize(config_.shuffle_peers);
  return all;
}

void Membership::on_shuffle(const PublicKey& peer, bool reply, const std::vector<PeerInfo>& peers,
                            Rng& rng, const MembershipLinks& links) {
  if (!reply)
    out_.push_back(membership_output::Shuffle{peer, true, sample(config_.shuffle_peers, rng, links)});
  // The node hands over one address per peer (the one it would dial first; node/addresses.h).
  for (const auto& p : peers)
    if (!p.addresses.empty()) remember(p.addresses.front(), p.id, rng);
}

bool Membership::remove(Millis now, const PublicKey& peer, std::optional<LinkId> link,
                        const std::string& address, Gone why, bool banned, Rng& rng) {
  bool was_active = false;
  auto a = active_.find(peer);
  if (a != active_.end() && (why != Gone::link_closed || (link && a->second == *link))) {
    active_.erase(a);
    was_active = true;
    active_changed_ = true;
    explore_changed_ = true;
    out_.push_back(membership_output::Down{peer});
    if (link && (why == Gone::dropped || why == Gone::shunned))
      out_.push_back(membership_output::Disconnect{peer});
    if (link && why != Gone::shunned && !banned) remember(address, peer, rng);
    // Lost, not left: redial it, whether or not the set refills (the refill comes from this
    // side of a partition).
    if (link && why == Gone::link_closed && !banned && !address.empty() &&
        (lost_.count(peer) || lost_.size() < lost_max))
      lost_[peer] = Lost{address, 0, lost_redial_ms, 0};
  }
  if (why == Gone::shunned) lost_.erase(peer);
  // It gave our place up (for another, or to share a link with us elsewhere): asking it back at
  // once would undo that.
  if (was_active && why == Gone::disconnected) note_refusal(now, peer);
  if (swap_ == peer && (why == Gone::link_closed || why == Gone::shunned)) swap_.reset();
  if (why == Gone::link_closed || why == Gone::shunned) {
    asked_.erase(peer);
    refused_.erase(peer);
  }
  return was_active;
}

std::optional<PublicKey> Membership::random_active(Rng& rng) const {
  if (active_.empty()) return std::nullopt;
  std::vector<PublicKey> act;
  for (const auto& [id, link] : active_) act.push_back(id);
  return pick(act, rng);
}

// A member keeps one of the group's relays in its active set: asks a linked relay that holds the
// group, else dials one; after a refusal or a failed attempt, waits relay_retry_ms.
void Membership::keep_relay(Millis now, Rng& rng, const MembershipLinks& links) {
  if (relays_.empty() || relays_.count(config_.self) || now < relay_retry_at_) return;
  for (const auto& [id, address] : relays_)
    if (active_.count(id) || asked_.count(id)) return;
  std::vector<std::pair<PublicKey, std::string>> unlinked;
  for (const auto& [id, address] : relays_) {
    if (links.banned(id, now)) continue;
    if (links.linked(id)) {
      if (!links.shares(id)) continue;  // linked, but it does not hold the group
      ask(id);
      return;
    }
    if (!links.dialing(address)) unlinked.push_back({id, address});
  }
  relay_retry_at_ = now + config_.relay_retry_ms;
  if (unlinked.empty()) return;
  const auto& [id, address] = pick(unlinked, rng);
  out_.push_back(membership_output::Dial{address, id});
  dialed_.insert(address);
}

// Healing: dials each lost peer that is due and not linked (first lost_redial_ms after the loss,
// at a random point in the second half of each wait so that both ends and the groups the link
// carried do not all dial at once), doubling the wait up to lost_redial_max_ms; gives a peer up
// after lost_keep_ms.
void Membership::redial_lost(Millis now, Rng& rng, const MembershipLinks& links) {
  for (auto it = lost_.begin(); it != lost_.end();) {
    Lost& l = it->second;
    if (l.until == 0) {  // lost since the last round: start its clock
      l.until = now + lost_keep_ms;
      l.at = now + l.wait / 2 + rng.uniform(l.wait / 2 + 1);
    }
    // Given up, banned, removed, or linked again (a link that shares the group offered its
    // heads on connect; one that does not says the peer no longer holds the group).
    if (now >= l.until || links.banned(it->first, now) || links.former(it->first) ||
        links.linked(it->first)) {
      it = lost_.erase(it);
      continue;
    }
    if (now >= l.at) {
      if (!links.dialing(l.address) && !dialed_.count(l.address)) {
        out_.push_back(membership_output::Dial{l.address, it->first});
        dialed_.insert(l.address);
      }
      l.wait = std::min(2 * l.wait, lost_redial_max_ms);
      l.at = now + l.wait / 2 + rng.uniform(l.wait / 2 + 1);
    }
    ++it;
  }
}

void Membership::maintain(Millis now, Rng& rng, const MembershipLinks& links) {
  dialed_.clear();
  // The set changed: a backed-off shuffle comes back within the base interval (at a random
  // point in it, so that the groups a closed link shared do not all shuffle at once).
  if (active_changed_) {
    shuffle_every_ = config_.shuffle_interval_ms;
    const auto due = timers_.get(Timer::shuffle);
    if (!due || *due > now + config_.shuffle_interval_ms)
      timers_.set(Timer::shuffle, now + 1 + rng.uniform(config_.shuffle_interval_ms));
  }
  // ... and so does a backed-off exploration: a changed set may be a partition's start.
  if (explore_changed_) {
    explore_every_ = config_.explore_interval_ms;
    const auto due = timers_.get(Timer::explore);
    if (!due || *due > now + config_.explore_interval_ms)
      timers_.set(Timer::explore, now + 1 + rng.uniform(config_.explore_interval_ms));
  }
  keep_relay(now, rng, links);
  redial_lost(now, rng, links);
  std::erase_if(refused_, [&](const auto& r) { return now >= r.second.until + r.second.wait; });
  // Fill the active set: ask linked peers first (not those that refused lately), then dial
  // known addresses.
  std::size_t want = room();
  if (want > 0) {
    // Peers on links this node dialed that other groups use first (no new link, and a choice
    // no peer can force on us), then the other linked ones; at random within each.
    std::vector<PublicKey> first, then;
    for (const PublicKey& peer : links.sharing()) {
      if (active_.count(peer) || asked_.count(peer)) continue;
      if (auto r = refused_.find(peer); r != refused_.end() && now < r->second.until) continue;
      if (auto s = shed_.find(peer); s != shed_.end() && now < s->second) continue;
      const bool preferred =
          config_.share_links && links.dialed(peer) && links.carries_other(peer) > 0;
      (preferred ? first : then).push_back(peer);
    }
    for (auto* v : {&first, &then}) {
      for (std::size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[rng.uniform(i)]);
      for (const PublicKey& peer : *v) {
        if (want == 0) break;
        ask(peer);
        --want;
      }
    }
  }
  if (want > 0 && !passive_.empty()) {
    std::vector<std::pair<std::string, std::optional<PublicKey>>> candidates;
    for (const auto& [address, id] : passive_) {
      if (id && (links.linked(*id) || links.banned(*id, now))) continue;
      // A relay dialed just now counts as dialing (the node dials once this input's outputs
      // are drained).
      if (links.dialing(address) || dialed_.count(address)) continue;
      candidates.push_back({address, id});
    }
    for (std::size_t i = 0; i < want && !candidates.empty(); ++i) {
      std::size_t k = rng.uniform(candidates.size());
      out_.push_back(membership_output::Dial{candidates[k].first, candidates[k].second});
      candidates.erase(candidates.begin() + static_cast<long>(k));
    }
  }
  dialed_.clear();
  std::erase_if(shed_, [&](const auto& s) { return now >= s.second; });
  if (room() == 0 && config_.share_links) consolidate(now, rng, links);
}

// The active peers (not relays) active in no other of the node's groups: their links carry this
// group alone.
std::vector<PublicKey> Membership::alone_here(const MembershipLinks& links) const {
  std::vector<PublicKey> alone;
  for (const auto& [id, l] : active_)
    if (!is_relay(id) && links.carries_other(id) == 0) alone.push_back(id);
  return alone;
}

// Sharing links across groups (shed_hold_ms): with the set full and nothing asked, while an
// active peer's link carries this group alone, asks one of the linked peers sharing the group,
// on links this node dialed, whose links carry the most other groups; on_neighbor_reply gives
// the lone peer's place up once it accepts.
void Membership::consolidate(Millis now, Rng& rng, const MembershipLinks& links) {
  if (swap_ || !asked_.empty() || active_.size() < config_.active_target) return;
  if (alone_here(links).empty()) return;
  std::vector<PublicKey> candidates;  // those whose links carry the most other groups
  std::size_t most = 1;
  for (const PublicKey& peer : links.sharing()) {
    if (active_.count(peer) || links.banned(peer, now) || links.former(peer)) continue;
    if (auto r = refused_.find(peer); r != refused_.end() && now < r->second.until) continue;
    if (auto s = shed_.find(peer); s != shed_.end() && now < s->second) continue;
    if (!links.dialed(peer)) continue;
    const std::size_t carries = links.carries_other(peer);
    if (carries < most) continue;
    if (carries > most) candidates.clear();
    most = carries;
    candidates.push_back(peer);
  }
  if (candidates.empty()) return;
  swap_ = pick(candidates, rng);
  ask(*swap_);
}

void Membership::on_tick(Millis now, Rng& rng, const MembershipLinks& links) {
  // Periodic work with one random active peer. With none, it is tried again after retry_ms,
  // when the active set may have filled.
  if (timers_.take_expired(Timer::shuffle, now)) {
    if (auto peer = random_active(rng)) {
      // Back off while the active set stays the same: a settled group's passive list needs
      // refreshing only now and then.
      shuffle_every_ = active_changed_
                           ? config_.shuffle_interval_ms
                           : std::min(2 * shuffle_every_, config_.shuffle_interval_max_ms);
      active_changed_ = false;
      timers_.set(Timer::shuffle, now + shuffle_every_);
      out_.push_back(
          membership_output::Shuffle{*peer, false, sample(config_.shuffle_peers, rng, links)});
    } else {
      timers_.set(Timer::shuffle, now + config_.retry_ms);
    }
  }
  if (timers_.take_expired(Timer::explore, now)) {
    if (!active_.empty()) {
      // Anti-entropy beyond the active set: a link to a random known peer outside it (which
      // offers heads on connect) is what rejoins two halves of a healed partition.
      // Back off while the active set stays the same: each exploration is a new link (a
      // hello, heads for every group it shares, closed when idle), and in many settled groups
      // they were most of what an idle node sent and most of its links.
      explore_every_ = explore_changed_
                           ? config_.explore_interval_ms
                           : std::min(2 * explore_every_, config_.explore_interval_max_ms);
      explore_changed_ = false;
      timers_.set(Timer::explore, now + explore_every_);
      std::vector<std::pair<std::string, std::optional<PublicKey>>> outside;
      for (const auto& [address, id] : passive_)
        if (!(id && links.linked(*id)) && !links.dialing(address)) outside.push_back({address, id});
      if (!outside.empty()) {
        const auto& [address, id] = pick(outside, rng);
        out_.push_back(membership_output::Dial{address, id});
      }
    } else {
      timers_.set(Timer::explore, now + config_.retry_ms);
    }
  }
}

std::optional<MembershipOutput> Membership::poll() {
  if (out_.empty()) return std::nullopt;
  MembershipOutput o = std::move(out_.front());
  out_.pop_front();
  return o;
}

std::optional<std::string> Membership::invariant_violation() const {
  auto fail = [](std::string what) { return std::optional<std::string>(std::move(what)); };
  // The active set stays within its cap (on_neighbor and on_neighbor_reply make room first).
  if (active_.size() > config_.active_max) return fail("membership: active set over its cap");
  // The passive list stays within its bound (remember evicts first).
  if (passive_.size() > config_.passive_max) return fail("membership: passive list over its bound");
  // This node is never its own peer.
  if (active_.count(config_.self)) return fail("membership: this node is in its active set");
  for (const auto& [address, id] : passive_)
    if (address.empty() || address == config_.self_address || (id && *id == config_.self))
      return fail("membership: this node, or no address, in the passive list");
  // Refusals are remembered within their bound, and not for active peers.
  if (refused_.size() > refusals_max) return fail("membership: refusals over their bound");
  // Lost peers are remembered within their bound, and not while active.
  if (lost_.size() > lost_max) return fail("membership: lost peers over their bound");
  for (const auto& [peer, l] : lost_)
    if (active_.count(peer)) return fail("membership: an active peer is remembered as lost");
  // Peers given up are remembered within their bound; a swap in flight is a request in flight.
  if (shed_.size() > shed_max) return fail("membership: peers given up over their bound");
  if (swap_ && !asked_.count(*swap_)) return fail("membership: a swap with no request in flight");
  for (const auto& [peer, r] : refused_)
    if (active_.count(peer)) return fail("membership: an active peer is remembered as refusing");
  // The periodic work is always due some time.
  if (!timers_.is_set(Timer::shuffle) || !timers_.is_set(Timer::explore))
    return fail("membership: a periodic timer is not set");
  return std::nullopt;
}

}  // namespace qun
