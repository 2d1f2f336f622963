#include "net/files.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "net/home.h"

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

}  // namespace

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

FileService::FileService(const std::string& home, bool relay, std::uint64_t relay_group_bytes_max,
                         Node& node, ControlServer& control, LogSink log)
    : node_(node),
      control_(control),
      log_(log),
      store_(home::files_dir(home), relay ? relay_group_bytes_max : 0, log),
      transfers_(TransferConfig{relay, log}, make_env(store_, node)) {}

Result<FileRef> FileService::seal(const Hash& group, const std::string& path, Rng& rng) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error(Errc::not_found, "cannot read " + path);
  if (!S_ISREG(st.st_mode)) return Error(Errc::invalid_argument, path + " is not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > file_limits::file_bytes_max)
    return Error(Errc::too_large, path + " is " + std::to_string(size / (1024 * 1024)) +
                                      " MiB; qun shares files up to " +
                                      std::to_string(file_limits::file_bytes_max / (1024 * 1024)) +
                                      " MiB");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Errc::not_found, "cannot read " + path);
  FileRef f;
  f.name = safe_file_name(std::filesystem::path(path).filename().string());
  f.size = size;
  f.media_type = media_type_for(f.name);
  rng.fill(f.key.bytes);
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
    const Hash id = blob_id(blob);
    QUN_TRY_VOID(store_.put(group, id, blob));
    chunks.push_back(id);
  }
  const Bytes manifest = encode_manifest(chunks);
  f.root = blob_id(manifest);
  f.content = whole.finish();
  QUN_TRY_VOID(store_.put(group, f.root, manifest));
  return f;
}

void FileService::uploaded(Millis now, const Hash& group, const FileRef& file) {
  auto manifest = store_.get(group, file.root);
  if (!manifest) return;
  auto chunks = decode_manifest(*manifest, file.size);
  if (!chunks.ok()) return;
  std::vector<Hash> blobs{file.root};
  blobs.insert(blobs.end(), chunks->begin(), chunks->end());
  transfers_.upload(now, group, std::move(blobs));
  pump(now);
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
  QUN_TRY_VOID(transfers_.fetch(now, group, file));
  Wanted& w = wanted_[file.root];
  w.file = file;
  w.waiters.push_back(Waiter{client, id, path});
  pump(now);
  return ok_result();
}

void FileService::on_message(Millis now, const node_output::FileMessage& m) {
  transfers_.on_message(now, m.peer, m.message);
  pump(now);
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

void FileService::forget_group(const Hash& group) { store_.remove_group(group); }

void FileService::pump(Millis now) {
  while (auto o = transfers_.poll()) {
    if (auto* s = std::get_if<transfer_output::Send>(&*o)) {
      auto sent = node_.send_file(now, s->peer, s->message);
      if (!sent.ok() && sent.error().code() == Errc::too_large)
        transfers_.on_lane_full(now, s->peer, std::move(s->message));
    } else if (auto* p = std::get_if<transfer_output::Progress>(&*o)) {
      auto w = wanted_.find(p->root);
      if (w == wanted_.end()) continue;
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
    Result<void> r = d.ok ? ok_result() : Result<void>(Error(Errc::io, d.error));
    if (r.ok() && !waiter.path.empty()) r = assemble(d.group, w.file, waiter.path);
    if (!r.ok()) {
      control_.send(waiter.client, Json{{"id", waiter.id}, {"ok", false}, {"error", r.error().context()}});
      continue;
    }
    control_.send(waiter.client, Json{{"id", waiter.id},
                                      {"ok", true},
                                      {"result", Json{{"name", w.file.name},
                                                      {"size", w.file.size},
                                                      {"path", waiter.path},
                                                      {"moved", d.moved},
                                                      {"present", d.present}}}});
  }
}

Result<void> FileService::assemble(const Hash& group, const FileRef& file, const std::string& path) {
  auto manifest = store_.get(group, file.root);
  if (!manifest) return Error(Errc::not_found, "the file's chunks are gone; fetch it again");
  QUN_TRY(auto chunks, decode_manifest(*manifest, file.size));
  const std::string part = path + ".part";
  std::error_code dir_error;  // the chat's cache folder may not exist yet
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), dir_error);
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  if (!out) return Error(Errc::io, "cannot write " + part);
  Hasher whole;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    auto blob = store_.get(group, chunks[i]);
    auto plain = blob ? open_chunk(file.key, file.size, i, *blob) : Result<Bytes>(Error(Errc::not_found, ""));
    if (!plain.ok()) {
      out.close();
      std::filesystem::remove(part);
      store_.remove(group, chunks[i]);
      return Error(Errc::io, "chunk " + std::to_string(i) + " is missing or damaged here; fetch again");
    }
    whole.update(*plain);
    out.write(reinterpret_cast<const char*>(plain->data()), static_cast<std::streamsize>(plain->size()));
  }
  out.close();
  if (!out) {
    std::filesystem::remove(part);
    return Error(Errc::io, "cannot write " + part + " (disk full?)");
  }
  if (whole.finish() != file.content) {
    std::filesystem::remove(part);
    return Error(Errc::malformed, "the file does not match the hash its post gives; not saved");
  }
  std::error_code ec;
  std::filesystem::rename(part, path, ec);
  if (ec) return Error(Errc::io, "cannot rename " + part + " to " + path + ": " + ec.message());
  return ok_result();
}

}  // namespace qun
