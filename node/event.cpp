#include "node/event.h"

#include <algorithm>

#include "base/codec.h"
#include "node/limits.h"

namespace qun {
namespace {

// Format 2: ids commit to the payload by hash (event.h). The domain changed with the format, so
// a signature over a format 1 id never verifies as one over a format 2 id.
constexpr std::string_view signature_domain = "qun-event-v2";

// The payload's hash as the header commits to it: computed for a full event, kept for a stub.
Hash payload_hash_of(const Event& e) { return e.payload_dropped ? e.payload_hash : hash(e.payload); }

// The fields before the payload. elide_group: the wire form inside an Events message, which
// names the group once (the field is written empty, as for create, and decode_event_in puts the
// group back).
void write_leading_fields(codec::Writer& w, const Event& e, bool elide_group) {
  w.uint(event_format_version);
  if (e.kind == EventKind::create || elide_group) {
    w.bin(ByteView());
  } else {
    w.fixed(e.group);
  }
  w.fixed(e.author);
  w.array(static_cast<std::uint32_t>(e.parents.size()));
  for (const auto& p : e.parents) w.fixed(p);
  w.uint(e.depth).uint(e.time_ms).uint(static_cast<std::uint64_t>(e.kind)).uint(e.epoch);
}

// The ten fields of the full or stub form.
void write_event(codec::Writer& w, const Event& e, bool elide_group) {
  w.array(10);
  write_leading_fields(w, e, elide_group);
  if (e.payload_dropped) {
    w.array(1).fixed(e.payload_hash);
  } else {
    w.bin(e.payload);
  }
  w.fixed(e.signature);
}

Bytes signed_message(const Hash& id) { return concat({as_bytes(signature_domain), id.view()}); }

}  // namespace

const char* event_kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::create: return "create";
    case EventKind::invite: return "invite";
    case EventKind::join: return "join";
    case EventKind::add: return "add";
    case EventKind::remove: return "remove";
    case EventKind::leave: return "leave";
    case EventKind::set_role: return "set-role";
    case EventKind::set_name: return "set-name";
    case EventKind::set_topic: return "set-topic";
    case EventKind::rekey: return "rekey";
    case EventKind::post: return "post";
    case EventKind::relay: return "relay";
    case EventKind::close_invite: return "close-invite";
    case EventKind::react: return "react";
    case EventKind::edit: return "edit";
    case EventKind::del: return "delete";
    case EventKind::redact: return "redact";
    case EventKind::mute: return "mute";
    case EventKind::channel: return "channel";
    case EventKind::ban: return "ban";
    case EventKind::set_nick: return "set-nick";
    case EventKind::set_settings: return "set-settings";
    case EventKind::key_part: return "key-part";
  }
  return "unknown";
}

// Posts and edits carry the group's content (text up to post_text_bytes_max); the other kinds
// carry keys, membership or the conversation's small decisions (reactions, deletions, mutes),
// which readers need to agree on.
bool payload_droppable(EventKind kind) { return kind == EventKind::post || kind == EventKind::edit; }

Bytes encode_header(const Event& event) {
  codec::Writer w;
  w.array(9);
  write_leading_fields(w, event, false);
  w.fixed(payload_hash_of(event));
  return w.take();
}

Bytes encode(const Event& event) {
  codec::Writer w;
  write_event(w, event, false);
  return w.take();
}

std::uint64_t event_stored_bytes(const Event& event) {
  return event.encoded_bytes != 0 ? event.encoded_bytes : encode(event).size();
}

std::uint64_t stub_stored_bytes(const Event& event) {
  if (event.payload_dropped) return event_stored_bytes(event);
  // The payload field as a bin (its msgpack header, then the bytes) gives way to
  // [payload hash]: a fixarray byte, then a bin 8 header (2 bytes) and 32 bytes.
  const std::uint64_t n = event.payload.size();
  const std::uint64_t bin_header = n < 256 ? 2 : n < 65536 ? 3 : 5;
  return event_stored_bytes(event) - bin_header - n + 1 + 2 + Hash::size();
}

Event make_stub(const Event& event) {
  assert(payload_droppable(event.kind));
  Event stub;
  stub.group = event.group;
  stub.author = event.author;
  stub.parents = event.parents;
  stub.depth = event.depth;
  stub.time_ms = event.time_ms;
  stub.kind = event.kind;
  stub.epoch = event.epoch;
  stub.signature = event.signature;
  stub.payload_hash = payload_hash_of(event);
  stub.payload_dropped = true;
  stub.id = event.id;
  stub.encoded_bytes = encode(stub).size();
  return stub;
}

void sign_event(Event& event, const SigningKey& key) {
  assert(std::is_sorted(event.parents.begin(), event.parents.end()));
  assert(key.public_key() == event.author);
  assert(!event.payload_dropped);
  event.payload_hash = hash(event.payload);
  event.id = hash(encode_header(event));
  event.signature = key.sign(signed_message(event.id));
  event.encoded_bytes = encode(event).size();
}

bool verify_event(const Event& event) {
  return verify(event.author, signed_message(event.id), event.signature);
}

Bytes encode_for_group_message(const Event& event) {
  codec::Writer w;
  write_event(w, event, true);
  return w.take();
}

namespace {

Result<Event> decode_event_impl(ByteView bytes, const Hash* message_group) {
  const codec::DecodeLimits decode_limits{
      .bytes_max = limits::event_bytes_max,
      .array_max = std::max<std::size_t>(10, limits::parents_max),
      .bin_max = limits::event_bytes_max,
      .str_max = 0,
      .depth_max = 2,
  };
  QUN_TRY(auto handle, codec::unpack_strict(bytes, decode_limits));
  QUN_TRY(auto fields, codec::array(handle.get(), 10, 10, "event"));
  QUN_TRY(auto format, codec::uint(fields.ptr[0], 255, "format"));
  if (format != event_format_version) {
    return Error(Errc::malformed, "event format " + std::to_string(format) + " is not supported");
  }
  Event e;
  QUN_TRY(auto kind, codec::uint(fields.ptr[6], event_kind_max, "kind"));
  if (kind == 0) return Error(Errc::malformed, "kind 0");
  e.kind = static_cast<EventKind>(kind);
  if (e.kind == EventKind::create || message_group) {
    QUN_TRY(auto empty, codec::bin(fields.ptr[1], 0, 0,
                                   message_group ? "group of an event in a group message" : "group of create"));
    (void)empty;
    if (e.kind != EventKind::create) e.group = *message_group;
  } else {
    QUN_TRY(e.group, codec::fixed<Hash>(fields.ptr[1], "group"));
  }
  QUN_TRY(e.author, codec::fixed<PublicKey>(fields.ptr[2], "author"));
  const std::size_t parents_min = e.kind == EventKind::create ? 0 : 1;
  const std::size_t parents_cap = e.kind == EventKind::create ? 0 : limits::parents_max;
  QUN_TRY(auto parents, codec::array(fields.ptr[3], parents_min, parents_cap, "parents"));
  e.parents.reserve(parents.size);
  for (std::uint32_t i = 0; i < parents.size; ++i) {
    QUN_TRY(auto p, codec::fixed<Hash>(parents.ptr[i], "parent"));
    if (!e.parents.empty() && !(e.parents.back() < p)) {
      return Error(Errc::malformed, "parents not strictly ascending");
    }
    e.parents.push_back(p);
  }
  QUN_TRY(e.depth, codec::uint(fields.ptr[4], UINT64_MAX / 2, "depth"));
  if ((e.kind == EventKind::create) != (e.depth == 0)) {
    return Error(Errc::malformed, "depth 0 is for create events only");
  }
  QUN_TRY(e.time_ms, codec::uint(fields.ptr[5], UINT64_MAX / 2, "time"));
  QUN_TRY(e.epoch, codec::uint(fields.ptr[7], UINT32_MAX, "epoch"));
  if (fields.ptr[8].type == msgpack::type::ARRAY) {
    // A stub: [payload hash].
    if (!payload_droppable(e.kind)) {
      return Error(Errc::malformed, std::string("a ") + event_kind_name(e.kind) +
                                        " event cannot have its payload dropped");
    }
    QUN_TRY(auto stub, codec::array(fields.ptr[8], 1, 1, "stub"));
    QUN_TRY(e.payload_hash, codec::fixed<Hash>(stub.ptr[0], "payload hash"));
    e.payload_dropped = true;
  } else {
    QUN_TRY(auto payload, codec::bin(fields.ptr[8], 0, limits::event_bytes_max, "payload"));
    e.payload.assign(payload.begin(), payload.end());
    e.payload_hash = hash(e.payload);
  }
  QUN_TRY(e.signature, codec::fixed<Signature>(fields.ptr[9], "signature"));

  // Canonical form: the only accepted bytes are the ones we would write ourselves.
  Bytes canonical = message_group ? encode_for_group_message(e) : encode(e);
  if (canonical.size() != bytes.size() ||
      !std::equal(canonical.begin(), canonical.end(), bytes.begin())) {
    return Error(Errc::malformed, "not in canonical form");
  }
  e.id = hash(encode_header(e));
  // The stored (full) size: the group field takes Hash::size() bytes more than the empty one.
  e.encoded_bytes = bytes.size() + (message_group && e.kind != EventKind::create ? Hash::size() : 0);
  return e;
}

}  // namespace

Result<Event> decode_event(ByteView bytes) { return decode_event_impl(bytes, nullptr); }

Result<Event> decode_event_in(ByteView bytes, const Hash& group) {
  return decode_event_impl(bytes, &group);
}

}  // namespace qun
