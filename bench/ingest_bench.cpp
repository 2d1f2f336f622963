// ingest_bench: how fast a member's node takes in a group's history, against the speed of the
// one cryptographic check it cannot skip (Ed25519 verification).
//
//   ingest_bench [--events N] [--seed S] [--json]
//   ingest_bench --events N --home DIR [--seed S]
//
// Measures, in one run:
//  1. verify_per_s: crypto verify() over N distinct signed messages of the history's mean event
//     size (and, as an extra figure, of the 44-byte message an event signature actually covers);
//  2. ingest_events_per_s: a realistic history (a founder, ~20 members who join and post, a few
//     removes, adds and rekeys, concurrent branches) is built and encoded up front; the timed
//     part is, per batch of limits::batch_events_max events: decode_event, Replica::ingest on an
//     early member's replica (signatures, admission, resolution, key opening), decrypting every
//     post (Replica::message), and writing the admitted events and head changes to a fresh Store
//     in one commit;
//  3. history_10k_ms: the same pipeline for a member who joins after 10,000 events, from an empty
//     store.
// With --home DIR (a home made by `qun init`, not running), nothing is timed: the history is built
// with the home's identity as its founder and written into the home's store as the daemon writes
// a group, so that `qun node --home DIR` starts with it (bench/history_bench runs the long-history
// goal of issue 13 on it: a newcomer catching up on a million events from a live node).
// Everything derives from the seed (Rng::from_u64) and synthetic clocks; only the timing reads
// std::chrono::steady_clock. Temporary stores are deleted at exit. Benchmarks never fail CI: the
// exit status is 1 only when the bench itself cannot run (bad flags, a history that does not
// build or is not fully admitted and read back).
#include <stdlib.h>  // mkdtemp

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto/aead.h"
#include "crypto/key_file.h"
#include "crypto/keys.h"
#include "crypto/rng.h"
#include "crypto/secret.h"
#include "node/event.h"
#include "node/group_store.h"
#include "node/limits.h"
#include "node/payload.h"
#include "node/replica.h"
#include "store/store.h"

namespace qun {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Temporary stores alive now, so that a failure exiting from deep inside still removes them.
std::vector<std::string>& live_temp_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ingest_bench: %s\n", what.c_str());
  for (const auto& dir : live_temp_dirs()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::exit(1);
}

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) die(std::string(what) + ": " + r.error().message());
  return std::move(r).value();
}

// Members the founder keeps in the group: removed members are replaced by new ones.
constexpr std::size_t members_target = 20;
// Per-mille chances, per step of the history, of a membership or key change.
constexpr std::uint64_t remove_per_mille = 1;
constexpr std::uint64_t rekey_per_mille = 1;
constexpr std::uint64_t topic_per_mille = 2;
// Chance (per cent) that a step is a burst of concurrent posts on the same parents, and its size.
constexpr std::uint64_t burst_per_cent = 20;
constexpr std::uint64_t burst_posts_max = 3;
constexpr std::size_t post_bytes_min = 16;
constexpr std::size_t post_bytes_max = 280;
constexpr std::uint64_t start_ms = 1'700'000'000'000;
constexpr std::uint64_t step_ms_max = 5000;

// A group history, encoded, and what a member needs to read it.
struct History {
  Hash group;
  std::vector<Bytes> encoded;  // in authoring order: parents first
  std::size_t posts = 0;
  std::size_t removes = 0, rekeys = 0, adds = 0, joins = 0;
  // An early member (joined with the first invite) and a member whose invite is the last event.
  std::unique_ptr<SigningKey> early_key, late_key;
  std::optional<InviteCode> early_code, late_code;
  std::size_t mean_event_bytes = 0;
  // The founder's replica, kept when the history is written into a home.
  std::unique_ptr<Replica> founder;
};

// Builds a history of exactly `events` events. The founder's replica authors membership and key
// changes through the Replica API; members' posts are drafted here against the founder's view
// (same parents, depth, epoch key and signature a member's replica would produce), which avoids
// keeping twenty replicas in sync just to build the input.
History build_history(std::size_t events, std::uint64_t seed, bool late_invite,
                      const SigningKey* founder_identity = nullptr) {
  Rng rng = Rng::from_u64(seed);
  History h;
  std::uint64_t now_ms = start_ms;
  auto tick = [&] { return now_ms += 1 + rng.uniform(step_ms_max); };
  std::vector<std::unique_ptr<SigningKey>> keys;  // keys[0] is the founder
  auto new_key = [&] {
    keys.push_back(std::make_unique<SigningKey>(SigningKey::generate(rng)));
    return keys.back().get();
  };
  const SigningKey& founder_key = founder_identity ? *founder_identity : *new_key();
  auto as_founder = [&] { return Authoring{founder_key, rng, tick()}; };
  Replica founder = must(Replica::create_group(as_founder(), "bench group", "founder",
                                               GroupSettings{}),
                         "create");
  h.group = founder.id();
  std::vector<Event> log{founder.group().ordered().front()->event};
  std::vector<const SigningKey*> members;  // posting members besides the founder

  auto record = [&](std::vector<Event> authored) {
    for (auto& e : authored) log.push_back(std::move(e));
  };
  auto ingest_drafts = [&](std::vector<Event> drafts) {
    auto report = founder.ingest(drafts);
    for (const auto& e : drafts) {
      const EventRecord* rec = founder.group().find(e.id);
      if (!rec || !rec->accepted) die("a drafted " + std::string(event_kind_name(e.kind)) +
                                      " was not accepted: " + (rec ? rec->why_not : "rejected"));
    }
    record(std::move(drafts));
  };
  auto random_text = [&] {
    std::string s(post_bytes_min + rng.uniform(post_bytes_max - post_bytes_min + 1), ' ');
    for (auto& c : s) c = static_cast<char>('a' + rng.uniform(26));
    return s;
  };
  auto draft_post = [&](const SigningKey& author, const std::vector<Hash>& parents) {
    const GroupState& s = founder.state();
    const SymmetricKey* key = founder.keyring().find(s.epoch, *s.current_key_event);
    if (!key) die("founder lacks the current epoch key");
    Event e;
    e.group = h.group;
    e.author = author.public_key();
    e.parents = parents;
    e.depth = founder.group().next_depth(parents);
    e.time_ms = tick();
    e.kind = EventKind::post;
    e.epoch = s.epoch;
    TextPayload p;
    p.text.nonce = random_nonce(rng);
    p.text.data = aead_encrypt(*key, p.text.nonce,
                               content_ad(e.kind, e.group, e.author, e.epoch),
                               encode_plain(PostPlain{random_text(), std::nullopt, h.group}));
    e.payload = encode_payload(p);
    sign_event(e, author);
    return e;
  };

  // The first members join through invites, each with its own replica (the history is short).
  while (members.size() < members_target) {
    const SigningKey* key = new_key();
    auto [invite, code] = must(founder.invite(as_founder(), 1, start_ms * 2, {}), "invite");
    log.push_back(invite);
    Replica joiner(h.group, key);
    (void)joiner.ingest(log);
    ingest_drafts({must(joiner.join(Authoring{*key, rng, tick()}, code, "member"), "join")});
    ++h.joins;
    if (!h.early_key) {
      h.early_key = std::move(keys.back());  // the object, and `key`, stay where they are
      h.early_code = std::move(code);
    }
    members.push_back(key);
  }

  const std::size_t body_end = late_invite ? events - 1 : events;
  while (log.size() < body_end) {
    const std::uint64_t roll = rng.uniform(1000);
    if (roll < remove_per_mille && log.size() + 2 <= body_end) {
      // Remove a member other than the early reader, then add a newcomer in its place.
      const std::size_t victim = 1 + rng.uniform(members.size() - 1);
      for (auto& e : must(founder.remove(as_founder(), members[victim]->public_key()), "remove"))
        log.push_back(std::move(e));
      const SigningKey* newcomer = new_key();
      log.push_back(must(founder.add(as_founder(), newcomer->public_key()), "add"));
      members[victim] = newcomer;
      ++h.removes;
      ++h.adds;
    } else if (roll < remove_per_mille + rekey_per_mille) {
      for (auto& e : must(founder.rekey(as_founder()), "rekey")) log.push_back(std::move(e));
      ++h.rekeys;
    } else if (roll < remove_per_mille + rekey_per_mille + topic_per_mille) {
      log.push_back(must(founder.set_topic(as_founder(), random_text().substr(0, 64)), "topic"));
    } else if (founder.state().needs_rekey()) {
      record(must(founder.post(as_founder(), random_text()), "post"));
      ++h.posts;
    } else {
      // One post, or a burst of concurrent posts by different members on the same heads.
      std::size_t n = rng.uniform(100) < burst_per_cent ? 2 + rng.uniform(burst_posts_max - 1) : 1;
      n = std::min(n, body_end - log.size());
      const std::vector<Hash> parents = founder.group().next_parents();
      std::vector<Event> drafts;
      const std::size_t first = rng.uniform(members.size());
      for (std::size_t i = 0; i < n; ++i) {
        drafts.push_back(draft_post(*members[(first + i) % members.size()], parents));
      }
      h.posts += n;
      ingest_drafts(std::move(drafts));
    }
  }
  if (late_invite) {
    auto [invite, code] = must(founder.invite(as_founder(), 1, start_ms * 2, {}), "late invite");
    log.push_back(invite);
    h.late_key = std::make_unique<SigningKey>(SigningKey::generate(rng));
    h.late_code = std::move(code);
  }
  if (log.size() != events) die("history has " + std::to_string(log.size()) + " events");

  std::size_t total_bytes = 0;
  for (const auto& e : log) {
    h.encoded.push_back(encode(e));
    total_bytes += h.encoded.back().size();
  }
  h.mean_event_bytes = total_bytes / log.size();
  if (founder_identity) h.founder = std::make_unique<Replica>(std::move(founder));
  return h;
}

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "qun-ingest-bench-XXXXXX");
    if (!mkdtemp(pattern.data())) die("cannot create a temporary directory");
    path_ = pattern;
    live_temp_dirs().push_back(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    std::erase(live_temp_dirs(), path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct PipelineResult {
  double total_s = 0, decode_s = 0, ingest_s = 0, read_s = 0, store_s = 0;
  std::size_t admitted = 0, posts_read = 0, batches = 0;
};

// The timed pipeline: what a member's node does with history arriving from a peer.
PipelineResult run_pipeline(const History& h, const SigningKey& self, const InviteCode& code) {
  TempDir dir;
  auto store = must(Store::open(dir.path()), "open store");
  Replica replica(h.group, &self);
  replica.hold_invite(code);
  std::set<Hash> stored_heads;
  std::unordered_map<Hash, ByteView, HashHasher> bytes_of;
  std::vector<Hash> unread;  // posts whose epoch key this node did not hold when they arrived
  bytes_of.reserve(limits::batch_events_max);

  PipelineResult r;
  const auto start = Clock::now();
  for (std::size_t begin = 0; begin < h.encoded.size(); begin += limits::batch_events_max) {
    const std::size_t end = std::min(h.encoded.size(), begin + limits::batch_events_max);
    auto phase = Clock::now();
    std::vector<Event> events;
    events.reserve(end - begin);
    bytes_of.clear();
    for (std::size_t i = begin; i < end; ++i) {
      auto e = must(decode_event(h.encoded[i]), "decode");
      bytes_of.emplace(e.id, h.encoded[i]);
      events.push_back(std::move(e));
    }
    r.decode_s += seconds_since(phase);

    phase = Clock::now();
    IngestReport report = replica.ingest(std::move(events));
    r.ingest_s += seconds_since(phase);

    phase = Clock::now();
    for (const auto& id : report.admitted) {
      if (replica.group().find(id)->event.kind != EventKind::post) continue;
      auto m = replica.message(id);
      if (m && m->text) {
        ++r.posts_read;
      } else {
        unread.push_back(id);
      }
    }
    r.read_s += seconds_since(phase);

    phase = Clock::now();
    WriteBatch batch;
    for (const auto& id : report.admitted) {
      batch.put_event(h.group, id, replica.group().find(id)->order_key, bytes_of.at(id));
    }
    const std::set<Hash>& heads = replica.group().heads();
    for (const auto& old : stored_heads)
      if (!heads.count(old)) batch.remove_head(h.group, old);
    for (const auto& now : heads)
      if (!stored_heads.count(now)) batch.add_head(h.group, now);
    stored_heads = heads;
    if (auto c = store->commit(batch); !c.ok()) die("commit: " + c.error().message());
    r.store_s += seconds_since(phase);
    r.admitted += report.admitted.size();
    ++r.batches;
  }
  // A newcomer gets its keys with the invite, at the end of the history: it reads the earlier
  // posts once they have arrived, as a client opening the group would.
  const auto phase = Clock::now();
  for (const auto& id : unread) {
    auto m = replica.message(id);
    if (m && m->text) ++r.posts_read;
  }
  r.read_s += seconds_since(phase);
  r.total_s = seconds_since(start);
  if (r.admitted != h.encoded.size()) {
    die("admitted " + std::to_string(r.admitted) + " of " + std::to_string(h.encoded.size()) +
        " events");
  }
  if (r.posts_read != h.posts) {
    die("read " + std::to_string(r.posts_read) + " of " + std::to_string(h.posts) + " posts");
  }
  auto count = must(store->event_count(h.group), "count");
  if (count != h.encoded.size()) die("store holds " + std::to_string(count) + " events");
  return r;
}

// Ed25519 verifications per second over `n` distinct messages of `message_bytes` each, signed
// by members_target different keys.
double verify_rate(std::size_t n, std::size_t message_bytes, std::uint64_t seed) {
  Rng rng = Rng::from_u64(seed ^ 0x766572696679);  // "verify"
  std::vector<SigningKey> keys;
  for (std::size_t i = 0; i < members_target; ++i) keys.push_back(SigningKey::generate(rng));
  std::vector<Bytes> messages(n, Bytes(message_bytes));
  std::vector<Signature> signatures;
  signatures.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    rng.fill(messages[i]);
    signatures.push_back(keys[i % keys.size()].sign(messages[i]));
  }
  std::size_t good = 0;
  const auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    good += verify(keys[i % keys.size()].public_key(), messages[i], signatures[i]) ? 1 : 0;
  }
  const double s = seconds_since(start);
  if (good != n) die("a signature did not verify");
  return static_cast<double>(n) / s;
}

// Writes the founder's replica of `h` into the store of the home at `home_dir`, in transactions of
// this many events: LMDB holds a whole transaction's dirty pages in memory.
constexpr std::size_t home_commit_events = 10'000;

void write_home(const History& h, const std::string& home_dir, const SigningKey& identity) {
  auto store = must(Store::open(home_dir + "/db"), "open the home's store");
  Replica& r = *h.founder;
  std::vector<Hash> order;
  order.reserve(r.group().size());
  for (const EventRecord* rec : r.group().ordered()) order.push_back(rec->event.id);
  const SymmetricKey storage = storage_key_for(identity);
  std::vector<BundleKey> keys = r.take_new_keys();
  for (std::size_t begin = 0; begin < order.size(); begin += home_commit_events) {
    IngestReport part;
    part.admitted.assign(order.begin() + static_cast<std::ptrdiff_t>(begin),
                         order.begin() + static_cast<std::ptrdiff_t>(
                                             std::min(order.size(), begin + home_commit_events)));
    WriteBatch batch;
    persist_into(batch, r, part, begin == 0 ? std::move(keys) : std::vector<BundleKey>{},
                 &storage);
    if (auto c = store->commit(batch); !c.ok()) die("commit: " + c.error().message());
  }
  auto count = must(store->event_count(h.group), "count");
  if (count != order.size()) die("the home's store holds " + std::to_string(count) + " events");
}

struct Options {
  std::size_t events = 10000;
  std::uint64_t seed = 1;
  bool json = false;
  std::string home;
};

Options parse(int argc, char** argv) {
  Options o;
  auto number = [&](int& i) -> std::uint64_t {
    if (i + 1 >= argc) die(std::string(argv[i]) + " needs a number");
    char* end = nullptr;
    const std::uint64_t v = std::strtoull(argv[++i], &end, 10);
    if (*end != '\0') die(std::string("not a number: ") + argv[i]);
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--events") {
      o.events = number(i);
    } else if (a == "--seed") {
      o.seed = number(i);
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--home") {
      if (i + 1 >= argc) die("--home needs a directory");
      o.home = argv[++i];
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: ingest_bench [--events N (default 10000)] [--seed S] [--json]\n"
                  "       ingest_bench --events N --home DIR [--seed S]   (writes, times nothing)\n");
      std::exit(0);
    } else {
      die("unknown option " + a + " (see --help)");
    }
  }
  // The first members' invites and joins alone take 2 * members_target + 1 events.
  if (o.events < 4 * members_target || o.events > 1'000'000) die("--events is 80..1000000");
  return o;
}

}  // namespace
}  // namespace qun

int main(int argc, char** argv) {
  using namespace qun;
  crypto_init();
  const Options o = parse(argc, argv);
  constexpr std::size_t history_10k_events = 10000;
  if (!o.home.empty()) {
    const SigningKey identity =
        must(read_key_file(o.home + "/identity.key", std::nullopt), "read the home's identity");
    const auto start = Clock::now();
    const History h = build_history(o.events, o.seed, false, &identity);
    write_home(h, o.home, identity);
    std::printf("%s\n", to_hex(h.group).c_str());
    std::fprintf(stderr,
                 "ingest_bench: wrote %zu events (%zu posts, %zu removes, %zu rekeys, mean %zu "
                 "bytes) into %s in %.1f s\n",
                 h.encoded.size(), h.posts, h.removes, h.rekeys, h.mean_event_bytes,
                 o.home.c_str(), seconds_since(start));
    return 0;
  }

  const auto build_start = Clock::now();
  const History main = build_history(o.events, o.seed, o.events == history_10k_events);
  std::optional<History> separate_10k;
  if (o.events != history_10k_events) {
    separate_10k = build_history(history_10k_events, o.seed, true);
  }
  const History& h10k = separate_10k ? *separate_10k : main;
  const double build_s = seconds_since(build_start);

  const double verify_per_s = verify_rate(o.events, main.mean_event_bytes, o.seed);
  // What verify_event actually signs: "qun-event-v2" (12 bytes) || id (32 bytes).
  const double verify_44b_per_s = verify_rate(o.events, 44, o.seed);
  const PipelineResult ingest = run_pipeline(main, *main.early_key, *main.early_code);
  const PipelineResult late = run_pipeline(h10k, *h10k.late_key, *h10k.late_code);

  const double ingest_per_s = static_cast<double>(main.encoded.size()) / ingest.total_s;
  const double ratio = ingest_per_s / verify_per_s;
  const double history_10k_ms = late.total_s * 1000;
  const auto ms = [](double s) { return s * 1000; };

  if (o.json) {
    std::printf(
        "{\"ingest_events_per_s\": %.0f, \"verify_per_s\": %.0f, \"ratio\": %.3f, "
        "\"history_10k_ms\": %.1f, \"events\": %zu, \"seed\": %llu, \"mean_event_bytes\": %zu, "
        "\"posts\": %zu, \"removes\": %zu, \"rekeys\": %zu, \"batches\": %zu, "
        "\"verify_44b_per_s\": %.0f, \"decode_ms\": %.1f, \"ingest_ms\": %.1f, "
        "\"read_ms\": %.1f, \"store_ms\": %.1f, \"build_s\": %.2f}\n",
        ingest_per_s, verify_per_s, ratio, history_10k_ms, main.encoded.size(),
        static_cast<unsigned long long>(o.seed), main.mean_event_bytes, main.posts, main.removes,
        main.rekeys, ingest.batches, verify_44b_per_s, ms(ingest.decode_s), ms(ingest.ingest_s),
        ms(ingest.read_s), ms(ingest.store_s), build_s);
    return 0;
  }
  std::printf("ingest_bench: %zu events (seed %llu): %zu posts, %zu joins, %zu removes (+%zu adds),"
              " %zu rekeys; mean event %zu bytes; built in %.2f s\n",
              main.encoded.size(), static_cast<unsigned long long>(o.seed), main.posts, main.joins,
              main.removes, main.adds, main.rekeys, main.mean_event_bytes, build_s);
  std::printf("%-34s %14s  %s\n", "measure", "value", "goal");
  std::printf("%-34s %14.0f\n", "verify/s (event-size messages)", verify_per_s);
  std::printf("%-34s %14.0f\n", "verify/s (44-byte signed message)", verify_44b_per_s);
  std::printf("%-34s %14.0f\n", "ingest events/s", ingest_per_s);
  std::printf("%-34s %14.3f  >= 0.5\n", "ratio ingest/verify", ratio);
  std::printf("%-34s %14.1f  well under 2000\n", "history 10k ms", history_10k_ms);
  std::printf("ingest time by phase (%zu batches of <= %zu): decode %.1f ms, ingest %.1f ms, "
              "read posts %.1f ms, store %.1f ms\n",
              ingest.batches, limits::batch_events_max, ms(ingest.decode_s), ms(ingest.ingest_s),
              ms(ingest.read_s), ms(ingest.store_s));
  return 0;
}
