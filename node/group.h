// Group: one group's replicated log (a DAG of signed events) and the state every node derives
// from it. Sans-IO and deterministic: the same set of events gives the same state and the same
// ordered history on every node, whatever order the events arrived in.
//
// Validity has two layers (docs/protocol.md, "Validity"):
//  1. Admission, checked once when an event arrives; it depends only on the event and its
//     ancestors, so every node decides it the same way: encoding, signature, group, parents
//     known, depth, payload shape, a join's invite proof, and that the author was admitted
//     somewhere in the event's causal past. Events failing admission are never stored or sent.
//  2. Resolution: admitted events are ordered by (order key, id), where the order key is the
//     author's time clamped to exceed every parent's order key, and folded into state. An event
//     whose author had no right to it at its place in that order has no effect and is not shown,
//     but stays in the DAG (others may have built on it). Revocation wins: a removal (or a
//     demotion) of X invalidates X's (privileged) events that are concurrent with it.
//
// Calling contract: ingest() any batch of decoded events, in any order, any number of times;
// duplicates are ignored. The Group never reads a clock or randomness.
//
// Pending events (docs/protocol.md, "Pending events"): an event whose parents are not here yet
// waits, remembered with the peer it came from (none: the store or this node). Anybody can make
// such events (nothing about them can be checked before their parents arrive), so they are
// bounded per sender (limits::pending_sender_bytes_max) and per group (pending_bytes_max,
// pending_events_max): past a bound the sender's own oldest go first, and past the group's the
// oldest of whichever sender holds the most. drop_pending_from() forgets what one sender alone
// sent, for the node to call when that peer's link closes. Pending events are not part of the
// group's state: which of them wait never changes what the events that are admitted resolve to.
#pragma once

#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/event.h"
#include "node/payload.h"

namespace qun {

struct HashHasher {
  std::size_t operator()(const Hash& h) const {
    std::size_t v;
    std::memcpy(&v, h.bytes.data(), sizeof v);
    return v;
  }
};

struct MemberInfo {
  PublicKey id;
  Role role = Role::member;
  Hash admitted_by;            // the create, join or add event that made it a member
  std::uint64_t standing = 0;  // position of admitted_by in the order: lower is longer-standing
  Hash role_grant;             // the event that gave it its current role
  std::optional<Hash> joined_with;  // the invite it joined with, whose secret it holds
};

struct InviteInfo {
  Hash id;
  PublicKey creator;
  PublicKey invite_key;
  std::uint32_t uses_max = 0;
  std::uint32_t uses = 0;
  std::uint64_t expires_ms = 0;
  // Closed: by an accepted close-invite event, or because its creator or a member who joined
  // with it left or was removed. A closed invite admits no join and receives no new key.
  bool revoked = false;
  std::optional<Hash> closed_by;  // the close-invite event, when one closed it
};

// An event that introduced a key for an epoch (create, remove, rekey), with the accepted key
// parts that carry the rest of its member entries. Its recipients (the members and invite keys
// it was sealed to) are the records' key_recipients: the event's and its parts'.
struct KeyCandidate {
  Hash event;
  std::vector<Hash> parts;  // accepted key-part events, in fold order
};

struct GroupState {
  Hash id;
  bool created = false;
  GroupSettings settings;
  std::map<PublicKey, MemberInfo> members;
  // Members who were removed or left and are not members again: nodes stop sending them the
  // group's events.
  std::set<PublicKey> former_members;
  std::map<Hash, InviteInfo> invites;
  std::optional<Hash> name_event;
  std::optional<Hash> topic_event;
  std::uint64_t epoch = 0;
  std::map<std::uint64_t, std::vector<KeyCandidate>> epoch_keys;
  // The key candidate of the current epoch to encrypt with: the first (in order) that was sealed
  // only to current members and open invites. None means a rekey is needed before posting.
  std::optional<Hash> current_key_event;
  // A member left since the current epoch began: whoever holds the current key may include
  // them (through an invite bundle), so the next post must start a new epoch.
  bool departed_since_rekey = false;
  // An invite closed since the current epoch began: its code holders may hold the current key
  // (its bundle, or seals to the invite), so the next post must start a new epoch.
  bool invite_closed_since_rekey = false;
  // The relays the group names (relay events): identity -> address, at most relays_max.
  std::map<PublicKey, std::string> relays;
  // Keys banned by an accepted ban and not unbanned since: their joins (and adds) are refused.
  std::set<PublicKey> banned;
  // Each author's latest accepted set-nick event: its nick in this group, replacing the one in
  // the event that admitted it.
  std::map<PublicKey, Hash> nick_events;
  std::vector<Hash> history;  // accepted events, in order
  // A direct group's two members (node/direct.h): its founder, then the peer of its first
  // accepted add. Empty for any other group.
  std::vector<PublicKey> direct_pair;

  bool is_member(const PublicKey& who) const { return members.count(who) != 0; }
  Role role_of(const PublicKey& who) const;
  bool needs_rekey() const {
    return created && (!current_key_event || departed_since_rekey || invite_closed_since_rekey);
  }
};

// Whether ingest checks the events' signatures. `verified`: the caller checked every one already
// (a node loading a long history from its store checks them on every core at once, net/, where
// one by one in ingest they were 44% of its start-up). Events they release from pending are
// checked here.
enum class Signatures { check, verified };

// What one ingest did, for logs, storage and forwarding.
struct IngestReport {
  std::vector<Hash> admitted;                          // newly stored, parents first
  std::vector<std::pair<Hash, std::string>> rejected;  // never stored; with the reason
  std::size_t pending = 0;                             // still waiting for parents
  std::size_t duplicates = 0;
  std::size_t pending_dropped = 0;                     // dropped from pending, past a bound
  // Pending-set changes of this ingest, for incremental storage: ids newly waiting (and still
  // waiting at its end), and ids that stopped waiting without being admitted (dropped past a
  // bound, or with their sender). Admitted ids stop waiting too; they are in `admitted`.
  std::vector<Hash> pending_added;
  std::vector<Hash> evicted;
  // Admitted events whose stored form changed: their payload was dropped (drop_payload), or a
  // stub we held got its payload back from a full copy (ingest). Storage rewrites them.
  std::vector<Hash> payloads_dropped;
  std::vector<Hash> payloads_restored;
};

struct EventRecord {
  Event event;
  std::uint64_t order_key = 0;
  bool accepted = false;
  std::string why_not;          // resolution's reason when not accepted (for logs)
  // Clear fields parsed once at admission.
  std::optional<PublicKey> target;  // add, remove, set-role; the relay of a relay event
  Role role = Role::member;         // set-role
  std::optional<RelayPayload> relay;  // relay
  std::optional<InvitePayload> invite;
  std::optional<Hash> invite_ref;   // join; close-invite: the invite it closes
  InviteCloseReason close_reason = InviteCloseReason::revoked;  // close-invite
  std::optional<Hash> key_check;    // create, remove, rekey: the commitment to the new key
  bool banned = false;              // ban: true bans `target`, false unbans it
  std::optional<GroupSettings> settings;  // set-settings
  std::vector<PublicKey> key_recipients;  // create, remove, rekey, key-part
  // remove, rekey: the key parts it announces; key-part: its index.
  std::uint32_t key_parts = 0;
  std::optional<Hash> key_event;    // key-part: the remove or rekey it belongs to
};

class Group {
 public:
  explicit Group(const Hash& id);

  const Hash& id() const { return id_; }
  const GroupState& state() const { return state_; }

  // Admits what it can (parents first), parks events with missing parents (as sent by `from`:
  // none for the store or this node), then resolves.
  IngestReport ingest(std::vector<Event> events, std::optional<PublicKey> from = std::nullopt,
                      Signatures signatures = Signatures::check);
  // Forgets the pending events that `from` sent (none: those loaded from the store). Returns a
  // report whose `evicted` lists them, for storage; nothing else changes.
  IngestReport drop_pending_from(const std::optional<PublicKey>& from);
  // Drops pending events (the largest sender's oldest first) until they take at most
  // `bytes_max`: a relay keeps a group's stored and pending bytes within its own bound.
  IngestReport trim_pending(std::uint64_t bytes_max);
  // Drops the payload of an admitted event of a payload_droppable kind, keeping its stub (same
  // id, signature, order and place in the DAG; docs/protocol.md, "Stubs"). Nothing else
  // changes: resolution never reads such a payload. Returns false (and changes nothing) when
  // the event is not admitted here, not of a droppable kind, or a stub already. The caller
  // persists the change (IngestReport::payloads_dropped).
  bool drop_payload(const Hash& id);
  // Stored bytes of the admitted events (each one's encoded size, a stub's as a stub), kept as
  // events are admitted and payloads dropped or restored.
  std::uint64_t stored_bytes() const { return stored_bytes_; }

  bool has(const Hash& id) const { return events_.count(id) != 0; }
  const EventRecord* find(const Hash& id) const;
  // Heads: admitted events with no admitted children, ascending.
  const std::set<Hash>& heads() const { return heads_; }
  // All admitted events in order (order key, id): parents always before children.
  std::vector<const EventRecord*> ordered() const;
  std::size_t size() const { return events_.size(); }
  std::size_t pending_size() const { return pending_.size(); }
  // Encoded bytes of the pending events: of the group, and of those one sender sent.
  std::uint64_t pending_bytes() const { return pending_bytes_; }
  std::uint64_t pending_bytes_from(const std::optional<PublicKey>& from) const;
  std::vector<const Event*> pending_events() const;
  const Event* find_pending(const Hash& id) const;
  // Ids the pending events wait for (to ask peers for).
  std::vector<Hash> missing() const;
  // The parents a new event should name: the newest heads, at most parents_max; and its depth.
  std::vector<Hash> next_parents() const;
  std::uint64_t next_depth(const std::vector<Hash>& parents) const;
  // The order key an event with these parents and time would get.
  std::uint64_t order_key_for(const std::vector<Hash>& parents, std::uint64_t time_ms) const;
  // How resolution ran so far: continued, re-folded from a snapshot, or folded from scratch.
  struct ResolveStats {
    std::uint64_t incremental = 0;
    std::uint64_t from_checkpoint = 0;
    std::uint64_t full = 0;
  };
  const ResolveStats& resolve_stats() const { return resolve_stats_; }
  // True when `ancestor` is `descendant` or one of its ancestors.
  bool is_ancestor(const Hash& ancestor, const Hash& descendant) const;

 private:
  enum class Admit { ok, wait, reject };
  // signature_checked: the event's signature is known good (Signatures::stored).
  Admit admit(const Event& e, std::string& reason, std::vector<Hash>& missing,
              bool signature_checked) const;
  void insert(Event e);
  // Gives a stub we hold its payload back from a full copy; false when there is nothing to do.
  bool restore_payload(const Event& full);
  bool author_admitted_in_past(const Event& e) const;
  // Re-derives state: continues the fold when every new event sorts after the fold's position
  // and no revocation reaches back, else folds everything again.
  void resolve(const std::vector<Hash>& admitted);
  void full_fold();
  // Applies one record at the fold's position; returns false if a revocation it carries
  // invalidated an event already applied (the caller must then fold again from scratch).
  bool step(EventRecord& rec);
  std::string apply(EventRecord& rec);
  // Revokes `who`'s events concurrent with `revocation` that need a role ranked above
  // `rank_kept` (role_rank; -1 revokes every event).
  bool revoke(const EventRecord& revocation, const PublicKey& who, int rank_kept);
  // An accepted close of `invite` revokes the invite's joins concurrent with it.
  bool revoke_joins(const EventRecord& close, const Hash& invite);
  bool revoked_by_earlier(const EventRecord& rec) const;
  // The role a kind needs in this group (what a demotion takes away): role_needed, and an
  // invite needs admin unless members may invite.
  Role needs_role(EventKind kind) const;
  void choose_current_key(GroupState& state);
  // Every recipient of a key candidate: its event's and its accepted parts'.
  bool candidate_clean(const KeyCandidate& c, const GroupState& s,
                       const std::set<PublicKey>& open_invites) const;
  void reset_state();

  Hash id_;
  std::unordered_map<Hash, EventRecord, HashHasher> events_;
  std::uint64_t stored_bytes_ = 0;
  std::unordered_map<Hash, std::vector<Hash>, HashHasher> children_;
  std::set<std::pair<std::uint64_t, Hash>> order_;
  std::set<Hash> heads_;
  // Keys that author an admitted event or are added by one: an event by a key not here cannot
  // have been admitted in its causal past, which rejects outsiders without walking the DAG.
  std::set<PublicKey> known_authors_;
  // Events waiting for parents, with their arrival sequence and sender.
  struct Pending {
    std::uint64_t seq = 0;
    Event event;
    std::optional<PublicKey> from;
  };
  std::map<Hash, Pending> pending_;
  std::uint64_t pending_seq_ = 0;
  // Each sender's pending events in arrival order (oldest dropped first), and their bytes.
  struct SenderPending {
    std::map<std::uint64_t, Hash> by_seq;
    std::uint64_t bytes = 0;
  };
  std::map<std::optional<PublicKey>, SenderPending> pending_by_sender_;
  std::uint64_t pending_bytes_ = 0;
  std::map<Hash, std::set<Hash>> waiting_on_;  // missing id -> pending events needing it
  void park(Event e, const std::vector<Hash>& missing, const std::optional<PublicKey>& from);
  // Removes one pending event from every index and returns it.
  Event unpark(std::map<Hash, Pending>::iterator it);
  // Drops pending events past the per-sender and per-group bounds (the group's at most
  // group_bytes_max) into report.evicted.
  void bound_pending(IngestReport& report, std::uint64_t group_bytes_max);
  // Resolution's working sets, rebuilt by every full fold and extended by incremental ones.
  std::set<Hash> excluded_;  // invalidated by a revocation that was itself accepted
  struct Revocation {
    Hash event;
    PublicKey who;
    int rank_kept;  // events needing a role ranked above this are revoked; -1: every event
    std::optional<Hash> invite;  // set for a close-invite: revokes that invite's joins instead
  };
  std::vector<Revocation> revocations_;  // accepted revocations, in order
  std::optional<std::pair<std::uint64_t, Hash>> last_applied_;  // the fold's position
  // An event accepted since the last choose_current_key could change its answer (membership,
  // invites, epochs, key events). Posts and the other content kinds cannot, so an incremental
  // fold of them skips the choice: it costs a lookup per recipient, 10,000 in a full group.
  bool keys_touched_ = false;
  GroupState state_;
  // Snapshots of the fold every checkpoint_steps steps, so an event that sorts a little before
  // the fold's position (a concurrent post arriving late) re-folds from the nearest snapshot
  // instead of from the start. Only snapshots at or after the last full fold's furthest restart
  // are kept: those equal the from-scratch fold at their position.
  struct Checkpoint {
    std::pair<std::uint64_t, Hash> position;
    GroupState state;
    std::set<Hash> excluded;
    std::vector<Revocation> revocations;
  };
  std::deque<Checkpoint> checkpoints_;
  ResolveStats resolve_stats_;
  std::size_t steps_since_checkpoint_ = 0;
  bool refold_from_checkpoint(const std::pair<std::uint64_t, Hash>& first_new);
};

// The least role whose holders may author an event of this kind (with the grant of that role in
// its causal past): admin for membership, roles, names, relays, channels, bans and settings;
// moderator for redactions and mutes; member for the rest (an invite's need depends on the
// group's settings: Group::needs_role).
Role role_needed(EventKind kind);

}  // namespace qun
