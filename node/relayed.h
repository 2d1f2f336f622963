// RelayedLinks: links between two nodes through a relay (issue 14), as a sans-IO engine that the
// Node drives (docs/protocol.md, "Relayed links"). After libp2p's circuit relay v2, inside qun's
// own links:
//  - Reservation. A node that cannot be dialled (behind NAT, or not listening) asks a relay it
//    is linked to, and shares a group with, for a slot (wire::RelayReserve). While it holds one
//    it advertises the relayed address "RELAY-ADDRESS/via/RELAY-ID-HEX" instead of an address
//    that does not work.
//  - Connect. A node that wants a link to a reserved node sends the relay RelayConnect (the
//    target's id, a stream number of its own); the relay asks the target (RelayIncoming), and
//    answers the caller (RelayAnswer) with the target's answer or its own refusal.
//  - Splice. Each end then sends RelayData on its link to the relay, which forwards the bytes
//    unchanged to the other end's stream. The bytes are a whole second Link (Noise XX, then its
//    frames) that the Node runs as a connection of its own (a "virtual" connection), so the two
//    ends authenticate each other end to end and the relay sees ciphertext, sizes and timing.
//  - Flow control per stream: an end sends at most relayed_window_bytes that the other end has
//    not acknowledged (RelayAck), so a relay holds at most one window per stream and direction;
//    a relay closes a stream whose sender overruns it.
//  - Bounds on the relay (operator settings): relayed links at once, bytes per relayed link.
//    Refusals and closes name their reason and are logged.
//
// Calling contract (the engine shape of STYLE.md):
//  - The Node feeds the inputs below with its connection ids (links to relays are "carriers";
//    the relayed links it runs are "virtual" connections, whose ids the Node picks), and drains
//    poll() after each input. A Send names a carrier to write a message on (if still up).
//  - Incoming asks the Node to decide on a relayed link a caller wants: it answers with accept()
//    (naming the virtual connection it made) or refuse().
//  - Time never goes backwards. The engine has no timers of its own: maintain(), called on the
//    Node's maintenance tick, (re)asks for a reservation when one is wanted.
//  - Every peer may lie or misbehave: a message about a stream it has no part in is ignored, a
//    stream overrunning its window is closed, and nothing a peer sends grows state past the
//    bounds (streams per end are bounded by the Node's connections, splices by
//    relayed_links_max, one reservation per peer).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/log.h"
#include "base/time.h"
#include "crypto/keys.h"
#include "node/wire.h"

namespace qun {

using ConnId = std::uint64_t;

namespace relayed_limits {
// Bytes one end of a relayed link may have in flight (sent, not acknowledged) per stream: what a
// relay buffers at most per stream and direction. 64 KiB over a 100 ms round trip is 640 KB/s,
// plenty for chat and a catch-up batch in a few round trips, and 64 relayed links (the default
// bound) hold at most 8 MiB on a relay.
inline constexpr std::size_t window_bytes = 64 * 1024;
static_assert(window_bytes >= 2 * wire_limits::relay_data_bytes_max, "a window holds messages");
// Relayed links a relay carries at once, by default (`qun node --relayed-links-max`): a small
// relay on a home server or a cheap VPS carries the relayed links of a few communities' members
// behind NAT; each costs it two stream entries and at most two windows of buffer.
inline constexpr std::size_t relayed_links_max_default = 64;
// Bytes one relayed link carries at most, by default (`qun node --relayed-link-mib`), after
// which the relay closes it with a reason: a month of an active member's chat, or a catch-up of
// a large history; the link is redialled (or replaced by a direct one) when it is needed again.
inline constexpr std::uint64_t relayed_link_bytes_max_default = 64ull * 1024 * 1024;
// After a reservation was refused or lost, a node asks again this much later.
inline constexpr Millis reserve_retry_ms = 30'000;
// Refusals (relay full, no reservation, ...) logged at most this often by a relay.
inline constexpr Millis refusal_log_interval_ms = 10'000;
}  // namespace relayed_limits

// "RELAY-ADDRESS/via/RELAY-ID-HEX" split in its parts; nullopt for any other address.
struct RelayedAddress {
  std::string relay_address;
  PublicKey relay;
};
std::optional<RelayedAddress> parse_relayed_address(std::string_view address);
std::string relayed_address(const std::string& relay_address, const PublicKey& relay);

struct RelayedConfig {
  bool relay = false;  // this node relays links for others
  std::size_t relayed_links_max = relayed_limits::relayed_links_max_default;
  std::uint64_t relayed_link_bytes_max = relayed_limits::relayed_link_bytes_max_default;
};

namespace relayed_output {
struct Send {  // write message on the carrier conn
  ConnId conn;
  WireMessage message;
};
struct Incoming {  // `caller` asks for a relayed link through `relay`: accept() or refuse()
  ConnId carrier;
  std::uint32_t stream;
  PublicKey relay;
  PublicKey caller;
};
struct Connected {  // the relay spliced the virtual connection: start its Link
  ConnId conn;
};
struct Deliver {  // stream bytes for the virtual connection's Link
  ConnId conn;
  Bytes bytes;
};
struct Acked {  // the other end took this many bytes of what the virtual connection sent
  ConnId conn;
  std::size_t bytes;
};
struct Ended {  // the relayed link is over (refused, closed by the peer or the relay, carrier gone)
  ConnId conn;
  std::string reason;
};
struct AddressChanged {};  // a reservation was won or lost: relayed_address() changed
}  // namespace relayed_output
using RelayedOutput =
    std::variant<relayed_output::Send, relayed_output::Incoming, relayed_output::Connected,
                 relayed_output::Deliver, relayed_output::Acked, relayed_output::Ended,
                 relayed_output::AddressChanged>;

struct RelayedStats {
  // As an end.
  std::uint64_t links_opened = 0;  // relayed links spliced (as caller or target)
  std::uint64_t links_failed = 0;  // connects refused (by the relay or the target)
  // As a relay.
  std::uint64_t reservations_accepted = 0;
  std::uint64_t reservations_refused = 0;
  std::uint64_t splices_opened = 0;
  std::uint64_t splices_refused = 0;        // connects refused, any reason
  std::uint64_t splices_refused_full = 0;   // ... because relayed_links_max links were up
  std::uint64_t splices_closed_bytes = 0;   // closed at relayed_link_bytes_max
  std::uint64_t splices_closed_window = 0;  // closed for overrunning the window
  std::uint64_t relayed_bytes = 0;          // stream bytes forwarded
};

// A relay a node may reserve a slot on: a linked peer named as a relay by a group both hold.
struct RelayCandidate {
  ConnId conn;
  PublicKey relay;
  std::string address;  // where the relay is reached (its hello's address, or the one dialled)
};

class RelayedLinks {
 public:
  RelayedLinks(RelayedConfig config, LogSink log);

  // --- as an end
  // The Node's maintenance: want is whether this node needs a reservation (it cannot be
  // dialled); candidates, in the Node's order of preference. Asks the first candidate when no
  // reservation is held or asked for and the retry time passed; gives it up when not wanted.
  void maintain(Millis now, bool want, const std::vector<RelayCandidate>& candidates);
  // The relayed address to advertise while a reservation is held, else "".
  std::string relayed_address() const;
  std::optional<PublicKey> reserved_relay() const;
  // Opens a relayed link: `conn` is the virtual connection the Node made (outbound) for
  // `target`, through `relay`. carrier: the Node's established link to the relay, if any; else
  // the request waits for on_link_up of that relay (the Node dials it).
  void connect(Millis now, ConnId conn, const PublicKey& relay, const PublicKey& target,
               std::optional<ConnId> carrier);
  // The answer to Incoming: `conn` is the virtual connection (inbound) the Node made.
  void accept(Millis now, ConnId carrier, std::uint32_t stream, ConnId conn);
  void refuse(Millis now, ConnId carrier, std::uint32_t stream, const std::string& reason);
  // Bytes the virtual connection's Link wrote.
  void write(ConnId conn, const Bytes& bytes);
  // The relay a virtual connection goes through (none for any other connection).
  std::optional<PublicKey> via(ConnId conn) const;
  bool is_virtual(ConnId conn) const { return streams_.count(conn) > 0; }
  // Virtual connections waiting for a link to `relay`.
  bool waits_for(const PublicKey& relay) const;

  // --- both roles
  // A link to `peer` came up on conn: waiting connects through it go out.
  void on_link_up(Millis now, ConnId conn, const PublicKey& peer);
  // A connection went away: a virtual one (its stream is closed at the relay), or a carrier
  // (every stream and reservation on it ends).
  void on_closed(Millis now, ConnId conn);
  // A relay message from an established link. shares_group: the peer's hello showed a group
  // this node holds (a relay takes reservations and connects only from such peers).
  void on_message(Millis now, ConnId conn, const PublicKey& peer, bool shares_group,
                  const WireMessage& message);
  // True when conn carries a reservation or streams (the Node keeps it open).
  bool carries(ConnId conn) const;

  [[nodiscard]] std::optional<RelayedOutput> poll();

  // --- as a relay
  std::size_t reservations() const { return reserved_.size(); }
  std::size_t relayed_links() const;  // splices spliced (accepted by both ends) now
  const RelayedStats& stats() const { return stats_; }
  const RelayedConfig& config() const { return config_; }

  // True when every invariant holds (each a sentence in relayed.cpp); for the Node's checks.
  std::optional<std::string> invariant_violation() const;

 private:
  struct Stream {  // a virtual connection of ours
    ConnId carrier = 0;  // 0 while waiting for a link to the relay
    std::uint32_t stream = 0;
    PublicKey relay;
    PublicKey peer;
    bool open = false;       // spliced: data may flow
    Bytes out;               // written, not yet sent (beyond the window)
    std::size_t inflight = 0;     // sent, not acknowledged
    std::size_t unacked_in = 0;   // received, not acknowledged yet
  };
  struct Reservation {
    ConnId carrier = 0;
    PublicKey relay;
    std::string address;
    bool accepted = false;
  };
  struct Half {
    ConnId conn = 0;
    std::uint32_t stream = 0;
    auto operator<=>(const Half&) const = default;
  };
  struct Splice {  // on a relay: caller's stream <-> target's stream
    Half caller, target;
    PublicKey caller_id, target_id;
    bool open = false;
    std::uint64_t bytes = 0;
    std::size_t inflight_to_target = 0, inflight_to_caller = 0;
  };

  void on_end_message(Millis now, ConnId conn, const PublicKey& peer, const WireMessage& m);
  void on_relay_message(Millis now, ConnId conn, const PublicKey& peer, bool shares_group,
                        const WireMessage& m);
  void send_connect(ConnId conn, Stream& s, ConnId carrier);
  void flush(ConnId conn, Stream& s);
  void end(ConnId conn, const std::string& reason, bool tell_relay);
  void end_splice(std::uint64_t id, const std::string& reason, bool tell_caller, bool tell_target);
  void refuse_connect(Millis now, ConnId conn, std::uint32_t stream, const PublicKey& caller,
                      const std::string& reason);
  void note(LogLevel level, std::string message);

  RelayedConfig config_;
  LogSink log_;
  // As an end.
  std::map<ConnId, Stream> streams_;                              // by virtual connection
  std::map<std::pair<ConnId, std::uint32_t>, ConnId> by_stream_;  // (carrier, stream) -> conn
  std::map<ConnId, std::uint32_t> next_stream_;                   // per carrier
  std::optional<Reservation> reservation_;
  Millis reserve_retry_at_ = 0;
  // As a relay.
  std::map<PublicKey, ConnId> reserved_;  // reserved node -> its link
  std::map<std::uint64_t, Splice> splices_;
  std::map<Half, std::uint64_t> splice_of_;
  std::map<ConnId, std::uint32_t> next_relay_stream_;
  std::uint64_t next_splice_ = 1;
  std::optional<Millis> refusal_logged_at_;
  std::deque<RelayedOutput> out_;
  RelayedStats stats_;
};

}  // namespace qun
