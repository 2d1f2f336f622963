// Fuzzes decode_wire, the decoder of every overlay message a peer sends over a link.
//
// Properties: decoding never crashes; whatever decodes re-encodes to exactly the input bytes (the
// encoding is canonical, so a message has one byte form); wire_name names anything decoded.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fuzz/fixture.h"
#include "node/wire.h"

using namespace qun;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  auto decoded = decode_wire(input);
  if (!decoded.ok()) return 0;
  const Bytes again = encode_wire(*decoded);
  fuzz::check(again.size() == size && std::equal(again.begin(), again.end(), input.begin()),
              "a decoded wire message re-encodes to other bytes");
  fuzz::check(wire_name(*decoded) != nullptr, "a decoded wire message has no name");
  return 0;
}
