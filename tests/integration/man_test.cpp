// qun(1) (docs/man/qun.1.scd) against the program, so that the man page cannot drift from it
// (issue 16, "Man pages"). The test walks every command of cli/main.cpp's table the way a user
// finds them, through `qun --help` and `qun COMMAND... --help`, and checks that the page
// documents each command, each positional argument and each option; and, the other way, that
// every command heading and option entry of the page is one the program has. The conventions it
// reads are written at the top of the page source.
#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// What one `--help` lists: CLI11 prints a section title ("Options:") at the first column and
// each entry at an indent of exactly two spaces, name first (wrapped descriptions are indented
// deeper). The footer "Global options (...):" repeats the root's options; it is skipped.
struct Help {
  std::vector<std::string> positionals;  // "GROUP", "GROUP|KEY"
  std::vector<std::string> options;      // every name: "-f", "--follow"
  std::vector<std::string> subcommands;
};

Help parse_help(const std::string& text) {
  Help help;
  enum class Section { none, positionals, options, subcommands } section = Section::none;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != ' ') {
      section = line == "Positionals:"   ? Section::positionals
                : line == "Options:"     ? Section::options
                : line == "Subcommands:" ? Section::subcommands
                                         : Section::none;
      continue;
    }
    if (line.size() < 3 || line.compare(0, 2, "  ") != 0 || line[2] == ' ') continue;
    const std::string name = line.substr(2, line.find(' ', 2) - 2);
    if (section == Section::positionals) help.positionals.push_back(name);
    if (section == Section::subcommands) help.subcommands.push_back(name);
    if (section == Section::options) {
      std::istringstream names(name);
      for (std::string n; std::getline(names, n, ',');)
        if (n != "-h" && n != "--help") help.options.push_back(n);
    }
  }
  return help;
}

// Every command path below the root ("group create" as {"group", "create"}) with its help;
// the root itself under the empty path.
void walk(const std::vector<std::string>& path, std::map<std::string, Help>& out) {
  std::vector<std::string> argv{qun_binary()};
  argv.insert(argv.end(), path.begin(), path.end());
  argv.push_back("--help");
  const Outcome outcome = run(argv, child_env());
  INFO(outcome.describe());
  REQUIRE(outcome.ok());
  std::string key;
  for (const auto& word : path) key += (key.empty() ? "" : " ") + word;
  Help help = parse_help(outcome.out);
  const auto subcommands = help.subcommands;
  out[key] = std::move(help);
  for (const auto& sub : subcommands) {
    auto deeper = path;
    deeper.push_back(sub);
    walk(deeper, out);
  }
}

// One documented command of the page: its heading's arguments and the lines of its entry.
struct Entry {
  std::string arguments;           // what follows "*qun WORDS*" on the heading line
  std::set<std::string> options;   // bold names on its option lines ("\t*--uses* _N_")
};

// The page's command entries by their words, and under "" the section OPTIONS (the root's).
// A heading is a line that starts with "*qun WORDS*"; its entry runs to the next heading or
// section. An option line is a line that starts (after its indent) with a bold "-" name.
std::map<std::string, Entry> parse_page(const std::string& page) {
  std::map<std::string, Entry> entries;
  static const std::regex heading(R"(^\*qun ([^*]+)\*(.*)$)");
  static const std::regex bold_option(R"(\*(-[^*]+)\*)");
  Entry* current = nullptr;
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, heading)) {
      current = &entries[m[1]];
      current->arguments = m[2];
    } else if (line.rfind("# ", 0) == 0) {
      current = line == "# OPTIONS" ? &entries[""] : nullptr;
    } else if (current && line.find_first_not_of('\t') != std::string::npos &&
               line.compare(line.find_first_not_of('\t'), 2, "*-") == 0) {
      for (std::sregex_iterator it(line.begin(), line.end(), bold_option), end; it != end; ++it)
        current->options.insert((*it)[1]);
    }
  }
  return entries;
}

const char* const page_path = "docs/man/qun.1.scd";

}  // namespace

// Proves the page and the program name the same commands, arguments and options, both ways:
// a command or option added to cli/main.cpp without a man entry fails here, and so does an entry
// left behind for one that is gone. How: the whole --help tree of the built binary against the
// page source's headings and option lines.
TEST_CASE("qun.1 man page documents every command and option of --help", "[integration][man]") {
  const std::string page = file_contents(fs::path(QUN_SOURCE_DIR) / page_path);
  REQUIRE(!page.empty());
  std::map<std::string, Help> commands;
  walk({}, commands);
  // The walk itself saw the table (a change of CLI11's help layout would show as nothing here).
  REQUIRE(commands.count("group create") == 1);
  REQUIRE(commands.count("node") == 1);
  REQUIRE(commands["invite"].positionals == std::vector<std::string>{"GROUP"});
  REQUIRE(commands[""].options == std::vector<std::string>{"--home", "--json", "--version"});

  const auto entries = parse_page(page);
  for (const auto& [path, help] : commands) {
    const std::string where = path.empty() ? "the section OPTIONS" : "*qun " + path + "*";
    auto it = entries.find(path);
    // A word that only groups commands (`qun group`, `qun relay`: it runs nothing by itself and
    // takes nothing) needs no entry of its own.
    const bool grouping_only =
        !help.subcommands.empty() && help.positionals.empty() && help.options.empty();
    if (!path.empty() && !grouping_only) {
      INFO("`qun " << path << "` has no entry in " << page_path
                   << "; add a line starting with *qun " << path
                   << "* (the conventions are at the top of the file)");
      CHECK(it != entries.end());
    }
    if (it == entries.end()) continue;
    for (const auto& positional : help.positionals) {
      std::istringstream names(positional);
      for (std::string name; std::getline(names, name, '|');) {
        INFO("`qun " << path << "` takes " << name << "; write _" << name << "_ on the line of "
                     << where << " in " << page_path);
        CHECK(it->second.arguments.find("_" + name + "_") != std::string::npos);
      }
    }
    for (const auto& option : help.options) {
      INFO("`qun " << path << "` has the option " << option << "; add a line \"\\t*" << option
                   << "* ...\" under " << where << " in " << page_path);
      CHECK(it->second.options.count(option) == 1);
    }
  }

  for (const auto& [path, entry] : entries) {
    auto it = commands.find(path);
    if (it == commands.end()) {
      FAIL_CHECK(page_path << " documents `qun " << path << "`, which `qun --help` does not list");
      continue;
    }
    for (const auto& option : entry.options) {
      const auto& known = it->second.options;
      const bool exists = std::find(known.begin(), known.end(), option) != known.end() ||
                          option == "-h" || option == "--help";
      INFO(page_path << " documents " << option << " for `qun " << path
                     << "`, which its --help does not list");
      CHECK(exists);
    }
  }
}

}  // namespace qun::integration
