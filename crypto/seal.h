// Sealed boxes: anonymous public-key encryption to one recipient's X25519 key.
//
// The construction is libsodium's crypto_box_seal (ephemeral X25519 key pair, nonce =
// BLAKE2b-192(ephemeral_pk || recipient_pk), crypto_box), composed here from crypto_box
// primitives so that the ephemeral key comes from an injected Rng instead of global randomness.
// Output is byte-compatible with crypto_box_seal and opens with crypto_box_seal_open.
#pragma once

#include "base/bytes.h"
#include "crypto/keys.h"
#include "base/result.h"

namespace qun {

inline constexpr std::size_t seal_overhead_bytes = 48;  // crypto_box_SEALBYTES

class Rng;
Bytes seal(const X25519Public& recipient, ByteView plaintext, Rng& rng);
// Fails with Errc::decrypt_failed when the box was not sealed to this key or was altered.
[[nodiscard]] Result<Bytes> seal_open(const SigningKey& recipient, ByteView box);
[[nodiscard]] Result<Bytes> seal_open(const X25519Public& recipient_public,
                                      const X25519Secret& recipient_secret, ByteView box);

}  // namespace qun
