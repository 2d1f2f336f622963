// A small IRC client for the `qun irc` integration tests, and the gateway process it talks to.
//
// IrcGateway runs `qun irc --listen 127.0.0.1:0 --home HOME` for a node (a Process of the
// harness, stopped by its destructor), reads the port from the line it prints and the password
// from HOME/irc-password. IrcClient is a blocking TCP connection that sends lines and collects
// every line received; waits poll with wait_until (bounded), never sleep. Header-only: each test
// file that includes it gets its own copy of these inline definitions.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace qun::integration {

class IrcGateway {
 public:
  IrcGateway(Cluster& cluster, const Node& node) {
    const fs::path out = cluster.dir() / (node.name() + "-irc.out");
    process_ = Process::spawn({qun_binary(), "--home", node.home().string(), "irc", "--listen",
                               "127.0.0.1:0"},
                              cluster.env(), cluster.dir() / (node.name() + "-irc.log"), out);
    wait_until(
        [&] {
          const std::string text = file_contents(out);
          const auto at = text.find("listening on 127.0.0.1:");
          if (at == std::string::npos) return false;
          port_ = std::stoi(text.substr(at + 23));
          return true;
        },
        node_ready_bound, "qun irc prints the port it listens on");
    std::string pw = file_contents(node.home() / "irc-password");
    while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
    REQUIRE(!pw.empty());
    password_ = pw;
  }
  int port() const { return port_; }
  const std::string& password() const { return password_; }
  Process& process() { return process_; }

 private:
  Process process_;
  int port_ = 0;
  std::string password_;
};

class IrcClient {
 public:
  explicit IrcClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~IrcClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  IrcClient(const IrcClient&) = delete;
  IrcClient& operator=(const IrcClient&) = delete;

  void send(const std::string& line) {
    const std::string data = line + "\r\n";
    REQUIRE(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()));
  }
  void login(const std::string& password, const std::string& nick) {
    send("PASS " + password);
    send("NICK " + nick);
    send("USER " + nick + " 0 * :" + nick);
    wait_for(" 001 " + nick + " ", "the gateway welcomes the client");
  }

  // Every line received so far (without CR LF).
  const std::vector<std::string>& lines() {
    read_available();
    return lines_;
  }
  bool has(const std::string& needle) {
    for (const auto& l : lines())
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }
  bool closed() {
    read_available();
    return closed_;
  }
  void wait_for(const std::string& needle, const std::string& what) {
    wait_until([&] { return has(needle); }, propagate_bound, what + " (a line with: " + needle + ")");
  }

 private:
  void read_available() {
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (closed_ || ::poll(&p, 1, 0) <= 0) return;
      char buf[16 * 1024];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        return;
      }
      partial_.append(buf, static_cast<std::size_t>(n));
      for (std::size_t nl; (nl = partial_.find("\r\n")) != std::string::npos;) {
        const std::string line = partial_.substr(0, nl);
        partial_.erase(0, nl + 2);
        // Every line keeps to IRC's size (512 bytes without tags, CR LF included).
        const std::string body = line.rfind('@', 0) == 0 ? line.substr(line.find(' ') + 1) : line;
        CHECK(body.size() + 2 <= 512);
        lines_.push_back(line);
      }
    }
  }

  int fd_ = -1;
  std::string partial_;
  std::vector<std::string> lines_;
  bool closed_ = false;
};

}  // namespace qun::integration
