#include "crypto/aead.h"

#include <sodium.h>

#include "crypto/rng.h"

namespace qun {

static_assert(SymmetricKey::size() == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(Nonce::size() == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(aead_tag_bytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);

SymmetricKey random_key(Rng& rng) {
  SymmetricKey key;
  rng.fill(key.mut_view());
  return key;
}

Nonce random_nonce(Rng& rng) {
  Nonce nonce;
  rng.fill(nonce.bytes);
  return nonce;
}

Bytes aead_encrypt(const SymmetricKey& key, const Nonce& nonce, ByteView associated_data,
                   ByteView plaintext) {
  crypto_init();
  Bytes out(plaintext.size() + aead_tag_bytes);
  unsigned long long out_size = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      out.data(), &out_size, plaintext.data(), plaintext.size(), associated_data.data(),
      associated_data.size(), nullptr, nonce.data(), key.data());
  return out;
}

Result<Bytes> aead_decrypt(const SymmetricKey& key, const Nonce& nonce, ByteView associated_data,
                           ByteView ciphertext) {
  crypto_init();
  if (ciphertext.size() < aead_tag_bytes) {
    return Error(Errc::decrypt_failed, "ciphertext shorter than its tag");
  }
  Bytes out(ciphertext.size() - aead_tag_bytes);
  unsigned long long out_size = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          out.data(), &out_size, nullptr, ciphertext.data(), ciphertext.size(),
          associated_data.data(), associated_data.size(), nonce.data(), key.data()) != 0) {
    return Error(Errc::decrypt_failed, "authentication failed");
  }
  return out;
}

}  // namespace qun
