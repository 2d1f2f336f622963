// Persisting replicas: how a node writes what a Replica admitted into its Store, and reads a
// Replica back at start-up.
//
// Each call to persist() is one store transaction: the admitted events (with their order keys),
// the head changes, the pending set, the keys this node learned (encrypted at rest under a key
// derived from the node's identity) and a small group record. Either all of it is durable when
// persist() returns ok, or none of it is.
#pragma once

#include <functional>

#include "crypto/aead.h"
#include "node/replica.h"
#include "store/store.h"

namespace qun {

// The key that encrypts group keys at rest, derived from the node identity's seed.
SymmetricKey storage_key_for(const SigningKey& identity);

// Writes what `report` admitted and `new_keys` (from Replica::take_new_keys). storage_key may be
// null only when new_keys is empty (a relay). Errors: those of Store::commit (disk_full, io).
[[nodiscard]] Result<void> persist(Store& store, const Replica& replica, const IngestReport& report,
                                   const std::vector<BundleKey>& new_keys,
                                   const SymmetricKey* storage_key);

// The same writes appended to `batch`, for a caller that commits several persists in one
// transaction (the daemon's group commit). Batches apply in order, so later appends win.
void persist_into(WriteBatch& batch, const Replica& replica, const IngestReport& report,
                  const std::vector<BundleKey>& new_keys, const SymmetricKey* storage_key);

// Reads a group back: events in stored order, then pending events, then keys. self and
// storage_key are null for a relay. Errors: Errc::not_found (no such group), Errc::malformed (the
// database is damaged: a group record, stored event or order entry that does not read, or fewer
// events admitted than the group record counts), Errc::decrypt_failed (a stored key that does
// not open), store errors. Any error means the group cannot be trusted as loaded: the caller
// reports it as damaged and may salvage_replica() it.
//
// `verify`, when given, checks the stored events' signatures for the load (ok[i] for events[i]),
// as it likes: the daemon spreads them over every core. Without it the replica checks them one
// by one. An event whose signature fails is not admitted, either way (the group is damaged).
using SignatureCheck = std::function<std::vector<bool>(const std::vector<Event>& events)>;
[[nodiscard]] Result<Replica> load_replica(const Store& store, const Hash& group,
                                           const SigningKey* self, const SymmetricKey* storage_key,
                                           const SignatureCheck& verify = {});

// What salvage_replica kept and lost.
struct Salvage {
  Replica replica;
  std::size_t events_kept = 0;     // events admitted into the salvaged replica (pending excluded)
  std::size_t events_unread = 0;   // stored events that did not read or decode, dropped
  std::size_t keys_unread = 0;     // stored keys that did not open, dropped
  // Events of the group found only by scanning every stored event (their order and arrival
  // entries were lost): kept, and rewritten with fresh entries by rewrite_into.
  std::vector<Hash> orphans = {};
  // Records that did not read, by id: those the group's indexes named, and any stored record
  // that decodes to no event under its id. Deleted by the rewrite, so that the events, fetched
  // again from peers, are stored anew: a put of an id already stored changes nothing, and a
  // damaged copy left in place failed the next load ("stored event ... does not decode").
  std::vector<Hash> unreadable = {};
  // Every record rewrite_into deletes before writing the replica back.
  std::vector<Hash> stale() const;
  bool scans_complete = true;      // false when a table could not be read to its end
};

// Rebuilds a damaged group from whatever of it still reads: every event reachable through the
// order or the arrival table, or found in a scan of all stored events, that decodes to its own
// id and belongs to the group, the pending events that decode, and the keys that open. Never fails: what does not read is counted and
// left out, so that catch-up fetches it again from peers. The caller writes the result back
// with rewrite_into.
Salvage salvage_replica(const Store& store, const Hash& group, const SigningKey* self,
                        const SymmetricKey* storage_key);

// Appends to `batch` the deletion of everything stored of the group (and of the `stale` records:
// a salvage's orphans and unreadable ones, which its indexes may not reach) and then the whole
// replica: events, heads, pending, keys and group record.
void rewrite_into(WriteBatch& batch, const Replica& replica, const SymmetricKey* storage_key,
                  const std::vector<Hash>& stale = {});

}  // namespace qun
