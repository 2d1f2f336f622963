// Fuzzes a Link responder: the input is the raw stream a dialer sends, cut into chunks.
//
// Input layout:
//   byte 0   chunking: 0 feeds the rest in one on_bytes call; n > 0 cuts it into chunks of
//            1..n bytes (sizes from a small generator seeded by n), one millisecond apart
//   rest     the stream
// The responder's identity and ephemeral key are fixed (fuzz/link_setup.h), so the seeds made by
// make_seeds hold a real initiator's handshake and transport frames, and mutations reach the
// established state. Every Received message is echoed back with send().
// Properties: nothing crashes or trips an assertion; poll() drains after every input; outputs
// follow the contract in node/link.h (Established at most once and before any Received, Closed
// at most once and last, frames within frame_bytes_max); after the handshake deadline the link
// is established or closed; a closed link refuses send().
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>

#include "crypto/secret.h"
#include "fuzz/fixture.h"
#include "fuzz/link_setup.h"

using namespace qun;

namespace {

const SigningKey* responder_key = nullptr;

struct Checker {
  Link& link;
  bool established = false;
  bool received = false;
  bool closed = false;

  void drain(Millis now) {
    while (auto output = link.poll()) {
      fuzz::check(!closed, "an output after Closed");
      if (auto* send = std::get_if<link_output::SendBytes>(&*output)) {
        fuzz::check(send->bytes.size() >= frame_header_bytes &&
                        send->bytes.size() <= frame_header_bytes + frame_bytes_max,
                    "a frame outside the frame bounds");
      } else if (std::get_if<link_output::Established>(&*output)) {
        fuzz::check(!established && !received, "Established twice or after Received");
        established = true;
      } else if (auto* message = std::get_if<link_output::Received>(&*output)) {
        fuzz::check(established, "Received before Established");
        received = true;
        auto echoed = link.send(now, message->message);
        // Refused only when closed, or as back-pressure when many echoes wait in the queue.
        fuzz::check(echoed.ok() || link.state() == LinkState::closed ||
                        echoed.error().code() == Errc::too_large,
                    "an open link refused to echo a message it received");
      } else {
        closed = true;
        fuzz::check(link.state() == LinkState::closed, "Closed output but the link is open");
      }
    }
    fuzz::check(!link.poll().has_value(), "poll() did not drain");
  }
};

// Chunk sizes 1..n from xorshift32 seeded by n: the same input always cuts the same way.
std::size_t next_chunk(std::uint32_t& state, std::uint8_t n) {
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return 1 + state % n;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  crypto_init();
  static const SigningKey key = fuzz::link_setup::key(fuzz::link_setup::responder_key_seed);
  responder_key = &key;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t chunking = data[0];
  ByteView stream(data + 1, size - 1);

  Link link = fuzz::link_setup::responder(*responder_key);
  Checker checker{link};
  Millis now = fuzz::link_setup::start_ms;
  checker.drain(now);
  std::uint32_t state = 0x9e3779b9u ^ chunking;
  while (!stream.empty()) {
    const std::size_t n =
        chunking == 0 ? stream.size() : std::min(stream.size(), next_chunk(state, chunking));
    link.on_bytes(now, stream.first(n));
    checker.drain(now);
    stream = stream.subspan(n);
    ++now;
  }

  // Past the handshake deadline the link has either finished the handshake or closed.
  link.on_tick(now + handshake_timeout_ms);
  checker.drain(now + handshake_timeout_ms);
  fuzz::check(link.state() != LinkState::handshaking, "still handshaking after the deadline");
  fuzz::check(checker.established == link.peer().has_value(), "peer() disagrees with Established");
  if (link.state() == LinkState::closed) {
    fuzz::check(checker.closed, "closed without a Closed output");
    const std::uint8_t byte = 0;
    fuzz::check(!link.send(now, ByteView(&byte, 1)).ok(), "a closed link accepted send()");
  }
  return 0;
}
