#include "cli/config.h"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "net/daemon.h"
#include "net/log_stderr.h"
#include "net/notify.h"

namespace qun::config {
namespace {

enum class Type { string, list, boolean, integer };

// One setting: its TOML key, type, default, flag and what it does. Integers carry their bounds.
struct Spec {
  const char* key;
  Type type;
  Json fallback;       // the default; null: unset (see `unset`)
  const char* flag;    // nullptr: no flag of `qun node`
  const char* help;
  std::uint64_t min = 0, max = 0;  // integers
  const char* unset = "";          // what an unset (null) value means, for `qun config`
};

// Bounds of the integer settings. Each is far past any real use and far from overflowing what
// it feeds: a relay serving more than a million groups, a group past a PiB, or a map past 64 TiB
// of address space (the --map-mib bound the CLI has always had) is a typo.
constexpr std::uint64_t groups_max = 1'000'000;
constexpr std::uint64_t group_bytes_max = std::uint64_t{1} << 50;
constexpr std::uint64_t map_mib_max = std::uint64_t{1} << 26;
// The floor is twice the catch-up send window (OverlayConfig::send_window_bytes, 2 MiB): a
// queue at or below one window cuts off every honest peer that catches up, as soon as the
// window fills (seen with 1 MiB: a member reconnected and was cut again and again). 4 GiB is
// far past any peer's need (the default is 32 MiB) and keeps sizes in 64 bits.
constexpr std::uint64_t peer_queue_mib_min = 2 * (OverlayConfig{}.send_window_bytes >> 20);
constexpr std::uint64_t peer_queue_mib_max = 4096;
// Relayed links: a relay holds two stream entries and up to two 64 KiB windows per link, so a
// million links would be 128 GiB of buffers: a typo. A link past a TiB is one too.
constexpr std::uint64_t relayed_links_max = 1'000'000;
constexpr std::uint64_t relayed_link_mib_max = std::uint64_t{1} << 20;

const std::vector<Spec>& settings_table() {
  static const std::vector<Spec> table = [] {
    const DaemonOptions d;
    std::vector<Spec> t{
        {"listen", Type::list, Json::array({default_listen_address}), "--listen",
         "HOST:PORT to listen on (repeatable; port 0 picks a free port)"},
        {"advertise", Type::string, nullptr, "--advertise", "HOST:PORT others should dial", 0, 0,
         "derived from the listen address"},
        {"peers", Type::list, Json::array(), "--peer",
         "HOST:PORT of a node to start from (repeatable)"},
        {"log_level", Type::string, "info", "--log-level", "debug, info, warn or error"},
        {"map_mib", Type::integer, d.map_bytes >> 20, "--map-mib",
         "most the store may hold, in MiB (raise it when posts fail with \"database full\")", 1,
         map_mib_max},
        {"peer_queue_mib", Type::integer, d.peer_queue_bytes >> 20, "--peer-queue-mib",
         "MiB queued for one peer that does not read before it is cut off (memory per peer)",
         peer_queue_mib_min, peer_queue_mib_max},
        {"metrics", Type::string, nullptr, "--metrics",
         "HOST:PORT to serve Prometheus metrics on (loopback unless you mean otherwise)", 0, 0,
         "no metrics served"},
        {"relay.enabled", Type::boolean, false, "--relay",
         "run as a relay: serve groups without reading them"},
        {"relay.max_groups", Type::integer, d.max_groups, "--max-groups",
         "relay: most groups served", 1, groups_max},
        {"relay.max_group_bytes", Type::integer, d.max_group_bytes, "--max-group-bytes",
         "relay: most bytes stored per group", 1, group_bytes_max},
        {"relay.allow", Type::list, Json::array(), "--relay-allow",
         "relay: serve groups this admin KEY asks for (repeat; also HOME/relay-allow)"},
        {"relay.open", Type::boolean, false, "--relay-open",
         "relay: serve groups anybody asks for (otherwise others wait for `qun relay approve`)"},
        {"relay.max_groups_per_key", Type::integer, d.max_groups_per_key, "--max-groups-per-key",
         "relay: most groups served for one admin key", 1, groups_max},
        {"relay.max_relayed_links", Type::integer, d.max_relayed_links, "--max-relayed-links",
         "relay: most links between members behind NAT carried at once", 0, relayed_links_max},
        {"relay.max_relayed_link_mib", Type::integer, d.max_relayed_link_bytes >> 20,
         "--max-relayed-link-mib", "relay: most MiB one relayed link carries before it is closed",
         1, relayed_link_mib_max},
        {"notify.command", Type::list, nullptr, nullptr,
         "program and arguments run on a mention while no chat is focused ([] turns it off); "
         "{nick}, {group} and {text} in an argument are replaced, else the three are appended",
         0, 0, "notify-send where a desktop session exists, else none"},
        // `qun chat` fetches a file as it arrives when it is at most this large (issue 15): a
        // photo or a document is there when opened; a film is fetched only when asked for.
        {"chat.auto_fetch_mib", Type::integer, 10, nullptr,
         "files up to this many MiB are fetched as they arrive in `qun chat` (0: never; /open "
         "and /save fetch any)", 0, 100},
        // `qun node` runs the IRC gateway (`qun irc`) beside itself when this is on.
        {"irc.enabled", Type::boolean, false, "--irc",
         "also serve the node to IRC clients, as `qun irc` does (docs/irc.md)"},
        // `qun irc` (the IRC gateway) listens here unless its --listen says otherwise.
        {"irc.listen", Type::string, "127.0.0.1:6667", nullptr,
         "HOST:PORT the IRC gateway listens on (loopback: any local user can connect)"},
    };
    return t;
  }();
  return table;
}

const Spec* find_spec(std::string_view key) {
  for (const auto& s : settings_table())
    if (key == s.key) return &s;
  return nullptr;
}

const char* type_name(const Spec& s) {
  switch (s.type) {
    case Type::string: return "a string";
    case Type::list: return "a list of strings";
    case Type::boolean: return "true or false";
    case Type::integer: return "an integer";
  }
  return "?";
}

std::string expected(const Spec& s) {
  if (s.type == Type::integer)
    return "an integer from " + std::to_string(s.min) + " to " + std::to_string(s.max);
  return type_name(s);
}

const char* toml_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "a list";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

// The one string setting with a fixed set of words.
bool valid_word(const Spec& s, const std::string& text) {
  return std::string_view(s.key) != "log_level" || parse_log_level(text).has_value();
}

// A TOML value as the setting's JSON value, or why not ("expected ..., got ...").
Result<Json> from_toml(const Spec& s, const toml::node& n) {
  auto wrong = [&](const std::string& got) {
    return Error(Errc::invalid_argument, std::string(s.key) + " must be " + expected(s) + ", not " + got);
  };
  switch (s.type) {
    case Type::string:
      if (auto v = n.as_string()) {
        if (!valid_word(s, v->get()))
          return Error(Errc::invalid_argument, std::string(s.key) + " '" + v->get() + "' is not " + s.help);
        return Json(v->get());
      }
      return wrong(toml_type_name(n));
    case Type::boolean:
      if (auto v = n.as_boolean()) return Json(v->get());
      return wrong(toml_type_name(n));
    case Type::integer:
      if (auto v = n.as_integer()) {
        const std::int64_t i = v->get();
        if (i < 0 || static_cast<std::uint64_t>(i) < s.min || static_cast<std::uint64_t>(i) > s.max)
          return wrong(std::to_string(i));
        return Json(static_cast<std::uint64_t>(i));
      }
      return wrong(toml_type_name(n));
    case Type::list: {
      const toml::array* a = n.as_array();
      if (!a) return wrong(toml_type_name(n));
      Json out = Json::array();
      for (const auto& item : *a) {
        if (auto v = item.as_string()) out.push_back(v->get());
        else return wrong(std::string("a list holding ") + toml_type_name(item));
      }
      return out;
    }
  }
  return wrong("?");
}

// A flag's text as the setting's JSON value.
Result<Json> from_flag(const Spec& s, const std::vector<std::string>& given) {
  if (s.type == Type::list) return Json(given);
  const std::string& text = given.back();
  if (s.type == Type::string) {
    if (!valid_word(s, text))
      return Error(Errc::invalid_argument, std::string(s.flag) + " '" + text + "' is not " + s.help);
    return Json(text);
  }
  // Integers: digits only (no sign, no spaces), within bounds.
  const bool digits = !text.empty() && text.size() <= 20 &&
                      text.find_first_not_of("0123456789") == std::string::npos;
  if (digits) {
    errno = 0;
    const unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
    if (errno == 0 && v >= s.min && v <= s.max) return Json(static_cast<std::uint64_t>(v));
  }
  return Error(Errc::invalid_argument, std::string(s.flag) + " must be " + expected(s) + ", not '" + text + "'");
}

std::string at(const std::string& path, const toml::source_region& where) {
  return path + ":" + std::to_string(where.begin.line);
}

// Walks a parsed table: every leaf must be a known key.
Result<void> merge_table(Settings& settings, const toml::table& table, const std::string& prefix,
                         const std::string& path) {
  for (const auto& [name, node] : table) {
    const std::string key = prefix + std::string(name.str());
    if (const Spec* s = find_spec(key)) {
      auto value = from_toml(*s, node);
      if (!value.ok()) return Error(Errc::invalid_argument, at(path, node.source()) + ": " + value.error().context());
      settings[key] = Entry{std::move(value).value(), at(path, node.source())};
      continue;
    }
    if (const toml::table* sub = node.as_table(); sub && prefix.empty()) {
      // A section is known when some key starts with it ("relay." for [relay]).
      bool known = false;
      for (const auto& s : settings_table()) known |= std::string_view(s.key).rfind(key + ".", 0) == 0;
      if (known) {
        QUN_TRY_VOID(merge_table(settings, *sub, key + ".", path));
        continue;
      }
    }
    return Error(Errc::invalid_argument, at(path, node.source()) + ": unknown key '" + key +
                                             "'; `qun config` lists the settings");
  }
  return ok_result();
}

}  // namespace

Settings defaults() {
  Settings out;
  for (const auto& s : settings_table()) out[s.key] = Entry{s.fallback, "default"};
  return out;
}

Result<void> merge_text(Settings& settings, std::string_view text, const std::string& path) {
  toml::table parsed;
  try {
    parsed = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return Error(Errc::invalid_argument, path + ":" + std::to_string(e.source().begin.line) + ": " +
                                             std::string(e.description()) +
                                             " (the file is TOML: key = value, [section])");
  }
  Settings merged = settings;
  QUN_TRY_VOID(merge_table(merged, parsed, "", path));
  settings = std::move(merged);
  return ok_result();
}

Result<void> merge_file(Settings& settings, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return ok_result();
    return Error(Errc::io, path + ": cannot read it (" + std::strerror(errno) + ")");
  }
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > file_bytes_max)
      return Error(Errc::too_large, path + ": larger than " + std::to_string(file_bytes_max >> 20) +
                                        " MiB; is this the config file?");
  }
  return merge_text(settings, text, path);
}

void add_flags(CLI::App& app, Flags& flags) {
  for (const auto& s : settings_table()) {
    if (!s.flag) continue;
    std::string help = s.help;
    if (!s.fallback.is_null() && s.fallback != Json::array() && s.type != Type::boolean)
      help += " (default " + (s.fallback.is_string() ? s.fallback.get<std::string>() : s.fallback.dump()) + ")";
    help += "; config key " + std::string(s.key);
    const std::string key = s.key;
    const char* metavar = s.type == Type::integer ? "N"
                          : key == "relay.allow"  ? "KEY"
                          : key == "log_level"    ? "LEVEL"
                                                  : "HOST:PORT";
    if (s.type == Type::boolean) app.add_flag(s.flag, flags.switches[s.key], help);
    else if (s.type == Type::list) app.add_option(s.flag, flags.values[s.key], help)->type_name(metavar);
    else
      app.add_option(s.flag, flags.values[s.key], help)
          ->type_name(metavar)
          ->expected(1)
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
}

Result<void> merge_flags(Settings& settings, const CLI::App& app, const Flags& flags) {
  for (const auto& s : settings_table()) {
    if (!s.flag || app.count(s.flag) == 0) continue;
    Json value;
    if (s.type == Type::boolean) {
      auto it = flags.switches.find(s.key);
      value = it != flags.switches.end() && it->second;
    } else {
      auto it = flags.values.find(s.key);
      if (it == flags.values.end() || it->second.empty()) continue;
      QUN_TRY(value, from_flag(s, it->second));
    }
    settings[s.key] = Entry{std::move(value), std::string("flag ") + s.flag};
  }
  return ok_result();
}

std::optional<std::string> user_file() {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x == '/')
    return std::string(x) + "/qun/config.toml";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.config/qun/config.toml";
  return std::nullopt;
}

Result<Settings> load(const std::string& home, const CLI::App* app, const Flags* flags,
                      std::vector<std::string>* files) {
  Settings s = defaults();
  std::vector<std::string> paths;
  if (auto u = user_file()) paths.push_back(*u);
  paths.push_back(home_file(home));
  for (const auto& p : paths) QUN_TRY_VOID(merge_file(s, p));
  if (app && flags) QUN_TRY_VOID(merge_flags(s, *app, *flags));
  if (files) *files = paths;
  return s;
}

Result<void> apply(const Settings& s, DaemonOptions& o) {
  auto get = [&](const char* key) -> const Json& { return s.at(key).value; };
  auto strings = [&](const char* key) { return get(key).get<std::vector<std::string>>(); };
  o.listen = strings("listen");
  o.listen_is_default = s.at("listen").source == "default";
  o.peers = strings("peers");
  o.advertise.reset();
  if (get("advertise").is_string()) o.advertise = get("advertise").get<std::string>();
  const std::string level = get("log_level").get<std::string>();
  auto parsed = parse_log_level(level);
  if (!parsed)
    return Error(Errc::invalid_argument, s.at("log_level").source + ": log_level '" + level +
                                             "' is not debug, info, warn or error");
  o.log_level = *parsed;
  o.map_bytes = static_cast<std::size_t>(get("map_mib").get<std::uint64_t>()) << 20;
  o.metrics.reset();
  if (get("metrics").is_string()) o.metrics = get("metrics").get<std::string>();
  o.relay = get("relay.enabled").get<bool>();
  o.max_groups = get("relay.max_groups").get<std::size_t>();
  o.max_group_bytes = get("relay.max_group_bytes").get<std::uint64_t>();
  o.peer_queue_bytes = static_cast<std::size_t>(get("peer_queue_mib").get<std::uint64_t>()) << 20;
  o.relay_allow = strings("relay.allow");
  o.relay_open = get("relay.open").get<bool>();
  o.max_groups_per_key = get("relay.max_groups_per_key").get<std::size_t>();
  o.max_relayed_links = get("relay.max_relayed_links").get<std::size_t>();
  o.max_relayed_link_bytes = get("relay.max_relayed_link_mib").get<std::uint64_t>() << 20;
  o.notify_command = get("notify.command").is_array() ? strings("notify.command")
                                                      : notify::desktop_command();
  return ok_result();
}

std::string to_text(const Settings& settings) {
  std::ostringstream out;
  std::string section;
  // Top-level keys first (TOML puts every key after [relay] into relay), then each section.
  std::vector<const Spec*> order;
  for (const auto& s : settings_table())
    if (std::string_view(s.key).find('.') == std::string_view::npos) order.push_back(&s);
  for (const auto& s : settings_table())
    if (std::string_view(s.key).find('.') != std::string_view::npos) order.push_back(&s);
  for (const Spec* s : order) {
    const std::string key = s->key;
    const auto dot = key.find('.');
    const std::string sec = dot == std::string::npos ? "" : key.substr(0, dot);
    const std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
    if (sec != section) {
      out << "\n[" << sec << "]\n";
      section = sec;
    }
    const Entry& e = settings.at(key);
    // JSON's strings, numbers, booleans and arrays of strings are valid TOML as they are.
    if (e.value.is_null())
      out << "# " << name << " is not set: " << s->unset << "  (" << e.source << ")\n";
    else
      out << name << " = " << e.value.dump(-1, ' ', false, Json::error_handler_t::replace)
          << "  # " << e.source << "\n";
  }
  return out.str();
}

Json to_json(const Settings& settings, const std::vector<std::string>& files) {
  Json j{{"settings", Json::object()}, {"files", Json::array()}};
  for (const auto& [key, e] : settings) j["settings"][key] = Json{{"value", e.value}, {"source", e.source}};
  for (const auto& f : files) {
    std::ifstream in(f);
    j["files"].push_back(Json{{"path", f}, {"exists", static_cast<bool>(in)}});
  }
  return j;
}

}  // namespace qun::config
