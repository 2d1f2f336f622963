// Wire messages between nodes, carried inside Link messages (which are encrypted and
// authenticated). One msgpack array per message: [type, fields...]. Decoding is strict,
// canonical and bounded like events; anything unexpected is an error the caller counts and
// punishes.
//
// A message larger than one Link message is split into chunks: each Link message starts with a
// byte that is 1 when more chunks of the same message follow and 0 on the last one. Links are
// ordered, so chunks need no ids; reassembly is bounded by wire_message_bytes_max.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "base/result.h"
#include "node/event_tag.h"
#include "node/addresses.h"
#include "node/file.h"
#include "node/limits.h"

namespace qun {

namespace wire_limits {
// Group tags in one hello: a node replicates at most this many groups.
inline constexpr std::size_t groups_max = 1024;
// Peers in one shuffle or hello.
inline constexpr std::size_t peers_max = 32;
inline constexpr std::size_t address_bytes_max = limits::address_bytes_max;
// The reason in a serve-reply: a short sentence for a person ("relay full: serving 100 groups").
inline constexpr std::size_t reason_bytes_max = 128;
// Ids in one announcement, graft or heads message.
inline constexpr std::size_t ids_max = 1024;
// Events in one Events message, and their total size: one batch of catch-up.
inline constexpr std::size_t events_max = 256;
inline constexpr std::size_t events_bytes_max = 1024 * 1024;
// A whole reassembled message: one full batch plus framing.
inline constexpr std::size_t message_bytes_max = events_bytes_max + 64 * 1024;
inline constexpr std::size_t tag_bytes = 16;
inline constexpr std::size_t hello_nonce_bytes = 16;
static_assert(limits::event_bytes_max <= events_bytes_max, "one event always fits a batch");
static_assert(reason_bytes_max <= address_bytes_max, "every str of a message shares one bound");
static_assert(file_limits::blob_bytes_max <= limits::event_bytes_max, "a blob passes the coarse bin bound");
}  // namespace wire_limits

struct GroupTagTag {};
using GroupTag = FixedBytes<wire_limits::tag_bytes, GroupTagTag>;
struct HelloNonceTag {};
using HelloNonce = FixedBytes<wire_limits::hello_nonce_bytes, HelloNonceTag>;

// A group tag: keyed BLAKE2b of the sender's hello nonce under the group id. Only a peer that
// knows the group id can tell which group a tag names; tags differ on every link.
GroupTag group_tag(const Hash& group, const HelloNonce& nonce);

struct PeerInfo {
  PublicKey id;
  // Where the peer may be dialled, its preferred address first; at most
  // address_limits::addresses_max (node/addresses.h), each non-empty.
  std::vector<std::string> addresses;
  bool operator==(const PeerInfo&) const = default;
};

namespace wire {
// Sent first on every link, and again whenever the sender's groups change.
struct Hello {
  HelloNonce nonce;
  // Where the sender may be dialled (none if it cannot be), its preferred address first: at most
  // address_limits::addresses_max (node/addresses.h), each non-empty. On the wire one address is
  // a str as it always was, and only a longer list an array (docs/protocol.md, "Addresses").
  std::vector<std::string> addresses;
  std::vector<GroupTag> groups;
};
// HyParView-style membership, per group.
struct Neighbor {  // please take me into your active set for this group
  Hash group;
  bool high_priority;  // the sender has no active peer for this group
};
struct NeighborReply {
  Hash group;
  bool accepted;
};
struct Disconnect {  // I dropped you from my active set for this group
  Hash group;
};
struct Shuffle {  // a sample of known peers; the receiver answers with its own (reply = true)
  Hash group;
  bool reply;
  std::vector<PeerInfo> peers;
};
// Plumtree-style broadcast and catch-up, per group.
struct Events {  // encoded events, parents before children
  Hash group;
  std::vector<Bytes> events;
  // Pushes: how many links the events crossed before the sender (0 from their author).
  // no_hops for catch-up batches, which say nothing about the tree.
  std::uint32_t hops;
};
inline constexpr std::uint32_t no_hops = UINT32_MAX;
struct IHave {  // lazy announcement of events, by tag (node/event_tag.h)
  Hash group;
  std::vector<EventTag> tags;
  std::vector<std::uint32_t> hops;  // per tag: the announcer's distance from the author
};
struct Graft {  // send me these events (by tag) and push to me from now on (in their authors'
  Hash group;    // trees, and in those of `authors`: a tree swap names no event; naming neither:
  std::vector<EventTag> tags;      // attach me)
  std::vector<PublicKey> authors;  // at most ids_max
};
struct Prune {  // stop pushing to me these authors' events (none named: anyone's), I got them
  Hash group;   // from someone else
  std::vector<PublicKey> authors;  // at most ids_max
};
// Catch-up. An offer announces the sender's heads; a receiver lacking some of them (and not
// already fetching them from another peer) answers with a request carrying its own heads; the
// receiver of a request sends every event outside the causal past of the requester's heads.
struct Heads {
  Hash group;
  std::vector<Hash> heads;
  bool want;  // a request ("send me what I lack"), not an offer
};
// Relays. A node asks a relay to store and forward one of its groups; the relay answers. Unlike
// the messages above, these name a group the receiver may not hold (yet): the request is how a
// relay learns the group id, after which hellos' tags match and catch-up runs as usual.
struct Serve {
  Hash group;
};
struct ServeReply {
  Hash group;
  bool accepted;
  std::string reason;  // why not (or "" when accepted); at most reason_bytes_max bytes
};
// Invite holders. A node that is not a member of a group but holds the secret of one of its
// invites (it is joining) shows it to a peer that holds the group, so that the peer syncs the
// group with it although it is no member: a former member coming back with a new invite, whom
// members otherwise shun. The proof is the join proof (node/payload.h, join_proof_message) for
// the link's peer, signed by the invite key; the link authenticates the peer, so the proof
// cannot be used by anyone else. Like Serve, it names a group the receiver may not share yet.
struct Holder {
  Hash group;
  PublicKey invite_key;  // the public key of the invite whose secret the sender holds
  Signature proof;       // Sign(invite key, "qun-join-v1" || group || sender's id)
};
// Reachability (node/reachability.h, docs/protocol.md "Reachability"). Observed is sent once on
// every link, after the hello: the address the sender sees the link come from (the socket's
// peer address, "HOST:PORT"), as libp2p's identify and STUN tell a node behind NAT its public
// address. Like Hello, it names no group.
struct Observed {
  std::string address;
};
// "Dial me back on this port": the receiver opens a new connection to the address it sees this
// link come from (never an address the message names: a dial-back cannot aim at a third party),
// on `port`, and answers with a DialBackResult carrying the same nonce.
struct DialBack {
  std::uint64_t nonce;
  std::uint16_t port;
};
enum class DialBackOutcome : std::uint8_t {
  reachable = 0,    // a secure link to the requester came up on the new connection
  unreachable = 1,  // the connection or its handshake failed
  refused = 2,      // the receiver would not dial (busy, asked too often): no verdict
};
struct DialBackResult {
  std::uint64_t nonce;
  DialBackOutcome outcome;
};
// Files (node/file.h, node/transfer.h; docs/protocol.md "Files"): encrypted blobs of a group,
// named by their address (BLAKE2b-256 of their bytes). They travel in each link's file lane,
// behind every other message, and only between peers that share the group.
struct BlobOffer {  // I hold these blobs (sent to a relay of the group, which asks for its lack)
  Hash group;
  std::vector<Hash> ids;
};
struct BlobGet {  // send me these blobs
  Hash group;
  std::vector<Hash> ids;
};
struct Blob {  // one blob, at most file_limits::blob_bytes_max bytes; its address is its hash
  Hash group;
  Bytes data;
};
struct BlobNone {  // I hold none of these (an answer to a get)
  Hash group;
  std::vector<Hash> ids;
};
// Relayed links (node/relayed.h, docs/protocol.md "Relayed links"), after libp2p's circuit relay
// v2. A node behind NAT reserves a slot on a relay it shares a group with; another node asks the
// relay to connect it to the reserved node, and the relay splices two streams, one on each of its
// links, over which the two run a whole second Link end to end. Streams are numbered per link by
// whoever opens them: a node's own numbers are below relay_stream_first, a relay's from there up.
// Like Hello, none of these names a group.
struct RelayReserve {  // take (active) or give up (!active) a reservation on this relay
  bool active;
  bool operator==(const RelayReserve&) const = default;
};
struct RelayReserveReply {
  bool accepted;
  std::string reason;  // why not ("" when accepted); at most reason_bytes_max bytes
  bool operator==(const RelayReserveReply&) const = default;
};
struct RelayConnect {  // caller to relay: open `stream` to the reserved node `target`
  PublicKey target;
  std::uint32_t stream;
  bool operator==(const RelayConnect&) const = default;
};
struct RelayIncoming {  // relay to the reserved node: `caller` wants a link on `stream`
  PublicKey caller;
  std::uint32_t stream;
  bool operator==(const RelayIncoming&) const = default;
};
// The answer to RelayConnect (relay to caller) or RelayIncoming (reserved node to relay).
struct RelayAnswer {
  std::uint32_t stream;
  bool accepted;
  std::string reason;  // "" when accepted; at most reason_bytes_max bytes
  bool operator==(const RelayAnswer&) const = default;
};
struct RelayData {  // bytes of the spliced Link, unchanged by the relay
  std::uint32_t stream;
  Bytes bytes;  // 1 .. relay_data_bytes_max
  bool operator==(const RelayData&) const = default;
};
struct RelayAck {  // the receiver took `bytes` more of the stream: the sender may send them again
  std::uint32_t stream;
  std::uint32_t bytes;
  bool operator==(const RelayAck&) const = default;
};
struct RelayClose {  // the stream is over (either end, or the relay)
  std::uint32_t stream;
  std::string reason;  // at most reason_bytes_max bytes
  bool operator==(const RelayClose&) const = default;
};
// Hole punching (node/punch.h, docs/protocol.md "Hole punching"), after libp2p's DCUtR, sent on
// a relayed link only: the end that accepted it sends connect with its addresses, the other
// answers reply with its own, and the first sends sync, after which both dial each other.
enum class PunchPhase : std::uint8_t { connect = 0, reply = 1, sync = 2 };
struct Punch {
  PunchPhase phase;
  std::vector<std::string> addresses;  // "HOST:PORT" to dial the sender at; at most punch_addresses_max
  bool operator==(const Punch&) const = default;
};
// Direct groups (node/direct.h): "this group, which I hold, is a direct conversation with you".
// Sent only on a link whose authenticated peer is the group's other member and whose hello does
// not show the group. Like Serve, it names a group the receiver does not hold yet.
struct DirectOffer {
  Hash group;
};
}  // namespace wire

namespace wire_limits {
// Stream numbers a relay picks start here; a node's own are below it (RelayConnect).
inline constexpr std::uint32_t relay_stream_first = 1u << 31;
// Bytes in one RelayData: a quarter of a stream's window (relayed_window_bytes, node/relayed.h),
// so a window is four messages in flight, and small next to a link message (65 519 bytes) so one
// stream's data does not hold up another's for long on the link to the relay.
inline constexpr std::size_t relay_data_bytes_max = 16 * 1024;
// Addresses in one Punch: a node has one public address per family it listens on, and a few
// more leave room for a router's other address; nobody dials more than the first today.
inline constexpr std::size_t punch_addresses_max = 4;
static_assert(relay_data_bytes_max <= limits::event_bytes_max, "within the decoder's bin bound");
}  // namespace wire_limits

using WireMessage = std::variant<wire::Hello, wire::Neighbor, wire::NeighborReply, wire::Disconnect,
                                 wire::Shuffle, wire::Events, wire::IHave, wire::Graft, wire::Prune,
                                 wire::Heads, wire::Serve, wire::ServeReply, wire::Holder,
                                 wire::Observed, wire::DialBack, wire::DialBackResult,
                                 wire::BlobOffer, wire::BlobGet, wire::Blob, wire::BlobNone,
                                 wire::RelayReserve, wire::RelayReserveReply, wire::RelayConnect,
                                 wire::RelayIncoming, wire::RelayAnswer, wire::RelayData,
                                 wire::RelayAck, wire::RelayClose, wire::Punch,
                                 wire::DirectOffer>;
// The messages of the file lane (wire::Blob*).
bool is_file_message(const WireMessage& message);

Bytes encode_wire(const WireMessage& message);
[[nodiscard]] Result<WireMessage> decode_wire(ByteView bytes);
const char* wire_name(const WireMessage& message);

}  // namespace qun
