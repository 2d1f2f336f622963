#include "crypto/rng.h"

#include <sodium.h>

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace qun {

static_assert(RngSeed::size() == crypto_stream_chacha20_KEYBYTES);
static_assert(crypto_stream_chacha20_NONCEBYTES == sizeof(std::uint64_t));

Rng::Rng(const RngSeed& seed) : key_(seed.clone()) {}

Rng Rng::from_u64(std::uint64_t seed) {
  crypto_init();
  // Hashing a label with the integer spreads small seeds (0, 1, 2...) over the whole key space,
  // and the label keeps these keys apart from any other use of BLAKE2b on eight bytes.
  constexpr std::string_view label = "qun rng from_u64 v1";
  std::uint8_t message[label.size() + 8];
  for (std::size_t i = 0; i < label.size(); ++i) message[i] = static_cast<std::uint8_t>(label[i]);
  for (std::size_t i = 0; i < 8; ++i) {
    message[label.size() + i] = static_cast<std::uint8_t>(seed >> (56 - 8 * i));
  }
  RngSeed key;
  crypto_generichash(key.data(), key.size(), message, sizeof(message), nullptr, 0);
  return Rng(key);
}

Rng Rng::from_os() {
  RngSeed key;  // its constructor initialises libsodium, which randombytes_buf needs
  randombytes_buf(key.data(), key.size());
  return Rng(key);
}

void Rng::fill(std::span<std::uint8_t> out) {
  // A moved-from Rng has no key; using it is a bug in the caller.
  assert(key_.data() != nullptr && "Rng used after move");
  if (out.empty()) return;
  // Each call uses a fresh nonce, so no two calls share keystream. 2^64 calls is unreachable;
  // the assertion documents that the counter never wraps into a reused nonce.
  assert(counter_ != UINT64_MAX);
  std::uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
  for (std::size_t i = 0; i < sizeof(nonce); ++i) {
    nonce[i] = static_cast<std::uint8_t>(counter_ >> (8 * i));  // little-endian: stable everywhere
  }
  ++counter_;
  crypto_stream_chacha20(out.data(), out.size(), nonce, key_.data());
}

std::uint64_t Rng::next_u64() {
  std::uint8_t bytes[8];
  fill(bytes);
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | bytes[i];
  return v;
}

std::uint64_t Rng::uniform(std::uint64_t bound) {
  assert(bound > 0 && "Rng::uniform needs a positive bound");
  // Values below 2^64 mod bound would make the low residues more likely; reject them. The
  // threshold is below bound, so fewer than half of all draws are rejected in the worst case.
  const std::uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const std::uint64_t v = next_u64();
    if (v >= threshold) return v % bound;
  }
}

Rng Rng::fork() {
  RngSeed child;
  fill(child.mut_view());
  return Rng(child);
}

}  // namespace qun
