#include "cli/irc_session.h"

#include <algorithm>
#include <cctype>

#include "base/utf8.h"
#include "app/render.h"

namespace qun::irc {
namespace {

constexpr const char* caps_offered[] = {
    "batch",        "draft/chathistory", "draft/message-redaction",
    "echo-message", "message-tags",      "server-time"};
// The qun channel every group has (node/conversation.h): the group's own IRC channel.
constexpr const char* main_channel = "general";
// Hex digits of a member id appended to a nick that two members share: 4 tell apart 65,536
// members, more than a group holds (node/limits.h); a clash beyond that takes more.
constexpr std::size_t nick_suffix_hex = 4;

std::string str(const Json& v, const char* key) {
  auto it = v.find(key);
  return it != v.end() && it->is_string() ? it->get<std::string>() : std::string();
}
std::optional<std::string> opt_str(const Json& v, const char* key) {
  auto it = v.find(key);
  if (it == v.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}
std::uint64_t num(const Json& v, const char* key) {
  auto it = v.find(key);
  if (it == v.end() || !it->is_number_integer()) return 0;
  return it->is_number_unsigned() || it->get<std::int64_t>() >= 0 ? it->get<std::uint64_t>() : 0;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

// A client's text as a post: mIRC formatting codes (bold, colours, ...) removed, as the node
// accepts no control character in a post but newline and tab.
std::string strip_formatting(std::string_view text) {
  std::string out;
  auto digits = [&](std::size_t& i, std::size_t most, bool hex) {
    std::size_t n = 0;
    while (n < most && i + 1 < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[i + 1])) ||
            (hex && std::isxdigit(static_cast<unsigned char>(text[i + 1]))))) {
      ++i;
      ++n;
    }
    return n;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\x03' || c == '\x04') {  // colour: ^C fg[,bg] (two digits), ^D hex RRGGBB[,RRGGBB]
      const bool hex = c == '\x04';
      const std::size_t most = hex ? 6 : 2;
      if (digits(i, most, hex) > 0 && i + 2 < text.size() && text[i + 1] == ',' &&
          std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
        ++i;
        digits(i, most, hex);
      }
      continue;
    }
    if (c == '\t' || static_cast<unsigned char>(c) >= 0x20) {
      if (c != '\x7f') out += c;
    }
  }
  return out;
}

std::string role_prefix(const std::string& role) {
  return role == "founder" || role == "admin" ? "@" : "";
}

}  // namespace

Session::Session(Config config) : config_(std::move(config)) {
  if (!config_.clock) config_.clock = [](std::int64_t ms) { return iso_time(ms).substr(11, 5); };
}

std::optional<Output> Session::poll() {
  if (out_.empty() && !closed_ && !read_dirty_.empty()) {
    for (const auto& g : read_dirty_) request(Purpose::read, "read", Json{{"group", g}}, g);
    read_dirty_.clear();
  }
  if (out_.empty()) return std::nullopt;
  Output o = std::move(out_.front());
  out_.pop_front();
  return o;
}

// ---- output helpers -----------------------------------------------------------------------

void Session::send(Message m) {
  if (closed_) return;
  // What the client itself sent comes back in some replies (a channel name in 403, a command in
  // 421): a middle parameter is kept one word, and the line is cut to IRC's size, so even a
  // client's own odd input never makes a line that breaks the framing.
  for (std::size_t i = 0; i + 1 < m.params.size(); ++i) {
    std::string& p = m.params[i];
    if (p.empty()) p = "*";
    std::replace(p.begin(), p.end(), ' ', '_');
    if (p[0] == ':') p[0] = '_';
  }
  std::string line = serialise(m);
  const std::size_t tags = line[0] == '@' ? line.find(' ') + 1 : 0;
  while (line.size() - tags > line_bytes_max && !m.params.empty()) {
    const std::size_t excess = line.size() - tags - line_bytes_max;
    auto longest = std::max_element(m.params.begin(), m.params.end(),
                                    [](const auto& a, const auto& b) { return a.size() < b.size(); });
    std::size_t keep = longest->size() > excess ? longest->size() - excess : 1;
    while (keep > 1 && (static_cast<unsigned char>((*longest)[keep]) & 0xC0) == 0x80) --keep;
    longest->resize(keep);
    line = serialise(m);
  }
  out_.push_back(ToClient{std::move(line)});
}

void Session::numeric(const std::string& code, std::vector<std::string> params) {
  Message m;
  m.prefix = config_.server_name;
  m.command = code;
  m.params.push_back(nick_.empty() ? "*" : nick_);
  for (auto& p : params) m.params.push_back(std::move(p));
  send(std::move(m));
}

void Session::notice(const std::string& text) {
  for (const auto& piece : split_text(neutralise(text), 400))
    send(Message{{}, config_.server_name, "NOTICE", {nick_.empty() ? "*" : nick_, piece}});
}

void Session::service_reply(const std::string& text) {
  send_text(std::string(service_nick) + "!" + service_nick + "@" + config_.server_name, "PRIVMSG",
            nick_, text, false, {});
}

void Session::fail_close(const std::string& error_text, const std::string& reason) {
  send(Message{{}, "", "ERROR", {"Closing link: " + neutralise(error_text)}});
  out_.push_back(Close{reason});
  closed_ = true;
}

std::uint64_t Session::request(Purpose purpose, std::string op, Json args, std::string group,
                               std::string detail) {
  const std::uint64_t token = next_token_++;
  pending_[token] = Pending{purpose, std::move(group), std::move(detail)};
  out_.push_back(NodeRequest{token, std::move(op), std::move(args)});
  return token;
}

void Session::send_text(const std::string& source, const std::string& command,
                        const std::string& target, const std::string& text, bool action,
                        std::vector<std::pair<std::string, std::string>> tags) {
  // The non-tag part of each line: ":" source " " command " " target " :" text CR LF, and for
  // an ACTION the ^AACTION and ^A around the text (RFC 1459 2.3; tags have their own budget).
  std::size_t overhead = 1 + source.size() + 1 + command.size() + 1 + target.size() + 2 + 2;
  if (action) overhead += 9;
  const std::size_t budget = overhead + 64 < line_bytes_max ? line_bytes_max - overhead : 64;
  const std::string safe = neutralise(text);
  if (safe.empty()) return;
  for (const auto& piece : split_text(safe, budget)) {
    Message m;
    m.tags = tags;
    m.prefix = source;
    m.command = command;
    m.params = {target, action ? "\x01" "ACTION " + piece + "\x01" : piece};
    send(std::move(m));
  }
}

// ---- names --------------------------------------------------------------------------------

std::string Session::self_source() const { return nick_ + "!" + nick_ + "@localhost"; }

std::string Session::nick_of(const std::string& member_id,
                             const std::optional<std::string>& raw) const {
  if (member_id == self_id_) return nick_;
  if (auto it = nicks_.find(member_id); it != nicks_.end()) return it->second;
  // Someone who is no longer a member of any group here (an old post's author): the same rule,
  // against the nicks in use now.
  std::string base = make_nick(raw.value_or(""), nick_bytes_max - 1 - nick_suffix_hex);
  if (base.empty()) base = "q" + member_id.substr(0, 8);
  auto owner = nick_owner_.find(fold(base));
  const bool taken = fold(base) == fold(nick_) || fold(base) == service_nick ||
                     (owner != nick_owner_.end() && owner->second != member_id);
  return taken ? base + "|" + member_id.substr(0, nick_suffix_hex) : base;
}

std::string Session::source_of(const std::string& member_id,
                               const std::optional<std::string>& raw) const {
  if (member_id == self_id_) return self_source();
  return nick_of(member_id, raw) + "!" + member_id.substr(0, 8) + "@qun";
}

void Session::assign_nicks(bool announce) {
  // Each member's raw nick: the one its lowest group id gives it (groups_ is ordered by id).
  std::map<std::string, std::string> raw;
  for (const auto& [gid, g] : groups_)
    for (const auto& m : g.members)
      if (m.id != self_id_) raw.emplace(m.id, m.nick);
  std::map<std::string, std::vector<std::string>> by_base;  // fold(base) -> ids, ordered
  std::map<std::string, std::string> base_of;
  for (const auto& [id, nick] : raw) {
    std::string base = make_nick(nick, nick_bytes_max - 1 - nick_suffix_hex);
    if (base.empty()) base = "q" + id.substr(0, 8);
    base_of[id] = base;
    by_base[fold(base)].push_back(id);
  }
  std::map<std::string, std::string> next;
  std::map<std::string, std::string> owner;
  for (const auto& [folded, ids] : by_base) {
    const bool clash = ids.size() > 1 || folded == fold(nick_) || folded == service_nick;
    for (const auto& id : ids) {
      std::string nick = base_of[id];
      if (clash) {
        // The shortest id prefix (from nick_suffix_hex digits) that no other nick holds yet.
        for (std::size_t n = nick_suffix_hex; n <= id.size(); ++n) {
          std::string candidate = nick + "|" + id.substr(0, n);
          if (!owner.count(fold(candidate)) && !by_base.count(fold(candidate))) {
            nick = candidate;
            break;
          }
        }
      }
      next[id] = nick;
      owner[fold(nick)] = id;
    }
  }
  if (announce) {
    for (const auto& [id, nick] : next) {
      auto old = nicks_.find(id);
      if (old == nicks_.end() || old->second == nick || !visible(id)) continue;
      send(Message{{}, old->second + "!" + id.substr(0, 8) + "@qun", "NICK", {nick}});
    }
  }
  nicks_ = std::move(next);
  nick_owner_ = std::move(owner);
}

bool Session::any_joined(const Group& g) {
  for (const auto& [name, c] : g.chans)
    if (c.joined) return true;
  return false;
}

bool Session::visible(const std::string& member_id) const {
  for (const auto& [gid, g] : groups_) {
    if (!any_joined(g)) continue;
    for (const auto& m : g.members)
      if (m.id == member_id) return true;
  }
  return false;
}

void Session::assign_channels() {
  // The groups' main channels first (in order of group id), then their other channels, so a
  // channel "#a/b" of group a never takes the name of a group labelled "a/b".
  std::set<std::string> taken;  // fold(IRC channel)
  auto unique = [&](std::string channel, const std::string& id) {
    if (taken.count(fold(channel)))
      channel = make_channel(channel.substr(1) + "-" + id.substr(0, 8));
    taken.insert(fold(channel));
    return channel;
  };
  for (auto& [id, g] : groups_)
    main_chan(g).irc = unique(make_channel(g.label.empty() ? id.substr(0, 8) : g.label), id);
  for (auto& [id, g] : groups_)
    for (auto& [name, c] : g.chans)
      if (name != main_channel)
        c.irc = unique(make_channel(main_chan(g).irc.substr(1) + "/" + name), id);
}

std::optional<Session::Target> Session::by_channel(std::string_view channel) {
  const std::string f = fold(channel);
  for (auto& [id, g] : groups_) {
    if (!g.member) continue;
    for (auto& [name, c] : g.chans)
      if (fold(c.irc) == f) return Target{&g, &c};
  }
  return std::nullopt;
}

Session::Group* Session::group_by_channel(std::string_view channel) {
  auto t = by_channel(channel);
  return t ? t->group : nullptr;
}

void Session::send_all(const Group& g, Message m) {
  for (const auto& [name, c] : g.chans) {
    if (!c.joined) continue;
    Message copy = m;
    copy.params.at(0) = c.irc;
    send(std::move(copy));
  }
}

Session::Group* Session::group_by_id(const std::string& id) {
  auto it = groups_.find(id);
  return it == groups_.end() ? nullptr : &it->second;
}

std::optional<std::string> Session::member_by_nick(const Group& g, std::string_view nick) const {
  const std::string f = fold(nick);
  for (const auto& m : g.members)
    if (fold(nick_of(m.id, m.nick)) == f) return m.id;
  return std::nullopt;
}

// ---- client input -------------------------------------------------------------------------

void Session::on_line(std::string_view line) {
  if (closed_) return;
  // LineReader never passes CR, LF or NUL; a driver that does would have them echoed in replies.
  std::string clean(line);
  std::erase_if(clean, [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
  auto m = parse(clean);
  if (!m) return;  // an empty line is ignored (RFC 2812 2.3.1)
  handle(*m);
}

void Session::handle(const Message& m) {
  const std::string& c = m.command;
  if (c == "CAP") return cmd_cap(m);
  if (c == "PASS") return cmd_pass(m);
  if (c == "NICK") return cmd_nick(m);
  if (c == "USER") return cmd_user(m);
  if (c == "PING") {
    return send(Message{{}, config_.server_name, "PONG", {config_.server_name, m.param(0)}});
  }
  if (c == "PONG") return;
  if (c == "QUIT") return fail_close("quit", "the client quit");
  if (!registered_) return numeric("451", {"You have not registered"});
  if (c == "JOIN") return cmd_join(m);
  if (c == "PART") return cmd_part(m);
  if (c == "PRIVMSG" || c == "NOTICE") return cmd_privmsg(m);
  if (c == "TOPIC") return cmd_topic(m);
  if (c == "KICK") return cmd_kick(m);
  if (c == "NAMES") return cmd_names(m);
  if (c == "WHO") return cmd_who(m);
  if (c == "WHOIS") return cmd_whois(m);
  if (c == "MODE") return cmd_mode(m);
  if (c == "LIST") return cmd_list(m);
  if (c == "ISON") return cmd_ison(m);
  if (c == "CHATHISTORY") return cmd_chathistory(m);
  if (c == "TAGMSG") return cmd_tagmsg(m);
  if (c == "AWAY") {
    return m.param(0).empty() ? numeric("305", {"You are no longer marked as being away"})
                              : numeric("306", {"You have been marked as being away"});
  }
  if (c == "MOTD") {
    return numeric("422", {"No MOTD: your groups are the channels; /msg qun help for more"});
  }
  if (c == "USERHOST") {
    std::string reply;
    for (const auto& p : m.params) {
      if (fold(p) != fold(nick_)) continue;
      reply = nick_ + "=+" + nick_ + "@localhost";
    }
    return numeric("302", {reply});
  }
  numeric("421", {c, "Unknown command"});
}

void Session::cmd_cap(const Message& m) {
  const std::string sub = fold(m.param(0));
  const std::string who = nick_.empty() ? "*" : nick_;
  if (sub == "ls") {
    if (!registered_) cap_negotiating_ = true;
    std::string list;
    for (const char* cap : caps_offered) list += (list.empty() ? "" : " ") + std::string(cap);
    send(Message{{}, config_.server_name, "CAP", {who, "LS", list}});
  } else if (sub == "req") {
    if (!registered_) cap_negotiating_ = true;
    std::vector<std::pair<std::string, bool>> asked;
    bool known = true;
    std::string_view rest = m.param(1);
    while (!rest.empty()) {
      const std::size_t sp = std::min(rest.find(' '), rest.size());
      std::string cap(rest.substr(0, sp));
      rest.remove_prefix(std::min(sp + 1, rest.size()));
      if (cap.empty()) continue;
      const bool off = cap[0] == '-';
      if (off) cap.erase(0, 1);
      known = known && std::any_of(std::begin(caps_offered), std::end(caps_offered),
                                   [&](const char* k) { return cap == k; });
      asked.emplace_back(cap, !off);
    }
    if (!known) return send(Message{{}, config_.server_name, "CAP", {who, "NAK", m.param(1)}});
    for (const auto& [cap, on] : asked) {
      if (on) caps_.insert(cap);
      else caps_.erase(cap);
    }
    send(Message{{}, config_.server_name, "CAP", {who, "ACK", m.param(1)}});
  } else if (sub == "list") {
    std::string list;
    for (const auto& cap : caps_) list += (list.empty() ? "" : " ") + cap;
    send(Message{{}, config_.server_name, "CAP", {who, "LIST", list}});
  } else if (sub == "end") {
    cap_negotiating_ = false;
    try_register();
  } else {
    numeric("410", {m.param(0), "Invalid CAP command"});
  }
}

void Session::cmd_pass(const Message& m) {
  if (registered_) return numeric("462", {"You may not reregister"});
  pass_ = m.param(0);
}

void Session::cmd_nick(const Message& m) {
  const std::string& wanted = m.param(0);
  if (wanted.empty()) return numeric("431", {"No nickname given"});
  if (!valid_nick(wanted)) return numeric("432", {wanted, "Erroneous nickname"});
  if (fold(wanted) == service_nick) return numeric("433", {wanted, "Nickname is already in use"});
  if (auto it = nick_owner_.find(fold(wanted)); it != nick_owner_.end() && it->second != self_id_)
    return numeric("433", {wanted, "Nickname is already in use"});
  if (!registered_) {
    nick_ = wanted;
    return try_register();
  }
  // A new nick for this connection only: the nick others see in groups is the node's.
  const std::string old_source = self_source();
  nick_ = wanted;
  send(Message{{}, old_source, "NICK", {nick_}});
  assign_nicks(true);
}

void Session::cmd_user(const Message& m) {
  if (registered_) return numeric("462", {"You may not reregister"});
  if (m.params.size() < 4) return numeric("461", {"USER", "Not enough parameters"});
  have_user_ = true;
  try_register();
}

void Session::try_register() {
  if (registered_ || closed_ || nick_.empty() || !have_user_ || cap_negotiating_) return;
  if (!pass_) {
    numeric("464", {"Password required: set your client's server password to the one in " +
                        config_.password_path});
    return fail_close("password required", "no password given");
  }
  if (!constant_time_equal(*pass_, config_.password)) {
    numeric("464", {"Password incorrect: the password is in " + config_.password_path});
    return fail_close("wrong password", "wrong password");
  }
  registered_ = true;
  request(Purpose::id, "id", Json::object());
  request(Purpose::group_list, "group.list", Json::object());
  request(Purpose::subscribe, "subscribe", Json::object());
}

void Session::welcome() {
  if (welcomed_) return;
  welcomed_ = true;
  numeric("001", {"Welcome to qun, " + nick_});
  numeric("002", {"Your host is " + config_.server_name + ", the qun node on this machine"});
  numeric("003", {"This server serves your qun node's groups as channels"});
  numeric("004", {config_.server_name, "qun", "i", "bnot"});
  numeric("005", {"CASEMAPPING=ascii", "CHANTYPES=#", "PREFIX=(o)@", "CHANMODES=b,,,nt",
                  "NICKLEN=" + std::to_string(nick_bytes_max),
                  "CHANNELLEN=" + std::to_string(channel_bytes_max), "NETWORK=qun",
                  "CHATHISTORY=" + std::to_string(chathistory_entries_max), "MSGREFTYPES=msgid",
                  "are supported by this server"});
  numeric("375", {"- " + config_.server_name + " Message of the day -"});
  for (const char* line :
       {"Your qun groups are the channels here; members are nicks.",
        "/join #name CODE joins a group with an invite code.",
        "/part closes a channel for this connection; you stay a member.",
        "/msg qun help lists the rest: invite, leave, members."})
    numeric("372", {std::string("- ") + line});
  numeric("376", {"End of /MOTD command"});
  for (auto& [id, g] : groups_)
    if (g.member)
      for (auto& [name, c] : g.chans) c.want_join = !c.parted;
  for (auto& [id, g] : groups_) join_wanted(g);
  play_directs();
}

void Session::cmd_join(const Message& m) {
  std::string_view names = m.param(0);
  std::string_view keys = m.param(1);
  if (names == "0") return;  // "leave every channel" is too sharp an edge to map to leaves
  while (!names.empty()) {
    const std::size_t comma = std::min(names.find(','), names.size());
    const std::string name(names.substr(0, comma));
    names.remove_prefix(std::min(comma + 1, names.size()));
    const std::size_t kcomma = std::min(keys.find(','), keys.size());
    const std::string key(keys.substr(0, kcomma));
    keys.remove_prefix(std::min(kcomma + 1, keys.size()));
    if (name.empty()) continue;
    if (auto t = by_channel(name)) {
      t->chan->parted = false;
      t->chan->want_join = true;
      join_wanted(*t->group);
      continue;
    }
    // #group/NAME of a group here: a new channel NAME, as IRC creates a channel on JOIN
    // (admins; the node refuses others with its reason).
    if (const std::size_t slash = name.rfind('/'); slash != std::string::npos && key.empty()) {
      if (Group* g = group_by_channel(name.substr(0, slash)); g && slash + 1 < name.size()) {
        request(Purpose::channel_create, "channel.create",
                Json{{"group", g->id}, {"name", name.substr(slash + 1)}}, g->id, name);
        continue;
      }
    }
    if (!key.empty()) {
      notice("joining " + name + " with the invite code; this waits for a member's node to answer");
      request(Purpose::join_code, "join", Json{{"code", key}}, "", name);
      continue;
    }
    numeric("403", {name, "No such group here; to join one, /join " + name + " INVITE-CODE"});
  }
}

void Session::cmd_part(const Message& m) {
  std::string_view names = m.param(0);
  while (!names.empty()) {
    const std::size_t comma = std::min(names.find(','), names.size());
    const std::string name(names.substr(0, comma));
    names.remove_prefix(std::min(comma + 1, names.size()));
    auto t = by_channel(name);
    if (!t || !t->chan->joined) {
      numeric("442", {name, "You're not on that channel"});
      continue;
    }
    Chan& c = *t->chan;
    c.joined = false;
    c.parted = true;
    c.want_join = false;
    send(Message{{}, self_source(), "PART", {c.irc, m.param(1)}});
    const std::string group_channel = main_chan(*t->group).irc;
    notice("you are still a member of " + group_channel + " (/join " + c.irc +
           " shows it again); /msg qun leave " + group_channel + " leaves the group");
  }
}

void Session::cmd_privmsg(const Message& m) {
  const std::string& target = m.param(0);
  if (m.params.size() < 2 || m.param(1).empty()) {
    if (m.command == "PRIVMSG") numeric("412", {"No text to send"});
    return;
  }
  std::string text = m.param(1);
  if (fold(target) == service_nick) return service_command(text);
  auto t = by_channel(target);
  if (!t) {
    if (m.command == "NOTICE") return;
    if (!target.empty() && target[0] == '#') return numeric("403", {target, "No such channel"});
    // A nick: a direct message to that member (qun dm), in the conversation of the two.
    auto member = member_by_any_nick(target);
    if (!member) return numeric("401", {target, "No such nick"});
    bool action = false;
    if (text.size() >= 2 && text.front() == '\x01') {
      text.erase(0, 1);
      if (!text.empty() && text.back() == '\x01') text.pop_back();
      if (text.rfind("ACTION ", 0) != 0) return;  // other CTCP requests: nobody answers them
      text = text.substr(7);
      action = true;
    }
    text = strip_formatting(text);
    if (text.empty()) return;
    if (!utf8::valid(text)) {
      return notice("not sent: your client sent text that is not UTF-8; set it to UTF-8 (irssi: "
                    "/set term_charset UTF-8)");
    }
    Json args{{"member", *member}, {"text", text}};
    if (action) args["action"] = true;
    posts_in_flight_.insert("dm:" + *member + "\n" + text);
    request(Purpose::dm, "dm", std::move(args), *member, text);
    return;
  }
  Group* g = t->group;
  if (!t->chan->joined) return numeric("404", {target, "Cannot send to channel: /join it first"});
  bool action = false;
  if (text.size() >= 2 && text.front() == '\x01') {
    // CTCP (the CTCP draft): ACTION is /me; other requests to a group are dropped.
    text.erase(0, 1);
    if (!text.empty() && text.back() == '\x01') text.pop_back();
    if (text.rfind("ACTION ", 0) != 0) return;
    text = text.substr(7);
    action = true;
  }
  text = strip_formatting(text);
  if (text.empty()) return;
  if (!utf8::valid(text)) {
    return notice("not sent: your client sent text that is not UTF-8; set it to UTF-8 (irssi: "
                  "/set term_charset UTF-8)");
  }
  Json args{{"group", g->id}, {"text", text}};
  if (action) args["action"] = true;
  if (t->chan->name != main_channel) args["channel"] = t->chan->name;
  if (auto reply = m.tag("+draft/reply"); reply && !reply->empty()) args["reply_to"] = *reply;
  posts_in_flight_.insert(g->id + "\n" + text);
  request(Purpose::post, "post", std::move(args), g->id, text);
}

void Session::service_command(std::string_view text) {
  std::vector<std::string> words;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t sp = std::min(rest.find(' '), rest.size());
    if (sp > 0) words.emplace_back(rest.substr(0, sp));
    rest.remove_prefix(std::min(sp + 1, rest.size()));
  }
  const std::string verb = words.empty() ? "help" : fold(words[0]);
  auto group_arg = [&](std::size_t i) -> Group* {
    if (words.size() <= i) {
      service_reply("which group? " + verb + " #channel");
      return nullptr;
    }
    Group* g = group_by_channel(words[i]);
    if (!g) service_reply("no group " + words[i] + " here");
    return g;
  };
  if (verb == "leave") {
    if (Group* g = group_arg(1))
      request(Purpose::leave, "leave", Json{{"group", g->id}}, g->id, main_chan(*g).irc);
  } else if (verb == "invite") {
    Group* g = group_arg(1);
    if (!g) return;
    std::uint64_t uses = 1;
    if (words.size() > 2) {
      uses = 0;
      for (char ch : words[2]) {
        if (ch < '0' || ch > '9' || uses > 1000) {
          uses = 0;
          break;
        }
        uses = uses * 10 + static_cast<std::uint64_t>(ch - '0');
      }
      if (uses == 0) return service_reply("uses must be a number from 1: invite #channel 3");
    }
    request(Purpose::invite, "invite", Json{{"group", g->id}, {"uses", uses}, {"expires_ms", 0}},
            g->id, main_chan(*g).irc);
  } else if (verb == "members") {
    Group* g = group_arg(1);
    if (!g) return;
    for (const auto& mem : g->members)
      service_reply(nick_of(mem.id, mem.nick) + " (" + mem.role + ") " + mem.id);
  } else {
    for (const char* line :
         {"qun commands (/msg qun COMMAND):",
          "  invite #channel [USES]   an invite code for USES people (default 1)",
          "  leave #channel           leave the group (the group key rotates; you need a new "
          "invite to come back)",
          "  members #channel         members with their roles and ids",
          "Channels: /join #name CODE joins a group; /part only closes the channel here;",
          "/topic sets the topic; /kick NICK removes a member; /op NICK makes them an admin."})
      service_reply(line);
  }
}

void Session::cmd_topic(const Message& m) {
  auto t = by_channel(m.param(0));
  if (!t) return numeric("403", {m.param(0), "No such channel"});
  Group* g = t->group;
  if (m.params.size() < 2) return send_topic(*g, *t->chan, true);
  request(Purpose::topic, "topic", Json{{"group", g->id}, {"text", strip_formatting(m.param(1))}},
          g->id);
}

void Session::cmd_kick(const Message& m) {
  Group* g = group_by_channel(m.param(0));
  if (!g) return numeric("403", {m.param(0), "No such channel"});
  auto id = member_by_nick(*g, m.param(1));
  if (!id) return numeric("441", {m.param(1), m.param(0), "They aren't on that channel"});
  request(Purpose::kick, "kick", Json{{"group", g->id}, {"member", *id}}, g->id);
}

void Session::cmd_names(const Message& m) {
  auto t = by_channel(m.param(0));
  if (!t || !t->group->have_members) return numeric("366", {m.param(0), "End of /NAMES list"});
  send_names(*t->group, *t->chan);
}

void Session::cmd_who(const Message& m) {
  const std::string& mask = m.param(0);
  auto who_line = [&](const std::string& channel, const Member& mem) {
    const std::string nick = nick_of(mem.id, mem.nick);
    const std::string user = mem.id == self_id_ ? nick_ : mem.id.substr(0, 8);
    const std::string host = mem.id == self_id_ ? "localhost" : "qun";
    numeric("352", {channel, user, host, config_.server_name, nick, "H" + role_prefix(mem.role),
                    "0 " + neutralise(mem.nick)});
  };
  if (auto t = by_channel(mask)) {
    for (const auto& mem : t->group->members) who_line(t->chan->irc, mem);
  } else {
    for (auto& [gid, g] : groups_) {
      auto it = std::find_if(g.members.begin(), g.members.end(),
                             [&](const Member& x) { return fold(nick_of(x.id, x.nick)) == fold(mask); });
      if (it != g.members.end()) {
        who_line(main_chan(g).irc, *it);
        break;
      }
    }
  }
  numeric("315", {mask, "End of WHO list"});
}

void Session::cmd_whois(const Message& m) {
  const std::string& nick = m.params.size() > 1 ? m.param(1) : m.param(0);
  std::string channels;
  const Member* found = nullptr;
  for (const auto& [gid, g] : groups_) {
    for (const auto& mem : g.members) {
      if (fold(nick_of(mem.id, mem.nick)) != fold(nick)) continue;
      found = &mem;
      for (const auto& [name, c] : g.chans)
        if (c.joined) channels += (channels.empty() ? "" : " ") + role_prefix(mem.role) + c.irc;
    }
  }
  if (!found) {
    numeric("401", {nick, "No such nick"});
  } else {
    numeric("311", {nick_of(found->id, found->nick), found->id.substr(0, 8), "qun", "*",
                    neutralise(found->nick) + " " + found->id});
    if (!channels.empty()) numeric("319", {nick_of(found->id, found->nick), channels});
  }
  numeric("318", {nick, "End of /WHOIS list"});
}

void Session::cmd_mode(const Message& m) {
  const std::string& target = m.param(0);
  auto t = by_channel(target);
  if (!t) {
    if (fold(target) == fold(nick_)) return numeric("221", {"+i"});
    return numeric("403", {target, "No such channel"});
  }
  Group* g = t->group;
  const std::string& irc = t->chan->irc;
  if (m.params.size() < 2) return numeric("324", {irc, "+nt"});
  const std::string& modes = m.param(1);
  if (modes == "b" || modes == "+b") return numeric("368", {irc, "End of channel ban list"});
  if (modes == "q" || modes == "+q") return numeric("729", {irc, "q", "End of channel quiet list"});
  if (modes == "+o" && m.params.size() > 2) {
    auto id = member_by_nick(*g, m.param(2));
    if (!id) return numeric("441", {m.param(2), irc, "They aren't on that channel"});
    request(Purpose::promote, "promote", Json{{"group", g->id}, {"member", *id}}, g->id);
    return;
  }
  numeric("472", {modes, "is not a mode of qun groups; /op NICK makes an admin"});
}

void Session::cmd_list(const Message&) {
  numeric("321", {"Channel", "Users  Name"});
  for (const auto& [id, g] : groups_) {
    if (!g.member) continue;
    for (const auto& [name, c] : g.chans)
      numeric("322", {c.irc, std::to_string(g.members.size()), neutralise(g.topic.value_or(""))});
  }
  numeric("323", {"End of /LIST"});
}

void Session::cmd_ison(const Message& m) {
  std::string reply;
  for (const auto& p : m.params) {
    std::string_view rest = p;
    while (!rest.empty()) {
      const std::size_t sp = std::min(rest.find(' '), rest.size());
      const std::string nick(rest.substr(0, sp));
      rest.remove_prefix(std::min(sp + 1, rest.size()));
      if (nick.empty()) continue;
      if (fold(nick) == fold(nick_) || nick_owner_.count(fold(nick)))
        reply += (reply.empty() ? "" : " ") + nick;
    }
  }
  numeric("303", {reply});
}

void Session::cmd_tagmsg(const Message& m) {
  // Typing notices and other tags carry nothing to qun; a reaction becomes a readable post.
  auto react = m.tag("+draft/react");
  auto reply = m.tag("+draft/reply");
  auto t = by_channel(m.param(0));
  if (!react || !reply || !t || !t->chan->joined) return;
  Group* g = t->group;
  if (react->empty() || react->size() > reaction_bytes_max || !utf8::valid(*react) ||
      utf8::first_control(*react, false))
    return;
  request(Purpose::react, "react", Json{{"group", g->id}, {"event", *reply}, {"emoji", *react}},
          g->id);
}

void Session::remember_post(const std::string& id, const std::string& nick, const std::string& text,
                            const std::string& channel) {
  if (replyable_.count(id)) return;
  std::string first = neutralise(text.substr(0, std::min(text.find('\n'), text.size())));
  std::string excerpt = split_text(first, excerpt_bytes_max).front();
  if (excerpt.size() < first.size()) excerpt += "\u2026";
  replyable_[id] = Replyable{nick, std::move(excerpt), channel};
  replyable_order_.push_back(id);
  if (replyable_order_.size() > replyable_posts_max) {
    replyable_.erase(replyable_order_.front());
    replyable_order_.pop_front();
  }
}

void Session::cmd_chathistory(const Message& m) {
  // IRCv3 draft/chathistory: LATEST and BEFORE with a msgid, which the node's `log` pages
  // answer; the other subcommands and timestamps have no request on the node yet.
  auto fail = [&](const std::string& code, const std::string& text) {
    send(Message{{}, config_.server_name, "FAIL", {"CHATHISTORY", code, m.param(0), text}});
  };
  if (!caps_.count("draft/chathistory")) return numeric("421", {"CHATHISTORY", "Unknown command"});
  const std::string sub = fold(m.param(0));
  auto t = by_channel(m.param(1));
  if (!t) return fail("INVALID_TARGET", "no such channel");
  Group* g = t->group;
  std::uint64_t limit = 0;
  for (char ch : m.param(3)) {
    if (ch < '0' || ch > '9' || limit > chathistory_entries_max) break;
    limit = limit * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  limit = std::clamp<std::uint64_t>(limit, 1, chathistory_entries_max);
  Json args{{"group", g->id}, {"limit", limit}};
  // Another channel's history is its posts; the main channel's is the group's whole log (its
  // events too), from which other channels' posts are left out.
  if (t->chan->name != main_channel) args["channel"] = t->chan->name;
  const std::string& ref = m.param(2);
  if (sub == "latest") {
    if (ref != "*" && ref.rfind("msgid=", 0) != 0)
      return fail("INVALID_PARAMS", "LATEST takes * or msgid= here");
    // LATEST with a msgid asks for what came after it; the node pages backwards only, so the
    // newest page is sent and the client drops what it has.
  } else if (sub == "before") {
    if (ref.rfind("msgid=", 0) != 0) return fail("INVALID_PARAMS", "BEFORE takes msgid= here");
    args["before"] = ref.substr(6);
  } else {
    return fail("INVALID_PARAMS", "only LATEST and BEFORE are supported");
  }
  request(Purpose::chathistory, "log", std::move(args), g->id, t->chan->irc);
}

// ---- channels -----------------------------------------------------------------------------

void Session::join_wanted(Group& g) {
  if (!welcomed_ || !g.member || !g.have_members) return;
  // The main channel first, so the history played back on joining it finds the others joined.
  if (Chan& m = main_chan(g); m.want_join && !m.joined) join_channel(g, m);
  for (auto& [name, c] : g.chans)
    if (c.want_join && !c.joined) join_channel(g, c);
}

void Session::join_channel(Group& g, Chan& c) {
  c.joined = true;
  c.want_join = false;
  send(Message{{}, self_source(), "JOIN", {c.irc}});
  send_topic(g, c, false);
  send_names(g, c);
  // One playback per group: its log holds every channel's posts, each shown in its channel.
  if (!g.played && !caps_.count("draft/chathistory") && g.unread > 0) {
    g.playback_pending = true;
    request(Purpose::playback, "log", Json{{"group", g.id}, {"limit", playback_entries_max}},
            g.id);
  }
  g.played = true;
}

void Session::send_topic(const Group& g, const Chan& c, bool reply_none) {
  const std::string topic = neutralise(g.topic.value_or(""));
  if (!topic.empty()) {
    numeric("332", {c.irc, split_text(topic, 300).front()});
  } else if (reply_none) {
    numeric("331", {c.irc, "No topic is set"});
  }
}

void Session::send_names(const Group& g, const Chan& c) {
  // "353 nick = #channel :names" within a line: the names are cut into several replies.
  const std::size_t names_budget = line_bytes_max - 100 - c.irc.size();
  std::string names;
  auto flush = [&] {
    if (!names.empty()) numeric("353", {"=", c.irc, names});
    names.clear();
  };
  for (const auto& m : g.members) {
    const std::string entry = role_prefix(m.role) + nick_of(m.id, m.nick);
    if (names.size() + entry.size() + 1 > names_budget) flush();
    names += (names.empty() ? "" : " ") + entry;
  }
  flush();
  numeric("366", {c.irc, "End of /NAMES list"});
}

void Session::send_entry(Group& g, const Json& value, bool live, const std::string& batch,
                         const Chan* only) {
  auto parsed = render::parse_entry(value);
  if (!parsed.ok()) return;
  const render::Entry& e = *parsed;
  if (render::bookkeeping(e.kind)) return;
  std::vector<std::pair<std::string, std::string>> tags;
  if (!batch.empty()) tags.emplace_back("batch", batch);
  if (caps_.count("server-time")) tags.emplace_back("time", iso_time(e.time_ms));
  if (caps_.count("message-tags")) tags.emplace_back("msgid", e.id);
  // Played back without server-time, a line says when it was written.
  const std::string when =
      live || caps_.count("server-time") ? "" : "[" + config_.clock(e.time_ms) + "] ";
  const std::string source = source_of(e.author, e.nick);
  // The joined channel an entry of qun channel `name` goes to, or nullptr.
  auto chan_named = [&](const std::string& name) -> const Chan* {
    auto it = g.chans.find(name.empty() ? std::string(main_channel) : name);
    if (it == g.chans.end() || !it->second.joined) return nullptr;
    if (only && &it->second != only) return nullptr;
    return &it->second;
  };
  // Where an act on a post (edit, delete, redact, react) is shown: the post's channel.
  auto post_chan = [&](const std::string& post) {
    auto it = replyable_.find(post);
    return chan_named(it == replyable_.end() ? std::string() : it->second.channel);
  };
  auto lines = [&](const std::string& to, std::string text, bool action,
                   const std::vector<std::pair<std::string, std::string>>& line_tags) {
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t nl = std::min(text.find('\n', start), text.size());
      const std::string line = text.substr(start, nl - start);
      if (!line.empty()) send_text(source, "PRIVMSG", to, when + line, action, line_tags);
      start = nl + 1;
    }
  };
  if (e.kind == "post") {
    const std::string channel = str(value, "channel");
    const Chan* c = chan_named(channel);
    if (!c) return;  // a channel this client closed, or another channel's CHATHISTORY
    // Played back, a deleted post is gone (its deletion was seen live, or is news to nobody).
    if (e.deleted) return;
    std::string text =
        e.text.value_or(e.stored ? render::unreadable_text : render::not_stored_text);
    if (e.text) remember_post(e.id, nick_of(e.author, e.nick), *e.text, channel);
    // An action is the post's flag; a "/me " text is how this gateway wrote one before.
    bool action = value.value("action", false) == true;
    if (!action && text.rfind("/me ", 0) == 0) {
      action = true;
      text.erase(0, 4);
    }
    const std::string reply_to = str(value, "reply_to");
    if (!reply_to.empty()) {
      if (caps_.count("message-tags")) {
        tags.emplace_back("+draft/reply", reply_to);
      } else if (auto it = replyable_.find(reply_to); it != replyable_.end()) {
        text = it->second.nick + ": " + text;  // the IRC way to address someone
      }
    }
    lines(c->irc, std::move(text), action, tags);
    return;
  }
  const std::string actor = nick_of(e.author, e.nick);
  const std::string target = e.target ? nick_of(*e.target, e.target_nick) : std::string();
  const std::string post = e.target.value_or("");
  auto excerpt_of = [&](const std::string& id) {
    auto it = replyable_.find(id);
    return it == replyable_.end()
               ? std::string()
               : " " + it->second.nick + ": \u00ab" + it->second.excerpt + "\u00bb";
  };
  // Acts on posts: played back, the posts show them already (edited text, deletions, reactions).
  if (e.kind == "react" || e.kind == "edit" || e.kind == "delete" || e.kind == "redact") {
    if (!live) return;
    const Chan* c = post_chan(post);
    if (!c) return;
    if (e.kind == "react") {
      const std::string emoji = str(value, "emoji");
      if (emoji.empty() || emoji.size() > reaction_bytes_max || value.value("undo", false) == true)
        return;
      if (caps_.count("message-tags")) {
        send(Message{{{"+draft/react", neutralise(emoji)}, {"+draft/reply", post}},
                     source,
                     "TAGMSG",
                     {c->irc}});
        return;
      }
      const std::string to = excerpt_of(post);
      send_text(config_.server_name, "NOTICE", c->irc,
                "* " + actor + " reacted " + emoji + (to.empty() ? "" : " to" + to), false, tags);
      return;
    }
    if (e.kind == "edit") {
      // The new text, from its author, marked as an edit (IRC has no edits: this is how
      // bridges show them); with message-tags it names the post it replaces.
      if (!e.text) return;
      if (caps_.count("message-tags")) tags.emplace_back("+draft/reply", post);
      const std::string channel = replyable_.count(post) ? replyable_[post].channel : main_channel;
      replyable_.erase(post);
      remember_post(post, actor, *e.text, channel);
      lines(c->irc, "(edited) " + *e.text, false, tags);
      return;
    }
    // A deletion: IRCv3 REDACT where the client negotiated draft/message-redaction, else a
    // notice naming the post.
    const std::string words =
        e.kind == "delete"
            ? "* " + actor + " deleted a message" + excerpt_of(post)
            : "* " + actor + " removed a message" + excerpt_of(post) + " (moderation)";
    if (caps_.count("draft/message-redaction")) {
      Message m{{}, source, "REDACT", {c->irc, post}};
      if (e.kind == "redact") m.params.push_back("removed by a moderator");
      send(std::move(m));
    } else {
      send_text(config_.server_name, "NOTICE", c->irc, words, false, tags);
    }
    return;
  }
  const Chan* main = chan_named(main_channel);
  if (live && (e.kind == "join" || e.kind == "add")) {
    const std::string who = e.kind == "join" ? e.author : e.target.value_or("");
    if (who == self_id_ || who.empty()) return;
    const std::optional<std::string> raw = e.kind == "join" ? e.nick : e.target_nick;
    if (std::none_of(g.members.begin(), g.members.end(),
                     [&](const Member& x) { return x.id == who; }))
      g.members.push_back(Member{who, raw.value_or(""), "member"});
    assign_nicks(true);
    send_all(g, Message{{}, source_of(who, raw), "JOIN", {""}});
    return;
  }
  if (live && (e.kind == "leave" || e.kind == "remove")) {
    const std::string who = e.kind == "leave" ? e.author : e.target.value_or("");
    if (e.kind == "leave") {
      send_all(g, Message{{}, source, "PART", {"", "left the group"}});
    } else {
      send_all(g, Message{{}, source, "KICK", {"", target, "removed from the group by " + actor}});
    }
    std::erase_if(g.members, [&](const Member& x) { return x.id == who; });
    if (who == self_id_) {
      for (auto& [name, c] : g.chans) c.joined = false;
      g.member = false;
    }
    return;
  }
  if (live && e.kind == "set-topic") {
    g.topic = e.text;
    send_all(g, Message{{}, source, "TOPIC", {"", neutralise(e.text.value_or(""))}});
    return;
  }
  if (live && e.kind == "set-role" && e.target) {
    const std::string was = [&] {
      for (const auto& x : g.members)
        if (x.id == *e.target) return x.role;
      return std::string("member");
    }();
    for (auto& x : g.members)
      if (x.id == *e.target) x.role = e.role.value_or("member");
    const std::string now = role_prefix(e.role.value_or(""));
    if (now != role_prefix(was))
      send_all(g, Message{{}, source, "MODE", {"", now == "@" ? "+o" : "-o", target}});
    return;
  }
  if (live && (e.kind == "mute" || e.kind == "ban") && e.target) {
    // As IRC networks show them: a mute is the quiet mode (+q, solanum and InspIRCd), a ban
    // +b, on a mask of the member's address; a mute's length follows as a notice.
    const std::string mask = target + "!" + e.target->substr(0, 8) + "@*";
    const bool undo = value.value("undo", false) == true;
    send_all(g,
             Message{{},
                     source,
                     "MODE",
                     {"", std::string(undo ? "-" : "+") + (e.kind == "mute" ? "q" : "b"), mask}});
    const std::uint64_t ms = num(value, "duration_ms");
    if (e.kind == "mute" && !undo && ms > 0 && main) {
      const std::uint64_t minutes = (ms + 59'999) / 60'000;
      send_text(config_.server_name, "NOTICE", main->irc,
                "* " + actor + " muted " + target + " for " +
                    (minutes < 120 ? std::to_string(minutes) + " min"
                                   : std::to_string(minutes / 60) + " h"),
                false, tags);
    }
    return;
  }
  if (!main) return;
  send_text(config_.server_name, "NOTICE", main->irc,
            when + "* " + render::entry_words(e, actor, target), false, tags);
}

// ---- node input ---------------------------------------------------------------------------

void Session::on_node_lost(const std::string& why) {
  if (closed_) return;
  fail_close("the qun node stopped (" + why + "); reconnect once it runs again", "node lost");
}

void Session::on_response(std::uint64_t token, Result<Json> result) {
  auto it = pending_.find(token);
  if (it == pending_.end() || closed_) return;
  const Pending p = std::move(it->second);
  pending_.erase(it);
  if (p.purpose == Purpose::post || p.purpose == Purpose::dm) {
    auto in_flight = posts_in_flight_.find((p.purpose == Purpose::dm ? "dm:" : "") + p.group +
                                           "\n" + p.detail);
    if (in_flight != posts_in_flight_.end()) posts_in_flight_.erase(in_flight);
  }
  if (!result.ok()) {
    const std::string& why = result.error().context();
    switch (p.purpose) {
      case Purpose::id:
      case Purpose::group_list:
      case Purpose::subscribe:
        return fail_close("the node refused: " + why, "node refused " + why);
      case Purpose::join_code:
        return numeric("403", {p.detail, "Not joined: " + why});
      case Purpose::channel_create:
        return numeric("403", {p.detail, "No such channel, and not created: " + why});
      case Purpose::leave:
      case Purpose::invite:
        return service_reply("failed: " + why);
      case Purpose::read:
      case Purpose::members:
      case Purpose::channels:  // a node without channels: the group has its main channel only
        return;  // the next change asks again
      case Purpose::playback:
        if (Group* g = group_by_id(p.group)) g->playback_pending = false;
        return notice("no history played back: " + why);
      case Purpose::dm_playback:
        if (auto d = directs_.find(p.group); d != directs_.end()) d->second.playback_pending = false;
        return notice("no direct messages played back: " + why);
      case Purpose::dm:
        return numeric("401", {nick_of(p.group, std::nullopt), "Not sent: " + why});
      default:
        return notice("failed: " + why);
    }
  }
  const Json& r = *result;
  switch (p.purpose) {
    case Purpose::id:
      return on_id(r);
    case Purpose::group_list:
      return on_group_list(r);
    case Purpose::members:
      return on_members(p.group, r);
    case Purpose::channels:
      return on_channels(p.group, r);
    case Purpose::playback:
      return on_history(p.group, r, true, "");
    case Purpose::dm_playback: {
      auto d = directs_.find(p.group);
      if (d == directs_.end()) return;
      d->second.playback_pending = false;
      if (r.is_array())
        for (const auto& entry : r) send_direct(p.group, d->second, entry, false);
      read_dirty_.insert(p.group);
      return;
    }
    case Purpose::dm:
      if (r.is_object()) {
        own_posts_.push_back(str(r, "id"));
        if (own_posts_.size() > own_posts_remembered_max) own_posts_.pop_front();
        // A new conversation: the next group list has it (the node announces the change).
        if (!directs_.count(str(r, "group"))) request(Purpose::group_list, "group.list", Json::object());
        if (r.value("queued", false))
          notice("the member is not reachable now: your message is stored and goes out when it is");
      }
      return;
    case Purpose::chathistory:
      return on_history(p.group, r, false, p.detail);
    case Purpose::post:
      if (r.is_object()) {
        own_posts_.push_back(str(r, "id"));
        if (own_posts_.size() > own_posts_remembered_max) own_posts_.pop_front();
        if (r.value("queued", false))
          notice("no peer of the group is reachable: your post is stored and goes out when one is");
      }
      return;
    case Purpose::join_code:
      // The group comes with the next group list (the node announces the change); it is joined
      // as soon as its members are known.
      if (r.is_object()) {
        const std::string gid = str(r, "group");
        groups_[gid].id = gid;
        Chan& main = main_chan(groups_[gid]);
        main.name = main.key = main_channel;
        main.want_join = true;
        request(Purpose::group_list, "group.list", Json::object());
      }
      return;
    case Purpose::channel_create:
      // The channel comes with the group's next channel list, and is joined then.
      return notice("creating " + p.detail + "; it is joined once the node has it");
    case Purpose::leave:
      return service_reply("you left " + p.detail);
    case Purpose::invite:
      if (r.is_object()) service_reply("invite code for " + p.detail + ": " + str(r, "code"));
      return;
    default:
      return;
  }
}

void Session::on_id(const Json& r) {
  if (!r.is_object()) return;
  self_id_ = str(r, "id");
  have_id_ = true;
  if (have_groups_) welcome();
}

// The IRC channels of the groups after groups_ (or a group's channels) changed: what was
// renamed is parted under its old name and joined under its new one, what is gone is parted.
void Session::rename_channels(
    const std::map<std::pair<std::string, std::string>, std::string>& old) {
  assign_channels();
  for (const auto& [key, irc] : old) {
    Group* g = group_by_id(key.first);
    Chan* c = nullptr;
    if (g)
      for (auto& [name, x] : g->chans)
        if (x.key == key.second) c = &x;
    if (!c || !g->member) {
      send(Message{
          {},
          self_source(),
          "PART",
          {irc, g && g->member ? "the channel was archived or removed" : "no longer a member"}});
      continue;
    }
    if (c->irc != irc) {
      send(Message{{}, self_source(), "PART", {irc, "renamed to " + c->irc}});
      c->joined = false;
      c->want_join = true;
    }
  }
}

std::map<std::pair<std::string, std::string>, std::string> Session::joined_channels() const {
  std::map<std::pair<std::string, std::string>, std::string> out;
  for (const auto& [id, g] : groups_)
    for (const auto& [name, c] : g.chans)
      if (c.joined) out[{id, c.key}] = c.irc;
  return out;
}

void Session::on_group_list(const Json& r) {
  if (!r.is_array()) return;
  std::map<std::string, Group> next;
  std::map<std::string, Direct> next_directs;
  for (const auto& v : r) {
    const std::string id = str(v, "id");
    if (id.empty()) continue;
    Group g;
    auto old = groups_.find(id);
    if (old != groups_.end()) g = old->second;
    g.id = id;
    g.label = str(v, "label");
    g.topic = opt_str(v, "topic");
    g.unread = num(v, "unread");
    g.member = v.value("member", false) && !v.value("joining", false);
    if (v.value("direct", false)) {
      // A direct conversation: a private query with its peer, not a channel.
      const Json peer = v.contains("peer") && v["peer"].is_object() ? v["peer"] : Json::object();
      if (!g.member || str(peer, "member").empty()) continue;
      Direct& d = next_directs[id];
      if (auto old_d = directs_.find(id); old_d != directs_.end()) d = old_d->second;
      d.peer = str(peer, "member");
      d.nick = opt_str(peer, "nick");
      d.unread = num(v, "unread");
      continue;
    }
    main_chan(g).name = main_chan(g).key = main_channel;
    if (!g.member)
      for (auto& [name, c] : g.chans) c.joined = false;
    next[id] = std::move(g);
  }
  const auto old = joined_channels();
  groups_ = std::move(next);
  directs_ = std::move(next_directs);
  rename_channels(old);
  for (auto& [id, g] : groups_) {
    if (!g.member) continue;
    if (welcomed_)
      for (auto& [name, c] : g.chans)
        if (!c.joined && !c.parted) c.want_join = true;
    // The channels before the members: the members' answer joins the channels.
    request(Purpose::channels, "channel.list", Json{{"group", id}}, id);
    request(Purpose::members, "members", Json{{"group", id}}, id);
  }
  have_groups_ = true;
  if (have_id_) welcome();
  if (welcomed_) play_directs();
}

void Session::play_directs() {
  // Unread direct messages arrive as private messages once per session: at the welcome, and
  // for a conversation that appears later (its first message), when it does.
  for (auto& [gid, d] : directs_) {
    if (d.played || d.playback_pending) continue;
    d.played = true;
    if (d.unread == 0) continue;
    d.playback_pending = true;
    request(Purpose::dm_playback, "log",
            Json{{"group", gid}, {"limit", std::min<std::uint64_t>(d.unread, playback_entries_max)}},
            gid);
  }
}

void Session::send_direct(const std::string& gid, const Direct& d, const Json& entry, bool live) {
  auto parsed = render::parse_entry(entry);
  if (!parsed.ok() || parsed->kind != "post" || parsed->deleted) return;
  const render::Entry& e = *parsed;
  std::vector<std::pair<std::string, std::string>> tags;
  if (caps_.count("server-time")) tags.emplace_back("time", iso_time(e.time_ms));
  if (caps_.count("message-tags")) tags.emplace_back("msgid", e.id);
  const std::string when =
      live || caps_.count("server-time") ? "" : "[" + config_.clock(e.time_ms) + "] ";
  const bool action = entry.value("action", false) == true;
  std::string text = e.text.value_or(e.stored ? render::unreadable_text : render::not_stored_text);
  const bool mine = e.author == self_id_;
  // From the peer: to this client's nick. Ours from another client: from us to the peer, which
  // clients show in the query with the peer.
  const std::string source = mine ? self_source() : source_of(d.peer, d.nick);
  const std::string target = mine ? nick_of(d.peer, d.nick) : nick_;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t nl = std::min(text.find('\n', start), text.size());
    const std::string line = text.substr(start, nl - start);
    if (!line.empty()) send_text(source, "PRIVMSG", target, when + line, action, tags);
    start = nl + 1;
  }
  (void)gid;
}

std::optional<std::string> Session::member_by_any_nick(std::string_view nick) const {
  const std::string folded = fold(nick);
  if (folded == fold(nick_) || folded == service_nick) return std::nullopt;
  if (auto it = nick_owner_.find(folded); it != nick_owner_.end()) return it->second;
  for (const auto& [gid, d] : directs_)
    if (fold(nick_of(d.peer, d.nick)) == folded) return d.peer;
  return std::nullopt;
}

void Session::on_channels(const std::string& group, const Json& r) {
  Group* g = group_by_id(group);
  if (!g || !r.is_array()) return;
  std::map<std::string, Chan> next;
  next[main_channel] = main_chan(*g);
  std::size_t listed = 0;
  for (const auto& v : r) {
    const std::string name = str(v, "name");
    const std::string key = str(v, "id");
    // Archived channels take no posts: not shown (their history stays in `qun log --channel`).
    // An unreadable name (null) cannot be typed or posted to.
    if (name.empty() || key.empty() || name == main_channel || v.value("archived", false)) continue;
    if (++listed > channels_per_group_max) break;
    Chan c;
    for (const auto& [old_name, old] : g->chans)
      if (old.key == key) c = old;  // the same channel, perhaps renamed
    c.name = name;
    c.key = key;
    if (welcomed_ && !c.joined && !c.parted) c.want_join = true;
    next[name] = std::move(c);
  }
  const auto old = joined_channels();
  g->chans = std::move(next);
  rename_channels(old);
  join_wanted(*g);
}

void Session::on_members(const std::string& group, const Json& r) {
  Group* g = group_by_id(group);
  if (!g || !r.is_array()) return;
  std::vector<Member> members;
  for (const auto& v : r) {
    const std::string id = str(v, "id");
    if (!id.empty()) members.push_back(Member{id, str(v, "nick"), str(v, "role")});
  }
  // Who came and went without an entry that said so (while this session asked): shown as
  // joins and parts, so the client's list stays the node's.
  std::vector<Member> came, went;
  if (any_joined(*g)) {
    for (const auto& m : members)
      if (std::none_of(g->members.begin(), g->members.end(), [&](const Member& x) { return x.id == m.id; }))
        came.push_back(m);
    for (const auto& m : g->members)
      if (std::none_of(members.begin(), members.end(), [&](const Member& x) { return x.id == m.id; }))
        went.push_back(m);
  }
  for (const auto& m : went)
    if (m.id != self_id_) send_all(*g, Message{{}, source_of(m.id, m.nick), "PART", {"", "gone"}});
  g->members = std::move(members);
  g->have_members = true;
  assign_nicks(true);
  for (const auto& m : came)
    if (m.id != self_id_) send_all(*g, Message{{}, source_of(m.id, m.nick), "JOIN", {""}});
  join_wanted(*g);
}

void Session::on_history(const std::string& group, const Json& entries, bool playback,
                         const std::string& target) {
  Group* g = group_by_id(group);
  if (!g || !entries.is_array()) return;
  if (playback) g->playback_pending = false;
  if (playback && !any_joined(*g)) return;
  const Chan* only = nullptr;
  if (!playback) {
    auto t = by_channel(target);
    if (!t || t->group != g) return;
    only = t->chan;
  }
  std::size_t begin = 0;
  if (playback) {
    // From the oldest of the `unread` newest posts by others (what the node counts as unread,
    // net/daemon.cpp group_json), so what this person saw before is not shown again.
    std::uint64_t seen = 0;
    begin = entries.size();
    while (begin > 0 && seen < g->unread) {
      --begin;
      const Json& e = entries[begin];
      if (str(e, "kind") == "post" && str(e, "author") != self_id_) ++seen;
    }
    read_dirty_.insert(group);
  }
  std::string batch;
  if (!playback && caps_.count("batch")) {
    batch = std::to_string(next_batch_++);
    send(Message{{}, config_.server_name, "BATCH", {"+" + batch, "chathistory", target}});
  } else if (playback && entries.size() > begin) {
    notice("history of " + main_chan(*g).irc + " since you last read it:");
  }
  for (std::size_t i = begin; i < entries.size(); ++i)
    send_entry(*g, entries[i], false, batch, only);
  if (!batch.empty()) send(Message{{}, config_.server_name, "BATCH", {"-" + batch}});
}

void Session::on_stream(const Json& value) {
  if (closed_ || !registered_ || !value.is_object()) return;
  const std::string kind = str(value, "stream");
  if (kind == "groups") {
    request(Purpose::group_list, "group.list", Json::object());
    return;
  }
  if (kind != "message" || !value.contains("message")) return;
  const std::string gid = str(value, "group");
  if (auto d = directs_.find(gid); d != directs_.end()) {
    const Json& entry = value["message"];
    if (d->second.playback_pending || str(entry, "kind") != "post") return;
    if (str(entry, "author") == self_id_) {
      // What this client sent is on its screen already (its posts_in_flight_ entry, or its id).
      const std::string id = str(entry, "id");
      if (std::find(own_posts_.begin(), own_posts_.end(), id) != own_posts_.end()) return;
      auto it = posts_in_flight_.find("dm:" + d->second.peer + "\n" + str(entry, "text"));
      if (it != posts_in_flight_.end()) {
        own_posts_.push_back(id);
        if (own_posts_.size() > own_posts_remembered_max) own_posts_.pop_front();
        return;
      }
    }
    send_direct(gid, d->second, entry, true);
    read_dirty_.insert(gid);
    return;
  }
  Group* g = group_by_id(gid);
  if (!g || !any_joined(*g)) return;
  const Json& entry = value["message"];
  if (g->playback_pending) {
    if (str(entry, "kind") == "post" && str(entry, "author") != self_id_) ++g->unread;
    return;
  }
  if (str(entry, "kind") == "post" && str(entry, "author") == self_id_ && !caps_.count("echo-message")) {
    // What this client sent is already on its screen; posts from this node's other clients are
    // shown.
    const std::string id = str(entry, "id");
    remember_post(id, nick_, str(entry, "text"), str(entry, "channel"));
    if (std::find(own_posts_.begin(), own_posts_.end(), id) != own_posts_.end()) return;
    auto it = posts_in_flight_.find(gid + "\n" + str(entry, "text"));
    if (it != posts_in_flight_.end()) {
      own_posts_.push_back(id);
      if (own_posts_.size() > own_posts_remembered_max) own_posts_.pop_front();
      return;
    }
  }
  send_entry(*g, entry, true, "");
  read_dirty_.insert(gid);
}

}  // namespace qun::irc
