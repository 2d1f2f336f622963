// Payloads: the kind-specific part of an event, msgpack inside Event::payload.
//
// Each payload has a clear part, which relays and every node check (who is added or removed,
// roles, invite limits, which recipients get new keys), and encrypted parts (Ciphertext), which
// only holders of the right key can read: names, topics, posts, nicks and key bundles.
//
// Ciphertext is XChaCha20-Poly1305 under a group epoch key (or, for an invite's key bundle, a key
// derived from the invite secret), with associated data binding it to its event's group, author,
// kind and epoch, so it cannot be lifted into another event.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "crypto/aead.h"
#include "base/bytes.h"
#include "crypto/keys.h"
#include "base/result.h"
#include "node/event.h"
#include "node/file.h"

namespace qun {

// Wire values are fixed (set-role's payload); the moderator role came later, so its value is 3
// while its rank sits between member and admin. Compare roles by role_rank, never by value.
enum class Role : std::uint8_t { member = 0, admin = 1, founder = 2, moderator = 3 };
inline constexpr std::uint8_t role_value_max = 3;
const char* role_name(Role role);
// member 0 < moderator 1 < admin 2 < founder 3.
int role_rank(Role role);
inline bool at_least(Role role, Role floor) { return role_rank(role) >= role_rank(floor); }

struct Ciphertext {
  Nonce nonce;
  Bytes data;
};

// Group settings: set at creation, changed by admins (set-settings).
struct GroupSettings {
  bool history_visible = true;      // newcomers receive all earlier epoch keys
  bool members_can_invite = false;  // invites need admin rights unless this is set
  // A direct group (a DM, node/direct.h): fixed at creation (create flag bit 2), never changed
  // by set-settings; its founder adds exactly one peer and nothing else joins it.
  bool direct = false;
};

// A 32-byte epoch key sealed to one recipient: a member's X25519 key or an open invite's.
struct KeyEntry {
  PublicKey recipient;
  Bytes box;
};

struct CreatePayload {
  GroupSettings settings;
  Bytes founder_box;      // epoch-0 key sealed to the founder, so any of its devices can read
  Hash key_check;         // commitment to the epoch-0 key (key_check(), group all zero)
  Ciphertext name;        // [name] under the epoch-0 key
  Ciphertext profile;     // [nick] under the epoch-0 key
};
struct InvitePayload {
  PublicKey invite_key;   // Ed25519 key derived from the invite secret
  std::uint32_t uses_max = 1;
  std::uint64_t expires_ms = 0;  // Unix ms; a join ordered after this is refused
  Ciphertext bundle;      // epoch keys under a key derived from the invite secret
};
struct JoinPayload {
  Hash invite;            // the invite event used
  Signature proof;        // by the invite key over "qun-join-v1" || group || joiner
  Ciphertext profile;     // [nick] under the event's epoch key
};
struct AddPayload {
  PublicKey member;
  Bytes bundle_box;       // key bundle sealed to the new member
};
struct RekeyPayload {     // also the key part of a removal
  std::vector<KeyEntry> members;
  std::vector<KeyEntry> invites;
  // Commitment to the sealed key (key_check()): a recipient whose box does not open to a key
  // matching it knows the rekey is bad for it, and heals (docs/protocol.md, "Key epochs").
  Hash key_check;
  // A healing rekey names the key event it replaces (one this node could not verify), so the
  // log shows who authored the bad one. Informational: resolution does not act on it.
  std::optional<Hash> replaces;
  // Key-part events (KeyPartPayload, indexes 1..parts) carrying the member entries past the
  // first rekey_members_per_event: 0 for a group that fits in one event (then the payload has
  // four fields, as before parts existed), else 1..rekey_parts_max.
  std::uint32_t parts = 0;
};
// A key part: more member entries for the key of `key_event` (a rekey or removal by the same
// author, in the same epoch, that is one of this event's parents and announces `index`).
struct KeyPartPayload {
  Hash key_event;
  std::uint32_t index = 1;  // 1..the key event's parts
  std::vector<KeyEntry> members;  // 1..rekey_members_per_event
};
struct RemovePayload {
  PublicKey member;
  RekeyPayload keys;      // the next epoch's key for everyone else
};
struct SetRolePayload {
  PublicKey member;
  Role role = Role::member;
};
struct TextPayload {      // set-name, set-topic, post
  Ciphertext text;
};
// Why an invite closes.
enum class InviteCloseReason : std::uint8_t { revoked = 1, used_up = 2, expired = 3 };
inline constexpr std::uint8_t invite_close_reason_max = 3;
const char* invite_close_reason_name(InviteCloseReason reason);
// Closes an invite (all clear). Accepted joins of the invite that are concurrent with an
// accepted close are revoked, so no replayed or backdated join gets in after it.
struct CloseInvitePayload {
  Hash invite;            // the invite event
  InviteCloseReason reason = InviteCloseReason::revoked;
};
// Names a relay of the group (active) or stops naming it. All clear: relays read it to learn
// which groups name them, and members to find them.
struct RelayPayload {
  PublicKey relay;        // the relay node's identity
  std::string address;    // where it listens: 1..address_bytes_max bytes; empty when !active
  bool active = true;
};

// Bans (active) or unbans a member. Clear: membership is what every node, relays included,
// enforces (a banned key's joins are refused), as remove's target is clear.
struct BanPayload {
  PublicKey member;
  bool banned = true;
};
// New group settings (clear: invite rights are checked by every node, as at creation).
struct SettingsPayload {
  GroupSettings settings;
};

// Plaintexts of the conversation kinds, inside a TextPayload's ciphertext (docs/protocol.md,
// "Conversation").
struct PostPlain {
  std::string text;
  std::optional<Hash> reply_to;  // an event id of this group
  Hash channel;                  // the channel event that created it; the group id for #general
  bool action = false;           // a /me action
  // A file post (docs/protocol.md, "Files"): the file it shares; the text is its caption.
  std::optional<FileRef> file = std::nullopt;
};
struct ReactPlain {
  Hash target;        // the post
  std::string emoji;  // 1..reaction_bytes_max bytes
  bool on = true;     // false takes the reaction back
};
struct EditPlain {
  Hash target;        // the author's own post
  std::string text;
};
struct TargetPlain {  // delete, redact
  Hash target;
};
struct MutePlain {
  PublicKey member;
  std::uint64_t duration_ms = 0;  // 0: until unmuted; at most mute_duration_ms_max
  bool on = true;                 // false unmutes
};
enum class ChannelOp : std::uint8_t { create = 1, rename = 2, archive = 3 };
inline constexpr std::uint8_t channel_op_max = 3;
const char* channel_op_name(ChannelOp op);
struct ChannelPlain {
  ChannelOp op = ChannelOp::create;
  std::optional<Hash> channel;  // rename, archive: the channel; none for create
  std::string name;             // create, rename: 1..channel_name_bytes_max; archive: empty
};

// One epoch key in a key bundle.
struct BundleKey {
  std::uint64_t epoch;
  Hash source;  // the event that introduced the key (create, remove or rekey)
  SymmetricKey key;
};

Bytes encode_payload(const CreatePayload& p);
Bytes encode_payload(const InvitePayload& p);
Bytes encode_payload(const JoinPayload& p);
Bytes encode_payload(const AddPayload& p);
Bytes encode_payload(const RemovePayload& p);
Bytes encode_payload(const RekeyPayload& p);
Bytes encode_payload(const KeyPartPayload& p);
Bytes encode_payload(const SetRolePayload& p);
Bytes encode_payload(const TextPayload& p);
Bytes encode_payload(const RelayPayload& p);
Bytes encode_payload(const CloseInvitePayload& p);
Bytes encode_payload(const BanPayload& p);
Bytes encode_payload(const SettingsPayload& p);
Bytes encode_leave_payload();

// Strict decoders of peer input; Errc::malformed or Errc::too_large on anything unexpected.
[[nodiscard]] Result<CreatePayload> decode_create(ByteView bytes);
[[nodiscard]] Result<InvitePayload> decode_invite(ByteView bytes);
[[nodiscard]] Result<JoinPayload> decode_join(ByteView bytes);
[[nodiscard]] Result<AddPayload> decode_add(ByteView bytes);
[[nodiscard]] Result<RemovePayload> decode_remove(ByteView bytes);
[[nodiscard]] Result<RekeyPayload> decode_rekey(ByteView bytes);
[[nodiscard]] Result<KeyPartPayload> decode_key_part(ByteView bytes);
[[nodiscard]] Result<SetRolePayload> decode_set_role(ByteView bytes);
[[nodiscard]] Result<TextPayload> decode_text(ByteView bytes);
// Also refuses an active relay without an address, and an address on an inactive one.
[[nodiscard]] Result<RelayPayload> decode_relay(ByteView bytes);
[[nodiscard]] Result<void> decode_leave(ByteView bytes);
[[nodiscard]] Result<CloseInvitePayload> decode_close_invite(ByteView bytes);
[[nodiscard]] Result<BanPayload> decode_ban(ByteView bytes);
[[nodiscard]] Result<SettingsPayload> decode_settings(ByteView bytes);
// Checks the clear part of any event's payload (what a relay can check without keys).
[[nodiscard]] Result<void> check_payload(const Event& event);

// Plaintexts inside Ciphertext.
Bytes encode_text_plain(std::string_view text);
[[nodiscard]] Result<std::string> decode_text_plain(ByteView bytes, std::size_t text_bytes_max);
// The conversation plaintexts. Decoders are as strict as the payload decoders (exact arity,
// types and bounds) and also check that texts are UTF-8; a plaintext that fails is treated as
// unreadable, never as an error of the node.
Bytes encode_plain(const PostPlain& p);
Bytes encode_plain(const ReactPlain& p);
Bytes encode_plain(const EditPlain& p);
Bytes encode_plain(const TargetPlain& p);
Bytes encode_plain(const MutePlain& p);
Bytes encode_plain(const ChannelPlain& p);
[[nodiscard]] Result<PostPlain> decode_post_plain(ByteView bytes);
[[nodiscard]] Result<ReactPlain> decode_react_plain(ByteView bytes);
[[nodiscard]] Result<EditPlain> decode_edit_plain(ByteView bytes);
[[nodiscard]] Result<TargetPlain> decode_target_plain(ByteView bytes);
[[nodiscard]] Result<MutePlain> decode_mute_plain(ByteView bytes);
[[nodiscard]] Result<ChannelPlain> decode_channel_plain(ByteView bytes);
Bytes encode_bundle(const std::vector<BundleKey>& keys);
[[nodiscard]] Result<std::vector<BundleKey>> decode_bundle(ByteView bytes);

// Associated data for a ciphertext inside an event with these header fields.
Bytes content_ad(EventKind kind, const Hash& group, const PublicKey& author, std::uint64_t epoch);

// The commitment to an epoch key that create, remove and rekey events carry in clear: BLAKE2b
// keyed with the key over "qun key check v1" || group || epoch (u64 big-endian). For a create,
// group is all zero (its id is not known before signing). It reveals nothing of the key (a PRF
// output) and binds it to one group and epoch.
Hash key_check(const SymmetricKey& key, const Hash& group, std::uint64_t epoch);

// The join proof message and the invite key derivations from an invite secret.
Bytes join_proof_message(const Hash& group, const PublicKey& joiner);
SigningKey invite_signing_key(const Seed& invite_secret);
SymmetricKey invite_bundle_key(const Seed& invite_secret);

}  // namespace qun
