// Log records from the sans-IO core. The core never prints: it hands records to an injected
// sink (the driver prints them, the simulator collects or drops them). Records name things by
// short id and carry sizes and reasons; never keys, plaintext or whole messages.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace qun {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

const char* log_level_name(LogLevel level);

struct LogRecord {
  LogLevel level;
  std::string_view module;   // "group", "link", "store", ...
  std::string message;       // "event rejected id=1a2b3c4d reason=bad signature"
};

using LogSink = std::function<void(const LogRecord&)>;

// A sink that drops everything (for tests and benchmarks that do not read logs).
inline LogSink null_log_sink() {
  return [](const LogRecord&) {};
}

}  // namespace qun
