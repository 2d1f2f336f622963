// Small helpers the parts of ChatModel share (chat_model.cpp, chat_layout.cpp). Not an interface.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "cli/chat_model.h"
#include "app/render.h"

namespace qun::chat::detail {

inline std::string spaces(int n) {
  return std::string(static_cast<std::size_t>(std::max(0, n)), ' ');
}

inline std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Events that are bookkeeping rather than conversation: kept, counted, not shown. (A rekey
// follows a removal or leave, which is shown; an invite shows when someone joins with it.)
inline bool hidden(const Message& m) { return render::bookkeeping(m.kind); }

}  // namespace qun::chat::detail
