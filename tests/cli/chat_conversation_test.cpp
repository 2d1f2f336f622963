// The chat's conversation layer (issue 12): the JSON contract's new fields, reactions, edits and
// deletions applied from the stream, short references and selection, the commands and the
// requests they make, editing with Up, channels in the groups pane, and commands a node does not
// support yet. Driven through the model's sans-IO interface by the fake node of
// tests/cli/chat_fake_node.h.
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cli/chat_conversation.h"
#include "cli/chat_model.h"
#include "tests/cli/chat_fake_node.h"

using namespace qun;
using namespace qun::chat;
using namespace qun::chat::test;

namespace {

const std::string bob(64, 'b');
const std::string carol(64, 'c');

// A post as a node with the conversation layer gives it (docs/cli.md, `log --json`).
Json post(const std::string& id, const std::string& author, const std::string& nick,
          const std::string& text, Json extra = Json::object()) {
  Json m = message(id, author, nick, text);
  m["channel"] = "general";
  m["reply_to"] = nullptr;
  m["edited"] = false;
  m["deleted"] = false;
  m["reactions"] = Json::object();
  for (auto it = extra.begin(); it != extra.end(); ++it) m[it.key()] = it.value();
  return m;
}

// A stream line acting on a message or member.
Json action(const std::string& id, const std::string& author, const std::string& kind,
            const std::string& target, Json extra = Json::object()) {
  Json m = {{"id", id},     {"author", author}, {"nick", "x"},
            {"time", 1'700'000'000'000}, {"kind", kind}, {"target", target}};
  for (auto it = extra.begin(); it != extra.end(); ++it) m[it.key()] = it.value();
  return m;
}

// A random 64-digit hex id.
std::string random_id(std::mt19937& rng) {
  static const char digits[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 64; ++i) id += digits[rng() % 16];
  return id;
}

bool on_screen(FakeNode& node, const std::string& text) {
  return node.screen().find(text) != std::string::npos;
}

const NodeRequest* last(const FakeNode& node, const std::string& op) {
  for (auto it = node.seen.rbegin(); it != node.seen.rend(); ++it)
    if (it->op == op) return &*it;
  return nullptr;
}

// The newest request of op; fails the test when there is none.
const NodeRequest& req(const FakeNode& node, const std::string& op) {
  const NodeRequest* r = last(node, op);
  if (r == nullptr) FAIL("no " + op + " request; notice: " + node.model.notice().value_or(""));
  return *r;
}

// A node with group g1 ("lobby") holding a post by bob (id 1111...) and one of ours (2222...).
void setup(FakeNode& node) {
  node.add_group("g1", "lobby");
  node.logs["g1"].push_back(post(std::string(64, '1'), bob, "bob", "lunch at noon?"));
  node.logs["g1"].push_back(post(std::string(64, '2'), node.own_id, "alice", "yes, the usual"));
  node.connect();
}

}  // namespace

// Proves the new fields of a log entry are read, wrong types read as absent, and a reactions
// object is cut to the chat's bounds, so a hostile node cannot grow one message without bound.
TEST_CASE("conversation fields of a log entry", "[chat]") {
  Json v = post("m1", bob, "bob", "hi",
                {{"channel", "dev"},
                 {"reply_to", "m0"},
                 {"edited", true},
                 {"reactions", {{"\U0001F44D", {"a", "b"}}, {"x", "not an array"}}}});
  auto m = parse_message(v);
  REQUIRE(m.ok());
  CHECK(m->channel == "dev");
  CHECK(m->reply_to == "m0");
  CHECK(m->edited);
  CHECK_FALSE(m->deleted);
  CHECK(m->conversation);
  CHECK(m->reactions.size() == 1);
  CHECK(m->reactions["\U0001F44D"] == std::vector<std::string>{"a", "b"});

  Json plain = message("m2", bob, "bob", "old node");
  auto p = parse_message(plain);
  REQUIRE(p.ok());
  CHECK_FALSE(p->conversation);
  CHECK(p->channel == "general");

  Json many = post("m3", bob, "bob", "x");
  for (int i = 0; i < 200; ++i) many["reactions"]["e" + std::to_string(i)] = {"a"};
  many["reactions"][std::string(emoji_bytes_max + 1, 'e')] = {"a"};
  auto cut = parse_message(many);
  REQUIRE(cut.ok());
  CHECK(cut->reactions.size() == reactions_per_message_max);
  CHECK(cut->reactions.count(std::string(emoji_bytes_max + 1, 'e')) == 0);
}

// Proves reactions add once per member and come off with undo, edits apply only from the author,
// deletion drops text and reactions and then ignores edits, and lines for unheld targets do
// nothing.
TEST_CASE("reactions, edits and deletions apply to their target", "[chat]") {
  std::vector<Message> ms;
  ms.push_back(*parse_message(post("m1", bob, "bob", "hello")));
  auto line = [](const std::string& kind, const std::string& author, Json extra) {
    return *parse_message(action("x", author, kind, "m1", std::move(extra)));
  };
  CHECK(apply_to_target(ms, line("react", carol, {{"emoji", "\U0001F44D"}})));
  CHECK(apply_to_target(ms, line("react", carol, {{"emoji", "\U0001F44D"}})));  // once only
  CHECK(apply_to_target(ms, line("react", bob, {{"emoji", "\U0001F44D"}})));
  CHECK(ms[0].reactions["\U0001F44D"].size() == 2);
  CHECK(apply_to_target(ms, line("react", carol, {{"emoji", "\U0001F44D"}, {"undo", true}})));
  CHECK(ms[0].reactions["\U0001F44D"] == std::vector<std::string>{bob});

  CHECK_FALSE(apply_to_target(ms, line("edit", carol, {{"text", "hijacked"}})));
  CHECK(ms[0].text == "hello");
  CHECK(apply_to_target(ms, line("edit", bob, {{"text", "hello all"}})));
  CHECK(ms[0].text == "hello all");
  CHECK(ms[0].edited);

  CHECK(apply_to_target(ms, line("redact", carol, Json::object())));
  CHECK(ms[0].deleted);
  CHECK(ms[0].redacted_by == carol);
  CHECK_FALSE(ms[0].text);
  CHECK(ms[0].reactions.empty());
  apply_to_target(ms, line("edit", bob, {{"text", "back"}}));
  CHECK_FALSE(ms[0].text);

  Message elsewhere = *parse_message(action("y", bob, "delete", "zz"));
  CHECK_FALSE(apply_to_target(ms, elsewhere));
  Message post_line = *parse_message(post("m9", bob, "bob", "not an action"));
  CHECK_FALSE(apply_to_target(ms, post_line));
}

// Proves references are the shortest unique id prefixes of at least 3 digits, and resolving
// one says clearly when it is ambiguous, unknown or not a reference at all.
TEST_CASE("short references", "[chat]") {
  std::vector<Message> ms;
  for (const char* id : {"abc123", "abd999", "ff0000", "ff0011"})
    ms.push_back(*parse_message(post(id, bob, "bob", "x")));
  auto refs = short_refs(ms);
  CHECK(refs["abc123"] == "abc");
  CHECK(refs["abd999"] == "abd");
  CHECK(refs["ff0000"] == "ff000");
  CHECK(refs["ff0011"] == "ff001");
  for (const auto& [id, ref] : refs) {
    auto k = resolve_ref(ms, ref);
    REQUIRE(k.ok());
    CHECK(ms[*k].id == id);
  }
  CHECK(resolve_ref(ms, "ABC").ok());  // case does not matter
  CHECK(resolve_ref(ms, "ff0").error().code() == Errc::invalid_argument);
  CHECK(resolve_ref(ms, "123").error().code() == Errc::not_found);
  CHECK(resolve_ref(ms, "hello").error().code() == Errc::invalid_argument);
  CHECK(quote_start(ms[0], 10) == "x");
  Message long_one = *parse_message(post("q", bob, "bob", "a long message that goes on"));
  CHECK(quote_start(long_one, 10) == "a long me\u2026");
}

// Proves the line mode and the `*` lines have words for the new kinds (render::entry_words, the
// CLI's too) and show posts as they stand (an action, an edit, a deletion).
TEST_CASE("words for the conversation kinds", "[chat]") {
  auto words = [](Json v) { return system_text(*parse_message(v)); };
  Json mute = action("x", carol, "mute", bob, {{"target_nick", "bob"}, {"duration_ms", 7'200'000}});
  mute["nick"] = "carol";
  CHECK(words(mute) == "carol muted bob for 2h");
  mute["undo"] = true;
  CHECK(words(mute) == "carol unmuted bob");
  Json ban = action("x", carol, "ban", bob, {{"target_nick", "bob"}, {"nick", "carol"}});
  CHECK(words(ban) == "carol banned bob");
  Json nick = message("x", bob, "bob", "robert", "set-nick");
  CHECK(words(nick) == "bob is now known as robert");
  Json channel = message("x", carol, "carol", "dev", "channel");
  CHECK(words(channel) == "carol created the channel #dev");
  auto line = [](Json v) { return message_line(*parse_message(v), utc_time); };
  CHECK(line(post("m", bob, "bob", "waves", {{"action", true}})) == "22:13 * bob waves");
  CHECK(line(post("m", bob, "bob", "fixed", {{"edited", true}})) == "22:13 bob: fixed (edited)");
  CHECK(line(post("m", bob, "bob", "", {{"deleted", true}, {"text", nullptr}})) ==
        "22:13 bob: message deleted");
}

// Proves each new command parses to its kind and arguments, and misuse is one line of usage.
TEST_CASE("conversation commands parse", "[chat]") {
  using K = Command::Kind;
  CHECK(parse_command("/reply 3fa hi there")->kind == K::reply);
  CHECK(parse_command("/reply 3fa hi there")->arg == "3fa hi there");
  CHECK(parse_command("/react \U0001F44D")->kind == K::react);
  CHECK_FALSE(parse_command("/react a b c").ok());
  CHECK(parse_command("/edit")->kind == K::edit);
  CHECK(parse_command("/delete 3fa")->kind == K::del);
  CHECK_FALSE(parse_command("/delete 3fa 3fb").ok());
  CHECK(parse_command("/me waves")->arg == "waves");
  CHECK_FALSE(parse_command("/me").ok());
  CHECK(parse_command("/nick robert")->kind == K::nick);
  CHECK_FALSE(parse_command("/nick two words").ok());
  auto mute = parse_command("/mute bob 2h");
  REQUIRE(mute.ok());
  CHECK(mute->arg == "bob");
  CHECK(mute->expires_ms == 2 * 3'600'000);
  CHECK(parse_command("/mute bob")->expires_ms == 0);
  CHECK_FALSE(parse_command("/mute bob 2y").ok());
  CHECK_FALSE(parse_command("/mute bob 400d").ok());
  for (const char* c : {"/unmute bob", "/ban bob", "/unban bob", "/hide bob", "/unhide bob"})
    CHECK(parse_command(c).ok());
  auto ch = parse_command("/channel rename #dev #devel");
  REQUIRE(ch.ok());
  CHECK(ch->channel_op == Command::ChannelOp::rename);
  CHECK(ch->arg == "dev");
  CHECK(ch->arg2 == "devel");
  CHECK(parse_command("/channel")->channel_op == Command::ChannelOp::list);
  CHECK(parse_command("/channel #dev")->channel_op == Command::ChannelOp::show);
  CHECK(parse_command("/channel create ops")->channel_op == Command::ChannelOp::create);
  // What irssi and weechat users type: /join #channel, /ignore NICK.
  auto join = parse_command("/join #dev");
  REQUIRE(join.ok());
  CHECK(join->kind == K::channel);
  CHECK(join->arg == "dev");
  CHECK(parse_command("/ignore bob")->kind == K::hide);
  CHECK(parse_command("/unignore bob")->kind == K::unhide);
  CHECK_FALSE(parse_command("/channel create " + std::string(81, 'x')).ok());
  // /help lists every one of them.
  std::string help;
  for (const auto& l : help_lines()) help += l + "\n";
  for (const char* c : {"/reply", "/react", "/edit", "/delete", "/me", "/nick", "/mute", "/ban",
                        "/hide", "/channel", "Alt+Up", "Ctrl+R"})
    CHECK(help.find(c) != std::string::npos);
}

// Proves replies quote their parent's start, edited posts say so, deleted ones are one dim
// line, and reactions show as emoji with counts, with who reacted once the message is selected.
TEST_CASE("replies, edits, deletions and reactions on screen", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  const std::string p1(64, '1'), p2(64, '2'), p3(64, '3');
  node.logs["g1"].push_back(post(p1, bob, "bob", "lunch at noon?"));
  node.logs["g1"].push_back(post(p2, node.own_id, "alice", "yes", {{"reply_to", p1}, {"edited", true}}));
  node.logs["g1"].push_back(post(p3, bob, "bob", "", {{"deleted", true}, {"text", nullptr}}));
  node.connect();
  std::string s = node.screen();
  CHECK(s.find("\u250C\u2500 bob: lunch at noon?") != std::string::npos);
  CHECK(s.find("alice: yes (edited)") != std::string::npos);
  CHECK(s.find("bob: message deleted") != std::string::npos);

  node.deliver("g1", action("r1", bob, "react", p1, {{"emoji", "\U0001F44D"}}));
  node.deliver("g1", action("r2", node.own_id, "react", p1, {{"emoji", "\U0001F44D"}}));
  node.deliver("g1", action("r3", bob, "react", p1, {{"emoji", "\U0001F389"}}));
  CHECK(on_screen(node, "\U0001F389 1  \U0001F44D 2"));
  // Reactions and edits are not lines of their own, and not unread.
  CHECK_FALSE(on_screen(node, " react"));
  CHECK(node.model.group("g1")->unread == 0);

  // Alt+Up twice: the newest post, then the one above; its reference shows, and who reacted.
  node.key(Key::Kind::select_up);
  CHECK(node.model.selected_message() == p3);
  node.key(Key::Kind::select_up);
  node.key(Key::Kind::select_up);
  CHECK(node.model.selected_message() == p1);
  CHECK(on_screen(node, "111 bob: lunch at noon?"));
  CHECK(on_screen(node, "\U0001F44D bob, alice"));
  node.key(Key::Kind::escape);
  CHECK_FALSE(node.model.selected_message());

  node.deliver("g1", action("e1", bob, "edit", p1, {{"text", "lunch at one?"}}));
  CHECK(on_screen(node, "bob: lunch at one? (edited)"));
  node.deliver("g1", action("d1", bob, "delete", p1));
  CHECK(on_screen(node, "bob: message deleted"));
  CHECK(on_screen(node, "\u250C\u2500 bob: message deleted"));  // the reply's quote too
  CHECK_FALSE(on_screen(node, "\U0001F44D"));

  // Ctrl+R shows every reference.
  node.key(Key::Kind::ctrl, 'r');
  CHECK(on_screen(node, "222 alice: yes"));
  node.key(Key::Kind::ctrl, 'r');
  CHECK_FALSE(on_screen(node, "222 alice"));
}

// Proves a moderator's redaction says who made it, and a post the node refused (a muted
// author's) is neither shown nor selectable.
TEST_CASE("redactions and refused posts", "[chat]") {
  FakeNode node;
  setup(node);
  node.deliver("g1", post(std::string(64, '4'), bob, "bob", "",
                          {{"deleted", true}, {"text", nullptr}, {"redacted_by", node.own_id}}));
  node.deliver("g1", post(std::string(64, '5'), bob, "bob", "while muted", {{"refused", "muted"}}));
  CHECK(on_screen(node, "bob: message deleted by alice"));
  CHECK_FALSE(on_screen(node, "while muted"));
  node.key(Key::Kind::select_up);
  CHECK(node.model.selected_message() == std::string(64, '4'));
}

// Proves /reply, /react, /edit and /delete make the requests of the contract, by reference or on
// the selected message, and that reacting again with the same emoji takes it back.
TEST_CASE("conversation commands reach the node", "[chat]") {
  FakeNode node;
  node.members[0]["role"] = "member";
  setup(node);
  const std::string p1(64, '1'), p2(64, '2');

  node.type("/reply 111 at noon, yes");
  node.key(Key::Kind::enter);
  REQUIRE(!node.posts.empty());
  CHECK(node.posts.back()["reply_to"] == p1);
  CHECK(node.posts.back()["text"] == "at noon, yes");
  CHECK_FALSE(node.posts.back().contains("channel"));  // #general: a plain post's arguments

  node.key(Key::Kind::select_up);
  node.key(Key::Kind::select_up);
  node.type("/react \U0001F44D");
  node.key(Key::Kind::enter);
  const NodeRequest* r = last(node, "react");
  REQUIRE(r != nullptr);
  CHECK(r->args["event"] == p1);
  CHECK(r->args["emoji"] == "\U0001F44D");
  CHECK_FALSE(r->args.contains("undo"));
  node.deliver("g1", action("r1", node.own_id, "react", p1, {{"emoji", "\U0001F44D"}}));
  node.type("/react 111 \U0001F44D");
  node.key(Key::Kind::enter);
  CHECK(req(node, "react").args["undo"] == true);

  node.type("/me waves");
  node.key(Key::Kind::enter);
  CHECK(node.posts.back()["action"] == true);

  node.type("/edit 111 not mine");
  node.key(Key::Kind::enter);
  CHECK(node.model.notice()->find("only your own") != std::string::npos);
  CHECK(node.model.input().text() == "/edit 111 not mine");  // the line stays to fix
  node.model.input().clear();
  node.type("/edit 222 yes, the usual place");
  node.key(Key::Kind::enter);
  CHECK(req(node, "edit").args["event"] == p2);
  CHECK(req(node, "edit").args["text"] == "yes, the usual place");

  node.type("/delete 111");
  node.key(Key::Kind::enter);
  CHECK(node.model.notice()->find("only your own messages (moderators") != std::string::npos);
  CHECK(last(node, "delete") == nullptr);
  node.model.input().clear();
  node.type("/delete 222");
  node.key(Key::Kind::enter);
  CHECK(req(node, "delete").args["event"] == p2);

  node.type("/reply hello");  // neither selected nor a reference
  node.key(Key::Kind::enter);
  CHECK(node.model.notice()->find("which message?") != std::string::npos);
}

// Proves a moderator may delete anyone's message, and the header shows the role.
TEST_CASE("moderators delete others' messages; the header shows the role", "[chat]") {
  FakeNode node;
  node.members[0]["role"] = "moderator";
  node.members[1]["muted_until"] = 1'700'000'000'000;
  setup(node);
  CHECK(row_text(node.model.layout(80, 24).title).find("you: moderator") != std::string::npos);
  node.type("/members");
  node.key(Key::Kind::enter);
  CHECK(on_screen(node, "alice (moderator), bob (muted until"));
  node.type("/delete 111");
  node.key(Key::Kind::enter);
  REQUIRE(last(node, "delete") != nullptr);
  CHECK(req(node, "delete").args["event"] == std::string(64, '1'));
}

// Proves Up on an empty input edits your last message (Enter saves, Esc cancels), and Up again
// in an untouched edit goes on to the input history as in irssi.
TEST_CASE("Up on an empty input edits the last message", "[chat]") {
  FakeNode node;
  setup(node);
  node.type("/members");
  node.key(Key::Kind::enter);
  node.key(Key::Kind::up);
  CHECK(node.model.editing() == std::string(64, '2'));
  CHECK(node.model.input().text() == "yes, the usual");
  CHECK(node.model.layout(80, 24).prompt == "edit> ");
  node.key(Key::Kind::up);  // untouched: on to the history
  CHECK_FALSE(node.model.editing());
  CHECK(node.model.input().text() == "/members");
  node.model.input().clear();

  node.key(Key::Kind::up);
  node.key(Key::Kind::escape);
  CHECK_FALSE(node.model.editing());
  CHECK(node.model.input().empty());

  node.key(Key::Kind::up);
  node.model.input().end();
  node.type(" place");
  node.key(Key::Kind::enter);
  const NodeRequest* r = last(node, "edit");
  REQUIRE(r != nullptr);
  CHECK(r->args["text"] == "yes, the usual place");
  CHECK(r->args["event"] == std::string(64, '2'));
  CHECK(node.model.input().empty());
  CHECK_FALSE(node.model.editing());
  CHECK(node.posts.empty());  // an edit, never a new post

  // A refused edit comes back as the /edit command, so Enter retries the edit, not a post.
  node.fail["edit"] = "you may edit only your own posts";
  node.key(Key::Kind::up);
  node.type("!");
  node.key(Key::Kind::enter);
  CHECK(node.model.input().text().rfind("/edit 222 ", 0) == 0);
}

// Proves a command the node does not know says so plainly, and a node whose posts carry none of
// the conversation fields has /reply, /react, /edit, /delete and /me refused up front.
TEST_CASE("commands a node does not support yet say so", "[chat]") {
  FakeNode node;
  node.fail["mute"] = "unknown op 'mute' (is the CLI newer than the node?)";
  setup(node);
  node.type("/mute bob 10m");
  node.key(Key::Kind::enter);
  CHECK(node.model.notice() == "/mute: not supported by this node yet");

  FakeNode old;
  old.add_group("g1", "lobby");
  old.logs["g1"].push_back(message(std::string(64, '1'), bob, "bob", "hi"));
  old.connect();
  for (const char* c : {"/reply 111 hi", "/react 111 x", "/me waves", "/delete 111"}) {
    old.model.input().clear();
    old.type(c);
    old.key(Key::Kind::enter);
    CHECK(old.model.notice()->find("not supported by this node yet") != std::string::npos);
  }
  CHECK(old.posts.empty());
  old.model.input().clear();
  old.key(Key::Kind::up);  // no edit without the layer: plain history
  CHECK_FALSE(old.model.editing());
}

// Proves channels sit under their group in the pane with their own unread and mention counts,
// Alt+N and Ctrl+N reach them, each shows its own posts, and a post there names its channel.
TEST_CASE("channels in the groups pane", "[chat]") {
  FakeNode node;
  node.add_group("g1", "lobby");
  node.groups[0]["channels"] = Json::array(
      {Json{{"name", "general"}, {"unread", 0}}, Json{{"name", "dev"}, {"unread", 2}, {"mentions", 1}},
       Json{{"name", "old"}, {"archived", true}}});
  node.add_group("g2", "ops");
  node.logs["g1"].push_back(post(std::string(64, '1'), bob, "bob", "in general"));
  node.logs["g1"].push_back(post(std::string(64, '2'), bob, "bob", "in dev", {{"channel", "dev"}}));
  node.connect();
  CHECK(node.model.channels("g1") == std::vector<std::string>{"general", "dev"});
  Frame f = node.model.layout(80, 24);
  REQUIRE(f.groups.size() >= 3);
  CHECK(row_text(f.groups[0]).find("lobby") != std::string::npos);
  CHECK(row_text(f.groups[1]).find("#dev") != std::string::npos);
  CHECK(row_text(f.groups[1]).find("2@") != std::string::npos);
  CHECK(row_text(f.groups[2]).find("3 ops") != std::string::npos);
  CHECK(on_screen(node, "bob: in general"));
  CHECK_FALSE(on_screen(node, "bob: in dev"));

  // A post in #dev while #general is shown counts for #dev only.
  node.deliver("g1", post(std::string(64, '3'), bob, "bob", "alice: review?", {{"channel", "dev"}}));
  auto entries = node.model.pane_entries();
  CHECK(entries[0].unread == 0);
  CHECK(entries[1].unread == 3);
  CHECK(entries[1].mentions == 2);

  node.key(Key::Kind::alt_digit, 2);
  CHECK(node.model.group("g1")->channel == "dev");
  CHECK(node.model.pane_entries()[1].unread == 0);
  CHECK(req(node, "read").args["channel"] == "dev");
  CHECK(on_screen(node, "bob: in dev"));
  CHECK_FALSE(on_screen(node, "bob: in general"));
  CHECK(row_text(node.model.layout(80, 24).title).find("lobby #dev") != std::string::npos);
  node.type("on it");
  node.key(Key::Kind::enter);
  CHECK(node.posts.back()["channel"] == "dev");

  node.key(Key::Kind::ctrl, 'n');
  CHECK(node.model.selected_group() == "g2");
  node.key(Key::Kind::ctrl, 'p');
  CHECK(node.model.selected_group() == "g1");
  CHECK(node.model.group("g1")->channel == "dev");
  node.type("/channel general");
  node.key(Key::Kind::enter);
  CHECK(node.model.group("g1")->channel == "general");
  node.type("/channel nope");
  node.key(Key::Kind::enter);
  CHECK(node.model.notice()->find("no channel #nope") != std::string::npos);
  node.model.input().clear();
  node.type("/channel create ops-talk");
  node.key(Key::Kind::enter);
  CHECK(req(node, "channel.create").args["name"] == "ops-talk");
}

// Proves moderation and personal commands send the member's id, and /hide takes the member's
// messages off the screen at once.
TEST_CASE("mute, ban, nick and hide", "[chat]") {
  FakeNode node;
  setup(node);
  node.type("/mute bob 2h");
  node.key(Key::Kind::enter);
  const NodeRequest* r = last(node, "mute");
  REQUIRE(r != nullptr);
  CHECK(r->args["member"] == bob);
  CHECK(r->args["for_ms"] == 2 * 3'600'000);
  CHECK(node.model.notice() == "muted bob for 2h");
  node.type("/ban bob");
  node.key(Key::Kind::enter);
  CHECK(req(node, "ban").args["member"] == bob);
  node.type("/nick al");
  node.key(Key::Kind::enter);
  CHECK(req(node, "nick").args["nick"] == "al");
  CHECK(node.model.notice() == "you are now al in every group");
  CHECK(on_screen(node, "bob: lunch at noon?"));
  node.type("/hide bob");
  node.key(Key::Kind::enter);
  CHECK(req(node, "hide").args["member"] == bob);
  CHECK_FALSE(on_screen(node, "bob: lunch at noon?"));
}

// Proves /promote takes the role (admin unless moderator is given), /demote steps one role down,
// both send the member's id, and each says what it did in one line.
TEST_CASE("promote and demote", "[chat]") {
  using K = Command::Kind;
  CHECK(parse_command("/promote bob")->arg2 == "admin");
  CHECK(parse_command("/promote bob moderator")->arg2 == "moderator");
  CHECK_FALSE(parse_command("/promote bob king").ok());
  CHECK_FALSE(parse_command("/promote").ok());
  CHECK(parse_command("/demote bob")->kind == K::demote);
  CHECK_FALSE(parse_command("/demote bob moderator").ok());
  CHECK_FALSE(is_conversation(K::demote));
  CHECK(is_conversation(K::react));

  FakeNode node;
  setup(node);
  node.type("/promote bob moderator");
  node.key(Key::Kind::enter);
  CHECK(req(node, "promote").args["member"] == bob);
  CHECK(req(node, "promote").args["to"] == "moderator");
  CHECK(node.model.notice() == "made bob a moderator");
  CHECK(last(node, "members") != nullptr);  // the roster (and its roles) is fetched again
  node.type("/demote bob");
  node.key(Key::Kind::enter);
  CHECK(req(node, "demote").args["member"] == bob);
  CHECK(node.model.notice() == "bob is now a member");
  node.fail["demote"] = "bob is a member already; nothing changed";
  node.type("/demote bob");
  node.key(Key::Kind::enter);
  CHECK(node.model.notice() == "bob is a member already; nothing changed");
}

// Proves /modlog shows the node's moderation log in the CLI's words (a mute with its duration, a
// role change), newest last, and says so when there is none.
TEST_CASE("/modlog", "[chat]") {
  FakeNode node;
  setup(node);
  node.type("/modlog");
  node.key(Key::Kind::enter);
  CHECK(node.model.messages("g1")->back().text == "no moderation in this group yet");
  node.modlog = Json::array(
      {Json{{"id", "e1"}, {"kind", "mute"}, {"author", node.own_id}, {"nick", "alice"},
            {"time", 1'700'000'000'000}, {"undo", false}, {"detail", ""},
            {"duration_ms", 7'200'000}, {"target", bob}, {"target_nick", "bob"}},
       Json{{"id", "e2"}, {"kind", "set-role"}, {"author", node.own_id}, {"nick", "alice"},
            {"time", 1'700'000'000'000}, {"undo", false}, {"detail", "moderator"},
            {"duration_ms", 0}, {"target", bob}, {"target_nick", "bob"}}});
  node.type("/modlog");
  node.key(Key::Kind::enter);
  const auto& shown = *node.model.messages("g1");
  REQUIRE(shown.size() >= 3);
  CHECK(shown[shown.size() - 3].text == "moderation log:");
  CHECK(shown[shown.size() - 2].text->find("alice muted bob for 2h") != std::string::npos);
  CHECK(shown.back().text->find("alice made bob moderator") != std::string::npos);
  CHECK_FALSE(parse_command("/modlog bob").ok());
}

// Proves the model holds up under a random mix of posts, replies, reactions, edits, deletions and
// redactions (some aimed at messages it does not hold, some from strangers), selection keys and
// edits, at random terminal sizes: every frame fits its width, every reaction stays within its
// bounds, and an edit only ever changes a post of its author. Seeded; the seed is printed.
TEST_CASE("conversation property: random streams and keys", "[chat][property]") {
  const auto seed = static_cast<std::uint32_t>(GENERATE(11, 12, 13, 14));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  FakeNode node;
  node.add_group("g1", "lobby");
  node.groups[0]["channels"] = Json::array({"general", "dev"});
  node.connect();
  const std::vector<std::string> authors = {node.own_id, bob, carol};
  const std::vector<std::string> emoji = {"\U0001F44D", "\U0001F389", "x", "\u65E5"};
  std::vector<std::string> ids;
  std::map<std::string, std::string> author_of;
  for (int step = 0; step < 400; ++step) {
    const std::string id = random_id(rng);
    const std::string& who = authors[rng() % authors.size()];
    const std::string target = ids.empty() || rng() % 5 == 0 ? random_id(rng) : ids[rng() % ids.size()];
    switch (rng() % 8) {
      case 0:
      case 1: {
        Json extra = {{"channel", rng() % 3 == 0 ? "dev" : "general"}};
        if (!ids.empty() && rng() % 2) extra["reply_to"] = target;
        node.deliver("g1", post(id, who, "n", std::string(rng() % 200, 'w'), extra));
        ids.push_back(id);
        author_of[id] = who;
        break;
      }
      case 2:
        node.deliver("g1", action(id, who, "react", target,
                                  {{"emoji", emoji[rng() % emoji.size()]}, {"undo", rng() % 3 == 0}}));
        break;
      case 3:
        node.deliver("g1", action(id, who, "edit", target, {{"text", "edited by " + who.substr(0, 1)}}));
        break;
      case 4:
        node.deliver("g1", action(id, who, rng() % 2 ? "delete" : "redact", target));
        break;
      case 5: {
        const Key::Kind keys[] = {Key::Kind::select_up, Key::Kind::select_down, Key::Kind::escape,
                                  Key::Kind::up, Key::Kind::down, Key::Kind::page_up};
        node.key(keys[rng() % std::size(keys)]);
        break;
      }
      case 6:
        node.key(rng() % 2 ? Key::Kind::alt_digit : Key::Kind::ctrl, rng() % 2 ? 2 : 'r');
        break;
      default:
        node.model.input().clear();
        node.type(rng() % 2 ? "/react \U0001F44D" : "/reply yes");
        node.key(Key::Kind::enter);
        node.model.input().clear();
        break;
    }
    const int cols = 20 + static_cast<int>(rng() % 100);
    const int rows = 5 + static_cast<int>(rng() % 30);
    const Frame f = node.model.layout(cols, rows);
    for (const auto& row : f.messages) {
      int w = 0;
      for (const auto& span : row) w += display_width(span.text);
      CHECK(w <= (is_wide_row(row) ? cols : cols - f.groups_cols));
    }
  }
  for (const auto& m : *node.model.messages("g1")) {
    CHECK(m.reactions.size() <= reactions_per_message_max);
    if (m.kind == "post" && m.edited && m.text)
      CHECK(*m.text == "edited by " + author_of[m.id].substr(0, 1));
  }
}
