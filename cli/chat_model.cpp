#include "cli/chat_model.h"

#include "cli/render.h"
#include "base/utf8.h"

#include <locale.h>
#include <wchar.h>
#include <wctype.h>

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstring>
#include <ctime>
#include <limits>

namespace qun::chat {
namespace {

constexpr char32_t replacement = 0xFFFD;
constexpr char32_t zero_width_joiner = 0x200D;
constexpr const char* newline_symbol = "\u21B5";  // ↵, one column

// A UTF-8 LC_CTYPE for wcwidth and case folding, whatever the process locale is, so widths do not
// depend on LANG. Made once and kept for the life of the process; null when the C library has no
// UTF-8 locale at all (then a small built-in table is used).
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

// Widths for a C library without a UTF-8 locale: the main combining and wide blocks only.
int fallback_width(char32_t c) {
  struct Range {
    char32_t first, last;
  };
  static constexpr Range zero[] = {
      {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A},  {0x064B, 0x065F},
      {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x202A, 0x202E},  {0x2060, 0x2064},
      {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xE0100, 0xE01EF}};
  static constexpr Range wide[] = {
      {0x1100, 0x115F}, {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},  {0x4E00, 0x9FFF},
      {0xA000, 0xA4CF}, {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE30, 0xFE4F},  {0xFF00, 0xFF60},
      {0xFFE0, 0xFFE6}, {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF}, {0x20000, 0x3FFFD}};
  for (const auto& r : zero)
    if (c >= r.first && c <= r.last) return 0;
  for (const auto& r : wide)
    if (c >= r.first && c <= r.last) return 2;
  return 1;
}

bool is_word_char(char32_t c) {
  if (c == '_' || c == '-') return true;
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  locale_t l = utf8_locale();
  if (l == static_cast<locale_t>(0)) return true;  // without tables, any letter-like code point
  return ::iswalnum_l(static_cast<wint_t>(c), l) != 0;
}

char32_t fold_case(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
  locale_t l = utf8_locale();
  if (l == static_cast<locale_t>(0)) return c;
  return static_cast<char32_t>(::towlower_l(static_cast<wint_t>(c), l));
}

std::u32string decode_all(std::string_view s) {
  std::u32string out;
  std::size_t pos = 0;
  while (pos < s.size()) out.push_back(next_code_point(s, pos));
  return out;
}

// The end of the character starting at pos: one code point plus the zero-width code points after
// it (combining marks, variation selectors) and anything joined by a zero-width joiner. A newline
// is a character of its own, one column wide (it shows as ↵). *cols receives its width.
std::size_t cluster_end(std::string_view s, std::size_t pos, int* cols) {
  std::size_t p = pos;
  const char32_t first = next_code_point(s, p);
  if (first == '\n') {
    *cols = 1;
    return p;
  }
  int width = std::max(0, code_point_width(first));
  bool joined = first == zero_width_joiner;
  while (p < s.size()) {
    std::size_t q = p;
    const char32_t c = next_code_point(s, q);
    if (c == '\n') break;
    const int w = code_point_width(c);
    if (w != 0 && !joined) break;
    width += std::max(0, w);
    joined = c == zero_width_joiner;
    p = q;
  }
  *cols = width;
  return p;
}

// The start of the character that ends at pos (pos must be a character boundary).
std::size_t cluster_start_before(std::string_view s, std::size_t pos) {
  std::size_t p = 0, last = 0;
  int cols = 0;
  while (p < pos) {
    last = p;
    p = cluster_end(s, p, &cols);
  }
  return last;
}

std::string trim_right(std::string_view s) {
  std::size_t n = s.size();
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    --n;
  return std::string(s.substr(0, n));
}

std::optional<std::string> json_string(const Json& v, const char* key) {
  if (!v.is_object()) return std::nullopt;
  auto it = v.find(key);
  if (it == v.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::size_t json_count(const Json& v, const char* key) {
  if (!v.is_object()) return 0;
  auto it = v.find(key);
  if (it == v.end()) return 0;
  if (it->is_number_unsigned()) return it->get<std::size_t>();
  if (it->is_number_integer())
    return static_cast<std::size_t>(std::max<std::int64_t>(0, it->get<std::int64_t>()));
  if (it->is_array()) return it->size();
  return 0;
}

std::string spaces(int n) { return std::string(static_cast<std::size_t>(std::max(0, n)), ' '); }

std::string repeat(std::string_view unit, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += unit;
  return out;
}

int nick_color(const std::string& author) {
  unsigned h = 0;
  for (unsigned char c : author) h = h * 31 + c;
  return static_cast<int>(h % nick_colors);
}

int row_width(const Row& row) {
  int w = 0;
  for (const auto& s : row) w += display_width(s.text);
  return w;
}

// Cuts a row of spans to cols columns.
Row clip_row(Row row, int cols) {
  Row out;
  int used = 0;
  for (auto& span : row) {
    const int w = display_width(span.text);
    if (used + w <= cols) {
      used += w;
      out.push_back(std::move(span));
      continue;
    }
    span.text = truncate_to_width(span.text, cols - used);
    used += display_width(span.text);
    if (!span.text.empty()) out.push_back(std::move(span));
    break;
  }
  return out;
}

// A line of the given style that fills cols with `fill` around a label: "── label ──".
Row rule_row(const std::string& label, Style style, int cols) {
  const int label_cols = display_width(label) + 2;
  if (label_cols + 4 > cols) return clip_row({{label, style, 0}}, cols);
  const int left = (cols - label_cols) / 2;
  const int right = cols - label_cols - left;
  return {{repeat("\u2500", left) + " " + label + " " + repeat("\u2500", right), style, 0}};
}

// Events that are bookkeeping rather than conversation: kept, counted, not shown. (A rekey
// follows a removal or leave, which is shown; an invite shows when someone joins with it.)
bool hidden(const Message& m) { return render::bookkeeping(m.kind); }

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// UTF-8 and width.

char32_t next_code_point(std::string_view s, std::size_t& pos) { return utf8::next(s, pos); }

void append_utf8(std::string& out, char32_t c) { utf8::append(out, c); }

int code_point_width(char32_t c) {
  if (c >= 0x20 && c < 0x7F) return 1;
  if (c < 0x20 || (c >= 0x7F && c < 0xA0)) return -1;
  locale_t l = utf8_locale();
  if (l == static_cast<locale_t>(0)) return fallback_width(c);
  // glibc has no wcwidth_l; switch this thread's locale around the call.
  locale_t previous = ::uselocale(l);
  const int w = ::wcwidth(static_cast<wchar_t>(c));
  ::uselocale(previous);
  return w;
}

int display_width(std::string_view s) {
  int cols = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = next_code_point(s, pos);
    if (c == '\n') {
      cols += 1;
      continue;
    }
    const int w = code_point_width(c);
    cols += w < 0 ? 1 : w;
  }
  return cols;
}

std::string sanitize(std::string_view s, bool keep_newlines) {
  std::string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  while (pos < s.size()) {
    char32_t c = next_code_point(s, pos);
    if (c == '\n') {
      out += keep_newlines ? "\n" : newline_symbol;
      continue;
    }
    if (c == '\t') {
      out += ' ';
      continue;
    }
    if (c == '\r') continue;
    if (code_point_width(c) < 0) c = replacement;
    append_utf8(out, c);
  }
  return out;
}

std::string truncate_to_width(std::string_view s, int cols) {
  std::size_t pos = 0;
  int used = 0;
  while (pos < s.size()) {
    int w = 0;
    const std::size_t end = cluster_end(s, pos, &w);
    if (used + w > cols) break;
    used += w;
    pos = end;
  }
  return std::string(s.substr(0, pos));
}

std::vector<std::string> wrap(std::string_view text, int first_cols, int rest_cols) {
  first_cols = std::max(1, first_cols);
  rest_cols = std::max(1, rest_cols);
  std::vector<std::string> lines;
  auto limit = [&] { return lines.empty() ? first_cols : rest_cols; };
  auto emit = [&](std::size_t begin, std::size_t end) {
    std::string_view line = text.substr(begin, end - begin);
    while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
    lines.emplace_back(line);
  };
  constexpr std::size_t none = std::string_view::npos;
  std::size_t pos = 0, begin = 0, after_space = none;
  int cols = 0;
  while (pos < text.size()) {
    if (text[pos] == '\n') {
      emit(begin, pos);
      begin = ++pos;
      cols = 0;
      after_space = none;
      continue;
    }
    int w = 0;
    const std::size_t end = cluster_end(text, pos, &w);
    if (cols + w > limit() && pos > begin) {
      if (text[pos] == ' ') {  // break here; the spaces at the break vanish
        emit(begin, pos);
        while (pos < text.size() && text[pos] == ' ') ++pos;
        begin = pos;
        cols = 0;
        after_space = none;
        continue;
      }
      if (after_space != none) {  // break after the last space; the word moves down whole
        emit(begin, after_space);
        begin = pos = after_space;
        cols = 0;
        after_space = none;
        continue;
      }
      emit(begin, pos);  // a word longer than the line is cut
      begin = pos;
      cols = 0;
    }
    const bool space = text[pos] == ' ';
    cols += w;
    pos = end;
    if (space) after_space = pos;
  }
  emit(begin, pos);
  return lines;
}

bool mentions(std::string_view text, std::string_view nick) {
  if (nick.empty() || text.empty()) return false;
  std::u32string t = decode_all(text), n = decode_all(nick);
  for (auto& c : t) c = fold_case(c);
  for (auto& c : n) c = fold_case(c);
  if (n.size() > t.size()) return false;
  for (std::size_t i = 0; i + n.size() <= t.size(); ++i) {
    if (t.compare(i, n.size(), n) != 0) continue;
    const bool start_ok = i == 0 || !is_word_char(t[i - 1]);
    const bool end_ok = i + n.size() == t.size() || !is_word_char(t[i + n.size()]);
    if (start_ok && end_ok) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// InputLine.

bool InputLine::insert(std::string_view utf8) {
  std::string clean = sanitize(utf8, true);
  if (text_.size() + clean.size() > input_bytes_max) return false;
  text_.insert(cursor_, clean);
  cursor_ += clean.size();
  return true;
}

void InputLine::left() {
  if (cursor_ > 0) cursor_ = cluster_start_before(text_, cursor_);
}

void InputLine::right() {
  int cols = 0;
  if (cursor_ < text_.size()) cursor_ = cluster_end(text_, cursor_, &cols);
}

void InputLine::home() { cursor_ = 0; }
void InputLine::end() { cursor_ = text_.size(); }

void InputLine::backspace() {
  if (cursor_ == 0) return;
  const std::size_t start = cluster_start_before(text_, cursor_);
  text_.erase(start, cursor_ - start);
  cursor_ = start;
}

void InputLine::erase_forward() {
  if (cursor_ >= text_.size()) return;
  int cols = 0;
  const std::size_t end = cluster_end(text_, cursor_, &cols);
  text_.erase(cursor_, end - cursor_);
}

void InputLine::kill_to_start() {
  text_.erase(0, cursor_);
  cursor_ = 0;
}

void InputLine::kill_to_end() { text_.erase(cursor_); }

void InputLine::kill_word() {
  // Spaces and newlines are single bytes that never occur inside a UTF-8 sequence, so stopping
  // at one always lands on a character boundary.
  auto blank = [](char c) { return c == ' ' || c == '\n'; };
  std::size_t p = cursor_;
  while (p > 0 && blank(text_[p - 1])) --p;
  while (p > 0 && !blank(text_[p - 1])) --p;
  text_.erase(p, cursor_ - p);
  cursor_ = p;
}

void InputLine::set(std::string text) {
  text_ = sanitize(text, true);
  if (text_.size() > input_bytes_max) {
    std::size_t cut = input_bytes_max;
    while (cut > 0 && (static_cast<unsigned char>(text_[cut]) & 0xC0) == 0x80) --cut;
    text_.resize(cut);
  }
  cursor_ = text_.size();
  scroll_col_ = 0;
}

void InputLine::remember(const std::string& line) {
  if (!line.empty() && (history_.empty() || history_.back() != line)) {
    history_.push_back(line);
    while (history_.size() > input_history_max) history_.pop_front();
  }
  history_pos_ = history_.size();
  draft_.clear();
}

void InputLine::history_prev() {
  if (history_pos_ == 0) return;
  if (history_pos_ == history_.size()) draft_ = text_;
  --history_pos_;
  set(history_[history_pos_]);
}

void InputLine::history_next() {
  if (history_pos_ >= history_.size()) return;
  ++history_pos_;
  set(history_pos_ == history_.size() ? draft_ : history_[history_pos_]);
}

InputLine::Visible InputLine::visible(int cols) {
  cols = std::max(1, cols);
  const int cursor_col = display_width(std::string_view(text_).substr(0, cursor_));
  if (display_width(text_) < cols) scroll_col_ = 0;
  if (cursor_col < scroll_col_) scroll_col_ = cursor_col;
  if (cursor_col >= scroll_col_ + cols) scroll_col_ = cursor_col - cols + 1;
  Visible v;
  v.cursor_col = cursor_col - scroll_col_;
  std::size_t pos = 0;
  int col = 0;
  while (pos < text_.size()) {
    int w = 0;
    const std::size_t end = cluster_end(text_, pos, &w);
    if (col >= scroll_col_ && col + w <= scroll_col_ + cols) {
      if (text_[pos] == '\n')
        v.text += newline_symbol;
      else
        v.text.append(text_, pos, end - pos);
    } else if (col < scroll_col_ && col + w > scroll_col_) {
      v.text += spaces(std::min(col + w, scroll_col_ + cols) - scroll_col_);  // a cut wide char
    } else if (col >= scroll_col_ + cols) {
      break;
    }
    col += w;
    pos = end;
  }
  return v;
}

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
  } else if (name == "kick" || name == "promote") {
    if (!one_word) return usage(name == "kick" ? "usage: /kick NICK" : "usage: /promote NICK");
    c.kind = name == "kick" ? Command::Kind::kick : Command::Kind::promote;
    c.arg = rest;
  } else if (name == "topic") {
    if (rest.empty()) return usage("usage: /topic TEXT");
    if (rest.size() > limits::topic_bytes_max)
      return Error(Errc::invalid_argument, "topic too long: " + std::to_string(rest.size()) +
                                               " bytes, at most " +
                                               std::to_string(limits::topic_bytes_max));
    c.kind = Command::Kind::topic;
    c.arg = rest;
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
      "/promote NICK   make a member an admin (admins)",
      "/topic TEXT     set this group's topic",
      "/leave          leave this group",
      "/relays         list this group's relays",
      "/quit           quit (also Ctrl+C); //text sends a line starting with /",
      "keys: Alt+1..9 or Ctrl+N/Ctrl+P switch groups, PageUp/PageDown scroll, Alt+End back to",
      "      the newest, Ctrl+O folds/unfolds long messages, Up/Down history, Tab completes nicks,",
      "      Ctrl+A/E/U/K/W edit, Ctrl+L redraws",
  };
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Messages.

Result<Message> parse_message(const Json& v) {
  if (!v.is_object()) return Error(Errc::malformed, "message is not an object");
  Message m;
  auto id = json_string(v, "id");
  auto author = json_string(v, "author");
  auto kind = json_string(v, "kind");
  if (!id || !author || !kind) return Error(Errc::malformed, "message lacks id, author or kind");
  m.id = std::move(*id);
  m.author = std::move(*author);
  m.kind = std::move(*kind);
  m.nick = json_string(v, "nick");
  m.text = json_string(v, "text");
  m.target = json_string(v, "target");
  m.target_nick = json_string(v, "target_nick");
  m.role = json_string(v, "role");
  auto t = v.find("time");
  if (t != v.end() && t->is_number_integer()) {
    m.time_ms = t->is_number_unsigned()
                    ? static_cast<std::int64_t>(std::min<std::uint64_t>(
                          t->get<std::uint64_t>(),
                          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())))
                    : t->get<std::int64_t>();
  }
  return m;
}

std::string display_nick(const std::optional<std::string>& nick, const std::string& id) {
  if (nick && !nick->empty()) return sanitize(*nick, false);
  return sanitize(id.substr(0, 8), false);
}

std::string system_text(const Message& m) {
  // The words are the CLI's too (cli/render.h); the chat sanitizes them for its own drawing.
  const std::string actor = display_nick(m.nick, m.author);
  const std::string target = m.target ? display_nick(m.target_nick, *m.target) : "someone";
  return sanitize(render::event_words(m.kind, actor, target, m.text, m.role), false);
}

LocalTime local_time(std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  if (::localtime_r(&seconds, &tm) == nullptr) return {"--:--", ""};
  char clock[16], day[64];
  std::strftime(clock, sizeof clock, "%H:%M", &tm);
  std::strftime(day, sizeof day, "%a %d %b %Y", &tm);
  return {clock, day};
}

std::string message_line(const Message& m, const TimeFormat& format) {
  const std::string clock = format(m.time_ms).clock;
  if (m.kind == "post") {
    const std::string text =
        m.text ? sanitize(*m.text, false) : render::unreadable_text;
    return clock + " " + display_nick(m.nick, m.author) + ": " + text;
  }
  return clock + " * " + system_text(m);
}

Json message_json_line(const Json& message, const std::string& group, const std::string& own_id) {
  Json out = message;
  out["group"] = group;
  const auto author = json_string(message, "author");
  out["self"] = !own_id.empty() && author && *author == own_id;
  return out;
}

std::string chat_words(std::string error) {
  // The node words its errors for the shell; in the chat the same advice is a command.
  static const std::pair<const char*, const char*> words[] = {
      {"see `qun members GROUP`", "/members lists them"},
      {"`qun members GROUP`", "/members"},
      {"see `qun group list`", "your groups are on the left"},
      {"use `qun leave`", "use /leave"},
      {"`qun leave`", "/leave"},
      {"wait for `qun join` to finish", "wait for the join to finish"},
      {" (`qun status` shows the join)", ""},
      {"`qun join CODE`", "/join CODE"},
      {"`qun invite GROUP`", "/invite"},
  };
  for (const auto& [shell, chat] : words) {
    for (std::size_t at = error.find(shell); at != std::string::npos;
         at = error.find(shell, at + std::strlen(chat)))
      error.replace(at, std::strlen(shell), chat);
  }
  return error;
}

Result<std::string> resolve_group(const Json& list, std::string_view query) {
  if (!list.is_array()) return Error(Errc::malformed, "group list is not an array");
  std::vector<std::string> prefixed, named;
  for (const auto& g : list) {
    auto id = json_string(g, "id");
    if (!id) continue;
    if (*id == query) return *id;
    if (!query.empty() && id->compare(0, query.size(), query) == 0) prefixed.push_back(*id);
    if (json_string(g, "name") == std::string(query)) named.push_back(*id);
  }
  const std::string shown = truncate_to_width(sanitize(query, false), 40);
  if (prefixed.size() == 1) return prefixed[0];
  if (prefixed.size() > 1)
    return Error(Errc::invalid_argument,
                 "\"" + shown + "\" is the start of several group ids; give more of it");
  if (named.size() == 1) return named[0];
  if (named.size() > 1)
    return Error(Errc::invalid_argument,
                 "several groups are named \"" + shown + "\"; give the group id instead");
  return Error(Errc::not_found, "no group matches \"" + shown + "\" (`qun group list` lists them)");
}

// ---------------------------------------------------------------------------------------------
// ChatModel.

ChatModel::ChatModel(Config config) : config_(std::move(config)) {
  if (!config_.time_format) config_.time_format = local_time;
  select_when_listed_ = config_.initial_group;
}

std::optional<Action> ChatModel::poll() {
  if (actions_.empty()) return std::nullopt;
  Action a = std::move(actions_.front());
  actions_.pop_front();
  return a;
}

void ChatModel::request(NodeRequest r) { actions_.push_back(std::move(r)); }

void ChatModel::notify(std::string text, bool error) {
  // Node errors are one line already; a stray newline or escape must not reach the status line.
  notice_ = sanitize(text, false);
  notice_error_ = error;
  notice_until_ms_ = now_ms_ + notice_ms;
}

void ChatModel::clear_error_notice() {
  if (notice_ && notice_error_) notice_.reset();
}

std::optional<std::string> ChatModel::notice() const { return notice_; }

void ChatModel::add_info_to(Buffer& b, std::string text, bool error) {
  Message m;
  m.kind = "info";
  m.text = std::move(text);
  m.error = error;
  append(b, std::move(m));
}

void ChatModel::add_info(std::string text, bool error, bool bare) {
  Buffer* b = selected();
  if (b == nullptr) {
    notify(std::move(text), error);
    return;
  }
  Message m;
  m.kind = "info";
  m.text = std::move(text);
  m.error = error;
  m.bare = bare;
  append(*b, std::move(m));
  b->scroll_rows = 0;
}

ChatModel::Buffer* ChatModel::selected() {
  if (selected_ >= order_.size()) return nullptr;
  return find(order_[selected_]);
}

const ChatModel::Buffer* ChatModel::selected() const {
  if (selected_ >= order_.size()) return nullptr;
  auto it = buffers_.find(order_[selected_]);
  return it == buffers_.end() ? nullptr : &it->second;
}

ChatModel::Buffer* ChatModel::find(std::string_view id) {
  auto it = buffers_.find(std::string(id));
  return it == buffers_.end() ? nullptr : &it->second;
}

std::optional<std::string> ChatModel::selected_group() const {
  const Buffer* b = selected();
  if (b == nullptr) return std::nullopt;
  return b->id;
}

std::optional<ChatModel::GroupView> ChatModel::group(std::string_view id) const {
  auto it = buffers_.find(std::string(id));
  if (it == buffers_.end()) return std::nullopt;
  const Buffer& b = it->second;
  GroupView v;
  v.id = b.id;
  v.name = b.name;
  v.label = b.label;
  v.member = b.member;
  v.topic = b.topic;
  v.unread = b.unread;
  v.mentions = b.mentions;
  v.messages = b.messages.size();
  v.scroll_rows = b.scroll_rows;
  v.new_below = b.new_below;
  v.history_complete = b.history_complete;
  return v;
}

const std::vector<Message>* ChatModel::messages(std::string_view id) const {
  auto it = buffers_.find(std::string(id));
  return it == buffers_.end() ? nullptr : &it->second.messages;
}

void ChatModel::on_connected() {
  connected_ = true;
  disconnect_reason_.clear();
  for (auto& [id, b] : buffers_) b.loaded = false;  // fetch what was missed while away
  // Subscribe before listing, so nothing delivered in between is missed.
  request({"id", Json::object(), NodeRequest::Purpose::id, "", "", Command::Kind::help});
  request(
      {"subscribe", Json::object(), NodeRequest::Purpose::subscribe, "", "", Command::Kind::help});
  request({"group.list", Json::object(), NodeRequest::Purpose::group_list, "", "",
           Command::Kind::help});
  request({"status", Json::object(), NodeRequest::Purpose::status, "", "", Command::Kind::help});
  status_in_flight_ = true;
  next_status_ms_ = now_ms_ + status_poll_ms;
  clear_error_notice();  // a reconnect is a success: old errors are stale
  for (auto& [id, b] : buffers_) {
    b.roster_loaded = false;
    b.roster_loading = false;
  }
  send_outbox();
}

void ChatModel::send_outbox() {
  if (!connected_) return;
  for (auto& o : outbox_) {
    if (o.sent) continue;
    o.sent = true;
    NodeRequest r{"post", Json{{"group", o.group}, {"text", o.text}}, NodeRequest::Purpose::post,
                  o.group, o.typed, Command::Kind::help};
    r.pending = o.number;
    request(std::move(r));
  }
}

void ChatModel::remove_pending(std::uint64_t number) {
  std::string group;
  for (auto it = outbox_.begin(); it != outbox_.end(); ++it) {
    if (it->number == number) {
      group = it->group;
      outbox_.erase(it);
      break;
    }
  }
  if (Buffer* b = find(group)) {
    std::erase_if(b->messages, [&](const Message& m) {
      return m.kind == "pending" && m.pending == number;
    });
  }
}

void ChatModel::post_failed(const NodeRequest& r, const std::string& error) {
  auto it = std::find_if(outbox_.begin(), outbox_.end(),
                         [&](const Outgoing& o) { return o.number == r.pending; });
  if (it == outbox_.end()) return;
  if (!connected_) {
    // The connection went while the post was out: it is sent again when the node is back. (If
    // the node had stored it, it appears twice; losing it would be worse.)
    it->sent = false;
    return;
  }
  notify(chat_words(error), true);
  const std::string typed = it->typed;
  remove_pending(r.pending);
  // Nothing typed is lost: back into the input if that is free, else kept as a line to copy.
  if (input_.empty()) {
    input_.set(typed);
  } else if (Buffer* b = find(r.group)) {
    add_info_to(*b, "not sent: " + typed, true);
  }
}

void ChatModel::on_disconnected(const std::string& reason) {
  connected_ = false;
  disconnect_reason_ = sanitize(reason, false);
  peers_ = 0;
}

void ChatModel::on_tick(std::int64_t now_ms) {
  now_ms_ = std::max(now_ms_, now_ms);
  if (notice_ && now_ms_ >= notice_until_ms_) notice_.reset();
  if (connected_ && !status_in_flight_ && now_ms_ >= next_status_ms_) {
    request({"status", Json::object(), NodeRequest::Purpose::status, "", "", Command::Kind::help});
    status_in_flight_ = true;
    next_status_ms_ = now_ms_ + status_poll_ms;
  }
}

void ChatModel::on_response(const NodeRequest& r, Result<Json> result) {
  using P = NodeRequest::Purpose;
  switch (r.purpose) {
    case P::id:
      if (result.ok()) {
        own_id_ = json_string(*result, "id").value_or("");
        own_nick_ = json_string(*result, "nick");
      }
      return;
    case P::subscribe:
      if (!result.ok()) notify("cannot follow new messages: " + result.error().context(), true);
      return;
    case P::group_list:
      if (result.ok())
        apply_group_list(*result);
      else if (connected_)
        notify("cannot list groups: " + result.error().context(), true);
      return;
    case P::status:
      status_in_flight_ = false;
      if (!result.ok()) return;
      peers_ = json_count(*result, "peers");
      if (auto it = result->find("groups"); it != result->end() && it->is_array()) {
        for (const auto& g : *it) {
          auto id = json_string(g, "id");
          if (!id) continue;
          if (Buffer* b = find(*id)) {
            auto s = g.find("synced");
            b->synced = s == g.end() || !s->is_boolean() || s->get<bool>();
            auto r = g.find("reachable");
            b->reachable = r == g.end() || !r->is_boolean() || r->get<bool>();
            b->outbox = json_count(g, "outbox");
          }
        }
      }
      return;
    case P::log_latest:
    case P::log_older: {
      Buffer* b = find(r.group);
      if (b == nullptr) return;
      (r.purpose == P::log_latest ? b->loading_latest : b->loading_older) = false;
      if (!result.ok()) {
        if (connected_) notify("cannot load messages: " + result.error().context(), true);
        return;
      }
      std::vector<Message> page;
      if (result->is_array()) {
        for (const auto& v : *result) {
          auto m = parse_message(v);
          if (m.ok()) page.push_back(std::move(m).value());
        }
      }
      const bool short_page = !result->is_array() || result->size() < log_page_messages;
      if (r.purpose == P::log_latest) {
        merge_latest(*b, std::move(page));
        if (short_page && b->messages.size() < scrollback_messages_max) b->history_complete = true;
      } else {
        prepend_older(*b, std::move(page));
        if (short_page) b->history_complete = true;
      }
      return;
    }
    case P::read:
      return;
    case P::post:
      if (!result.ok()) {
        post_failed(r, result.error().context());
        return;
      }
      remove_pending(r.pending);
      clear_error_notice();
      return;
    case P::command:
      if (!result.ok()) {
        notify(chat_words(result.error().context()), true);
        if (input_.empty()) input_.set(r.typed);  // nothing typed is lost
        return;
      }
      clear_error_notice();
      handle_command_result(r, *result);
      return;
    case P::members: {
      Buffer* b = find(r.group);
      if (b == nullptr) return;
      b->roster_loading = false;
      if (result.ok()) apply_roster(*b, *result);
      if (b->roster_stale) {
        b->roster_stale = false;
        refresh_roster(*b);
      }
      return;
    }
  }
}

void ChatModel::handle_command_result(const NodeRequest& r, const Json& result) {
  using K = Command::Kind;
  switch (r.command) {
    case K::join: {
      auto id = json_string(result, "group");
      if (id) {
        // Open it now if the node lists it already, else when the refreshed list has it.
        auto it = std::find(order_.begin(), order_.end(), *id);
        if (it != order_.end())
          select(static_cast<std::size_t>(it - order_.begin()));
        else
          select_when_listed_ = *id;
      }
      notify("joined; the group's history arrives as it syncs", false);
      request({"group.list", Json::object(), NodeRequest::Purpose::group_list, "", "",
               Command::Kind::help});
      return;
    }
    case K::invite: {
      const std::string code = json_string(result, "code").value_or("?");
      const std::uint32_t uses = r.args.value("uses", 1u);
      const std::int64_t expires_ms = r.args.value("expires_ms", std::int64_t{0});
      std::string valid;
      if (expires_ms > 0) {
        const std::int64_t hours = expires_ms / 3'600'000;
        valid = hours >= 48   ? ", valid " + plural(static_cast<std::size_t>(hours / 24), "day", "days")
                : hours >= 1 ? ", valid " + plural(static_cast<std::size_t>(hours), "hour", "hours")
                             : ", valid " + plural(static_cast<std::size_t>(std::max<std::int64_t>(
                                                       1, expires_ms / 60'000)),
                                                   "minute", "minutes");
      }
      add_info("invite code for " + plural(uses, "person", "people") + valid +
                   "; they type /join CODE in qun chat, or run `qun join CODE` (if it wraps "
                   "here, copy all of it: line breaks inside a code do no harm):",
               false);
      add_info(code, false, true);
      return;
    }
    case K::members: {
      std::string line = "members (" + std::to_string(result.is_array() ? result.size() : 0) + "):";
      if (result.is_array()) {
        bool first = true;
        for (const auto& m : result) {
          line += first ? " " : ", ";
          first = false;
          auto label = json_string(m, "label");
          line += label ? sanitize(*label, false)
                        : display_nick(json_string(m, "nick"), json_string(m, "id").value_or("?"));
          auto role = json_string(m, "role");
          if (role && *role != "member") line += " (" + *role + ")";
        }
      }
      add_info(line, false);
      return;
    }
    case K::relays: {
      if (!result.is_array() || result.empty()) {
        add_info("this group has no relays", false);
        return;
      }
      std::string line = "relays:";
      bool first = true;
      for (const auto& rl : result) {
        line += first ? " " : ", ";
        first = false;
        line += json_string(rl, "address").value_or("?") + " (" +
                json_string(rl, "id").value_or("?").substr(0, 8) + ")";
      }
      add_info(line, false);
      return;
    }
    case K::kick:
    case K::promote: {
      std::string who = r.args.value("member", std::string());
      if (const Buffer* b = find(r.group))
        if (auto it = b->roster.find(who); it != b->roster.end()) who = it->second.label;
      notify((r.command == K::kick ? "removed " : "promoted ") + sanitize(who, false), false);
      return;
    }
    case K::topic:
      notify("topic set", false);
      return;
    case K::leave:
      if (const Buffer* b = find(r.group))
        notify("left " + sanitize(b->label, false), false);
      else
        notify("left the group", false);
      request({"group.list", Json::object(), NodeRequest::Purpose::group_list, "", "",
               Command::Kind::help});
      return;
    case K::help:
    case K::quit:
      return;
  }
}

void ChatModel::refresh_roster(Buffer& b) {
  if (!connected_) return;
  if (b.roster_loading) {
    b.roster_stale = true;
    return;
  }
  b.roster_loading = true;
  request({"members", Json{{"group", b.id}}, NodeRequest::Purpose::members, b.id, "",
           Command::Kind::help});
}

void ChatModel::apply_roster(Buffer& b, const Json& list) {
  if (!list.is_array()) return;
  std::map<std::string, Member> roster;
  for (const auto& m : list) {
    auto id = json_string(m, "id");
    if (!id) continue;
    Member member;
    auto label = json_string(m, "label");
    member.label = label ? sanitize(*label, false) : display_nick(json_string(m, "nick"), *id);
    member.role = json_string(m, "role").value_or("member");
    roster[*id] = std::move(member);
  }
  // Succession: after a leave or a removal, a member who became admin without a set-role was
  // made admin by the group's rule (docs/protocol.md, "Succession").
  if (b.roster_loaded && !b.succession_cause.empty()) {
    for (const auto& [id, m] : roster) {
      if (m.role == "member" || b.promoted_since.count(id)) continue;
      auto old = b.roster.find(id);
      if (old == b.roster.end() || old->second.role != "member") continue;
      add_info_to(b,
                  render::succession_words(m.label, id == own_id_,
                                           b.succession_cause == "was removed"),
                  false);
    }
  }
  b.succession_cause.clear();
  b.promoted_since.clear();
  b.roster = std::move(roster);
  b.roster_loaded = true;
}

void ChatModel::on_membership_event(Buffer& b, const Message& m) {
  if (m.kind == "set-role" && m.target) b.promoted_since.insert(*m.target);
  if (m.kind == "leave") b.succession_cause = "left";
  if (m.kind == "remove") b.succession_cause = "was removed";
  if (m.kind == "remove" && m.target && *m.target == own_id_ && !own_id_.empty()) {
    b.member = false;
    b.removed_by = author_label(b, m);
    render::Entry e;
    e.kind = m.kind;
    e.target = m.target;
    const std::string words =
        render::removed_you_words(e, own_id_, sanitize(b.label, false), b.removed_by)
            .value_or("you were removed");
    add_info_to(b, words + "; to come back, ask a member for a new invite, then /join CODE",
                true);
    notify(words, true);
    actions_.push_back(Bell{});
  }
  if (b.roster_loaded || b.roster_loading) refresh_roster(b);
}

std::string ChatModel::author_label(const Buffer& b, const Message& m) const {
  auto it = b.roster.find(m.author);
  if (it != b.roster.end()) return it->second.label;
  return display_nick(m.nick, m.author);
}

void ChatModel::apply_group_list(const Json& list) {
  if (!list.is_array()) return;
  const std::optional<std::string> was_selected = selected_group();
  std::vector<std::string> order;
  std::set<std::string> seen;
  for (const auto& g : list) {
    auto id = json_string(g, "id");
    if (!id || !seen.insert(*id).second) continue;
    Buffer& b = buffers_[*id];
    b.id = *id;
    b.name = json_string(g, "name").value_or(id->substr(0, 8));
    b.label = json_string(g, "label").value_or(b.name);
    b.topic = json_string(g, "topic").value_or("");
    if (auto it = g.find("member"); it != g.end() && it->is_boolean()) {
      const bool joining = g.value("joining", false);
      b.member = it->get<bool>() || joining;
      if (b.member) b.removed_by.clear();
    }
    b.members = json_count(g, "members");
    b.unread = json_count(g, "unread");
    b.mentions = json_count(g, "mentions");
    order.push_back(*id);
  }
  for (auto it = buffers_.begin(); it != buffers_.end();) {
    it = seen.count(it->first) ? std::next(it) : buffers_.erase(it);
  }
  order_ = std::move(order);

  std::size_t index = 0;
  if (was_selected) {
    auto it = std::find(order_.begin(), order_.end(), *was_selected);
    index = it != order_.end() ? static_cast<std::size_t>(it - order_.begin())
                               : std::min(selected_, order_.empty() ? 0 : order_.size() - 1);
  }
  if (select_when_listed_) {
    auto id = resolve_group(list, *select_when_listed_);
    if (id.ok()) {
      index =
          static_cast<std::size_t>(std::find(order_.begin(), order_.end(), *id) - order_.begin());
      select_when_listed_.reset();
    } else if (!initial_resolved_) {
      notify(id.error().context(), true);
      select_when_listed_.reset();
    }
  }
  initial_resolved_ = true;
  selected_ = order_.empty() ? 0 : std::min(index, order_.size() - 1);
  if (Buffer* b = selected()) {
    if (!b->marker_set) b->unread_at_open = b->unread;
    ensure_loaded(*b);
    if (!b->roster_loaded && !b->roster_loading) refresh_roster(*b);
    if (b->unread > 0 || b->mentions > 0) mark_read(*b);
  }
}

void ChatModel::select(std::size_t index) {
  if (index >= order_.size()) return;
  Buffer* old = selected();
  if (old != nullptr && index != selected_) {
    // Everything shown so far is read: the marker moves below it.
    old->marker_after.reset();
    for (auto it = old->messages.rbegin(); it != old->messages.rend(); ++it) {
      if (!it->id.empty()) {
        old->marker_after = it->id;
        break;
      }
    }
    old->marker_set = true;
  }
  selected_ = index;
  Buffer& b = *selected();
  if (!b.marker_set) {
    b.unread_at_open = b.unread;
    if (b.loaded) place_marker_from_unread(b);
  }
  ensure_loaded(b);
  if (!b.roster_loaded && !b.roster_loading) refresh_roster(b);
  if (b.unread > 0 || b.mentions > 0) mark_read(b);
}

void ChatModel::ensure_loaded(Buffer& b) {
  if (b.loaded || b.loading_latest || !connected_) return;
  b.loading_latest = true;
  Json args = {{"group", b.id}, {"limit", log_page_messages}};
  request(
      {"log", std::move(args), NodeRequest::Purpose::log_latest, b.id, "", Command::Kind::help});
}

void ChatModel::mark_read(Buffer& b) {
  b.unread = 0;
  b.mentions = 0;
  if (!connected_) return;
  request(
      {"read", Json{{"group", b.id}}, NodeRequest::Purpose::read, b.id, "", Command::Kind::help});
}

void ChatModel::place_marker_from_unread(Buffer& b) {
  // The marker goes above the last unread_at_open posts by others.
  std::size_t left = b.unread_at_open;
  b.marker_set = true;
  b.marker_after.reset();
  std::size_t k = b.messages.size();
  while (k > 0 && left > 0) {
    --k;
    const Message& m = b.messages[k];
    if (m.kind == "post" && m.author != own_id_) --left;
  }
  if (left > 0) return;  // more unread than loaded: the marker sits at the top
  for (std::size_t j = k; j > 0; --j) {
    if (!b.messages[j - 1].id.empty()) {
      b.marker_after = b.messages[j - 1].id;
      return;
    }
  }
}

void ChatModel::trim(Buffer& b) {
  if (b.messages.size() <= scrollback_messages_max) return;
  const std::size_t drop = b.messages.size() - scrollback_messages_max;
  for (std::size_t i = 0; i < drop; ++i) b.ids.erase(b.messages[i].id);
  b.messages.erase(b.messages.begin(), b.messages.begin() + static_cast<std::ptrdiff_t>(drop));
  b.history_complete = false;
}

void ChatModel::append(Buffer& b, Message m) {
  if (!m.id.empty() && !b.ids.insert(m.id).second) return;
  // On screen with nothing unread below the marker, the marker follows the newest message, so
  // it only ever marks what arrived while the group was away.
  const bool on_screen = &b == selected();
  if (on_screen && !m.id.empty() && b.marker_set && b.marker_after) {
    auto last = std::find_if(b.messages.rbegin(), b.messages.rend(),
                             [](const Message& x) { return !x.id.empty(); });
    if (last != b.messages.rend() && last->id == *b.marker_after) b.marker_after = m.id;
  }
  // Our own messages still in the outbox stay below everything else until they are sent.
  auto at = b.messages.end();
  if (m.kind != "pending")
    while (at != b.messages.begin() && std::prev(at)->kind == "pending") --at;
  const bool counts = !m.id.empty() && !hidden(m);
  at = b.messages.insert(at, std::move(m));
  const std::size_t index = static_cast<std::size_t>(at - b.messages.begin());
  const std::size_t before = b.messages.size();
  trim(b);
  const std::size_t k = index - (before - b.messages.size());
  if (b.scroll_rows > 0 && &b == selected()) {
    // Keep the rows on screen where they are while the reader is scrolled up, and say that
    // something new is below.
    b.scroll_rows +=
        message_block(b, k, message_area_cols(last_cols_), marker_index(b)).size();
    if (counts) ++b.new_below;
  }
}

void ChatModel::merge_latest(Buffer& b, std::vector<Message> page) {
  // page is the newest part of the group's log, contiguous and authoritative for its range.
  std::set<std::string> page_ids;
  for (const auto& m : page) page_ids.insert(m.id);
  std::size_t first_overlap = b.messages.size();
  for (std::size_t i = 0; i < b.messages.size(); ++i) {
    if (page_ids.count(b.messages[i].id)) {
      first_overlap = i;
      break;
    }
  }
  std::vector<Message> merged;
  const bool overlap = first_overlap < b.messages.size();
  const std::int64_t page_end_ms = page.empty() ? 0 : page.back().time_ms;
  if (overlap) {
    // Older messages we hold, then the page, then what arrived after it (stream, info lines).
    for (std::size_t i = 0; i < first_overlap; ++i) merged.push_back(std::move(b.messages[i]));
  } else {
    // No overlap: a gap (we were away for longer than a page) or only newer stream messages.
    b.history_complete = false;
  }
  for (auto& m : page) merged.push_back(std::move(m));
  for (std::size_t i = overlap ? first_overlap : 0; i < b.messages.size(); ++i) {
    Message& m = b.messages[i];
    if (!m.id.empty() && page_ids.count(m.id)) continue;
    if (!overlap && m.id.empty() == false && m.time_ms < page_end_ms) continue;
    merged.push_back(std::move(m));
  }
  b.messages = std::move(merged);
  b.ids.clear();
  for (const auto& m : b.messages)
    if (!m.id.empty()) b.ids.insert(m.id);
  trim(b);
  b.loaded = true;
  if (!b.marker_set && &b == selected()) place_marker_from_unread(b);
}

void ChatModel::prepend_older(Buffer& b, std::vector<Message> page) {
  std::vector<Message> fresh;
  for (auto& m : page)
    if (!m.id.empty() && !b.ids.count(m.id)) fresh.push_back(std::move(m));
  const std::size_t room = b.messages.size() >= scrollback_messages_max
                               ? 0
                               : scrollback_messages_max - b.messages.size();
  if (fresh.size() > room) {
    fresh.erase(fresh.begin(), fresh.end() - static_cast<std::ptrdiff_t>(room));
    notify("scrollback holds " + std::to_string(scrollback_messages_max) +
               " messages; `qun log` shows older ones",
           false);
  }
  for (const auto& m : fresh) b.ids.insert(m.id);
  b.messages.insert(b.messages.begin(), std::make_move_iterator(fresh.begin()),
                    std::make_move_iterator(fresh.end()));
}

void ChatModel::maybe_load_older(Buffer& b) {
  if (!connected_ || b.history_complete || b.loading_older || !b.loaded) return;
  if (b.messages.size() >= scrollback_messages_max) {
    notify("scrollback holds " + std::to_string(scrollback_messages_max) +
               " messages; `qun log` shows older ones",
           false);
    return;
  }
  auto oldest = std::find_if(b.messages.begin(), b.messages.end(),
                             [](const Message& m) { return !m.id.empty(); });
  if (oldest == b.messages.end()) return;
  b.loading_older = true;
  Json args = {{"group", b.id}, {"limit", log_page_messages}, {"before", oldest->id}};
  request({"log", std::move(args), NodeRequest::Purpose::log_older, b.id, "", Command::Kind::help});
}

void ChatModel::on_stream(const Json& v) {
  const auto stream = json_string(v, "stream");
  if (!stream) return;
  if (*stream == "groups") {
    request({"group.list", Json::object(), NodeRequest::Purpose::group_list, "", "",
             Command::Kind::help});
    return;
  }
  if (*stream != "message") return;
  const auto group_id = json_string(v, "group");
  auto it = v.find("message");
  if (!group_id || it == v.end()) return;
  auto parsed = parse_message(*it);
  if (!parsed.ok()) return;
  Message m = std::move(parsed).value();
  Buffer* b = find(*group_id);
  if (b == nullptr) return;  // a group we do not list yet; its "groups" notice follows
  if (b->ids.count(m.id)) return;
  if (m.kind == "set-topic") b->topic = m.text.value_or("");
  if (m.kind == "set-name" && m.text) b->name = *m.text;
  const bool own = !own_id_.empty() && m.author == own_id_;
  if (own && m.kind == "post" && m.text) {
    // Our post is in: its pending line goes (the acknowledgement may come after the message).
    for (const auto& o : outbox_) {
      if (o.sent && o.group == b->id && o.text == *m.text) {
        remove_pending(o.number);
        break;
      }
    }
  }
  const bool mention =
      !own && m.kind == "post" && m.text && own_nick_ && mentions(*m.text, *own_nick_);
  const bool is_post = m.kind == "post";
  const bool membership = m.kind == "join" || m.kind == "add" || m.kind == "remove" ||
                          m.kind == "leave" || m.kind == "set-role";
  if (membership) on_membership_event(*b, m);
  append(*b, std::move(m));
  if (own || !is_post) return;
  if (b == selected()) {
    mark_read(*b);
  } else {
    ++b->unread;
    if (mention) ++b->mentions;
  }
  if (mention) actions_.push_back(Bell{});
}

void ChatModel::quit() {
  // Messages still in the outbox live only in this process: quitting loses them, so it takes
  // a second Ctrl+C or /quit (anything else in between cancels).
  const std::size_t waiting = outbox_.size();
  if (waiting == 0 || quit_confirm_) {
    actions_.push_back(Quit{});
    return;
  }
  quit_confirm_ = true;
  notify(plural(waiting, "message is", "messages are") +
             " not sent yet (the node has not taken them); Ctrl+C again quits and loses them",
         true);
}

void ChatModel::on_key(const Key& key) {
  using K = Key::Kind;
  const bool quitting = (key.kind == K::ctrl && key.ch == 'c') || key.kind == K::enter;
  if (!quitting) quit_confirm_ = false;
  // A key press answers whatever the status line said: it goes (a new error may replace it).
  if (key.kind != K::paste_begin && key.kind != K::paste_end) notice_.reset();
  switch (key.kind) {
    case K::scroll_bottom:
      scroll_to_bottom();
      return;
    case K::text: {
      std::string s;
      append_utf8(s, key.ch);
      if (!input_.insert(s))
        notify("the input is full (" + std::to_string(input_bytes_max) + " bytes)", true);
      return;
    }
    case K::enter:
      if (pasting_) {
        if (!input_.insert("\n"))
          notify("the input is full (" + std::to_string(input_bytes_max) + " bytes)", true);
      } else {
        submit();
      }
      return;
    case K::backspace:
      input_.backspace();
      return;
    case K::erase:
      input_.erase_forward();
      return;
    case K::left:
      input_.left();
      return;
    case K::right:
      input_.right();
      return;
    case K::home:
      input_.home();
      return;
    case K::end:
      input_.end();
      return;
    case K::up:
      input_.history_prev();
      return;
    case K::down:
      input_.history_next();
      return;
    case K::page_up:
      scroll(1);
      return;
    case K::page_down:
      scroll(-1);
      return;
    case K::tab:
      if (pasting_) {
        if (!input_.insert(" ")) notify("the input is full", true);
      } else {
        complete_nick();
      }
      return;
    case K::alt_digit:
      if (key.ch >= 1 && key.ch <= 9) select(key.ch - 1);
      return;
    case K::paste_begin:
      pasting_ = true;
      return;
    case K::paste_end:
      pasting_ = false;
      return;
    case K::ctrl:
      switch (key.ch) {
        case 'a':
          input_.home();
          return;
        case 'e':
          input_.end();
          return;
        case 'u':
          input_.kill_to_start();
          return;
        case 'k':
          input_.kill_to_end();
          return;
        case 'w':
          input_.kill_word();
          return;
        case 'd':
          input_.erase_forward();
          return;
        case 'n':
          if (!order_.empty()) select((selected_ + 1) % order_.size());
          return;
        case 'p':
          if (!order_.empty()) select((selected_ + order_.size() - 1) % order_.size());
          return;
        case 'c':
          quit();
          return;
        case 'o':
          if (Buffer* b = selected()) {
            b->unfolded = !b->unfolded;
            notify(b->unfolded ? "long messages shown whole (Ctrl+O folds them)"
                               : "long messages folded (Ctrl+O unfolds them)",
                   false);
          }
          return;
        default:
          return;
      }
  }
}

void ChatModel::submit() {
  const std::string typed = input_.text();
  std::string text = trim_right(typed);
  std::size_t lead = 0;
  while (lead < text.size() && text[lead] == '\n') ++lead;
  text.erase(0, lead);
  if (text.empty()) return;
  // A /leave or /quit waiting for its confirmation is cancelled by anything else.
  const bool quit_confirming = quit_confirm_;
  quit_confirm_ = false;
  std::optional<std::string> confirming = std::move(leave_confirm_);
  leave_confirm_.reset();
  if (text[0] == '/' && !(text.size() > 1 && text[1] == '/')) {
    auto c = parse_command(text);
    if (!c.ok()) {
      notify(c.error().context(), true);
      return;
    }
    if (c->kind == Command::Kind::quit) {
      input_.clear();
      quit_confirm_ = quit_confirming;
      quit();
      return;
    }
    if (c->kind == Command::Kind::help) {
      input_.remember(typed);
      input_.clear();
      if (selected() == nullptr) {
        notify("/join CODE joins a group; /quit quits", false);
        return;
      }
      for (const auto& line : help_lines()) add_info(line, false);
      return;
    }
    if (c->kind == Command::Kind::leave) {
      const Buffer* b = selected();
      if (b != nullptr && confirming != b->id) {
        // Leaving deletes the group's history on this machine: ask first, as a line that
        // stays in the conversation rather than a notice that goes away.
        leave_confirm_ = b->id;
        input_.remember(typed);
        input_.clear();
        add_info("/leave deletes " + sanitize(b->label, false) +
                     " and its history from this machine; type /leave again to leave "
                     "(anything else cancels)",
                 true);
        return;
      }
    }
    run_command(*c, typed);
    return;
  }
  if (text[0] == '/') text.erase(0, 1);  // "//text" posts "/text"
  Buffer* b = selected();
  if (b == nullptr) {
    notify("no group yet: /join CODE joins one", true);
    return;
  }
  if (!b->member) {
    notify("you are not a member of " + sanitize(b->label, false) +
               " any more; ask a member for a new invite, then /join CODE",
           true);
    return;
  }
  if (text.size() > limits::post_text_bytes_max) {
    notify("message too large: " + std::to_string(text.size()) + " bytes, at most " +
               std::to_string(limits::post_text_bytes_max) + "; it stays in the input",
           true);
    return;
  }
  if (outbox_.size() >= outbox_messages_max) {
    notify(std::to_string(outbox_messages_max) +
               " messages are waiting for the node already; this one stays in the input",
           true);
    return;
  }
  // Every post goes through the outbox: shown at once as pending, sent now or when the node is
  // back, and gone from the outbox when the node has it.
  Outgoing o{next_outgoing_++, b->id, text, typed, false};
  Message pending;
  pending.kind = "pending";
  pending.author = own_id_;
  pending.nick = own_nick_;
  pending.text = text;
  pending.pending = o.number;
  outbox_.push_back(std::move(o));
  b->scroll_rows = 0;
  b->new_below = 0;
  append(*b, std::move(pending));
  input_.remember(typed);
  input_.clear();
  if (!connected_)
    notify("the node is not running: your message is queued and goes out when it is back", false);
  send_outbox();
}

void ChatModel::run_command(const Command& c, const std::string& typed) {
  using K = Command::Kind;
  if (!connected_) {
    notify("not connected to the node; your command stays here until it is back", true);
    return;
  }
  Buffer* b = selected();
  if (b == nullptr && c.kind != K::join) {
    notify("no group yet: /join CODE joins one", true);
    return;
  }
  NodeRequest r;
  r.purpose = NodeRequest::Purpose::command;
  r.command = c.kind;
  r.typed = typed;
  if (b != nullptr) r.group = b->id;
  switch (c.kind) {
    case K::join:
      r.op = "join";
      r.args = {{"code", c.arg}};
      break;
    case K::invite:
      r.op = "invite";
      r.args = {{"group", b->id}, {"uses", c.uses}, {"expires_ms", c.expires_ms}};
      break;
    case K::members:
      r.op = "members";
      r.args = {{"group", b->id}};
      break;
    case K::kick:
    case K::promote: {
      r.op = c.kind == K::kick ? "kick" : "promote";
      // A label that tells two members of one nick apart (bob·1b11) names that member's id.
      std::string member = c.arg;
      for (const auto& [id, m] : b->roster)
        if (m.label == c.arg && c.arg.find("\u00B7") != std::string::npos) member = id;
      r.args = {{"group", b->id}, {"member", member}};
      break;
    }
    case K::topic:
      r.op = "topic";
      r.args = {{"group", b->id}, {"text", c.arg}};
      break;
    case K::leave:
      r.op = "leave";
      r.args = {{"group", b->id}};
      break;
    case K::relays:
      r.op = "relays";
      r.args = {{"group", b->id}};
      break;
    case K::help:
    case K::quit:
      return;
  }
  request(std::move(r));
  input_.remember(typed);
  input_.clear();
}

void ChatModel::complete_nick() {
  Buffer* b = selected();
  if (b == nullptr) return;
  const std::string& text = input_.text();
  const std::size_t end = input_.cursor();
  std::size_t start = end;
  while (start > 0 && text[start - 1] != ' ' && text[start - 1] != '\n') --start;
  std::string word = text.substr(start, end - start);
  if (word.empty()) return;
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(fold_case(static_cast<unsigned char>(c)));
    return s;
  };
  const std::string prefix = lower(word);
  std::set<std::string> candidates;
  for (const auto& m : b->messages) {
    if (!m.nick || m.nick->empty() || m.author == own_id_) continue;
    const std::string nick = sanitize(*m.nick, false);
    if (lower(nick).compare(0, prefix.size(), prefix) == 0) candidates.insert(nick);
  }
  if (candidates.empty()) return;
  std::string completion = *candidates.begin();
  if (candidates.size() > 1) {
    // The longest common prefix, cut back to a character boundary.
    for (const auto& c : candidates) {
      std::size_t n = 0;
      while (n < completion.size() && n < c.size() && completion[n] == c[n]) ++n;
      completion.resize(n);
    }
    while (!completion.empty() && (static_cast<unsigned char>(completion.back()) & 0xC0) == 0x80)
      completion.pop_back();
    if (!completion.empty() && static_cast<unsigned char>(completion.back()) >= 0xC0)
      completion.pop_back();
    std::string list;
    for (const auto& c : candidates) list += (list.empty() ? "" : ", ") + c;
    notify(list, false);
    if (completion.size() <= word.size()) return;
  } else {
    completion += start == 0 ? ": " : " ";
  }
  std::string rebuilt = text.substr(0, start) + completion;
  const std::size_t cursor = rebuilt.size();
  rebuilt += text.substr(end);
  input_.set(rebuilt);
  input_.home();
  while (input_.cursor() < cursor) input_.right();
}

void ChatModel::scroll_to_bottom() {
  if (Buffer* b = selected()) {
    b->scroll_rows = 0;
    b->new_below = 0;
  }
}

void ChatModel::scroll(int pages) {
  Buffer* b = selected();
  if (b == nullptr) return;
  const std::size_t height = message_area_rows(last_rows_);
  const std::size_t step = height > 2 ? height - 2 : 1;
  if (pages < 0) {
    b->scroll_rows = b->scroll_rows > step ? b->scroll_rows - step : 0;
    if (b->scroll_rows == 0) b->new_below = 0;
    return;
  }
  bool all = false;
  const std::size_t total =
      rows_from_bottom(*b, message_area_cols(last_cols_), SIZE_MAX, &all).size();
  const std::size_t max_scroll = total > height ? total - height : 0;
  b->scroll_rows = std::min(b->scroll_rows + step, max_scroll);
  if (b->scroll_rows + height + step >= total) maybe_load_older(*b);
}

// ---------------------------------------------------------------------------------------------
// Layout.

std::size_t ChatModel::message_area_rows(int rows) const {
  return rows > 3 ? static_cast<std::size_t>(rows - 3) : 0;
}

int ChatModel::groups_pane_cols(int cols) const {
  if (cols < groups_pane_min_screen_cols || order_.empty()) return 0;
  int widest = 8;
  for (const auto& id : order_) {
    auto it = buffers_.find(id);
    if (it != buffers_.end())
      widest = std::max(widest, display_width(sanitize(it->second.label, false)));
  }
  return std::min(groups_pane_cols_max, widest + 8);  // "1 " + name + " 999@" and a space
}

int ChatModel::message_area_cols(int cols) const {
  const int pane = groups_pane_cols(cols);
  return std::max(1, pane > 0 ? cols - pane - 1 : cols);
}

std::optional<std::size_t> ChatModel::marker_index(const Buffer& b) const {
  if (!b.marker_set) return std::nullopt;
  std::size_t start = 0;
  if (b.marker_after) {
    // A marker message that left the scrollback is older than everything held: start at 0.
    for (std::size_t i = b.messages.size(); i > 0; --i) {
      if (b.messages[i - 1].id == *b.marker_after) {
        start = i;
        break;
      }
    }
  }
  // Local info lines are never news: the marker goes above the next shown message from the node.
  for (std::size_t i = start; i < b.messages.size(); ++i)
    if (!b.messages[i].id.empty() && !hidden(b.messages[i])) return i;
  return std::nullopt;
}

std::vector<Row> ChatModel::message_block(const Buffer& b, std::size_t k, int cols,
                                          std::optional<std::size_t> marker) const {
  std::vector<Row> rows;
  const Message& m = b.messages[k];
  if (hidden(m)) return rows;
  const bool info = m.kind == "info";
  const bool pending = m.kind == "pending";
  const LocalTime t = config_.time_format(m.time_ms);
  if (!info && !pending) {
    std::optional<std::string> previous_day;
    for (std::size_t j = k; j > 0; --j) {
      const Message& p = b.messages[j - 1];
      if (p.kind != "info" && p.kind != "pending" && !hidden(p)) {
        previous_day = config_.time_format(b.messages[j - 1].time_ms).day;
        break;
      }
    }
    if (!previous_day || *previous_day != t.day) rows.push_back(rule_row(t.day, Style::day, cols));
  }
  if (marker == k) {
    rows.push_back(rule_row("new messages", Style::marker, cols));
  }
  if (info && m.bare) {
    // An invite code to copy: rows of its own across the whole screen (over the groups pane),
    // so a selection of them holds the code and line breaks only, never the pane's text.
    const int code_cols = std::max(cols, last_cols_);
    for (auto& line : wrap(sanitize(m.text.value_or(""), true), code_cols, code_cols))
      rows.push_back({{std::move(line), Style::code, 0}});
    return rows;
  }
  // Local lines have no time of their own (the model has no wall clock): blank instead.
  const std::string clock = info || pending ? spaces(display_width(t.clock)) : t.clock;
  const int clock_cols = display_width(clock);
  const bool own = !own_id_.empty() && m.author == own_id_;

  Style text_style = Style::normal;
  std::string text;
  Row head;
  head.push_back({clock, Style::time, 0});
  head.push_back({" ", Style::normal, 0});
  if (info) {
    text = sanitize(m.text.value_or(""), true);
    text_style = m.error ? Style::error : Style::info;
    head.push_back({"-- ", text_style, 0});
  } else if (pending) {
    const std::string nick = truncate_to_width(display_nick(own_nick_, own_id_), nick_cols_max);
    head.push_back({nick, Style::own_nick, 0});
    head.push_back({": ", Style::normal, 0});
    text = sanitize(m.text.value_or(""), true);
    text_style = Style::system;
  } else if (m.kind == "post") {
    const std::string nick = truncate_to_width(author_label(b, m), nick_cols_max);
    head.push_back({nick, own ? Style::own_nick : Style::nick, nick_color(m.author)});
    head.push_back({": ", Style::normal, 0});
    if (m.text) {
      text = sanitize(*m.text, true);
      text_style = own                                          ? Style::own_text
                   : own_nick_ && mentions(*m.text, *own_nick_) ? Style::mention
                                                                : Style::normal;
    } else {
      text = render::unreadable_text;
      text_style = Style::system;
    }
  } else {
    head.push_back({"* ", Style::system, 0});
    // Members who share a nick are told apart here too (their labels, once the roster is in).
    Message shown = m;
    if (auto it = b.roster.find(m.author); it != b.roster.end()) shown.nick = it->second.label;
    if (m.target)
      if (auto it = b.roster.find(*m.target); it != b.roster.end())
        shown.target_nick = it->second.label;
    text = system_text(shown);
    text_style = Style::system;
  }
  if (pending) text += connected_ ? " (sending)" : " (pending: waiting for the node)";
  const int head_cols = row_width(head);
  // Continuation lines start under the text when that leaves room, else under the clock's end.
  const int indent = cols - head_cols >= 20 ? head_cols : std::min(clock_cols + 1, cols - 1);
  auto lines = wrap(text, cols - head_cols, cols - indent);
  std::size_t folded = 0;
  if (!b.unfolded && !info && lines.size() > fold_rows_max) {
    folded = lines.size() - fold_rows_shown;
    lines.resize(fold_rows_shown);
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    Row row;
    if (i == 0) {
      row = head;
    } else {
      row.push_back({spaces(indent), Style::normal, 0});
    }
    row.push_back({lines[i], text_style, 0});
    rows.push_back(clip_row(std::move(row), cols));
  }
  if (folded > 0) {
    rows.push_back(clip_row({{spaces(indent), Style::normal, 0},
                             {"\u2026 " + plural(folded, "more line", "more lines") +
                                  " (Ctrl+O unfolds)",
                              Style::system, 0}},
                            cols));
  }
  return rows;
}

std::vector<Row> ChatModel::rows_from_bottom(const Buffer& b, int cols, std::size_t need,
                                             bool* all) const {
  std::vector<std::vector<Row>> blocks;
  const std::optional<std::size_t> marker = marker_index(b);
  std::size_t count = 0;
  std::size_t k = b.messages.size();
  while (k > 0 && count < need) {
    --k;
    blocks.push_back(message_block(b, k, cols, marker));
    count += blocks.back().size();
  }
  *all = k == 0;
  std::vector<Row> rows;
  if (*all) {
    std::string header;
    Style style = Style::info;
    if (b.history_complete) {
      header = "the beginning of " + sanitize(b.label, false);
      style = Style::day;
    } else if (b.loading_older || (b.loading_latest && b.messages.empty())) {
      header = "loading messages\u2026";
    } else if (!b.messages.empty()) {
      header = connected_ ? "PageUp loads older messages" : "";
    }
    if (!header.empty()) rows.push_back(rule_row(header, style, cols));
  }
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
    for (auto& row : *it) rows.push_back(std::move(row));
  return rows;
}

Frame ChatModel::layout(int cols, int rows) {
  Frame f;
  f.cols = cols;
  f.rows = rows;
  if (cols < screen_cols_min || rows < screen_rows_min) {
    f.too_small = true;
    return f;
  }
  last_cols_ = cols;
  last_rows_ = rows;
  Buffer* b = selected();
  const int pane = groups_pane_cols(cols);
  const int area = message_area_cols(cols);
  const std::size_t height = message_area_rows(rows);
  f.groups_cols = pane;

  // Title: name, members and topic.
  if (b != nullptr) {
    std::string title = " " + sanitize(b->label, false);
    if (!b->member) {
      title += " \u00B7 not a member" +
               (b->removed_by.empty() ? std::string() : " (removed by " + b->removed_by + ")") +
               "; a new invite and /join CODE bring you back";
    } else if (b->members > 0) {
      title += " \u00B7 " + plural(b->members, "member", "members");
    }
    if (!b->topic.empty()) title += " \u2014 " + sanitize(b->topic, false);
    f.title = clip_row({{title, Style::title, 0}}, cols);
  } else {
    f.title = clip_row({{" qun chat", Style::title, 0}}, cols);
  }

  // Groups pane.
  if (pane > 0) {
    const std::size_t first = selected_ + 1 > height ? selected_ + 1 - height : 0;
    for (std::size_t i = first; i < order_.size() && f.groups.size() < height; ++i) {
      const Buffer& g = buffers_.at(order_[i]);
      std::string suffix;
      if (g.unread > 0) suffix = " " + std::to_string(std::min<std::size_t>(g.unread, 999));
      if (g.mentions > 0) suffix += "@";
      std::string label = (i < 9 ? std::to_string(i + 1) : std::string(" ")) + " ";
      const int name_cols = pane - display_width(label) - display_width(suffix) - 1;
      label += truncate_to_width(sanitize(g.label, false), name_cols);
      label += spaces(pane - 1 - display_width(label) - display_width(suffix)) + suffix;
      const Style style = i == selected_   ? Style::group_selected
                          : g.mentions > 0 ? Style::group_mention
                          : g.unread > 0   ? Style::group_unread
                                           : Style::group;
      f.groups.push_back(clip_row({{label, style, 0}}, pane));
    }
  }

  // Messages.
  if (b != nullptr) {
    bool all = false;
    std::vector<Row> all_rows = rows_from_bottom(*b, area, b->scroll_rows + height, &all);
    if (all) {
      const std::size_t max_scroll = all_rows.size() > height ? all_rows.size() - height : 0;
      b->scroll_rows = std::min(b->scroll_rows, max_scroll);
    }
    const std::size_t bottom = all_rows.size() - std::min(all_rows.size(), b->scroll_rows);
    const std::size_t top = bottom > height ? bottom - height : 0;
    for (std::size_t i = top; i < bottom; ++i) f.messages.push_back(std::move(all_rows[i]));
  } else {
    const std::vector<std::string> welcome = {
        connected_ ? "You are in no group yet." : "Waiting for the node\u2026",
        "Join one with /join CODE (an invite code from a member),",
        "or create one in a shell: qun group create NAME",
        "/help lists the commands; Ctrl+C quits."};
    for (const auto& line : welcome)
      for (const auto& l : wrap(line, area, area)) f.messages.push_back({{l, Style::info, 0}});
  }
  if (f.messages.size() > height)
    f.messages.erase(f.messages.begin(), f.messages.end() - static_cast<std::ptrdiff_t>(height));
  while (f.messages.size() < height) f.messages.insert(f.messages.begin(), Row{});

  // Status line.
  Row status;
  if (connected_) {
    std::string s = " node: connected \u00B7 " + plural(peers_, "peer", "peers");
    if (b != nullptr && !b->reachable)
      s += " \u00B7 no peer of this group reachable: posts wait here";
    else if (b != nullptr)
      s += b->synced ? " \u00B7 synced" : " \u00B7 syncing";
    if (b != nullptr && b->outbox > 0) s += " \u00B7 " + std::to_string(b->outbox) + " queued";
    status.push_back({s, Style::status, 0});
  } else {
    std::string s = " node: " + (disconnect_reason_.empty() ? "not running" : disconnect_reason_) +
                    " \u2014 retrying every second; your text is kept";
    status.push_back({s, Style::status_bad, 0});
  }
  if (b != nullptr && b->scroll_rows > 0) {
    if (b->new_below > 0)
      status.push_back({" \u00B7 " + plural(b->new_below, "new message", "new messages") +
                            " below (Alt+End)",
                        Style::notice, 0});
    else
      status.push_back({" \u00B7 scrolled up (PageDown, Alt+End)", Style::status, 0});
  }
  if (notice_) {
    status.push_back({" \u2502 ", Style::status, 0});
    status.push_back({*notice_, notice_error_ ? Style::notice_error : Style::notice, 0});
  }
  f.status = clip_row(std::move(status), cols);

  // Input line.
  f.prompt = pasting_ ? "paste> " : "> ";
  const int prompt_cols = display_width(f.prompt);
  const InputLine::Visible v = input_.visible(cols - prompt_cols);
  f.input = v.text;
  f.cursor_col = prompt_cols + v.cursor_col;
  return f;
}

}  // namespace qun::chat
