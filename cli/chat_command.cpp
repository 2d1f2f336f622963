#include "cli/chat_command.h"

#include <algorithm>
#include <cassert>

#include "cli/chat_message.h"
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

namespace {

// Splits on spaces, skipping empty words.
std::vector<std::string_view> words_of(std::string_view rest) {
  std::vector<std::string_view> words;
  for (std::string_view r = rest; !r.empty();) {
    const std::size_t sp = r.find(' ');
    if (sp != 0) words.push_back(r.substr(0, sp));
    if (sp == std::string_view::npos) break;
    r.remove_prefix(sp + 1);
  }
  return words;
}

// "#dev" and "dev" name the same channel.
std::string channel_name(std::string_view word) {
  if (!word.empty() && word[0] == '#') word.remove_prefix(1);
  return std::string(word);
}

Result<void> check_channel_name(const std::string& name) {
  if (name.empty()) return Error(Errc::invalid_argument, "a channel needs a name");
  if (name.size() > channel_name_bytes_max)
    return Error(Errc::invalid_argument, "channel name too long: " + std::to_string(name.size()) +
                                             " bytes, at most " +
                                             std::to_string(channel_name_bytes_max));
  return {};
}

}  // namespace

const char* command_name(Command::Kind kind) {
  using K = Command::Kind;
  switch (kind) {
    case K::join: return "/join";
    case K::invite: return "/invite";
    case K::members: return "/members";
    case K::kick: return "/kick";
    case K::promote: return "/promote";
    case K::demote: return "/demote";
    case K::topic: return "/topic";
    case K::leave: return "/leave";
    case K::relays: return "/relays";
    case K::help: return "/help";
    case K::quit: return "/quit";
    case K::reply: return "/reply";
    case K::react: return "/react";
    case K::edit: return "/edit";
    case K::del: return "/delete";
    case K::me: return "/me";
    case K::nick: return "/nick";
    case K::mute: return "/mute";
    case K::unmute: return "/unmute";
    case K::ban: return "/ban";
    case K::unban: return "/unban";
    case K::hide: return "/hide";
    case K::unhide: return "/unhide";
    case K::channel: return "/channel";
    case K::modlog: return "/modlog";
    case K::search: return "/search";
    case K::open: return "/open";
    case K::save: return "/save";
    case K::jump: return "/jump";
    case K::msg: return "/msg";
    case K::query: return "/query";
  }
  return "/?";
}

bool is_conversation(Command::Kind kind) {
  using K = Command::Kind;
  switch (kind) {
    case K::reply:
    case K::react:
    case K::edit:
    case K::del:
    case K::me:
    case K::nick:
    case K::mute:
    case K::unmute:
    case K::ban:
    case K::unban:
    case K::hide:
    case K::unhide:
    case K::channel:
    case K::modlog:
      return true;
    case K::join:
    case K::invite:
    case K::members:
    case K::kick:
    case K::promote:
    case K::demote:
    case K::topic:
    case K::leave:
    case K::relays:
    case K::help:
    case K::quit:
    case K::search:
    case K::jump:
    case K::open:
    case K::save:
    case K::msg:
    case K::query:
      return false;
  }
  return false;
}

Result<std::int64_t> parse_mute_duration(std::string_view text) {
  auto ms = parse_expiry(text);
  if (!ms.ok() || *ms > mute_ms_max)
    return Error(Errc::invalid_argument,
                 "a mute lasts a number and a unit: 10m, 2h, 7d or 2w, at most a year");
  return *ms;
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
      if (code[0] == '#') {
        // irssi's /join #channel: a channel of this group (codes never start with '#').
        Command c;
        c.kind = Command::Kind::channel;
        c.channel_op = Command::ChannelOp::show;
        c.arg = code.substr(1);
        if (auto ok = check_channel_name(c.arg); !ok.ok()) return ok.error();
        return c;
      }
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
  } else if (name == "reply" || name == "edit") {
    c.kind = name == "reply" ? Command::Kind::reply : Command::Kind::edit;
    if (rest.empty() && c.kind == Command::Kind::reply)
      return usage("usage: /reply [REF] TEXT (REF from Ctrl+R, or select with Alt+Up)");
    c.arg = rest;
  } else if (name == "react") {
    const auto words = words_of(rest);
    if (words.empty() || words.size() > 2)
      return usage("usage: /react [REF] EMOJI (again with the same emoji takes it back)");
    if (words.back().size() > emoji_bytes_max)
      return usage("a reaction is one emoji (or a short word)");
    c.kind = Command::Kind::react;
    c.arg = rest;
  } else if (name == "delete" || name == "del") {
    if (words_of(rest).size() > 1) return usage("usage: /delete [REF]");
    c.kind = Command::Kind::del;
    c.arg = rest;
  } else if (name == "me") {
    if (rest.empty()) return usage("usage: /me ACTION (shows as \"* nick ACTION\")");
    c.kind = Command::Kind::me;
    c.arg = rest;
  } else if (name == "nick") {
    if (!one_word) return usage("usage: /nick NEW (one word; your nick in every group)");
    if (rest.size() > limits::nick_bytes_max)
      return Error(Errc::invalid_argument, "nick too long: " + std::to_string(rest.size()) +
                                               " bytes, at most " +
                                               std::to_string(limits::nick_bytes_max));
    c.kind = Command::Kind::nick;
    c.arg = rest;
  } else if (name == "mute") {
    const auto words = words_of(rest);
    if (words.empty() || words.size() > 2)
      return usage("usage: /mute NICK [DURATION] (like 10m, 2h, 7d; without: until /unmute)");
    c.kind = Command::Kind::mute;
    c.arg = words[0];
    if (words.size() == 2) {
      auto ms = parse_mute_duration(words[1]);
      if (!ms.ok()) return ms.error();
      c.expires_ms = *ms;
    }
  } else if (name == "unmute" || name == "ban" || name == "unban" || name == "hide" ||
             name == "unhide" || name == "ignore" || name == "unignore") {
    if (name == "ignore") name = "hide";  // irssi's and weechat's word for it
    if (name == "unignore") name = "unhide";
    if (!one_word) return Error(Errc::invalid_argument, "usage: /" + name + " NICK");
    c.kind = name == "unmute" ? Command::Kind::unmute
             : name == "ban"  ? Command::Kind::ban
             : name == "unban" ? Command::Kind::unban
             : name == "hide"  ? Command::Kind::hide
                               : Command::Kind::unhide;
    c.arg = rest;
  } else if (name == "channel" || name == "channels") {
    const auto words = words_of(rest);
    c.kind = Command::Kind::channel;
    const std::string usage_line =
        "usage: /channel [NAME] | create NAME | rename NAME NEW | archive NAME";
    if (words.empty()) {
      c.channel_op = Command::ChannelOp::list;
    } else if (words[0] == "create" || words[0] == "archive") {
      if (words.size() != 2) return Error(Errc::invalid_argument, usage_line);
      c.channel_op = words[0] == "create" ? Command::ChannelOp::create
                                          : Command::ChannelOp::archive;
      c.arg = channel_name(words[1]);
    } else if (words[0] == "rename") {
      if (words.size() != 3) return Error(Errc::invalid_argument, usage_line);
      c.channel_op = Command::ChannelOp::rename;
      c.arg = channel_name(words[1]);
      c.arg2 = channel_name(words[2]);
      if (auto ok = check_channel_name(c.arg2); !ok.ok()) return ok.error();
    } else if (words.size() == 1) {
      c.channel_op = Command::ChannelOp::show;
      c.arg = channel_name(words[0]);
    } else {
      return Error(Errc::invalid_argument, usage_line);
    }
    if (c.channel_op != Command::ChannelOp::list)
      if (auto ok = check_channel_name(c.arg); !ok.ok()) return ok.error();
  } else if (name == "search") {
    if (rest.empty()) return usage("usage: /search WORDS (messages containing them, newest first)");
    // The node's bound (search/index.h, query_bytes_max).
    if (rest.size() > 256) return usage("a search is at most 256 bytes");
    c.kind = Command::Kind::search;
    c.arg = rest;
  } else if (name == "open" || name == "save") {
    const auto words = words_of(rest);
    const bool number = !words.empty() && words[0].size() <= 6 &&
                        std::all_of(words[0].begin(), words[0].end(),
                                    [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!number || (name == "open" && words.size() != 1) || words.size() > 2)
      return usage(name == "open" ? "usage: /open N (the number on a file's line)"
                                  : "usage: /save N [PATH] (the number on a file's line)");
    c.kind = name == "open" ? Command::Kind::open : Command::Kind::save;
    c.uses = static_cast<std::uint32_t>(std::stoul(std::string(words[0])));
    if (words.size() == 2) c.arg = std::string(words[1]);
  } else if (name == "msg" || name == "query") {
    // irssi's and weechat's words: /msg sends one message, /query opens the conversation (and
    // sends TEXT when given).
    const std::size_t sp = rest.find(' ');
    const std::string_view who = rest.substr(0, sp);
    std::string_view text = sp == std::string_view::npos ? "" : rest.substr(sp + 1);
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    if (who.empty() || (name == "msg" && text.empty()))
      return usage(name == "msg" ? "usage: /msg NICK TEXT (a direct message)"
                                 : "usage: /query NICK [TEXT] (opens your direct conversation)");
    if (text.size() > limits::post_text_bytes_max)
      return Error(Errc::invalid_argument, "message too long: " + std::to_string(text.size()) +
                                               " bytes, at most " +
                                               std::to_string(limits::post_text_bytes_max));
    c.kind = name == "msg" ? Command::Kind::msg : Command::Kind::query;
    c.arg = who;
    c.arg2 = text;
  } else if (name == "jump") {
    if (!one_word || rest.size() > 3 ||
        !std::all_of(rest.begin(), rest.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
      return usage("usage: /jump N (a result number of the last /search)");
    c.kind = Command::Kind::jump;
    c.uses = static_cast<std::uint32_t>(std::stoul(std::string(rest)));
  } else if (name == "promote") {
    const auto words = words_of(rest);
    if (words.empty() || words.size() > 2 ||
        (words.size() == 2 && words[1] != "admin" && words[1] != "moderator"))
      return usage("usage: /promote NICK [moderator|admin] (default admin)");
    c.kind = Command::Kind::promote;
    c.arg = words[0];
    c.arg2 = words.size() == 2 ? words[1] : "admin";
  } else if (name == "kick" || name == "demote") {
    if (!one_word) return usage(name == "kick" ? "usage: /kick NICK" : "usage: /demote NICK");
    c.kind = name == "kick" ? Command::Kind::kick : Command::Kind::demote;
    c.arg = rest;
  } else if (name == "topic") {
    if (rest.empty()) return usage("usage: /topic TEXT");
    if (rest.size() > limits::topic_bytes_max)
      return Error(Errc::invalid_argument, "topic too long: " + std::to_string(rest.size()) +
                                               " bytes, at most " +
                                               std::to_string(limits::topic_bytes_max));
    c.kind = Command::Kind::topic;
    c.arg = rest;
  } else if (name == "modlog") {
    if (!rest.empty()) return usage("usage: /modlog (no arguments)");
    c.kind = Command::Kind::modlog;
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
      "/promote NICK [moderator|admin]  raise a member's role, to admin by default (admins)",
      "/demote NICK    one role down: admin to moderator, moderator to member (admins)",
      "/topic TEXT     set this group's topic",
      "/leave          leave this group",
      "/relays         list this group's relays",
      "/reply [REF] TEXT  answer a message (REF: its reference, Ctrl+R shows them; or",
      "                select it with Alt+Up/Alt+Down and leave REF out)",
      "/react [REF] EMOJI  react to a message; the same emoji again takes it back",
      "/edit [REF] [TEXT]  change your message (Up on an empty input edits your last one)",
      "/delete [REF]   delete your message (moderators: anyone's)",
      "/me ACTION      say what you do: * nick ACTION",
      "/nick NEW       change your nick in every group",
      "/mute NICK [DURATION]  mute a member (moderators), e.g. 10m, 2h, 7d; /unmute NICK",
      "/ban NICK       remove a member and refuse their joins (admins); /unban NICK",
      "/hide NICK      hide a member's messages from your own views (also /ignore); /unhide",
      "/modlog         who redacted, muted, banned, removed or changed what (the newest 50)",
      "/channel [NAME] list channels, or show one; /channel create|archive NAME,",
      "                /channel rename NAME NEW (admins)",
      "/msg NICK TEXT  a direct message to NICK (a member of any group you share); the",
      "                conversation is listed under \"direct\"; /query NICK opens it",
      "/search WORDS   find messages containing WORDS in every group, newest first",
      "/jump N         show result N of the last /search, selected",
      "/open N         fetch file N (the number on its line) and open it",
      "/save N [PATH]  fetch file N and save it (default: your downloads folder)",
      "/quit           quit (also Ctrl+C); //text sends a line starting with /",
      "keys: Alt+1..9 or Ctrl+N/Ctrl+P switch groups and channels, PageUp/PageDown scroll,",
      "      Alt+End back to the newest, Alt+Up/Alt+Down select a message (Esc lets go),",
      "      Ctrl+R shows message references, Ctrl+O folds/unfolds long messages, Up/Down",
      "      history, Tab completes nicks, Ctrl+A/E/U/K/W edit, Ctrl+L redraws",
  };
  return lines;
}

}  // namespace qun::chat
