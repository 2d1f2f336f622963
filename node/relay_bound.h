// RelayBound: how a relay keeps one group it cannot read within its byte bound (docs/protocol.md,
// "Relays"). Past group_bytes_max it drops the payloads of the group's oldest posts, keeping
// their stubs (docs/protocol.md, "Stubs"), until the group is within the bound again; it refuses
// no event for size while stubs, the group's other events and what waits for parents fit in
// relay_structure_factor times the bound, and past that refuses everything new but what a kept or
// waiting event needs.
//
// The object owns what the bound needs between batches (the posts whose payload it still holds,
// oldest first; whether a batch was refused; its counters and log pacing) and no timers. It is
// called synchronously around Replica::ingest: screen a batch before (admit), then keep the result
// within the bound (after_ingest), which changes the replica and adds the changes to the report
// to persist. Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/log.h"
#include "base/time.h"
#include "crypto/hash.h"
#include "node/replica.h"

namespace qun {

// A relay logs a group's byte bound being hit at most once per this interval.
inline constexpr Millis relay_full_log_interval_ms = 60'000;
// Past relay_group_bytes_max a relay drops the payloads of the group's oldest posts, keeping
// their stubs (docs/protocol.md, "Stubs"), until the group is within the bound again; it refuses
// no event for size while stubs, the group's other events (membership, roles, keys, relays,
// closed invites) and what waits for parents fit in this many times the bound. Past that it
// refuses everything new, since nothing else bounds a member who floods: a stub takes about 250
// bytes, so at the per-author rate bound (OverlayConfig::author_events_per_s, 20 a second) one
// member's events grow the group by about 5 KB a second, and filling twice the default 1 GiB
// bound with them takes about five days, time for an admin to remove that member. Twice leaves the
// group's structure as much room as its readable posts.
inline constexpr std::uint64_t relay_structure_factor = 2;

class RelayBound {
 public:
  RelayBound() = default;
  // group: for log lines; group_bytes_max: NodeConfig::relay_group_bytes_max.
  RelayBound(const Hash& group, std::uint64_t group_bytes_max, LogSink log);

  // Notes the posts whose payload the group holds (a group added or loaded).
  void load(const Group& group);
  // What of a batch to take in, before ingest. Within the cap (stored bytes, stubs included; a
  // new post counted as its stub), everything. What waits for parents is not counted here: it is
  // transient (pushes overtaking each other), and after_ingest trims it to what the bound leaves.
  // Past the cap, posts are refused, except those that a kept or waiting event descends from;
  // the batch's other events are kept if they fit under the cap, and if they do not, everything
  // new is refused (and the group counts as full).
  std::vector<Event> admit(Millis now, const Group& group, std::vector<Event> events);
  // After ingest: drops the payloads of the oldest posts (by order key, then id: the same order
  // on every relay) while the group and what waits pass the bound, then trims what waits to what
  // the bound leaves; adds the drops and evictions to `report` for storage.
  void after_ingest(Millis now, Replica& replica, IngestReport& report);

  // A batch was refused: the relay asks peers for nothing more (every batch would be refused).
  bool full() const { return full_; }
  std::uint64_t refused_events() const { return refused_events_; }    // since start
  std::uint64_t payloads_dropped() const { return payloads_dropped_; }  // since start
  std::size_t posts_held() const { return held_posts_.size(); }

  // The first invariant that does not hold against the group, or none (for tests: it looks up
  // every post noted, too slow to check after every input).
  std::optional<std::string> invariant_violation(const Group& group) const;

 private:
  void hold(const Group& group, const Hash& id);
  void note(LogLevel level, std::string message) {
    if (log_) log_(LogRecord{level, "node", std::move(message)});
  }

  Hash group_;
  std::uint64_t bytes_max_ = 0;
  LogSink log_;
  std::set<std::pair<std::uint64_t, Hash>> held_posts_;  // (order key, id), oldest first
  bool full_ = false;
  std::uint64_t refused_events_ = 0;
  std::uint64_t payloads_dropped_ = 0;
  std::optional<Millis> full_logged_at_;
  std::optional<Millis> drop_logged_at_;
};

}  // namespace qun
