// qun: the command line. `qun node` runs the node (net/daemon.h); every other command except
// `init` talks to the running node through its control socket (cli/control_client.h) and prints
// what it answers, as text for people or, with --json, as JSON for scripts (docs/cli.md).
//
// The commands are one table: each is a CLI11 subcommand with its arguments and one small handler
// (run_*). Text from the node may hold what other people wrote, so everything shown to people
// goes through app/render.h, which makes it safe for a terminal.
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <malloc.h>
#include <filesystem>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "cli/chat.h"
#include "cli/config.h"
#include "cli/irc.h"
#include "cli/control_client.h"
#include "app/render.h"
#include "crypto/key_file.h"
#include "base/utf8.h"
#include "net/daemon.h"
#include "net/home.h"
#include "net/log_stderr.h"
#include "node/limits.h"

using namespace qun;
using Json = control::Json;

namespace {

// How long a command waits for the node's answer. Joining waits for the group's nodes.
constexpr int request_timeout_ms = 30'000;
constexpr int join_timeout_ms = 60'000;
// `qun log` pages through the history this many entries at a time. A page of maximal posts
// (with their fields) must fit one control frame: 100 x 16 KiB is 1.6 MiB of the 4 MiB.
constexpr std::size_t log_page = 100;
static_assert(log_page * (limits::post_text_bytes_max + 1024) < control::frame_bytes_max);
// `log --follow` remembers this many of the ids it printed, to skip an entry that both the
// history and the stream bring (around a reconnect at most a few pages), without growing for
// the whole life of a long follow.
constexpr std::size_t follow_seen_max = 8 * log_page;
// How often `log --follow` tries a node that stopped: the chat's pace (cli/chat.cpp).
constexpr int follow_reconnect_ms = 1000;
// The longest duration --expires takes: ten years, far past any invite's use and far from
// overflowing the node's milliseconds.
constexpr std::uint64_t expires_ms_max = 10ull * 365 * 86'400'000;
// Exit statuses (docs/cli.md).
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

// ---------------------------------------------------------------------------------------------
// Errors, the node and output.

// One line on stderr, made safe for the terminal (node errors may quote what others wrote).
void say(const std::string& message) {
  std::cerr << "qun: " << render::for_terminal(message, false) << "\n";
}
[[noreturn]] void die(const std::string& message) {
  say(message);
  std::exit(exit_failure);
}
[[noreturn]] void usage(const std::string& message) {
  say(message);
  std::exit(exit_usage);
}

std::string str(const Json& j, const char* key, const std::string& fallback = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}
std::uint64_t num(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}
bool flag(const Json& j, const char* key, bool fallback = false) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}
// A name from the node for a line of human output: safe, on one line.
std::string shown(const std::string& text) { return render::for_terminal(text, false); }
std::string short_id(const std::string& hex) { return hex.substr(0, 8); }

std::string local_time(std::int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  if (localtime_r(&t, &tm) == nullptr) return "(bad time)";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

void print_json(const Json& j) { std::cout << render::json_line(j) << "\n"; }

struct Globals {
  std::string home_flag;
  bool json = false;
  std::string home() const {
    return home::resolve(home_flag.empty() ? std::nullopt : std::optional<std::string>(home_flag));
  }
};

ControlClient connect(const Globals& o) {
  const std::string home = o.home();
  auto c = ControlClient::connect(home::socket_path(home));
  if (!c.ok()) {
    if (c.error().code() == Errc::not_found)
      die("no node is running on " + home + "; start one with `qun node --home " + home + "`");
    die(c.error().context());
  }
  return std::move(c).value();
}

Json call(ControlClient& c, const std::string& op, Json args = Json::object(),
          int timeout_ms = request_timeout_ms) {
  auto r = c.request(op, std::move(args), timeout_ms);
  if (!r.ok()) die(r.error().context());
  return std::move(r).value();
}

Json call(const Globals& o, const std::string& op, Json args = Json::object(),
          int timeout_ms = request_timeout_ms) {
  ControlClient c = connect(o);
  return call(c, op, std::move(args), timeout_ms);
}

// ---------------------------------------------------------------------------------------------
// Arguments that need more than CLI11's checks.

// "90s", "30m", "12h", "7d": a positive count with a unit. Anything else is a usage error.
std::uint64_t parse_duration_ms(const std::string& option, const std::string& text) {
  const std::string example = "; use e.g. 90s, 30m, 12h or 7d";
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) usage(option + " '" + text + "' is not a duration" + example);
  const std::uint64_t n = std::stoull(text.substr(0, digits));
  const std::string unit = text.substr(digits);
  std::uint64_t scale = 0;
  if (unit == "s") scale = 1000;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else if (unit == "d") scale = 86'400'000;
  else if (unit.empty()) usage(option + " '" + text + "' needs a unit (s, m, h or d)" + example);
  else usage(option + " '" + text + "' has an unknown unit '" + unit + "'" + example);
  if (n == 0) usage(option + " must be longer than 0; leave it out for an invite that never expires");
  if (n > expires_ms_max / scale) usage(option + " '" + text + "' is too long: at most 3650d");
  return n * scale;
}

// Text this user authors: valid UTF-8 (checked here so the error names the argument; the node
// checks again, with control characters).
void check_utf8(const std::string& what, const std::string& text) {
  if (auto bad = utf8::first_invalid(text))
    die(what + " is not valid UTF-8 (at byte " + std::to_string(*bad) +
        "); convert it first, e.g. with iconv -t UTF-8");
}

// Reads a passphrase from the terminal without echo. nullopt when there is no terminal.
std::optional<std::string> prompt_passphrase(const std::string& prompt) {
  const int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  termios old{};
  const bool is_tty = ::tcgetattr(fd, &old) == 0;
  if (!is_tty) {
    ::close(fd);
    return std::nullopt;
  }
  termios quiet = old;
  quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
  quiet.c_lflag |= ICANON;
  ::tcsetattr(fd, TCSAFLUSH, &quiet);
  (void)!::write(fd, prompt.data(), prompt.size());
  std::string line;
  char ch;
  while (::read(fd, &ch, 1) == 1 && ch != '\n' && ch != '\r') line += ch;
  ::tcsetattr(fd, TCSAFLUSH, &old);
  (void)!::write(fd, "\n", 1);
  ::close(fd);
  return line;
}

// ---------------------------------------------------------------------------------------------
// The commands. Each handler reads the arguments CLI11 filled in and returns the exit status.

struct Args {
  Globals g;
  // init, node
  std::string nick, passphrase_file;
  bool ask_passphrase = false;
  DaemonOptions daemon;
  config::Flags settings;  // the flags of `qun node` and `qun config` that are settings
  // group, member, text arguments
  std::string group, name, text, member, code, address, invite_id, relay;
  std::uint64_t uses = 1;
  std::string expires;
  std::vector<std::string> code_parts;  // join: a code the shell split at the spaces of a paste
  std::size_t limit = 0;
  bool follow = false, all = false;
  std::string irc_listen;
  bool irc_beside_node = false;
  // the conversation commands (issue 12)
  std::string reply, channel, event, emoji, to = "admin", mute_for, new_name, setting, value;
  bool undo = false, action = false;
  // files (issue 15)
  std::string path, output;
};

int run_init(Args& a, CLI::App& init) {
  if (init.count("--name") && a.nick.empty()) usage("--name is empty; give the nick others see");
  std::optional<std::string> pass;
  if (!a.passphrase_file.empty()) {
    if (a.ask_passphrase) usage("give --passphrase or --passphrase-file, not both");
    auto p = home::read_passphrase_file(a.passphrase_file);
    if (!p.ok()) die(p.error().context());
    pass = p.value();
  } else if (a.ask_passphrase) {
    pass = prompt_passphrase("passphrase for the new identity: ");
    if (!pass) usage("--passphrase asks on a terminal and there is none; use --passphrase-file FILE");
    auto again = prompt_passphrase("the same passphrase again: ");
    if (!again || *again != *pass) die("the two passphrases differ; run `qun init --passphrase` again");
    if (pass->empty()) die("the passphrase is empty; run `qun init --passphrase` again");
  }
  if (a.nick.empty()) {
    const char* user = std::getenv("USER");
    a.nick = user && *user ? user : "anon";
  }
  if (!utf8::valid(a.nick) || utf8::first_control(a.nick, false))
    usage("--name holds invalid UTF-8 or a control character; give a plain nick");
  if (a.nick.size() > limits::nick_bytes_max)
    usage("--name is longer than " + std::to_string(limits::nick_bytes_max) + " bytes");
  auto r = home::init(a.g.home(), a.nick, pass);
  if (!r.ok()) die(r.error().context());
  if (a.g.json) print_json(Json{{"id", r.value()}, {"nick", a.nick}, {"home", a.g.home()}});
  else std::cout << r.value() << "\n";
  const std::string node = "qun node" + (a.g.home_flag.empty() ? "" : " --home " + a.g.home());
  if (pass)
    std::cerr << "qun: identity created in " << a.g.home() << ", sealed; start the node with `"
              << node << "` (it asks for the passphrase, or give --passphrase-file FILE)\n";
  else
    std::cerr << "qun: identity created in " << a.g.home() << "; start the node with `" << node
              << "` (the identity is not sealed: `qun init --passphrase` seals a new one)\n";
  return 0;
}

// The settings of `qun node`: defaults, the config files, the flags (cli/config.h). A bad flag
// value is a usage error; a bad file is an error naming file, line and key.
config::Settings load_settings(Args& a, const CLI::App& command, std::vector<std::string>* files) {
  config::Settings defaults = config::defaults();
  if (auto flags = config::merge_flags(defaults, command, a.settings); !flags.ok())
    usage(flags.error().context());
  auto s = config::load(a.g.home(), &command, &a.settings, files);
  if (!s.ok()) die(s.error().context());
  return std::move(s).value();
}

// glibc returns the top of the heap to the kernel once 128 KiB of it is free (M_TRIM_THRESHOLD's
// default), and a file transfer frees and takes back 64 KiB buffers all the time: each cycle
// faulted in fresh zeroed pages, 15-20% of a fetching node's CPU (file_bench, perf). Keeping up
// to 8 MiB free at the top costs at most that much memory.
constexpr int heap_trim_bytes = 8 * 1024 * 1024;

int run_node(Args& a, const CLI::App& node) {
  ::mallopt(M_TRIM_THRESHOLD, heap_trim_bytes);
  const config::Settings settings = load_settings(a, node, nullptr);
  if (auto applied = config::apply(settings, a.daemon); !applied.ok())
    die(applied.error().context());
  a.daemon.home = a.g.home();
  if (!a.passphrase_file.empty()) {
    if (a.ask_passphrase) usage("give --passphrase or --passphrase-file, not both");
    auto p = home::read_passphrase_file(a.passphrase_file);
    if (!p.ok()) die(p.error().context());
    a.daemon.passphrase = p.value();
  } else {
    auto sealed = key_file_is_sealed(home::identity_path(a.daemon.home));
    if (a.ask_passphrase || (sealed.ok() && sealed.value())) {
      a.daemon.passphrase = prompt_passphrase("passphrase for " + a.daemon.home + ": ");
      if (!a.daemon.passphrase)
        usage("the identity is sealed and there is no terminal to ask on; use --passphrase-file FILE");
    }
  }
  // irc.enabled: the IRC gateway runs beside the node, and stops with it (docs/irc.md).
  std::optional<IrcChild> irc;
  if (settings.at("irc.enabled").value.get<bool>()) {
    auto child = IrcChild::start(IrcOptions{a.daemon.home, settings.at("irc.listen").value.get<std::string>()});
    if (!child.ok()) die(child.error().context());
    irc.emplace(std::move(child).value());
  }
  return run_daemon(a.daemon);
}

int run_config(Args& a, const CLI::App& command) {
  std::vector<std::string> files;
  const config::Settings s = load_settings(a, command, &files);
  DaemonOptions check;
  if (auto applied = config::apply(s, check); !applied.ok()) die(applied.error().context());
  if (a.g.json) return print_json(config::to_json(s, files)), 0;
  std::cout << "# qun node's settings: flags override the files, the home's file the user's\n";
  for (const auto& f : files)
    std::cout << "# " << f << (std::filesystem::exists(f) ? "" : " (not present)") << "\n";
  std::cout << config::to_text(s);
  return 0;
}

int run_chat_command(Args& a) {
  ChatOptions c;
  c.socket_path = home::socket_path(a.g.home());
  if (!a.group.empty()) c.group = a.group;
  c.json = a.g.json;
  // Files (issue 15): chat.auto_fetch_mib from the config files; /open's cache and /save's
  // folder from the XDG variables (the downloads folder if there is one, else the home).
  auto settings = config::load(a.g.home(), nullptr, nullptr);
  if (!settings.ok()) die(settings.error().context());
  c.auto_fetch_bytes_max = settings.value().at("chat.auto_fetch_mib").value.get<std::uint64_t>() << 20;
  const char* user_home = std::getenv("HOME");
  const std::string home_dir = user_home ? user_home : "";
  const char* cache = std::getenv("XDG_CACHE_HOME");
  if (cache && cache[0] == '/') c.open_dir = std::string(cache) + "/qun/files";
  else if (!home_dir.empty()) c.open_dir = home_dir + "/.cache/qun/files";
  const char* downloads = std::getenv("XDG_DOWNLOAD_DIR");
  std::error_code ec;
  if (downloads && downloads[0] == '/') c.save_dir = downloads;
  else if (!home_dir.empty() && std::filesystem::is_directory(home_dir + "/Downloads", ec))
    c.save_dir = home_dir + "/Downloads";
  else c.save_dir = home_dir;
  return run_chat(c);
}

int run_irc_command(Args& a) {
  IrcOptions o;
  o.home = a.g.home();
  o.beside_node = a.irc_beside_node;
  // --listen, else the config files' irc.listen (cli/config.h), else its default.
  if (!a.irc_listen.empty()) {
    o.listen = a.irc_listen;
  } else {
    auto settings = config::load(o.home, nullptr, nullptr);
    if (!settings.ok()) die(settings.error().context());
    o.listen = settings.value().at("irc.listen").value.get<std::string>();
  }
  return run_irc(o);
}

// "reachable at ADDR", "behind NAT, seen as ADDR" or "not known yet" (docs/cli.md, qun id).
std::string reachability_words(const Json& r) {
  const std::string reach = str(r, "reachability", "unknown");
  const std::string seen = str(r, "observed", "");
  if (reach == "reachable") return "reachable, seen as " + seen;
  if (reach == "behind_nat") return "behind NAT, seen as " + seen;
  return seen.empty() ? "not known yet (no peer has told this node)"
                      : "not checked yet, seen as " + seen;
}

// One phrase per address family when the node listens in two ("IPv4 behind NAT, seen as ADDR",
// "IPv6 reachable, seen as ADDR"; docs/cli.md, qun id), else the one of reachability_words.
std::vector<std::string> reachability_lines(const Json& r) {
  std::vector<std::string> out;
  if (r.contains("families") && r["families"].is_array() && r["families"].size() > 1)
    for (const auto& f : r["families"])
      out.push_back(std::string(str(f, "family", "") == "ipv6" ? "IPv6 " : "IPv4 ") +
                    reachability_words(f));
  if (out.empty()) out.push_back(reachability_words(r));
  return out;
}

int run_id(Args& a) {
  Json r = call(a.g, "id");
  if (a.g.json) return print_json(r), 0;
  std::cout << "id      " << str(r, "id") << "\nnick    " << shown(str(r, "nick", "-")) << "\n";
  if (r.contains("listen") && r["listen"].is_array())
    for (const auto& l : r["listen"])
      if (l.is_string()) std::cout << "listen  " << l.get<std::string>() << "\n";
  // Every address it advertises (IPv4 and IPv6: docs/protocol.md, "Addresses"), else the one.
  std::string reach;
  if (r.contains("addresses") && r["addresses"].is_array())
    for (const auto& a : r["addresses"])
      if (a.is_string()) reach += (reach.empty() ? "" : " ") + a.get<std::string>();
  if (reach.empty()) reach = str(r, "advertised");
  std::cout << "reach   " << reach << (flag(r, "relay") ? "  (relay)" : "") << "\n";
  for (const auto& line : reachability_lines(r)) std::cout << "public  " << line << "\n";
  return 0;
}

int run_group_create(Args& a) {
  check_utf8("NAME", a.name);
  Json r = call(a.g, "group.create", Json{{"name", a.name}});
  std::cout << str(r, "id") << "\n";
  return 0;
}

int run_group_repair(Args& a) {
  Json r = call(a.g, "group.repair", Json{{"group", a.group}});
  if (a.g.json) return print_json(r), 0;
  std::cout << "group " << short_id(str(r, "id")) << ": kept " << num(r, "events_kept")
            << " events (" << num(r, "events_unread") << " did not read), fetching the rest from "
            << render::plural(num(r, "peers"), "peer", "peers")
            << "; `qun status` shows when it is synced\n";
  return 0;
}

int run_group_list(Args& a) {
  Json r = call(a.g, "group.list");
  if (a.g.json) return print_json(r), 0;
  if (r.empty()) std::cout << "no groups yet: `qun group create NAME` or `qun join CODE`\n";
  for (const auto& j : r) {
    // The label tells apart groups that share a name (lobby·1b11); older nodes send none.
    std::cout << short_id(str(j, "id")) << "  " << shown(str(j, "label", str(j, "name", "(unnamed)")))
              << "  " << render::plural(num(j, "members"), "member", "members");
    if (num(j, "unread") > 0) {
      std::cout << "  " << num(j, "unread") << " unread";
      // Which channels, when the group has more than #general: "(#dev 2, #general 1)".
      std::string where;
      if (j.contains("channels") && j["channels"].is_array() && j["channels"].size() > 1)
        for (const auto& c : j["channels"])
          if (num(c, "unread") > 0)
            where += (where.empty() ? "" : ", ") + std::string("#") +
                     shown(str(c, "name", "(unreadable)")) + " " + std::to_string(num(c, "unread"));
      if (!where.empty()) std::cout << " (" << where << ")";
    }
    if (num(j, "mentions") > 0)
      std::cout << "  " << render::plural(num(j, "mentions"), "mention", "mentions");
    if (flag(j, "joining")) std::cout << "  (joining)";
    else if (!flag(j, "member", true)) std::cout << "  (not a member)";
    if (!flag(j, "reachable", true)) std::cout << "  (no peer reachable)";
    if (num(j, "outbox") > 0) std::cout << "  " << num(j, "outbox") << " queued";
    std::cout << "\n";
  }
  return 0;
}

int run_invite(Args& a) {
  if (a.group.empty()) usage("GROUP is required; see qun invite --help");
  Json args{{"group", a.group}, {"uses", a.uses}};
  if (!a.expires.empty()) args["expires_ms"] = parse_duration_ms("--expires", a.expires);
  Json r = call(a.g, "invite", args);
  std::cout << str(r, "code") << "\n";
  if (r.contains("warning")) std::cerr << "qun: " << str(r, "warning") << "\n";
  return 0;
}

int run_invite_list(Args& a) {
  Json r = call(a.g, "invite.list", Json{{"group", a.group}});
  if (a.g.json) return print_json(r), 0;
  if (r.empty()) std::cout << "no invites in this group\n";
  for (const auto& j : r) {
    const std::string creator =
        shown(render::name(j.contains("creator_nick") && j["creator_nick"].is_string()
                               ? std::optional<std::string>(str(j, "creator_nick"))
                               : std::nullopt,
                           str(j, "creator")));
    std::cout << short_id(str(j, "id")) << "  by " << creator << "  "
              << num(j, "uses_left") << " of " << render::plural(num(j, "uses_max"), "use", "uses")
              << " left  ";
    if (j.contains("expires") && j["expires"].is_number_unsigned())
      std::cout << (str(j, "state") == "expired" ? "expired " : "expires ")
                << local_time(static_cast<std::int64_t>(num(j, "expires")));
    else
      std::cout << "never expires";
    std::cout << "  " << str(j, "state") << "\n";
  }
  return 0;
}

int run_invite_revoke(Args& a) {
  Json r = call(a.g, "invite.revoke", Json{{"group", a.group}, {"invite", a.invite_id}});
  if (a.g.json) print_json(r);
  return 0;
}

int run_join(Args& a) {
  // An unquoted paste of a code a terminal broke over lines reaches us as several arguments;
  // whitespace inside a code means nothing (node/invite.h), so the pieces are one code.
  for (const auto& part : a.code_parts) a.code += part;
  Json r = call(a.g, "join", Json{{"code", a.code}}, join_timeout_ms);
  std::cout << str(r, "group") << "\n";
  return 0;
}

int run_post(Args& a) {
  if (a.text == "-") {
    a.text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    while (!a.text.empty() && (a.text.back() == '\n' || a.text.back() == '\r')) a.text.pop_back();
    // Lines ending in CRLF (a file from Windows) are posted with plain newlines.
    std::string lf;
    for (std::size_t i = 0; i < a.text.size(); ++i)
      if (!(a.text[i] == '\r' && i + 1 < a.text.size() && a.text[i + 1] == '\n')) lf += a.text[i];
    a.text = std::move(lf);
  }
  check_utf8("the text", a.text);
  Json args{{"group", a.group}, {"text", a.text}};
  if (!a.reply.empty()) args["reply_to"] = a.reply;
  if (!a.channel.empty()) args["channel"] = a.channel;
  if (a.action) args["action"] = true;
  Json r = call(a.g, "post", args);
  if (a.g.json) print_json(r);
  if (flag(r, "queued"))
    std::cerr << "qun: no peer of " << shown(a.group)
              << " is reachable now; the post is stored and goes out when one is\n";
  return 0;
}

// `qun log`: the history (the last --limit entries), then with --follow the new ones as they
// come, across restarts of the node.
class LogCommand {
 public:
  explicit LogCommand(Args& a) : a_(a) {}

  int run() {
    ControlClient c = connect(a_.g);
    if (a_.follow) own_id_ = str(call(c, "id"), "id");
    if (a_.follow || !a_.g.json) admins_ = roster();
    if (a_.follow) subscribe(c);
    show_history(c, a_.limit);
    // With --channel, that channel's posts only are read; the others stay unread.
    Json read{{"group", a_.group}};
    if (!a_.channel.empty()) read["channel"] = a_.channel;
    call(c, "read", read);
    if (!a_.follow) return 0;
    for (;;) {
      follow(c);
      // The node stopped: wait for it to come back, then catch up with what it stored meanwhile.
      std::cerr << "qun: the node stopped; waiting for it to come back\n";
      c = reconnect();
      subscribe(c);
      admins_ = roster();
      promoted_since_.clear();
      show_history(c, 0, /*until_seen=*/true);
      std::cerr << "qun: the node is back\n";
    }
  }

 private:
  // The stream of this group; with --channel, of that channel's posts and the acts on them.
  void subscribe(ControlClient& c) {
    Json args{{"group", a_.group}};
    if (!a_.channel.empty()) args["channel"] = a_.channel;
    call(c, "subscribe", args);
  }

  bool wanted(const Json& m) const {
    return a_.all || a_.g.json || !render::bookkeeping(str(m, "kind"));
  }

  // Pages from the newest backwards until `limit` shown entries (0: all), the start of the
  // history, or (until_seen) an entry already printed, then prints them oldest first.
  void show_history(ControlClient& c, std::size_t limit, bool until_seen = false) {
    std::deque<Json> entries;
    std::string before;
    for (bool done = false; !done;) {
      // With a limit, no more than it still needs (the hidden entries ask for another page).
      const std::size_t want = limit == 0 ? log_page : std::min(log_page, limit - entries.size());
      Json args{{"group", a_.group}, {"limit", want}};
      if (!before.empty()) args["before"] = before;
      if (!a_.channel.empty()) args["channel"] = a_.channel;
      Json page = call(c, "log", args);
      if (!page.is_array() || page.empty()) break;
      done = page.size() < want;
      before = str(page.front(), "id");
      for (auto it = page.rbegin(); it != page.rend(); ++it) {
        if (until_seen && seen_.count(str(*it, "id"))) {
          done = true;
          break;
        }
        if (!wanted(*it)) continue;
        entries.push_front(*it);
        if (limit != 0 && entries.size() >= limit) {
          done = true;
          break;
        }
      }
    }
    for (const auto& m : entries) show(m);
  }

  void show(const Json& m) {
    const std::string id = str(m, "id");
    if (!seen_.insert(id).second) return;
    seen_order_.push_back(id);
    if (seen_order_.size() > follow_seen_max) {
      seen_.erase(seen_order_.front());
      seen_order_.pop_front();
    }
    if (!wanted(m)) return;
    if (a_.g.json) {
      print_json(m);
    } else {
      auto e = render::parse_entry(m);
      if (!e.ok()) return;
      relabel(e->nick, e->author);
      if (e->target) relabel(e->target_nick, *e->target);
      std::cout << render::log_entry(*e, local_time(e->time_ms)) << "\n";
    }
    std::cout.flush();
  }

  // Prints stream messages until the connection ends.
  void follow(ControlClient& c) {
    for (;;) {
      auto m = c.next(-1);
      if (!m.ok()) return;
      if (!m.value()) continue;
      const Json& v = *m.value();
      if (str(v, "stream") == "message" && v.contains("message")) {
        // A newcomer, or a nick change, may make two members share a nick: labels again.
        const std::string kind = str(v["message"], "kind");
        if (!a_.g.json && (kind == "join" || kind == "add" || kind == "set-nick")) roster();
        show(v["message"]);
        announce(v["message"]);
      }
    }
  }

  // Being removed is said at once, with the way back (the entry itself is printed above), and so
  // is succession, as the chat says them.
  void announce(const Json& m) {
    auto e = render::parse_entry(m);
    if (!e.ok()) return;
    const std::string actor = render::for_terminal(render::name(e->nick, e->author), false);
    if (auto words = render::removed_you_words(*e, own_id_, render::for_terminal(a_.group, false),
                                               actor))
      std::cerr << "qun: " << *words
                << "; to come back, ask a member for a new invite, then `qun join CODE`\n";
    announce_succession(*e);
  }

  // After a leave or a removal, a member who became admin without a set-role was made admin by
  // the group's rule (docs/protocol.md, "Succession"): "qun: bob is now an admin: the last admin
  // left". Admins are asked of the node after such an entry; the entry arrives once the node
  // holds it, so its roster already shows the succession.
  void announce_succession(const render::Entry& e) {
    if (e.kind == "set-role" && e.target) promoted_since_.insert(*e.target);
    const bool removal = e.kind == "remove" || (e.kind == "ban" && !e.undo);
    if (e.kind != "leave" && !removal) return;
    std::map<std::string, std::string> now = roster();
    if (now.empty()) return;  // the node did not answer (stopped, or the group is gone here)
    if (admins_.empty()) {    // not known before: nothing to compare with
      admins_ = std::move(now);
      return;
    }
    for (const auto& [id, label] : now)
      if (!admins_.count(id) && !promoted_since_.count(id))
        std::cerr << "qun: " << render::succession_words(shown(label), id == own_id_, removal)
                  << "\n";
    admins_ = std::move(now);
    promoted_since_.clear();
  }

  // Asks the node for the group's members, on a connection of their own (the follower's is
  // streaming), and keeps the labels of members who share a nick (`bob·77e0`, net/listing.h).
  // Returns the admins and founder (id to label); empty when the node does not answer.
  std::map<std::string, std::string> roster() {
    std::map<std::string, std::string> out;
    auto c = ControlClient::connect(home::socket_path(a_.g.home()));
    if (!c.ok()) return out;
    auto r = c.value().request("members", Json{{"group", a_.group}}, request_timeout_ms);
    if (!r.ok() || !r.value().is_array()) return out;
    labels_.clear();
    for (const auto& m : r.value()) {
      const std::string id = str(m, "id"), nick = str(m, "nick"), label = str(m, "label", nick);
      if (!label.empty() && label != nick) labels_[id] = {nick, label};
      const std::string role = str(m, "role");
      if (role == "admin" || role == "founder") out[id] = label.empty() ? short_id(id) : label;
    }
    return out;
  }

  // Two members of one nick are told apart as in the chat and `qun members`: an entry that
  // carries a member's current nick shows the member's label instead. (An entry made under an
  // older nick, or by a former member, shows the nick it carries.)
  void relabel(std::optional<std::string>& nick, const std::string& id) const {
    auto it = labels_.find(id);
    if (it != labels_.end() && nick && *nick == it->second.first) nick = it->second.second;
  }

  ControlClient reconnect() {
    const std::string socket = home::socket_path(a_.g.home());
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(follow_reconnect_ms));
      auto c = ControlClient::connect(socket);
      if (c.ok()) return std::move(c).value();
    }
  }

  Args& a_;
  std::string own_id_;  // with --follow: this node's id, to notice its own removal
  // With --follow: the admins when last asked (id to label), and who a set-role made admin
  // since then, to tell succession from promotion.
  std::map<std::string, std::string> admins_;
  std::set<std::string> promoted_since_;
  // Members whose label is not their nick: id to (nick, label). Refreshed with the admins, and
  // when a member joins or changes nick while following.
  std::map<std::string, std::pair<std::string, std::string>> labels_;
  std::set<std::string> seen_;
  std::deque<std::string> seen_order_;
};

int run_log(Args& a) { return LogCommand(a).run(); }

int run_members(Args& a) {
  Json r = call(a.g, "members", Json{{"group", a.group}});
  if (a.g.json) return print_json(r), 0;
  for (const auto& m : r)
    std::cout << short_id(str(m, "id")) << "  " << shown(str(m, "label", str(m, "nick", "-"))) << "  "
              << str(m, "role") << (flag(m, "self") ? "  (you)" : "") << "\n";
  return 0;
}

int run_member_change(Args& a, const std::string& op) {
  Json args{{"group", a.group}, {"member", a.member}};
  if (op == "promote") args["to"] = a.to;
  if (op == "mute" && !a.mute_for.empty()) args["for_ms"] = parse_duration_ms("--for", a.mute_for);
  Json r = call(a.g, op, args);
  if (a.g.json) print_json(r);
  return 0;
}

// react, edit, delete: an act on one message (EVENT: its id or a unique prefix, as `qun log
// --json` shows it).
int run_message_act(Args& a, const std::string& op) {
  Json args{{"group", a.group}, {"event", a.event}};
  if (op == "react") {
    check_utf8("the emoji", a.emoji);
    args["emoji"] = a.emoji;
    if (a.undo) args["undo"] = true;
  }
  if (op == "edit") {
    check_utf8("the text", a.text);
    args["text"] = a.text;
  }
  Json r = call(a.g, op, args);
  if (a.g.json) print_json(r);
  return 0;
}

int run_channel(Args& a, const std::string& op) {
  Json args{{"group", a.group}};
  if (op != "list") args["name"] = a.name;
  if (op == "rename") args["new"] = a.new_name;
  Json r = call(a.g, "channel." + op, args);
  if (a.g.json) return print_json(r), 0;
  if (op == "list")
    for (const auto& c : r)
      std::cout << "#" << shown(str(c, "name", "(unreadable)")) << (flag(c, "archived") ? "  (archived)" : "")
                << (num(c, "unread") > 0 ? "  " + std::to_string(num(c, "unread")) + " unread" : "")
                << "\n";
  return 0;
}

int run_nick(Args& a) {
  check_utf8("the nick", a.nick);
  Json r = call(a.g, "nick", Json{{"nick", a.nick}});
  if (a.g.json) print_json(r);
  return 0;
}

int run_group_rename(Args& a) {
  check_utf8("the name", a.name);
  Json r = call(a.g, "group.rename", Json{{"group", a.group}, {"name", a.name}});
  if (a.g.json) print_json(r);
  return 0;
}

int run_group_set(Args& a) {
  if (a.setting != "history" && a.setting != "invites")
    usage("a group setting is history (on|off) or invites (members|admins), not '" + a.setting + "'");
  Json r = call(a.g, "group.set", Json{{"group", a.group}, {a.setting, a.value}});
  if (a.g.json) print_json(r);
  return 0;
}

int run_leave(Args& a) {
  Json r = call(a.g, "leave", Json{{"group", a.group}});
  if (a.g.json) print_json(r);
  return 0;
}

int run_topic(Args& a) {
  check_utf8("the topic", a.text);
  Json r = call(a.g, "topic", Json{{"group", a.group}, {"text", a.text}});
  if (a.g.json) print_json(r);
  return 0;
}

int run_hide(Args& a, const std::string& op) {
  Json r = call(a.g, op, Json{{"member", a.member}});
  if (a.g.json) print_json(r);
  return 0;
}

// `qun send GROUP PATH`: the node encrypts the file into blobs and posts it.
int run_send(Args& a) {
  std::error_code ec;
  const std::string path = std::filesystem::absolute(a.path, ec).string();
  if (ec || !std::filesystem::is_regular_file(path, ec)) die("cannot read " + a.path + ": no such file");
  check_utf8("the caption", a.text);
  Json args{{"group", a.group}, {"path", path}};
  if (!a.text.empty()) args["text"] = a.text;
  if (!a.reply.empty()) args["reply_to"] = a.reply;
  if (!a.channel.empty()) args["channel"] = a.channel;
  // Sealing 100 MiB takes a moment on a slow disk: a longer wait than a post's.
  Json r = call(a.g, "file.send", args, 10 * request_timeout_ms);
  if (a.g.json) print_json(r);
  else std::cout << str(r, "id") << "\n";
  if (flag(r, "queued"))
    std::cerr << "qun: no peer of " << shown(a.group)
              << " is reachable now; the file is stored and goes out when one is\n";
  return 0;
}

// `qun fetch GROUP ID`: waits for the node to hold every chunk, showing progress on a terminal.
int run_fetch(Args& a) {
  std::error_code ec;
  Json args{{"group", a.group}, {"event", a.event}};
  if (!a.output.empty()) args["path"] = std::filesystem::absolute(a.output, ec).string();
  else args["dir"] = std::filesystem::current_path(ec).string();
  ControlClient c = connect(a.g);
  auto sent = c.send("file.fetch", args);
  if (!sent.ok()) die(sent.error().context());
  const bool show = !a.g.json && ::isatty(STDERR_FILENO);
  while (true) {
    auto next = c.next(-1);
    if (!next.ok()) die(next.error().context());
    if (!next.value()) continue;
    const Json& m = *next.value();
    if (m.contains("stream")) {
      if (!show || str(m, "stream") != "progress") continue;
      const auto have = m.value("have", std::uint64_t{0}), total = m.value("total", std::uint64_t{1});
      const auto size = m.value("size", std::uint64_t{0});
      std::cerr << "\rfetching: " << (100 * have / std::max<std::uint64_t>(total, 1)) << "% of "
                << render::size_words(size) << "   " << std::flush;
      continue;
    }
    if (show) std::cerr << "\r\033[K";
    if (!m.value("ok", false)) die(str(m, "error", "the fetch failed"));
    const Json& r = m["result"];
    if (a.g.json) print_json(r);
    else std::cout << str(r, "path") << "\n";
    return 0;
  }
}

// `qun search [GROUP] QUERY`: newest first; one argument is the query, two are GROUP and QUERY.
int run_search(Args& a) {
  if (a.text.empty()) std::swap(a.group, a.text);
  Json args{{"text", a.text}};
  if (!a.group.empty()) args["group"] = a.group;
  if (!a.channel.empty()) args["channel"] = a.channel;
  if (a.limit != 0) args["limit"] = a.limit;
  Json r = call(a.g, "search", args);
  const Json results = r.value("results", Json::array());
  for (const auto& m : results) {
    if (a.g.json) {
      print_json(m);
      continue;
    }
    const std::string group = str(m, "group_name", short_id(str(m, "group")));
    const std::string channel = str(m, "channel");
    const std::string nick = shown(render::name(
        m.contains("nick") && m["nick"].is_string() ? std::optional<std::string>(str(m, "nick"))
                                                    : std::nullopt,
        str(m, "author")));
    std::cout << local_time(static_cast<std::int64_t>(num(m, "time_ms"))) << "  " << shown(group)
              << (channel.empty() || channel == "general" ? "" : " #" + shown(channel)) << "  "
              << nick << ": " << shown(str(m, "snippet")) << "  [" << short_id(str(m, "id"))
              << "]\n";
  }
  if (const std::uint64_t indexing = num(r, "indexing"); indexing > 0)
    std::cerr << "qun: the node is still indexing " << indexing
              << (indexing == 1 ? " group" : " groups") << "; some posts may be missing\n";
  if (results.empty() && !a.g.json) std::cerr << "qun: no message matches\n";
  return 0;
}

int run_modlog(Args& a) {
  Json r = call(a.g, "modlog", Json{{"group", a.group}});
  if (a.g.json) {
    for (const auto& e : r) print_json(e);
    return 0;
  }
  auto nick_of = [](const Json& e, const char* key) {
    return e.contains(key) && e[key].is_string() ? std::optional<std::string>(str(e, key))
                                                 : std::nullopt;
  };
  for (const auto& e : r) {
    render::Entry entry;
    entry.kind = str(e, "kind");
    entry.undo = flag(e, "undo");
    entry.duration_ms = static_cast<std::uint64_t>(num(e, "duration_ms"));
    if (const std::string detail = str(e, "detail"); !detail.empty()) {
      entry.text = detail;  // the emoji, channel name, name or topic
      entry.role = detail;  // set-role: the role
    }
    const std::string actor = shown(render::name(nick_of(e, "nick"), str(e, "author")));
    const std::string target_id = str(e, "target");
    const std::string target =
        target_id.empty() ? std::string() : shown(render::name(nick_of(e, "target_nick"), target_id));
    std::cout << local_time(static_cast<std::int64_t>(num(e, "time"))) << "  "
              << shown(render::entry_words(entry, actor, target)) << "\n";
  }
  return 0;
}

int run_hidden(Args& a) {
  Json r = call(a.g, "hidden");
  if (a.g.json) return print_json(r), 0;
  for (const auto& m : r) std::cout << short_id(str(m, "member")) << "  " << shown(str(m, "nick", "-")) << "\n";
  return 0;
}

// `qun dm MEMBER [TEXT]`: opens (creating it if needed) the direct conversation with MEMBER and
// posts TEXT there; prints the group's name to use with `qun log`, `qun chat` and `qun post`.
int run_dm(Args& a) {
  if (a.member.empty()) usage("qun dm needs MEMBER (or: qun dm list, block, unblock, blocked)");
  if (a.text == "-") {
    a.text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    while (!a.text.empty() && (a.text.back() == '\n' || a.text.back() == '\r')) a.text.pop_back();
  }
  check_utf8("the text", a.text);
  Json args{{"member", a.member}};
  if (!a.text.empty()) args["text"] = a.text;
  Json r = call(a.g, "dm", args);
  if (a.g.json) return print_json(r), 0;
  const std::string nick = str(r["peer"], "nick", short_id(str(r["peer"], "member")));
  if (flag(r, "created")) std::cout << "opened a direct conversation with " << shown(nick) << "\n";
  if (a.text.empty())
    std::cout << "read it with: qun log @" << shown(nick) << "   chat: qun chat @" << shown(nick) << "\n";
  if (flag(r, "queued"))
    std::cerr << "qun: " << shown(nick) << " is not reachable now; the message is stored and goes "
                 "out when a peer or relay of the conversation is\n";
  return 0;
}

int run_dm_list(Args& a) {
  Json r = call(a.g, "dm.list");
  if (a.g.json) return print_json(r), 0;
  if (r.empty()) std::cout << "no direct conversations yet; start one with qun dm MEMBER TEXT\n";
  for (const auto& d : r) {
    std::cout << shown(str(d, "name")) << "  " << short_id(str(d["peer"], "member"));
    if (num(d, "unread") > 0) std::cout << "  " << static_cast<std::uint64_t>(num(d, "unread")) << " unread";
    if (!flag(d, "peer_member")) std::cout << "  (they left)";
    std::cout << "\n";
  }
  return 0;
}

int run_dm_block(Args& a, const std::string& op) {
  Json r = call(a.g, op, Json{{"member", a.member}});
  if (a.g.json) return print_json(r), 0;
  const std::string nick = str(r, "nick", short_id(str(r, "member")));
  if (op == "dm.block")
    std::cout << "blocked " << shown(nick) << "; direct conversations removed: "
              << static_cast<std::uint64_t>(num(r, "removed")) << "\n";
  else
    std::cout << "unblocked " << shown(nick) << "\n";
  return 0;
}

int run_dm_blocked(Args& a) {
  Json r = call(a.g, "dm.blocked");
  if (a.g.json) return print_json(r), 0;
  for (const auto& m : r) std::cout << short_id(str(m, "member")) << "  " << shown(str(m, "nick", "-")) << "\n";
  return 0;
}

int run_relay_add(Args& a) {
  Json r = call(a.g, "relay.add", Json{{"group", a.group}, {"address", a.address}},
                join_timeout_ms);
  if (a.g.json) print_json(r);
  else std::cout << str(r, "relay") << "\n";
  return 0;
}

int run_relay_drop(Args& a) {
  Json r = call(a.g, "relay.drop", Json{{"group", a.group}});
  if (a.g.json) print_json(r);
  return 0;
}

int run_relay_requests(Args& a) {
  Json r = call(a.g, "relay.requests");
  if (a.g.json) return print_json(r), 0;
  if (r.empty()) std::cout << "no requests waiting\n";
  for (const auto& j : r)
    std::cout << "group " << str(j, "group") << "  from " << str(j, "requester") << "  "
              << shown(str(j, "address", "-")) << "  " << j.value("age_ms", 0) / 1000 << " s ago\n";
  return 0;
}

int run_relay_approve(Args& a) {
  Json r = call(a.g, "relay.approve", Json{{"target", a.member}});
  if (a.g.json) return print_json(r), 0;
  if (r.contains("group")) {
    std::cout << "serving group " << str(r, "group") << "\n";
  } else {
    std::cout << "allowed " << str(r, "key");
    if (r.contains("groups") && !r["groups"].empty())
      std::cout << "; serving " << r["groups"].size() << " group(s) it asked for";
    std::cout << "\n";
  }
  return 0;
}

int run_relay_list(Args& a) {
  Json r = call(a.g, "relays", Json{{"group", a.group}});
  if (a.g.json) return print_json(r), 0;
  for (const auto& j : r)
    std::cout << short_id(str(j, "id")) << "  " << shown(str(j, "address")) << "  "
              << str(j, "state", "unknown") << "\n";
  return 0;
}

int run_relay_remove(Args& a) {
  Json r = call(a.g, "relay.remove", Json{{"group", a.group}, {"relay", a.relay}});
  if (a.g.json) print_json(r);
  return 0;
}

int run_peers(Args& a) {
  Json r = call(a.g, "peers");
  if (a.g.json) return print_json(r), 0;
  for (const auto& p : r) {
    std::cout << (p.contains("id") && p["id"].is_string() ? short_id(str(p, "id"))
                                                          : std::string("?       "));
    if (p.contains("nick") && p["nick"].is_string()) std::cout << "  " << shown(str(p, "nick"));
    std::cout << "  " << shown(str(p, "address", "-")) << "  " << str(p, "state") << "  "
              << str(p, "direction");
    if (p.contains("via") && p["via"].is_string()) std::cout << "  via relay " << short_id(str(p, "via"));
    std::cout << "  sent " << num(p, "bytes_sent") << " B, received " << num(p, "bytes_received")
              << " B\n";
  }
  return 0;
}

int run_status(Args& a) {
  Json r = call(a.g, "status");
  if (a.g.json) return print_json(r), 0;
  const bool relay = flag(r, "relay");
  std::cout << (relay ? "relay " : "node ") << short_id(str(r, "id")) << ", up "
            << num(r, "uptime_ms") / 1000 << " s, " << render::plural(num(r, "peers"), "peer", "peers")
            << ", store " << num(r, "store_bytes") << " B, ";
  const auto reach = reachability_lines(r);
  for (std::size_t i = 0; i < reach.size(); ++i) std::cout << (i ? "; " : "") << reach[i];
  std::cout << "\n";
  if (r.contains("relayed") && r["relayed"].is_object()) {
    const Json& rl = r["relayed"];
    if (rl.contains("reserved_on") && rl["reserved_on"].is_string())
      std::cout << "  reachable through relay " << short_id(str(rl, "reserved_on")) << ", "
                << render::plural(num(rl, "links"), "relayed link", "relayed links") << "\n";
    if (rl.contains("punch") && rl["punch"].is_object() && num(rl["punch"], "dials") > 0)
      std::cout << "  hole punches: " << num(rl["punch"], "succeeded") << " direct links made, "
                << num(rl["punch"], "failed") << " failed\n";
    if (relay)
      std::cout << "  relaying " << num(rl, "carried") << " of at most " << num(rl, "carried_max")
                << " links for " << render::plural(num(rl, "reservations"), "member", "members")
                << " behind NAT, " << num(rl, "bytes") << " B forwarded, " << num(rl, "refused")
                << " refused (" << num(rl, "refused_full") << " full), " << num(rl, "closed_bytes")
                << " closed at the byte bound\n";
  }
  if (!r.contains("groups") || !r["groups"].is_array()) return 0;
  for (const auto& j : r["groups"]) {
    std::cout << "  " << short_id(str(j, "id")) << "  " << shown(str(j, "name", "(unnamed)")) << "  "
              << render::plural(num(j, "events"), "event", "events") << ", "
              << num(j, "pending") << " pending, "
              << render::plural(num(j, "active_peers"), "active peer", "active peers") << ", ";
    if (flag(j, "joining")) std::cout << "joining";
    else std::cout << (flag(j, "synced") ? "synced" : "not synced");
    if (!relay && !flag(j, "joining") && !flag(j, "member", true)) std::cout << ", not a member";
    if (!flag(j, "reachable", true)) std::cout << ", no peer reachable";
    if (num(j, "outbox") > 0) std::cout << ", " << num(j, "outbox") << " queued";
    if (j.contains("relays") && j["relays"].is_array())
      for (const auto& rl : j["relays"])
        if (str(rl, "state") != "serving")
          std::cout << ", relay " << short_id(str(rl, "id")) << " " << str(rl, "state");
    if (relay)
      std::cout << ", " << num(j, "bytes") << " B stored, " << num(j, "payloads_dropped")
                << " payloads dropped, " << num(j, "events_refused") << " events refused";
    std::cout << "\n";
  }
  if (r.contains("damaged") && r["damaged"].is_array())
    for (const auto& j : r["damaged"])
      std::cout << "  " << short_id(str(j, "id")) << "  could not be loaded: " << shown(str(j, "reason"))
                << "; `qun group repair " << str(j, "id") << "` fetches it again from its peers\n";
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Usage errors: one line naming the problem, exit 2 (docs/cli.md).

const char* const global_options_help =
    "Global options (before or after the command):\n"
    "  --home DIR    the node home (default $QUN_HOME, $XDG_DATA_HOME/qun, ~/.local/share/qun)\n"
    "  --json        print JSON (one value, or one object per line for streams)\n";

// The command words of argv as far as they name subcommands ("group", "create"), and the first
// word after them that names none where a subcommand was required (an unknown command).
struct CommandPath {
  std::vector<CLI::App*> apps;
  std::string unknown;
};

CommandPath command_path(CLI::App& app, int argc, char** argv) {
  CommandPath p;
  p.apps.push_back(&app);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() > 1 && arg[0] == '-') {
      if (arg.find('=') != std::string::npos) continue;
      for (auto* a : p.apps) {
        const CLI::Option* opt = a->get_option_no_throw(arg);
        if (opt && opt->get_expected_min() > 0 && opt->get_positional() == false) {
          ++i;  // its value
          break;
        }
      }
      continue;
    }
    CLI::App* cur = p.apps.back();
    CLI::App* next = nullptr;
    for (auto* s : cur->get_subcommands({})) if (s->get_name() == arg) next = s;
    if (next) {
      p.apps.push_back(next);
      continue;
    }
    if (cur->get_require_subcommand_min() > 0) p.unknown = arg;
    break;
  }
  return p;
}

std::string command_name(const CommandPath& p) {
  std::string name = "qun";
  for (std::size_t i = 1; i < p.apps.size(); ++i) name += " " + p.apps[i]->get_name();
  return name;
}

std::string usage_line(const CLI::ParseError& e, CLI::App& app, int argc, char** argv) {
  const CommandPath p = command_path(app, argc, argv);
  const std::string name = command_name(p);
  const std::string help = "; see " + name + " --help";
  if (!p.unknown.empty())
    return "unknown command '" + (p.apps.size() > 1 ? name.substr(4) + " " : "") + p.unknown +
           "'" + help;
  if (p.apps.back()->get_require_subcommand_min() > 0)
    return (p.apps.size() == 1 ? std::string("no command given") : "'" + name + "' needs a command") + help;
  // An option no command on the path knows, whatever CLI11 complained about first.
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;
    const std::string opt_name = arg.substr(0, arg.find('='));
    bool known = false;
    for (auto* a : p.apps) known = known || a->get_option_no_throw(opt_name) != nullptr;
    if (opt_name == "-h" || opt_name == "--help") known = true;
    if (!known) {
      const std::string command = p.apps.size() > 1 ? p.apps[1]->get_name() : "";
      return "unknown option '" + arg + "'" +
             (command == "post" || command == "topic"
                  ? "; text that starts with -- goes after --, e.g. " + name + " GROUP -- '" + arg + "'"
                  : std::string()) +
             help;
    }
  }
  std::string what = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    std::string extra = what.substr(what.find(':') + 1);
    while (!extra.empty() && extra.front() == ' ') extra.erase(0, 1);
    return "unexpected argument '" + extra + "' (quote text that holds spaces)" + help;
  }
  // CLI11 starts its messages with a capital ("Could not convert: ..."); a one-line error here
  // reads on after "qun: ". Argument names (GROUP) stay as they are.
  if (what.size() > 1 && std::islower(static_cast<unsigned char>(what[1])))
    what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
  return what + help;
}

// `qun post GROUP -text` and `qun topic GROUP -text`: CLI11 takes an argument that starts with
// '-' for an option. One that starts with a single '-' and names no option of the command is
// text: it moves after a "--" at the end, where CLI11 takes it as the positional it was (TEXT
// comes last, so the order of positionals is kept). Text starting with "--" still needs "--".
std::vector<std::string> dash_text_after_separator(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  const CommandPath p = command_path(app, argc, argv);
  const std::string command = p.apps.size() == 2 ? p.apps[1]->get_name() : "";
  if (command != "post" && command != "topic" && command != "join") return args;
  if (std::find(args.begin() + 1, args.end(), "--") != args.end()) return args;
  // An option of the command path, named exactly (with its value after '=' or in the next
  // argument), or null.
  auto option_named = [&](const std::string& arg) -> const CLI::Option* {
    if (arg.size() < 2 || arg[0] != '-') return nullptr;
    const std::string name = arg.substr(0, arg.find('='));
    for (auto* a : p.apps)
      if (const CLI::Option* o = a->get_option_no_throw(name)) return o;
    return nullptr;
  };
  if (command == "join") {
    // A code's pieces are base64url, where '-' is a digit: a piece may start with "-h" or "-x".
    // Every argument after `join` that names no option exactly is a piece; they go after "--",
    // in their order, so that CLI11 reads none of them as an option.
    std::vector<std::string> kept{args[0]}, pieces;
    bool at_command = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
      const std::string& arg = args[i];
      const CLI::Option* o = option_named(arg);
      if (o) {
        kept.push_back(arg);
        if (arg.find('=') == std::string::npos && o->get_expected_min() > 0 && i + 1 < args.size())
          kept.push_back(args[++i]);
      } else if (!at_command) {
        kept.push_back(arg);
        at_command = arg == "join";
      } else {
        pieces.push_back(arg);
      }
    }
    kept.push_back("--");
    kept.insert(kept.end(), pieces.begin(), pieces.end());
    return kept;
  }
  std::vector<std::string> kept{args[0]}, moved;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool single_dash = arg.size() > 1 && arg[0] == '-' && arg[1] != '-';
    const CLI::Option* opt = nullptr;
    for (auto* a : p.apps)
      if (!opt && single_dash) opt = a->get_option_no_throw(arg.substr(0, 2));
    if (single_dash && opt == nullptr) {
      moved.push_back(arg);
      continue;
    }
    kept.push_back(arg);
    // An option's value stays with it.
    for (auto* a : p.apps) {
      const CLI::Option* o = a->get_option_no_throw(arg);
      if (o && o->get_expected_min() > 0 && i + 1 < args.size()) {
        kept.push_back(args[++i]);
        break;
      }
    }
  }
  if (moved.empty()) return args;
  kept.push_back("--");
  kept.insert(kept.end(), moved.begin(), moved.end());
  return kept;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "qun: peer-to-peer group chat. Run `qun node` in one terminal, then the other commands."};
  app.require_subcommand(1);
  Args a;
  app.add_option("--home", a.g.home_flag,
                 "node home (default $QUN_HOME, $XDG_DATA_HOME/qun, ~/.local/share/qun)");
  app.add_flag("--json", a.g.json, "print JSON (one value, or one object per line for streams)");
  app.set_version_flag("--version", std::string("qun ") + QUN_VERSION,
                       "print the version (the Debian package's, debian/changelog) and exit");
  app.fallthrough();

  // The table: each subcommand with its handler.
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
  auto sub = [&](CLI::App* parent, const std::string& name, const std::string& help,
                 std::function<int()> run = nullptr) {
    CLI::App* s = parent->add_subcommand(name, help);
    s->fallthrough();
    s->footer(global_options_help);
    if (run) commands.emplace_back(s, std::move(run));
    return s;
  };
  const char* group_help = "the group: its name, its label, its id or a unique prefix of the id";
  const char* member_help = "the member: an id, a unique prefix of one, or a nick";

  CLI::App* init = sub(&app, "init", "create this home's identity");
  commands.emplace_back(init, [&] { return run_init(a, *init); });
  init->add_option("--name", a.nick, "your nick in groups (default $USER)");
  init->add_flag("--passphrase", a.ask_passphrase, "seal the identity with a passphrase asked on the terminal");
  init->add_option("--passphrase-file", a.passphrase_file, "seal the identity with the passphrase in FILE");

  // Every setting of the node is a flag and a key of the config file (cli/config.h, the table).
  CLI::App* node = sub(&app, "node", "run the node in the foreground");
  commands.emplace_back(node, [&] { return run_node(a, *node); });
  config::add_flags(*node, a.settings);
  node->add_flag("--passphrase", a.ask_passphrase, "ask for the identity's passphrase on the terminal (asked anyway when it is sealed)");
  node->add_option("--passphrase-file", a.passphrase_file, "passphrase of a sealed identity");
  CLI::App* config_command =
      sub(&app, "config",
          "print the node's effective settings and where each comes from (takes qun node's flags)");
  commands.emplace_back(config_command, [&] { return run_config(a, *config_command); });
  config::add_flags(*config_command, a.settings);

  sub(&app, "id", "own id, nick and listen addresses", [&] { return run_id(a); });

  CLI::App* group = sub(&app, "group", "create and list groups");
  group->require_subcommand(1);
  sub(group, "create", "create a group; prints its id", [&] { return run_group_create(a); })
      ->add_option("NAME", a.name, "the group's name, as members see it")->required();
  sub(group, "list", "groups with member and unread counts", [&] { return run_group_list(a); });
  CLI::App* group_rename = sub(group, "rename", "(admins) rename GROUP", [&] { return run_group_rename(a); });
  group_rename->add_option("GROUP", a.group, group_help)->required();
  group_rename->add_option("NAME", a.name, "the new name")->required();
  CLI::App* group_set = sub(group, "set", "(admins) history on|off, or invites members|admins",
                            [&] { return run_group_set(a); });
  group_set->add_option("GROUP", a.group, group_help)->required();
  group_set->add_option("SETTING", a.setting, "history or invites")->required();
  group_set->add_option("VALUE", a.value, "on|off (history), members|admins (invites)")->required();
  sub(group, "repair", "rebuild a group that did not load (see `qun status`) and fetch it again from its peers",
      [&] { return run_group_repair(a); })
      ->add_option("GROUP", a.group, "the damaged group's id or id prefix")->required();

  CLI::App* invite = sub(&app, "invite", "print an invite code for GROUP; or list and revoke invites",
                         [&] { return run_invite(a); });
  // Not ->required(): `qun invite list GROUP` has no GROUP of `invite` itself (run_invite checks).
  invite->add_option("GROUP", a.group, group_help);
  invite->add_option("--uses", a.uses, "how many people may join with it")->capture_default_str();
  invite->add_option("--expires", a.expires, "valid for DURATION (90s, 30m, 12h, 7d); default: no expiry");
  sub(invite, "list", "GROUP's invites: creator, uses left, expiry", [&] { return run_invite_list(a); })
      ->add_option("GROUP", a.group, group_help)->required();
  CLI::App* invite_revoke =
      sub(invite, "revoke", "close INVITE so nobody else joins with it (its creator or an admin)",
          [&] { return run_invite_revoke(a); });
  invite_revoke->add_option("GROUP", a.group, group_help)->required();
  invite_revoke->add_option("INVITE", a.invite_id, "the invite: its id or a unique prefix, as `qun invite list` shows it")->required();

  sub(&app, "join", "join a group with an invite code; prints the group id", [&] { return run_join(a); })
      ->add_option("CODE", a.code_parts,
                   "the invite code (qun2...); spaces and line breaks inside it are ignored, so a "
                   "code pasted in pieces may be given as several arguments")
      ->required();

  CLI::App* post = sub(&app, "post", "post TEXT to GROUP (TEXT - reads stdin)", [&] { return run_post(a); });
  post->add_option("GROUP", a.group, group_help)->required();
  post->add_option("TEXT", a.text, "the message; - reads it from stdin; text starting with -- goes after --")->required();
  post->add_option("--reply", a.reply, "answer the message ID (an id or unique prefix, from `qun log --json`)");
  post->add_option("--channel", a.channel, "post in channel NAME (default #general)");
  post->add_flag("--me", a.action, "an action, shown as \"* nick TEXT\"");

  CLI::App* sendc = sub(&app, "send", "share the file PATH (up to 100 MiB) in GROUP; prints the post's id",
                        [&] { return run_send(a); });
  sendc->add_option("GROUP", a.group, group_help)->required();
  sendc->add_option("PATH", a.path, "the file")->required();
  sendc->add_option("--text", a.text, "a caption");
  sendc->add_option("--reply", a.reply, "answer the message ID (an id or unique prefix)");
  sendc->add_option("--channel", a.channel, "post in channel NAME (default #general)");
  CLI::App* fetchc = sub(&app, "fetch", "download the file message ID shares; prints where it was saved",
                         [&] { return run_fetch(a); });
  fetchc->add_option("GROUP", a.group, group_help)->required();
  fetchc->add_option("ID", a.event, "the file's message: its id or a unique prefix")->required();
  fetchc->add_option("-o,--output", a.output, "save it as PATH (default: its name in the current directory)");

  CLI::App* react = sub(&app, "react", "react to a message with an emoji (--undo takes it back)",
                        [&] { return run_message_act(a, "react"); });
  react->add_option("GROUP", a.group, group_help)->required();
  react->add_option("ID", a.event, "the message: its id or a unique prefix")->required();
  react->add_option("EMOJI", a.emoji, "one emoji")->required();
  react->add_flag("--undo", a.undo, "take your reaction back");
  CLI::App* edit = sub(&app, "edit", "replace the text of your own message (every version is kept)",
                       [&] { return run_message_act(a, "edit"); });
  edit->add_option("GROUP", a.group, group_help)->required();
  edit->add_option("ID", a.event, "the message: its id or a unique prefix")->required();
  edit->add_option("TEXT", a.text, "the new text")->required();
  CLI::App* del = sub(&app, "delete", "delete your own message (moderators: anyone's)",
                      [&] { return run_message_act(a, "delete"); });
  del->add_option("GROUP", a.group, group_help)->required();
  del->add_option("ID", a.event, "the message: its id or a unique prefix")->required();

  CLI::App* channel = sub(&app, "channel", "channels of a group (admins create, rename, archive)");
  channel->require_subcommand(1);
  for (const std::string op : {"create", "rename", "archive"}) {
    CLI::App* c = sub(channel, op, op + " a channel of GROUP (admins)", [&a, op] { return run_channel(a, op); });
    c->add_option("GROUP", a.group, group_help)->required();
    c->add_option("NAME", a.name, "the channel's name")->required();
    if (op == "rename") c->add_option("NEW", a.new_name, "its new name")->required();
  }
  sub(channel, "list", "GROUP's channels", [&] { return run_channel(a, "list"); })
      ->add_option("GROUP", a.group, group_help)->required();

  CLI::App* mute = sub(&app, "mute", "(moderators) refuse MEMBER's posts for a while",
                       [&] { return run_member_change(a, "mute"); });
  mute->add_option("GROUP", a.group, group_help)->required();
  mute->add_option("MEMBER", a.member, member_help)->required();
  mute->add_option("--for", a.mute_for, "for DURATION (90s, 30m, 12h, 7d); default: until unmuted");
  for (const auto& [op, help] : std::vector<std::pair<std::string, std::string>>{
           {"unmute", "(moderators) end MEMBER's mute"},
           {"ban", "(admins) remove MEMBER and refuse its joins until unbanned"},
           {"unban", "(admins) let MEMBER join again"},
           {"demote", "(admins) one role down: admin to moderator, moderator to member"}}) {
    CLI::App* c = sub(&app, op, help, [&a, op = op] { return run_member_change(a, op); });
    c->add_option("GROUP", a.group, group_help)->required();
    c->add_option("MEMBER", a.member, member_help)->required();
  }
  sub(&app, "nick", "your nick in every group", [&] { return run_nick(a); })
      ->add_option("NEW", a.nick, "the new nick")->required();

  CLI::App* logc = sub(&app, "log", "GROUP's history in order", [&] { return run_log(a); });
  logc->add_option("GROUP", a.group, group_help)->required();
  logc->add_option("--limit", a.limit, "only the last N entries");
  logc->add_flag("--follow,-f", a.follow, "keep printing new entries (across restarts of the node)");
  logc->add_flag("--all", a.all, "also show invite and key-rotation entries");
  logc->add_option("--channel", a.channel, "only the posts of channel NAME");

  sub(&app, "members", "GROUP's members with roles and nicks", [&] { return run_members(a); })
      ->add_option("GROUP", a.group, group_help)->required();
  CLI::App* kick = sub(&app, "kick", "remove MEMBER from GROUP (admins)",
                       [&] { return run_member_change(a, "kick"); });
  kick->add_option("GROUP", a.group, group_help)->required();
  kick->add_option("MEMBER", a.member, member_help)->required();
  CLI::App* promote = sub(&app, "promote", "make MEMBER an admin (or --to moderator) of GROUP (admins)",
                          [&] { return run_member_change(a, "promote"); });
  promote->add_option("GROUP", a.group, group_help)->required();
  promote->add_option("MEMBER", a.member, member_help)->required();
  promote->add_option("--to", a.to, "moderator or admin")->capture_default_str();
  sub(&app, "leave", "leave GROUP", [&] { return run_leave(a); })
      ->add_option("GROUP", a.group, group_help)->required();
  CLI::App* topic = sub(&app, "topic", "set GROUP's topic (\"\" clears it)", [&] { return run_topic(a); });
  topic->add_option("GROUP", a.group, group_help)->required();
  topic->add_option("TEXT", a.text, "the topic, one line")->required();
  const char* anyone_help = "the member: a nick or id from any of your groups, or a full node id";
  sub(&app, "hide", "hide MEMBER's messages from your own log and chat (nobody is told)",
      [&] { return run_hide(a, "hide"); })
      ->add_option("MEMBER", a.member, anyone_help)->required();
  sub(&app, "unhide", "show a hidden MEMBER's messages again", [&] { return run_hide(a, "unhide"); })
      ->add_option("MEMBER", a.member, "the hidden member: a nick or id, as `qun hidden` lists it")
      ->required();
  sub(&app, "hidden", "the members you hide", [&] { return run_hidden(a); });
  CLI::App* dm = sub(&app, "dm", "direct message MEMBER (of any group you share); TEXT - reads stdin",
                     [&] { return run_dm(a); });
  // Not ->required(): `qun dm list` has no MEMBER of `dm` itself (run_dm checks).
  dm->add_option("MEMBER", a.member, anyone_help);
  dm->add_option("TEXT", a.text, "the message (leave it out to only open the conversation)");
  sub(dm, "list", "your direct conversations with unread counts", [&] { return run_dm_list(a); });
  sub(dm, "block", "refuse MEMBER's direct messages and remove your conversation with it",
      [&] { return run_dm_block(a, "dm.block"); })
      ->add_option("MEMBER", a.member, anyone_help)->required();
  sub(dm, "unblock", "accept MEMBER's direct messages again", [&] { return run_dm_block(a, "dm.unblock"); })
      ->add_option("MEMBER", a.member, "the blocked member: a nick or id, as `qun dm blocked` lists it")
      ->required();
  sub(dm, "blocked", "the members you block", [&] { return run_dm_blocked(a); });
  CLI::App* searchc = sub(&app, "search", "find messages containing QUERY (any substring, any script), newest first",
                          [&] { return run_search(a); });
  searchc->add_option("GROUP", a.group, "the group to search (leave it out to search every group)")
      ->required();
  searchc->add_option("QUERY", a.text, "the words to find, all of them, in one argument (quote it)");
  searchc->add_option("--channel", a.channel, "only channel NAME of GROUP");
  searchc->add_option("--limit", a.limit, "at most N results (default 20, at most 500)");
  sub(&app, "modlog", "GROUP's moderation log: who redacted, muted, banned, removed or changed what",
      [&] { return run_modlog(a); })
      ->add_option("GROUP", a.group, group_help)->required();

  CLI::App* relay = sub(&app, "relay", "relays of a group");
  relay->require_subcommand(1);
  CLI::App* relay_add = sub(relay, "add", "(admin) let the relay at HOST:PORT serve GROUP",
                            [&] { return run_relay_add(a); });
  relay_add->add_option("GROUP", a.group, group_help)->required();
  relay_add->add_option("ADDRESS", a.address, "the relay's HOST:PORT")->required();
  sub(relay, "drop", "(on a relay) stop serving GROUP and delete its data", [&] { return run_relay_drop(a); })
      ->add_option("GROUP", a.group, group_help)->required();
  sub(relay, "list", "the relays GROUP names", [&] { return run_relay_list(a); })
      ->add_option("GROUP", a.group, group_help)->required();
  sub(relay, "requests", "(on a relay) serve requests waiting for your approval",
      [&] { return run_relay_requests(a); });
  sub(relay, "approve", "(on a relay) serve a waiting GROUP now, or allow an admin KEY",
      [&] { return run_relay_approve(a); })
      ->add_option("GROUP|KEY", a.member, "a group or requester from `qun relay requests` (or any node id)")
      ->required();
  CLI::App* relay_remove = sub(relay, "remove", "(admin) stop naming RELAY as a relay of GROUP",
                               [&] { return run_relay_remove(a); });
  relay_remove->add_option("GROUP", a.group, group_help)->required();
  relay_remove->add_option("RELAY", a.relay, "the relay's id, a unique id prefix, or its address")
      ->required();

  sub(&app, "peers", "links: peer, nick, address, state, bytes", [&] { return run_peers(a); });
  sub(&app, "status", "node health and sync state per group", [&] { return run_status(a); });
  sub(&app, "chat", "full-screen chat (line mode without a terminal)", [&] { return run_chat_command(a); })
      ->add_option("GROUP", a.group, "the group to open (required in line mode)");
  sub(&app, "irc", "serve the node to IRC clients (irssi, weechat) on this machine",
      [&] { return run_irc_command(a); })
      ->add_option("--listen", a.irc_listen, "HOST:PORT to listen on (default 127.0.0.1:6667)");
  // Hidden: how `qun node` (irc.enabled) starts it.
  app.get_subcommand("irc")->add_flag("--beside-node", a.irc_beside_node)->group("");

  try {
    std::vector<std::string> args = dash_text_after_separator(app, argc, argv);
    std::reverse(args.begin(), args.end());
    args.pop_back();  // the program name; CLI11 takes the rest in reverse
    app.parse(args);
  } catch (const CLI::Success& e) {  // --help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    usage(usage_line(e, app, argc, argv));
  }

  // The deepest parsed subcommand runs (`invite list` rather than `invite`).
  std::function<int()>* chosen = nullptr;
  for (auto& [command, run] : commands)
    if (command->parsed()) chosen = &run;
  if (chosen == nullptr) usage("no command given; see qun --help");
  return (*chosen)();
}
