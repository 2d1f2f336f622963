#include "node/group_store.h"

#include "crypto/kdf.h"
#include "base/codec.h"

#include <limits>
#include <map>

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

constexpr std::uint64_t group_record_format = 1;
constexpr std::size_t group_record_fields = 4;
// A group record is four small unsigned integers: 4 * 9 bytes of msgpack and the array header.
constexpr codec::DecodeLimits group_record_limits{64, group_record_fields, 0, 0, 1};

// The events count of a group record, checking its shape.
Result<std::uint64_t> record_events(ByteView record) {
  QUN_TRY(auto handle, codec::unpack_strict(record, group_record_limits));
  QUN_TRY(auto fields, codec::array(handle.get(), group_record_fields, group_record_fields,
                                    "group record"));
  QUN_TRY(std::uint64_t format, codec::uint(fields.ptr[0], group_record_format, "record format"));
  if (format != group_record_format) return Error(Errc::malformed, "group record format");
  return codec::uint(fields.ptr[1], UINT64_MAX, "record events");
}

// A stored key record: nonce, then the sealed key. nullopt when it does not open.
std::optional<SymmetricKey> open_key(const SymmetricKey& storage_key, const Hash& group,
                                     const StoredKey& k) {
  if (k.record.size() < Nonce::size()) return std::nullopt;
  auto nonce = *Nonce::from_view(ByteView(k.record.data(), Nonce::size()));
  auto plain = aead_decrypt(storage_key, nonce, key_ad(group, k.epoch, k.key_id),
                            ByteView(k.record.data() + Nonce::size(), k.record.size() - Nonce::size()));
  if (!plain.ok()) return std::nullopt;
  if (plain->size() != SymmetricKey::size()) {
    sodium_memzero(plain->data(), plain->size());
    return std::nullopt;
  }
  SymmetricKey key;
  std::copy(plain->begin(), plain->end(), key.data());
  sodium_memzero(plain->data(), plain->size());
  return key;
}

// A stored event that decodes, has the id it is stored under and belongs to the group.
std::optional<Event> stored_event(const Hash& group, const Hash& id, ByteView bytes) {
  auto e = decode_event(bytes);
  if (!e.ok() || e->id != id || e->group_id() != group) return std::nullopt;
  return std::move(e).value();
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
  // Payloads dropped (a stub now) or restored: the stored form follows the replica's. An id
  // admitted in the same report was written in its current form above.
  for (const auto* ids : {&report.payloads_dropped, &report.payloads_restored}) {
    for (const Hash& id : *ids) {
      if (const EventRecord* rec = replica.group().find(id)) batch.replace_event(id, encode(rec->event));
    }
  }
  // Only what changed in this ingest: the pending set itself may hold pending_bytes_max.
  for (const Hash& id : report.evicted) batch.remove_pending(group, id);
  for (const Hash& id : report.pending_added) {
    if (const Event* e = replica.group().find_pending(id)) batch.put_pending(group, id, encode(*e));
  }
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
                             const SymmetricKey* storage_key, const SignatureCheck& verify) {
  QUN_TRY(auto record, store.get_group(group));
  if (!record) return Error(Errc::not_found, "no group " + short_hex(group) + " in this store");
  auto recorded = record_events(*record);
  if (!recorded.ok()) return Error(Errc::malformed, "its group record does not decode");
  Replica replica(group, self);
  // Keys first, so that nothing is re-learned (and re-written) while events replay.
  if (storage_key) {
    QUN_TRY(auto keys, store.keys(group));
    for (const auto& k : keys) {
      auto key = open_key(*storage_key, group, k);
      if (!key) return Error(Errc::decrypt_failed, "a stored group key does not open with this identity");
      replica.restore_key(k.epoch, k.key_id, *key);
    }
  }
  std::vector<Event> events;
  Result<void> decoded = ok_result();
  QUN_TRY_VOID(store.for_each_event(group, [&](const Hash& id, std::uint64_t, ByteView bytes) {
    auto e = stored_event(group, id, bytes);
    if (!e) {
      decoded = Error(Errc::malformed, "stored event " + short_hex(id) + " does not decode");
      return false;
    }
    events.push_back(std::move(*e));
    return true;
  }));
  QUN_TRY_VOID(decoded);
  if (verify) {
    const std::vector<bool> ok = verify(events);
    std::vector<Event> good;
    good.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i)
      if (i < ok.size() && ok[i]) good.push_back(std::move(events[i]));
    replica.ingest(std::move(good), std::nullopt, Signatures::verified);
  } else {
    replica.ingest(std::move(events));
  }
  events.clear();
  QUN_TRY(auto pending, store.pending(group));
  for (auto& [id, bytes] : pending) {
    // Pending events are unverified peer input kept for later: one that does not decode is
    // dropped, as it would have been had it come from the network damaged. They are checked
    // in full.
    if (auto e = stored_event(group, id, bytes)) events.push_back(std::move(*e));
  }
  replica.ingest(std::move(events));
  (void)replica.take_new_keys();
  // Every event the record counts was admitted before it was stored, and admission is a
  // function of the events: fewer now means stored events went missing (an order entry lost).
  if (replica.group().size() < *recorded)
    return Error(Errc::malformed, std::to_string(replica.group().size()) + " of its " +
                                      std::to_string(*recorded) + " events load");
  return replica;
}

Salvage salvage_replica(const Store& store, const Hash& group, const SigningKey* self,
                        const SymmetricKey* storage_key) {
  Salvage out{Replica(group, self)};
  if (storage_key) {
    if (auto keys = store.keys(group); keys.ok()) {
      for (const auto& k : *keys) {
        if (auto key = open_key(*storage_key, group, k)) out.replica.restore_key(k.epoch, k.key_id, *key);
        else ++out.keys_unread;
      }
    } else {
      out.scans_complete = false;
    }
  }
  // Ids through both indexes: a damaged order entry still leaves the arrival one, and back.
  std::map<Hash, std::optional<Event>> found;
  auto ordered = store.for_each_event(group, [&](const Hash& id, std::uint64_t, ByteView bytes) {
    found[id] = stored_event(group, id, bytes);
    return true;
  });
  std::vector<Hash> arrived;
  auto arrivals = store.for_each_arrival(group, 0, [&](std::uint64_t, const Hash& id) {
    arrived.push_back(id);
    return true;
  });
  out.scans_complete = out.scans_complete && ordered.ok() && arrivals.ok();
  for (const Hash& id : arrived) {
    if (found.count(id)) continue;
    auto bytes = store.get_event(id);
    found[id] = bytes.ok() && bytes->has_value() ? stored_event(group, id, **bytes) : std::nullopt;
  }
  // Events that neither index reaches: a scan of every stored event, decoding only those it
  // has not seen (a repair is rare and asked for; its cost is one pass over the table).
  // A record that decodes to no event under its id belongs to no group any more: it is dropped
  // too, so that the event, fetched again, is stored rather than taken as stored already.
  auto scanned = store.for_each_stored_event([&](const Hash& id, ByteView bytes) {
    if (found.count(id)) return true;
    auto e = decode_event(bytes);
    if (!e.ok() || e->id != id) {
      out.unreadable.push_back(id);
    } else if (e->group_id() == group) {
      out.orphans.push_back(id);
      found[id] = std::move(e).value();
    }
    return true;
  });
  out.scans_complete = out.scans_complete && scanned.ok();
  std::vector<Event> events;
  for (auto& [id, e] : found) {
    if (e) {
      events.push_back(std::move(*e));
    } else {
      ++out.events_unread;
      out.unreadable.push_back(id);
    }
  }
  if (auto pending = store.pending(group); pending.ok()) {
    for (auto& [id, bytes] : *pending)
      if (auto e = stored_event(group, id, bytes)) events.push_back(std::move(*e));
  } else {
    out.scans_complete = false;
  }
  out.replica.ingest(std::move(events));
  (void)out.replica.take_new_keys();
  out.events_kept = out.replica.group().size();
  return out;
}

std::vector<Hash> Salvage::stale() const {
  std::vector<Hash> all = orphans;
  all.insert(all.end(), unreadable.begin(), unreadable.end());
  return all;
}

void rewrite_into(WriteBatch& batch, const Replica& replica, const SymmetricKey* storage_key,
                  const std::vector<Hash>& stale) {
  batch.delete_group(replica.id());
  for (const Hash& id : stale) batch.delete_event(id);
  IngestReport all;
  for (const EventRecord* rec : replica.group().ordered()) all.admitted.push_back(rec->event.id);
  // persist_into writes only the pending events a report names: here, all of them.
  for (const Event* e : replica.group().pending_events()) all.pending_added.push_back(e->id);
  std::vector<BundleKey> keys;
  if (storage_key) keys = replica.keyring().bundle(std::numeric_limits<std::size_t>::max());
  persist_into(batch, replica, all, keys, storage_key);
}

}  // namespace qun
