#include "base/bytes.h"

#include <catch2/catch.hpp>

namespace qun {
namespace {

// Proves hex encoding is lowercase and round-trips for every byte value.
TEST_CASE("to_hex and from_hex round-trip all byte values", "[crypto]") {
  Bytes all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<std::uint8_t>(i));
  const std::string hex = to_hex(all);
  REQUIRE(hex.size() == 512);
  CHECK(hex.substr(0, 8) == "00010203");
  CHECK(hex.substr(504) == "fcfdfeff");
  const auto back = from_hex(hex);
  REQUIRE(back);
  CHECK(*back == all);
  CHECK(to_hex(Bytes{}).empty());
  CHECK(from_hex("") == Bytes{});
}

// Proves from_hex is strict: odd lengths, non-hex characters, whitespace and separators all
// fail instead of decoding a prefix.
TEST_CASE("from_hex rejects bad input", "[crypto]") {
  CHECK_FALSE(from_hex("a"));
  CHECK_FALSE(from_hex("abc"));
  CHECK_FALSE(from_hex("zz"));
  CHECK_FALSE(from_hex("0g"));
  CHECK_FALSE(from_hex("ab cd"));
  CHECK_FALSE(from_hex("ab:c"));
  CHECK_FALSE(from_hex("abcd\n"));
  CHECK_FALSE(from_hex(" abc"));
  CHECK_FALSE(from_hex(std::string_view("ab\0d", 4)));
  // Upper case is still hex.
  CHECK(from_hex("ABcd") == Bytes{0xab, 0xcd});
}

// Proves base64url uses the URL-safe alphabet without padding (RFC 4648 section 10 vectors,
// unpadded) and round-trips lengths 0..64, covering every remainder mod 3.
TEST_CASE("base64url round-trips and matches RFC 4648 vectors", "[crypto]") {
  CHECK(to_base64url(as_bytes("")) == "");
  CHECK(to_base64url(as_bytes("f")) == "Zg");
  CHECK(to_base64url(as_bytes("fo")) == "Zm8");
  CHECK(to_base64url(as_bytes("foo")) == "Zm9v");
  CHECK(to_base64url(as_bytes("foob")) == "Zm9vYg");
  CHECK(to_base64url(as_bytes("fooba")) == "Zm9vYmE");
  CHECK(to_base64url(as_bytes("foobar")) == "Zm9vYmFy");
  // 0xfb 0xff exercises the two characters that differ from standard base64.
  CHECK(to_base64url(Bytes{0xfb, 0xff}) == "-_8");
  Bytes data;
  for (int n = 0; n <= 64; ++n) {
    const auto back = from_base64url(to_base64url(data));
    REQUIRE(back);
    CHECK(*back == data);
    data.push_back(static_cast<std::uint8_t>(n * 37 + 11));
  }
}

// Proves from_base64url is strict: padding, the standard alphabet, whitespace, trailing
// garbage, impossible lengths and non-canonical trailing bits are all rejected.
TEST_CASE("from_base64url rejects bad input", "[crypto]") {
  CHECK_FALSE(from_base64url("Zg=="));   // padding
  CHECK_FALSE(from_base64url("Zm8="));   // padding
  CHECK_FALSE(from_base64url("+/8"));    // standard alphabet
  CHECK_FALSE(from_base64url("Zm9v "));  // trailing space
  CHECK_FALSE(from_base64url("Zm9v!"));  // trailing garbage
  CHECK_FALSE(from_base64url("Zm 9v"));  // inner space
  CHECK_FALSE(from_base64url("Z"));      // 6 bits cannot make a byte
  CHECK_FALSE(from_base64url("Zm9vY"));  // same, after a full group
  CHECK_FALSE(from_base64url("Zh"));     // non-zero leftover bits: only "Zg" encodes "f"
  CHECK(from_base64url("Zg") == Bytes{'f'});
}

// Proves the big-endian helpers write most significant byte first and round-trip, so store
// keys sort numerically.
TEST_CASE("put_u64_be and get_u64_be", "[crypto]") {
  Bytes out{0xaa};
  put_u64_be(out, 0x0102030405060708ull);
  CHECK(out == Bytes{0xaa, 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(get_u64_be(out.data() + 1) == 0x0102030405060708ull);
  for (std::uint64_t v : {0ull, 1ull, 255ull, 256ull, 0xffffffffffffffffull}) {
    Bytes b;
    put_u64_be(b, v);
    REQUIRE(b.size() == 8);
    CHECK(get_u64_be(b.data()) == v);
  }
  Bytes small, large;
  put_u64_be(small, 255);
  put_u64_be(large, 256);
  CHECK(small < large);
}

}  // namespace
}  // namespace qun
