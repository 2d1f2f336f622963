#include "node/relay_bound.h"

#include <algorithm>

#include "node/event.h"

namespace qun {

RelayBound::RelayBound(const Hash& group, std::uint64_t group_bytes_max, LogSink log)
    : group_(group), bytes_max_(group_bytes_max), log_(std::move(log)) {}

void RelayBound::hold(const Group& group, const Hash& id) {
  const EventRecord* rec = group.find(id);
  if (rec && payload_droppable(rec->event.kind) && !rec->event.payload_dropped)
    held_posts_.insert({rec->order_key, id});
}

void RelayBound::load(const Group& group) {
  for (const EventRecord* rec : group.ordered()) hold(group, rec->event.id);
}

std::vector<Event> RelayBound::admit(Millis now, const Group& group, std::vector<Event> events) {
  const std::uint64_t cap = relay_structure_factor * bytes_max_;
  const std::uint64_t held = group.stored_bytes();
  std::uint64_t incoming = 0;
  std::size_t fresh = 0;
  for (const auto& e : events) {
    if (group.has(e.id)) continue;
    // A post counts as the stub it may become: its payload can always be dropped.
    incoming += payload_droppable(e.kind) ? stub_stored_bytes(e) : event_stored_bytes(e);
    ++fresh;
  }
  if (fresh == 0 || held + incoming <= cap) return events;
  // Deepest first, so that a kept event marks the parents it brings in the same batch.
  std::sort(events.begin(), events.end(),
            [](const Event& a, const Event& b) { return a.depth > b.depth; });
  const std::vector<Hash> waited = group.missing();
  std::set<Hash> wanted(waited.begin(), waited.end());
  std::vector<Event> kept;
  std::uint64_t kept_bytes = 0;
  for (auto& e : events) {
    if (group.has(e.id)) continue;
    if (payload_droppable(e.kind) && !wanted.count(e.id)) continue;
    wanted.insert(e.parents.begin(), e.parents.end());
    kept_bytes += payload_droppable(e.kind) ? stub_stored_bytes(e) : event_stored_bytes(e);
    kept.push_back(std::move(e));
  }
  if (held + kept_bytes > cap) {
    kept.clear();
    kept_bytes = 0;
  }
  const std::size_t refused = fresh - kept.size();
  if (refused > 0) {
    full_ = true;
    refused_events_ += refused;
    if (!full_logged_at_ || now >= *full_logged_at_ + relay_full_log_interval_ms) {
      full_logged_at_ = now;
      note(LogLevel::warn, "relay group full group=" + short_hex(group_) +
                               " bytes=" + std::to_string(held) + " cap=" + std::to_string(cap) +
                               " bound=" + std::to_string(bytes_max_) +
                               " refused_events=" + std::to_string(refused_events_));
    }
  }
  return kept;
}

void RelayBound::after_ingest(Millis now, Replica& replica, IngestReport& report) {
  const Group& group = replica.group();
  for (const Hash& id : report.admitted) hold(group, id);
  for (const Hash& id : report.payloads_restored) hold(group, id);
  // The bound covers what waits as well as what is stored (admit).
  const std::uint64_t before = group.stored_bytes();
  std::size_t dropped = 0;
  while (group.stored_bytes() + group.pending_bytes() > bytes_max_ && !held_posts_.empty()) {
    const Hash id = held_posts_.begin()->second;
    held_posts_.erase(held_posts_.begin());
    IngestReport r = replica.drop_payload(id);
    if (r.payloads_dropped.empty()) continue;
    report.payloads_dropped.push_back(id);
    ++dropped;
  }
  if (dropped > 0) {
    payloads_dropped_ += dropped;
    if (!drop_logged_at_ || now >= *drop_logged_at_ + relay_full_log_interval_ms) {
      drop_logged_at_ = now;
      note(LogLevel::warn, "relay group over its bound group=" + short_hex(group_) +
                               " bound=" + std::to_string(bytes_max_) +
                               " dropped_payloads=" + std::to_string(dropped) +
                               " freed_bytes=" + std::to_string(before - group.stored_bytes()) +
                               " bytes=" + std::to_string(group.stored_bytes()) +
                               " payloads_dropped=" + std::to_string(payloads_dropped_) +
                               " reason=oldest posts kept as stubs");
    }
  }
  // Pending events cannot be stubs (they are not admitted): they get what the bound leaves.
  const std::uint64_t stored = group.stored_bytes();
  IngestReport trimmed = replica.trim_pending(bytes_max_ > stored ? bytes_max_ - stored : 0);
  report.evicted.insert(report.evicted.end(), trimmed.evicted.begin(), trimmed.evicted.end());
  report.pending_dropped += trimmed.pending_dropped;
  report.pending = trimmed.pending;
  std::erase_if(report.pending_added, [&](const Hash& id) { return !group.find_pending(id); });
}

std::optional<std::string> RelayBound::invariant_violation(const Group& group) const {
  // Every post noted as held is in the group with its payload (a dropped one leaves the set).
  for (const auto& [key, id] : held_posts_) {
    const EventRecord* rec = group.find(id);
    if (!rec || rec->event.payload_dropped || rec->order_key != key)
      return "relay bound: a post noted as held is not";
  }
  return std::nullopt;
}

}  // namespace qun
