#include "node/invite.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/codec.h"

namespace qun {
namespace {

enum PeerTag : std::uint8_t { tag_ipv4 = 1, tag_ipv6 = 2, tag_name = 3 };

constexpr std::size_t ipv4_bytes = 4;
constexpr std::size_t ipv6_bytes = 16;

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > invite_host_name_bytes_max) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-';
  });
}

// One peer in binary (tag, address, port), or nothing when the address is not HOST:PORT.
std::optional<Bytes> pack_peer(std::string_view address) {
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string host(address.substr(0, colon));
  const std::string_view port_text = address.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  unsigned long port = 0;
  for (char c : port_text) port = port * 10 + static_cast<unsigned>(c - '0');
  if (port == 0 || port > 65535) return std::nullopt;
  Bytes out;
  std::uint8_t addr[ipv6_bytes];
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), addr) != 1)
      return std::nullopt;
    out.push_back(tag_ipv6);
    out.insert(out.end(), addr, addr + ipv6_bytes);
  } else if (::inet_pton(AF_INET, host.c_str(), addr) == 1) {
    out.push_back(tag_ipv4);
    out.insert(out.end(), addr, addr + ipv4_bytes);
  } else if (is_host_name(host)) {
    out.push_back(tag_name);
    out.push_back(static_cast<std::uint8_t>(host.size()));
    out.insert(out.end(), host.begin(), host.end());
  } else {
    return std::nullopt;
  }
  out.push_back(static_cast<std::uint8_t>(port >> 8));
  out.push_back(static_cast<std::uint8_t>(port & 0xFF));
  return out;
}

// Reads one peer at pos and advances pos past it; nullopt when the bytes are not a peer.
std::optional<std::string> unpack_peer(ByteView raw, std::size_t& pos) {
  auto take = [&](std::size_t n) -> const std::uint8_t* {
    if (raw.size() - pos < n) return nullptr;
    const std::uint8_t* p = raw.data() + pos;
    pos += n;
    return p;
  };
  const std::uint8_t* tag = take(1);
  if (tag == nullptr) return std::nullopt;
  std::string host;
  char text[INET6_ADDRSTRLEN];
  if (*tag == tag_ipv4 || *tag == tag_ipv6) {
    const bool v6 = *tag == tag_ipv6;
    const std::uint8_t* a = take(v6 ? ipv6_bytes : ipv4_bytes);
    if (a == nullptr || ::inet_ntop(v6 ? AF_INET6 : AF_INET, a, text, sizeof text) == nullptr)
      return std::nullopt;
    host = v6 ? "[" + std::string(text) + "]" : std::string(text);
  } else if (*tag == tag_name) {
    const std::uint8_t* n = take(1);
    if (n == nullptr) return std::nullopt;
    const std::uint8_t* name = take(*n);
    if (name == nullptr) return std::nullopt;
    host.assign(reinterpret_cast<const char*>(name), *n);
    if (!is_host_name(host)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  const std::uint8_t* port = take(2);
  if (port == nullptr) return std::nullopt;
  const unsigned value = (static_cast<unsigned>(port[0]) << 8) | port[1];
  if (value == 0) return std::nullopt;
  return host + ":" + std::to_string(value);
}

const Error& damaged() {
  static const Error e(Errc::malformed, "invite code is damaged (copy it again, whole)");
  return e;
}

Result<InviteCode> decode_v1(std::string_view body) {
  auto raw = from_base64url(body);
  if (!raw) return damaged();
  const codec::DecodeLimits limits{.bytes_max = invite_code_chars_max,
                                   .array_max = invite_peers_max,
                                   .bin_max = 32,
                                   .str_max = invite_peer_bytes_max,
                                   .depth_max = 2};
  auto handle = codec::unpack_strict(*raw, limits);
  if (!handle.ok()) return damaged();
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

Result<InviteCode> decode_v2(std::string_view body) {
  auto raw = from_base64url(body);
  if (!raw || raw->size() < 2 * Hash::size()) return damaged();
  const ByteView all(raw->data(), raw->size());
  InviteCode code;
  std::memcpy(code.group.data(), all.data(), Hash::size());
  std::memcpy(code.secret.data(), all.data() + Hash::size(), 32);
  std::size_t pos = 2 * Hash::size();
  while (pos < all.size()) {
    if (code.peers.size() == invite_peers_max) return damaged();
    auto peer = unpack_peer(all, pos);
    if (!peer) return damaged();
    code.peers.push_back(std::move(*peer));
  }
  return code;
}

}  // namespace

std::optional<std::string> canonical_invite_peer(std::string_view address) {
  auto packed = pack_peer(address);
  if (!packed) return std::nullopt;
  std::size_t pos = 0;
  return unpack_peer(ByteView(packed->data(), packed->size()), pos);
}

std::string encode_invite_code(const InviteCode& code) {
  Bytes raw(code.group.view().begin(), code.group.view().end());
  raw.insert(raw.end(), code.secret.data(), code.secret.data() + 32);
  std::size_t written = 0;
  for (const auto& p : code.peers) {
    if (written == invite_peers_written_max) break;
    if (auto packed = pack_peer(p)) {
      raw.insert(raw.end(), packed->begin(), packed->end());
      ++written;
    }
  }
  return std::string(invite_code_prefix) + to_base64url(raw);
}

Result<InviteCode> decode_invite_code(std::string_view text) {
  // Terminals, mail and chat windows wrap long codes: whitespace anywhere is not part of it.
  std::string clean;
  clean.reserve(std::min(text.size(), invite_code_chars_max + 1));
  for (char c : text) {
    if (is_ascii_space(c)) continue;
    if (clean.size() > invite_code_chars_max) break;
    clean.push_back(c);
  }
  const Error not_code(Errc::malformed, "not a qun invite code (it should start with \"qun\")");
  if (clean.size() > invite_code_chars_max || clean.size() < 4 || clean.compare(0, 3, "qun") != 0)
    return not_code;
  const std::string_view body = std::string_view(clean).substr(4);
  if (clean.compare(0, 4, invite_code_prefix) == 0) return decode_v2(body);
  if (clean.compare(0, 4, invite_code_prefix_v1) == 0) return decode_v1(body);
  if (clean[3] >= '3' && clean[3] <= '9')
    return Error(Errc::version_mismatch, "invite code from a newer qun (update qun to use it)");
  return not_code;
}

}  // namespace qun
