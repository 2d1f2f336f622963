// Helpers shared by the store tests: temporary directories and hand-made ids.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/bytes.h"
#include "crypto/hash.h"

namespace qun::store_test {

// A fresh directory under /tmp, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/qun_store_test_XXXXXX";
    const char* made = ::mkdtemp(pattern);
    path_ = made != nullptr ? made : "";
  }
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // The store's own directory inside the temporary one.
  std::string db() const { return path_ + "/db"; }

 private:
  std::string path_;
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
