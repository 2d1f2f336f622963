// sim_bench: how well the group overlay spreads events, measured in the deterministic simulator
// (tests/sim/sim.h), for the Plumtree tree (the default OverlayConfig) against naive flooding
// (OverlayConfig::flood) as the baseline.
//
//   sim_bench [--nodes N] [--seed S] [--seeds K] [--posts M] [--interval-ms T] [--prime K]
//             [--loss P] [--churn F] [--overlay both|tree|flood] [--shared-tree]
//             [--new-tree-floods] [--flood-hops H] [--optimize-hops H] [--ihave-delay-ms T]
//             [--graft-timeout-ms T] [--pending-wait-ms T]
//             [--unreachable F] [--relays K] [--punchable P] [--json]
//   sim_bench --groups G [--nodes N] [--seed S] [--group-min K] [--group-max K]
//             [--idle-from-s T] [--idle-s T] [--no-backoff] [--no-share-links] [--json]
//
// --overlay runs one overlay only (the other's figures print as 0); the broadcast variants
// (--shared-tree, --new-tree-floods, --flood-hops, --optimize-hops, --ihave-delay-ms,
// --graft-timeout-ms, --pending-wait-ms:
// OverlayConfig's fields of those names) exist to measure the choices docs/protocol.md's Broadcast section made against
// the alternatives.
//
// --seeds K runs the seeds S, S+1, ..., S+K-1 one after the other and prints, for each figure,
// its mean over the seeds and its worst (the lowest delivery ratio, the highest latency, ...);
// with --json, one line per seed and then one line of means and worsts.
//
// Each overlay runs in its own Simulation built from the same seed and the same calls, so both
// start from the same identities and peer hints. In each:
//  1. Steady state: N nodes in one group (create_big_group), a warm-up (warmup_ms of virtual
//     time, starting with K priming posts so that the tree has pruned, ending with idle_ms with
//     no posts to measure background traffic), then M posts of post_bytes of text from random
//     members, one every T ms, then on until every node has every post (or a deadline), then
//     settle_ms more so that copies still in flight are counted. Over that window:
//     - delivery_ratio: deliveries of the posts at nodes other than the author / (M * (N - 1));
//     - latency (virtual ms from publish to delivery): p50, p99, max; late_deliveries counts
//       those past ihave_delay_ms + graft_timeout_ms, the least an announcement and a graft add
//       (a sign, not a proof, that a graft was needed on the way);
//     - hops: the author is at 0 and a node at one more than the node its Delivered names as
//       `from`; p50, p99, max over all deliveries. A post that waited for a missing parent is
//       delivered with the `from` of the event that completed it, which may not hold the post
//       yet: such deliveries have no hop count (hops_unknown);
//     - ideal_p99_hops: the p99 of shortest-path hop counts from the author over the overlay
//       graph (active peers, made symmetric) at publish time, pooled over the posts;
//     - redundancy: event copies received (NodeStats::events_received) / deliveries;
//     - bytes_per_payload_byte: bytes sent by all nodes (NodeStats::bytes_sent, everything:
//       pushes, announcements, grafts, prunes, shuffles, heads) / (post_bytes * deliveries).
//     With --churn F, F * N nodes (drawn from the seed) each go down once, at a random time
//     within the posts, for churn_down_ms, then restart from their disk and catch up. Posts
//     come from nodes that are up. delivery_ratio counts every node (a churned node must get
//     every post in the end); the other figures are over the nodes never down.
//  2. Partition heal, in the same simulation afterwards: the nodes split into two halves by
//     index (unrelated to the overlay, whose peers are chosen at random), each half posts for
//     partition_ms, the network heals, and heal_convergence_ms is the virtual time until
//     Simulation::converged(), polled every converge_poll_ms (so it is rounded up to that).
//     heal_missing counts the (node, event) pairs that had to move, heal_copies the event
//     copies received from the heal until settle_ms after convergence, and heal_duplicates
//     those of them that the receiver already held: events moved twice (the goal is none).
//
// --unreachable F (issue 14) measures something else: the overlay when a fraction F of the
// members sit behind NAT (Simulation::add_node_behind_nat: nobody can dial them, they dial out)
// and K relays (--relays, open relays named by the group and serving it) are their rendezvous.
// It runs the tree twice from the same seed and calls: once with every member reachable (the
// baseline, the same K relays serving), once with round(F * (N - 1)) members behind NAT, drawn
// from the seed (the founder, whose address is every member's first peer hint, stays
// reachable, as an invite's inviter). The simulator runs on IP addresses (SimConfig::
// ip_addresses), so members learn their public address and find out by dial-back that they are
// behind NAT, then reserve on a relay; a fraction P (--punchable, default 0) of the NATs keep
// ports (Nat::port_preserving: hole punches get through), the others are symmetric. Each run warms up for nat_warmup_ms (reservations on the
// relays, relayed addresses spread by shuffles, relayed links), then M posts every T ms, then on
// until every member has every post (or delivery_deadline_ms), then settle_ms. It reports, per
// run: delivery_ratio (deliveries at members other than the author / (M * (N - 1))), latency
// p50/p99/max and the NAT run's over the baseline's; bytes_per_payload_byte of the members and,
// apart, of the relays (NodeStats::bytes_sent, everything a relay sends: store-and-forward and
// spliced streams); relayed_bytes_per_payload_byte (RelayedStats::relayed_bytes, the stream bytes
// the relays spliced); relayed links per relay (the most any relay carried at any post, and at
// the end: mean and max) and reservations per relay; and, at the end, the member pairs linked
// directly (of them, between two members behind NAT: punched) against those linked through a
// relay, and the hole punches that succeeded and failed.
//
// --groups G measures a node in many groups (issue 13) instead: N nodes (500 suggested), G groups
// whose sizes are uniform in [--group-min, --group-max] (5..200, at most N), members drawn at
// random, each group made with create_big_group. With no posts, the run goes on for
// --idle-from-s of virtual time (the overlay settles and its periodic work backs off), then
// measures --idle-s: bytes sent per node per second (mean, max, and per group a node is in),
// links per node (established connections at the end, shared across groups) against groups per
// node, in bins of groups per node. Then one post in each group from a random member: delivery
// is the share of (post, other member) pairs delivered within delivery_deadline_ms.
// --no-backoff sets OverlayConfig's shuffle_interval_max_ms, sync_interval_max_ms and
// explore_interval_max_ms to their base intervals: the periodic work of every group at its fixed pace, as before the back-off, for a
// baseline in the same binary. --no-share-links sets OverlayConfig::share_links off: active sets
// filled without preferring links other groups use, and never swapped onto them.
//
// Benchmarks never fail CI: the exit status is 1 only when the bench cannot run (bad flags, a
// simulator error). Goals missed are reported, not failed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include "crypto/rng.h"
#include "crypto/secret.h"
#include "node/event.h"
#include "tests/sim/sim.h"

namespace qun {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "sim_bench: %s\n", what.c_str());
  std::exit(1);
}

// Virtual time for the tree to settle: several shuffle and maintenance rounds, and every tree
// link's first duplicate push (which prunes it) long done. Overlay tests warm up for 10 s.
constexpr Millis warmup_ms = 20'000;
// Plumtree prunes a link only when a push over it brings a duplicate, so an idle overlay stays a
// full mesh of eager links: priming posts early in the warm-up (one per prime_interval_ms) build
// the tree before measuring. --prime 0 measures the first posts' tree building instead.
constexpr std::size_t prime_posts_default = 5;
constexpr Millis prime_interval_ms = 1'000;
// The last part of the warm-up, with no posts, measures the overlay's background traffic
// (shuffles, heads exchanges, explores).
constexpr Millis idle_ms = 10'000;
static_assert(prime_posts_default * prime_interval_ms + idle_ms <= warmup_ms);
// Size of each post's text: a short chat message.
constexpr std::size_t post_bytes = 200;
// One post per this much virtual time by default (--interval-ms): a busy group, with several
// posts spreading at once, but far below any link's bandwidth.
constexpr Millis post_interval_ms_default = 100;
// After the last post, how long the posts may take to reach everyone before the run gives up.
constexpr Millis delivery_deadline_ms = 60'000;
// After the last delivery, time for copies still in flight (lazy announcements go out after
// ihave_delay_ms, grafts after graft_timeout_ms) to arrive and be counted.
constexpr Millis settle_ms = 1'000;
// Partition: how long the halves post apart, and one post per side this often.
constexpr Millis partition_ms = 10'000;
constexpr Millis partition_post_interval_ms = 1'000;
// converged() checks every node, so it is polled rather than checked after every step; at a
// quarter of a round trip (SimConfig latency 20 ms one way), fine enough to compare with the
// goal of three round trips.
constexpr Millis converge_poll_ms = 10;
// --churn: a churned node is down this long (a restart, a laptop lid closed and opened), then
// restarts from its disk and catches up.
constexpr Millis churn_down_ms = 2'000;
// Past this after the heal, the run reports no convergence (three explore intervals).
constexpr Millis converge_deadline_ms = 60'000;

// --groups: the idle window starts this late by default: the periodic work of a settled overlay
// backs off over several minutes (the shuffle interval doubles from 10 s up to
// OverlayConfig::shuffle_interval_max_ms, 320 s, in 310 s), and the window should see it settled.
constexpr Millis groups_idle_from_ms_default = 600'000;
// ... and lasts this long by default: several of the longest backed-off intervals.
constexpr Millis groups_idle_ms_default = 600'000;
// Groups at most with --groups: 200 is the example; 1,000 keeps a run within minutes.
constexpr std::size_t groups_max = 1'000;
// Bins of the links-against-groups table: nodes in [k * bin, (k + 1) * bin) groups.
constexpr std::size_t groups_bin = 10;

// --seeds at most: a hundred runs of the default 100 nodes take about an hour here.
constexpr std::size_t seeds_max = 100;

// --unreachable: members behind NAT reserve on a relay at once (they have no listening address)
// but learn each other's relayed addresses only from shuffles (shuffle_interval_ms, 10 s) and
// link through the relay after that: a minute covers several rounds (the relayed sim test links
// two members within 30 s).
constexpr Millis nat_warmup_ms = 60'000;
// At most this fraction behind NAT: at least one member in twenty must be dialable besides the
// founder for the overlay to be more than a star around it.
constexpr double nat_unreachable_max = 0.95;
// --relays at most: a group names a handful of relays (wire_limits bounds the relay events a
// hello carries far above this); sixteen is more than any community runs.
constexpr std::size_t nat_relays_max = 16;

struct Options {
  std::size_t nodes = 100;
  std::uint64_t seed = 1;
  std::size_t seeds = 1;
  std::size_t posts = 50;
  std::size_t prime = prime_posts_default;
  Millis interval_ms = post_interval_ms_default;
  double loss = 0.0;
  double churn = 0.0;  // fraction of the nodes that go down once during the posts
  bool json = false;
  bool run_tree = true, run_flood = true;  // --overlay
  bool shared_tree = false;                // --shared-tree: one tree for every author
  bool new_tree_floods = false;            // --new-tree-floods
  std::uint32_t optimize_hops = 0;         // --optimize-hops H (tree_optimize_hops)
  std::optional<std::uint32_t> flood_hops;  // --flood-hops H (new_tree_flood_hops)
  std::optional<Millis> ihave_delay_ms;     // --ihave-delay-ms T
  std::optional<Millis> graft_timeout_ms;   // --graft-timeout-ms T
  std::optional<Millis> pending_wait_ms;    // --pending-wait-ms T
  std::optional<double> unreachable;        // --unreachable F: the NAT mode (run_nat)
  std::size_t relays = 0;                   // --relays K (NAT mode only)
  double punchable = 0;                     // --punchable P (NAT mode only)
  // --groups mode (run_groups): groups, their size range, the idle window.
  std::size_t groups = 0;
  std::size_t group_min = 5, group_max = 200;
  Millis idle_from_ms = groups_idle_from_ms_default;
  Millis groups_idle_ms = groups_idle_ms_default;
  bool no_backoff = false;
  bool no_share_links = false;  // --groups: OverlayConfig::share_links off, to compare
};

struct Percentiles {
  double p50 = 0, p99 = 0, max = 0;
};

// Nearest-rank percentiles (0 for an empty sample).
Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) {
    const auto r = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::max<std::size_t>(r, 1) - 1];
  };
  p.p50 = rank(0.50);
  p.p99 = rank(0.99);
  p.max = v.back();
  return p;
}

struct Measured {
  double delivery_ratio = 0;
  std::uint64_t deliveries = 0;
  std::uint64_t deliveries_expected = 0;
  double redundancy = 0;
  Percentiles hops, ms, ideal_hops;
  double mean_hops = 0, ideal_mean_hops = 0;
  std::uint64_t hops_unknown = 0;  // deliveries whose `from` had no hop count
  double bytes_per_payload_byte = 0;
  std::uint64_t events_received = 0, events_duplicate = 0, bytes_sent = 0;
  Millis window_ms = 0;
  double mean_active = 0;
  std::size_t isolated_nodes = 0;     // with no active peer at the first post
  double idle_bytes_per_s = 0;        // sent by all nodes together, with no posts
  double post_event_bytes = 0;        // a post's encoded event, mean
  std::uint64_t late_deliveries = 0;  // later than ihave_delay_ms + graft_timeout_ms
  std::optional<Millis> heal_convergence_ms;
  std::uint64_t heal_missing = 0;     // (node, event) pairs lacking at the heal
  std::uint64_t heal_copies = 0;      // event copies received from the heal until settled
  std::uint64_t heal_duplicates = 0;  // of them, copies of events the receiver held (moved twice)
  std::size_t churned_nodes = 0;
  std::uint64_t churned_deliveries = 0;  // at churned nodes: counted in delivery_ratio only
  double runtime_s = 0;
};

struct Counters {
  std::uint64_t bytes_sent = 0, events_received = 0, events_duplicate = 0;
};

// Over the nodes marked in `only` (all when empty) that are up: a restarted node's counters
// start again from zero, so churned nodes are left out of the figures made from these.
Counters counters(sim::Simulation& sim, const std::vector<bool>& only = {}) {
  Counters c;
  for (std::size_t i = 0; i < sim.size(); ++i) {
    if (!sim.online(i) || (!only.empty() && !only[i])) continue;
    const NodeStats& s = sim.node(i).stats();
    c.bytes_sent += s.bytes_sent;
    c.events_received += s.events_received;
    c.events_duplicate += s.events_duplicate;
  }
  return c;
}

// The overlay graph of `group` now: node i links to j if either names the other active.
std::vector<std::vector<std::size_t>> overlay_graph(sim::Simulation& sim, const Hash& group) {
  std::vector<std::vector<std::size_t>> adj(sim.size());
  for (std::size_t i = 0; i < sim.size(); ++i) {
    if (!sim.online(i)) continue;
    for (const PublicKey& p : sim.node(i).active_peers(group)) {
      const std::optional<std::size_t> j = sim.find(p);
      if (!j || *j == i) continue;
      adj[i].push_back(*j);
      adj[*j].push_back(i);
    }
  }
  for (auto& a : adj) {
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
  }
  return adj;
}

// Shortest-path hop counts from `root` (nullopt where unreachable).
std::vector<std::optional<std::size_t>> bfs(const std::vector<std::vector<std::size_t>>& adj,
                                            std::size_t root) {
  std::vector<std::optional<std::size_t>> dist(adj.size());
  std::vector<std::size_t> frontier{root};
  dist[root] = 0;
  for (std::size_t head = 0; head < frontier.size(); ++head) {
    const std::size_t u = frontier[head];
    for (std::size_t v : adj[u]) {
      if (dist[v]) continue;
      dist[v] = *dist[u] + 1;
      frontier.push_back(v);
    }
  }
  return dist;
}

std::string random_text(Rng& rng, std::size_t bytes) {
  std::string s(bytes, ' ');
  for (auto& c : s) c = static_cast<char>('a' + rng.uniform(26));
  return s;
}

Measured run(const Options& o, bool flood) {
  const auto start = Clock::now();
  Measured r;
  sim::SimConfig config;
  config.seed = o.seed;
  config.loss = o.loss;
  config.keep_disk = o.churn > 0;  // restarts need it
  config.record_deliveries = true;
  sim::Simulation sim(config);
  NodeConfig node_config;
  node_config.overlay.flood = flood;
  node_config.overlay.tree_per_author = !o.shared_tree;
  node_config.overlay.new_tree_floods = o.new_tree_floods;
  node_config.overlay.tree_optimize_hops = o.optimize_hops;
  if (o.flood_hops) node_config.overlay.new_tree_flood_hops = *o.flood_hops;
  if (o.ihave_delay_ms) node_config.overlay.ihave_delay_ms = *o.ihave_delay_ms;
  if (o.graft_timeout_ms) node_config.overlay.graft_timeout_ms = *o.graft_timeout_ms;
  if (o.pending_wait_ms) node_config.overlay.pending_wait_ms = *o.pending_wait_ms;
  std::vector<std::size_t> members;
  for (std::size_t i = 0; i < o.nodes; ++i) members.push_back(sim.add_node(node_config));
  const Hash g = sim.create_big_group(members);
  // Who posts and what: from the seed, independent of the overlay's own randomness.
  Rng rng = Rng::from_u64(o.seed ^ 0x73696d62656e6368);  // "simbench"
  const Millis warm_start = sim.now();
  for (std::size_t k = 0; k < o.prime; ++k) {
    sim.run_until(warm_start + static_cast<Millis>(k) * prime_interval_ms);
    (void)sim.post(rng.uniform(o.nodes), g, random_text(rng, post_bytes));
  }
  sim.run_until(warm_start + warmup_ms - idle_ms);
  const Counters idle_before = counters(sim);
  sim.run_until(warm_start + warmup_ms);
  r.idle_bytes_per_s = static_cast<double>(counters(sim).bytes_sent - idle_before.bytes_sent) *
                       1000.0 / static_cast<double>(idle_ms);
  struct Post {
    Hash id;
    std::size_t author;
    Millis at;
    std::vector<std::optional<std::size_t>> ideal;  // shortest-path hops from the author
  };
  std::vector<Post> posts;
  std::map<Hash, std::size_t> post_index;
  std::set<std::pair<std::size_t, std::size_t>> delivered;  // (node, post), at non-authors
  sim.on_delivered([&](std::size_t node, const Hash& group, const std::vector<Hash>& ids, Millis) {
    if (group != g) return;
    for (const Hash& id : ids) {
      auto p = post_index.find(id);
      if (p != post_index.end() && posts[p->second].author != node)
        delivered.emplace(node, p->second);
    }
  });

  // Churn: churn * N nodes, drawn from the seed, each down once for churn_down_ms from a random
  // time within the posts. The figures but delivery_ratio are over the nodes never down.
  struct Change {
    Millis at;
    std::size_t node;
    bool up;
    bool operator<(const Change& c) const { return std::tie(at, node, up) < std::tie(c.at, c.node, c.up); }
  };
  std::vector<Change> changes;
  std::vector<bool> stable(o.nodes, true);
  const Millis window_start = sim.now();
  const Millis posts_ms = static_cast<Millis>(o.posts) * o.interval_ms;
  const auto churned = static_cast<std::size_t>(std::llround(o.churn * static_cast<double>(o.nodes)));
  while (r.churned_nodes < churned) {
    const std::size_t i = rng.uniform(o.nodes);
    if (!stable[i]) continue;
    stable[i] = false;
    ++r.churned_nodes;
    const Millis at = window_start + static_cast<Millis>(rng.uniform(static_cast<std::uint64_t>(posts_ms)));
    changes.push_back({at, i, false});
    changes.push_back({at + churn_down_ms, i, true});
  }
  std::sort(changes.begin(), changes.end());
  std::size_t next_change = 0;
  // Runs to `t`, taking nodes down and up on the way.
  auto advance = [&](Millis t) {
    for (; next_change < changes.size() && changes[next_change].at <= t; ++next_change) {
      const Change& c = changes[next_change];
      sim.run_until(c.at);
      if (c.up) {
        sim.restart(c.node);
      } else {
        sim.crash(c.node);
      }
    }
    sim.run_until(t);
  };

  const Counters before = counters(sim, stable);
  const std::size_t log_start = sim.delivery_log().size();
  for (std::size_t k = 0; k < o.posts; ++k) {
    advance(window_start + static_cast<Millis>(k) * o.interval_ms);
    const auto adj = overlay_graph(sim, g);
    if (k == 0) {
      std::size_t links = 0;
      for (const auto& a : adj) {
        links += a.size();
        if (a.empty()) ++r.isolated_nodes;
      }
      r.mean_active = static_cast<double>(links) / static_cast<double>(adj.size());
    }
    std::size_t author = rng.uniform(o.nodes);
    while (!sim.online(author)) author = rng.uniform(o.nodes);
    Post p{{}, author, sim.now(), bfs(adj, author)};
    // The author's own Delivered fires inside post(), before the id is known: it is not counted.
    p.id = sim.post(author, g, random_text(rng, post_bytes)).back();
    r.post_event_bytes +=
        static_cast<double>(encode(sim.node(author).group(g)->group().find(p.id)->event).size());
    post_index.emplace(p.id, posts.size());
    posts.push_back(std::move(p));
  }
  r.post_event_bytes /= static_cast<double>(o.posts);
  const std::uint64_t expected = static_cast<std::uint64_t>(o.posts) * (o.nodes - 1);
  if (!changes.empty()) advance(changes.back().at);
  (void)sim.run_until([&] { return delivered.size() == expected; },
                      sim.now() + delivery_deadline_ms);
  sim.run_for(settle_ms);
  const Counters after = counters(sim, stable);
  r.window_ms = sim.now() - window_start;

  // Hops and latency from the delivery log, in delivery order: a node's `from` delivered the
  // post before it.
  std::vector<std::vector<std::optional<std::size_t>>> hop(
      posts.size(), std::vector<std::optional<std::size_t>>(o.nodes));
  for (std::size_t k = 0; k < posts.size(); ++k) hop[k][posts[k].author] = 0;
  std::vector<double> hops, ms, ideal;
  const auto& log = sim.delivery_log();
  std::uint64_t stable_deliveries = 0;
  for (std::size_t i = log_start; i < log.size(); ++i) {
    const sim::Delivery& d = log[i];
    if (d.group != g) continue;
    auto p = post_index.find(d.event);
    if (p == post_index.end()) continue;
    const std::size_t k = p->second;
    if (d.node == posts[k].author) continue;
    if (!stable[d.node]) {
      if (d.from && hop[k][*d.from]) hop[k][d.node] = *hop[k][*d.from] + 1;
      continue;
    }
    ++stable_deliveries;
    ms.push_back(static_cast<double>(d.at - posts[k].at));
    if (d.at - posts[k].at > node_config.overlay.ihave_delay_ms + node_config.overlay.graft_timeout_ms)
      ++r.late_deliveries;
    if (d.from && hop[k][*d.from]) {
      hop[k][d.node] = *hop[k][*d.from] + 1;
      hops.push_back(static_cast<double>(*hop[k][d.node]));
    } else {
      ++r.hops_unknown;
    }
  }
  r.deliveries = delivered.size();
  r.churned_deliveries = r.deliveries - stable_deliveries;
  for (const Post& p : posts) {
    for (std::size_t i = 0; i < p.ideal.size(); ++i) {
      if (i != p.author && p.ideal[i] && stable[i]) ideal.push_back(static_cast<double>(*p.ideal[i]));
    }
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  r.deliveries_expected = expected;
  r.delivery_ratio = static_cast<double>(r.deliveries) / static_cast<double>(expected);
  r.hops = percentiles(hops);
  r.mean_hops = mean(hops);
  r.ms = percentiles(ms);
  r.ideal_hops = percentiles(ideal);
  r.ideal_mean_hops = mean(ideal);
  r.events_received = after.events_received - before.events_received;
  r.events_duplicate = after.events_duplicate - before.events_duplicate;
  r.bytes_sent = after.bytes_sent - before.bytes_sent;
  const double deliveries = static_cast<double>(std::max<std::uint64_t>(stable_deliveries, 1));
  r.redundancy = static_cast<double>(r.events_received) / deliveries;
  r.bytes_per_payload_byte =
      static_cast<double>(r.bytes_sent) / (static_cast<double>(post_bytes) * deliveries);

  // Partition heal.
  sim.on_delivered(nullptr);
  std::vector<std::size_t> left, right;
  for (std::size_t i = 0; i < o.nodes; ++i) (i < o.nodes / 2 ? left : right).push_back(i);
  sim.partition({left, right});
  const Millis split_at = sim.now();
  std::vector<Hash> split_events;
  for (Millis t = 0; t < partition_ms; t += partition_post_interval_ms) {
    sim.run_until(split_at + t);
    for (const auto* side : {&left, &right}) {
      for (const Hash& id : sim.post((*side)[rng.uniform(side->size())], g,
                                     random_text(rng, post_bytes)))
        split_events.push_back(id);
    }
  }
  sim.run_until(split_at + partition_ms);
  for (const Hash& id : split_events) r.heal_missing += o.nodes - sim.holders(g, id);
  const Counters heal_before = counters(sim);
  sim.heal();
  const Millis healed_at = sim.now();
  while (sim.now() - healed_at <= converge_deadline_ms) {
    if (sim.converged(g)) {
      r.heal_convergence_ms = sim.now() - healed_at;
      break;
    }
    sim.run_for(converge_poll_ms);
  }
  sim.run_for(settle_ms);
  const Counters heal_after = counters(sim);
  r.heal_copies = heal_after.events_received - heal_before.events_received;
  r.heal_duplicates = heal_after.events_duplicate - heal_before.events_duplicate;
  r.runtime_s = seconds_since(start);
  return r;
}

// --groups: what many groups cost an idle node, and whether a post in each still reaches every
// member (see the header comment).
struct GroupsMeasured {
  double groups_per_node_mean = 0;
  std::size_t groups_per_node_max = 0;
  double links_per_node_mean = 0;
  std::size_t links_per_node_max = 0;
  double idle_bytes_per_s_per_node_mean = 0;
  double idle_bytes_per_s_per_node_max = 0;
  // Idle bytes a node sends per second per group it is in (mean over nodes in at least one).
  double idle_bytes_per_s_per_group = 0;
  // Bins of groups per node: nodes, mean groups, mean links, mean idle bytes/s.
  struct Bin {
    std::size_t nodes = 0;
    double groups = 0, links = 0, bytes_per_s = 0;
  };
  std::vector<Bin> bins;
  double delivery_ratio = 0;
  std::uint64_t deliveries = 0, deliveries_expected = 0;
  double runtime_s = 0;
};

GroupsMeasured run_groups(const Options& o) {
  const auto start = Clock::now();
  GroupsMeasured r;
  sim::SimConfig config;
  config.seed = o.seed;
  config.keep_disk = false;
  config.record_deliveries = false;
  sim::Simulation sim(config);
  NodeConfig node_config;
  if (o.no_backoff) {
    node_config.overlay.shuffle_interval_max_ms = node_config.overlay.shuffle_interval_ms;
    node_config.overlay.sync_interval_max_ms = node_config.overlay.sync_interval_ms;
    node_config.overlay.explore_interval_max_ms = node_config.overlay.explore_interval_ms;
  }
  node_config.overlay.share_links = !o.no_share_links;
  for (std::size_t i = 0; i < o.nodes; ++i) (void)sim.add_node(node_config);
  Rng rng = Rng::from_u64(o.seed ^ 0x67726f757073);  // "groups"
  std::vector<Hash> groups;
  std::vector<std::vector<std::size_t>> members;
  std::vector<std::size_t> in_groups(o.nodes, 0);
  const std::size_t hi = std::min(o.group_max, o.nodes);
  const std::size_t lo = std::min(o.group_min, hi);
  for (std::size_t k = 0; k < o.groups; ++k) {
    std::vector<std::size_t> all(o.nodes);
    for (std::size_t i = 0; i < o.nodes; ++i) all[i] = i;
    for (std::size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[rng.uniform(i)]);
    all.resize(lo + rng.uniform(hi - lo + 1));
    for (std::size_t m : all) ++in_groups[m];
    groups.push_back(sim.create_big_group(all));
    members.push_back(std::move(all));
  }
  sim.run_until(o.idle_from_ms);
  std::vector<std::uint64_t> before(o.nodes);
  for (std::size_t i = 0; i < o.nodes; ++i) before[i] = sim.node(i).stats().bytes_sent;
  sim.run_until(o.idle_from_ms + o.groups_idle_ms);
  std::vector<double> rate(o.nodes);
  std::vector<std::size_t> links(o.nodes, 0);
  double per_group_sum = 0;
  std::size_t in_any = 0;
  for (std::size_t i = 0; i < o.nodes; ++i) {
    rate[i] = static_cast<double>(sim.node(i).stats().bytes_sent - before[i]) * 1000.0 /
              static_cast<double>(o.groups_idle_ms);
    for (const auto& p : sim.node(i).peers()) links[i] += p.established ? 1 : 0;
    r.groups_per_node_mean += static_cast<double>(in_groups[i]);
    r.groups_per_node_max = std::max(r.groups_per_node_max, in_groups[i]);
    r.links_per_node_mean += static_cast<double>(links[i]);
    r.links_per_node_max = std::max(r.links_per_node_max, links[i]);
    r.idle_bytes_per_s_per_node_mean += rate[i];
    r.idle_bytes_per_s_per_node_max = std::max(r.idle_bytes_per_s_per_node_max, rate[i]);
    if (in_groups[i] > 0) {
      per_group_sum += rate[i] / static_cast<double>(in_groups[i]);
      ++in_any;
    }
    const std::size_t b = in_groups[i] / groups_bin;
    if (r.bins.size() <= b) r.bins.resize(b + 1);
    auto& bin = r.bins[b];
    ++bin.nodes;
    bin.groups += static_cast<double>(in_groups[i]);
    bin.links += static_cast<double>(links[i]);
    bin.bytes_per_s += rate[i];
  }
  const auto n = static_cast<double>(o.nodes);
  r.groups_per_node_mean /= n;
  r.links_per_node_mean /= n;
  r.idle_bytes_per_s_per_node_mean /= n;
  r.idle_bytes_per_s_per_group = in_any ? per_group_sum / static_cast<double>(in_any) : 0;
  for (auto& bin : r.bins) {
    if (bin.nodes == 0) continue;
    bin.groups /= static_cast<double>(bin.nodes);
    bin.links /= static_cast<double>(bin.nodes);
    bin.bytes_per_s /= static_cast<double>(bin.nodes);
  }

  // One post in each group, from a random member, all at once.
  std::map<Hash, std::size_t> post_group;  // post id -> group index
  std::set<std::pair<std::size_t, Hash>> delivered;  // (node, post), at non-authors
  std::vector<std::size_t> authors(o.groups);
  sim.on_delivered([&](std::size_t node, const Hash&, const std::vector<Hash>& ids, Millis) {
    for (const Hash& id : ids) {
      auto p = post_group.find(id);
      if (p != post_group.end() && authors[p->second] != node) delivered.emplace(node, id);
    }
  });
  for (std::size_t k = 0; k < o.groups; ++k) {
    authors[k] = members[k][rng.uniform(members[k].size())];
    const auto ids = sim.post(authors[k], groups[k], random_text(rng, post_bytes));
    post_group[ids.back()] = k;
    r.deliveries_expected += members[k].size() - 1;
  }
  (void)sim.run_until([&] { return delivered.size() >= r.deliveries_expected; },
                      sim.now() + delivery_deadline_ms);
  r.deliveries = delivered.size();
  r.delivery_ratio = r.deliveries_expected
                         ? static_cast<double>(r.deliveries) /
                               static_cast<double>(r.deliveries_expected)
                         : 1.0;
  r.runtime_s = seconds_since(start);
  return r;
}

void print_groups(const Options& o, const GroupsMeasured& r) {
  if (o.json) {
    std::printf(
        "{\"nodes\": %zu, \"seed\": %llu, \"groups\": %zu, \"group_min\": %zu, \"group_max\": %zu, "
        "\"idle_from_s\": %lld, \"idle_s\": %lld, \"no_backoff\": %s, \"groups_per_node_mean\": %.2f, "
        "\"groups_per_node_max\": %zu, \"links_per_node_mean\": %.2f, \"links_per_node_max\": %zu, "
        "\"idle_bytes_per_s_per_node_mean\": %.0f, \"idle_bytes_per_s_per_node_max\": %.0f, "
        "\"idle_bytes_per_s_per_group\": %.1f, \"delivery_ratio\": %.6f, \"runtime_s\": %.1f, "
        "\"bins\": [",
        o.nodes, static_cast<unsigned long long>(o.seed), o.groups, o.group_min, o.group_max,
        static_cast<long long>(o.idle_from_ms / 1000), static_cast<long long>(o.groups_idle_ms / 1000),
        o.no_backoff ? "true" : "false", r.groups_per_node_mean, r.groups_per_node_max, r.links_per_node_mean, r.links_per_node_max,
        r.idle_bytes_per_s_per_node_mean, r.idle_bytes_per_s_per_node_max,
        r.idle_bytes_per_s_per_group, r.delivery_ratio, r.runtime_s);
    bool first = true;
    for (const auto& b : r.bins) {
      if (b.nodes == 0) continue;
      std::printf("%s{\"nodes\": %zu, \"groups\": %.1f, \"links\": %.1f, \"bytes_per_s\": %.0f}",
                  first ? "" : ", ", b.nodes, b.groups, b.links, b.bytes_per_s);
      first = false;
    }
    std::printf("]}\n");
    return;
  }
  std::printf(
      "sim_bench --groups: %zu nodes, seed %llu, %zu groups of %zu..%zu members, idle window "
      "%lld s from %lld s%s%s\n",
      o.nodes, static_cast<unsigned long long>(o.seed), o.groups, o.group_min, o.group_max,
      static_cast<long long>(o.groups_idle_ms / 1000), static_cast<long long>(o.idle_from_ms / 1000),
      o.no_backoff ? ", no back-off" : "", o.no_share_links ? ", links not shared" : "");
  std::printf("%-34s %10.2f (max %zu)\n", "groups per node", r.groups_per_node_mean,
              r.groups_per_node_max);
  std::printf("%-34s %10.2f (max %zu)\n", "links per node", r.links_per_node_mean,
              r.links_per_node_max);
  std::printf("%-34s %10.0f (max %.0f)\n", "idle bytes/s per node", r.idle_bytes_per_s_per_node_mean,
              r.idle_bytes_per_s_per_node_max);
  std::printf("%-34s %10.1f\n", "idle bytes/s per node per group", r.idle_bytes_per_s_per_group);
  std::printf("%-34s %10.6f (%llu of %llu)\n", "delivery ratio (a post per group)",
              r.delivery_ratio, static_cast<unsigned long long>(r.deliveries),
              static_cast<unsigned long long>(r.deliveries_expected));
  std::printf("%-34s %10.1f\n", "runtime s", r.runtime_s);
  std::printf("%12s %8s %14s %14s %16s\n", "groups/node", "nodes", "mean groups", "mean links",
              "idle bytes/s");
  for (std::size_t k = 0; k < r.bins.size(); ++k) {
    const auto& b = r.bins[k];
    if (b.nodes == 0) continue;
    std::printf("%5zu..%-6zu %8zu %14.1f %14.1f %16.0f\n", k * groups_bin,
                (k + 1) * groups_bin - 1, b.nodes, b.groups, b.links, b.bytes_per_s);
  }
}

Options parse(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> const char* {
    if (i + 1 >= argc) die(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  auto number = [&](int& i) -> std::uint64_t {
    const char* s = value(i);
    char* end = nullptr;
    const std::uint64_t v = std::strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0') die(std::string("not a number: ") + s);
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--nodes") {
      o.nodes = number(i);
    } else if (a == "--seed") {
      o.seed = number(i);
    } else if (a == "--seeds") {
      o.seeds = number(i);
    } else if (a == "--posts") {
      o.posts = number(i);
    } else if (a == "--interval-ms") {
      o.interval_ms = number(i);
    } else if (a == "--prime") {
      o.prime = number(i);
    } else if (a == "--loss") {
      const char* s = value(i);
      char* end = nullptr;
      o.loss = std::strtod(s, &end);
      if (*s == '\0' || *end != '\0') die(std::string("not a number: ") + s);
    } else if (a == "--churn") {
      const char* s = value(i);
      char* end = nullptr;
      o.churn = std::strtod(s, &end);
      if (*s == '\0' || *end != '\0') die(std::string("not a number: ") + s);
    } else if (a == "--overlay") {
      const std::string v = value(i);
      if (v != "both" && v != "tree" && v != "flood") die("--overlay is both, tree or flood");
      o.run_tree = v != "flood";
      o.run_flood = v != "tree";
    } else if (a == "--shared-tree") {
      o.shared_tree = true;
    } else if (a == "--new-tree-floods") {
      o.new_tree_floods = true;
    } else if (a == "--ihave-delay-ms") {
      o.ihave_delay_ms = static_cast<Millis>(number(i));
    } else if (a == "--graft-timeout-ms") {
      o.graft_timeout_ms = static_cast<Millis>(number(i));
    } else if (a == "--pending-wait-ms") {
      o.pending_wait_ms = static_cast<Millis>(number(i));
    } else if (a == "--flood-hops") {
      o.flood_hops = static_cast<std::uint32_t>(number(i));
    } else if (a == "--optimize-hops") {
      o.optimize_hops = static_cast<std::uint32_t>(number(i));
    } else if (a == "--unreachable") {
      o.unreachable = std::strtod(value(i), nullptr);
    } else if (a == "--punchable") {
      o.punchable = std::strtod(value(i), nullptr);
    } else if (a == "--relays") {
      o.relays = std::strtoull(value(i), nullptr, 10);
    } else if (a == "--groups") {
      o.groups = number(i);
    } else if (a == "--group-min") {
      o.group_min = number(i);
    } else if (a == "--group-max") {
      o.group_max = number(i);
    } else if (a == "--idle-from-s") {
      o.idle_from_ms = static_cast<Millis>(number(i)) * 1000;
    } else if (a == "--no-backoff") {
      o.no_backoff = true;
    } else if (a == "--no-share-links") {
      o.no_share_links = true;
    } else if (a == "--idle-s") {
      o.groups_idle_ms = static_cast<Millis>(number(i)) * 1000;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: sim_bench [--nodes N (default 100)] [--seed S (default 1)] "
          "[--seeds K (seeds S..S+K-1; mean and worst, default 1)] [--posts M (default 50)] "
          "[--interval-ms T (default 100)] "
          "[--prime K (warm-up posts, default 5)] "
          "[--loss P (0..0.5, default 0)] [--churn F (0..0.5, default 0)] [--overlay both|tree|flood (default both)] "
          "[--shared-tree (one tree for every author)] [--new-tree-floods] "
          "[--optimize-hops H (tree optimisation, default 0: off)] "
          "[--flood-hops H (new_tree_flood_hops, default OverlayConfig's)] "
          "[--ihave-delay-ms T (default OverlayConfig's)] [--graft-timeout-ms T (default OverlayConfig's)] "
          "[--pending-wait-ms T (default OverlayConfig's)] "
          "[--unreachable F (0..0.95: that fraction behind NAT, against all reachable)] "
          "[--relays K (0..16, with --unreachable)] "
          "[--punchable P (0..1: NATs that keep ports, with --unreachable; default 0)] [--json]\n"
          "       sim_bench --groups G [--nodes N] [--seed S] [--group-min K (default 5)] "
          "[--group-max K (default 200)] [--idle-from-s T (default 600)] "
          "[--idle-s T (default 600)] [--no-backoff] [--no-share-links] [--json]\n");
      std::exit(0);
    } else {
      die("unknown option " + a + " (see --help)");
    }
  }
  if (o.nodes < 4 || o.nodes > 10'000) die("--nodes is 4..10000");
  if (o.posts < 1 || o.posts > 10'000) die("--posts is 1..10000");
  if (o.seeds < 1 || o.seeds > seeds_max) die("--seeds is 1.." + std::to_string(seeds_max));
  if (o.interval_ms < 1 || o.interval_ms > 60'000) die("--interval-ms is 1..60000");
  if (o.prime > prime_posts_default) die("--prime is 0..5");
  if (!(o.loss >= 0 && o.loss <= 0.5)) die("--loss is 0..0.5");
  if (!(o.churn >= 0 && o.churn <= 0.5)) die("--churn is 0..0.5");
  if (o.unreachable && !(*o.unreachable >= 0 && *o.unreachable <= nat_unreachable_max))
    die("--unreachable is 0..0.95");
  if (o.relays > nat_relays_max) die("--relays is 0..16");
  if (o.relays > 0 && !o.unreachable) die("--relays goes with --unreachable");
  if (!(o.punchable >= 0 && o.punchable <= 1)) die("--punchable is 0..1");
  if (o.punchable > 0 && !o.unreachable) die("--punchable goes with --unreachable");
  if (o.unreachable && (o.churn > 0 || o.seeds > 1))
    die("--unreachable runs one seed without churn");
  if (o.groups > groups_max) die("--groups is 0.." + std::to_string(groups_max));
  if (o.groups > 0 && o.unreachable) die("--groups and --unreachable are separate runs");
  if (o.group_min < 2 || o.group_min > o.group_max) die("--group-min is 2..--group-max");
  if (o.groups_idle_ms < 1'000) die("--idle-s is at least 1");
  return o;
}

double ratio(double a, double b) { return b == 0 ? 0 : a / b; }

void print_json(const Options& o, const Measured& t, const Measured& f) {
  auto heal = [](const Measured& r) {
    return r.heal_convergence_ms ? std::to_string(*r.heal_convergence_ms) : std::string("null");
  };
  auto fields = [&](const char* p, const Measured& r) {
    std::printf(
        "\"%sdelivery_ratio\": %.6f, \"%sredundancy\": %.3f, \"%sp50_hops\": %.0f, "
        "\"%sp99_hops\": %.0f, \"%sideal_p99_hops\": %.0f, \"%sp99_ms\": %.0f, "
        "\"%sbytes_per_payload_byte\": %.2f, \"%sheal_convergence_ms\": %s, \"%sp50_ms\": %.0f, "
        "\"%smax_ms\": %.0f, \"%smax_hops\": %.0f, \"%smean_hops\": %.2f, "
        "\"%sideal_mean_hops\": %.2f, \"%sevents_duplicate\": %llu, \"%smean_active\": %.2f, "
        "\"%sidle_bytes_per_s\": %.0f, \"%spost_event_bytes\": %.0f, \"%slate_deliveries\": %llu, "
        "\"%shops_unknown\": %llu, \"%sheal_missing\": %llu, \"%sheal_copies\": %llu, "
        "\"%sheal_duplicates\": %llu, \"%schurned_nodes\": %zu, \"%schurned_deliveries\": %llu, "
        "\"%sruntime_s\": %.2f",
        p, r.delivery_ratio, p, r.redundancy, p, r.hops.p50, p, r.hops.p99, p, r.ideal_hops.p99, p,
        r.ms.p99, p, r.bytes_per_payload_byte, p, heal(r).c_str(), p, r.ms.p50, p, r.ms.max, p,
        r.hops.max, p, r.mean_hops, p, r.ideal_mean_hops, p,
        static_cast<unsigned long long>(r.events_duplicate), p, r.mean_active, p,
        r.idle_bytes_per_s, p, r.post_event_bytes, p,
        static_cast<unsigned long long>(r.late_deliveries), p,
        static_cast<unsigned long long>(r.hops_unknown), p,
        static_cast<unsigned long long>(r.heal_missing), p,
        static_cast<unsigned long long>(r.heal_copies), p,
        static_cast<unsigned long long>(r.heal_duplicates), p, r.churned_nodes, p,
        static_cast<unsigned long long>(r.churned_deliveries), p, r.runtime_s);
  };
  std::printf(
      "{\"nodes\": %zu, \"seed\": %llu, \"posts\": %zu, \"prime\": %zu, \"interval_ms\": %lld, "
      "\"loss\": %g, \"churn\": %g, ",
      o.nodes, static_cast<unsigned long long>(o.seed), o.posts, o.prime,
      static_cast<long long>(o.interval_ms), o.loss, o.churn);
  fields("", t);
  std::printf(", ");
  fields("flood_", f);
  std::printf("}\n");
}

void print_table(const Options& o, const Measured& t, const Measured& f) {
  std::printf(
      "sim_bench: %zu nodes, seed %llu, %zu posts of %zu bytes every %lld ms, loss %g, churn %g, "
      "warm-up %lld ms with %zu priming posts\n",
      o.nodes, static_cast<unsigned long long>(o.seed), o.posts, post_bytes,
      static_cast<long long>(o.interval_ms), o.loss, o.churn, static_cast<long long>(warmup_ms),
      o.prime);
  std::printf("%-26s %12s %12s %10s  %s\n", "measure", "tree", "flood", "tree/flood",
              "goal (tree)");
  auto row = [](const char* name, double a, double b, const char* fmt, const char* goal) {
    char ta[32], tb[32];
    std::snprintf(ta, sizeof ta, fmt, a);
    std::snprintf(tb, sizeof tb, fmt, b);
    std::printf("%-26s %12s %12s %10.3f  %s\n", name, ta, tb, ratio(a, b), goal);
  };
  row("delivery_ratio", t.delivery_ratio, f.delivery_ratio, "%.6f", "1 (>= 0.9999 with loss, churn)");
  row("redundancy", t.redundancy, f.redundancy, "%.3f", "<= 1.10");
  row("p50_hops", t.hops.p50, f.hops.p50, "%.0f", "");
  row("p99_hops", t.hops.p99, f.hops.p99, "%.0f", "<= 1.5 x ideal_p99_hops");
  row("max_hops", t.hops.max, f.hops.max, "%.0f", "");
  row("mean_hops", t.mean_hops, f.mean_hops, "%.2f", "");
  row("ideal_p99_hops", t.ideal_hops.p99, f.ideal_hops.p99, "%.0f", "");
  row("ideal_mean_hops", t.ideal_mean_hops, f.ideal_mean_hops, "%.2f", "");
  row("p50_ms", t.ms.p50, f.ms.p50, "%.0f", "");
  row("p99_ms", t.ms.p99, f.ms.p99, "%.0f", "<= 1.5 x flood (2 x with loss, churn)");
  row("max_ms", t.ms.max, f.ms.max, "%.0f", "");
  row("bytes_per_payload_byte", t.bytes_per_payload_byte, f.bytes_per_payload_byte, "%.2f", "<= 3.5");
  row("events_duplicate", static_cast<double>(t.events_duplicate),
      static_cast<double>(f.events_duplicate), "%.0f", "");
  row("mean_active_peers", t.mean_active, f.mean_active, "%.2f", "");
  row("idle_bytes_per_s", t.idle_bytes_per_s, f.idle_bytes_per_s, "%.0f", "");
  row("post_event_bytes", t.post_event_bytes, f.post_event_bytes, "%.0f", "");
  row("late_deliveries", static_cast<double>(t.late_deliveries),
      static_cast<double>(f.late_deliveries), "%.0f", "> ihave_delay_ms + graft_timeout_ms");
  const double th = t.heal_convergence_ms ? static_cast<double>(*t.heal_convergence_ms) : -1;
  const double fh = f.heal_convergence_ms ? static_cast<double>(*f.heal_convergence_ms) : -1;
  row("heal_convergence_ms", th, fh, "%.0f", "<= 3 round trips + transfer (-1: none in 60 s)");
  row("heal_missing", static_cast<double>(t.heal_missing), static_cast<double>(f.heal_missing),
      "%.0f", "(node, event) pairs to move");
  row("heal_copies", static_cast<double>(t.heal_copies), static_cast<double>(f.heal_copies),
      "%.0f", "");
  row("heal_duplicates", static_cast<double>(t.heal_duplicates),
      static_cast<double>(f.heal_duplicates), "%.0f", "0 (moved twice)");
  row("runtime_s", t.runtime_s, f.runtime_s, "%.2f", "");
  for (const auto& [name, r] : {std::pair<const char*, const Measured&>{"tree", t}, {"flood", f}}) {
    std::printf(
        "%s: %llu of %llu deliveries over a %lld ms window; %llu without a hop count; "
        "%zu nodes without active peers at the first post; %zu nodes churned, "
        "%llu deliveries there (in delivery_ratio only)\n",
        name, static_cast<unsigned long long>(r.deliveries),
        static_cast<unsigned long long>(r.deliveries_expected), static_cast<long long>(r.window_ms),
        static_cast<unsigned long long>(r.hops_unknown), r.isolated_nodes, r.churned_nodes,
        static_cast<unsigned long long>(r.churned_deliveries));
  }
}

// One figure of a run, for the summary over seeds: how to read it, and which way is worse.
struct Figure {
  const char* name;
  double (*get)(const Measured&);
  int worse;  // +1: higher is worse; -1: lower is worse
  const char* fmt;
};

// A run without convergence after a heal counts as the deadline (the worst it could be).
double heal_ms(const Measured& r) {
  return r.heal_convergence_ms ? static_cast<double>(*r.heal_convergence_ms)
                               : static_cast<double>(converge_deadline_ms);
}

const std::vector<Figure>& figures() {
  static const std::vector<Figure> all = {
      {"delivery_ratio", [](const Measured& r) { return r.delivery_ratio; }, -1, "%.6f"},
      {"redundancy", [](const Measured& r) { return r.redundancy; }, +1, "%.3f"},
      {"p50_hops", [](const Measured& r) { return r.hops.p50; }, +1, "%.1f"},
      {"p99_hops", [](const Measured& r) { return r.hops.p99; }, +1, "%.1f"},
      {"ideal_p99_hops", [](const Measured& r) { return r.ideal_hops.p99; }, +1, "%.1f"},
      {"p99_hops/ideal", [](const Measured& r) { return ratio(r.hops.p99, r.ideal_hops.p99); },
       +1, "%.2f"},
      {"p50_ms", [](const Measured& r) { return r.ms.p50; }, +1, "%.0f"},
      {"p99_ms", [](const Measured& r) { return r.ms.p99; }, +1, "%.0f"},
      {"max_ms", [](const Measured& r) { return r.ms.max; }, +1, "%.0f"},
      {"bytes_per_payload_byte", [](const Measured& r) { return r.bytes_per_payload_byte; }, +1,
       "%.2f"},
      {"events_duplicate", [](const Measured& r) { return static_cast<double>(r.events_duplicate); },
       +1, "%.0f"},
      {"mean_active_peers", [](const Measured& r) { return r.mean_active; }, -1, "%.2f"},
      {"idle_bytes_per_s", [](const Measured& r) { return r.idle_bytes_per_s; }, +1, "%.0f"},
      {"late_deliveries", [](const Measured& r) { return static_cast<double>(r.late_deliveries); },
       +1, "%.0f"},
      {"heal_convergence_ms", heal_ms, +1, "%.0f"},
      {"heal_duplicates", [](const Measured& r) { return static_cast<double>(r.heal_duplicates); },
       +1, "%.0f"},
      {"runtime_s", [](const Measured& r) { return r.runtime_s; }, +1, "%.2f"},
  };
  return all;
}

struct Summary {
  double mean = 0, worst = 0;
};

Summary summarise(const std::vector<Measured>& runs, const Figure& f) {
  Summary s;
  s.worst = f.get(runs.front());
  for (const Measured& r : runs) {
    const double v = f.get(r);
    s.mean += v / static_cast<double>(runs.size());
    if ((f.worse > 0 && v > s.worst) || (f.worse < 0 && v < s.worst)) s.worst = v;
  }
  return s;
}

// The summary over seeds: for each figure, the tree's and flooding's mean and worst, and the
// tree's p99 latency against flooding's in the same run (the latency ratio).
void print_seeds(const Options& o, const std::vector<Measured>& tree,
                 const std::vector<Measured>& flood) {
  std::vector<Measured> ratio_runs = tree;
  for (std::size_t k = 0; k < tree.size(); ++k)
    ratio_runs[k].ms.p99 = ratio(tree[k].ms.p99, flood[k].ms.p99);
  const Summary latency = summarise(ratio_runs, Figure{"p99_ms", [](const Measured& r) { return r.ms.p99; }, +1, "%.2f"});
  if (o.json) {
    std::printf("{\"nodes\": %zu, \"seeds\": %zu, \"first_seed\": %llu", o.nodes, o.seeds,
                static_cast<unsigned long long>(o.seed));
    for (const Figure& f : figures()) {
      const Summary t = summarise(tree, f), fl = summarise(flood, f);
      std::printf(", \"mean_%s\": %g, \"worst_%s\": %g, \"flood_mean_%s\": %g, "
                  "\"flood_worst_%s\": %g",
                  f.name, t.mean, f.name, t.worst, f.name, fl.mean, f.name, fl.worst);
    }
    std::printf(", \"mean_p99_ms_over_flood\": %g, \"worst_p99_ms_over_flood\": %g}\n",
                latency.mean, latency.worst);
    return;
  }
  std::printf("sim_bench: %zu nodes, seeds %llu..%llu, %zu posts every %lld ms, loss %g, churn %g\n",
              o.nodes, static_cast<unsigned long long>(o.seed),
              static_cast<unsigned long long>(o.seed + o.seeds - 1), o.posts,
              static_cast<long long>(o.interval_ms), o.loss, o.churn);
  std::printf("%-26s %12s %12s %12s %12s\n", "measure", "tree mean", "tree worst", "flood mean",
              "flood worst");
  for (const Figure& f : figures()) {
    const Summary t = summarise(tree, f), fl = summarise(flood, f);
    char cells[4][32];
    std::snprintf(cells[0], sizeof cells[0], f.fmt, t.mean);
    std::snprintf(cells[1], sizeof cells[1], f.fmt, t.worst);
    std::snprintf(cells[2], sizeof cells[2], f.fmt, fl.mean);
    std::snprintf(cells[3], sizeof cells[3], f.fmt, fl.worst);
    std::printf("%-26s %12s %12s %12s %12s\n", f.name, cells[0], cells[1], cells[2], cells[3]);
  }
  std::printf("%-26s %12.2f %12.2f\n", "p99_ms tree/flood", latency.mean, latency.worst);
  std::printf("(heal_convergence_ms counts a run that did not converge as %lld)\n",
              static_cast<long long>(converge_deadline_ms));
}

// --- --unreachable: the overlay with members behind NAT (issue 14) ----------------------------

struct NatMeasured {
  double delivery_ratio = 0;
  std::uint64_t deliveries = 0, deliveries_expected = 0;
  Percentiles ms;
  double bytes_per_payload_byte = 0;        // sent by the members
  double relay_bytes_per_payload_byte = 0;  // sent by the relays (store-and-forward and splices)
  double relayed_bytes_per_payload_byte = 0;  // stream bytes the relays spliced
  std::uint64_t relayed_bytes = 0;
  std::size_t relayed_links_peak = 0;  // the most one relay carried at any post
  double relayed_links_mean = 0;       // per relay, at the end
  std::size_t relayed_links_max = 0;   // ... the most, at the end
  std::size_t reservations_max = 0;    // reservations one relay accepted, the most
  std::uint64_t splices_refused = 0;   // by all relays
  std::size_t relayed_links_bound = 0;  // each relay's relayed_links_max
  std::size_t pairs_direct = 0, pairs_relayed = 0;  // member pairs linked, at the end
  std::size_t pairs_punched = 0;  // ... direct, both behind NAT
  std::uint64_t simultaneous_opens = 0;  // SimStats'
  std::size_t port_preserving = 0;       // members behind a NAT that keeps ports
  std::uint64_t punches_succeeded = 0, punches_failed = 0;
  std::size_t behind_nat = 0;
  // The overlay at the first post: members with no active peer, and members outside the
  // founder's part of the overlay graph (active peers, members and relays, made symmetric).
  std::size_t isolated = 0, cut_off = 0;
  double runtime_s = 0;
};

// One run of the NAT mode: `unreachable` of the members (but the founder) behind NAT.
NatMeasured run_nat(const Options& o, double unreachable) {
  const auto start = Clock::now();
  NatMeasured r;
  sim::SimConfig config;
  config.seed = o.seed;
  config.loss = o.loss;
  config.keep_disk = false;
  config.record_deliveries = true;
  config.ip_addresses = true;
  sim::Simulation sim(config);
  // Who is behind NAT, who posts and what: from the seed, the same in both runs.
  Rng rng = Rng::from_u64(o.seed ^ 0x73696d62656e6368);  // "simbench"
  std::vector<bool> nat(o.nodes, false);
  r.behind_nat = static_cast<std::size_t>(std::llround(unreachable * static_cast<double>(o.nodes - 1)));
  for (std::size_t placed = 0; placed < r.behind_nat;) {
    const std::size_t i = 1 + rng.uniform(o.nodes - 1);
    if (!nat[i]) nat[i] = true, ++placed;
  }
  // Which NATs keep ports: drawn for every member, so that both runs draw alike.
  Rng kinds = Rng::from_u64(o.seed ^ 0x6e61746b696e6473);  // "natkinds"
  std::vector<std::size_t> members, relays;
  for (std::size_t i = 0; i < o.nodes; ++i) {
    const bool keeps_ports = static_cast<double>(kinds.uniform(1'000'000)) < o.punchable * 1e6;
    if (!nat[i]) {
      members.push_back(sim.add_node());
      continue;
    }
    members.push_back(sim.add_node_behind_nat({}, keeps_ports ? sim::Nat::port_preserving : sim::Nat::symmetric));
    if (keeps_ports) ++r.port_preserving;
  }
  for (std::size_t k = 0; k < o.relays; ++k) relays.push_back(sim.add_relay());
  const Hash g = sim.create_big_group(members, relays);
  for (std::size_t relay : relays) sim.request_serve(members[0], g, relay);
  if (!relays.empty()) r.relayed_links_bound = sim.node(relays[0]).config().relayed_links_max;
  sim.run_for(nat_warmup_ms);

  std::vector<std::pair<std::size_t, Millis>> posts;  // author, publish time
  std::map<Hash, std::size_t> post_index;
  std::set<std::pair<std::size_t, std::size_t>> delivered;  // (member, post), at non-authors
  std::vector<double> ms;
  sim.on_delivered([&](std::size_t node, const Hash& group, const std::vector<Hash>& ids, Millis at) {
    if (group != g || node >= o.nodes) return;
    for (const Hash& id : ids) {
      auto p = post_index.find(id);
      if (p == post_index.end() || posts[p->second].first == node) continue;
      if (delivered.emplace(node, p->second).second)
        ms.push_back(static_cast<double>(at - posts[p->second].second));
    }
  });
  auto sent = [&](const std::vector<std::size_t>& nodes) {
    std::uint64_t b = 0;
    for (std::size_t i : nodes) b += sim.node(i).stats().bytes_sent;
    return b;
  };
  auto spliced = [&] {
    std::uint64_t b = 0;
    for (std::size_t relay : relays) b += sim.node(relay).relayed().stats().relayed_bytes;
    return b;
  };
  const std::uint64_t members_before = sent(members), relays_before = sent(relays);
  const std::uint64_t spliced_before = spliced();
  const Millis window_start = sim.now();
  for (std::size_t k = 0; k < o.posts; ++k) {
    sim.run_until(window_start + static_cast<Millis>(k) * o.interval_ms);
    if (k == 0) {
      const auto adj = overlay_graph(sim, g);
      const auto dist = bfs(adj, members[0]);
      for (std::size_t i : members) {
        if (adj[i].empty()) ++r.isolated;
        if (!dist[i]) ++r.cut_off;
      }
    }
    for (std::size_t relay : relays)
      r.relayed_links_peak = std::max(r.relayed_links_peak, sim.node(relay).relayed().relayed_links());
    const std::size_t author = rng.uniform(o.nodes);
    // The author's own Delivered fires inside post(), before the id is known: it is not counted.
    const Hash id = sim.post(author, g, random_text(rng, post_bytes)).back();
    post_index.emplace(id, posts.size());
    posts.emplace_back(author, sim.now());
  }
  r.deliveries_expected = static_cast<std::uint64_t>(o.posts) * (o.nodes - 1);
  (void)sim.run_until([&] { return delivered.size() == r.deliveries_expected; },
                      sim.now() + delivery_deadline_ms);
  sim.run_for(settle_ms);
  sim.on_delivered(nullptr);

  r.deliveries = delivered.size();
  r.delivery_ratio = static_cast<double>(r.deliveries) / static_cast<double>(r.deliveries_expected);
  r.ms = percentiles(ms);
  const double payload =
      static_cast<double>(post_bytes) * static_cast<double>(std::max<std::uint64_t>(r.deliveries, 1));
  r.bytes_per_payload_byte = static_cast<double>(sent(members) - members_before) / payload;
  r.relay_bytes_per_payload_byte = static_cast<double>(sent(relays) - relays_before) / payload;
  r.relayed_bytes = spliced() - spliced_before;
  r.relayed_bytes_per_payload_byte = static_cast<double>(r.relayed_bytes) / payload;
  for (std::size_t relay : relays) {
    const RelayedLinks& rl = sim.node(relay).relayed();
    r.relayed_links_mean += static_cast<double>(rl.relayed_links()) / static_cast<double>(relays.size());
    r.relayed_links_max = std::max(r.relayed_links_max, rl.relayed_links());
    r.relayed_links_peak = std::max(r.relayed_links_peak, rl.relayed_links());
    r.reservations_max = std::max<std::size_t>(r.reservations_max, rl.stats().reservations_accepted);
    r.splices_refused += rl.stats().splices_refused;
  }
  // Member pairs with a link up, each counted once (from its lower end's side).
  std::set<std::pair<std::size_t, std::size_t>> direct, relayed;
  for (std::size_t i : members) {
    for (const auto& p : sim.node(i).peers()) {
      if (!p.established || !p.id) continue;
      const std::optional<std::size_t> j = sim.find(*p.id);
      if (!j || *j >= o.nodes || *j == i) continue;
      (p.via ? relayed : direct).emplace(std::min(i, *j), std::max(i, *j));
    }
    r.punches_succeeded += sim.node(i).punch().stats().succeeded;
    r.punches_failed += sim.node(i).punch().stats().failed;
  }
  for (const auto& pair : relayed) direct.erase(pair);  // a pair with both counts as relayed
  for (const auto& [a, b] : direct) r.pairs_punched += nat[a] && nat[b];
  r.simultaneous_opens = sim.stats().simultaneous_opens;
  r.pairs_direct = direct.size();
  r.pairs_relayed = relayed.size();
  r.runtime_s = seconds_since(start);
  return r;
}

void print_nat(const Options& o, const NatMeasured& base, const NatMeasured& n) {
  const double p50_ratio = ratio(n.ms.p50, base.ms.p50), p99_ratio = ratio(n.ms.p99, base.ms.p99);
  if (o.json) {
    auto fields = [](const char* p, const NatMeasured& r) {
      std::printf(
          "\"%sbehind_nat\": %zu, \"%sdelivery_ratio\": %.6f, \"%sp50_ms\": %.0f, "
          "\"%sp99_ms\": %.0f, \"%smax_ms\": %.0f, \"%sbytes_per_payload_byte\": %.2f, "
          "\"%srelay_bytes_per_payload_byte\": %.2f, \"%srelayed_bytes_per_payload_byte\": %.3f, "
          "\"%srelayed_bytes\": %llu, \"%srelayed_links_peak\": %zu, "
          "\"%srelayed_links_mean\": %.1f, \"%srelayed_links_max\": %zu, "
          "\"%sreservations_max\": %zu, \"%ssplices_refused\": %llu, \"%spairs_direct\": %zu, "
          "\"%spairs_relayed\": %zu, \"%spunches_succeeded\": %llu, \"%sisolated\": %zu, "
          "\"%scut_off\": %zu, \"%spairs_punched\": %zu, \"%spunches_failed\": %llu, "
          "\"%ssimultaneous_opens\": %llu, \"%sruntime_s\": %.2f",
          p, r.behind_nat, p, r.delivery_ratio, p, r.ms.p50, p, r.ms.p99, p, r.ms.max, p,
          r.bytes_per_payload_byte, p, r.relay_bytes_per_payload_byte, p,
          r.relayed_bytes_per_payload_byte, p, static_cast<unsigned long long>(r.relayed_bytes), p,
          r.relayed_links_peak, p, r.relayed_links_mean, p, r.relayed_links_max, p,
          r.reservations_max, p, static_cast<unsigned long long>(r.splices_refused), p,
          r.pairs_direct, p, r.pairs_relayed, p,
          static_cast<unsigned long long>(r.punches_succeeded), p, r.isolated, p, r.cut_off, p,
          r.pairs_punched, p, static_cast<unsigned long long>(r.punches_failed), p,
          static_cast<unsigned long long>(r.simultaneous_opens), p, r.runtime_s);
    };
    std::printf("{\"nodes\": %zu, \"seed\": %llu, \"posts\": %zu, \"interval_ms\": %lld, "
                "\"loss\": %g, \"unreachable\": %g, \"relays\": %zu, \"punchable\": %g, "
                "\"port_preserving\": %zu, \"relayed_links_bound\": %zu, ",
                o.nodes, static_cast<unsigned long long>(o.seed), o.posts,
                static_cast<long long>(o.interval_ms), o.loss, *o.unreachable, o.relays,
                o.punchable, n.port_preserving, n.relayed_links_bound);
    fields("", n);
    std::printf(", ");
    fields("reachable_", base);
    std::printf(", \"p50_ms_over_reachable\": %.3f, \"p99_ms_over_reachable\": %.3f}\n", p50_ratio,
                p99_ratio);
    return;
  }
  std::printf(
      "sim_bench --unreachable: %zu members (%zu behind NAT, %zu of them keeping ports), %zu relays "
      "(relayed_links_max %zu), seed %llu, %zu posts of %zu bytes every %lld ms, loss %g, "
      "warm-up %lld ms\n",
      o.nodes, n.behind_nat, n.port_preserving, o.relays, n.relayed_links_bound,
      static_cast<unsigned long long>(o.seed), o.posts, post_bytes,
      static_cast<long long>(o.interval_ms), o.loss, static_cast<long long>(nat_warmup_ms));
  std::printf("%-32s %12s %12s %10s  %s\n", "measure", "behind NAT", "reachable", "ratio", "goal");
  auto row = [](const char* name, double a, double b, const char* fmt, const char* goal) {
    char ta[32], tb[32];
    std::snprintf(ta, sizeof ta, fmt, a);
    std::snprintf(tb, sizeof tb, fmt, b);
    std::printf("%-32s %12s %12s %10.3f  %s\n", name, ta, tb, ratio(a, b), goal);
  };
  auto z = [](std::uint64_t v) { return static_cast<double>(v); };
  row("delivery_ratio", n.delivery_ratio, base.delivery_ratio, "%.6f", "1");
  row("p50_ms", n.ms.p50, base.ms.p50, "%.0f", "");
  row("p99_ms", n.ms.p99, base.ms.p99, "%.0f", "");
  row("max_ms", n.ms.max, base.ms.max, "%.0f", "");
  row("bytes_per_payload_byte", n.bytes_per_payload_byte, base.bytes_per_payload_byte, "%.2f",
      "members");
  row("relay_bytes_per_payload_byte", n.relay_bytes_per_payload_byte,
      base.relay_bytes_per_payload_byte, "%.2f", "all the relays send");
  row("relayed_bytes_per_payload_byte", n.relayed_bytes_per_payload_byte,
      base.relayed_bytes_per_payload_byte, "%.3f", "spliced streams");
  row("relayed_bytes", z(n.relayed_bytes), z(base.relayed_bytes), "%.0f", "");
  row("relayed_links_peak", z(n.relayed_links_peak), z(base.relayed_links_peak), "%.0f",
      "<= relayed_links_max");
  row("relayed_links_mean (end)", n.relayed_links_mean, base.relayed_links_mean, "%.1f", "per relay");
  row("relayed_links_max (end)", z(n.relayed_links_max), z(base.relayed_links_max), "%.0f", "");
  row("reservations_max", z(n.reservations_max), z(base.reservations_max), "%.0f", "per relay");
  row("splices_refused", z(n.splices_refused), z(base.splices_refused), "%.0f", "");
  row("member_pairs_direct", z(n.pairs_direct), z(base.pairs_direct), "%.0f", "");
  row("member_pairs_relayed", z(n.pairs_relayed), z(base.pairs_relayed), "%.0f", "");
  row("member_pairs_punched", z(n.pairs_punched), z(base.pairs_punched), "%.0f",
      "direct, both behind NAT");
  row("punches_succeeded", z(n.punches_succeeded), z(base.punches_succeeded), "%.0f", "");
  row("punches_failed", z(n.punches_failed), z(base.punches_failed), "%.0f", "");
  row("simultaneous_opens", z(n.simultaneous_opens), z(base.simultaneous_opens), "%.0f", "");
  row("isolated_members", z(n.isolated), z(base.isolated), "%.0f", "no active peer, first post");
  row("cut_off_members", z(n.cut_off), z(base.cut_off), "%.0f", "not linked to the founder");
  row("runtime_s", n.runtime_s, base.runtime_s, "%.2f", "");
  std::printf("behind NAT: %llu of %llu deliveries; reachable: %llu of %llu\n",
              static_cast<unsigned long long>(n.deliveries),
              static_cast<unsigned long long>(n.deliveries_expected),
              static_cast<unsigned long long>(base.deliveries),
              static_cast<unsigned long long>(base.deliveries_expected));
}

}  // namespace
}  // namespace qun

int main(int argc, char** argv) {
  using namespace qun;
  crypto_init();
  const Options o = parse(argc, argv);
  try {
    if (o.unreachable) {
      const NatMeasured base = run_nat(o, 0.0);
      print_nat(o, base, run_nat(o, *o.unreachable));
      return 0;
    }
    if (o.groups > 0) {
      for (std::size_t k = 0; k < o.seeds; ++k) {
        Options one = o;
        one.seed = o.seed + k;
        print_groups(one, run_groups(one));
        std::fflush(stdout);
      }
      return 0;
    }
    std::vector<Measured> trees, floods;
    for (std::size_t k = 0; k < o.seeds; ++k) {
      Options one = o;
      one.seed = o.seed + k;
      trees.push_back(o.run_tree ? run(one, false) : Measured{});
      floods.push_back(o.run_flood ? run(one, true) : Measured{});
      if (o.json) {
        print_json(one, trees.back(), floods.back());
      } else {
        print_table(one, trees.back(), floods.back());
      }
      std::fflush(stdout);
    }
    if (o.seeds > 1) print_seeds(o, trees, floods);
  } catch (const std::exception& e) {
    die(e.what());
  }
  return 0;
}
