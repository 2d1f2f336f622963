#include "base/utf8.h"

#include <cassert>

namespace qun::utf8 {

char32_t next(std::string_view s, std::size_t& pos) {
  assert(pos < s.size());
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  std::size_t len;
  char32_t cp, min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++pos;
    return replacement;
  }
  if (s.size() - pos < len) {
    ++pos;
    return replacement;
  }
  for (std::size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) {
      ++pos;
      return replacement;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++pos;
    return replacement;
  }
  pos += len;
  return cp;
}

void append(std::string& out, char32_t c) {
  if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = replacement;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

namespace {
// The length of the valid sequence at pos, or 0 when it is invalid. (A literal U+FFFD in the
// input is valid and must not be mistaken for a decoding failure.)
std::size_t valid_length(std::string_view s, std::size_t pos) {
  std::size_t p = pos;
  const char32_t c = next(s, p);
  if (c != replacement) return p - pos;
  return (s.substr(pos, 3) == "\xEF\xBF\xBD") ? 3 : 0;
}
}  // namespace

std::optional<std::size_t> first_invalid(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const std::size_t n = valid_length(s, pos);
    if (n == 0) return pos;
    pos += n;
  }
  return std::nullopt;
}

std::string make_valid(std::string_view s) {
  const auto bad = first_invalid(s);
  if (!bad) return std::string(s);
  std::string out(s.substr(0, *bad));
  out.reserve(s.size() + 8);
  std::size_t pos = *bad;
  while (pos < s.size()) {
    const std::size_t n = valid_length(s, pos);
    if (n == 0) {
      append(out, replacement);
      ++pos;
    } else {
      out.append(s.substr(pos, n));
      pos += n;
    }
  }
  return out;
}

std::optional<char32_t> first_control(std::string_view s, bool allow_line_breaks) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = next(s, pos);
    if (allow_line_breaks && (c == '\n' || c == '\t')) continue;
    if (is_control(c)) return c;
  }
  return std::nullopt;
}

}  // namespace qun::utf8
