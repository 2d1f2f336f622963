// The fixed identities and randomness of fuzz_link's responder, shared with make_seeds so that
// the seed corpus can hold a real initiator's side of a handshake with exactly that responder.
// A fuzzer cannot compute X25519 or forge a signature; without such seeds it would never get a
// link past the handshake, and the transport path would go unfuzzed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/keys.h"
#include "crypto/rng.h"
#include "node/link.h"
#include "base/time.h"

namespace qun::fuzz::link_setup {

inline constexpr std::uint64_t responder_key_seed = 0x6c696e6b2d726b;  // "link-rk"
inline constexpr std::uint64_t responder_rng_seed = 0x6c696e6b2d7272;  // "link-rr"
inline constexpr std::uint64_t initiator_key_seed = 0x6c696e6b2d696b;  // "link-ik"
inline constexpr std::uint64_t initiator_rng_seed = 0x6c696e6b2d6972;  // "link-ir"
inline constexpr Millis start_ms = 1'700'000'000'000;
inline constexpr std::string_view network_id = "qun-fuzz";

inline SigningKey key(std::uint64_t seed) {
  Rng rng = Rng::from_u64(seed);
  return SigningKey::generate(rng);
}

inline LinkConfig config() { return LinkConfig{std::string(network_id)}; }

// The responder every fuzz_link input talks to: the same ephemeral key each time.
inline Link responder(const SigningKey& self) {
  Rng rng = Rng::from_u64(responder_rng_seed);
  return Link::responder(start_ms, self, rng, config());
}

}  // namespace qun::fuzz::link_setup
