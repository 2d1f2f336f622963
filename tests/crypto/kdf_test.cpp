#include "crypto/kdf.h"

#include <sodium.h>

#include <catch2/catch.hpp>

namespace qun {
namespace {

// Proves derivation is deterministic, separates contexts and inputs, and is the keyed BLAKE2b
// the header documents (checked against crypto_generichash directly).
TEST_CASE("derive_key is deterministic and separates contexts", "[crypto]") {
  Bytes input(32);
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<std::uint8_t>(i);
  const SymmetricKey a1 = derive_key(input, "qun invite keys v1");
  const SymmetricKey a2 = derive_key(input, "qun invite keys v1");
  const SymmetricKey b = derive_key(input, "qun group keys v1");
  CHECK(a1.equals(a2));
  CHECK_FALSE(a1.equals(b));
  Bytes other_input = input;
  other_input[0] ^= 1;
  CHECK_FALSE(a1.equals(derive_key(other_input, "qun invite keys v1")));

  std::uint8_t expected[32];
  const ByteView context = as_bytes("qun invite keys v1");
  crypto_generichash(expected, sizeof(expected), context.data(), context.size(), input.data(),
                     input.size());
  CHECK(std::equal(a1.view().begin(), a1.view().end(), expected));

  // The same derivation fills a Seed; distinct contexts still give distinct seeds.
  const Seed s = derive_seed(input, "qun invite keys v1");
  CHECK(std::equal(s.view().begin(), s.view().end(), expected));
  CHECK_FALSE(s.equals(derive_seed(input, "qun invite seed v1")));
}

// Proves the documented input range 16..64 bytes is accepted at both ends.
TEST_CASE("derive_key accepts inputs of 16 and 64 bytes", "[crypto]") {
  const Bytes shortest(16, 1);
  const Bytes longest(64, 1);
  CHECK_FALSE(derive_key(shortest, "c").equals(derive_key(longest, "c")));
}

}  // namespace
}  // namespace qun
