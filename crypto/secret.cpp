#include "crypto/secret.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace qun {

void crypto_init() {
  // sodium_init takes a lock on every call; a function-local static makes the calls after the
  // first one a single load, so every entry point can call this without measurable cost.
  static const bool initialised = [] { return sodium_init() >= 0; }();
  if (!initialised) {
    std::fputs("qun: libsodium failed to initialise; refusing to run without it\n", stderr);
    std::abort();
  }
}

SecretBuffer::SecretBuffer(std::size_t size) {
  crypto_init();
  // Size 0 holds nothing: no guarded pages are spent on it and data() is null.
  if (size == 0) return;
  data_ = static_cast<std::uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) {
    // A constructor cannot return a Result; running out of memory for a secret is fatal.
    std::fputs("qun: sodium_malloc failed for a secret buffer\n", stderr);
    std::abort();
  }
  // sodium_malloc fills with a canary pattern; the contract is zero-filled.
  sodium_memzero(data_, size);
  size_ = size;
}

SecretBuffer::~SecretBuffer() {
  // sodium_free wipes the bytes before unmapping them, and accepts null.
  sodium_free(data_);
}

SecretBuffer::SecretBuffer(SecretBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBuffer& SecretBuffer::operator=(SecretBuffer&& other) noexcept {
  if (this != &other) {
    sodium_free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBuffer SecretBuffer::clone() const {
  SecretBuffer out(size_);
  if (size_ != 0) std::memcpy(out.data_, data_, size_);
  return out;
}

bool SecretBuffer::equals(const SecretBuffer& other) const {
  // Sizes are not secret; only the contents are compared in constant time.
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, other.data_, size_) == 0;
}

}  // namespace qun
