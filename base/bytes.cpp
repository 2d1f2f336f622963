#include "base/bytes.h"

#include <sodium.h>

namespace qun {

std::string to_hex(ByteView v) {
  // sodium_bin2hex writes a terminating NUL, so the buffer has one spare byte.
  std::string out(v.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), v.data(), v.size());
  out.resize(v.size() * 2);
  return out;
}

std::optional<Bytes> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  Bytes out(hex.size() / 2);
  if (hex.empty()) return out;
  std::size_t out_size = 0;
  const char* end = nullptr;
  // Passing hex_end makes libsodium stop at the first non-hex character instead of failing, so
  // we check ourselves that every character was consumed: "ab cd" and "abzz" are rejected.
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &out_size, &end) !=
      0) {
    return std::nullopt;
  }
  if (end != hex.data() + hex.size() || out_size != out.size()) return std::nullopt;
  return out;
}

std::string to_base64url(ByteView v) {
  constexpr int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  // sodium_base64_encoded_len counts the terminating NUL.
  std::string out(sodium_base64_encoded_len(v.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), v.data(), v.size(), variant);
  out.resize(out.size() - 1);
  return out;
}

std::optional<Bytes> from_base64url(std::string_view text) {
  constexpr int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  if (text.empty()) return Bytes{};
  // Every 4 characters carry 3 bytes; a partial group carries fewer, never more.
  Bytes out(text.size() / 4 * 3 + 3);
  std::size_t out_size = 0;
  const char* end = nullptr;
  // As in from_hex, hex_end lets us reject trailing characters (padding, whitespace, garbage)
  // that libsodium would otherwise stop at. libsodium also rejects non-zero leftover bits, so
  // each byte string has exactly one accepted encoding.
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &out_size, &end,
                        variant) != 0) {
    return std::nullopt;
  }
  if (end != text.data() + text.size()) return std::nullopt;
  out.resize(out_size);
  return out;
}

void put_u64_be(Bytes& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<std::uint8_t>(v >> shift));
  }
}

std::uint64_t get_u64_be(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

Bytes concat(std::initializer_list<ByteView> pieces) {
  std::size_t n = 0;
  for (const auto& p : pieces) n += p.size();
  Bytes out(n);
  std::size_t at = 0;
  for (const auto& p : pieces) {
    if (!p.empty()) std::memcpy(out.data() + at, p.data(), p.size());
    at += p.size();
  }
  return out;
}

}  // namespace qun
