// UTF-8 primitives every module shares: decoding that never fails, validity checks and the
// repair of invalid text. Text that came from a peer may hold any bytes (another implementation,
// or a broken one, may send them); whatever shows or re-encodes it goes through these functions,
// so no output path depends on the text being valid.
//
// Pure functions; no locale, no allocation beyond the returned strings. Thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace qun::utf8 {

inline constexpr char32_t replacement = 0xFFFD;

// Decodes the code point at pos and advances pos past it. Invalid or truncated sequences,
// overlong forms, surrogates and values past U+10FFFF decode as U+FFFD and advance by one byte,
// so every input ends. pos must be < s.size().
char32_t next(std::string_view s, std::size_t& pos);
// Appends the UTF-8 encoding of c (U+FFFD for surrogates and values past U+10FFFF).
void append(std::string& out, char32_t c);
// The byte offset of the first invalid sequence, or nullopt when s is valid UTF-8.
std::optional<std::size_t> first_invalid(std::string_view s);
inline bool valid(std::string_view s) { return !first_invalid(s); }
// s with every invalid sequence replaced by U+FFFD (s itself when it is valid).
std::string make_valid(std::string_view s);

// C0 controls (U+0000-U+001F, ESC among them), DEL and the C1 controls (U+0080-U+009F): the code
// points a terminal may act on rather than show.
inline bool is_control(char32_t c) { return c < 0x20 || (c >= 0x7F && c < 0xA0); }
// The first control code point of valid UTF-8 text s, other than newline and tab when
// allow_line_breaks; nullopt when there is none.
std::optional<char32_t> first_control(std::string_view s, bool allow_line_breaks);

}  // namespace qun::utf8
