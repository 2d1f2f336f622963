// The ncursesw screen of `qun chat`: draws a Frame from the model and decodes the keyboard into
// Keys. It holds no chat state; everything it shows was laid out by ChatModel::layout.
//
// Opening a View takes over the terminal (initscr, raw mode, bracketed paste); destroying it
// gives the terminal back as it was (endwin, paste mode off, the saved termios). A crash signal
// (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) restores the terminal with async-signal-safe calls
// before the process dies. One View per process, used from one thread.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "cli/chat_model.h"
#include "base/result.h"

namespace qun::chat {

class View {
 public:
  // Errc::io when the terminal cannot be set up (no terminfo entry for $TERM, ...).
  [[nodiscard]] static Result<std::unique_ptr<View>> open();
  ~View();
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  void draw(const Frame& frame);
  int cols() const;
  int rows() const;
  void bell();

  // Decodes whatever the keyboard sent, without blocking. Resizes, Ctrl+L and Ctrl+Z are handled
  // here; the rest comes back as keys for the model, in order.
  std::vector<Key> read_keys();
  // Whether the terminal window has focus, when it said so since the last call (focus reporting,
  // DECSET 1004: xterm, VTE terminals, kitty, foot, tmux with focus-events on); nullopt when it
  // did not (a terminal that never reports focus never says).
  std::optional<bool> focus_change();

 private:
  View() = default;
  std::optional<bool> focus_;
  void redraw_all();
  void suspend();
};

}  // namespace qun::chat
