#include "node/transfer.h"

#include <algorithm>

namespace qun {

Transfers::Transfers(TransferConfig config, TransferEnv env)
    : config_(std::move(config)), env_(std::move(env)) {}

void Transfers::note(LogLevel level, const std::string& text) {
  config_.log(LogRecord{level, "transfer", text});
}

// ------------------------------------------------------------------------------------ fetching

Result<void> Transfers::fetch(Millis now, const Hash& group, const FileRef& file) {
  QUN_TRY_VOID(check_file_ref(file));
  if (fetches_.count(file.root)) return ok_result();
  if (fetches_.size() >= transfer_limits::fetches_max)
    return Error(Errc::too_large, std::to_string(transfer_limits::fetches_max) +
                                      " downloads are in progress; wait for one to finish");
  Fetch& f = fetches_[file.root];
  f.group = group;
  f.file = file;
  f.last_progress = now;
  if (auto manifest = env_.store.get(group, file.root)) {
    ++f.present;
    auto chunks = decode_manifest(*manifest, file.size);
    if (!chunks.ok()) {
      finish(f, false, "the file's manifest is malformed: " + chunks.error().context());
      return ok_result();
    }
    f.chunks = std::move(chunks).value();
    after_manifest(now, f);
  } else {
    f.missing.insert(file.root);
    schedule(now, f);
  }
  return ok_result();
}

// The manifest is known: what is left is the chunks the store lacks.
void Transfers::after_manifest(Millis now, Fetch& f) {
  f.have_manifest = true;
  for (std::size_t i = 0; i < f.chunks.size(); ++i) {
    f.index.emplace(f.chunks[i], i);
    if (env_.store.has(f.group, f.chunks[i])) {
      ++f.present;
    } else {
      f.missing.insert(f.chunks[i]);
      f.missing_order.insert(i);
    }
  }
  if (f.missing.empty()) return finish(f, true, "");
  out_.push_back(transfer_output::Progress{f.group, f.file.root, f.chunks.size() - f.missing.size(),
                                           f.chunks.size()});
  schedule(now, f);
}

// Asks for missing blobs that are not in flight, in file order, of the peers that did not say
// lately that they lack them, the least busy first, within the fetch's and each peer's window.
void Transfers::schedule(Millis now, Fetch& f) {
  const std::vector<PublicKey> peers = env_.peers(f.group);
  if (peers.empty()) return;
  std::map<PublicKey, std::size_t> busy;
  for (const auto& p : peers) busy[p] = 0;
  for (const auto& [id, a] : f.asked)
    if (busy.count(a.peer)) ++busy[a.peer];
  // Peers that can be asked for more: once none can, the rest of the missing blobs wait (without
  // this the walk went on through every missing blob, for each blob received: quadratic).
  std::size_t with_room = 0;
  for (const auto& [p, n] : busy)
    if (n < transfer_limits::gets_per_peer_max) ++with_room;
  std::map<PublicKey, std::vector<Hash>> asks;
  // File order: the manifest (only member of missing before it is known), then by index.
  std::vector<Hash> order;
  if (!f.have_manifest) order.assign(f.missing.begin(), f.missing.end());
  auto next = f.missing_order.begin();
  for (std::size_t k = 0;; ++k) {
    if (f.asked.size() + f.opening.size() >= transfer_limits::gets_in_flight_max || with_room == 0)
      break;
    Hash id;
    if (f.have_manifest) {
      if (next == f.missing_order.end()) break;
      id = f.chunks[*next++];
    } else {
      if (k >= order.size()) break;
      id = order[k];
    }
    if (f.asked.count(id) || f.opening.count(id)) continue;
    const auto lacked = f.lacks.find(id);
    const PublicKey* best = nullptr;
    for (const auto& p : peers) {
      if (busy[p] >= transfer_limits::gets_per_peer_max) continue;
      if (lacked != f.lacks.end()) {
        auto l = lacked->second.find(p);
        if (l != lacked->second.end() && now < l->second + transfer_limits::none_retry_ms) continue;
      }
      if (!best || busy[p] < busy[*best]) best = &p;
    }
    if (!best) continue;
    if (++busy[*best] == transfer_limits::gets_per_peer_max) --with_room;
    f.asked[id] = Asked{*best, now};
    asks[*best].push_back(id);
  }
  for (auto& [peer, ids] : asks)
    out_.push_back(transfer_output::Send{peer, wire::BlobGet{f.group, std::move(ids)}});
}

void Transfers::finish(Fetch& f, bool ok, std::string error) {
  if (!ok) note(LogLevel::info, "fetch " + short_hex(f.file.root) + " failed: " + error);
  const Hash root = f.file.root;
  out_.push_back(transfer_output::FetchDone{f.group, root, ok, std::move(error), f.moved, f.present});
  fetches_.erase(root);
}

Result<Bytes> open_fetched(const transfer_output::Open& o) {
  return open_chunk(o.key, o.size, o.index, o.blob);
}

void Transfers::on_blob(Millis now, const PublicKey& peer, const Hash& group, const Hash& id,
                        Bytes data) {
  // A relay takes what it asked an uploader for.
  if (config_.relay) {
    auto e = expected_.find(peer);
    if (e == expected_.end() || !e->second.erase({group, id})) {
      ++stats_.blobs_refused;
      return;
    }
    if (e->second.empty()) expected_.erase(e);
    if (auto r = env_.store.put(group, id, data); !r.ok())
      note(LogLevel::warn, "blob " + short_hex(id) + " not stored: " + r.error().message());
    else ++stats_.blobs_received;
    return;
  }
  // A member takes what one of its fetches asked for (of anyone: the hash is the proof).
  Fetch* f = nullptr;
  for (auto& [root, candidate] : fetches_) {
    if (candidate.group == group && candidate.asked.count(id)) {
      f = &candidate;
      break;
    }
  }
  if (!f) {
    ++stats_.blobs_refused;
    return;
  }
  f->asked.erase(id);
  // Asked twice after a timeout: already stored, or being opened.
  if (!f->missing.count(id) || f->opening.count(id)) return;
  if (!f->have_manifest) {
    auto chunks = decode_manifest(data, f->file.size);
    if (!chunks.ok()) return finish(*f, false, "the file's manifest is malformed: " + chunks.error().context());
    if (auto r = env_.store.put(f->group, id, data); !r.ok())
      return finish(*f, false, "could not store the file: " + r.error().message());
    ++f->moved;
    ++stats_.blobs_received;
    f->missing.erase(id);
    f->last_progress = now;
    f->chunks = std::move(chunks).value();
    return after_manifest(now, *f);
  }
  f->opening.insert(id);
  out_.push_back(transfer_output::Open{f->group, f->file.root, id, f->index.at(id), f->file.key,
                                       f->file.size, std::move(data)});
  // The peer has room for another ask (the chunk is out of its count, still in the window).
  schedule(now, *f);
}

void Transfers::on_opened(Millis now, const Hash& root, const Hash& id, bool opened, Bytes blob) {
  auto it = fetches_.find(root);
  if (it == fetches_.end() || !it->second.opening.erase(id)) return;
  Fetch& f = it->second;
  const std::size_t index = f.index.at(id);
  // The author of the post made the manifest: a blob that matches its address but does not
  // open at its place is the author's doing, and no peer can give a better one.
  if (!opened)
    return finish(f, false, "chunk " + std::to_string(index) + " of the file does not "
                            "decrypt: the post that shares it is bad");
  if (auto r = env_.store.put(f.group, id, blob); !r.ok())
    return finish(f, false, "could not store the file: " + r.error().message());
  ++f.moved;
  ++stats_.blobs_received;
  f.missing.erase(id);
  f.missing_order.erase(index);
  f.lacks.erase(id);
  f.last_progress = now;
  out_.push_back(transfer_output::Progress{f.group, f.file.root,
                                           f.chunks.size() - f.missing.size(), f.chunks.size()});
  if (f.missing.empty()) return finish(f, true, "");
  schedule(now, f);
}

void Transfers::on_none(Millis now, const PublicKey& peer, const wire::BlobNone& m) {
  for (auto& [root, f] : fetches_) {
    if (f.group != m.group) continue;
    bool changed = false;
    for (const Hash& id : m.ids) {
      auto a = f.asked.find(id);
      if (a == f.asked.end() || a->second.peer != peer) continue;
      f.asked.erase(a);
      f.lacks[id][peer] = now;
      changed = true;
    }
    if (changed) schedule(now, f);
  }
}

// ------------------------------------------------------------------------------------- serving

void Transfers::on_get(Millis, const PublicKey& peer, const wire::BlobGet& m) {
  if (!serving_.count(peer) && serving_.size() >= transfer_limits::serving_peers_max) {
    stats_.gets_refused += m.ids.size();
    out_.push_back(transfer_output::Send{peer, wire::BlobNone{m.group, m.ids}});
    return;
  }
  Serving& s = serving_[peer];
  std::vector<Hash> none;
  for (const Hash& id : m.ids) {
    if (!env_.store.has(m.group, id)) {
      none.push_back(id);
    } else if (s.queue.size() >= transfer_limits::serve_queue_per_peer_max) {
      ++stats_.gets_refused;
      none.push_back(id);
    } else {
      s.queue.emplace_back(m.group, id);
    }
  }
  if (!none.empty()) out_.push_back(transfer_output::Send{peer, wire::BlobNone{m.group, std::move(none)}});
  if (s.queue.empty() && !s.held) serving_.erase(peer);
}

void Transfers::on_lane_full(Millis, const PublicKey& peer, WireMessage message) {
  Serving& s = serving_[peer];
  if (std::holds_alternative<wire::Blob>(message)) s.held = std::move(message);
  // Any other message refused for room is small and repeated by its own timer (a get times
  // out, an offer is repeated): dropping it costs a retry, never a bound.
  s.blocked = true;
}

void Transfers::on_lane_ready(Millis, const PublicKey& peer) {
  auto s = serving_.find(peer);
  if (s != serving_.end()) s->second.blocked = false;
}

std::optional<TransferOutput> Transfers::poll() {
  if (!out_.empty()) {
    TransferOutput o = std::move(out_.front());
    out_.pop_front();
    return o;
  }
  // One blob to the first peer with room, round the peers in key order: a lane takes one whole
  // message at a time, and the driver says when one is full.
  for (auto it = serving_.begin(); it != serving_.end();) {
    Serving& s = it->second;
    if (s.blocked) {
      ++it;
      continue;
    }
    const PublicKey peer = it->first;
    if (s.held) {
      WireMessage m = std::move(*s.held);
      s.held.reset();
      return transfer_output::Send{peer, std::move(m)};
    }
    while (!s.queue.empty()) {
      auto [group, id] = s.queue.front();
      s.queue.pop_front();
      auto blob = env_.store.serve(group, id);
      if (!blob) continue;  // evicted or removed since the get
      ++stats_.blobs_served;
      return transfer_output::Send{peer, wire::Blob{group, std::move(*blob)}};
    }
    it = serving_.erase(it);
  }
  return std::nullopt;
}

// ------------------------------------------------------------------------------------- uploads

void Transfers::upload(Millis now, const Hash& group, std::vector<Hash> blobs) {
  if (uploads_.size() >= transfer_limits::uploads_max) uploads_.pop_front();
  Upload u;
  u.group = group;
  u.blobs = std::move(blobs);
  u.added = now;
  uploads_.push_back(std::move(u));
  offer(now);
}

// Offers each upload to the linked relays of its group that have not said they hold it all.
void Transfers::offer(Millis now) {
  for (Upload& u : uploads_) {
    if (u.blobs.empty()) continue;
    for (const PublicKey& relay : env_.relays(u.group)) {
      if (u.done.count(relay)) continue;
      auto next = u.next_offer.find(relay);
      if (next != u.next_offer.end() && now < next->second) continue;
      u.next_offer[relay] = now + transfer_limits::offer_retry_ms;
      u.clean[relay] = 0;
      auto& outstanding = offers_out_[{u.group, relay}];
      for (std::size_t at = 0; at < u.blobs.size(); at += wire_limits::ids_max) {
        const std::size_t end = std::min(u.blobs.size(), at + wire_limits::ids_max);
        std::vector<Hash> ids(u.blobs.begin() + static_cast<long>(at),
                              u.blobs.begin() + static_cast<long>(end));
        outstanding.push_back(u.blobs.front());
        out_.push_back(transfer_output::Send{relay, wire::BlobOffer{u.group, std::move(ids)}});
      }
    }
  }
}

// A relay answers each offer with one get, in order: an empty one says it holds that part.
void Transfers::on_get_from_relay(Millis now, const PublicKey& relay, const wire::BlobGet& m) {
  auto& outstanding = offers_out_[{m.group, relay}];
  const Hash root = outstanding.front();
  outstanding.pop_front();
  if (outstanding.empty()) offers_out_.erase({m.group, relay});
  if (!m.ids.empty()) return on_get(now, relay, m);
  for (Upload& u : uploads_) {
    if (u.group != m.group || u.blobs.empty() || u.blobs.front() != root) continue;
    const std::size_t batches = (u.blobs.size() + wire_limits::ids_max - 1) / wire_limits::ids_max;
    if (++u.clean[relay] >= batches) {
      u.done.insert(relay);
      note(LogLevel::info, "relay " + short_hex(relay) + " holds file " + short_hex(root));
    }
  }
}

void Transfers::on_offer(Millis, const PublicKey& peer, const wire::BlobOffer& m) {
  // A member stores only what it fetches: an offer to it is ignored (it is sent to relays).
  if (!config_.relay) return;
  auto& expected = expected_[peer];
  std::vector<Hash> want;
  for (const Hash& id : m.ids) {
    if (env_.store.has(m.group, id) || expected.count({m.group, id})) continue;
    if (expected.size() >= transfer_limits::relay_expected_per_peer_max) break;
    expected.insert({m.group, id});
    want.push_back(id);
  }
  if (expected.empty()) expected_.erase(peer);
  out_.push_back(transfer_output::Send{peer, wire::BlobGet{m.group, std::move(want)}});
}

// ------------------------------------------------------------------------------------- inputs

void Transfers::on_message(Millis now, const PublicKey& peer, const WireMessage& message) {
  if (auto* g = std::get_if<wire::BlobGet>(&message)) {
    auto o = offers_out_.find({g->group, peer});
    if (o != offers_out_.end() && !o->second.empty()) return on_get_from_relay(now, peer, *g);
    return on_get(now, peer, *g);
  }
  if (auto* b = std::get_if<wire::Blob>(&message)) return on_blob(now, peer, b->group, blob_id(b->data), b->data);
  if (auto* n = std::get_if<wire::BlobNone>(&message)) return on_none(now, peer, *n);
  if (auto* o = std::get_if<wire::BlobOffer>(&message)) return on_offer(now, peer, *o);
}

void Transfers::on_tick(Millis now) {
  std::vector<Hash> stalled;
  for (auto& [root, f] : fetches_) {
    const std::vector<PublicKey> peers = env_.peers(f.group);
    // Asks that timed out, or whose peer is gone, go to another peer.
    for (auto a = f.asked.begin(); a != f.asked.end();) {
      const bool gone = !std::binary_search(peers.begin(), peers.end(), a->second.peer);
      if (gone || now >= a->second.at + transfer_limits::get_timeout_ms) {
        f.lacks[a->first][a->second.peer] = now;
        a = f.asked.erase(a);
      } else {
        ++a;
      }
    }
    schedule(now, f);
    if (f.asked.empty() && f.opening.empty() && now >= f.last_progress + transfer_limits::fetch_stall_ms)
      stalled.push_back(root);
  }
  for (const Hash& root : stalled) {
    Fetch& f = fetches_.at(root);
    const std::size_t total = f.have_manifest ? f.chunks.size() : 0;
    const std::string have =
        f.have_manifest ? std::to_string(total - f.missing.size()) + " of " + std::to_string(total) +
                              " chunks are here"
                        : "not even its list of chunks is here";
    finish(f, false,
           env_.peers(f.group).empty()
               ? "no peer of the group is linked (" + have + "); try again when one is"
               : "no linked peer or relay holds the rest of the file (" + have +
                     "); try again when its sender is online");
  }
  // Offers to a relay whose link went will not be answered; what a relay expected of an
  // uploader whose link went will not come (it offers again when it is back).
  for (auto o = offers_out_.begin(); o != offers_out_.end();) {
    const auto relays = env_.relays(o->first.first);
    if (std::find(relays.begin(), relays.end(), o->first.second) == relays.end())
      o = offers_out_.erase(o);
    else
      ++o;
  }
  for (auto e = expected_.begin(); e != expected_.end();) {
    const auto peers = env_.peers(e->second.begin()->first);
    if (!std::binary_search(peers.begin(), peers.end(), e->first))
      e = expected_.erase(e);
    else
      ++e;
  }
  offer(now);
}

}  // namespace qun
