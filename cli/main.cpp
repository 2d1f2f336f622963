// qun: the command line. `qun node` runs the node (net/daemon.h); every other command except
// `init` talks to the running node through its control socket (cli/control_client.h) and prints
// what it answers, as text for people or, with --json, as JSON for scripts (docs/cli.md).
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <ctime>
#include <iostream>
#include <iterator>
#include <set>

#include "cli/chat.h"
#include "cli/control_client.h"
#include "net/daemon.h"
#include "net/home.h"
#include "net/log_stderr.h"

using namespace qun;
using Json = control::Json;

namespace {

// How long a command waits for the node's answer. Joining waits for the group's nodes.
constexpr int request_timeout_ms = 30'000;
constexpr int join_timeout_ms = 60'000;
// `qun log` without --limit pages through the whole history this many at a time.
constexpr std::size_t log_page = 500;

struct Options {
  std::string home_flag;
  bool json = false;
  std::string home() const {
    return home::resolve(home_flag.empty() ? std::nullopt : std::optional<std::string>(home_flag));
  }
};

[[noreturn]] void die(const std::string& message) {
  std::cerr << "qun: " << message << "\n";
  std::exit(1);
}

ControlClient connect(const Options& o) {
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

Json call(const Options& o, const std::string& op, Json args = Json::object(),
          int timeout_ms = request_timeout_ms) {
  ControlClient c = connect(o);
  return call(c, op, std::move(args), timeout_ms);
}

std::string str(const Json& j, const char* key, const std::string& fallback = "") {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : fallback;
}

std::string short_id(const std::string& hex) { return hex.substr(0, 8); }

std::string local_time(std::uint64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string who(const Json& m, const char* id_key, const char* nick_key) {
  std::string nick = str(m, nick_key);
  return nick.empty() ? short_id(str(m, id_key)) : nick;
}

// One history entry as a line for people: posts as "time nick: text", the rest as "time * ...".
std::string format_message(const Json& m) {
  const std::string kind = str(m, "kind");
  const std::string time = local_time(m.value("time", std::uint64_t{0}));
  const std::string author = who(m, "author", "nick");
  const std::string text = m.contains("text") && m["text"].is_string() ? m["text"].get<std::string>()
                                                                       : "(unreadable)";
  const std::string target = m.contains("target") ? who(m, "target", "target_nick") : "";
  std::string line;
  if (kind == "post") return time + "  " + author + ": " + text;
  if (kind == "create") line = author + " created the group";
  else if (kind == "join") line = author + " joined";
  else if (kind == "add") line = author + " added " + target;
  else if (kind == "remove") line = author + " removed " + target;
  else if (kind == "leave") line = author + " left";
  else if (kind == "set-role") line = author + " made " + target + " " + str(m, "role");
  else if (kind == "set-name") line = author + " renamed the group to " + text;
  else if (kind == "set-topic") line = author + " set the topic: " + text;
  else if (kind == "rekey") line = author + " rotated the group key";
  else if (kind == "invite") line = author + " created an invite";
  else if (kind == "relay") line = author + " named relay " + target + " at " + text;
  else line = author + " " + kind;
  return time + "  * " + line;
}

std::uint64_t parse_duration_ms(const std::string& text) {
  if (text.empty()) die("empty duration; use e.g. 30m, 12h or 7d");
  std::size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(text, &used);
  } catch (const std::exception&) {
    die("bad duration '" + text + "'; use e.g. 30m, 12h or 7d");
  }
  const std::string unit = text.substr(used);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else if (unit == "d") scale = 86'400'000;
  else die("bad duration unit in '" + text + "'; use s, m, h or d");
  return n * scale;
}

void print_json(const Json& j) { std::cout << j.dump() << "\n"; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qun: peer-to-peer group chat. Run `qun node` in one terminal, then the other commands."};
  app.require_subcommand(1);
  Options o;
  app.add_option("--home", o.home_flag, "node home (default $QUN_HOME, $XDG_DATA_HOME/qun, ~/.local/share/qun)");
  app.add_flag("--json", o.json, "print JSON (one value, or one object per line for streams)");
  app.fallthrough();
  auto sub = [&](CLI::App* parent, const std::string& name, const std::string& help) {
    CLI::App* s = parent->add_subcommand(name, help);
    s->fallthrough();
    return s;
  };

  // init
  std::string nick, passphrase_file;
  CLI::App* init = sub(&app, "init", "create this home's identity");
  init->add_option("--name", nick, "your nick in groups");
  init->add_option("--passphrase-file", passphrase_file, "seal the identity with the passphrase in FILE");

  // node
  DaemonOptions d;
  std::string log_level = "info";
  CLI::App* node = sub(&app, "node", "run the node in the foreground");
  node->add_option("--listen", d.listen, "HOST:PORT to listen on (repeatable; default 0.0.0.0:7420)");
  node->add_option("--peer", d.peers, "HOST:PORT of a node to start from (repeatable)");
  node->add_option("--advertise", d.advertise, "HOST:PORT others should dial (default: derived)");
  node->add_flag("--relay", d.relay, "run as a relay: serve groups without reading them");
  node->add_option("--max-groups", d.max_groups, "relay: most groups served")->capture_default_str();
  node->add_option("--max-group-bytes", d.max_group_bytes, "relay: most bytes stored per group")->capture_default_str();
  node->add_option("--passphrase-file", passphrase_file, "passphrase of a sealed identity");
  node->add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();
  std::size_t map_mib = d.map_bytes >> 20;
  node->add_option("--map-mib", map_mib, "most the store may hold, in MiB (raise it when posts fail with \"database full\")")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 26));

  CLI::App* id = sub(&app, "id", "own id, nick and listen addresses");

  CLI::App* group = sub(&app, "group", "create and list groups");
  group->require_subcommand(1);
  std::string name;
  CLI::App* group_create = sub(group, "create", "create a group; prints its id");
  group_create->add_option("NAME", name)->required();
  CLI::App* group_list = sub(group, "list", "groups with member and unread counts");

  std::string g, text, member, code, address;
  CLI::App* group_repair = sub(group, "repair", "rebuild a group that did not load (see `qun status`) and fetch it again from its peers");
  group_repair->add_option("GROUP", g)->required();
  std::uint64_t uses = 1;
  std::string expires;
  CLI::App* invite = sub(&app, "invite", "print an invite code for GROUP");
  invite->add_option("GROUP", g)->required();
  invite->add_option("--uses", uses, "how many people may join with it")->capture_default_str();
  invite->add_option("--expires", expires, "valid for DURATION (30m, 12h, 7d); default: no expiry");

  CLI::App* join = sub(&app, "join", "join a group with an invite code; prints the group id");
  join->add_option("CODE", code)->required();

  CLI::App* post = sub(&app, "post", "post TEXT to GROUP (TEXT - reads stdin)");
  post->add_option("GROUP", g)->required();
  post->add_option("TEXT", text)->required();

  std::size_t limit = 0;
  bool follow = false;
  CLI::App* logc = sub(&app, "log", "GROUP's history in order");
  logc->add_option("GROUP", g)->required();
  logc->add_option("--limit", limit, "only the last N entries");
  logc->add_flag("--follow,-f", follow, "keep printing new entries");

  CLI::App* members = sub(&app, "members", "GROUP's members with roles and nicks");
  members->add_option("GROUP", g)->required();
  CLI::App* kick = sub(&app, "kick", "remove MEMBER from GROUP (admins)");
  kick->add_option("GROUP", g)->required();
  kick->add_option("MEMBER", member)->required();
  CLI::App* promote = sub(&app, "promote", "make MEMBER an admin of GROUP (admins)");
  promote->add_option("GROUP", g)->required();
  promote->add_option("MEMBER", member)->required();
  CLI::App* leave = sub(&app, "leave", "leave GROUP");
  leave->add_option("GROUP", g)->required();
  CLI::App* topic = sub(&app, "topic", "set GROUP's topic");
  topic->add_option("GROUP", g)->required();
  topic->add_option("TEXT", text)->required();

  CLI::App* relay = sub(&app, "relay", "relays of a group");
  relay->require_subcommand(1);
  CLI::App* relay_add = sub(relay, "add", "(admin) let the relay at HOST:PORT serve GROUP");
  relay_add->add_option("GROUP", g)->required();
  relay_add->add_option("ADDRESS", address)->required();
  CLI::App* relay_drop = sub(relay, "drop", "(on a relay) stop serving GROUP and delete its data");
  relay_drop->add_option("GROUP", g)->required();
  CLI::App* relay_list = sub(relay, "list", "the relays GROUP names");
  relay_list->add_option("GROUP", g)->required();

  CLI::App* peers = sub(&app, "peers", "links, addresses, state, bytes");
  CLI::App* status = sub(&app, "status", "node health and sync state per group");

  CLI::App* chat = sub(&app, "chat", "full-screen chat (line mode without a terminal)");
  chat->add_option("GROUP", g, "group to open");

  CLI11_PARSE(app, argc, argv);

  if (init->parsed()) {
    std::optional<std::string> pass;
    if (!passphrase_file.empty()) {
      auto p = home::read_passphrase_file(passphrase_file);
      if (!p.ok()) die(p.error().context());
      pass = p.value();
    }
    if (nick.empty()) {
      const char* user = std::getenv("USER");
      nick = user && *user ? user : "anon";
    }
    auto r = home::init(o.home(), nick, pass);
    if (!r.ok()) die(r.error().context());
    if (o.json) print_json(Json{{"id", r.value()}, {"nick", nick}, {"home", o.home()}});
    else std::cout << r.value() << "\n";
    std::cerr << "qun: identity created in " << o.home() << "; start the node with `qun node"
              << (o.home_flag.empty() ? "" : " --home " + o.home()) << "`\n";
    return 0;
  }

  if (node->parsed()) {
    d.home = o.home();
    d.map_bytes = map_mib << 20;
    auto level = parse_log_level(log_level);
    if (!level) die("bad --log-level '" + log_level + "'; use debug, info, warn or error");
    d.log_level = *level;
    if (!passphrase_file.empty()) {
      auto p = home::read_passphrase_file(passphrase_file);
      if (!p.ok()) die(p.error().context());
      d.passphrase = p.value();
    }
    return run_daemon(d);
  }

  if (chat->parsed()) {
    ChatOptions c;
    c.socket_path = home::socket_path(o.home());
    if (!g.empty()) c.group = g;
    c.json = o.json;
    return run_chat(c);
  }

  if (id->parsed()) {
    Json r = call(o, "id");
    if (o.json) return print_json(r), 0;
    std::cout << "id      " << str(r, "id") << "\nnick    " << str(r, "nick", "-") << "\n";
    for (const auto& a : r["listen"]) std::cout << "listen  " << a.get<std::string>() << "\n";
    std::cout << "reach   " << str(r, "advertised") << (r.value("relay", false) ? "  (relay)" : "") << "\n";
    return 0;
  }
  if (group_create->parsed()) {
    Json r = call(o, "group.create", Json{{"name", name}});
    std::cout << str(r, "id") << "\n";
    return 0;
  }
  if (group_list->parsed()) {
    Json r = call(o, "group.list");
    if (o.json) return print_json(r), 0;
    if (r.empty()) std::cout << "no groups yet: `qun group create NAME` or `qun join CODE`\n";
    for (const auto& j : r) {
      std::cout << short_id(str(j, "id")) << "  " << str(j, "name", "(unnamed)") << "  "
                << j.value("members", 0) << " members";
      if (j.value("unread", 0) > 0) std::cout << "  " << j.value("unread", 0) << " unread";
      if (j.value("mentions", 0) > 0) std::cout << "  " << j.value("mentions", 0) << " mentions";
      if (j.value("joining", false)) std::cout << "  (joining)";
      else if (!j.value("member", true)) std::cout << "  (not a member)";
      std::cout << "\n";
    }
    return 0;
  }
  if (group_repair->parsed()) {
    Json r = call(o, "group.repair", Json{{"group", g}});
    if (o.json) return print_json(r), 0;
    std::cout << "group " << short_id(str(r, "id")) << ": kept " << r.value("events_kept", 0)
              << " events (" << r.value("events_unread", 0) << " did not read), fetching the rest from "
              << r.value("peers", 0) << " peers; `qun status` shows when it is synced\n";
    return 0;
  }
  if (invite->parsed()) {
    Json args{{"group", g}, {"uses", uses}};
    if (!expires.empty()) args["expires_ms"] = parse_duration_ms(expires);
    Json r = call(o, "invite", args);
    std::cout << str(r, "code") << "\n";
    return 0;
  }
  if (join->parsed()) {
    Json r = call(o, "join", Json{{"code", code}}, join_timeout_ms);
    std::cout << str(r, "group") << "\n";
    return 0;
  }
  if (post->parsed()) {
    if (text == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    }
    Json r = call(o, "post", Json{{"group", g}, {"text", text}});
    if (o.json) print_json(r);
    return 0;
  }
  if (logc->parsed()) {
    ControlClient c = connect(o);
    if (follow) call(c, "subscribe", Json{{"group", g}});
    // Pages from the newest backwards until `limit` entries or the start of the history.
    std::vector<Json> entries;
    std::string before;
    for (;;) {
      std::size_t want = limit == 0 ? log_page : std::min(log_page, limit - entries.size());
      Json args{{"group", g}, {"limit", want}};
      if (!before.empty()) args["before"] = before;
      Json page = call(c, "log", args);
      entries.insert(entries.begin(), page.begin(), page.end());
      if (page.size() < want || (limit != 0 && entries.size() >= limit) || page.empty()) break;
      before = str(page.front(), "id");
    }
    std::set<std::string> seen;
    auto show = [&](const Json& m) {
      if (!seen.insert(str(m, "id")).second) return;
      if (o.json) print_json(m);
      else std::cout << format_message(m) << "\n";
      std::cout.flush();
    };
    for (const auto& m : entries) show(m);
    call(c, "read", Json{{"group", g}});
    if (!follow) return 0;
    for (;;) {
      auto m = c.next(-1);
      if (!m.ok()) die(m.error().context());
      if (!m.value()) continue;
      const Json& v = *m.value();
      if (str(v, "stream") == "message") show(v["message"]);
    }
  }
  if (members->parsed()) {
    Json r = call(o, "members", Json{{"group", g}});
    if (o.json) return print_json(r), 0;
    for (const auto& m : r)
      std::cout << short_id(str(m, "id")) << "  " << str(m, "nick", "-") << "  " << str(m, "role")
                << (m.value("self", false) ? "  (you)" : "") << "\n";
    return 0;
  }
  if (kick->parsed() || promote->parsed()) {
    Json r = call(o, kick->parsed() ? "kick" : "promote", Json{{"group", g}, {"member", member}});
    if (o.json) print_json(r);
    return 0;
  }
  if (leave->parsed()) {
    Json r = call(o, "leave", Json{{"group", g}});
    if (o.json) print_json(r);
    return 0;
  }
  if (topic->parsed()) {
    Json r = call(o, "topic", Json{{"group", g}, {"text", text}});
    if (o.json) print_json(r);
    return 0;
  }
  if (relay_add->parsed()) {
    Json r = call(o, "relay.add", Json{{"group", g}, {"address", address}}, join_timeout_ms);
    if (o.json) print_json(r);
    else std::cout << str(r, "relay") << "\n";
    return 0;
  }
  if (relay_drop->parsed()) {
    Json r = call(o, "relay.drop", Json{{"group", g}});
    if (o.json) print_json(r);
    return 0;
  }
  if (relay_list->parsed()) {
    Json r = call(o, "relays", Json{{"group", g}});
    if (o.json) return print_json(r), 0;
    for (const auto& j : r) std::cout << short_id(str(j, "id")) << "  " << str(j, "address") << "\n";
    return 0;
  }
  if (peers->parsed()) {
    Json r = call(o, "peers");
    if (o.json) return print_json(r), 0;
    for (const auto& p : r)
      std::cout << (p["id"].is_string() ? short_id(str(p, "id")) : std::string("?       ")) << "  "
                << str(p, "address", "-") << "  " << str(p, "state") << "  " << str(p, "direction")
                << "  sent " << p.value("bytes_sent", 0) << " B, received "
                << p.value("bytes_received", 0) << " B\n";
    return 0;
  }
  if (status->parsed()) {
    Json r = call(o, "status");
    if (o.json) return print_json(r), 0;
    std::cout << (r.value("relay", false) ? "relay " : "node ") << short_id(str(r, "id")) << ", up "
              << r.value("uptime_ms", 0) / 1000 << " s, " << r.value("peers", 0) << " peers, store "
              << r.value("store_bytes", 0) << " B\n";
    for (const auto& j : r["groups"]) {
      std::cout << "  " << short_id(str(j, "id")) << "  " << str(j, "name", "(unnamed)") << "  "
                << j.value("events", 0) << " events, " << j.value("pending", 0) << " pending, "
                << j.value("active_peers", 0) << " active peers, ";
      if (j.value("joining", false)) std::cout << "joining";
      else std::cout << (j.value("synced", false) ? "synced" : "not synced");
      if (r.value("relay", false))
        std::cout << ", " << j.value("bytes", 0) << " B stored, " << j.value("events_refused", 0)
                  << " events refused";
      std::cout << "\n";
    }
    for (const auto& j : r["damaged"])
      std::cout << "  " << short_id(str(j, "id")) << "  could not be loaded: " << str(j, "reason")
                << "; `qun group repair " << str(j, "id") << "` fetches it again from its peers\n";
    return 0;
  }
  return 0;
}
