// Fuzzes the decoders of a shared file's peer input (node/file.h): a manifest blob for a claimed
// size, a blob opened as a chunk at a claimed place, and a post plaintext with a file part.
//
// The input's first 8 bytes are the claimed file size and the next 4 the chunk index; the rest
// is the blob. Properties: nothing crashes; a manifest that decodes has exactly chunk_count ids
// and encodes back to the input; a chunk that opens has its place's length; a post that decodes
// with a file re-encodes to a plaintext that decodes to the same file.
#include <cstddef>
#include <cstdint>

#include "crypto/secret.h"
#include "fuzz/fixture.h"
#include "node/file.h"
#include "node/payload.h"

using namespace qun;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  crypto_init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  if (size >= 12) {
    std::uint64_t claimed = 0;
    for (int i = 0; i < 8; ++i) claimed = claimed << 8 | data[i];
    claimed %= file_limits::file_bytes_max + 2;  // past the limit too
    std::uint32_t index = 0;
    for (int i = 8; i < 12; ++i) index = index << 8 | data[i];
    const ByteView blob = input.subspan(12);
    if (auto m = decode_manifest(blob, claimed); m.ok()) {
      fuzz::check(m->size() == chunk_count(claimed), "manifest length");
      const Bytes again = encode_manifest(*m);
      fuzz::check(Bytes(blob.begin(), blob.end()) == again, "manifest round trip");
    }
    FileKey key;
    key.bytes.fill(7);
    if (claimed <= file_limits::file_bytes_max) {
      if (auto c = open_chunk(key, claimed, index % (chunk_count(claimed) + 1), blob); c.ok())
        fuzz::check(c->size() == chunk_plain_bytes(claimed, index % (chunk_count(claimed) + 1)),
                    "chunk length");
    }
  }
  if (auto p = decode_post_plain(input); p.ok() && p->file) {
    auto again = decode_post_plain(encode_plain(*p));
    fuzz::check(again.ok() && again->file && *again->file == *p->file, "file post round trip");
  }
  return 0;
}
