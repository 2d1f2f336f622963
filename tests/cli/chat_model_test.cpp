// The chat model (cli/chat_model.h): text width and wrapping over mixed scripts, the input line
// over multi-byte text, command parsing, and the model's buffers driven through its sans-IO
// interface by a fake node that answers every request it emits.
#include "cli/chat_model.h"
#include "app/render.h"
#include "tests/cli/chat_fake_node.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace qun;
using namespace qun::chat;

using namespace qun::chat::test;

// ---------------------------------------------------------------------------------------------
// Width and wrapping.

// Proves widths follow wcwidth for each script: ASCII 1, CJK and emoji 2, combining marks 0.
TEST_CASE("display width of mixed scripts", "[chat]") {
  CHECK(display_width("hello") == 5);
  CHECK(display_width(cjk) == 6);
  CHECK(display_width(hangul) == 6);
  CHECK(display_width(emoji) == 2);
  CHECK(display_width(e_acute) == 1);
  CHECK(display_width("a" + cjk + emoji + e_acute) == 1 + 6 + 2 + 1);
  CHECK(code_point_width(0x0301) == 0);
  CHECK(code_point_width(0x4E2D) == 2);
  CHECK(code_point_width(0x1F44D) == 2);
  CHECK(code_point_width(0x1B) < 0);
}

// Proves bad bytes never break decoding: each invalid, overlong or surrogate sequence becomes one
// U+FFFD and decoding moves on.
TEST_CASE("UTF-8 decoding replaces invalid sequences", "[chat]") {
  auto decode = [](std::string_view s) {
    std::u32string out;
    std::size_t pos = 0;
    while (pos < s.size()) out.push_back(next_code_point(s, pos));
    return out;
  };
  CHECK(decode("a\xC3\xA9") == U"a\u00E9");
  CHECK(decode("\xFF") == U"\uFFFD");
  CHECK(decode("\xC0\xAF") == U"\uFFFD\uFFFD");            // overlong '/'
  CHECK(decode("\xED\xA0\x80") == U"\uFFFD\uFFFD\uFFFD");  // a surrogate
  CHECK(decode("\xE6\x97") == U"\uFFFD\uFFFD");            // truncated
  std::string round;
  append_utf8(round, 0x1F600);
  CHECK(round == emoji);
}

// Proves peer text cannot reach the terminal as control sequences.
TEST_CASE("sanitize removes control characters and escapes", "[chat]") {
  CHECK(sanitize("a\x1b[31mred", true) == "a\uFFFD[31mred");
  CHECK(sanitize("tab\there\r\n", true) == "tab here\n");
  CHECK(sanitize("one\ntwo", false) == "one\u21B5two");
  CHECK(sanitize("\xC2\x9B"
                 "2J",
                 false) == "\uFFFD2J");  // C1 CSI
  CHECK(sanitize("bad\xFF", false) == "bad\uFFFD");
}

// Proves wrapping breaks at spaces, cuts long words, keeps wide characters whole and keeps
// combining marks with their base.
TEST_CASE("wrap by display width", "[chat]") {
  CHECK(wrap("hello world", 20, 20) == std::vector<std::string>{"hello world"});
  CHECK(wrap("hello world again", 11, 11) == std::vector<std::string>{"hello world", "again"});
  CHECK(wrap("hello world", 5, 5) == std::vector<std::string>{"hello", "world"});
  CHECK(wrap("abcdefghij", 4, 4) == std::vector<std::string>{"abcd", "efgh", "ij"});
  CHECK(wrap("one\ntwo", 20, 20) == std::vector<std::string>{"one", "two"});
  CHECK(wrap("", 10, 10) == std::vector<std::string>{""});
  // CJK: 2 columns each, so 5 columns hold two of them.
  CHECK(wrap(cjk + cjk, 5, 5) ==
        std::vector<std::string>{"\u65E5\u672C", "\u8A9E\u65E5", "\u672C\u8A9E"});
  // A wide character never straddles: in 3 columns after "a", 日 fits, 本 does not.
  CHECK(wrap("a" + cjk, 3, 3) == std::vector<std::string>{"a\u65E5", "\u672C", "\u8A9E"});
  // A character wider than the line gets a line of its own.
  CHECK(wrap(emoji + emoji, 1, 1) == std::vector<std::string>{emoji, emoji});
  // Combining marks stay with their base letter.
  const std::string word = e_acute + e_acute + e_acute + e_acute;
  CHECK(wrap(word, 2, 2) == std::vector<std::string>{e_acute + e_acute, e_acute + e_acute});
  // A different width for continuation lines.
  CHECK(wrap("aa bb cc dd", 5, 2) == std::vector<std::string>{"aa bb", "cc", "dd"});
}

// Proves, over random mixtures of scripts, that no wrapped line is wider than asked (unless it
// is one wide character), that no UTF-8 sequence is split, and that no text is lost but the
// spaces at breaks. The seed is printed on failure.
TEST_CASE("wrap property over mixed scripts", "[chat]") {
  const std::vector<std::string> pieces = {
      "a", "b", " ", "  ", cjk, emoji, e_acute, hangul, "\u00E9", "word", "\U0001F44D\U0001F3FB",
      "\n"};
  const auto seed = static_cast<std::uint32_t>(GENERATE(1, 2, 3, 4, 5, 6, 7, 8));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (int round = 0; round < 200; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) text += pieces[rng() % pieces.size()];
    const int cols = 1 + static_cast<int>(rng() % 12);
    INFO("text [" << text << "] cols " << cols);
    const auto lines = wrap(text, cols, cols);
    REQUIRE(!lines.empty());
    std::string joined;
    for (const auto& line : lines) {
      CHECK(sanitize(line, true) == line);  // valid UTF-8, nothing cut in half
      if (display_width(line) > cols) CHECK(display_width(line) <= 4);  // one wide cluster
      for (char c : line)
        if (c != ' ' && c != '\n') joined += c;
    }
    std::string expected;
    for (char c : text)
      if (c != ' ' && c != '\n') expected += c;
    CHECK(joined == expected);
  }
}

// Proves cutting to a width stops before a character that would not fit, keeping marks whole.
TEST_CASE("truncate to width never cuts a character", "[chat]") {
  CHECK(truncate_to_width("hello", 3) == "hel");
  CHECK(truncate_to_width(cjk, 3) == "\u65E5");
  CHECK(truncate_to_width(e_acute + "x", 1) == e_acute);
  CHECK(truncate_to_width(emoji, 1).empty());
}

// ---------------------------------------------------------------------------------------------
// Mentions.

// Proves mentions are whole-word and case-insensitive, also beyond ASCII.
TEST_CASE("mention detection", "[chat]") {
  CHECK(mentions("hey alice!", "alice"));
  CHECK(mentions("ALICE: look", "alice"));
  CHECK(mentions("@Alice", "alice"));
  CHECK(mentions("alice", "Alice"));
  CHECK_FALSE(mentions("malice in wonderland", "alice"));
  CHECK_FALSE(mentions("alice_bot says hi", "alice"));
  CHECK_FALSE(mentions("alice2", "alice"));
  CHECK(mentions("ZO\u00CB, tea?", "zo\u00EB"));
  CHECK(mentions(cjk + " zo\u00EB", "ZO\u00CB"));
  CHECK_FALSE(mentions("anything", ""));
}

// ---------------------------------------------------------------------------------------------
// The input line.

// Proves the cursor moves by characters over multi-byte text and backspace removes whole ones.
TEST_CASE("input line editing over multi-byte text", "[chat]") {
  InputLine in;
  REQUIRE(in.insert("h\u00E9" + cjk + emoji + e_acute));
  CHECK(in.cursor() == in.text().size());
  in.backspace();  // e + combining acute go together
  CHECK(in.text() == "h\u00E9" + cjk + emoji);
  in.backspace();  // the emoji, 4 bytes
  CHECK(in.text() == "h\u00E9" + cjk);
  in.left();
  in.left();
  REQUIRE(in.insert("x"));
  CHECK(in.text() == "h\u00E9\u65E5x\u672C\u8A9E");
  in.home();
  in.right();
  in.right();  // past é (2 bytes)
  CHECK(in.cursor() == 3);
  in.erase_forward();
  CHECK(in.text() == "h\u00E9x\u672C\u8A9E");
  in.end();
  in.kill_word();
  CHECK(in.text().empty());  // one word without spaces

  in.set("one two  three");
  in.kill_word();
  CHECK(in.text() == "one two  ");
  in.kill_word();
  CHECK(in.text() == "one ");
  in.set("abc def");
  in.left();
  in.left();
  in.kill_to_start();
  CHECK(in.text() == "ef");
  CHECK(in.cursor() == 0);
  in.set("abc def");
  in.home();
  in.right();
  in.kill_to_end();
  CHECK(in.text() == "a");
}

// Proves Up/Down walk the sent lines and return to the unsent draft; the history is bounded.
TEST_CASE("input history with Up and Down keeps the draft", "[chat]") {
  InputLine in;
  in.remember("first");
  in.remember("second");
  in.remember("second");  // repeated lines are kept once
  CHECK(in.history_size() == 2);
  REQUIRE(in.insert("draft"));
  in.history_prev();
  CHECK(in.text() == "second");
  in.history_prev();
  CHECK(in.text() == "first");
  in.history_prev();
  CHECK(in.text() == "first");
  in.history_next();
  CHECK(in.text() == "second");
  in.history_next();
  CHECK(in.text() == "draft");
  for (int i = 0; i < 300; ++i) in.remember("line " + std::to_string(i));
  CHECK(in.history_size() == input_history_max);
}

// Proves the visible part of a long input keeps the cursor on screen, in columns.
TEST_CASE("input line scrolls horizontally around the cursor", "[chat]") {
  InputLine in;
  std::string text;
  for (int i = 0; i < 10; ++i) text += cjk;  // 60 columns
  REQUIRE(in.insert(text));
  auto v = in.visible(20);
  CHECK(v.cursor_col == 19);
  CHECK(display_width(v.text) <= 20);
  in.home();
  v = in.visible(20);
  CHECK(v.cursor_col == 0);
  CHECK(display_width(v.text) <= 20);
  InputLine multi;
  REQUIRE(multi.insert("a\nb"));
  CHECK(multi.visible(20).text == "a\u21B5b");  // newlines show as ↵
  CHECK_FALSE(multi.insert(std::string(input_bytes_max, 'x')));
  CHECK(multi.text() == "a\nb");
}

// ---------------------------------------------------------------------------------------------
// Commands.

// Proves every command of the issue parses, with its argument, case-insensitively.
TEST_CASE("command parsing", "[chat]") {
  using K = Command::Kind;
  auto kind = [](std::string_view s) { return parse_command(s)->kind; };
  CHECK(kind("/join qun1abc") == K::join);
  CHECK(parse_command("/join qun1abc")->arg == "qun1abc");
  CHECK(kind("/invite") == K::invite);
  CHECK(parse_command("/invite")->uses == 1);
  CHECK(parse_command("/invite 25")->uses == 25);
  CHECK(kind("/members") == K::members);
  CHECK(parse_command("/kick bob")->arg == "bob");
  CHECK(kind("/KICK bob") == K::kick);
  CHECK(parse_command("/promote  carol ")->arg == "carol");
  CHECK(parse_command("/topic  tea and biscuits ")->arg == "tea and biscuits");
  CHECK(kind("/leave") == K::leave);
  CHECK(kind("/relays") == K::relays);
  CHECK(kind("/help") == K::help);
  CHECK(kind("/quit") == K::quit);
}

// Proves each bad command is refused with one line saying what is expected.
TEST_CASE("command errors are one line", "[chat]") {
  const std::vector<std::string> bad = {
      "/join",        "/join \n ",    "/invite 0", "/invite lots",    "/invite 10001",
      "/invite 5 5",  "/invite 7d 1h",  "/invite 0d", "/invite 3 7d 1", "/invite 53w",
      "/kick",        "/kick bob carol", "/promote", "/topic",          "/members now",
      "/leave please", "/frobnicate",   "/",         "/kick a\nb"};
  for (const auto& line : bad) {
    INFO(line);
    auto c = parse_command(line);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().context().find('\n') == std::string::npos);
    CHECK_FALSE(c.error().context().empty());
  }
  CHECK(parse_command("/join").error().context() ==
        "usage: /join CODE (the invite code you were given)");
  CHECK(parse_command("/frobnicate").error().context() ==
        "unknown command /frobnicate; /help lists the commands");
  CHECK_FALSE(parse_command("/topic " + std::string(limits::topic_bytes_max + 1, 'x')).ok());
}

// Proves a code pasted into /join broken over lines (the chat and terminals wrap long codes) is
// taken whole, without the whitespace: before, "a command is one line" refused it.
TEST_CASE("/join takes a code broken over lines", "[chat]") {
  auto c = parse_command("/join qun2abc\ndef\r\n  ghi ");
  REQUIRE(c.ok());
  CHECK(c->kind == Command::Kind::join);
  CHECK(c->arg == "qun2abcdefghi");
  CHECK(parse_command("/JOIN\nqun2x")->arg == "qun2x");
  CHECK_FALSE(parse_command("/joinx qun2").ok());
}

// Proves /invite takes a use count and an expiry in either order, with a unit, and sends the
// expiry to the node (before, the chat always asked for an invite that never expires).
TEST_CASE("/invite takes an expiry", "[chat]") {
  CHECK(parse_command("/invite 7d")->expires_ms == 7 * 86'400'000LL);
  CHECK(parse_command("/invite 7d")->uses == 1);
  auto both = parse_command("/invite 3 12h");
  REQUIRE(both.ok());
  CHECK(both->uses == 3);
  CHECK(both->expires_ms == 12 * 3'600'000LL);
  CHECK(parse_command("/invite 12h 3")->uses == 3);
  CHECK(parse_command("/invite")->expires_ms == 0);
  CHECK(parse_expiry("90s").value() == 90'000);
  CHECK(parse_expiry("2w").value() == 14 * 86'400'000LL);
  CHECK_FALSE(parse_expiry("5").ok());
  CHECK_FALSE(parse_expiry("0s").ok());
  CHECK_FALSE(parse_expiry("99999999999d").ok());
}

// ---------------------------------------------------------------------------------------------
// The model against a fake node.

// Proves connecting subscribes before listing, selects the first group and loads its log.
TEST_CASE("model connects, lists groups and loads the selected log", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.add_group("g2", "dev");
  node.logs["g1"] = {message("m1", std::string(64, 'b'), "bob", "hi alice")};
  node.connect();
  REQUIRE(node.seen.size() >= 4);
  CHECK(node.seen[1].op == "subscribe");
  CHECK(node.seen[2].op == "group.list");
  CHECK(node.model.selected_group() == "g1");
  REQUIRE(node.model.messages("g1")->size() == 1);
  CHECK(node.count("log") == 1);  // only the selected group is loaded
  Frame f = node.model.layout(80, 24);
  CHECK(row_text(f.title).find("lobby") != std::string::npos);
  CHECK(row_text(f.title).find("about lobby") != std::string::npos);
  CHECK(row_text(f.status).find("connected") != std::string::npos);
  CHECK(row_text(f.status).find("3 peers") != std::string::npos);
  bool found = false;
  for (const auto& row : f.messages)
    if (row_text(row) == "22:13 bob: hi alice") found = true;
  CHECK(found);
}

// Proves the status line says when no peer of the group is reachable and how many posts wait
// in the node's outbox (issue 11, item 1): before, it said "synced" while posts went nowhere.
// How: the node's status answer for g1 says reachable false and outbox 2, then reachable again.
TEST_CASE("the status line says when no peer is reachable and what is queued", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.status_g1 = Json{{"id", "g1"}, {"synced", false}, {"reachable", false}, {"outbox", 2}};
  node.connect();
  std::string line = row_text(node.model.layout(120, 24).status);
  CHECK(line.find("no peer of this group reachable") != std::string::npos);
  CHECK(line.find("2 queued") != std::string::npos);
  CHECK(line.find("synced") == std::string::npos);
  node.status_g1 = Json{{"id", "g1"}, {"synced", true}, {"reachable", true}, {"outbox", 0}};
  node.model.on_tick(status_poll_ms);  // the next status poll
  node.settle();
  line = row_text(node.model.layout(120, 24).status);
  CHECK(line.find("synced") != std::string::npos);
  CHECK(line.find("reachable") == std::string::npos);
  CHECK(line.find("queued") == std::string::npos);
}

// Proves unread and mention counts grow for groups not on screen, a mention rings the bell, and
// switching marks the group read on the node.
TEST_CASE("unread and mention counting", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.add_group("g2", "dev", 2, 0);
  node.connect();
  const std::string bob(64, 'b');
  CHECK(node.model.group("g2")->unread == 2);  // from the node's count
  node.deliver("g2", message("m1", bob, "bob", "hello"));
  node.deliver("g2", message("m2", bob, "bob", "Alice, look"));
  node.deliver("g2", message("m3", bob, "bob", "", "join"));        // system events are not unread
  node.deliver("g2", message("m4", node.own_id, "alice", "mine"));  // neither are own posts
  CHECK(node.model.group("g2")->unread == 4);
  CHECK(node.model.group("g2")->mentions == 1);
  CHECK(node.bells == 1);
  // On screen: read at once, but a mention still rings.
  node.deliver("g1", message("m5", bob, "bob", "alice?"));
  CHECK(node.model.group("g1")->unread == 0);
  CHECK(node.bells == 2);

  Frame f = node.model.layout(80, 24);
  REQUIRE(f.groups.size() >= 2);
  CHECK(row_text(f.groups[1]).find("4@") != std::string::npos);
  CHECK(f.groups[1][0].style == Style::group_mention);

  const std::size_t reads = node.count("read");
  node.key(Key::Kind::alt_digit, 2);
  CHECK(node.model.selected_group() == "g2");
  CHECK(node.model.group("g2")->unread == 0);
  CHECK(node.model.group("g2")->mentions == 0);
  CHECK(node.count("read") == reads + 1);
  node.key(Key::Kind::ctrl, 'n');
  CHECK(node.model.selected_group() == "g1");
  node.key(Key::Kind::ctrl, 'p');
  CHECK(node.model.selected_group() == "g2");
}

// Proves the unread marker line sits above the messages that arrived while the group was away.
TEST_CASE("unread marker where you last read", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.add_group("g2", "dev");
  const std::string bob(64, 'b');
  node.logs["g1"] = {message("m1", bob, "bob", "old one")};
  node.connect();
  // Messages arriving on screen are read: no marker, also after local lines.
  node.deliver("g1", message("m1b", bob, "bob", "seen live"));
  node.type("/members");
  node.key(Key::Kind::enter);
  for (const auto& row : node.model.layout(80, 24).messages)
    CHECK(row_text(row).find("new messages") == std::string::npos);
  node.deliver("g1", message("m1c", bob, "bob", "seen live too"));
  for (const auto& row : node.model.layout(80, 24).messages)
    CHECK(row_text(row).find("new messages") == std::string::npos);
  node.key(Key::Kind::alt_digit, 2);
  node.deliver("g1", message("m2", bob, "bob", "new one"));
  node.key(Key::Kind::alt_digit, 1);
  Frame f = node.model.layout(80, 24);
  std::vector<std::string> texts;
  for (const auto& row : f.messages) texts.push_back(row_text(row));
  auto old_at = std::find_if(texts.begin(), texts.end(),
                             [](const std::string& s) { return s.find("old one") != s.npos; });
  auto marker_at = std::find_if(texts.begin(), texts.end(), [](const std::string& s) {
    return s.find("new messages") != s.npos;
  });
  auto new_at = std::find_if(texts.begin(), texts.end(),
                             [](const std::string& s) { return s.find("new one") != s.npos; });
  REQUIRE(old_at != texts.end());
  REQUIRE(marker_at != texts.end());
  REQUIRE(new_at != texts.end());
  CHECK(old_at < marker_at);
  CHECK(marker_at < new_at);
}

// Proves the scrollback holds at most scrollback_messages_max messages per group, dropping the
// oldest, and that PageUp at the top loads the page before the oldest message.
TEST_CASE("scrollback bounds and loading older pages", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  const std::string bob(64, 'b');
  for (int i = 0; i < 250; ++i)
    node.logs["g1"].push_back(
        message("o" + std::to_string(i), bob, "bob", "old " + std::to_string(i)));
  node.connect();
  CHECK(node.model.messages("g1")->size() == log_page_messages);
  CHECK_FALSE(node.model.group("g1")->history_complete);
  node.model.layout(80, 24);
  for (int i = 0; i < 20; ++i) node.key(Key::Kind::page_up);
  CHECK(node.model.messages("g1")->size() == 250);
  CHECK(node.model.group("g1")->history_complete);
  CHECK(node.model.messages("g1")->front().id == "o0");
  Frame f = node.model.layout(80, 24);
  CHECK(row_text(f.messages[0]).find("the beginning of lobby") != std::string::npos);
  CHECK(row_text(f.status).find("scrolled up") != std::string::npos);
  for (int i = 0; i < 200; ++i) node.key(Key::Kind::page_down);
  CHECK(node.model.group("g1")->scroll_rows == 0);

  for (std::size_t i = 0; i < scrollback_messages_max + 10; ++i)
    node.deliver("g1", message("n" + std::to_string(i), bob, "bob", "new"));
  const auto* messages = node.model.messages("g1");
  CHECK(messages->size() == scrollback_messages_max);
  CHECK(messages->back().id == "n" + std::to_string(scrollback_messages_max + 9));
  CHECK_FALSE(node.model.group("g1")->history_complete);
  // A duplicate delivery is ignored.
  node.deliver("g1", message("n2000", bob, "bob", "again"));
  CHECK(node.model.messages("g1")->back().id == "n" + std::to_string(scrollback_messages_max + 9));
}

// Proves scrolled-up readers keep their place when new messages arrive.
TEST_CASE("scroll position holds while new messages arrive", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  const std::string bob(64, 'b');
  for (int i = 0; i < 60; ++i)
    node.logs["g1"].push_back(
        message("o" + std::to_string(i), bob, "bob", "line " + std::to_string(i)));
  node.connect();
  node.model.layout(80, 24);
  node.key(Key::Kind::page_up);
  const std::string top = row_text(node.model.layout(80, 24).messages[0]);
  node.deliver("g1", message("x1", bob, "bob", "fresh"));
  CHECK(row_text(node.model.layout(80, 24).messages[0]) == top);
}

// Proves a message over the size bound is refused with one line and stays in the input, and a
// message at the bound is sent.
TEST_CASE("size refusal keeps the text", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  const std::string big(limits::post_text_bytes_max + 1, 'x');
  REQUIRE(node.model.input().insert(big));
  node.key(Key::Kind::enter);
  CHECK(node.posts.empty());
  CHECK(node.model.input().text() == big);
  REQUIRE(node.model.notice());
  CHECK(*node.model.notice() ==
        "message too large: 16385 bytes, at most 16384; it stays in the input");
  node.model.input().backspace();
  node.key(Key::Kind::enter);
  REQUIRE(node.posts.size() == 1);
  CHECK(node.posts[0]["text"].get<std::string>().size() == limits::post_text_bytes_max);
  CHECK(node.model.input().empty());
  // Multi-byte text is measured in bytes: 5462 three-byte characters are 16386 bytes.
  std::string wide;
  for (int i = 0; i < 5462; ++i) wide += "\u65E5";
  REQUIRE(node.model.input().insert(wide));
  node.key(Key::Kind::enter);
  CHECK(node.posts.size() == 1);
  CHECK(node.model.input().text() == wide);
}

// Proves typing and Enter posts to the selected group, Up recalls it, a failed post comes back
// into the input, and while the node is away the text is kept.
TEST_CASE("posting, failure and disconnection keep what was typed", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  node.type("h\u00E9llo " + cjk);
  node.key(Key::Kind::enter);
  REQUIRE(node.posts.size() == 1);
  CHECK(node.posts[0]["group"] == "g1");
  CHECK(node.posts[0]["text"] == "h\u00E9llo " + cjk);
  node.key(Key::Kind::up);
  CHECK(node.model.input().text() == "h\u00E9llo " + cjk);
  node.model.input().clear();

  node.fail["post"] = "not a member of this group";
  node.type("lost?");
  node.key(Key::Kind::enter);
  CHECK(node.model.input().text() == "lost?");
  CHECK(*node.model.notice() == "not a member of this group");
  node.fail.clear();

  node.model.on_disconnected("");
  node.settle();
  node.key(Key::Kind::enter);  // queued while the node is away (see "text typed while ...")
  CHECK(node.model.input().empty());
  CHECK(row_text(node.model.layout(80, 24).status).find("not running") != std::string::npos);
  node.connect();
  CHECK(node.posts.size() == 2);
  CHECK(node.posts.back()["text"] == "lost?");
  CHECK(node.model.input().empty());
  // "//" escapes a leading slash.
  node.type("//shrug");
  node.key(Key::Kind::enter);
  CHECK(node.posts.back()["text"] == "/shrug");
}

// Proves a post lost with the connection (never acknowledged) stays pending and is sent again
// when the node is back: nothing typed is lost.
TEST_CASE("a post lost with the connection is sent again", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  node.answering = false;
  node.type("in flight");
  node.key(Key::Kind::enter);
  CHECK(node.model.input().empty());
  node.model.on_disconnected("the node stopped");
  for (auto& r : node.unanswered)
    node.model.on_response(r, Error(Errc::io, "the node closed the control connection"));
  node.unanswered.clear();
  CHECK(node.model.outbox_size() == 1);
  CHECK(node.screen().find("in flight (pending") != std::string::npos);
  node.answering = true;
  node.connect();
  REQUIRE(node.posts.size() == 1);
  CHECK(node.posts[0]["text"] == "in flight");
  CHECK(node.model.outbox_size() == 0);
  CHECK(node.screen().find("(pending") == std::string::npos);
}

// Proves a bracketed paste keeps its lines as one message.
TEST_CASE("multi-line paste is one message", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  node.key(Key::Kind::paste_begin);
  node.type("line one");
  node.key(Key::Kind::enter);
  node.type("line two");
  node.key(Key::Kind::enter);
  node.key(Key::Kind::paste_end);
  CHECK(node.posts.empty());
  node.key(Key::Kind::enter);
  REQUIRE(node.posts.size() == 1);
  CHECK(node.posts[0]["text"] == "line one\nline two");
}

// Proves commands become the right requests, their results show as lines, and errors keep the
// command in the input.
TEST_CASE("commands reach the node", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  node.type("/invite 3");
  node.key(Key::Kind::enter);
  REQUIRE(node.seen.back().op == "invite");
  CHECK(node.seen.back().args["uses"] == 3);
  CHECK(node.model.messages("g1")->back().text->find("qun1CODE") != std::string::npos);
  CHECK(node.seen.back().args["expires_ms"] == 0);
  node.type("/invite 2 12h");
  node.key(Key::Kind::enter);
  REQUIRE(node.seen.back().op == "invite");
  CHECK(node.seen.back().args["uses"] == 2);
  CHECK(node.seen.back().args["expires_ms"] == 12 * 3'600'000LL);
  const auto& shown = *node.model.messages("g1");
  CHECK(shown[shown.size() - 2].text->find("2 people, valid 12 hours") != std::string::npos);

  node.type("/members");
  node.key(Key::Kind::enter);
  CHECK(*node.model.messages("g1")->back().text == "members (2): alice (founder), bob");

  node.type("/kick bob");
  node.key(Key::Kind::enter);
  const NodeRequest* kick = nullptr;
  for (const auto& r : node.seen)
    if (r.op == "kick") kick = &r;
  REQUIRE(kick != nullptr);
  CHECK(kick->args["member"] == std::string(64, 'b'));  // the roster names bob's id
  CHECK(kick->args["group"] == "g1");
  CHECK(*node.model.notice() == "removed bob");

  node.fail["kick"] = "only admins can remove members";
  node.type("/kick carol");
  node.key(Key::Kind::enter);
  CHECK(*node.model.notice() == "only admins can remove members");
  CHECK(node.model.input().text() == "/kick carol");
  node.model.input().clear();

  node.type("/kick");
  node.key(Key::Kind::enter);
  CHECK(*node.model.notice() == "usage: /kick NICK");
  CHECK(node.model.input().text() == "/kick");
  node.model.input().clear();

  node.type("/help");
  node.key(Key::Kind::enter);
  CHECK(*node.model.messages("g1")->back().text == help_lines().back());

  node.type("/quit");
  node.key(Key::Kind::enter);
  CHECK(node.quit);
}

// Proves /join selects the joined group once the node lists it.
TEST_CASE("join selects the new group", "[chat]") {
  FakeNode node;
  node.connect();
  CHECK_FALSE(node.model.selected_group());
  node.add_group("g9", "newcomers");
  node.type("/join qun1xyz");
  node.key(Key::Kind::enter);
  CHECK(node.model.selected_group() == "g9");
}

// Proves the initial group is found by name or id prefix, and an unknown one is reported.
TEST_CASE("initial group by name or prefix", "[chat]") {
  Json list = Json::array({Json{{"id", "abc123"}, {"name", "lobby"}},
                           Json{{"id", "abd456"}, {"name", "dev"}},
                           Json{{"id", "ffff00"}, {"name", "dev"}}});
  CHECK(*resolve_group(list, "lobby") == "abc123");
  CHECK(*resolve_group(list, "abd") == "abd456");
  CHECK(*resolve_group(list, "ffff00") == "ffff00");
  CHECK(resolve_group(list, "ab").error().code() == Errc::invalid_argument);
  CHECK(resolve_group(list, "dev").error().code() == Errc::invalid_argument);
  CHECK(resolve_group(list, "nope").error().code() == Errc::not_found);

  FakeNode node;
  node.model = ChatModel(ChatModel::Config{std::string("dev"), utc_time});
  node.add_group("g1", "lobby");
  node.add_group("g2", "dev");
  node.connect();
  CHECK(node.model.selected_group() == "g2");
}

// Proves every row of a layout fits its pane, for narrow and wide terminals and mixed scripts.
TEST_CASE("layout fits the terminal", "[chat]") {
  FakeNode node;
  node.add_group("g1", "a group with a very long name indeed " + cjk);
  node.add_group("g2", "dev");
  const std::string bob(64, 'b');
  std::string text;
  for (int i = 0; i < 30; ++i) text += "word " + cjk + emoji + e_acute + " ";
  node.logs["g1"] = {message("m1", bob, "bob\x1b[2J", text),
                     message("m2", bob, "b" + cjk + cjk + cjk + cjk, "x", "set-topic")};
  node.connect();
  REQUIRE(node.model.input().insert(text));
  for (int cols : {20, 41, 59, 60, 80, 133}) {
    for (int rows : {5, 10, 40}) {
      INFO(cols << "x" << rows);
      Frame f = node.model.layout(cols, rows);
      REQUIRE_FALSE(f.too_small);
      CHECK(static_cast<int>(f.messages.size()) == rows - 3);
      const int area = f.groups_cols > 0 ? cols - f.groups_cols - 1 : cols;
      for (const auto& row : f.messages) {
        CHECK(display_width(row_text(row)) <= area);
        CHECK(row_text(row).find('\x1b') == std::string::npos);
      }
      for (const auto& row : f.groups) CHECK(display_width(row_text(row)) <= f.groups_cols);
      CHECK(display_width(row_text(f.title)) <= cols);
      CHECK(display_width(row_text(f.status)) <= cols);
      CHECK(display_width(f.prompt) + display_width(f.input) <= cols);
      CHECK(f.cursor_col < cols);
    }
  }
  CHECK(node.model.layout(19, 24).too_small);
  CHECK(node.model.layout(80, 4).too_small);
}

// Proves Tab completes a nick seen in the group.
TEST_CASE("tab completes nicks", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.logs["g1"] = {message("m1", std::string(64, 'b'), "bobby", "hi"),
                     message("m2", std::string(64, 'c'), "carol", "yo")};
  node.connect();
  node.type("bo");
  node.key(Key::Kind::tab);
  CHECK(node.model.input().text() == "bobby: ");
  node.model.input().clear();
  node.type("ask Ca");
  node.key(Key::Kind::tab);
  CHECK(node.model.input().text() == "ask carol ");
}

// Proves the line mode's rendering.
TEST_CASE("line mode message lines", "[chat]") {
  auto m = parse_message(message("m1", std::string(64, 'b'), "bob", "two\nlines"));
  REQUIRE(m.ok());
  CHECK(message_line(*m, utc_time) == "22:13 bob: two\u21B5lines");
  auto s = parse_message(Json{{"id", "m2"},
                              {"author", std::string(64, 'b')},
                              {"nick", nullptr},
                              {"time", 0},
                              {"kind", "remove"},
                              {"text", nullptr},
                              {"target", std::string(64, 'c')},
                              {"target_nick", "carol"}});
  REQUIRE(s.ok());
  CHECK(message_line(*s, utc_time) == "00:00 * bbbbbbbb removed carol");
  CHECK_FALSE(parse_message(Json{{"id", "x"}}).ok());
}

// Proves bookkeeping events (invites, rekeys) are not shown, and do not hide the marker.
TEST_CASE("invites and rekeys are not shown", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.add_group("g2", "dev");
  const std::string bob(64, 'b');
  node.logs["g1"] = {message("m1", bob, "bob", "hi")};
  node.connect();
  node.key(Key::Kind::alt_digit, 2);
  node.deliver("g1", message("m2", bob, "bob", "", "invite"));
  node.deliver("g1", message("m3", bob, "bob", "", "rekey"));
  node.deliver("g1", message("m4", bob, "bob", "after the invite"));
  node.key(Key::Kind::alt_digit, 1);
  std::string screen;
  for (const auto& row : node.model.layout(80, 24).messages) screen += row_text(row) + "\n";
  CHECK(screen.find("created an invite") == std::string::npos);
  CHECK(screen.find("rotated") == std::string::npos);
  REQUIRE(screen.find("new messages") != std::string::npos);
  CHECK(screen.find("new messages") < screen.find("after the invite"));
}

// ---------------------------------------------------------------------------------------------
// A new user's first week (issue 11): items 9 to 14 and 18.

// Proves an error on the status line goes at the next key press and at the next success (a
// reconnect, a post the node took), where before it stayed until its timer ran out.
TEST_CASE("status-line errors clear on a key press or a success", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  node.type("/frob");
  node.key(Key::Kind::enter);
  REQUIRE(node.model.notice());
  node.key(Key::Kind::left);
  CHECK_FALSE(node.model.notice());

  // A post the node takes clears an error that came after it was sent.
  node.model.input().clear();
  node.answering = false;
  node.type("hello");
  node.key(Key::Kind::enter);
  node.type("/kick bob");
  node.key(Key::Kind::enter);
  REQUIRE(node.unanswered.size() == 2);
  node.model.on_response(node.unanswered[1], Error(Errc::invalid_argument, "only admins can"));
  REQUIRE(node.model.notice());
  node.model.on_response(node.unanswered[0], Json{{"id", "p1"}});
  CHECK_FALSE(node.model.notice());
  node.unanswered.clear();
  node.answering = true;

  node.fail["topic"] = "only admins can set the topic";
  node.model.input().set("/topic tea");
  node.model.on_key(Key{Key::Kind::enter, 0});
  node.settle();
  REQUIRE(node.model.notice());
  node.model.on_disconnected("");
  node.connect();  // a reconnect is a success
  CHECK_FALSE(node.model.notice());
}

// Proves node errors are shown in the chat's words: /members, not `qun members GROUP`.
TEST_CASE("node errors use chat words", "[chat]") {
  CHECK(chat_words("no member matches \"zed\" (see `qun members GROUP`)") ==
        "no member matches \"zed\" (/members lists them)");
  CHECK(chat_words("you cannot kick yourself; use `qun leave`") ==
        "you cannot kick yourself; use /leave");
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  node.fail["kick"] = "no member matches \"zed\" (see `qun members GROUP`)";
  node.type("/kick zed");
  node.key(Key::Kind::enter);
  REQUIRE(node.model.notice());
  CHECK(node.model.notice()->find("/members") != std::string::npos);
  CHECK(node.model.notice()->find("qun members") == std::string::npos);
}

// Proves /leave asks first (it deletes the group's history here), goes ahead on a second /leave,
// and that anything typed in between cancels it.
TEST_CASE("/leave asks for confirmation", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  node.type("/leave");
  node.key(Key::Kind::enter);
  CHECK(node.count("leave") == 0);
  CHECK(node.screen().find("type /leave again") != std::string::npos);
  node.type("never mind");
  node.key(Key::Kind::enter);
  node.type("/leave");
  node.key(Key::Kind::enter);
  CHECK(node.count("leave") == 0);  // asked again
  node.type("/leave");
  node.key(Key::Kind::enter);
  CHECK(node.count("leave") == 1);
}

// Proves text typed while the node is down is queued on Enter, shown as pending in the
// conversation (in order, below newer messages), and posted in order when the node is back.
TEST_CASE("text typed while the node is down is queued and sent", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  node.model.on_disconnected("");
  node.settle();
  node.type("first while away");
  node.key(Key::Kind::enter);
  node.type("second while away");
  node.key(Key::Kind::enter);
  CHECK(node.model.input().empty());
  CHECK(node.posts.empty());
  CHECK(node.model.outbox_size() == 2);
  std::string screen = node.screen();
  CHECK(screen.find("first while away (pending") != std::string::npos);
  CHECK(screen.find("second while away (pending") != std::string::npos);
  CHECK(screen.find("first while away") < screen.find("second while away"));
  node.connect();
  REQUIRE(node.posts.size() == 2);
  CHECK(node.posts[0]["text"] == "first while away");
  CHECK(node.posts[1]["text"] == "second while away");
  CHECK(node.model.outbox_size() == 0);
  CHECK(node.screen().find("(pending") == std::string::npos);

  // Refused by the node once it is back: the text returns to the input, not lost.
  node.model.on_disconnected("");
  node.settle();
  node.type("refused later");
  node.key(Key::Kind::enter);
  node.fail["post"] = "not a member of this group";
  node.connect();
  CHECK(node.model.input().text() == "refused later");
  CHECK(node.model.outbox_size() == 0);
}

// Proves being removed is announced at once (who removed us, what to do), the title stops
// claiming membership, and a post is refused with the way back instead of failing at the node.
TEST_CASE("being removed is announced at once", "[chat]") {
  FakeNode node;
  node.add_group("g1", "ops");
  node.connect();
  Json removal = message("r1", std::string(64, 'c'), "cy", "", "remove");
  removal["target"] = node.own_id;
  removal["target_nick"] = "alice";
  node.deliver("g1", removal);
  const std::string screen = node.screen();
  CHECK(screen.find("you were removed from ops by cy") != std::string::npos);
  CHECK(screen.find("/join CODE") != std::string::npos);
  CHECK(row_text(node.model.layout(80, 24).title).find("not a member") != std::string::npos);
  CHECK(row_text(node.model.layout(80, 24).title).find("members") == std::string::npos);
  CHECK(node.bells == 1);
  node.type("anyone?");
  node.key(Key::Kind::enter);
  CHECK(node.posts.empty());
  CHECK(node.model.input().text() == "anyone?");
  REQUIRE(node.model.notice());
  CHECK(node.model.notice()->find("new invite") != std::string::npos);
}

// Proves succession is announced: after the last admin leaves, the member the group's rule made
// admin (no set-role event) is named.
TEST_CASE("succession is announced", "[chat]") {
  FakeNode node;
  const std::string bob(64, 'b'), cy(64, 'c');
  node.members = Json::array({Json{{"id", cy}, {"nick", "cy"}, {"role", "founder"}},
                              Json{{"id", bob}, {"nick", "bob"}, {"role", "member"}},
                              Json{{"id", node.own_id}, {"nick", "alice"}, {"role", "member"}}});
  node.add_group("g1", "ops");
  node.connect();
  REQUIRE(node.count("members") == 1);
  node.members = Json::array({Json{{"id", bob}, {"nick", "bob"}, {"role", "admin"}},
                              Json{{"id", node.own_id}, {"nick", "alice"}, {"role", "member"}}});
  node.deliver("g1", message("l1", cy, "cy", "", "leave"));
  CHECK(node.screen().find("bob is now an admin: the last admin left") != std::string::npos);
  // A promotion by an admin is its own event, not succession.
  node.members = Json::array({Json{{"id", bob}, {"nick", "bob"}, {"role", "admin"}},
                              Json{{"id", node.own_id}, {"nick", "alice"}, {"role", "admin"}}});
  Json promote = message("s1", bob, "bob", "", "set-role");
  promote["target"] = node.own_id;
  promote["role"] = "admin";
  node.deliver("g1", promote);
  CHECK(node.screen().find("you are now an admin") == std::string::npos);
}

// Proves the sidebar and title use the node's labels, which tell apart two groups of one name,
// and that two members with one nick are told apart in the conversation and in /members.
TEST_CASE("groups and members of the same name are told apart", "[chat]") {
  FakeNode node;
  node.add_group("1b11aa", "lobby");
  node.add_group("77e0bb", "lobby");
  node.groups[0]["label"] = "lobby\u00B71b11";
  node.groups[1]["label"] = "lobby\u00B777e0";
  const std::string bob1(64, 'b'), bob2 = "d" + std::string(63, 'e');
  node.members = Json::array(
      {Json{{"id", node.own_id}, {"nick", "alice"}, {"role", "founder"}, {"label", "alice"}},
       Json{{"id", bob1}, {"nick", "bob"}, {"role", "member"}, {"label", "bob\u00B7bbbb"}},
       Json{{"id", bob2}, {"nick", "bob"}, {"role", "member"}, {"label", "bob\u00B7deee"}}});
  node.connect();
  node.deliver("1b11aa", message("m1", bob1, "bob", "one"));
  node.deliver("1b11aa", message("m2", bob2, "bob", "two"));
  const std::string screen = node.screen(100, 24);
  CHECK(screen.find("lobby\u00B71b11") != std::string::npos);
  CHECK(screen.find("lobby\u00B777e0") != std::string::npos);
  CHECK(screen.find("bob\u00B7bbbb: one") != std::string::npos);
  CHECK(screen.find("bob\u00B7deee: two") != std::string::npos);
  Json promote = message("m3", node.own_id, "alice", "", "set-role");
  promote["target"] = bob2;
  promote["target_nick"] = "bob";
  promote["role"] = "admin";
  node.deliver("1b11aa", promote);
  CHECK(node.screen(100, 24).find("alice made bob\u00B7deee admin") != std::string::npos);
  node.type("/members");
  node.key(Key::Kind::enter);
  CHECK(node.model.messages("1b11aa")->back().text->find("bob\u00B7deee") != std::string::npos);
  node.type("/kick bob\u00B7deee");
  node.key(Key::Kind::enter);
  CHECK(node.seen.back().op == "kick");
  CHECK(node.seen.back().args["member"] == bob2);  // the label names that member's id
}

// Proves that scrolled up, new messages are announced on the status line, and Alt+End (the
// scroll_bottom key) jumps back to the newest one.
TEST_CASE("scrolled up, new messages below are announced", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  for (int i = 0; i < 60; ++i)
    node.logs["g1"].push_back(message("m" + std::to_string(i), std::string(64, 'b'), "bob",
                                      "message " + std::to_string(i)));
  node.connect();
  node.model.layout(80, 24);
  node.key(Key::Kind::page_up);
  REQUIRE(node.model.group("g1")->scroll_rows > 0);
  node.deliver("g1", message("new1", std::string(64, 'b'), "bob", "fresh"));
  node.deliver("g1", message("new2", std::string(64, 'b'), "bob", "fresher"));
  CHECK(row_text(node.model.layout(80, 24).status).find("2 new messages below") !=
        std::string::npos);
  node.key(Key::Kind::scroll_bottom);
  CHECK(node.model.group("g1")->scroll_rows == 0);
  CHECK(row_text(node.model.layout(80, 24).status).find("below") == std::string::npos);
  CHECK(node.screen().find("fresher") != std::string::npos);
}

// Proves a very long message is folded to a few rows with a line saying how much is hidden, and
// Ctrl+O shows it whole.
TEST_CASE("very long messages fold", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  std::string text;
  for (int i = 0; i < 40; ++i) text += "line " + std::to_string(i) + "\n";
  text += "the end";
  node.deliver("g1", message("long", std::string(64, 'b'), "bob", text));
  std::string screen = node.screen(80, 60);
  CHECK(screen.find("line 7") != std::string::npos);
  CHECK(screen.find("line 8\n") == std::string::npos);
  CHECK(screen.find("33 more lines (Ctrl+O unfolds)") != std::string::npos);
  node.key(Key::Kind::ctrl, 'o');
  screen = node.screen(80, 60);
  CHECK(screen.find("the end") != std::string::npos);
  CHECK(screen.find("more lines") == std::string::npos);
}

// Proves the line mode's JSON lines carry "self", true only for this node's own posts.
TEST_CASE("line mode JSON says which posts are our own", "[chat]") {
  const std::string own(64, 'a');
  Json mine = message("m1", own, "alice", "hi");
  Json theirs = message("m2", std::string(64, 'b'), "bob", "hello");
  CHECK(message_json_line(mine, "g1", own)["self"] == true);
  CHECK(message_json_line(theirs, "g1", own)["self"] == false);
  CHECK(message_json_line(theirs, "g1", own)["group"] == "g1");
  CHECK(message_json_line(mine, "g1", "")["self"] == false);
}

// Proves an invite code is shown on rows of its own that span the whole screen from column 0
// (over the groups pane), so copying them never picks up the pane's text, and that the rows put
// back together are the code. Before, the code wrapped inside the message area, and a selection
// of its rows held the groups pane's names and separator between its pieces.
TEST_CASE("invite codes sit on rows of their own across the screen", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.add_group("g2", "dev");
  node.invite_code = "qun2" + std::string(104, 'A');  // 108 characters, as for two IPv4 peers
  node.connect();
  node.type("/invite");
  node.key(Key::Kind::enter);
  for (int cols : {80, 120}) {
    INFO(cols << " columns");
    Frame f = node.model.layout(cols, 24);
    REQUIRE(f.groups_cols > 0);
    std::string joined;
    int wide_rows = 0;
    for (const auto& row : f.messages) {
      if (!is_wide_row(row)) continue;
      ++wide_rows;
      CHECK(display_width(row_text(row)) <= cols);
      joined += row_text(row);
    }
    CHECK(joined == node.invite_code);
    CHECK(wide_rows == (cols >= 108 ? 1 : 2));
  }
}

// Proves the shared words (app/render.h) for being removed apply only to a removal of this node,
// and name succession's cause.
TEST_CASE("removal and succession words", "[chat]") {
  render::Entry e;
  e.kind = "remove";
  e.target = std::string(64, 'a');
  CHECK(render::removed_you_words(e, std::string(64, 'a'), "ops", "cy") ==
        "you were removed from ops by cy");
  CHECK_FALSE(render::removed_you_words(e, std::string(64, 'b'), "ops", "cy"));
  CHECK_FALSE(render::removed_you_words(e, "", "ops", "cy"));
  e.kind = "leave";
  CHECK_FALSE(render::removed_you_words(e, std::string(64, 'a'), "ops", "cy"));
  CHECK(render::succession_words("bob", false, false) == "bob is now an admin: the last admin left");
  CHECK(render::succession_words("bob", true, true) ==
        "you are now an admin: the last admin was removed");
}

// Proves quitting with messages still in the outbox (typed while the node was away) warns first
// and takes a second Ctrl+C, since they exist only in the client; with nothing waiting, Ctrl+C
// quits at once.
TEST_CASE("quitting with unsent messages asks first", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.connect();
  node.model.on_disconnected("");
  node.settle();
  node.type("not yet sent");
  node.key(Key::Kind::enter);
  node.key(Key::Kind::ctrl, 'c');
  CHECK_FALSE(node.quit);
  REQUIRE(node.model.notice());
  CHECK(node.model.notice()->find("1 message is not sent yet") != std::string::npos);
  node.key(Key::Kind::left);  // anything else cancels
  node.key(Key::Kind::ctrl, 'c');
  CHECK_FALSE(node.quit);
  node.key(Key::Kind::ctrl, 'c');
  CHECK(node.quit);

  FakeNode idle;
  idle.add_group("g1", "lobby");
  idle.connect();
  idle.key(Key::Kind::ctrl, 'c');
  CHECK(idle.quit);
}
