#include "crypto/seal.h"

#include <sodium.h>

#include <cassert>

#include "crypto/rng.h"

namespace qun {

static_assert(seal_overhead_bytes == crypto_box_SEALBYTES);
static_assert(crypto_box_SEALBYTES == crypto_box_PUBLICKEYBYTES + crypto_box_MACBYTES);

namespace {
struct EphemeralSeedTag {};
struct EphemeralSecretTag {};
}  // namespace

Bytes seal(const X25519Public& recipient, ByteView plaintext, Rng& rng) {
  crypto_init();
  // The ephemeral key pair comes from the injected Rng, so a simulated run reproduces its boxes;
  // everything else is exactly libsodium's crypto_box_seal.
  Secret<crypto_box_SEEDBYTES, EphemeralSeedTag> ephemeral_seed;
  rng.fill(ephemeral_seed.mut_view());
  Secret<crypto_box_SECRETKEYBYTES, EphemeralSecretTag> ephemeral_secret;
  Bytes out(crypto_box_PUBLICKEYBYTES + crypto_box_MACBYTES + plaintext.size());
  std::uint8_t* ephemeral_public = out.data();
  crypto_box_seed_keypair(ephemeral_public, ephemeral_secret.data(), ephemeral_seed.data());

  // nonce = BLAKE2b-192(ephemeral_pk || recipient_pk), as libsodium's _crypto_box_seal_nonce.
  std::uint8_t nonce[crypto_box_NONCEBYTES];
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, sizeof(nonce));
  crypto_generichash_update(&state, ephemeral_public, crypto_box_PUBLICKEYBYTES);
  crypto_generichash_update(&state, recipient.data(), recipient.size());
  crypto_generichash_final(&state, nonce, sizeof(nonce));

  const int rc =
      crypto_box_easy(out.data() + crypto_box_PUBLICKEYBYTES, plaintext.data(), plaintext.size(),
                      nonce, recipient.data(), ephemeral_secret.data());
  // crypto_box fails only for a small-order recipient key (an all-zero shared secret). Every
  // X25519Public from to_x25519 is checked against that; any other source is a caller bug.
  // seal() returns Bytes, not Result, so this cannot be reported to the caller.
  assert(rc == 0 && "seal: recipient is not a valid X25519 public key");
  (void)rc;
  return out;
}

Result<Bytes> seal_open(const X25519Public& recipient_public, const X25519Secret& recipient_secret,
                        ByteView box) {
  crypto_init();
  if (box.size() < crypto_box_SEALBYTES) {
    return Error(Errc::decrypt_failed, "sealed box shorter than its overhead");
  }
  // Opening needs no randomness, so libsodium's own function is used as is.
  Bytes out(box.size() - crypto_box_SEALBYTES);
  if (crypto_box_seal_open(out.data(), box.data(), box.size(), recipient_public.data(),
                           recipient_secret.data()) != 0) {
    return Error(Errc::decrypt_failed, "sealed box did not open");
  }
  return out;
}

Result<Bytes> seal_open(const SigningKey& recipient, ByteView box) {
  auto recipient_public = to_x25519(recipient.public_key());
  // Our own public key came from crypto_sign_seed_keypair and always converts.
  if (!recipient_public.ok()) {
    return Error(Errc::internal, "own public key does not convert to X25519");
  }
  return seal_open(*recipient_public, recipient.x25519_secret(), box);
}

}  // namespace qun
