// Identity keys and signatures: Ed25519 (libsodium crypto_sign), and the X25519 keys derived
// from them (crypto_sign_ed25519_*_to_curve25519) so a member can receive sealed boxes at the
// same identity. A PublicKey is not a SecretKey is not a Hash: each is its own type.
#pragma once

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/secret.h"

namespace qun {

struct PublicKeyTag {};
struct SignatureTag {};
struct X25519PublicTag {};
struct SeedTag {};
struct Ed25519SecretTag {};
struct X25519SecretTag {};

using PublicKey = FixedBytes<32, PublicKeyTag>;        // Ed25519 verifying key; a node's id
using Signature = FixedBytes<64, SignatureTag>;        // Ed25519 detached signature
using X25519Public = FixedBytes<32, X25519PublicTag>;  // sealed-box recipient key
using Seed = Secret<32, SeedTag>;                      // 32 secret bytes a key pair derives from
using X25519Secret = Secret<32, X25519SecretTag>;

class Rng;

// An Ed25519 key pair. The secret half lives in guarded memory; the object is move-only.
class SigningKey {
 public:
  // Deterministic: the same seed gives the same key pair (crypto_sign_seed_keypair).
  static SigningKey from_seed(const Seed& seed);
  static SigningKey generate(Rng& rng);

  const PublicKey& public_key() const { return public_; }
  Signature sign(ByteView message) const;
  // The seed this key derives from (for key files only).
  Seed seed() const;
  // The X25519 secret for opening sealed boxes sent to public_key().
  X25519Secret x25519_secret() const;

 private:
  SigningKey() = default;
  PublicKey public_;
  Secret<64, Ed25519SecretTag> secret_;
};

// True only when signature is a valid Ed25519 signature of message by key.
[[nodiscard]] bool verify(const PublicKey& key, ByteView message, const Signature& signature);

// The X25519 public key of an Ed25519 public key; fails for keys that are not valid points.
[[nodiscard]] Result<X25519Public> to_x25519(const PublicKey& key);

}  // namespace qun
