#include "app/naming.h"

#include <locale.h>
#include <wctype.h>

#include "app/render.h"
#include "base/utf8.h"

namespace qun::naming {
namespace {

constexpr std::string_view label_separator = "\u00B7";  // ·, as net/listing.h writes labels

// A UTF-8 LC_CTYPE for case folding and letter classes, whatever the process locale is. Made once
// and kept for the life of the process; null when the C library has no UTF-8 locale.
locale_t utf8_locale() {
  static const locale_t locale = [] {
    for (const char* name : {"C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8"}) {
      locale_t l = ::newlocale(LC_CTYPE_MASK, name, static_cast<locale_t>(0));
      if (l != static_cast<locale_t>(0)) return l;
    }
    return static_cast<locale_t>(0);
  }();
  return locale;
}

bool is_word_char(char32_t c) {
  if (c == '_' || c == '-') return true;
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  locale_t l = utf8_locale();
  if (l == static_cast<locale_t>(0)) return true;  // without tables, any letter-like code point
  return ::iswalnum_l(static_cast<wint_t>(c), l) != 0;
}

std::u32string folded(std::string_view s) {
  std::u32string out;
  std::size_t pos = 0;
  while (pos < s.size()) out.push_back(fold_case(utf8::next(s, pos)));
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// The query as an error quotes it: one line, safe for a terminal, at most query_shown_chars_max
// characters.
std::string shown(std::string_view query) {
  const std::string safe = render::for_terminal(query, false);
  std::size_t pos = 0, chars = 0;
  while (pos < safe.size() && chars < query_shown_chars_max) {
    (void)utf8::next(safe, pos);
    ++chars;
  }
  return pos < safe.size() ? safe.substr(0, pos) + "\u2026" : safe;
}

}  // namespace

char32_t fold_case(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
  locale_t l = utf8_locale();
  if (l == static_cast<locale_t>(0)) return c;
  return static_cast<char32_t>(::towlower_l(static_cast<wint_t>(c), l));
}

Result<std::size_t> find(std::string_view query, const std::vector<Candidate>& all, Noun noun) {
  const std::string what(noun.what), list = "`" + std::string(noun.list_command) + "`";
  if (query.empty()) return Error(Errc::invalid_argument, "name a " + what);
  const std::string q = "'" + shown(query) + "'";
  const std::string low = ascii_lower(query);
  std::vector<std::size_t> named, labelled, prefixed;
  // A label: NAME·HEX.
  std::string_view label_name, label_digits;
  if (auto at = query.rfind(label_separator); at != std::string_view::npos && at > 0) {
    label_name = query.substr(0, at);
    label_digits = query.substr(at + label_separator.size());
  }
  const std::string label_low = ascii_lower(label_digits);
  for (std::size_t i = 0; i < all.size(); ++i) {
    const std::string id = ascii_lower(all[i].id);
    if (id == low) return i;
    if (!all[i].name.empty() && all[i].name == query) named.push_back(i);
    if (!label_digits.empty() && all[i].name == label_name && starts_with(id, label_low))
      labelled.push_back(i);
    if (starts_with(id, low)) prefixed.push_back(i);
  }
  if (named.size() == 1) return named.front();
  if (named.size() > 1)
    return Error(Errc::invalid_argument, "several " + what + "s are named " + q +
                                             "; use the label " + list + " shows, or the id");
  if (labelled.size() == 1) return labelled.front();
  if (prefixed.size() == 1) return prefixed.front();
  if (labelled.size() + prefixed.size() > 1)
    return Error(Errc::invalid_argument,
                 q + " matches more than one " + what + "; use more of the id");
  return Error(Errc::not_found, "no " + what + " matches " + q + "; see " + list);
}

bool mentions(std::string_view text, std::string_view nick) {
  if (nick.empty() || text.empty()) return false;
  const std::u32string t = folded(text), n = folded(nick);
  if (n.size() > t.size()) return false;
  for (std::size_t i = 0; i + n.size() <= t.size(); ++i) {
    if (t.compare(i, n.size(), n) != 0) continue;
    const bool start_ok = i == 0 || !is_word_char(t[i - 1]);
    const bool end_ok = i + n.size() == t.size() || !is_word_char(t[i + n.size()]);
    if (start_ok && end_ok) return true;
  }
  return false;
}

}  // namespace qun::naming
