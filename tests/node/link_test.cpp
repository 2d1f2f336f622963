// Tests for node/link.h: the Noise XX secure link between two node identities.
//
// Most tests wire two Links back to back through a tiny in-test pump: every SendBytes one side
// emits is delivered to the other (whole, or cut into random chunks from a seeded Rng), until
// neither side has anything left to send. Frames can be captured instead of delivered, so a test
// can tamper with, replay, reorder or reflect them.
#include "node/link.h"

#include <sodium.h>

#include <catch2/catch.hpp>
#include <deque>
#include <string>
#include <vector>

namespace qun {
namespace {

using link_output::Closed;
using link_output::Established;
using link_output::Received;
using link_output::SendBytes;

SigningKey key_from(std::uint64_t seed) {
  Rng rng = Rng::from_u64(seed);
  return SigningKey::generate(rng);
}

Bytes hex(std::string_view text) {
  auto bytes = from_hex(text);
  REQUIRE(bytes);
  return *bytes;
}

Bytes text_bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

// One side of a pair: the Link, frames it sent that are not delivered yet, and every other
// output it produced, in order.
struct Side {
  explicit Side(Link l) : link(std::move(l)) {}

  Link link;
  std::deque<Bytes> in_flight;
  std::vector<LinkOutput> events;
  Bytes sent_stream;  // every byte this side ever emitted, for determinism checks

  // Moves this side's outputs into in_flight and events.
  void drain() {
    while (auto output = link.poll()) {
      if (auto* send = std::get_if<SendBytes>(&*output)) {
        sent_stream.insert(sent_stream.end(), send->bytes.begin(), send->bytes.end());
        in_flight.push_back(std::move(send->bytes));
      } else {
        events.push_back(std::move(*output));
      }
    }
  }
  std::vector<Bytes> received() const {
    std::vector<Bytes> out;
    for (const auto& e : events)
      if (auto* r = std::get_if<Received>(&e)) out.push_back(r->message);
    return out;
  }
  std::vector<Closed> closes() const {
    std::vector<Closed> out;
    for (const auto& e : events)
      if (auto* c = std::get_if<Closed>(&e)) out.push_back(*c);
    return out;
  }
  std::optional<PublicKey> established_peer() const {
    for (const auto& e : events)
      if (auto* est = std::get_if<Established>(&e)) return est->peer;
    return std::nullopt;
  }
  std::optional<CloseReason> close_reason() const {
    auto c = closes();
    if (c.empty()) return std::nullopt;
    return c.front().reason;
  }
};

// Two engines back to back: a dials (initiator), b accepts (responder).
struct Pair {
  Millis now = 1000;
  SigningKey a_key;
  SigningKey b_key;
  Side a;
  Side b;
  Rng chunker;
  bool chunked = false;

  explicit Pair(std::uint64_t seed, std::optional<PublicKey> expected = std::nullopt,
                LinkConfig a_config = {}, LinkConfig b_config = {})
      : Pair(seed, key_from(seed * 2 + 1), key_from(seed * 2 + 2), expected, std::move(a_config),
             std::move(b_config)) {}

  Pair(std::uint64_t seed, SigningKey a_identity, SigningKey b_identity,
       std::optional<PublicKey> expected, LinkConfig a_config, LinkConfig b_config)
      : a_key(std::move(a_identity)),
        b_key(std::move(b_identity)),
        a{make_initiator(seed, expected, std::move(a_config))},
        b{make_responder(seed, std::move(b_config))},
        chunker(Rng::from_u64(seed ^ 0x5eed)) {
    a.drain();
    b.drain();
  }

  Link make_initiator(std::uint64_t seed, std::optional<PublicKey> expected, LinkConfig config) {
    Rng rng = Rng::from_u64(seed * 7 + 1);
    return Link::initiator(now, a_key, expected, rng, std::move(config));
  }
  Link make_responder(std::uint64_t seed, LinkConfig config) {
    Rng rng = Rng::from_u64(seed * 7 + 2);
    return Link::responder(now, b_key, rng, std::move(config));
  }

  // Feeds bytes to a side, whole or in random chunks of 1..2*size bytes.
  void feed(Side& to, ByteView bytes) {
    if (!chunked) {
      to.link.on_bytes(now, bytes);
    } else {
      while (!bytes.empty()) {
        std::size_t n = 1 + chunker.uniform(std::min<std::size_t>(bytes.size(), 97));
        if (chunker.uniform(8) == 0)
          n = std::min<std::size_t>(bytes.size(), 1 + chunker.uniform(70000));
        n = std::min(n, bytes.size());
        to.link.on_bytes(now, bytes.first(n));
        bytes = bytes.subspan(n);
      }
    }
    to.drain();
  }
  // Delivers the oldest in-flight frame from `from` to its peer.
  void deliver_one(Side& from) {
    Bytes frame = std::move(from.in_flight.front());
    from.in_flight.pop_front();
    feed(&from == &a ? b : a, frame);
  }
  // Delivers everything in flight, both ways, until both sides are quiet.
  void run() {
    while (!a.in_flight.empty() || !b.in_flight.empty()) {
      while (!a.in_flight.empty()) deliver_one(a);
      while (!b.in_flight.empty()) deliver_one(b);
    }
  }
  void send(Side& from, ByteView message) {
    REQUIRE(from.link.send(now, message));
    from.drain();
  }
};

Bytes patterned(std::size_t size, std::uint64_t seed) {
  Bytes out(size);
  Rng rng = Rng::from_u64(seed);
  rng.fill(out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The Noise layer against published and independently computed values.

// Proves the Noise core (HMAC, HKDF, MixKey, MixHash, EncryptAndHash, the XX token order, Split
// and the ChaChaPoly nonce) is byte-exact with the Noise spec: it reproduces the
// Noise_XX_25519_ChaChaPoly_BLAKE2b vector from the cacophony test vectors (as shipped in
// github.com/mcginty/snow, tests/vectors/cacophony.txt): every handshake message, the handshake
// hash, and the transport messages that follow, which alternate starting with the responder.
TEST_CASE("noise XX reproduces the cacophony test vector", "[link][noise]") {
  auto secret = [](std::string_view text) {
    X25519Secret key;
    Bytes bytes = hex(text);
    REQUIRE(bytes.size() == key.size());
    std::copy(bytes.begin(), bytes.end(), key.data());
    return key;
  };
  Bytes prologue = hex("4a6f686e2047616c74");
  X25519Secret init_static =
      secret("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1");
  X25519Secret resp_static =
      secret("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893");
  noise::HandshakeXX init(
      noise::Role::initiator, prologue, init_static,
      secret("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"));
  noise::HandshakeXX resp(
      noise::Role::responder, prologue, resp_static,
      secret("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b"));
  struct Message {
    std::string_view payload;
    std::string_view ciphertext;
  };
  const Message messages[] = {
      {"4c756477696720766f6e204d69736573",
       "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d"
       "69736573"},
      {"4d757272617920526f746862617264",
       "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088430505b6745ce64a5f33f0e8e3"
       "b83f11ce8802bca507f4f2d8b564dbe277e1966116e132faa2dfd70b8b077b9f94b913df5056ae1319469b82"
       "4a98d54bbaa82c325595587064f978c4b6d104f7596e6f"},
      {"462e20412e20486179656b",
       "99579e1c1ee15e422a57ddd6b16d37087b17558e8369c18991b4b2ca3a824abf904cdcf5458b5431a75af034"
       "ca9e9b982de039eaaf156775e2d580cd4e5ebae89c3f8cb2594b556d8a8169"},
      {"4361726c204d656e676572", "fc56eea290b3f3a21aac0c70cd5787b5ee99be37d2f4d751329b55"},
      {"4a65616e2d426170746973746520536179",
       "bb31c9da10d5639a4cdb88a12f5c61de41bbc7df09bf75d94f8184fe4157f5c68f"},
      {"457567656e2042f6686d20766f6e2042617765726b",
       "f6199cadb152fb27f82be0a0891ec76a33598ae92a46cab2fb5a8ed5bf48b7f267f8370af7"},
  };

  for (int i = 0; i < 3; ++i) {
    noise::HandshakeXX& writer = i % 2 == 0 ? init : resp;
    noise::HandshakeXX& reader = i % 2 == 0 ? resp : init;
    auto written = writer.write_message(hex(messages[i].payload));
    REQUIRE(written);
    CHECK(to_hex(*written) == messages[i].ciphertext);
    auto read = reader.read_message(*written);
    REQUIRE(read);
    CHECK(*read == hex(messages[i].payload));
  }
  REQUIRE(init.is_complete());
  REQUIRE(resp.is_complete());
  // The vector file's "handshake_hash" field (5d255b0a...) disagrees with this value, yet every
  // handshake ciphertext above matches, and each was encrypted with h as associated data. An
  // independent Python implementation of the spec (hashlib, hmac, the cryptography package)
  // reproduces every ciphertext and gives this final h, so the final MixHash is checked against
  // that instead; see docs/protocol.md, Secure links.
  const std::string handshake_hash =
      "8cf47d7b3cb5804c0109d48e8bcdbee2cbb65687d8ea2c92994ca361fb86151ad93627b98936cbb32de56e8a"
      "bb21def3925011ac3e35db9cbeea73ab9a4392c2";
  CHECK(to_hex(init.handshake_hash()) == handshake_hash);
  CHECK(to_hex(resp.handshake_hash()) == handshake_hash);
  auto remote_static = init.remote_static();
  REQUIRE(remote_static);
  X25519Public resp_public;
  REQUIRE(crypto_scalarmult_base(resp_public.data(), resp_static.data()) == 0);
  CHECK(*remote_static == resp_public);

  auto init_transport = init.split();
  auto resp_transport = resp.split();
  REQUIRE(init_transport);
  REQUIRE(resp_transport);
  for (int i = 3; i < 6; ++i) {
    bool from_init = i % 2 == 0;
    noise::CipherState& sender = from_init ? init_transport->send : resp_transport->send;
    noise::CipherState& receiver = from_init ? resp_transport->receive : init_transport->receive;
    auto ciphertext = sender.encrypt_with_ad(ByteView(), hex(messages[i].payload));
    REQUIRE(ciphertext);
    CHECK(to_hex(*ciphertext) == messages[i].ciphertext);
    auto plaintext = receiver.decrypt_with_ad(ByteView(), *ciphertext);
    REQUIRE(plaintext);
    CHECK(*plaintext == hex(messages[i].payload));
  }
}

// Proves HMAC-BLAKE2b follows RFC 2104 with BLAKE2b-512 and a 128-byte block, including the
// hash-the-key-first path for keys longer than a block. There are no published HMAC-BLAKE2b
// vectors (RFC 4231 is HMAC-SHA2), so the expected values were computed independently with
// Python's standard library: hmac.new(key, msg, hashlib.blake2b).hexdigest().
TEST_CASE("HMAC-BLAKE2b matches Python's hmac with hashlib.blake2b", "[link][noise]") {
  std::array<std::uint8_t, noise::hash_bytes> out;
  Bytes key1(64);
  for (std::size_t i = 0; i < key1.size(); ++i) key1[i] = static_cast<std::uint8_t>(i);
  noise::hmac_blake2b(key1, text_bytes("qun link"), out);
  CHECK(to_hex(out) ==
        "3985dc71ec4c9343368e05461d86e60b41b902b3d303662bd13c9c008cca43052d5d304b846e4881905590cd"
        "4514dcab0cfada171fa73923652d7e47525d57f7");

  Bytes key2(200, 0xaa);
  noise::hmac_blake2b(key2, text_bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
                      out);
  CHECK(to_hex(out) ==
        "2f5f2d35b23f886565d4ef590d7226d15750f0971a39346f2859f38e87f0b09b871ff0176dfd41c30f2d99e5"
        "3309e215601088c0299f83f8acd804b32ccea0ae");

  noise::hmac_blake2b(ByteView(), ByteView(), out);
  CHECK(to_hex(out) ==
        "198cd2006f66ff83fbbd913f78aca2251caf4f19fe9475aade8cf2091b99a68466775177424f58286886cbae"
        "8229644cec747237d4b721735485e17372fdf59c");
}

// Proves HKDF is the Noise spec's two-output construction, with and without input key material
// (MixKey and Split), against values from an independent Python implementation of the spec's
// definition (temp = HMAC(ck, ikm); o1 = HMAC(temp, 0x01); o2 = HMAC(temp, o1 || 0x02)). Also
// checks the outputs may overwrite the chaining key, as MixKey does.
TEST_CASE("Noise HKDF matches an independent implementation", "[link][noise]") {
  std::array<std::uint8_t, noise::hash_bytes> o1;
  std::array<std::uint8_t, noise::hash_bytes> o2;
  Bytes ck(64, 0x01);
  Bytes ikm(32, 0x02);
  noise::hkdf2(ck, ikm, o1, o2);
  CHECK(to_hex(o1) ==
        "12c4352c487964a39209817dc1f3a007a0d46ca33334d4a860fd773ac5dc462c37dfeaa45b8b38a14b7f416a"
        "9107ea18e15700c2de4a105e6607be1964ce0184");
  CHECK(to_hex(o2) ==
        "c9b08b41c790d5ccfb34c7575440ff38aa6daebdf57cc8caf802d7588be685b103a8b67a866c7193734491c3"
        "f6ca839d82f80844f7ee827c8db71540f039c317");

  noise::hkdf2(ck, ByteView(), o1, o2);
  CHECK(to_hex(o1) ==
        "c5f0a1736ba432462cb850279392e37db0b3370f1de81f1c00de7c630a84dbc8780a50958bed1005d6b4aee5"
        "5281de1cbe8a9e65347611a02d3d21ac0da5cf11");
  CHECK(to_hex(o2) ==
        "5c80f75db6107b9c201a9164394e3f1aac508b6c8356e2c46f17298598a7fe93cd8eb96fe109ccb07448aaca"
        "084af38140d4c4c62babf53bfe543e20c2fbd2ef");

  std::copy(ck.begin(), ck.end(), o1.begin());
  noise::hkdf2(o1, ikm, o1, o2);  // in place, as MixKey updates ck
  CHECK(to_hex(o1).substr(0, 16) == "12c4352c487964a3");
}

// ---------------------------------------------------------------------------------------------
// Link end to end.

// Proves two links complete the handshake, each learning the other's Ed25519 identity, and
// then carry messages both ways intact and in order: many small ones, an empty one, and ones of
// exactly message_bytes_max. Established comes before any Received, and the deadline goes away.
TEST_CASE("link: handshake and messages both ways", "[link]") {
  Pair p(2);
  p.run();
  REQUIRE(p.a.link.state() == LinkState::established);
  REQUIRE(p.b.link.state() == LinkState::established);
  CHECK(p.a.established_peer() == p.b_key.public_key());
  CHECK(p.b.established_peer() == p.a_key.public_key());
  CHECK(p.a.link.peer() == p.b_key.public_key());
  CHECK(p.b.link.peer() == p.a_key.public_key());
  CHECK_FALSE(p.a.link.next_deadline());
  CHECK_FALSE(p.b.link.next_deadline());

  std::vector<Bytes> a_to_b;
  std::vector<Bytes> b_to_a;
  for (int i = 0; i < 200; ++i) {
    a_to_b.push_back(text_bytes("a says " + std::to_string(i)));
    b_to_a.push_back(text_bytes("b says " + std::to_string(i)));
  }
  a_to_b.push_back(Bytes());
  a_to_b.push_back(patterned(message_bytes_max, 10));
  b_to_a.push_back(patterned(message_bytes_max, 11));
  for (const Bytes& m : a_to_b) p.send(p.a, m);
  for (const Bytes& m : b_to_a) p.send(p.b, m);
  p.run();
  CHECK(p.b.received() == a_to_b);
  CHECK(p.a.received() == b_to_a);
  CHECK(p.a.closes().empty());
  CHECK(p.b.closes().empty());
  REQUIRE(std::holds_alternative<Established>(p.b.events.front()));

  // Past the limit is refused without harming the link.
  auto too_big = p.a.link.send(p.now, patterned(message_bytes_max + 1, 12));
  REQUIRE_FALSE(too_big);
  CHECK(too_big.error().code() == Errc::too_large);
  CHECK(p.a.link.state() == LinkState::established);
}

// Proves framing survives any split of the stream: for many seeds, every byte stream (the
// handshake and the data) is cut into random chunks from 1 byte up to several frames, and all
// messages still arrive intact and in order.
TEST_CASE("link: random chunking of the stream", "[link]") {
  for (std::uint64_t seed = 100; seed < 130; ++seed) {
    INFO("seed " << seed);
    Pair p(seed);
    p.chunked = true;
    std::vector<Bytes> a_to_b;
    std::vector<Bytes> b_to_a;
    Rng sizes = Rng::from_u64(seed);
    for (int i = 0; i < 40; ++i) {
      std::size_t size =
          sizes.uniform(4) == 0 ? sizes.uniform(message_bytes_max + 1) : sizes.uniform(300);
      a_to_b.push_back(patterned(size, seed * 1000 + i));
      b_to_a.push_back(patterned(sizes.uniform(300), seed * 2000 + i));
    }
    // Sent before the handshake completes too: they wait and go out in order.
    for (const Bytes& m : a_to_b) p.send(p.a, m);
    p.run();
    for (const Bytes& m : b_to_a) p.send(p.b, m);
    p.run();
    CHECK(p.b.received() == a_to_b);
    CHECK(p.a.received() == b_to_a);
    CHECK(p.a.closes().empty());
    CHECK(p.b.closes().empty());
  }
}

// Proves a dialer that expects a particular identity closes with peer_mismatch when the
// responder proves another one, and does so before sending its own identity: the third
// handshake message never leaves, so the responder never learns who dialed.
TEST_CASE("link: expected peer mismatch closes before revealing the dialer", "[link]") {
  Pair p(3, key_from(999).public_key());
  p.deliver_one(p.a);  // -> e
  p.deliver_one(p.b);  // <- e, ee, s, es
  CHECK(p.a.close_reason() == CloseReason::peer_mismatch);
  CHECK(p.a.link.state() == LinkState::closed);
  CHECK(p.a.in_flight.empty());
  CHECK_FALSE(p.a.established_peer());
  CHECK(p.b.link.state() == LinkState::handshaking);

  // And with the right expectation it works.
  Pair ok(4, key_from(4 * 2 + 2).public_key());
  ok.run();
  CHECK(ok.a.link.state() == LinkState::established);
}

// Proves that flipping the low bit of any single byte of any handshake frame (header or body)
// stops the link: some side closes with a reason, the responder never reports the link as
// established, and no application message is ever delivered either way.
TEST_CASE("link: tampering with any handshake byte closes", "[link]") {
  const std::size_t frame_sizes[] = {frame_header_bytes + handshake1_bytes,
                                     frame_header_bytes + handshake2_bytes,
                                     frame_header_bytes + handshake3_bytes};
  for (int which = 0; which < 3; ++which) {
    for (std::size_t index = 0; index < frame_sizes[which]; ++index) {
      INFO("handshake message " << which + 1 << " byte " << index);
      Pair p(5 + index);
      REQUIRE(p.a.link.send(p.now, text_bytes("early from a")));
      // Deliver honestly up to the chosen message.
      for (int step = 0; step < which; ++step) p.deliver_one(step % 2 == 0 ? p.a : p.b);
      Side& from = which % 2 == 0 ? p.a : p.b;
      REQUIRE(from.in_flight.front().size() == frame_sizes[which]);
      from.in_flight.front()[index] ^= 0x01;
      p.run();
      if (p.a.link.state() == LinkState::established) {
        (void)p.a.link.send(p.now, text_bytes("late from a"));
        p.a.drain();
      }
      p.run();
      CHECK((!p.a.closes().empty() || !p.b.closes().empty()));
      CHECK_FALSE(p.b.established_peer());
      CHECK(p.a.received().empty());
      CHECK(p.b.received().empty());
      CHECK(p.a.closes().size() <= 1);
      CHECK(p.b.closes().size() <= 1);
    }
  }
}

// Establishes a pair and returns it with no frames in flight.
Pair established_pair(std::uint64_t seed) {
  Pair p(seed);
  p.run();
  REQUIRE(p.a.link.state() == LinkState::established);
  REQUIRE(p.b.link.state() == LinkState::established);
  return p;
}

// Proves tampering with any single byte of a data frame, header included, closes the receiver
// with a reason and delivers nothing: a changed body fails authentication, a changed length
// misaligns the frames after it, which then fail authentication. Two maximum-size frames follow
// so that even a length raised to the maximum is filled and judged.
TEST_CASE("link: tampering with any data frame byte closes", "[link]") {
  const Bytes message = text_bytes("attack at dawn, bring snacks, the usual place");
  for (std::size_t index = 0; index < frame_header_bytes + message.size() + link_tag_bytes;
       ++index) {
    INFO("byte " << index);
    Pair p = established_pair(40);
    p.send(p.a, message);
    p.send(p.a, patterned(message_bytes_max, 1));
    p.send(p.a, patterned(message_bytes_max, 2));
    REQUIRE(p.a.in_flight.size() == 3);
    p.a.in_flight.front()[index] ^= 0x01;
    p.run();
    CHECK(p.b.link.state() == LinkState::closed);
    REQUIRE(p.b.close_reason());
    CHECK((*p.b.close_reason() == CloseReason::decrypt_failed ||
           *p.b.close_reason() == CloseReason::bad_frame));
    CHECK(p.b.received().empty());
  }
}

// Proves a replayed data frame closes the link: the first copy is delivered once, the second
// fails because the receiver's nonce has moved on.
TEST_CASE("link: replaying a data frame closes", "[link]") {
  Pair p = established_pair(41);
  p.send(p.a, text_bytes("pay bob 5"));
  Bytes frame = p.a.in_flight.front();
  p.run();
  REQUIRE(p.b.received().size() == 1);
  p.feed(p.b, frame);
  CHECK(p.b.close_reason() == CloseReason::decrypt_failed);
  CHECK(p.b.received().size() == 1);
  CHECK(p.b.link.state() == LinkState::closed);
}

// Proves reordering two data frames closes the link before either is delivered.
TEST_CASE("link: reordering two frames closes", "[link]") {
  Pair p = established_pair(42);
  p.send(p.a, text_bytes("first"));
  p.send(p.a, text_bytes("second"));
  std::swap(p.a.in_flight[0], p.a.in_flight[1]);
  p.run();
  CHECK(p.b.close_reason() == CloseReason::decrypt_failed);
  CHECK(p.b.received().empty());
}

// Proves a frame reflected back to its own sender closes that sender: the two directions use
// different keys from Split(), so a side cannot be fed its own words.
TEST_CASE("link: reflecting a frame to its sender closes", "[link]") {
  Pair p = established_pair(43);
  p.send(p.a, text_bytes("hello b"));
  p.feed(p.a, p.a.in_flight.front());
  CHECK(p.a.close_reason() == CloseReason::decrypt_failed);
  CHECK(p.a.received().empty());

  // The responder too.
  Pair q = established_pair(44);
  q.send(q.b, text_bytes("hello a"));
  q.feed(q.b, q.b.in_flight.front());
  CHECK(q.b.close_reason() == CloseReason::decrypt_failed);
}

// Proves a length prefix the current phase does not allow closes on the 2-byte header alone,
// without waiting for (or buffering) the body it announces: 65535 during the handshake (only
// the exact handshake sizes are allowed), and a frame shorter than a tag once established.
TEST_CASE("link: a bad length prefix closes on the header alone", "[link]") {
  Rng rng = Rng::from_u64(50);
  SigningKey key = key_from(50);
  Link responder = Link::responder(0, key, rng);
  const std::uint8_t huge[] = {0xff, 0xff};
  responder.on_bytes(1, huge);
  auto out = responder.poll();
  REQUIRE(out);
  REQUIRE(std::holds_alternative<Closed>(*out));
  CHECK(std::get<Closed>(*out).reason == CloseReason::bad_frame);
  CHECK_FALSE(responder.poll());

  Pair p = established_pair(51);
  const std::uint8_t tiny[] = {0x00, 0x05};
  p.feed(p.b, tiny);
  CHECK(p.b.close_reason() == CloseReason::bad_frame);
}

// Proves the handshake deadline: next_deadline() reports it, an early tick does nothing, the
// tick at the deadline closes with handshake_timeout exactly once, and the closed link then
// ignores input and refuses send() with an Error.
TEST_CASE("link: handshake timeout via on_tick", "[link]") {
  Pair p(60);
  const Millis start = p.now;
  REQUIRE(p.a.link.next_deadline() == start + handshake_timeout_ms);
  p.a.link.on_tick(start + handshake_timeout_ms - 1);
  p.a.drain();
  CHECK(p.a.events.empty());
  p.a.link.on_tick(start + handshake_timeout_ms);
  p.a.link.on_tick(start + handshake_timeout_ms + 5);
  p.a.drain();
  REQUIRE(p.a.closes().size() == 1);
  CHECK(p.a.close_reason() == CloseReason::handshake_timeout);
  CHECK_FALSE(p.a.link.next_deadline());

  auto refused = p.a.link.send(start + handshake_timeout_ms + 6, text_bytes("too late"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Errc::invalid_argument);
  // The responder's answer now arrives and is ignored.
  p.deliver_one(p.a);
  p.deliver_one(p.b);
  CHECK(p.a.events.size() == 1);
  CHECK(p.a.in_flight.empty());
}

// Proves a responder fed random bytes from many seeds, in random chunks, never crashes, never
// establishes, closes at most once, and stays closed. Half the runs start with a valid first
// header so the garbage reaches the handshake itself (a random "ephemeral key").
TEST_CASE("link: a responder fed garbage closes and never crashes", "[link]") {
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    INFO("seed " << seed);
    Rng rng = Rng::from_u64(seed);
    SigningKey key = key_from(70);
    Link responder = Link::responder(0, key, rng);
    Bytes garbage = patterned(rng.uniform(600), seed + 7000);
    if (seed % 2 == 0) {
      Bytes header = {0x00, static_cast<std::uint8_t>(handshake1_bytes)};
      garbage.insert(garbage.begin(), header.begin(), header.end());
    }
    std::size_t closes = 0;
    ByteView rest = garbage;
    while (!rest.empty()) {
      std::size_t n = std::min<std::size_t>(rest.size(), 1 + rng.uniform(64));
      responder.on_bytes(1, rest.first(n));
      rest = rest.subspan(n);
      while (auto out = responder.poll()) {
        CHECK_FALSE(std::holds_alternative<Established>(*out));
        CHECK_FALSE(std::holds_alternative<Received>(*out));
        if (std::holds_alternative<Closed>(*out)) ++closes;
      }
    }
    responder.on_tick(handshake_timeout_ms + 1);
    while (auto out = responder.poll())
      if (std::holds_alternative<Closed>(*out)) ++closes;
    CHECK(closes == 1);
    CHECK(responder.state() == LinkState::closed);
  }
}

// Proves a low-order ephemeral key closes the responder (crypto_scalarmult's all-zero result is
// checked): both the all-zero point and a point of order 8.
TEST_CASE("link: a low-order ephemeral key closes", "[link]") {
  for (std::string_view point :
       {"0000000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"}) {
    INFO(point);
    Rng rng = Rng::from_u64(80);
    SigningKey key = key_from(80);
    Link responder = Link::responder(0, key, rng);
    Bytes frame = {0x00, static_cast<std::uint8_t>(handshake1_bytes)};
    Bytes e = hex(point);
    frame.insert(frame.end(), e.begin(), e.end());
    responder.on_bytes(1, frame);
    auto out = responder.poll();
    REQUIRE(out);
    REQUIRE(std::holds_alternative<Closed>(*out));
    CHECK(std::get<Closed>(*out).reason == CloseReason::bad_handshake);
  }
}

// Plays a raw Noise initiator against a Link responder, sending a chosen identity payload.
CloseReason responder_verdict(const X25519Secret& static_secret,
                              const std::function<Bytes(const noise::HandshakeHash&)>& payload) {
  Rng rng = Rng::from_u64(90);
  SigningKey responder_key = key_from(91);
  Link responder = Link::responder(0, responder_key, rng);
  X25519Secret ephemeral;
  rng.fill(ephemeral.mut_view());
  Bytes prologue = text_bytes(link_protocol_id);
  prologue.push_back(0);
  noise::HandshakeXX raw(noise::Role::initiator, prologue, static_secret, std::move(ephemeral));
  auto frame_of = [](const Bytes& m) {
    Bytes f = {static_cast<std::uint8_t>(m.size() >> 8), static_cast<std::uint8_t>(m.size())};
    f.insert(f.end(), m.begin(), m.end());
    return f;
  };
  auto m1 = raw.write_message(ByteView());
  REQUIRE(m1);
  responder.on_bytes(1, frame_of(*m1));
  auto m2 = responder.poll();
  REQUIRE(m2);
  auto& bytes = std::get<SendBytes>(*m2).bytes;
  REQUIRE(raw.read_message(ByteView(bytes).subspan(frame_header_bytes)));
  auto m3 = raw.write_message(payload);
  REQUIRE(m3);
  responder.on_bytes(2, frame_of(*m3));
  auto out = responder.poll();
  REQUIRE(out);
  REQUIRE(std::holds_alternative<Closed>(*out));
  return std::get<Closed>(*out).reason;
}

Bytes signed_identity(const SigningKey& signer, const PublicKey& named,
                      const noise::HandshakeHash& h) {
  Bytes to_sign = text_bytes("qun link v1 identity signature");
  to_sign.insert(to_sign.end(), h.begin(), h.end());
  Bytes payload(named.bytes.begin(), named.bytes.end());
  Signature s = signer.sign(to_sign);
  payload.insert(payload.end(), s.bytes.begin(), s.bytes.end());
  return payload;
}

// Proves the identity checks: a peer that completes Noise with its own X25519 key but names
// another node's Ed25519 key is refused (the conversion does not match), and so is one that
// names its own key with a signature over the wrong hash or by another key.
TEST_CASE("link: an identity payload must prove the key it names", "[link]") {
  SigningKey mallory = key_from(92);
  SigningKey alice = key_from(93);
  // Names alice, signed by mallory, over mallory's static: conversion mismatch.
  CHECK(responder_verdict(mallory.x25519_secret(), [&](const noise::HandshakeHash& h) {
          return signed_identity(mallory, alice.public_key(), h);
        }) == CloseReason::bad_identity);
  // Names mallory correctly but the signature is over another hash.
  CHECK(responder_verdict(mallory.x25519_secret(), [&](const noise::HandshakeHash&) {
          return signed_identity(mallory, mallory.public_key(), noise::HandshakeHash{});
        }) == CloseReason::bad_identity);
  // Names mallory, signature by alice.
  CHECK(responder_verdict(mallory.x25519_secret(), [&](const noise::HandshakeHash& h) {
          return signed_identity(alice, mallory.public_key(), h);
        }) == CloseReason::bad_identity);
}

// Proves links on different network ids (different prologues) never establish: the initiator
// cannot decrypt the responder's static key.
TEST_CASE("link: different network ids do not talk", "[link]") {
  LinkConfig a_config;
  a_config.network_id = "main";
  LinkConfig b_config;
  b_config.network_id = "test";
  Pair p(100, std::nullopt, std::move(a_config), std::move(b_config));
  p.run();
  CHECK(p.a.close_reason() == CloseReason::decrypt_failed);
  CHECK_FALSE(p.b.established_peer());
}

// Proves messages sent before the handshake completes are queued up to queued_bytes_max
// (exactly sixteen maximum-size messages, counted at their wire size), refused past it with
// Errc::too_large without harming the link, and flushed in order once established; after the
// queue drains, sending works again.
TEST_CASE("link: sends before established queue to the bound and flush", "[link]") {
  Pair p(110);
  std::vector<Bytes> sent;
  for (int i = 0;; ++i) {
    Bytes m = patterned(message_bytes_max, 500 + i);
    auto r = p.a.link.send(p.now, m);
    if (!r) {
      CHECK(r.error().code() == Errc::too_large);
      break;
    }
    sent.push_back(std::move(m));
  }
  CHECK(sent.size() == queued_bytes_max / (frame_header_bytes + frame_bytes_max));
  auto small = p.a.link.send(p.now, text_bytes("one more"));
  CHECK_FALSE(small);
  CHECK(p.a.link.state() == LinkState::handshaking);
  p.a.drain();
  p.run();
  CHECK(p.b.received() == sent);
  REQUIRE(p.a.link.send(p.now, text_bytes("one more")));
  p.a.drain();
  p.run();
  CHECK(p.b.received().back() == text_bytes("one more"));
}

// Proves determinism: the same seeds give byte-identical streams in both directions (the
// ephemeral keys come only from the injected Rng), and a different seed gives different bytes.
TEST_CASE("link: same seeds, same bytes", "[link]") {
  auto streams = [](std::uint64_t seed) {
    Pair p(seed);
    p.send(p.a, text_bytes("determinism"));
    p.run();
    p.send(p.b, text_bytes("is a feature"));
    p.run();
    return std::make_pair(p.a.sent_stream, p.b.sent_stream);
  };
  auto first = streams(120);
  auto second = streams(120);
  CHECK(first == second);
  CHECK(first.first.size() > frame_header_bytes + handshake1_bytes);
  CHECK(streams(121).first != first.first);
}

}  // namespace
}  // namespace qun
