// Helpers shared by the store tests: temporary directories and hand-made ids.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/bytes.h"
#include "crypto/hash.h"
#include "tests/temp_dir.h"

namespace qun::store_test {

// The shared temporary directory, plus the store's own directory inside it.
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("qun-store") {}
  std::string db() const { return file("db"); }
};

// A hash whose bytes are all `fill` except the last, which is `last`: ids that differ only in
// their final byte are adjacent in LMDB's key order, the worst case for prefix scans.
inline Hash make_hash(std::uint8_t fill, std::uint8_t last) {
  Hash h;
  h.bytes.fill(fill);
  h.bytes[Hash::size() - 1] = last;
  return h;
}

// A distinct id per (a, b), for generated events.
inline Hash numbered_hash(std::uint64_t a, std::uint64_t b) {
  Hash h;
  for (int i = 0; i < 8; ++i) {
    h.bytes[i] = static_cast<std::uint8_t>(a >> (56 - 8 * i));
    h.bytes[8 + i] = static_cast<std::uint8_t>(b >> (56 - 8 * i));
  }
  h.bytes[16] = 0x5a;  // never all zero
  return h;
}

inline Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

}  // namespace qun::store_test
