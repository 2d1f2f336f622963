// TimerTable: the named deadlines of one engine, after quinn-proto's connection/timer.rs.
//
// An engine names its timers in an enum class whose last enumerator is `count`, and keeps one
// table. Each timer is unset or due at one time; the engine's next_deadline() is the table's
// (the earliest set timer), and on_tick takes each expired timer (take_expired) and dispatches it
// to its handler. Nothing waits for a coarse periodic tick: a deadline fires when it is due.
//
// Calling contract: times are the driver's monotonic milliseconds (base/time.h). A timer is
// stopped when taken, so a handler that wants to run again re-arms it; an extra on_tick finds
// nothing expired and does nothing. Not thread-safe (nothing in node/ is).
#pragma once

#include <array>
#include <cstddef>
#include <optional>

#include "base/time.h"

namespace qun {

template <typename Kind>
class TimerTable {
 public:
  // Sets the timer to `at`, replacing an earlier or later deadline.
  void set(Kind k, Millis at) { slot(k) = at; }
  // Sets the timer to `at` unless it is already due earlier: for work batched until the first
  // reason's deadline (announcements, grafts).
  void set_by(Kind k, Millis at) {
    auto& d = slot(k);
    if (!d || at < *d) d = at;
  }
  void stop(Kind k) { slot(k).reset(); }
  [[nodiscard]] std::optional<Millis> get(Kind k) const { return deadlines_[index(k)]; }
  [[nodiscard]] bool is_set(Kind k) const { return get(k).has_value(); }
  // True, and the timer stopped, when it was set and is due at or before `now`.
  [[nodiscard]] bool take_expired(Kind k, Millis now) {
    auto& d = slot(k);
    if (!d || *d > now) return false;
    d.reset();
    return true;
  }
  // The earliest set deadline, if any.
  [[nodiscard]] std::optional<Millis> next_deadline() const {
    std::optional<Millis> next;
    for (const auto& d : deadlines_)
      if (d && (!next || *d < *next)) next = d;
    return next;
  }

 private:
  static constexpr std::size_t size = static_cast<std::size_t>(Kind::count);
  static constexpr std::size_t index(Kind k) { return static_cast<std::size_t>(k); }
  std::optional<Millis>& slot(Kind k) { return deadlines_[index(k)]; }
  std::array<std::optional<Millis>, size> deadlines_{};
};

// The earlier of two optional deadlines (none: no deadline).
inline std::optional<Millis> earliest(std::optional<Millis> a, std::optional<Millis> b) {
  if (!a) return b;
  if (!b) return a;
  return *a < *b ? a : b;
}

}  // namespace qun
