// IRC framing for `qun irc` (cli/irc_line.h): parsing and serialising, tag escaping, line
// reassembly with its bound, and the rules that keep a peer's text inside one IRC parameter
// (issue 16, "qun irc").
#include "cli/irc_line.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "base/utf8.h"
#include "crypto/rng.h"

using namespace qun;
using namespace qun::irc;

namespace {

// A string of random bytes biased towards what breaks framing: CR, LF, NUL, spaces, colons,
// controls and multi-byte UTF-8.
std::string hostile_text(Rng& rng, std::size_t n) {
  static const std::string pieces[] = {"\r", "\n", std::string(1, '\0'), " ", ":", "\x01",
                                       "\x03" "4", "\xe6\x97\xa5", "\xf0\x9f\x99\x82", "\xff",
                                       "a", "bc", "\x1b[31m", ",", "#"};
  std::string out;
  while (out.size() < n) out += pieces[rng.uniform(std::size(pieces))];
  return out;
}

}  // namespace

// Proves: a line with tags, a prefix, middle and trailing parameters parses into its parts and
// serialises back to the same bytes; the command is upper-cased.
TEST_CASE("irc lines parse and serialise", "[cli][irc]") {
  auto m = parse("@time=2026-01-01T00:00:00.000Z;msgid=ab :nick!u@h privmsg #chan :hello there");
  REQUIRE(m);
  CHECK(m->command == "PRIVMSG");
  CHECK(m->prefix == "nick!u@h");
  CHECK(m->params == std::vector<std::string>{"#chan", "hello there"});
  CHECK(m->tag("msgid") == "ab");
  CHECK(serialise(*m) ==
        "@time=2026-01-01T00:00:00.000Z;msgid=ab :nick!u@h PRIVMSG #chan :hello there\r\n");

  auto plain = parse("NICK  ada");
  REQUIRE(plain);
  CHECK(plain->params == std::vector<std::string>{"ada"});
  CHECK(serialise(*plain) == "NICK ada\r\n");
  CHECK(serialise(Message{{}, "", "TOPIC", {"#c", ""}}) == "TOPIC #c :\r\n");
  CHECK(serialise(Message{{}, "", "PRIVMSG", {"#c", ":)"}}) == "PRIVMSG #c ::)\r\n");
  CHECK_FALSE(parse(""));
  CHECK_FALSE(parse("   "));
  CHECK_FALSE(parse("@a=b "));

  // Past 14 middle parameters, the rest is one trailing parameter (RFC 2812 2.3.1).
  std::string many = "X";
  for (int i = 0; i < 20; ++i) many += " p" + std::to_string(i);
  auto capped = parse(many);
  REQUIRE(capped);
  CHECK(capped->params.size() == params_max);
}

// Proves: tag values escape and unescape per IRCv3 message-tags, so a value never holds a raw
// space, semicolon, CR or LF on the wire.
TEST_CASE("irc tag values escape and unescape", "[cli][irc]") {
  const std::string raw = "a; b\\c\r\nd";
  const std::string escaped = escape_tag_value(raw);
  CHECK(escaped == "a\\:\\sb\\\\c\\r\\nd");
  CHECK(unescape_tag_value(escaped) == raw);
  CHECK(unescape_tag_value("x\\") == "x");
  CHECK(unescape_tag_value("\\b") == "b");
}

// Proves: the reader splits on CR LF and on a lone LF, drops NUL bytes, and drops (and counts) a
// line past input_line_bytes_max without buffering it, then goes on with the next line.
TEST_CASE("irc line reader bounds lines", "[cli][irc]") {
  LineReader r;
  r.feed(std::string("NICK a\r\nUSER b", 14));
  CHECK(r.next() == "NICK a");
  CHECK_FALSE(r.next());
  r.feed(std::string(" 0 * :x\nPI\0NG\r\n", 16));
  CHECK(r.next() == "USER b 0 * :x");
  CHECK(r.next() == "PING");
  r.feed(std::string(input_line_bytes_max + 10, 'a'));
  r.feed("\r\nQUIT\r\n");
  CHECK(r.next() == "QUIT");
  CHECK(r.dropped_lines() == 1);
}

// Proves: whatever bytes a peer's text holds, neutralise gives valid UTF-8 with no CR, LF, NUL
// or other control character, so it can never end or split a line (seeded property).
TEST_CASE("irc neutralise leaves no framing bytes", "[cli][irc]") {
  const std::uint64_t seed = GENERATE(1, 2, 3, 4, 5);
  INFO("seed " << seed);
  Rng rng = Rng::from_u64(seed);
  for (int i = 0; i < 200; ++i) {
    const std::string out = neutralise(hostile_text(rng, rng.uniform(300)));
    CHECK(utf8::valid(out));
    CHECK_FALSE(utf8::first_control(out, false));
    CHECK(out.find_first_of(std::string("\r\n\0", 3)) == std::string::npos);
  }
  CHECK(neutralise("a\r\nb") == "a\u240D\u21B5b");
}

// Proves: split_text makes pieces of at most the bound, never cuts a UTF-8 sequence, prefers a
// space in the second half of a piece, and loses nothing (seeded property).
TEST_CASE("irc split_text fits pieces to the bound", "[cli][irc]") {
  const std::uint64_t seed = GENERATE(11, 12, 13);
  INFO("seed " << seed);
  Rng rng = Rng::from_u64(seed);
  for (int i = 0; i < 200; ++i) {
    const std::string text = neutralise(hostile_text(rng, rng.uniform(3000)));
    const std::size_t max = 4 + rng.uniform(500);
    std::string joined;
    for (const auto& piece : split_text(text, max)) {
      CHECK(piece.size() <= max);
      CHECK(utf8::valid(piece));
      joined += piece;
    }
    CHECK(joined == text);
  }
  CHECK(split_text("hello world again", 12) == std::vector<std::string>{"hello world ", "again"});
}

// Proves: make_nick gives a valid IRC nick (or "" when nothing is usable) for any input, the
// same one every time; ordinary nicks pass unchanged.
TEST_CASE("irc make_nick makes valid nicks", "[cli][irc]") {
  CHECK(make_nick("alice") == "alice");
  CHECK(make_nick("Bob-2") == "Bob-2");
  CHECK(make_nick("9lives") == "_9lives");
  CHECK(make_nick("ann marie") == "ann_marie");
  CHECK(make_nick("\xe5\xb1\xb1\xe7\x94\xb0") == "");
  CHECK(make_nick("r\xc3\xa9mi") == "r_mi");
  CHECK(make_nick(std::string(100, 'x')).size() == nick_bytes_max);
  Rng rng = Rng::from_u64(7);
  for (int i = 0; i < 500; ++i) {
    const std::string raw = hostile_text(rng, rng.uniform(60));
    const std::string nick = make_nick(raw);
    CHECK((nick.empty() || valid_nick(nick)));
    CHECK(make_nick(raw) == nick);
  }
}

// Proves: a label becomes a channel name without spaces, commas, colons or controls, within
// CHANNELLEN, and the middle dot of a disambiguated label becomes '-'.
TEST_CASE("irc make_channel makes channel names", "[cli][irc]") {
  CHECK(make_channel("lobby") == "#lobby");
  CHECK(make_channel("lobby\xc2\xb7" "1b11") == "#lobby-1b11");
  CHECK(make_channel("a b,c:d\r\n") == "#a-b-c-d--");
  CHECK(make_channel(std::string(80, 'x')).size() == channel_bytes_max);
  const std::string cjk = make_channel(std::string(30, 'x') + "\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5");
  CHECK(cjk.size() <= channel_bytes_max);
  CHECK(utf8::valid(cjk));
}

// Proves: server-time values are ISO 8601 UTC with milliseconds.
TEST_CASE("irc iso_time", "[cli][irc]") {
  CHECK(iso_time(0) == "1970-01-01T00:00:00.000Z");
  CHECK(iso_time(1795760591123) == "2026-11-27T06:23:11.123Z");
  CHECK(iso_time(951782400000) == "2000-02-29T00:00:00.000Z");
}
