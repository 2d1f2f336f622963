// Metrics for Prometheus: `qun node --metrics HOST:PORT` (or the `metrics` config key) serves the
// node's counters in the Prometheus text exposition format 0.0.4 at GET /metrics (docs/relay.md,
// "Metrics").
//
// Three parts: the text format (exposition(), plain code), what a node exposes (node_families(),
// read from the Node's counters, the store and /proc/self), and a tiny HTTP/1.x responder on the
// loop (MetricsServer) that answers one request per connection and closes it.
//
// Bounds: a request's bytes (request_bytes_max), connections at once (connections_max) and how
// long a connection may take to send its request (request_timeout_ms). A client past one is
// closed (with 431 for an oversized request); nothing a client sends grows the node's memory
// past connections_max * request_bytes_max.
//
// Single-threaded: call everything on the loop's thread. The server reads nothing but the
// request line; it is meant for loopback or a trusted network (it has no authentication, and
// what it serves (counts, sizes and group ids) is not secret from the operator but is from
// others: keep it off public addresses).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/log.h"
#include "base/result.h"

namespace qun {
class Node;
class Store;
namespace notify {
struct NotifierStats;
}
}  // namespace qun

namespace qun::metrics {

// A request is a request line and a few headers: Prometheus sends about 300 bytes, curl less.
// 8 KiB is the request header bound of common servers (nginx's default large buffer).
inline constexpr std::size_t request_bytes_max = 8 * 1024;
// Scrapers at once: Prometheus opens one per target (two during an overlapping scrape); a few
// more for a person with curl. More are refused at accept.
inline constexpr std::size_t connections_max = 8;
// A connection that has not sent a whole request by then is closed: Prometheus's default scrape
// timeout is 10 s, so a real scraper never waits this long.
inline constexpr std::uint64_t request_timeout_ms = 10'000;
// Groups listed one by one (per-group series); past it, only the totals. A relay serves at most
// relay.max_groups (100 by default); 1,000 series per metric is what Prometheus's guidance calls
// the top of reasonable cardinality.
inline constexpr std::size_t group_series_max = 1'000;

enum class Type { counter, gauge };

struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;  // name, value
  double value = 0;
};

struct Family {
  std::string name;  // [a-zA-Z_:][a-zA-Z0-9_:]*
  std::string help;
  Type type = Type::gauge;
  std::vector<Sample> samples;
};

// The text format 0.0.4: "# HELP", "# TYPE" and one line per sample, label values escaped
// (backslash, double quote, newline), help escaped (backslash, newline), integers without a
// fraction, every line ending in "\n". Families in the order given.
std::string exposition(const std::vector<Family>& families);

// Process figures from /proc/self: CPU seconds (user + system) and resident bytes. nullopt
// each when /proc cannot be read.
struct ProcessFigures {
  std::optional<double> cpu_seconds;
  std::optional<double> resident_bytes;
};
ProcessFigures process_figures();

// Everything a node exposes (docs/relay.md lists it): groups, bytes per group, events in and out,
// refused events by reason, links, store size, process CPU and RSS.
// With `notify` (a member node's notifications): how many ran, and why others did not.
std::vector<Family> node_families(const Node& node, const Store& store, bool relay,
                                  const notify::NotifierStats* notify = nullptr,
                                  std::uint64_t notify_failed = 0);

class MetricsServer {
 public:
  MetricsServer(uv_loop_t* loop, LogSink log);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Listens on HOST:PORT (IPv4 or [IPv6]; port 0 picks one) and answers GET /metrics with
  // body(). Returns the address bound. Errors name the address and the reason in one line.
  [[nodiscard]] Result<std::string> listen(const std::string& address,
                                           std::function<std::string()> body);
  std::size_t connections() const;
  // Closes the listener and every connection; the loop must run once more to free them.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qun::metrics
