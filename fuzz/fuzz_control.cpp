// Fuzzes the control socket's decoders (net/control.h) on bytes a local client sends: a frame
// stream through FrameReader, and the input as one msgpack message.
//
// Properties: never crashes or allocates past the bounds; a decoded value re-encodes to bytes
// that decode, and from then on the round trip is exact (the codec loses nothing the daemon
// reads). The first encode may change a value: it repairs invalid UTF-8 in strings and keys
// (net/control.cpp), and two keys that differ only in invalid bytes become one.
#include <cstddef>
#include <cstdint>

#include "fuzz/fixture.h"
#include "net/control.h"

using namespace qun;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView bytes(data, size);
  if (auto value = control::decode(bytes); value.ok()) {
    auto once = control::decode(control::encode(value.value()));
    fuzz::check(once.ok(), "a decoded control message does not re-decode");
    auto twice = control::decode(control::encode(once.value()));
    fuzz::check(twice.ok(), "a re-encoded control message does not re-decode");
    fuzz::check(twice.value() == once.value(), "control message differs after a round trip");
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
