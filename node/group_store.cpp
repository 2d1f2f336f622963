#include "node/group_store.h"

#include "crypto/kdf.h"
#include "node/codec.h"

namespace qun {
namespace {

Bytes key_ad(const Hash& group, std::uint64_t epoch, const Hash& source) {
  Bytes epoch_be;
  put_u64_be(epoch_be, epoch);
  return concat({group.view(), epoch_be, source.view()});
}

// The group record: [format, events, epoch, members]. Informational (status listings without
// loading the group); the events remain the source of truth.
Bytes group_record(const Replica& r) {
  codec::Writer w;
  w.array(4).uint(1).uint(r.group().size()).uint(r.state().epoch).uint(r.state().members.size());
  return w.take();
}

}  // namespace

SymmetricKey storage_key_for(const SigningKey& identity) {
  Seed seed = identity.seed();
  return derive_key(seed.view(), "qun storage key v1");
}

Result<void> persist(Store& store, const Replica& replica, const IngestReport& report,
                     const std::vector<BundleKey>& new_keys, const SymmetricKey* storage_key) {
  WriteBatch batch;
  persist_into(batch, replica, report, new_keys, storage_key);
  return store.commit(batch);
}

void persist_into(WriteBatch& batch, const Replica& replica, const IngestReport& report,
                  const std::vector<BundleKey>& new_keys, const SymmetricKey* storage_key) {
  const Hash& group = replica.id();
  for (const Hash& id : report.admitted) {
    const EventRecord* rec = replica.group().find(id);
    assert(rec);
    batch.put_event(group, id, rec->order_key, encode(rec->event));
    batch.remove_pending(group, id);
    for (const Hash& p : rec->event.parents) batch.remove_head(group, p);
  }
  for (const Hash& id : report.admitted)
    if (replica.group().heads().count(id)) batch.add_head(group, id);
  for (const Hash& id : report.evicted) batch.remove_pending(group, id);
  for (const Event* e : replica.group().pending_events()) batch.put_pending(group, e->id, encode(*e));
  if (!new_keys.empty()) {
    assert(storage_key);
    for (const auto& k : new_keys) {
      // The nonce is derived, not drawn: each (group, epoch, source) key is written once.
      Nonce nonce;
      Hash n = hash(key_ad(group, k.epoch, k.source));
      std::copy(n.bytes.begin(), n.bytes.begin() + Nonce::size(), nonce.bytes.begin());
      Bytes record(nonce.bytes.begin(), nonce.bytes.end());
      Bytes sealed = aead_encrypt(*storage_key, nonce, key_ad(group, k.epoch, k.source), k.key.view());
      record.insert(record.end(), sealed.begin(), sealed.end());
      batch.put_key(group, k.epoch, k.source, record);
    }
  }
  batch.put_group(group, group_record(replica));
}

Result<Replica> load_replica(const Store& store, const Hash& group, const SigningKey* self,
                             const SymmetricKey* storage_key) {
  QUN_TRY(auto record, store.get_group(group));
  if (!record) return Error(Errc::not_found, "no group " + short_hex(group) + " in this store");
  Replica replica(group, self);
  // Keys first, so that nothing is re-learned (and re-written) while events replay.
  if (storage_key) {
    QUN_TRY(auto keys, store.keys(group));
    for (const auto& k : keys) {
      if (k.record.size() < Nonce::size()) return Error(Errc::malformed, "stored key too short");
      auto nonce = *Nonce::from_view(ByteView(k.record.data(), Nonce::size()));
      auto plain = aead_decrypt(*storage_key, nonce, key_ad(group, k.epoch, k.key_id),
                                ByteView(k.record.data() + Nonce::size(), k.record.size() - Nonce::size()));
      if (!plain.ok() || plain->size() != SymmetricKey::size()) {
        return Error(Errc::decrypt_failed, "a stored group key does not open with this identity");
      }
      SymmetricKey key;
      std::copy(plain->begin(), plain->end(), key.data());
      sodium_memzero(plain->data(), plain->size());
      replica.restore_key(k.epoch, k.key_id, key);
    }
  }
  std::vector<Event> events;
  Result<void> decoded = ok_result();
  QUN_TRY_VOID(store.for_each_event(group, [&](const Hash& id, std::uint64_t, ByteView bytes) {
    auto e = decode_event(bytes);
    if (!e.ok() || e->id != id) {
      decoded = Error(Errc::malformed, "stored event " + short_hex(id) + " does not decode");
      return false;
    }
    events.push_back(std::move(e).value());
    return true;
  }));
  QUN_TRY_VOID(decoded);
  QUN_TRY(auto pending, store.pending(group));
  for (auto& [id, bytes] : pending) {
    auto e = decode_event(bytes);
    if (e.ok()) events.push_back(std::move(e).value());
  }
  replica.ingest(std::move(events));
  (void)replica.take_new_keys();
  return replica;
}

}  // namespace qun
