// Invite codes: one copy-pasteable string with what a newcomer needs to join a group.
//
//   "qun1" + base64url(msgpack [1, group id, invite secret, [peer address, ...]])
//
// The invite secret derives the invite key pair (its public half is in the invite event, so any
// node can check a join's proof) and the key that opens the invite's key bundle. Peer addresses
// are hints for finding the group's nodes and relays; they are never needed for validity.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/result.h"

namespace qun {

inline constexpr std::string_view invite_code_prefix = "qun1";
inline constexpr std::size_t invite_peers_max = 8;
inline constexpr std::size_t invite_peer_bytes_max = 256;
inline constexpr std::size_t invite_code_chars_max = 4096;

struct InviteCode {
  Hash group;
  Seed secret;
  std::vector<std::string> peers;
};

std::string encode_invite_code(const InviteCode& code);
// Errors: Errc::malformed with a context a person can act on ("not a qun invite code").
[[nodiscard]] Result<InviteCode> decode_invite_code(std::string_view text);

}  // namespace qun
