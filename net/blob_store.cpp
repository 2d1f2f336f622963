#include "net/blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

namespace qun {

namespace fs = std::filesystem;

DiskBlobStore::DiskBlobStore(std::string dir, std::uint64_t group_bytes_max, LogSink log)
    : dir_(std::move(dir)), group_bytes_max_(group_bytes_max), log_(std::move(log)) {}

std::string DiskBlobStore::group_dir(const Hash& group) const { return dir_ + "/" + to_hex(group); }
std::string DiskBlobStore::blob_path(const std::string& group_dir, const Hash& id) {
  return group_dir + "/" + to_hex(id);
}
std::string DiskBlobStore::path(const Hash& group, const Hash& id) const {
  return blob_path(group_dir(group), id);
}

// Scans a group's directory once: its blobs in the order of their files' modification times,
// so that a restarted relay evicts the oldest first as before.
DiskBlobStore::Index& DiskBlobStore::index(const Hash& group) const {
  auto it = index_.find(group);
  if (it != index_.end()) return it->second;
  Index& idx = index_[group];
  std::error_code ec;
  std::vector<std::tuple<fs::file_time_type, Hash, std::uint64_t>> found;
  for (const auto& entry : fs::directory_iterator(group_dir(group), ec)) {
    const std::string name = entry.path().filename().string();
    auto bytes = from_hex(name);
    if (!bytes || bytes->size() != Hash::size()) continue;  // a temporary file, or not ours
    std::error_code e2;
    const auto size = entry.file_size(e2);
    const auto time = entry.last_write_time(e2);
    if (e2) continue;
    found.emplace_back(time, *Hash::from_view(*bytes), size);
  }
  std::sort(found.begin(), found.end());
  for (const auto& [time, id, size] : found) {
    const std::uint64_t seq = sequence_++;
    idx.by_age.emplace(seq, id);
    idx.blobs[id] = {seq, size};
    idx.bytes += size;
  }
  return idx;
}

bool DiskBlobStore::has(const Hash& group, const Hash& id) const {
  return index(group).blobs.count(id) != 0;
}

std::optional<Bytes> read_blob_file(const std::string& path, const Hash& id) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  Bytes data(file_limits::blob_bytes_max + 1);
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  if (data.size() > file_limits::blob_bytes_max || blob_id(data) != id) return std::nullopt;
  return data;
}

Result<void> write_blob_file(const std::string& path, ByteView blob) {
  std::error_code ec;
  const fs::path dir = fs::path(path).parent_path();
  fs::create_directories(dir, ec);
  if (ec) return Error(Errc::io, "cannot create " + dir.string() + ": " + ec.message());
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error(Errc::io, "cannot write " + tmp);
  std::size_t at = 0;
  while (at < blob.size()) {
    const ssize_t n = ::write(fd, blob.data() + at, blob.size() - at);
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return Error(Errc::io, "cannot write " + tmp + " (disk full?)");
    }
    at += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error(Errc::io, "cannot rename " + tmp);
  }
  return ok_result();
}

std::optional<Bytes> DiskBlobStore::get(const Hash& group, const Hash& id) const {
  if (!has(group, id)) return std::nullopt;
  auto data = read_blob_file(path(group, id), id);
  if (!data) {
    log_(LogRecord{LogLevel::warn, "files", "blob " + short_hex(id) + " missing or damaged on disk; dropped"});
    const_cast<DiskBlobStore*>(this)->remove(group, id);
  }
  return data;
}

Result<void> DiskBlobStore::put(const Hash& group, const Hash& id, ByteView blob) {
  if (index(group).blobs.count(id)) return ok_result();
  QUN_TRY_VOID(write_blob_file(path(group, id), blob));
  adopt(group, id, blob.size());
  return ok_result();
}

void DiskBlobStore::adopt(const Hash& group, const Hash& id, std::uint64_t bytes) {
  Index& idx = index(group);
  if (idx.blobs.count(id)) return;
  const std::uint64_t seq = sequence_++;
  idx.by_age.emplace(seq, id);
  idx.blobs[id] = {seq, bytes};
  idx.bytes += bytes;
  // A relay's bound: the oldest blobs go first (never the one just stored).
  while (group_bytes_max_ > 0 && idx.bytes > group_bytes_max_ && idx.by_age.size() > 1) {
    const Hash oldest = idx.by_age.begin()->second;
    remove(group, oldest);
    ++evicted_;
  }
}

void DiskBlobStore::remove(const Hash& group, const Hash& id) {
  Index& idx = index(group);
  auto it = idx.blobs.find(id);
  if (it == idx.blobs.end()) return;
  idx.by_age.erase({it->second.first, id});
  idx.bytes -= std::min(idx.bytes, it->second.second);
  idx.blobs.erase(it);
  ::unlink(path(group, id).c_str());
}

void DiskBlobStore::remove_group(const Hash& group) {
  std::error_code ec;
  fs::remove_all(group_dir(group), ec);
  index_.erase(group);
}

std::uint64_t DiskBlobStore::group_bytes(const Hash& group) const { return index(group).bytes; }

}  // namespace qun
