// Fuzzes every payload decoder (payload.h) and the plaintext decoders (text, key bundle).
//
// Each decoder gets the whole input. Properties: no decoder crashes; whatever decodes, encodes
// to bytes that decode again and re-encode identically (encoder and decoder agree). The input
// itself need not be canonical: payload bytes are fixed by the event id, not re-encoded.
#include <cstddef>
#include <cstdint>

#include "crypto/secret.h"
#include "fuzz/fixture.h"
#include "node/limits.h"
#include "node/payload.h"

using namespace qun;

namespace {

// encode(decode(bytes)) must decode, and encode to the same bytes again.
template <typename Decode>
void round_trip(ByteView input, Decode decode, const char* what) {
  auto first = decode(input);
  if (!first.ok()) return;
  const Bytes once = encode_payload(*first);
  auto second = decode(once);
  fuzz::check(second.ok(), what);
  fuzz::check(encode_payload(*second) == once, what);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  crypto_init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  round_trip(input, decode_create, "create payload round trip");
  round_trip(input, decode_invite, "invite payload round trip");
  round_trip(input, decode_join, "join payload round trip");
  round_trip(input, decode_add, "add payload round trip");
  round_trip(input, decode_remove, "remove payload round trip");
  round_trip(input, decode_rekey, "rekey payload round trip");
  round_trip(input, decode_key_part, "key-part payload round trip");
  round_trip(input, decode_set_role, "set-role payload round trip");
  round_trip(input, decode_text, "text payload round trip");
  round_trip(input, decode_relay, "relay payload round trip");
  round_trip(input, decode_close_invite, "close-invite payload round trip");
  if (decode_leave(input).ok()) {
    fuzz::check(decode_leave(encode_leave_payload()).ok(), "leave payload round trip");
  }

  for (std::size_t max : {limits::nick_bytes_max, limits::post_text_bytes_max}) {
    auto text = decode_text_plain(input, max);
    if (!text.ok()) continue;
    fuzz::check(text->size() <= max, "decoded text longer than its bound");
    auto again = decode_text_plain(encode_text_plain(*text), max);
    fuzz::check(again.ok() && *again == *text, "text plaintext round trip");
  }

  auto bundle = decode_bundle(input);
  if (bundle.ok()) {
    fuzz::check(bundle->size() <= limits::bundle_epochs_max, "bundle past its bound");
    const Bytes once = encode_bundle(*bundle);
    auto again = decode_bundle(once);
    fuzz::check(again.ok() && encode_bundle(*again) == once, "bundle round trip");
  }
  return 0;
}
