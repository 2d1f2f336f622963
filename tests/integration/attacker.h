// A hostile peer for integration tests: speaks qun's link and wire protocol to a real node over
// a blocking loopback socket, with the node library's own engines (Link, wire encoding), and
// sends whatever the test wants. Single-threaded; everything it waits for is bounded.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>

#include "node/link.h"
#include "node/wire.h"
#include "tests/integration/harness.h"

namespace qun::integration {

class Attacker {
 public:
  // Connects to address ("127.0.0.1:PORT") as identity `key` and completes the handshake.
  Attacker(const std::string& address, const SigningKey& key, std::uint64_t seed)
      : rng_(Rng::from_u64(seed)) {
    const auto colon = address.rfind(':');
    REQUIRE(colon != std::string::npos);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
    REQUIRE(::inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) == 1);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    link_.emplace(Link::initiator(now(), key, std::nullopt, rng_, LinkConfig{"qun", null_log_sink()}));
    const auto deadline = std::chrono::steady_clock::now() + command_bound;
    while (link_->state() == LinkState::handshaking && std::chrono::steady_clock::now() < deadline) {
      flush();
      read_some(100);
    }
    REQUIRE(link_->state() == LinkState::established);
  }
  ~Attacker() { close(); }
  Attacker(const Attacker&) = delete;
  Attacker& operator=(const Attacker&) = delete;

  // Sends one wire message in link-sized chunks (as Node::send does); false once the node closed.
  bool send(const WireMessage& m) {
    if (fd_ < 0) return false;
    const Bytes body = encode_wire(m);
    const std::size_t chunk = message_bytes_max - 1;
    for (std::size_t at = 0; at < body.size(); at += chunk) {
      const std::size_t n = std::min(chunk, body.size() - at);
      Bytes framed{static_cast<std::uint8_t>(at + n < body.size() ? 1 : 0)};
      framed.insert(framed.end(), body.begin() + static_cast<long>(at),
                    body.begin() + static_cast<long>(at + n));
      if (!link_->send(now(), framed).ok()) return false;
      if (!flush()) return false;
    }
    read_some(0);  // keep reading what the node sends, so it never sees us as "not reading"
    return fd_ >= 0;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool open() const { return fd_ >= 0; }

 private:
  static qun::Millis now() {
    return static_cast<qun::Millis>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
  }
  // Writes everything the link has queued.
  bool flush() {
    while (auto o = link_->poll()) {
      if (auto* s = std::get_if<link_output::SendBytes>(&*o)) {
        std::size_t sent = 0;
        while (sent < s->bytes.size()) {
          ssize_t n = ::send(fd_, s->bytes.data() + sent, s->bytes.size() - sent, MSG_NOSIGNAL);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            close();
            return false;
          }
          sent += static_cast<std::size_t>(n);
        }
      } else if (std::holds_alternative<link_output::Closed>(*o)) {
        close();
        return false;
      }
    }
    return true;
  }
  // Reads what is there (waiting up to wait_ms for the first bytes) into the link.
  void read_some(int wait_ms) {
    std::uint8_t buffer[64 * 1024];
    while (fd_ >= 0) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, wait_ms) <= 0) return;
      ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close();
        return;
      }
      link_->on_bytes(now(), ByteView(buffer, static_cast<std::size_t>(n)));
      wait_ms = 0;
    }
  }

  Rng rng_;
  int fd_ = -1;
  std::optional<Link> link_;
};

}  // namespace qun::integration
