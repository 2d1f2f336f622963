#include "net/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "net/home.h"
#include "net/offload.h"

namespace qun {

namespace {

TransferEnv make_env(DiskBlobStore& store, Node& node) {
  TransferEnv env{store, nullptr, nullptr};
  env.peers = [&node](const Hash& g) { return node.linked_peers(g); };
  env.relays = [&node](const Hash& g) {
    std::vector<PublicKey> out;
    for (const auto& r : node.relay_status(g))
      if (r.linked && r.serving.value_or(false)) out.push_back(r.id);
    return out;
  };
  return env;
}

std::optional<Hash> hash_of_hex(const std::string& hex) {
  auto bytes = from_hex(hex);
  return bytes ? Hash::from_view(*bytes) : std::nullopt;
}

// Sealing a file, off the loop: the regular file at `path`, of `size` bytes, under `key`, its
// blobs appended to the pack at `pack` (a new one of the group's) and listed in `written`.
Result<FileRef> seal_file(const std::string& path, std::uint64_t size, const FileKey& key,
                          const std::string& pack, std::vector<PackedBlob>& written) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Errc::not_found, "cannot read " + path);
  PackWriter out;
  QUN_TRY_VOID(out.open(pack));
  FileRef f;
  f.name = safe_file_name(std::filesystem::path(path).filename().string());
  f.size = size;
  f.media_type = media_type_for(f.name);
  f.key = key;
  Hasher whole;
  std::vector<Hash> chunks;
  const std::size_t n = chunk_count(size);
  chunks.reserve(n);
  Bytes plain;
  for (std::size_t i = 0; i < n; ++i) {
    plain.resize(chunk_plain_bytes(size, i));
    if (!plain.empty() && !in.read(reinterpret_cast<char*>(plain.data()),
                                   static_cast<std::streamsize>(plain.size())))
      return Error(Errc::io, path + " changed while it was read; send it again");
    whole.update(plain);
    const Bytes blob = seal_chunk(f.key, size, i, plain);
    QUN_TRY(PackedBlob packed, out.append(blob_id(blob), blob));
    written.push_back(packed);
    chunks.push_back(packed.id);
  }
  const Bytes manifest = encode_manifest(chunks);
  f.root = blob_id(manifest);
  f.content = whole.finish();
  QUN_TRY(PackedBlob packed, out.append(f.root, manifest));
  written.push_back(packed);
  return f;
}

}  // namespace

// A fetched file being written: PATH.part, each chunk at its offset as it arrives (off the loop,
// as it is opened), the rest from the store when the fetch is done (off the loop, by
// complete()), then renamed to PATH. Removed if it never gets there: a failed fetch, a client
// gone, a damaged chunk. Safe on any thread: a chunk's writer on the pool may meet the loop
// abandoning a failed fetch (one lock; a 64 KiB write into the page cache holds it ~10 us).
class PartFile {
 public:
  PartFile(std::string path, std::size_t chunks) : path_(std::move(path)), written_(chunks, false) {}
  ~PartFile() { abandon(); }
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;

  std::string part() const { return path_ + ".part"; }

  // Closes the part and removes it unless it was renamed into place: at once for a failed
  // fetch (before its failure is reported), else when the last copy of its waiter goes.
  void abandon() {
    std::lock_guard lock(mutex_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!settled_) ::unlink(part().c_str());
    settled_ = true;  // nothing left to remove
  }

  Result<void> open() {
    std::lock_guard lock(mutex_);
    std::error_code dir_error;  // the chat's cache folder may not exist yet
    std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), dir_error);
    fd_ = ::open(part().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return Error(Errc::io, "cannot write " + part() + ": " + std::strerror(errno));
    return ok_result();
  }

  // Writes chunk `index`; the first failure is kept and reported when the fetch is done.
  void write(std::size_t index, ByteView plain) {
    std::lock_guard lock(mutex_);
    if (fd_ < 0 || !error_.empty() || index >= written_.size()) return;
    if (!write_at(index, plain)) {
      error_ = "cannot write " + part() + " (disk full?)";
      return;
    }
    written_[index] = true;
  }

  // Off the loop: writes the chunks not yet written, read from where the store keeps them
  // (checked against `chunks`) and opened at their place, then renames the part to the path. A chunk missing or
  // damaged in the store is named in `bad`, for the loop to drop.
  Result<void> complete(const FileRef& file, const std::vector<Hash>& chunks,
                        const std::vector<std::optional<BlobLocation>>& where,
                        std::optional<std::size_t>& bad) {
    auto result = [&] {
      std::lock_guard lock(mutex_);
      return write_rest(file, chunks, where, bad);
    }();
    if (!result.ok()) abandon();
    return result;
  }

 private:
  Result<void> write_rest(const FileRef& file, const std::vector<Hash>& chunks,
                          const std::vector<std::optional<BlobLocation>>& where,
                          std::optional<std::size_t>& bad) {
    if (!error_.empty()) return Error(Errc::io, error_);
    if (fd_ < 0) return Error(Errc::io, "the download to " + path_ + " was given up");
    for (std::size_t i = 0; i < chunks.size() && i < written_.size(); ++i) {
      if (written_[i]) continue;
      auto blob = where[i] ? read_blob_at(*where[i], chunks[i]) : std::nullopt;
      auto plain = blob ? open_chunk(file.key, file.size, i, *blob) : Result<Bytes>(Error(Errc::not_found, ""));
      if (!plain.ok()) {
        bad = i;
        return Error(Errc::io, "chunk " + std::to_string(i) + " is missing or damaged here; fetch again");
      }
      if (!write_at(i, *plain)) return Error(Errc::io, "cannot write " + part() + " (disk full?)");
      written_[i] = true;
    }
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return Error(Errc::io, "cannot write " + part() + " (disk full?)");
    if (::rename(part().c_str(), path_.c_str()) != 0)
      return Error(Errc::io, "cannot rename " + part() + " to " + path_ + ": " + std::strerror(errno));
    settled_ = true;
    return ok_result();
  }

  bool write_at(std::size_t index, ByteView plain) {
    std::size_t at = 0;
    const auto offset = static_cast<off_t>(index * file_limits::chunk_bytes);
    while (at < plain.size()) {
      const ssize_t n = ::pwrite(fd_, plain.data() + at, plain.size() - at, offset + static_cast<off_t>(at));
      if (n <= 0) return false;
      at += static_cast<std::size_t>(n);
    }
    return true;
  }

  std::mutex mutex_;  // guards everything below
  std::string path_;
  int fd_ = -1;
  std::vector<bool> written_;
  std::string error_;
  bool settled_ = false;  // renamed into place, or removed
};

std::string media_type_for(const std::string& name) {
  static const std::map<std::string, std::string> types{
      {"png", "image/png"},        {"jpg", "image/jpeg"},       {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},        {"webp", "image/webp"},      {"svg", "image/svg+xml"},
      {"pdf", "application/pdf"},  {"txt", "text/plain"},       {"md", "text/markdown"},
      {"html", "text/html"},       {"json", "application/json"}, {"zip", "application/zip"},
      {"gz", "application/gzip"},  {"tar", "application/x-tar"}, {"mp3", "audio/mpeg"},
      {"ogg", "audio/ogg"},        {"opus", "audio/opus"},      {"wav", "audio/wav"},
      {"mp4", "video/mp4"},        {"webm", "video/webm"},      {"mkv", "video/x-matroska"},
      {"odt", "application/vnd.oasis.opendocument.text"},
      {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
  };
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return "application/octet-stream";
  std::string ext = name.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = types.find(ext);
  return it == types.end() ? "application/octet-stream" : it->second;
}

FileService::FileService(uv_loop_t* loop, const std::string& home, bool relay,
                         std::uint64_t relay_group_bytes_max, Node& node, ControlServer& control,
                         LogSink log, std::function<Millis()> clock,
                         std::function<void()> flush)
    : loop_(loop),
      clock_(std::move(clock)),
      flush_(std::move(flush)),
      node_(node),
      control_(control),
      log_(log),
      store_(home::files_dir(home), relay ? relay_group_bytes_max : 0, log),
      transfers_(TransferConfig{relay, log}, make_env(store_, node)) {}

FileService::~FileService() { *alive_ = false; }

void FileService::seal(const Hash& group, const std::string& path, Rng& rng, Sealed done) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return done(Error(Errc::not_found, "cannot read " + path));
  if (!S_ISREG(st.st_mode))
    return done(Error(Errc::invalid_argument, path + " is not a regular file"));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > file_limits::file_bytes_max)
    return done(Error(Errc::too_large, path + " is " + std::to_string(size / (1024 * 1024)) +
                                           " MiB; qun shares files up to " +
                                           std::to_string(file_limits::file_bytes_max / (1024 * 1024)) +
                                           " MiB"));
  struct Job {
    std::optional<Result<FileRef>> file;
    std::vector<PackedBlob> written;
  };
  auto job = std::make_shared<Job>();
  FileKey key;
  rng.fill(key.bytes);
  const std::string pack = store_.new_pack(group);
  offload(
      loop_,
      [job, path, size, key, pack] {
        job->file = seal_file(path, size, key, pack, job->written);
        if (!job->file->ok()) {
          job->written.clear();
          ::unlink(pack.c_str());
        }
      },
      [this, alive = alive_, job, group, pack, done = std::move(done)] {
        if (!*alive) return;
        // After a failed seal `written` is empty and the pool removed the pack: this forgets it.
        auto kept = store_.adopt(group, pack, job->written);
        if (job->file->ok() && !kept.ok()) return done(kept.error());
        done(std::move(*job->file));
      });
}

void FileService::uploaded(Millis now, const Hash& group, const FileRef& file) {
  uploads_.erase(std::remove_if(uploads_.begin(), uploads_.end(),
                                [&](const UploadRecord& u) { return u.root == file.root; }),
                 uploads_.end());
  if (uploads_.size() >= transfer_limits::uploads_max) uploads_.pop_front();
  uploads_.push_back(UploadRecord{group, file.root, file.size});
  auto manifest = store_.get(group, file.root);
  if (!manifest) return;
  auto chunks = decode_manifest(*manifest, file.size);
  if (!chunks.ok()) return;
  std::vector<Hash> blobs{file.root};
  blobs.insert(blobs.end(), chunks->begin(), chunks->end());
  transfers_.upload(now, group, std::move(blobs));
  pump(now);
}

Bytes FileService::uploads_record() const {
  Json list = Json::array();
  for (const auto& u : uploads_) list.push_back(Json{to_hex(u.group), to_hex(u.root), u.size});
  return control::encode(list);
}

void FileService::restore_uploads(Millis now, ByteView record) {
  auto list = control::decode(record);
  if (!list.ok() || !list.value().is_array()) {
    log_(LogRecord{LogLevel::warn, "files", "the record of files to offer to relays is unreadable; ignored"});
    return;
  }
  for (const auto& item : list.value()) {
    if (!item.is_array() || item.size() != 3 || !item[0].is_string() || !item[1].is_string() ||
        !item[2].is_number_unsigned())
      continue;
    auto group = hash_of_hex(item[0].get<std::string>());
    auto root = hash_of_hex(item[1].get<std::string>());
    if (!group || !root) continue;
    FileRef file;
    file.root = *root;
    file.size = item[2].get<std::uint64_t>();
    if (file.size > file_limits::file_bytes_max || !complete(*group, file)) continue;
    uploaded(now, *group, file);
  }
}

bool FileService::complete(const Hash& group, const FileRef& file) const {
  auto manifest = store_.get(group, file.root);
  if (!manifest) return false;
  auto chunks = decode_manifest(*manifest, file.size);
  if (!chunks.ok()) return false;
  return std::all_of(chunks->begin(), chunks->end(),
                     [&](const Hash& id) { return store_.has(group, id); });
}

Result<void> FileService::fetch(Millis now, const Hash& group, const FileRef& file,
                                const std::string& path, ClientId client, const Json& id) {
  if (!path.empty() && std::filesystem::exists(path))
    return Error(Errc::already_exists, path + " exists; give another path with -o");
  for (const auto& [root, w] : wanted_)
    for (const auto& waiter : w.waiters)
      if (!path.empty() && waiter.path == path)
        return Error(Errc::already_exists, "a download to " + path + " is in progress; give another path with -o");
  std::shared_ptr<PartFile> part;
  if (!path.empty()) {
    part = std::make_shared<PartFile>(path, chunk_count(file.size));
    QUN_TRY_VOID(part->open());
  }
  QUN_TRY_VOID(transfers_.fetch(now, group, file));
  Wanted& w = wanted_[file.root];
  w.file = file;
  w.waiters.push_back(Waiter{client, id, path, std::move(part)});
  pump(now);
  return ok_result();
}

void FileService::on_message(Millis now, node_output::FileMessage m) {
  if (auto* blob = std::get_if<wire::Blob>(&m.message)) return check_blob(m.peer, std::move(*blob));
  transfers_.on_message(now, m.peer, m.message);
  pump(now);
}

void FileService::check_blob(const PublicKey& peer, wire::Blob blob) {
  if (hash_jobs_ >= file_service_limits::hash_jobs_max) {
    const Hash id = blob_id(blob.data);
    transfers_.on_blob(clock_(), peer, blob.group, id, std::move(blob.data));
    return pump(clock_());
  }
  ++hash_jobs_;
  struct Job {
    wire::Blob blob;
    Hash id;
  };
  auto job = std::make_shared<Job>(Job{std::move(blob), Hash{}});
  offload(
      loop_, [job] { job->id = blob_id(job->blob.data); },
      [this, alive = alive_, job, peer] {
        if (!*alive) return;
        --hash_jobs_;
        transfers_.on_blob(clock_(), peer, job->blob.group, job->id, std::move(job->blob.data));
        pump_from_pool();
      });
}

void FileService::open_chunk_off_loop(transfer_output::Open o) {
  std::vector<std::shared_ptr<PartFile>> parts;
  if (auto w = wanted_.find(o.root); w != wanted_.end())
    for (const auto& waiter : w->second.waiters)
      if (waiter.part) parts.push_back(waiter.part);
  struct Job {
    transfer_output::Open open;
    bool opened = false;
  };
  auto job = std::make_shared<Job>(Job{std::move(o), false});
  offload(
      loop_,
      [job, parts = std::move(parts)] {
        auto plain = open_fetched(job->open);
        job->opened = plain.ok();
        if (!plain.ok()) return;
        for (const auto& part : parts) part->write(job->open.index, *plain);
      },
      [this, alive = alive_, job] {
        if (!*alive) return;
        transfers_.on_opened(clock_(), job->open.root, job->open.id, job->opened,
                             std::move(job->open.blob));
        pump_from_pool();
      });
}

void FileService::on_lane_ready(Millis now, const PublicKey& peer) {
  transfers_.on_lane_ready(now, peer);
  pump(now);
}

void FileService::on_tick(Millis now) {
  transfers_.on_tick(now);
  pump(now);
}

void FileService::on_client_closed(ClientId client) {
  for (auto& [root, w] : wanted_)
    w.waiters.erase(std::remove_if(w.waiters.begin(), w.waiters.end(),
                                   [&](const Waiter& x) { return x.client == client; }),
                    w.waiters.end());
}

void FileService::forget_group(const Hash& group) {
  store_.remove_group(group);
  uploads_.erase(std::remove_if(uploads_.begin(), uploads_.end(),
                                [&](const UploadRecord& u) { return u.group == group; }),
                 uploads_.end());
}

void FileService::pump_from_pool() {
  pump(clock_());
  flush_();
}

void FileService::pump(Millis now) {
  while (auto o = transfers_.poll()) {
    if (auto* s = std::get_if<transfer_output::Send>(&*o)) {
      auto sent = node_.send_file(now, s->peer, s->message);
      if (!sent.ok() && sent.error().code() == Errc::too_large)
        transfers_.on_lane_full(now, s->peer, std::move(s->message));
    } else if (auto* c = std::get_if<transfer_output::Open>(&*o)) {
      open_chunk_off_loop(std::move(*c));
    } else if (auto* p = std::get_if<transfer_output::Progress>(&*o)) {
      auto w = wanted_.find(p->root);
      if (w == wanted_.end()) continue;
      const std::uint64_t percent = 100 * p->have / std::max<std::size_t>(p->total, 1);
      if (w->second.percent == percent) continue;
      w->second.percent = percent;
      for (const auto& waiter : w->second.waiters)
        control_.send(waiter.client, Json{{"stream", "progress"},
                                          {"root", to_hex(p->root)},
                                          {"have", p->have},
                                          {"total", p->total},
                                          {"size", w->second.file.size}});
    } else if (auto* d = std::get_if<transfer_output::FetchDone>(&*o)) {
      on_done(*d);
    }
  }
}

void FileService::on_done(const transfer_output::FetchDone& d) {
  auto it = wanted_.find(d.root);
  if (it == wanted_.end()) return;
  Wanted w = std::move(it->second);
  wanted_.erase(it);
  for (const auto& waiter : w.waiters) {
    if (!d.ok) {
      if (waiter.part) waiter.part->abandon();
      control_.send(waiter.client, Json{{"id", waiter.id}, {"ok", false}, {"error", d.error}});
      continue;
    }
    Json result{{"name", w.file.name},
                {"size", w.file.size},
                {"path", waiter.path},
                {"moved", d.moved},
                {"present", d.present}};
    if (!waiter.part) {
      control_.send(waiter.client, Json{{"id", waiter.id}, {"ok", true}, {"result", std::move(result)}});
      continue;
    }
    assemble(d.group, w.file, waiter, std::move(result));
  }
}

void FileService::assemble(const Hash& group, const FileRef& file, const Waiter& waiter, Json result) {
  auto fail = [this, &waiter](const std::string& why) {
    waiter.part->abandon();
    control_.send(waiter.client, Json{{"id", waiter.id}, {"ok", false}, {"error", why}});
  };
  auto manifest = store_.get(group, file.root);
  if (!manifest) return fail("the file's chunks are gone; fetch it again");
  auto chunks = decode_manifest(*manifest, file.size);
  if (!chunks.ok()) return fail(chunks.error().context());
  std::vector<std::optional<BlobLocation>> where;
  for (const Hash& id : *chunks) where.push_back(store_.locate(group, id));
  struct Job {
    std::optional<Result<void>> written;
    std::optional<std::size_t> bad;
  };
  auto job = std::make_shared<Job>();
  offload(
      loop_,
      [job, file, chunks = *chunks, where = std::move(where), part = waiter.part] {
        job->written = part->complete(file, chunks, where, job->bad);
      },
      [this, alive = alive_, job, group, chunks = *chunks, waiter, result = std::move(result)] {
        if (!*alive) return;
        if (job->bad) store_.remove(group, chunks[*job->bad]);
        if (!job->written->ok()) {
          control_.send(waiter.client,
                        Json{{"id", waiter.id}, {"ok", false}, {"error", job->written->error().context()}});
          return;
        }
        control_.send(waiter.client, Json{{"id", waiter.id}, {"ok", true}, {"result", result}});
      });
}

}  // namespace qun
