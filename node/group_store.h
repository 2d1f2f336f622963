// Persisting replicas: how a node writes what a Replica admitted into its Store, and reads a
// Replica back at start-up.
//
// Each call to persist() is one store transaction: the admitted events (with their order keys),
// the head changes, the pending set, the keys this node learned (encrypted at rest under a key
// derived from the node's identity) and a small group record. Either all of it is durable when
// persist() returns ok, or none of it is.
#pragma once

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
// storage_key are null for a relay. Errors: Errc::not_found (no such group), Errc::malformed (a
// stored event or key that does not decode: the database is damaged), store errors.
[[nodiscard]] Result<Replica> load_replica(const Store& store, const Hash& group,
                                           const SigningKey* self, const SymmetricKey* storage_key);

}  // namespace qun
