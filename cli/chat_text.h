// Text for a terminal, apart from any chat state: UTF-8 decoding, display width (CJK and emoji
// take two columns, combining marks none), sanitizing peer text so no control character reaches
// the terminal, wrapping, whole-word mention matching, and the editable input line.
//
// Pure functions and one value type (InputLine); thread-safe except that an InputLine is used
// from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "app/naming.h"
#include "node/limits.h"

namespace qun::chat {

// Lines remembered for Up/Down: more than a person scrolls through.
inline constexpr std::size_t input_history_max = 100;
// The input holds up to four maximal posts, so an oversized paste can be seen and cut down rather
// than silently truncated; past this, input is refused with a notice.
inline constexpr std::size_t input_bytes_max = 4 * limits::post_text_bytes_max;

// ---------------------------------------------------------------------------------------------
// UTF-8 and display width.

// Decodes the code point at pos and advances pos past it. Invalid or truncated sequences,
// overlong forms and surrogates decode as U+FFFD and advance by one byte, so every input ends.
char32_t next_code_point(std::string_view s, std::size_t& pos);
// Appends the UTF-8 encoding of c (U+FFFD for surrogates and values past U+10FFFF).
void append_utf8(std::string& out, char32_t c);
// Columns a code point takes on a terminal: wcwidth() under a UTF-8 locale (CJK and emoji 2,
// combining marks and joiners 0), -1 for controls and unassigned code points.
int code_point_width(char32_t c);
// Columns of a sanitized string (no controls). Newlines count as one column (they show as ↵).
int display_width(std::string_view s);
// Replaces invalid UTF-8, control characters and code points without a width by U+FFFD; tabs
// become a space, carriage returns vanish. Newlines are kept when keep_newlines, else shown as ↵.
std::string sanitize(std::string_view s, bool keep_newlines);
// Cuts a sanitized single-line string to at most cols columns, never inside a character.
std::string truncate_to_width(std::string_view s, int cols);
// Splits sanitized text into lines of at most first_cols columns (the first line) and rest_cols
// (the others), breaking at spaces where it can and inside words where it must, never inside a
// UTF-8 sequence or between a character and its combining marks. Newlines start a new line. A
// single character wider than the line gets a line of its own. Always at least one line.
std::vector<std::string> wrap(std::string_view text, int first_cols, int rest_cols);

// True when text mentions nick, and one code point folded for caseless comparison: the one rule
// of app/naming.h (whole words, Unicode case folding), which the node's mention counts use too.
using naming::mentions;
using naming::fold_case;

// ---------------------------------------------------------------------------------------------
// The input line.

// An editable UTF-8 line with a cursor that always sits on a character boundary (a character
// here is a code point with the zero-width marks that follow it). It may hold newlines (a
// multi-line paste is one message). Bounded by input_bytes_max.
class InputLine {
 public:
  const std::string& text() const { return text_; }
  std::size_t cursor() const { return cursor_; }  // a byte offset into text()
  bool empty() const { return text_.empty(); }

  // Inserts at the cursor (sanitized, newlines kept). False when it would pass input_bytes_max;
  // then nothing is inserted.
  [[nodiscard]] bool insert(std::string_view utf8);
  void left();
  void right();
  void home();
  void end();
  void backspace();      // deletes the character before the cursor
  void erase_forward();  // Delete: the character under the cursor
  void kill_to_start();  // Ctrl+U
  void kill_to_end();    // Ctrl+K
  void kill_word();      // Ctrl+W: spaces before the cursor, then the word before them
  // Replaces the text (cursor at the end); used for history and for restoring a failed send.
  void set(std::string text);
  void clear() { set(std::string()); }

  // Submitted lines, for Up/Down. Remembering leaves the history cursor at the draft.
  void remember(const std::string& line);
  void history_prev();  // Up: the draft is saved the first time
  void history_next();  // Down: back towards the draft
  std::size_t history_size() const { return history_.size(); }

  // What fits in cols columns around the cursor, and the cursor's column in it. Keeps a
  // horizontal scroll position between calls so the text does not jump while editing.
  struct Visible {
    std::string text;
    int cursor_col = 0;
  };
  Visible visible(int cols);

 private:
  std::string text_;
  std::size_t cursor_ = 0;
  int scroll_col_ = 0;
  std::deque<std::string> history_;
  std::size_t history_pos_ = 0;  // == history_.size(): editing the draft
  std::string draft_;
};

}  // namespace qun::chat
