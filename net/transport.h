// Transport: drives one qun::Node (node/node.h) over real TCP with libuv.
//
// It is the Node's driver: it owns the listeners, every TCP connection and the one timer, feeds
// the node its inputs (on_connected, on_bytes, on_flushed, on_closed, on_tick) and carries out
// the node's Dial, Send and Close outputs. Every other output (Persist, Delivered) goes to the
// application's AppOutput callback, in the node's order.
//
// Calling contract.
//  - Single-threaded: every function is called on the loop's thread, and every callback (the
//    AppOutput, shutdown's done) runs there from within uv_run or from within pump().
//  - listen() (any number of times) before start(); start() once; run the loop only after start
//    (a connection accepted before start is closed at once).
//  - After any input the application gives the node itself (add_group, publish, add_peers,
//    remove_group), call pump(). pump() may be called from within an AppOutput callback: it then
//    only notes that the outer drain must go round again, so outputs keep their order and the
//    stack does not grow.
//  - shutdown(done): stop accepting and dialing, stop feeding the node, let queued writes reach
//    the kernel (at most shutdown_flush_ms_max), close everything, then call done. After shutdown
//    starts the node gets no more inputs from the transport (no on_closed either), but pump() still
//    hands Persist and Delivered to the app, so nothing the app publishes meanwhile is lost. done
//    may destroy the Transport; once done has been called, pump() does nothing (the node may be
//    destroyed).
//  - Destroying the Transport before shutdown's done closes everything abruptly. Either way the
//    loop must run once more afterwards to free the libuv handles (uv_close is asynchronous).
//
// Connection ids: inbound connections are numbered from 1 up (below 2^62); outbound ids are the
// node's, from its Dial outputs. on_closed is called exactly once for every id the node learned
// of (a Dial it emitted, an inbound on_connected), when the dial fails or the connection closes
// or errors, and never for an id the node closed itself (Close output).
//
// Redial backoff. The node re-dials an address it still wants every maintenance period, even
// when it keeps failing. The transport remembers, per address, consecutive failures and the
// earliest time of the next attempt (redial_delay_ms_min doubling up to redial_delay_ms_max,
// reset by a successful connect). A Dial to an address in backoff is held, not failed: its
// connect starts when the backoff ends. The node sees a dial in progress, so it does not dial the
// address again meanwhile, and there is no spin of dial/fail/dial; if the node's own dial timeout
// (OverlayConfig::dial_timeout_ms) ends first, it closes the held dial and dials again later,
// and the first such dial after the backoff has ended connects.
//
// Addresses are "HOST:PORT" with HOST an IPv4 literal, a bracketed IPv6 literal ("[::1]:7000"),
// "localhost" (taken as 127.0.0.1, without a resolver) or, for dials only, a DNS name resolved
// with uv_getaddrinfo off the loop (the first address returned is used).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/log.h"
#include "node/node.h"
#include "base/time.h"

namespace qun {

struct TransportConfig {
  Millis redial_delay_ms_min = 500;  // per-address backoff after a failed dial, doubling
  Millis redial_delay_ms_max = 30'000;
  // Inbound connections at once. At the limit the oldest whose handshake is incomplete is closed
  // to make room; only when every inbound one is authenticated is a new one closed at once.
  std::size_t inbound_conns_max = 256;
  Millis shutdown_flush_ms_max = 2'000;  // graceful shutdown waits at most this for queued writes
  std::size_t read_buffer_bytes = 64 * 1024;
};

// Addresses whose backoff state is remembered: more than a node's passive lists ever name
// (OverlayConfig::passive_max is 32 per group); past it, the entry with the earliest end of
// backoff is forgotten, which only makes that address's next dial immediate.
inline constexpr std::size_t transport_backoff_addresses_max = 4096;

struct TransportCounters {
  std::uint64_t bytes_written = 0;  // accepted by the kernel
  std::uint64_t bytes_read = 0;
  std::uint64_t conns_accepted = 0;  // inbound connections handed to the node
  std::uint64_t conns_refused = 0;   // inbound connections closed at once (over the limit)
  std::uint64_t conns_evicted = 0;   // unauthenticated inbound ones closed to make room
  std::uint64_t dials_started = 0;   // Dial outputs carried out (held ones included)
  std::uint64_t dials_failed = 0;    // ... that ended in on_closed before connecting
};

class Transport {
 public:
  // Receives Persist and Delivered (and any output kind the transport does not handle), in order.
  using AppOutput = std::function<void(NodeOutput&&)>;

  Transport(uv_loop_t* loop, LogSink log, TransportConfig config = {});
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Binds TCP listeners on "HOST:PORT" (IPv4 or IPv6 literal, or "localhost"; port 0 =
  // ephemeral). Returns the bound addresses as "HOST:PORT" with the real port. Errors name the
  // address and the OS reason in one line ("cannot listen on 127.0.0.1:7000: address already in
  // use"): Errc::invalid_argument for an address that does not parse, Errc::io for the OS
  // refusing. On an error no listener of this call stays open.
  [[nodiscard]] Result<std::vector<std::string>> listen(const std::vector<std::string>& addresses);

  // Starts driving `node` (accepting, reading, the timer) and pumps once. Call once, after
  // listen. node must outlive the transport's use of it (until shutdown's done).
  void start(Node& node, AppOutput app);

  // Monotonic ms to pass to Node inputs (uv_now: the loop's cached time).
  Millis now() const;

  // Drains node.poll() (handling Dial/Send/Close, passing the rest to app), then re-arms the one
  // timer for node.next_deadline(). Re-entrant calls (from app) defer to the running drain.
  void pump();

  void shutdown(std::function<void()> done);

  const TransportCounters& counters() const;

  // Open connections (inbound and outbound, dials in progress included), for status and tests.
  std::size_t connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qun
