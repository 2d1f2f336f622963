// ControlServer: the node's control socket (docs/cli.md, "Control socket"), a Unix stream socket
// in the node home over which the CLI and `qun chat` send requests and receive responses and
// streams, framed by net/control.h.
//
// Calling contract.
//  - Single-threaded: call everything on the loop's thread; handlers run there from uv_run.
//  - Each decoded frame from a client goes to on_request, in order. Handlers may call send() and
//    close_client() (for any client) re-entrantly; a client closed from within on_request gets
//    no further requests, even of frames already received.
//  - on_closed is called exactly once for every client that was accepted, from a later loop
//    callback (never from within send or close_client), whoever closed it, until shutdown()
//    starts: after that no handler is called.
//  - A client sending a frame that is oversized or does not decode gets one response
//    {"ok": false, "error": "malformed control message: ..."} and is disconnected.
//  - A client with more than control_client_queue_bytes_max unsent bytes (a stalled
//    subscriber) is disconnected; send() to it returns false.
//  - listen() sets the process umask briefly (the daemon is single-threaded when it listens).
//  - shutdown(done) closes the clients (bytes already queued for them are dropped if the kernel
//    has not taken them) and the listener, unlinks the socket path, and calls done from a later
//    callback; done may destroy the server. Destroying the server without shutdown closes
//    everything abruptly and unlinks the path; the loop must run once more afterwards to free
//    the libuv handles.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "net/control.h"
#include "base/log.h"

namespace qun {

// Clients at once: the CLI opens one per command and `qun chat` one per window; 64 is far more
// than a person runs, and bounds what a local process can make the node hold.
inline constexpr std::size_t control_clients_max = 64;  // more are refused (closed at once, logged)
// Unsent bytes per client: four of the largest frames (control::frame_bytes_max), so a burst of
// stream messages fits, while a stalled subscriber cannot make the node buffer without bound.
inline constexpr std::size_t control_client_queue_bytes_max = 16 * 1024 * 1024;
static_assert(control_client_queue_bytes_max >= 2 * control::frame_bytes_max,
              "a client must be able to queue at least a couple of the largest frames");

class ControlServer {
 public:
  using ClientId = std::uint64_t;
  struct Handlers {
    std::function<void(ClientId, control::Json request)> on_request;  // each decoded frame
    std::function<void(ClientId)> on_closed;                          // client gone
  };

  ControlServer(uv_loop_t* loop, LogSink log);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Listens on a Unix socket at path, mode 0600 (created under umask 0177 and chmod-ed after
  // bind, so it is never open to others). Removes a stale socket file first (the caller holds
  // the home's lock, so a present socket is stale); a present file that is not a socket is an
  // error (Errc::already_exists), as is a path too long for a Unix socket (Errc::invalid_argument)
  // and the OS refusing (Errc::io). Errors name the path and the reason in one line.
  [[nodiscard]] Result<void> listen(const std::string& path, Handlers handlers);

  // Queues one framed message (control::frame). False when the client is gone (or was just
  // disconnected for having too much queued).
  bool send(ClientId client, const control::Json& message);
  void close_client(ClientId client);
  // Connected clients (not closing).
  std::size_t clients() const;
  void shutdown(std::function<void()> done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qun
