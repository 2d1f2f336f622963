#include "crypto/keys.h"

#include <sodium.h>

#include <catch2/catch.hpp>

#include "crypto/rng.h"

namespace qun {
namespace {

Seed seed_from_hex(std::string_view hex) {
  const auto bytes = from_hex(hex);
  REQUIRE(bytes);
  REQUIRE(bytes->size() == Seed::size());
  Seed seed;
  std::copy(bytes->begin(), bytes->end(), seed.data());
  return seed;
}

struct Rfc8032Vector {
  const char* secret;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, TEST 1 and TEST 2 ("SECRET KEY" is the 32-byte seed).
constexpr Rfc8032Vector rfc8032_vectors[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9"
     "b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f1"
     "1d8c387b2eaeb4302aeeb00d291612bb0c00"},
};

// Proves from_seed, public_key and sign are standard Ed25519: the exact public keys and
// signatures of RFC 8032 test vectors 1 and 2, and that verify accepts them.
TEST_CASE("Ed25519 RFC 8032 test vectors 1 and 2", "[crypto]") {
  for (const auto& v : rfc8032_vectors) {
    const SigningKey key = SigningKey::from_seed(seed_from_hex(v.secret));
    CHECK(to_hex(key.public_key()) == v.public_key);
    const Bytes message = *from_hex(v.message);
    const Signature signature = key.sign(message);
    CHECK(to_hex(signature) == v.signature);
    CHECK(verify(key.public_key(), message, signature));
    // seed() returns the seed the key was made from.
    CHECK(key.seed().equals(seed_from_hex(v.secret)));
  }
}

// Proves verify rejects a signature when any one of message, signature or key is altered: a
// flipped bit in every byte of the signature, an extra or changed message byte, another key.
TEST_CASE("verify rejects tampered message, signature and key", "[crypto]") {
  Rng rng = Rng::from_u64(1);
  const SigningKey key = SigningKey::generate(rng);
  const SigningKey other = SigningKey::generate(rng);
  const Bytes message = {1, 2, 3, 4, 5};
  const Signature signature = key.sign(message);
  REQUIRE(verify(key.public_key(), message, signature));

  Bytes changed = message;
  changed[2] ^= 1;
  CHECK_FALSE(verify(key.public_key(), changed, signature));
  Bytes longer = message;
  longer.push_back(0);
  CHECK_FALSE(verify(key.public_key(), longer, signature));
  CHECK_FALSE(verify(key.public_key(), {}, signature));

  for (std::size_t i = 0; i < Signature::size(); ++i) {
    Signature bad = signature;
    bad.bytes[i] ^= 0x01;
    CHECK_FALSE(verify(key.public_key(), message, bad));
  }
  CHECK_FALSE(verify(other.public_key(), message, signature));
  PublicKey flipped = key.public_key();
  flipped.bytes[0] ^= 0x01;
  CHECK_FALSE(verify(flipped, message, signature));
  CHECK_FALSE(verify(PublicKey{}, message, signature));
}

// Proves generate is deterministic in the Rng and distinct keys come from distinct draws.
TEST_CASE("SigningKey::generate draws from the injected Rng", "[crypto]") {
  Rng a = Rng::from_u64(9);
  Rng b = Rng::from_u64(9);
  const SigningKey ka = SigningKey::generate(a);
  const SigningKey kb = SigningKey::generate(b);
  CHECK(ka.public_key() == kb.public_key());
  CHECK(SigningKey::generate(a).public_key() != ka.public_key());
}

// Proves to_x25519 of an Ed25519 public key matches the X25519 public key of x25519_secret, and
// that it rejects encodings that are not valid points (the all-zero key has small order).
TEST_CASE("to_x25519 and x25519_secret agree; invalid points are rejected", "[crypto]") {
  Rng rng = Rng::from_u64(2);
  const SigningKey key = SigningKey::generate(rng);
  const auto x_public = to_x25519(key.public_key());
  REQUIRE(x_public.ok());
  const X25519Secret x_secret = key.x25519_secret();
  X25519Public derived;
  REQUIRE(crypto_scalarmult_base(derived.data(), x_secret.data()) == 0);
  CHECK(derived == *x_public);

  const auto zero = to_x25519(PublicKey{});
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error().code() == Errc::invalid_argument);
}

}  // namespace
}  // namespace qun
