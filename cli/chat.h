// `qun chat`: the chat client on a running node's control socket.
//
// With a terminal on stdin and stdout it is the full-screen client (cli/chat_model.h for the
// logic, cli/chat_view.h for the screen; keys and commands in docs/chat.md). It survives the
// node going away: it says so on the status line, keeps what was typed, and reconnects every
// second until the node is back.
//
// Without a terminal it is the line mode, for pipes and bots: GROUP is required; each line of
// stdin is posted to it, and each message the node delivers in that group is printed as one line
// ("HH:MM nick: text", or with json one JSON object: the message plus "group" and "self", true
// for this node's own posts, so a bot can skip them). At end of input
// it waits for the posts to be acknowledged and exits 0; if the node stops it exits 1 with one
// line on stderr.
#pragma once

#include <optional>
#include <string>

namespace qun {

struct ChatOptions {
  std::string socket_path;  // <home>/control.sock
  std::optional<std::string> group;
  bool json = false;
  // Files (issue 15): fetched on arrival up to this size (0 never); where /open and /save put
  // them.
  std::uint64_t auto_fetch_bytes_max = 0;
  std::string open_dir;
  std::string save_dir;
};

// Runs the client until /quit, Ctrl+C, a terminating signal or (line mode) end of input.
// Returns the process exit status.
int run_chat(const ChatOptions& options);

}  // namespace qun
