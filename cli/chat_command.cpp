#include "cli/chat_command.h"

#include <algorithm>
#include <cassert>

#include "cli/chat_text.h"
#include "node/limits.h"

namespace qun::chat {

// ---------------------------------------------------------------------------------------------
// Commands.

Result<std::int64_t> parse_expiry(std::string_view text) {
  const Error usage(Errc::invalid_argument,
                    "an expiry is a number and a unit: 90s, 30m, 12h, 7d or 2w");
  if (text.size() < 2 || text.size() > 12) return usage;
  std::int64_t unit_ms = 0;
  switch (text.back()) {
    case 's': unit_ms = 1000; break;
    case 'm': unit_ms = 60'000; break;
    case 'h': unit_ms = 3'600'000; break;
    case 'd': unit_ms = 86'400'000; break;
    case 'w': unit_ms = 7 * 86'400'000LL; break;
    default: return usage;
  }
  std::int64_t n = 0;
  for (char ch : text.substr(0, text.size() - 1)) {
    if (ch < '0' || ch > '9') return usage;
    n = n * 10 + (ch - '0');
    if (n > invite_expiry_ms_max) break;
  }
  if (n == 0) return Error(Errc::invalid_argument, "an invite that expires at once is no invite");
  if (n > invite_expiry_ms_max / unit_ms)
    return Error(Errc::invalid_argument, "an invite expires within a year at most (52w)");
  return n * unit_ms;
}

Result<Command> parse_command(std::string_view line) {
  assert(!line.empty() && line[0] == '/');
  std::string_view body = line.substr(1);
  {
    // A pasted invite code may arrive broken over lines: /join takes everything after it, and
    // the node ignores whitespace inside a code.
    std::string head(body.substr(0, std::min<std::size_t>(body.size(), 4)));
    for (auto& ch : head) ch = static_cast<char>(fold_case(static_cast<unsigned char>(ch)));
    const bool join = head == "join" && (body.size() == 4 || body[4] == ' ' || body[4] == '\n');
    if (join) {
      std::string code;
      for (char ch : body.substr(4))
        if (ch != ' ' && ch != '\n' && ch != '\t' && ch != '\r') code += ch;
      if (code.empty())
        return Error(Errc::invalid_argument, "usage: /join CODE (the invite code you were given)");
      Command c;
      c.kind = Command::Kind::join;
      c.arg = std::move(code);
      return c;
    }
  }
  if (line.find('\n') != std::string_view::npos)
    return Error(Errc::invalid_argument, "a command is one line");
  const std::size_t name_end = body.find(' ');
  std::string name(body.substr(0, name_end));
  std::string_view rest = name_end == std::string_view::npos ? "" : body.substr(name_end + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  for (auto& c : name) c = static_cast<char>(fold_case(static_cast<unsigned char>(c)));
  const bool one_word = !rest.empty() && rest.find(' ') == std::string_view::npos;

  Command c;
  auto usage = [](const char* text) { return Error(Errc::invalid_argument, text); };
  if (name == "invite") {
    c.kind = Command::Kind::invite;
    std::vector<std::string_view> words;
    for (std::string_view r = rest; !r.empty();) {
      const std::size_t sp = r.find(' ');
      if (sp != 0) words.push_back(r.substr(0, sp));
      if (sp == std::string_view::npos) break;
      r.remove_prefix(sp + 1);
    }
    const std::string usage_line = "usage: /invite [USES] [EXPIRY], USES from 1 to " +
                                   std::to_string(limits::invite_uses_max) +
                                   ", EXPIRY like 30m, 12h or 7d";
    if (words.size() > 2) return Error(Errc::invalid_argument, usage_line);
    bool have_uses = false, have_expiry = false;
    for (std::string_view w : words) {
      const bool digits = std::all_of(w.begin(), w.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
      if (digits && !have_uses) {
        std::uint64_t uses = 0;
        if (w.size() > 9) return Error(Errc::invalid_argument, usage_line);
        for (char ch : w) uses = uses * 10 + static_cast<unsigned>(ch - '0');
        if (uses < 1 || uses > limits::invite_uses_max)
          return Error(Errc::invalid_argument, usage_line);
        c.uses = static_cast<std::uint32_t>(uses);
        have_uses = true;
      } else if (!digits && !have_expiry) {
        auto ms = parse_expiry(w);
        if (!ms.ok()) return ms.error();
        c.expires_ms = *ms;
        have_expiry = true;
      } else {
        return Error(Errc::invalid_argument, usage_line);
      }
    }
  } else if (name == "kick" || name == "promote") {
    if (!one_word) return usage(name == "kick" ? "usage: /kick NICK" : "usage: /promote NICK");
    c.kind = name == "kick" ? Command::Kind::kick : Command::Kind::promote;
    c.arg = rest;
  } else if (name == "topic") {
    if (rest.empty()) return usage("usage: /topic TEXT");
    if (rest.size() > limits::topic_bytes_max)
      return Error(Errc::invalid_argument, "topic too long: " + std::to_string(rest.size()) +
                                               " bytes, at most " +
                                               std::to_string(limits::topic_bytes_max));
    c.kind = Command::Kind::topic;
    c.arg = rest;
  } else if (name == "members" || name == "leave" || name == "relays" || name == "quit" ||
             name == "exit" || name == "help") {
    if (!rest.empty() && name != "help")
      return Error(Errc::invalid_argument, "usage: /" + name + " (no arguments)");
    c.kind = name == "members"  ? Command::Kind::members
             : name == "leave"  ? Command::Kind::leave
             : name == "relays" ? Command::Kind::relays
             : name == "help"   ? Command::Kind::help
                                : Command::Kind::quit;
  } else if (name.empty()) {
    return usage("empty command; /help lists the commands (// starts a message with /)");
  } else {
    return Error(Errc::invalid_argument, "unknown command /" +
                                             truncate_to_width(sanitize(name, false), 24) +
                                             "; /help lists the commands");
  }
  return c;
}

const std::vector<std::string>& help_lines() {
  static const std::vector<std::string> lines = {
      "/join CODE      join a group with an invite code",
      "/invite [USES] [EXPIRY]  make an invite code for this group (default 1 use, no expiry;",
      "                EXPIRY like 30m, 12h, 7d)",
      "/members        list this group's members and their roles",
      "/kick NICK      remove a member (admins)",
      "/promote NICK   make a member an admin (admins)",
      "/topic TEXT     set this group's topic",
      "/leave          leave this group",
      "/relays         list this group's relays",
      "/quit           quit (also Ctrl+C); //text sends a line starting with /",
      "keys: Alt+1..9 or Ctrl+N/Ctrl+P switch groups, PageUp/PageDown scroll, Alt+End back to",
      "      the newest, Ctrl+O folds/unfolds long messages, Up/Down history, Tab completes nicks,",
      "      Ctrl+A/E/U/K/W edit, Ctrl+L redraws",
  };
  return lines;
}

}  // namespace qun::chat
