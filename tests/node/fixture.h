// Shared helpers for node tests: identities from fixed seeds and a replica per member.
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/rng.h"
#include "crypto/seal.h"
#include "node/replica.h"

namespace qun::test {

inline SigningKey identity(std::uint64_t n) {
  Rng rng = Rng::from_u64(0x1d000000 + n);
  return SigningKey::generate(rng);
}

// A member: an identity, its replica of one group and its own Rng.
struct Peer {
  explicit Peer(std::uint64_t n) : key(identity(n)), rng(Rng::from_u64(0xbee0000 + n)) {}
  SigningKey key;
  Rng rng;
  std::unique_ptr<Replica> replica;
  Authoring at(std::uint64_t now_ms) { return Authoring{key, rng, now_ms}; }
};

template <typename T>
T must(Result<T> r) {
  if (!r.ok()) FAIL("unexpected error: " << r.error().message());
  return std::move(r).value();
}

// The one event of a removal or rekey in a group small enough for one key event (no key parts).
inline Event single(std::vector<Event> events) {
  REQUIRE(events.size() == 1);
  return std::move(events.front());
}

// Every event of `from`'s replica, in order.
inline std::vector<Event> all_events(const Replica& from) {
  std::vector<Event> out;
  for (const auto* rec : from.group().ordered()) out.push_back(rec->event);
  return out;
}

// A post by `author` in `group` whose parent does not exist (so it can only wait), carrying
// `junk_bytes` of ciphertext: what a stranger who knows the group id can make. `n` varies it.
inline Event orphan_post(const SigningKey& author, const Hash& group, std::uint64_t n,
                         std::size_t junk_bytes = 64) {
  Event e;
  e.group = group;
  e.author = author.public_key();
  e.parents = {hash(as_bytes("no such parent " + std::to_string(n)))};
  e.depth = 1;
  e.time_ms = n;
  e.kind = EventKind::post;
  TextPayload p;
  p.text.data.assign(std::max<std::size_t>(junk_bytes, 16), static_cast<std::uint8_t>(n));
  e.payload = encode_payload(p);
  sign_event(e, author);
  return e;
}

// Sends everything `from` has to `to` (like a full sync).
inline void sync(const Replica& from, Replica& to) { to.ingest(all_events(from)); }

inline Bytes sealed_to(const PublicKey& who, ByteView plain, Rng& rng) {
  return seal(to_x25519(who).value(), plain, rng);
}

// A rekey at the next epoch signed by `author` at `now_ms`, committing to a fresh key K, where
// box(member, K) picks what each member's entry holds (nullopt: no entry). A bad rekeyer's tool:
// junk boxes, boxes for some members only, or a different key per member.
using BoxMaker = std::function<std::optional<Bytes>(const PublicKey&, const SymmetricKey&)>;
inline Event crafted_rekey(Peer& author, std::uint64_t now_ms, const BoxMaker& box) {
  const Replica& r = *author.replica;
  const SymmetricKey key = random_key(author.rng);
  const std::uint64_t epoch = r.state().epoch + 1;
  RekeyPayload p;
  p.key_check = key_check(key, r.id(), epoch);
  for (const auto& [id, m] : r.state().members) {
    if (auto b = box(id, key)) p.members.push_back({id, *b});
  }
  Event e;
  e.group = r.id();
  e.author = author.key.public_key();
  e.parents = r.group().next_parents();
  e.depth = r.group().next_depth(e.parents);
  e.time_ms = now_ms;
  e.kind = EventKind::rekey;
  e.epoch = epoch;
  e.payload = encode_payload(p);
  sign_event(e, author.key);
  return e;
}

// An event of `kind` by `author` carrying `plain` under the current epoch key, with the given
// parents (default: the author's heads) and time, skipping every check Replica makes before
// authoring: what a modified client can send. Clear kinds take `payload` as is.
inline Event crafted(Peer& author, std::uint64_t now_ms, EventKind kind, const Bytes& plain,
                     std::optional<std::vector<Hash>> parents = std::nullopt,
                     bool clear = false) {
  const Replica& r = *author.replica;
  const auto& s = r.state();
  Event e;
  e.group = r.id();
  e.author = author.key.public_key();
  e.parents = parents.value_or(r.group().next_parents());
  e.depth = r.group().next_depth(e.parents);
  e.time_ms = now_ms;
  e.kind = kind;
  e.epoch = s.epoch;
  if (clear) {
    e.payload = plain;
  } else {
    const SymmetricKey* key = r.keyring().find(s.epoch, *s.current_key_event);
    REQUIRE(key);
    TextPayload p;
    p.text.nonce = random_nonce(author.rng);
    p.text.data = aead_encrypt(*key, p.text.nonce, content_ad(kind, r.id(), e.author, e.epoch), plain);
    e.payload = encode_payload(p);
  }
  sign_event(e, author.key);
  return e;
}

}  // namespace qun::test
