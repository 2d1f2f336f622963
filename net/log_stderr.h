// A LogSink that prints to stderr, for the daemon and the CLI.
//
// One line per record at or above the minimum level:
//   2026-11-25T12:00:00.123Z INFO  net: listening on 127.0.0.1:7000
// (UTC time with milliseconds, the level padded to five characters, the module, the message).
// Each line goes out in one write, so lines of concurrent processes sharing stderr do not mix
// within a line; control characters in a message are escaped so a record stays one line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/log.h"

namespace qun {

LogSink stderr_log_sink(LogLevel min_level);

// "debug", "info", "warn" or "error" (as printed by log_level_name); nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view text);

// The line stderr_log_sink prints for a record at Unix time unix_ms, without the newline (for
// tests).
std::string format_log_line(const LogRecord& record, std::uint64_t unix_ms);

}  // namespace qun
