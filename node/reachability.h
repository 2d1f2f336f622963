// Reachability: what a node knows of how others reach it (issue 14), as a sans-IO engine that
// the Node drives (docs/protocol.md, "Reachability").
//
// Two things, after libp2p's identify and AutoNAT:
//  - Observed addresses. Every link tells the other side the address it sees the link come
//    from (wire::Observed). A node behind a home router (NAT) learns its router's public
//    address this way; it keeps the last observation of each peer, bounded.
//  - Dial-back. A node asks a peer that sees it from a public address to dial it back on its
//    listening port (wire::DialBack); the peer opens a new connection to the address it sees the
//    link come from, runs the secure handshake expecting the requester's identity, closes it,
//    and answers (wire::DialBackResult). A node that gets through is "reachable" and advertises
//    that public address; one that does not is "behind NAT" and keeps advertising its own.
//
// As the dialler, the engine bounds what it does for others: one dial-back per peer per
// dial_back_serve_interval_ms, dial_backs_in_flight_max at once; past them it answers "refused",
// which the requester counts as no verdict. A dial-back only ever targets the IP of the link it
// was asked on, so a peer cannot aim this node's dials at a third party.
//
// Calling contract (the engine shape of STYLE.md):
//  - The Node feeds the inputs below with its connection ids, and drains poll() after each; a
//    Send names a connection the Node should write the message on (if it is still up), a Dial a
//    probe connection to open (the Node reports it with probe_dialed, or probe_done if it could
//    not start it).
//  - Time never goes backwards; on_tick early or twice does nothing; next_deadline() is the
//    earliest time on_tick has something to do.
//  - Addresses are "HOST:PORT" with HOST an IP literal (IPv6 in brackets); anything else a peer
//    sends is ignored.
//  - Peers may lie. An observation is one peer's word; the status follows the majority of the
//    recent verdicts of distinct peers (a tie counts as reachable), so one lying peer among
//    honest ones cannot flip it, and alone can at worst have this node advertise an address
//    that does not work (the private one stays known to LAN peers by their own observations).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/time.h"
#include "crypto/keys.h"
#include "node/wire.h"

namespace qun {

using ConnId = std::uint64_t;

namespace reach_limits {
// Peers whose observation of this node is kept: a node links to a few dozen peers (active sets
// of up to 7 per group, relays, explores); past it the oldest observation goes.
inline constexpr std::size_t observers_max = 32;
// Verdicts (one per peer, the latest) the status is decided from: enough for a majority of
// several peers, few enough that a change of network (a laptop moving home) shows within
// the next few checks.
inline constexpr std::size_t verdicts_max = 5;
// A dial-back request waits this long for its answer: the dialler's own dial timeout
// (OverlayConfig::dial_timeout_ms, 10 s) plus the handshake's (handshake_timeout_ms, 10 s), with
// a margin for the answer to travel back.
inline constexpr Millis dial_back_timeout_ms = 25'000;
// Once a verdict is in, the next check comes this much later: a home's public address changes
// rarely (a router's restart, a laptop moving), and each check costs the peer a dial.
inline constexpr Millis recheck_interval_ms = 10 * 60'000;
// After a check that gave no verdict (timed out, refused, link gone), the next comes this soon.
inline constexpr Millis retry_interval_ms = 30'000;
// As the dialler: one dial-back per peer this often, and this many in flight at once. A node
// asks at most once per retry_interval_ms; the dials are a few per hour from honest peers.
inline constexpr Millis dial_back_serve_interval_ms = 20'000;
inline constexpr std::size_t dial_backs_in_flight_max = 4;
static_assert(dial_back_serve_interval_ms <= retry_interval_ms,
              "an honest node's retry is never refused for coming too soon");
}  // namespace reach_limits

// "HOST:PORT" split into its parts (the brackets of an IPv6 host removed); nullopt unless HOST
// is an IPv4 or IPv6 literal and PORT a number from 1 to 65535.
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  bool v6 = false;
  std::string str() const;  // back to "HOST:PORT" ("[HOST]:PORT" for IPv6)
};
std::optional<HostPort> parse_host_port(std::string_view address);
// True for an address others on the internet could reach: not loopback, private (RFC 1918,
// IPv6 unique local), link-local, shared (carrier-grade NAT, 100.64/10) or unspecified.
bool is_public_host(const HostPort& address);

enum class Reachable { unknown, reachable, behind_nat };
const char* reachable_name(Reachable r);  // "unknown", "reachable", "behind NAT"

namespace reach_output {
struct Send {
  ConnId conn;
  WireMessage message;
};
struct Dial {  // open a probe connection to address, expecting identity `expected`
  std::uint64_t probe;
  std::string address;
  PublicKey expected;
};
}  // namespace reach_output
using ReachOutput = std::variant<reach_output::Send, reach_output::Dial>;

struct ReachStats {
  std::uint64_t dial_backs_asked = 0;     // requests this node sent
  std::uint64_t dial_backs_served = 0;    // probes this node dialled for others
  std::uint64_t dial_backs_refused = 0;   // requests it refused (bounds)
};

class Reachability {
 public:
  // listen_address: the address this node listens on and advertises when it is not known to be
  // reachable at a public one (it may be private, or empty when it does not listen).
  explicit Reachability(std::string listen_address);

  // A secure link came up. remote: the socket's peer address as the driver saw it ("" if
  // unknown); it goes to the peer as wire::Observed.
  void on_link_up(Millis now, ConnId conn, const PublicKey& peer, const std::string& remote);
  // A link (or probe) went away; established says whether it had come up.
  void on_closed(Millis now, ConnId conn);
  // The three reachability messages from an established link.
  void on_message(Millis now, ConnId conn, const PublicKey& peer, const WireMessage& message);
  void on_tick(Millis now);

  // A probe the Node dialled for Dial{probe} has connection id conn.
  void probe_dialed(std::uint64_t probe, ConnId conn);
  // A probe connection came up with `peer` (the Link checked it is the expected identity), or
  // failed (established = false: the dial or handshake failed, or it could not be started).
  // Returns true if conn was a probe (the Node then closes it and treats it as no link).
  bool probe_done(Millis now, ConnId conn, bool established);
  // The Node could not even start the probe for Dial{probe} (it is at its connection limit):
  // the requester is answered "refused", no verdict, rather than "unreachable", which would
  // have it believe it is behind NAT because this node was busy.
  void probe_not_started(std::uint64_t probe);
  // Whether the Node has room for one more connection. A dial-back to this node comes in as a
  // new connection, which a Node at its limit closes at once, and that would read as "behind
  // NAT": without room, no dial-back is asked (the last verdict stands) and none is due in
  // next_deadline(); the Node keeps ticking the engine (its maintenance) and sets room again.
  void set_room(bool room) { room_ = room; }
  // An inbound connection from `peer` came up: true if it is the dial-back this node asked
  // `peer` for (the Node then closes it, as no link).
  bool is_probe_from(const PublicKey& peer) const;

  [[nodiscard]] std::optional<ReachOutput> poll();
  [[nodiscard]] std::optional<Millis> next_deadline() const;

  Reachable status() const;
  // The address peers see this node from: the public one most peers report (ties: the most
  // recent), else the most recent of any kind; nullopt before any peer reported.
  std::optional<std::string> observed() const;
  // What this node tells others to dial: its public observed host on its listening port when a
  // dial-back proved it works, else the listen address.
  std::string advertised() const;
  const std::string& listen_address() const { return listen_; }
  const ReachStats& stats() const { return stats_; }
  std::size_t observers() const { return observations_.size(); }

 private:
  struct Observation {
    std::string address;
    bool is_public = false;
    Millis at = 0;
  };
  struct Asked {  // our dial-back request in flight
    std::uint64_t nonce = 0;
    ConnId conn = 0;
    PublicKey peer;
    Millis deadline = 0;
  };
  struct Probe {  // a dial-back we make for a peer
    ConnId request_conn = 0;  // where the answer goes
    std::uint64_t nonce = 0;
    std::optional<ConnId> conn;  // the probe connection, once dialled
  };

  void maybe_ask(Millis now);
  void no_verdict(Millis now);
  void on_dial_back(Millis now, ConnId conn, const PublicKey& peer, const wire::DialBack& m);

  std::string listen_;
  bool room_ = true;
  std::optional<HostPort> listen_hp_;
  std::map<ConnId, PublicKey> links_;
  std::map<ConnId, std::string> remotes_;  // the socket address of each link
  std::map<PublicKey, Observation> observations_;
  std::deque<std::pair<PublicKey, bool>> verdicts_;  // oldest first, one per peer
  std::optional<Asked> asked_;
  Millis next_check_ = 0;
  std::uint64_t next_nonce_ = 1;
  std::map<std::uint64_t, Probe> probes_;  // by probe id
  std::uint64_t next_probe_ = 1;
  std::map<PublicKey, Millis> served_;  // peer -> last dial-back made for it
  std::deque<ReachOutput> out_;
  ReachStats stats_;
};

}  // namespace qun
