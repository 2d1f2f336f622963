#include "node/file.h"

#include "base/utf8.h"
#include "crypto/stream.h"

namespace qun {

namespace {

StreamKeyView stream_key(const FileKey& key) { return StreamKeyView(key.bytes); }

}  // namespace

std::size_t chunk_count(std::uint64_t size) {
  if (size == 0) return 1;
  return static_cast<std::size_t>((size + file_limits::chunk_bytes - 1) / file_limits::chunk_bytes);
}

std::size_t chunk_plain_bytes(std::uint64_t size, std::size_t index) {
  const std::size_t n = chunk_count(size);
  if (index + 1 < n) return file_limits::chunk_bytes;
  return static_cast<std::size_t>(size - std::uint64_t{file_limits::chunk_bytes} * (n - 1));
}

Bytes encode_manifest(const std::vector<Hash>& chunks) {
  Bytes out;
  out.reserve(chunks.size() * Hash::size());
  for (const auto& c : chunks) out.insert(out.end(), c.bytes.begin(), c.bytes.end());
  return out;
}

Result<std::vector<Hash>> decode_manifest(ByteView blob, std::uint64_t size) {
  if (size > file_limits::file_bytes_max) return Error(Errc::too_large, "file too large");
  const std::size_t n = chunk_count(size);
  if (blob.size() != n * Hash::size())
    return Error(Errc::malformed, "manifest of " + std::to_string(blob.size()) +
                                      " bytes for " + std::to_string(n) + " chunks");
  std::vector<Hash> out(n);
  for (std::size_t i = 0; i < n; ++i)
    std::copy(blob.begin() + static_cast<long>(i * Hash::size()),
              blob.begin() + static_cast<long>((i + 1) * Hash::size()), out[i].bytes.begin());
  return out;
}

Bytes seal_chunk(const FileKey& key, std::uint64_t size, std::size_t index, ByteView plain) {
  return stream_seal(stream_key(key), index, index + 1 == chunk_count(size), plain);
}

Result<Bytes> open_chunk(const FileKey& key, std::uint64_t size, std::size_t index, ByteView blob) {
  if (index >= chunk_count(size)) return Error(Errc::malformed, "no such chunk");
  if (blob.size() != chunk_plain_bytes(size, index) + aead_tag_bytes)
    return Error(Errc::malformed, "chunk " + std::to_string(index) + " has the wrong length");
  return stream_open(stream_key(key), index, index + 1 == chunk_count(size), blob);
}

void write_file_ref(codec::Writer& w, const FileRef& f) {
  w.array(6).str(f.name).uint(f.size).str(f.media_type).fixed(f.key).fixed(f.root).fixed(f.content);
}

Result<FileRef> read_file_ref(const msgpack::object& o) {
  QUN_TRY(auto a, codec::array(o, 6, 6, "file"));
  FileRef f;
  QUN_TRY(f.name, codec::str(a.ptr[0], file_limits::name_bytes_max, "file name"));
  QUN_TRY(f.size, codec::uint(a.ptr[1], file_limits::file_bytes_max, "file size"));
  QUN_TRY(f.media_type, codec::str(a.ptr[2], file_limits::media_type_bytes_max, "media type"));
  QUN_TRY(f.key, codec::fixed<FileKey>(a.ptr[3], "file key"));
  QUN_TRY(f.root, codec::fixed<Hash>(a.ptr[4], "file root"));
  QUN_TRY(f.content, codec::fixed<Hash>(a.ptr[5], "file hash"));
  QUN_TRY_VOID(check_file_ref(f));
  return f;
}

Result<void> check_file_ref(const FileRef& f) {
  if (f.size > file_limits::file_bytes_max) return Error(Errc::too_large, "file too large");
  if (f.name.empty() || f.name.size() > file_limits::name_bytes_max || !utf8::valid(f.name) ||
      safe_file_name(f.name) != f.name)
    return Error(Errc::malformed, "file name is not a plain base name");
  if (f.media_type.empty() || f.media_type.size() > file_limits::media_type_bytes_max ||
      !utf8::valid(f.media_type))
    return Error(Errc::malformed, "bad media type");
  for (char c : f.media_type)
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f)
      return Error(Errc::malformed, "bad media type");
  return ok_result();
}

std::string safe_file_name(std::string_view name) {
  const auto slash = name.rfind('/');
  if (slash != std::string_view::npos) name = name.substr(slash + 1);
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f || c == '\\') ? '_' : c;
  }
  if (!utf8::valid(out)) out = "file";
  if (out.size() > file_limits::name_bytes_max) out.resize(file_limits::name_bytes_max);
  while (!out.empty() && !utf8::valid(out)) out.pop_back();  // a cut inside a character
  if (out.empty() || out == "." || out == "..") out = "file";
  return out;
}

}  // namespace qun
