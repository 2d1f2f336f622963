// Fuzzes a member's replica ingesting peer events on top of a small valid group.
//
// Input layout:
//   byte 0             how many fixture events to ingest first (modulo their count + 1)
//   then chunks of     [length: u16 little-endian][flags: u8][length bytes: one encoded event]
// Each chunk is decoded with decode_event; what decodes is ingested. Since a fuzzer cannot forge
// Ed25519 signatures, flags can make the harness re-sign a decoded event with one of the
// fixture's keys (after optionally pointing it at this group, the current heads and epoch), so
// mutated events reach admission and resolution instead of stopping at "bad signature":
//   bits 0-2  0: keep as is; k: re-sign as fixture key (k - 1) mod keys
//   bit 3     set the group to this group (non-create events)
//   bit 4     set parents and depth to the replica's next_parents / next_depth
//   bit 5     set the epoch to the replica's current epoch
//   bit 6     ingest the events gathered so far now (else they go in one batch at the end)
//   bit 7     ingest that batch twice (duplicates)
// Properties: nothing crashes or trips an assertion; every reader works afterwards; and a relay
// given the same admitted events in reverse order resolves the same history (determinism).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "crypto/secret.h"
#include "fuzz/fixture.h"
#include "node/replica.h"

using namespace qun;

namespace {

const fuzz::Fixture* fixture = nullptr;

// Bounds one input's cost: a chunk is at most an event, and at most this many per input.
constexpr std::size_t chunks_max = 64;

void ingest(Replica& r, std::vector<Event>& batch, bool twice) {
  if (batch.empty()) return;
  if (twice) (void)r.ingest(batch);
  (void)r.ingest(std::move(batch));
  batch.clear();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  crypto_init();
  static const fuzz::Fixture built = fuzz::build_fixture();
  fixture = &built;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const fuzz::Fixture& f = *fixture;
  // keys[1] is a member who joined with codes[0]; holding the invite lets it open epoch keys.
  Replica replica(f.group, &f.keys[1]);
  replica.hold_invite(f.codes[0]);
  const std::size_t base = data[0] % (f.events.size() + 1);
  (void)replica.ingest(std::vector<Event>(f.events.begin(), f.events.begin() + base));

  std::size_t at = 1;
  std::size_t chunks = 0;
  std::vector<Event> batch;
  while (size - at >= 3 && chunks++ < chunks_max) {
    const std::size_t length = std::min<std::size_t>(data[at] | (data[at + 1] << 8), size - at - 3);
    const std::uint8_t flags = data[at + 2];
    const ByteView bytes(data + at + 3, length);
    at += 3 + length;
    auto decoded = decode_event(bytes);
    if (!decoded.ok()) continue;
    Event e = std::move(decoded).value();
    if (const unsigned signer = flags & 0x07; signer != 0) {
      const SigningKey& key = f.keys[(signer - 1) % f.keys.size()];
      if ((flags & 0x08) && e.kind != EventKind::create) e.group = f.group;
      if ((flags & 0x10) && e.kind != EventKind::create && !replica.group().heads().empty()) {
        e.parents = replica.group().next_parents();
        e.depth = replica.group().next_depth(e.parents);
      }
      if (flags & 0x20) e.epoch = replica.state().epoch;
      e.author = key.public_key();
      sign_event(e, key);
      // Only canonical, bounded events travel: go through the codec as a peer's would.
      auto again = decode_event(encode(e));
      if (!again.ok()) continue;
      e = std::move(again).value();
    }
    batch.push_back(std::move(e));
    if (flags & 0x40) ingest(replica, batch, flags & 0x80);
  }
  ingest(replica, batch, false);

  // Every reader must cope with whatever was admitted.
  const auto history = replica.history();
  fuzz::check(history.size() == replica.state().history.size(), "history size");
  (void)replica.name();
  (void)replica.topic();
  for (const auto& k : f.keys) (void)replica.nick(k.public_key());
  (void)replica.group().missing();
  if (!replica.group().heads().empty()) {
    auto parents = replica.group().next_parents();
    (void)replica.group().next_depth(parents);
  }

  // Determinism: the same admitted events, newest first, give the same resolved history.
  std::vector<Event> admitted;
  for (const auto* rec : replica.group().ordered()) admitted.push_back(rec->event);
  std::reverse(admitted.begin(), admitted.end());
  Replica relay(f.group, nullptr);
  (void)relay.ingest(std::move(admitted));
  fuzz::check(relay.group().size() == replica.group().size(), "relay admitted a different set");
  fuzz::check(relay.state().history == replica.state().history,
              "resolution depends on arrival order");
  return 0;
}
