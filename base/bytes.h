// Byte containers and encodings shared by every module.
//
// Bytes owns, ByteView borrows (valid for the call only). FixedBytes<N, Tag> is a value type for
// fixed-size public values (keys, hashes, signatures); the Tag keeps a public key from being
// passed where a hash is expected. Secrets never use these types: see secret.h.
#pragma once

#include <array>
#include <compare>
#include <cstring>
#include <initializer_list>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qun {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

template <std::size_t N, typename Tag>
struct FixedBytes {
  static constexpr std::size_t size_bytes = N;
  std::array<std::uint8_t, N> bytes{};

  static std::optional<FixedBytes> from_view(ByteView v) {
    if (v.size() != N) return std::nullopt;
    FixedBytes out;
    std::copy(v.begin(), v.end(), out.bytes.begin());
    return out;
  }
  ByteView view() const { return {bytes.data(), N}; }
  const std::uint8_t* data() const { return bytes.data(); }
  std::uint8_t* data() { return bytes.data(); }
  static constexpr std::size_t size() { return N; }
  bool is_zero() const {
    for (auto b : bytes)
      if (b != 0) return false;
    return true;
  }
  auto operator<=>(const FixedBytes&) const = default;
  bool operator==(const FixedBytes&) const = default;
};

// Lowercase hex of all bytes, and the short form (first 8 hex digits) used in logs and the CLI.
std::string to_hex(ByteView v);
std::optional<Bytes> from_hex(std::string_view hex);
template <std::size_t N, typename Tag>
std::string to_hex(const FixedBytes<N, Tag>& b) {
  return to_hex(b.view());
}
template <std::size_t N, typename Tag>
std::string short_hex(const FixedBytes<N, Tag>& b) {
  return to_hex(ByteView(b.data(), 4));
}

// URL-safe base64 without padding (RFC 4648 section 5), for copy-pasteable codes.
std::string to_base64url(ByteView v);
std::optional<Bytes> from_base64url(std::string_view text);

// The pieces one after another (domain-separated messages, associated data).
Bytes concat(std::initializer_list<ByteView> pieces);

// Big-endian fixed-width integers, for sortable store keys.
void put_u64_be(Bytes& out, std::uint64_t v);
std::uint64_t get_u64_be(const std::uint8_t* p);

}  // namespace qun
