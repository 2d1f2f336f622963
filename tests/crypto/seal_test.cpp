#include "crypto/seal.h"

#include <sodium.h>

#include <catch2/catch.hpp>

#include "crypto/rng.h"

namespace qun {
namespace {

// Proves seal/seal_open round-trip through both seal_open overloads, that the overhead is
// seal_overhead_bytes, and that the same Rng state gives the same box (reproducible runs).
TEST_CASE("seal and seal_open round trip", "[crypto]") {
  Rng rng = Rng::from_u64(20);
  const SigningKey recipient = SigningKey::generate(rng);
  const X25519Public recipient_x = *to_x25519(recipient.public_key());
  for (std::size_t n : {0u, 1u, 100u}) {
    Bytes plaintext(n, 0x5a);
    const Bytes box = seal(recipient_x, plaintext, rng);
    CHECK(box.size() == n + seal_overhead_bytes);
    const auto opened = seal_open(recipient, box);
    REQUIRE(opened.ok());
    CHECK(*opened == plaintext);
    const auto opened2 = seal_open(recipient_x, recipient.x25519_secret(), box);
    REQUIRE(opened2.ok());
    CHECK(*opened2 == plaintext);
  }
  Rng a = Rng::from_u64(21);
  Rng b = Rng::from_u64(21);
  CHECK(seal(recipient_x, as_bytes("x"), a) == seal(recipient_x, as_bytes("x"), b));
  // Successive seals draw fresh ephemeral keys, so equal plaintexts give different boxes.
  CHECK(seal(recipient_x, as_bytes("x"), a) != seal(recipient_x, as_bytes("x"), a));
}

// Proves byte compatibility with libsodium both ways: our seal opens with crypto_box_seal_open,
// and crypto_box_seal output opens with our seal_open.
TEST_CASE("seal interoperates with crypto_box_seal", "[crypto]") {
  Rng rng = Rng::from_u64(22);
  const SigningKey recipient = SigningKey::generate(rng);
  const X25519Public pk = *to_x25519(recipient.public_key());
  const X25519Secret sk = recipient.x25519_secret();
  const Bytes message = {'i', 'n', 't', 'e', 'r', 'o', 'p'};

  const Bytes ours = seal(pk, message, rng);
  Bytes opened(message.size());
  REQUIRE(crypto_box_seal_open(opened.data(), ours.data(), ours.size(), pk.data(), sk.data()) == 0);
  CHECK(opened == message);

  Bytes theirs(message.size() + crypto_box_SEALBYTES);
  REQUIRE(crypto_box_seal(theirs.data(), message.data(), message.size(), pk.data()) == 0);
  const auto back = seal_open(recipient, theirs);
  REQUIRE(back.ok());
  CHECK(*back == message);
}

// Proves a box opens only for its recipient and only unaltered: another key, any flipped
// byte, or a box shorter than the overhead fail with decrypt_failed.
TEST_CASE("seal_open rejects wrong recipient and tampering", "[crypto]") {
  Rng rng = Rng::from_u64(23);
  const SigningKey recipient = SigningKey::generate(rng);
  const SigningKey other = SigningKey::generate(rng);
  const Bytes box = seal(*to_x25519(recipient.public_key()), as_bytes("for one only"), rng);

  const auto wrong = seal_open(other, box);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code() == Errc::decrypt_failed);
  for (std::size_t i = 0; i < box.size(); ++i) {
    Bytes bad = box;
    bad[i] ^= 0x01;
    CHECK_FALSE(seal_open(recipient, bad).ok());
  }
  for (std::size_t n = 0; n < seal_overhead_bytes; ++n) {
    const auto r = seal_open(recipient, ByteView(box).first(n));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == Errc::decrypt_failed);
  }
}

}  // namespace
}  // namespace qun
