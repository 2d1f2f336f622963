#include "fuzz/fixture.h"

#include <cstdio>
#include <cstdlib>

#include "crypto/rng.h"
#include "node/replica.h"

namespace qun::fuzz {

void fail(const char* what) {
  std::fprintf(stderr, "qun fuzz: invariant violated: %s\n", what);
  std::abort();
}

namespace {

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "qun fuzz fixture: %s: %s\n", what, r.error().message().c_str());
    std::abort();
  }
  return std::move(r).value();
}

// Feeds a replica every event of the log it has not seen (duplicates are ignored).
void sync(Replica& r, const std::vector<Event>& log) { (void)r.ingest(log); }

}  // namespace

Fixture build_fixture() {
  constexpr std::uint64_t t0_ms = 1'700'000'000'000;  // fixed: the fixture never reads a clock
  constexpr std::uint64_t expires_ms = t0_ms + 365ull * 24 * 3600 * 1000;
  Rng rng = Rng::from_u64(0x71756e2d66757a7a);  // "qun-fuzz"
  Fixture f;
  for (int i = 0; i < 5; ++i) f.keys.push_back(SigningKey::generate(rng));
  std::uint64_t now_ms = t0_ms;
  auto at = [&](int who) { return Authoring{f.keys[who], rng, now_ms += 1000}; };
  auto record = [&](Event e) { f.events.push_back(std::move(e)); };

  Replica founder = must(Replica::create_group(at(0), "fuzz group", "founder", GroupSettings{}),
                         "create");
  record(founder.group().ordered().front()->event);
  f.group = founder.id();

  std::vector<Replica> members;
  for (int m = 1; m <= 2; ++m) {
    auto [invite, code] = must(founder.invite(at(0), 1, expires_ms, {"127.0.0.1:7000"}), "invite");
    record(invite);
    Replica joiner(f.group, &f.keys[m]);
    sync(joiner, f.events);
    record(must(joiner.join(at(m), code, m == 1 ? "one" : "two"), "join"));
    (void)founder.ingest({f.events.back()});
    f.codes.push_back(std::move(code));
    members.push_back(std::move(joiner));
  }
  for (auto& e : must(founder.post(at(0), "hello"), "post")) record(std::move(e));
  sync(members[0], f.events);
  for (auto& e : must(members[0].post(at(1), "hi from one"), "post")) record(std::move(e));
  (void)founder.ingest({f.events.back()});
  record(must(founder.add(at(0), f.keys[3].public_key()), "add"));
  record(must(founder.set_topic(at(0), "a topic"), "topic"));
  record(must(founder.set_role(at(0), f.keys[1].public_key(), Role::admin), "set-role"));
  for (auto& e : must(founder.rekey(at(0)), "rekey")) record(std::move(e));
  for (auto& e : must(founder.remove(at(0), f.keys[2].public_key()), "remove")) record(std::move(e));
  sync(members[0], f.events);
  for (auto& e : must(members[0].post(at(1), "after the removal"), "post")) record(std::move(e));
  (void)founder.ingest({f.events.back()});
  record(must(founder.leave(at(0)), "leave"));

  for (const auto& e : f.events) f.encoded.push_back(encode(e));
  return f;
}

}  // namespace qun::fuzz
