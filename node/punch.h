// HolePunch: turns a relayed link into a direct one (issue 14), as a sans-IO engine the Node
// drives (docs/protocol.md, "Hole punching"). After libp2p's DCUtR, over qun's relayed links:
//
//  1. Once a relayed link is up, the end that accepted it (the reserved node, `starts`) sends
//     wire::Punch{connect, its addresses} and notes the time.
//  2. The other end answers Punch{reply, its addresses}.
//  3. The starter measures the round trip, sends Punch{sync}, and dials the other's address half
//     a round trip later; the other dials the starter's address as soon as the sync arrives. So
//     both dials leave at about the same moment, and each end's SYN finds the other's router
//     already expecting it: a simultaneous TCP open, from each node's listening port (the
//     address its peers see, when its router keeps ports).
//  4. A direct link that comes up replaces the relayed one (the Node's rule); a failed attempt
//     is retried by the starter after retry_ms, at most attempts_max times per relayed link.
//     A symmetric NAT (a new port per destination) defeats it: those two stay relayed.
//
// An end's address for punching is its observed public host (node/reachability.h) with its own
// listening port; an end without one answers with none, and nothing is dialled. An end that
// listens on a private (LAN) address names it second: two ends behind the same router (the same
// public host) dial each other there, on their LAN, rather than through their router's public
// address, which many routers do not loop back (no "hairpin" NAT).
//
// Calling contract (the engine shape of STYLE.md): the Node feeds the inputs below with its
// connection ids and drains poll() after each; a Send names the relayed connection to write on,
// a Dial asks for a direct dial to `peer` at `address` from the listening port. Time never goes
// backwards; on_tick early or twice does nothing. Peers may lie: a punch message out of turn is
// ignored; the addresses a peer names are only ever dialled expecting that peer's identity (the
// Link checks it), at most attempts_max times per relayed link by either end (the answering end
// counts the exchanges it dials for, so a peer cannot make it dial at the rate of its messages).
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/time.h"
#include "crypto/keys.h"
#include "node/timer.h"
#include "node/wire.h"

namespace qun {

using ConnId = std::uint64_t;

namespace punch_limits {
// Attempts per relayed link: libp2p's DCUtR makes 3 (a first SYN may be lost to a router that
// had not opened yet; more rarely help).
inline constexpr std::size_t attempts_max = 3;
// After a failed attempt, the starter tries again this much later.
inline constexpr Millis retry_ms = 5'000;
// An exchange that got no answer in this long is over (the answer crosses the relay twice: well
// under a second on any home link; the margin covers a loaded relay).
inline constexpr Millis exchange_timeout_ms = 10'000;
// A round trip past this is not used to time a dial (the sync would come too late anyway).
inline constexpr Millis rtt_max_ms = 5'000;
static_assert(rtt_max_ms <= exchange_timeout_ms);
// While an end has no address for punching yet (its dial-back verdict is still out: behind NAT
// is known only after a dial-back fails, up to ~25 s), the starter asks again every retry_ms, at
// most this many times: two minutes.
inline constexpr std::size_t address_waits_max = 24;
}  // namespace punch_limits

namespace punch_output {
struct Send {
  ConnId conn;
  wire::Punch message;
};
struct Dial {  // a direct dial from the listening port
  PublicKey peer;
  std::string address;
};
}  // namespace punch_output
using PunchOutput = std::variant<punch_output::Send, punch_output::Dial>;

struct PunchStats {
  std::uint64_t exchanges = 0;  // exchanges started or answered
  std::uint64_t dials = 0;      // punch dials asked for
  std::uint64_t succeeded = 0;  // ... that came up
  std::uint64_t failed = 0;     // ... that did not
};

// The LAN address to name in exchanges for a node listening at `listen`: `listen` itself when it
// is an address on a private network (RFC 1918, carrier-grade NAT, IPv6 unique local), else ""
// (public, loopback, unspecified, link-local, or not an IP literal).
std::string lan_address_of(const std::string& listen);

class HolePunch {
 public:
  // lan: this node's listening address when it is on a private network (sent second in each
  // exchange), else "".
  explicit HolePunch(std::string lan = {}) : lan_(std::move(lan)) {}

  // A relayed link to `peer` came up on conn. starts: this end accepted it (it opens the
  // exchange). own: this node's address for punching ("" when it has none).
  void on_relayed_up(Millis now, ConnId conn, const PublicKey& peer, bool starts,
                     const std::string& own);
  void on_relayed_closed(ConnId conn);
  void on_message(Millis now, ConnId conn, const PublicKey& peer, const wire::Punch& m,
                  const std::string& own);
  // The punch dial to peer ended: up (a direct link) or not.
  void on_dial_done(Millis now, const PublicKey& peer, bool up);
  void on_tick(Millis now, const std::string& own);

  [[nodiscard]] std::optional<PunchOutput> poll();
  [[nodiscard]] std::optional<Millis> next_deadline() const;
  const PunchStats& stats() const { return stats_; }

 private:
  enum class Phase { idle, wait_reply, wait_sync, dial_at, dialing, done };
  struct State {
    ConnId conn = 0;
    bool starts = false;
    Phase phase = Phase::idle;
    Millis sent_at = 0;
    Millis deadline = 0;     // of the current phase (reply, or the dial)
    std::string address;     // the peer's, to dial
    std::size_t attempts = 0;
    std::size_t waits = 0;  // exchanges that found no address on one side
    std::string own;
  };
  void start(Millis now, State& s);
  void wait_for_address(Millis now, State& s);
  void dial(State& s, const PublicKey& peer);
  // What this end names in an exchange: its public address, then its LAN address if any.
  std::vector<std::string> addresses(const State& s) const;
  // Which of the peer's addresses to dial: its LAN one when both ends share a public host.
  std::string pick(const State& s, const std::vector<std::string>& theirs) const;

  std::string lan_;
  std::map<PublicKey, State> peers_;
  std::deque<PunchOutput> out_;
  PunchStats stats_;
};

}  // namespace qun
