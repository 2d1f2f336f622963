// Transfers: moving the blobs of shared files (node/file.h) between nodes, as a sans-IO engine.
//
// Three jobs, over the file-lane messages of node/wire.h (docs/protocol.md, "Files"):
//   - Fetching: the manifest, then every chunk a node lacks, asked of the linked peers that
//     share the group (members and relays), a bounded number in flight, each answer checked
//     against the address asked for (its hash) and opened at its place (STREAM) before it is
//     stored. Both checks are the costliest work of a fetch (BLAKE2b and ChaCha20-Poly1305 over
//     every byte), so the driver may run them elsewhere: it hashes a blob before on_blob, and
//     answers each Open (a chunk to open) with on_opened; the chunk counts as in flight
//     meanwhile. Blobs already stored are never asked for again, so a fetch that was interrupted
//     resumes with what is missing.
//   - Serving: any node answers gets for blobs it holds; a relay also takes the blobs that
//     members offer it (within the store's byte bound: the store evicts), so a file outlives its
//     sender's presence.
//   - Uploading: the sender offers a new file's blobs to the relays of the group it is linked
//     to, until each has answered that it holds them all.
//
// Calling contract (STYLE.md's engine shape):
//   - The driver feeds node_output::FileMessage to on_message (or, for a wire::Blob whose hash
//     it computed, to on_blob), node_output::FileLaneReady to on_lane_ready, answers every Open
//     with on_opened (open_fetched does the work, on any thread), calls on_tick at least once a
//     second, and drains poll() after every call.
//   - Every Send goes to Node::send_file. When that fails with too_large (lane full), the driver
//     hands the message back with on_lane_full; with any other error it drops it.
//   - The BlobStore and the peer lists are injected (Env), as LevelDB injects its Env: the store
//     is the driver's (disk in the daemon, memory in tests). The engine reads no clock and draws
//     no randomness. Not thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/log.h"
#include "base/result.h"
#include "base/time.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "node/file.h"
#include "node/wire.h"

namespace qun {

namespace transfer_limits {
// Blobs asked for and not yet answered, per fetch: 32 blobs are 2 MiB in flight, which keeps a
// path of 100 Mbit/s and 160 ms round trip busy, and is what one fetch can make peers queue.
inline constexpr std::size_t gets_in_flight_max = 32;
// ... of which one peer is asked at most: half, so two peers share the work.
inline constexpr std::size_t gets_per_peer_max = 16;
// An asked blob not answered in this long is asked of another peer: a blob is 64 KiB, 5 s at
// 100 kbit/s; three times that for a busy peer's queue.
inline constexpr Millis get_timeout_ms = 15'000;
// A peer that said it lacks a blob is asked again after this long (a relay may have been given
// it since, by its uploader).
inline constexpr Millis none_retry_ms = 5'000;
// A fetch that stores nothing for this long, with every missing blob lacked by every linked
// peer (or no peer linked), fails: one clear line, and `qun fetch` again resumes it.
inline constexpr Millis fetch_stall_ms = 30'000;
// Fetches at once (each a user's `qun fetch` or a chat download).
inline constexpr std::size_t fetches_max = 16;
// Blob ids a peer can make this node queue for sending (its gets): 256 ids are 8 KiB of state;
// the blobs are read one at a time as the lane has room. Past it, the ids are answered none.
inline constexpr std::size_t serve_queue_per_peer_max = 256;
// Peers with a serve queue at once (bounded by the node's connections anyway: 256).
inline constexpr std::size_t serving_peers_max = 256;
// Relay: blob ids it asked one uploader for and still expects; more are not asked for now (the
// uploader offers again). Two offers' worth: the largest file's blobs and its manifest.
inline constexpr std::size_t relay_expected_per_peer_max = 2 * wire_limits::ids_max;
// Uploads this node offers to relays (its own files, newest kept), and how often an offer is
// repeated to a relay that has not yet said it holds everything.
inline constexpr std::size_t uploads_max = 64;
inline constexpr Millis offer_retry_ms = 30'000;
static_assert(gets_per_peer_max <= gets_in_flight_max);
static_assert(gets_in_flight_max <= wire_limits::ids_max, "one get carries a whole window");
static_assert(file_limits::chunks_max + 1 <= 2 * wire_limits::ids_max,
              "a file's blobs fit two offers");
}  // namespace transfer_limits

// Where a node keeps blobs, per group. put is given only verified blobs (their id is their hash).
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  virtual bool has(const Hash& group, const Hash& id) const = 0;
  virtual std::optional<Bytes> get(const Hash& group, const Hash& id) const = 0;
  // The stored bytes of a blob to send to a peer, which checks them against the id it asked
  // for: a store need not hash them again here (IPFS's blockstore reads without HashOnRead by
  // default, for the same reason: hashing was a third of a serving node's CPU). A blob damaged
  // on disk is refused by the peer, which then asks another.
  virtual std::optional<Bytes> serve(const Hash& group, const Hash& id) const { return get(group, id); }
  virtual Result<void> put(const Hash& group, const Hash& id, ByteView blob) = 0;
};

struct TransferConfig {
  // A relay stores the blobs members offer it for groups it serves; a member only what it
  // fetched or sent.
  bool relay = false;
  LogSink log = null_log_sink();
};

struct TransferEnv {
  BlobStore& store;
  // Linked peers sharing the group (Node::linked_peers).
  std::function<std::vector<PublicKey>(const Hash&)> peers;
  // Linked relays of the group that serve it (Node::relay_status: linked and serving).
  std::function<std::vector<PublicKey>(const Hash&)> relays;
};

namespace transfer_output {
struct Send {  // to Node::send_file
  PublicKey peer;
  WireMessage message;
};
struct Open {  // a fetched chunk that matched its address: open it at its place (open_fetched),
              // write its plaintext where the file goes, and answer with on_opened
  Hash group;
  Hash root;
  Hash id;
  std::size_t index = 0;
  FileKey key;
  std::uint64_t size = 0;  // of the file
  Bytes blob;
};
struct Progress {  // a fetch stored one more chunk
  Hash group;
  Hash root;
  std::size_t have = 0;   // chunks stored (this run and before)
  std::size_t total = 0;  // chunks of the file
};
struct FetchDone {  // every chunk is stored and opened at its place; or the fetch failed
  Hash group;
  Hash root;
  bool ok = false;
  std::string error;         // when !ok: one line for a person
  std::size_t moved = 0;     // blobs received in this fetch (the manifest included)
  std::size_t present = 0;   // blobs that were already stored when it started
};
}  // namespace transfer_output
using TransferOutput =
    std::variant<transfer_output::Send, transfer_output::Open, transfer_output::Progress,
                 transfer_output::FetchDone>;

struct TransferStats {
  std::uint64_t blobs_received = 0;   // verified and stored
  std::uint64_t blobs_refused = 0;    // not asked for, wrong hash, or not opening at their place
  std::uint64_t blobs_served = 0;     // sent in answer to gets
  std::uint64_t gets_refused = 0;     // ids answered none past serve_queue_per_peer_max
};

// The work an Open asks for, on any thread: the chunk's plaintext, or decrypt_failed / malformed
// when it does not open at its place.
[[nodiscard]] Result<Bytes> open_fetched(const transfer_output::Open& o);

class Transfers {
 public:
  Transfers(TransferConfig config, TransferEnv env);

  // Starts fetching the file a post shares, or resumes it: only blobs the store lacks are
  // asked for. A fetch of a root already in progress is one fetch. FetchDone follows (at once
  // when everything is stored). Errors: too_large (fetches_max in progress).
  [[nodiscard]] Result<void> fetch(Millis now, const Hash& group, const FileRef& file);
  bool fetching(const Hash& root) const { return fetches_.count(root) != 0; }
  // The blobs of a file this node just sealed into the store (manifest first): offered to the
  // group's relays until each holds them.
  void upload(Millis now, const Hash& group, std::vector<Hash> blobs);

  // A wire::Blob is hashed here; on_blob takes one the driver hashed: `id` must be
  // blob_id(data).
  void on_message(Millis now, const PublicKey& peer, const WireMessage& message);
  void on_blob(Millis now, const PublicKey& peer, const Hash& group, const Hash& id, Bytes data);
  // The answer to an Open: whether its chunk opened at its place; `blob` is the Open's, handed
  // back to be stored. An answer for a fetch that ended meanwhile is dropped.
  void on_opened(Millis now, const Hash& root, const Hash& id, bool opened, Bytes blob);
  void on_lane_full(Millis now, const PublicKey& peer, WireMessage message);
  void on_lane_ready(Millis now, const PublicKey& peer);
  void on_tick(Millis now);

  // Queued outputs first; then blobs to serve, one at a time, to peers whose lane has room.
  [[nodiscard]] std::optional<TransferOutput> poll();

  const TransferStats& stats() const { return stats_; }

 private:
  struct Asked {
    PublicKey peer;
    Millis at = 0;
  };
  struct Fetch {
    Hash group;
    FileRef file;
    bool have_manifest = false;
    std::vector<Hash> chunks;                     // from the manifest
    std::map<Hash, std::size_t> index;            // chunk id -> its place
    std::set<Hash> missing;                       // blobs still to store (manifest or chunks)
    std::set<std::size_t> missing_order;          // the missing chunks' places, in file order
    std::map<Hash, Asked> asked;
    std::set<Hash> opening;                       // answered, matched, and out in an Open
    std::map<Hash, std::map<PublicKey, Millis>> lacks;  // who said none, when
    std::size_t moved = 0;
    std::size_t present = 0;
    Millis last_progress = 0;
  };
  struct Serving {
    std::deque<std::pair<Hash, Hash>> queue;  // (group, id)
    std::optional<WireMessage> held;          // refused by a full lane, sent first
    bool blocked = false;                     // waiting for FileLaneReady
  };
  struct Upload {
    Hash group;
    std::vector<Hash> blobs;
    std::map<PublicKey, Millis> next_offer;   // per relay; absent: offer now
    std::map<PublicKey, std::size_t> clean;   // offers answered "have all", this round
    std::set<PublicKey> done;
    Millis added = 0;
  };

  void on_get(Millis now, const PublicKey& peer, const wire::BlobGet& m);
  void on_none(Millis now, const PublicKey& peer, const wire::BlobNone& m);
  void on_offer(Millis now, const PublicKey& peer, const wire::BlobOffer& m);
  void on_get_from_relay(Millis now, const PublicKey& relay, const wire::BlobGet& m);
  void after_manifest(Millis now, Fetch& f);
  void schedule(Millis now, Fetch& f);
  void finish(Fetch& f, bool ok, std::string error);
  void offer(Millis now);
  void note(LogLevel level, const std::string& text);

  TransferConfig config_;
  TransferEnv env_;
  std::map<Hash, Fetch> fetches_;  // by root
  std::map<PublicKey, Serving> serving_;
  // Relay: per uploader, the blobs it was asked for.
  std::map<PublicKey, std::set<std::pair<Hash, Hash>>> expected_;
  std::deque<Upload> uploads_;
  // Per (group, relay): the uploads whose offers await an answer, in the order sent (a link is
  // ordered and a relay answers each offer with one get).
  std::map<std::pair<Hash, PublicKey>, std::deque<Hash>> offers_out_;
  std::deque<TransferOutput> out_;
  TransferStats stats_;
};

}  // namespace qun
