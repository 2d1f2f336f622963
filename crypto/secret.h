// Secret<N>: N secret bytes in sodium-guarded memory (guard pages, mlock where allowed), wiped
// and freed on destruction. Move-only; never printed, logged or compared in variable time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace qun {

// Initialises libsodium once; safe to call many times and from any module. Aborts the process
// if libsodium cannot initialise (no usable randomness): nothing in qun is safe without it.
void crypto_init();

// Whether new secrets get guarded pages (sodium_malloc: guard pages, mlock, its own mappings) or
// plain heap memory that is still wiped on release. Guarded is the default and what every real
// node uses. The simulator turns it off: a thousand in-process nodes hold ~70,000 secrets, past
// the kernel's limit on memory mappings, and page protection calls dominate its run time.
void set_secret_memory_guarded(bool guarded);

class SecretBuffer {
 public:
  explicit SecretBuffer(std::size_t size);  // zero-filled
  ~SecretBuffer();
  SecretBuffer(SecretBuffer&& other) noexcept;
  SecretBuffer& operator=(SecretBuffer&& other) noexcept;
  SecretBuffer(const SecretBuffer&) = delete;
  SecretBuffer& operator=(const SecretBuffer&) = delete;

  std::uint8_t* data() { return data_; }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::uint8_t> view() const { return {data_, size_}; }
  std::span<std::uint8_t> mut_view() { return {data_, size_}; }
  // A copy in new guarded memory (explicit, so secrets are never copied by accident).
  SecretBuffer clone() const;
  // Constant-time equality (sodium_memcmp).
  bool equals(const SecretBuffer& other) const;

 private:
  void release();
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool guarded_ = true;
};

template <std::size_t N, typename Tag>
class Secret {
 public:
  static constexpr std::size_t size_bytes = N;
  Secret() : buf_(N) {}
  std::uint8_t* data() { return buf_.data(); }
  const std::uint8_t* data() const { return buf_.data(); }
  static constexpr std::size_t size() { return N; }
  std::span<const std::uint8_t> view() const { return buf_.view(); }
  std::span<std::uint8_t> mut_view() { return buf_.mut_view(); }
  Secret clone() const {
    Secret out;
    std::copy(view().begin(), view().end(), out.data());
    return out;
  }
  bool equals(const Secret& other) const { return buf_.equals(other.buf_); }

 private:
  SecretBuffer buf_;
};

}  // namespace qun
