// Fuzzes the IRC gateway's engine (cli/irc_session.h) with what reaches it from outside: the
// input is split into fields that become a client's lines and a peer's nick, group label, topic
// and post, delivered through the node's answers and stream as a peer (or a broken
// implementation) could make them.
//
// Properties: never crashes or throws; every line the session sends ends with CR LF and holds
// no CR, LF or NUL before it, and without its tags fits IRC's 512 bytes, whatever the peer's
// text or the client's lines hold. (That a peer's text is shown without controls is a property
// test in tests/cli/irc_line_test.cpp.)
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cli/irc_session.h"

using namespace qun;
using namespace qun::irc;

namespace {

const std::string self_id(64, 'a');
const std::string peer_id = "9" + std::string(63, 'b');
const std::string group_id(64, 'c');

void check_line(const std::string& line) {
  if (line.size() < 2 || line.substr(line.size() - 2) != "\r\n") __builtin_trap();
  const std::string body = line.substr(0, line.size() - 2);
  if (body.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) __builtin_trap();
  const std::size_t tags = body[0] == '@' ? body.find(' ') + 1 : 0;
  if (body.size() - tags + 2 > line_bytes_max) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Fields separated by 0xFE 0xFE (never in UTF-8): nick, label, topic, post, then client lines.
  std::vector<std::string> f;
  std::size_t start = 0;
  while (f.size() < 12) {
    const std::size_t sep = input.find("\xFE\xFE", start);
    f.emplace_back(input.substr(start, sep == std::string_view::npos ? sep : sep - start));
    if (sep == std::string_view::npos) break;
    start = sep + 2;
  }
  f.resize(12);
  const std::string& nick = f[0];
  const std::string& label = f[1];
  const std::string& topic = f[2];
  const std::string& post = f[3];

  Session session(Config{"pw", "/x/irc-password", "qun", nullptr});
  std::vector<std::string> peer_lines;
  auto answer = [&](const NodeRequest& r) -> Json {
    if (r.op == "id") return Json{{"id", self_id}, {"nick", "me"}};
    if (r.op == "group.list")
      return Json::array({Json{{"id", group_id}, {"label", label}, {"topic", topic},
                               {"unread", 3}, {"member", true}, {"joining", false}}});
    if (r.op == "members")
      return Json::array({Json{{"id", self_id}, {"nick", "me"}, {"role", "founder"}},
                          Json{{"id", peer_id}, {"nick", nick}, {"role", "admin"}}});
    if (r.op == "log")
      return Json::array({Json{{"id", "e1"}, {"author", peer_id}, {"nick", nick}, {"kind", "post"},
                               {"time", 5}, {"text", post}},
                          Json{{"id", "e2"}, {"author", peer_id}, {"nick", nick},
                               {"kind", "set-topic"}, {"time", 6}, {"text", topic}}});
    return Json::object();
  };
  auto drain = [&](auto&& self) -> void {
    std::vector<NodeRequest> asked;
    while (auto out = session.poll()) {
      if (auto* t = std::get_if<ToClient>(&*out)) {
        check_line(t->line);
      } else if (auto* r = std::get_if<NodeRequest>(&*out)) {
        asked.push_back(*r);
      }
    }
    for (const auto& r : asked) {
      session.on_response(r.token, answer(r));
      self(self);
    }
  };
  for (const char* line : {"CAP REQ :server-time message-tags", "PASS pw", "NICK me",
                           "USER me 0 * :me"}) {
    session.on_line(line);
    drain(drain);
  }
  session.on_line("CAP END");
  drain(drain);
  for (const std::string kind : {"post", "join", "set-topic", "remove"}) {
    session.on_stream(Json{{"stream", "message"},
                           {"group", group_id},
                           {"message", Json{{"id", "e3"}, {"author", peer_id}, {"nick", nick},
                                            {"kind", kind}, {"time", 7}, {"text", post},
                                            {"target", peer_id},
                                            {"target_nick", nick}}}});
    drain(drain);
  }
  for (std::size_t i = 4; i < f.size(); ++i) {
    session.on_line(f[i]);
    drain(drain);
  }
  return 0;
}
