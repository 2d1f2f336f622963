// Invite codes (node/invite.h): the current compact format, codes of the first format, codes
// that went through a terminal or a mail client that wrapped them, and damaged codes.
#include "node/invite.h"

#include <catch2/catch.hpp>
#include <cstdio>

#include "base/bytes.h"
#include "crypto/rng.h"
#include "base/codec.h"

using namespace qun;

namespace {

InviteCode sample(std::vector<std::string> peers) {
  Rng rng = Rng::from_u64(7);
  InviteCode c;
  rng.fill(std::span<std::uint8_t>(c.group.data(), Hash::size()));
  rng.fill(std::span<std::uint8_t>(c.secret.data(), 32));
  c.peers = std::move(peers);
  return c;
}

// The same code in the first format, as qun wrote it before the compact one.
std::string encode_v1(const InviteCode& code) {
  codec::Writer w;
  w.array(4).uint(1).fixed(code.group).bin(code.secret.view());
  w.array(static_cast<std::uint32_t>(code.peers.size()));
  for (const auto& p : code.peers) w.str(p);
  return "qun1" + to_base64url(w.take());
}

void check_same(const InviteCode& a, const InviteCode& b) {
  CHECK(a.group == b.group);
  CHECK(a.secret.equals(b.secret));
  CHECK(a.peers == b.peers);
}

}  // namespace

// Proves every address form survives the compact encoding, in order, and that the encoder keeps
// the written bound and skips what is not HOST:PORT.
TEST_CASE("invite code round trip of each address form", "[node][invite]") {
  const InviteCode c = sample({"203.0.113.5:7400", "[2001:db8::7]:7401", "relay.example.org:7000"});
  const std::string text = encode_invite_code(c);
  CHECK(text.rfind("qun2", 0) == 0);
  auto back = decode_invite_code(text);
  REQUIRE(back.ok());
  check_same(*back, c);

  const InviteCode many = sample({"not an address", "1.2.3.4:0", "1.2.3.4:1", "[::1]:2",
                                  "localhost:3", "5.6.7.8:4", "5.6.7.9:5"});
  static_assert(invite_peers_written_max == 4, "the list below is the first four");
  auto cut = decode_invite_code(encode_invite_code(many));
  REQUIRE(cut.ok());
  CHECK(cut->peers ==
        std::vector<std::string>{"1.2.3.4:1", "[::1]:2", "localhost:3", "5.6.7.8:4"});
  CHECK(canonical_invite_peer("[0:0::1]:9") == "[::1]:9");
  CHECK_FALSE(canonical_invite_peer("host name:9"));
  CHECK_FALSE(canonical_invite_peer("1.2.3.4:65536"));
}

// Proves a code copied out of a wrapped terminal line, a mail (CRLF) or with spaces typed into it
// decodes to the same invite: ASCII whitespace anywhere is not part of a code. (Before, only
// whitespace around the code was ignored, and a line break inside it read as "damaged".)
TEST_CASE("invite codes with line breaks and spaces inside decode", "[node][invite]") {
  const InviteCode c = sample({"203.0.113.5:7400", "relay.example.org:7000"});
  const std::string text = encode_invite_code(c);
  for (const char* cut : {"\n", "\r\n", " ", "\t", "\n   "}) {
    INFO("break: " << to_hex(ByteView(reinterpret_cast<const std::uint8_t*>(cut),
                                      std::char_traits<char>::length(cut))));
    const std::string broken = "  " + text.substr(0, 50) + cut + text.substr(50, 30) + cut +
                               text.substr(80) + "\n";
    auto back = decode_invite_code(broken);
    REQUIRE(back.ok());
    check_same(*back, c);
  }
  const std::string v1 = encode_v1(c);
  auto old = decode_invite_code(v1.substr(0, 70) + "\n" + v1.substr(70));
  REQUIRE(old.ok());
  check_same(*old, c);
}

// Proves codes of the first format, handed out before, still decode, and that the compact format
// is shorter: codes with the inviter's address and one relay (by IP address, by name), and the
// longest code the old daemon wrote (the inviter, a relay and six linked peers), each against
// what the daemon writes now.
TEST_CASE("first-format invite codes still decode; the compact format is shorter",
          "[node][invite]") {
  std::vector<std::string> by_ip = {"203.0.113.5:7400", "198.51.100.2:7000"};
  std::vector<std::string> by_name = {"203.0.113.5:7400", "relay.example.org:7000"};
  std::vector<std::string> old_max = by_name;
  for (int i = 0; i < 6; ++i) old_max.push_back("198.51.100." + std::to_string(10 + i) + ":7400");
  auto v1 = decode_invite_code(encode_v1(sample(old_max)));
  REQUIRE(v1.ok());
  check_same(*v1, sample(old_max));

  std::printf("invite code characters, first format -> compact:");
  for (const std::vector<std::string>* peers : {&by_ip, &by_name, &old_max}) {
    const std::size_t before = encode_v1(sample(*peers)).size();
    const std::size_t after = encode_invite_code(sample(*peers)).size();
    std::printf(" %zu -> %zu;", before, after);
    CHECK(after < before);
  }
  std::printf(" (inviter + relay by IP, by name, the old longest)\n");
  // The inviter and a relay by IP address: 64 bytes of group and secret and 7 per address, in
  // base64 after the 4-character prefix, is 108 characters.
  CHECK(encode_invite_code(sample(by_ip)).size() <= 110);
}

// Proves damaged codes are refused with a message a person can act on, never misread: truncated
// bytes, an unknown address tag, a zero port, trailing garbage, a stranger's text, a newer format.
TEST_CASE("damaged invite codes are refused", "[node][invite]") {
  const std::string good = encode_invite_code(sample({"203.0.113.5:7400"}));
  auto body = from_base64url(good.substr(4));
  REQUIRE(body);
  auto recode = [](Bytes b) { return "qun2" + to_base64url(b); };
  Bytes truncated(body->begin(), body->end() - 1);
  Bytes bad_tag = *body;
  bad_tag[64] = 9;
  Bytes zero_port = *body;
  zero_port[zero_port.size() - 1] = 0;
  zero_port[zero_port.size() - 2] = 0;
  Bytes short_secret(body->begin(), body->begin() + 40);
  for (const std::string& text :
       {recode(truncated), recode(bad_tag), recode(zero_port), recode(short_secret),
        good + "!", good.substr(0, good.size() - 3) + "***"}) {
    auto r = decode_invite_code(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == Errc::malformed);
    CHECK(r.error().context().find("damaged") != std::string::npos);
  }
  auto stranger = decode_invite_code("hello there");
  REQUIRE_FALSE(stranger.ok());
  CHECK(stranger.error().context().find("not a qun invite code") != std::string::npos);
  auto newer = decode_invite_code("qun3" + good.substr(4));
  REQUIRE_FALSE(newer.ok());
  CHECK(newer.error().code() == Errc::version_mismatch);
}
