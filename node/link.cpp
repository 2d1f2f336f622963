#include "node/link.h"

#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <initializer_list>
#include <limits>

namespace qun {
namespace noise {
namespace {

static_assert(crypto_generichash_BYTES_MAX == hash_bytes);
static_assert(crypto_scalarmult_BYTES == dh_bytes);
static_assert(crypto_scalarmult_SCALARBYTES == dh_bytes);
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == key_bytes);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == tag_bytes);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);

struct DhOutputTag {};
struct HkdfOutputTag {};
using DhOutput = Secret<dh_bytes, DhOutputTag>;
using HkdfOutput = Secret<hash_bytes, HkdfOutputTag>;

using HashSpan = std::span<std::uint8_t, hash_bytes>;

template <std::size_t N, typename Tag>
HashSpan hash_span(Secret<N, Tag>& s) {
  static_assert(N == hash_bytes);
  return HashSpan(s.data(), hash_bytes);
}

// HMAC-HASH over a message given in parts. Scratch buffers derived from the key stay on the
// stack for the length of the call and are wiped before returning, as libsodium does inside
// its own HMACs; guarded memory per call would cost two mmaps for every HMAC.
void hmac_parts(ByteView key, std::initializer_list<ByteView> message, HashSpan out) {
  std::array<std::uint8_t, block_bytes> block{};  // the key, zero-padded to the block size
  if (key.size() > block_bytes) {
    crypto_generichash(block.data(), hash_bytes, key.data(), key.size(), nullptr, 0);
  } else {
    std::copy(key.begin(), key.end(), block.begin());
  }
  std::array<std::uint8_t, block_bytes> pad;
  std::array<std::uint8_t, hash_bytes> inner;
  crypto_generichash_state state;

  for (std::size_t i = 0; i < block_bytes; ++i) pad[i] = block[i] ^ 0x36;
  crypto_generichash_init(&state, nullptr, 0, hash_bytes);
  crypto_generichash_update(&state, pad.data(), pad.size());
  for (ByteView part : message) crypto_generichash_update(&state, part.data(), part.size());
  crypto_generichash_final(&state, inner.data(), inner.size());

  for (std::size_t i = 0; i < block_bytes; ++i) pad[i] = block[i] ^ 0x5c;
  crypto_generichash_init(&state, nullptr, 0, hash_bytes);
  crypto_generichash_update(&state, pad.data(), pad.size());
  crypto_generichash_update(&state, inner.data(), inner.size());
  // Written last, so out may alias key or a message part.
  crypto_generichash_final(&state, out.data(), hash_bytes);

  sodium_memzero(block.data(), block.size());
  sodium_memzero(pad.data(), pad.size());
  sodium_memzero(inner.data(), inner.size());
  sodium_memzero(&state, sizeof state);
}

// The 96-bit ChaChaPoly nonce of the Noise spec (section 12.3): 32 zero bits, then the 64-bit
// counter little-endian.
std::array<std::uint8_t, 12> chachapoly_nonce(std::uint64_t n) {
  std::array<std::uint8_t, 12> nonce{};
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  return nonce;
}

// Noise reserves the nonce 2^64 - 1 (section 5.1).
constexpr std::uint64_t nonce_max = std::numeric_limits<std::uint64_t>::max();

CipherKey truncate_to_key(const HkdfOutput& output) {
  // HASHLEN is 64 and a key is 32 bytes: the spec keeps the first 32 (section 5.2).
  CipherKey key;
  std::copy_n(output.data(), key_bytes, key.data());
  return key;
}

}  // namespace

void hmac_blake2b(ByteView key, ByteView data, HashSpan out) { hmac_parts(key, {data}, out); }

void hkdf2(ByteView chaining_key, ByteView input_key_material, HashSpan output1, HashSpan output2) {
  static constexpr std::uint8_t one = 0x01;
  static constexpr std::uint8_t two = 0x02;
  HkdfOutput temp_key;
  HkdfOutput first;
  HkdfOutput second;
  hmac_parts(chaining_key, {input_key_material}, hash_span(temp_key));
  hmac_parts(temp_key.view(), {ByteView(&one, 1)}, hash_span(first));
  hmac_parts(temp_key.view(), {first.view(), ByteView(&two, 1)}, hash_span(second));
  // The outputs may alias chaining_key (MixKey replaces ck), so they are written last.
  std::copy_n(first.data(), hash_bytes, output1.data());
  std::copy_n(second.data(), hash_bytes, output2.data());
}

Result<Bytes> CipherState::encrypt_with_ad(ByteView ad, ByteView plaintext) {
  if (!key_) return Bytes(plaintext.begin(), plaintext.end());
  if (nonce_ == nonce_max) return Error(Errc::internal, "cipher nonce exhausted");
  Bytes out(plaintext.size() + tag_bytes);
  auto nonce = chachapoly_nonce(nonce_);
  unsigned long long out_bytes = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &out_bytes, plaintext.data(),
                                            plaintext.size(), ad.data(), ad.size(), nullptr,
                                            nonce.data(), key_->data());
  assert(out_bytes == out.size());
  ++nonce_;
  return out;
}

Result<Bytes> CipherState::decrypt_with_ad(ByteView ad, ByteView ciphertext) {
  if (!key_) return Bytes(ciphertext.begin(), ciphertext.end());
  if (nonce_ == nonce_max) return Error(Errc::internal, "cipher nonce exhausted");
  if (ciphertext.size() < tag_bytes) return Error(Errc::decrypt_failed, "shorter than a tag");
  Bytes out(ciphertext.size() - tag_bytes);
  auto nonce = chachapoly_nonce(nonce_);
  unsigned long long out_bytes = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data(), &out_bytes, nullptr, ciphertext.data(),
                                                ciphertext.size(), ad.data(), ad.size(),
                                                nonce.data(), key_->data()) != 0) {
    return Error(Errc::decrypt_failed, "message does not authenticate");
  }
  assert(out_bytes == out.size());
  ++nonce_;
  return out;
}

HandshakeXX::HandshakeXX(Role role, ByteView prologue, const X25519Secret& static_secret,
                         X25519Secret ephemeral_secret)
    : role_(role),
      static_secret_(static_secret.clone()),
      ephemeral_secret_(std::move(ephemeral_secret)) {
  crypto_init();
  // Base-point multiplication cannot give the all-zero result; the return value is only 0.
  (void)crypto_scalarmult_base(static_public_.data(), static_secret_.data());
  (void)crypto_scalarmult_base(ephemeral_public_.data(), ephemeral_secret_.data());
  // InitializeSymmetric (section 5.2): the name fits in HASHLEN, so h is the name zero-padded.
  std::copy(protocol_name.begin(), protocol_name.end(), h_.begin());
  std::copy(h_.begin(), h_.end(), chaining_key_.data());
  mix_hash(prologue);
}

bool HandshakeXX::my_turn() const {
  // Even steps are the initiator's messages, odd ones the responder's.
  return step_ < 3 && ((step_ % 2 == 0) == (role_ == Role::initiator));
}

void HandshakeXX::mix_hash(ByteView data) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, hash_bytes);
  crypto_generichash_update(&state, h_.data(), h_.size());
  crypto_generichash_update(&state, data.data(), data.size());
  crypto_generichash_final(&state, h_.data(), h_.size());
}

bool HandshakeXX::mix_key_dh(const X25519Secret& secret, const X25519Public& remote) {
  DhOutput shared;
  // crypto_scalarmult fails when the result is all zeros, which is what a low-order remote key
  // gives. Noise (section 12.1) permits signalling this as an error, though it notes the
  // transcript hash already binds the keys so it adds no security inside Noise; we refuse
  // anyway because such a key proves the peer is not following the protocol, and a contributory
  // DH keeps the link's guarantees from resting on that argument alone.
  if (crypto_scalarmult(shared.data(), secret.data(), remote.data()) != 0) return false;
  HkdfOutput temp_key;
  hkdf2(chaining_key_.view(), shared.view(), hash_span(chaining_key_), hash_span(temp_key));
  cipher_ = CipherState(truncate_to_key(temp_key));
  return true;
}

Result<Bytes> HandshakeXX::encrypt_and_hash(ByteView plaintext) {
  QUN_TRY(Bytes ciphertext, cipher_.encrypt_with_ad(h_, plaintext));
  mix_hash(ciphertext);
  return ciphertext;
}

Result<Bytes> HandshakeXX::decrypt_and_hash(ByteView ciphertext) {
  QUN_TRY(Bytes plaintext, cipher_.decrypt_with_ad(h_, ciphertext));
  mix_hash(ciphertext);
  return plaintext;
}

Result<Bytes> HandshakeXX::write_message(ByteView payload) {
  return write_message([&](const HandshakeHash&) { return Bytes(payload.begin(), payload.end()); });
}

Result<Bytes> HandshakeXX::write_message(
    const std::function<Bytes(const HandshakeHash&)>& make_payload) {
  if (failed_ || !my_turn()) return Error(Errc::invalid_argument, "not this side's turn to write");
  // Any failure below leaves the symmetric state half-updated: the handshake is over.
  failed_ = true;
  Bytes out;
  auto append = [&out](ByteView bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); };
  const Error weak_key(Errc::malformed, "low-order public key");
  if (step_ == 0 || step_ == 1) {  // e
    append(ephemeral_public_.view());
    mix_hash(ephemeral_public_.view());
  }
  if (step_ == 1) {  // ee, s, es (the responder's es is DH(s, re))
    if (!mix_key_dh(ephemeral_secret_, *remote_ephemeral_)) return weak_key;
    QUN_TRY(Bytes s, encrypt_and_hash(static_public_.view()));
    append(s);
    if (!mix_key_dh(static_secret_, *remote_ephemeral_)) return weak_key;
  }
  if (step_ == 2) {  // s, se (the initiator's se is DH(s, re))
    QUN_TRY(Bytes s, encrypt_and_hash(static_public_.view()));
    append(s);
    if (!mix_key_dh(static_secret_, *remote_ephemeral_)) return weak_key;
  }
  hash_before_payload_ = h_;
  QUN_TRY(Bytes payload, encrypt_and_hash(make_payload(h_)));
  append(payload);
  if (out.size() > frame_bytes_max) return Error(Errc::too_large, "handshake message too long");
  ++step_;
  failed_ = false;
  return out;
}

Result<Bytes> HandshakeXX::read_message(ByteView message) {
  if (failed_ || step_ >= 3 || my_turn()) {
    return Error(Errc::invalid_argument, "not this side's turn to read");
  }
  failed_ = true;
  if (message.size() > frame_bytes_max) return Error(Errc::malformed, "handshake too long");
  ByteView rest = message;
  const Error short_message(Errc::malformed, "handshake message too short");
  const Error weak_key(Errc::malformed, "low-order public key");
  auto read_static = [&]() -> Result<void> {
    if (rest.size() < dh_bytes + tag_bytes) return short_message;
    QUN_TRY(Bytes s, decrypt_and_hash(rest.first(dh_bytes + tag_bytes)));
    remote_static_ = X25519Public::from_view(s);
    rest = rest.subspan(dh_bytes + tag_bytes);
    return ok_result();
  };
  if (step_ == 0 || step_ == 1) {  // e
    if (rest.size() < dh_bytes) return short_message;
    remote_ephemeral_ = X25519Public::from_view(rest.first(dh_bytes));
    mix_hash(rest.first(dh_bytes));
    rest = rest.subspan(dh_bytes);
  }
  if (step_ == 1) {  // ee, s, es (the initiator's es is DH(e, rs))
    if (!mix_key_dh(ephemeral_secret_, *remote_ephemeral_)) return weak_key;
    QUN_TRY_VOID(read_static());
    if (!mix_key_dh(ephemeral_secret_, *remote_static_)) return weak_key;
  }
  if (step_ == 2) {  // s, se (the responder's se is DH(e, rs))
    QUN_TRY_VOID(read_static());
    if (!mix_key_dh(ephemeral_secret_, *remote_static_)) return weak_key;
  }
  hash_before_payload_ = h_;
  QUN_TRY(Bytes payload, decrypt_and_hash(rest));
  ++step_;
  failed_ = false;
  return payload;
}

Result<HandshakeXX::Transport> HandshakeXX::split() {
  if (failed_ || !is_complete()) return Error(Errc::invalid_argument, "handshake not complete");
  HkdfOutput first;
  HkdfOutput second;
  hkdf2(chaining_key_.view(), ByteView(), hash_span(first), hash_span(second));
  // The first cipher carries initiator-to-responder messages, the second the reverse.
  CipherState to_responder(truncate_to_key(first));
  CipherState to_initiator(truncate_to_key(second));
  if (role_ == Role::initiator) return Transport{std::move(to_responder), std::move(to_initiator)};
  return Transport{std::move(to_initiator), std::move(to_responder)};
}

}  // namespace noise

namespace {

// Signatures in the identity payload sign this context followed by the handshake hash, so a
// link signature can never be mistaken for a signature on anything else qun signs.
constexpr std::string_view identity_signature_context = "qun link v1 identity signature";

Bytes prologue_for(std::string_view network_id) {
  // The protocol id has a fixed length and a terminator, so the network id follows unambiguously.
  Bytes prologue(link_protocol_id.begin(), link_protocol_id.end());
  prologue.push_back(0);
  prologue.insert(prologue.end(), network_id.begin(), network_id.end());
  return prologue;
}

Bytes identity_signed_bytes(const noise::HandshakeHash& h) {
  Bytes out(identity_signature_context.begin(), identity_signature_context.end());
  out.insert(out.end(), h.begin(), h.end());
  return out;
}

Bytes frame(ByteView noise_message) {
  assert(noise_message.size() <= frame_bytes_max);
  Bytes out;
  out.reserve(frame_header_bytes + noise_message.size());
  out.push_back(static_cast<std::uint8_t>(noise_message.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(noise_message.size() & 0xff));
  out.insert(out.end(), noise_message.begin(), noise_message.end());
  return out;
}

std::size_t wire_bytes(std::size_t message_bytes) {
  return frame_header_bytes + message_bytes + link_tag_bytes;
}

CloseReason handshake_failure_reason(const Error& error) {
  // Frame lengths are checked before a message reaches the handshake, so Errc::malformed here
  // means a low-order key.
  if (error.code() == Errc::decrypt_failed) return CloseReason::decrypt_failed;
  return CloseReason::bad_handshake;
}

}  // namespace

const char* close_reason_name(CloseReason reason) {
  switch (reason) {
    case CloseReason::bad_frame:
      return "bad frame";
    case CloseReason::bad_handshake:
      return "bad handshake";
    case CloseReason::decrypt_failed:
      return "decrypt failed";
    case CloseReason::bad_identity:
      return "bad identity";
    case CloseReason::peer_mismatch:
      return "peer mismatch";
    case CloseReason::handshake_timeout:
      return "handshake timeout";
    case CloseReason::nonce_exhausted:
      return "nonce exhausted";
  }
  return "unknown";
}

Link Link::initiator(Millis now, const SigningKey& self, std::optional<PublicKey> expected_peer,
                     Rng& rng, LinkConfig config) {
  return Link(noise::Role::initiator, now, self, expected_peer, rng, std::move(config));
}

Link Link::responder(Millis now, const SigningKey& self, Rng& rng, LinkConfig config) {
  return Link(noise::Role::responder, now, self, std::nullopt, rng, std::move(config));
}

Link::Link(noise::Role role, Millis now, const SigningKey& self,
           std::optional<PublicKey> expected_peer, Rng& rng, LinkConfig config)
    : role_(role),
      deadline_(now + handshake_timeout_ms),
      config_(std::move(config)),
      expected_peer_(expected_peer),
      self_(SigningKey::from_seed(self.seed())) {
  assert(config_.network_id.size() <= network_id_bytes_max);
  crypto_init();
  X25519Secret ephemeral;
  rng.fill(ephemeral.mut_view());
  handshake_.emplace(role, prologue_for(config_.network_id), self.x25519_secret(),
                     std::move(ephemeral));
  if (role_ == noise::Role::initiator) {
    // -> e carries no payload: nothing is authenticated or secret yet.
    auto message = handshake_->write_message(ByteView());
    if (message) {
      push(link_output::SendBytes{frame(*message)}, 0);
    } else {
      close(handshake_failure_reason(message.error()));
    }
  }
}

void Link::on_bytes(Millis now, ByteView bytes) {
  on_tick(now);
  while (!bytes.empty() && state_ != LinkState::closed) {
    auto take = [&](std::size_t want) {
      std::size_t n = std::min(want, bytes.size());
      partial_.insert(partial_.end(), bytes.begin(), bytes.begin() + n);
      bytes = bytes.subspan(n);
    };
    if (partial_.size() < frame_header_bytes) {
      take(frame_header_bytes - partial_.size());
      if (partial_.size() < frame_header_bytes) return;
      // Judged on the header alone, so a bad length never makes us wait for (or hold) its body.
      if (!frame_length_allowed((std::size_t{partial_[0]} << 8) | partial_[1])) {
        return close(CloseReason::bad_frame);
      }
    }
    std::size_t body_bytes = (std::size_t{partial_[0]} << 8) | partial_[1];
    take(frame_header_bytes + body_bytes - partial_.size());
    if (partial_.size() < frame_header_bytes + body_bytes) return;
    Bytes whole = std::move(partial_);
    partial_.clear();
    on_frame(ByteView(whole).subspan(frame_header_bytes));
  }
}

void Link::on_tick(Millis now) {
  if (state_ == LinkState::handshaking && now >= deadline_) close(CloseReason::handshake_timeout);
}

Result<void> Link::send(Millis now, ByteView message) {
  on_tick(now);
  if (state_ == LinkState::closed) return Error(Errc::invalid_argument, "link is closed");
  if (message.size() > message_bytes_max) {
    return Error(Errc::too_large, "message of " + std::to_string(message.size()) + " bytes");
  }
  if (queued_bytes_ + wire_bytes(message.size()) > queued_bytes_max) {
    return Error(Errc::too_large, "link queue full");
  }
  if (state_ == LinkState::handshaking) {
    waiting_.emplace_back(message.begin(), message.end());
    queued_bytes_ += wire_bytes(message.size());
    return ok_result();
  }
  return send_now(message);
}

std::optional<LinkOutput> Link::poll() {
  if (out_.empty()) return std::nullopt;
  auto [output, data_bytes] = std::move(out_.front());
  out_.pop_front();
  queued_bytes_ -= data_bytes;
  return std::move(output);
}

std::optional<Millis> Link::next_deadline() const {
  if (state_ == LinkState::handshaking) return deadline_;
  return std::nullopt;
}

bool Link::frame_length_allowed(std::size_t body_bytes) const {
  if (state_ == LinkState::established) {
    return body_bytes >= link_tag_bytes && body_bytes <= frame_bytes_max;
  }
  // Handshaking: the next message is the one the peer writes after our last step.
  switch (handshake_->step()) {
    case 0:
      return body_bytes == handshake1_bytes;
    case 1:
      return body_bytes == handshake2_bytes;
    case 2:
      return body_bytes == handshake3_bytes;
  }
  return false;
}

void Link::on_frame(ByteView body) {
  if (state_ == LinkState::handshaking) return on_handshake_message(body);
  on_transport_message(body);
}

void Link::on_handshake_message(ByteView body) {
  auto payload = handshake_->read_message(body);
  if (!payload) return close(handshake_failure_reason(payload.error()));
  if (role_ == noise::Role::responder && handshake_->step() == 1) {
    // Read -> e (whose payload the frame length guarantees empty); answer <- e, ee, s, es.
    (void)write_handshake_message();  // on failure it has closed the link
    return;
  }
  // Read <- e, ee, s, es (initiator) or -> s, se (responder): the peer's identity.
  if (!accept_identity(*payload)) return;
  if (role_ == noise::Role::initiator && !write_handshake_message()) return;
  become_established();
}

bool Link::write_handshake_message() {
  auto message = handshake_->write_message([this](const noise::HandshakeHash& h) {
    Bytes payload(self_->public_key().bytes.begin(), self_->public_key().bytes.end());
    Signature signature = self_->sign(identity_signed_bytes(h));
    payload.insert(payload.end(), signature.bytes.begin(), signature.bytes.end());
    return payload;
  });
  self_.reset();  // our identity is written (or the handshake failed): wipe the key copy
  if (!message) {
    close(handshake_failure_reason(message.error()));
    return false;
  }
  push(link_output::SendBytes{frame(*message)}, 0);
  return true;
}

bool Link::accept_identity(ByteView payload) {
  if (payload.size() != identity_payload_bytes) {
    close(CloseReason::bad_identity);
    return false;
  }
  auto identity = PublicKey::from_view(payload.first(PublicKey::size()));
  auto signature = Signature::from_view(payload.subspan(PublicKey::size()));
  assert(identity && signature);
  // The Noise static key must be the X25519 form of the named Ed25519 key, and the Ed25519 key
  // must sign this handshake: then the peer holds both secrets of one node identity.
  auto x25519 = to_x25519(*identity);
  auto remote_static = handshake_->remote_static();
  if (!x25519 || !remote_static || !(*x25519 == *remote_static) ||
      !verify(*identity, identity_signed_bytes(handshake_->hash_before_payload()), *signature)) {
    close(CloseReason::bad_identity);
    return false;
  }
  if (expected_peer_ && *expected_peer_ != *identity) {
    close(CloseReason::peer_mismatch);
    return false;
  }
  peer_ = *identity;
  return true;
}

void Link::become_established() {
  auto transport = handshake_->split();
  if (!transport) return close(CloseReason::bad_handshake);
  send_cipher_ = std::move(transport->send);
  receive_cipher_ = std::move(transport->receive);
  handshake_.reset();  // wipes the ephemeral, static copy and chaining key
  state_ = LinkState::established;
  push(link_output::Established{*peer_}, 0);
  config_.log({LogLevel::info, "link", "link established peer=" + short_hex(*peer_)});
  while (!waiting_.empty() && state_ == LinkState::established) {
    Bytes message = std::move(waiting_.front());
    waiting_.pop_front();
    queued_bytes_ -= wire_bytes(message.size());
    (void)send_now(message);  // on failure the link has closed, which ends the loop
  }
}

Result<void> Link::send_now(ByteView message) {
  auto ciphertext = send_cipher_.encrypt_with_ad(ByteView(), message);
  if (!ciphertext) {
    close(CloseReason::nonce_exhausted);
    return ciphertext.error();
  }
  push(link_output::SendBytes{frame(*ciphertext)}, wire_bytes(message.size()));
  return ok_result();
}

void Link::on_transport_message(ByteView body) {
  // Noise transport messages carry no explicit nonce: each side counts, so a replayed,
  // reordered, dropped or reflected frame (the reverse direction has its own key) fails here.
  auto message = receive_cipher_.decrypt_with_ad(ByteView(), body);
  if (!message) {
    return close(message.error().code() == Errc::internal ? CloseReason::nonce_exhausted
                                                          : CloseReason::decrypt_failed);
  }
  push(link_output::Received{std::move(*message)}, 0);
}

void Link::push(LinkOutput output, std::size_t data_bytes) {
  out_.emplace_back(std::move(output), data_bytes);
  queued_bytes_ += data_bytes;
}

void Link::close(CloseReason reason) {
  if (state_ == LinkState::closed) return;
  state_ = LinkState::closed;
  handshake_.reset();
  self_.reset();
  send_cipher_ = noise::CipherState();
  receive_cipher_ = noise::CipherState();
  partial_ = Bytes();
  for (const Bytes& message : waiting_) queued_bytes_ -= wire_bytes(message.size());
  waiting_.clear();
  push(link_output::Closed{reason}, 0);
  std::string message = std::string("link closed reason=") + close_reason_name(reason);
  if (peer_) message += " peer=" + short_hex(*peer_);
  config_.log({LogLevel::info, "link", std::move(message)});
}

}  // namespace qun
