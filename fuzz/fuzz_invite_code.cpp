// Fuzzes decode_invite_code on the input taken as text (what a person pastes).
//
// Properties: never crashes; a decoded code stays within its bounds, and encoding it gives a code
// that decodes to the same group, secret and (the peers the current format writes) peers.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/secret.h"
#include "fuzz/fixture.h"
#include "node/invite.h"

using namespace qun;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  crypto_init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto code = decode_invite_code(text);
  if (!code.ok()) return 0;
  fuzz::check(code->peers.size() <= invite_peers_max, "too many peers");
  for (const auto& p : code->peers) fuzz::check(p.size() <= invite_peer_bytes_max, "peer too long");
  const std::string encoded = encode_invite_code(*code);
  fuzz::check(encoded.size() <= invite_code_chars_max, "re-encoded code past its bound");
  auto again = decode_invite_code(encoded);
  fuzz::check(again.ok(), "re-encoded code does not decode");
  fuzz::check(again->group == code->group, "group differs after a round trip");
  fuzz::check(again->secret.equals(code->secret), "secret differs after a round trip");
  // The current format writes the first invite_peers_written_max peers it can write, in their
  // canonical form (a first-format code may hold any text as a peer).
  std::vector<std::string> written;
  for (const auto& p : code->peers)
    if (auto c = canonical_invite_peer(p); c && written.size() < invite_peers_written_max)
      written.push_back(*c);
  fuzz::check(again->peers == written, "peers differ after a round trip");
  fuzz::check(encode_invite_code(*again) == encoded, "a re-encoded code is not a fixed point");
  return 0;
}
