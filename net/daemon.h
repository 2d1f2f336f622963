// The daemon behind `qun node`: one process, one libuv loop, one node home. It owns the store,
// the sans-IO Node, the TCP Transport and the ControlServer, and turns control requests
// (net/control.h; ops listed in docs/cli.md) into replica operations:
//
//   control request -> Replica authoring (sign, ingest) -> commit (store)
//                   -> Node::publish -> Transport::pump -> Send (TCP)
//
// A request that changes a group is answered only after its events are committed to the store,
// so what the CLI printed as done survives a crash, and its events reach the network only after
// that commit, so what the CLI printed as failed went nowhere (the group's replica is reloaded
// from the store). Events from peers are group-committed: what
// the node hands over within group_commit_ms (100 ms) goes into one LMDB transaction (one
// fsync); a crash inside that window loses only events that catch-up fetches again. Commits run
// on the loop; the Node batches what it admits (limits::batch_events_max), so a commit holds the
// loop for milliseconds, not longer.
//
// Single-threaded; everything runs on the loop thread. SIGINT and SIGTERM stop it gracefully:
// stop accepting, flush links (bounded), close the store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "node/node.h"
#include "store/store.h"

namespace qun {

inline constexpr const char* default_listen_address = "0.0.0.0:7420";
// Where a node listens when the default port is taken and nobody chose one: any free port.
inline constexpr const char* default_listen_fallback = "0.0.0.0:0";

struct DaemonOptions {
  std::string home;
  std::vector<std::string> listen;          // empty: default_listen_address
  // True when nobody chose `listen` (no flag, no config file): then a node whose default port is
  // taken listens on a free port instead of failing (Daemon::start).
  bool listen_is_default = false;
  std::vector<std::string> peers;           // bootstrap peers for every group
  std::optional<std::string> advertise;     // address others should dial; default: derived
  std::optional<std::string> passphrase;    // for a sealed identity
  bool relay = false;
  std::size_t max_groups = 100;             // relay: groups served at most
  std::uint64_t max_group_bytes = std::uint64_t{1} << 30;  // relay: stored bytes per group
  // Relay: admin keys (hex) whose serve requests are taken on at once, beside those listed in
  // the home's relay-allow file (home::relay_allow_path); others wait for `qun relay approve`.
  std::vector<std::string> relay_allow;
  bool relay_open = false;                  // relay: take requests from anybody
  std::size_t max_groups_per_key = NodeConfig{}.relay_groups_per_requester_max;
  // Relay: relayed links carried at once, and bytes per relayed link (node/relayed.h).
  std::size_t max_relayed_links = NodeConfig{}.relayed_links_max;
  std::uint64_t max_relayed_link_bytes = NodeConfig{}.relayed_link_bytes_max;
  // The store's LMDB map size: the most it may hold (address space, not disk). Past it, posts
  // fail with "database full"; restarting with a larger value lets them through.
  std::size_t map_bytes = StoreOptions{}.map_bytes;
  // Bytes queued for one peer that does not read before the node cuts it off
  // (OverlayConfig::conn_queue_bytes_max): what a stalled peer may cost this node's memory.
  std::size_t peer_queue_bytes = OverlayConfig{}.conn_queue_bytes_max;
  LogLevel log_level = LogLevel::info;
  // HOST:PORT serving Prometheus metrics (net/metrics.h); none when unset.
  std::optional<std::string> metrics;
  // Run on a mention while no chat client is focused (net/notify.h); empty: no notifications.
  std::vector<std::string> notify_command;
};

// Runs the node until SIGINT or SIGTERM. Returns the process exit status; start-up failures are
// one line on stderr ("qun node: ...").
int run_daemon(const DaemonOptions& options);

}  // namespace qun
