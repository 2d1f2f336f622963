// How people name a group or a member, and when a text mentions someone: one rule for the node
// (every request that takes GROUP or MEMBER), the CLI and `qun chat`, so a name means the same
// thing wherever it is typed (docs/cli.md, "Naming groups and members").
//
// A query names the entry whose
//   1. whole id it is (hex, any case); else
//   2. name it is, exactly, when one entry has that name; else
//   3. label it is (`lobby·1b11`, as net/listing.h labels two entries of one name): the entry of
//      that name whose id starts with the digits after U+00B7; else
//   4. id it starts (hex, any case), when one entry's id does.
// Two entries of one name, or an id prefix two ids share, is an ambiguity, never a guess.
//
// Mentions: a text mentions a nick when the nick appears in it as a whole word, compared with
// Unicode simple case folding (ZOË mentions zoë); the characters on either side, if any, are not
// letters, digits, '_' or '-'. An empty nick is never mentioned.
//
// Pure functions; thread-safe (case folding reads a process-wide UTF-8 locale made once).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace qun::naming {

// Characters of a query quoted in an error at most; longer ones are cut with "…". 40 fits an
// error on one 80-column line beside its words.
inline constexpr std::size_t query_shown_chars_max = 40;

struct Candidate {
  std::string id;    // hex
  std::string name;  // group name or nick; empty when it has none
};

// What is being named, for the errors: {"group", "qun group list"}, the command that lists them.
struct Noun {
  std::string_view what;
  std::string_view list_command;
};

// The index in `all` of the entry the query names (the rule above). Errors, each one line that
// says what to do: invalid_argument for an empty query ("name a group") or an ambiguous one
// ("several groups are named 'dev'; use the label `qun group list` shows, or the id"), not_found when
// nothing matches ("no group matches 'x'; see `qun group list`"). The query is quoted made safe
// for a terminal and cut to query_shown_chars_max characters.
[[nodiscard]] Result<std::size_t> find(std::string_view query, const std::vector<Candidate>& all,
                                       Noun noun);

// True when text mentions nick (the rule above).
bool mentions(std::string_view text, std::string_view nick);

// A code point folded for caseless comparison (Unicode simple folding as the C library's UTF-8
// locale knows it; ASCII only when the C library has no UTF-8 locale).
char32_t fold_case(char32_t c);

}  // namespace qun::naming
