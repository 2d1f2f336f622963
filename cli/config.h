// The configuration of `qun node`: one table of settings (cli/config.cpp, `settings_table`),
// each with its TOML key, its type and bounds, its default and the `qun node` flag that sets it.
//
// Where a setting comes from, lowest precedence first (docs/cli.md, "Configuration"):
//   1. its default;
//   2. the user's file, $XDG_CONFIG_HOME/qun/config.toml (default ~/.config/qun/config.toml);
//   3. the node home's file, HOME/config.toml (a relay's settings live with its home, which is
//      what a service manager hands the relay; a home is the more specific of the two);
//   4. the flag on the command line.
// A later source replaces the whole value of a key it sets (a list is replaced, not extended).
// Both files are optional. `qun config` prints the effective settings and where each came from.
//
// Errors are one line naming the file, the line and the key: a file that does not parse, an
// unknown key (a typo would otherwise be ignored silently), a value of the wrong type or out of
// its bounds. Nothing here touches the network; loading reads at most two small files.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace CLI {
class App;
}

namespace qun {
struct DaemonOptions;
}

namespace qun::config {

using Json = nlohmann::json;

// A config file larger than this is refused: a node's settings take a few hundred bytes, and an
// allow-list of a thousand admin keys about 70 KiB; 1 MiB leaves room and bounds what a mistaken
// path (a log file, a disk image) makes the parser read.
inline constexpr std::size_t file_bytes_max = 1024 * 1024;

// A setting's value (null when unset and its default means "derived" or "none": see the
// table's `unset` text) and where it came from: "default", "FILE:LINE" or "flag --NAME".
struct Entry {
  Json value;
  std::string source;
};
using Settings = std::map<std::string, Entry>;  // by TOML key ("listen", "relay.max_groups")

// Every setting at its default.
Settings defaults();

// Merges a config file over `settings`. A missing file is not an error (and changes nothing).
// Errors (Errc::invalid_argument, Errc::io, Errc::too_large) are one line: "FILE:LINE: ...".
[[nodiscard]] Result<void> merge_file(Settings& settings, const std::string& path);
// The same for text already read (tests); `path` only names it in sources and errors.
[[nodiscard]] Result<void> merge_text(Settings& settings, std::string_view text,
                                      const std::string& path);

// The flags of `qun node` that settings have, as CLI11 parsed them. Only the flags given count.
struct Flags {
  std::map<std::string, std::vector<std::string>> values;  // by key: the flag's value(s)
  std::map<std::string, bool> switches;                    // by key: boolean flags
};
// Adds one CLI11 option per setting that has a flag, storing into `flags` (which must outlive
// the parse). Call it for `qun node` and `qun config`, so both read the same flags.
void add_flags(CLI::App& app, Flags& flags);
// Merges the flags that were given. Errors: "--FLAG: ..." (Errc::invalid_argument).
[[nodiscard]] Result<void> merge_flags(Settings& settings, const CLI::App& app, const Flags& flags);

// $XDG_CONFIG_HOME/qun/config.toml, else ~/.config/qun/config.toml. nullopt when neither
// XDG_CONFIG_HOME nor HOME is set.
std::optional<std::string> user_file();
inline std::string home_file(const std::string& home) { return home + "/config.toml"; }

// The whole load in precedence order: defaults, the user's file, the home's file, the flags.
// `files` gets the paths read (whether or not they exist), lowest precedence first.
[[nodiscard]] Result<Settings> load(const std::string& home, const CLI::App* app,
                                    const Flags* flags, std::vector<std::string>* files = nullptr);

// Fills the daemon's options from the settings (home and passphrase are not settings). Fails
// only for a value the table's type checks cannot catch (a log level name).
[[nodiscard]] Result<void> apply(const Settings& settings, DaemonOptions& options);

// The effective settings as TOML a person can read and paste into a config file: each key with
// its value and, in a comment, where it came from. Unset keys are comments saying what happens.
std::string to_text(const Settings& settings);
// {"settings": {KEY: {"value": V, "source": S}}, "files": [{"path": P, "exists": B}]}.
Json to_json(const Settings& settings, const std::vector<std::string>& files);

}  // namespace qun::config
