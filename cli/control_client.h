// ControlClient: the CLI's end of the control socket (net/control.h): a blocking connection to a
// running node, for one-shot commands, plus a non-blocking stream mode for `log --follow` and
// `qun chat`, which poll() on fd() and then drain read_available().
//
// Not thread-safe. Requests are answered in order; a stream message that arrives while waiting
// for a response is kept and returned by the next read_available()/next_stream().
#pragma once

#include <deque>
#include <optional>
#include <string>

#include "base/result.h"
#include "net/control.h"

namespace qun {

class ControlClient {
 public:
  using Json = control::Json;

  // Connects to the node's control socket at `socket_path`. Errc::not_found when no node is
  // running there (the message says how to start one).
  [[nodiscard]] static Result<ControlClient> connect(const std::string& socket_path);
  ControlClient(ControlClient&& other) noexcept;
  ControlClient& operator=(ControlClient&& other) noexcept;
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;
  ~ControlClient();

  // Sends {"op": op, ...args} and waits up to timeout_ms for its response. Returns the response's
  // "result" when ok, or Error(Errc::invalid_argument, <the node's one-line error>). A lost
  // connection is Errc::io ("the node stopped").
  [[nodiscard]] Result<Json> request(const std::string& op, Json args = Json::object(),
                                     int timeout_ms = 60'000);

  // Sends a request without waiting (its response comes back through read_available as a value
  // with "id" and "ok"). Returns the request id.
  [[nodiscard]] Result<std::uint64_t> send(const std::string& op, Json args = Json::object());

  // The socket, for poll(). Readable means read_available() has something or the node closed.
  int fd() const { return fd_; }
  // Reads what the socket has without blocking and returns every complete message (stream
  // messages and responses to send()), oldest first. Errc::io when the node closed the socket.
  [[nodiscard]] Result<std::vector<Json>> read_available();
  // Blocks up to timeout_ms (-1: forever) for the next message. nullopt on timeout.
  [[nodiscard]] Result<std::optional<Json>> next(int timeout_ms);

 private:
  explicit ControlClient(int fd) : fd_(fd) {}
  Result<void> write_all(const Bytes& bytes);
  Result<bool> fill(int timeout_ms);  // reads once; false on timeout

  int fd_ = -1;
  std::uint64_t next_id_ = 1;
  control::FrameReader reader_;
  std::deque<Json> queued_;
};

}  // namespace qun
