#include "crypto/secret.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <atomic>
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

namespace {
std::atomic<bool> secrets_guarded{true};
}  // namespace

void set_secret_memory_guarded(bool guarded) { secrets_guarded.store(guarded); }

SecretBuffer::SecretBuffer(std::size_t size) {
  crypto_init();
  // Size 0 holds nothing: no guarded pages are spent on it and data() is null.
  if (size == 0) return;
  guarded_ = secrets_guarded.load();
  data_ = static_cast<std::uint8_t*>(guarded_ ? sodium_malloc(size) : std::malloc(size));
  if (data_ == nullptr) {
    // A constructor cannot return a Result; running out of memory for a secret is fatal.
    std::fputs("qun: sodium_malloc failed for a secret buffer\n", stderr);
    std::abort();
  }
  // sodium_malloc fills with a canary pattern; the contract is zero-filled.
  sodium_memzero(data_, size);
  size_ = size;
}

void SecretBuffer::release() {
  if (data_ == nullptr) return;
  if (guarded_) {
    sodium_free(data_);  // wipes the bytes before unmapping them
  } else {
    sodium_memzero(data_, size_);
    std::free(data_);
  }
  data_ = nullptr;
  size_ = 0;
}

SecretBuffer::~SecretBuffer() { release(); }

SecretBuffer::SecretBuffer(SecretBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      guarded_(other.guarded_) {}

SecretBuffer& SecretBuffer::operator=(SecretBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    guarded_ = other.guarded_;
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
