// Replica: one group as one node holds it: the Group (log and resolved state), the epoch keys
// this node can open, and the operations a member performs (post, invite, join, remove, ...).
//
// A replica with an identity is a member's; one without (self == nullptr) is a relay's: it
// admits, resolves, stores and forwards the same events but holds no key and reads nothing.
//
// Sans-IO like Group: authoring takes the author's clock and an Rng from the caller. Every
// authoring call signs the new event, ingests it locally and returns it for the caller to store
// and send; a call that fails changes nothing.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "crypto/rng.h"
#include "node/conversation.h"
#include "node/group.h"
#include "node/invite.h"

namespace qun {

// Epoch keys one node holds for one group, by epoch and by the event that introduced each.
class Keyring {
 public:
  // Returns true when the key is new.
  bool add(std::uint64_t epoch, const Hash& source, const SymmetricKey& key);
  const SymmetricKey* find(std::uint64_t epoch, const Hash& source) const;
  std::vector<const SymmetricKey*> for_epoch(std::uint64_t epoch) const;
  // Every key, newest epochs first, at most `epochs_max` epochs.
  std::vector<BundleKey> bundle(std::size_t epochs_max) const;
  std::size_t size() const;

 private:
  std::map<std::uint64_t, std::map<Hash, SymmetricKey>> keys_;
};

struct Authoring {
  const SigningKey& key;
  Rng& rng;
  std::uint64_t now_ms;  // the author's Unix-ms clock
};

// A readable entry of the history.
struct Message {
  Hash id;
  PublicKey author;
  std::uint64_t time_ms = 0;
  std::uint64_t order_key = 0;
  EventKind kind = EventKind::post;
  std::optional<PublicKey> target;  // add, remove, set-role; relay: the relay's identity
  Role role = Role::member;         // set-role
  // post, set-name, set-topic: nullopt if this node lacks the key. relay: the relay's address
  // (clear, so every node has it; empty when the relay is un-named).
  std::optional<std::string> text;
  // post: false when this node holds only the post's stub (its payload was dropped, by a relay
  // over its byte bound or by this node): text is then nullopt for every reader.
  bool stored = true;
  bool relay_active = false;        // relay: named (true) or un-named (false)
  // remove, rekey: the key event a healing rekey replaces (who authored a bad rekey).
  std::optional<Hash> replaces;
  // close-invite: the invite it closes and why; join: the invite it used.
  std::optional<Hash> invite;
  std::optional<InviteCloseReason> close_reason;
  // The conversation kinds, as this event says (whether it took effect: Conversation).
  // react, edit, delete, redact: the post; channel: the channel renamed or archived.
  // (text: the emoji of a react, the new text of an edit, a channel's name, a set-nick's nick;
  // target: the member of a mute or ban.)
  std::optional<Hash> target_event;
  std::optional<Hash> reply_to;     // post
  std::optional<Hash> channel;      // post: its channel (the group id for #general)
  bool action = false;              // post: a /me action
  std::optional<FileRef> file;      // post: the file it shares (a file post)
  bool on = true;                   // react/unreact, mute/unmute, ban/unban
  std::uint64_t duration_ms = 0;    // mute: 0 until unmuted
  std::optional<ChannelOp> channel_op;
  std::optional<GroupSettings> settings;  // set-settings
};

// What a post says besides its text (docs/protocol.md, "Conversation").
struct PostOptions {
  std::optional<Hash> reply_to;  // a post of this group
  std::optional<Hash> channel;   // none: #general
  bool action = false;           // a /me action
  std::optional<FileRef> file = std::nullopt;  // a file post: the file it shares (node/file.h)
};

class Replica {
 public:
  Replica(const Hash& group, const SigningKey* self);
  // Move-only: it holds secrets. (Declared, so containers move it even where the move may throw.)
  Replica(Replica&&) = default;
  Replica& operator=(Replica&&) = default;
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // A new group: its create event (already ingested) is the first entry of the returned replica.
  [[nodiscard]] static Result<Replica> create_group(Authoring a, std::string_view name,
                                                    std::string_view nick,
                                                    const GroupSettings& settings);

  // A direct group (node/direct.h) between the author and `peer`: its create (name "direct")
  // and the add that seals the key to `peer`, both ingested. Errors as create_group, and
  // invalid_argument when `peer` is the author.
  [[nodiscard]] static Result<Replica> create_direct(Authoring a, std::string_view nick,
                                                     const PublicKey& peer);

  // A copy of this replica's history for another node `self` (null for a relay), as if that
  // node had ingested every admitted event: same Group, and the keys sealed to `self` opened.
  // It skips signature checks (the events were verified when this replica admitted them), so
  // it is only for a process that holds both replicas: the simulator and benchmarks build large
  // groups with it (1,000 replicas ingesting 1,000 events is 10^6 signature checks). It copies
  // no keys this replica holds and no invite secrets; pending events are copied and admitted
  // (with every check) when their parents arrive, as in the original.
  [[nodiscard]] Replica clone_for(const SigningKey* self) const;

  const Hash& id() const { return group_.id(); }
  const Group& group() const { return group_; }
  const GroupState& state() const { return group_.state(); }
  const Keyring& keyring() const { return keys_; }

  // Ingests events from a peer (`from`), the store or this node (none), then opens any keys
  // sealed to this node. Pending events remember `from` (Group::drop_pending_from).
  //
  // A member's replica then drops the payloads of posts the conversation removed (deleted by
  // their author or redacted by a moderator) and of the edits naming them, keeping their stubs
  // (docs/protocol.md, "Conversation"): their text is gone from this node, not merely hidden.
  // Those drops are in the report's payloads_dropped, for the caller to persist; a relay holds
  // no key, cannot tell what a redaction names, and drops nothing here.
  // `signatures`: Signatures::verified when the caller checked them all (node/group.h).
  IngestReport ingest(std::vector<Event> events, std::optional<PublicKey> from = std::nullopt,
                      Signatures signatures = Signatures::check);
  // Payloads dropped by authoring calls (an own delete or redaction drops its post's payload at
  // once), since the last call: the caller persists them with the authored events.
  std::vector<Hash> take_payloads_dropped() { return std::exchange(dropped_, {}); }
  IngestReport drop_pending_from(const std::optional<PublicKey>& from) {
    return group_.drop_pending_from(from);
  }
  IngestReport trim_pending(std::uint64_t bytes_max) { return group_.trim_pending(bytes_max); }
  // Drops the payload of an admitted event of a payload_droppable kind (a post), keeping its
  // stub (Group::drop_payload). Returns the report to persist, whose payloads_dropped names the
  // event, or an empty report when there was nothing to drop.
  IngestReport drop_payload(const Hash& id);
  // Restores keys this node stored earlier (the store keeps them, encrypted at rest).
  void restore_key(std::uint64_t epoch, const Hash& source, const SymmetricKey& key);
  // Keys learned since the last call, for the caller to persist.
  std::vector<BundleKey> take_new_keys();

  // Authoring. Each returns the events to store and send, oldest first. Posting first rekeys
  // when the current key reached someone who is no longer a member.
  [[nodiscard]] Result<std::vector<Event>> post(Authoring a, std::string_view text);
  // The conversation layer (docs/protocol.md, "Conversation"). Each checks what the fold will
  // decide and refuses at once with a sentence saying why (Errc::not_found: no such post,
  // channel or member; Errc::unauthorized: not yours, not allowed, muted; invalid_argument: a
  // bad text, emoji, name or duration), and, like post, may rekey first.
  [[nodiscard]] Result<std::vector<Event>> post(Authoring a, std::string_view text,
                                                const PostOptions& options);
  [[nodiscard]] Result<std::vector<Event>> react(Authoring a, const Hash& post,
                                                 std::string_view emoji, bool on);
  [[nodiscard]] Result<std::vector<Event>> edit(Authoring a, const Hash& post,
                                                std::string_view text);
  // Deletes one's own post, or redacts anyone's as a moderator or admin.
  [[nodiscard]] Result<std::vector<Event>> delete_post(Authoring a, const Hash& post);
  // duration_ms 0: until unmuted; at most limits::mute_duration_ms_max.
  [[nodiscard]] Result<std::vector<Event>> mute(Authoring a, const PublicKey& member,
                                                std::uint64_t duration_ms);
  [[nodiscard]] Result<std::vector<Event>> unmute(Authoring a, const PublicKey& member);
  [[nodiscard]] Result<std::vector<Event>> create_channel(Authoring a, std::string_view name);
  [[nodiscard]] Result<std::vector<Event>> rename_channel(Authoring a, const Hash& channel,
                                                          std::string_view name);
  [[nodiscard]] Result<std::vector<Event>> archive_channel(Authoring a, const Hash& channel);
  // Bans `member` (a member is removed, and the new epoch's rekey follows the ban) or unbans it.
  [[nodiscard]] Result<std::vector<Event>> ban(Authoring a, const PublicKey& member, bool banned);
  [[nodiscard]] Result<std::vector<Event>> set_nick(Authoring a, std::string_view nick);
  [[nodiscard]] Result<Event> set_settings(Authoring a, const GroupSettings& settings);
  [[nodiscard]] Result<std::pair<Event, InviteCode>> invite(Authoring a, std::uint32_t uses_max,
                                                            std::uint64_t expires_ms,
                                                            std::vector<std::string> peers);
  // The joiner's side: needs the invite event (and its ancestors) ingested first.
  [[nodiscard]] Result<Event> join(Authoring a, const InviteCode& code, std::string_view nick);
  // Before joining: lets this replica open keys sealed to the invite (bundle and later rekeys).
  void hold_invite(const InviteCode& code);
  // While joining (this node holds an invite secret): the invite's public key and the join
  // proof for this node, which peers check before syncing the group with someone who is not a
  // member in their state (wire::Holder). Given also once our join is in our own state, since
  // peers that have not seen it yet still need the proof. An invite open in the resolved state
  // is preferred to one not seen yet or closed. None for a relay or a node holding no invite.
  std::optional<std::pair<PublicKey, Signature>> holder_proof() const;
  [[nodiscard]] Result<Event> add(Authoring a, const PublicKey& member);
  // Removal and rekey return the key event, then its key parts when the group has more than
  // limits::rekey_members_per_event members (docs/protocol.md, "Key parts"): send them all.
  [[nodiscard]] Result<std::vector<Event>> remove(Authoring a, const PublicKey& member);
  [[nodiscard]] Result<Event> leave(Authoring a);
  [[nodiscard]] Result<Event> set_role(Authoring a, const PublicKey& member, Role role);
  [[nodiscard]] Result<Event> set_name(Authoring a, std::string_view name);
  [[nodiscard]] Result<Event> set_topic(Authoring a, std::string_view topic);
  [[nodiscard]] Result<std::vector<Event>> rekey(Authoring a);
  // Closes an invite (docs/protocol.md, "Invites"). Revoking needs the invite's creator or an
  // admin; used_up needs every use taken; expired needs a.now_ms >= the invite's expiry.
  // Errors: not_found (no such invite), unauthorized (the group refuses it: already closed, not
  // the creator or an admin, not used up, not expired), not a member.
  [[nodiscard]] Result<Event> close_invite(Authoring a, const Hash& invite, InviteCloseReason reason);
  // What this node authors on its own, called about once a second by the driver: a healing rekey
  // when it cannot verify the current key (at its turn, below heal_delay_ms_max, and only if no
  // good key arrived meanwhile), and closes of invites that are used up or expired
  // (limits.h: invite_close_grace_ms, close_delay_ms_*). Returns the events to store and send.
  std::vector<Event> upkeep(Authoring a);
  // The current key event when this node (a member) holds no verified key for it: a junk,
  // partial or wrong-key rekey it must heal. nullopt when it holds the key, or is no member.
  std::optional<Hash> unverified_key() const;
  // Keys refused because they did not match their event's key check (bundles, boxes).
  std::uint64_t keys_refused() const { return keys_refused_; }
  // Names `relay` (reachable at `address`) as a relay of the group, or with active = false stops
  // naming it (address ignored). Admin rights needed. Errors: unauthorized (not an admin, or
  // rights not yet seen), invalid_argument (an empty or over-long address), not_found (un-naming
  // a relay the group does not name), too_large (the group names relays_max relays already).
  [[nodiscard]] Result<Event> set_relay(Authoring a, const PublicKey& relay,
                                        std::string_view address, bool active);

  // Reading.
  std::vector<Message> history() const;
  std::optional<Message> message(const Hash& id) const;
  std::optional<std::string> name() const;
  std::optional<std::string> topic() const;
  std::optional<std::string> nick(const PublicKey& member) const;
  // The channel an entry of the history belongs to (`log --follow --channel`): a post's own
  // (#general, the group id, for one this node cannot read, as the conversation shows it); a
  // react, edit, delete or redact its post's; a channel event the channel it makes or changes.
  // None for the community's events (joins, roles, mutes, bans, nicks) and for an act this node
  // cannot read.
  std::optional<Hash> channel_of(const Message& m) const;
  // The conversation as it stands (messages, channels, mutes, acts): a fold over the history
  // with the keys this node holds. Costs one decryption per conversation event; build it once
  // per read.
  Conversation conversation(ConversationScope scope = ConversationScope::full) const;
  // For ConversationCache: what conversation() decrypts with, and a counter that changes
  // whenever the fold may change other than by accepted events appended at the end of the
  // history (a resolution that was not a plain continuation, a key learned or restored, a
  // payload dropped or restored).
  OpenFn opener() const {
    return [this](const Event& e) { return open(e); };
  }
  std::uint64_t fold_generation() const { return fold_generation_; }

 private:
  Event draft(Authoring& a, EventKind kind, std::uint64_t epoch) const;
  Result<Event> finish(Authoring& a, Event e);
  // Signs `e` and checks that it fits and that the group would accept it, without ingesting.
  Result<Event> sign_checked(Authoring& a, Event e) const;
  Result<Ciphertext> encrypt(Authoring& a, EventKind kind, std::uint64_t epoch, ByteView plain);
  // Signs an encrypted event of `kind` carrying `plain`, rekeying first when needed.
  Result<std::vector<Event>> author_content(Authoring& a, EventKind kind, const Bytes& plain);
  std::optional<Bytes> open(const Event& e) const;
  Result<const PostView*> live_post(const Conversation& c, const Hash& post) const;
  std::optional<Bytes> decrypt(const Event& e, const Ciphertext& c) const;
  std::optional<std::string> decrypt_text(const Hash& id, std::size_t text_bytes_max) const;
  // A new epoch: a fresh key sealed to every member but `excluded` (and to open invites), signed
  // into an event of `kind` (remove or rekey) whose payload `make` builds from the sealed keys,
  // followed by the key parts holding the member entries that do not fit in it.
  Result<std::vector<Event>> start_epoch(Authoring& a, EventKind kind, const std::optional<PublicKey>& excluded,
                            const std::function<Bytes(RekeyPayload)>& make,
                            const std::optional<Hash>& replaces = std::nullopt);
  Result<RekeyPayload> seal_new_key(Authoring& a, const SymmetricKey& key, std::uint64_t epoch,
                                    const std::optional<PublicKey>& excluded);
  // When this member's turn to heal `bad` comes, after noticing it (limits.h, heal_slot_ms).
  std::uint64_t heal_turn_ms(const Hash& bad) const;
  // True when `key` matches the key check of `source`, an event introducing a key for `epoch`.
  bool verified(std::uint64_t epoch, const Hash& source, const SymmetricKey& key) const;
  Result<void> need_member(const PublicKey& who) const;
  void absorb(const EventRecord& rec);
  // After an ingest: drops the payloads of removed posts and of the edits naming them (see
  // ingest), into dropped_. keys_before: the keyring's size before the ingest (a new key may
  // open a deletion this node could not read).
  void drop_removed(const IngestReport& report, std::size_t keys_before);
  void drop_if_edit_of_removed(const EventRecord& rec);
  void learn(std::uint64_t epoch, const Hash& source, const SymmetricKey& key);

  Group group_;
  const SigningKey* self_;
  Keyring keys_;
  std::vector<BundleKey> new_keys_;
  // Invite secrets this node holds (as a joiner), by invite public key.
  std::map<PublicKey, Seed> invite_secrets_;
  std::optional<PublicKey> last_held_;  // the invite hold_invite was last given
  std::uint64_t keys_refused_ = 0;
  // upkeep's timers: when to heal the unverified key event (if still unverified), and when to
  // close each invite found used up or expired.
  std::optional<std::pair<Hash, std::uint64_t>> heal_due_;
  std::map<Hash, std::uint64_t> close_due_;
  // Posts the conversation removed, as of the last fold drop_removed ran (at most the group's
  // posts), and whether any delete or redact was accepted yet (else a new key needs no fold).
  std::set<Hash> removed_posts_;
  bool has_removals_ = false;
  std::vector<Hash> dropped_;  // payloads dropped and not yet reported (take_payloads_dropped)
  std::uint64_t fold_generation_ = 0;  // fold_generation()
};

// The stable id of a key (BLAKE2b of a domain and the key): names a key without revealing it.
Hash key_id(const SymmetricKey& key);

}  // namespace qun
