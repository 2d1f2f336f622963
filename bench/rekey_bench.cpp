// rekey_bench: what one removal costs in a large group (docs/protocol.md, "Key parts").
//
//   rekey_bench [--members N (default 10000)] [--seed S] [--json]
//
// Builds a group of N members (the founder adds N - 1 members, each add sealing the key bundle
// to its member, as Replica::add does), then measures, in one run:
//  1. remove_ms: the founder's Replica::remove of one member: a fresh key sealed to the N - 2
//     others (one crypto_box_seal each), the key event and its key parts signed, checked and
//     ingested; remove_bytes and remove_events: what goes on the wire;
//  2. member_ingest_ms: a member's replica (one whose entry is in the last key part) ingesting
//     those events: admission (signatures), resolution, opening its entry and verifying the key
//     against the key event's check;
//  3. relay_ingest_ms: the same for a relay's replica (no key);
//  4. post_ingest_us: a member's replica ingesting one post after it, the mean of 50 (the choice
//     of current key is skipped for content, docs/protocol.md "Key epochs");
//  5. seal_ms: N crypto_box_seal of a 32-byte key alone, the floor of remove_ms.
// Everything derives from the seed; only the timing reads std::chrono::steady_clock. Benchmarks
// never fail CI: the exit status is 1 only when the bench itself cannot run.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "crypto/rng.h"
#include "crypto/seal.h"
#include "crypto/secret.h"
#include "node/event.h"
#include "node/limits.h"
#include "node/payload.h"
#include "node/replica.h"

namespace qun {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "rekey_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) die(std::string(what) + ": " + r.error().message());
  return std::move(r).value();
}

struct Options {
  std::size_t members = limits::members_max;
  std::uint64_t seed = 1;
  bool json = false;
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
    if (a == "--members") {
      o.members = number(i);
    } else if (a == "--seed") {
      o.seed = number(i);
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: rekey_bench [--members N (default %zu)] [--seed S] [--json]\n",
                  limits::members_max);
      std::exit(0);
    } else {
      die("unknown option " + a + " (see --help)");
    }
  }
  if (o.members < 3 || o.members > limits::members_max)
    die("--members is 3.." + std::to_string(limits::members_max));
  return o;
}

}  // namespace
}  // namespace qun

int main(int argc, char** argv) {
  using namespace qun;
  crypto_init();
  const Options o = parse(argc, argv);
  Rng rng = Rng::from_u64(o.seed);
  std::uint64_t now_ms = 1'700'000'000'000;
  const SigningKey founder_key = SigningKey::generate(rng);
  Replica founder = must(Replica::create_group(Authoring{founder_key, rng, now_ms}, "big", "ada",
                                               GroupSettings{}),
                         "create");

  // The adds, each sealing the founder's key bundle to its member, chained one after another
  // and ingested in one batch (Replica::add would check each on a copy of the group first, which
  // makes building 10,000 members quadratic; the events are the same).
  const auto build_start = Clock::now();
  std::vector<SigningKey> members;
  members.reserve(o.members - 1);
  std::vector<Event> adds;
  const Bytes bundle = encode_bundle(founder.keyring().bundle(limits::bundle_epochs_max));
  Hash parent = founder.state().history.back();
  std::uint64_t depth = 1;
  for (std::size_t i = 0; i + 1 < o.members; ++i) {
    members.push_back(SigningKey::generate(rng));
    AddPayload p;
    p.member = members.back().public_key();
    p.bundle_box = seal(must(to_x25519(p.member), "x25519"), bundle, rng);
    Event e;
    e.group = founder.id();
    e.author = founder_key.public_key();
    e.parents = {parent};
    e.depth = depth++;
    e.time_ms = ++now_ms;
    e.kind = EventKind::add;
    e.epoch = founder.state().epoch;
    e.payload = encode_payload(p);
    sign_event(e, founder_key);
    parent = e.id;
    adds.push_back(std::move(e));
  }
  auto built = founder.ingest(std::move(adds));
  if (founder.state().members.size() != o.members)
    die("the group has " + std::to_string(founder.state().members.size()) + " members, not " +
        std::to_string(o.members) + (built.rejected.empty() ? "" : ": " + built.rejected.front().second));
  const double build_ms = ms_since(build_start);

  // A member whose entry lands in the last event of the removal (the highest key in order),
  // and the victim (the lowest).
  const PublicKey victim = founder.state().members.begin()->first;
  const PublicKey last = founder.state().members.rbegin()->first;
  const SigningKey* reader = nullptr;
  for (const auto& k : members)
    if (k.public_key() == last) reader = &k;
  if (!reader) die("the last member in key order is the founder; try another --seed");
  Replica member = founder.clone_for(reader);
  Replica relay = founder.clone_for(nullptr);

  const auto remove_start = Clock::now();
  std::vector<Event> removal = must(founder.remove(Authoring{founder_key, rng, ++now_ms}, victim), "remove");
  const double remove_ms = ms_since(remove_start);
  std::uint64_t remove_bytes = 0;
  std::uint64_t largest = 0;
  for (const auto& e : removal) {
    remove_bytes += e.encoded_bytes;
    largest = std::max<std::uint64_t>(largest, e.encoded_bytes);
  }

  const auto member_start = Clock::now();
  auto report = member.ingest(removal);
  const double member_ms = ms_since(member_start);
  if (report.admitted.size() != removal.size()) die("the member did not admit the whole removal");
  if (member.unverified_key() || !member.state().current_key_event)
    die("the member holds no verified key after the removal");

  const auto relay_start = Clock::now();
  auto relay_report = relay.ingest(removal);
  const double relay_ms = ms_since(relay_start);
  if (relay_report.admitted.size() != removal.size()) die("the relay did not admit the whole removal");

  // The sealing alone, for comparison: one crypto_box_seal of a 32-byte key per member.
  const auto seal_start = Clock::now();
  {
    const SymmetricKey key = random_key(rng);
    for (const auto& [id, m] : founder.state().members)
      (void)seal(must(to_x25519(id), "x25519"), key.view(), rng);
  }
  const double seal_ms = ms_since(seal_start);

  // Posts after it: the mean of a member's ingest of one post.
  constexpr int posts = 50;
  double post_us = 0;
  for (int i = 0; i < posts; ++i) {
    auto post = must(founder.post(Authoring{founder_key, rng, ++now_ms}, "after the removal"), "post");
    if (post.size() != 1) die("the post rekeyed first");
    const auto post_start = Clock::now();
    (void)member.ingest(post);
    post_us += ms_since(post_start) * 1000 / posts;
    if (!member.message(post.back().id) || !member.message(post.back().id)->text)
      die("the member cannot read the post after the removal");
  }

  if (o.json) {
    std::printf(
        "{\"members\": %zu, \"seed\": %llu, \"remove_ms\": %.1f, \"remove_bytes\": %llu, "
        "\"remove_events\": %zu, \"largest_event_bytes\": %llu, \"member_ingest_ms\": %.1f, "
        "\"relay_ingest_ms\": %.1f, \"post_ingest_us\": %.1f, \"seal_ms\": %.1f, "
        "\"build_ms\": %.0f}\n",
        o.members, static_cast<unsigned long long>(o.seed), remove_ms,
        static_cast<unsigned long long>(remove_bytes), removal.size(),
        static_cast<unsigned long long>(largest), member_ms, relay_ms, post_us, seal_ms, build_ms);
    return 0;
  }
  std::printf("rekey_bench: a removal in a group of %zu members (seed %llu; built in %.0f ms)\n",
              o.members, static_cast<unsigned long long>(o.seed), build_ms);
  std::printf("%-38s %12.1f\n", "remove (seal, sign, check, ingest) ms", remove_ms);
  std::printf("%-38s %12llu\n", "bytes on the wire", static_cast<unsigned long long>(remove_bytes));
  std::printf("%-38s %12zu\n", "events (key event + key parts)", removal.size());
  std::printf("%-38s %12llu\n", "largest event bytes", static_cast<unsigned long long>(largest));
  std::printf("%-38s %12.1f\n", "a member's ingest ms", member_ms);
  std::printf("%-38s %12.1f\n", "a relay's ingest ms", relay_ms);
  std::printf("%-38s %12.1f\n", "a member's ingest of a later post us", post_us);
  std::printf("%-38s %12.1f\n", "sealing alone (one box per member) ms", seal_ms);
  return 0;
}
