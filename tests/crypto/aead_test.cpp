#include "crypto/aead.h"

#include <catch2/catch.hpp>

#include "crypto/rng.h"

namespace qun {
namespace {

// Proves encrypt/decrypt round-trip for empty and non-empty plaintexts and associated data,
// and that the output is plaintext plus a 16-byte tag.
TEST_CASE("AEAD round trip", "[crypto]") {
  Rng rng = Rng::from_u64(10);
  const SymmetricKey key = random_key(rng);
  const Nonce nonce = random_nonce(rng);
  for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 1000u}) {
    Bytes plaintext(n);
    rng.fill(plaintext);
    const Bytes ad = {9, 8, 7};
    const Bytes ciphertext = aead_encrypt(key, nonce, ad, plaintext);
    CHECK(ciphertext.size() == n + aead_tag_bytes);
    const auto back = aead_decrypt(key, nonce, ad, ciphertext);
    REQUIRE(back.ok());
    CHECK(*back == plaintext);
    const auto no_ad = aead_decrypt(key, nonce, {}, aead_encrypt(key, nonce, {}, plaintext));
    REQUIRE(no_ad.ok());
    CHECK(*no_ad == plaintext);
  }
}

// Proves authentication covers every byte: flipping any one bit of a short ciphertext (body
// and tag), truncating it, or appending a byte makes decryption fail with decrypt_failed.
TEST_CASE("AEAD tamper of every byte position fails", "[crypto]") {
  Rng rng = Rng::from_u64(11);
  const SymmetricKey key = random_key(rng);
  const Nonce nonce = random_nonce(rng);
  const Bytes ad = {1, 2};
  const Bytes ciphertext = aead_encrypt(key, nonce, ad, as_bytes("hello, qun"));
  for (std::size_t i = 0; i < ciphertext.size(); ++i) {
    for (std::uint8_t mask : {0x01, 0x80}) {
      Bytes bad = ciphertext;
      bad[i] ^= mask;
      const auto r = aead_decrypt(key, nonce, ad, bad);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code() == Errc::decrypt_failed);
    }
  }
  for (std::size_t n = 0; n < ciphertext.size(); ++n) {
    CHECK_FALSE(aead_decrypt(key, nonce, ad, ByteView(ciphertext).first(n)).ok());
  }
  Bytes longer = ciphertext;
  longer.push_back(0);
  CHECK_FALSE(aead_decrypt(key, nonce, ad, longer).ok());
}

// Proves a wrong associated data, key or nonce each makes decryption fail.
TEST_CASE("AEAD wrong AD, key or nonce fails", "[crypto]") {
  Rng rng = Rng::from_u64(12);
  const SymmetricKey key = random_key(rng);
  const Nonce nonce = random_nonce(rng);
  const Bytes ad = {1, 2, 3};
  const Bytes ciphertext = aead_encrypt(key, nonce, ad, as_bytes("secret"));
  REQUIRE(aead_decrypt(key, nonce, ad, ciphertext).ok());

  CHECK(aead_decrypt(key, nonce, Bytes{1, 2, 4}, ciphertext).error().code() ==
        Errc::decrypt_failed);
  CHECK_FALSE(aead_decrypt(key, nonce, {}, ciphertext).ok());
  CHECK(aead_decrypt(random_key(rng), nonce, ad, ciphertext).error().code() ==
        Errc::decrypt_failed);
  Nonce other_nonce = nonce;
  other_nonce.bytes[23] ^= 1;
  CHECK(aead_decrypt(key, other_nonce, ad, ciphertext).error().code() == Errc::decrypt_failed);
}

}  // namespace
}  // namespace qun
