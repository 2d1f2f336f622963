// Rng: an injected, seedable source of randomness.
//
// node/ never touches global randomness: every random byte it uses comes from an Rng passed in,
// so the simulator reproduces a run from one seed. The generator is the ChaCha20 keystream
// (crypto_stream_chacha20) keyed by the seed, with a counter as nonce. Production seeds it from
// the OS (from_os), which is the only place qun reads system randomness.
#pragma once

#include <cstdint>
#include <span>

#include "crypto/secret.h"

namespace qun {

struct RngSeedTag {};
using RngSeed = Secret<32, RngSeedTag>;

class Rng {
 public:
  explicit Rng(const RngSeed& seed);
  // Deterministic generator from a small integer seed, for tests and the simulator.
  static Rng from_u64(std::uint64_t seed);
  // Seeded from the operating system (randombytes_buf). Never used in node/.
  static Rng from_os();
  Rng(Rng&&) noexcept = default;
  Rng& operator=(Rng&&) noexcept = default;

  void fill(std::span<std::uint8_t> out);
  std::uint64_t next_u64();
  // Uniform in [0, bound), without modulo bias; bound must be > 0.
  std::uint64_t uniform(std::uint64_t bound);
  // A new independent generator derived from this one (for per-component streams).
  Rng fork();

 private:
  RngSeed key_;
  std::uint64_t counter_ = 0;
};

}  // namespace qun
