// The pending flood (issue 10, finding 2) against a real node: a stranger who knows only a group
// id links to a member and pushes posts whose parents do not exist.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>

#include "node/limits.h"
#include "node/payload.h"
#include "tests/integration/attacker.h"

namespace qun::integration {
namespace {

// The flood: 4,000 posts of 20 KB junk ciphertext (80 MB), forty times the sender's pending
// share (limits::pending_sender_bytes_max, 2 MiB); the reported run used 10,000 (200 MB), which
// takes longer on two shared cores without testing anything more.
constexpr std::size_t flood_events = 4000;
constexpr std::size_t junk_bytes = 20 * 1024;
// Events per Events message: as many 20 KB posts as fit in wire_limits::events_bytes_max.
constexpr std::size_t events_per_message = 48;
static_assert(events_per_message * (junk_bytes + 512) <= wire_limits::events_bytes_max);
// What the victim may grow by, above its size before the flood. Memory: the pending share
// (2 MiB) plus a message being reassembled (1 MiB), the transport's and allocator's buffers;
// the reported flood took it to 1.24 GB. Disk: LMDB keeps freed pages for reuse, so the file
// grows to the most it held at once: the share, its churn within one commit, and the B-tree.
constexpr std::uint64_t rss_growth_max = 48ull << 20;
constexpr std::uint64_t db_growth_max = 16ull << 20;

// A value in kB from /proc/PID/status ("VmRSS", "VmHWM"), in bytes.
std::uint64_t proc_status_bytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

std::uint64_t db_bytes(const Node& node) {
  std::error_code ec;
  auto n = fs::file_size(node.home() / "db" / "data.mdb", ec);
  return ec ? 0 : n;
}

std::int64_t pending_of(const Node& node, const std::string& group) {
  Json g = status_of_group(node, group);
  return g.is_object() ? g.value("pending", std::int64_t{-1}) : -1;
}

Bytes orphan(const SigningKey& key, const Hash& group, std::uint64_t n) {
  Event e;
  e.group = group;
  e.author = key.public_key();
  e.parents = {hash(as_bytes("no such parent " + std::to_string(n)))};
  e.depth = 1;
  e.time_ms = n;
  e.kind = EventKind::post;
  TextPayload p;
  p.text.data.assign(junk_bytes, static_cast<std::uint8_t>(n));
  e.payload = encode_payload(p);
  sign_event(e, key);
  return encode_for_group_message(e);
}

}  // namespace

// Proves a stranger's pending flood leaves a member within its bounds. How: V creates a group and
// P joins. A stranger (its own identity, no invite) links to V, shows the group's tag in its
// hello, and pushes 4,000 posts of 20 KB whose parents do not exist. Meanwhile and afterwards P's
// posts must reach V; V's peak RSS (VmHWM) and its data.mdb may grow by at most rss_growth_max
// and db_growth_max, and V holds at most the sender's share pending. When the stranger's link
// closes, V's pending count drops to 0 (what it sent is gone from memory and store), so that V
// reports the group synced again. Prints the figures.
TEST_CASE("a stranger's pending flood stays within the member's bounds", "[integration][pending]") {
  Cluster cluster;
  Node& v = cluster.add("victim");
  Node& p = cluster.add("peer");
  v.start();
  p.start(NodeOptions::with_peers({v.address()}));
  const std::string group = create_group(v, "flooded");
  REQUIRE(invite_and_join(v, p, group) == group);
  p.ok({"post", group, "before the flood"});
  wait_for_posts(v, group, {"before the flood"});
  const pid_t pid = v.process()->pid();
  const std::uint64_t rss_before = proc_status_bytes(pid, "VmHWM");
  const std::uint64_t db_before = db_bytes(v);

  auto gid_bytes = from_hex(group);
  REQUIRE(gid_bytes);
  const Hash gid = *Hash::from_view(*gid_bytes);
  Rng rng = Rng::from_u64(0xf100d);
  const SigningKey stranger = SigningKey::generate(rng);
  Attacker attacker(v.address(), stranger, 0xf100d);
  HelloNonce nonce;
  nonce.bytes[0] = 1;
  REQUIRE(attacker.send(wire::Hello{nonce, {}, {group_tag(gid, nonce)}}));
  std::size_t sent = 0;
  for (std::size_t i = 0; i < flood_events && attacker.open(); i += events_per_message) {
    std::vector<Bytes> batch;
    for (std::size_t k = i; k < std::min(flood_events, i + events_per_message); ++k)
      batch.push_back(orphan(stranger, gid, k));
    if (attacker.send(wire::Events{gid, std::move(batch), 0})) sent = i + events_per_message;
    if (i < flood_events / 2 && i + events_per_message >= flood_events / 2)
      p.ok({"post", group, "during the flood"});
  }
  REQUIRE(sent >= flood_events);
  p.ok({"post", group, "after the flood"});
  wait_for_posts(v, group, {"during the flood", "after the flood"});
  const std::uint64_t rss_peak = proc_status_bytes(pid, "VmHWM");
  const std::uint64_t db_after = db_bytes(v);
  const std::int64_t pending = pending_of(v, group);
  std::fprintf(stderr,
               "pending flood: %zu x %zu B sent; victim peak RSS %llu -> %llu kB, data.mdb %llu -> "
               "%llu kB, %lld events pending\n",
               sent, junk_bytes, static_cast<unsigned long long>(rss_before >> 10),
               static_cast<unsigned long long>(rss_peak >> 10),
               static_cast<unsigned long long>(db_before >> 10),
               static_cast<unsigned long long>(db_after >> 10), static_cast<long long>(pending));
#if !defined(__SANITIZE_ADDRESS__)
  // ASan keeps up to 256 MiB of freed memory in quarantine and adds shadow memory, so RSS is
  // meaningless in the sanitizer tree; the release tree checks it.
  CHECK(rss_peak <= rss_before + rss_growth_max);
#endif
  CHECK(db_after <= db_before + db_growth_max);
  CHECK(pending >= 0);
  CHECK(static_cast<std::uint64_t>(pending) * junk_bytes <= limits::pending_sender_bytes_max);

  attacker.close();
  wait_until([&] { return pending_of(v, group) == 0; }, propagate_bound,
             "the stranger's pending events are dropped with its link");
  CHECK(status_of_group(v, group).value("synced", false));
}

}  // namespace qun::integration
