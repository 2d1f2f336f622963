#include "node/broadcast.h"

#include <algorithm>

namespace qun {

void Broadcast::neighbor_up(const PublicKey& peer) {
  // Plumtree starts every new neighbour eager.
  lazy_.erase(peer);
  eager_.insert(peer);
}

void Broadcast::neighbor_down(const PublicKey& peer) {
  eager_.erase(peer);
  lazy_.erase(peer);
}

void Broadcast::drop_announcements(const PublicKey& peer) { ihave_out_.erase(peer); }

void Broadcast::make_lazy(const PublicKey& peer) {
  if (config_.flood || !eager_.erase(peer)) return;
  lazy_.insert(peer);
  out_.push_back(broadcast_output::Prune{peer});
}

void Broadcast::on_admitted(Millis now, const std::vector<Hash>& ids,
                            std::optional<PublicKey> from, std::uint32_t hops) {
  if (ids.empty()) return;
  for (const Hash& id : ids) {
    missing_.erase(id);
    if (seen_.emplace(id, Seen{hops, from}).second) seen_order_.push_back(id);
  }
  while (seen_order_.size() > broadcast_seen_max) {
    seen_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  // Eager push to the tree, lazy announcement to the rest.
  for (const PublicKey& peer : eager_)
    if (peer != from) out_.push_back(broadcast_output::Push{peer, ids, hops});
  for (const PublicKey& peer : lazy_) {
    if (peer == from) continue;
    auto& q = ihave_out_[peer];
    q.insert(q.end(), ids.begin(), ids.end());
    timers_.set_by(Timer::ihave, now + config_.ihave_delay_ms);
  }
}

void Broadcast::on_redundant_push(const PublicKey& from) { make_lazy(from); }

void Broadcast::on_too_many_duplicates(const PublicKey& peer) { make_lazy(peer); }

void Broadcast::on_ihave(Millis now, const PublicKey& peer, const std::vector<Hash>& ids,
                         const std::vector<std::uint32_t>& hops, const Has& has) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const Hash& id = ids[i];
    if (has(id)) {
      maybe_swap(peer, id, i < hops.size() ? hops[i] : broadcast_no_hops);
      continue;
    }
    auto& entry = missing_[id];
    if (entry.announcers.empty()) entry.deadline = now + config_.graft_timeout_ms;
    if (std::find(entry.announcers.begin(), entry.announcers.end(), peer) ==
        entry.announcers.end())
      entry.announcers.push_back(peer);
    timers_.set_by(Timer::graft, entry.deadline);
  }
}

// Plumtree's optimisation: a lazy peer that is markedly closer to an event's author than the
// eager path we received it by takes that path's place in the tree.
void Broadcast::maybe_swap(const PublicKey& peer, const Hash& id, std::uint32_t hops) {
  if (config_.flood || config_.tree_optimize_hops == 0 || hops == broadcast_no_hops) return;
  auto s = seen_.find(id);
  if (s == seen_.end() || s->second.hops == broadcast_no_hops || !s->second.from) return;
  if (hops + 1 + config_.tree_optimize_hops > s->second.hops) return;
  const PublicKey old = *s->second.from;
  if (old == peer || !lazy_.count(peer)) return;
  lazy_.erase(peer);
  eager_.insert(peer);
  out_.push_back(broadcast_output::Graft{peer, {}});
  make_lazy(old);
  s->second = {hops + 1, peer};
}

void Broadcast::on_graft(const PublicKey& peer) {
  if (lazy_.erase(peer)) eager_.insert(peer);
}

void Broadcast::on_prune(const PublicKey& peer) {
  if (config_.flood || !eager_.erase(peer)) return;
  lazy_.insert(peer);
}

void Broadcast::on_tick(Millis now, const Has& has) {
  if (timers_.take_expired(Timer::ihave, now)) flush_ihave();
  if (timers_.take_expired(Timer::graft, now)) send_grafts(now, has);
}

void Broadcast::flush_ihave() {
  for (const auto& [peer, ids] : ihave_out_) {
    for (std::size_t at = 0; at < ids.size(); at += broadcast_ids_max) {
      const std::size_t end = std::min(ids.size(), at + broadcast_ids_max);
      std::vector<Hash> part(ids.begin() + static_cast<long>(at),
                             ids.begin() + static_cast<long>(end));
      std::vector<std::uint32_t> distances;
      for (const auto& id : part) {
        auto s = seen_.find(id);
        distances.push_back(s == seen_.end() ? broadcast_no_hops : s->second.hops);
      }
      out_.push_back(broadcast_output::IHave{peer, std::move(part), std::move(distances)});
    }
  }
  ihave_out_.clear();
}

// Grafts for announced events that did not arrive by push: each missing event is asked of its
// announcers one after another, graft_timeout_ms apart.
void Broadcast::send_grafts(Millis now, const Has& has) {
  std::map<PublicKey, std::vector<Hash>> grafts;
  for (auto it = missing_.begin(); it != missing_.end();) {
    Missing& m = it->second;
    if (has(it->first) || m.announcers.empty()) {
      it = missing_.erase(it);
      continue;
    }
    if (m.deadline <= now) {
      const PublicKey who = m.announcers.front();
      m.announcers.erase(m.announcers.begin());
      if (is_neighbor(who) && grafts[who].size() < broadcast_ids_max)
        grafts[who].push_back(it->first);
      m.deadline = now + config_.graft_timeout_ms;
    }
    timers_.set_by(Timer::graft, m.deadline);
    ++it;
  }
  for (auto& [peer, ids] : grafts) {
    if (lazy_.erase(peer)) eager_.insert(peer);
    out_.push_back(broadcast_output::Graft{peer, std::move(ids)});
  }
}

// GCC 12 at -O3 takes the moved variant's vectors for uninitialised (a false positive of the
// kind of GCC bug 80635, std::optional and -Wmaybe-uninitialized).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
std::optional<BroadcastOutput> Broadcast::poll() {
  if (out_.empty()) return std::nullopt;
  BroadcastOutput o = std::move(out_.front());
  out_.pop_front();
  return o;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

std::vector<PublicKey> Broadcast::announcing() const {
  std::vector<PublicKey> peers;
  for (const auto& [peer, ids] : ihave_out_) peers.push_back(peer);
  return peers;
}

std::optional<std::string> Broadcast::invariant_violation() const {
  // No peer is both eager and lazy.
  for (const PublicKey& peer : lazy_)
    if (eager_.count(peer)) return "a peer is both eager and lazy";
  // Flooding keeps every neighbour eager.
  if (config_.flood && !lazy_.empty()) return "a lazy peer while flooding";
  // Work that waits has its timer.
  if (!missing_.empty() && !timers_.is_set(Timer::graft)) return "missing events with no graft timer";
  if (!ihave_out_.empty() && !timers_.is_set(Timer::ihave)) return "announcements with no timer";
  // What is remembered stays within its bound.
  if (seen_.size() > broadcast_seen_max || seen_order_.size() > broadcast_seen_max)
    return "seen events over their bound";
  return std::nullopt;
}

}  // namespace qun
