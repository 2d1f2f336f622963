// Indexer: keeps a node's search index (search/index.h) in step with the groups it holds. The
// daemon (net/daemon.cpp) owns one on a member's node (a relay reads nothing and has none) and
// calls it where events arrive, where groups go, once a second, and for `search` requests.
//
// What goes in is what this node shows: the posts of the conversation fold (node/conversation.h)
// that it can read, with their current text. A post is put in as it is delivered (unless its
// author is muted or its channel archived, as the message stream leaves it out); any other kind
// of event but a reaction or a nick (edits, deletions, redactions, mutes, channels, keys, roles,
// removals) may change what earlier posts show, so it marks its group for a resync: one fold of
// the group, and sync_group makes the group's rows exactly the posts the fold shows. Resyncs run
// from tick(), within a time budget, so a burst of edits costs one fold per group per tick.
// At start-up every group is resynced, which also fills a new or rebuilt index and repairs what
// a crash between the store's commit and the index's left out.
//
// Hidden members (`qun hide`) are a view filter: their posts stay in the index and `search`
// leaves them out, so `qun unhide` brings them back without a rebuild. A group the node leaves
// goes from the index at once (forget).
//
// Damage: an index that fails with Errc::malformed is deleted and rebuilt (one log line); any
// other failure is logged once until the index works again, and the group is resynced later.
// Search never stops the node.
//
// Not thread-safe; the daemon's loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "base/log.h"
#include "node/replica.h"
#include "search/index.h"

namespace qun::search {

// Index writes wait in memory and go in together, one transaction each (FTS5 writes a segment
// per transaction: one per post would be many small segments to merge): at every tick, before
// every search and resync, and when this many posts wait (a Node delivery holds at most
// limits::batch_events_max events, so a burst of deliveries flushes about once per delivery).
inline constexpr std::size_t pending_posts_max = 512;

// A group with no rows in the index (the index was rebuilt, or the group is new to it) and more
// text than this fills in slices of about this much text, one transaction each, rather than in
// one sync_group, which held the daemon's loop for all of it: 23 s for a group of 300,000 posts
// of 449 bytes (history_bench's texts). The index takes about 4 MB of text a second
// (search_bench: 58,000 posts of 66 bytes; a fill of history_bench's posts: 10,000 of 449
// bytes), so a slice holds the loop about 30 ms.
inline constexpr std::size_t fill_slice_bytes = 128 << 10;
// Work per tick: past this much time, the remaining resyncs and slices wait for the next tick
// (the daemon ticks again search_fill_gap_ms later while there is work: net/daemon.cpp,
// tick_search). A resync is one piece (a fold of a group of 100,000 posts takes about 0.2 s);
// a fill goes a slice at a time. A control request takes a few turns of the loop, so while the
// index fills it waits a few times this long.
inline constexpr std::chrono::milliseconds tick_budget{50};

// The posts of `r` that this node shows and can read, with their current text: from `c`, its
// conversation (Replica::conversation), or a fold of its own.
std::vector<Post> readable_posts(const Replica& r, const Conversation& c);
std::vector<Post> readable_posts(const Replica& r);

class Indexer {
 public:
  struct Hooks {
    // The replica of a group this node holds and searches (not one it is leaving), else null.
    std::function<const Replica*(const Hash&)> replica;
    // Every group this node holds.
    std::function<std::vector<Hash>()> groups;
    // The replica's conversation in that scope, as Replica::conversation gives it; the daemon
    // answers from its cache (node/conversation.h, ConversationCache), so a delivery or a
    // resync folds only what was appended. Unset: a fold of its own each time.
    std::function<const Conversation&(const Replica&, ConversationScope)> conversation;
  };
  Indexer(std::string path, Hooks hooks, LogSink log);

  // Opens the index (rebuilding it when damaged or outdated), drops groups the node no longer
  // holds and marks every group for a resync. When it cannot open at all, search answers
  // with the reason and the node runs on.
  void open();
  // Events the node delivered in group g (Node's Delivered, own events included).
  void on_delivered(const Replica& r, std::span<const Hash> events);
  // Writes what waits (pending_posts_max) to the index.
  void flush();
  // The group's posts may show differently now (it was repaired or reloaded): resync it.
  void mark(const Hash& g) { dirty_.insert(g); }
  // The group is left or dropped: its posts go.
  void forget(const Hash& g);
  // Flushes, then resyncs marked groups and fills groups new to the index (fill_slice_bytes)
  // until tick_budget is spent (at least one resync or slice when there is work).
  void tick();
  // Groups waiting for a resync or being filled (search results may miss or still show some of
  // their posts).
  std::size_t pending() const;
  // Whether a tick now would index something: groups pending and the index working (after a
  // failure, the next housekeeping tick tries again).
  bool working() const { return index_ && !failing_ && pending() > 0; }
  // Errors: those of Index::search, or why the index is not available.
  [[nodiscard]] Result<std::vector<Hit>> search(const Query& query);

 private:
  void failed(const Error& e);
  void succeeded();
  void resync(const Hash& g);
  // Puts the next slice of a group being filled. False when the index failed (the fills may be
  // gone: a rebuild clears them).
  bool fill_slice(const Hash& g);

  std::string path_;
  Hooks hooks_;
  LogSink log_;
  std::unique_ptr<Index> index_;
  std::optional<std::string> unavailable_;  // why index_ is null
  std::set<Hash> dirty_;
  // Groups being filled (fill_slice_bytes): the posts the fold showed when it started, and how
  // many of them are in. Posts delivered meanwhile go in as usual; an edit or deletion marks
  // the group, which is resynced once its fill is done.
  struct Fill {
    std::vector<Post> posts;
    std::size_t next = 0;
  };
  std::map<Hash, Fill> filling_;
  // Waiting writes, applied in this order (an edit or removal of a post waiting to go in
  // finds it in).
  std::vector<Post> puts_;
  std::vector<Post> edits_;
  std::vector<Hash> removals_;
  std::set<Hash> pending_groups_;  // groups with waiting writes, marked again if a flush fails
  bool failing_ = false;  // a failure was logged and nothing has worked since
};

}  // namespace qun::search
