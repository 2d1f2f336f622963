#include "crypto/stream.h"

#include <sodium.h>

#include <array>

namespace qun {

static_assert(SymmetricKey::size() == crypto_aead_chacha20poly1305_ietf_KEYBYTES);
static_assert(StreamKeyView::extent == crypto_aead_chacha20poly1305_ietf_KEYBYTES);
static_assert(aead_tag_bytes == crypto_aead_chacha20poly1305_ietf_ABYTES);
static_assert(stream_counter_bytes + 1 == crypto_aead_chacha20poly1305_ietf_NPUBBYTES);

namespace {

std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> stream_nonce(
    std::uint64_t index, bool last) {
  std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> n{};
  for (std::size_t i = 0; i < 8; ++i)
    n[stream_counter_bytes - 1 - i] = static_cast<std::uint8_t>(index >> (8 * i));
  n[stream_counter_bytes] = last ? 1 : 0;
  return n;
}

}  // namespace

Bytes stream_seal(const SymmetricKey& key, std::uint64_t index, bool last, ByteView plain) {
  return stream_seal(StreamKeyView(key.data(), StreamKeyView::extent), index, last, plain);
}

Result<Bytes> stream_open(const SymmetricKey& key, std::uint64_t index, bool last,
                          ByteView cipher) {
  return stream_open(StreamKeyView(key.data(), StreamKeyView::extent), index, last, cipher);
}

Bytes stream_seal(StreamKeyView key, std::uint64_t index, bool last, ByteView plain) {
  crypto_init();
  const auto nonce = stream_nonce(index, last);
  Bytes out(plain.size() + aead_tag_bytes);
  unsigned long long out_size = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &out_size, plain.data(), plain.size(),
                                            nullptr, 0, nullptr, nonce.data(), key.data());
  return out;
}

Result<Bytes> stream_open(StreamKeyView key, std::uint64_t index, bool last, ByteView cipher) {
  crypto_init();
  if (cipher.size() < aead_tag_bytes) return Error(Errc::decrypt_failed, "chunk shorter than its tag");
  const auto nonce = stream_nonce(index, last);
  Bytes out(cipher.size() - aead_tag_bytes);
  unsigned long long out_size = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data(), &out_size, nullptr, cipher.data(),
                                                cipher.size(), nullptr, 0, nonce.data(),
                                                key.data()) != 0)
    return Error(Errc::decrypt_failed, "chunk " + std::to_string(index) + " does not authenticate");
  return out;
}

}  // namespace qun
