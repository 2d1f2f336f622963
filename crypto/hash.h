// BLAKE2b-256 (libsodium crypto_generichash), for event ids and key derivation inputs.
#pragma once

#include <sodium.h>

#include "base/bytes.h"

namespace qun {

struct HashTag {};
using Hash = FixedBytes<32, HashTag>;

Hash hash(ByteView data);

// Incremental hashing over several pieces; finish() may be called once.
class Hasher {
 public:
  Hasher();
  void update(ByteView data);
  Hash finish();

 private:
  crypto_generichash_state state_;
  bool finished_ = false;  // guards the one-call contract of finish()
};

}  // namespace qun
