// STREAM: a long plaintext encrypted as a sequence of chunks under one key, each chunk
// authenticated on its own and bound to its place, so a reader can check chunks in any order
// and no chunk can be dropped, repeated, reordered or cut off unnoticed.
//
// The construction is STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
// Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015), instantiated
// exactly as age's payload (age-encryption.org/v1, "Payload"): ChaCha20-Poly1305 (IETF, libsodium
// crypto_aead_chacha20poly1305_ietf_*), nonce = chunk index as an 11-byte big-endian counter ||
// one byte that is 0x01 on the last chunk and 0x00 before it; no associated data. The key must
// be used for one stream only (qun draws a fresh key per file), which is what makes counter
// nonces safe.
#pragma once

#include <cstdint>
#include <span>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/aead.h"

namespace qun {

// The counter takes 11 bytes of the 12-byte nonce; chunk indexes stay far below 2^64 here.
inline constexpr std::size_t stream_counter_bytes = 11;

// A stream's key where it already lives in ordinary memory (a file's key is in the post that
// shares it): a SymmetricKey made from it for every chunk cost an mmap, mprotect and munmap per
// 64 KiB (sodium_malloc's guard pages), and with them TLB shootdowns on every core, a quarter
// of the CPU of the threads that open fetched chunks (file_bench, perf).
using StreamKeyView = std::span<const std::uint8_t, 32>;

// Returns ciphertext || tag (plain.size() + aead_tag_bytes bytes).
Bytes stream_seal(StreamKeyView key, std::uint64_t index, bool last, ByteView plain);
Bytes stream_seal(const SymmetricKey& key, std::uint64_t index, bool last, ByteView plain);
// Errc::decrypt_failed when the chunk was tampered with, belongs to another index, another key,
// or its last flag differs.
[[nodiscard]] Result<Bytes> stream_open(StreamKeyView key, std::uint64_t index, bool last,
                                        ByteView cipher);
[[nodiscard]] Result<Bytes> stream_open(const SymmetricKey& key, std::uint64_t index, bool last,
                                        ByteView cipher);

}  // namespace qun
