// Symmetric authenticated encryption: XChaCha20-Poly1305-IETF (libsodium
// crypto_aead_xchacha20poly1305_ietf_*). The 24-byte nonce is large enough to draw at random.
#pragma once

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/secret.h"

namespace qun {

struct SymmetricKeyTag {};
struct NonceTag {};
using SymmetricKey = Secret<32, SymmetricKeyTag>;
using Nonce = FixedBytes<24, NonceTag>;

inline constexpr std::size_t aead_tag_bytes = 16;

class Rng;
SymmetricKey random_key(Rng& rng);
Nonce random_nonce(Rng& rng);

// Returns ciphertext || tag (plaintext.size() + aead_tag_bytes bytes).
Bytes aead_encrypt(const SymmetricKey& key, const Nonce& nonce, ByteView associated_data,
                   ByteView plaintext);
// Fails with Errc::decrypt_failed on a wrong key, nonce, associated data or tampered bytes.
[[nodiscard]] Result<Bytes> aead_decrypt(const SymmetricKey& key, const Nonce& nonce,
                                         ByteView associated_data, ByteView ciphertext);

}  // namespace qun
