// Tests for node/file.h (and crypto/stream.h under it) and node/transfer.h: a file's chunks
// are sealed at their place and refused anywhere else or altered; the manifest and the file
// part of a post decode strictly; and the Transfers engine, wired between engines by hand with
// in-memory stores (no links, no clock), fetches a file whole, refuses forged and corrupted
// blobs, resumes with only what is missing, and lets a relay take an upload blind.
#include "node/transfer.h"

#include <catch2/catch.hpp>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "crypto/rng.h"
#include "crypto/stream.h"
#include "node/file.h"
#include "node/payload.h"

namespace qun {
namespace {

namespace to = transfer_output;

PublicKey peer_key(std::uint64_t n) {
  Rng rng = Rng::from_u64(0xf11e0000 + n);
  return SigningKey::generate(rng).public_key();
}

struct MemStore final : BlobStore {
  std::map<std::pair<Hash, Hash>, Bytes> blobs;
  bool has(const Hash& g, const Hash& id) const override { return blobs.count({g, id}) != 0; }
  std::optional<Bytes> get(const Hash& g, const Hash& id) const override {
    auto it = blobs.find({g, id});
    if (it == blobs.end()) return std::nullopt;
    return it->second;
  }
  Result<void> put(const Hash& g, const Hash& id, ByteView blob) override {
    blobs[{g, id}] = Bytes(blob.begin(), blob.end());
    return ok_result();
  }
};

// A file sealed into a store as FileService::seal does: its FileRef and its blobs (manifest
// first).
struct Sealed {
  FileRef ref;
  std::vector<Hash> blobs;
  Bytes plain;
};
Sealed seal_into(MemStore& store, const Hash& group, std::size_t size, std::uint64_t seed) {
  Rng rng = Rng::from_u64(seed);
  Sealed s;
  s.plain.resize(size);
  rng.fill(s.plain);
  s.ref.name = "f.bin";
  s.ref.size = size;
  s.ref.media_type = "application/octet-stream";
  rng.fill(s.ref.key.bytes);
  s.ref.content = hash(s.plain);
  std::vector<Hash> chunks;
  std::size_t at = 0;
  for (std::size_t i = 0; i < chunk_count(size); ++i) {
    const std::size_t n = chunk_plain_bytes(size, i);
    Bytes blob = seal_chunk(s.ref.key, size, i, ByteView(s.plain).subspan(at, n));
    at += n;
    chunks.push_back(blob_id(blob));
    (void)store.put(group, chunks.back(), blob);
  }
  Bytes manifest = encode_manifest(chunks);
  s.ref.root = blob_id(manifest);
  (void)store.put(group, s.ref.root, manifest);
  s.blobs.push_back(s.ref.root);
  s.blobs.insert(s.blobs.end(), chunks.begin(), chunks.end());
  return s;
}

// Engines wired to each other: every Send is delivered at once, every engine sees every other
// as a linked peer of the group, and the ones marked relay as its relays. A rogue hook may
// rewrite messages in flight.
struct Mesh {
  Hash group = hash(as_bytes("group"));
  std::vector<PublicKey> keys;
  std::vector<std::unique_ptr<MemStore>> stores;
  std::vector<std::unique_ptr<Transfers>> engines;
  std::vector<bool> relay;
  std::vector<std::vector<TransferOutput>> seen;  // non-Send outputs per engine
  std::function<std::optional<WireMessage>(std::size_t from, std::size_t to, WireMessage)> rogue;
  // When set, Opens wait here (as they wait on the daemon's thread pool) until answered by hand.
  bool hold_opens = false;
  std::vector<std::pair<std::size_t, to::Open>> held;
  Millis now = 1000;

  std::size_t add(bool is_relay) {
    const std::size_t i = keys.size();
    keys.push_back(peer_key(i));
    stores.push_back(std::make_unique<MemStore>());
    relay.push_back(is_relay);
    seen.emplace_back();
    TransferEnv env{*stores.back(), nullptr, nullptr};
    env.peers = [this, i](const Hash&) {
      std::vector<PublicKey> out;
      for (std::size_t j = 0; j < keys.size(); ++j)
        if (j != i) out.push_back(keys[j]);
      std::sort(out.begin(), out.end());
      return out;
    };
    env.relays = [this, i](const Hash&) {
      std::vector<PublicKey> out;
      for (std::size_t j = 0; j < keys.size(); ++j)
        if (j != i && relay[j]) out.push_back(keys[j]);
      return out;
    };
    engines.push_back(std::make_unique<Transfers>(TransferConfig{is_relay, null_log_sink()}, env));
    return i;
  }
  std::size_t index_of(const PublicKey& k) const {
    return static_cast<std::size_t>(std::find(keys.begin(), keys.end(), k) - keys.begin());
  }
  void run() {
    bool any = true;
    while (any) {
      any = false;
      for (std::size_t i = 0; i < engines.size(); ++i) {
        while (auto o = engines[i]->poll()) {
          any = true;
          if (auto* s = std::get_if<to::Send>(&*o)) {
            const std::size_t j = index_of(s->peer);
            std::optional<WireMessage> m = std::move(s->message);
            if (rogue) m = rogue(i, j, std::move(*m));
            if (m) engines[j]->on_message(now, keys[i], *m);
          } else if (auto* op = std::get_if<to::Open>(&*o)) {
            if (hold_opens) {
              held.emplace_back(i, std::move(*op));
              continue;
            }
            // As the daemon does off its loop, here at once.
            const bool opened = open_fetched(*op).ok();
            engines[i]->on_opened(now, op->root, op->id, opened, std::move(op->blob));
          } else {
            seen[i].push_back(std::move(*o));
          }
        }
      }
    }
  }
  std::optional<to::FetchDone> done(std::size_t i) const {
    for (const auto& o : seen[i])
      if (auto* d = std::get_if<to::FetchDone>(&o)) return *d;
    return std::nullopt;
  }
};

TEST_CASE("files: a chunk opens only at its own place, under its key, unaltered", "[node][files]") {
  // Proves STREAM's guarantees as qun uses them: each chunk authenticates with its index and
  // last flag bound in, so a chunk moved to another place, a last chunk presented as a middle
  // one (a truncation), another file's key or one flipped bit are all refused.
  Rng rng = Rng::from_u64(7);
  FileKey key;
  rng.fill(key.bytes);
  const std::uint64_t size = 3 * file_limits::chunk_bytes + 100;  // four chunks
  REQUIRE(chunk_count(size) == 4);
  Bytes plain(file_limits::chunk_bytes, 0x61);
  const Bytes c1 = seal_chunk(key, size, 1, plain);
  CHECK(open_chunk(key, size, 1, c1).value() == plain);
  CHECK(open_chunk(key, size, 2, c1).error().code() == Errc::decrypt_failed);  // moved
  FileKey other = key;
  other.bytes[0] ^= 1;
  CHECK(open_chunk(other, size, 1, c1).error().code() == Errc::decrypt_failed);  // another key
  Bytes flipped = c1;
  flipped[100] ^= 0x04;
  CHECK(open_chunk(key, size, 1, flipped).error().code() == Errc::decrypt_failed);
  // The last chunk (100 bytes) is sealed as last: the same bytes at a middle place do not open,
  // and a file cut after chunk 1 (so that chunk 1 would be last) does not open chunk 1 either.
  const Bytes last = seal_chunk(key, size, 3, Bytes(100, 0x62));
  CHECK(open_chunk(key, size, 3, last).ok());
  CHECK_FALSE(stream_open([&] {
                SymmetricKey k;
                std::copy(key.bytes.begin(), key.bytes.end(), k.data());
                return k;
              }(), 1, true, c1).ok());
  // A chunk of the wrong length for its place is refused before decryption.
  CHECK(open_chunk(key, size, 3, c1).error().code() == Errc::malformed);
  CHECK(open_chunk(key, size, 4, last).error().code() == Errc::malformed);  // no chunk 4
  // An empty file is one empty last chunk.
  CHECK(chunk_count(0) == 1);
  CHECK(open_chunk(key, 0, 0, seal_chunk(key, 0, 0, {})).value().empty());
}

TEST_CASE("files: the manifest and a post's file part decode strictly", "[node][files]") {
  // Proves the decoders of peer input added for files refuse what does not fit: a manifest of
  // the wrong length for the file's size, a file over the limit, and file names that are not a
  // plain base name; and that a post carrying a file round-trips while a plain post still
  // decodes as before (four fields).
  std::vector<Hash> ids{hash(as_bytes("a")), hash(as_bytes("b"))};
  const std::uint64_t size = file_limits::chunk_bytes + 1;
  CHECK(decode_manifest(encode_manifest(ids), size).value() == ids);
  CHECK_FALSE(decode_manifest(encode_manifest(ids), 10).ok());  // one chunk, two ids
  Bytes cut = encode_manifest(ids);
  cut.pop_back();
  CHECK_FALSE(decode_manifest(cut, size).ok());
  CHECK_FALSE(decode_manifest({}, file_limits::file_bytes_max + 1).ok());

  FileRef f;
  f.name = "photo.png";
  f.size = 1234;
  f.media_type = "image/png";
  f.key.bytes.fill(3);
  f.root = ids[0];
  f.content = ids[1];
  PostPlain p{"caption", std::nullopt, ids[0], false, f};
  auto back = decode_post_plain(encode_plain(p));
  REQUIRE(back.ok());
  REQUIRE(back->file);
  CHECK(*back->file == f);
  CHECK_FALSE(decode_post_plain(encode_plain(PostPlain{"t", std::nullopt, ids[0], false})).value().file);
  for (const std::string bad : {"", "..", ".", "a/b", "../etc", "x\ny"}) {
    INFO("name " << bad);
    FileRef g = f;
    g.name = bad;
    CHECK_FALSE(decode_post_plain(encode_plain(PostPlain{"t", std::nullopt, ids[0], false, g})).ok());
  }
  FileRef big = f;
  big.size = file_limits::file_bytes_max + 1;
  CHECK_FALSE(decode_post_plain(encode_plain(PostPlain{"t", std::nullopt, ids[0], false, big})).ok());
  CHECK(safe_file_name("../../etc/passwd") == "passwd");
  CHECK(safe_file_name("..") == "file");
}

TEST_CASE("transfers: a fetch gets every blob, checked, from the peers that hold them",
          "[node][files]") {
  // Proves the fetch path end to end between engines: bob fetches alice's 20-chunk file, asks
  // no more than gets_in_flight_max at once, stores exactly the file's blobs (each one equal to
  // alice's), reports progress up to 20 of 20 and a FetchDone with all 21 blobs moved.
  Mesh m;
  const std::size_t alice = m.add(false), bob = m.add(false);
  const Sealed s = seal_into(*m.stores[alice], m.group, 20 * file_limits::chunk_bytes - 5, 11);
  REQUIRE(m.engines[bob]->fetch(m.now, m.group, s.ref).ok());
  m.run();
  auto d = m.done(bob);
  REQUIRE(d);
  CHECK(d->ok);
  CHECK(d->moved == 21);
  CHECK(d->present == 0);
  CHECK(m.stores[bob]->blobs == m.stores[alice]->blobs);
  std::size_t last_have = 0;
  for (const auto& o : m.seen[bob])
    if (auto* p = std::get_if<to::Progress>(&o)) last_have = p->have;
  CHECK(last_have == 20);
  CHECK_FALSE(m.engines[bob]->fetching(s.ref.root));
}

TEST_CASE("transfers: forged and corrupted blobs are refused; the fetch gets true ones",
          "[node][files]") {
  // Proves what a hostile peer can do to a fetch: mallory (who holds nothing) answers every get
  // it sees with a blob of junk, and carol, who holds the file, corrupts one byte of every blob
  // she sends on her first answer. Bob stores none of it (refused: the hash is not the address
  // asked for, or nobody asked), asks again after the timeout, and completes from alice with
  // every stored blob equal to the original.
  Mesh m;
  const std::size_t alice = m.add(false), bob = m.add(false), carol = m.add(false),
                    mallory = m.add(false);
  const Sealed s = seal_into(*m.stores[alice], m.group, 5 * file_limits::chunk_bytes, 12);
  m.stores[carol]->blobs = m.stores[alice]->blobs;
  std::size_t corrupted = 0, forged = 0;
  m.rogue = [&](std::size_t from, std::size_t to_index, WireMessage msg) -> std::optional<WireMessage> {
    if (from == carol && to_index == bob) {
      if (auto* b = std::get_if<wire::Blob>(&msg); b && corrupted < 3) {
        b->data[b->data.size() / 2] ^= 0x01;
        ++corrupted;
      }
    }
    if (from == bob && to_index == mallory && std::holds_alternative<wire::BlobGet>(msg)) {
      ++forged;
      m.engines[bob]->on_message(m.now, m.keys[mallory], wire::Blob{m.group, Bytes(500, 0x66)});
      return std::nullopt;  // mallory never answers
    }
    return msg;
  };
  REQUIRE(m.engines[bob]->fetch(m.now, m.group, s.ref).ok());
  m.run();
  for (int tick = 0; tick < 10 && !m.done(bob); ++tick) {
    m.now += transfer_limits::get_timeout_ms;
    m.engines[bob]->on_tick(m.now);
    m.run();
  }
  auto d = m.done(bob);
  REQUIRE(d);
  CHECK(d->ok);
  CHECK(corrupted > 0);
  CHECK(forged > 0);
  CHECK(m.engines[bob]->stats().blobs_refused >= corrupted + forged);
  for (const auto& [key, blob] : m.stores[bob]->blobs) CHECK(blob_id(blob) == key.second);
  CHECK(m.stores[bob]->blobs == m.stores[alice]->blobs);
}

TEST_CASE("transfers: a blob that matches its address but not its place fails the fetch",
          "[node][files]") {
  // Proves that the author of a bad post cannot make a reader accept wrong bytes: a FileRef
  // whose key does not open the chunks (all blobs verify by hash) ends the fetch with one line
  // saying the post is bad, instead of storing chunks that would not decrypt.
  Mesh m;
  const std::size_t alice = m.add(false), bob = m.add(false);
  Sealed s = seal_into(*m.stores[alice], m.group, 3 * file_limits::chunk_bytes, 13);
  s.ref.key.bytes[5] ^= 0xff;
  REQUIRE(m.engines[bob]->fetch(m.now, m.group, s.ref).ok());
  m.run();
  auto d = m.done(bob);
  REQUIRE(d);
  CHECK_FALSE(d->ok);
  CHECK(d->error.find("does not decrypt") != std::string::npos);
}

TEST_CASE("transfers: chunks out to be opened stay in flight until answered", "[node][files]") {
  // Proves the engine's side of opening chunks off the loop: chunks matched but not yet opened
  // count in the fetch's window (no more than gets_in_flight_max are out at once), are neither
  // asked again nor let the fetch stall while they wait (past get_timeout_ms and
  // fetch_stall_ms), and are stored only once answered, in any order. Then a second fetch fails
  // on a chunk that does not open, and the answers still out for it are dropped: nothing more
  // is stored, and nothing breaks.
  Mesh m;
  m.hold_opens = true;
  const std::size_t alice = m.add(false), bob = m.add(false);
  const Sealed s = seal_into(*m.stores[alice], m.group, 40 * file_limits::chunk_bytes, 17);
  std::size_t gets = 0;
  m.rogue = [&](std::size_t from, std::size_t, WireMessage msg) -> std::optional<WireMessage> {
    if (auto* g = std::get_if<wire::BlobGet>(&msg); g && from == bob) gets += g->ids.size();
    return msg;
  };
  REQUIRE(m.engines[bob]->fetch(m.now, m.group, s.ref).ok());
  m.run();
  CHECK(m.held.size() == transfer_limits::gets_in_flight_max);
  CHECK(gets == 1 + transfer_limits::gets_in_flight_max);  // the manifest, then a window
  CHECK(m.stores[bob]->blobs.size() == 1);                  // the manifest only
  for (Millis waited = 0; waited <= transfer_limits::fetch_stall_ms; waited += 1000) {
    m.now += 1000;
    m.engines[bob]->on_tick(m.now);
    m.run();
  }
  CHECK_FALSE(m.done(bob));
  CHECK(gets == 1 + transfer_limits::gets_in_flight_max);
  // Answered newest first; each answer frees a place in the window, so the rest is asked for.
  while (!m.held.empty()) {
    auto [i, op] = std::move(m.held.back());
    m.held.pop_back();
    const bool opened = open_fetched(op).ok();
    m.engines[i]->on_opened(m.now, op.root, op.id, opened, std::move(op.blob));
    m.run();
  }
  auto d = m.done(bob);
  REQUIRE(d);
  CHECK(d->ok);
  CHECK(gets == s.blobs.size());
  CHECK(m.stores[bob]->blobs == m.stores[alice]->blobs);

  Sealed bad = seal_into(*m.stores[alice], m.group, 8 * file_limits::chunk_bytes, 18);
  bad.ref.key.bytes[0] ^= 0x01;  // no chunk opens
  m.seen[bob].clear();
  REQUIRE(m.engines[bob]->fetch(m.now, m.group, bad.ref).ok());
  m.run();
  REQUIRE(m.held.size() == 8);
  const std::uint64_t received = m.engines[bob]->stats().blobs_received;
  const std::size_t stored = m.stores[bob]->blobs.size();
  for (auto& [i, op] : m.held) {
    m.engines[i]->on_opened(m.now, op.root, op.id, open_fetched(op).ok(), std::move(op.blob));
    m.run();
  }
  m.held.clear();
  d = m.done(bob);
  REQUIRE(d);
  CHECK_FALSE(d->ok);
  CHECK(d->error.find("does not decrypt") != std::string::npos);
  CHECK(m.engines[bob]->stats().blobs_received == received);
  CHECK(m.stores[bob]->blobs.size() == stored);
  CHECK_FALSE(m.engines[bob]->fetching(bad.ref.root));
}

TEST_CASE("transfers: a resumed fetch asks only for the blobs it lacks", "[node][files]") {
  // Proves resumption: bob's store already holds the manifest and every other chunk (what an
  // interrupted fetch leaves); the fetch asks alice for exactly the missing chunks (counted on
  // the wire: the ids in bob's gets) and reports them as moved, the rest as present.
  Mesh m;
  const std::size_t alice = m.add(false), bob = m.add(false);
  const Sealed s = seal_into(*m.stores[alice], m.group, 10 * file_limits::chunk_bytes, 14);
  std::set<Hash> missing;
  for (std::size_t i = 0; i < s.blobs.size(); ++i) {
    if (i > 0 && i % 2 == 1) {
      missing.insert(s.blobs[i]);
      continue;
    }
    m.stores[bob]->blobs[{m.group, s.blobs[i]}] = m.stores[alice]->blobs.at({m.group, s.blobs[i]});
  }
  std::set<Hash> asked;
  m.rogue = [&](std::size_t from, std::size_t, WireMessage msg) -> std::optional<WireMessage> {
    if (auto* g = std::get_if<wire::BlobGet>(&msg); g && from == bob)
      asked.insert(g->ids.begin(), g->ids.end());
    return msg;
  };
  REQUIRE(m.engines[bob]->fetch(m.now, m.group, s.ref).ok());
  m.run();
  auto d = m.done(bob);
  REQUIRE(d);
  CHECK(d->ok);
  CHECK(asked == missing);
  CHECK(d->moved == missing.size());
  CHECK(d->present == s.blobs.size() - missing.size());
}

TEST_CASE("transfers: a relay takes an upload blind and serves it when the sender is gone",
          "[node][files]") {
  // Proves the relay path: alice uploads a file; the relay asks for every blob it lacks and
  // stores them (it holds no key; it checks only their hashes), answers a second offer with an
  // empty get (alice then stops offering it); a blob the relay never asked for is refused. Then
  // alice is gone (her store emptied), and bob fetches the whole file from the relay.
  Mesh m;
  const std::size_t alice = m.add(false), relay = m.add(true), bob = m.add(false);
  const Sealed s = seal_into(*m.stores[alice], m.group, 4 * file_limits::chunk_bytes + 9, 15);
  std::size_t offers = 0;
  m.rogue = [&](std::size_t from, std::size_t to_index, WireMessage msg) -> std::optional<WireMessage> {
    if (from == alice && to_index == relay && std::holds_alternative<wire::BlobOffer>(msg)) ++offers;
    return msg;
  };
  m.engines[alice]->upload(m.now, m.group, s.blobs);
  m.run();
  CHECK(m.stores[relay]->blobs == m.stores[alice]->blobs);
  CHECK(offers == 1);
  m.now += transfer_limits::offer_retry_ms;
  m.engines[alice]->on_tick(m.now);
  m.run();
  CHECK(offers == 2);  // the relay answers it holds everything
  m.now += transfer_limits::offer_retry_ms;
  m.engines[alice]->on_tick(m.now);
  m.run();
  CHECK(offers == 2);  // so alice offers no more
  m.engines[relay]->on_message(m.now, m.keys[bob], wire::Blob{m.group, Bytes(70, 1)});
  CHECK(m.engines[relay]->stats().blobs_refused == 1);
  CHECK(m.stores[relay]->blobs.size() == s.blobs.size());

  m.stores[alice]->blobs.clear();
  REQUIRE(m.engines[bob]->fetch(m.now, m.group, s.ref).ok());
  m.run();
  for (int tick = 0; tick < 5 && !m.done(bob); ++tick) {
    m.now += transfer_limits::none_retry_ms;
    m.engines[bob]->on_tick(m.now);
    m.run();
  }
  auto d = m.done(bob);
  REQUIRE(d);
  CHECK(d->ok);
  CHECK(m.stores[bob]->blobs == m.stores[relay]->blobs);
}

TEST_CASE("transfers: with nobody holding the file, a fetch fails after the stall bound",
          "[node][files]") {
  // Proves a fetch never hangs: when every linked peer answers none, the fetch ends within
  // fetch_stall_ms with a line saying what is here and what to do.
  Mesh m;
  const std::size_t bob = m.add(false);
  m.add(false);  // carol, who holds nothing
  MemStore elsewhere;
  const Sealed s = seal_into(elsewhere, m.group, 100, 16);
  REQUIRE(m.engines[bob]->fetch(m.now, m.group, s.ref).ok());
  m.run();
  CHECK_FALSE(m.done(bob));
  for (int tick = 0; tick < 40 && !m.done(bob); ++tick) {
    m.now += 1000;
    m.engines[bob]->on_tick(m.now);
    m.run();
  }
  auto d = m.done(bob);
  REQUIRE(d);
  CHECK_FALSE(d->ok);
  CHECK(d->error.find("try again when its sender is online") != std::string::npos);
}

}  // namespace
}  // namespace qun
