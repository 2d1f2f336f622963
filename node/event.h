// Event: one signed entry of a group's log, and its one canonical encoding.
//
// Encoding (msgpack, shortest forms, so it is canonical):
//   [format=2, group, author, parents, depth, time_ms, kind, epoch, payload, signature]
// group is 32 bytes, or empty for a create event (whose own id is the group id); author is an
// Ed25519 public key; parents are the ids of the heads the author had seen, strictly ascending,
// 1..parents_max of them (none for create); depth is 1 + the largest parent depth (0 for create);
// time_ms is the author's clock (Unix ms); payload is the kind's own msgpack (payload.h).
//
// The id commits to the payload by its hash: it is BLAKE2b-256 of the header, the first nine
// fields with the payload replaced by BLAKE2b-256(payload), encoded as a 9-element array; the
// signature is Ed25519 over "qun-event-v2" || id. So a node may drop the payload of an event
// whose kind allows it (payload_droppable: posts and edits) and keep a stub, the same ten fields with
// the payload field written as [payload hash] (a one-element array): the stub has the same id,
// still verifies, and takes the event's place in the DAG, the order and the authorisation,
// which never read a droppable payload. Format 1 (whose id hashed the payload itself) is
// refused, so old and new events never mix. Decoding re-encodes and compares, so each event
// (and each stub) has exactly one byte form and one id.
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
  // The conversation layer (docs/protocol.md, "Conversation"): encrypted like posts, so relays
  // and outsiders learn only the kind, except ban and set-settings, which change what every
  // node (relays too) enforces and are clear like remove and set-role.
  react = 14,         // adds or takes back an emoji reaction on a post
  edit = 15,          // a new version of the author's own post
  del = 16,           // deletes the author's own post (a tombstone stays)
  redact = 17,        // a moderator deletes anyone's post
  mute = 18,          // a moderator mutes (or unmutes) a member for a duration
  channel = 19,       // an admin creates, renames or archives a channel
  ban = 20,           // an admin bans (removes, refuses later joins) or unbans a member
  set_nick = 21,      // the author's nick in this group
  set_settings = 22,  // an admin changes the group settings (history, who may invite)
  key_part = 23,      // more member entries of a rekey or removal too large for one event
};
inline constexpr std::uint8_t event_kind_max = 23;
const char* event_kind_name(EventKind kind);

inline constexpr std::uint64_t event_format_version = 2;

// Kinds whose payload a node may drop, keeping a stub (see above): those whose payload nothing
// but the reader needs. Admission, resolution and authoring never read their payload, so a stub
// and the full event are admitted alike by every node.
bool payload_droppable(EventKind kind);

struct Event {
  Hash group;                 // all zero for create
  PublicKey author;
  std::vector<Hash> parents;  // strictly ascending
  std::uint64_t depth = 0;
  std::uint64_t time_ms = 0;
  EventKind kind = EventKind::post;
  std::uint64_t epoch = 0;
  Bytes payload;              // empty in a stub
  Signature signature;
  // A stub: the payload was dropped (by this node or the one we got the event from); only its
  // hash is left. Only for payload_droppable kinds.
  bool payload_dropped = false;
  Hash payload_hash;          // BLAKE2b-256 of the payload; set by sign_event, decode, drop_payload

  Hash id;                    // derived: BLAKE2b-256 of the header; set by sign_event or decode
  std::size_t encoded_bytes = 0;  // derived: size of encode(*this)

  // The group this event belongs to: its own id for create.
  const Hash& group_id() const { return kind == EventKind::create ? id : group; }
};

// The header bytes the id hashes: the first nine fields, the payload replaced by its hash.
Bytes encode_header(const Event& event);
// The full canonical encoding (a stub's, for a stub).
Bytes encode(const Event& event);
// The event as a stub: its payload dropped, its hash kept; same id and signature. The event
// must be of a payload_droppable kind; a stub stays a stub.
Event make_stub(const Event& event);
// What the event takes stored: the size of its encoding (a stub's, for a stub).
std::uint64_t event_stored_bytes(const Event& event);
// What the event's stub takes stored (event_stored_bytes of make_stub(event)), without making
// it; for a stub, its own size.
std::uint64_t stub_stored_bytes(const Event& event);
// Computes the id, signs, and fills id and encoded_bytes. Parents must already be sorted.
void sign_event(Event& event, const SigningKey& key);
// Strict decode: bounds from limits.h, exact types, canonical form, ascending parents, kind in
// range, a stub only for a payload_droppable kind. Does not verify the signature (see verify_event) so callers can batch or skip it for
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
