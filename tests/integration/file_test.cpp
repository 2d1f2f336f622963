// Files (issue 15): `qun send` and `qun fetch` between real nodes, through a relay when the
// sender is gone, resuming with only the missing chunks, and no plaintext on the relay's disk.
#include <catch2/catch.hpp>

#include <fstream>

#include "net/blob_store.h"
#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

// A file of `size` bytes: random, with a canary (a random string that cannot occur by chance)
// every 4 KiB, so a search of a home for the canary finds any plaintext of it.
std::string make_file(const fs::path& path, std::size_t size, const std::string& canary) {
  std::string data;
  data.reserve(size + 4096);
  while (data.size() < size) {
    data += canary;
    data += random_hex(2048 - canary.size() / 2);
  }
  data.resize(size);
  std::ofstream(path, std::ios::binary) << data;
  return data;
}

// Blobs a node holds for a group, as its status says.
std::size_t blobs_held(const Node& node, const std::string& group) {
  return status_of_group(node, group).value("blobs", std::size_t{0});
}

// The records of a node's packs for a group (net/blob_store.h): each pack's path and the offsets
// where its records start, oldest pack first.
struct PackRecords {
  fs::path pack;
  std::vector<std::uint64_t> starts;
};
std::vector<PackRecords> packs_of(const Node& node, const std::string& group) {
  std::vector<PackRecords> out;
  for (const auto& e : fs::directory_iterator(node.home() / "files" / group)) {
    if (e.path().extension() != ".pack") continue;
    const std::string bytes = file_contents(e.path());
    PackRecords p{e.path(), {}};
    for (std::uint64_t at = 0; at + blob_store_limits::record_header_bytes <= bytes.size();) {
      p.starts.push_back(at);
      std::uint32_t n = 0;
      for (int i = 0; i < 4; ++i) n |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[at + 4 + i])) << (8 * i);
      at += blob_store_limits::record_header_bytes + n;
    }
    out.push_back(p);
  }
  std::sort(out.begin(), out.end(), [](const PackRecords& x, const PackRecords& y) { return x.pack < y.pack; });
  return out;
}

// Proves the core and resumption. 1. Alice shares a 1.2 MiB file with `qun send`; Bob sees a
// file post in his log (name and size) and `qun fetch` saves a byte-identical copy, having moved
// every blob (the manifest and 19 chunks). 2. A fetch resumes with what is missing: six of Bob's
// stored chunks are deleted (as an interrupted fetch leaves some stored and some not), and a
// second fetch to another path reports exactly six blobs moved and the rest present, and its
// copy is byte-identical too.
TEST_CASE("a shared file is fetched whole, and a resumed fetch moves only missing chunks",
          "[integration][files]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "pictures");
  REQUIRE(invite_and_join(a, b, group) == group);

  const fs::path dir = cluster.make_dir("files");
  const std::string data = make_file(dir / "photo.png", 1'200'000, "canary-" + random_hex(12));
  const Json sent = a.json({"send", group, (dir / "photo.png").string(), "--text", "the view"});
  const std::string id = sent.value("id", std::string());
  REQUIRE(id.size() == 64);
  CHECK(sent.value("size", 0) == 1'200'000);

  wait_for_posts(b, group, {"the view"});
  Json post;
  for (const auto& line : log_of(b, group))
    if (line.value("id", std::string()) == id) post = line;
  REQUIRE(post.contains("file"));
  CHECK(post["file"].value("name", std::string()) == "photo.png");
  CHECK(post["file"].value("media_type", std::string()) == "image/png");
  CHECK(post["file"].value("size", 0) == 1'200'000);
  CHECK(b.ok({"log", group}).find("photo.png \u00B7 1.1 MiB") != std::string::npos);

  const fs::path first = dir / "first.png";
  const Json got = b.json({"fetch", group, id, "-o", first.string()});
  CHECK(got.value("moved", 0) == 20);
  CHECK(got.value("present", 0) == 0);
  CHECK(file_contents(first) == data);
  REQUIRE(blobs_held(b, group) == 20);

  // An interruption: Bob's node dies while the last six chunks are written, the sixth from the
  // end half written (his pack cut there; the manifest came first, so it stays).
  b.stop();
  {
    auto packs = packs_of(b, group);
    REQUIRE(packs.size() == 1);
    REQUIRE(packs[0].starts.size() == 20);
    fs::resize_file(packs[0].pack, packs[0].starts[14] + 100);
  }
  b.start(NodeOptions::with_peers({a.address()}));
  CHECK(blobs_held(b, group) == 14);
  const fs::path second = dir / "second.png";
  const Json again = b.json({"fetch", group, id, "-o", second.string()});
  CHECK(again.value("moved", 0) == 6);
  CHECK(again.value("present", 0) == 14);
  CHECK(file_contents(second) == data);
  // A path that exists is refused with one line, nothing overwritten.
  const Outcome taken = b.qun({"fetch", group, id, "-o", first.string()});
  CHECK_FALSE(taken.ok());
  CHECK(taken.describe().find("exists") != std::string::npos);

  // A chunk damaged on disk (one byte flipped) is found when the file is put together from what
  // is stored: one line, no file and no part left, the chunk dropped; fetched again, only it moves.
  {
    auto packs = packs_of(b, group);
    REQUIRE(!packs.empty());
    REQUIRE(packs.back().starts.size() >= 2);
    std::fstream f(packs.back().pack, std::ios::binary | std::ios::in | std::ios::out);
    const auto at = static_cast<std::streamoff>(packs.back().starts[1] + blob_store_limits::record_header_bytes + 50);
    f.seekg(at);
    const char c = static_cast<char>(f.get());
    f.seekp(at);
    f.put(static_cast<char>(c ^ 0x01));
  }
  const fs::path third = dir / "third.png";
  const Outcome bad = b.qun({"fetch", group, id, "-o", third.string()});
  CHECK_FALSE(bad.ok());
  CHECK(bad.describe().find("damaged here; fetch again") != std::string::npos);
  CHECK_FALSE(fs::exists(third));
  CHECK_FALSE(fs::exists(third.string() + ".part"));
  const Json mended = b.json({"fetch", group, id, "-o", third.string()});
  CHECK(mended.value("moved", 0) == 1);
  CHECK(file_contents(third) == data);
}

// Proves that a file outlives its sender's presence through a relay that cannot read it. Alice
// adds relay R to the group and sends a 700 KiB file; R takes its blobs (blind: it has no key)
// and Alice stops. Bob, linked to nobody but R, fetches the file and gets a byte-identical copy.
// Then every file under R's home is searched for the file's canary (which Bob's copy holds, the
// control) and for its name: neither is there.
TEST_CASE("a file is fetched through a relay while its sender is offline, and the relay holds no plaintext",
          "[integration][files][relay]") {
  Cluster cluster;
  AliceBobRelay nodes = start_alice_bob_relay(cluster);
  Node &r = nodes.relay, &a = nodes.alice, &b = nodes.bob;
  const std::string group = create_group(a, "archive");
  a.ok({"relay", "add", group, r.address()});
  REQUIRE(invite_and_join(a, b, group) == group);
  b.stop();

  const fs::path dir = cluster.make_dir("files");
  const std::string canary = "canary-" + random_hex(12);
  const std::string name = "minutes-" + random_hex(6) + ".txt";
  const std::string data = make_file(dir / name, 700'000, canary);
  const std::string id = a.json({"send", group, (dir / name).string()}).value("id", std::string());
  REQUIRE(id.size() == 64);
  // The manifest and 11 chunks.
  wait_until([&] { return blobs_held(r, group) == 12; }, propagate_bound,
             "the relay holds every blob of the file");
  auto events = [&](const Node& n) { return status_of_group(n, group).value("events", -1); };
  wait_until([&] { return events(r) == events(a); }, propagate_bound,
             "the relay holds every event alice holds, the file's post included");
  a.stop();

  b.start();
  wait_until([&] { return holds_event(b, group, id); }, propagate_bound, "bob holds the file's post");
  const fs::path copy = dir / "copy.txt";
  const Json got = b.json({"fetch", group, id, "-o", copy.string()});
  CHECK(got.value("moved", 0) == 12);
  REQUIRE(file_contents(copy) == data);
  CHECK(file_contents(copy).find(canary) != std::string::npos);  // the control

  auto r_stopped = r.stop();
  REQUIRE(r_stopped);
  for (const std::string& secret : {canary, name}) {
    auto leaks = files_containing(r.home(), secret);
    INFO("plaintext '" << secret << "' found in the relay's files:");
    for (const auto& f : leaks) INFO("  " << f.string());
    CHECK(leaks.empty());
  }
}

// Proves that a node keeps offering its files to the group's relay across a restart: Alice sends
// a file while the relay is down, and stops before it is back; started again, with the relay up,
// she offers the file's blobs from her saved uploads and the relay takes them all. Then Bob,
// linked to nobody but the relay while Alice is offline, fetches a byte-identical copy.
TEST_CASE("a file sent while the relay is down reaches it after the sender restarts",
          "[integration][files][relay]") {
  Cluster cluster;
  AliceBobRelay nodes = start_alice_bob_relay(cluster);
  Node &r = nodes.relay, &a = nodes.alice, &b = nodes.bob;
  const std::string relay_address = r.address();
  const std::string group = create_group(a, "archive");
  a.ok({"relay", "add", group, relay_address});
  REQUIRE(invite_and_join(a, b, group) == group);
  auto events = [&](const Node& n) { return status_of_group(n, group).value("events", -1); };
  wait_until([&] { return events(r) == events(a); }, propagate_bound,
             "the relay holds the group's events");
  b.stop();
  REQUIRE(r.stop());

  const fs::path dir = cluster.make_dir("files");
  const std::string data = make_file(dir / "plan.txt", 300'000, "canary-" + random_hex(12));
  const std::string id = a.json({"send", group, (dir / "plan.txt").string()}).value("id", std::string());
  REQUIRE(id.size() == 64);
  REQUIRE(a.stop());
  CHECK_FALSE(fs::exists(r.home() / "files" / group));  // the relay was down: no blob stored

  a.start();
  NodeOptions back = relay_for(a);
  back.listen = relay_address;  // where the group's relay event says it is
  r.start(back);
  // The manifest and 5 chunks.
  wait_until([&] { return blobs_held(r, group) == 6; }, propagate_bound,
             "the relay holds every blob of the file alice sent before her restart");
  wait_until([&] { return events(r) == events(a); }, propagate_bound,
             "the relay holds the file's post");
  REQUIRE(a.stop());

  b.start(NodeOptions::with_peers({relay_address}));
  wait_until([&] { return holds_event(b, group, id); }, propagate_bound, "bob holds the file's post");
  const fs::path copy = dir / "copy.txt";
  const Json got = b.json({"fetch", group, id, "-o", copy.string()});
  CHECK(got.value("moved", 0) == 6);
  CHECK(file_contents(copy) == data);
}

}  // namespace
}  // namespace qun::integration
