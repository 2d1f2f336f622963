// Every bound of the group core, in one place. Each says where its number comes from;
// relations between them are checked at compile time below. Past a bound, input is rejected
// (peer input) or the operation refused (local command) with a clear error; nothing grows
// without limit.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qun::limits {

// One encoded event. The largest legitimate event is a rekey (or removal) carrying its first
// rekey_members_per_event member entries and the invite entries; its further member entries go
// in key-part events of the same size (docs/protocol.md, "Key epochs").
inline constexpr std::size_t event_bytes_max = 256 * 1024;
// Parents per event. An author names the heads it has seen; more concurrent heads than this are
// merged over several events (the newest first). 16 keeps an event header under 600 bytes.
inline constexpr std::size_t parents_max = 16;
// One rekey entry: recipient id (32) + sealed 32-byte key (32 + 48) + msgpack framing (~8).
inline constexpr std::size_t rekey_entry_bytes = 32 + 32 + 48 + 8;
// Member entries in one key event (a rekey or removal, and each of its key parts): what fits in
// one event beside the invite entries (static_assert below). Groups up to this size rekey in
// one event, byte for byte as before key parts existed. Also the longest array any payload may
// hold (bundles hold at most bundle_epochs_max).
inline constexpr std::size_t rekey_members_per_event = 2000;
// Members of one group: communities of 10,000 members (issue 13's target, the size of a large
// Discord server's active core or a big Matrix room). A rekey or removal then seals the new key
// to each member in 1 + 4 events of about 235 KiB (~1.2 MB, 10,000 sealed boxes); a key tree
// would cost less per removal but cannot survive concurrent rekeys (docs/protocol.md, "Why one
// sealed box per member").
inline constexpr std::size_t members_max = 10000;
// Key-part events one rekey may announce: enough for members_max members beside the key
// event's own entries. A part carries 1..rekey_members_per_event entries.
inline constexpr std::size_t rekey_parts_max =
    (members_max + rekey_members_per_event - 1) / rekey_members_per_event - 1;
// Open invites whose holders receive new epoch keys (sealed to the invite key) at each rekey.
inline constexpr std::size_t open_invites_max = 64;
// Epoch keys handed to a newcomer in one key bundle (history visible); older epochs stay dark.
inline constexpr std::size_t bundle_epochs_max = 512;
// Uses of one invite.
inline constexpr std::uint32_t invite_uses_max = 10000;
// Text sizes, in bytes of UTF-8.
inline constexpr std::size_t post_text_bytes_max = 16 * 1024;
inline constexpr std::size_t name_bytes_max = 128;
inline constexpr std::size_t topic_bytes_max = 1024;
inline constexpr std::size_t nick_bytes_max = 64;
// The conversation layer (docs/protocol.md, "Conversation").
// A channel's name: Slack's limit for channel names is 80 characters; 80 bytes of UTF-8 holds
// every name people type into a sidebar.
inline constexpr std::size_t channel_name_bytes_max = 80;
// Channels one group holds, archived ones included (their posts stay readable): Discord caps a
// server at 500 channels, which no community we know of outgrows.
inline constexpr std::size_t channels_max = 500;
// One reaction's emoji, in bytes of UTF-8: the longest emoji ZWJ sequences (families, flags of
// subdivisions) are about 35 bytes; 64 leaves room and refuses sentences.
inline constexpr std::size_t reaction_bytes_max = 64;
// Distinct emoji on one post: Slack allows 50 per message; further new ones are refused (more
// of an existing emoji always counts). Bounds a post's view at 64 * members_max reactors.
inline constexpr std::size_t reactions_per_post_max = 64;
// A mute's longest duration (366 days): longer is what an indefinite mute (duration 0, until
// unmuted) or a ban is for.
inline constexpr std::uint64_t mute_duration_ms_max = 366ull * 24 * 3600 * 1000;
// An address a node is reached at ("host:port" or a name): in hellos, shuffles, invite hints and
// relay events. DNS names are at most 253 bytes; 256 leaves room for a port.
inline constexpr std::size_t address_bytes_max = 256;
// Relays one group names (relay events). Each relay holds the whole group, so a few are plenty;
// 16 keeps every member's passive list (32) able to hold them all beside ordinary peers.
inline constexpr std::size_t relays_max = 16;
// msgpack nesting in any payload we decode: event -> payload -> entry -> field.
inline constexpr std::size_t decode_depth_max = 4;
// Events waiting for missing parents (pending), per group. Anybody who knows a group id can
// send such events (their author cannot be checked before their parents arrive), so they are
// bounded in count and bytes, per group and per sender; dropped ones are fetched again by
// catch-up once their parents are here. Honest pending events come from pushes overtaking
// catch-up: a peer never has more than one catch-up window (OverlayConfig::send_window_bytes,
// 2 MiB) of our missing events in flight, which gives the per-sender bound; the group's bound
// is eight such windows, above an active set (active_max 7) plus a relay all sending at once.
inline constexpr std::size_t pending_events_max = 10000;
inline constexpr std::uint64_t pending_sender_bytes_max = 2 * 1024 * 1024;
inline constexpr std::uint64_t pending_bytes_max = 8 * pending_sender_bytes_max;
// Events per ingest batch and per store transaction: large enough to amortise one LMDB commit
// (fsync), small enough that one batch holds the loop for well under 100 ms.
inline constexpr std::size_t batch_events_max = 512;

// Resolution snapshots: one every checkpoint_steps folded events, the newest checkpoints_max
// kept, so a late event within the last ~2,000 re-folds at most checkpoint_steps + the tail.
inline constexpr std::size_t checkpoint_steps = 256;
inline constexpr std::size_t checkpoints_max = 8;

// Self-healing and invite upkeep (Replica::upkeep, driven by the daemon about once a second).
// Members blinded by the same bad key event heal in turns, so that one heal usually suffices
// even in a large group: each member's turn is its rank among the group's members ordered by
// BLAKE2b(bad event id || member key), capped at heal_ranks_max, and it heals at
// turn * heal_slot_ms plus a random jitter below heal_slot_ms, unless a good key arrived first.
// A slot is the daemon's upkeep period (one second: turns finer than the period at which nodes
// look would fire together), which also covers a heal reaching the group's nodes (events
// propagate in well under a second). Members not blinded skip their turn, so the
// first heal comes from the first blinded member in the order. Concurrent heals are harmless
// (every member holds all of them), only redundant.
inline constexpr std::uint64_t heal_slot_ms = 1000;
inline constexpr std::uint64_t heal_ranks_max = 3;
inline constexpr std::uint64_t heal_delay_ms_max = (heal_ranks_max + 1) * heal_slot_ms;
static_assert(heal_delay_ms_max <= 5000, "a bad rekey is healed within seconds");
// An expired invite is closed this long after its expiry: a join made just before expiry
// reaches the group's nodes in well under a second, and a close revokes joins it has not seen.
inline constexpr std::uint64_t invite_close_grace_ms = 5000;
// A used-up invite is closed at once by its creator's node or an admin's; other members' nodes
// wait a random delay in [close_delay_ms_min, close_delay_ms_max) and close only if no close
// arrived meanwhile, so duplicate closes stay rare (a duplicate is refused, harmlessly).
inline constexpr std::uint64_t close_delay_ms_min = 2000;
inline constexpr std::uint64_t close_delay_ms_max = 6000;
static_assert(close_delay_ms_min < close_delay_ms_max);

// The 4096 bytes cover a rekey's fixed part: key check, replaced event id, part count, framing.
static_assert(rekey_members_per_event * rekey_entry_bytes + open_invites_max * rekey_entry_bytes +
                      4096 <=
                  event_bytes_max,
              "a key event's member and invite entries must fit in one event");
static_assert((1 + rekey_parts_max) * rekey_members_per_event >= members_max,
              "a key event and its parts seal to every member");
// A key part's parents are its key event only; the event after a rekey merges the parts as
// parents (with the heads others made meanwhile).
static_assert(rekey_parts_max < parents_max, "one event can name every part of a rekey");
static_assert(bundle_epochs_max <= rekey_members_per_event,
              "a bundle's entries stay within the payload array bound");

static_assert(bundle_epochs_max * (8 + 32 + 32 + 6) + 1024 <= event_bytes_max,
              "a full key bundle must fit in one event");
static_assert(post_text_bytes_max + 1024 <= event_bytes_max);
static_assert(channel_name_bytes_max <= post_text_bytes_max && reaction_bytes_max <= post_text_bytes_max,
              "conversation plaintexts decode under the payload's string bound");
static_assert(pending_sender_bytes_max >= 4 * event_bytes_max,
              "a sender's pending share must hold a few of the largest events");
static_assert(pending_sender_bytes_max <= pending_bytes_max);

}  // namespace qun::limits
