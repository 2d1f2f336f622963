// qun-chat(1) (docs/man/qun-chat.1.scd) against the chat itself, so that the man page cannot
// drift from it (issue 16, "Man pages"): every command and key that /help lists (help_lines())
// has an entry in the page, and every command the page documents is one parse_command() knows.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/chat_model.h"

using namespace qun;
using namespace qun::chat;

namespace {

std::string man_source() {
  const std::string path = std::string(QUN_SOURCE_DIR) + "/docs/man/qun-chat.1.scd";
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The lines of the page's section "# NAME" (up to the next "# " heading).
std::vector<std::string> section(const std::string& page, const std::string& name) {
  std::vector<std::string> lines;
  std::istringstream in(page);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# ", 0) == 0) inside = line == "# " + name;
    else if (inside) lines.push_back(line);
  }
  return lines;
}

// The entries of a section: the bold words that start a line at the first column
// ("*Ctrl+N*, *Ctrl+P*" gives both; "*/kick* _NICK_" gives "/kick").
std::set<std::string> entries(const std::vector<std::string>& lines) {
  std::set<std::string> out;
  static const std::regex bold(R"(\*([^*]+)\*)");
  for (const auto& line : lines) {
    if (line.empty() || line[0] != '*') continue;
    for (std::sregex_iterator it(line.begin(), line.end(), bold), end; it != end; ++it)
      out.insert((*it)[1]);
  }
  return out;
}

// The commands /help lists: the first word of each line that starts with '/'.
std::set<std::string> help_commands() {
  std::set<std::string> out;
  for (const auto& line : help_lines())
    if (!line.empty() && line[0] == '/') out.insert(line.substr(0, line.find(' ')));
  return out;
}

// The keys /help names, from "keys: Alt+1..9 or Ctrl+N/Ctrl+P switch groups, ...": the words
// that start with a capital, split at '/', where a lone letter takes the modifier of the key
// before it ("Ctrl+A/E" is Ctrl+A and Ctrl+E).
std::set<std::string> help_keys() {
  std::set<std::string> out;
  bool in_keys = false;
  for (const auto& line : help_lines()) {
    if (line.rfind("keys:", 0) == 0) in_keys = true;
    if (!in_keys) continue;
    std::istringstream words(line);
    for (std::string word; words >> word;) {
      while (!word.empty() && (word.back() == ',' || word.back() == ';')) word.pop_back();
      if (word.empty() || !std::isupper(static_cast<unsigned char>(word[0]))) continue;
      std::string modifier;
      std::istringstream pieces(word);
      for (std::string piece; std::getline(pieces, piece, '/');) {
        if (piece.size() == 1 && !modifier.empty()) piece = modifier + piece;
        const auto plus = piece.find('+');
        modifier = plus == std::string::npos ? "" : piece.substr(0, plus + 1);
        out.insert(piece);
      }
    }
  }
  return out;
}

}  // namespace

// Proves that the page documents each command of /help and each key it names: adding a command
// to help_lines() without a man entry fails here.
TEST_CASE("qun-chat.1 man page documents every command and key of /help", "[cli][man]") {
  const std::string page = man_source();
  const auto commands = help_commands();
  const auto keys = help_keys();
  // The extraction itself found what /help is known to list.
  REQUIRE(commands.count("/join") == 1);
  REQUIRE(commands.count("/quit") == 1);
  REQUIRE(keys.count("Ctrl+W") == 1);
  REQUIRE(keys.count("PageDown") == 1);

  const auto documented_commands = entries(section(page, "COMMANDS"));
  for (const auto& c : commands) {
    INFO("/help lists " << c << "; add an entry *" << c << "* under COMMANDS in docs/man/qun-chat.1.scd");
    CHECK(documented_commands.count(c) == 1);
  }
  const auto documented_keys = entries(section(page, "KEYS"));
  for (const auto& k : keys) {
    INFO("/help names the key " << k << "; add an entry *" << k << "* under KEYS in docs/man/qun-chat.1.scd");
    CHECK(documented_keys.count(k) == 1);
  }
}

// Proves that every command the page documents exists: parse_command() knows it (it may want
// arguments, but it is not an unknown command), so a removed command cannot stay in the page.
TEST_CASE("qun-chat.1 man page documents no command the chat does not know", "[cli][man]") {
  const auto documented = entries(section(man_source(), "COMMANDS"));
  REQUIRE(documented.size() >= 5);
  for (const auto& c : documented) {
    if (c.empty() || c[0] != '/' || c == "//") continue;
    auto parsed = parse_command(c);
    INFO("docs/man/qun-chat.1.scd documents " << c << ", which parse_command() does not know");
    CHECK((parsed.ok() || parsed.error().context().rfind("unknown command", 0) != 0));
  }
}
