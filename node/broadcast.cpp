#include "node/broadcast.h"

#include <algorithm>
#include <bit>
#include <cassert>

namespace qun {

PublicKey Broadcast::tree_key(const PublicKey& author) const {
  return config_.tree_per_author ? author : PublicKey{};
}

Broadcast::Tree& Broadcast::tree(const PublicKey& author, bool all_eager) {
  const PublicKey key = tree_key(author);
  auto it = trees_.find(key);
  if (it == trees_.end()) {
    if (trees_.size() >= broadcast_trees_max) {
      auto oldest = trees_.end();
      for (auto t = trees_.begin(); t != trees_.end(); ++t) {
        if (t->first == template_) continue;  // kept
        if (oldest == trees_.end() || t->second.used < oldest->second.used) oldest = t;
      }
      trees_.erase(oldest);
    }
    // Plumtree: a new tree starts with every neighbour eager; or as the template says.
    Tree fresh;
    if (!config_.new_tree_floods && !all_eager) fresh.lazy = new_tree_lazy();
    it = trees_.emplace(key, fresh).first;
  }
  it->second.used = ++tree_clock_;
  return it->second;
}

// The template's lazy links less the attachments; with no template yet but attached, every
// neighbour but the attachments; with neither, none (every neighbour eager).
Broadcast::Mask Broadcast::new_tree_lazy() const {
  auto t = template_ ? trees_.find(*template_) : trees_.end();
  if (t != trees_.end()) return t->second.lazy & ~attached_;
  return attach_parents_ ? used_slots_ & ~attached_ : 0;
}

std::vector<PublicKey> Broadcast::template_peers() const {
  const Mask lazy = new_tree_lazy();
  std::vector<PublicKey> out;
  for (const auto& [peer, slot] : slots_)
    if (!(lazy & (Mask{1} << slot))) out.push_back(peer);
  return out;
}

Broadcast::Mask Broadcast::bit(const PublicKey& peer) const {
  auto s = slots_.find(peer);
  return s == slots_.end() ? 0 : Mask{1} << s->second;
}

bool Broadcast::is_lazy(const PublicKey& peer, const PublicKey& author) const {
  auto t = trees_.find(tree_key(author));
  return t != trees_.end() && (t->second.lazy & bit(peer)) != 0;
}

void Broadcast::neighbor_up(const PublicKey& peer) {
  const bool known = slots_.count(peer) != 0;
  if (!known) {
    // The node keeps at most relay_active_max <= broadcast_neighbors_max neighbours per group.
    assert(slots_.size() < broadcast_neighbors_max);
    const auto slot = static_cast<std::size_t>(std::countr_one(used_slots_));
    used_slots_ |= Mask{1} << slot;
    slots_.emplace(peer, slot);
  }
  // Plumtree starts every new neighbour eager (a returning one too), so a tree that lost a link
  // is whole again at once. Not in the template: it stays the first author's shortest-path tree
  // (plus grafts), and a link eager there would be a cycle in every new author's tree. A
  // neighbour already known (a new link to it) keeps its place in the template.
  const Mask b = bit(peer);
  for (auto& [author, t] : trees_) {
    if (author == template_) {
      if (!known) {
        t.lazy |= b;
        template_mended_ &= ~b;
      }
    } else {
      t.lazy &= ~b;
    }
  }
  if (!known && template_) maybe_attach(peer);
}

bool Broadcast::uses_template() const {
  return config_.tree_per_author && !config_.new_tree_floods && !config_.flood;
}

bool Broadcast::attached() const {
  return attach_asked_ || (parent_ && is_neighbor(*parent_));
}

void Broadcast::on_attach(const PublicKey& peer) {
  const Mask b = bit(peer);
  if (!uses_template() || b == 0) return;
  if (attach_asked_ & b) {
    attach_asked_ &= ~b;
    attach_parents_ |= b;
    attached_ |= b;
    if (!parent_ || !is_neighbor(*parent_)) parent_ = peer;
  } else if (!(attached_ & b)) {
    attached_ |= b;
    out_.push_back(broadcast_output::Graft{peer, {}, {}});
  }
}

void Broadcast::maybe_attach(const PublicKey& peer) {
  const Mask b = bit(peer);
  if (!uses_template() || b == 0 || attached()) return;
  ask_attach(peer);
}

void Broadcast::ask_attach(const PublicKey& peer) {
  const Mask b = bit(peer);
  if (attached_ & b) {  // attached already (at its request): a request would go unanswered
    parent_ = peer;
    return;
  }
  attach_asked_ |= b;
  out_.push_back(broadcast_output::Graft{peer, {}, {}});
}

void Broadcast::neighbor_down(const PublicKey& peer) {
  auto s = slots_.find(peer);
  if (s == slots_.end()) return;
  const Mask b = Mask{1} << s->second;
  for (auto& [author, t] : trees_) t.lazy &= ~b;
  template_mended_ &= ~b;
  attached_ &= ~b;
  attach_asked_ &= ~b;
  attach_parents_ &= ~b;
  used_slots_ &= ~b;
  slots_.erase(s);
  // The link this node hung by in the template is gone: with it, the part of the tree below
  // this node is cut off from the rest. Another neighbour is asked to attach it, one lazy in the
  // template when there is one (an eager one is more likely below this node).
  if (parent_ == peer) {
    parent_.reset();
    if (!template_ || slots_.empty()) return;
    const Mask lazy = tree(*template_).lazy;
    auto pick = std::find_if(slots_.begin(), slots_.end(),
                             [&](const auto& n) { return (lazy & (Mask{1} << n.second)) != 0; });
    maybe_attach(pick == slots_.end() ? slots_.begin()->first : pick->first);
  }
}

void Broadcast::drop_announcements(const PublicKey& peer) { ihave_out_.erase(peer); }

void Broadcast::make_lazy(const PublicKey& peer, const std::vector<PublicKey>& authors) {
  const Mask b = bit(peer);
  if (config_.flood || b == 0) return;
  bool changed = false;
  std::vector<PublicKey> pruned;
  auto prune = [&](Tree& t, const PublicKey& author) {
    if (t.lazy & b) return;
    t.lazy |= b;
    changed = true;
    pruned.push_back(author);
  };
  if (authors.empty()) {
    for (auto& [author, t] : trees_) prune(t, author);
    if (changed) out_.push_back(broadcast_output::Prune{peer, {}});
    return;
  }
  for (const PublicKey& author : authors) {
    if (std::find(pruned.begin(), pruned.end(), author) != pruned.end()) continue;
    prune(tree(author), author);
  }
  if (!changed) return;
  unmend_template(b);
  out_.push_back(broadcast_output::Prune{peer, std::move(pruned)});
}

void Broadcast::make_eager(const PublicKey& peer, const PublicKey& author) {
  tree(author).lazy &= ~bit(peer);
  // A graft mends the template too: the link was needed, and new authors would need it again.
  if (!template_) return;
  Tree& t = tree(*template_);
  if (t.lazy & bit(peer)) template_mended_ |= bit(peer);
  t.lazy &= ~bit(peer);
}

void Broadcast::on_admitted(Millis now, const std::vector<Hash>& ids,
                            const std::vector<PublicKey>& authors, std::optional<PublicKey> from,
                            std::uint32_t hops) {
  assert(ids.size() == authors.size());
  if (ids.empty()) return;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const Hash& id = ids[i];
    if (auto m = missing_.find(tag_of(id)); m != missing_.end()) {
      // The announcers we grafted are eager again in this author's tree (each made us eager on
      // its side when the graft arrived).
      for (const PublicKey& peer : m->second.grafted)
        if (is_neighbor(peer)) make_eager(peer, authors[i]);
      missing_.erase(m);
    }
    if (seen_.emplace(id, Seen{hops, from, authors[i]}).second) seen_order_.push_back(id);
  }
  while (seen_order_.size() > broadcast_seen_max) {
    seen_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  // The first author whose push reached us gives the template of new trees (not our own events:
  // authored before any neighbour was up, their tree would make every later neighbour lazy).
  // The link that push came by is the one this node hangs by in the template (its parent), and
  // it asks the parent to attach it: the parent's own template may be another author's tree,
  // in which the link is lazy (the first author's is), and new authors' events must still come
  // down it.
  if (!template_ && from && hops != broadcast_no_hops && uses_template()) {
    template_ = tree_key(authors.front());
    parent_ = from;
    ask_attach(*from);
  }
  // Each event pushed along its author's tree, announced lazily to the rest.
  std::vector<Mask> lazy(ids.size());
  // Near the author (fewer than new_tree_flood_hops links away), a new author's tree starts with
  // every neighbour eager: its first events enter the template at many nodes around the author,
  // not only where the template links the author.
  const bool near = hops < config_.new_tree_flood_hops;
  for (std::size_t i = 0; i < ids.size(); ++i)
    lazy[i] = config_.flood ? 0 : tree(authors[i], near).lazy;
  for (const auto& [peer, slot] : slots_) {
    if (peer == from) continue;
    const Mask b = Mask{1} << slot;
    std::vector<Hash> push;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (lazy[i] & b) {
        ihave_out_[peer].push_back(ids[i]);
        timers_.set_by(Timer::ihave, now + config_.ihave_delay_ms);
      } else {
        push.push_back(ids[i]);
      }
    }
    if (!push.empty()) out_.push_back(broadcast_output::Push{peer, std::move(push), hops});
  }
}

void Broadcast::on_redundant_push(const PublicKey& from, const std::vector<PublicKey>& authors) {
  if (authors.empty()) return;
  make_lazy(from, authors);
}

void Broadcast::on_too_many_duplicates(const PublicKey& peer) {
  attached_ &= ~bit(peer);
  attach_parents_ &= ~bit(peer);
  make_lazy(peer, {});
}

std::optional<Hash> Broadcast::recent(const EventTag& tag) const {
  Hash lowest;
  std::copy(tag.bytes.begin(), tag.bytes.end(), lowest.bytes.begin());
  auto it = seen_.lower_bound(lowest);
  if (it == seen_.end() || tag_of(it->first) != tag) return std::nullopt;
  return it->first;
}

void Broadcast::on_ihave(Millis now, const PublicKey& peer, const std::vector<EventTag>& tags,
                         const std::vector<std::uint32_t>& hops) {
  for (std::size_t i = 0; i < tags.size(); ++i) {
    const EventTag& tag = tags[i];
    if (const auto id = recent(tag)) {
      // The peer holds it: our own announcement of it to that peer, if still batched, is moot.
      if (auto q = ihave_out_.find(peer); q != ihave_out_.end()) std::erase(q->second, *id);
      maybe_swap(peer, *id, i < hops.size() ? hops[i] : broadcast_no_hops);
      continue;
    }
    maybe_attach(peer);
    auto& entry = missing_[tag];
    if (entry.announcers.empty()) entry.deadline = now + config_.graft_timeout_ms;
    if (std::find(entry.announcers.begin(), entry.announcers.end(), peer) ==
        entry.announcers.end())
      entry.announcers.push_back(peer);
    timers_.set_by(Timer::graft, entry.deadline);
  }
}

// Plumtree's optimisation: a lazy peer that is markedly closer to an event's author than the
// eager path we received it by takes that path's place in the author's tree.
void Broadcast::maybe_swap(const PublicKey& peer, const Hash& id, std::uint32_t hops) {
  if (config_.flood || config_.tree_optimize_hops == 0 || hops == broadcast_no_hops) return;
  auto s = seen_.find(id);
  if (s == seen_.end() || s->second.hops == broadcast_no_hops || !s->second.from) return;
  if (hops + 1 + config_.tree_optimize_hops > s->second.hops) return;
  const PublicKey old = *s->second.from;
  const PublicKey author = s->second.author;
  if (old == peer || !is_lazy(peer, author)) return;
  make_eager(peer, author);
  out_.push_back(broadcast_output::Graft{peer, {}, {author}});
  make_lazy(old, {author});
  s->second.hops = hops + 1;
  s->second.from = peer;
}

void Broadcast::on_graft(const PublicKey& peer, const std::vector<PublicKey>& authors) {
  if (!is_neighbor(peer)) return;
  for (const PublicKey& author : authors) make_eager(peer, author);
}

void Broadcast::on_prune(const PublicKey& peer, const std::vector<PublicKey>& authors) {
  const Mask b = bit(peer);
  if (config_.flood || b == 0) return;
  if (authors.empty()) {
    for (auto& [author, t] : trees_) t.lazy |= b;
    attached_ &= ~b;
    attach_parents_ &= ~b;
    return;
  }
  for (const PublicKey& author : authors) tree(author).lazy |= b;
  unmend_template(b);  // as make_lazy
}

// A graft that mended the template may have closed a cycle in it (the push it waited for was
// only slow): once a tree prunes that link, the template, which had the same cycle (new trees
// are its copies), loses the link too, on both ends (make_lazy, on_prune); or every new author
// would pay for the cycle again. Links of the first author's own tree are never pruned this
// way: concurrent prunes by several authors could cut the template apart.
void Broadcast::unmend_template(Mask b) {
  if (!template_ || !(template_mended_ & b)) return;
  tree(*template_).lazy |= b;
  template_mended_ &= ~b;
}

void Broadcast::on_tick(Millis now) {
  if (timers_.take_expired(Timer::ihave, now)) flush_ihave();
  if (timers_.take_expired(Timer::graft, now)) send_grafts(now);
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
void Broadcast::send_grafts(Millis now) {
  std::map<PublicKey, std::vector<EventTag>> grafts;
  for (auto it = missing_.begin(); it != missing_.end();) {
    Missing& m = it->second;
    if (m.announcers.empty()) {
      it = missing_.erase(it);
      continue;
    }
    if (m.deadline <= now) {
      const PublicKey who = m.announcers.front();
      m.announcers.erase(m.announcers.begin());
      if (is_neighbor(who) && grafts[who].size() < broadcast_ids_max) {
        grafts[who].push_back(it->first);
        m.grafted.push_back(who);
      }
      m.deadline = now + config_.graft_timeout_ms;
    }
    timers_.set_by(Timer::graft, m.deadline);
    ++it;
  }
  for (auto& [peer, ids] : grafts) {
    // With one shared tree the grafted link is eager again at once; with a tree per author, in
    // the event's author's tree once it arrives (the author is not known before).
    if (!config_.tree_per_author) make_eager(peer, PublicKey{});
    out_.push_back(broadcast_output::Graft{peer, std::move(ids), {}});
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
  // Each neighbour has its own slot, and only neighbours are lazy in a tree (so no peer is both
  // eager and lazy in one).
  Mask slots = 0;
  for (const auto& [peer, slot] : slots_) {
    if (slot >= broadcast_neighbors_max || (slots & (Mask{1} << slot))) return "a bad neighbour slot";
    slots |= Mask{1} << slot;
  }
  if (slots != used_slots_) return "neighbour slots out of step";
  for (const auto& [author, t] : trees_) {
    if (t.lazy & ~used_slots_) return "a lazy peer that is no neighbour";
    // Flooding keeps every neighbour eager.
    if (config_.flood && t.lazy) return "a lazy peer while flooding";
  }
  if (trees_.size() > broadcast_trees_max) return "trees over their bound";
  if (template_ && !trees_.count(*template_)) return "the template tree was evicted";
  if (template_mended_ & ~used_slots_) return "a mended template link that is no neighbour";
  if ((attached_ | attach_asked_) & ~used_slots_) return "an attachment that is no neighbour";
  if (attach_parents_ & ~attached_) return "an attachment's asker not attached";
  // Work that waits has its timer.
  if (!missing_.empty() && !timers_.is_set(Timer::graft)) return "missing events with no graft timer";
  if (!ihave_out_.empty() && !timers_.is_set(Timer::ihave)) return "announcements with no timer";
  // What is remembered stays within its bound.
  if (seen_.size() > broadcast_seen_max || seen_order_.size() > broadcast_seen_max)
    return "seen events over their bound";
  return std::nullopt;
}

}  // namespace qun
