#include "net/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace qun {

namespace fs = std::filesystem;
using namespace blob_store_limits;

namespace {

std::string pack_name(std::uint64_t pack) {
  char name[32];
  std::snprintf(name, sizeof name, "%016llx.pack", static_cast<unsigned long long>(pack));
  return name;
}

// A pack being written off the loop has this suffix until it is adopted, so that one a killed
// node left half written, or written for a post never made, is known at the next start and
// removed rather than its blobs kept and never offered.
constexpr std::string_view sealing_suffix = ".sealing";

// The pack number a file name gives, if it is a pack's.
std::optional<std::uint64_t> pack_number(const std::string& name) {
  if (name.size() != 16 + 5 || name.compare(16, 5, ".pack") != 0) return std::nullopt;
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    const char c = name[i];
    const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return std::nullopt;
    n = n << 4 | static_cast<std::uint64_t>(v);
  }
  return n;
}

bool read_exact(int fd, std::uint8_t* out, std::size_t n, std::uint64_t offset) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, out + got, n - got, static_cast<off_t>(offset + got));
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace

// --- PackWriter ---

PackWriter::~PackWriter() { close(); }

PackWriter::PackWriter(PackWriter&& o) noexcept
    : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)), size_(o.size_) {}

PackWriter& PackWriter::operator=(PackWriter&& o) noexcept {
  if (this != &o) {
    close();
    path_ = std::move(o.path_);
    fd_ = std::exchange(o.fd_, -1);
    size_ = o.size_;
  }
  return *this;
}

Result<void> PackWriter::open(const std::string& path, std::uint64_t size) {
  close();
  std::error_code ec;
  const fs::path dir = fs::path(path).parent_path();
  fs::create_directories(dir, ec);
  if (ec) return Error(Errc::io, "cannot create " + dir.string() + ": " + ec.message());
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return Error(Errc::io, "cannot write " + path + ": " + std::strerror(errno));
  path_ = path;
  size_ = size;
  return ok_result();
}

Result<PackedBlob> PackWriter::append(const Hash& id, ByteView blob) {
  if (fd_ < 0) return Error(Errc::io, "no pack open");
  if (blob.size() > file_limits::blob_bytes_max) return Error(Errc::too_large, "blob too large");
  std::uint8_t header[record_header_bytes];
  std::memcpy(header, record_magic, 4);
  const auto n = static_cast<std::uint32_t>(blob.size());
  for (int i = 0; i < 4; ++i) header[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  std::memcpy(header + 8, id.bytes.data(), 32);
  iovec parts[2] = {{header, sizeof header}, {const_cast<std::uint8_t*>(blob.data()), blob.size()}};
  const std::uint64_t start = size_;
  const std::size_t total = sizeof header + blob.size();
  std::size_t done = 0;
  while (done < total) {
    // pwritev at the pack's end: the offset is known without asking the kernel.
    iovec rest[2];
    int count = 0;
    std::size_t skip = done;
    for (const auto& p : parts) {
      if (skip >= p.iov_len) {
        skip -= p.iov_len;
        continue;
      }
      rest[count++] = {static_cast<std::uint8_t*>(p.iov_base) + skip, p.iov_len - skip};
      skip = 0;
    }
    const ssize_t w = ::pwritev(fd_, rest, count, static_cast<off_t>(start + done));
    if (w <= 0) {
      // Cut back to the last whole record, so that later appends follow it.
      if (::ftruncate(fd_, static_cast<off_t>(start)) != 0) close();
      return Error(Errc::io, "cannot write " + path_ + " (disk full?)");
    }
    done += static_cast<std::size_t>(w);
  }
  size_ += total;
  return PackedBlob{id, start + sizeof header, n};
}

void PackWriter::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

namespace {

// The bytes at `at`, unchecked (nullopt if the pack is gone or cut short).
std::optional<Bytes> read_record(const BlobLocation& at) {
  if (at.bytes > file_limits::blob_bytes_max) return std::nullopt;
  const int fd = ::open(at.pack.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  Bytes data(at.bytes);
  const bool ok = read_exact(fd, data.data(), data.size(), at.offset);
  ::close(fd);
  if (!ok) return std::nullopt;
  return data;
}

}  // namespace

std::optional<Bytes> read_blob_at(const BlobLocation& at, const Hash& id) {
  auto data = read_record(at);
  if (!data || blob_id(*data) != id) return std::nullopt;
  return data;
}

// --- DiskBlobStore ---

DiskBlobStore::DiskBlobStore(std::string dir, std::uint64_t group_bytes_max, LogSink log)
    : dir_(std::move(dir)), group_bytes_max_(group_bytes_max), log_(std::move(log)) {}

std::string DiskBlobStore::group_dir(const Hash& group) const { return dir_ + "/" + to_hex(group); }
std::string DiskBlobStore::pack_path(const Hash& group, std::uint64_t pack) const {
  return group_dir(group) + "/" + pack_name(pack);
}

DiskBlobStore::Index& DiskBlobStore::index(const Hash& group) const {
  auto it = index_.find(group);
  if (it != index_.end()) return it->second;
  Index& idx = index_[group];
  const_cast<DiskBlobStore*>(this)->load(group, idx);
  return idx;
}

// Scans a group's packs, oldest first, record headers only; then moves the blob files of
// earlier versions into a new pack.
void DiskBlobStore::load(const Hash& group, Index& idx) {
  std::error_code ec;
  std::vector<std::uint64_t> packs;
  std::vector<fs::path> legacy;
  for (const auto& entry : fs::directory_iterator(group_dir(group), ec)) {
    const std::string name = entry.path().filename().string();
    if (auto n = pack_number(name)) packs.push_back(*n);
    else if (name.size() == 64 && from_hex(name)) legacy.push_back(entry.path());
    else if (name.size() == 68 && name.ends_with(".tmp")) fs::remove(entry.path(), ec);  // an old write cut short
    else if (name.ends_with(sealing_suffix)) {  // a file sealed while the node stopped: never posted
      log_(LogRecord{LogLevel::info, "files", "removed " + entry.path().string() +
                                                  ": a file was being sealed when the node stopped"});
      fs::remove(entry.path(), ec);
    }
  }
  std::sort(packs.begin(), packs.end());
  for (const std::uint64_t n : packs) {
    idx.next_pack = n + 1;
    idx.packs[n];
    const std::string path = pack_path(group, n);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
      if (fd >= 0) ::close(fd);
      continue;
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    std::uint64_t at = 0;
    while (at + record_header_bytes <= size) {
      std::uint8_t header[record_header_bytes];
      if (!read_exact(fd, header, sizeof header, at) || std::memcmp(header, record_magic, 4) != 0) break;
      std::uint32_t bytes = 0;
      for (int i = 0; i < 4; ++i) bytes |= static_cast<std::uint32_t>(header[4 + i]) << (8 * i);
      if (bytes > file_limits::blob_bytes_max || at + record_header_bytes + bytes > size) break;
      Hash id;
      std::memcpy(id.bytes.data(), header + 8, 32);
      if (!idx.blobs.count(id)) {
        Entry e{sequence_++, n, at + record_header_bytes, bytes};
        idx.blobs[id] = e;
        idx.by_age.emplace(e.sequence, id);
        idx.bytes += bytes;
        ++idx.packs[n].live;
      }
      at += record_header_bytes + bytes;
    }
    ::close(fd);
    if (at < size)
      log_(LogRecord{LogLevel::warn, "files", "pack " + path + " is cut short or damaged after byte " +
                                                  std::to_string(at) + "; its blobs from there are fetched again"});
  }
  // Packs with nothing kept (all dropped before a restart, or damaged at the start).
  for (auto it = idx.packs.begin(); it != idx.packs.end();) {
    if (it->second.live == 0) {
      fs::remove(pack_path(group, it->first), ec);
      it = idx.packs.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& path : legacy) {
    const auto id = Hash::from_view(*from_hex(path.filename().string()));
    if (auto blob = read_blob_at(BlobLocation{path.string(), 0, static_cast<std::uint32_t>(std::min<std::uintmax_t>(
                                                              fs::file_size(path, ec), file_limits::blob_bytes_max + 1))},
                                 *id);
        blob && !idx.blobs.count(*id)) {
      if (auto r = append(group, idx, *id, *blob); !r.ok()) {
        log_(LogRecord{LogLevel::warn, "files", "cannot move blob " + short_hex(*id) + " into a pack: " +
                                                    r.error().message() + "; left as it is"});
        break;
      }
    }
    fs::remove(path, ec);
  }
}

bool DiskBlobStore::has(const Hash& group, const Hash& id) const {
  return index(group).blobs.count(id) != 0;
}

std::optional<BlobLocation> DiskBlobStore::locate(const Hash& group, const Hash& id) const {
  const Index& idx = index(group);
  auto it = idx.blobs.find(id);
  if (it == idx.blobs.end()) return std::nullopt;
  return BlobLocation{pack_path(group, it->second.pack), it->second.offset, it->second.bytes};
}

std::optional<Bytes> DiskBlobStore::get(const Hash& group, const Hash& id) const {
  auto at = locate(group, id);
  if (!at) return std::nullopt;
  auto data = read_blob_at(*at, id);
  if (!data) {
    log_(LogRecord{LogLevel::warn, "files", "blob " + short_hex(id) + " missing or damaged on disk; dropped"});
    const_cast<DiskBlobStore*>(this)->remove(group, id);
  }
  return data;
}

std::optional<Bytes> DiskBlobStore::serve(const Hash& group, const Hash& id) const {
  auto at = locate(group, id);
  if (!at) return std::nullopt;
  auto data = read_record(*at);
  if (!data) {
    log_(LogRecord{LogLevel::warn, "files", "blob " + short_hex(id) + " missing on disk; dropped"});
    const_cast<DiskBlobStore*>(this)->remove(group, id);
  }
  return data;
}

// Appends to the loop's pack (a new one past pack_bytes_max or if none is open) and counts it.
Result<void> DiskBlobStore::append(const Hash& group, Index& idx, const Hash& id, ByteView blob) {
  if (idx.current && (!idx.writer.is_open() || idx.writer.size() >= pack_bytes_max)) {
    idx.writer.close();
    auto p = idx.packs.find(*idx.current);
    if (p != idx.packs.end()) {
      p->second.writing = false;
      if (p->second.live == 0) {
        ::unlink(pack_path(group, p->first).c_str());
        idx.packs.erase(p);
      }
    }
    idx.current.reset();
  }
  if (!idx.current) {
    const std::uint64_t n = idx.next_pack++;
    QUN_TRY_VOID(idx.writer.open(pack_path(group, n)));
    idx.current = n;
    idx.packs[n].writing = true;
  }
  QUN_TRY(PackedBlob packed, idx.writer.append(id, blob));
  count(group, idx, id, Entry{0, *idx.current, packed.offset, packed.bytes});
  return ok_result();
}

Result<void> DiskBlobStore::put(const Hash& group, const Hash& id, ByteView blob) {
  Index& idx = index(group);
  if (idx.blobs.count(id)) return ok_result();
  return append(group, idx, id, blob);
}

std::string DiskBlobStore::new_pack(const Hash& group) {
  Index& idx = index(group);
  const std::uint64_t n = idx.next_pack++;
  idx.packs[n].writing = true;
  return pack_path(group, n) + std::string(sealing_suffix);
}

Result<void> DiskBlobStore::adopt(const Hash& group, const std::string& pack, const std::vector<PackedBlob>& blobs) {
  Index& idx = index(group);
  std::string name = fs::path(pack).filename().string();
  if (!name.ends_with(sealing_suffix)) return Error(Errc::invalid_argument, pack + " is not from new_pack");
  name.resize(name.size() - sealing_suffix.size());
  auto n = pack_number(name);
  if (!n) return Error(Errc::invalid_argument, pack + " is not from new_pack");
  const std::string kept = pack_path(group, *n);
  auto p = idx.packs.find(*n);
  if (p != idx.packs.end() && p->second.writing && blobs.empty()) {  // nothing written, or given up
    ::unlink(pack.c_str());
    idx.packs.erase(p);
    return ok_result();
  }
  if (p != idx.packs.end() && p->second.writing) {  // not adopted yet: it takes its place now
    if (::rename(pack.c_str(), kept.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      ::unlink(pack.c_str());
      idx.packs.erase(p);
      return Error(Errc::io, "cannot keep the file's chunks in " + kept + ": " + why);
    }
    p->second.writing = false;
  }
  for (const auto& b : blobs)
    if (!idx.blobs.count(b.id)) count(group, idx, b.id, Entry{0, *n, b.offset, b.bytes});
  p = idx.packs.find(*n);
  if (p != idx.packs.end() && p->second.live == 0) {
    ::unlink(kept.c_str());
    idx.packs.erase(p);
  }
  return ok_result();
}

// Counts a stored blob, then keeps a relay's bound: the oldest blobs go first (never the one
// just stored).
void DiskBlobStore::count(const Hash& group, Index& idx, const Hash& id, const Entry& stored) {
  Entry e = stored;
  e.sequence = sequence_++;
  idx.blobs[id] = e;
  idx.by_age.emplace(e.sequence, id);
  idx.bytes += e.bytes;
  ++idx.packs[e.pack].live;
  while (group_bytes_max_ > 0 && idx.bytes > group_bytes_max_ && idx.by_age.size() > 1) {
    drop(group, idx, idx.blobs.find(idx.by_age.begin()->second));
    ++evicted_;
  }
}

void DiskBlobStore::drop(const Hash& group, Index& idx, std::map<Hash, Entry>::iterator it) {
  if (it == idx.blobs.end()) return;
  const Entry e = it->second;
  idx.by_age.erase({e.sequence, it->first});
  idx.bytes -= std::min<std::uint64_t>(idx.bytes, e.bytes);
  idx.blobs.erase(it);
  auto p = idx.packs.find(e.pack);
  if (p == idx.packs.end()) return;
  if (p->second.live > 0) --p->second.live;
  if (p->second.live == 0 && !p->second.writing) {
    ::unlink(pack_path(group, e.pack).c_str());
    idx.packs.erase(p);
  }
}

void DiskBlobStore::remove(const Hash& group, const Hash& id) {
  Index& idx = index(group);
  drop(group, idx, idx.blobs.find(id));
}

void DiskBlobStore::remove_group(const Hash& group) {
  index_.erase(group);  // closes the loop's pack first
  std::error_code ec;
  fs::remove_all(group_dir(group), ec);
}

std::size_t DiskBlobStore::group_blobs(const Hash& group) const { return index(group).blobs.size(); }
std::uint64_t DiskBlobStore::group_bytes(const Hash& group) const { return index(group).bytes; }

}  // namespace qun
