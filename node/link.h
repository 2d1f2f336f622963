// Link: the secure channel between two node identities over one byte stream (a TCP connection).
//
// A Link is a sans-IO engine. It runs the Noise_XX_25519_ChaChaPoly_BLAKE2b handshake, proves
// each side's Ed25519 identity inside it, then carries application messages in encrypted frames.
// It never touches a socket, clock or global randomness: the driver hands it stream bytes and the
// time, and drains what it must write or deliver with poll(). The "Secure links" section of
// docs/protocol.md has the wire format.
//
// Calling contract:
//   - Create one Link per connection: initiator() on the side that dialed, responder() on the
//     side that accepted. Drain poll() until empty after creating it and after every call to
//     on_bytes, on_tick and send.
//   - Time never goes backwards. Arm one timer for next_deadline() and call on_tick when it
//     fires; early, late or extra calls to on_tick are harmless.
//   - on_bytes takes the stream exactly as it arrived, split anywhere.
//   - Outputs come in one ordered queue: write every SendBytes to the stream in order; Established
//     comes once, before any Received; Closed comes at most once and is last. After Closed the
//     driver closes the connection; the Link ignores input and refuses send().
// Bad bytes from the peer never assert or throw: the Link emits Closed with a reason. Keys live
// in sodium-guarded memory and are wiped when the handshake ends or the Link is destroyed.
// Not thread-safe: one driver thread owns a Link.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/bytes.h"
#include "crypto/keys.h"
#include "base/result.h"
#include "crypto/rng.h"
#include "crypto/secret.h"
#include "base/log.h"
#include "base/time.h"

namespace qun {

// The Noise spec (section 3) caps every Noise message at 65535 bytes; the 2-byte big-endian
// length prefix of a frame holds exactly that, so a longer frame cannot even be expressed.
inline constexpr std::size_t frame_bytes_max = 65535;
inline constexpr std::size_t frame_header_bytes = 2;
// ChaCha20-Poly1305 appends a 16-byte tag to every transport message.
inline constexpr std::size_t link_tag_bytes = 16;
// One application message travels in one frame, so it is a frame less its tag.
inline constexpr std::size_t message_bytes_max = frame_bytes_max - link_tag_bytes;
// The handshake is 1.5 round trips over a connected stream: well under a second on a working
// path. 10 s tolerates slow mobile links and a busy peer, and bounds how long an
// unauthenticated connection can hold a slot.
inline constexpr Millis handshake_timeout_ms = 10'000;
// Application data not yet drained by poll() plus messages waiting for the handshake, counted
// as the bytes they take on the wire: sixteen maximum-size frames (about 1 MiB), enough to keep
// a link busy between two polls without letting one slow peer hold unbounded memory.
inline constexpr std::size_t queued_bytes_max = 16 * (frame_header_bytes + frame_bytes_max);
// Fixed first part of the Noise prologue: a peer speaking another version fails the handshake.
inline constexpr std::string_view link_protocol_id = "qun link v1";
// The network id separates test nets from the main one; short, like a name.
inline constexpr std::size_t network_id_bytes_max = 64;

// Each side's identity payload, encrypted inside its handshake message: its Ed25519 public key
// and an Ed25519 signature over the handshake hash (docs/protocol.md says why both).
inline constexpr std::size_t identity_payload_bytes = 32 + 64;
// The three XX handshake messages have fixed sizes, so a frame of any other length during the
// handshake is rejected on its header: an unauthenticated peer can make us buffer 192 bytes.
inline constexpr std::size_t handshake1_bytes = 32;  // -> e (empty payload)
inline constexpr std::size_t handshake2_bytes =      // <- e, ee, s, es, payload
    32 + (32 + link_tag_bytes) + (identity_payload_bytes + link_tag_bytes);
inline constexpr std::size_t handshake3_bytes =  // -> s, se, payload
    (32 + link_tag_bytes) + (identity_payload_bytes + link_tag_bytes);

static_assert(frame_bytes_max <= 65535, "Noise messages are at most 65535 bytes");
static_assert(message_bytes_max + link_tag_bytes == frame_bytes_max);
static_assert(queued_bytes_max >= frame_header_bytes + frame_bytes_max,
              "at least one maximum-size message must fit in the queue");

// ---------------------------------------------------------------------------------------------
// The Noise building blocks under Link, exposed so tests can check them against published
// Noise test vectors. Application code uses Link, below.
namespace noise {

inline constexpr std::string_view protocol_name = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
inline constexpr std::size_t dh_bytes = 32;      // DHLEN for 25519
inline constexpr std::size_t hash_bytes = 64;    // HASHLEN for BLAKE2b
inline constexpr std::size_t block_bytes = 128;  // BLOCKLEN for BLAKE2b (HMAC's block)
inline constexpr std::size_t key_bytes = 32;     // ChaChaPoly key
inline constexpr std::size_t tag_bytes = link_tag_bytes;
static_assert(protocol_name.size() <= hash_bytes, "the name is padded into h, not hashed");

using HandshakeHash = std::array<std::uint8_t, hash_bytes>;
struct ChainingKeyTag {};
struct CipherKeyTag {};
using ChainingKey = Secret<hash_bytes, ChainingKeyTag>;
using CipherKey = Secret<key_bytes, CipherKeyTag>;

// HMAC-HASH(key, data) as the Noise spec (section 4.3) defines it: RFC 2104 over BLAKE2b-512
// with a 128-byte block. Writes hash_bytes bytes to out.
void hmac_blake2b(ByteView key, ByteView data, std::span<std::uint8_t, hash_bytes> out);
// HKDF(chaining_key, input_key_material, 2) of the Noise spec (section 4.3).
void hkdf2(ByteView chaining_key, ByteView input_key_material,
           std::span<std::uint8_t, hash_bytes> output1,
           std::span<std::uint8_t, hash_bytes> output2);

// One direction's key and nonce counter (spec section 5.1). The nonce advances only on success,
// so a failed decryption leaves the state as it was (Link closes on it anyway).
class CipherState {
 public:
  CipherState() = default;
  explicit CipherState(CipherKey key) : key_(std::move(key)) {}
  bool has_key() const { return key_.has_value(); }
  // Without a key, returns plaintext unchanged. Errc::internal once the nonce reaches 2^64 - 1.
  [[nodiscard]] Result<Bytes> encrypt_with_ad(ByteView ad, ByteView plaintext);
  // Errc::decrypt_failed on any authentication failure; Errc::internal on nonce exhaustion.
  [[nodiscard]] Result<Bytes> decrypt_with_ad(ByteView ad, ByteView ciphertext);

 private:
  std::optional<CipherKey> key_;
  std::uint64_t nonce_ = 0;
};

enum class Role { initiator, responder };

// The XX pattern (spec section 7.5): -> e; <- e, ee, s, es; -> s, se. The caller alternates
// write_message and read_message in the pattern's order. Errors: Errc::invalid_argument when
// it is not the caller's turn or the handshake is over or failed; Errc::malformed for a message
// of the wrong length or a low-order public key; Errc::decrypt_failed for one that does not
// authenticate. After any error the handshake is failed and refuses further calls.
class HandshakeXX {
 public:
  // The ephemeral secret comes from the caller (drawn from an injected Rng, or a test vector).
  HandshakeXX(Role role, ByteView prologue, const X25519Secret& static_secret,
              X25519Secret ephemeral_secret);

  // Writes this side's next message. make_payload receives the handshake hash after the
  // message's tokens, before the payload (what an identity signature binds to).
  [[nodiscard]] Result<Bytes> write_message(
      const std::function<Bytes(const HandshakeHash&)>& make_payload);
  [[nodiscard]] Result<Bytes> write_message(ByteView payload);
  // Reads the peer's next message and returns its payload.
  [[nodiscard]] Result<Bytes> read_message(ByteView message);

  // Messages written or read so far: 0 to 3.
  int step() const { return step_; }
  bool is_complete() const { return step_ == 3; }
  // h now; after the last message this is the spec's GetHandshakeHash().
  const HandshakeHash& handshake_hash() const { return h_; }
  // h after the tokens of the last message read, before its payload.
  const HandshakeHash& hash_before_payload() const { return hash_before_payload_; }
  std::optional<X25519Public> remote_static() const { return remote_static_; }
  // Split() (spec section 5.2): this side's send and receive ciphers. Only once complete.
  struct Transport {
    CipherState send;
    CipherState receive;
  };
  [[nodiscard]] Result<Transport> split();

 private:
  bool my_turn() const;
  void mix_hash(ByteView data);
  [[nodiscard]] bool mix_key_dh(const X25519Secret& secret, const X25519Public& remote);
  [[nodiscard]] Result<Bytes> encrypt_and_hash(ByteView plaintext);
  [[nodiscard]] Result<Bytes> decrypt_and_hash(ByteView ciphertext);

  Role role_;
  int step_ = 0;  // messages done: 0..3
  bool failed_ = false;
  HandshakeHash h_{};
  HandshakeHash hash_before_payload_{};
  ChainingKey chaining_key_;
  CipherState cipher_;
  X25519Secret static_secret_;
  X25519Public static_public_;
  X25519Secret ephemeral_secret_;
  X25519Public ephemeral_public_;
  std::optional<X25519Public> remote_ephemeral_;
  std::optional<X25519Public> remote_static_;
};

}  // namespace noise

struct LinkConfig {
  // Mixed into the prologue: links between different networks fail the handshake.
  std::string network_id;
  LogSink log = null_log_sink();
};

enum class LinkState { handshaking, established, closed };

enum class CloseReason {
  bad_frame,          // a length prefix this phase does not allow
  bad_handshake,      // a handshake public key of low order (an all-zero X25519 result)
  decrypt_failed,     // authentication failed: tampered, replayed, reordered or reflected bytes,
                      // or a peer with another prologue (protocol version or network id)
  bad_identity,       // the identity payload does not prove the Ed25519 key it names
  peer_mismatch,      // an authenticated peer, but not the one the dialer expected
  handshake_timeout,  // no complete handshake within handshake_timeout_ms
  nonce_exhausted,    // 2^64 - 1 messages under one key: never in practice, forbidden by Noise
};
// A short, stable name ("bad frame", "handshake timeout", ...) for logs and tests.
const char* close_reason_name(CloseReason reason);

namespace link_output {
struct SendBytes {
  Bytes bytes;  // write to the stream, in order
};
struct Established {
  PublicKey peer;  // the peer's proven Ed25519 identity
};
struct Received {
  Bytes message;  // one application message, authentic and in order
};
struct Closed {
  CloseReason reason;
};
}  // namespace link_output
using LinkOutput = std::variant<link_output::SendBytes, link_output::Established,
                                link_output::Received, link_output::Closed>;

class Link {
 public:
  // The dialing side. If expected_peer is set, the link closes with peer_mismatch unless the
  // responder proves that identity, and it does so before revealing our own identity. rng is
  // used only during this call (for the ephemeral key). self is copied: it need not outlive the
  // Link. config.network_id must be at most network_id_bytes_max bytes (asserted: a caller bug).
  static Link initiator(Millis now, const SigningKey& self, std::optional<PublicKey> expected_peer,
                        Rng& rng, LinkConfig config = {});
  // The accepting side: any identity may connect; the caller decides what to do with peer().
  static Link responder(Millis now, const SigningKey& self, Rng& rng, LinkConfig config = {});

  // Raw stream bytes from the peer, split anywhere. Ignored once closed.
  void on_bytes(Millis now, ByteView bytes);
  // Closes the link with handshake_timeout once the deadline has passed; otherwise does nothing.
  void on_tick(Millis now);
  // Queues one application message. Before the handshake completes it waits and is sent, in
  // order, once established. Errors (the link stays as it was unless noted):
  //   Errc::too_large: message over message_bytes_max, or the queue would pass
  //     queued_bytes_max; drain poll() (let the stream catch up) and retry.
  //   Errc::invalid_argument: the link is closed; nothing will be sent.
  //   Errc::internal: the send nonce is exhausted; the link closes (Closed is queued).
  [[nodiscard]] Result<void> send(Millis now, ByteView message);
  [[nodiscard]] std::optional<LinkOutput> poll();
  // The handshake deadline while handshaking; none once established or closed.
  [[nodiscard]] std::optional<Millis> next_deadline() const;
  [[nodiscard]] LinkState state() const { return state_; }
  // The proven identity of the peer, once established (kept after a later close).
  [[nodiscard]] std::optional<PublicKey> peer() const { return peer_; }

 private:
  Link(noise::Role role, Millis now, const SigningKey& self, std::optional<PublicKey> expected_peer,
       Rng& rng, LinkConfig config);

  // The frame body length the next frame must have: exact during the handshake.
  bool frame_length_allowed(std::size_t body_bytes) const;
  void on_frame(ByteView body);
  void on_handshake_message(ByteView body);
  void on_transport_message(ByteView body);
  [[nodiscard]] bool write_handshake_message();
  [[nodiscard]] bool accept_identity(ByteView payload);
  void become_established();
  [[nodiscard]] Result<void> send_now(ByteView message);
  void push(LinkOutput output, std::size_t data_bytes);
  void close(CloseReason reason);

  noise::Role role_;
  LinkState state_ = LinkState::handshaking;
  Millis deadline_;
  LinkConfig config_;
  std::optional<PublicKey> expected_peer_;
  std::optional<PublicKey> peer_;
  // Our identity, kept only until our identity payload is written.
  std::optional<SigningKey> self_;
  // Present while handshaking; reset (and its secrets wiped) once established or closed.
  std::optional<noise::HandshakeXX> handshake_;
  noise::CipherState send_cipher_;
  noise::CipherState receive_cipher_;
  // The frame being reassembled: header, then body; never more than one frame.
  Bytes partial_;
  // Application messages accepted by send() before the handshake completed.
  std::deque<Bytes> waiting_;
  // The output queue; each entry carries the application bytes it counts in queued_bytes_.
  std::deque<std::pair<LinkOutput, std::size_t>> out_;
  std::size_t queued_bytes_ = 0;
};

}  // namespace qun
