// Broadcast: one group's event dissemination, after Plumtree (Leitão et al., 2007) and
// iroh-gossip's proto/plumtree.rs, with a tree per author (Plumtree's per-source trees). Of the
// group's neighbours (the active set, which peer sampling keeps), the eager ones of an author's
// tree get that author's new events pushed whole; the lazy ones get only their ids, announced in
// batches (IHave). A push that brings nothing new makes its link lazy in the trees of the
// events' authors (Prune); an announced event that no push brings within graft_timeout_ms is
// fetched from an announcer, whose link becomes eager again in the event's author's tree
// (Graft). A new author's tree starts with every neighbour eager, so its first event floods and
// the tree that remains is the one its fastest copies took; unless new_tree_floods, that is
// only the first author's: later new authors' trees start as copies of it. Optionally (tree_optimize_hops), a
// lazy neighbour markedly closer to an event's author than the path it came by takes that
// path's place in the author's tree.
//
// The engine owns its state (neighbours, each author's lazy ones, missing announced events, the
// recent events' distances) and its timers (announcement batches, grafts). It knows peers and
// authors by key and events by id only: it holds no events, no links and no replica. Whether an
// event is held it answers from the events it saw admitted recently (broadcast_seen_max):
// announcements and grafts name events by tag (node/event_tag.h), and only recent events are
// announced.
//
// Calling contract (the node's shape, node/node.h): feed one input, then drain poll() until it
// returns nullopt and act on each output in order (Push: send those events, encoded, with that
// hop count; IHave, Graft, Prune: send the message); then arm a timer for next_deadline() and
// call on_tick when it is due. Time never goes backwards; an early or extra on_tick does nothing.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/time.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "node/event_tag.h"
#include "node/timer.h"

namespace qun {

struct BroadcastConfig {
  // A lazily announced event not received by push within this time is grafted
  // (OverlayConfig::graft_timeout_ms says why 100).
  Millis graft_timeout_ms = 100;
  // Lazy announcements are batched this long (OverlayConfig::ihave_delay_ms says why 150).
  Millis ihave_delay_ms = 150;
  // Plumtree's tree optimisation threshold in hops; 0 turns it off (OverlayConfig says why).
  std::uint32_t tree_optimize_hops = 0;
  // Every neighbour eager and nothing ever pruned: the flooding baseline of the benchmarks.
  bool flood = false;
  // A tree per author (Plumtree's per-source trees); false: one tree shared by every author,
  // shaped by whichever push arrived first (what qun did before; kept to measure against).
  bool tree_per_author = true;
  // How a new author's tree starts: false, as a copy of the tree of the first author whose push
  // this node saw (the template, kept from eviction), so the first event of each new author costs
  // a tree, not a flood; true, with every neighbour eager (Plumtree: the first event floods).
  bool new_tree_floods = false;
  // Otherwise, nodes fewer than this many links from a new author start its tree with every
  // neighbour eager, so its first events enter the template at several places.
  std::uint32_t new_tree_flood_hops = 2;
};

// The hop count of an event whose distance from its author is unknown (catch-up batches).
inline constexpr std::uint32_t broadcast_no_hops = UINT32_MAX;
// Ids in one IHave or Graft output: wire_limits::ids_max (node/wire.h), which node.cpp asserts.
inline constexpr std::size_t broadcast_ids_max = 1024;
// Recent events whose distance and sender are remembered, for announcements and the tree
// optimisation: a few seconds of a busy group's posts (and the tree settles within seconds).
inline constexpr std::size_t broadcast_seen_max = 4096;
// Authors whose trees are remembered, least recently used evicted (an evicted author's next
// event floods again and rebuilds its tree). A group's active authors over minutes: a busy
// channel of a few hundred posters fits. About 100 bytes each (a map node, a mask and a stamp).
inline constexpr std::size_t broadcast_trees_max = 256;
// Neighbours at once: the lazy sets are bit masks over neighbour slots. At least a relay's
// active set (OverlayConfig::relay_active_max, 64), which node.cpp static_asserts.
inline constexpr std::size_t broadcast_neighbors_max = 64;

namespace broadcast_output {
struct Push {  // send these events to `to`, each `hops` away from its author
  PublicKey to;
  std::vector<Hash> ids;
  std::uint32_t hops;
};
struct IHave {  // announce these events to `to`; hops[i] is our distance from ids[i]'s author
  PublicKey to;
  std::vector<Hash> ids;
  std::vector<std::uint32_t> hops;
};
struct Graft {  // ask `to` for these events and to push to us again in their authors' trees,
  PublicKey to;  // and in the trees of `authors` (a tree swap asks for no event; an attachment
                 // names neither: push to us in your template)
  std::vector<EventTag> tags;
  std::vector<PublicKey> authors;
};
struct Prune {  // ask `to` to stop pushing to us the events of `authors` (none: of anyone)
  PublicKey to;
  std::vector<PublicKey> authors;
};
}  // namespace broadcast_output
using BroadcastOutput = std::variant<broadcast_output::Push, broadcast_output::IHave,
                                     broadcast_output::Graft, broadcast_output::Prune>;

class Broadcast {
 public:
  explicit Broadcast(BroadcastConfig config = {}) : config_(config) {}

  // Neighbours, as peer sampling adds and removes them. A new neighbour starts eager.
  void neighbor_up(const PublicKey& peer);
  void neighbor_down(const PublicKey& peer);
  // The peer's link is gone, or it may no longer sync the group: the announcements queued for it
  // go too (a neighbour that only left the set still gets those already queued).
  void drop_announcements(const PublicKey& peer);

  // Events newly held (received, caught up or authored here: from none), authors[i] the author
  // of ids[i], `hops` from their author (broadcast_no_hops: unknown): pushed to the neighbours
  // eager in the author's tree but `from`, announced to the lazy ones after ihave_delay_ms.
  void on_admitted(Millis now, const std::vector<Hash>& ids, const std::vector<PublicKey>& authors,
                   std::optional<PublicKey> from, std::uint32_t hops);
  // A push from `from` of events by `authors` brought only events we held: its link is
  // redundant in those authors' trees, and is pruned there.
  void on_redundant_push(const PublicKey& from, const std::vector<PublicKey>& authors);
  // `peer` pushed more duplicates than its window allows: its link is pruned in every tree.
  void on_too_many_duplicates(const PublicKey& peer);
  // Messages from a neighbour. A graft names the authors of the events it asks for that we
  // hold, and of a swap; a prune its authors (none: every tree).
  void on_ihave(Millis now, const PublicKey& peer, const std::vector<EventTag>& tags,
                const std::vector<std::uint32_t>& hops);
  void on_graft(const PublicKey& peer, const std::vector<PublicKey>& authors);
  // A graft that names neither events nor authors: the peer has no eager link in its template
  // and asks to be attached to ours (neighbor_up says when it is sent).
  void on_attach(const PublicKey& peer);
  void on_prune(const PublicKey& peer, const std::vector<PublicKey>& authors);

  void on_tick(Millis now);
  [[nodiscard]] std::optional<BroadcastOutput> poll();
  [[nodiscard]] std::optional<Millis> next_deadline() const { return timers_.next_deadline(); }

  bool is_neighbor(const PublicKey& peer) const { return slots_.count(peer) != 0; }
  // Whether `peer` is lazy in `author`'s tree (an author with no tree yet: every peer eager).
  bool is_lazy(const PublicKey& peer, const PublicKey& author) const;
  // Authors whose trees are remembered.
  std::size_t trees() const { return trees_.size(); }
  std::optional<PublicKey> template_author() const { return template_; }
  // The recent event (admitted within the last broadcast_seen_max) with this tag, if any: what
  // an announcement or a graft names.
  std::optional<Hash> recent(const EventTag& tag) const;
  // The neighbours a new author's tree starts eager for, far from the author: the template's
  // eager links and the attachments (all neighbours before there is either).
  std::vector<PublicKey> template_peers() const;
  // Announcements waiting for their batch, for `peer` (none once sent).
  std::vector<PublicKey> announcing() const;
  std::size_t missing() const { return missing_.size(); }
  std::size_t neighbors() const { return slots_.size(); }

  // The first invariant that does not hold, or none (checked after every input in test builds).
  std::optional<std::string> invariant_violation() const;

 private:
  enum class Timer { ihave, graft, count };
  using Mask = std::uint64_t;  // a bit per neighbour slot
  static_assert(sizeof(Mask) * 8 == broadcast_neighbors_max);
  struct Missing {  // an announced event we have not received
    Millis deadline;
    std::vector<PublicKey> announcers;
    std::vector<PublicKey> grafted;  // asked; eager in the author's tree once the event arrives
  };
  struct Seen {
    std::uint32_t hops;  // our distance from the author by the path it came
    std::optional<PublicKey> from;
    PublicKey author;
  };
  struct Tree {     // one author's tree, as seen from here
    Mask lazy = 0;  // the neighbours lazy in it (others are eager)
    std::uint64_t used = 0;
  };

  void flush_ihave();
  void send_grafts(Millis now);
  void maybe_swap(const PublicKey& peer, const Hash& id, std::uint32_t hops);
  // The tree events of `author` travel (every author's is one when trees are shared), made if
  // missing (evicting the least recently used past broadcast_trees_max).
  Tree& tree(const PublicKey& author, bool all_eager = false);
  PublicKey tree_key(const PublicKey& author) const;
  Mask bit(const PublicKey& peer) const;  // 0 for a non-neighbour
  // Lazy in the trees of `authors` (none: in all), with a Prune if it was eager in any.
  void make_lazy(const PublicKey& peer, const std::vector<PublicKey>& authors);
  void make_eager(const PublicKey& peer, const PublicKey& author);
  void unmend_template(Mask b);
  bool uses_template() const;  // new authors' trees start as copies of the template
  bool attached() const;  // hangs in the template by a neighbour, or asked to
  void maybe_attach(const PublicKey& peer);  // not attached: ask `peer` to attach us
  void ask_attach(const PublicKey& peer);    // ask `peer` (if it has not attached us already)
  Mask new_tree_lazy() const;  // the neighbours a new author's tree starts lazy for

  BroadcastConfig config_;
  std::map<PublicKey, std::size_t> slots_;  // neighbour -> its bit
  Mask used_slots_ = 0;
  std::map<PublicKey, Tree> trees_;
  std::optional<PublicKey> template_;  // the tree new ones copy (new_tree_floods off)
  Mask template_mended_ = 0;           // its links made eager by grafts
  Mask attached_ = 0;      // attachments (on_attach): eager in every new author's tree
  Mask attach_asked_ = 0;  // neighbours asked to attach us, no answer yet
  Mask attach_parents_ = 0;  // attachments we asked for (the rest asked us)
  // The neighbour this node hangs by in the template: where the first push of its template
  // author came from, or the attachment it asked for since that link went.
  std::optional<PublicKey> parent_;
  std::uint64_t tree_clock_ = 0;
  std::map<EventTag, Missing> missing_;
  std::map<PublicKey, std::vector<Hash>> ihave_out_;
  std::map<Hash, Seen> seen_;  // recent events, oldest evicted past broadcast_seen_max
  std::deque<Hash> seen_order_;
  TimerTable<Timer> timers_;
  std::deque<BroadcastOutput> out_;
};

}  // namespace qun
