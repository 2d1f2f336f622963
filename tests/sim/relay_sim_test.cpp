// Relays on the simulated network (issue 5): a relay takes on a group when an admin asks
// (request_serve), stores what members post, serves a member returning while everyone else is
// offline, never holds anything it could read, and keeps to its bounds (groups served, bytes per
// group). A non-admin's request gets the group dropped again; a node that is not a relay refuses.
// Every test prints the command that reproduces it (repro()) on failure.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "node/group_store.h"
#include "store/store.h"
#include "tests/sim/fixture.h"
#include "tests/store/test_util.h"

using namespace qun;
using namespace qun::sim;
using namespace qun::sim::test;

namespace {

bool holds_all(Simulation& sim, std::size_t i, const Hash& g, const std::vector<Hash>& ids) {
  if (!sim.online(i)) return false;
  const Replica* r = sim.node(i).group(g);
  if (!r) return false;
  return std::all_of(ids.begin(), ids.end(), [&](const Hash& id) { return r->group().has(id); });
}

// The ServeAnswers node i received for group g so far.
std::vector<node_output::ServeAnswer> answers(const Simulation& sim, std::size_t i, const Hash& g) {
  std::vector<node_output::ServeAnswer> out;
  for (const auto& r : sim.serve_answers())
    if (r.node == i && r.answer.group == g) out.push_back(r.answer);
  return out;
}

std::optional<GroupChange> change(const Simulation& sim, std::size_t i, const Hash& g,
                                  bool added) {
  for (const auto& c : sim.group_changes())
    if (c.node == i && c.group == g && c.added == added) return c;
  return std::nullopt;
}

// Waits for the one answer a request_serve gets.
node_output::ServeAnswer await_answer(Simulation& sim, std::size_t i, const Hash& g) {
  const std::size_t before = answers(sim, i, g).size();
  REQUIRE(sim.run_until([&] { return answers(sim, i, g).size() > before; },
                        sim.now() + serve_timeout_ms + 2'000));
  return answers(sim, i, g).back();
}

bool contains(const Bytes& haystack, const std::string& needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

// The post texts node i can read, in its history order.
std::vector<std::string> texts(Simulation& sim, std::size_t i, const Hash& g) {
  std::vector<std::string> out;
  for (const auto& m : sim.node(i).group(g)->history())
    if (m.kind == EventKind::post) out.push_back(m.text.value_or("<unreadable>"));
  return out;
}

// Founder 0 and member 1 in a group, with the overlay formed.
Hash two_members(Simulation& sim) {
  const Hash g = sim.create_group(0, "relayed");
  sim.join_group(1, 0, g);
  sim.run_for(3'000);
  return g;
}

// The founder (node 0) names the relay in g and has it serve g; the relay accepts.
void name_and_serve(Simulation& sim, const Hash& g, std::size_t relay) {
  sim.set_relay(0, g, relay);
  sim.request_serve(0, g, relay);
  REQUIRE(await_answer(sim, 0, g).accepted);
}

}  // namespace

// Proves (a): request_serve to a relay is accepted (ServeAnswer names the relay), the relay
// emits GroupAdded, catches up the whole group from the requester over the link the request
// came on, counts its bytes, and keeps the group past its probation (the requester is founder).
// Asking again is accepted too (already serving). Restarted from its disk, it serves on.
TEST_CASE("relay: an admin's request_serve is accepted and the relay catches up", "[sim][relay]") {
  Simulation sim(config_for_test(51));
  INFO("reproduce: " << sim.repro());
  sim.add_node();
  sim.add_node();
  const std::size_t relay = sim.add_relay();
  const Hash g = two_members(sim);
  std::vector<Hash> posts = sim.post(0, g, "before the relay");
  sim.run_for(1'000);

  sim.request_serve(0, g, relay);
  const auto answer = await_answer(sim, 0, g);
  CHECK(answer.accepted);
  CHECK(answer.reason.empty());
  CHECK(answer.address == sim.address(relay));
  CHECK(answer.relay == sim.identity(relay).public_key());
  const auto added = change(sim, relay, g, true);
  REQUIRE(added);
  CHECK(sim.disk_has(relay, g));

  REQUIRE(sim.run_until([&] { return holds_all(sim, relay, g, posts) && sim.converged(g); },
                        sim.now() + 10'000));
  const Replica* held = sim.node(relay).group(g);
  REQUIRE(held);
  std::uint64_t bytes = 0;
  for (const EventRecord* rec : held->group().ordered()) bytes += encode(rec->event).size();
  CHECK(sim.node(relay).group_bytes(g) == bytes);
  CHECK(sim.node(0).group_bytes(g) == bytes);

  // Past the probation it still serves the group, and new posts reach it.
  sim.run_for(serve_probation_ms + 5'000);
  CHECK_FALSE(change(sim, relay, g, false));
  REQUIRE(sim.node(relay).group(g) != nullptr);
  std::vector<Hash> later = sim.post(1, g, "after");
  REQUIRE(sim.run_until([&] { return holds_all(sim, relay, g, later); }, sim.now() + 10'000));

  sim.request_serve(0, g, relay);
  CHECK(await_answer(sim, 0, g).accepted);

  // A relay restarted from its disk (keyless replicas) serves the group again.
  sim.crash(relay);
  sim.restart(relay);
  REQUIRE(sim.node(relay).group(g) != nullptr);
  CHECK(sim.node(relay).group(g)->keyring().size() == 0);
  CHECK(sim.node(relay).group_bytes(g) == sim.node(0).group_bytes(g));
  std::vector<Hash> after_restart = sim.post(0, g, "after the relay restarted");
  REQUIRE(sim.run_until([&] { return holds_all(sim, relay, g, after_restart); },
                        sim.now() + 30'000));
}

// Proves (b): a group that names its relay keeps working while its members come and go. Member
// 1 keeps a link to the relay in its active set; it goes offline; the founder posts and then
// goes offline too; member 1 returns (from its disk), finds the relay through the relay event it
// stored, and gets every post from the relay, readable.
TEST_CASE("relay: a returning member gets everything from the relay", "[sim][relay]") {
  Simulation sim(config_for_test(52));
  INFO("reproduce: " << sim.repro());
  sim.add_node();
  sim.add_node();
  const std::size_t relay = sim.add_relay();
  const Hash g = two_members(sim);
  name_and_serve(sim, g, relay);
  REQUIRE(sim.run_until([&] { return sim.converged(g); }, sim.now() + 10'000));
  // Both members keep the relay among their active peers.
  const PublicKey relay_id = sim.identity(relay).public_key();
  auto linked = [&](std::size_t i) {
    auto a = sim.node(i).active_peers(g);
    return std::find(a.begin(), a.end(), relay_id) != a.end();
  };
  REQUIRE(sim.run_until([&] { return linked(0) && linked(1); }, sim.now() + 20'000));
  CHECK(sim.node(1).relays(g) == std::map<PublicKey, std::string>{{relay_id, sim.address(relay)}});

  sim.crash(1);
  std::vector<Hash> posts;
  for (int k = 0; k < 3; ++k) {
    for (const Hash& id : sim.post(0, g, "while 1 is away " + std::to_string(k)))
      posts.push_back(id);
    sim.run_for(500);
  }
  REQUIRE(sim.run_until([&] { return holds_all(sim, relay, g, posts); }, sim.now() + 10'000));
  sim.crash(0);

  sim.restart(1);
  const Millis back = sim.now();
  REQUIRE(sim.run_until([&] { return holds_all(sim, 1, g, posts); }, back + 30'000));
  WARN("member caught up from the relay after " << sim.now() - back << " ms virtual");
  for (const auto& d : sim.delivery_log())
    if (d.node == 1 && std::find(posts.begin(), posts.end(), d.event) != posts.end())
      CHECK(d.from == relay);
  const auto t = texts(sim, 1, g);
  REQUIRE(t.size() == 3);
  CHECK(t[2] == "while 1 is away 2");
}

// Proves (c): a relay holds nothing it can read. Its replica has no keys and shows no post
// text; its Persist outputs carried no keys; neither its simulated disk nor a real store written
// from its replica (group_store persist, as the daemon does) contains a post's plaintext, while
// the members read it.
TEST_CASE("relay: everything a relay holds is undecryptable", "[sim][relay]") {
  Simulation sim(config_for_test(53));
  INFO("reproduce: " << sim.repro());
  sim.add_node();
  sim.add_node();
  const std::size_t relay = sim.add_relay();
  const Hash g = two_members(sim);
  name_and_serve(sim, g, relay);
  const std::string secret = "the owl flies at midnight 7f3a";
  std::vector<Hash> posts = sim.post(0, g, secret);
  sim.run_for(1'000);  // the reply comes after the post, in every order
  for (const Hash& id : sim.post(1, g, secret + " (reply)")) posts.push_back(id);
  REQUIRE(sim.run_until([&] { return holds_all(sim, relay, g, posts) && sim.converged(g); },
                        sim.now() + 10'000));
  CHECK(texts(sim, 1, g) == std::vector<std::string>{secret, secret + " (reply)"});

  const Replica& held = *sim.node(relay).group(g);
  CHECK(held.keyring().size() == 0);
  std::size_t post_count = 0;
  for (const auto& m : held.history()) {
    if (m.kind != EventKind::post) continue;
    ++post_count;
    CHECK_FALSE(m.text.has_value());
  }
  CHECK(post_count == 2);
  CHECK_FALSE(held.name().has_value());

  const Bytes disk = sim.disk_bytes(relay, g);
  REQUIRE_FALSE(disk.empty());
  CHECK_FALSE(contains(disk, secret));
  CHECK_FALSE(contains(disk, "relayed"));  // the group name
  CHECK(sim.disk_key_count(relay, g) == 0);

  // The same through the real store: every file under the database directory.
  store_test::TempDir dir;
  {
    auto store = Store::open(dir.db());
    REQUIRE(store.ok());
    IngestReport all;
    for (const EventRecord* rec : held.group().ordered()) all.admitted.push_back(rec->event.id);
    REQUIRE(persist(**store, held, all, {}, nullptr).ok());
    auto keys = (*store)->keys(g);
    REQUIRE(keys.ok());
    CHECK(keys->empty());
  }
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (!entry.is_regular_file()) continue;
    ++files;
    std::ifstream in(entry.path(), std::ios::binary);
    const Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO("file " << entry.path());
    CHECK_FALSE(contains(bytes, secret));
  }
  CHECK(files > 0);
}

// Proves (d): a relay at relay_groups_max refuses another group with a reason naming its load,
// and keeps serving the one it has.
TEST_CASE("relay: a full relay refuses more groups", "[sim][relay]") {
  Simulation sim(config_for_test(54));
  INFO("reproduce: " << sim.repro());
  sim.add_node();
  NodeConfig config = Simulation::open_relay();
  config.relay_groups_max = 1;
  const std::size_t relay = sim.add_relay(config);
  const Hash first = sim.create_group(0, "first");
  const Hash second = sim.create_group(0, "second");
  sim.request_serve(0, first, relay);
  REQUIRE(await_answer(sim, 0, first).accepted);
  sim.request_serve(0, second, relay);
  const auto refused = await_answer(sim, 0, second);
  CHECK_FALSE(refused.accepted);
  CHECK(refused.reason == "relay full: serving 1 groups");
  CHECK(refused.relay == sim.identity(relay).public_key());
  CHECK(sim.node(relay).groups() == std::vector<Hash>{first});
  CHECK_FALSE(change(sim, relay, second, true));
  CHECK(sim.node(relay).stats().serves_refused == 1);
  REQUIRE(sim.run_until([&] { return sim.converged(first); }, sim.now() + 10'000));
}

// Proves (e): the byte bound. A relay past its byte bound keeps the group within it by dropping the payloads of the
// oldest posts, keeping their stubs, and refuses nothing: five 8 KB posts against room for two,
// the three oldest become stubs (counted per group and in stats, logged once however many
// drops), the relay stays within the bound, and a member returning while the founder is offline
// gets all five from it: the two newest readable, the three oldest shown as not stored.
TEST_CASE("relay: past the byte bound the oldest posts' payloads are dropped, the rest served",
          "[sim][relay]") {
  SimConfig config = config_for_test(55);
  std::vector<std::string> drop_logs;
  config.log = [&](std::size_t node, const LogRecord& r) {
    if (node == 2 && r.level == LogLevel::warn &&
        r.message.find("relay group over its bound") != std::string::npos)
      drop_logs.push_back(r.message);
  };
  Simulation sim(config);
  INFO("reproduce: " << sim.repro());
  sim.add_node();
  sim.add_node();
  const Hash g = two_members(sim);
  const std::string big(8'000, 'x');
  const std::uint64_t base = sim.node(0).group_bytes(g);
  // Room for the relay event and two 8 KB posts (each about 8.3 KB encoded), not three.
  NodeConfig rc = Simulation::open_relay();
  rc.relay_group_bytes_max = base + 20'000;
  const std::size_t relay = sim.add_relay(rc);
  REQUIRE(relay == 2);
  sim.set_relay(0, g, relay);
  sim.request_serve(0, g, relay);
  REQUIRE(await_answer(sim, 0, g).accepted);
  REQUIRE(sim.run_until([&] { return sim.converged(g); }, sim.now() + 10'000));
  sim.crash(1);

  std::vector<Hash> posts;
  for (int k = 0; k < 5; ++k) {
    for (const Hash& id : sim.post(0, g, big + std::to_string(k))) posts.push_back(id);
    sim.run_for(2'000);
  }
  REQUIRE(posts.size() == 5);
  REQUIRE(sim.run_until([&] { return holds_all(sim, relay, g, posts); }, sim.now() + 10'000));
  sim.run_for(20'000);  // heads exchanges bring nothing back
  Node& r = sim.node(relay);
  CHECK(r.group_bytes(g) <= rc.relay_group_bytes_max);
  CHECK(r.group_events_refused(g) == 0);
  CHECK(r.group_payloads_dropped(g) == 3);
  CHECK(r.stats().payloads_dropped == r.group_payloads_dropped(g));
  for (std::size_t k = 0; k < posts.size(); ++k)
    CHECK(r.group(g)->group().find(posts[k])->event.payload_dropped == (k < 3));
  REQUIRE(drop_logs.size() == 1);
  CHECK(drop_logs[0].find(short_hex(g)) != std::string::npos);
  CHECK(drop_logs[0].find("bound=" + std::to_string(rc.relay_group_bytes_max)) !=
        std::string::npos);
  // The disk holds the stubs too.
  const Bytes disk = sim.disk_bytes(relay, g);
  CHECK(disk.size() < base + 25'000);

  sim.crash(0);
  sim.restart(1);
  REQUIRE(sim.run_until([&] { return holds_all(sim, 1, g, posts); }, sim.now() + 30'000));
  const Replica& back = *sim.node(1).group(g);
  for (std::size_t k = 0; k < posts.size(); ++k) {
    auto m = back.message(posts[k]);
    REQUIRE(m);
    CHECK(m->stored == (k >= 3));
    if (k < 3) CHECK_FALSE(m->text);
    else CHECK(m->text == big + std::to_string(k));
  }
}

// Proves a relay refuses events only past relay_structure_factor times its bound, posts first:
// with a bound so small that the group's stubs alone pass twice it, later posts are refused
// (counted, logged), the relay stays within the cap, and still serves the group.
TEST_CASE("relay: past twice the bound, posts are refused", "[sim][relay]") {
  SimConfig config = config_for_test(56);
  std::vector<std::string> full_logs;
  config.log = [&](std::size_t node, const LogRecord& r) {
    if (node == 2 && r.level == LogLevel::warn &&
        r.message.find("relay group full") != std::string::npos)
      full_logs.push_back(r.message);
  };
  Simulation sim(config);
  INFO("reproduce: " << sim.repro());
  sim.add_node();
  sim.add_node();
  const Hash g = two_members(sim);
  const std::uint64_t base = sim.node(0).group_bytes(g);
  // Half the group as it is: its structure alone fills the cap, with a little room for stubs.
  NodeConfig rc = Simulation::open_relay();
  rc.relay_group_bytes_max = base / 2 + 1'000;
  const std::size_t relay = sim.add_relay(rc);
  sim.set_relay(0, g, relay);
  sim.request_serve(0, g, relay);
  REQUIRE(await_answer(sim, 0, g).accepted);
  REQUIRE(sim.run_until([&] { return sim.node(relay).group(g) &&
                                     sim.node(relay).group(g)->state().created; },
                        sim.now() + 10'000));
  sim.run_for(3'000);
  for (int k = 0; k < 20; ++k) {
    sim.post(0, g, "post " + std::to_string(k));
    sim.run_for(300);
  }
  REQUIRE(sim.run_until([&] { return sim.node(relay).group_events_refused(g) >= 1; },
                        sim.now() + 10'000));
  sim.run_for(5'000);
  Node& r = sim.node(relay);
  CHECK(r.group_bytes(g) + r.group(g)->group().pending_bytes() <=
        relay_structure_factor * rc.relay_group_bytes_max);
  CHECK(r.stats().events_refused_full == r.group_events_refused(g));
  REQUIRE(full_logs.size() == 1);
  CHECK(full_logs[0].find("cap=" + std::to_string(relay_structure_factor * rc.relay_group_bytes_max)) !=
        std::string::npos);
  CHECK(r.group(g) != nullptr);  // still serving
}

// Proves (f): a relay takes on a group for a member who is not an admin, but once it holds the
// requester's heads it sees that, drops the group (GroupDropped with the reason, its disk
// deleted) and refuses that member's next request for the group.
TEST_CASE("relay: a non-admin's request gets the group dropped", "[sim][relay]") {
  Simulation sim(config_for_test(56));
  INFO("reproduce: " << sim.repro());
  sim.add_node();
  sim.add_node();
  const std::size_t relay = sim.add_relay();
  const Hash g = two_members(sim);
  sim.request_serve(1, g, relay);
  CHECK(await_answer(sim, 1, g).accepted);  // accepted before the relay knows the group
  REQUIRE(sim.run_until([&] { return change(sim, relay, g, false).has_value(); },
                        sim.now() + serve_probation_ms));
  const auto dropped = change(sim, relay, g, false);
  CHECK(dropped->reason == "the requester is not an admin of the group");
  CHECK(sim.node(relay).group(g) == nullptr);
  CHECK_FALSE(sim.disk_has(relay, g));
  CHECK(sim.node(relay).stats().groups_dropped == 1);

  sim.request_serve(1, g, relay);
  const auto again = await_answer(sim, 1, g);
  CHECK_FALSE(again.accepted);
  CHECK(again.reason == "refused: not an admin of the group");
  // The founder may still ask.
  sim.request_serve(0, g, relay);
  CHECK(await_answer(sim, 0, g).accepted);
  REQUIRE(sim.run_until([&] { return sim.converged(g); }, sim.now() + 10'000));
  sim.run_for(serve_probation_ms + 2'000);
  CHECK(sim.node(relay).group(g) != nullptr);
}

// Proves a relay asked for a group id nobody holds (a requester that never sends data) drops it
// after serve_probation_ms without a create event.
TEST_CASE("relay: a group whose data never comes is dropped", "[sim][relay]") {
  Simulation sim(config_for_test(57));
  INFO("reproduce: " << sim.repro());
  sim.add_node();
  const std::size_t relay = sim.add_relay();
  const Hash g = sim.create_group(0, "vanishing");
  sim.request_serve(0, g, relay);
  REQUIRE(await_answer(sim, 0, g).accepted);
  // The requester forgets the group before the relay could catch up.
  sim.remove_group(0, g);
  REQUIRE(sim.run_until([&] { return change(sim, relay, g, false).has_value(); },
                        sim.now() + serve_probation_ms + 5'000));
  CHECK(change(sim, relay, g, false)->reason == "no create event within 60 s");
}

// Proves (h): a node that is not a relay refuses Serve ("not a relay") and adds nothing; a
// request to an address nobody answers fails with "could not connect"; one for a group this node
// does not hold is refused at once.
TEST_CASE("relay: a non-relay refuses, and requests fail cleanly", "[sim][relay]") {
  Simulation sim(config_for_test(58));
  INFO("reproduce: " << sim.repro());
  sim.add_node();
  const std::size_t plain = sim.add_node();
  const Hash g = sim.create_group(0, "solo");
  sim.request_serve(0, g, plain);
  const auto answer = await_answer(sim, 0, g);
  CHECK_FALSE(answer.accepted);
  CHECK(answer.reason == "not a relay");
  CHECK(answer.relay == sim.identity(plain).public_key());
  CHECK(sim.node(plain).groups().empty());
  CHECK(sim.group_changes().empty());

  sim.request_serve(0, g, std::string("sim:99"));
  const auto nobody = await_answer(sim, 0, g);
  CHECK_FALSE(nobody.accepted);
  CHECK(nobody.reason == "could not connect");
  CHECK_FALSE(nobody.relay.has_value());

  Hash unknown;
  unknown.bytes.fill(7);
  sim.request_serve(0, unknown, plain);
  const auto unheld = answers(sim, 0, unknown);
  REQUIRE(unheld.size() == 1);
  CHECK(unheld[0].reason == "this node does not hold the group");
}

// Issue 10, finding 10: who may claim a relay's group slots.

// Proves a stranger cannot fill a relay's slots: a relay that allows only the founder's key
// refuses a stranger's requests for groups of its own (with a reason saying they wait for the
// operator), takes none of them on, keeps at most serve_waiting_per_requester_max of them for
// the operator, and still has every slot for the founder.
TEST_CASE("relay: a stranger cannot fill the slots", "[sim][relay][quota]") {
  Simulation sim(config_for_test(60));
  INFO("reproduce: " << sim.repro());
  sim.add_node();                                  // 0: the founder the operator trusts
  const std::size_t stranger = sim.add_node();     // 1: anybody
  NodeConfig rc;
  rc.relay_groups_max = 2;
  rc.relay_allow = {sim.identity(0).public_key()};
  const std::size_t relay = sim.add_relay(rc);
  std::vector<Hash> theirs;
  for (int k = 0; k < 6; ++k) {
    theirs.push_back(sim.create_group(stranger, "squat-" + std::to_string(k)));
    sim.request_serve(stranger, theirs.back(), relay);
    const auto answer = await_answer(sim, stranger, theirs.back());
    CHECK_FALSE(answer.accepted);
    CHECK(answer.reason == "waiting for the relay operator's approval (qun relay approve)");
  }
  CHECK(sim.node(relay).groups().empty());
  CHECK(sim.node(relay).serve_waiting().size() == serve_waiting_per_requester_max);
  const Hash mine = sim.create_group(0, "mine");
  const Hash also = sim.create_group(0, "also mine");
  sim.request_serve(0, mine, relay);
  CHECK(await_answer(sim, 0, mine).accepted);
  sim.request_serve(0, also, relay);
  CHECK(await_answer(sim, 0, also).accepted);
  sim.run_for(serve_probation_ms + 2'000);
  CHECK(sim.node(relay).groups().size() == 2);
}

// Proves the approval list is bounded under a flood from many keys (keys cost nothing): twenty
// strangers each ask for four groups of their own; the relay keeps serve_waiting_max of the
// requests (the newest), takes none of them on, and a key on its allow-list still gets served.
TEST_CASE("relay: a flood of requests from many keys keeps the approval list bounded",
          "[sim][relay][quota]") {
  Simulation sim(config_for_test(62));
  INFO("reproduce: " << sim.repro());
  sim.add_node();  // 0: the founder the operator trusts
  constexpr std::size_t strangers = 20;
  constexpr int groups_each = 4;
  static_assert(strangers * groups_each > serve_waiting_max);
  std::vector<std::size_t> flood;
  for (std::size_t i = 0; i < strangers; ++i) flood.push_back(sim.add_node());
  NodeConfig rc;
  rc.relay_allow = {sim.identity(0).public_key()};
  const std::size_t relay = sim.add_relay(rc);
  Hash last;
  for (int k = 0; k < groups_each; ++k) {
    for (std::size_t s : flood) {
      last = sim.create_group(s, "squat-" + std::to_string(s) + "-" + std::to_string(k));
      sim.request_serve(s, last, relay);
    }
    sim.run_for(2'000);
  }
  CHECK(sim.node(relay).groups().empty());
  const auto& waiting = sim.node(relay).serve_waiting();
  CHECK(waiting.size() == serve_waiting_max);
  CHECK(std::any_of(waiting.begin(), waiting.end(), [&](const ServeWaiting& w) { return w.group == last; }));
  const Hash mine = sim.create_group(0, "mine");
  sim.request_serve(0, mine, relay);
  CHECK(await_answer(sim, 0, mine).accepted);
}

// Proves an approved requester gets its group served: the operator approves a waiting request
// by group (approve_serve) and the relay takes the group on and catches it up, keeping it once
// it sees the requester is an admin; allowing a key (allow_requester) takes on what that key
// asked for; and an allowed key is held to relay_groups_per_requester_max.
TEST_CASE("relay: an approved requester can claim slots, within its quota", "[sim][relay][quota]") {
  Simulation sim(config_for_test(61));
  INFO("reproduce: " << sim.repro());
  sim.add_node();
  sim.add_node();
  NodeConfig rc;
  rc.relay_groups_per_requester_max = 2;
  const std::size_t relay = sim.add_relay(rc);
  const Hash g = sim.create_group(0, "approved");
  sim.post(0, g, "hello relay");
  sim.request_serve(0, g, relay);
  CHECK_FALSE(await_answer(sim, 0, g).accepted);
  REQUIRE(sim.node(relay).serve_waiting().size() == 1);
  CHECK(sim.node(relay).approve_serve(sim.now(), Hash{}).error().code() == Errc::not_found);
  REQUIRE(sim.node(relay).approve_serve(sim.now(), g).ok());
  REQUIRE(sim.run_until([&] { return sim.converged(g); }, sim.now() + 10'000));
  CHECK(sim.node(relay).serve_waiting().empty());
  sim.run_for(serve_probation_ms + 2'000);
  CHECK(sim.node(relay).group(g) != nullptr);  // kept: the requester is the founder

  // Node 1's requests wait until its key is allowed; then they are taken on, within its quota.
  std::vector<Hash> its;
  for (int k = 0; k < 3; ++k) {
    its.push_back(sim.create_group(1, "its-" + std::to_string(k)));
    sim.request_serve(1, its.back(), relay);
    CHECK_FALSE(await_answer(sim, 1, its.back()).accepted);
  }
  const auto taken = sim.node(relay).allow_requester(sim.now(), sim.identity(1).public_key());
  CHECK(taken.size() == 2);
  CHECK(sim.node(relay).groups().size() == 3);
  sim.request_serve(1, its[2], relay);
  const auto over = await_answer(sim, 1, its[2]);
  CHECK_FALSE(over.accepted);
  CHECK(over.reason == "quota: this relay serves 2 groups for you already");
}

// Proves issue 10's relay property: a member flooding posts far past the relay's byte bound
// (here eight times it) keeps none of the group's other events off the relay, and a member who
// was offline during the whole flood, syncing from the relay alone, gets every membership, role,
// key and relay event and the newest posts, readable. How: during the flood the founder lets a
// new member join, promotes it, kicks another member (a removal with a new epoch key) and names
// the relay again; afterwards it posts once more. Then everyone but the relay goes offline and
// the late member returns: it holds every event the founder holds, the same members, roles and
// epoch, reads the founder's last post and the flood's newest, and sees the oldest flood posts
// as not stored. The relay refused nothing, dropped payloads and stayed within its bound.
TEST_CASE("relay: a flooding member fills the bound, an offline member still gets everything",
          "[sim][relay][quota]") {
  Simulation sim(config_for_test(62));
  INFO("reproduce: " << sim.repro());
  sim.add_node();                                // 0: founder
  const std::size_t flooder = sim.add_node();    // 1: a member who floods
  const std::size_t late = sim.add_node();       // 2: offline during the flood
  const std::size_t joiner = sim.add_node();     // 3: joins during the flood
  const std::size_t kicked = sim.add_node();     // 4: removed during the flood
  const Hash g = two_members(sim);
  sim.join_group(late, 0, g);
  sim.join_group(kicked, 0, g);
  sim.run_for(3'000);
  const std::uint64_t base = sim.node(0).group_bytes(g);
  NodeConfig rc = Simulation::open_relay();
  rc.relay_group_bytes_max = base + 30'000;
  const std::size_t relay = sim.add_relay(rc);
  name_and_serve(sim, g, relay);
  REQUIRE(sim.run_until([&] { return sim.converged(g); }, sim.now() + 10'000));
  sim.crash(late);

  Rng rng = Rng::from_u64(62);
  auto as_founder = [&] { return Authoring{sim.identity(0), rng, sim_epoch_ms + sim.now()}; };
  const std::string big(8'000, 'x');
  std::vector<Hash> flood;
  for (int k = 0; k < 30; ++k) {
    for (const Hash& id : sim.post(flooder, g, big + std::to_string(k))) flood.push_back(id);
    sim.run_for(400);
    if (k == 8) sim.join_group(joiner, 0, g);
    if (k == 14) {
      Replica* f = sim.node(0).group(g);
      auto promoted = f->set_role(as_founder(), sim.identity(joiner).public_key(), Role::admin);
      REQUIRE(promoted.ok());
      sim.publish(0, g, {*promoted});
    }
    if (k == 20) {
      auto removal = sim.node(0).group(g)->remove(as_founder(), sim.identity(kicked).public_key());
      REQUIRE(removal.ok());
      sim.publish(0, g, *removal);
    }
    if (k == 26) sim.set_relay(0, g, relay);
  }
  const std::vector<Hash> last = sim.post(0, g, "after the flood");
  REQUIRE(sim.run_until([&] { return holds_all(sim, relay, g, last) && holds_all(sim, relay, g, flood); },
                        sim.now() + 30'000));
  const Node& r = sim.node(relay);
  CHECK(r.group_events_refused(g) == 0);
  CHECK(r.group_payloads_dropped(g) >= 20);
  CHECK(r.group_bytes(g) + r.group(g)->group().pending_bytes() <= rc.relay_group_bytes_max);

  // Everything the founder holds, as the founder sees it, before everyone but the relay leaves.
  const Replica& f = *sim.node(0).group(g);
  std::vector<Hash> all;
  for (const EventRecord* rec : f.group().ordered()) all.push_back(rec->event.id);
  const GroupState expected = f.state();
  for (std::size_t i : {std::size_t{0}, flooder, joiner, kicked}) sim.crash(i);
  sim.restart(late);
  REQUIRE(sim.run_until([&] { return holds_all(sim, late, g, all); }, sim.now() + 60'000));
  const Replica& back = *sim.node(late).group(g);
  CHECK(back.state().history == expected.history);
  CHECK(back.state().epoch == expected.epoch);
  CHECK(back.state().members.size() == expected.members.size());
  for (const auto& [id, m] : expected.members) {
    REQUIRE(back.state().is_member(id));
    CHECK(back.state().role_of(id) == m.role);
  }
  CHECK_FALSE(back.state().is_member(sim.identity(kicked).public_key()));
  CHECK(back.state().relays == expected.relays);
  for (const EventRecord* rec : back.group().ordered())
    CHECK((!rec->event.payload_dropped || rec->event.kind == EventKind::post));
  CHECK(back.message(last.back())->text == "after the flood");
  CHECK(back.message(flood.back())->text == big + "29");
  CHECK_FALSE(back.message(flood.front())->stored);
  CHECK_FALSE(back.message(flood.front())->text);
}
