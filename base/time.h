// Time in the sans-IO core: milliseconds, always passed in by the driver. Millis is monotonic
// node time for timers; event timestamps are Unix milliseconds supplied with each command.
#pragma once

#include <cstdint>

namespace qun {

using Millis = std::uint64_t;

}  // namespace qun
