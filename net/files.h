// FileService: the daemon's side of file sharing (docs/cli.md, "Files"). It seals a local file
// into blobs (node/file.h) for `qun send`, drives the Transfers engine (node/transfer.h) with
// the node's file lane and the DiskBlobStore, answers `qun fetch` when a file is complete
// (streaming progress meanwhile), and writes a fetched file at the path asked for as its chunks
// arrive, each checked against the manifest the post names and opened at its place.
//
// Not thread-safe: the daemon's loop owns it. Sealing a file, checking fetched blobs (their hash,
// then opening each chunk and writing it to the file) and putting a file together run on libuv's
// thread pool (net/offload.h), on copies of what they need, so a large file never holds up the
// loop and a fetch uses more than one core; their answers come back on the loop. It never reads
// a clock of its own: times come from the transport (`clock`).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/rng.h"
#include "net/blob_store.h"
#include "net/control_server.h"
#include "node/node.h"
#include "node/transfer.h"

namespace qun {

namespace file_service_limits {
// Received blobs being hashed off the loop at once: a fetch's whole window
// (transfer_limits::gets_in_flight_max) of 64 KiB blobs, so a fetch never waits for a slot. Past
// it a blob is hashed on the loop, which slows reading from the links: a peer sending blobs
// nobody asked for holds at most these 2 MiB here, and TCP's back-pressure does the rest.
inline constexpr std::size_t hash_jobs_max = 32;
}  // namespace file_service_limits

class PartFile;

class FileService {
 public:
  using ClientId = ControlServer::ClientId;
  using Json = control::Json;

  // relay_group_bytes_max: a relay's bound on one group's blobs (0 for a member's node).
  // For answers that come back from the thread pool: `clock` gives the transport's time, and
  // `flush` has the transport send what they gave the node (Transport::pump).
  FileService(uv_loop_t* loop, const std::string& home, bool relay,
              std::uint64_t relay_group_bytes_max, Node& node, ControlServer& control, LogSink log,
              std::function<Millis()> clock, std::function<void()> flush);
  ~FileService();

  using Sealed = std::function<void(Result<FileRef>)>;
  // Encrypts the file at `path` into the store under a fresh key, off the loop; `done` gets what
  // its post says, on the loop. Errors: not_found / io (cannot read it), too_large (over
  // file_limits::file_bytes_max), invalid_argument (not a regular file).
  void seal(const Hash& group, const std::string& path, Rng& rng, Sealed done);
  // The post sharing `file` is published: offer its blobs to the group's relays, now and after
  // a restart (the last transfer_limits::uploads_max are kept: uploads_record()).
  void uploaded(Millis now, const Hash& group, const FileRef& file);
  // The uploads to keep offering, for the node's meta (uploads_meta_key), and their restore at
  // start: each file still whole here is offered again to the relays of its group as they
  // link. A record that does not decode is ignored (the files are still shared; relays that
  // missed them lack them until the sender sends them again).
  Bytes uploads_record() const;
  void restore_uploads(Millis now, ByteView record);

  // Starts or resumes fetching a file; `client`'s request (`id`) is answered when it is complete
  // (and written to `path` unless empty), with progress values streamed meanwhile. Errors as
  // Transfers::fetch; also already_exists when `path` exists.
  [[nodiscard]] Result<void> fetch(Millis now, const Hash& group, const FileRef& file,
                                   const std::string& path, ClientId client, const Json& id);
  // Whether every chunk of the file is stored here (a send, or a fetch done).
  bool complete(const Hash& group, const FileRef& file) const;

  void on_message(Millis now, node_output::FileMessage m);
  void on_lane_ready(Millis now, const PublicKey& peer);
  void on_tick(Millis now);
  void on_client_closed(ClientId client);
  void forget_group(const Hash& group);

  const TransferStats& stats() const { return transfers_.stats(); }
  const DiskBlobStore& store() const { return store_; }

 private:
  struct Waiter {
    ClientId client;
    Json id;
    std::string path;
    // path.part, written as chunks arrive; removed unless the whole file lands at path.
    std::shared_ptr<PartFile> part;
  };
  struct Wanted {
    FileRef file;
    std::vector<Waiter> waiters;
    // The last progress sent, in percent: clients hear of each percent, not of each chunk (a
    // 100 MiB file is 1,600 chunks, and each message wakes every waiting client).
    std::optional<std::uint64_t> percent;
  };
  // Drains the engine: sends on the node's lanes, progress and answers to clients.
  void pump(Millis now);
  // The same, from a thread pool answer (outside any node callback): then has the transport send.
  void pump_from_pool();
  // Hashes a received blob off the loop (inline when hash_jobs_max are out), then hands it on.
  void check_blob(const PublicKey& peer, wire::Blob blob);
  // Opens a fetched chunk off the loop and writes it to the waiters' parts, then answers.
  void open_chunk_off_loop(transfer_output::Open o);
  void on_done(const transfer_output::FetchDone& d);
  // Completes the waiter's path.part with the chunks not written as they arrived (stored before
  // this fetch, or before the waiter joined it), off the loop, renames it to the path, then
  // answers the waiter with `result`.
  void assemble(const Hash& group, const FileRef& file, const Waiter& waiter, Json result);

  uv_loop_t* loop_;
  std::function<Millis()> clock_;
  std::function<void()> flush_;
  std::size_t hash_jobs_ = 0;  // blobs being hashed off the loop
  // False once this service is gone: a job that ends after that reports to nobody.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  Node& node_;
  ControlServer& control_;
  LogSink log_;
  DiskBlobStore store_;
  Transfers transfers_;
  std::map<Hash, Wanted> wanted_;  // by root
  struct UploadRecord {
    Hash group;
    Hash root;
    std::uint64_t size;
  };
  std::deque<UploadRecord> uploads_;  // oldest first, at most transfer_limits::uploads_max
};

// The node meta key under which the uploads a node keeps offering are saved.
inline constexpr const char* uploads_meta_key = "files/uploads";

// The media type a file name suggests (a short table of what chats share), else
// "application/octet-stream".
std::string media_type_for(const std::string& name);

}  // namespace qun
