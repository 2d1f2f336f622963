// Event encoding: canonical, strict, bounded; ids and signatures.
#include <catch2/catch.hpp>

#include "base/codec.h"
#include "node/event.h"
#include "node/limits.h"
#include "tests/node/fixture.h"

using namespace qun;
using qun::test::identity;

namespace {

Event sample(const SigningKey& key, std::size_t parents = 2) {
  Event e;
  e.group = hash(as_bytes("group"));
  e.author = key.public_key();
  for (std::size_t i = 0; i < parents; ++i) e.parents.push_back(hash(as_bytes(std::to_string(i))));
  std::sort(e.parents.begin(), e.parents.end());
  e.depth = 7;
  e.time_ms = 1700000000000;
  e.kind = EventKind::post;
  e.epoch = 3;
  e.payload = {1, 2, 3};
  sign_event(e, key);
  return e;
}

}  // namespace

// Proves the round trip keeps every field, the id and the signature.
TEST_CASE("event round-trips through its encoding", "[node][event]") {
  auto key = identity(1);
  Event e = sample(key);
  Bytes bytes = encode(e);
  auto d = decode_event(bytes);
  REQUIRE(d.ok());
  CHECK(d->id == e.id);
  CHECK(d->parents == e.parents);
  CHECK(d->depth == 7);
  CHECK(d->epoch == 3);
  CHECK(d->payload == e.payload);
  CHECK(d->encoded_bytes == bytes.size());
  CHECK(verify_event(*d));
}

// Proves a changed field changes the id and breaks the signature.
TEST_CASE("tampered events fail verification", "[node][event]") {
  auto key = identity(1);
  Event e = sample(key);
  Bytes bytes = encode(e);
  std::size_t failures = 0, decoded = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    Bytes t = bytes;
    t[i] ^= 0x01;
    auto d = decode_event(t);
    if (!d.ok()) continue;
    ++decoded;
    if (!verify_event(*d)) ++failures;
  }
  CHECK(decoded > 0);
  CHECK(failures == decoded);
}

// Proves decoding never crashes on truncations and reports an error for each.
TEST_CASE("truncated events are rejected", "[node][event]") {
  Bytes bytes = encode(sample(identity(2)));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto d = decode_event(ByteView(bytes.data(), n));
    CHECK_FALSE(d.ok());
  }
}

// Proves only the canonical form is accepted: a wider integer encoding of the same value fails.
TEST_CASE("non-canonical encodings are rejected", "[node][event]") {
  Event e = sample(identity(3));
  Bytes bytes = encode(e);
  // Re-encode depth 7 (positive fixint 0x07) as uint16 0xcd 0x00 0x07.
  codec::Writer w;
  w.array(10).uint(event_format_version).fixed(e.group).fixed(e.author);
  w.array(static_cast<std::uint32_t>(e.parents.size()));
  for (auto& p : e.parents) w.fixed(p);
  Bytes prefix = w.take();
  Bytes odd = prefix;
  odd.insert(odd.end(), {0xcd, 0x00, 0x07});
  odd.insert(odd.end(), bytes.begin() + static_cast<long>(prefix.size()) + 1, bytes.end());
  auto d = decode_event(odd);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().code() == Errc::malformed);
  // Trailing bytes are rejected too.
  Bytes trailing = bytes;
  trailing.push_back(0);
  CHECK_FALSE(decode_event(trailing).ok());
}

// Proves format 1 events (whose id hashed the payload itself, before stubs) are refused with a
// reason naming the format, so old and new events never mix; and that the signature domain
// changed with the format (a format 2 id signed under the old domain does not verify).
TEST_CASE("format 1 events are refused", "[node][event]") {
  auto key = identity(6);
  Event e = sample(key);
  Bytes bytes = encode(e);
  REQUIRE(bytes[0] == 0x9a);  // fixarray of 10
  REQUIRE(bytes[1] == event_format_version);
  bytes[1] = 1;
  auto d = decode_event(bytes);
  REQUIRE_FALSE(d.ok());
  CHECK_THAT(d.error().context(), Catch::Contains("event format 1 is not supported"));
  Event old_domain = e;
  old_domain.signature = key.sign(concat({as_bytes("qun-event-v1"), e.id.view()}));
  CHECK_FALSE(verify_event(old_domain));
  // The id commits to the payload's hash, not to its bytes in the header.
  CHECK(e.payload_hash == hash(e.payload));
  Event other = e;
  other.payload = {1, 2, 4};
  CHECK(hash(encode_header(other)) != e.id);
}

// Proves the bounds: too many parents, unsorted parents, oversized input, unknown kind.
TEST_CASE("event bounds are enforced", "[node][event]") {
  auto key = identity(4);
  Event many = sample(key, limits::parents_max + 1);
  CHECK_FALSE(decode_event(encode(many)).ok());

  Event unsorted = sample(key, 2);
  std::swap(unsorted.parents[0], unsorted.parents[1]);
  CHECK_FALSE(decode_event(encode(unsorted)).ok());

  Event big = sample(key, 1);
  big.payload.assign(limits::event_bytes_max, 0);
  CHECK(decode_event(encode(big)).error().code() == Errc::too_large);

  Bytes bytes = encode(sample(key, 1));
  Event e = *decode_event(bytes);
  e.kind = static_cast<EventKind>(event_kind_max + 1);
  CHECK_FALSE(decode_event(encode(e)).ok());

  CHECK_FALSE(decode_event(Bytes{}).ok());
  CHECK_FALSE(decode_event(Bytes{0xdd, 0xff, 0xff, 0xff, 0xff}).ok());  // array of 4G claimed
}

// Proves random bytes never crash the decoder (a small in-test fuzz; see fuzz/ for the real one).
TEST_CASE("random bytes are rejected without crashing", "[node][event]") {
  Rng rng = Rng::from_u64(99);
  Bytes valid = encode(sample(identity(5)));
  for (int i = 0; i < 2000; ++i) {
    Bytes b = valid;
    std::size_t flips = 1 + rng.uniform(8);
    for (std::size_t f = 0; f < flips; ++f) b[rng.uniform(b.size())] = static_cast<std::uint8_t>(rng.next_u64());
    if (rng.uniform(4) == 0) b.resize(rng.uniform(b.size()));
    auto d = decode_event(b);
    if (d.ok()) CHECK(encode(*d) == b);
  }
}

// Proves the group-message form of an event: 32 bytes shorter, the same id and full stored size
// after decoding with the message's group; the full form is refused inside a group message and
// the elided form outside one; a create event is the same in both forms.
TEST_CASE("events inside a group message travel without their group", "[node][event]") {
  Rng rng = Rng::from_u64(77);
  SigningKey key = SigningKey::generate(rng);
  Hash group;
  group.bytes.fill(7);
  Hash parent;
  parent.bytes.fill(9);
  Event e;
  e.group = group;
  e.author = key.public_key();
  e.parents = {parent};
  e.depth = 1;
  e.time_ms = 1'700'000'000'000;
  e.kind = EventKind::post;
  e.payload = Bytes(40, 0xab);
  sign_event(e, key);
  const Bytes full = encode(e);
  const Bytes wire = encode_for_group_message(e);
  CHECK(wire.size() + Hash::size() == full.size());
  auto back = decode_event_in(wire, group);
  REQUIRE(back.ok());
  CHECK(back->id == e.id);
  CHECK(back->group == group);
  CHECK(back->encoded_bytes == full.size());
  CHECK(verify_event(*back));
  CHECK_FALSE(decode_event_in(full, group).ok());
  CHECK_FALSE(decode_event(wire).ok());
  // Another message group gives another id, whose signature then fails.
  Hash other;
  other.bytes.fill(8);
  auto moved = decode_event_in(wire, other);
  REQUIRE(moved.ok());
  CHECK(moved->id != e.id);
  CHECK_FALSE(verify_event(*moved));
}
