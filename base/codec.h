// Strict, bounded msgpack reading and compact writing, shared by every decoder in node/.
//
// msgpack-cxx throws on malformed input and allocates what the input claims; unpack_strict
// catches everything, applies explicit limits (sizes, element counts, nesting) before anything
// is allocated, and refuses trailing bytes. The readers check exact types and sizes, so a
// decoder built from them rejects anything that is not precisely what it expects.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/result.h"

namespace qun::codec {

struct DecodeLimits {
  std::size_t bytes_max;     // whole input
  std::size_t array_max;     // elements in any array
  std::size_t bin_max;       // bytes in any bin
  std::size_t str_max;       // bytes in any str
  std::size_t depth_max;     // nesting
  // Bins and strs point into the input rather than being copied into the handle's zone: for a
  // decoder whose handle never outlives its input (a wire message's blob is 64 KiB: a copy and
  // an allocation saved per blob).
  bool reference_input = false;
};

// Unpacks exactly one msgpack value filling all of bytes. The handle owns the decoded objects;
// bins and strs inside may point into bytes (always with reference_input), which must outlive
// the handle.
[[nodiscard]] Result<msgpack::object_handle> unpack_strict(ByteView bytes,
                                                           const DecodeLimits& limits);

// Readers: each checks the type (and bounds) and returns Errc::malformed with `what` otherwise.
[[nodiscard]] Result<msgpack::object_array> array(const msgpack::object& o, std::size_t size_min,
                                                  std::size_t size_max, const char* what);
[[nodiscard]] Result<std::uint64_t> uint(const msgpack::object& o, std::uint64_t max,
                                         const char* what);
[[nodiscard]] Result<ByteView> bin(const msgpack::object& o, std::size_t size_min,
                                   std::size_t size_max, const char* what);
[[nodiscard]] Result<std::string> str(const msgpack::object& o, std::size_t size_max,
                                      const char* what);
[[nodiscard]] bool is_nil(const msgpack::object& o);

template <typename Fixed>
[[nodiscard]] Result<Fixed> fixed(const msgpack::object& o, const char* what) {
  QUN_TRY(ByteView v, bin(o, Fixed::size(), Fixed::size(), what));
  return *Fixed::from_view(v);
}

// Writer: a thin layer over msgpack::packer that always emits the shortest encoding, which is
// what makes our encodings canonical.
class Writer {
 public:
  Writer() : packer_(buffer_) {}
  Writer& array(std::uint32_t n) { packer_.pack_array(n); return *this; }
  Writer& uint(std::uint64_t v) { packer_.pack_uint64(v); return *this; }
  Writer& bin(ByteView v) {
    packer_.pack_bin(static_cast<std::uint32_t>(v.size()));
    packer_.pack_bin_body(reinterpret_cast<const char*>(v.data()),
                          static_cast<std::uint32_t>(v.size()));
    return *this;
  }
  Writer& str(std::string_view s) {
    packer_.pack_str(static_cast<std::uint32_t>(s.size()));
    packer_.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
    return *this;
  }
  Writer& nil() { packer_.pack_nil(); return *this; }
  template <typename Fixed>
  Writer& fixed(const Fixed& f) { return bin(f.view()); }
  Bytes take() const {
    return Bytes(reinterpret_cast<const std::uint8_t*>(buffer_.data()),
                 reinterpret_cast<const std::uint8_t*>(buffer_.data()) + buffer_.size());
  }
  std::size_t size() const { return buffer_.size(); }

 private:
  msgpack::sbuffer buffer_;
  msgpack::packer<msgpack::sbuffer> packer_;
};

}  // namespace qun::codec
