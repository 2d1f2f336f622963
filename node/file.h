// Files: how a shared file is encrypted, cut into content-addressed blobs and described in the
// post that announces it (docs/protocol.md, "Files").
//
// A file is encrypted with a fresh key as a STREAM (crypto/stream.h, age's payload format) of
// chunk_bytes chunks. Each encrypted chunk is a *blob* whose address is BLAKE2b-256 of its bytes,
// so any node, a relay that holds no key included, checks a blob it receives against the address
// it asked for without reading it. The *manifest*, the list of the chunks' addresses in order, is
// a blob too; its address is the file's root. The post that announces the file (a post whose
// plaintext carries a FileRef, node/payload.h) holds the name, size, media type, key, root and the
// BLAKE2b-256 of the plaintext, encrypted like any post.
//
// Everything here is pure: sealing and opening chunks, the manifest and the FileRef's msgpack.
// Moving blobs between nodes is node/transfer.h; storing them is the driver's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/codec.h"
#include "base/result.h"
#include "crypto/aead.h"
#include "crypto/hash.h"

namespace qun {

namespace file_limits {
// age's chunk size (age-encryption.org/v1, "Payload"): big enough that the 16-byte tag and the
// 32-byte address cost under 0.1%, small enough that one chunk travels in two link frames and a
// post waits behind at most a few of them.
inline constexpr std::size_t chunk_bytes = 64 * 1024;
// The largest file `qun send` shares (issue 15: 100 MiB, what a chat shares: photos, documents,
// short videos; not a backup tool).
inline constexpr std::uint64_t file_bytes_max = 100ull * 1024 * 1024;
// Chunks of the largest file (an empty file still has one, empty, chunk).
inline constexpr std::size_t chunks_max = (file_bytes_max + chunk_bytes - 1) / chunk_bytes;
// A blob: an encrypted chunk (plaintext and tag) or a manifest.
inline constexpr std::size_t blob_bytes_max = chunk_bytes + aead_tag_bytes;
// A file name as Linux file systems allow it (NAME_MAX).
inline constexpr std::size_t name_bytes_max = 255;
// A media type (RFC 6838 allows 127 characters each for type and subtype).
inline constexpr std::size_t media_type_bytes_max = 255;
static_assert(chunks_max * 32 <= blob_bytes_max, "the manifest of the largest file is one blob");
}  // namespace file_limits

struct FileKeyTag {};
// The file's key as it travels inside the (encrypted) post; copied into a SymmetricKey to use.
using FileKey = FixedBytes<32, FileKeyTag>;

// What a post says about the file it shares.
struct FileRef {
  std::string name;        // a base name: no '/', not "." or "..", 1..name_bytes_max bytes
  std::uint64_t size = 0;  // plaintext bytes, at most file_bytes_max
  std::string media_type;  // e.g. "image/png"; "application/octet-stream" when unknown
  FileKey key;             // the STREAM key
  Hash root;               // the manifest's address
  Hash content;            // BLAKE2b-256 of the whole plaintext
  bool operator==(const FileRef&) const = default;
};

// A blob's address.
inline Hash blob_id(ByteView blob) { return hash(blob); }
// Chunks of a file of `size` bytes (at least one).
std::size_t chunk_count(std::uint64_t size);
// The plaintext bytes chunk `index` of a file of `size` bytes holds.
std::size_t chunk_plain_bytes(std::uint64_t size, std::size_t index);

Bytes encode_manifest(const std::vector<Hash>& chunks);
// The chunk addresses of a file of `size` bytes: exactly chunk_count(size) of them.
[[nodiscard]] Result<std::vector<Hash>> decode_manifest(ByteView blob, std::uint64_t size);

// Seals chunk `index` of a file of `size` bytes (plain must be chunk_plain_bytes long).
Bytes seal_chunk(const FileKey& key, std::uint64_t size, std::size_t index, ByteView plain);
// Opens a blob as chunk `index`: Errc::decrypt_failed unless it authenticates at that place
// (index and last flag) under the key, Errc::malformed unless its length is the chunk's.
[[nodiscard]] Result<Bytes> open_chunk(const FileKey& key, std::uint64_t size, std::size_t index,
                                       ByteView blob);

// The FileRef inside a post's plaintext: [name, size, media_type, key, root, content].
void write_file_ref(codec::Writer& w, const FileRef& f);
// Strict, and checks it (check_file_ref).
[[nodiscard]] Result<FileRef> read_file_ref(const msgpack::object& o);

// Checks what a FileRef read from a peer's post must satisfy (sizes, a safe base name).
[[nodiscard]] Result<void> check_file_ref(const FileRef& f);
// A file name made safe to show and to save under: the base name, control characters and '/'
// replaced, never empty, "." or "..".
std::string safe_file_name(std::string_view name);

}  // namespace qun
