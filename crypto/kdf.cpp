#include "crypto/kdf.h"

#include <sodium.h>

#include <cassert>

namespace qun {

namespace {

// BLAKE2b keyed with the input material over the context label. Keying with the secret (not
// hashing secret || label) is what makes this a PRF of the secret, as in crypto_kdf.
void derive(std::span<const std::uint8_t> input, std::string_view context,
            std::span<std::uint8_t> out) {
  crypto_init();
  // A wrong-sized input is a bug in our own code: every caller passes a fixed-size secret.
  assert(input.size() >= crypto_generichash_KEYBYTES_MIN &&
         input.size() <= crypto_generichash_KEYBYTES_MAX && "derive_key: input size out of range");
  const ByteView label = as_bytes(context);
  crypto_generichash(out.data(), out.size(), label.data(), label.size(), input.data(),
                     input.size());
}

}  // namespace

SymmetricKey derive_key(std::span<const std::uint8_t> input, std::string_view context) {
  SymmetricKey key;
  derive(input, context, key.mut_view());
  return key;
}

Seed derive_seed(std::span<const std::uint8_t> input, std::string_view context) {
  Seed seed;
  derive(input, context, seed.mut_view());
  return seed;
}

}  // namespace qun
