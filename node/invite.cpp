#include "node/invite.h"

#include "crypto/bytes.h"
#include "node/codec.h"

namespace qun {

std::string encode_invite_code(const InviteCode& code) {
  codec::Writer w;
  w.array(4).uint(1).fixed(code.group).bin(code.secret.view());
  w.array(static_cast<std::uint32_t>(code.peers.size()));
  for (const auto& p : code.peers) w.str(p);
  return std::string(invite_code_prefix) + to_base64url(w.take());
}

Result<InviteCode> decode_invite_code(std::string_view text) {
  // People paste codes with stray whitespace around them.
  while (!text.empty() && (text.front() == ' ' || text.front() == '\n' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r' ||
                           text.back() == '\t'))
    text.remove_suffix(1);
  const Error not_code(Errc::malformed, "not a qun invite code (it should start with \"qun1\")");
  if (text.size() > invite_code_chars_max || text.substr(0, invite_code_prefix.size()) !=
                                                 invite_code_prefix) {
    return not_code;
  }
  auto raw = from_base64url(text.substr(invite_code_prefix.size()));
  if (!raw) return Error(Errc::malformed, "invite code is damaged (copy it again, whole)");
  const codec::DecodeLimits limits{.bytes_max = invite_code_chars_max,
                                   .array_max = invite_peers_max,
                                   .bin_max = 32,
                                   .str_max = invite_peer_bytes_max,
                                   .depth_max = 2};
  auto handle = codec::unpack_strict(*raw, limits);
  if (!handle.ok()) return Error(Errc::malformed, "invite code is damaged (copy it again, whole)");
  QUN_TRY(auto a, codec::array(handle->get(), 4, 4, "invite code"));
  QUN_TRY(auto version, codec::uint(a.ptr[0], 255, "invite code version"));
  if (version != 1) return Error(Errc::version_mismatch, "invite code from a newer qun");
  InviteCode code;
  QUN_TRY(code.group, codec::fixed<Hash>(a.ptr[1], "group"));
  QUN_TRY(auto secret, codec::bin(a.ptr[2], 32, 32, "invite secret"));
  std::copy(secret.begin(), secret.end(), code.secret.data());
  QUN_TRY(auto peers, codec::array(a.ptr[3], 0, invite_peers_max, "peers"));
  for (std::uint32_t i = 0; i < peers.size; ++i) {
    QUN_TRY(auto p, codec::str(peers.ptr[i], invite_peer_bytes_max, "peer"));
    code.peers.push_back(std::move(p));
  }
  return code;
}

}  // namespace qun
