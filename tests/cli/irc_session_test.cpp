// The IRC gateway's engine (cli/irc_session.h), driven by a fake node that answers the control
// requests the way net/daemon.cpp does: authentication, registration, groups as channels,
// posts both ways, neutralising and splitting a peer's text, unique valid nicks, history played
// back since the last read, JOIN with an invite code, PART and CHATHISTORY (issue 16).
#include "cli/irc_session.h"

#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/utf8.h"

using namespace qun;
using namespace qun::irc;

namespace {

const std::string self_id = std::string(64, 'a');
const std::string bob_id = "b0b" + std::string(61, '1');
const std::string bob2_id = "90c" + std::string(61, '2');
const std::string cy_id = "c0c" + std::string(61, '3');
const std::string lobby_id = "1111" + std::string(60, 'f');
const std::string password = "s3cret";

Json entry(const std::string& id, const std::string& author, const std::string& nick,
           const std::string& kind, std::optional<std::string> text, std::int64_t time = 1000) {
  Json j{{"id", id}, {"author", author}, {"nick", nick}, {"kind", kind}, {"time", time}};
  j["text"] = text ? Json(*text) : Json();
  return j;
}

struct FakeGroup {
  std::string id, name;
  std::optional<std::string> topic;
  std::uint64_t unread = 0;
  std::vector<Json> members;  // {"id","nick","role"}
  std::vector<Json> log;
  std::vector<Json> channels;  // channel.list: {"id","name","archived"}; none: an old node
  std::string peer;            // a direct conversation's other member (qun dm); empty: a group
  std::string peer_nick;
};

// Answers the session's requests from groups_, records every request, and hands the session's
// client lines to the test.
class Harness {
 public:
  explicit Harness(std::vector<FakeGroup> groups) : session(Config{password, "/home/x/irc-password", "qun", nullptr}) {
    for (auto& g : groups) groups_[g.id] = std::move(g);
  }

  void line(const std::string& l) {
    session.on_line(l);
    drain();
  }
  void stream(const Json& v) {
    session.on_stream(v);
    drain();
  }
  void login(const std::string& caps = "") {
    if (!caps.empty()) line("CAP LS 302");
    line("PASS " + password);
    line("NICK ada");
    line("USER ada 0 * :Ada");
    if (!caps.empty()) {
      line("CAP REQ :" + caps);
      line("CAP END");
    }
  }
  // Lines the client got since the last call.
  std::vector<std::string> take() {
    auto out = std::move(lines_);
    lines_.clear();
    return out;
  }
  bool has(const std::vector<std::string>& lines, const std::string& needle) {
    for (const auto& l : lines)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }

  Session session;
  std::vector<NodeRequest> requests;
  std::map<std::string, FakeGroup> groups_;
  bool closed = false;
  std::string join_answer;  // group id a "join" request answers with
  // Runs before a `log` request is answered: what the node streams while the page is on its way.
  std::function<void()> before_log;

 private:
  void drain() {
    // Answers are given after the drain, as the node answers later than the request is sent.
    std::vector<NodeRequest> asked;
    while (auto out = session.poll()) {
      if (auto* t = std::get_if<ToClient>(&*out)) {
        REQUIRE(t->line.size() >= 2);
        REQUIRE(t->line.substr(t->line.size() - 2) == "\r\n");
        lines_.push_back(t->line.substr(0, t->line.size() - 2));
      } else if (auto* r = std::get_if<NodeRequest>(&*out)) {
        requests.push_back(*r);
        asked.push_back(*r);
      } else {
        closed = true;
      }
    }
    for (const auto& r : asked) {
      if (r.op == "log" && before_log) {
        auto hook = std::move(before_log);
        before_log = nullptr;
        hook();
      }
      session.on_response(r.token, answer(r));
      drain();
    }
  }

  Result<Json> answer(const NodeRequest& r) {
    if (r.op == "id") return Json{{"id", self_id}, {"nick", "ada"}};
    if (r.op == "subscribe" || r.op == "read") return Json::object();
    if (r.op == "group.list") {
      Json out = Json::array();
      for (const auto& [id, g] : groups_) {
        out.push_back(Json{{"id", id}, {"name", g.name}, {"label", g.name}, {"topic", g.topic ? Json(*g.topic) : Json()},
                           {"unread", g.unread}, {"member", true}, {"joining", false}});
        if (!g.peer.empty()) {
          out.back()["direct"] = true;
          out.back()["peer"] = Json{{"member", g.peer}, {"nick", g.peer_nick}};
        }
      }
      return out;
    }
    const std::string gid = r.args.value("group", std::string());
    if (r.op == "dm") {
      // The direct conversation with the member: found, or made ("d" and the member's id).
      const std::string member = r.args["member"];
      std::string id;
      for (const auto& [gid2, g] : groups_)
        if (g.peer == member) id = gid2;
      const bool created = id.empty();
      if (created) {
        id = "d" + member.substr(0, 63);
        FakeGroup d;
        d.id = id;
        d.name = "@peer";
        d.peer = member;
        d.peer_nick = "bob";
        groups_[id] = d;
      }
      FakeGroup& d = groups_[id];
      const std::string eid = "m" + std::to_string(d.log.size());
      d.log.push_back(entry(eid, self_id, "ada", "post", r.args["text"].get<std::string>()));
      return Json{{"group", id}, {"created", created}, {"id", eid}, {"queued", false}};
    }
    if (r.op == "join") {
      groups_[join_answer] = FakeGroup{
          join_answer, "new", {}, 0, {Json{{"id", self_id}, {"nick", "ada"}, {"role", "member"}}},
          {},          {},  {}, {}};
      return Json{{"group", join_answer}};
    }
    auto it = groups_.find(gid);
    if (it == groups_.end()) return Error(Errc::not_found, "no group " + gid);
    FakeGroup& g = it->second;
    if (r.op == "members") return Json(g.members);
    if (r.op == "channel.list") {
      if (g.channels.empty()) return Error(Errc::invalid_argument, "unknown op channel.list");
      return Json(g.channels);
    }
    if (r.op == "channel.create") return Json{{"id", "c1"}, {"queued", false}};
    if (r.op == "log") {
      std::size_t end = g.log.size();
      if (r.args.contains("before"))
        for (std::size_t i = 0; i < g.log.size(); ++i)
          if (g.log[i]["id"] == r.args["before"]) end = i;
      if (r.args.contains("channel")) {
        std::vector<Json> only;
        for (std::size_t i = 0; i < end; ++i)
          if (g.log[i].value("channel", std::string("general")) == r.args["channel"])
            only.push_back(g.log[i]);
        return Json(only);
      }
      const std::size_t limit = r.args.value("limit", 50);
      const std::size_t begin = end > limit ? end - limit : 0;
      return Json(std::vector<Json>(g.log.begin() + static_cast<std::ptrdiff_t>(begin),
                                    g.log.begin() + static_cast<std::ptrdiff_t>(end)));
    }
    if (r.op == "post") {
      const std::string id = "e" + std::to_string(g.log.size());
      g.log.push_back(entry(id, self_id, "ada", "post", r.args["text"].get<std::string>()));
      if (r.args.contains("action")) g.log.back()["action"] = r.args["action"];
      if (r.args.contains("reply_to")) g.log.back()["reply_to"] = r.args["reply_to"];
      g.log.back()["channel"] = r.args.value("channel", std::string("general"));
      return Json{{"id", id}, {"queued", false}};
    }
    if (r.op == "topic" || r.op == "kick" || r.op == "promote" || r.op == "leave")
      return Json{{"id", "t1"}};
    if (r.op == "invite") return Json{{"code", "qun2CODE"}};
    if (r.op == "react") return Json{{"id", "x1"}, {"queued", false}};
    return Error(Errc::invalid_argument, "unknown op " + r.op);
  }

  std::vector<std::string> lines_;
};

FakeGroup lobby() {
  FakeGroup g{lobby_id, "lobby", "welcome", 0, {}, {}, {}, {}, {}};
  g.members = {Json{{"id", self_id}, {"nick", "ada"}, {"role", "founder"}},
               Json{{"id", bob_id}, {"nick", "bob"}, {"role", "member"}}};
  return g;
}

Json message(const std::string& group, const Json& e) {
  return Json{{"stream", "message"}, {"group", group}, {"message", e}};
}

// The non-tag part of a line, as the 512-byte limit counts it (IRCv3 message-tags).
std::string without_tags(const std::string& line) {
  if (line.empty() || line[0] != '@') return line;
  return line.substr(line.find(' ') + 1);
}

}  // namespace

// Proves: a client without PASS, or with a wrong one, gets 464 and ERROR and is closed, and the
// node is never asked anything for it; the right password registers it (001) and asks the node
// for its id, groups and a subscription.
TEST_CASE("irc session: PASS is required and checked", "[cli][irc]") {
  SECTION("none") {
    Harness h({lobby()});
    h.line("NICK ada");
    h.line("USER ada 0 * :Ada");
    auto lines = h.take();
    CHECK(h.has(lines, " 464 ada :Password required"));
    CHECK(h.has(lines, "/home/x/irc-password"));
    CHECK(h.has(lines, "ERROR :Closing link"));
    CHECK(h.closed);
    CHECK(h.requests.empty());
    h.line("PRIVMSG #lobby :hi");
    CHECK(h.take().empty());
  }
  SECTION("wrong") {
    Harness h({lobby()});
    h.line("PASS s3creT");
    h.line("NICK ada");
    h.line("USER ada 0 * :Ada");
    CHECK(h.has(h.take(), " 464 ada :Password incorrect"));
    CHECK(h.closed);
    CHECK(h.requests.empty());
  }
  SECTION("commands before registering are refused") {
    Harness h({lobby()});
    h.line("JOIN #lobby");
    CHECK(h.has(h.take(), " 451 "));
    CHECK(h.requests.empty());
  }
  SECTION("right") {
    Harness h({lobby()});
    h.login();
    auto lines = h.take();
    CHECK(h.has(lines, ":qun 001 ada :Welcome"));
    CHECK(h.has(lines, ":ada!ada@localhost JOIN #lobby"));
    CHECK(h.has(lines, ":qun 332 ada #lobby welcome"));
    CHECK(h.has(lines, ":qun 353 ada = #lobby :@ada bob"));
    CHECK_FALSE(h.closed);
    REQUIRE(h.requests.size() >= 3);
    CHECK(h.requests[0].op == "id");
    CHECK(h.requests[1].op == "group.list");
    CHECK(h.requests[2].op == "subscribe");
  }
}

// Proves: CAP negotiation holds registration until CAP END, acknowledges what is offered and
// refuses (NAK) a request naming anything else.
TEST_CASE("irc session: CAP negotiation", "[cli][irc]") {
  Harness h({lobby()});
  h.line("CAP LS 302");
  h.line("PASS " + password);
  h.line("NICK ada");
  h.line("USER ada 0 * :Ada");
  auto lines = h.take();
  CHECK(h.has(lines,
              "CAP * LS :batch draft/chathistory draft/message-redaction echo-message message-tags "
              "server-time"));
  CHECK_FALSE(h.has(lines, " 001 "));
  h.line("CAP REQ :server-time sasl");
  CHECK(h.has(h.take(), "CAP ada NAK :server-time sasl"));
  h.line("CAP REQ :server-time message-tags");
  CHECK(h.has(h.take(), "CAP ada ACK :server-time message-tags"));
  h.line("CAP END");
  CHECK(h.has(h.take(), " 001 ada "));
}

// Proves: a line typed in a channel becomes a post of the group, a CTCP ACTION a "/me" post, and
// formatting codes are stripped; the post's own delivery is not echoed back (the client shows
// what it sent) unless echo-message was negotiated; a peer's post and a peer's "/me" post reach
// the client as PRIVMSG and ACTION from the peer's nick.
TEST_CASE("irc session: posts both ways", "[cli][irc]") {
  Harness h({lobby()});
  h.login();
  h.take();
  h.line("PRIVMSG #lobby :hello \x02" "there\x02");
  h.line("PRIVMSG #lobby :\x01" "ACTION waves\x01");
  auto& log = h.groups_[lobby_id].log;
  REQUIRE(log.size() == 2);
  CHECK(log[0]["text"] == "hello there");
  CHECK(log[1]["text"] == "waves");
  CHECK(h.requests.back().args["action"] == true);
  h.stream(message(lobby_id, log[0]));
  CHECK(h.take().empty());
  h.stream(message(lobby_id, entry("p1", bob_id, "bob", "post", "hi ada")));
  h.stream(message(lobby_id, entry("p2", bob_id, "bob", "post", "/me waves back")));
  auto lines = h.take();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == ":bob!b0b11111@qun PRIVMSG #lobby :hi ada");
  CHECK(lines[1] == ":bob!b0b11111@qun PRIVMSG #lobby :\x01" "ACTION waves back\x01");
  // What was delivered was read here: the node's read marker moves once for the batch.
  CHECK(h.requests.back().op == "read");

  SECTION("echo-message echoes") {
    Harness e({lobby()});
    e.login("echo-message");
    e.take();
    e.line("PRIVMSG #lobby :mine");
    e.stream(message(lobby_id, e.groups_[lobby_id].log[0]));
    CHECK(e.has(e.take(), ":ada!ada@localhost PRIVMSG #lobby mine"));
  }
}

// Proves: a peer's post holding CR, LF, NUL and formatting codes, 3,000 bytes long, reaches the
// client as lines of at most 512 bytes (tags not counted, as the message-tags spec says), none
// holding CR, LF or NUL inside, each a PRIVMSG from the peer, and together they hold the whole
// text: one line per line of the post, each split on UTF-8 boundaries.
TEST_CASE("irc session: a peer's text never breaks framing", "[cli][irc]") {
  Harness h({lobby()});
  h.login("server-time message-tags");
  h.take();
  std::string text = "first\r\nQUIT :bye\r\n";
  text += std::string("x\0y", 3);
  for (int i = 0; i < 300; ++i) text += "\xe6\x97\xa5\xe6\x9c\xac \x03" "4red ";
  h.stream(message(lobby_id, entry("p9", bob_id, "bob", "post", text)));
  auto lines = h.take();
  REQUIRE(lines.size() > 3);
  std::string joined;
  for (const auto& l : lines) {
    INFO(l);
    CHECK(without_tags(l).size() + 2 <= line_bytes_max);
    CHECK(l.find_first_of(std::string("\r\n\0", 3)) == std::string::npos);
    CHECK(utf8::valid(l));
    const std::string body = without_tags(l);
    const std::string start = ":bob!b0b11111@qun PRIVMSG #lobby ";
    REQUIRE(body.rfind(start, 0) == 0);
    std::string text = body.substr(start.size());
    if (text[0] == ':') text.erase(0, 1);
    joined += text;
  }
  CHECK(lines[0].find("@time=1970-01-01T00:00:01.000Z;msgid=p9 ") == 0);
  // "QUIT :bye" arrives as text of bob's message, never as a command of its own.
  CHECK(lines[1] == "@time=1970-01-01T00:00:01.000Z;msgid=p9 :bob!b0b11111@qun PRIVMSG #lobby :QUIT :bye\u240D");
  CHECK(joined.find("\u2400") != std::string::npos);  // the NUL, as a visible symbol
}

// Proves: peers' nicks that are not valid IRC nicks are made valid, and nicks that clash (two
// members named bob, a member named like the client) get an id suffix, the same each time; the
// rest keep theirs.
TEST_CASE("irc session: nicks are valid and unique", "[cli][irc]") {
  FakeGroup g = lobby();
  g.members.push_back(Json{{"id", bob2_id}, {"nick", "bob"}, {"role", "member"}});
  g.members.push_back(Json{{"id", cy_id}, {"nick", "ADA"}, {"role", "admin"}});
  g.members.push_back(Json{{"id", std::string(64, 'd')}, {"nick", "d\xc3\xa9 nis"}, {"role", "member"}});
  g.members.push_back(Json{{"id", std::string(64, 'e')}, {"nick", "\xe5\xb1\xb1"}, {"role", "member"}});
  Harness h({g});
  h.login();
  auto lines = h.take();
  CHECK(h.has(lines, " 353 ada = #lobby :@ada bob|b0b1 bob|90c2 @ADA|c0c3 d_nis qeeeeeeee"));
  h.line("WHO #lobby");
  lines = h.take();
  CHECK(h.has(lines, " 352 ada #lobby 90c22222 qun qun bob|90c2 H :0 bob"));
  h.line("WHOIS bob|90c2");
  CHECK(h.has(h.take(), " 311 ada bob|90c2 90c22222 qun * :bob " + bob2_id));

  // The client takes a nick a member holds: refused.
  h.line("NICK d_nis");
  CHECK(h.has(h.take(), " 433 "));
}

// Proves: joining plays back what came since the node's read marker (the `unread` newest posts
// by others and what follows them), with [HH:MM] in the text for a client without server-time
// and a time tag with it, events in words; then marks the group read. Nothing is played back
// when nothing is unread.
TEST_CASE("irc session: history since the last read is played back on join", "[cli][irc]") {
  FakeGroup g = lobby();
  g.log = {entry("e1", bob_id, "bob", "post", "old, already read", 60'000),
           entry("e2", self_id, "ada", "post", "mine, read", 120'000),
           entry("e3", bob_id, "bob", "post", "first unread", 180'000),
           entry("e4", cy_id, "cy", "join", std::nullopt, 240'000),
           entry("e5", bob_id, "bob", "post", "second unread", 300'000)};
  g.unread = 2;
  SECTION("plain") {
    Harness h({g});
    h.login();
    auto lines = h.take();
    CHECK_FALSE(h.has(lines, "already read"));
    CHECK(h.has(lines, ":bob!b0b11111@qun PRIVMSG #lobby :[00:03] first unread"));
    CHECK(h.has(lines, ":qun NOTICE #lobby :[00:04] * cy joined"));
    CHECK(h.has(lines, ":bob!b0b11111@qun PRIVMSG #lobby :[00:05] second unread"));
    CHECK(h.requests.back().op == "read");
  }
  SECTION("server-time") {
    Harness h({g});
    h.login("server-time");
    auto lines = h.take();
    CHECK(h.has(lines, "@time=1970-01-01T00:03:00.000Z :bob!b0b11111@qun PRIVMSG #lobby :first unread"));
  }
  SECTION("what arrives while the page is on its way is shown once, in order") {
    Harness h({g});
    h.before_log = [&] {
      // The node stores and streams a new post before it answers `log`: the page holds it.
      Json late = entry("e6", bob_id, "bob", "post", "arrived meanwhile", 360'000);
      h.groups_[lobby_id].log.push_back(late);
      h.session.on_stream(message(lobby_id, late));
    };
    h.login();
    auto lines = h.take();
    std::vector<std::string> posts;
    for (const auto& l : lines)
      if (l.find(" PRIVMSG #lobby ") != std::string::npos) posts.push_back(l.substr(l.find(" :[") + 2));
    CHECK(posts == std::vector<std::string>{"[00:03] first unread", "[00:05] second unread",
                                            "[00:06] arrived meanwhile"});
  }
  SECTION("nothing unread") {
    g.unread = 0;
    Harness h({g});
    h.login();
    auto lines = h.take();
    CHECK_FALSE(h.has(lines, "PRIVMSG"));
    for (const auto& r : h.requests) CHECK(r.op != "log");
  }
}

// Proves: with draft/chathistory the client asks for history itself (nothing is played back on
// join): CHATHISTORY BEFORE msgid= pages the node's log before that event, LATEST * gives the
// newest, each in a chathistory batch with msgid and time tags; other forms get FAIL.
TEST_CASE("irc session: CHATHISTORY", "[cli][irc]") {
  FakeGroup g = lobby();
  for (int i = 0; i < 10; ++i) g.log.push_back(entry("e" + std::to_string(i), bob_id, "bob", "post", "m" + std::to_string(i)));
  g.unread = 10;
  Harness h({g});
  h.login("draft/chathistory batch server-time message-tags");
  auto lines = h.take();
  CHECK_FALSE(h.has(lines, "PRIVMSG"));
  h.line("CHATHISTORY BEFORE #lobby msgid=e5 2");
  lines = h.take();
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == ":qun BATCH +1 chathistory #lobby");
  CHECK(lines[1] == "@batch=1;time=1970-01-01T00:00:01.000Z;msgid=e3 :bob!b0b11111@qun PRIVMSG #lobby m3");
  CHECK(lines[2].find("msgid=e4 ") != std::string::npos);
  CHECK(lines[3] == ":qun BATCH -1");
  h.line("CHATHISTORY LATEST #lobby * 1");
  CHECK(h.has(h.take(), "msgid=e9 "));
  h.line("CHATHISTORY AROUND #lobby msgid=e5 2");
  CHECK(h.has(h.take(), "FAIL CHATHISTORY INVALID_PARAMS AROUND"));
}

// Proves: JOIN of a channel that is no group here with a key joins the group with the key as
// invite code, and the group's channel is joined once the node has it; without a key it is 403.
TEST_CASE("irc session: JOIN with an invite code", "[cli][irc]") {
  Harness h({lobby()});
  h.login();
  h.take();
  h.line("JOIN #nope");
  CHECK(h.has(h.take(), " 403 ada #nope :No such group here; to join one, /join #nope INVITE-CODE"));
  h.join_answer = "2222" + std::string(60, 'e');
  h.line("JOIN #new qun2SOMECODE");
  auto lines = h.take();
  bool asked = false;
  for (const auto& r : h.requests)
    if (r.op == "join" && r.args["code"] == "qun2SOMECODE") asked = true;
  CHECK(asked);
  CHECK(h.has(lines, ":ada!ada@localhost JOIN #new"));
}

// Proves: PART only closes the channel for this connection (no leave request is made; a notice
// says how to leave) and JOIN shows it again; "/msg qun leave #lobby" is what leaves.
TEST_CASE("irc session: PART is not leaving", "[cli][irc]") {
  Harness h({lobby()});
  h.login();
  h.take();
  h.line("PART #lobby :bye");
  auto lines = h.take();
  CHECK(h.has(lines, ":ada!ada@localhost PART #lobby bye"));
  CHECK(h.has(lines, "still a member of #lobby"));
  for (const auto& r : h.requests) CHECK(r.op != "leave");
  h.stream(message(lobby_id, entry("p1", bob_id, "bob", "post", "unseen while parted")));
  CHECK(h.take().empty());
  h.line("JOIN #lobby");
  CHECK(h.has(h.take(), ":ada!ada@localhost JOIN #lobby"));
  h.line("PRIVMSG qun :leave #lobby");
  CHECK(h.requests.back().op == "leave");
  CHECK(h.has(h.take(), ":qun!qun@qun PRIVMSG ada :you left #lobby"));
}

// Proves: TOPIC, KICK and MODE +o map to the node's topic, kick and promote requests with the
// member's id; the node's events come back as TOPIC, KICK and JOIN lines.
TEST_CASE("irc session: topic, kick, op", "[cli][irc]") {
  Harness h({lobby()});
  h.login();
  h.take();
  h.line("TOPIC #lobby :new topic");
  CHECK(h.requests.back().op == "topic");
  CHECK(h.requests.back().args["text"] == "new topic");
  h.line("KICK #lobby bob :bye");
  CHECK(h.requests.back().op == "kick");
  CHECK(h.requests.back().args["member"] == bob_id);
  h.line("MODE #lobby +o bob");
  CHECK(h.requests.back().op == "promote");
  h.take();
  Json removal = entry("r1", self_id, "ada", "remove", std::nullopt);
  removal["target"] = bob_id;
  removal["target_nick"] = "bob";
  h.stream(message(lobby_id, removal));
  Json join = entry("j1", cy_id, "c\ry", "join", std::nullopt);
  h.stream(message(lobby_id, join));
  auto lines = h.take();
  CHECK(h.has(lines, ":ada!ada@localhost KICK #lobby bob :removed from the group by ada"));
  CHECK(h.has(lines, ":c_y!c0c33333@qun JOIN #lobby"));
  h.line("NAMES #lobby");
  CHECK(h.has(h.take(), " 353 ada = #lobby :@ada c_y"));
}

// Proves: a reply (+draft/reply) is posted with the node's reply_to and a reaction (TAGMSG with
// +draft/react) is the node's react; an overlong reaction and other TAGMSGs ask nothing. A
// peer's reply reaches a client with message-tags as +draft/reply, and one without as "nick: "
// before the text; a peer's reaction is a TAGMSG with message-tags, a NOTICE in words without;
// a peer's action flag is a CTCP ACTION.
TEST_CASE("irc session: replies and reactions", "[cli][irc]") {
  Harness h({lobby()});
  h.login("message-tags");
  h.stream(message(lobby_id, entry("p1", bob_id, "bob", "post", "hi ada, lunch at noon?\nsecond line")));
  h.take();
  h.line("@+draft/reply=p1 PRIVMSG #lobby :sure");
  auto& log = h.groups_[lobby_id].log;
  REQUIRE(log.size() == 1);
  CHECK(log[0]["text"] == "sure");
  CHECK(log[0]["reply_to"] == "p1");
  const std::size_t asked = h.requests.size();
  h.line("@+draft/react=\xf0\x9f\x91\x8d;+draft/reply=p1 TAGMSG #lobby");
  REQUIRE(h.requests.size() > asked);
  CHECK(h.requests[asked].op == "react");
  CHECK(h.requests[asked].args["event"] == "p1");
  CHECK(h.requests[asked].args["emoji"] == "\xf0\x9f\x91\x8d");
  const std::size_t asked2 = h.requests.size();
  h.line("@+draft/react=" + std::string(100, 'x') + ";+draft/reply=p1 TAGMSG #lobby");
  h.line("@+typing=active TAGMSG #lobby");
  CHECK(h.requests.size() == asked2);

  Json reply = entry("p2", bob_id, "bob", "post", "ok");
  reply["reply_to"] = "p1";
  reply["action"] = true;
  Json react = entry("r1", bob_id, "bob", "react", std::nullopt);
  react["target"] = "p1";
  react["emoji"] = "\xf0\x9f\x8e\x89";
  h.stream(message(lobby_id, reply));
  h.stream(message(lobby_id, react));
  auto lines = h.take();
  CHECK(h.has(lines, "@msgid=p2;+draft/reply=p1 :bob!b0b11111@qun PRIVMSG #lobby :\x01" "ACTION ok\x01"));
  CHECK(h.has(lines, "@+draft/react=\xf0\x9f\x8e\x89;+draft/reply=p1 :bob!b0b11111@qun TAGMSG #lobby"));

  Harness plain({lobby()});
  plain.login();
  plain.stream(message(lobby_id, entry("p1", bob_id, "bob", "post", "hi ada, lunch at noon?")));
  plain.stream(message(lobby_id, entry("p2", self_id, "ada", "post", "sure")));
  Json answer = entry("p3", bob_id, "bob", "post", "great");
  answer["reply_to"] = "p2";
  plain.stream(message(lobby_id, answer));
  plain.stream(message(lobby_id, react));
  lines = plain.take();
  CHECK(plain.has(lines, ":bob!b0b11111@qun PRIVMSG #lobby :ada: great"));
  CHECK(plain.has(lines, ":qun NOTICE #lobby :* bob reacted \xf0\x9f\x8e\x89 to bob: \u00abhi ada, lunch at noon?\u00bb"));
}

// Proves: what a client sends that comes back in a reply (an 8 KiB channel name in 403, a name
// with a space from a trailing parameter) never makes a line past 512 bytes or one with an extra
// parameter: the reply is cut to fit and a middle parameter stays one word.
TEST_CASE("irc session: replies echoing a client's input keep to the line size", "[cli][irc]") {
  Harness h({lobby()});
  h.login();
  h.take();
  h.line("JOIN #" + std::string(8000, 'x'));
  h.line("JOIN :#a b");
  h.line(std::string(600, 'Z'));
  auto lines = h.take();
  REQUIRE(lines.size() == 3);
  for (const auto& l : lines) CHECK(l.size() + 2 <= line_bytes_max);
  CHECK(lines[1] == ":qun 403 ada #a_b :No such group here; to join one, /join #a b INVITE-CODE");
  CHECK(lines[2].find(":qun 421 ada ZZZZ") == 0);
}

namespace {

FakeGroup lobby_with_dev() {
  FakeGroup g = lobby();
  g.channels = {Json{{"id", lobby_id}, {"name", "general"}, {"archived", false}},
                Json{{"id", "d1"}, {"name", "dev"}, {"archived", false}},
                Json{{"id", "o1"}, {"name", "old"}, {"archived", true}}};
  return g;
}

Json in_channel(Json e, const std::string& channel) {
  e["channel"] = channel;
  return e;
}

}  // namespace

// Proves: each channel of a group is an IRC channel, #lobby for the main one and #lobby/dev for
// channel dev (an archived one is not shown): both are joined on connecting, a line typed in
// #lobby/dev is a post in channel dev and one in #lobby a post in the main channel, a peer's
// post reaches the IRC channel of its channel, membership changes reach every joined channel of
// the group, a parted channel shows nothing, and /join #lobby/NAME asks the node for channel
// NAME. A node without channels (channel.list unknown) leaves the main channel alone.
TEST_CASE("irc session: a group's channels are IRC channels", "[cli][irc]") {
  Harness h({lobby_with_dev()});
  h.login();
  auto lines = h.take();
  CHECK(h.has(lines, ":ada!ada@localhost JOIN #lobby"));
  CHECK(h.has(lines, ":ada!ada@localhost JOIN #lobby/dev"));
  CHECK(h.has(lines, ":qun 353 ada = #lobby/dev :@ada bob"));
  CHECK_FALSE(h.has(lines, "#lobby/old"));

  h.line("PRIVMSG #lobby/dev :build is green");
  h.line("PRIVMSG #lobby :lunch?");
  auto& log = h.groups_[lobby_id].log;
  REQUIRE(log.size() == 2);
  CHECK(log[0]["channel"] == "dev");
  CHECK(log[1]["channel"] == "general");

  h.stream(message(lobby_id, in_channel(entry("p1", bob_id, "bob", "post", "merged"), "dev")));
  h.stream(message(lobby_id, in_channel(entry("p2", bob_id, "bob", "post", "noon"), "general")));
  lines = h.take();
  CHECK(lines == std::vector<std::string>{":bob!b0b11111@qun PRIVMSG #lobby/dev merged",
                                          ":bob!b0b11111@qun PRIVMSG #lobby noon"});

  h.stream(message(lobby_id, entry("j1", cy_id, "cy", "join", std::nullopt)));
  lines = h.take();
  CHECK(h.has(lines, ":cy!c0c33333@qun JOIN #lobby"));
  CHECK(h.has(lines, ":cy!c0c33333@qun JOIN #lobby/dev"));

  h.line("LIST");
  lines = h.take();
  CHECK(h.has(lines, " 322 ada #lobby 3 welcome"));
  CHECK(h.has(lines, " 322 ada #lobby/dev 3 welcome"));

  h.line("PART #lobby/dev");
  lines = h.take();
  CHECK(h.has(lines, ":ada!ada@localhost PART #lobby/dev"));
  CHECK(h.has(lines, "still a member of #lobby (/join #lobby/dev shows it again)"));
  h.stream(message(lobby_id, in_channel(entry("p3", bob_id, "bob", "post", "unseen"), "dev")));
  h.stream(message(lobby_id, entry("l1", cy_id, "cy", "leave", std::nullopt)));
  lines = h.take();
  CHECK(lines == std::vector<std::string>{":cy!c0c33333@qun PART #lobby :left the group"});
  h.line("JOIN #lobby/dev");
  CHECK(h.has(h.take(), ":ada!ada@localhost JOIN #lobby/dev"));

  h.line("JOIN #lobby/ops");
  CHECK(h.requests.back().op == "channel.create");
  CHECK(h.requests.back().args["group"] == lobby_id);
  CHECK(h.requests.back().args["name"] == "ops");
  // The node has the channel: it announces a change, and the gateway joins it.
  h.groups_[lobby_id].channels.push_back(Json{{"id", "o2"}, {"name", "ops"}, {"archived", false}});
  h.stream(Json{{"stream", "groups"}});
  CHECK(h.has(h.take(), ":ada!ada@localhost JOIN #lobby/ops"));
  // Renamed and archived: parted under the old name, joined under the new one.
  h.groups_[lobby_id].channels[1]["name"] = "devel";
  h.groups_[lobby_id].channels[3]["archived"] = true;
  h.stream(Json{{"stream", "groups"}});
  lines = h.take();
  CHECK(h.has(lines, ":ada!ada@localhost PART #lobby/dev :renamed to #lobby/devel"));
  CHECK(h.has(lines, ":ada!ada@localhost JOIN #lobby/devel"));
  CHECK(h.has(lines, ":ada!ada@localhost PART #lobby/ops :the channel was archived or removed"));
  h.line("PRIVMSG #lobby/ops :hi");
  CHECK(h.has(h.take(), " 403 ada #lobby/ops "));
}

// Proves: the history played back on joining routes each post to its channel's IRC channel,
// and CHATHISTORY on #lobby/dev asks the node for channel dev's posts only.
TEST_CASE("irc session: history of a group's channels", "[cli][irc]") {
  FakeGroup g = lobby_with_dev();
  g.log = {in_channel(entry("e1", bob_id, "bob", "post", "in dev", 60'000), "dev"),
           in_channel(entry("e2", bob_id, "bob", "post", "in general", 120'000), "general")};
  g.unread = 2;
  {
    Harness h({g});
    h.login();
    auto lines = h.take();
    CHECK(h.has(lines, ":bob!b0b11111@qun PRIVMSG #lobby/dev :[00:01] in dev"));
    CHECK(h.has(lines, ":bob!b0b11111@qun PRIVMSG #lobby :[00:02] in general"));
  }
  Harness h({g});
  h.login("draft/chathistory batch message-tags");
  h.take();
  h.line("CHATHISTORY LATEST #lobby/dev * 10");
  CHECK(h.requests.back().args["channel"] == "dev");
  auto lines = h.take();
  CHECK(h.has(lines, "BATCH +1 chathistory #lobby/dev"));
  CHECK(h.has(lines, "PRIVMSG #lobby/dev :[00:01] in dev"));
  CHECK_FALSE(h.has(lines, "in general"));
  h.line("CHATHISTORY LATEST #lobby * 10");
  lines = h.take();
  CHECK(h.has(lines, "in general"));
  CHECK_FALSE(h.has(lines, "in dev"));
}

// Proves: a peer's edit reaches IRC as a PRIVMSG from its author marked "(edited)" in the post's
// channel (with +draft/reply naming the post where message-tags allow); a deletion is IRCv3
// REDACT for a client with draft/message-redaction and a notice naming the post otherwise; a
// mute is MODE +q (with a notice of its length), an unmute -q, a ban +b on the member's mask,
// and an admin demoted loses @ (MODE -o). Played back, acts on posts show no line of their own.
TEST_CASE("irc session: edits, deletions, mutes and bans", "[cli][irc]") {
  auto act = [](const std::string& id, const std::string& kind, const std::string& target,
                std::optional<std::string> text = std::nullopt) {
    Json e = entry(id, bob_id, "bob", kind, std::move(text));
    e["target"] = target;
    return e;
  };
  Harness h({lobby_with_dev()});
  h.login();
  h.stream(message(lobby_id, in_channel(entry("p1", bob_id, "bob", "post", "teh plan"), "dev")));
  h.take();
  h.stream(message(lobby_id, act("x1", "edit", "p1", "the plan")));
  h.stream(message(lobby_id, act("x2", "delete", "p1")));
  auto lines = h.take();
  CHECK(lines == std::vector<std::string>{
                     ":bob!b0b11111@qun PRIVMSG #lobby/dev :(edited) the plan",
                     ":qun NOTICE #lobby/dev :* bob deleted a message bob: \u00abthe plan\u00bb"});

  Json mute = act("m1", "mute", cy_id);
  mute["target_nick"] = "cy";
  mute["duration_ms"] = 600'000;
  Json unmute = mute;
  unmute["undo"] = true;
  Json ban = act("b1", "ban", cy_id);
  ban["target_nick"] = "cy";
  h.stream(message(lobby_id, mute));
  h.stream(message(lobby_id, unmute));
  h.stream(message(lobby_id, ban));
  lines = h.take();
  CHECK(h.has(lines, ":bob!b0b11111@qun MODE #lobby +q cy!c0c33333@*"));
  CHECK(h.has(lines, ":bob!b0b11111@qun MODE #lobby/dev +q cy!c0c33333@*"));
  CHECK(h.has(lines, ":qun NOTICE #lobby :* bob muted cy for 10 min"));
  CHECK(h.has(lines, ":bob!b0b11111@qun MODE #lobby -q cy!c0c33333@*"));
  CHECK(h.has(lines, ":bob!b0b11111@qun MODE #lobby +b cy!c0c33333@*"));

  Json demote = act("r1", "set-role", self_id);
  demote["target_nick"] = "ada";
  demote["role"] = "member";
  h.stream(message(lobby_id, demote));
  CHECK(h.has(h.take(), ":bob!b0b11111@qun MODE #lobby -o ada"));

  Harness tagged({lobby_with_dev()});
  tagged.login("message-tags draft/message-redaction");
  tagged.stream(
      message(lobby_id, in_channel(entry("p1", bob_id, "bob", "post", "teh plan"), "dev")));
  tagged.take();
  tagged.stream(message(lobby_id, act("x1", "edit", "p1", "the plan")));
  Json redact = act("x2", "redact", "p1");
  tagged.stream(message(lobby_id, redact));
  lines = tagged.take();
  CHECK(tagged.has(
      lines, "@msgid=x1;+draft/reply=p1 :bob!b0b11111@qun PRIVMSG #lobby/dev :(edited) the plan"));
  CHECK(tagged.has(lines, ":bob!b0b11111@qun REDACT #lobby/dev p1 :removed by a moderator"));

  FakeGroup g = lobby();
  Json deleted = entry("p1", bob_id, "bob", "post", std::nullopt, 60'000);
  deleted["deleted"] = true;
  g.log = {entry("p0", bob_id, "bob", "post", "kept", 30'000), deleted,
           act("x1", "edit", "p0", "kept"), act("x2", "delete", "p1")};
  g.unread = 2;
  Harness played({g});
  played.login();
  lines = played.take();
  CHECK(played.has(lines, "PRIVMSG #lobby :[00:00] kept"));
  CHECK_FALSE(played.has(lines, "edited"));
  CHECK_FALSE(played.has(lines, "deleted"));
  CHECK_FALSE(played.has(lines, "unreadable"));
}

// Proves direct conversations are private queries (issue 16): a PRIVMSG to a member's nick is
// the node's "dm" with that member's id and the text, and nothing comes back to the client (it
// shows what it sent); a post from the peer in the direct group reaches the client as a
// PRIVMSG from the peer's nick to the client's nick, and is marked read; the direct group is
// no channel (no JOIN for it); a PRIVMSG to an unknown nick is 401.
TEST_CASE("irc session: direct messages are private queries", "[cli][irc][dm]") {
  Harness h({lobby()});
  h.login();
  h.take();
  auto last = [&](const std::string& op) {
    for (auto it = h.requests.rbegin(); it != h.requests.rend(); ++it)
      if (it->op == op) return *it;
    FAIL("no " << op << " request");
    return NodeRequest{};
  };
  h.line("PRIVMSG bob :psst, lunch?");
  const NodeRequest dm = last("dm");
  REQUIRE(dm.op == "dm");
  CHECK(dm.args["member"] == bob_id);
  CHECK(dm.args["text"] == "psst, lunch?");
  const std::string dm_id = "d" + bob_id.substr(0, 63);
  // The node now lists the conversation; the stream brings our own post (not shown again) and
  // then bob's answer.
  h.stream(Json{{"stream", "groups"}});
  auto lines = h.take();
  CHECK_FALSE(h.has(lines, "JOIN"));
  h.stream(message(dm_id, entry("m0", self_id, "ada", "post", "psst, lunch?")));
  CHECK(h.take().empty());
  h.groups_[dm_id].log.push_back(entry("m1", bob_id, "bob", "post", "sure, at noon"));
  h.stream(message(dm_id, h.groups_[dm_id].log.back()));
  lines = h.take();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find(":bob!b0b11111@qun PRIVMSG ada :sure, at noon") != std::string::npos);
  CHECK(last("read").args["group"] == dm_id);
  // An action (CTCP ACTION) is a /me.
  h.line("PRIVMSG bob :\x01" "ACTION waves\x01");
  CHECK(last("dm").args["action"] == true);
  CHECK(last("dm").args["text"] == "waves");
  h.line("PRIVMSG nobody :hello?");
  CHECK(h.has(h.take(), " 401 ada nobody :No such nick"));
}

// Proves a query from the peer that arrived while no client was connected is played back as
// private messages on login, after the welcome, in order, with the time of day for a client
// without server-time, and that the conversation is marked read.
TEST_CASE("irc session: unread direct messages are played back on login", "[cli][irc][dm]") {
  FakeGroup d;
  d.id = "d" + bob_id.substr(0, 63);
  d.name = "@bob";
  d.peer = bob_id;
  d.peer_nick = "bob";
  d.unread = 2;
  d.log = {entry("m0", bob_id, "bob", "post", "are you there?", 60'000),
           entry("m1", bob_id, "bob", "post", "call me", 120'000)};
  Harness h({lobby(), d});
  h.login();
  const auto lines = h.take();
  std::size_t welcome = lines.size(), first = lines.size(), second = lines.size();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find(" 001 ") != std::string::npos) welcome = i;
    if (lines[i].find("PRIVMSG ada :[") != std::string::npos &&
        lines[i].find("are you there?") != std::string::npos)
      first = i;
    if (lines[i].find("PRIVMSG ada :[") != std::string::npos &&
        lines[i].find("call me") != std::string::npos)
      second = i;
  }
  INFO(lines.size());
  CHECK(welcome < first);
  CHECK(first < second);
  CHECK(second < lines.size());
  bool read = false;
  for (const auto& r : h.requests) read = read || (r.op == "read" && r.args["group"] == d.id);
  CHECK(read);
}
