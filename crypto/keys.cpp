#include "crypto/keys.h"

#include <sodium.h>

#include <cassert>

#include "crypto/rng.h"

namespace qun {

static_assert(PublicKey::size() == crypto_sign_PUBLICKEYBYTES);
static_assert(Signature::size() == crypto_sign_BYTES);
static_assert(Seed::size() == crypto_sign_SEEDBYTES);
static_assert(X25519Public::size() == crypto_box_PUBLICKEYBYTES);
static_assert(X25519Secret::size() == crypto_box_SECRETKEYBYTES);

SigningKey SigningKey::from_seed(const Seed& seed) {
  crypto_init();
  SigningKey key;
  static_assert(decltype(key.secret_)::size() == crypto_sign_SECRETKEYBYTES);
  // Cannot fail for any 32-byte seed.
  crypto_sign_seed_keypair(key.public_.data(), key.secret_.data(), seed.data());
  return key;
}

SigningKey SigningKey::generate(Rng& rng) {
  Seed seed;
  rng.fill(seed.mut_view());
  return from_seed(seed);
}

Signature SigningKey::sign(ByteView message) const {
  Signature signature;
  crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(), secret_.data());
  return signature;
}

Seed SigningKey::seed() const {
  Seed seed;
  crypto_sign_ed25519_sk_to_seed(seed.data(), secret_.data());
  return seed;
}

X25519Secret SigningKey::x25519_secret() const {
  X25519Secret out;
  // Cannot fail: it hashes the seed and clamps the result.
  crypto_sign_ed25519_sk_to_curve25519(out.data(), secret_.data());
  return out;
}

bool verify(const PublicKey& key, ByteView message, const Signature& signature) {
  crypto_init();
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     key.data()) == 0;
}

Result<X25519Public> to_x25519(const PublicKey& key) {
  crypto_init();
  X25519Public out;
  // libsodium rejects encodings that are not points, small-order points and points outside the
  // main subgroup, so every X25519Public made here is a usable box recipient.
  if (crypto_sign_ed25519_pk_to_curve25519(out.data(), key.data()) != 0) {
    return Error(Errc::invalid_argument, "public key is not a valid Ed25519 point");
  }
  return out;
}

}  // namespace qun
