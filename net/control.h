// The control protocol: how the `qun` CLI and `qun chat` talk to a running node over the Unix
// socket in the node home (docs/cli.md, "Control socket").
//
// A message is a JSON-shaped value (nlohmann::json in memory) encoded as msgpack with
// msgpack-cxx, sent as one frame: a 4-byte big-endian length, then that many bytes.
//   request   {"id": N, "op": "post", "group": "...", "text": "..."}
//   response  {"id": N, "ok": true, "result": ...}  or  {"id": N, "ok": false, "error": "one line"}
//   stream    {"stream": "message", "group": "...", "message": {...}}   (after "subscribe")
// Decoding is strict and bounded: frames, strings, containers and nesting all have limits, so a
// local client cannot make the node allocate without bound. Bins are not used; map keys are
// strings.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>

#include "base/bytes.h"
#include "base/result.h"

namespace qun::control {

using Json = nlohmann::json;

// One frame: a post of the largest text with its JSON framing and an escaped worst case fits;
// a `log` response of log_limit_max messages of the largest posts does not, so `log` pages.
inline constexpr std::size_t frame_bytes_max = 4 * 1024 * 1024;
// Nesting: response -> result array -> message object -> field.
inline constexpr std::size_t depth_max = 8;
// Elements in any array or map of one message.
inline constexpr std::size_t elements_max = 100'000;

// Encodes a value as msgpack (no framing). Numbers are kept as integers where they are. Strings
// are sent as valid UTF-8: invalid sequences (text from a peer may hold any bytes) become U+FFFD,
// so every value a client decodes can be printed as JSON.
Bytes encode(const Json& value);
// Decodes exactly one value filling all of bytes. Errc::malformed or Errc::too_large.
[[nodiscard]] Result<Json> decode(ByteView bytes);

// The length-prefixed frame of a value.
Bytes frame(const Json& value);

// Reassembles frames from a byte stream. Feed bytes, then call next() until it gives nullopt.
// An oversized or undecodable frame is an error and the stream is unusable afterwards.
class FrameReader {
 public:
  void feed(ByteView bytes);
  [[nodiscard]] Result<std::optional<Json>> next();
  std::size_t buffered() const { return buffer_.size() - offset_; }

 private:
  Bytes buffer_;
  std::size_t offset_ = 0;
  bool broken_ = false;
};

}  // namespace qun::control
