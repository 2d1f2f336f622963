// The commands of `qun chat`: what a line starting with '/' asks for, parsed without any chat
// state. Errors are one line, ready for the status line.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace qun::chat {

struct Command {
  enum class Kind { join, invite, members, kick, promote, topic, leave, relays, help, quit };
  Kind kind = Kind::help;
  std::string arg;               // join: code (whitespace removed); kick/promote: member; topic
  std::uint32_t uses = 1;        // invite
  std::int64_t expires_ms = 0;   // invite: valid for this long; 0 never expires
};

// The longest expiry /invite takes: a year. Longer-lived invites are better made without one
// (and revoked when no longer wanted) than with a date nobody remembers.
inline constexpr std::int64_t invite_expiry_ms_max = 366LL * 86'400'000;

// Parses a line that starts with '/'. Errors are one line, ready for the status line. /join takes
// a code broken over several lines (a paste) and drops the whitespace inside it.
[[nodiscard]] Result<Command> parse_command(std::string_view line);
// "90s", "30m", "12h", "7d", "2w": a unit is required, 0 is refused, at most
// invite_expiry_ms_max.
[[nodiscard]] Result<std::int64_t> parse_expiry(std::string_view text);
// One line per command, for /help.
const std::vector<std::string>& help_lines();

}  // namespace qun::chat
