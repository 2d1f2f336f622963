// Identity key files: a node's Ed25519 seed on disk, mode 0600, optionally sealed with a
// passphrase (Argon2id via crypto_pwhash, then XChaCha20-Poly1305 via crypto_secretbox-like
// AEAD with the public key as associated data).
//
// Format: a msgpack array ["qun-identity", version, public key, sealed?, salt, opslimit,
// memlimit, nonce, data], where data is the seed (plain) or its ciphertext (sealed). Written
// to a temporary file, fsynced, then renamed, so a crash never leaves a half-written key.
#pragma once

#include <optional>
#include <string>

#include "crypto/keys.h"
#include "base/result.h"

namespace qun {

inline constexpr int key_file_version = 1;

struct KeyFileOptions {
  // Argon2id cost; tests lower these, real files use the INTERACTIVE defaults.
  unsigned long long opslimit = 2;          // crypto_pwhash_OPSLIMIT_INTERACTIVE
  std::size_t memlimit = 64u * 1024 * 1024;  // crypto_pwhash_MEMLIMIT_INTERACTIVE
};

// Errors: Errc::already_exists if path exists (never overwrites an identity), Errc::io.
[[nodiscard]] Result<void> write_key_file(const std::string& path, const SigningKey& key,
                                          const std::optional<std::string>& passphrase,
                                          Rng& rng, const KeyFileOptions& options = {});
// Errors: Errc::not_found, Errc::io, Errc::malformed (corrupted or not a key file),
// Errc::version_mismatch, Errc::wrong_passphrase (or a passphrase is needed and none given:
// Errc::invalid_argument), Errc::decrypt_failed never (reported as wrong_passphrase).
[[nodiscard]] Result<SigningKey> read_key_file(const std::string& path,
                                               const std::optional<std::string>& passphrase);
// True when the file is sealed with a passphrase (so the CLI knows to ask for one).
[[nodiscard]] Result<bool> key_file_is_sealed(const std::string& path);

}  // namespace qun
