#include "crypto/hash.h"

#include <cassert>

#include "crypto/secret.h"

namespace qun {

static_assert(Hash::size() >= crypto_generichash_BYTES_MIN &&
              Hash::size() <= crypto_generichash_BYTES_MAX);

Hash hash(ByteView data) {
  crypto_init();
  Hash out;
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
  return out;
}

Hasher::Hasher() {
  crypto_init();
  crypto_generichash_init(&state_, nullptr, 0, Hash::size());
}

void Hasher::update(ByteView data) {
  assert(!finished_ && "Hasher::update after finish");
  crypto_generichash_update(&state_, data.data(), data.size());
}

Hash Hasher::finish() {
  // libsodium poisons the state on final; a second call would return garbage silently.
  assert(!finished_ && "Hasher::finish called twice");
  finished_ = true;
  Hash out;
  crypto_generichash_final(&state_, out.data(), out.size());
  return out;
}

}  // namespace qun
