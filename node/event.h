// Event: one signed entry of a group's log, and its one canonical encoding.
//
// Encoding (msgpack, shortest forms, so it is canonical):
//   [format=1, group, author, parents, depth, time_ms, kind, epoch, payload, signature]
// group is 32 bytes, or empty for a create event (whose own id is the group id); author is an
// Ed25519 public key; parents are the ids of the heads the author had seen, strictly ascending,
// 1..parents_max of them (none for create); depth is 1 + the largest parent depth (0 for create);
// time_ms is the author's clock (Unix ms); payload is the kind's own msgpack (payload.h).
// The id is BLAKE2b-256 of the first nine fields encoded as a 9-element array (the body); the
// signature is Ed25519 over "qun-event-v1" || id. Decoding re-encodes and compares, so each
// event has exactly one byte form and one id.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "base/result.h"

namespace qun {

enum class EventKind : std::uint8_t {
  create = 1,
  invite = 2,
  join = 3,
  add = 4,
  remove = 5,
  leave = 6,
  set_role = 7,
  set_name = 8,
  set_topic = 9,
  rekey = 10,
  post = 11,
  relay = 12,  // names (or un-names) a relay that stores and forwards the group
  close_invite = 13,  // closes an invite: revoked, used up or expired
};
inline constexpr std::uint8_t event_kind_max = 13;
const char* event_kind_name(EventKind kind);

inline constexpr std::uint64_t event_format_version = 1;

struct Event {
  Hash group;                 // all zero for create
  PublicKey author;
  std::vector<Hash> parents;  // strictly ascending
  std::uint64_t depth = 0;
  std::uint64_t time_ms = 0;
  EventKind kind = EventKind::post;
  std::uint64_t epoch = 0;
  Bytes payload;
  Signature signature;

  Hash id;                    // derived: BLAKE2b-256 of the body; set by sign_event or decode
  std::size_t encoded_bytes = 0;  // derived: size of encode(*this)

  // The group this event belongs to: its own id for create.
  const Hash& group_id() const { return kind == EventKind::create ? id : group; }
};

// The body bytes the id hashes (first nine fields).
Bytes encode_body(const Event& event);
// The full canonical encoding.
Bytes encode(const Event& event);
// Computes the id, signs, and fills id and encoded_bytes. Parents must already be sorted.
void sign_event(Event& event, const SigningKey& key);
// Strict decode: bounds from limits.h, exact types, canonical form, ascending parents, kind in
// range. Does not verify the signature (see verify_event) so callers can batch or skip it for
// events read back from their own store. Errors: Errc::too_large, Errc::malformed.
[[nodiscard]] Result<Event> decode_event(ByteView bytes);
// The wire form of an event inside a group's Events message, which names the group once: the
// group field is written empty (as in a create event), saving 32 bytes per event copy. The id,
// the signature and the stored form are those of the full event.
Bytes encode_for_group_message(const Event& event);
// Strict decode of that form: as decode_event, with the group field empty and taken from the
// message. A create event is the same in both forms (its group is its own id).
[[nodiscard]] Result<Event> decode_event_in(ByteView bytes, const Hash& group);
// True when the signature is the author's over the event id.
[[nodiscard]] bool verify_event(const Event& event);

}  // namespace qun
