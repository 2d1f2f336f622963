#include "node/payload.h"

#include "crypto/kdf.h"
#include "crypto/seal.h"
#include "base/codec.h"
#include "base/utf8.h"
#include "node/limits.h"

namespace qun {
namespace {

// Payloads are bounded by the event that carries them; entries by the member and invite caps.
const codec::DecodeLimits payload_limits{
    .bytes_max = limits::event_bytes_max,
    .array_max = limits::rekey_members_per_event,
    .bin_max = limits::event_bytes_max,
    .str_max = limits::post_text_bytes_max,
    .depth_max = limits::decode_depth_max,
};

void write_ciphertext(codec::Writer& w, const Ciphertext& c) {
  w.array(2).fixed(c.nonce).bin(c.data);
}

Result<Ciphertext> read_ciphertext(const msgpack::object& o, const char* what) {
  QUN_TRY(auto a, codec::array(o, 2, 2, what));
  Ciphertext c;
  QUN_TRY(c.nonce, codec::fixed<Nonce>(a.ptr[0], what));
  QUN_TRY(auto data, codec::bin(a.ptr[1], aead_tag_bytes, limits::event_bytes_max, what));
  c.data.assign(data.begin(), data.end());
  return c;
}

void write_entries(codec::Writer& w, const std::vector<KeyEntry>& entries) {
  w.array(static_cast<std::uint32_t>(entries.size()));
  for (const auto& e : entries) w.array(2).fixed(e.recipient).bin(e.box);
}

Result<std::vector<KeyEntry>> read_entries(const msgpack::object& o, std::size_t max,
                                           const char* what) {
  QUN_TRY(auto a, codec::array(o, 0, max, what));
  std::vector<KeyEntry> out;
  out.reserve(a.size);
  for (std::uint32_t i = 0; i < a.size; ++i) {
    QUN_TRY(auto pair, codec::array(a.ptr[i], 2, 2, what));
    KeyEntry e;
    QUN_TRY(e.recipient, codec::fixed<PublicKey>(pair.ptr[0], what));
    // A sealed 32-byte key, exactly.
    QUN_TRY(auto box, codec::bin(pair.ptr[1], 32 + seal_overhead_bytes,
                                 32 + seal_overhead_bytes, what));
    e.box.assign(box.begin(), box.end());
    out.push_back(std::move(e));
  }
  return out;
}

void write_rekey(codec::Writer& w, const RekeyPayload& p) {
  // The part count only when there are parts: a rekey that fits in one event keeps the
  // four-field form (one byte form per payload).
  w.array(p.parts > 0 ? 5 : 4);
  write_entries(w, p.members);
  write_entries(w, p.invites);
  w.fixed(p.key_check);
  if (p.replaces) {
    w.fixed(*p.replaces);
  } else {
    w.bin(ByteView());
  }
  if (p.parts > 0) w.uint(p.parts);
}

Result<RekeyPayload> read_rekey(const msgpack::object& o) {
  QUN_TRY(auto a, codec::array(o, 4, 5, "rekey"));
  RekeyPayload p;
  QUN_TRY(p.members, read_entries(a.ptr[0], limits::rekey_members_per_event, "rekey members"));
  QUN_TRY(p.invites, read_entries(a.ptr[1], limits::open_invites_max, "rekey invites"));
  QUN_TRY(p.key_check, codec::fixed<Hash>(a.ptr[2], "key check"));
  // Empty, or the id of the replaced key event.
  QUN_TRY(auto replaces, codec::bin(a.ptr[3], 0, 32, "replaces"));
  if (replaces.size() == 32) {
    Hash h;
    std::copy(replaces.begin(), replaces.end(), h.bytes.begin());
    p.replaces = h;
  } else if (!replaces.empty()) {
    return Error(Errc::malformed, "replaces is neither empty nor an event id");
  }
  if (a.size == 5) {
    // Present only when there are parts (1..rekey_parts_max).
    QUN_TRY(auto parts, codec::uint(a.ptr[4], limits::rekey_parts_max, "rekey parts"));
    if (parts == 0) return Error(Errc::malformed, "a rekey announces zero key parts");
    p.parts = static_cast<std::uint32_t>(parts);
  }
  return p;
}

Result<msgpack::object_handle> unpack(ByteView bytes) {
  return codec::unpack_strict(bytes, payload_limits);
}

}  // namespace

const char* role_name(Role role) {
  switch (role) {
    case Role::member: return "member";
    case Role::admin: return "admin";
    case Role::founder: return "founder";
    case Role::moderator: return "moderator";
  }
  return "?";
}

int role_rank(Role role) {
  switch (role) {
    case Role::member: return 0;
    case Role::moderator: return 1;
    case Role::admin: return 2;
    case Role::founder: return 3;
  }
  return 0;
}

const char* channel_op_name(ChannelOp op) {
  switch (op) {
    case ChannelOp::create: return "create";
    case ChannelOp::rename: return "rename";
    case ChannelOp::archive: return "archive";
  }
  return "?";
}

Bytes encode_payload(const CreatePayload& p) {
  codec::Writer w;
  const std::uint64_t flags = (p.settings.history_visible ? 1u : 0u) |
                              (p.settings.members_can_invite ? 2u : 0u) |
                              (p.settings.direct ? 4u : 0u);
  w.array(5).uint(flags).bin(p.founder_box).fixed(p.key_check);
  write_ciphertext(w, p.name);
  write_ciphertext(w, p.profile);
  return w.take();
}

Result<CreatePayload> decode_create(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 5, 5, "create"));
  CreatePayload p;
  QUN_TRY(auto flags, codec::uint(a.ptr[0], 7, "settings"));
  p.settings.history_visible = (flags & 1u) != 0;
  p.settings.members_can_invite = (flags & 2u) != 0;
  p.settings.direct = (flags & 4u) != 0;
  QUN_TRY(auto box, codec::bin(a.ptr[1], 32 + seal_overhead_bytes, 32 + seal_overhead_bytes,
                               "founder key"));
  p.founder_box.assign(box.begin(), box.end());
  QUN_TRY(p.key_check, codec::fixed<Hash>(a.ptr[2], "key check"));
  QUN_TRY(p.name, read_ciphertext(a.ptr[3], "name"));
  QUN_TRY(p.profile, read_ciphertext(a.ptr[4], "profile"));
  return p;
}

Bytes encode_payload(const InvitePayload& p) {
  codec::Writer w;
  w.array(4).fixed(p.invite_key).uint(p.uses_max).uint(p.expires_ms);
  write_ciphertext(w, p.bundle);
  return w.take();
}

Result<InvitePayload> decode_invite(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 4, 4, "invite"));
  InvitePayload p;
  QUN_TRY(p.invite_key, codec::fixed<PublicKey>(a.ptr[0], "invite key"));
  QUN_TRY(auto uses, codec::uint(a.ptr[1], limits::invite_uses_max, "invite uses"));
  if (uses == 0) return Error(Errc::malformed, "invite with zero uses");
  p.uses_max = static_cast<std::uint32_t>(uses);
  QUN_TRY(p.expires_ms, codec::uint(a.ptr[2], UINT64_MAX / 2, "invite expiry"));
  QUN_TRY(p.bundle, read_ciphertext(a.ptr[3], "invite bundle"));
  return p;
}

Bytes encode_payload(const JoinPayload& p) {
  codec::Writer w;
  w.array(3).fixed(p.invite).fixed(p.proof);
  write_ciphertext(w, p.profile);
  return w.take();
}

Result<JoinPayload> decode_join(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 3, 3, "join"));
  JoinPayload p;
  QUN_TRY(p.invite, codec::fixed<Hash>(a.ptr[0], "join invite"));
  QUN_TRY(p.proof, codec::fixed<Signature>(a.ptr[1], "join proof"));
  QUN_TRY(p.profile, read_ciphertext(a.ptr[2], "profile"));
  return p;
}

Bytes encode_payload(const AddPayload& p) {
  codec::Writer w;
  w.array(2).fixed(p.member).bin(p.bundle_box);
  return w.take();
}

Result<AddPayload> decode_add(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 2, 2, "add"));
  AddPayload p;
  QUN_TRY(p.member, codec::fixed<PublicKey>(a.ptr[0], "added member"));
  QUN_TRY(auto box, codec::bin(a.ptr[1], seal_overhead_bytes, limits::event_bytes_max, "bundle"));
  p.bundle_box.assign(box.begin(), box.end());
  return p;
}

Bytes encode_payload(const RemovePayload& p) {
  codec::Writer w;
  w.array(2).fixed(p.member);
  write_rekey(w, p.keys);
  return w.take();
}

Result<RemovePayload> decode_remove(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 2, 2, "remove"));
  RemovePayload p;
  QUN_TRY(p.member, codec::fixed<PublicKey>(a.ptr[0], "removed member"));
  QUN_TRY(p.keys, read_rekey(a.ptr[1]));
  return p;
}

Bytes encode_payload(const RekeyPayload& p) {
  codec::Writer w;
  write_rekey(w, p);
  return w.take();
}

Result<RekeyPayload> decode_rekey(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  return read_rekey(h.get());
}

Bytes encode_payload(const KeyPartPayload& p) {
  codec::Writer w;
  w.array(3).fixed(p.key_event).uint(p.index);
  write_entries(w, p.members);
  return w.take();
}

Result<KeyPartPayload> decode_key_part(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 3, 3, "key part"));
  KeyPartPayload p;
  QUN_TRY(p.key_event, codec::fixed<Hash>(a.ptr[0], "key event"));
  QUN_TRY(auto index, codec::uint(a.ptr[1], limits::rekey_parts_max, "key part index"));
  if (index == 0) return Error(Errc::malformed, "key part index 0 (the key event itself)");
  p.index = static_cast<std::uint32_t>(index);
  QUN_TRY(p.members, read_entries(a.ptr[2], limits::rekey_members_per_event, "key part members"));
  if (p.members.empty()) return Error(Errc::malformed, "a key part with no entries");
  return p;
}

Bytes encode_payload(const SetRolePayload& p) {
  codec::Writer w;
  w.array(2).fixed(p.member).uint(static_cast<std::uint64_t>(p.role));
  return w.take();
}

Result<SetRolePayload> decode_set_role(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 2, 2, "set-role"));
  SetRolePayload p;
  QUN_TRY(p.member, codec::fixed<PublicKey>(a.ptr[0], "member"));
  QUN_TRY(auto role, codec::uint(a.ptr[1], role_value_max, "role"));
  p.role = static_cast<Role>(role);
  return p;
}

Bytes encode_payload(const TextPayload& p) {
  codec::Writer w;
  w.array(1);
  write_ciphertext(w, p.text);
  return w.take();
}

Result<TextPayload> decode_text(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 1, 1, "text"));
  TextPayload p;
  QUN_TRY(p.text, read_ciphertext(a.ptr[0], "text"));
  return p;
}

Bytes encode_payload(const RelayPayload& p) {
  codec::Writer w;
  w.array(3).fixed(p.relay).str(p.address).uint(p.active ? 1 : 0);
  return w.take();
}

Result<RelayPayload> decode_relay(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 3, 3, "relay"));
  RelayPayload p;
  QUN_TRY(p.relay, codec::fixed<PublicKey>(a.ptr[0], "relay key"));
  QUN_TRY(p.address, codec::str(a.ptr[1], limits::address_bytes_max, "relay address"));
  QUN_TRY(auto active, codec::uint(a.ptr[2], 1, "relay active"));
  p.active = active == 1;
  // One form per meaning: an active relay has somewhere to be reached, an inactive one nothing.
  if (p.active == p.address.empty()) {
    return Error(Errc::malformed,
                 p.active ? "relay without an address" : "address on an inactive relay");
  }
  return p;
}

Bytes encode_leave_payload() {
  codec::Writer w;
  w.array(0);
  return w.take();
}

Result<void> decode_leave(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 0, 0, "leave"));
  (void)a;
  return ok_result();
}

const char* invite_close_reason_name(InviteCloseReason reason) {
  switch (reason) {
    case InviteCloseReason::revoked: return "revoked";
    case InviteCloseReason::used_up: return "used up";
    case InviteCloseReason::expired: return "expired";
  }
  return "?";
}

Bytes encode_payload(const CloseInvitePayload& p) {
  codec::Writer w;
  w.array(2).fixed(p.invite).uint(static_cast<std::uint64_t>(p.reason));
  return w.take();
}

Result<CloseInvitePayload> decode_close_invite(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 2, 2, "close-invite"));
  CloseInvitePayload p;
  QUN_TRY(p.invite, codec::fixed<Hash>(a.ptr[0], "closed invite"));
  QUN_TRY(auto reason, codec::uint(a.ptr[1], invite_close_reason_max, "close reason"));
  if (reason == 0) return Error(Errc::malformed, "close reason 0");
  p.reason = static_cast<InviteCloseReason>(reason);
  return p;
}

Result<void> check_payload(const Event& e) {
  auto drop = [](auto r) -> Result<void> {
    if (!r.ok()) return r.error();
    return ok_result();
  };
  switch (e.kind) {
    case EventKind::create: return drop(decode_create(e.payload));
    case EventKind::invite: return drop(decode_invite(e.payload));
    case EventKind::join: return drop(decode_join(e.payload));
    case EventKind::add: return drop(decode_add(e.payload));
    case EventKind::remove: return drop(decode_remove(e.payload));
    case EventKind::leave: return decode_leave(e.payload);
    case EventKind::set_role: return drop(decode_set_role(e.payload));
    case EventKind::set_name:
    case EventKind::set_topic:
    case EventKind::post: return drop(decode_text(e.payload));
    case EventKind::rekey: return drop(decode_rekey(e.payload));
    case EventKind::key_part: return drop(decode_key_part(e.payload));
    case EventKind::relay: return drop(decode_relay(e.payload));
    case EventKind::close_invite: return drop(decode_close_invite(e.payload));
    case EventKind::react:
    case EventKind::edit:
    case EventKind::del:
    case EventKind::redact:
    case EventKind::mute:
    case EventKind::channel:
    case EventKind::set_nick: return drop(decode_text(e.payload));
    case EventKind::ban: return drop(decode_ban(e.payload));
    case EventKind::set_settings: return drop(decode_settings(e.payload));
  }
  return Error(Errc::malformed, "unknown kind");
}

Bytes encode_payload(const BanPayload& p) {
  codec::Writer w;
  w.array(2).fixed(p.member).uint(p.banned ? 1 : 0);
  return w.take();
}

Result<BanPayload> decode_ban(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 2, 2, "ban"));
  BanPayload p;
  QUN_TRY(p.member, codec::fixed<PublicKey>(a.ptr[0], "banned member"));
  QUN_TRY(auto banned, codec::uint(a.ptr[1], 1, "banned"));
  p.banned = banned == 1;
  return p;
}

namespace {
std::uint64_t settings_flags(const GroupSettings& s) {
  return (s.history_visible ? 1u : 0u) | (s.members_can_invite ? 2u : 0u);
}
}  // namespace

Bytes encode_payload(const SettingsPayload& p) {
  codec::Writer w;
  w.array(1).uint(settings_flags(p.settings));
  return w.take();
}

Result<SettingsPayload> decode_settings(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 1, 1, "settings"));
  QUN_TRY(auto flags, codec::uint(a.ptr[0], 3, "settings"));
  SettingsPayload p;
  p.settings.history_visible = (flags & 1u) != 0;
  p.settings.members_can_invite = (flags & 2u) != 0;
  return p;
}

namespace {

void write_opt_hash(codec::Writer& w, const std::optional<Hash>& h) {
  if (h) {
    w.fixed(*h);
  } else {
    w.bin(ByteView());
  }
}

Result<std::optional<Hash>> read_opt_hash(const msgpack::object& o, const char* what) {
  QUN_TRY(auto b, codec::bin(o, 0, 32, what));
  if (b.empty()) return std::optional<Hash>();
  if (b.size() != 32) return Error(Errc::malformed, std::string(what) + " is neither empty nor an id");
  Hash h;
  std::copy(b.begin(), b.end(), h.bytes.begin());
  return std::optional<Hash>(h);
}

Result<std::string> read_text(const msgpack::object& o, std::size_t bytes_min,
                              std::size_t bytes_max, const char* what) {
  QUN_TRY(auto s, codec::str(o, bytes_max, what));
  if (s.size() < bytes_min) return Error(Errc::malformed, std::string(what) + " is empty");
  if (!utf8::valid(s)) return Error(Errc::malformed, std::string(what) + " is not UTF-8");
  return s;
}

}  // namespace

Bytes encode_plain(const PostPlain& p) {
  codec::Writer w;
  w.array(p.file ? 5 : 4).str(p.text);
  write_opt_hash(w, p.reply_to);
  w.fixed(p.channel).uint(p.action ? 1 : 0);
  if (p.file) write_file_ref(w, *p.file);
  return w.take();
}

Result<PostPlain> decode_post_plain(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 4, 5, "post"));
  PostPlain p;
  QUN_TRY(p.text, read_text(a.ptr[0], 0, limits::post_text_bytes_max, "post text"));
  QUN_TRY(p.reply_to, read_opt_hash(a.ptr[1], "reply-to"));
  QUN_TRY(p.channel, codec::fixed<Hash>(a.ptr[2], "channel"));
  QUN_TRY(auto flags, codec::uint(a.ptr[3], 1, "post flags"));
  p.action = flags == 1;
  if (a.size == 5) {
    QUN_TRY(auto f, read_file_ref(a.ptr[4]));
    p.file = std::move(f);
  }
  return p;
}

Bytes encode_plain(const ReactPlain& p) {
  codec::Writer w;
  w.array(3).fixed(p.target).str(p.emoji).uint(p.on ? 1 : 0);
  return w.take();
}

Result<ReactPlain> decode_react_plain(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 3, 3, "react"));
  ReactPlain p;
  QUN_TRY(p.target, codec::fixed<Hash>(a.ptr[0], "reaction target"));
  QUN_TRY(p.emoji, read_text(a.ptr[1], 1, limits::reaction_bytes_max, "emoji"));
  QUN_TRY(auto on, codec::uint(a.ptr[2], 1, "reaction on"));
  p.on = on == 1;
  return p;
}

Bytes encode_plain(const EditPlain& p) {
  codec::Writer w;
  w.array(2).fixed(p.target).str(p.text);
  return w.take();
}

Result<EditPlain> decode_edit_plain(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 2, 2, "edit"));
  EditPlain p;
  QUN_TRY(p.target, codec::fixed<Hash>(a.ptr[0], "edit target"));
  QUN_TRY(p.text, read_text(a.ptr[1], 0, limits::post_text_bytes_max, "edit text"));
  return p;
}

Bytes encode_plain(const TargetPlain& p) {
  codec::Writer w;
  w.array(1).fixed(p.target);
  return w.take();
}

Result<TargetPlain> decode_target_plain(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 1, 1, "target"));
  TargetPlain p;
  QUN_TRY(p.target, codec::fixed<Hash>(a.ptr[0], "target"));
  return p;
}

Bytes encode_plain(const MutePlain& p) {
  codec::Writer w;
  w.array(3).fixed(p.member).uint(p.duration_ms).uint(p.on ? 1 : 0);
  return w.take();
}

Result<MutePlain> decode_mute_plain(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 3, 3, "mute"));
  MutePlain p;
  QUN_TRY(p.member, codec::fixed<PublicKey>(a.ptr[0], "muted member"));
  QUN_TRY(p.duration_ms, codec::uint(a.ptr[1], limits::mute_duration_ms_max, "mute duration"));
  QUN_TRY(auto on, codec::uint(a.ptr[2], 1, "mute on"));
  p.on = on == 1;
  if (!p.on && p.duration_ms != 0) return Error(Errc::malformed, "an unmute with a duration");
  return p;
}

Bytes encode_plain(const ChannelPlain& p) {
  codec::Writer w;
  w.array(3).uint(static_cast<std::uint64_t>(p.op));
  write_opt_hash(w, p.channel);
  w.str(p.name);
  return w.take();
}

Result<ChannelPlain> decode_channel_plain(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 3, 3, "channel"));
  ChannelPlain p;
  QUN_TRY(auto op, codec::uint(a.ptr[0], channel_op_max, "channel op"));
  if (op == 0) return Error(Errc::malformed, "channel op 0");
  p.op = static_cast<ChannelOp>(op);
  QUN_TRY(p.channel, read_opt_hash(a.ptr[1], "channel"));
  QUN_TRY(p.name, read_text(a.ptr[2], 0, limits::channel_name_bytes_max, "channel name"));
  // One form per meaning: create names no channel, the others name one; archive has no name.
  if ((p.op == ChannelOp::create) == p.channel.has_value())
    return Error(Errc::malformed, "channel id on a create, or none on a rename or archive");
  if ((p.op == ChannelOp::archive) != p.name.empty())
    return Error(Errc::malformed, "a channel name on an archive, or none on a create or rename");
  return p;
}

Bytes encode_text_plain(std::string_view text) {
  codec::Writer w;
  w.array(1).str(text);
  return w.take();
}

Result<std::string> decode_text_plain(ByteView bytes, std::size_t text_bytes_max) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 1, 1, "text"));
  return codec::str(a.ptr[0], text_bytes_max, "text");
}

Bytes encode_bundle(const std::vector<BundleKey>& keys) {
  codec::Writer w;
  w.array(static_cast<std::uint32_t>(keys.size()));
  for (const auto& k : keys) w.array(3).uint(k.epoch).fixed(k.source).bin(k.key.view());
  return w.take();
}

Result<std::vector<BundleKey>> decode_bundle(ByteView bytes) {
  QUN_TRY(auto h, unpack(bytes));
  QUN_TRY(auto a, codec::array(h.get(), 0, limits::bundle_epochs_max, "bundle"));
  std::vector<BundleKey> out;
  out.reserve(a.size);
  for (std::uint32_t i = 0; i < a.size; ++i) {
    QUN_TRY(auto triple, codec::array(a.ptr[i], 3, 3, "bundle key"));
    QUN_TRY(auto epoch, codec::uint(triple.ptr[0], UINT32_MAX, "bundle epoch"));
    QUN_TRY(auto source, codec::fixed<Hash>(triple.ptr[1], "bundle source"));
    QUN_TRY(auto key, codec::bin(triple.ptr[2], 32, 32, "bundle key"));
    BundleKey k{epoch, source, SymmetricKey()};
    std::copy(key.begin(), key.end(), k.key.data());
    out.push_back(std::move(k));
  }
  return out;
}

Bytes content_ad(EventKind kind, const Hash& group, const PublicKey& author, std::uint64_t epoch) {
  const std::uint8_t kind_byte = static_cast<std::uint8_t>(kind);
  Bytes epoch_be;
  put_u64_be(epoch_be, epoch);
  return concat({as_bytes("qun-content-v1"), ByteView(&kind_byte, 1), group.view(), author.view(),
                 epoch_be});
}

Hash key_check(const SymmetricKey& key, const Hash& group, std::uint64_t epoch) {
  Bytes epoch_be;
  put_u64_be(epoch_be, epoch);
  const Bytes label = concat({as_bytes("qun key check v1"), group.view(), epoch_be});
  const SymmetricKey out =
      derive_key(key.view(), std::string_view(reinterpret_cast<const char*>(label.data()), label.size()));
  Hash h;
  std::copy(out.view().begin(), out.view().end(), h.bytes.begin());
  return h;
}

Bytes join_proof_message(const Hash& group, const PublicKey& joiner) {
  return concat({as_bytes("qun-join-v1"), group.view(), joiner.view()});
}

SigningKey invite_signing_key(const Seed& invite_secret) {
  return SigningKey::from_seed(derive_seed(invite_secret.view(), "qun invite key v1"));
}

SymmetricKey invite_bundle_key(const Seed& invite_secret) {
  return derive_key(invite_secret.view(), "qun invite bundle v1");
}

}  // namespace qun
