// Fuzzes the renderers of text from other people (app/render.h, and the chat's in
// cli/chat_model.h) and the control codec's strings: the input is split at NUL-free separators
// into the fields of one history entry, as a peer (or a broken implementation) could send them.
//
// Properties: never crashes or throws; every human rendering is valid UTF-8 with no control
// character (newlines and tabs only where a post's lines are kept); every JSON rendering is
// valid UTF-8 that parses back, also after a round trip through the control codec.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cli/chat_model.h"
#include "app/render.h"
#include "base/utf8.h"
#include "fuzz/fixture.h"
#include "net/control.h"

using namespace qun;

namespace {

bool terminal_safe(const std::string& s, bool allow_line_breaks) {
  return utf8::valid(s) && !utf8::first_control(s, allow_line_breaks);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Fields separated by 0xFE 0xFE (which never occurs in UTF-8, so text fields stay arbitrary).
  std::vector<std::string> f;
  std::size_t start = 0;
  while (f.size() < 7) {
    const std::size_t sep = input.find("\xFE\xFE", start);
    f.emplace_back(input.substr(start, sep == std::string_view::npos ? sep : sep - start));
    if (sep == std::string_view::npos) break;
    start = sep + 2;
  }
  f.resize(7);
  static const char* kinds[] = {"post",     "create",    "join",  "add",    "remove", "leave",
                                "set-role", "set-name",  "set-topic", "rekey", "invite", "relay"};
  const std::string kind = size > 0 ? kinds[data[0] % std::size(kinds)] : f[2];

  render::Entry e;
  e.id = f[0];
  e.author = f[1];
  e.kind = kind;
  e.nick = f[3];
  e.text = f[4];
  e.target = f[5];
  e.target_nick = f[6];
  e.role = f[6];

  fuzz::check(terminal_safe(render::for_terminal(f[4], false), false), "for_terminal one line");
  fuzz::check(terminal_safe(render::for_terminal(f[4], true), true), "for_terminal lines");
  fuzz::check(terminal_safe(render::log_entry(e, "2026-01-02 03:04"), true), "log_entry");
  fuzz::check(terminal_safe(render::for_terminal(
                                render::event_words(kind, f[3], f[5], e.text, e.role), false),
                            false),
              "event_words");

  chat::Message m;
  m.id = e.id;
  m.author = e.author;
  m.kind = e.kind;
  m.nick = e.nick;
  m.text = e.text;
  m.target = e.target;
  m.target_nick = e.target_nick;
  m.role = e.role;
  fuzz::check(terminal_safe(chat::system_text(m), false), "chat system_text");
  fuzz::check(terminal_safe(chat::message_line(m, chat::local_time), false), "chat message_line");

  control::Json j{{"id", e.id}, {"author", e.author}, {"kind", kind}, {"nick", f[3]},
                  {"text", f[4]}, {f[5], f[6]}};
  const std::string line = render::json_line(j);
  fuzz::check(utf8::valid(line), "json_line is UTF-8");
  fuzz::check(!control::Json::parse(line, nullptr, false).is_discarded(), "json_line parses");
  auto decoded = control::decode(control::encode(j));
  fuzz::check(decoded.ok(), "control round trip");
  const std::string dumped = decoded->dump();  // throws (and so crashes) on invalid UTF-8
  fuzz::check(utf8::valid(dumped), "decoded dump is UTF-8");
  auto entry = render::parse_entry(*decoded);
  if (entry.ok()) fuzz::check(terminal_safe(render::log_entry(*entry, "T"), true), "parsed entry");
  return 0;
}
