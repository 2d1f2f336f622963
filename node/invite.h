// Invite codes: one copy-pasteable string with what a newcomer needs to join a group.
//
//   "qun2" + base64url(group id (32) || invite secret (32) || peer, ...)
//
// Each peer is a tag byte and an address in binary: 1 = IPv4 (4 bytes), 2 = IPv6 (16 bytes),
// 3 = a host name (a length byte, then 1..253 bytes of [A-Za-z0-9.-]); then the port (2 bytes,
// big-endian, not 0). Codes of the first format ("qun1" + base64url(msgpack [1, group, secret,
// [peer string, ...]])) still decode, so codes handed out before stay valid.
//
// The invite secret derives the invite key pair (its public half is in the invite event, so any
// node can check a join's proof) and the key that opens the invite's key bundle. Peer addresses
// are hints for finding the group's nodes and relays; they are never needed for validity.
//
// People copy codes out of terminals, mail and chat windows, which wrap long lines: the decoder
// ignores ASCII whitespace anywhere in the code, not only around it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "base/result.h"

namespace qun {

inline constexpr std::string_view invite_code_prefix = "qun2";
inline constexpr std::string_view invite_code_prefix_v1 = "qun1";
// Peers a decoded code may carry: the first format allowed 8, so the decoder still does.
inline constexpr std::size_t invite_peers_max = 8;
// Peers an encoded code carries: the inviter's own addresses (an IPv4 one, and a global IPv6 one
// when it has one: node/addresses.h) and the group's relays, or the peers the inviter is linked
// to. Four keep a one-relay code from an inviter with IPv6 near 135 characters (an IPv6 peer
// takes 19 bytes, an IPv4 one 7), and still leave the joiner two places to try when the inviter
// is offline.
inline constexpr std::size_t invite_peers_written_max = 4;
// A host name in DNS is at most 253 characters.
inline constexpr std::size_t invite_host_name_bytes_max = 253;
// One peer as text: the longest host name, ':' and a five-digit port (a bracketed IPv6 address is
// at most 47 bytes).
inline constexpr std::size_t invite_peer_bytes_max = invite_host_name_bytes_max + 6;
inline constexpr std::size_t invite_code_chars_max = 4096;
static_assert(invite_peers_written_max <= invite_peers_max);

struct InviteCode {
  Hash group;
  Seed secret;
  std::vector<std::string> peers;
};

// The code in the current format. Peers go in the order given, at most invite_peers_written_max
// of them; a peer that is not HOST:PORT (an IPv4 address, a bracketed IPv6 address or a host
// name, and a port from 1 to 65535) is skipped.
std::string encode_invite_code(const InviteCode& code);
// Errors: Errc::malformed with a context a person can act on ("not a qun invite code");
// Errc::version_mismatch for a code from a newer qun.
[[nodiscard]] Result<InviteCode> decode_invite_code(std::string_view text);
// A peer address as the current format writes and decodes it ("1.2.3.4:7000", "[::1]:7000",
// "relay.example.org:7000"); nullopt when it cannot be written.
std::optional<std::string> canonical_invite_peer(std::string_view address);

}  // namespace qun
