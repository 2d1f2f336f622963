#include "node/wire.h"

#include <sodium.h>

#include <cassert>

#include <algorithm>

#include "base/codec.h"

namespace qun {

GroupTag group_tag(const Hash& group, const HelloNonce& nonce) {
  GroupTag tag;
  crypto_generichash(tag.data(), tag.size(), nonce.data(), nonce.size(), group.data(), group.size());
  return tag;
}

namespace {

enum class Type : std::uint8_t {
  hello = 1, neighbor, neighbor_reply, disconnect, shuffle, events, ihave, graft, prune, heads,
  serve, serve_reply, holder, observed, dial_back, dial_back_result, blob_offer, blob_get, blob,
  blob_none,
  relay_reserve, relay_reserve_reply, relay_connect, relay_incoming, relay_answer, relay_data,
  relay_ack, relay_close, punch, direct_offer,
};

void write_ids(codec::Writer& w, const std::vector<Hash>& ids) {
  w.array(static_cast<std::uint32_t>(ids.size()));
  for (const auto& id : ids) w.fixed(id);
}

Result<std::vector<Hash>> read_ids(const msgpack::object& o) {
  QUN_TRY(auto a, codec::array(o, 0, wire_limits::ids_max, "ids"));
  std::vector<Hash> out;
  out.reserve(a.size);
  for (std::uint32_t i = 0; i < a.size; ++i) {
    QUN_TRY(auto h, codec::fixed<Hash>(a.ptr[i], "id"));
    out.push_back(h);
  }
  return out;
}

// Tags travel as one bin of 8 bytes each: no per-tag header.
void write_tags(codec::Writer& w, const std::vector<EventTag>& tags) {
  Bytes b;
  b.reserve(tags.size() * EventTag::size());
  for (const auto& t : tags) b.insert(b.end(), t.bytes.begin(), t.bytes.end());
  w.bin(b);
}

Result<std::vector<EventTag>> read_tags(const msgpack::object& o) {
  QUN_TRY(auto b, codec::bin(o, 0, wire_limits::ids_max * EventTag::size(), "tags"));
  if (b.size() % EventTag::size() != 0) return Error(Errc::malformed, "tags: not a whole number");
  std::vector<EventTag> out(b.size() / EventTag::size());
  for (std::size_t i = 0; i < out.size(); ++i)
    std::copy_n(b.begin() + static_cast<long>(i * EventTag::size()), EventTag::size(),
                out[i].bytes.begin());
  return out;
}

void write_keys(codec::Writer& w, const std::vector<PublicKey>& keys) {
  w.array(static_cast<std::uint32_t>(keys.size()));
  for (const auto& k : keys) w.fixed(k);
}

Result<std::vector<PublicKey>> read_keys(const msgpack::object& o) {
  QUN_TRY(auto a, codec::array(o, 0, wire_limits::ids_max, "authors"));
  std::vector<PublicKey> out;
  out.reserve(a.size);
  for (std::uint32_t i = 0; i < a.size; ++i) {
    QUN_TRY(auto k, codec::fixed<PublicKey>(a.ptr[i], "author"));
    out.push_back(k);
  }
  return out;
}

Result<bool> read_bool(const msgpack::object& o, const char* what) {
  QUN_TRY(auto v, codec::uint(o, 1, what));
  return v == 1;
}

// An address list (node/addresses.h): none or one as a str ("" for none), as hellos and
// shuffles carried a single address before lists; two or more as an array of str. A list of one
// in an array is not canonical, so each list has one byte form.
void write_addresses(codec::Writer& w, const std::vector<std::string>& addresses) {
  assert(addresses.size() <= address_limits::addresses_max);
  if (addresses.size() <= 1) {
    w.str(addresses.empty() ? std::string() : addresses.front());
    return;
  }
  w.array(static_cast<std::uint32_t>(addresses.size()));
  for (const auto& a : addresses) w.str(a);
}

Result<std::vector<std::string>> read_addresses(const msgpack::object& o, const char* what) {
  std::vector<std::string> out;
  if (o.type == msgpack::type::STR) {
    QUN_TRY(auto one, codec::str(o, wire_limits::address_bytes_max, what));
    if (!one.empty()) out.push_back(std::move(one));
    return out;
  }
  QUN_TRY(auto list, codec::array(o, 2, address_limits::addresses_max, what));
  for (std::uint32_t i = 0; i < list.size; ++i) {
    QUN_TRY(auto a, codec::str(list.ptr[i], wire_limits::address_bytes_max, what));
    if (a.empty()) return Error(Errc::malformed, std::string("empty entry in ") + what);
    out.push_back(std::move(a));
  }
  return out;
}

struct Encoder {
  codec::Writer& w;
  void operator()(const wire::Hello& m) {
    w.array(4).uint(static_cast<std::uint8_t>(Type::hello)).fixed(m.nonce);
    write_addresses(w, m.addresses);
    w.array(static_cast<std::uint32_t>(m.groups.size()));
    for (const auto& t : m.groups) w.fixed(t);
  }
  void operator()(const wire::Neighbor& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::neighbor)).fixed(m.group).uint(m.high_priority);
  }
  void operator()(const wire::NeighborReply& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::neighbor_reply)).fixed(m.group).uint(m.accepted);
  }
  void operator()(const wire::Disconnect& m) {
    w.array(2).uint(static_cast<std::uint8_t>(Type::disconnect)).fixed(m.group);
  }
  void operator()(const wire::Shuffle& m) {
    w.array(4).uint(static_cast<std::uint8_t>(Type::shuffle)).fixed(m.group).uint(m.reply);
    w.array(static_cast<std::uint32_t>(m.peers.size()));
    for (const auto& p : m.peers) {
      w.array(2).fixed(p.id);
      write_addresses(w, p.addresses);
    }
  }
  void operator()(const wire::Events& m) {
    w.array(4).uint(static_cast<std::uint8_t>(Type::events)).fixed(m.group).uint(m.hops);
    w.array(static_cast<std::uint32_t>(m.events.size()));
    for (const auto& e : m.events) w.bin(e);
  }
  void operator()(const wire::IHave& m) {
    assert(m.hops.size() == m.tags.size());
    w.array(4).uint(static_cast<std::uint8_t>(Type::ihave)).fixed(m.group);
    write_tags(w, m.tags);
    w.array(static_cast<std::uint32_t>(m.hops.size()));
    for (auto h : m.hops) w.uint(h);
  }
  void operator()(const wire::Graft& m) {
    w.array(4).uint(static_cast<std::uint8_t>(Type::graft)).fixed(m.group);
    write_tags(w, m.tags);
    write_keys(w, m.authors);
  }
  void operator()(const wire::Prune& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::prune)).fixed(m.group);
    write_keys(w, m.authors);
  }
  void operator()(const wire::Heads& m) {
    w.array(4).uint(static_cast<std::uint8_t>(Type::heads)).fixed(m.group).uint(m.want);
    write_ids(w, m.heads);
  }
  void operator()(const wire::Serve& m) {
    w.array(2).uint(static_cast<std::uint8_t>(Type::serve)).fixed(m.group);
  }
  void operator()(const wire::ServeReply& m) {
    assert(m.reason.size() <= wire_limits::reason_bytes_max);
    w.array(4).uint(static_cast<std::uint8_t>(Type::serve_reply)).fixed(m.group).uint(m.accepted);
    w.str(m.reason);
  }
  void operator()(const wire::Holder& m) {
    w.array(4).uint(static_cast<std::uint8_t>(Type::holder)).fixed(m.group).fixed(m.invite_key);
    w.fixed(m.proof);
  }
  void operator()(const wire::Observed& m) {
    w.array(2).uint(static_cast<std::uint8_t>(Type::observed)).str(m.address);
  }
  void operator()(const wire::DialBack& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::dial_back)).uint(m.nonce).uint(m.port);
  }
  void operator()(const wire::DialBackResult& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::dial_back_result)).uint(m.nonce);
    w.uint(static_cast<std::uint8_t>(m.outcome));
  }
  void operator()(const wire::BlobOffer& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::blob_offer)).fixed(m.group);
    write_ids(w, m.ids);
  }
  void operator()(const wire::BlobGet& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::blob_get)).fixed(m.group);
    write_ids(w, m.ids);
  }
  void operator()(const wire::Blob& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::blob)).fixed(m.group).bin(m.data);
  }
  void operator()(const wire::BlobNone& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::blob_none)).fixed(m.group);
    write_ids(w, m.ids);
  }
  void operator()(const wire::RelayReserve& m) {
    w.array(2).uint(static_cast<std::uint8_t>(Type::relay_reserve)).uint(m.active);
  }
  void operator()(const wire::RelayReserveReply& m) {
    assert(m.reason.size() <= wire_limits::reason_bytes_max);
    w.array(3).uint(static_cast<std::uint8_t>(Type::relay_reserve_reply)).uint(m.accepted);
    w.str(m.reason);
  }
  void operator()(const wire::RelayConnect& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::relay_connect)).fixed(m.target).uint(m.stream);
  }
  void operator()(const wire::RelayIncoming& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::relay_incoming)).fixed(m.caller).uint(m.stream);
  }
  void operator()(const wire::RelayAnswer& m) {
    assert(m.reason.size() <= wire_limits::reason_bytes_max);
    w.array(4).uint(static_cast<std::uint8_t>(Type::relay_answer)).uint(m.stream).uint(m.accepted);
    w.str(m.reason);
  }
  void operator()(const wire::RelayData& m) {
    assert(!m.bytes.empty() && m.bytes.size() <= wire_limits::relay_data_bytes_max);
    w.array(3).uint(static_cast<std::uint8_t>(Type::relay_data)).uint(m.stream).bin(m.bytes);
  }
  void operator()(const wire::RelayAck& m) {
    w.array(3).uint(static_cast<std::uint8_t>(Type::relay_ack)).uint(m.stream).uint(m.bytes);
  }
  void operator()(const wire::RelayClose& m) {
    assert(m.reason.size() <= wire_limits::reason_bytes_max);
    w.array(3).uint(static_cast<std::uint8_t>(Type::relay_close)).uint(m.stream).str(m.reason);
  }
  void operator()(const wire::Punch& m) {
    assert(m.addresses.size() <= wire_limits::punch_addresses_max);
    w.array(3).uint(static_cast<std::uint8_t>(Type::punch)).uint(static_cast<std::uint8_t>(m.phase));
    w.array(static_cast<std::uint32_t>(m.addresses.size()));
    for (const auto& a : m.addresses) w.str(a);
  }
  void operator()(const wire::DirectOffer& m) {
    w.array(2).uint(static_cast<std::uint8_t>(Type::direct_offer)).fixed(m.group);
  }
};

}  // namespace

Bytes encode_wire(const WireMessage& message) {
  codec::Writer w;
  std::visit(Encoder{w}, message);
  return w.take();
}

const char* wire_name(const WireMessage& message) {
  static const char* names[] = {"hello", "neighbor", "neighbor-reply", "disconnect", "shuffle",
                                "events", "ihave", "graft", "prune", "heads", "serve",
                                "serve-reply", "holder", "observed", "dial-back",
                                "dial-back-result", "blob-offer", "blob-get", "blob",
                                "blob-none", "relay-reserve", "relay-reserve-reply",
                                "relay-connect", "relay-incoming", "relay-answer", "relay-data",
                                "relay-ack", "relay-close", "punch", "direct-offer"};
  static_assert(sizeof(names) / sizeof(names[0]) == std::variant_size_v<WireMessage>);
  return names[message.index()];
}

bool is_file_message(const WireMessage& message) {
  return std::holds_alternative<wire::BlobOffer>(message) ||
         std::holds_alternative<wire::BlobGet>(message) ||
         std::holds_alternative<wire::Blob>(message) || std::holds_alternative<wire::BlobNone>(message);
}

namespace {

// Every check but canonical form, which decode_wire adds.
Result<WireMessage> decode_fields(ByteView bytes) {
  const codec::DecodeLimits limits{
      .bytes_max = wire_limits::message_bytes_max,
      .array_max = std::max({wire_limits::groups_max, wire_limits::ids_max, wire_limits::events_max,
                             wire_limits::peers_max}),
      .bin_max = limits::event_bytes_max,
      .str_max = wire_limits::address_bytes_max,
      .depth_max = 4,  // a shuffle's peer addresses: [type, group, reply, [[id, [address]]]]
      .reference_input = true,  // the handle dies here; every field is copied out of it
  };
  QUN_TRY(auto handle, codec::unpack_strict(bytes, limits));
  QUN_TRY(auto a, codec::array(handle.get(), 2, 4, "message"));
  QUN_TRY(auto type, codec::uint(a.ptr[0], 255, "message type"));
  auto need = [&](std::uint32_t n) -> Result<void> {
    if (a.size != n) return Error(Errc::malformed, "wrong field count for message type " + std::to_string(type));
    return ok_result();
  };
  switch (static_cast<Type>(type)) {
    case Type::hello: {
      QUN_TRY_VOID(need(4));
      wire::Hello m;
      QUN_TRY(m.nonce, codec::fixed<HelloNonce>(a.ptr[1], "nonce"));
      QUN_TRY(m.addresses, read_addresses(a.ptr[2], "addresses"));
      QUN_TRY(auto tags, codec::array(a.ptr[3], 0, wire_limits::groups_max, "groups"));
      for (std::uint32_t i = 0; i < tags.size; ++i) {
        QUN_TRY(auto t, codec::fixed<GroupTag>(tags.ptr[i], "group tag"));
        m.groups.push_back(t);
      }
      return WireMessage(std::move(m));
    }
    case Type::neighbor: {
      QUN_TRY_VOID(need(3));
      wire::Neighbor m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(m.high_priority, read_bool(a.ptr[2], "priority"));
      return WireMessage(m);
    }
    case Type::neighbor_reply: {
      QUN_TRY_VOID(need(3));
      wire::NeighborReply m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(m.accepted, read_bool(a.ptr[2], "accepted"));
      return WireMessage(m);
    }
    case Type::disconnect: {
      QUN_TRY_VOID(need(2));
      wire::Disconnect m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      return WireMessage(m);
    }
    case Type::shuffle: {
      QUN_TRY_VOID(need(4));
      wire::Shuffle m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(m.reply, read_bool(a.ptr[2], "reply"));
      QUN_TRY(auto peers, codec::array(a.ptr[3], 0, wire_limits::peers_max, "peers"));
      for (std::uint32_t i = 0; i < peers.size; ++i) {
        QUN_TRY(auto pair, codec::array(peers.ptr[i], 2, 2, "peer"));
        PeerInfo p;
        QUN_TRY(p.id, codec::fixed<PublicKey>(pair.ptr[0], "peer id"));
        QUN_TRY(p.addresses, read_addresses(pair.ptr[1], "peer addresses"));
        m.peers.push_back(std::move(p));
      }
      return WireMessage(std::move(m));
    }
    case Type::events: {
      QUN_TRY_VOID(need(4));
      wire::Events m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(auto hops, codec::uint(a.ptr[2], UINT32_MAX, "hops"));
      m.hops = static_cast<std::uint32_t>(hops);
      QUN_TRY(auto evs, codec::array(a.ptr[3], 0, wire_limits::events_max, "events"));
      std::size_t total = 0;
      for (std::uint32_t i = 0; i < evs.size; ++i) {
        QUN_TRY(auto e, codec::bin(evs.ptr[i], 1, limits::event_bytes_max, "event"));
        total += e.size();
        if (total > wire_limits::events_bytes_max) return Error(Errc::too_large, "event batch");
        m.events.emplace_back(e.begin(), e.end());
      }
      return WireMessage(std::move(m));
    }
    case Type::ihave: {
      QUN_TRY_VOID(need(4));
      wire::IHave m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(m.tags, read_tags(a.ptr[2]));
      QUN_TRY(auto hops, codec::array(a.ptr[3], m.tags.size(), m.tags.size(), "hops"));
      for (std::uint32_t i = 0; i < hops.size; ++i) {
        QUN_TRY(auto h, codec::uint(hops.ptr[i], UINT32_MAX, "hops"));
        m.hops.push_back(static_cast<std::uint32_t>(h));
      }
      return WireMessage(std::move(m));
    }
    case Type::graft: {
      QUN_TRY_VOID(need(4));
      Hash group;
      QUN_TRY(group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(auto tags, read_tags(a.ptr[2]));
      QUN_TRY(auto authors, read_keys(a.ptr[3]));
      return WireMessage(wire::Graft{group, std::move(tags), std::move(authors)});
    }
    case Type::prune: {
      QUN_TRY_VOID(need(3));
      wire::Prune m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(m.authors, read_keys(a.ptr[2]));
      return WireMessage(std::move(m));
    }
    case Type::heads: {
      QUN_TRY_VOID(need(4));
      wire::Heads m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(m.want, read_bool(a.ptr[2], "want"));
      QUN_TRY(m.heads, read_ids(a.ptr[3]));
      return WireMessage(std::move(m));
    }
    case Type::serve: {
      QUN_TRY_VOID(need(2));
      wire::Serve m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      return WireMessage(m);
    }
    case Type::serve_reply: {
      QUN_TRY_VOID(need(4));
      wire::ServeReply m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(m.accepted, read_bool(a.ptr[2], "accepted"));
      QUN_TRY(m.reason, codec::str(a.ptr[3], wire_limits::reason_bytes_max, "reason"));
      return WireMessage(std::move(m));
    }
    case Type::holder: {
      QUN_TRY_VOID(need(4));
      wire::Holder m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(m.invite_key, codec::fixed<PublicKey>(a.ptr[2], "invite key"));
      QUN_TRY(m.proof, codec::fixed<Signature>(a.ptr[3], "proof"));
      return WireMessage(m);
    }
    case Type::observed: {
      QUN_TRY_VOID(need(2));
      wire::Observed m;
      QUN_TRY(m.address, codec::str(a.ptr[1], wire_limits::address_bytes_max, "address"));
      return WireMessage(std::move(m));
    }
    case Type::dial_back: {
      QUN_TRY_VOID(need(3));
      wire::DialBack m;
      QUN_TRY(m.nonce, codec::uint(a.ptr[1], UINT64_MAX, "nonce"));
      QUN_TRY(auto port, codec::uint(a.ptr[2], UINT16_MAX, "port"));
      m.port = static_cast<std::uint16_t>(port);
      return WireMessage(m);
    }
    case Type::dial_back_result: {
      QUN_TRY_VOID(need(3));
      wire::DialBackResult m;
      QUN_TRY(m.nonce, codec::uint(a.ptr[1], UINT64_MAX, "nonce"));
      QUN_TRY(auto outcome, codec::uint(a.ptr[2], 2, "outcome"));
      m.outcome = static_cast<wire::DialBackOutcome>(outcome);
      return WireMessage(m);
    }
    case Type::blob_offer:
    case Type::blob_get:
    case Type::blob_none: {
      QUN_TRY_VOID(need(3));
      Hash group;
      QUN_TRY(group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(auto ids, read_ids(a.ptr[2]));
      if (static_cast<Type>(type) == Type::blob_offer)
        return WireMessage(wire::BlobOffer{group, std::move(ids)});
      if (static_cast<Type>(type) == Type::blob_get)
        return WireMessage(wire::BlobGet{group, std::move(ids)});
      return WireMessage(wire::BlobNone{group, std::move(ids)});
    }
    case Type::blob: {
      QUN_TRY_VOID(need(3));
      wire::Blob m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      QUN_TRY(auto data, codec::bin(a.ptr[2], 0, file_limits::blob_bytes_max, "blob"));
      m.data.assign(data.begin(), data.end());
      return WireMessage(std::move(m));
    }
    case Type::relay_reserve: {
      QUN_TRY_VOID(need(2));
      wire::RelayReserve m;
      QUN_TRY(m.active, read_bool(a.ptr[1], "active"));
      return WireMessage(m);
    }
    case Type::relay_reserve_reply: {
      QUN_TRY_VOID(need(3));
      wire::RelayReserveReply m;
      QUN_TRY(m.accepted, read_bool(a.ptr[1], "accepted"));
      QUN_TRY(m.reason, codec::str(a.ptr[2], wire_limits::reason_bytes_max, "reason"));
      return WireMessage(std::move(m));
    }
    case Type::relay_connect: {
      QUN_TRY_VOID(need(3));
      wire::RelayConnect m;
      QUN_TRY(m.target, codec::fixed<PublicKey>(a.ptr[1], "target"));
      QUN_TRY(auto stream, codec::uint(a.ptr[2], UINT32_MAX, "stream"));
      m.stream = static_cast<std::uint32_t>(stream);
      return WireMessage(m);
    }
    case Type::relay_incoming: {
      QUN_TRY_VOID(need(3));
      wire::RelayIncoming m;
      QUN_TRY(m.caller, codec::fixed<PublicKey>(a.ptr[1], "caller"));
      QUN_TRY(auto stream, codec::uint(a.ptr[2], UINT32_MAX, "stream"));
      m.stream = static_cast<std::uint32_t>(stream);
      return WireMessage(m);
    }
    case Type::relay_answer: {
      QUN_TRY_VOID(need(4));
      wire::RelayAnswer m;
      QUN_TRY(auto stream, codec::uint(a.ptr[1], UINT32_MAX, "stream"));
      m.stream = static_cast<std::uint32_t>(stream);
      QUN_TRY(m.accepted, read_bool(a.ptr[2], "accepted"));
      QUN_TRY(m.reason, codec::str(a.ptr[3], wire_limits::reason_bytes_max, "reason"));
      return WireMessage(std::move(m));
    }
    case Type::relay_data: {
      QUN_TRY_VOID(need(3));
      wire::RelayData m;
      QUN_TRY(auto stream, codec::uint(a.ptr[1], UINT32_MAX, "stream"));
      m.stream = static_cast<std::uint32_t>(stream);
      QUN_TRY(auto b, codec::bin(a.ptr[2], 1, wire_limits::relay_data_bytes_max, "relay data"));
      m.bytes.assign(b.begin(), b.end());
      return WireMessage(std::move(m));
    }
    case Type::relay_ack: {
      QUN_TRY_VOID(need(3));
      wire::RelayAck m;
      QUN_TRY(auto stream, codec::uint(a.ptr[1], UINT32_MAX, "stream"));
      m.stream = static_cast<std::uint32_t>(stream);
      QUN_TRY(auto bytes, codec::uint(a.ptr[2], UINT32_MAX, "bytes"));
      m.bytes = static_cast<std::uint32_t>(bytes);
      return WireMessage(m);
    }
    case Type::relay_close: {
      QUN_TRY_VOID(need(3));
      wire::RelayClose m;
      QUN_TRY(auto stream, codec::uint(a.ptr[1], UINT32_MAX, "stream"));
      m.stream = static_cast<std::uint32_t>(stream);
      QUN_TRY(m.reason, codec::str(a.ptr[2], wire_limits::reason_bytes_max, "reason"));
      return WireMessage(std::move(m));
    }
    case Type::punch: {
      QUN_TRY_VOID(need(3));
      wire::Punch m;
      QUN_TRY(auto phase, codec::uint(a.ptr[1], 2, "phase"));
      m.phase = static_cast<wire::PunchPhase>(phase);
      QUN_TRY(auto list, codec::array(a.ptr[2], 0, wire_limits::punch_addresses_max, "addresses"));
      for (std::uint32_t i = 0; i < list.size; ++i) {
        QUN_TRY(auto s, codec::str(list.ptr[i], wire_limits::address_bytes_max, "address"));
        m.addresses.push_back(std::move(s));
      }
      return WireMessage(std::move(m));
    }
    case Type::direct_offer: {
      QUN_TRY_VOID(need(2));
      wire::DirectOffer m;
      QUN_TRY(m.group, codec::fixed<Hash>(a.ptr[1], "group"));
      return WireMessage(m);
    }
  }
  return Error(Errc::malformed, "unknown message type " + std::to_string(type));
}

}  // namespace

Result<WireMessage> decode_wire(ByteView bytes) {
  QUN_TRY(auto message, decode_fields(bytes));
  // Like events, a message has one byte form: msgpack allows longer forms of the same values
  // (a uint8 for a small type number, a str8 for a short address), which we refuse.
  const Bytes canonical = encode_wire(message);
  if (canonical.size() != bytes.size() ||
      !std::equal(canonical.begin(), canonical.end(), bytes.begin())) {
    return Error(Errc::malformed, "not in canonical form");
  }
  return message;
}

}  // namespace qun
