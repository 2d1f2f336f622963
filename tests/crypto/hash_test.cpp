#include "crypto/hash.h"

#include <catch2/catch.hpp>

namespace qun {
namespace {

// Proves hash() is BLAKE2b with a 32-byte output, against the known digest of "" and "abc".
TEST_CASE("BLAKE2b-256 known vectors", "[crypto]") {
  CHECK(to_hex(hash({})) == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  CHECK(to_hex(hash(as_bytes("abc"))) ==
        "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

// Proves that feeding the same bytes in pieces of any size gives the one-shot digest.
TEST_CASE("Hasher incremental equals one-shot", "[crypto]") {
  Bytes data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<std::uint8_t>(i * 7));
  const Hash expected = hash(data);
  for (std::size_t piece : {1u, 3u, 64u, 127u, 128u, 129u, 1000u}) {
    Hasher hasher;
    for (std::size_t at = 0; at < data.size(); at += piece) {
      hasher.update(ByteView(data).subspan(at, std::min(piece, data.size() - at)));
    }
    CHECK(hasher.finish() == expected);
  }
  Hasher empty;
  CHECK(empty.finish() == hash({}));
}

}  // namespace
}  // namespace qun
