// Fuzzes the control socket's decoders (net/control.h) on bytes a local client sends: a frame
// stream through FrameReader, and the input as one msgpack message.
//
// Properties: never crashes or allocates past the bounds; a decoded value re-encodes to bytes
// that decode to the same value (the codec loses nothing the daemon reads).
#include <cstddef>
#include <cstdint>

#include "fuzz/fixture.h"
#include "net/control.h"

using namespace qun;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView bytes(data, size);
  if (auto value = control::decode(bytes); value.ok()) {
    auto again = control::decode(control::encode(value.value()));
    fuzz::check(again.ok(), "a decoded control message does not re-decode");
    fuzz::check(again.value() == value.value(), "control message differs after a round trip");
  }
  // The same bytes as a stream, fed in two pieces.
  control::FrameReader reader;
  reader.feed(bytes.subspan(0, size / 2));
  for (int round = 0; round < 2; ++round) {
    for (;;) {
      auto next = reader.next();
      if (!next.ok() || !next.value()) break;
    }
    if (round == 0) reader.feed(bytes.subspan(size / 2));
  }
  return 0;
}
