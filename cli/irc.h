// `qun irc`: the local node served as an IRC server, so that irssi, weechat or any IRC client is
// a qun client (docs/irc.md).
//
// The driver of irc::Session (cli/irc_session.h) on a libuv loop: it listens on TCP (loopback by
// default), gives each accepted client its own Session and its own connection to the node's
// control socket (subscribed to every group, as `qun chat` is), feeds the Session the client's
// lines and the node's answers and streams, and carries out what the Session asks for. It runs
// until SIGINT or SIGTERM.
//
// The password every client must give with PASS lives in <home>/irc-password (mode 0600),
// created with 128 random bits on the first run; a file that others may read is refused.
#pragma once

#include <string>

#include "base/result.h"

namespace qun {

struct IrcOptions {
  std::string home;
  std::string listen = "127.0.0.1:6667";
  // Started by `qun node` (IrcChild): the node is on its way, so its absence at start is no news.
  bool beside_node = false;
};

// The password file of a home: read, or created (mode 0600) when missing. Errc::io with one line
// saying what to do when it cannot be read or created, or when its mode lets others read it.
[[nodiscard]] Result<std::string> irc_password(const std::string& home);
inline std::string irc_password_path(const std::string& home) { return home + "/irc-password"; }

// The gateway as a child process of `qun node` (the setting irc.enabled): `qun --home HOME irc
// --listen LISTEN`, run from this same binary, which gets SIGTERM when the node's process ends
// (PR_SET_PDEATHSIG), so it never outlives a node that was killed. Errc::io with one line when it
// cannot be started. The child prints its own errors (a port in use) and the node goes on.
class IrcChild {
 public:
  [[nodiscard]] static Result<IrcChild> start(const IrcOptions& options);
  IrcChild(IrcChild&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }
  IrcChild& operator=(IrcChild&&) = delete;
  IrcChild(const IrcChild&) = delete;
  // Stops the gateway (SIGTERM) and waits for it.
  ~IrcChild();

 private:
  explicit IrcChild(int pid) : pid_(pid) {}
  int pid_ = -1;
};

// Runs the gateway until a terminating signal. Returns the process exit status (1 with one line
// on stderr when it cannot listen or read its password).
int run_irc(const IrcOptions& options);

}  // namespace qun
