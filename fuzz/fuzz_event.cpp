// Fuzzes decode_event, the first decoder every byte from a peer meets.
//
// Properties: decoding never crashes; whatever decodes re-encodes to exactly the input bytes (the
// encoding is canonical, so each event has one byte form and one id); the id is the hash of the
// body; check_payload and verify_event run on anything that decodes without crashing.
#include <cstddef>
#include <cstdint>

#include "crypto/secret.h"
#include "fuzz/fixture.h"
#include "node/event.h"
#include "node/payload.h"

using namespace qun;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  crypto_init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  // The same bytes as an event inside a group message (group field elided).
  Hash group;
  group.bytes.fill(0x42);
  if (auto in = decode_event_in(input, group); in.ok()) {
    const Bytes again = encode_for_group_message(*in);
    fuzz::check(again.size() == size && std::equal(again.begin(), again.end(), input.begin()),
                "a decoded group-message event re-encodes to other bytes");
    fuzz::check(in->encoded_bytes == encode(*in).size(), "encoded_bytes is not the full size");
    fuzz::check(in->group_id() == group || in->kind == EventKind::create, "group not taken from the message");
  }
  auto decoded = decode_event(input);
  if (!decoded.ok()) return 0;
  const Event& e = *decoded;
  const Bytes again = encode(e);
  fuzz::check(again.size() == size && std::equal(again.begin(), again.end(), input.begin()),
              "a decoded event re-encodes to other bytes");
  fuzz::check(e.encoded_bytes == size, "encoded_bytes differs from the input size");
  fuzz::check(e.id == hash(encode_header(e)), "id is not the hash of the header");
  (void)check_payload(e);
  (void)verify_event(e);
  return 0;
}
