#include "cli/chat_text.h"

#include <locale.h>
#include <wchar.h>
#include <wctype.h>

#include <algorithm>

#include "base/utf8.h"

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
std::string spaces(int n) { return std::string(static_cast<std::size_t>(std::max(0, n)), ' '); }

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

}  // namespace qun::chat
