// The application service (app/service.h) without a daemon: joins that wait for catch-up and
// their deadline, relay requests, leaves that linger until they went out, the outbox and its
// bound, read markers and the unread and mention counts. Each test feeds inputs and checks the
// outputs drained from poll(), as net/daemon.cpp carries them out.
#include "app/service.h"

#include <catch2/catch.hpp>

#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::app;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;

Hash hash_of(std::uint8_t n) {
  Hash h{};
  h.data()[0] = n;
  return h;
}

InviteCode code_for(const Hash& g, std::uint8_t secret, std::string peer) {
  InviteCode code{g, Seed{}, {std::move(peer)}};
  code.secret.data()[0] = secret;
  return code;
}

std::vector<Output> drain(Service& s) {
  std::vector<Output> out;
  while (auto o = s.poll()) out.push_back(std::move(*o));
  return out;
}

template <typename T>
std::vector<T> only(const std::vector<Output>& all) {
  std::vector<T> out;
  for (const auto& o : all)
    if (auto* t = std::get_if<T>(&o)) out.push_back(*t);
  return out;
}

}  // namespace

// Proves a join's waiters are answered with the group once the join is done, that the joins are
// saved on every change and read back at start-up, and that a request that waited
// join_answer_ms_max is told the join goes on while the join itself stays.
TEST_CASE("service: joins wait, answer, time out and survive a restart", "[app]") {
  Service s;
  const Hash g = hash_of(1), h = hash_of(2);
  s.join_started(code_for(g, 7, "10.0.0.1:7420"));
  s.join_started(code_for(h, 8, "10.0.0.2:7420"));
  s.wait_for_join(g, Waiter{1, 11, 0});
  s.wait_for_join(h, Waiter{2, 22, 0});
  s.wait_for_join(h, Waiter{3, 33, 30'000});
  auto saved = only<output::SaveMeta>(drain(s));
  REQUIRE(!saved.empty());
  CHECK(saved.back().key == joins_key);

  Service restarted;
  auto joining = restarted.load_joins(saved.back().value);
  CHECK(joining == std::vector<Hash>{g, h});
  REQUIRE(restarted.join_code(g));
  CHECK(restarted.join_code(g)->peers == std::vector<std::string>{"10.0.0.1:7420"});

  s.join_done(g);
  auto out = drain(s);
  auto replies = only<output::Reply>(out);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].client == 1);
  CHECK(replies[0].id == 11);
  CHECK(replies[0].result.value()["group"] == to_hex(g));
  CHECK_FALSE(s.joining(g));
  CHECK(only<output::SaveMeta>(out).size() == 1);

  s.on_tick(join_answer_ms_max - 1, {});
  CHECK(drain(s).empty());
  s.on_tick(join_answer_ms_max, {});
  replies = only<output::Reply>(drain(s));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].client == 2);
  CHECK(!replies[0].result.ok());
  CHECK(replies[0].result.error().context().find("keeps trying") != std::string::npos);
  CHECK(s.joining(h));

  s.join_failed(h, "the invite was closed");
  replies = only<output::Reply>(drain(s));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].client == 3);
  CHECK(replies[0].result.error().context() == "the invite was closed");
  CHECK(s.joins().empty());
}

// Proves the waiters of one join are bounded: past waiters_per_answer_max a request is answered
// at once, and the earlier ones still wait.
TEST_CASE("service: waiters per join are bounded", "[app]") {
  Service s;
  const Hash g = hash_of(1);
  s.join_started(code_for(g, 1, "10.0.0.1:7420"));
  for (std::size_t i = 0; i < waiters_per_answer_max; ++i) s.wait_for_join(g, Waiter{i, 0, 0});
  CHECK(only<output::Reply>(drain(s)).empty());
  s.wait_for_join(g, Waiter{999, 0, 0});
  auto replies = only<output::Reply>(drain(s));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].client == 999);
  s.join_done(g);
  CHECK(only<output::Reply>(drain(s)).size() == waiters_per_answer_max);
}

// Proves relay requests wait per group and address and are handed back once, together.
TEST_CASE("service: relay requests wait for the relay's answer", "[app]") {
  Service s;
  const Hash g = hash_of(1);
  s.wait_for_serve(g, "relay:7420", Waiter{1, 1, 0});
  s.wait_for_serve(g, "relay:7420", Waiter{2, 2, 0});
  s.wait_for_serve(g, "other:7420", Waiter{3, 3, 0});
  CHECK(s.take_serve_waiters(g, "relay:7420").size() == 2);
  CHECK(s.take_serve_waiters(g, "relay:7420").empty());
  CHECK(s.take_serve_waiters(g, "other:7420").size() == 1);
}

// Proves a group left is dropped leave_linger_ms after the leave when a peer was linked since,
// and only after leave_linger_ms_max when none ever was; and that a join forgets the leave.
TEST_CASE("service: a left group lingers until the leave went out", "[app]") {
  Service s;
  const Hash linked_at_leave = hash_of(1), linked_later = hash_of(2), never = hash_of(3),
             rejoined = hash_of(4);
  s.left(linked_at_leave, 0, true);
  s.left(linked_later, 0, false);
  s.left(never, 0, false);
  s.left(rejoined, 0, true);
  s.join_started(code_for(rejoined, 1, "10.0.0.1:7420"));
  CHECK_FALSE(s.leaving(rejoined));
  (void)drain(s);

  s.on_tick(1'000, {linked_later});
  CHECK(only<output::DropGroup>(drain(s)).empty());
  s.on_tick(leave_linger_ms, {});
  auto dropped = only<output::DropGroup>(drain(s));
  REQUIRE(dropped.size() == 2);
  CHECK(dropped[0].group == linked_at_leave);
  CHECK(dropped[1].group == linked_later);
  CHECK(dropped[0].why == "left");
  CHECK(s.leaving(never));
  s.on_tick(leave_linger_ms_max - 1, {});
  CHECK(only<output::DropGroup>(drain(s)).empty());
  s.on_tick(leave_linger_ms_max, {});
  dropped = only<output::DropGroup>(drain(s));
  REQUIRE(dropped.size() == 1);
  CHECK(dropped[0].group == never);
  CHECK_FALSE(s.leaving(never));
}

// Proves the outbox keeps the newest outbox_ids_max ids, is saved on every change and read back,
// counts only posts among the events it holds, and is emptied once (and deleted from the store).
TEST_CASE("service: outbox bound, posts counted, saved and cleared", "[app]") {
  Peer a(0);
  Replica r = must(Replica::create_group(a.at(t0), "lobby", "ada", GroupSettings{}));
  const Hash g = r.id();
  auto post = must(r.post(a.at(t0 + 1), "hello"));
  auto topic = must(r.set_topic(a.at(t0 + 2), "be kind"));

  Service s;
  std::vector<Hash> ids;
  for (const auto& e : post) ids.push_back(e.id);
  ids.push_back(topic.id);
  s.queue(g, ids);
  auto saved = only<output::SaveMeta>(drain(s));
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].key == outbox_key(g));
  CHECK(s.outbox_posts(g, &r) == 1);

  Service restarted;
  restarted.load_outbox(g, saved[0].value);
  CHECK(restarted.outbox(g) == ids);

  std::vector<Hash> many;
  for (std::size_t i = 0; i < outbox_ids_max + 5; ++i) {
    Hash h{};
    h.data()[0] = static_cast<std::uint8_t>(i);
    h.data()[1] = static_cast<std::uint8_t>(i >> 8);
    many.push_back(h);
  }
  s.queue(g, many);
  CHECK(s.outbox(g).size() == outbox_ids_max);
  CHECK(s.outbox(g).back() == many.back());
  (void)drain(s);

  CHECK(s.clear_outbox(g));
  saved = only<output::SaveMeta>(drain(s));
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].value.empty());
  CHECK_FALSE(s.clear_outbox(g));
  CHECK(drain(s).empty());
  CHECK(s.outbox_groups().empty());
}

// Proves unread counts only others' posts after the read marker, mentions follow the one
// mention rule (case folded), and the marker round-trips through its stored form.
TEST_CASE("service: read markers, unread and mention counts", "[app]") {
  Peer a(0);
  Replica r = must(Replica::create_group(a.at(t0), "lobby", "ada", GroupSettings{}));
  must(r.post(a.at(t0 + 1), "my own post, ZOË"));
  const PublicKey other = Peer(1).key.public_key();
  // Every post here is ada's own: nothing is unread for ada, and for anyone else all are.
  CHECK(unread(r, 0, a.key.public_key(), "zoë").posts == 0);
  const Unread u = unread(r, 0, other, "zoë");
  CHECK(u.posts == 1);
  CHECK(u.mentions == 1);
  CHECK(unread(r, r.state().history.size(), other, "zoë").posts == 0);

  CHECK(decode_read_mark(encode_read_mark(123456789)) == 123456789);
  CHECK(decode_read_mark(Bytes{1, 2, 3}) == 0);
  Service s;
  s.mark_read(r.id(), 5);
  auto saved = only<output::SaveMeta>(drain(s));
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].key == read_key(r.id()));
  CHECK(decode_read_mark(saved[0].value) == 5);
}

// Proves unread counts per channel: each post counts in its own channel until that channel's
// marker or the group's passes it, a channel marker leaves the other channels unread, and the
// markers are saved under their own keys (so they survive a restart).
TEST_CASE("service: read markers per channel", "[app]") {
  Peer a(0);
  Replica r = must(Replica::create_group(a.at(t0), "lobby", "ada", GroupSettings{}));
  const Hash dev = must(r.create_channel(a.at(t0 + 1), "dev")).back().id;
  must(r.post(a.at(t0 + 2), "in general"));
  must(r.post(a.at(t0 + 3), "in dev, zoë?", PostOptions{std::nullopt, dev, false}));
  must(r.post(a.at(t0 + 4), "dev again", PostOptions{std::nullopt, dev, false}));
  const PublicKey other = Peer(1).key.public_key();
  const std::size_t end = r.state().history.size();

  Unread u = unread(r, ReadMarks{}, other, "zoë");
  CHECK(u.posts == 3);
  CHECK(u.mentions == 1);
  CHECK(u.by_channel.at(r.id()).posts == 1);
  CHECK(u.by_channel.at(dev).posts == 2);
  CHECK(u.by_channel.at(dev).mentions == 1);
  // #dev read: #general's post is still unread.
  u = unread(r, ReadMarks{0, {{dev, end}}}, other, "zoë");
  CHECK(u.posts == 1);
  CHECK(u.mentions == 0);
  CHECK(u.by_channel.count(dev) == 0);
  CHECK(u.by_channel.at(r.id()).posts == 1);
  // The group marker covers every channel, whatever a channel's own says.
  u = unread(r, ReadMarks{end, {{dev, 0}}}, other, "zoë");
  CHECK(u.posts == 0);
  CHECK(u.by_channel.empty());

  Service s;
  s.mark_read(r.id(), end, dev);
  s.mark_read(r.id(), end);
  auto saved = only<output::SaveMeta>(drain(s));
  REQUIRE(saved.size() == 2);
  CHECK(saved[0].key == read_key(r.id(), dev));
  CHECK(saved[0].key != read_key(r.id()));
  CHECK(saved[1].key == read_key(r.id()));
  CHECK(decode_read_mark(saved[0].value) == end);
  // Forgetting the group deletes its channels' markers too.
  s.forget(r.id(), {r.id(), dev});
  saved = only<output::SaveMeta>(drain(s));
  bool dev_deleted = false;
  for (const auto& m : saved) dev_deleted |= m.key == read_key(r.id(), dev) && m.value.empty();
  CHECK(dev_deleted);
}

// Proves the hidden list: hiding twice or unhiding a member not hidden changes nothing and says
// so, every change is saved and reads back, the list stops at hidden_members_max, and a hidden
// member's posts are not unread.
TEST_CASE("service: hidden members", "[app]") {
  Peer a(0), b(1);
  Service s;
  REQUIRE(s.hide(b.key.public_key()).ok());
  CHECK(s.hide(b.key.public_key()).error().code() == Errc::already_exists);
  auto saved = only<output::SaveMeta>(drain(s));
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].key == hidden_key);
  Service restarted;
  restarted.load_hidden(saved[0].value);
  CHECK(restarted.hidden(b.key.public_key()));
  CHECK_FALSE(restarted.hidden(a.key.public_key()));

  // b's post in a's group is unread for a third member unless that member hides b.
  Replica r = must(Replica::create_group(a.at(t0), "lobby", "ada", GroupSettings{}));
  must(r.post(a.at(t0 + 1), "from ada"));
  const PublicKey third = Peer(2).key.public_key();
  CHECK(unread(r, 0, third, "").posts == 1);
  CHECK(unread(r, 0, third, "", {a.key.public_key()}).posts == 0);

  CHECK(s.unhide(a.key.public_key()).error().code() == Errc::not_found);
  REQUIRE(s.unhide(b.key.public_key()).ok());
  CHECK(s.hidden_members().empty());
  (void)drain(s);

  // A full list (read back at start-up, as hide() would have saved it; one more entry than the
  // bound is cut) refuses one more. (Hiding 10,000 one at a time re-saves the list each time,
  // which is fine for a person and quadratic for a test.)
  Json full = Json::array();
  for (std::size_t i = 0; i <= hidden_members_max; ++i) {
    PublicKey pk{};
    pk.data()[0] = static_cast<std::uint8_t>(i);
    pk.data()[1] = static_cast<std::uint8_t>(i >> 8);
    full.push_back(to_hex(pk));
  }
  Service at_bound;
  at_bound.load_hidden(control::encode(full));
  CHECK(at_bound.hidden_members().size() == hidden_members_max);
  CHECK(at_bound.hide(b.key.public_key()).error().code() == Errc::too_large);
  CHECK(drain(at_bound).empty());
}
