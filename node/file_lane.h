// The file lane of a connection: wire messages of files (wire::Blob*) wait here, behind every
// other message, and go to the link one whole message at a time while the connection has
// little written and not yet flushed. So a post queued while a file moves waits behind at most
// unflushed_bytes_max bytes on this node (and the socket's own buffer), never behind the file.
//
// Part of the Node (node/node.h: send_file, FileLaneReady); the logic that fills it is
// node/transfer.h.
#pragma once

#include <cstddef>
#include <deque>

#include "base/bytes.h"
#include "node/file.h"

namespace qun {

namespace file_lane {
// Framing a blob message adds to the blob: its msgpack array, type, group and bin header.
inline constexpr std::size_t blob_overhead_bytes = 64;
// Encoded file messages one connection holds waiting: sixteen blobs (about 1 MiB), enough to
// keep a fast link busy between two flushes; a sender with more to serve waits for
// FileLaneReady, so a peer's requests never grow this queue.
inline constexpr std::size_t queued_bytes_max =
    16 * (file_limits::blob_bytes_max + blob_overhead_bytes);
// A file message goes to the link only while the connection's bytes handed to the driver and
// not yet flushed are below this: what a post waits behind on this node's side while a file
// moves. 256 KiB is 2 ms at 1 Gbit/s, 20 ms at 100 Mbit/s, 0.2 s at 10 Mbit/s (four blobs).
inline constexpr std::size_t unflushed_bytes_max = 256 * 1024;
static_assert(queued_bytes_max >= file_limits::blob_bytes_max + blob_overhead_bytes,
              "one blob message fits the lane");
}  // namespace file_lane

struct FileLane {
  std::deque<Bytes> messages;  // encoded wire messages, oldest first
  std::size_t bytes = 0;       // their total size
  bool wanted = false;         // a send was refused for room: say FileLaneReady when there is
};

}  // namespace qun
