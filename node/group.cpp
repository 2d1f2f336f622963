#include "node/group.h"

#include <algorithm>
#include <cassert>
#include <queue>
#include <unordered_set>

#include "node/direct.h"
#include "node/limits.h"

namespace qun {

namespace {

int rank(Role r) { return role_rank(r); }

}  // namespace

// A departing member holds the secrets of the invites it made and of the one it joined with:
// those invites close, so keys sealed to them later stay out of its reach.
static void revoke_invites_known_to(GroupState& s, const MemberInfo& m) {
  for (auto& [iid, inv] : s.invites) {
    if (inv.revoked) continue;
    if (inv.creator == m.id || (m.joined_with && *m.joined_with == iid)) {
      inv.revoked = true;
      s.invite_closed_since_rekey = true;
    }
  }
}

static void add_epoch_key(GroupState& s, const EventRecord& rec) {
  const std::uint64_t epoch = rec.event.epoch;
  if (epoch > s.epoch) {
    s.epoch = epoch;
    s.departed_since_rekey = false;
    s.invite_closed_since_rekey = false;
  }
  s.epoch_keys[epoch].push_back({rec.event.id, {}});
}

// Whether an accepted event of this kind can change which key candidate is current: the content
// kinds never touch members, invites, epochs or key events.
static bool touches_keys(EventKind kind) {
  switch (kind) {
    case EventKind::post:
    case EventKind::react:
    case EventKind::edit:
    case EventKind::del:
    case EventKind::redact:
    case EventKind::mute:
    case EventKind::channel:
    case EventKind::set_nick:
    case EventKind::set_name:
    case EventKind::set_topic:
    case EventKind::relay:
    case EventKind::set_role:
    case EventKind::set_settings:
      return false;
    default:
      return true;
  }
}

Role role_needed(EventKind kind) {
  switch (kind) {
    case EventKind::add:
    case EventKind::remove:
    case EventKind::set_role:
    case EventKind::set_name:
    case EventKind::set_topic:
    case EventKind::relay:
    case EventKind::channel:
    case EventKind::ban:
    case EventKind::set_settings:
      return Role::admin;
    case EventKind::redact:
    case EventKind::mute:
      return Role::moderator;
    default:
      return Role::member;
  }
}

Role GroupState::role_of(const PublicKey& who) const {
  auto it = members.find(who);
  return it == members.end() ? Role::member : it->second.role;
}

Group::Group(const Hash& id) : id_(id) { reset_state(); }

void Group::reset_state() {
  state_ = GroupState();
  state_.id = id_;
  excluded_.clear();
  revocations_.clear();
  last_applied_.reset();
  checkpoints_.clear();
  for (auto& [id, rec] : events_) {
    rec.accepted = false;
    rec.why_not.clear();
  }
}

const EventRecord* Group::find(const Hash& id) const {
  auto it = events_.find(id);
  return it == events_.end() ? nullptr : &it->second;
}

std::vector<const EventRecord*> Group::ordered() const {
  std::vector<const EventRecord*> out;
  out.reserve(order_.size());
  for (const auto& [key, id] : order_) out.push_back(&events_.at(id));
  return out;
}

std::vector<const Event*> Group::pending_events() const {
  std::vector<const Event*> out;
  for (const auto& [id, entry] : pending_) out.push_back(&entry.event);
  return out;
}

const Event* Group::find_pending(const Hash& id) const {
  auto it = pending_.find(id);
  return it == pending_.end() ? nullptr : &it->second.event;
}

std::uint64_t Group::pending_bytes_from(const std::optional<PublicKey>& from) const {
  auto it = pending_by_sender_.find(from);
  return it == pending_by_sender_.end() ? 0 : it->second.bytes;
}

std::vector<Hash> Group::missing() const {
  std::set<Hash> out;
  for (const auto& [id, entry] : pending_) {
    const Event& e = entry.event;
    for (const auto& p : e.parents)
      if (!has(p) && !pending_.count(p)) out.insert(p);
  }
  return {out.begin(), out.end()};
}

std::vector<Hash> Group::next_parents() const {
  // Newest heads first, so that an author who sees more heads than fit names the most recent.
  std::vector<std::pair<std::uint64_t, Hash>> by_order;
  for (const auto& h : heads_) by_order.push_back({events_.at(h).order_key, h});
  std::sort(by_order.rbegin(), by_order.rend());
  if (by_order.size() > limits::parents_max) by_order.resize(limits::parents_max);
  std::vector<Hash> out;
  for (const auto& [k, h] : by_order) out.push_back(h);
  std::sort(out.begin(), out.end());
  return out;
}

std::uint64_t Group::next_depth(const std::vector<Hash>& parents) const {
  std::uint64_t d = 0;
  for (const auto& p : parents) d = std::max(d, events_.at(p).event.depth);
  return d + 1;
}

std::uint64_t Group::order_key_for(const std::vector<Hash>& parents, std::uint64_t time_ms) const {
  std::uint64_t key = time_ms;
  for (const auto& p : parents) {
    auto it = events_.find(p);
    if (it != events_.end()) key = std::max(key, it->second.order_key + 1);
  }
  return key;
}

bool Group::is_ancestor(const Hash& ancestor, const Hash& descendant) const {
  if (ancestor == descendant) return true;
  // Every admitted event descends from the group's create event.
  if (ancestor == id_) return events_.count(descendant) != 0;
  auto a = events_.find(ancestor);
  auto d = events_.find(descendant);
  if (a == events_.end() || d == events_.end()) return false;
  // Walk back from the descendant; nothing ordered before the ancestor can lead to it.
  const auto floor = std::make_pair(a->second.order_key, ancestor);
  std::vector<Hash> stack{descendant};
  std::unordered_set<Hash, HashHasher> seen{descendant};
  while (!stack.empty()) {
    Hash cur = stack.back();
    stack.pop_back();
    for (const auto& p : events_.at(cur).event.parents) {
      if (p == ancestor) return true;
      const auto& rec = events_.at(p);
      if (std::make_pair(rec.order_key, p) < floor) continue;
      if (seen.insert(p).second) stack.push_back(p);
    }
  }
  return false;
}

bool Group::author_admitted_in_past(const Event& e) const {
  if (!known_authors_.count(e.author)) return false;
  // Walk back through the causal past, newest first, until we find an earlier event by the same
  // author (admitted itself, hence admitted before) or the event that admitted this author.
  std::priority_queue<std::pair<std::uint64_t, Hash>> queue;
  std::set<Hash> seen;
  for (const auto& p : e.parents) {
    if (seen.insert(p).second) queue.push({events_.at(p).order_key, p});
  }
  while (!queue.empty()) {
    Hash cur = queue.top().second;
    queue.pop();
    const EventRecord& rec = events_.at(cur);
    const Event& ev = rec.event;
    if (ev.author == e.author) return true;
    if (ev.kind == EventKind::add && rec.target && *rec.target == e.author) return true;
    for (const auto& p : ev.parents) {
      if (seen.insert(p).second) queue.push({events_.at(p).order_key, p});
    }
  }
  return false;
}

Group::Admit Group::admit(const Event& e, std::string& reason, std::vector<Hash>& missing,
                          bool signature_checked) const {
  if (e.group_id() != id_) {
    reason = "belongs to another group";
    return Admit::reject;
  }
  if (!signature_checked && !verify_event(e)) {
    reason = "bad signature";
    return Admit::reject;
  }
  // A droppable payload (a post's ciphertext) is not part of admission: a stub and the full
  // event must be admitted alike, whichever copy a node got. Readers that cannot decode it show
  // the post as unreadable.
  if (!payload_droppable(e.kind)) {
    if (auto r = check_payload(e); !r.ok()) {
      reason = "payload: " + r.error().context();
      return Admit::reject;
    }
  }
  for (const auto& p : e.parents)
    if (!has(p)) missing.push_back(p);
  std::optional<JoinPayload> join;
  if (e.kind == EventKind::join) {
    join = decode_join(e.payload).value();
    if (!has(join->invite)) missing.push_back(join->invite);
  }
  if (!missing.empty()) return Admit::wait;

  std::uint64_t depth = 0;
  for (const auto& p : e.parents) depth = std::max(depth, events_.at(p).event.depth);
  if (e.kind != EventKind::create && e.depth != depth + 1) {
    reason = "depth " + std::to_string(e.depth) + " should be " + std::to_string(depth + 1);
    return Admit::reject;
  }
  switch (e.kind) {
    case EventKind::create:
      if (e.epoch != 0) {
        reason = "create must start epoch 0";
        return Admit::reject;
      }
      return Admit::ok;
    case EventKind::join: {
      const EventRecord& inv = events_.at(join->invite);
      if (inv.event.kind != EventKind::invite || !inv.invite) {
        reason = "join names an event that is not an invite";
        return Admit::reject;
      }
      if (!verify(inv.invite->invite_key, join_proof_message(id_, e.author), join->proof)) {
        reason = "join proof does not match the invite";
        return Admit::reject;
      }
      {
        // The joiner must have seen the invite it uses: name it or a descendant as a parent.
        bool seen = false;
        for (const auto& p : e.parents) seen = seen || is_ancestor(join->invite, p);
        if (!seen) {
          reason = "join does not descend from its invite";
          return Admit::reject;
        }
      }
      return Admit::ok;
    }
    case EventKind::key_part: {
      // A part belongs to exactly one key event, which it names as a parent: by the same
      // author, in the same epoch, announcing at least this many parts. All of it depends on
      // the event and its parents only, so every node admits the same parts.
      const auto p = decode_key_part(e.payload).value();
      if (std::find(e.parents.begin(), e.parents.end(), p.key_event) == e.parents.end()) {
        reason = "key part does not name its key event as a parent";
        return Admit::reject;
      }
      const EventRecord& key = events_.at(p.key_event);
      if (key.event.kind != EventKind::rekey && key.event.kind != EventKind::remove) {
        reason = "key part names an event that is not a rekey or removal";
        return Admit::reject;
      }
      if (key.event.author != e.author || key.event.epoch != e.epoch) {
        reason = "key part by another author or in another epoch than its key event";
        return Admit::reject;
      }
      if (p.index > key.key_parts) {
        reason = "key part " + std::to_string(p.index) + " of a key event announcing " +
                 std::to_string(key.key_parts);
        return Admit::reject;
      }
      return Admit::ok;
    }
    default:
      if (!author_admitted_in_past(e)) {
        reason = "author was never admitted in its causal past";
        return Admit::reject;
      }
      return Admit::ok;
  }
}

void Group::insert(Event e) {
  EventRecord rec;
  rec.order_key = e.kind == EventKind::create ? e.time_ms : order_key_for(e.parents, e.time_ms);
  switch (e.kind) {
    case EventKind::create: {
      rec.key_recipients.push_back(e.author);
      rec.key_check = decode_create(e.payload).value().key_check;
      break;
    }
    case EventKind::close_invite: {
      auto p = decode_close_invite(e.payload).value();
      rec.invite_ref = p.invite;
      rec.close_reason = p.reason;
      break;
    }
    case EventKind::invite:
      rec.invite = decode_invite(e.payload).value();
      break;
    case EventKind::join:
      rec.invite_ref = decode_join(e.payload).value().invite;
      break;
    case EventKind::add:
      rec.target = decode_add(e.payload).value().member;
      break;
    case EventKind::remove: {
      auto p = decode_remove(e.payload).value();
      rec.target = p.member;
      for (const auto& k : p.keys.members) rec.key_recipients.push_back(k.recipient);
      for (const auto& k : p.keys.invites) rec.key_recipients.push_back(k.recipient);
      rec.key_check = p.keys.key_check;
      rec.key_parts = p.keys.parts;
      break;
    }
    case EventKind::rekey: {
      auto p = decode_rekey(e.payload).value();
      for (const auto& k : p.members) rec.key_recipients.push_back(k.recipient);
      for (const auto& k : p.invites) rec.key_recipients.push_back(k.recipient);
      rec.key_check = p.key_check;
      rec.key_parts = p.parts;
      break;
    }
    case EventKind::key_part: {
      auto p = decode_key_part(e.payload).value();
      for (const auto& k : p.members) rec.key_recipients.push_back(k.recipient);
      rec.key_parts = p.index;
      rec.key_event = p.key_event;
      break;
    }
    case EventKind::set_role: {
      auto p = decode_set_role(e.payload).value();
      rec.target = p.member;
      rec.role = p.role;
      break;
    }
    case EventKind::relay: {
      auto p = decode_relay(e.payload).value();
      rec.target = p.relay;
      rec.relay = std::move(p);
      break;
    }
    case EventKind::ban: {
      auto p = decode_ban(e.payload).value();
      rec.target = p.member;
      rec.banned = p.banned;
      break;
    }
    case EventKind::set_settings:
      rec.settings = decode_settings(e.payload).value().settings;
      break;
    default:
      break;
  }
  std::sort(rec.key_recipients.begin(), rec.key_recipients.end());
  known_authors_.insert(e.author);
  if (e.kind == EventKind::add && rec.target) known_authors_.insert(*rec.target);
  const Hash id = e.id;
  for (const auto& p : e.parents) {
    children_[p].push_back(id);
    heads_.erase(p);
  }
  heads_.insert(id);
  order_.insert({rec.order_key, id});
  stored_bytes_ += event_stored_bytes(e);
  rec.event = std::move(e);
  events_.emplace(id, std::move(rec));
}

bool Group::drop_payload(const Hash& id) {
  auto it = events_.find(id);
  if (it == events_.end()) return false;
  Event& e = it->second.event;
  if (!payload_droppable(e.kind) || e.payload_dropped) return false;
  const std::uint64_t before = event_stored_bytes(e);
  e = make_stub(e);
  stored_bytes_ = stored_bytes_ - before + e.encoded_bytes;
  return true;
}

bool Group::restore_payload(const Event& full) {
  auto it = events_.find(full.id);
  if (it == events_.end() || full.payload_dropped) return false;
  Event& e = it->second.event;
  if (!e.payload_dropped) return false;
  // Same id, so the same header and payload hash: the payload is the one the author signed.
  assert(full.payload_hash == e.payload_hash);
  const std::uint64_t before = e.encoded_bytes;
  e.payload = full.payload;
  e.payload_dropped = false;
  e.encoded_bytes = encode(e).size();
  stored_bytes_ = stored_bytes_ - before + e.encoded_bytes;
  return true;
}

namespace {

// What a pending event waits for: its parents, and a join's invite.
std::vector<Hash> dependencies(const Event& e) {
  std::vector<Hash> deps = e.parents;
  if (e.kind == EventKind::join) {
    if (auto jp = decode_join(e.payload); jp.ok()) deps.push_back(jp->invite);
  }
  return deps;
}

std::uint64_t pending_cost(const Event& e) { return event_stored_bytes(e); }

}  // namespace

void Group::park(Event e, const std::vector<Hash>& missing, const std::optional<PublicKey>& from) {
  const Hash id = e.id;
  for (const auto& m : missing) waiting_on_[m].insert(id);
  const std::uint64_t seq = pending_seq_++;
  SenderPending& sp = pending_by_sender_[from];
  sp.by_seq.emplace(seq, id);
  const std::uint64_t cost = pending_cost(e);
  sp.bytes += cost;
  pending_bytes_ += cost;
  pending_.emplace(id, Pending{seq, std::move(e), from});
}

Event Group::unpark(std::map<Hash, Pending>::iterator it) {
  const Hash id = it->first;
  Pending p = std::move(it->second);
  pending_.erase(it);
  const std::uint64_t cost = pending_cost(p.event);
  auto s = pending_by_sender_.find(p.from);
  assert(s != pending_by_sender_.end());
  s->second.by_seq.erase(p.seq);
  s->second.bytes -= cost;
  if (s->second.by_seq.empty()) pending_by_sender_.erase(s);
  pending_bytes_ -= cost;
  // Forget what it waited for, so the waiting lists stay bounded with the pending set.
  for (const Hash& d : dependencies(p.event)) {
    auto w = waiting_on_.find(d);
    if (w == waiting_on_.end()) continue;
    w->second.erase(id);
    if (w->second.empty()) waiting_on_.erase(w);
  }
  return std::move(p.event);
}

void Group::bound_pending(IngestReport& report, std::uint64_t group_bytes_max) {
  auto drop = [&](Hash id) {  // a copy: the index entry it came from goes in unpark
    (void)unpark(pending_.find(id));
    report.evicted.push_back(id);
    ++report.pending_dropped;
  };
  // Each sender within its share: its own oldest go first.
  std::vector<std::optional<PublicKey>> over;
  for (const auto& [from, sp] : pending_by_sender_)
    if (sp.bytes > limits::pending_sender_bytes_max) over.push_back(from);
  for (const auto& from : over) {
    while (pending_bytes_from(from) > limits::pending_sender_bytes_max)
      drop(pending_by_sender_.at(from).by_seq.begin()->second);
  }
  // The group within its bound: the sender holding the most loses its oldest (ties: the
  // smallest sender key, so that every node given the same inputs drops the same events).
  while (pending_bytes_ > group_bytes_max || pending_.size() > limits::pending_events_max) {
    auto largest = pending_by_sender_.begin();
    for (auto it = pending_by_sender_.begin(); it != pending_by_sender_.end(); ++it)
      if (it->second.bytes > largest->second.bytes) largest = it;
    drop(largest->second.by_seq.begin()->second);
  }
}

IngestReport Group::drop_pending_from(const std::optional<PublicKey>& from) {
  IngestReport report;
  auto s = pending_by_sender_.find(from);
  if (s != pending_by_sender_.end()) {
    std::vector<Hash> ids;
    for (const auto& [seq, id] : s->second.by_seq) ids.push_back(id);
    for (const Hash& id : ids) {
      (void)unpark(pending_.find(id));
      report.evicted.push_back(id);
      ++report.pending_dropped;
    }
  }
  report.pending = pending_.size();
  return report;
}

IngestReport Group::trim_pending(std::uint64_t bytes_max) {
  IngestReport report;
  bound_pending(report, std::min(bytes_max, limits::pending_bytes_max));
  report.pending = pending_.size();
  return report;
}

IngestReport Group::ingest(std::vector<Event> events, std::optional<PublicKey> from,
                           Signatures signatures) {
  IngestReport report;
  // Work list: the new events, then pending events whose parents just arrived (each keeping the
  // sender it came from, should it have to wait again, and whether its signature is known good).
  struct Work {
    Event event;
    std::optional<PublicKey> from;
    bool signature_checked;
  };
  std::vector<Work> work;
  work.reserve(events.size());
  for (auto& e : events) {
    if (has(e.id) || pending_.count(e.id)) {
      ++report.duplicates;
      // A full copy of an event we hold as a stub gives its payload back (its id proves it is
      // the one signed); a stub never replaces a payload we hold.
      if (restore_payload(e)) report.payloads_restored.push_back(e.id);
      continue;
    }
    work.push_back({std::move(e), from, signatures == Signatures::verified});
  }
  // Sorting by depth admits parents before children within a batch.
  std::sort(work.begin(), work.end(),
            [](const Work& a, const Work& b) { return a.event.depth < b.event.depth; });
  std::vector<Hash> admitted_now;
  std::set<Hash> parked_now;
  std::size_t i = 0;
  while (i < work.size()) {
    Event e = std::move(work[i].event);
    const std::optional<PublicKey> sender = work[i].from;
    const bool signature_checked = work[i].signature_checked;
    ++i;
    // The same event may come twice in one batch, or from the batch and from pending.
    if (has(e.id)) {
      ++report.duplicates;
      continue;
    }
    std::string reason;
    std::vector<Hash> missing;
    switch (admit(e, reason, missing, signature_checked)) {
      case Admit::reject:
        report.rejected.push_back({e.id, reason});
        break;
      case Admit::wait: {
        if (pending_.count(e.id)) break;
        parked_now.insert(e.id);
        park(std::move(e), missing, sender);
        break;
      }
      case Admit::ok: {
        const Hash id = e.id;
        insert(std::move(e));
        admitted_now.push_back(id);
        // Pending events waiting for this one may now be admissible: retry them.
        auto waiting = waiting_on_.find(id);
        if (waiting == waiting_on_.end()) break;
        const std::set<Hash> ready = std::move(waiting->second);
        waiting_on_.erase(waiting);
        for (const Hash& pid : ready) {
          auto it = pending_.find(pid);
          if (it == pending_.end()) continue;  // admitted or retried already
          std::optional<PublicKey> pfrom = it->second.from;
          work.push_back({unpark(it), std::move(pfrom), false});
        }
        break;
      }
    }
  }
  bound_pending(report, limits::pending_bytes_max);
  for (const Hash& id : parked_now)
    if (pending_.count(id)) report.pending_added.push_back(id);
  report.pending = pending_.size();
  if (!admitted_now.empty()) resolve(admitted_now);
  // Parents first: report in the resolved order.
  std::sort(admitted_now.begin(), admitted_now.end(), [this](const Hash& a, const Hash& b) {
    return std::make_pair(events_.at(a).order_key, a) < std::make_pair(events_.at(b).order_key, b);
  });
  report.admitted = std::move(admitted_now);
  return report;
}

void Group::resolve(const std::vector<Hash>& admitted) {
  // Incremental when every new event sorts after the fold's position.
  std::vector<std::pair<std::uint64_t, Hash>> fresh;
  for (const auto& id : admitted) fresh.push_back({events_.at(id).order_key, id});
  std::sort(fresh.begin(), fresh.end());
  if (last_applied_ && fresh.front() > *last_applied_) {
    bool clean = true;
    for (const auto& [key, id] : fresh) {
      if (!step(events_.at(id))) {
        clean = false;
        break;
      }
    }
    if (clean) {
      ++resolve_stats_.incremental;
      if (keys_touched_) choose_current_key(state_);
      return;
    }
  } else if (last_applied_ && refold_from_checkpoint(fresh.front())) {
    ++resolve_stats_.from_checkpoint;
    choose_current_key(state_);
    return;
  }
  ++resolve_stats_.full;
  full_fold();
}

bool Group::refold_from_checkpoint(const std::pair<std::uint64_t, Hash>& first_new) {
  while (!checkpoints_.empty() && !(checkpoints_.back().position < first_new)) checkpoints_.pop_back();
  if (checkpoints_.empty()) return false;
  const Checkpoint& cp = checkpoints_.back();
  state_ = cp.state;
  excluded_ = cp.excluded;
  revocations_ = cp.revocations;
  last_applied_ = cp.position;
  steps_since_checkpoint_ = 0;
  for (auto it = order_.upper_bound(cp.position); it != order_.end(); ++it) {
    if (!step(events_.at(it->second))) return false;
  }
  return true;
}

void Group::full_fold() {
  // Exclusions only grow within one fold, so this loop ends after at most one pass per event.
  std::set<Hash> carried;
  // The furthest position at which a pass restarted. A snapshot at or after it equals the
  // from-scratch fold of any larger set whose new events sort after the snapshot: every pass of
  // that fold repeats the same prefix, restarts and exclusions up to there.
  std::optional<std::pair<std::uint64_t, Hash>> restart_floor;
  for (;;) {
    reset_state();
    excluded_ = carried;
    steps_since_checkpoint_ = 0;
    bool clean = true;
    for (const auto& [key, id] : order_) {
      if (!step(events_.at(id))) {
        clean = false;
        break;
      }
    }
    if (clean) break;
    restart_floor = std::max(restart_floor, last_applied_);
    carried = excluded_;
  }
  if (restart_floor) {
    while (!checkpoints_.empty() && checkpoints_.front().position < *restart_floor)
      checkpoints_.pop_front();
  }
  choose_current_key(state_);
}

Role Group::needs_role(EventKind kind) const {
  if (kind == EventKind::invite && !state_.settings.members_can_invite) return Role::admin;
  return role_needed(kind);
}

bool Group::revoked_by_earlier(const EventRecord& rec) const {
  for (const auto& r : revocations_) {
    if (r.invite) {
      // A close revokes the joins of its invite that its author had not seen.
      if (rec.event.kind == EventKind::join && *rec.invite_ref == *r.invite &&
          !is_ancestor(r.event, rec.event.id))
        return true;
      continue;
    }
    if (r.who != rec.event.author) continue;
    if (rank(needs_role(rec.event.kind)) <= r.rank_kept) continue;
    // Concurrent with the revocation (it sorts after it, so it cannot be its ancestor).
    if (!is_ancestor(r.event, rec.event.id)) return true;
  }
  return false;
}

bool Group::step(EventRecord& rec) {
  if (last_applied_ && ++steps_since_checkpoint_ >= limits::checkpoint_steps) {
    // The state before this event, at the position of the previous one.
    steps_since_checkpoint_ = 0;
    checkpoints_.push_back(Checkpoint{*last_applied_, state_, excluded_, revocations_});
    if (checkpoints_.size() > limits::checkpoints_max) checkpoints_.pop_front();
  }
  last_applied_ = std::make_pair(rec.order_key, rec.event.id);
  rec.accepted = false;
  if (excluded_.count(rec.event.id) || revoked_by_earlier(rec)) {
    excluded_.insert(rec.event.id);
    rec.why_not = rec.event.kind == EventKind::join
                      ? "invalidated by a close of its invite or a revocation of its author"
                      : "invalidated by a concurrent revocation of its author";
    return true;
  }
  rec.why_not = apply(rec);
  if (!rec.why_not.empty()) return true;
  rec.accepted = true;
  keys_touched_ = keys_touched_ || touches_keys(rec.event.kind);
  state_.history.push_back(rec.event.id);
  // Revocation wins over the revoked member's concurrent actions.
  const Event& e = rec.event;
  if (e.kind == EventKind::remove || (e.kind == EventKind::ban && rec.banned)) {
    return revoke(rec, *rec.target, -1);
  }
  // A role change takes back what the new role may not do (a promotion takes nothing).
  if (e.kind == EventKind::set_role) return revoke(rec, *rec.target, rank(rec.role));
  if (e.kind == EventKind::close_invite) return revoke_joins(rec, *rec.invite_ref);
  return true;
}

bool Group::revoke_joins(const EventRecord& close, const Hash& invite) {
  revocations_.push_back({close.event.id, close.event.author, -1, invite});
  // Joins of this invite already applied that the closer had not seen were let in by a use the
  // closer did not count: if any was accepted, the fold starts again without it.
  bool clean = true;
  for (const auto& hid : state_.history) {
    const EventRecord& rec = events_.at(hid);
    if (rec.event.kind != EventKind::join || *rec.invite_ref != invite) continue;
    if (!is_ancestor(hid, close.event.id)) {
      excluded_.insert(hid);
      clean = false;
    }
  }
  return clean;
}

bool Group::revoke(const EventRecord& revocation, const PublicKey& who, int rank_kept) {
  revocations_.push_back({revocation.event.id, who, rank_kept, std::nullopt});
  // Events of `who` already applied that the revoker had not seen are invalid: if any was
  // accepted, the fold must start again without it.
  std::vector<Hash> targets;
  for (const auto& hid : state_.history) {
    const EventRecord& rec = events_.at(hid);
    if (rec.event.author != who || hid == revocation.event.id) continue;
    if (rank(needs_role(rec.event.kind)) <= rank_kept) continue;
    targets.push_back(hid);
  }
  if (targets.empty()) return true;
  // One walk back from the revocation marks what its author had seen, down to the oldest target.
  std::pair<std::uint64_t, Hash> floor{UINT64_MAX, Hash{}};
  for (const auto& t : targets) floor = std::min(floor, std::make_pair(events_.at(t).order_key, t));
  std::unordered_set<Hash, HashHasher> seen{revocation.event.id};
  std::vector<Hash> stack{revocation.event.id};
  while (!stack.empty()) {
    Hash cur = stack.back();
    stack.pop_back();
    for (const auto& p : events_.at(cur).event.parents) {
      const auto& rec = events_.at(p);
      if (std::make_pair(rec.order_key, p) < floor) continue;
      if (seen.insert(p).second) stack.push_back(p);
    }
  }
  bool clean = true;
  for (const auto& t : targets) {
    if (!seen.count(t)) {
      excluded_.insert(t);
      clean = false;
    }
  }
  return clean;
}

std::string Group::apply(EventRecord& rec) {
  GroupState& s = state_;
  const Event& e = rec.event;
  const std::uint64_t position = s.history.size();
  if (e.kind == EventKind::create) {
    if (s.created) return "a second create";
    auto p = decode_create(e.payload).value();
    s.created = true;
    s.settings = p.settings;
    if (p.settings.direct) s.direct_pair = {e.author};
    s.members[e.author] = MemberInfo{e.author, Role::founder, e.id, position, e.id, std::nullopt};
    s.name_event = e.id;
    s.epoch = e.epoch;
    s.epoch_keys[e.epoch].push_back({e.id, {}});
    return {};
  }
  if (!s.created) return "before the group's creation";
  if (s.settings.direct) {
    if (auto why = direct::refusal(s, rec); !why.empty()) return why;
  }

  if (e.kind == EventKind::join) {
    if (s.is_member(e.author)) return "already a member";
    if (s.banned.count(e.author)) return "banned";
    if (s.members.size() >= limits::members_max) return "group is full";
    auto it = s.invites.find(*rec.invite_ref);
    if (it == s.invites.end()) return "invite not valid";
    InviteInfo& inv = it->second;
    if (inv.revoked) return "invite revoked";
    if (inv.uses >= inv.uses_max) return "invite used up";
    // Expiry is not judged here: an order key is the largest time in the event's past, which
    // any member can push far ahead. A close-invite event ends an expired invite.
    if (e.epoch > s.epoch) return "epoch from the future";
    ++inv.uses;
    s.members[e.author] = MemberInfo{e.author, Role::member, e.id, position, e.id, inv.id};
    s.former_members.erase(e.author);
    return {};
  }

  auto author = s.members.find(e.author);
  if (author == s.members.end()) return "author is not a member";
  const Role author_role = author->second.role;
  // Acting on a role needs the event that granted it in the causal past.
  auto needs = [&](Role role) -> std::string {
    if (rank(author_role) < rank(role)) return std::string("needs ") + role_name(role) + " rights";
    if (!is_ancestor(author->second.role_grant, e.id))
      return std::string(role_name(role)) + " rights not yet seen by author";
    return {};
  };
  auto needs_admin = [&]() { return needs(Role::admin); };

  switch (e.kind) {
    case EventKind::invite: {
      if (!s.settings.members_can_invite) {
        if (auto why = needs_admin(); !why.empty()) return why;
      }
      const auto& p = *rec.invite;
      s.invites[e.id] = InviteInfo{e.id, e.author, p.invite_key, p.uses_max, 0, p.expires_ms, false, std::nullopt};
      return {};
    }
    case EventKind::add: {
      if (auto why = needs_admin(); !why.empty()) return why;
      if (s.is_member(*rec.target)) return "already a member";
      if (s.banned.count(*rec.target)) return "banned";
      if (s.members.size() >= limits::members_max) return "group is full";
      s.members[*rec.target] = MemberInfo{*rec.target, Role::member, e.id, position, e.id, std::nullopt};
      s.former_members.erase(*rec.target);
      if (s.settings.direct) s.direct_pair.push_back(*rec.target);
      return {};
    }
    case EventKind::remove:
    case EventKind::set_role: {
      if (auto why = needs_admin(); !why.empty()) return why;
      auto target = s.members.find(*rec.target);
      if (target == s.members.end()) return "target is not a member";
      if (rank(target->second.role) > rank(author_role)) return "target outranks author";
      if (e.kind == EventKind::set_role) {
        if (rank(rec.role) > rank(author_role)) return "cannot grant a higher role than one's own";
        target->second.role = rec.role;
        target->second.role_grant = e.id;
        break;
      }
      if (*rec.target == e.author) return "use leave to remove oneself";
      // Concurrent rekeys may name the same or an older epoch; none may skip ahead.
      if (e.epoch == 0 || e.epoch > s.epoch + 1) return "removal epoch out of range";
      revoke_invites_known_to(s, target->second);
      s.former_members.insert(target->first);
      s.members.erase(target);
      add_epoch_key(s, rec);
      break;
    }
    case EventKind::leave: {
      revoke_invites_known_to(s, author->second);
      s.former_members.insert(e.author);
      s.members.erase(author);
      s.departed_since_rekey = true;
      break;
    }
    case EventKind::set_name:
    case EventKind::set_topic: {
      if (auto why = needs_admin(); !why.empty()) return why;
      if (e.epoch > s.epoch) return "epoch from the future";
      (e.kind == EventKind::set_name ? s.name_event : s.topic_event) = e.id;
      return {};
    }
    case EventKind::rekey: {
      if (e.epoch == 0 || e.epoch > s.epoch + 1) return "rekey epoch out of range";
      add_epoch_key(s, rec);
      return {};
    }
    case EventKind::key_part: {
      // Its key event sorts before it (a parent); the part counts only if that was accepted.
      // Two parts with one index both count: the key's recipients are every accepted part's,
      // so a part cannot hide whom it sealed the key to by losing a race for its index.
      auto epoch = s.epoch_keys.find(e.epoch);
      if (epoch == s.epoch_keys.end()) return "its key event was not accepted";
      auto c = std::find_if(epoch->second.begin(), epoch->second.end(),
                            [&](const KeyCandidate& k) { return k.event == *rec.key_event; });
      if (c == epoch->second.end()) return "its key event was not accepted";
      c->parts.push_back(e.id);
      return {};
    }
    case EventKind::post: {
      if (e.epoch > s.epoch) return "epoch from the future";
      return {};
    }
    case EventKind::relay: {
      // Who stores the group is the admins' call, like its name: a relay named by anyone could
      // pull every member's links (members keep one to a named relay).
      if (auto why = needs_admin(); !why.empty()) return why;
      if (e.epoch > s.epoch) return "epoch from the future";
      const RelayPayload& p = *rec.relay;
      if (!p.active) {
        if (s.relays.erase(p.relay) == 0) return "not a relay of this group";
        return {};
      }
      if (!s.relays.count(p.relay) && s.relays.size() >= limits::relays_max) {
        return "the group names " + std::to_string(limits::relays_max) + " relays already";
      }
      s.relays[p.relay] = p.address;
      return {};
    }
    case EventKind::close_invite: {
      auto it = s.invites.find(*rec.invite_ref);
      if (it == s.invites.end()) return "invite not valid";
      InviteInfo& inv = it->second;
      if (inv.revoked) return "invite already closed";
      switch (rec.close_reason) {
        case InviteCloseReason::revoked:
          if (inv.creator != e.author) {
            if (auto why = needs_admin(); !why.empty()) return why;
          }
          break;
        case InviteCloseReason::used_up:
          if (inv.uses < inv.uses_max) return "invite not used up";
          break;
        case InviteCloseReason::expired:
          if (e.time_ms < inv.expires_ms) return "invite not expired";
          break;
      }
      inv.revoked = true;
      inv.closed_by = e.id;
      s.invite_closed_since_rekey = true;
      return {};
    }
    case EventKind::react:
    case EventKind::edit:
    case EventKind::del:
    case EventKind::set_nick: {
      // What these do is judged from their encrypted content (Conversation); here only that a
      // member wrote them under a key that existed.
      if (e.epoch > s.epoch) return "epoch from the future";
      if (e.kind == EventKind::set_nick) s.nick_events[e.author] = e.id;
      return {};
    }
    case EventKind::redact:
    case EventKind::mute:
    case EventKind::channel: {
      if (auto why = needs(role_needed(e.kind)); !why.empty()) return why;
      if (e.epoch > s.epoch) return "epoch from the future";
      return {};
    }
    case EventKind::set_settings: {
      if (auto why = needs_admin(); !why.empty()) return why;
      s.settings = *rec.settings;
      return {};
    }
    case EventKind::ban: {
      if (auto why = needs_admin(); !why.empty()) return why;
      const PublicKey& who = *rec.target;
      if (who == e.author) return "cannot ban oneself";
      if (!rec.banned) {
        if (s.banned.erase(who) == 0) return "not banned";
        return {};
      }
      if (s.banned.count(who)) return "already banned";
      auto target = s.members.find(who);
      if (target != s.members.end()) {
        if (rank(target->second.role) > rank(author_role)) return "target outranks author";
        // Removed like a leave: the next post starts an epoch without it (the banning node
        // authors that rekey at once, Replica::ban).
        revoke_invites_known_to(s, target->second);
        s.members.erase(target);
        s.departed_since_rekey = true;
      }
      s.former_members.insert(who);
      s.banned.insert(who);
      break;
    }
    case EventKind::create:
    case EventKind::join:
      break;
  }
  // Succession: a group with members but no admin promotes its longest-standing member.
  if (!s.members.empty()) {
    bool has_admin = false;
    const MemberInfo* eldest = nullptr;
    for (const auto& [id, m] : s.members) {
      has_admin = has_admin || rank(m.role) >= rank(Role::admin);
      if (!eldest || m.standing < eldest->standing) eldest = &m;
    }
    if (!has_admin) {
      MemberInfo& heir = s.members.at(eldest->id);
      heir.role = Role::admin;
      heir.role_grant = e.id;
    }
  }
  return {};
}

void Group::choose_current_key(GroupState& s) {
  keys_touched_ = false;
  s.current_key_event.reset();
  auto it = s.epoch_keys.find(s.epoch);
  if (it == s.epoch_keys.end()) return;
  std::set<PublicKey> open_invites;
  for (const auto& [id, inv] : s.invites)
    if (!inv.revoked && inv.uses < inv.uses_max) open_invites.insert(inv.invite_key);
  // Candidates are kept in fold order, so the first clean one is the same everywhere.
  for (const auto& c : it->second) {
    if (candidate_clean(c, s, open_invites)) {
      s.current_key_event = c.event;
      return;
    }
  }
}

bool Group::candidate_clean(const KeyCandidate& c, const GroupState& s,
                            const std::set<PublicKey>& open_invites) const {
  auto allowed = [&](const EventRecord& rec) {
    return std::all_of(rec.key_recipients.begin(), rec.key_recipients.end(),
                       [&](const PublicKey& r) {
                         return s.members.count(r) != 0 || open_invites.count(r) != 0;
                       });
  };
  if (!allowed(events_.at(c.event))) return false;
  for (const auto& part : c.parts)
    if (!allowed(events_.at(part))) return false;
  return true;
}

}  // namespace qun
