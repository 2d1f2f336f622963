// Writes the seed corpus of every fuzz target from the fixture's real events:
//   make_seeds <corpus dir>   creates <dir>/{event,payload,invite_code,group_ingest,wire,link}/
// Seeds are a few small files; the committed copy under fuzz/corpus/ was made with this tool.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "crypto/secret.h"
#include "fuzz/fixture.h"
#include "fuzz/link_setup.h"
#include "node/payload.h"
#include "node/wire.h"

using namespace qun;

namespace {

void write(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }

// One small message of each wire type, with real events and group tags from the fixture.
std::vector<WireMessage> wire_messages(const fuzz::Fixture& f) {
  HelloNonce nonce;
  for (std::size_t i = 0; i < nonce.size(); ++i) nonce.bytes[i] = static_cast<std::uint8_t>(i);
  const std::vector<Hash> ids = {f.events[1].id, f.events[2].id};
  const std::vector<EventTag> tags = {tag_of(f.events[1].id), tag_of(f.events[2].id)};
  return {
      // Two addresses (an array), as a node with IPv4 and IPv6 sends; one goes as a str.
      wire::Hello{nonce, {"192.0.2.1:7412", "[2001:db8::1]:7412"}, {group_tag(f.group, nonce)}},
      wire::Neighbor{f.group, true},
      wire::NeighborReply{f.group, true},
      wire::Disconnect{f.group},
      wire::Shuffle{f.group, false,
                    {PeerInfo{f.keys[1].public_key(), {"192.0.2.2:7412"}},
                     PeerInfo{f.keys[2].public_key(), {"[2001:db8::2]:7412", "192.0.2.3:7412"}}}},
      wire::Events{f.group, {encode_for_group_message(f.events[1]), encode_for_group_message(f.events[2])}, 0},
      wire::IHave{f.group, tags, std::vector<std::uint32_t>(tags.size(), 1)},
      wire::Graft{f.group, tags, {}},
      wire::Prune{f.group, {f.keys[1].public_key()}},
      wire::Heads{f.group, ids, false},
      wire::Serve{f.group},
      wire::ServeReply{f.group, false, "relay full: serving 100 groups"},
      wire::Holder{f.group, f.keys[1].public_key(), f.keys[1].sign(Bytes{1})},
      wire::Observed{"198.51.100.1:40312"},
      wire::DialBack{3, 7420},
      wire::DialBackResult{3, wire::DialBackOutcome::unreachable},
      wire::BlobOffer{f.group, ids},
      wire::BlobGet{f.group, ids},
      wire::Blob{f.group, Bytes(100, 0x42)},
      wire::BlobNone{f.group, ids},
      wire::RelayReserve{true},
      wire::RelayReserveReply{false, "not a member of a group this relay serves"},
      wire::RelayConnect{f.keys[2].public_key(), 1},
      wire::RelayIncoming{f.keys[1].public_key(), wire_limits::relay_stream_first},
      wire::RelayAnswer{1, true, ""},
      wire::RelayData{1, Bytes{0, 32, 1, 2, 3}},
      wire::RelayAck{1, 32768},
      wire::RelayClose{1, "closed"},
      wire::Punch{wire::PunchPhase::connect, {"198.51.100.1:7420"}},
      wire::DirectOffer{f.group},
  };
}

// A relay event by the founder on top of the fixture's last event: the fixture's history has
// none (it predates relays), and the event and payload seeds want one of every kind.
Event relay_event(const fuzz::Fixture& f) {
  const Event& last = f.events.back();
  Event e;
  e.group = f.group;
  e.author = f.keys[0].public_key();
  e.parents = {last.id};
  e.depth = last.depth + 1;
  e.time_ms = last.time_ms + 1;
  e.kind = EventKind::relay;
  e.epoch = last.epoch;
  e.payload = encode_payload(RelayPayload{f.keys[4].public_key(), "192.0.2.9:7412", true});
  sign_event(e, f.keys[0]);
  return e;
}

// What a real initiator writes to fuzz_link's responder: the handshake, then `messages` (which
// the responder receives once established), as one stream.
struct LinkStreams {
  Bytes handshake;
  Bytes session;
};
LinkStreams link_streams(const std::vector<Bytes>& messages) {
  namespace setup = fuzz::link_setup;
  const SigningKey initiator_key = setup::key(setup::initiator_key_seed);
  const SigningKey responder_key = setup::key(setup::responder_key_seed);
  Rng rng = Rng::from_u64(setup::initiator_rng_seed);
  Link initiator = Link::initiator(setup::start_ms, initiator_key, responder_key.public_key(), rng,
                                   setup::config());
  Link responder = setup::responder(responder_key);
  Bytes stream;
  auto pump = [&] {
    for (bool moved = true; moved;) {
      moved = false;
      while (auto out = initiator.poll()) {
        if (auto* send = std::get_if<link_output::SendBytes>(&*out)) {
          stream.insert(stream.end(), send->bytes.begin(), send->bytes.end());
          responder.on_bytes(setup::start_ms, send->bytes);
          moved = true;
        }
      }
      while (auto out = responder.poll()) {
        if (auto* send = std::get_if<link_output::SendBytes>(&*out)) {
          initiator.on_bytes(setup::start_ms, send->bytes);
          moved = true;
        }
      }
    }
  };
  pump();
  if (initiator.state() != LinkState::established || responder.state() != LinkState::established) {
    std::fprintf(stderr, "make_seeds: the link seed handshake did not complete\n");
    std::exit(1);
  }
  LinkStreams out;
  out.handshake = stream;
  for (const Bytes& m : messages) {
    auto sent = initiator.send(setup::start_ms, m);
    if (!sent.ok()) {
      std::fprintf(stderr, "make_seeds: link send: %s\n", sent.error().message().c_str());
      std::exit(1);
    }
    pump();
  }
  out.session = stream;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <corpus dir>\n");
    return 2;
  }
  crypto_init();
  const fuzz::Fixture f = fuzz::build_fixture();
  const std::filesystem::path root = argv[1];
  for (const char* dir : {"event", "payload", "invite_code", "group_ingest", "wire", "link"})
    std::filesystem::create_directories(root / dir);

  // One event and one payload of each kind the fixture has (the first of each).
  bool seen[event_kind_max + 1] = {};
  for (std::size_t i = 0; i < f.events.size(); ++i) {
    const auto kind = static_cast<std::size_t>(f.events[i].kind);
    if (seen[kind]) continue;
    seen[kind] = true;
    const std::string name = event_kind_name(f.events[i].kind);
    write(root / "event" / name, str(f.encoded[i]));
    write(root / "payload" / name, str(f.events[i].payload));
  }
  if (!seen[static_cast<std::size_t>(EventKind::relay)]) {
    const Event relay = relay_event(f);
    write(root / "event" / "relay", str(encode(relay)));
    write(root / "payload" / "relay", str(relay.payload));
  }
  // A stub (docs/protocol.md, "Stubs"): the first post with its payload dropped, in both forms.
  for (std::size_t i = 0; i < f.events.size(); ++i) {
    if (f.events[i].kind != EventKind::post) continue;
    const Event stub = make_stub(f.events[i]);
    write(root / "event" / "post-stub", str(encode(stub)));
    write(root / "wire" / "events-stub",
          str(encode_wire(wire::Events{f.group, {encode_for_group_message(stub)}, 0})));
    break;
  }
  write(root / "invite_code" / "code", encode_invite_code(f.codes[0]));

  // group_ingest: the first half of the fixture as base, the rest as chunks, alternately
  // unchanged and re-signed by the admin member onto the current heads (flags 0x1a: key 1,
  // this group, current heads).
  const std::size_t base = f.events.size() / 2;
  std::string input(1, static_cast<char>(base));
  for (std::size_t i = base; i < f.events.size(); ++i) {
    const Bytes& e = f.encoded[i];
    input.push_back(static_cast<char>(e.size() & 0xff));
    input.push_back(static_cast<char>(e.size() >> 8));
    input.push_back(static_cast<char>(i % 2 ? 0x1a : 0x00));
    input += str(e);
  }
  write(root / "group_ingest" / "history", input);

  // wire: one message of each type.
  std::vector<Bytes> encoded_wire;
  for (const WireMessage& m : wire_messages(f)) {
    encoded_wire.push_back(encode_wire(m));
    write(root / "wire" / wire_name(m), str(encoded_wire.back()));
  }

  // link: byte 0 chooses the chunking (0: whole), then the initiator's stream: the first
  // handshake message alone, the whole handshake, and the handshake followed by a hello, an
  // ihave and an events message (whole, and in chunks of up to 7 bytes).
  const LinkStreams streams = link_streams({encoded_wire[0], encoded_wire[6], encoded_wire[5]});
  const std::string first(streams.handshake.begin(),
                          streams.handshake.begin() + frame_header_bytes + handshake1_bytes);
  write(root / "link" / "first-message", std::string(1, '\1') + first);
  write(root / "link" / "handshake", std::string(1, '\0') + str(streams.handshake));
  write(root / "link" / "session", std::string(1, '\0') + str(streams.session));
  write(root / "link" / "session-chunked", std::string(1, '\7') + str(streams.session));
  std::printf("seeds written to %s\n", root.c_str());
  return 0;
}
