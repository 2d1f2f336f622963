// Key derivation: BLAKE2b keyed hashing (crypto_generichash with a key) of a context string, as
// libsodium's KDF does. Distinct contexts give independent keys from one input secret.
#pragma once

#include <string_view>

#include "crypto/aead.h"
#include "base/bytes.h"
#include "crypto/keys.h"  // Seed

namespace qun {

// A 32-byte key from input key material and a context label (e.g. "qun invite keys v1").
// input must be 16..64 bytes (crypto_generichash_KEYBYTES_MIN..MAX).
SymmetricKey derive_key(std::span<const std::uint8_t> input, std::string_view context);
// Same, returning a signing seed (used to turn an invite secret into an invite key pair).
Seed derive_seed(std::span<const std::uint8_t> input, std::string_view context);

}  // namespace qun
