// Tests for node/wire.h: the overlay's wire messages, their strict msgpack codec and group tags.
//
// Messages are compared field by field (the equality operators below), and every rejection test
// builds its bytes with codec::Writer, so each one differs from a valid message in exactly the
// way its name says.
#include "node/wire.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "crypto/rng.h"
#include "crypto/secret.h"
#include "base/codec.h"
#include "node/limits.h"

namespace qun::wire {

// Field-by-field equality, so that std::variant's == compares whole WireMessages.
bool operator==(const Hello& a, const Hello& b) {
  return a.nonce == b.nonce && a.addresses == b.addresses && a.groups == b.groups;
}
bool operator==(const Neighbor& a, const Neighbor& b) {
  return a.group == b.group && a.high_priority == b.high_priority;
}
bool operator==(const NeighborReply& a, const NeighborReply& b) {
  return a.group == b.group && a.accepted == b.accepted;
}
bool operator==(const Disconnect& a, const Disconnect& b) { return a.group == b.group; }
bool operator==(const Shuffle& a, const Shuffle& b) {
  return a.group == b.group && a.reply == b.reply && a.peers == b.peers;
}
bool operator==(const Events& a, const Events& b) {
  return a.group == b.group && a.events == b.events && a.hops == b.hops;
}
// The tags of `ids`.
std::vector<EventTag> tags(const std::vector<Hash>& ids) {
  std::vector<EventTag> out;
  for (const Hash& id : ids) out.push_back(tag_of(id));
  return out;
}
// An announcement of `ids`, each at distance 1.
IHave ihave(const Hash& group, const std::vector<Hash>& ids) {
  std::vector<std::uint32_t> hops(ids.size(), 1);
  return IHave{group, tags(ids), std::move(hops)};
}
bool operator==(const IHave& a, const IHave& b) {
  return a.group == b.group && a.tags == b.tags && a.hops == b.hops;
}
bool operator==(const Graft& a, const Graft& b) {
  return a.group == b.group && a.tags == b.tags && a.authors == b.authors;
}
bool operator==(const Prune& a, const Prune& b) {
  return a.group == b.group && a.authors == b.authors;
}
bool operator==(const Heads& a, const Heads& b) {
  return a.group == b.group && a.heads == b.heads && a.want == b.want;
}
bool operator==(const Serve& a, const Serve& b) { return a.group == b.group; }
bool operator==(const ServeReply& a, const ServeReply& b) {
  return a.group == b.group && a.accepted == b.accepted && a.reason == b.reason;
}
bool operator==(const Holder& a, const Holder& b) {
  return a.group == b.group && a.invite_key == b.invite_key && a.proof == b.proof;
}
bool operator==(const Observed& a, const Observed& b) { return a.address == b.address; }
bool operator==(const BlobOffer& a, const BlobOffer& b) { return a.group == b.group && a.ids == b.ids; }
bool operator==(const BlobGet& a, const BlobGet& b) { return a.group == b.group && a.ids == b.ids; }
bool operator==(const Blob& a, const Blob& b) { return a.group == b.group && a.data == b.data; }
bool operator==(const BlobNone& a, const BlobNone& b) { return a.group == b.group && a.ids == b.ids; }
bool operator==(const DialBack& a, const DialBack& b) {
  return a.nonce == b.nonce && a.port == b.port;
}
bool operator==(const DialBackResult& a, const DialBackResult& b) {
  return a.nonce == b.nonce && a.outcome == b.outcome;
}
bool operator==(const DirectOffer& a, const DirectOffer& b) { return a.group == b.group; }

}  // namespace qun::wire

namespace qun {
namespace {

namespace wl = wire_limits;

// Distinct, recognisable fixed-size values: every byte is n (plus its index, so no two differ
// only by position).
template <typename Fixed>
Fixed fixed_n(std::uint64_t n) {
  Fixed f;
  for (std::size_t i = 0; i < Fixed::size(); ++i)
    f.bytes[i] = static_cast<std::uint8_t>(n * 31 + i);
  return f;
}
Hash hash_n(std::uint64_t n) { return fixed_n<Hash>(n); }

std::vector<Hash> hashes(std::size_t count) {
  std::vector<Hash> out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(hash_n(i + 1000));
  return out;
}

Bytes random_bytes(Rng& rng, std::size_t size) {
  Bytes out(size);
  rng.fill(out);
  return out;
}

// `count` peers with `addresses` addresses of `address_bytes` bytes each (none when 0 bytes).
std::vector<PeerInfo> peers(std::size_t count, std::size_t address_bytes, std::size_t addresses = 1) {
  std::vector<PeerInfo> out;
  for (std::size_t i = 0; i < count; ++i) {
    PeerInfo p{fixed_n<PublicKey>(i + 7), {}};
    for (std::size_t k = 0; k < addresses && address_bytes > 0; ++k) {
      std::string address = "10." + std::to_string(k) + "." + std::to_string(i) + ".1:7412";
      address.resize(address_bytes, 'a');
      p.addresses.push_back(address);
    }
    out.push_back(std::move(p));
  }
  return out;
}

// One realistic message of each type, in variant order.
std::vector<WireMessage> realistic_messages() {
  Rng rng = Rng::from_u64(0x3173);
  const Hash group = hash_n(1);
  wire::Hello hello{fixed_n<HelloNonce>(2), {"203.0.113.7:7412", "[2001:db8::7]:7412"}, {}};
  for (std::uint64_t i = 0; i < 3; ++i) {
    hello.groups.push_back(group_tag(hash_n(10 + i), hello.nonce));
  }
  wire::Events events{group, {}, 0};
  for (std::size_t size : {180, 612, 2048}) events.events.push_back(random_bytes(rng, size));
  return {
      hello,
      wire::Neighbor{group, true},
      wire::NeighborReply{group, false},
      wire::Disconnect{group},
      wire::Shuffle{group, false, peers(5, 14)},
      events,
      wire::ihave(group, hashes(4)),
      wire::Graft{group, wire::tags(hashes(2)), {fixed_n<PublicKey>(8)}},
      wire::Prune{group, {fixed_n<PublicKey>(8), fixed_n<PublicKey>(9)}},
      wire::Heads{group, hashes(3), true},
      wire::Serve{group},
      wire::ServeReply{group, false, "relay full: serving 100 groups"},
      wire::Holder{group, fixed_n<PublicKey>(6), fixed_n<Signature>(7)},
      wire::Observed{"198.51.100.1:40312"},
      wire::DialBack{3, 7420},
      wire::DialBackResult{3, wire::DialBackOutcome::unreachable},
      wire::BlobOffer{group, hashes(3)},
      wire::BlobGet{group, hashes(2)},
      wire::Blob{group, random_bytes(rng, 4000)},
      wire::BlobNone{group, hashes(1)},
      wire::RelayReserve{true},
      wire::RelayReserveReply{false, "not a member of a group this relay serves"},
      wire::RelayConnect{fixed_n<PublicKey>(8), 5},
      wire::RelayIncoming{fixed_n<PublicKey>(9), wire_limits::relay_stream_first + 2},
      wire::RelayAnswer{5, false, "relay full: 64 relayed links"},
      wire::RelayData{5, Bytes{1, 2, 3}},
      wire::RelayAck{5, 32768},
      wire::RelayClose{5, "closed"},
      wire::Punch{wire::PunchPhase::connect, {"198.51.100.1:40312"}},
      wire::DirectOffer{group},
  };
}

// Edge contents of each type that the codec must still carry: empty lists and strings, the
// other value of each bool, all-zero and all-ones fixed fields.
std::vector<WireMessage> edge_messages() {
  Hash zero;
  Hash ones;
  ones.bytes.fill(0xff);
  HelloNonce zero_nonce;
  return {
      wire::Hello{zero_nonce, {}, {}},
      wire::Hello{zero_nonce, {"192.0.2.1:1"}, {}},  // one address: a str, as before lists
      wire::Neighbor{zero, false},
      wire::NeighborReply{ones, true},
      wire::Disconnect{zero},
      wire::Shuffle{ones, true, {}},
      wire::Shuffle{ones, false, peers(1, 0)},  // a peer with no address
      wire::Shuffle{ones, false, peers(2, 12, 2)},  // peers with two addresses
      wire::Events{zero, {}, 0},
      wire::Events{zero, {Bytes{0x00}}, wire::no_hops},  // the smallest event the codec carries: one byte
      wire::ihave(zero, {}),
      wire::Graft{ones, {}, {}},
      wire::Prune{ones, {}},
      wire::Heads{zero, {}, false},
      wire::Serve{ones},
      wire::ServeReply{zero, true, ""},
      wire::Holder{ones, PublicKey{}, Signature{}},
      wire::Observed{""},
      wire::Observed{"[2001:db8::1]:65535"},
      wire::DialBack{0, 0},
      wire::DialBack{UINT64_MAX, UINT16_MAX},
      wire::DialBackResult{UINT64_MAX, wire::DialBackOutcome::reachable},
      wire::DialBackResult{0, wire::DialBackOutcome::refused},
      wire::BlobOffer{zero, {}},
      wire::BlobGet{ones, {}},
      wire::Blob{zero, {}},
      wire::BlobNone{ones, {}},
      wire::RelayReserve{false},
      wire::RelayReserveReply{true, ""},
      wire::RelayConnect{PublicKey{}, 0},
      wire::RelayIncoming{PublicKey{}, UINT32_MAX},
      wire::RelayAnswer{UINT32_MAX, true, ""},
      wire::RelayData{0, Bytes(wire_limits::relay_data_bytes_max, 0xab)},
      wire::RelayAck{UINT32_MAX, UINT32_MAX},
      wire::RelayClose{0, ""},
      wire::Punch{wire::PunchPhase::sync, {}},
      wire::Punch{wire::PunchPhase::reply, {"a", "b", "c", std::string(256, 'd')}},
  };
}

// Messages at every list and size bound of wire_limits, exactly.
std::vector<WireMessage> max_messages() {
  Rng rng = Rng::from_u64(0xb0b);
  const Hash group = hash_n(3);
  std::vector<WireMessage> out;
  wire::Hello hello{fixed_n<HelloNonce>(4), {}, {}};
  for (std::size_t i = 0; i < address_limits::addresses_max; ++i)
    hello.addresses.push_back(std::string(wl::address_bytes_max - 1, 'h') + std::to_string(i % 10));
  for (std::size_t i = 0; i < wl::groups_max; ++i) hello.groups.push_back(fixed_n<GroupTag>(i));
  out.push_back(hello);
  out.push_back(wire::Observed{std::string(wl::address_bytes_max, 'o')});
  out.push_back(wire::Shuffle{group, true, peers(wl::peers_max, wl::address_bytes_max,
                                                address_limits::addresses_max)});
  out.push_back(wire::ihave(group, hashes(wl::ids_max)));
  std::vector<PublicKey> authors;
  for (std::size_t i = 0; i < wl::ids_max; ++i) authors.push_back(fixed_n<PublicKey>(i));
  out.push_back(wire::Graft{group, wire::tags(hashes(wl::ids_max)), authors});
  out.push_back(wire::Prune{group, authors});
  out.push_back(wire::Heads{group, hashes(wl::ids_max), false});
  out.push_back(wire::ServeReply{group, false, std::string(wl::reason_bytes_max, 'r')});
  out.push_back(wire::BlobOffer{group, hashes(wl::ids_max)});
  out.push_back(wire::BlobGet{group, hashes(wl::ids_max)});
  out.push_back(wire::Blob{group, random_bytes(rng, file_limits::blob_bytes_max)});
  // events_max small events.
  wire::Events many{group, {}, 0};
  for (std::size_t i = 0; i < wl::events_max; ++i) many.events.push_back(random_bytes(rng, 100));
  out.push_back(many);
  // One event of the largest size an event may have.
  out.push_back(wire::Events{group, {random_bytes(rng, limits::event_bytes_max)}, 0});
  // Largest events filling the batch to exactly events_bytes_max.
  static_assert(wl::events_bytes_max % limits::event_bytes_max == 0);
  wire::Events full{group, {}, 0};
  for (std::size_t i = 0; i < wl::events_bytes_max / limits::event_bytes_max; ++i) {
    full.events.push_back(random_bytes(rng, limits::event_bytes_max));
  }
  out.push_back(full);
  return out;
}

void require_round_trip(const WireMessage& message) {
  INFO("message " << wire_name(message));
  const Bytes bytes = encode_wire(message);
  auto decoded = decode_wire(bytes);
  if (!decoded.ok()) FAIL("decode failed: " << decoded.error().message());
  CHECK(decoded->index() == message.index());
  CHECK(*decoded == message);
  CHECK(encode_wire(*decoded) == bytes);
}

void require_rejected(ByteView bytes) {
  auto decoded = decode_wire(bytes);
  CHECK_FALSE(decoded.ok());
}

void require_rejected(const WireMessage& message) {
  INFO("message " << wire_name(message));
  require_rejected(encode_wire(message));
}

Bytes with_trailing(Bytes bytes, ByteView extra) {
  bytes.insert(bytes.end(), extra.begin(), extra.end());
  return bytes;
}

// The fields of a valid message after its type, written one by one so a test can drop, add or
// replace any of them. Field i is written by fields[i](w).
using FieldWriter = std::function<void(codec::Writer&)>;
struct Layout {
  std::uint8_t type;
  std::vector<FieldWriter> fields;
};

std::vector<Layout> layouts() {
  const Hash group = hash_n(5);
  auto g = [group](codec::Writer& w) { w.fixed(group); };
  auto flag = [](codec::Writer& w) { w.uint(1); };
  auto ids = [](codec::Writer& w) {
    w.array(2);
    w.fixed(hash_n(1));
    w.fixed(hash_n(2));
  };
  auto keys = [](codec::Writer& w) { w.array(1).fixed(fixed_n<PublicKey>(1)); };
  auto tags = [](codec::Writer& w) { w.bin(Bytes(2 * EventTag::size(), 7)); };
  return {
      {1,
       {[](codec::Writer& w) { w.fixed(fixed_n<HelloNonce>(1)); },
        [](codec::Writer& w) { w.str("host:1"); },
        [](codec::Writer& w) { w.array(1).fixed(fixed_n<GroupTag>(1)); }}},
      {2, {g, flag}},
      {3, {g, flag}},
      {4, {g}},
      {5,
       {g, flag,
        [](codec::Writer& w) { w.array(1).array(2).fixed(fixed_n<PublicKey>(1)).str("a"); }}},
      {6,
       {g, [](codec::Writer& w) { w.uint(3); },
        [](codec::Writer& w) {
          w.array(1).bin(Bytes{1, 2, 3});
        }}},
      {7, {g, tags, [](codec::Writer& w) { w.array(2).uint(1).uint(2); }}},
      {8, {g, tags, keys}},
      {9, {g, keys}},
      {10, {g, flag, ids}},
      {11, {g}},
      {12, {g, flag, [](codec::Writer& w) { w.str("no"); }}},
      {13,
       {g, [](codec::Writer& w) { w.fixed(fixed_n<PublicKey>(1)); },
        [](codec::Writer& w) { w.fixed(fixed_n<Signature>(1)); }}},
      {14, {[](codec::Writer& w) { w.str("198.51.100.1:1"); }}},
      {15, {[](codec::Writer& w) { w.uint(9); }, [](codec::Writer& w) { w.uint(7420); }}},
      {16, {[](codec::Writer& w) { w.uint(9); }, [](codec::Writer& w) { w.uint(1); }}},
      {17, {g, ids}},
      {18, {g, ids}},
      {19, {g, [](codec::Writer& w) { w.bin(Bytes(40, 7)); }}},
      {20, {g, ids}},
  };
}

Bytes write_layout(const Layout& layout, std::size_t field_count) {
  codec::Writer w;
  w.array(static_cast<std::uint32_t>(1 + field_count)).uint(layout.type);
  for (std::size_t i = 0; i < field_count; ++i) {
    // Past the real fields, repeat the last one: a plausible but extra field.
    layout.fields[std::min(i, layout.fields.size() - 1)](w);
  }
  return w.take();
}

Bytes write_replacing(const Layout& layout, std::size_t index, const FieldWriter& replacement) {
  codec::Writer w;
  w.array(static_cast<std::uint32_t>(1 + layout.fields.size())).uint(layout.type);
  for (std::size_t i = 0; i < layout.fields.size(); ++i) {
    (i == index ? replacement : layout.fields[i])(w);
  }
  return w.take();
}

TEST_CASE("wire: every message type round-trips with realistic contents", "[node][wire]") {
  // Proves each of the twenty types encodes and decodes back to the same fields and the same bytes,
  // and that wire_name names each one, using one realistic message per type.
  const auto messages = realistic_messages();
  REQUIRE(messages.size() == std::variant_size_v<WireMessage>);
  std::set<std::string> names;
  for (const auto& m : messages) {
    require_round_trip(m);
    names.insert(wire_name(m));
  }
  CHECK(names == std::set<std::string>{"hello", "neighbor", "neighbor-reply", "disconnect",
                                       "shuffle", "events", "ihave", "graft", "prune", "heads",
                                       "serve", "serve-reply", "holder", "observed", "dial-back",
                                       "dial-back-result", "blob-offer", "blob-get", "blob",
                                       "blob-none", "relay-reserve", "relay-reserve-reply",
                                       "relay-connect", "relay-incoming", "relay-answer",
                                       "relay-data", "relay-ack", "relay-close", "punch",
                                       "direct-offer"});
}

TEST_CASE("wire: edge contents round-trip", "[node][wire]") {
  // Proves empty lists, empty strings, both values of every bool and extreme fixed-field bytes
  // are carried unchanged.
  for (const auto& m : edge_messages()) require_round_trip(m);
}

TEST_CASE("wire: messages exactly at every bound round-trip", "[node][wire]") {
  // Proves the decoder accepts every wire_limits bound itself: groups_max tags, peers_max peers
  // with address_bytes_max addresses, ids_max ids, events_max events, an event of
  // event_bytes_max and a batch of exactly events_bytes_max; and that all fit message_bytes_max.
  for (const auto& m : max_messages()) {
    CHECK(encode_wire(m).size() <= wl::message_bytes_max);
    require_round_trip(m);
  }
}

TEST_CASE("wire: each bound exceeded by one is rejected", "[node][wire]") {
  // Proves every list and size bound is enforced, by taking a message at the bound and adding
  // one element or one byte.
  Rng rng = Rng::from_u64(0x1e55);
  const Hash group = hash_n(6);

  SECTION("groups_max + 1 tags in a hello") {
    wire::Hello hello{fixed_n<HelloNonce>(1), {}, {}};
    for (std::size_t i = 0; i <= wl::groups_max; ++i) hello.groups.push_back(fixed_n<GroupTag>(i));
    require_rejected(hello);
  }
  SECTION("address_bytes_max + 1 in a hello") {
    require_rejected(
        wire::Hello{fixed_n<HelloNonce>(1), {std::string(wl::address_bytes_max + 1, 'x')}, {}});
    require_rejected(wire::Hello{fixed_n<HelloNonce>(1),
                                 {"192.0.2.1:1", std::string(wl::address_bytes_max + 1, 'x')}, {}});
  }
  SECTION("peers_max + 1 peers in a shuffle") {
    require_rejected(wire::Shuffle{group, false, peers(wl::peers_max + 1, 10)});
  }
  SECTION("address_bytes_max + 1 in a shuffled peer") {
    auto list = peers(3, 10);
    list[1].addresses = {std::string(wl::address_bytes_max + 1, 'y')};
    require_rejected(wire::Shuffle{group, false, list});
  }
  SECTION("tags that are not a whole number of 8 bytes") {
    for (std::uint8_t type : {7, 8}) {
      codec::Writer w;
      w.array(4).uint(type).fixed(group).bin(Bytes(EventTag::size() + 4, 1));
      if (type == 7) {
        w.array(1).uint(1);
      } else {
        w.array(0);
      }
      CHECK_FALSE(decode_wire(w.take()).ok());
    }
  }
  SECTION("ids_max + 1 ids in ihave, graft and heads") {
    require_rejected(wire::ihave(group, hashes(wl::ids_max + 1)));
    require_rejected(wire::Graft{group, wire::tags(hashes(wl::ids_max + 1)), {}});
    std::vector<PublicKey> authors;
    for (std::size_t i = 0; i <= wl::ids_max; ++i) authors.push_back(fixed_n<PublicKey>(i));
    require_rejected(wire::Graft{group, {}, authors});
    require_rejected(wire::Prune{group, authors});
    require_rejected(wire::Heads{group, hashes(wl::ids_max + 1), false});
  }
  SECTION("reason_bytes_max + 1 in a serve-reply") {
    // The encoder asserts the bound, so the message is written by hand.
    codec::Writer w;
    w.array(4).uint(12).fixed(group).uint(0).str(std::string(wl::reason_bytes_max + 1, 'r'));
    require_rejected(w.take());
  }
  SECTION("address_bytes_max + 1 in an observed address") {
    require_rejected(wire::Observed{std::string(wl::address_bytes_max + 1, 'o')});
  }
  SECTION("a dial-back port past 65535, an outcome past refused") {
    codec::Writer port;
    port.array(3).uint(15).uint(1).uint(65536);
    require_rejected(port.take());
    codec::Writer outcome;
    outcome.array(3).uint(16).uint(1).uint(3);
    require_rejected(outcome.take());
  }
  SECTION("events_max + 1 events") {
    wire::Events events{group, {}, 0};
    for (std::size_t i = 0; i <= wl::events_max; ++i) events.events.push_back(Bytes{1});
    require_rejected(events);
  }
  SECTION("an event of event_bytes_max + 1") {
    require_rejected(wire::Events{group, {random_bytes(rng, limits::event_bytes_max + 1)}, 0});
  }
  SECTION("a batch of events_bytes_max + 1") {
    wire::Events events{group, {}, 0};
    for (std::size_t i = 0; i < wl::events_bytes_max / limits::event_bytes_max; ++i) {
      events.events.push_back(random_bytes(rng, limits::event_bytes_max));
    }
    events.events.push_back(Bytes{7});
    REQUIRE(encode_wire(events).size() <= wl::message_bytes_max);  // only the batch bound applies
    auto decoded = decode_wire(encode_wire(events));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code() == Errc::too_large);
  }
  SECTION("message_bytes_max + 1 bytes") {
    // Any input longer than the bound is refused before it is parsed.
    Bytes bytes = encode_wire(wire::Prune{group, {}});
    bytes.resize(wl::message_bytes_max + 1, 0);
    auto decoded = decode_wire(bytes);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code() == Errc::too_large);
  }
}

TEST_CASE("wire: address lists are bounded and have one form", "[node][wire]") {
  // Proves the decoder of a hello's and a shuffled peer's address list (node/addresses.h) takes a
  // str (none or one address, the form before lists) or an array of 2..addresses_max non-empty
  // str, and nothing else: a longer list, an empty entry, or one address in an array (not
  // canonical) is refused. Each message is written field by field with codec::Writer.
  const HelloNonce nonce = fixed_n<HelloNonce>(9);
  auto hello = [&](const std::function<void(codec::Writer&)>& addresses) {
    codec::Writer w;
    w.array(4).uint(1).fixed(nonce);
    addresses(w);
    w.array(0);
    return w.take();
  };
  auto shuffle = [&](const std::function<void(codec::Writer&)>& addresses) {
    codec::Writer w;
    w.array(4).uint(5).fixed(hash_n(1)).uint(0).array(1).array(2).fixed(fixed_n<PublicKey>(3));
    addresses(w);
    return w.take();
  };
  auto list = [](std::size_t n) {
    return [n](codec::Writer& w) {
      w.array(static_cast<std::uint32_t>(n));
      for (std::size_t i = 0; i < n; ++i) w.str("192.0.2." + std::to_string(i + 1) + ":7420");
    };
  };
  for (auto make : {std::function<Bytes(const std::function<void(codec::Writer&)>&)>(hello),
                    std::function<Bytes(const std::function<void(codec::Writer&)>&)>(shuffle)}) {
    CHECK(decode_wire(make([](codec::Writer& w) { w.str("192.0.2.1:7420"); })).ok());
    CHECK(decode_wire(make(list(2))).ok());
    CHECK(decode_wire(make(list(address_limits::addresses_max))).ok());
    require_rejected(make(list(address_limits::addresses_max + 1)));
    require_rejected(make(list(1)));  // one address goes as a str
    require_rejected(make(list(0)));  // none goes as ""
    require_rejected(make([](codec::Writer& w) { w.array(2).str("192.0.2.1:7420").str(""); }));
    require_rejected(make([](codec::Writer& w) { w.array(2).str("192.0.2.1:7420").uint(7); }));
    require_rejected(make([](codec::Writer& w) { w.uint(7); }));
  }
  auto decoded = decode_wire(hello(list(3)));
  REQUIRE(decoded.ok());
  const auto& h = std::get<wire::Hello>(*decoded);
  CHECK(h.addresses ==
        std::vector<std::string>{"192.0.2.1:7420", "192.0.2.2:7420", "192.0.2.3:7420"});
}

TEST_CASE("wire: every truncation of an encoded message is rejected", "[node][wire]") {
  // Proves that no proper prefix of a valid encoding decodes (or crashes), for every realistic
  // and edge message: each prefix is decoded in turn, from empty to one byte short.
  auto messages = realistic_messages();
  for (auto& m : edge_messages()) messages.push_back(std::move(m));
  for (const auto& m : messages) {
    const Bytes bytes = encode_wire(m);
    INFO("message " << wire_name(m) << " of " << bytes.size() << " bytes");
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      INFO("prefix of " << n << " bytes");
      require_rejected(ByteView(bytes).first(n));
    }
  }
}

TEST_CASE("wire: wrong field counts are rejected", "[node][wire]") {
  // Proves each type accepts exactly its own number of fields: the same fields with one missing
  // or one extra are refused, as is a message of the type number alone.
  for (const auto& layout : layouts()) {
    INFO("type " << int{layout.type});
    REQUIRE(decode_wire(write_layout(layout, layout.fields.size())).ok());  // the layout is valid
    require_rejected(write_layout(layout, layout.fields.size() - 1));
    require_rejected(write_layout(layout, layout.fields.size() + 1));
    require_rejected(write_layout(layout, 0));
  }
  // A message must be an array of 2..4: an empty array and a 5-array are refused up front.
  codec::Writer empty;
  empty.array(0);
  require_rejected(empty.take());
  codec::Writer five;
  five.array(5).uint(10).fixed(hash_n(1)).uint(0).array(0).uint(0);
  require_rejected(five.take());
}

TEST_CASE("wire: wrong field types are rejected", "[node][wire]") {
  // Proves every field is checked for its exact msgpack type and size: each field of each type
  // is replaced in turn by a set of wrong values, and every such message is refused.
  const std::vector<std::pair<const char*, FieldWriter>> wrong = {
      {"nil", [](codec::Writer& w) { w.nil(); }},
      {"uint 2", [](codec::Writer& w) { w.uint(2); }},
      {"str", [](codec::Writer& w) { w.str("not bytes"); }},
      {"bin of 31", [](codec::Writer& w) { w.bin(Bytes(31, 1)); }},
      {"bin of 33", [](codec::Writer& w) { w.bin(Bytes(33, 1)); }},
      {"array of a uint", [](codec::Writer& w) { w.array(1).uint(1); }},
  };
  for (const auto& layout : layouts()) {
    for (std::size_t i = 0; i < layout.fields.size(); ++i) {
      for (const auto& [name, writer] : wrong) {
        const Bytes bytes = write_replacing(layout, i, writer);
        // A str is a valid address (field 2 of a hello); every other replacement is wrong.
        if (layout.type == 1 && i == 1 && std::string(name) == "str") continue;
        // Any uint is a valid hop count (field 2 of events).
        if (layout.type == 6 && i == 1 && std::string(name) == "uint 2") continue;
        // A str is a valid reason (field 3 of a serve-reply).
        if (layout.type == 12 && i == 2 && std::string(name) == "str") continue;
        // A str is a valid observed address; any uint a valid nonce and port, 2 an outcome.
        if (layout.type == 14 && std::string(name) == "str") continue;
        if ((layout.type == 15 || layout.type == 16) && std::string(name) == "uint 2") continue;
        // A blob is bytes of any length (field 2 of a blob).
        if (layout.type == 19 && i == 1 && std::string(name).rfind("bin", 0) == 0) continue;
        INFO("type " << int{layout.type} << ", field " << i + 1 << " replaced by " << name);
        require_rejected(bytes);
      }
    }
  }

  SECTION("msgpack booleans are not our bools") {
    // Bools travel as uint 0 or 1; msgpack true/false (and any other uint) are refused.
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> p(buffer);
    p.pack_array(3);
    p.pack_uint8(2);
    Hash group = hash_n(1);
    p.pack_bin(32);
    p.pack_bin_body(reinterpret_cast<const char*>(group.data()), 32);
    p.pack_true();
    require_rejected(ByteView(reinterpret_cast<const std::uint8_t*>(buffer.data()), buffer.size()));
  }
  SECTION("a group tag and a nonce of the wrong size") {
    codec::Writer w;
    w.array(4).uint(1).bin(Bytes(wl::hello_nonce_bytes - 1, 0)).str("").array(0);
    require_rejected(w.take());
    codec::Writer v;
    v.array(4)
        .uint(1)
        .fixed(fixed_n<HelloNonce>(1))
        .str("")
        .array(1)
        .bin(Bytes(wl::tag_bytes + 1, 0));
    require_rejected(v.take());
  }
  SECTION("a peer that is not a pair") {
    codec::Writer w;
    w.array(4).uint(5).fixed(hash_n(1)).uint(0).array(1).array(3);
    w.fixed(fixed_n<PublicKey>(1)).str("a").str("b");
    require_rejected(w.take());
    codec::Writer v;
    v.array(4).uint(5).fixed(hash_n(1)).uint(0).array(1).array(2).str("a").fixed(
        fixed_n<PublicKey>(1));
    require_rejected(v.take());
  }
  SECTION("an empty event") { require_rejected(wire::Events{hash_n(1), {Bytes{}}, 0}); }
  SECTION("not an array at the top") {
    codec::Writer w;
    w.uint(1);
    require_rejected(w.take());
    require_rejected(ByteView());
    const std::uint8_t map[] = {0x81, 0x01, 0x02};  // {1: 2}
    require_rejected(ByteView(map));
  }
}

TEST_CASE("wire: unknown type numbers are rejected", "[node][wire]") {
  // Proves only 1..13 name a message: 0, 14, 15, 255, 256 and the largest uint are refused even
  // with well-formed fields after them, as is a type that is not a uint.
  for (std::uint64_t type : {0ull, 14ull, 15ull, 255ull, 256ull, ~0ull}) {
    INFO("type " << type);
    for (std::uint32_t fields : {1u, 2u, 3u}) {
      codec::Writer w;
      w.array(1 + fields).uint(type).fixed(hash_n(1));
      if (fields >= 2) w.uint(0);
      if (fields >= 3) w.array(0);
      require_rejected(w.take());
    }
  }
  codec::Writer w;
  w.array(2).str("prune").fixed(hash_n(1));
  require_rejected(w.take());
}

TEST_CASE("wire: trailing bytes are rejected", "[node][wire]") {
  // Proves the decoder consumes exactly one message: any valid encoding followed by one zero
  // byte, or by a second valid message, is refused.
  const Bytes zero{0x00};
  for (const auto& m : realistic_messages()) {
    INFO("message " << wire_name(m));
    const Bytes bytes = encode_wire(m);
    require_rejected(with_trailing(bytes, zero));
    require_rejected(with_trailing(bytes, bytes));
  }
}

TEST_CASE("wire: non-canonical encodings are rejected", "[node][wire]") {
  // Proves each message has one byte form, as events do: a longer-than-needed msgpack form of
  // the array header, the type, a bool or a str length is refused, so whatever decodes
  // re-encodes to exactly its input (the property fuzz_wire checks).
  const Hash group = hash_n(2);
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> p(buffer);
  auto group_bin = [&] {
    p.pack_bin(32);
    p.pack_bin_body(reinterpret_cast<const char*>(group.data()), 32);
  };
  auto take = [&] {
    Bytes out(reinterpret_cast<const std::uint8_t*>(buffer.data()),
              reinterpret_cast<const std::uint8_t*>(buffer.data()) + buffer.size());
    buffer.clear();
    return out;
  };
  // The canonical neighbor message decodes: the checks below differ from it in one form only.
  p.pack_array(3);
  p.pack_uint8(2);
  group_bin();
  p.pack_uint8(1);
  REQUIRE(decode_wire(take()).ok());

  SECTION("array16 header for three fields") {
    const std::uint8_t header[] = {0xdc, 0x00, 0x03, 0x02};
    buffer.write(reinterpret_cast<const char*>(header), sizeof header);
    group_bin();
    p.pack_uint8(1);
    require_rejected(take());
  }
  SECTION("uint8 form of a small type number") {
    const std::uint8_t header[] = {0x93, 0xcc, 0x02};
    buffer.write(reinterpret_cast<const char*>(header), sizeof header);
    group_bin();
    p.pack_uint8(1);
    require_rejected(take());
  }
  SECTION("int8 form of a bool") {
    p.pack_array(3);
    p.pack_uint8(2);
    group_bin();
    const std::uint8_t flag[] = {0xd0, 0x01};
    buffer.write(reinterpret_cast<const char*>(flag), sizeof flag);
    require_rejected(take());
  }
  SECTION("str8 form of a short address") {
    p.pack_array(4);
    p.pack_uint8(1);
    const HelloNonce nonce = fixed_n<HelloNonce>(1);
    p.pack_bin(16);
    p.pack_bin_body(reinterpret_cast<const char*>(nonce.data()), 16);
    const std::uint8_t address[] = {0xd9, 0x01, 'a'};
    buffer.write(reinterpret_cast<const char*>(address), sizeof address);
    p.pack_array(0);
    require_rejected(take());
  }
}

TEST_CASE("wire: mutated messages decode canonically or not at all", "[node][wire]") {
  // Proves, on a seeded sample of byte flips, inserts and deletes in every realistic message,
  // that the decoder never crashes and that anything it accepts re-encodes to its input.
  const std::uint64_t seed = 0x51ee7;
  INFO("seed " << seed);
  Rng rng = Rng::from_u64(seed);
  for (const auto& m : realistic_messages()) {
    const Bytes original = encode_wire(m);
    for (int round = 0; round < 300; ++round) {
      Bytes bytes = original;
      const auto at = static_cast<std::size_t>(rng.uniform(bytes.size()));
      const auto value = static_cast<std::uint8_t>(rng.next_u64());
      switch (rng.uniform(3)) {
        case 0:
          bytes[at] = value;
          break;
        case 1:
          bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), value);
          break;
        default:
          bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at));
      }
      auto decoded = decode_wire(bytes);
      if (decoded.ok()) CHECK(encode_wire(*decoded) == bytes);
    }
  }
}

TEST_CASE("wire: group tags are deterministic and unlinkable without the group id",
          "[node][wire]") {
  // Proves group_tag is a function of (group, nonce) alone, changes with either input, and
  // (trivially, since it is a keyed hash whose key is the group id) cannot be matched by a peer
  // that only holds other group ids: none of its candidate tags equals the tag sent.
  crypto_init();
  const Hash group = hash_n(40);
  const HelloNonce nonce = fixed_n<HelloNonce>(41);
  const GroupTag tag = group_tag(group, nonce);
  CHECK(group_tag(group, nonce) == tag);
  CHECK_FALSE(tag.is_zero());

  // Per nonce: the same group gives a fresh tag on every link.
  std::set<GroupTag> per_nonce;
  for (std::uint64_t i = 0; i < 64; ++i) per_nonce.insert(group_tag(group, fixed_n<HelloNonce>(i)));
  CHECK(per_nonce.size() == 64);

  // Per group: one nonce names different groups with different tags.
  std::set<GroupTag> per_group;
  for (std::uint64_t i = 0; i < 64; ++i) per_group.insert(group_tag(hash_n(100 + i), nonce));
  CHECK(per_group.size() == 64);

  // A peer that knows other groups (and the nonce, which it received in the hello) finds no
  // match; the one that knows the group id does.
  const HelloNonce other_nonce = fixed_n<HelloNonce>(42);
  for (std::uint64_t i = 0; i < 64; ++i) {
    CHECK_FALSE(group_tag(hash_n(100 + i), nonce) == tag);
  }
  CHECK_FALSE(group_tag(group, other_nonce) == tag);
  // The construction is BLAKE2b-128 of the nonce keyed by the group id, as docs/protocol.md
  // says: the value comes from Python's hashlib.blake2b(nonce, key=group, digest_size=16). The
  // unkeyed hash of the nonce, all an outsider can compute, is another value.
  CHECK(to_hex(tag) == "fdfc464464decb64e2e0e1c3ea0013b2");
  CHECK(to_hex(tag) != "4dd56d36428d6637b747cef67af00a86");
}

}  // namespace
}  // namespace qun
