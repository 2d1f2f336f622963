// base/utf8.h: validity, repair and control detection over the byte sequences that matter.
#include "base/utf8.h"

#include <catch2/catch.hpp>
#include <random>

using namespace qun;

// Proves: the first invalid byte is found for truncated, overlong, surrogate and stray bytes;
// a literal U+FFFD is valid; repair replaces each bad byte and keeps the rest.
TEST_CASE("utf8 validity and repair", "[crypto][utf8]") {
  CHECK(utf8::valid(""));
  CHECK(utf8::valid("plain \u00e9 \u65E5 \U0001F600 \uFFFD"));
  CHECK(utf8::first_invalid("\xff\xfe bad") == std::optional<std::size_t>(0));
  CHECK(utf8::first_invalid("ok\xc3") == std::optional<std::size_t>(2));      // truncated
  CHECK(utf8::first_invalid("ok\xc0\xaf") == std::optional<std::size_t>(2));  // overlong '/'
  CHECK(utf8::first_invalid("\xed\xa0\x80") == std::optional<std::size_t>(0));  // surrogate
  CHECK(utf8::first_invalid("\xf4\x90\x80\x80") == std::optional<std::size_t>(0));  // > U+10FFFF
  CHECK(utf8::make_valid("\xff\xfe bad") == "\uFFFD\uFFFD bad");
  CHECK(utf8::make_valid("a\xc3z\u00e9") == "a\uFFFDz\u00e9");
  CHECK(utf8::make_valid("\uFFFD") == "\uFFFD");
}

// Proves: ESC, other C0, DEL and C1 are controls; newline and tab pass only when allowed.
TEST_CASE("utf8 control detection", "[crypto][utf8]") {
  CHECK(utf8::first_control("\x1b[31m", false) == std::optional<char32_t>(0x1b));
  CHECK(utf8::first_control("a\nb\tc", true) == std::nullopt);
  CHECK(utf8::first_control("a\nb", false) == std::optional<char32_t>('\n'));
  CHECK(utf8::first_control("a\rb", true) == std::optional<char32_t>('\r'));
  CHECK(utf8::first_control("\x7f", true) == std::optional<char32_t>(0x7f));
  CHECK(utf8::first_control("\xc2\x9b", true) == std::optional<char32_t>(0x9b));
  CHECK(utf8::first_control("\u00a0 \u00e9", false) == std::nullopt);
}

// Property: make_valid of random bytes is valid, and is the identity on valid input.
TEST_CASE("utf8 make_valid always yields valid text", "[crypto][utf8][property]") {
  const auto seed = static_cast<std::uint32_t>(GENERATE(range(1, 9)));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 24, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    const std::string fixed = utf8::make_valid(s);
    CHECK(utf8::valid(fixed));
    CHECK(utf8::make_valid(fixed) == fixed);
  }
}
