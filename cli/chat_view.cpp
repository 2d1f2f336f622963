#include "cli/chat_view.h"

#include <curses.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>

namespace qun::chat {
namespace {

// Key codes we teach ncurses for the bracketed-paste markers (ESC [200~ and ESC [201~).
constexpr int key_paste_begin = KEY_MAX + 1;
constexpr int key_paste_end = KEY_MAX + 2;
// Alt+End and Ctrl+End (xterm's modified End: ESC [1;3F, ESC [1;5F; rxvt's Ctrl+End ESC [8^):
// back to the newest message, as weechat's Alt+End.
constexpr int key_scroll_bottom = KEY_MAX + 3;
// Alt+Up and Alt+Down as xterm, tmux and most terminals send them (modifier 3 is Alt).
constexpr int key_select_up = KEY_MAX + 4;
constexpr int key_select_down = KEY_MAX + 5;
// Focus reports (DECSET 1004): ESC [ I when the window gains focus, ESC [ O when it loses it.
constexpr int key_focus_in = KEY_MAX + 6;
constexpr int key_focus_out = KEY_MAX + 7;
// How long a lone ESC waits for the rest of an Alt+key or escape sequence, in ms: short enough
// not to be felt, long enough for a terminal over ssh to send the next byte.
constexpr int escape_delay_ms = 25;

// The terminal as it was before we took it, for the crash handler (which cannot call ncurses).
struct termios saved_termios;
bool have_saved_termios = false;
SCREEN* screen = nullptr;
struct sigaction previous_actions[32];
constexpr int crash_signals[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};

extern "C" void restore_on_crash(int sig) {
  // Bracketed paste off, cursor visible, leave the alternate screen; then the saved tty modes.
  static const char reset[] = "\033[?2004l\033[?1004l\033[?25h\033[?1049l\r\n";
  ssize_t ignored = ::write(STDOUT_FILENO, reset, sizeof reset - 1);
  (void)ignored;
  if (have_saved_termios) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
  ::sigaction(sig, &previous_actions[sig], nullptr);
  ::raise(sig);
}

void write_raw(const char* s) {
  ssize_t ignored = ::write(STDOUT_FILENO, s, std::strlen(s));
  (void)ignored;
}

// Colour pairs.
enum Pair : short {
  pair_default = 0,
  pair_red = 1,
  pair_green,
  pair_yellow,
  pair_blue,
  pair_magenta,
  pair_cyan,
  pair_status_bad,
  pair_title,
};
constexpr short nick_pairs[nick_colors] = {pair_cyan,  pair_magenta, pair_yellow,
                                           pair_green, pair_blue,    pair_red};
bool colors = false;

attr_t with(short pair, attr_t a) { return colors ? (a | COLOR_PAIR(pair)) : a; }

attr_t attr_of(const Span& s) {
  switch (s.style) {
    case Style::normal:
      return A_NORMAL;
    case Style::time:
      return A_DIM;
    case Style::nick:
      return with(nick_pairs[s.color % nick_colors], A_NORMAL);
    case Style::own_nick:
      return with(pair_green, A_BOLD);
    case Style::own_text:
      return A_NORMAL;
    case Style::mention:
      return with(pair_yellow, A_BOLD);
    case Style::system:
      return A_DIM;
    case Style::info:
      return with(pair_cyan, A_NORMAL);
    case Style::error:
      return with(pair_red, A_BOLD);
    case Style::code:
      return A_BOLD;
    case Style::marker:
      return with(pair_red, A_NORMAL);
    case Style::day:
      return A_DIM;
    case Style::title:
      return colors ? with(pair_title, A_BOLD) : A_REVERSE | A_BOLD;
    case Style::status:
      return colors ? with(pair_title, A_NORMAL) : A_REVERSE;
    case Style::status_bad:
      return colors ? with(pair_status_bad, A_BOLD) : A_REVERSE | A_BOLD;
    case Style::notice:
      return colors ? with(pair_title, A_NORMAL) : A_REVERSE;
    case Style::notice_error:
      return colors ? with(pair_status_bad, A_BOLD) : A_REVERSE | A_BOLD;
    case Style::group:
      return A_NORMAL;
    case Style::group_selected:
      return A_REVERSE;
    case Style::group_unread:
      return A_BOLD;
    case Style::group_mention:
      return with(pair_yellow, A_BOLD);
    case Style::separator:
      return A_DIM;
    case Style::ref:
      return with(pair_cyan, A_DIM);
    case Style::selected:
      return A_REVERSE | A_BOLD;
    case Style::quote:
      return A_DIM;
    case Style::reaction:
      return A_NORMAL;
    case Style::channel:
      return A_NORMAL;
  }
  return A_NORMAL;
}

std::wstring widen(std::string_view s) {
  std::wstring out;
  out.reserve(s.size());
  std::size_t pos = 0;
  while (pos < s.size()) out.push_back(static_cast<wchar_t>(next_code_point(s, pos)));
  return out;
}

// Draws a row of spans at (y, x); fills the rest of `cols` with `fill`'s attributes.
void draw_row(int y, int x, int cols, const Row& row, attr_t fill) {
  attrset(fill);
  mvhline(y, x, ' ', cols);
  move(y, x);
  for (const auto& span : row) {
    attrset(attr_of(span));
    const std::wstring w = widen(span.text);
    addnwstr(w.c_str(), static_cast<int>(w.size()));
  }
  attrset(A_NORMAL);
}

}  // namespace

Result<std::unique_ptr<View>> View::open() {
  if (::tcgetattr(STDIN_FILENO, &saved_termios) == 0) have_saved_termios = true;
  // newterm rather than initscr: initscr exits the process when $TERM is unknown.
  screen = newterm(nullptr, stdout, stdin);
  if (screen == nullptr) return Error(Errc::io, "cannot use this terminal (is TERM set?)");
  for (int sig : crash_signals) {
    struct sigaction sa {};
    sa.sa_handler = restore_on_crash;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    ::sigaction(sig, &sa, &previous_actions[sig]);
  }
  raw();  // Ctrl+C, Ctrl+Z, Ctrl+S arrive as keys; the model decides
  noecho();
  nonl();
  keypad(stdscr, TRUE);
  nodelay(stdscr, TRUE);
  set_escdelay(escape_delay_ms);
  if (has_colors()) {
    start_color();
    use_default_colors();
    colors = true;
    init_pair(pair_red, COLOR_RED, -1);
    init_pair(pair_green, COLOR_GREEN, -1);
    init_pair(pair_yellow, COLOR_YELLOW, -1);
    init_pair(pair_blue, COLOR_BLUE, -1);
    init_pair(pair_magenta, COLOR_MAGENTA, -1);
    init_pair(pair_cyan, COLOR_CYAN, -1);
    init_pair(pair_status_bad, COLOR_WHITE, COLOR_RED);
    init_pair(pair_title, COLOR_WHITE, COLOR_BLUE);
  }
  define_key("\033[200~", key_paste_begin);
  define_key("\033[201~", key_paste_end);
  for (const char* end : {"\033[1;3F", "\033[1;5F", "\033[4;3~", "\033[4;5~",
                          "\033[8^", "\033[1;7F"})
    define_key(end, key_scroll_bottom);
  define_key("\033[1;3A", key_select_up);
  define_key("\033[1;3B", key_select_down);
  define_key("\033[I", key_focus_in);
  define_key("\033[O", key_focus_out);
  write_raw("\033[?2004h");  // bracketed paste: pasted newlines stay in the message
  write_raw("\033[?1004h");  // focus reports: the node notifies only while the chat is unfocused
  return std::unique_ptr<View>(new View());
}

View::~View() {
  write_raw("\033[?2004l\033[?1004l");
  endwin();
  delscreen(screen);
  screen = nullptr;
  for (int sig : crash_signals) ::sigaction(sig, &previous_actions[sig], nullptr);
  if (have_saved_termios) ::tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
}

int View::cols() const { return COLS; }

std::optional<bool> View::focus_change() { return std::exchange(focus_, std::nullopt); }
int View::rows() const { return LINES; }

void View::bell() { beep(); }

void View::redraw_all() { clearok(curscr, TRUE); }

void View::suspend() {
  write_raw("\033[?2004l\033[?1004l");
  def_prog_mode();
  endwin();
  ::raise(SIGTSTP);  // stops here until `fg`
  reset_prog_mode();
  write_raw("\033[?2004h\033[?1004h");
  redraw_all();
}

void View::draw(const Frame& f) {
  erase();
  if (f.too_small) {
    mvaddstr(0, 0, "terminal too small");
    refresh();
    return;
  }
  draw_row(0, 0, f.cols, f.title, attr_of(Span{"", Style::title, 0}));
  const int body_rows = f.rows - 3;
  const int messages_x = f.groups_cols > 0 ? f.groups_cols + 1 : 0;
  auto wide = [&](int i) {
    return i < static_cast<int>(f.messages.size()) &&
           is_wide_row(f.messages[static_cast<std::size_t>(i)]);
  };
  for (int i = 0; i < body_rows; ++i) {
    if (wide(i)) {
      draw_row(1 + i, 0, f.cols, f.messages[static_cast<std::size_t>(i)], A_NORMAL);
      continue;
    }
    if (f.groups_cols > 0) {
      const Row empty;
      const Row& g =
          i < static_cast<int>(f.groups.size()) ? f.groups[static_cast<std::size_t>(i)] : empty;
      const attr_t fill = !g.empty() && g[0].style == Style::group_selected ? A_REVERSE : A_NORMAL;
      draw_row(1 + i, 0, f.groups_cols, g, fill);
    }
    if (i < static_cast<int>(f.messages.size()))
      draw_row(1 + i, messages_x, f.cols - messages_x, f.messages[static_cast<std::size_t>(i)],
               A_NORMAL);
  }
  if (f.groups_cols > 0) {
    // U+2502 rather than ACS_VLINE: the alternate character set is unreliable inside
    // multiplexers and over some terminal emulators in UTF-8 mode.
    attrset(A_DIM);
    for (int i = 0; i < body_rows; ++i)
      if (!wide(i)) mvaddwstr(1 + i, f.groups_cols, L"\u2502");
    attrset(A_NORMAL);
  }
  const Style status_fill = !f.status.empty() ? f.status[0].style : Style::status;
  draw_row(f.rows - 2, 0, f.cols, f.status, attr_of(Span{"", status_fill, 0}));
  draw_row(f.rows - 1, 0, f.cols, {{f.prompt, Style::normal, 0}, {f.input, Style::normal, 0}},
           A_NORMAL);
  move(f.rows - 1, std::min(f.cursor_col, f.cols - 1));
  refresh();
}

std::vector<Key> View::read_keys() {
  std::vector<Key> keys;
  using K = Key::Kind;
  for (;;) {
    wint_t ch = 0;
    const int r = get_wch(&ch);
    if (r == ERR) break;
    if (r == KEY_CODE_YES) {
      switch (ch) {
        case KEY_RESIZE:
          break;  // ncurses has resized stdscr; the next draw lays out the new size
        case KEY_ENTER:
          keys.push_back({K::enter, 0});
          break;
        case KEY_BACKSPACE:
          keys.push_back({K::backspace, 0});
          break;
        case KEY_DC:
          keys.push_back({K::erase, 0});
          break;
        case KEY_LEFT:
          keys.push_back({K::left, 0});
          break;
        case KEY_RIGHT:
          keys.push_back({K::right, 0});
          break;
        case KEY_HOME:
          keys.push_back({K::home, 0});
          break;
        case KEY_END:
          keys.push_back({K::end, 0});
          break;
        case KEY_UP:
          keys.push_back({K::up, 0});
          break;
        case KEY_DOWN:
          keys.push_back({K::down, 0});
          break;
        case KEY_PPAGE:
          keys.push_back({K::page_up, 0});
          break;
        case KEY_NPAGE:
          keys.push_back({K::page_down, 0});
          break;
        case key_paste_begin:
          keys.push_back({K::paste_begin, 0});
          break;
        case key_paste_end:
          keys.push_back({K::paste_end, 0});
          break;
        case key_scroll_bottom:
          keys.push_back({K::scroll_bottom, 0});
          break;
        case key_select_up:
          keys.push_back({K::select_up, 0});
          break;
        case key_select_down:
          keys.push_back({K::select_down, 0});
          break;
        case key_focus_in:
          focus_ = true;
          break;
        case key_focus_out:
          focus_ = false;
          break;
        default:
          break;  // function keys we do not use
      }
      continue;
    }
    switch (ch) {
      case '\r':
      case '\n':
        keys.push_back({K::enter, 0});
        continue;
      case '\t':
        keys.push_back({K::tab, 0});
        continue;
      case 127:
      case 8:
        keys.push_back({K::backspace, 0});
        continue;
      case 12:  // Ctrl+L
        redraw_all();
        continue;
      case 26:  // Ctrl+Z
        suspend();
        continue;
      case 27: {  // ESC: Alt+digit, Alt+Up/Down, or a lone Esc
        wint_t next = 0;
        const int n = get_wch(&next);
        if (n == ERR) {
          keys.push_back({K::escape, 0});
        } else if (n == OK && next >= '1' && next <= '9') {
          keys.push_back({K::alt_digit, static_cast<char32_t>(next - '0')});
        } else if (n == OK && next != 27) {
          unget_wch(static_cast<wchar_t>(next));
        } else if (n == KEY_CODE_YES && (next == KEY_END || next == key_scroll_bottom)) {
          keys.push_back({K::scroll_bottom, 0});  // Alt+End sent as ESC, End
        } else if (n == KEY_CODE_YES && (next == KEY_UP || next == KEY_DOWN)) {
          keys.push_back({next == KEY_UP ? K::select_up : K::select_down, 0});  // ESC, arrow
        } else if (n == KEY_CODE_YES) {
          ungetch(static_cast<int>(next));  // ESC then a function key: keep the key
        }
        continue;
      }
      default:
        break;
    }
    if (ch < 32) {
      keys.push_back({K::ctrl, static_cast<char32_t>('a' + ch - 1)});
      continue;
    }
    keys.push_back({K::text, static_cast<char32_t>(ch)});
  }
  // Without bracketed paste, a paste arrives as one burst: an Enter with more text right behind
  // it in the same burst is a newline inside the message, not a send.
  bool pasting = false;
  for (std::size_t i = 0; i + 1 < keys.size(); ++i) {
    if (keys[i].kind == K::paste_begin) pasting = true;
    if (keys[i].kind == K::paste_end) pasting = false;
    if (!pasting && keys[i].kind == K::enter && keys[i + 1].kind == K::text)
      keys[i] = {K::text, '\n'};
  }
  return keys;
}

}  // namespace qun::chat
