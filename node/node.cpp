#include "node/node.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

#include "node/addresses.h"
#include "node/broadcast.h"
#include "node/catch_up.h"
#include "node/direct.h"
#include "node/membership.h"
#include "node/limits.h"
#include "node/reachability.h"
#include "node/punch.h"
#include "node/relayed.h"
#include "node/timer.h"

namespace qun {
namespace {

// A connection not active in any group, with no catch-up left, is closed after this long.
constexpr Millis idle_close_ms = 30'000;
// An overflow connection (overflow_conns_max) is closed once its sample is written; one whose
// peer shows no group it may sync goes after this long: enough for the handshake, the hello and
// a joiner's invite proof (two round trips, and a third for the sample) on a slow path; checked
// at maintenance, so 2-3 s in all.
constexpr Millis overflow_linger_ms = 2'000;
// Connections kept free before this node asks a peer to dial it back: the probe comes in as a
// new connection, which at connections_max is closed at once and would read as "behind NAT".
// A few, because other peers' connections may take some between the request and the probe.
constexpr std::size_t dial_back_room = 4;
static_assert(broadcast_ids_max == wire_limits::ids_max, "a broadcast output fits one message");
static_assert(broadcast_no_hops == wire::no_hops, "one value for an unknown distance");
static_assert(OverlayConfig{}.relay_active_max <= broadcast_neighbors_max,
              "a relay's neighbours fit the broadcast's lazy masks");
// Banned peers remembered at most (oldest forgotten first).
constexpr std::size_t banned_max = 1024;
// request_serve calls in flight at once: a person asks a few relays, not hundreds.
constexpr std::size_t serve_requests_max = 64;
// Pending events loaded from the store at start-up came over links that are gone: they are kept
// this long, then dropped. Four sync intervals (OverlayConfig::sync_interval_ms, 15 s): by then
// catch-up with every peer that is up has brought their parents if anybody has them, and junk
// a flooder left behind does not outlive the restart by more.
constexpr Millis restored_pending_keep_ms = 60'000;
// Missing parents a group remembers as needed by some member's event (see Overlay::vouched):
// more than the pending events' parents can name (limits::pending_events_max of them, most with
// one or two missing parents); oldest forgotten first.
constexpr std::size_t vouched_max = 4 * limits::pending_events_max;
// Dropped events (former members' or over rate) are logged at most this often per group or
// author.
constexpr Millis drop_log_interval_ms = 60'000;

template <typename T>
const T& pick(const std::vector<T>& v, Rng& rng) {
  return v[rng.uniform(v.size())];
}

bool is_relayed_message(const WireMessage& m) {
  return std::holds_alternative<wire::RelayReserve>(m) ||
         std::holds_alternative<wire::RelayReserveReply>(m) ||
         std::holds_alternative<wire::RelayConnect>(m) ||
         std::holds_alternative<wire::RelayIncoming>(m) ||
         std::holds_alternative<wire::RelayAnswer>(m) || std::holds_alternative<wire::RelayData>(m) ||
         std::holds_alternative<wire::RelayAck>(m) || std::holds_alternative<wire::RelayClose>(m);
}

}  // namespace

struct Node::Impl {
  struct Conn {
    ConnId id = 0;
    bool outbound = false;
    // Where this node reaches the peer: the address it dialed (which worked from here), or for
    // an inbound link the one announced in the peer's hello (its socket port is ephemeral).
    std::string address;
    // What the peer announces in its hello: the address handed on to others (a node behind NAT
    // announces its relayed address; the LAN address a neighbour dialed is useless elsewhere).
    std::string advertised;
    std::string remote;   // the socket's peer address, from the driver ("" if not given)
    std::optional<PublicKey> expected;
    std::optional<Link> link;
    std::optional<PublicKey> peer;
    bool established = false;
    bool hello_received = false;
    HelloNonce my_nonce;
    std::set<Hash> shared;  // groups both sides hold
    // Taken past connections_max (overflow_conns_max): it shares no group; the peer gets a
    // sample of peers for each group it may sync (`handed`), and the link closes.
    bool overflow = false;
    std::set<Hash> handed;
    Bytes reassembly;
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    Millis opened_at = 0;
    Millis last_used = 0;
    std::size_t unflushed = 0;  // bytes handed to the driver and not yet reported written
    Millis duplicate_window_start = 0;
    std::size_t duplicates_in_window = 0;
    // The peer's last hello, kept so that a group added later is matched against its tags.
    std::optional<HelloNonce> peer_nonce;
    std::set<GroupTag> peer_tags;
    // Messages (chunks) queued by send() during the current input, written to the link when the
    // input settles; outbox_bytes counts them as they will take on the wire.
    std::deque<Bytes> outbox;
    std::size_t outbox_bytes = 0;
    // File messages, behind the outbox (node/file_lane.h).
    FileLane lane;
    // close() was decided during the current input: nothing more is sent or handled on it, and
    // it is closed (Close output, forget) when the input settles.
    bool closing = false;
    // Groups for which the peer proved it holds an invite (wire::Holder): the invite's key. It
    // counts while that invite is open in the group's state. At most one per group we hold.
    std::map<Hash, PublicKey> holds;
    // A relayed link (node/relayed.h): the relay it goes through. Its bytes travel in relay
    // messages on the link to that relay, never on a socket of the driver's.
    std::optional<PublicKey> via;
    // A hole punch's dial (node/punch.h): its Link's role goes by the ids, since both ends dial.
    bool punch = false;
    // Opened by dial() to reach a peer's address (not a dial-back probe or a punch).
    bool dialed = false;
    // The peer's other addresses, in dial order, tried one after the other if this dial fails
    // before its link comes up (node/addresses.h); at most addresses_max - 1.
    std::vector<std::string> fallbacks;
  };

  // What the node knows of a peer's addresses (node/addresses.h): its list as its own hello gave
  // it, or else as the last shuffle that named it did (the peer's word over its own link beats
  // a third party's). At most address_limits::book_peers_max entries, the oldest forgotten.
  struct BookEntry {
    std::vector<std::string> addresses;
    bool from_hello = false;
    Millis at = 0;
  };

  struct ServeRequest {  // a request_serve awaiting its answer
    Hash group;
    std::string address;
    ConnId conn = 0;    // the connection it goes (or went) over
    bool sent = false;  // Serve written on conn
    Millis deadline = 0;
  };

  struct Overlay {
    std::unique_ptr<Replica> replica;
    // Peer sampling: the active set, the passive list, the relays members keep linked, and its
    // own timers (node/membership.h).
    Membership membership;
    // Plumtree over the active set: which active peers are eager and which lazy, the announced
    // events missing here, and its own timers.
    Broadcast broadcast;
    // Catch-up over the active set and the other links sharing the group: heads offered and
    // requested, events sent in paced batches, and its own timers (node/catch_up.h).
    CatchUp catch_up;
    // The group's timers. Each fires when due (Node::next_deadline is the earliest of all) and
    // is dispatched by group_timers.
    enum class Timer {
      restored_pending,  // pending events loaded from the store are dropped
      count
    };
    TimerTable<Timer> timers;
    // Rebuilt by `qun group repair` (Node::add_repaired_group) while this node runs: what was
    // kept may have lost the events that made its peers members, so the peers it was linked to
    // for the group before (their ids, saved by the daemon) and any peer this node dials itself
    // (its saved addresses, --peer, the relays it names) may sync it.
    bool repairing = false;
    std::set<PublicKey> repair_peers;
    // On a relay: the group's byte bound (node/relay_bound.h).
    RelayBound bound;
    // Missing events that a kept event names as parents, with who needs them: the author of the
    // child, or nobody in particular (none) when the child was itself needed or two authors
    // need it. Such an event is stored whatever its author's standing or rate, unless its own
    // author is the only one needing it: that keeps honest histories from getting stuck on an
    // event we would otherwise drop, and keeps an author from vouching for its own flood.
    std::map<Hash, std::optional<PublicKey>> vouched;
    std::deque<Hash> vouched_order;
    // Per-author rate bounds (OverlayConfig::author_events_per_s): thousandths of an event.
    struct Rate {
      std::uint64_t push_milli = 0;   // pushed events, refilled by arrival time
      Millis push_at = 0;
      std::uint64_t catch_up_milli = 0;  // catch-up, refilled by the author's claimed time
      std::uint64_t claimed_at = 0;
      std::uint64_t vouched_milli = 0;  // vouched past the others, refilled by arrival time
      Millis vouched_at = 0;
      bool started = false;
      std::uint64_t dropped = 0;  // since the last log line
      std::optional<Millis> logged_at;
    };
    std::map<PublicKey, Rate> rates;  // members and former members only
    // Relays we asked to serve the group (they may sync it before it names them, also when the
    // relay's operator approves the request later).
    std::set<PublicKey> serve_asked;
    std::uint64_t former_dropped = 0;       // since the last log line
    std::optional<Millis> former_logged_at;
  };

  Impl(Node& node, const SigningKey& self, Rng rng, LogSink log)
      : node(node), self(self), rng(std::move(rng)), log(std::move(log)),
        relay(RelayServiceConfig{node.config_.relay, node.config_.relay_open,
                                 std::min(node.config_.relay_groups_max, wire_limits::groups_max),
                                 node.config_.relay_groups_per_requester_max,
                                 node.config_.relay_allow},
              this->log),
        reach(node.config_.listen_address),
        reach_other(other_family_engine(node.config_)),
        relayed(RelayedConfig{node.config_.relay, node.config_.relayed_links_max,
                              node.config_.relayed_link_bytes_max},
                this->log),
        punch(lan_address_of(node.config_.listen_address)) {
    timers.set(Timer::maintenance, 0);
    relay.set_direct_judge([this](const Hash& gid, const Replica& r,
                                  const std::set<PublicKey>& requesters) {
      return direct_refusal(gid, r.state(), requesters);
    });
  }

  // The engine for the family listen_address is not in: its first address in other_addresses.
  static std::optional<Reachability> other_family_engine(const NodeConfig& config) {
    auto primary = parse_host_port(config.listen_address);
    if (!primary) return std::nullopt;
    for (const auto& a : config.other_addresses)
      if (auto hp = parse_host_port(a); hp && hp->v6 != primary->v6) return Reachability(a);
    return std::nullopt;
  }

  // The engines, primary first (one or two).
  std::vector<Reachability*> reach_engines() {
    std::vector<Reachability*> all{&reach};
    if (reach_other) all.push_back(&*reach_other);
    return all;
  }

  // The engine a link belongs to: the other family's when its socket address is of that family,
  // else the primary (also for relayed links, which have no socket of their own).
  Reachability& reach_of(const Conn& c) {
    if (reach_other) {
      auto remote = parse_host_port(c.remote);
      auto other = parse_host_port(reach_other->listen_address());
      if (remote && other && remote->v6 == other->v6) return *reach_other;
    }
    return reach;
  }

  Node& node;
  const SigningKey& self;
  Rng rng;
  LogSink log;
  std::map<ConnId, Conn> conns;
  std::map<Hash, Overlay> groups;
  std::map<PublicKey, Millis> banned;
  // During maintenance only: in how many groups each peer is active (GroupLinks::carries_other).
  const std::map<PublicKey, std::size_t>* active_counts = nullptr;
  std::vector<ServeRequest> serve_requests;
  // Relay: serve requests, the operator's approval, probation (node/relay_service.h).
  RelayService relay;
  // Direct groups offered to this node: blocked keys, offers being checked, refusals.
  direct::Offers offers;
  // Relay: a group it serves changed since the direct groups' members were last checked (true at
  // start: memberships may have changed while it was down), and when the next check may run.
  bool direct_recheck_due = true;
  Millis direct_recheck_at = 0;
  // Observed addresses and dial-backs (node/reachability.h), per address family: `reach` for
  // the family of listen_address, `reach_other` for the other one when the node listens there
  // too (other_addresses): a home may be reachable on IPv6 and behind NAT on IPv4. Each link
  // goes to the engine of its family (reach_of), so each family's verdicts come from peers that
  // see the node over that family, and each dial-back tests that family's listener.
  Reachability reach;
  std::optional<Reachability> reach_other;
  std::map<PublicKey, BookEntry> book;  // peers' address lists (BookEntry)
  RelayedLinks relayed;  // reservations, relayed links and splices (node/relayed.h)
  HolePunch punch;       // direct links in place of relayed ones (node/punch.h)
  std::deque<NodeOutput> out;
  // Connections with link outputs or queued sends to handle before the current input ends.
  std::set<ConnId> dirty;
  // Connections to close when the current input settles, in the order the closes were decided.
  std::vector<ConnId> closing;
  // Overflow connections whose peers were handed on: closed once that is written (settle).
  std::set<ConnId> close_when_sent;
  bool settling = false;
  ConnId next_conn = 1ull << 62;  // outbound ids, far from the driver's inbound ones
  // The node's own timers (each group has its own: Overlay::Timer).
  enum class Timer {
    maintenance,   // every maintenance_interval_ms: fill active sets, expire dials and idle links
    serve_expiry,  // the earliest request_serve deadline
    count
  };
  TimerTable<Timer> timers;

  const NodeConfig& config() const { return node.config_; }
  const OverlayConfig& oc() const { return node.config_.overlay; }

  void note(LogLevel level, std::string message) {
    log(LogRecord{level, "node", std::move(message)});
  }

  // ---------------------------------------------------------------- connections

  Conn* conn_to(const PublicKey& peer) {
    for (auto& [id, c] : conns)
      if (c.established && !c.closing && c.peer && *c.peer == peer) return &c;
    return nullptr;
  }
  const Conn* conn_to(const PublicKey& peer) const {
    return const_cast<Impl*>(this)->conn_to(peer);
  }

  bool dialing(const std::string& address) const {
    for (const auto& [id, c] : conns)
      if (c.address == address) return true;
    return false;
  }

  // Dials a peer at `address`, or, when its identity is expected and the book knows its list,
  // at the best of its addresses (dial_order), the others kept to try if that dial fails. One
  // link per peer across its addresses: no dial to a peer already linked or being dialled
  // directly (a relayed link may still be replaced by a direct one).
  std::optional<ConnId> dial(Millis now, const std::string& address,
                             std::optional<PublicKey> expected) {
    std::vector<std::string> candidates{address};
    if (expected) {
      if (auto b = book.find(*expected); b != book.end()) {
        candidates.insert(candidates.end(), b->second.addresses.begin(), b->second.addresses.end());
        candidates = dial_order(candidates, dialer());
      }
      for (const auto& [id, c] : conns)
        if (!c.via && !c.closing && (c.dialed || c.established) &&
            (c.peer == expected || (!c.peer && c.expected == expected)))
          return {};
    }
    return dial_first(now, std::move(candidates), expected);
  }

  // Dials the first of `candidates` that can be dialled; the rest become its fallbacks.
  std::optional<ConnId> dial_first(Millis now, std::vector<std::string> candidates,
                                   std::optional<PublicKey> expected) {
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      auto id = dial_one(now, candidates[i], expected);
      if (!id) continue;
      Conn& c = conns.at(*id);
      if (!c.via && expected) c.fallbacks.assign(candidates.begin() + i + 1, candidates.end());
      return id;
    }
    return {};
  }

  // This node's own addresses: what it advertises and listens on. It never dials them.
  bool is_own(const std::string& address) const {
    if (address == config().listen_address) return true;
    const auto& more = config().other_addresses;
    return std::find(more.begin(), more.end(), address) != more.end();
  }

  Dialer dialer() const {
    std::vector<std::string> own{config().listen_address};
    own.insert(own.end(), config().other_addresses.begin(), config().other_addresses.end());
    return dialer_of(own);
  }

  std::optional<ConnId> dial_one(Millis now, const std::string& address,
                                 std::optional<PublicKey> expected) {
    if (auto r = parse_relayed_address(address)) return dial_relayed(now, address, *r, expected);
    if (address.empty() || is_own(address) || dialing(address)) return {};
    if (expected && (*expected == self.public_key() || banned.count(*expected))) return {};
    if (conns.size() >= oc().connections_max) return {};
    ConnId id = next_conn++;
    Conn& c = conns[id];
    c.id = id;
    c.outbound = true;
    c.address = address;
    c.expected = expected;
    c.dialed = true;
    c.opened_at = now;
    c.last_used = now;
    out.push_back(node_output::Dial{id, address});
    return id;
  }

  // Notes a peer's address list in the book (BookEntry says whose word wins).
  void note_addresses(Millis now, const PublicKey& peer, const std::vector<std::string>& addresses,
                      bool from_hello) {
    auto list = clean_addresses(addresses);
    if (list.empty() || peer == self.public_key()) return;
    auto it = book.find(peer);
    if (it != book.end()) {
      if (it->second.from_hello && !from_hello) return;
      it->second = BookEntry{std::move(list), from_hello, now};
      return;
    }
    if (book.size() >= address_limits::book_peers_max) {
      auto oldest = std::min_element(book.begin(), book.end(), [](const auto& a, const auto& b) {
        return a.second.at < b.second.at;
      });
      book.erase(oldest);
    }
    book.emplace(peer, BookEntry{std::move(list), from_hello, now});
  }

  // A peer's list as this node hands it on in shuffles: the book's, else the one address known.
  std::vector<std::string> addresses_of(const PublicKey& peer, const std::string& known) const {
    if (auto b = book.find(peer); b != book.end()) return b->second.addresses;
    if (known.empty()) return {};
    return {known};
  }

  // Decides to close a connection. Nothing more is sent or handled on it from now on; the Close
  // output and the cleanup (forget) happen when the current input settles, after every loop
  // that may be running over connections or a group's peers has finished.
  void close(Millis now, ConnId id, const std::string& why, bool misbehaved,
             LogLevel level = LogLevel::debug) {
    auto it = conns.find(id);
    if (it == conns.end() || it->second.closing) return;
    Conn& c = it->second;
    if (misbehaved) {
      ++node.stats_.links_closed_misbehaving;
      if (c.peer) ban(now, *c.peer);
    }
    note(misbehaved ? LogLevel::warn : level,
         "closing conn=" + std::to_string(id) +
             (c.peer ? " peer=" + short_hex(*c.peer) : std::string()) + " reason=" + why);
    c.closing = true;
    c.outbox.clear();
    c.outbox_bytes = 0;
    closing.push_back(id);
  }

  void ban(Millis now, const PublicKey& peer) {
    if (banned.size() >= banned_max) {
      auto oldest = std::min_element(banned.begin(), banned.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
      banned.erase(oldest);
    }
    banned[peer] = now + oc().ban_ms;
  }

  // Removes a connection and everything that referred to it.
  void forget(Millis now, ConnId id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn c = std::move(it->second);
    conns.erase(it);
    // A dial that failed before its link came up: the peer's next address.
    if (c.dialed && !c.established && c.expected && !c.fallbacks.empty())
      dial_first(now, std::move(c.fallbacks), c.expected);
    for (Reachability* r : reach_engines()) r->on_closed(now, id);
    relayed.on_closed(now, id);
    if (c.via) punch.on_relayed_closed(id);
    if (c.punch && !c.established && c.expected) punch.on_dial_done(now, *c.expected, false);
    bool resend_serves = false;
    for (auto r = serve_requests.begin(); r != serve_requests.end();) {
      if (r->conn != id) {
        ++r;
        continue;
      }
      // Another link to the same address takes over (a duplicate connection closed in favour
      // of the other one): send the request there, from the next fast timer.
      std::optional<ConnId> other;
      for (const auto& [oid, oc] : conns)
        if (oc.established && oc.address == r->address) other = oid;
      if (other) {
        r->conn = *other;
        r->sent = false;
        resend_serves = true;
        ++r;
        continue;
      }
      answer_serve(*r, c.peer, false, c.established ? "connection closed" : "could not connect");
      r = serve_requests.erase(r);
    }
    if (resend_serves) send_pending_serves(now);
    if (!c.peer) return;
    for (auto& [gid, g] : groups) remove_peer(now, g, gid, *c.peer, &c, PeerGone::link_closed);
    // What the peer alone sent and still waits for its parents goes with it (unless another
    // link to the same peer remains).
    if (!conn_to(*c.peer)) {
      for (auto& [gid, g] : groups) drop_pending(now, g, gid, c.peer, "link closed");
    }
  }

  // Why a peer leaves a group's overlay on this node (node/membership.h): it sent Disconnect (it
  // leaves the active set; the link and catch-up stay); we gave its place up (room for another,
  // a group we remove: told so); it may no longer sync the group with us (shunned: told so, and
  // forgotten in the group); its link is gone (forgotten in the group).
  using PeerGone = Membership::Gone;

  // The one way a peer leaves a group's overlay. Leaving the active set ends its part in the
  // tree (lazy) and puts its address back in the passive list, unless it was shunned or is
  // banned; a shunned peer or a closed link also takes with it what the group queued or awaited
  // for the peer (neighbor request, catch-up, announcements, deferred heads, solicited events).
  // `c` is the peer's link (the closed one for link_closed; null if unknown): a closed link
  // takes the peer out of the active set only if it is the link the set names (not a duplicate
  // connection closed in favour of the other).
  void remove_peer(Millis now, Overlay& g, const Hash& gid, const PublicKey& peer, Conn* c,
                   PeerGone why) {
    const bool forget_all = why == PeerGone::link_closed || why == PeerGone::shunned;
    // Leaving the active set tells broadcast and catch-up (Down), and the peer (Disconnect).
    g.membership.remove(now, peer, c ? std::optional<ConnId>(c->id) : std::nullopt,
                        c ? c->address : std::string(),
                        why, banned.count(peer) != 0 || is_former_member(g, peer), rng);
    drain_membership(now, g, gid);
    if (forget_all) {
      g.catch_up.peer_gone(peer);
      g.broadcast.drop_announcements(peer);
    }
    if (c && why == PeerGone::shunned) c->shared.erase(gid);
  }

  // Forgets the pending events of a group that one sender sent (none: loaded from the store),
  // and has the driver delete them from the store.
  void drop_pending(Millis, Overlay& g, const Hash& gid, const std::optional<PublicKey>& from,
                    const char* why) {
    IngestReport report = g.replica->drop_pending_from(from);
    if (report.evicted.empty()) return;
    node.stats_.events_pending_dropped += report.evicted.size();
    note(LogLevel::info, "dropped pending group=" + short_hex(gid) +
                             (from ? " peer=" + short_hex(*from) : std::string(" from=store")) +
                             " events=" + std::to_string(report.evicted.size()) + " reason=" + why);
    out.push_back(node_output::Persist{gid, std::move(report), {}});
  }

  void answer_serve(const ServeRequest& r, std::optional<PublicKey> relay, bool accepted,
                    std::string reason) {
    if (!accepted) {
      note(LogLevel::info, "serve refused group=" + short_hex(r.group) + " address=" + r.address +
                               " reason=" + reason);
    }
    out.push_back(node_output::ServeAnswer{r.group, r.address, relay, accepted, std::move(reason)});
  }

  // Writes Serve on every request whose link is up.
  void send_pending_serves(Millis now) {
    for (auto& r : serve_requests) {
      if (r.sent) continue;
      auto c = conns.find(r.conn);
      if (c == conns.end() || !c->second.established || c->second.closing) continue;
      r.sent = true;
      // We give this relay the group: it may sync it with us (may_sync), whenever it takes it
      // on (at once, or once its operator approves the request).
      if (auto g = groups.find(r.group); g != groups.end() && c->second.peer)
        g->second.serve_asked.insert(*c->second.peer);
      send(now, c->second, wire::Serve{r.group});
    }
  }

  static bool is_former_member(const Overlay& g, const PublicKey& peer) {
    return g.replica->state().former_members.count(peer) != 0;
  }

  // The peer proved (wire::Holder) that it holds an invite of the group that is open in our
  // state: not revoked, uses left. Expiry is not checked: the node has no wall clock, and the
  // join itself is judged by the fold.
  static bool holds_open_invite(const Overlay& g, const Conn& c, const Hash& gid) {
    auto h = c.holds.find(gid);
    if (h == c.holds.end()) return false;
    for (const auto& [iid, inv] : g.replica->state().invites)
      if (inv.invite_key == h->second && !inv.revoked && inv.uses < inv.uses_max) return true;
    return false;
  }

  // Who may sync a group with us (heads, catch-up, pushes, announcements, grafts, neighbours,
  // shuffles: docs/protocol.md, "Who may sync a group"): a member in our resolved state; a relay
  // the group names, or one we asked to serve it; on a relay, whoever asked it
  // to serve the group while that is on probation; a non-member that proved it holds an open
  // invite (joining, or a former member coming back). While we hold nothing of the group (no
  // create event: we are joining, or a relay taking it on) we sync with any peer that shows it:
  // we have nothing to give away, and need it from them. Anybody else, a stranger who only knows
  // the group id, gets nothing of the group from us, and we take nothing from it.
  bool may_sync(const Overlay& g, const Conn& c, const Hash& gid) const {
    if (!c.peer) return false;
    const PublicKey& peer = *c.peer;
    const GroupState& s = g.replica->state();
    if (!s.created) return true;
    // A repaired group trusts its former peers and those it dialed itself, never a stranger
    // who dials it: one who learned the group id gets none of its events (docs/threat-model.md).
    // What they send is checked against the create this node kept, like any event.
    if (g.repairing && (c.outbound || g.repair_peers.count(peer))) return true;
    if (s.is_member(peer) || g.membership.is_relay(peer) || g.serve_asked.count(peer)) return true;
    if (relay.is_requester(gid, peer)) return true;
    return holds_open_invite(g, c, gid);
  }

  // A peer that may no longer sync the group (a removed or departed member, a joiner whose invite
  // closed) gets none of its later events from us; a former member that shows an open invite is
  // coming back and may.
  // `admitted`: the batch that may have removed them, sent whole to an active peer it removed
  // (lazy in its authors' trees, that peer got only announcements, which shunning drops).
  void shun_former_members(Millis now, Overlay& g, const Hash& gid,
                           const std::vector<Hash>& admitted = {}) {
    const auto& former = g.replica->state().former_members;
    for (auto& [cid, c] : conns) {
      if (!c.peer || !c.shared.count(gid) || may_sync(g, c, gid)) continue;
      if (g.membership.is_active(*c.peer) && !admitted.empty()) {
        std::vector<Bytes> batch;
        for (const auto& id : admitted)
          batch.push_back(encode_for_group_message(g.replica->group().find(id)->event));
        send_events(now, c, gid, std::move(batch), wire::no_hops);
      }
      remove_peer(now, g, gid, *c.peer, &c, PeerGone::shunned);
    }
    g.membership.forget_identities(former);
  }

  // Links whose peer shows the group but could not sync it (not a member here yet, or an invite
  // we lacked): matched again, now that our state may let it.
  void welcome_holders(Millis now, const Hash& gid) {
    for (auto& [cid, c] : conns) {
      if (!c.established || c.closing || c.shared.count(gid) || !shows(c, gid)) continue;
      auto g = groups.find(gid);
      if (g != groups.end() && may_sync(g->second, c, gid)) match_groups(now, c, true);
    }
  }

  // Notes an address of the group in its passive list (node/membership.h), unless it is a former
  // member's.
  void remember(Overlay& g, const std::string& address, std::optional<PublicKey> id) {
    if (id && is_former_member(g, *id)) return;
    g.membership.remember(address, id, rng);
  }

  // Queues a message for a connection. It only queues: the bytes reach the link and the
  // driver when the current input settles (settle), so a send never handles other messages,
  // never closes a connection under the caller, and invalidates no iterator or reference.
  // A peer whose unsent and unflushed bytes pass conn_queue_bytes_max is not reading: its
  // connection is closed (when the input settles) and nothing more is queued for it.
  void send(Millis now, Conn& c, const WireMessage& m) {
    if (!c.link || !c.established || c.closing) return;
    if (const auto* events = std::get_if<wire::Events>(&m))
      node.stats_.events_sent += events->events.size();
    to_outbox(c, encode_wire(m));
    c.last_used = now;
    dirty.insert(c.id);
    if (queued(c) > oc().conn_queue_bytes_max) {
      close(now, c.id, "peer is not reading (" + std::to_string(queued(c)) + " bytes queued)",
            false, LogLevel::info);
    }
  }

  // Cuts an encoded message into link messages (docs/protocol.md, "Chunks") on the outbox.
  static void to_outbox(Conn& c, const Bytes& bytes) {
    const std::size_t chunk = message_bytes_max - 1;
    std::size_t at = 0;
    do {
      std::size_t n = std::min(chunk, bytes.size() - at);
      Bytes piece;
      piece.reserve(n + 1);
      piece.push_back(at + n < bytes.size() ? 1 : 0);
      piece.insert(piece.end(), bytes.begin() + static_cast<long>(at),
                   bytes.begin() + static_cast<long>(at + n));
      c.outbox_bytes += frame_header_bytes + piece.size() + link_tag_bytes;
      c.outbox.push_back(std::move(piece));
      at += n;
    } while (at < bytes.size());
  }

  // The next file message to the outbox, when the outbox is empty (so no other message's
  // pieces are cut in two) and the driver has flushed enough (node/file_lane.h).
  bool take_file_message(Conn& c) {
    if (c.lane.messages.empty() || c.unflushed >= file_lane::unflushed_bytes_max) return false;
    Bytes m = std::move(c.lane.messages.front());
    c.lane.messages.pop_front();
    c.lane.bytes -= std::min(c.lane.bytes, m.size());
    to_outbox(c, m);
    if (c.lane.wanted && c.peer) {
      c.lane.wanted = false;
      out.push_back(node_output::FileLaneReady{*c.peer});
    }
    return true;
  }

  // Bytes queued for a connection and not yet written by the driver.
  static std::size_t queued(const Conn& c) { return c.unflushed + c.outbox_bytes; }

  void send_to(Millis now, const PublicKey& peer, const WireMessage& m) {
    if (Conn* c = conn_to(peer)) send(now, *c, m);
  }

  // Ends an input: handles every link's outputs (handshake bytes, establishment, received
  // messages, closure) and writes what the input queued on each connection, until no link has
  // anything left; then applies the closes decided during the input. Handlers run here one
  // message after another, each free to send (queue) and close (decide) without re-entering
  // the engine. Every public input calls this last, once.
  void settle(Millis now) {
    assert(!settling && "an input re-entered the engine");
    settling = true;
    while (true) {
      if (drain_reach(now) || drain_relayed(now) || drain_punch(now)) continue;
      if (!dirty.empty()) {
        const ConnId id = *dirty.begin();
        dirty.erase(dirty.begin());
        settle_conn(now, id);
        continue;
      }
      for (ConnId id : close_when_sent)
        if (auto c = conns.find(id); c != conns.end() && c->second.outbox.empty())
          close(now, id, "connections full; peers handed on", false);
      close_when_sent.clear();
      if (closing.empty()) break;
      std::vector<ConnId> ids = std::move(closing);
      closing.clear();
      for (ConnId id : ids) {
        auto c = conns.find(id);
        if (c == conns.end()) continue;
        if (!c->second.via) out.push_back(node_output::Close{id});  // a relayed one has no socket
        forget(now, id);
      }
    }
    settling = false;
    if (config().check_invariants) {
      // A broken invariant is a bug in this engine: stop at once, saying which (like assert).
      if (auto broken = invariant_violation()) {
        std::fprintf(stderr, "qun: node invariant broken at %llu ms: %s\n",
                     static_cast<unsigned long long>(now), broken->c_str());
        std::abort();
      }
    }
  }

  // Carries out the reachability engine's outputs: messages on links, and probe connections
  // (dial-backs for peers), which skip dial()'s checks: a probe may go to an address a link
  // already uses. Returns whether there was any.
  bool drain_reach(Millis now) {
    bool any = false;
    for (Reachability* r : reach_engines()) any = drain_reach(now, *r) || any;
    return any;
  }

  bool drain_reach(Millis now, Reachability& reach) {
    bool any = false;
    while (auto o = reach.poll()) {
      any = true;
      if (auto* s = std::get_if<reach_output::Send>(&*o)) {
        if (auto it = conns.find(s->conn); it != conns.end()) send(now, it->second, s->message);
        continue;
      }
      auto& d = std::get<reach_output::Dial>(*o);
      if (conns.size() >= oc().connections_max) {
        reach.probe_not_started(d.probe);
        continue;
      }
      const ConnId id = next_conn++;
      reach.probe_dialed(d.probe, id);
      Conn& c = conns[id];
      c.id = id;
      c.outbound = true;
      c.address = d.address;
      c.expected = d.expected;
      c.opened_at = c.last_used = now;
      out.push_back(node_output::Dial{id, d.address});
    }
    return any;
  }

  // ---------------------------------------------------------------- relayed links (node/relayed.h)

  // What this node tells others to dial: its relayed address while it holds a reservation and is
  // not known to be reachable, else what reachability says.
  std::string advertised() const {
    std::string r = relayed.relayed_address();
    return !r.empty() && reach.status() != Reachable::reachable ? r : reach.advertised();
  }

  // Every address this node tells others to dial (node/addresses.h): the one above (public,
  // relayed or its own listen address), then the others it listens on (IPv6 beside IPv4).
  // Of the other family: its public address in place of its listen address once a dial-back
  // proved it, and no global address of a family known to be behind NAT (a firewall, for IPv6):
  // a dialler would try it before the ones that work and wait for its dial to time out.
  std::vector<std::string> advertised_addresses() const {
    std::vector<std::string> all{advertised()};
    std::optional<HostPort> other;
    if (reach_other) other = parse_host_port(reach_other->listen_address());
    for (const auto& a : config().other_addresses) {
      auto hp = parse_host_port(a);
      if (other && hp && hp->v6 == other->v6) {
        const Reachable status = reach_other->status();
        if (status == Reachable::reachable && a == reach_other->listen_address())
          all.push_back(reach_other->advertised());
        if (status == Reachable::behind_nat && is_public_host(*hp)) continue;
      }
      all.push_back(a);
    }
    return clean_addresses(all);
  }

  bool wants_reservation() const {
    return !config().relay &&
           (reach.status() == Reachable::behind_nat || config().listen_address.empty());
  }

  // Linked relays named by a group both hold, by id (the same choice on every run).
  std::vector<RelayCandidate> relay_candidates() const {
    std::map<PublicKey, RelayCandidate> found;
    for (const auto& [id, c] : conns) {
      if (!c.established || c.closing || !c.peer || c.via || c.address.empty()) continue;
      for (const Hash& gid : c.shared) {
        auto g = groups.find(gid);
        if (g != groups.end() && g->second.membership.is_relay(*c.peer)) found.emplace(*c.peer, RelayCandidate{id, *c.peer, c.address});
      }
    }
    std::vector<RelayCandidate> out;
    for (auto& [id, r] : found) out.push_back(std::move(r));
    return out;
  }

  // A dial to a relayed address: a virtual connection whose Link runs through the relay. It
  // needs the target's identity (the relay routes by it), and dials the relay if not linked.
  std::optional<ConnId> dial_relayed(Millis now, const std::string& address,
                                     const RelayedAddress& r, std::optional<PublicKey> target) {
    if (!target || *target == self.public_key() || r.relay == self.public_key() ||
        *target == r.relay || conns.size() >= oc().connections_max)
      return {};
    if (banned.count(*target) || conn_to(*target)) return {};
    for (const auto& [id, c] : conns)
      if (c.via && c.expected == target) return {};  // already on the way
    const ConnId id = next_conn++;
    Conn& c = conns[id];
    c.id = id;
    c.outbound = true;
    c.address = address;
    c.expected = target;
    c.via = r.relay;
    c.opened_at = c.last_used = now;
    std::optional<ConnId> carrier;
    if (Conn* link = conn_to(r.relay)) carrier = link->id;
    relayed.connect(now, id, r.relay, *target, carrier);
    if (!carrier && !relayed_waiting_dial(r.relay)) dial(now, r.relay_address, r.relay);
    return id;
  }

  bool relayed_waiting_dial(const PublicKey& relay) const {
    for (const auto& [id, c] : conns)
      if (!c.via && !c.established && c.expected == relay) return true;
    return false;
  }

  // Where a peer may dial this node for a hole punch: behind NAT, its observed public host with
  // its own listening port (a router that keeps ports maps it there); else none.
  std::string punch_address() const {
    if (reach.status() != Reachable::behind_nat) return {};
    auto observed = reach.observed();
    auto listen = parse_host_port(config().listen_address);
    if (!observed || !listen) return {};
    auto hp = parse_host_port(*observed);
    if (!hp || !is_public_host(*hp) || hp->v6 != listen->v6) return {};
    hp->port = listen->port;
    return hp->str();
  }

  // Carries out the hole-punch engine's outputs: messages on relayed links, and punch dials.
  bool drain_punch(Millis now) {
    bool any = false;
    while (auto o = punch.poll()) {
      any = true;
      if (auto* s = std::get_if<punch_output::Send>(&*o)) {
        if (auto it = conns.find(s->conn); it != conns.end()) send(now, it->second, s->message);
        continue;
      }
      auto& d = std::get<punch_output::Dial>(*o);
      Conn* linked = conn_to(d.peer);
      if ((linked && !linked->via) || conns.size() >= oc().connections_max) {
        punch.on_dial_done(now, d.peer, linked && !linked->via);
        continue;
      }
      const ConnId id = next_conn++;
      Conn& c = conns[id];
      c.id = id;
      c.outbound = true;
      c.punch = true;
      c.address = d.address;
      c.expected = d.peer;
      c.opened_at = c.last_used = now;
      out.push_back(node_output::Dial{id, d.address, true});
    }
    return any;
  }

  // Carries out the relayed-links engine's outputs. Returns whether there was any.
  bool drain_relayed(Millis now) {
    bool any = false;
    LinkConfig lc{config().network_id, log};
    while (auto o = relayed.poll()) {
      any = true;
      if (auto* s = std::get_if<relayed_output::Send>(&*o)) {
        if (auto it = conns.find(s->conn); it != conns.end()) send(now, it->second, s->message);
      } else if (auto* in = std::get_if<relayed_output::Incoming>(&*o)) {
        auto b = banned.find(in->caller);
        if (conns.size() >= oc().connections_max || (b != banned.end() && b->second > now)) {
          relayed.refuse(now, in->carrier, in->stream, "busy");
          continue;
        }
        const ConnId id = next_conn++;
        Conn& c = conns[id];
        c.id = id;
        c.via = in->relay;
        c.opened_at = c.last_used = now;
        c.link.emplace(Link::responder(now, self, rng, lc));
        relayed.accept(now, in->carrier, in->stream, id);
        dirty.insert(id);
      } else if (auto* up = std::get_if<relayed_output::Connected>(&*o)) {
        auto it = conns.find(up->conn);
        if (it == conns.end() || it->second.link) continue;
        it->second.link.emplace(Link::initiator(now, self, it->second.expected, rng, lc));
        dirty.insert(up->conn);
      } else if (auto* d = std::get_if<relayed_output::Deliver>(&*o)) {
        auto it = conns.find(d->conn);
        if (it == conns.end() || !it->second.link || it->second.closing) continue;
        node.stats_.bytes_received += d->bytes.size();
        it->second.link->on_bytes(now, d->bytes);
        dirty.insert(d->conn);
      } else if (auto* a = std::get_if<relayed_output::Acked>(&*o)) {
        if (auto it = conns.find(a->conn); it != conns.end())
          it->second.unflushed -= std::min(it->second.unflushed, a->bytes);
      } else if (auto* e = std::get_if<relayed_output::Ended>(&*o)) {
        close(now, e->conn, "relayed link ended: " + e->reason, false, LogLevel::info);
      } else if (std::holds_alternative<relayed_output::AddressChanged>(*o)) {
        for (auto& [id, c] : conns)
          if (c.established && !c.closing) send_hello(now, c);
      }
    }
    return any;
  }

  void settle_conn(Millis now, ConnId id) {
    while (true) {
      auto it = conns.find(id);
      if (it == conns.end() || !it->second.link) return;
      Conn& c = it->second;
      if (c.closing) return;
      if (auto o = c.link->poll()) {
        on_link_output(now, c, *o);
        continue;
      }
      if (c.outbox.empty() && !take_file_message(c)) return;
      // The link's queue is empty here, so one message always fits (queued_bytes_max).
      Bytes piece = std::move(c.outbox.front());
      c.outbox.pop_front();
      c.outbox_bytes -= std::min(c.outbox_bytes, frame_header_bytes + piece.size() + link_tag_bytes);
      if (auto r = c.link->send(now, piece); !r.ok()) {
        note(LogLevel::warn, "send failed conn=" + std::to_string(id) + " " + r.error().message());
        c.outbox.clear();
        c.outbox_bytes = 0;
      }
    }
  }

  void on_link_output(Millis now, Conn& c, LinkOutput& o) {
    if (auto* s = std::get_if<link_output::SendBytes>(&o)) {
      c.bytes_sent += s->bytes.size();
      c.unflushed += s->bytes.size();
      node.stats_.bytes_sent += s->bytes.size();
      if (c.via) return relayed.write(c.id, s->bytes);
      out.push_back(node_output::Send{c.id, std::move(s->bytes)});
    } else if (auto* e = std::get_if<link_output::Established>(&o)) {
      on_established(now, c, e->peer);
    } else if (auto* r = std::get_if<link_output::Received>(&o)) {
      on_message_chunk(now, c, r->message);
    } else if (auto* cl = std::get_if<link_output::Closed>(&o)) {
      close(now, c.id, close_reason_name(cl->reason),
            cl->reason != CloseReason::handshake_timeout);
    }
  }

  // Tells reachability whether a dial-back probe would find a free connection here.
  void update_reach_room() {
    for (Reachability* r : reach_engines()) r->set_room(conns.size() + dial_back_room <= oc().connections_max);
  }

  // Whether an established connection is a dial-back probe, ours for a peer or a peer's for us.
  bool is_probe(Millis now, const Conn& c, const PublicKey& peer) {
    for (Reachability* r : reach_engines())
      if (r->probe_done(now, c.id, true) || (!c.outbound && r->is_probe_from(peer))) return true;
    return false;
  }

  void on_established(Millis now, Conn& c, const PublicKey& peer) {
    const ConnId id = c.id;
    if (peer == self.public_key()) return close(now, id, "connected to self", false);
    // A punch's Link may be the responder, which checks no expected identity: check it here.
    if (c.punch && c.expected && peer != *c.expected) {
      punch.on_dial_done(now, *c.expected, false);
      return close(now, id, "punch reached another node", false);
    }
    // A dial-back probe, ours for a peer or a peer's for us, proves a path and is no link.
    if (is_probe(now, c, peer)) return close(now, id, "dial-back probe done", false);
    auto b = banned.find(peer);
    if (b != banned.end() && b->second > now) return close(now, id, "banned peer", false);
    // One connection per peer: the one dialed by the smaller id wins, on both sides.
    for (auto& [oid, other] : conns) {
      if (oid == id || !other.established || other.closing || !other.peer || *other.peer != peer)
        continue;
      // A direct link beats a relayed one (the relayed stays the fallback: it is redialled
      // when the direct one goes); between two of a kind, the one dialed by the smaller id.
      if (c.via.has_value() != other.via.has_value()) {
        if (c.via) return close(now, id, "duplicate connection (direct link up)", false);
        close(now, oid, "replaced by a direct link", false, LogLevel::info);
        break;
      }
      const bool i_am_smaller = self.public_key() < peer;
      const bool keep_new = c.outbound == i_am_smaller;
      if (keep_new && other.outbound != c.outbound) {
        close(now, oid, "duplicate connection", false);
        break;
      }
      return close(now, id, "duplicate connection", false);
    }
    c.peer = peer;
    c.established = true;
    rng.fill(c.my_nonce.bytes);
    note(LogLevel::info, "link up conn=" + std::to_string(id) + " peer=" + short_hex(peer));
    send_hello(now, c);
    update_reach_room();
    reach_of(c).on_link_up(now, id, peer, c.remote);
    relayed.on_link_up(now, id, peer);
    if (c.via) punch.on_relayed_up(now, id, peer, !c.outbound, punch_address());
    if (c.punch) punch.on_dial_done(now, peer, true);
    send_pending_serves(now);
  }

  void send_hello(Millis now, Conn& c) {
    wire::Hello h;
    h.nonce = c.my_nonce;
    h.addresses = advertised_addresses();
    for (const auto& [gid, g] : groups) h.groups.push_back(group_tag(gid, c.my_nonce));
    send(now, c, h);
  }

  void on_message_chunk(Millis now, Conn& c, const Bytes& chunk) {
    const ConnId id = c.id;
    if (chunk.empty() || chunk[0] > 1) return misbehave(now, id, "bad chunk");
    c.reassembly.insert(c.reassembly.end(), chunk.begin() + 1, chunk.end());
    if (c.reassembly.size() > wire_limits::message_bytes_max)
      return misbehave(now, id, "message too large");
    if (chunk[0] == 1) return;
    Bytes whole = std::move(c.reassembly);
    c.reassembly.clear();
    c.bytes_received += whole.size();
    c.last_used = now;
    auto m = decode_wire(whole);
    if (!m.ok()) return misbehave(now, id, "malformed message: " + m.error().context());
    on_message(now, id, *m);
  }

  void misbehave(Millis now, ConnId id, const std::string& why) {
    ++node.stats_.messages_malformed;
    close(now, id, why, true);
  }

  // ---------------------------------------------------------------- messages

  void on_message(Millis now, ConnId id, const WireMessage& m) {
    Conn& c = conns.at(id);
    if (auto* h = std::get_if<wire::Hello>(&m)) return on_hello(now, c, *h);
    if (!c.hello_received) return misbehave(now, id, "message before hello");
    if (std::holds_alternative<wire::Observed>(m) || std::holds_alternative<wire::DialBack>(m) ||
        std::holds_alternative<wire::DialBackResult>(m)) {
      update_reach_room();
      return reach_of(c).on_message(now, id, *c.peer, m);
    }
    if (is_relayed_message(m)) return relayed.on_message(now, id, *c.peer, !c.shared.empty(), m);
    if (auto* p = std::get_if<wire::Punch>(&m)) {
      if (c.via) punch.on_message(now, id, *c.peer, *p, punch_address());
      return;
    }
    // Holder shows an invite for a group the receiver may not share with the sender yet.
    if (auto* h = std::get_if<wire::Holder>(&m)) return on_holder(now, c, *h);
    // Serve names a group the receiver may not hold yet, so it bypasses the shared-group check.
    if (auto* s = std::get_if<wire::Serve>(&m)) return on_serve(now, c, *s);
    if (auto* r = std::get_if<wire::ServeReply>(&m)) return on_serve_reply(now, c, *r);
    // Like Serve, a direct offer names a group the receiver does not hold yet.
    if (auto* o = std::get_if<wire::DirectOffer>(&m)) return on_direct_offer(now, c, *o);
    const PublicKey peer = *c.peer;
    auto group_of = [&](const Hash& gid) -> Overlay* {
      if (!c.shared.count(gid)) return nullptr;
      auto it = groups.find(gid);
      return it == groups.end() ? nullptr : &it->second;
    };
    std::visit(
        [&](const auto& msg) {
          using T = std::decay_t<decltype(msg)>;
          if constexpr (std::is_same_v<T, wire::Hello> || std::is_same_v<T, wire::Serve> ||
                        std::is_same_v<T, wire::ServeReply> || std::is_same_v<T, wire::Holder> ||
                        std::is_same_v<T, wire::Observed> || std::is_same_v<T, wire::DialBack> ||
                        std::is_same_v<T, wire::DialBackResult> ||
                        std::is_same_v<T, wire::DirectOffer> || !requires { msg.group; }) {
          } else {
            Overlay* g = group_of(msg.group);
            // A group the peer did not show us a tag for, or one we dropped: ignore quietly.
            if (!g) return;
            if constexpr (std::is_same_v<T, wire::BlobOffer> || std::is_same_v<T, wire::BlobGet> ||
                          std::is_same_v<T, wire::Blob> || std::is_same_v<T, wire::BlobNone>) {
              out.push_back(node_output::FileMessage{peer, msg});  // node/transfer.h decides
              return;
            } else {
              handle(now, c, peer, *g, msg);
            }
            // Outside the handler, which holds a reference to the group: a relay may drop it.
            if (auto it = groups.find(msg.group); it != groups.end()) {
              relay.review(now, msg.group, *it->second.replica);
              drain_relay(now);
            }
            review_offer(now, msg.group);
          }
        },
        m);
  }

  void on_hello(Millis now, Conn& c, const wire::Hello& h) {
    if (!h.addresses.empty()) {
      note_addresses(now, *c.peer, h.addresses, true);
      c.advertised = h.addresses.front();
      // An inbound link's socket port is ephemeral: where this node would dial the peer. An
      // inbound relayed link keeps the address the peer names first (its relayed one): a direct
      // address here would read as a dial under way (dialing) and stop the dial below.
      auto ordered = dial_order(h.addresses, dialer());
      if (!c.outbound && !ordered.empty()) c.address = c.via ? h.addresses.front() : ordered.front();
      // A relayed link to a peer that names a public address (a global IPv6 one, most often,
      // beside its relayed IPv4 address): dial it, and the direct link replaces the relayed one
      // ("Direct beats relayed"); if it fails, the relayed link stays.
      if (c.via && !c.closing) {
        auto direct = std::find_if(ordered.begin(), ordered.end(), [](const std::string& a) {
          auto hp = parse_host_port(a);
          return hp && is_public_host(*hp);
        });
        if (direct != ordered.end()) dial(now, *direct, *c.peer);
      }
    }
    c.hello_received = true;
    c.peer_nonce = h.nonce;
    c.peer_tags = std::set<GroupTag>(h.groups.begin(), h.groups.end());
    match_groups(now, c);
    offer_direct(now, c, std::nullopt);
  }

  // The peer's last hello named the group.
  static bool shows(const Conn& c, const Hash& gid) {
    return c.peer_nonce && c.peer_tags.count(group_tag(gid, *c.peer_nonce));
  }

  // A peer shows an invite of one of our groups. A bad proof is misbehaviour (an honest node
  // signs only with an invite it holds); an invite not in our state, or closed, is simply not
  // honoured (we may not have it yet; holds_open_invite checks again at every use).
  void on_holder(Millis now, Conn& c, const wire::Holder& m) {
    auto g = groups.find(m.group);
    if (g == groups.end() || !shows(c, m.group)) return;
    if (!verify(m.invite_key, join_proof_message(m.group, *c.peer), m.proof))
      return misbehave(now, c.id, "bad invite proof");
    c.holds[m.group] = m.invite_key;
    match_groups(now, c, true);
  }

  // Shows the peer the invite this node holds for a group it is joining (none if a member).
  void send_holder(Millis now, Conn& c, const Overlay& g, const Hash& gid) {
    if (auto proof = g.replica->holder_proof())
      send(now, c, wire::Holder{gid, proof->first, proof->second});
  }

  // Matches our groups against the peer's last hello; starts the overlay on newly shared ones.
  // `late`: the peer showed the group earlier but could not sync it then, so what it sent for
  // the group (its neighbor request, its heads) was ignored: ask it for what we lack, too.
  void match_groups(Millis now, Conn& c, bool late = false) {
    if (!c.peer_nonce || !c.peer) return;
    std::set<Hash> shared;
    for (auto& [gid, g] : groups) {
      if (!shows(c, gid)) continue;
      g.membership.note_serving(*c.peer, true);
      if (may_sync(g, c, gid)) shared.insert(gid);
    }
    for (auto& [gid, g] : groups)
      if (!shows(c, gid)) g.membership.note_serving(*c.peer, false);
    if (c.overflow) return hand_peers(now, c, shared);
    std::set<Hash> added, gone;
    std::set_difference(shared.begin(), shared.end(), c.shared.begin(), c.shared.end(),
                        std::inserter(added, added.end()));
    std::set_difference(c.shared.begin(), c.shared.end(), shared.begin(), shared.end(),
                        std::inserter(gone, gone.end()));
    const PublicKey peer = *c.peer;
    // A group the peer no longer shows, or may no longer sync: as a shunned peer, it leaves.
    for (const auto& gid : gone) remove_peer(now, groups.at(gid), gid, peer, &c, PeerGone::shunned);
    c.shared = shared;
    for (const auto& gid : added) {
      Overlay& g = groups.at(gid);
      remember(g, c.address, peer);
      // Joining: show our invite first, so a peer that would shun us (we were a member once)
      // takes the neighbor request and the heads that follow.
      send_holder(now, c, g, gid);
      g.membership.on_shared(peer);
      drain_membership(now, g, gid);
      // Catch-up: each side offers its heads; whoever lacks something asks.
      g.catch_up.offer(now, peer);
      if (late) g.catch_up.request(now, peer);
      drain_catch_up(now, g, gid);
    }
  }

  // A connection taken past connections_max: for each group the peer may sync, a shuffle answer
  // with peers it can link to instead (once a group); nothing else of the group moves on it.
  void hand_peers(Millis now, Conn& c, const std::set<Hash>& may) {
    for (const Hash& gid : may) {
      if (!c.handed.insert(gid).second) continue;
      Overlay& g = groups.at(gid);
      send(now, c, shuffle_message(gid, true, g.membership.hand_out(rng, GroupLinks(*this, g, gid)),
                                   /*with_self=*/false));
      ++node.stats_.peers_handed_on;
      // Closed once the sample is written (settle), not at the linger bound: a full node hands
      // on as many newcomers as come, eight at a time, each in a few round trips.
      close_when_sent.insert(c.id);
    }
  }

  // ---------------------------------------------------------------- relays

  // A peer asks this node to store and forward a group.
  void on_serve(Millis now, Conn& c, const wire::Serve& m) {
    relay.on_serve(now, *c.peer, m.group, c.address, groups.count(m.group) != 0, groups.size());
    drain_relay(now);
  }

  RelayService::Held holds_group() const {
    return [this](const Hash& gid) { return groups.count(gid) != 0; };
  }

  // Carries out the relay service's outputs: replies, groups taken on, groups dropped.
  void drain_relay(Millis now) {
    while (auto o = relay.poll()) {
      if (auto* r = std::get_if<relay_output::Reply>(&*o)) {
        ++(r->accepted ? node.stats_.serves_accepted : node.stats_.serves_refused);
        if (r->waiting) ++node.stats_.serves_waiting;
        send_to(now, r->to, wire::ServeReply{r->group, r->accepted, std::move(r->reason)});
      } else if (auto* t = std::get_if<relay_output::TakeOn>(&*o)) {
        out.push_back(node_output::GroupAdded{t->group});
        // add_group sends every link a new hello and matches the group against the tags each
        // peer sent (the requester's included); a requester not linked is dialed from the hints
        // by maintenance.
        add_group(now, std::make_unique<Replica>(t->group, nullptr), t->hints);
      } else if (auto* d = std::get_if<relay_output::Drop>(&*o)) {
        drop_group(now, d->group, std::move(d->reason));
      } else if (auto* k = std::get_if<relay_output::Kept>(&*o)) {
        // A direct group kept: offered to whichever of its two members is linked.
        for (auto& [cid, c] : conns) offer_direct(now, c, k->group);
      }
    }
  }

  // Drops a group by itself (a relay's probation failed), and has the driver delete its data.
  void drop_group(Millis now, const Hash& gid, std::string why) {
    ++node.stats_.groups_dropped;
    remove_group(now, gid);
    // Outputs not yet drained that would have the driver store (or show) part of the group: the
    // replica they refer to is gone, and GroupDropped deletes what was stored before.
    std::erase_if(out, [&](const NodeOutput& o) {
      if (auto* p = std::get_if<node_output::Persist>(&o)) return p->group == gid;
      if (auto* d = std::get_if<node_output::Delivered>(&o)) return d->group == gid;
      return false;
    });
    out.push_back(node_output::GroupDropped{gid, std::move(why)});
  }

  void on_serve_reply(Millis now, Conn& c, const wire::ServeReply& m) {
    auto r = std::find_if(serve_requests.begin(), serve_requests.end(), [&](const ServeRequest& q) {
      return q.sent && q.conn == c.id && q.group == m.group;
    });
    if (r == serve_requests.end()) return;  // not asked, or answered already: ignore
    const ServeRequest request = *r;
    serve_requests.erase(r);
    const PublicKey peer = *c.peer;
    answer_serve(request, peer, m.accepted, m.reason);
    if (!m.accepted) return;
    auto g = groups.find(m.group);
    if (g == groups.end()) return;
    remember(g->second, request.address, peer);
    // The relay now holds the group id and may sync it with us (may_sync): start the group on
    // the link if its hello showed it, and offer it our heads, so it asks for what it lacks.
    g->second.serve_asked.insert(peer);
    const bool was_shared = c.shared.count(m.group) != 0;
    match_groups(now, c, true);
    if (was_shared) {
      g->second.catch_up.offer(now, peer);
      drain_catch_up(now, g->second, m.group);
    }
  }

  // The link an active peer's entry names (the invariants hold that it exists).
  Conn* active_conn(const Overlay& g, const PublicKey& peer) {
    auto link = g.membership.link_of(peer);
    if (!link) return nullptr;
    auto c = conns.find(*link);
    return c == conns.end() ? nullptr : &c->second;
  }

  // Takes note of the relays the group's state names (node/membership.h, set_relays).
  void sync_relays(Overlay& g) { g.membership.set_relays(g.replica->state().relays, rng); }

  // What the group's membership engine sees of the node's links.
  struct GroupLinks final : MembershipLinks {
    GroupLinks(const Impl& impl, const Overlay& g, const Hash& gid) : impl(impl), g(g), gid(gid) {}
    bool linked(const PublicKey& peer) const override { return impl.conn_to(peer) != nullptr; }
    bool shares(const PublicKey& peer) const override {
      const Conn* c = impl.conn_to(peer);
      return c && c->shared.count(gid);
    }
    std::vector<PublicKey> sharing() const override {
      std::vector<PublicKey> peers;
      for (const auto& [cid, c] : impl.conns)
        if (c.established && c.peer && c.shared.count(gid)) peers.push_back(*c.peer);
      return peers;
    }
    bool dialing(const std::string& address) const override { return impl.dialing(address); }
    bool banned(const PublicKey& peer, Millis now) const override {
      auto b = impl.banned.find(peer);
      return b != impl.banned.end() && b->second > now;
    }
    std::string address(std::uint64_t link) const override {
      auto c = impl.conns.find(link);
      return c == impl.conns.end() ? std::string() : c->second.address;
    }
    std::string advertised(std::uint64_t link) const override {
      auto c = impl.conns.find(link);
      if (c == impl.conns.end()) return {};
      return c->second.advertised.empty() ? c->second.address : c->second.advertised;
    }
    bool former(const PublicKey& peer) const override { return is_former_member(g, peer); }
    std::size_t carries_other(const PublicKey& peer) const override {
      const std::size_t here = g.membership.is_active(peer) ? 1 : 0;
      if (impl.active_counts) {
        auto n = impl.active_counts->find(peer);
        return n == impl.active_counts->end() || n->second <= here ? 0 : n->second - here;
      }
      std::size_t n = 0;
      for (const auto& [other, o] : impl.groups)
        if (other != gid && o.membership.is_active(peer)) ++n;
      return n;
    }
    bool dialed(const PublicKey& peer) const override {
      const Conn* c = impl.conn_to(peer);
      return c && c->dialed;
    }
    const Impl& impl;
    const Overlay& g;
    const Hash& gid;
  };

  // Carries out what the group's membership engine asked for, in its order: tells broadcast and
  // catch-up of neighbours that came and went, and sends its messages and dials.
  void drain_membership(Millis now, Overlay& g, const Hash& gid) {
    while (auto o = g.membership.poll()) {
      if (auto* up = std::get_if<membership_output::Up>(&*o)) {
        g.broadcast.neighbor_up(up->peer);  // Plumtree starts every new neighbour eager
        g.catch_up.neighbor_up(up->peer);
      } else if (auto* down = std::get_if<membership_output::Down>(&*o)) {
        g.broadcast.neighbor_down(down->peer);
        g.catch_up.neighbor_down(down->peer);
      } else if (auto* n = std::get_if<membership_output::Neighbor>(&*o)) {
        send_to(now, n->to, wire::Neighbor{gid, n->high_priority});
      } else if (auto* r = std::get_if<membership_output::NeighborReply>(&*o)) {
        send_to(now, r->to, wire::NeighborReply{gid, r->accepted});
      } else if (auto* d = std::get_if<membership_output::Disconnect>(&*o)) {
        send_to(now, d->to, wire::Disconnect{gid});
      } else if (auto* sh = std::get_if<membership_output::Shuffle>(&*o)) {
        send_to(now, sh->to, shuffle_message(gid, sh->reply, std::move(sh->peers)));
      } else if (auto* dl = std::get_if<membership_output::Dial>(&*o)) {
        dial(now, dl->address, dl->expected);
      }
    }
  }

  // A shuffle of the membership's sample: each peer with every address known for it, this node
  // first if it can be dialled (and `with_self`: not when it is full), within
  // wire_limits::peers_max.
  wire::Shuffle shuffle_message(const Hash& gid, bool reply, std::vector<PeerInfo> peers,
                                bool with_self = true) const {
    for (auto& p : peers) p.addresses = addresses_of(p.id, p.addresses.front());
    if (auto own = advertised_addresses(); with_self && !own.empty())
      peers.insert(peers.begin(), PeerInfo{self.public_key(), std::move(own)});
    if (peers.size() > wire_limits::peers_max) peers.resize(wire_limits::peers_max);
    return wire::Shuffle{gid, reply, std::move(peers)};
  }

  void handle(Millis now, Conn& c, const PublicKey& peer, Overlay& g, const wire::Neighbor& m) {
    g.membership.on_neighbor(now, peer, c.id, c.address, m.high_priority, rng,
                             GroupLinks(*this, g, m.group));
    drain_membership(now, g, m.group);
  }

  void handle(Millis now, Conn& c, const PublicKey& peer, Overlay& g, const wire::NeighborReply& m) {
    g.membership.on_neighbor_reply(now, peer, c.id, c.address, m.accepted, rng,
                                   GroupLinks(*this, g, m.group));
    drain_membership(now, g, m.group);
  }

  void handle(Millis now, Conn& c, const PublicKey& peer, Overlay& g, const wire::Disconnect& m) {
    remove_peer(now, g, m.group, peer, &c, PeerGone::disconnected);
  }

  void handle(Millis now, Conn&, const PublicKey& peer, Overlay& g, const wire::Shuffle& m) {
    // Each peer's list goes to the book; the passive list takes the address this node would
    // dial first, and a dial tries the others after it.
    std::vector<PeerInfo> offered;
    for (const auto& p : m.peers) {
      if (p.addresses.empty() || banned.count(p.id) || is_former_member(g, p.id)) continue;
      note_addresses(now, p.id, p.addresses, false);
      auto ordered = dial_order(p.addresses, dialer());
      if (!ordered.empty()) offered.push_back(PeerInfo{p.id, {ordered.front()}});
    }
    g.membership.on_shuffle(peer, m.reply, offered, rng, GroupLinks(*this, g, m.group));
    drain_membership(now, g, m.group);
  }

  void handle(Millis now, Conn& c, const PublicKey& peer, Overlay& g, const wire::Events& m) {
    std::vector<Event> events;
    events.reserve(m.events.size());
    for (const auto& bytes : m.events) {
      auto e = decode_event_in(bytes, m.group);
      if (!e.ok()) return misbehave(now, c.id, "undecodable event: " + e.error().context());
      if (e->group_id() != m.group) return misbehave(now, c.id, "event of another group");
      events.push_back(std::move(e).value());
    }
    node.stats_.events_received += events.size();
    std::size_t known = 0;
    for (const auto& e : events) known += g.replica->group().has(e.id) ? 1 : 0;
    if (now >= c.duplicate_window_start + oc().duplicate_window_ms) {
      c.duplicate_window_start = now;
      c.duplicates_in_window = 0;
    }
    c.duplicates_in_window += known;
    if (c.duplicates_in_window > oc().duplicates_per_window_max) {
      // Duplicates are what honest forwarders send on redundant links: the link stops carrying
      // pushes (a prune), and nobody is banned for it.
      c.duplicates_in_window = 0;
      ++node.stats_.duplicate_prunes;
      note(LogLevel::info, "pruning peer=" + short_hex(peer) + " group=" + short_hex(m.group) +
                               " reason=more than " +
                               std::to_string(oc().duplicates_per_window_max) +
                               " duplicate events in " +
                               std::to_string(oc().duplicate_window_ms / 1000) + " s");
      g.broadcast.on_too_many_duplicates(peer);
      drain_broadcast(now, g, m.group);
    }
    const bool catch_up = m.hops == wire::no_hops && g.catch_up.solicited(now, peer);
    events = screen(now, g, m.group, std::move(events), catch_up);
    if (events.empty()) return;
    if (config().relay) {
      const std::uint64_t refused = g.bound.refused_events();
      events = g.bound.admit(now, g.replica->group(), std::move(events));
      node.stats_.events_refused_full += g.bound.refused_events() - refused;
    }
    if (events.empty()) return;
    ingest(now, g, m.group, std::move(events), peer, m.hops);
  }

  // Drops, before they are stored or forwarded, the new events of a batch that are by former
  // members (finding 8 of issue 10) or past their author's rate bound (finding 9), except those
  // some other member's event needs as parents (vouched). The batch is walked children first
  // (batches are parents-first), so that a kept child vouches for its parents in the same batch.
  std::vector<Event> screen(Millis now, Overlay& g, const Hash& gid, std::vector<Event> events,
                            bool catch_up) {
    const GroupState& s = g.replica->state();
    const Group& group = g.replica->group();
    std::vector<bool> keep(events.size(), true);
    bool dropped_any = false;
    // A join is how a former member comes back (through an invite, checked by the group): a new
    // join, and its author's events in the same batch, are not dropped as a former member's
    // (they are still metered by rate).
    std::set<PublicKey> rejoining;
    for (const Event& e : events)
      if (e.kind == EventKind::join && !group.has(e.id)) rejoining.insert(e.author);
    for (std::size_t k = events.size(); k-- > 0;) {
      const Event& e = events[k];
      if (group.has(e.id)) continue;  // a duplicate: ingest counts it
      const bool needed = is_vouched(g, e);
      const bool former = s.former_members.count(e.author) && !s.is_member(e.author) &&
                          !rejoining.count(e.author);
      if (former && !needed) {
        keep[k] = false;
        dropped_any = true;
        ++node.stats_.events_former_author;
        ++g.former_dropped;
        continue;
      }
      if (!within_rate(now, g, e, catch_up, needed, former)) {
        keep[k] = false;
        dropped_any = true;
        continue;
      }
      for (const Hash& p : e.parents)
        if (!group.has(p)) vouch(g, p, needed ? std::nullopt : std::optional<PublicKey>(e.author));
    }
    if (dropped_any) log_drops(now, g, gid);
    if (!dropped_any) return events;
    std::vector<Event> kept;
    for (std::size_t k = 0; k < events.size(); ++k)
      if (keep[k]) kept.push_back(std::move(events[k]));
    return kept;
  }

  static bool is_vouched(const Overlay& g, const Event& e) {
    auto v = g.vouched.find(e.id);
    return v != g.vouched.end() && (!v->second || *v->second != e.author);
  }

  // Notes that `by` (none: nobody in particular) needs event `id` as a parent.
  void vouch(Overlay& g, const Hash& id, std::optional<PublicKey> by) {
    auto [it, added] = g.vouched.try_emplace(id, by);
    if (!added) {
      if (it->second && by != it->second) it->second.reset();
      return;
    }
    g.vouched_order.push_back(id);
    while (g.vouched_order.size() > vouched_max) {
      g.vouched.erase(g.vouched_order.front());
      g.vouched_order.pop_front();
    }
  }

  // Takes one event from its author's allowance; false when it is spent. A vouched event that
  // the allowance does not cover takes from the vouched allowance (vouched_rate_factor times
  // larger, metered by arrival so that it refills); a former member's event (always vouched
  // here) only from that one. Only members and former members are metered: an event by any
  // other key is rejected by ingest.
  bool within_rate(Millis now, Overlay& g, const Event& e, bool catch_up, bool vouched,
                   bool former) {
    const GroupState& s = g.replica->state();
    if (!s.is_member(e.author) && !s.former_members.count(e.author)) return true;
    const std::uint64_t per_ms = oc().author_events_per_s;  // thousandths of an event per ms
    const std::uint64_t full = std::uint64_t{oc().author_burst_events} * 1000;
    // Refills a bucket of `cap` thousandths at `rate` per ms; the elapsed time is capped first
    // so that the product cannot overflow.
    auto refill = [](std::uint64_t& milli, std::uint64_t elapsed_ms, std::uint64_t rate,
                     std::uint64_t cap) {
      if (rate == 0) return;
      elapsed_ms = std::min<std::uint64_t>(elapsed_ms, cap / rate + 1);
      milli = std::min(cap, milli + elapsed_ms * rate);
    };
    auto take = [](std::uint64_t& milli) {
      if (milli < 1000) return false;
      milli -= 1000;
      return true;
    };
    Overlay::Rate& r = g.rates[e.author];
    if (!r.started) {
      r.started = true;
      r.push_milli = r.catch_up_milli = full;
      r.vouched_milli = full * vouched_rate_factor;
      r.push_at = r.vouched_at = now;
      r.claimed_at = e.time_ms;
    }
    if (!former) {
      if (catch_up) {
        if (e.time_ms > r.claimed_at) {
          refill(r.catch_up_milli, e.time_ms - r.claimed_at, per_ms, full);
          r.claimed_at = e.time_ms;
        }
        if (take(r.catch_up_milli)) return true;
      } else {
        refill(r.push_milli, now - r.push_at, per_ms, full);
        r.push_at = now;
        if (take(r.push_milli)) return true;
      }
    }
    if (vouched) {
      refill(r.vouched_milli, now - r.vouched_at, per_ms * vouched_rate_factor,
             full * vouched_rate_factor);
      r.vouched_at = now;
      if (take(r.vouched_milli)) return true;
    }
    ++r.dropped;
    ++node.stats_.events_over_rate;
    return false;
  }

  void log_drops(Millis now, Overlay& g, const Hash& gid) {
    if (g.former_dropped > 0 &&
        (!g.former_logged_at || now >= *g.former_logged_at + drop_log_interval_ms)) {
      g.former_logged_at = now;
      note(LogLevel::warn, "dropped events by former members group=" + short_hex(gid) +
                               " events=" + std::to_string(g.former_dropped));
      g.former_dropped = 0;
    }
    for (auto& [author, r] : g.rates) {
      if (r.dropped == 0 || (r.logged_at && now < *r.logged_at + drop_log_interval_ms)) continue;
      r.logged_at = now;
      note(LogLevel::warn, "author over its rate bound group=" + short_hex(gid) +
                               " author=" + short_hex(author) +
                               " dropped_events=" + std::to_string(r.dropped));
      r.dropped = 0;
    }
  }

  void handle(Millis now, Conn&, const PublicKey& peer, Overlay& g, const wire::IHave& m) {
    g.broadcast.on_ihave(now, peer, m.tags, m.hops);
    drain_broadcast(now, g, m.group);
  }

  // Whether the group holds an event, for the catch-up engine.
  static CatchUp::Has holds(const Overlay& g) {
    return [&g](const Hash& id) { return g.replica->group().has(id); };
  }

  // Carries out what the group's broadcast engine asked for: pushes, announcements, grafts and
  // prunes, in its order, on the peers' links.
  void drain_broadcast(Millis now, Overlay& g, const Hash& gid) {
    // A batch is pushed to several peers: encoded once.
    std::vector<Hash> encoded_ids;
    std::vector<Bytes> encoded;
    while (auto o = g.broadcast.poll()) {
      if (auto* p = std::get_if<broadcast_output::Push>(&*o)) {
        Conn* c = active_conn(g, p->to);
        if (!c) continue;
        if (p->ids != encoded_ids) {
          encoded.clear();
          for (const auto& id : p->ids)
            encoded.push_back(encode_for_group_message(g.replica->group().find(id)->event));
          encoded_ids = p->ids;
        }
        send_events(now, *c, gid, encoded, p->hops);
      } else if (auto* i = std::get_if<broadcast_output::IHave>(&*o)) {
        std::vector<EventTag> tags;
        tags.reserve(i->ids.size());
        for (const Hash& id : i->ids) tags.push_back(tag_of(id));
        send_to(now, i->to, wire::IHave{gid, std::move(tags), std::move(i->hops)});
      } else if (auto* gr = std::get_if<broadcast_output::Graft>(&*o)) {
        ++node.stats_.grafts_sent;
        if (gr->tags.empty() && gr->authors.empty()) {
          ++node.stats_.tree_attaches;
        } else if (gr->tags.empty()) {
          ++node.stats_.tree_swaps;  // a swap asks for no event
        } else {
          // What comes back is catch-up (metered by claimed time).
          g.catch_up.solicit(now, gr->to);
        }
        send_to(now, gr->to, wire::Graft{gid, std::move(gr->tags), std::move(gr->authors)});
      } else if (auto* pr = std::get_if<broadcast_output::Prune>(&*o)) {
        ++node.stats_.prunes_sent;
        send_to(now, pr->to, wire::Prune{gid, std::move(pr->authors)});
      }
    }
  }

  void handle(Millis now, Conn& c, const PublicKey& peer, Overlay& g, const wire::Graft& m) {
    if (m.tags.empty() && m.authors.empty()) {  // attach the peer (it answers with the same)
      g.broadcast.on_attach(peer);
      return drain_broadcast(now, g, m.group);
    }
    std::vector<Bytes> batch;
    std::vector<PublicKey> authors = m.authors;  // the trees the peer asks to be eager in
    for (const auto& tag : m.tags) {
      // Grafts answer announcements, which name recent events only.
      const auto id = g.broadcast.recent(tag);
      const EventRecord* rec = id ? g.replica->group().find(*id) : nullptr;
      if (rec) batch.push_back(encode_for_group_message(rec->event));
      if (rec) authors.push_back(rec->event.author);
    }
    g.broadcast.on_graft(peer, authors);
    send_events(now, c, g.replica->id(), std::move(batch), wire::no_hops);
  }

  void handle(Millis, Conn&, const PublicKey& peer, Overlay& g, const wire::Prune& m) {
    g.broadcast.on_prune(peer, m.authors);
  }

  void handle(Millis now, Conn&, const PublicKey& peer, Overlay& g, const wire::Heads& m) {
    // What a requester of the group holds: a relay decides once it holds as much.
    relay.on_heads(m.group, peer, m.heads);
    if (m.want) {
      g.catch_up.on_request(now, peer, m.heads, g.replica->group(), in_flight());
    } else {
      // A relay at its byte bound asks for nothing more: every batch would be refused.
      if (g.bound.full()) return;
      g.catch_up.on_offer(now, peer, m.heads, holds(g));
    }
    drain_catch_up(now, g, m.group);
  }

  // Bytes queued on a peer's link and not yet written, for catch-up's send window.
  CatchUp::InFlight in_flight() {
    return [this](const PublicKey& peer) -> std::optional<std::size_t> {
      const Conn* c = conn_to(peer);
      if (!c) return std::nullopt;
      return queued(*c);
    };
  }

  // Carries out what the group's catch-up engine asked for, in its order, on the peers' links.
  void drain_catch_up(Millis now, Overlay& g, const Hash& gid) {
    while (auto o = g.catch_up.poll()) {
      if (auto* h = std::get_if<catch_up_output::Heads>(&*o)) {
        const auto& held = g.replica->group().heads();
        std::vector<Hash> heads(held.begin(), held.end());
        if (heads.size() > wire_limits::ids_max) heads.resize(wire_limits::ids_max);
        send_to(now, h->to, wire::Heads{gid, std::move(heads), h->want});
      } else if (auto* e = std::get_if<catch_up_output::Events>(&*o)) {
        send_to(now, e->to, wire::Events{gid, std::move(e->events), wire::no_hops});
      }
    }
  }

  void send_events(Millis now, Conn& c, const Hash& gid, std::vector<Bytes> events,
                   std::uint32_t hops) {
    std::vector<Bytes> batch;
    std::size_t bytes = 0;
    for (auto& e : events) {
      if (batch.size() == wire_limits::events_max || bytes + e.size() > wire_limits::events_bytes_max) {
        send(now, c, wire::Events{gid, std::move(batch), hops});
        batch.clear();
        bytes = 0;
      }
      bytes += e.size();
      batch.push_back(std::move(e));
    }
    if (!batch.empty()) send(now, c, wire::Events{gid, std::move(batch), hops});
  }

  // ---------------------------------------------------------------- direct groups

  // Relay: the byte bound of one group; a direct group's (also one taken on as direct, before
  // its create arrives) is direct::relay_group_bytes_max at most.
  std::uint64_t group_bytes_max(const Hash& gid, const Replica& r) const {
    const bool direct = r.state().settings.direct || relay.taken_as_direct(gid);
    return direct ? std::min(config().relay_group_bytes_max, direct::relay_group_bytes_max)
                  : config().relay_group_bytes_max;
  }

  // Relay: `member` is a member of a (non-direct, confirmed) group this relay serves.
  bool serves_member(const PublicKey& member) const {
    for (const auto& [gid, g] : groups) {
      const GroupState& s = g.replica->state();
      if (s.created && !s.settings.direct && !relay.on_probation(gid) && s.is_member(member))
        return true;
    }
    return false;
  }

  // Relay: direct groups held that name `member` or were taken on for it, other than `except`.
  std::size_t direct_groups_of(const PublicKey& member, const Hash* except = nullptr) const {
    std::size_t n = 0;
    for (const auto& [gid, g] : groups) {
      if (except && gid == *except) continue;
      const GroupState& s = g.replica->state();
      if (!s.settings.direct && !relay.taken_as_direct(gid)) continue;
      const auto& p = s.direct_pair;
      if (std::find(p.begin(), p.end(), member) != p.end() || relay.is_requester(gid, member)) ++n;
    }
    return n;
  }

  // Relay: why a group on probation as direct is not one it serves (empty: it is): it must be a
  // direct group of two, asked for by one of them, both members of groups served here, each
  // within direct::relay_groups_per_member_max.
  std::string direct_refusal(const Hash& gid, const GroupState& s,
                             const std::set<PublicKey>& requesters) const {
    if (!s.settings.direct) return "offered as a direct group, but it is not one";
    if (s.direct_pair.size() != 2) return "the direct group names one member only";
    for (const PublicKey& r : requesters)
      if (std::find(s.direct_pair.begin(), s.direct_pair.end(), r) == s.direct_pair.end())
        return "the requester is not one of the direct group's members";
    for (const PublicKey& m : s.direct_pair) {
      if (!serves_member(m)) return "a member of the direct group is in no group served here";
      if (direct_groups_of(m, &gid) >= direct::relay_groups_per_member_max)
        return "a member has " + std::to_string(direct::relay_groups_per_member_max) +
               " direct groups here already";
    }
    return {};
  }

  // Relay: drops the direct groups it keeps (off probation) one of whose members is in no group
  // served here any more (removed, left, or their community's group dropped): it holds DMs only
  // between members of the communities it serves. Runs after a served group changed, at most
  // every direct::relay_recheck_interval_ms.
  void recheck_direct_groups(Millis now) {
    if (!config().relay || !direct_recheck_due || now < direct_recheck_at) return;
    direct_recheck_due = false;
    direct_recheck_at = now + direct::relay_recheck_interval_ms;
    std::vector<Hash> gone;
    for (const auto& [gid, g] : groups) {
      const GroupState& s = g.replica->state();
      if (!s.created || !s.settings.direct || relay.on_probation(gid)) continue;
      for (const PublicKey& m : s.direct_pair) {
        if (serves_member(m)) continue;
        gone.push_back(gid);
        break;
      }
    }
    const std::string why = "a member of the direct group is in no group served here any more";
    for (const Hash& gid : gone) {
      note(LogLevel::info, "dropping direct group=" + short_hex(gid) + ": " + why);
      drop_group(now, gid, why);
    }
  }

  // Offers the direct groups this node holds (all, or only `only`) on a link whose last hello
  // does not show them and whose peer is: their other member; on a member's node also a relay
  // the group names (which takes it on, like a serve request); on a relay, either member.
  void offer_direct(Millis now, Conn& c, const std::optional<Hash>& only) {
    if (!c.established || c.closing || !c.peer || !c.hello_received) return;
    auto offer = [&](const Hash& gid, const Overlay& g) {
      const GroupState& s = g.replica->state();
      if (!s.settings.direct || relay.on_probation(gid) || offers.checking(gid) || shows(c, gid))
        return;
      if (!config().relay && !s.is_member(self.public_key())) return;
      const auto& p = s.direct_pair;
      const bool to_member = std::find(p.begin(), p.end(), *c.peer) != p.end();
      const bool to_relay = !config().relay && g.membership.is_relay(*c.peer);
      if (to_member || to_relay) send(now, c, wire::DirectOffer{gid});
    };
    if (only) {
      if (auto it = groups.find(*only); it != groups.end()) offer(*only, it->second);
      return;
    }
    for (const auto& [gid, g] : groups) offer(gid, g);
  }

  // A peer offers a direct group. On a relay, the relay service decides whether to take it on.
  // Elsewhere it is taken (added empty, fetched like a joiner's, and checked by review_offer)
  // from a member or named relay of a group both hold, unless blocked or past the bounds of
  // direct::Offers; otherwise dropped and logged.
  void on_direct_offer(Millis now, Conn& c, const wire::DirectOffer& m) {
    const PublicKey peer = *c.peer;
    if (config().relay) {
      const bool taken = relay.on_direct_offer(now, peer, m.group, c.address,
                                               groups.count(m.group) != 0, groups.size(),
                                               serves_member(peer), direct_groups_of(peer));
      ++(taken ? node.stats_.direct_offers_taken : node.stats_.direct_offers_refused);
      drain_relay(now);
      return;
    }
    bool co_member = false;
    for (const Hash& gid : c.shared) {
      const Overlay& g = groups.at(gid);
      const GroupState& s = g.replica->state();
      if (s.created && !s.settings.direct && s.is_member(self.public_key()) &&
          (s.is_member(peer) || g.membership.is_relay(peer)))
        co_member = true;
    }
    const auto d = offers.on_offer(now, m.group, peer, groups.count(m.group) != 0, co_member);
    if (d == direct::OfferDecision::held) return;
    if (d != direct::OfferDecision::take) {
      ++node.stats_.direct_offers_refused;
      note(LogLevel::info, "direct offer dropped group=" + short_hex(m.group) + " peer=" +
                               short_hex(peer) + " reason=" + direct::offer_decision_name(d));
      return;
    }
    ++node.stats_.direct_offers_taken;
    note(LogLevel::info, "direct offer taken group=" + short_hex(m.group) + " peer=" + short_hex(peer));
    out.push_back(node_output::GroupAdded{m.group});
    std::vector<std::string> hints;
    if (!c.address.empty()) hints.push_back(c.address);
    add_group(now, std::make_unique<Replica>(m.group, &self), hints);
  }

  // An offered direct group being checked: kept once it shows itself a direct group naming this
  // node, dropped if it is something else or nothing came in time.
  void review_offer(Millis now, const Hash& gid) {
    if (!offers.checking(gid)) return;
    auto it = groups.find(gid);
    if (it == groups.end()) return offers.forget(gid);
    std::string why;
    switch (offers.review(now, gid, it->second.replica->state(), self.public_key(), &why)) {
      case direct::Verdict::wait: return;
      case direct::Verdict::keep:
        note(LogLevel::info, "direct group=" + short_hex(gid) + " confirmed");
        return;
      case direct::Verdict::drop:
        ++node.stats_.direct_offers_refused;
        note(LogLevel::warn, "dropping group=" + short_hex(gid) + " reason=" + why);
        drop_group(now, gid, why);
        return;
    }
  }

  // ---------------------------------------------------------------- events

  void ingest(Millis now, Overlay& g, const Hash& gid, std::vector<Event> events,
              std::optional<PublicKey> from, std::uint32_t hops) {
    const std::size_t received = events.size();
    std::vector<PublicKey> authors;  // whose trees a redundant push prunes
    for (const Event& e : events) authors.push_back(e.author);
    IngestReport report = g.replica->ingest(std::move(events), from);
    if (config().relay) {
      const std::uint64_t dropped = g.bound.payloads_dropped();
      g.bound.after_ingest(now, *g.replica, report);
      node.stats_.payloads_dropped += g.bound.payloads_dropped() - dropped;
    }
    node.stats_.events_pending_dropped += report.pending_dropped;
    node.stats_.events_duplicate += report.duplicates;
    if (!report.rejected.empty()) {
      node.stats_.events_rejected += report.rejected.size();
      note(LogLevel::warn, "rejected event id=" + short_hex(report.rejected.front().first) +
                               " group=" + short_hex(gid) + " reason=" + report.rejected.front().second);
      if (from) {
        if (Conn* c = conn_to(*from)) close(now, c->id, "sent invalid events", true);
        from.reset();
      }
    }
    if (from && hops != wire::no_hops && report.admitted.empty() &&
        report.duplicates == received && received > 0) {
      // Plumtree: a push of nothing new; that link is redundant in the tree.
      g.broadcast.on_redundant_push(*from, authors);
      drain_broadcast(now, g, gid);
    }
    if (from && report.pending > 0) {
      // A push whose parents we lack asks its sender for them, at once or pending_wait_ms later
      // (they may be on their way by push). Catch-up batches (no hop count) go on at once.
      if (hops != wire::no_hops && oc().pending_wait_ms > 0) {
        g.catch_up.request_after(now, *from, oc().pending_wait_ms);
      } else {
        g.catch_up.request(now, *from);
      }
      drain_catch_up(now, g, gid);
    }
    after_admit(now, g, gid, report, from, hops == wire::no_hops ? wire::no_hops : hops + 1);
  }

  // `hops` is our distance from the events' author (0 when authored here).
  void after_admit(Millis now, Overlay& g, const Hash& gid, const IngestReport& report,
                   std::optional<PublicKey> from, std::uint32_t hops) {
    if (report.admitted.empty() && report.evicted.empty() && report.pending_added.empty() &&
        report.payloads_dropped.empty() && report.payloads_restored.empty())
      return;
    for (const auto& id : report.admitted)
      g.vouched.erase(id);  // its entry in vouched_order goes when it reaches the front
    if (!report.admitted.empty()) relay.on_progress(now, gid);
    if (!report.admitted.empty() && !g.replica->state().settings.direct) direct_recheck_due = true;
    // A direct group that names a new relay (its founder names relays of shared groups later
    // too: docs/protocol.md, "Offline delivery") is offered to it on a link that is up now; a
    // link that comes later offers it with its hello.
    const bool relays_changed =
        g.replica->state().settings.direct && g.membership.relays() != g.replica->state().relays;
    sync_relays(g);
    if (relays_changed)
      for (auto& [cid, c] : conns) offer_direct(now, c, gid);
    out.push_back(node_output::Persist{gid, report, g.replica->take_new_keys()});
    std::vector<Hash> delivered;
    for (const auto& id : report.admitted)
      if (g.replica->group().find(id)->accepted) delivered.push_back(id);
    if (!delivered.empty()) out.push_back(node_output::Delivered{gid, std::move(delivered), from});
    // Eager push to the tree, lazy announcement to the rest.
    std::vector<PublicKey> authors;
    for (const auto& id : report.admitted) authors.push_back(g.replica->group().find(id)->event.author);
    g.broadcast.on_admitted(now, report.admitted, authors, from, hops);
    drain_broadcast(now, g, gid);
    // After pushing: a member removed by this batch still learns of its removal, then nothing.
    shun_former_members(now, g, gid, report.admitted);
    // A former member that showed an invite we did not hold yet: this batch may have brought it.
    welcome_holders(now, gid);
  }

  // ---------------------------------------------------------------- groups

  void add_group(Millis now, std::unique_ptr<Replica> replica,
                 const std::vector<std::string>& peer_addresses, bool repairing = false,
                 std::set<PublicKey> repair_peers = {}) {
    const Hash gid = replica->id();
    const bool fresh = !groups.count(gid);
    auto& g = groups[gid];
    g.replica = std::move(replica);
    g.repairing = repairing;
    g.repair_peers = std::move(repair_peers);
    if (fresh) {
      g.broadcast = Broadcast(BroadcastConfig{oc().graft_timeout_ms, oc().ihave_delay_ms,
                                              oc().tree_optimize_hops, oc().flood,
                                              oc().tree_per_author, oc().new_tree_floods,
                                              oc().new_tree_flood_hops});
    }
    const Millis shuffle_at = now + rng.uniform(oc().shuffle_interval_ms);
    const Millis first_offer_at = now + rng.uniform(oc().sync_interval_ms);
    if (fresh) {
      g.catch_up = CatchUp(CatchUpConfig{oc().sync_interval_ms, oc().sync_interval_max_ms,
                                         oc().maintenance_interval_ms, oc().catch_up_solicited_ms,
                                         oc().send_window_bytes},
                           first_offer_at);
    } else {
      g.catch_up.schedule_offer(first_offer_at);
    }
    const Millis explore_at = now + rng.uniform(oc().explore_interval_ms);
    if (fresh) {
      MembershipConfig mc;
      mc.active_target = oc().active_target;
      mc.active_max = config().relay ? std::max(oc().relay_active_max, oc().active_max)
                                     : oc().active_max;
      mc.passive_max = oc().passive_max;
      mc.shuffle_peers = oc().shuffle_peers;
      mc.shuffle_interval_ms = oc().shuffle_interval_ms;
      mc.shuffle_interval_max_ms = oc().shuffle_interval_max_ms;
      mc.explore_interval_ms = oc().explore_interval_ms;
      mc.explore_interval_max_ms = oc().explore_interval_max_ms;
      mc.retry_ms = oc().maintenance_interval_ms;
      mc.relay_retry_ms = oc().relay_retry_ms;
      mc.share_links = oc().share_links;
      mc.self_address = config().listen_address;
      mc.self = self.public_key();
      g.membership = Membership(std::move(mc));
    }
    g.membership.schedule(shuffle_at, explore_at);
    if (config().relay) {
      if (fresh) g.bound = RelayBound(gid, group_bytes_max(gid, *g.replica), log);
      g.bound.load(g.replica->group());
    }
    // A relay's group loaded without its create event (taken on, then restarted before the data
    // came): it gets the same bounded wait for data as a fresh one.
    if (config().relay && !g.replica->state().created) relay.on_loaded_without_create(now, gid);
    if (g.replica->group().pending_bytes_from(std::nullopt) > 0)
      g.timers.set(Overlay::Timer::restored_pending, now + restored_pending_keep_ms);
    for (const auto& a : peer_addresses) remember(g, a, std::nullopt);
    // Events loaded pending still need their parents, whoever wrote them.
    for (const Event* e : g.replica->group().pending_events())
      for (const Hash& p : e->parents)
        if (!g.replica->group().has(p)) vouch(g, p, e->author);
    sync_relays(g);
    // Tell connected peers: the new group may be one we share. And match it against the tags
    // they sent us, so that each side starts the group's overlay on the links it already has.
    for (auto& [cid, c] : conns)
      if (c.established) send_hello(now, c);
    for (auto& [cid, c] : conns)
      if (c.established && !c.closing) match_groups(now, c);
    for (auto& [cid, c] : conns) offer_direct(now, c, gid);
    timers.set(Timer::maintenance, now);
  }

  void remove_group(Millis now, const Hash& gid) {
    auto it = groups.find(gid);
    if (it == groups.end()) return;
    if (!it->second.replica->state().settings.direct) direct_recheck_due = true;
    std::vector<PublicKey> active;
    for (const auto& [peer, conn] : it->second.membership.active()) active.push_back(peer);
    for (const auto& peer : active)
      remove_peer(now, it->second, gid, peer, active_conn(it->second, peer), PeerGone::dropped);
    groups.erase(it);
    relay.forget(gid);
    offers.forget(gid);
    for (auto& [cid, c] : conns) {
      c.shared.erase(gid);
      if (c.established) send_hello(now, c);
    }
  }

  // ---------------------------------------------------------------- invariants

  // What holds after every input (TigerBeetle's `defer self.invariants()`): the first statement
  // that does not, or none. Each is one sentence and one check.
  std::optional<std::string> invariant_violation() const {
    auto fail = [](std::string what) { return std::optional<std::string>(std::move(what)); };
    // dial and on_connected refuse connections past connections_max.
    if (conns.size() > oc().connections_max + overflow_conns_max)
      return fail("more than connections_max connections, and overflow_conns_max past it");
    std::size_t overflowing = 0;
    for (const auto& [id, c] : conns) {
      if (!c.overflow) continue;
      ++overflowing;
      if (!c.shared.empty()) return fail("an overflow connection shares a group");
    }
    if (overflowing > overflow_conns_max) return fail("more than overflow_conns_max overflow connections");
    if (auto broken = relayed.invariant_violation()) return broken;
    std::set<PublicKey> linked;
    for (const auto& [id, c] : conns) {
      const std::string conn = "conn " + std::to_string(id);
      // A close decided during an input is carried out at its end.
      if (c.closing) return fail(conn + " is still closing after the input");
      // What an input queued on a link reached it before the input ended.
      if (!c.outbox.empty() || c.outbox_bytes != 0) return fail(conn + " has unsent messages");
      // A peer not reading is closed, so no link holds more than its bound.
      if (queued(c) > oc().conn_queue_bytes_max) return fail(conn + " queues past its bound");
      // One link per peer (on_established closes the duplicate), and none to this node.
      if (c.established && (!c.peer || *c.peer == self.public_key() || !linked.insert(*c.peer).second))
        return fail(conn + " duplicates a link, or links to this node");
      // Only an established link shares groups, and only groups this node holds.
      for (const Hash& gid : c.shared)
        if (!c.established || !groups.count(gid)) return fail(conn + " shares a group it cannot");
    }
    for (const auto& [gid, g] : groups) {
      const std::string group = " in group " + short_hex(gid);
      // Membership's own (the active set within its cap, the passive list within its bound, the
      // periodic timers set).
      if (auto broken = g.membership.invariant_violation()) return fail(*broken + group);
      const auto& active = g.membership.active();
      // Each active peer's link is up and shares the group.
      for (const auto& [peer, cid] : active) {
        auto c = conns.find(cid);
        if (c == conns.end() || !c->second.established || c->second.peer != peer ||
            !c->second.shared.count(gid))
          return fail("active peer " + short_hex(peer) + " has no link sharing the group" + group);
      }
      // Broadcast's neighbours are the active set (no peer is both eager and lazy: its own).
      if (auto broken = g.broadcast.invariant_violation()) return fail(*broken + group);
      if (g.broadcast.neighbors() != active.size())
        return fail("broadcast neighbours are not the active set" + group);
      for (const auto& [peer, cid] : active)
        if (!g.broadcast.is_neighbor(peer))
          return fail("active peer " + short_hex(peer) + " is no broadcast neighbour" + group);
      // Catch-up's state is consistent, and its neighbours (whom it offers heads) are the active
      // set.
      if (auto broken = g.catch_up.invariant_violation()) return fail(*broken + group);
      if (g.catch_up.neighbors() != active.size())
        return fail("catch-up neighbours are not the active set" + group);
      for (const auto& [peer, cid] : active)
        if (!g.catch_up.is_neighbor(peer))
          return fail("active peer " + short_hex(peer) + " is no catch-up neighbour" + group);
      // Catch-up and announcements are queued only for linked peers.
      for (const auto& peer : g.catch_up.sending())
        if (!linked.count(peer)) return fail("catch-up queued for an unlinked peer" + group);
      for (const auto& peer : g.broadcast.announcing())
        if (!linked.count(peer)) return fail("announcements queued for an unlinked peer" + group);
    }
    if (!timers.is_set(Timer::maintenance)) return fail("maintenance timer not set");
    if (!serve_requests.empty() && !timers.is_set(Timer::serve_expiry))
      return fail("serve requests with no timer");
    // Bounded lists stay within their bounds.
    if (serve_requests.size() > serve_requests_max) return fail("serve requests over their bound");
    if (banned.size() > banned_max) return fail("banned peers over their bound");
    // The relay service's own, and it judges only groups this node holds.
    if (auto broken = relay.invariant_violation()) return fail(*broken);
    // direct::Offers::on_offer takes no offer past its bound.
    if (offers.checking_count() > direct::offers_checking_max)
      return fail("direct offers being checked over their bound");
    for (const Hash& gid : relay.probation_groups())
      if (!groups.count(gid)) return fail("a group on probation is not held");
    for (const Hash& gid : relay.claimed_groups())
      if (!groups.count(gid)) return fail("a claimed group is not held");
    return std::nullopt;
  }

  // ---------------------------------------------------------------- timers

  // Runs the expired timers: each group's, in a fixed order, then the relay service's (which may
  // drop groups), then the node's.
  void on_timers(Millis now) {
    std::vector<Hash> ids;
    for (const auto& [gid, g] : groups) ids.push_back(gid);
    for (const Hash& gid : ids) group_timers(now, gid);
    if (auto d = relay.next_deadline(); d && *d <= now) {
      relay.on_tick(now, [this](const Hash& gid) -> const Replica* {
        auto it = groups.find(gid);
        return it == groups.end() ? nullptr : it->second.replica.get();
      });
      drain_relay(now);
    }
    if (timers.take_expired(Timer::serve_expiry, now)) expire_serves(now);
    if (timers.take_expired(Timer::maintenance, now)) maintenance(now);
  }

  void group_timers(Millis now, const Hash& gid) {
    using T = Overlay::Timer;
    auto it = groups.find(gid);
    if (it == groups.end()) return;
    Overlay& g = it->second;
    if (auto d = g.broadcast.next_deadline(); d && *d <= now) {
      g.broadcast.on_tick(now);
      drain_broadcast(now, g, gid);
    }
    if (g.timers.take_expired(T::restored_pending, now))
      drop_pending(now, g, gid, std::nullopt, "loaded at start-up, parents never came");
    // Peer sampling: a shuffle, an exploration.
    if (auto d = g.membership.next_deadline(); d && *d <= now) {
      g.membership.on_tick(now, rng, GroupLinks(*this, g, gid));
      drain_membership(now, g, gid);
    }
    // Catch-up: held-back heads requests, the next batches, the periodic offer.
    if (auto d = g.catch_up.next_deadline(); d && *d <= now) {
      g.catch_up.on_tick(now, g.replica->group(), rng, in_flight());
      drain_catch_up(now, g, gid);
    }
  }

  // Serve requests past their time.
  void expire_serves(Millis now) {
    for (auto r = serve_requests.begin(); r != serve_requests.end();) {
      if (now < r->deadline) {
        timers.set_by(Timer::serve_expiry, r->deadline);
        ++r;
        continue;
      }
      auto c = conns.find(r->conn);
      answer_serve(*r, c != conns.end() ? c->second.peer : std::nullopt, false, "timed out");
      r = serve_requests.erase(r);
    }
  }

  void maintenance(Millis now) {
    timers.set(Timer::maintenance, now + oc().maintenance_interval_ms);
    relayed.maintain(now, wants_reservation(), relay_candidates());
    recheck_direct_groups(now);
    for (const Hash& gid : offers.due(now)) review_offer(now, gid);
    // In how many groups each peer is active, for the groups' consolidation (GroupLinks::
    // carries_other): counted once here rather than over every group for every peer asked about.
    std::map<PublicKey, std::size_t> counts;
    for (const auto& [gid, g] : groups)
      for (const auto& [peer, link] : g.membership.active()) ++counts[peer];
    active_counts = &counts;
    for (auto& [gid, g] : groups) {
      // Keep a relay linked, and fill the active set.
      g.membership.maintain(now, rng, GroupLinks(*this, g, gid));
      drain_membership(now, g, gid);
    }
    active_counts = nullptr;
    // Expire dials and close idle connections.
    for (const auto& [cid, c] : conns) {
      if (!c.established && now >= c.opened_at + oc().dial_timeout_ms) close(now, cid, "idle", false);
      if (c.established && now >= c.last_used + idle_close_ms && !in_use(c))
        close(now, cid, "idle", false);
      if (c.overflow && now >= c.opened_at + overflow_linger_ms)
        close(now, cid, "connections full; peers handed on", false);
    }
    for (auto it = banned.begin(); it != banned.end();)
      it = it->second <= now ? banned.erase(it) : std::next(it);
  }

  // The earliest deadline of the node's and its groups' timers.
  std::optional<Millis> next_deadline() const {
    std::optional<Millis> d = earliest(timers.next_deadline(), relay.next_deadline());
    for (const auto& [gid, g] : groups) {
      d = earliest(d, g.timers.next_deadline());
      d = earliest(d, g.broadcast.next_deadline());
      d = earliest(d, g.catch_up.next_deadline());
      d = earliest(d, g.membership.next_deadline());
    }
    return d;
  }

  bool in_use(const Conn& c) const {
    if (relayed.carries(c.id)) return true;
    for (const auto& r : serve_requests)
      if (r.conn == c.id) return true;
    if (!c.peer) return false;
    for (const auto& [gid, g] : groups)
      if (g.membership.is_active(*c.peer) || g.catch_up.sending_to(*c.peer)) return true;
    return false;
  }
};

Node::Node(NodeConfig config, const SigningKey& self, Rng rng, LogSink log)
    : config_(std::move(config)), impl_(std::make_unique<Impl>(*this, self, std::move(rng), std::move(log))) {}

Node::~Node() = default;

const PublicKey& Node::id() const { return impl_->self.public_key(); }

const Reachability& Node::reachability() const { return impl_->reach; }
const Reachability* Node::reachability_other() const {
  return impl_->reach_other ? &*impl_->reach_other : nullptr;
}
std::vector<std::string> Node::advertised_addresses() const {
  return impl_->advertised_addresses();
}

const RelayedLinks& Node::relayed() const { return impl_->relayed; }

const HolePunch& Node::punch() const { return impl_->punch; }

std::optional<std::string> Node::invariant_violation() const {
  return impl_->invariant_violation();
}

void Node::add_group(Millis now, std::unique_ptr<Replica> replica,
                     const std::vector<std::string>& peer_addresses) {
  impl_->add_group(now, std::move(replica), peer_addresses);
  impl_->settle(now);
}

void Node::add_repaired_group(Millis now, std::unique_ptr<Replica> replica,
                              const std::vector<std::string>& peer_addresses,
                              const std::vector<PublicKey>& former_peers) {
  impl_->add_group(now, std::move(replica), peer_addresses, true,
                   std::set<PublicKey>(former_peers.begin(), former_peers.end()));
  impl_->settle(now);
}

void Node::remove_group(Millis now, const Hash& group) {
  // A copy: callers often pass the replica's own id, which dies with the group.
  const Hash id = group;
  impl_->remove_group(now, id);
  impl_->settle(now);
}

Replica* Node::group(const Hash& id) {
  auto it = impl_->groups.find(id);
  return it == impl_->groups.end() ? nullptr : it->second.replica.get();
}

const Replica* Node::group(const Hash& id) const {
  auto it = impl_->groups.find(id);
  return it == impl_->groups.end() ? nullptr : it->second.replica.get();
}

void Node::set_blocked(Millis now, const PublicKey& key, bool blocked) {
  impl_->offers.set_blocked(key, blocked);
  if (blocked) return;
  // A new hello on every link: peers answer it with offers of what they hold for us (a peer's
  // earlier offers were dropped while it was blocked).
  for (auto& [cid, c] : impl_->conns)
    if (c.established && !c.closing) impl_->send_hello(now, c);
  impl_->settle(now);
}

const std::set<PublicKey>& Node::blocked() const { return impl_->offers.blocked_keys(); }

std::vector<Hash> Node::groups() const {
  std::vector<Hash> out;
  for (const auto& [id, g] : impl_->groups) out.push_back(id);
  return out;
}

void Node::add_peers(Millis now, const Hash& group, const std::vector<std::string>& addresses) {
  auto it = impl_->groups.find(group);
  if (it == impl_->groups.end()) return;
  for (const auto& a : addresses) impl_->remember(it->second, a, std::nullopt);
  impl_->timers.set(Impl::Timer::maintenance, now);
}

void Node::announce_invite(Millis now, const Hash& group) {
  auto it = impl_->groups.find(group);
  if (it == impl_->groups.end()) return;
  for (auto& [cid, c] : impl_->conns)
    if (c.established && !c.closing && Impl::shows(c, group))
      impl_->send_holder(now, c, it->second, group);
  impl_->settle(now);
}

void Node::publish(Millis now, const Hash& group, const std::vector<Event>& events) {
  auto it = impl_->groups.find(group);
  if (it == impl_->groups.end() || events.empty()) return;
  // The replica already holds these; report them as admitted so they are stored and spread.
  IngestReport report;
  for (const auto& e : events)
    if (it->second.replica->group().has(e.id)) report.admitted.push_back(e.id);
  impl_->after_admit(now, it->second, group, report, std::nullopt, 0);
  impl_->settle(now);
}

void Node::on_connected(Millis now, ConnId conn, bool outbound, const std::string& remote) {
  auto& impl = *impl_;
  LinkConfig lc{config_.network_id, impl.log};
  if (outbound) {
    auto it = impl.conns.find(conn);
    if (it == impl.conns.end()) return;
    // Both ends of a punch dialled: the smaller id runs the handshake's initiator.
    if (it->second.punch && it->second.expected && !(impl.self.public_key() < *it->second.expected))
      it->second.link.emplace(Link::responder(now, impl.self, impl.rng, lc));
    else
      it->second.link.emplace(Link::initiator(now, impl.self, it->second.expected, impl.rng, lc));
    it->second.remote = remote;
    impl.dirty.insert(conn);
  } else {
    assert(conn < (1ull << 62) && "inbound connection ids are below 2^62 (node.h)");
    const auto taken = static_cast<std::size_t>(std::count_if(
        impl.conns.begin(), impl.conns.end(), [](const auto& kv) { return kv.second.overflow; }));
    const bool overflow = impl.conns.size() - taken >= impl.oc().connections_max;
    if (overflow && taken >= overflow_conns_max) {
      impl.out.push_back(node_output::Close{conn});
      return;
    }
    auto& c = impl.conns[conn];
    c.id = conn;
    c.overflow = overflow;
    c.outbound = false;
    c.opened_at = now;
    c.last_used = now;
    c.link.emplace(Link::responder(now, impl.self, impl.rng, lc));
    c.remote = remote;
    impl.dirty.insert(conn);
  }
  impl.settle(now);
}

void Node::on_bytes(Millis now, ConnId conn, ByteView bytes) {
  auto it = impl_->conns.find(conn);
  if (it == impl_->conns.end() || !it->second.link) return;
  stats_.bytes_received += bytes.size();
  it->second.link->on_bytes(now, bytes);
  impl_->dirty.insert(conn);
  impl_->settle(now);
}

void Node::on_closed(Millis now, ConnId conn) {
  impl_->forget(now, conn);
  impl_->settle(now);  // a probe's end answers its requester
}

void Node::on_flushed(Millis now, ConnId conn, std::size_t bytes) {
  auto it = impl_->conns.find(conn);
  if (it == impl_->conns.end()) return;
  it->second.unflushed -= std::min(it->second.unflushed, bytes);
  if (it->second.lane.messages.empty()) return;
  impl_->dirty.insert(conn);  // the file lane may move on
  impl_->settle(now);
}

Result<void> Node::send_file(Millis now, const PublicKey& peer, const WireMessage& m) {
  assert(is_file_message(m));
  auto& impl = *impl_;
  Impl::Conn* c = impl.conn_to(peer);
  const Hash& group = std::visit(
      [](const auto& msg) -> const Hash& {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, wire::BlobOffer> || std::is_same_v<T, wire::BlobGet> ||
                      std::is_same_v<T, wire::Blob> || std::is_same_v<T, wire::BlobNone>) {
          return msg.group;
        } else {
          static const Hash none;
          return none;
        }
      },
      m);
  if (!c || !c->link || !c->established || c->closing || !c->shared.count(group))
    return Error(Errc::not_found, "no link to that peer for the group");
  Bytes bytes = encode_wire(m);
  if (c->lane.bytes + bytes.size() > file_lane::queued_bytes_max) {
    c->lane.wanted = true;
    return Error(Errc::too_large, "file lane full");
  }
  c->lane.bytes += bytes.size();
  c->lane.messages.push_back(std::move(bytes));
  c->last_used = now;
  impl.dirty.insert(c->id);
  impl.settle(now);
  return ok_result();
}

std::vector<PublicKey> Node::linked_peers(const Hash& group) const {
  std::vector<PublicKey> out;
  for (const auto& [id, c] : impl_->conns)
    if (c.established && !c.closing && c.peer && c.shared.count(group)) out.push_back(*c.peer);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void Node::on_tick(Millis now) {
  auto& impl = *impl_;
  for (auto& [id, c] : impl.conns) {
    if (c.link && c.link->next_deadline() && *c.link->next_deadline() <= now) {
      c.link->on_tick(now);
      impl.dirty.insert(id);
    }
  }
  impl.on_timers(now);
  impl.update_reach_room();
  for (Reachability* r : impl.reach_engines()) r->on_tick(now);
  impl.punch.on_tick(now, impl.punch_address());
  impl.settle(now);
}

std::optional<NodeOutput> Node::poll() {
  if (impl_->out.empty()) return std::nullopt;
  NodeOutput o = std::move(impl_->out.front());
  impl_->out.pop_front();
  return o;
}

std::optional<Millis> Node::next_deadline() const {
  std::optional<Millis> d = earliest(impl_->next_deadline(), impl_->reach.next_deadline());
  if (impl_->reach_other) d = earliest(d, impl_->reach_other->next_deadline());
  d = earliest(d, impl_->punch.next_deadline());
  for (const auto& [id, c] : impl_->conns)
    if (c.link) d = earliest(d, c.link->next_deadline());
  return d;
}

std::vector<Node::PeerStatus> Node::peers() const {
  std::vector<PeerStatus> out;
  for (const auto& [id, c] : impl_->conns)
    out.push_back({id, c.peer, c.address, c.outbound, c.established, c.bytes_sent, c.bytes_received,
                   c.via});
  return out;
}

std::vector<PublicKey> Node::active_peers(const Hash& group) const {
  std::vector<PublicKey> out;
  auto it = impl_->groups.find(group);
  if (it != impl_->groups.end())
    for (const auto& [id, c] : it->second.membership.active()) out.push_back(id);
  return out;
}

std::vector<PublicKey> Node::template_peers(const Hash& group) const {
  auto it = impl_->groups.find(group);
  return it == impl_->groups.end() ? std::vector<PublicKey>{} : it->second.broadcast.template_peers();
}

std::size_t Node::passive_size(const Hash& group) const {
  auto it = impl_->groups.find(group);
  return it == impl_->groups.end() ? 0 : it->second.membership.passive_size();
}

std::map<PublicKey, std::string> Node::relays(const Hash& group) const {
  auto it = impl_->groups.find(group);
  return it == impl_->groups.end() ? std::map<PublicKey, std::string>{}
                                   : it->second.replica->state().relays;
}

std::vector<Node::RelayStatus> Node::relay_status(const Hash& group) const {
  std::vector<RelayStatus> out;
  auto it = impl_->groups.find(group);
  if (it == impl_->groups.end()) return out;
  const auto& g = it->second;
  for (const auto& [id, address] : g.replica->state().relays) {
    RelayStatus r{id, address, false, std::nullopt};
    r.serving = g.membership.serving(id);
    for (const auto& [cid, c] : impl_->conns) {
      if (!c.established || c.closing || !c.peer || *c.peer != id) continue;
      r.linked = true;
      // A live link's last hello says it (the relay may have sent it before it was named).
      if (c.hello_received) r.serving = Impl::shows(c, group);
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::uint64_t Node::group_bytes(const Hash& group) const {
  auto it = impl_->groups.find(group);
  return it == impl_->groups.end() ? 0 : it->second.replica->group().stored_bytes();
}

std::uint64_t Node::group_payloads_dropped(const Hash& group) const {
  auto it = impl_->groups.find(group);
  return it == impl_->groups.end() ? 0 : it->second.bound.payloads_dropped();
}

std::uint64_t Node::group_events_refused(const Hash& group) const {
  auto it = impl_->groups.find(group);
  return it == impl_->groups.end() ? 0 : it->second.bound.refused_events();
}

std::vector<ServeWaiting> Node::serve_waiting() const {
  return {impl_->relay.waiting().begin(), impl_->relay.waiting().end()};
}

Result<void> Node::approve_serve(Millis now, const Hash& group) {
  auto& impl = *impl_;
  auto r = impl.relay.approve(now, group, std::nullopt, impl.holds_group(), impl.groups.size());
  impl.drain_relay(now);
  impl.settle(now);
  return r;
}

std::vector<Hash> Node::allow_requester(Millis now, const PublicKey& requester) {
  auto& impl = *impl_;
  auto taken = impl.relay.allow(now, requester, impl.holds_group(), impl.groups.size());
  impl.drain_relay(now);
  impl.settle(now);
  return taken;
}

const std::set<PublicKey>& Node::relay_allowed() const { return impl_->relay.allowed(); }

void Node::request_serve(Millis now, const Hash& group, const std::string& relay_address) {
  auto& impl = *impl_;
  Impl::ServeRequest r{group, relay_address, 0, false, now + serve_timeout_ms};
  for (const auto& q : impl.serve_requests)
    if (q.group == group && q.address == relay_address) return;  // its answer will come
  auto refuse = [&](const std::string& why) { impl.answer_serve(r, std::nullopt, false, why); };
  if (!impl.groups.count(group)) return refuse("this node does not hold the group");
  if (relay_address.empty() || relay_address.size() > wire_limits::address_bytes_max)
    return refuse("not a usable address");
  if (relay_address == config_.listen_address) return refuse("that is this node's own address");
  if (impl.serve_requests.size() >= serve_requests_max)
    return refuse("too many serve requests in flight");
  // A link to that address (up or coming up) carries the request; otherwise dial one.
  std::optional<ConnId> conn;
  for (const auto& [cid, c] : impl.conns)
    if (c.address == relay_address && (!conn || c.established)) conn = cid;
  if (!conn) conn = impl.dial(now, relay_address, std::nullopt);
  if (!conn) return refuse("cannot dial: too many connections");
  r.conn = *conn;
  impl.serve_requests.push_back(r);
  impl.timers.set_by(Impl::Timer::serve_expiry, r.deadline);
  impl.send_pending_serves(now);
  impl.settle(now);
}

}  // namespace qun
