// The shared renderer (app/render.h): the words of history entries, and text from other people
// made safe for a terminal and for JSON whatever bytes it holds (issue 11, items 2, 3 and 15).
#include "app/render.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>

#include "cli/chat_model.h"
#include "base/utf8.h"

using namespace qun;
using namespace qun::render;

namespace {

// True when s is valid UTF-8 and holds no control code point (C0, DEL, C1), other than
// newlines and tabs when allowed.
bool terminal_safe(const std::string& s, bool allow_line_breaks) {
  return utf8::valid(s) && !utf8::first_control(s, allow_line_breaks);
}

Entry post(std::string text, std::optional<std::string> nick = "alice") {
  Entry e;
  e.id = std::string(64, 'a');
  e.author = std::string(64, 'b');
  e.nick = std::move(nick);
  e.kind = "post";
  e.text = std::move(text);
  return e;
}

}  // namespace

// Proves: escape sequences, other controls and invalid bytes in someone's text come out as
// visible symbols, never as the bytes a terminal acts on (item 3); valid text is unchanged.
TEST_CASE("for_terminal shows controls and invalid bytes visibly", "[cli][render]") {
  CHECK(for_terminal("plain \u00e9t\u00e9 \u65E5\u672C", false) == "plain \u00e9t\u00e9 \u65E5\u672C");
  CHECK(for_terminal("\x1b[31mRED \x1b]0;pwned\x07", false) == "\u241B[31mRED \u241B]0;pwned\u2407");
  CHECK(for_terminal(std::string("nul\0!", 5), false) == "nul\u2400!");
  CHECK(for_terminal("del\x7f", false) == "del\u2421");
  CHECK(for_terminal("csi\xc2\x9b" "2J", false) == "csi\uFFFD2J");  // U+009B, the C1 CSI
  CHECK(for_terminal("\xff\xfe bad", false) == "\uFFFD\uFFFD bad");
  CHECK(for_terminal("cr\rlf", false) == "cr\u240Dlf");
  CHECK(for_terminal("two\nlines\ttab", false) == "two\u21B5lines tab");
  CHECK(for_terminal("two\nlines\ttab", true) == "two\nlines\ttab");
}

// Proves: `qun log` indents the continuation lines of a multi-line post under the nick, and the
// indented lines hold no escape from the post (item 15, item 3).
TEST_CASE("log_entry indents continuation lines and neutralises the post", "[cli][render]") {
  const std::string time = "2026-01-02 03:04";
  CHECK(log_entry(post("one line"), time) == "2026-01-02 03:04  alice: one line");
  CHECK(log_entry(post("first\nsecond\n\x1b[2Jthird"), time) ==
        "2026-01-02 03:04  alice: first\n"
        "                  second\n"
        "                  \u241B[2Jthird");
  Entry unreadable = post("");
  unreadable.text.reset();
  CHECK(log_entry(unreadable, time) == "2026-01-02 03:04  alice: " + std::string(unreadable_text));
  Entry evil = post("hi", "\x1b[31mevil\nnick");
  CHECK(log_entry(evil, time) == "2026-01-02 03:04  \u241B[31mevil\u21B5nick: hi");
}

// Proves: the words are the chat's (item 15), including "cleared the topic" for an empty topic
// (item 8), and names fall back to the id's first 8 digits.
TEST_CASE("event words are the chat's", "[cli][render]") {
  CHECK(event_words("set-topic", "alice", "", std::string(""), std::nullopt) ==
        "alice cleared the topic");
  CHECK(event_words("set-topic", "alice", "", std::string("books"), std::nullopt) ==
        "alice set the topic: books");
  CHECK(event_words("remove", "alice", "bob", std::nullopt, std::nullopt) == "alice removed bob");
  CHECK(event_words("set-role", "alice", "bob", std::nullopt, std::string("admin")) ==
        "alice made bob admin");
  CHECK(event_words("relay", "alice", "", std::string("10.0.0.1:7420"), std::nullopt) ==
        "alice added the relay 10.0.0.1:7420");
  CHECK(name(std::nullopt, "0123456789abcdef") == "01234567");
  CHECK(name(std::string(""), "0123456789abcdef") == "01234567");
  CHECK(bookkeeping("invite"));
  CHECK(bookkeeping("rekey"));
  CHECK(!bookkeeping("post"));
  CHECK(plural(1, "member", "members") == "1 member");
  CHECK(plural(0, "mention", "mentions") == "0 mentions");

  // The chat's system line and the CLI's use the same words.
  chat::Message m;
  m.id = std::string(64, 'c');
  m.author = std::string(64, 'd');
  m.nick = "alice";
  m.kind = "set-topic";
  m.text = "";
  Entry e;
  e.id = m.id;
  e.author = m.author;
  e.nick = m.nick;
  e.kind = m.kind;
  e.text = m.text;
  CHECK(chat::system_text(m) == "alice cleared the topic");
  CHECK(log_entry(e, "T") == "T  * " + chat::system_text(m));
}

// Proves the moderation trail of a bad rekey (issue 10, finding 4): `qun log --all` shows a
// healing rekey with who authored the key it replaces, and closes of invites are bookkeeping.
TEST_CASE("a healing rekey names whose key it replaces", "[cli][render]") {
  auto entry = parse_entry(Json{{"id", std::string(64, 'e')},
                                {"author", std::string(64, 'f')},
                                {"nick", "ada"},
                                {"kind", "rekey"},
                                {"replaces", std::string(64, '1')},
                                {"replaces_author", std::string(64, '2')},
                                {"replaces_nick", "mallory"}});
  REQUIRE(entry.ok());
  CHECK(log_entry(*entry, "T") == "T  * ada rotated the group key, replacing a bad key from mallory");
  CHECK(bookkeeping("close-invite"));
  CHECK(event_words("close-invite", "ada", "", std::nullopt, std::nullopt) == "ada closed an invite");
}

// Proves: entries with fields of the wrong type parse without throwing (absent fields), and
// entries lacking id, author or kind are refused, not rendered.
TEST_CASE("parse_entry takes what it can and never throws", "[cli][render]") {
  auto ok = parse_entry(Json{{"id", "x"}, {"author", "y"}, {"kind", "post"}, {"text", 5},
                             {"nick", nullptr}, {"time", -3}});
  REQUIRE(ok.ok());
  CHECK(!ok->text);
  CHECK(!ok->nick);
  CHECK(ok->time_ms == -3);
  CHECK(!parse_entry(Json{{"id", "x"}, {"kind", "post"}}).ok());
  CHECK(!parse_entry(Json::array()).ok());
}

// Property: random bytes in every field, through every renderer (the CLI's and the chat's),
// never throw and always come out valid UTF-8 with no control character (newlines and tabs only
// where a renderer keeps a post's lines), and as JSON that parses back. The seed is printed on
// failure.
TEST_CASE("every renderer is safe on random bytes", "[cli][render][property]") {
  const auto seed = static_cast<std::uint32_t>(GENERATE(range(1, 17)));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto random_bytes = [&] {
    std::string s(rng() % 40, '\0');
    // Half the time from the interesting bytes only: controls, ESC, C1 leads, UTF-8 leads.
    static const unsigned char interesting[] = {0x00, 0x07, 0x09, 0x0a, 0x0d, 0x1b, 0x5b, 0x7f,
                                                0x80, 0x9b, 0xc2, 0xc3, 0xe2, 0xed, 0xef, 0xf0,
                                                0xf4, 0xf8, 0xff, 'a',  ' ',  ']'};
    const bool narrow = rng() % 2 == 0;
    for (auto& c : s)
      c = static_cast<char>(narrow ? interesting[rng() % sizeof interesting] : rng() % 256);
    return s;
  };
  const char* kinds[] = {"post", "create", "join", "add", "remove", "leave", "set-role",
                         "set-name", "set-topic", "rekey", "invite", "relay", "other\x1b"};
  for (int i = 0; i < 500; ++i) {
    Entry e;
    e.id = random_bytes();
    e.author = random_bytes();
    if (rng() % 4) e.nick = random_bytes();
    e.kind = kinds[rng() % std::size(kinds)];
    if (rng() % 4) e.text = random_bytes();
    if (rng() % 2) e.target = random_bytes();
    if (rng() % 2) e.target_nick = random_bytes();
    if (rng() % 2) e.role = random_bytes();
    const std::string raw = random_bytes();

    CHECK(terminal_safe(for_terminal(raw, false), false));
    CHECK(terminal_safe(for_terminal(raw, true), true));
    const std::string line = log_entry(e, "2026-01-02 03:04");
    CHECK(terminal_safe(line, true));
    if (e.kind != "post") CHECK(line.find('\n') == std::string::npos);
    CHECK(terminal_safe(for_terminal(event_words(e.kind, raw, raw, e.text, e.role), false), false));

    Json j{{"id", e.id}, {"author", e.author}, {"kind", e.kind}, {"text", raw}, {raw, raw}};
    std::string dumped;
    REQUIRE_NOTHROW(dumped = json_line(j));
    CHECK(utf8::valid(dumped));
    CHECK_NOTHROW(Json::parse(dumped));

    // The chat's renderers, on the same entry.
    chat::Message m;
    m.id = e.id;
    m.author = e.author;
    m.nick = e.nick;
    m.kind = e.kind;
    m.text = e.text;
    m.target = e.target;
    m.target_nick = e.target_nick;
    m.role = e.role;
    CHECK(terminal_safe(chat::system_text(m), false));
    CHECK(terminal_safe(chat::message_line(m, chat::local_time), false));
    CHECK(terminal_safe(chat::sanitize(raw, true), true));
  }
}
