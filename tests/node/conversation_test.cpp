// The conversation layer (docs/protocol.md, "Conversation"): each kind, its authorisation (what
// Replica refuses at once, and what every node refuses when a modified client sends it anyway),
// and the races between them.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "node/limits.h"
#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;

// A founder (ada), a moderator (mo) and two members (bob, cy), all synced.
struct Community {
  std::vector<std::unique_ptr<Peer>> peers;
  std::uint64_t now = t0;
  Peer& ada() { return *peers[0]; }
  Peer& mo() { return *peers[1]; }
  Peer& bob() { return *peers[2]; }
  Peer& cy() { return *peers[3]; }
  explicit Community(std::uint64_t seed = 1, GroupSettings settings = {}) {
    for (std::uint64_t i = 0; i < 4; ++i) peers.push_back(std::make_unique<Peer>(seed * 10 + i));
    ada().replica = std::make_unique<Replica>(
        must(Replica::create_group(ada().at(now), "c", "ada", settings)));
    for (std::size_t i = 1; i < peers.size(); ++i) admit(*peers[i], "p" + std::to_string(i));
    must(ada().replica->set_role(ada().at(tick()), mo().key.public_key(), Role::moderator));
    sync_all();
  }
  std::uint64_t tick() { return now += 10; }
  void admit(Peer& p, const std::string& nick) {
    auto [ev, code] = must(ada().replica->invite(ada().at(tick()), 1, now + 10'000'000, {}));
    (void)ev;
    if (!p.replica) p.replica = std::make_unique<Replica>(ada().replica->id(), &p.key);
    sync(*ada().replica, *p.replica);
    must(p.replica->join(p.at(tick()), code, nick));
    sync(*p.replica, *ada().replica);
  }
  void sync_all() {
    for (auto& p : peers)
      for (auto& q : peers)
        if (p->replica && q->replica) sync(*p->replica, *q->replica);
  }
  // Ingests `e` everywhere (as a peer would forward it).
  void deliver(const Event& e) {
    for (auto& p : peers) p->replica->ingest({e});
  }
  Hash post(Peer& p, const std::string& text, PostOptions o = {}) {
    auto evs = must(p.replica->post(p.at(tick()), text, o));
    sync_all();
    return evs.back().id;
  }
};

// A fresh replica for `p`'s identity holding `p`'s keys and events (as its node after a restart).
Replica copy_of(Peer& p) {
  Replica r(p.replica->id(), &p.key);
  for (const auto& k : p.replica->keyring().bundle(limits::bundle_epochs_max))
    r.restore_key(k.epoch, k.source, k.key);
  sync(*p.replica, r);
  return r;
}

template <typename T>
void refused(const Result<T>& r, Errc code) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == code);
}

}  // namespace

// A post carries its reply, channel and action flag inside the ciphertext; every member reads
// them; a relay (no keys) sees a post and nothing more.
TEST_CASE("posts carry reply_to, channel and /me", "[node][conversation]") {
  Community c;
  const Hash first = c.post(c.bob(), "hello");
  const Hash reply = c.post(c.cy(), "waves", PostOptions{first, std::nullopt, true});
  for (auto& p : c.peers) {
    const Conversation conv = p->replica->conversation();
    const PostView* v = conv.post(reply);
    REQUIRE(v);
    CHECK(v->reply_to == first);
    CHECK(v->action);
    CHECK(v->channel == c.ada().replica->id());
    CHECK(v->text == "waves");
    auto m = p->replica->message(reply);
    CHECK(m->reply_to == first);
    CHECK(m->text == "waves");
  }
  Replica relay(c.ada().replica->id(), nullptr);
  sync(*c.ada().replica, relay);
  const Conversation blind = relay.conversation();
  REQUIRE(blind.post(reply));
  CHECK_FALSE(blind.post(reply)->readable);
  CHECK_FALSE(blind.post(reply)->text);
  // Replying to something that is not a post is refused at once; a crafted reply to a post its
  // author had not seen (not an ancestor) is refused by every node.
  refused(c.bob().replica->post(c.bob().at(c.tick()), "x", PostOptions{Hash{}, std::nullopt, false}),
          Errc::not_found);
  Hash unseen = hash(as_bytes("nothing"));
  Event e = crafted(c.bob(), c.tick(), EventKind::post,
                    encode_plain(PostPlain{"x", unseen, c.ada().replica->id(), false}));
  c.deliver(e);
  CHECK_FALSE(c.ada().replica->conversation().post(e.id));
  CHECK(c.ada().replica->conversation().refused.count(e.id));
}

// Reactions count per emoji with who reacted; taking one back removes only one's own.
TEST_CASE("react and unreact", "[node][conversation]") {
  Community c;
  const Hash p = c.post(c.ada(), "vote");
  must(c.bob().replica->react(c.bob().at(c.tick()), p, "👍", true));
  must(c.cy().replica->react(c.cy().at(c.tick()), p, "👍", true));
  must(c.cy().replica->react(c.cy().at(c.tick()), p, "🎉", true));
  c.sync_all();
  auto v = *c.ada().replica->conversation().post(p);
  CHECK(v.reactions.at("👍") == std::set<PublicKey>{c.bob().key.public_key(), c.cy().key.public_key()});
  CHECK(v.reactions.at("🎉").size() == 1);
  refused(c.bob().replica->react(c.bob().at(c.tick()), p, "👍", true), Errc::invalid_argument);
  refused(c.bob().replica->react(c.bob().at(c.tick()), p, "🎉", false), Errc::not_found);
  refused(c.bob().replica->react(c.bob().at(c.tick()), p, "", true), Errc::invalid_argument);
  refused(c.bob().replica->react(c.bob().at(c.tick()), p, std::string(65, 'x'), true),
          Errc::invalid_argument);
  must(c.cy().replica->react(c.cy().at(c.tick()), p, "🎉", false));
  c.sync_all();
  v = *c.ada().replica->conversation().post(p);
  CHECK_FALSE(v.reactions.count("🎉"));
  // A crafted unreact of someone else's reaction takes back nothing.
  Event e = crafted(c.cy(), c.tick(), EventKind::react, encode_plain(ReactPlain{p, "👍", false}));
  c.deliver(e);
  e = crafted(c.bob(), c.tick(), EventKind::react, encode_plain(ReactPlain{p, "🎉", false}));
  c.deliver(e);
  CHECK(c.ada().replica->conversation().refused.count(e.id));
  CHECK(c.ada().replica->conversation().post(p)->reactions.at("👍").size() == 1);
}

// Edits keep every version and show the newest; only the author may edit, and a crafted edit of
// someone else's post changes nothing on any node.
TEST_CASE("edit own message; others' edits are refused", "[node][conversation]") {
  Community c;
  const Hash p = c.post(c.bob(), "teh");
  auto e1 = must(c.bob().replica->edit(c.bob().at(c.tick()), p, "the"));
  auto e2 = must(c.bob().replica->edit(c.bob().at(c.tick()), p, "the end"));
  c.sync_all();
  for (auto& peer : c.peers) {
    auto v = *peer->replica->conversation().post(p);
    CHECK(v.text == "the end");
    CHECK(v.edited);
    CHECK(v.edits == std::vector<Hash>{e1.back().id, e2.back().id});
  }
  refused(c.cy().replica->edit(c.cy().at(c.tick()), p, "mine now"), Errc::unauthorized);
  refused(c.ada().replica->edit(c.ada().at(c.tick()), p, "admin too"), Errc::unauthorized);
  Event forged = crafted(c.cy(), c.tick(), EventKind::edit, encode_plain(EditPlain{p, "mine now"}));
  c.deliver(forged);
  for (auto& peer : c.peers) {
    const Conversation conv = peer->replica->conversation();
    CHECK(conv.post(p)->text == "the end");
    CHECK(conv.refused.at(forged.id) == "only its author edits a post");
  }
}

// Deleting one's own post leaves a tombstone (order and replies hold) with no text for anyone;
// deleting another's needs a moderator (a redaction), and a crafted delete of another's changes
// nothing.
TEST_CASE("delete own message; redact as a moderator", "[node][conversation]") {
  Community c;
  const Hash p = c.post(c.bob(), "oops");
  const Hash reply = c.post(c.cy(), "what?", PostOptions{p, std::nullopt, false});
  refused(c.cy().replica->delete_post(c.cy().at(c.tick()), p), Errc::unauthorized);
  Event forged = crafted(c.cy(), c.tick(), EventKind::del, encode_plain(TargetPlain{p}));
  c.deliver(forged);
  CHECK(c.ada().replica->conversation().post(p)->text == "oops");
  // A member cannot redact either: the group refuses the kind from a member.
  Event redact = crafted(c.cy(), c.tick(), EventKind::redact, encode_plain(TargetPlain{p}));
  c.deliver(redact);
  CHECK_FALSE(c.ada().replica->group().find(redact.id)->accepted);
  CHECK(c.ada().replica->group().find(redact.id)->why_not == "needs moderator rights");
  CHECK(c.ada().replica->conversation().post(p)->text == "oops");

  auto del = must(c.bob().replica->delete_post(c.bob().at(c.tick()), p));
  CHECK(del.back().kind == EventKind::del);
  c.sync_all();
  for (auto& peer : c.peers) {
    const Conversation conv = peer->replica->conversation();
    const PostView* v = conv.post(p);
    REQUIRE(v);
    CHECK(v->deleted);
    CHECK_FALSE(v->text);
    CHECK_FALSE(v->redacted_by);
    CHECK(conv.post(reply)->reply_to == p);
  }
  refused(c.bob().replica->edit(c.bob().at(c.tick()), p, "back"), Errc::not_found);

  const Hash q = c.post(c.cy(), "spam");
  auto red = must(c.mo().replica->delete_post(c.mo().at(c.tick()), q));
  CHECK(red.back().kind == EventKind::redact);
  c.sync_all();
  for (auto& peer : c.peers) {
    const PostView* v = peer->replica->conversation().post(q);
    CHECK(v->deleted);
    CHECK(v->redacted_by == c.mo().key.public_key());
  }
}

// A removed post's text is gone from every member's replica, not hidden: its payload and those
// of its edits (accepted before the delete, or refused after it) are dropped, stubs kept, so the
// DAG, the order and the tombstone hold. The drops are reported for storage (by ingest, or by
// take_payloads_dropped after an own delete); a full copy arriving later is dropped again; a
// relay, which cannot read what a redaction names, keeps the ciphertext.
TEST_CASE("a removed post's payload and its edits' are dropped", "[node][conversation]") {
  Community c;
  Replica relay(c.ada().replica->id(), nullptr);
  const Hash p = c.post(c.bob(), "my secret plan");
  const Hash reply = c.post(c.cy(), "what?", PostOptions{p, std::nullopt, false});
  must(c.bob().replica->edit(c.bob().at(c.tick()), p, "my secret plan, v2"));
  c.sync_all();
  sync(*c.ada().replica, relay);
  const Hash edit = c.bob().replica->conversation().post(p)->edits.at(0);
  // An edit concurrent with the delete (bob had not seen it): refused by the fold, dropped too.
  auto late = must(c.bob().replica->edit(c.bob().at(c.tick()), p, "my secret plan, v3"));
  const Hash q = c.post(c.cy(), "spam");

  auto red = must(c.mo().replica->delete_post(c.mo().at(c.tick()), p));
  // The moderator's own replica dropped at once and hands the drops over for storage.
  std::vector<Hash> own = c.mo().replica->take_payloads_dropped();
  CHECK(std::find(own.begin(), own.end(), p) != own.end());
  CHECK(std::find(own.begin(), own.end(), edit) != own.end());
  CHECK(c.mo().replica->take_payloads_dropped().empty());
  IngestReport r = c.cy().replica->ingest({red.back()});
  CHECK(std::find(r.payloads_dropped.begin(), r.payloads_dropped.end(), p) != r.payloads_dropped.end());
  c.sync_all();
  c.deliver(late.back());
  sync(*c.ada().replica, relay);
  for (auto& peer : c.peers) {
    const Replica& rep = *peer->replica;
    for (const Hash& id : {p, edit, late.back().id})
      CHECK(rep.group().find(id)->event.payload_dropped);
    CHECK_FALSE(rep.group().find(q)->event.payload_dropped);
    CHECK_FALSE(rep.group().find(reply)->event.payload_dropped);
    const Conversation conv = rep.conversation();
    REQUIRE(conv.post(p));
    CHECK(conv.post(p)->deleted);
    CHECK(conv.post(p)->redacted_by == c.mo().key.public_key());
    CHECK(conv.post(reply)->reply_to == p);
    CHECK(conv.post(q)->text == "spam");
  }
  CHECK_FALSE(relay.group().find(p)->event.payload_dropped);
  // The relay's full copy restores the payload on a member, which drops it again.
  IngestReport again = c.ada().replica->ingest(all_events(relay));
  CHECK(std::find(again.payloads_restored.begin(), again.payloads_restored.end(), p) !=
        again.payloads_restored.end());
  CHECK(std::find(again.payloads_dropped.begin(), again.payloads_dropped.end(), p) !=
        again.payloads_dropped.end());
  CHECK(c.ada().replica->group().find(p)->event.payload_dropped);
  // A restart (a fresh replica from the stubs and keys) agrees.
  Replica restarted = copy_of(c.ada());
  CHECK(restarted.group().find(p)->event.payload_dropped);
  CHECK(restarted.conversation().post(p)->deleted);
}

// A mute refuses the member's posts, edits and reactions until it runs out in event time (the
// posts' order keys), on every node; a post backdated to before the mute, on parents from
// before it, is refused too; unmute ends it; members cannot mute; staff cannot be muted.
TEST_CASE("mute for a duration, backdating, unmute", "[node][conversation]") {
  Community c;
  const auto old_heads = c.bob().replica->group().next_parents();
  const std::uint64_t old_time = c.now;
  refused(c.cy().replica->mute(c.cy().at(c.tick()), c.bob().key.public_key(), 60'000),
          Errc::unauthorized);
  Event by_member = crafted(c.cy(), c.tick(), EventKind::mute,
                            encode_plain(MutePlain{c.bob().key.public_key(), 60'000, true}));
  c.deliver(by_member);
  CHECK_FALSE(c.ada().replica->group().find(by_member.id)->accepted);
  CHECK(c.ada().replica->conversation().mutes.empty());
  refused(c.mo().replica->mute(c.mo().at(c.tick()), c.ada().key.public_key(), 0),
          Errc::unauthorized);
  refused(c.mo().replica->mute(c.mo().at(c.tick()), c.bob().key.public_key(),
                               limits::mute_duration_ms_max + 1),
          Errc::invalid_argument);

  auto muted = must(c.mo().replica->mute(c.mo().at(c.tick()), c.bob().key.public_key(), 60'000));
  c.sync_all();
  const std::uint64_t from = c.ada().replica->group().find(muted.back().id)->order_key;
  for (auto& peer : c.peers) {
    const auto& mutes = peer->replica->conversation().mutes;
    REQUIRE(mutes.count(c.bob().key.public_key()));
    CHECK(mutes.at(c.bob().key.public_key()).until_ms == from + 60'000);
  }
  refused(c.bob().replica->post(c.bob().at(c.tick()), "let me speak"), Errc::unauthorized);
  Event during = crafted(c.bob(), c.tick(), EventKind::post,
                         encode_plain(PostPlain{"sneaky", std::nullopt, c.ada().replica->id(), false}));
  Event backdated = crafted(c.bob(), old_time, EventKind::post,
                            encode_plain(PostPlain{"from the past", std::nullopt,
                                                   c.ada().replica->id(), false}),
                            old_heads);
  c.deliver(during);
  c.deliver(backdated);
  for (auto& peer : c.peers) {
    const Conversation conv = peer->replica->conversation();
    CHECK_FALSE(conv.post(during.id));
    CHECK_FALSE(conv.post(backdated.id));
    CHECK(conv.refused.at(backdated.id) == "author muted");
  }
  // Event time, not anyone's clock: a post dated after the end is accepted.
  const Hash after = must(c.bob().replica->post(c.bob().at(from + 60'000), "back")).back().id;
  c.sync_all();
  CHECK(c.ada().replica->conversation().post(after));

  must(c.mo().replica->mute(c.mo().at(from + 70'000), c.cy().key.public_key(), 0));
  c.sync_all();
  refused(c.cy().replica->post(c.cy().at(from + 80'000), "x"), Errc::unauthorized);
  must(c.ada().replica->unmute(c.ada().at(from + 90'000), c.cy().key.public_key()));
  c.sync_all();
  CHECK_FALSE(c.ada().replica->conversation().mutes.count(c.cy().key.public_key()));
  must(c.cy().replica->post(c.cy().at(from + 100'000), "thanks"));
}

// A mute racing a post: a post the moderator had not seen when muting is refused in every
// arrival order, as the mute wins.
TEST_CASE("a mute wins over a concurrent post", "[node][conversation]") {
  Community c;
  auto mute = must(c.mo().replica->mute(c.mo().at(c.tick()), c.bob().key.public_key(), 60'000));
  auto post = must(c.bob().replica->post(c.bob().at(c.now + 5), "racing"));
  std::vector<Event> both{mute.back(), post.back()};
  for (int order = 0; order < 2; ++order) {
    Replica r = copy_of(c.cy());
    r.ingest({both[order]});
    r.ingest({both[1 - order]});
    CHECK_FALSE(r.conversation().post(post.back().id));
  }
}

// Channels: #general from creation; admins create, rename, archive; posts go to one and never
// to an archived or unknown one; members cannot make channel events.
TEST_CASE("channels", "[node][conversation]") {
  Community c;
  const Hash general = c.ada().replica->id();
  auto conv = c.bob().replica->conversation();
  REQUIRE(conv.channels.size() == 1);
  CHECK(conv.channels[0].id == general);
  CHECK(conv.channels[0].name == "general");
  refused(c.bob().replica->create_channel(c.bob().at(c.tick()), "dev"), Errc::unauthorized);
  refused(c.mo().replica->create_channel(c.mo().at(c.tick()), "dev"), Errc::unauthorized);
  Event forged = crafted(c.bob(), c.tick(), EventKind::channel,
                         encode_plain(ChannelPlain{ChannelOp::create, std::nullopt, "evil"}));
  c.deliver(forged);
  CHECK_FALSE(c.ada().replica->conversation().channel_named("evil"));
  refused(c.ada().replica->create_channel(c.ada().at(c.tick()), "has space"), Errc::invalid_argument);
  refused(c.ada().replica->create_channel(c.ada().at(c.tick()), "general"), Errc::invalid_argument);

  const Hash dev = must(c.ada().replica->create_channel(c.ada().at(c.tick()), "dev")).back().id;
  c.sync_all();
  const Hash p = c.post(c.bob(), "in dev", PostOptions{std::nullopt, dev, false});
  CHECK(c.cy().replica->conversation().post(p)->channel == dev);
  must(c.ada().replica->rename_channel(c.ada().at(c.tick()), dev, "devel"));
  c.sync_all();
  CHECK(c.cy().replica->conversation().channel(dev)->name == "devel");
  refused(c.ada().replica->archive_channel(c.ada().at(c.tick()), general), Errc::invalid_argument);
  must(c.ada().replica->archive_channel(c.ada().at(c.tick()), dev));
  c.sync_all();
  CHECK(c.cy().replica->conversation().channel(dev)->archived);
  refused(c.bob().replica->post(c.bob().at(c.tick()), "late", PostOptions{std::nullopt, dev, false}),
          Errc::unauthorized);
  Event late = crafted(c.bob(), c.tick(), EventKind::post,
                       encode_plain(PostPlain{"late", std::nullopt, dev, false}));
  Event nowhere = crafted(c.bob(), c.tick(), EventKind::post,
                          encode_plain(PostPlain{"nowhere", std::nullopt, hash(as_bytes("x")), false}));
  c.deliver(late);
  c.deliver(nowhere);
  conv = c.ada().replica->conversation();
  CHECK(conv.refused.at(late.id) == "channel archived");
  CHECK(conv.refused.at(nowhere.id) == "no such channel");
  CHECK(conv.post(p)->text == "in dev");  // archived posts stay readable
}

// Moderator role: between member and admin. Promote to it, demote from it. A demotion racing a
// redaction: the redaction the moderator made without seeing the demotion has no effect, in
// every arrival order.
TEST_CASE("a demotion wins over a concurrent redaction", "[node][conversation]") {
  Community c;
  CHECK(c.ada().replica->state().role_of(c.mo().key.public_key()) == Role::moderator);
  const Hash p = c.post(c.bob(), "borderline");
  auto redact = must(c.mo().replica->delete_post(c.mo().at(c.tick()), p));
  auto demote = must(c.ada().replica->set_role(c.ada().at(c.now + 1), c.mo().key.public_key(),
                                               Role::member));
  std::vector<Event> both{redact.back(), demote};
  for (int order = 0; order < 2; ++order) {
    Replica r = copy_of(c.cy());
    r.ingest({both[order]});
    r.ingest({both[1 - order]});
    CHECK(r.state().role_of(c.mo().key.public_key()) == Role::member);
    CHECK_FALSE(r.group().find(redact.back().id)->accepted);
    CHECK_FALSE(r.conversation().post(p)->deleted);
    // The known limit (docs/protocol.md, "Known limits"): a node that held the redaction before
    // the demotion dropped the post's payload, and the text does not come back.
    if (order == 0) CHECK(r.group().find(p)->event.payload_dropped);
    else CHECK(r.conversation().post(p)->text == "borderline");
  }
  // A moderator cannot grant or take roles (admin rights), nor ban.
  refused(c.mo().replica->set_role(c.mo().at(c.tick()), c.bob().key.public_key(), Role::moderator),
          Errc::unauthorized);
  refused(c.mo().replica->ban(c.mo().at(c.tick()), c.bob().key.public_key(), true),
          Errc::unauthorized);
}

// Bans: an admin's ban removes the member, rekeys at once, and refuses its later joins until an
// unban; a join racing the ban loses; a member's crafted ban is refused.
TEST_CASE("ban and unban", "[node][conversation]") {
  Community c;
  Event forged = crafted(c.cy(), c.tick(), EventKind::ban,
                         encode_payload(BanPayload{c.bob().key.public_key(), true}), std::nullopt,
                         true);
  c.deliver(forged);
  CHECK_FALSE(c.ada().replica->group().find(forged.id)->accepted);
  CHECK(c.ada().replica->state().is_member(c.bob().key.public_key()));

  const std::uint64_t epoch = c.ada().replica->state().epoch;
  auto banned = must(c.ada().replica->ban(c.ada().at(c.tick()), c.bob().key.public_key(), true));
  REQUIRE(banned.size() == 2);
  CHECK(banned[1].kind == EventKind::rekey);
  c.sync_all();
  for (auto& p : c.peers) {
    CHECK_FALSE(p->replica->state().is_member(c.bob().key.public_key()));
    CHECK(p->replica->state().banned.count(c.bob().key.public_key()));
  }
  CHECK(c.ada().replica->state().epoch == epoch + 1);
  // Joining again with a fresh invite is refused.
  auto [ev, code] = must(c.ada().replica->invite(c.ada().at(c.tick()), 1, c.now + 1'000'000, {}));
  (void)ev;
  sync(*c.ada().replica, *c.bob().replica);
  c.bob().replica->hold_invite(code);
  auto join = c.bob().replica->join(c.bob().at(c.tick()), code, "bob again");
  REQUIRE_FALSE(join.ok());
  refused(c.ada().replica->ban(c.ada().at(c.tick()), c.bob().key.public_key(), true),
          Errc::invalid_argument);
  must(c.ada().replica->ban(c.ada().at(c.tick()), c.bob().key.public_key(), false));
  c.sync_all();
  CHECK(c.cy().replica->state().banned.empty());
  c.admit(c.bob(), "bob");
  c.sync_all();
  CHECK(c.cy().replica->state().is_member(c.bob().key.public_key()));
}

TEST_CASE("a ban wins over a concurrent join", "[node][conversation]") {
  Community c;
  Peer dan(99);
  dan.replica = std::make_unique<Replica>(c.ada().replica->id(), &dan.key);
  auto [ev, code] = must(c.ada().replica->invite(c.ada().at(c.tick()), 1, c.now + 1'000'000, {}));
  (void)ev;
  sync(*c.ada().replica, *dan.replica);
  c.sync_all();
  const auto ban = must(c.ada().replica->ban(c.ada().at(c.tick()), dan.key.public_key(), true));
  const Event join = must(dan.replica->join(dan.at(c.now + 1), code, "dan"));
  std::vector<Event> all = ban;
  all.push_back(join);
  for (int order = 0; order < 2; ++order) {
    Replica r = copy_of(c.cy());
    if (order == 0) {
      r.ingest({join});
      r.ingest(ban);
    } else {
      r.ingest(ban);
      r.ingest({join});
    }
    CHECK_FALSE(r.state().is_member(dan.key.public_key()));
    REQUIRE(r.group().find(join.id));
    CHECK_FALSE(r.group().find(join.id)->accepted);
  }
}

// Nick per group, group rename and settings: set-nick by anyone for itself, set-name and
// set-settings by admins only.
TEST_CASE("nick, group rename and settings", "[node][conversation]") {
  Community c;
  must(c.bob().replica->set_nick(c.bob().at(c.tick()), "robert"));
  must(c.ada().replica->set_name(c.ada().at(c.tick()), "renamed"));
  c.sync_all();
  CHECK(c.cy().replica->nick(c.bob().key.public_key()) == "robert");
  CHECK(c.cy().replica->name() == "renamed");
  refused(c.bob().replica->set_settings(c.bob().at(c.tick()), GroupSettings{false, true}),
          Errc::unauthorized);
  refused(c.bob().replica->invite(c.bob().at(c.tick()), 1, c.now + 1000, {}), Errc::unauthorized);
  must(c.ada().replica->set_settings(c.ada().at(c.tick()), GroupSettings{false, true}));
  c.sync_all();
  CHECK_FALSE(c.bob().replica->state().settings.history_visible);
  CHECK(c.bob().replica->state().settings.members_can_invite);
  must(c.bob().replica->invite(c.bob().at(c.tick()), 1, c.now + 1000, {}));
}

// The plaintext decoders are strict: wrong arity, oversized fields and inconsistent forms are
// refused (and a node treats such an event as unreadable).
TEST_CASE("conversation plaintexts decode strictly", "[node][conversation]") {
  Hash h = hash(as_bytes("h"));
  CHECK(decode_post_plain(encode_plain(PostPlain{"t", h, h, true})).ok());
  CHECK_FALSE(decode_post_plain(encode_text_plain("t")).ok());
  CHECK_FALSE(decode_react_plain(encode_plain(ReactPlain{h, std::string(65, 'x'), true})).ok());
  CHECK_FALSE(decode_react_plain(encode_plain(ReactPlain{h, "", true})).ok());
  CHECK_FALSE(decode_mute_plain(encode_plain(MutePlain{PublicKey{}, 5, false})).ok());
  CHECK_FALSE(decode_mute_plain(encode_plain(MutePlain{PublicKey{}, limits::mute_duration_ms_max + 1, true})).ok());
  CHECK_FALSE(decode_channel_plain(encode_plain(ChannelPlain{ChannelOp::create, h, "x"})).ok());
  CHECK_FALSE(decode_channel_plain(encode_plain(ChannelPlain{ChannelOp::archive, h, "x"})).ok());
  CHECK_FALSE(decode_channel_plain(encode_plain(ChannelPlain{ChannelOp::rename, h, ""})).ok());
  CHECK(decode_channel_plain(encode_plain(ChannelPlain{ChannelOp::rename, h, "n"})).ok());
  CHECK_FALSE(decode_ban(encode_leave_payload()).ok());
  CHECK(decode_settings(encode_payload(SettingsPayload{GroupSettings{false, true}}))
            ->settings.members_can_invite);
  CHECK(role_rank(Role::member) < role_rank(Role::moderator));
  CHECK(role_rank(Role::moderator) < role_rank(Role::admin));
  CHECK(decode_set_role(encode_payload(SetRolePayload{PublicKey{}, Role::moderator}))->role ==
        Role::moderator);
}

namespace {

std::uint64_t seed_from_env(std::uint64_t fallback) {
  const char* s = std::getenv("QUN_SEED");
  return s ? std::strtoull(s, nullptr, 10) : fallback;
}

// Everything the conversation fold decides, comparable.
struct ConvDigest {
  std::vector<std::tuple<Hash, std::optional<std::string>, bool, bool, std::vector<Hash>, Hash,
                         std::map<std::string, std::set<PublicKey>>>>
      posts;
  std::vector<std::tuple<Hash, std::optional<std::string>, bool>> channels;
  std::vector<std::tuple<PublicKey, Hash, std::optional<std::uint64_t>>> mutes;
  std::vector<Hash> refused, actions;
  std::vector<Hash> history;
  bool operator==(const ConvDigest&) const = default;
};

// Posts and edits whose payload r dropped: those of removed posts (Replica::ingest).
std::set<Hash> stubs_of(const Replica& r) {
  std::set<Hash> out;
  for (const Hash& id : r.state().history)
    if (r.group().find(id)->event.payload_dropped) out.insert(id);
  return out;
}

// The conversation, leaving out the posts in `stubs` and the acts on them. A removal revoked
// after a node dropped its post's payload (a demotion racing a redaction, arriving second)
// leaves that post a stub on that node only (docs/protocol.md, "Known limits"); the rest of
// the conversation must still agree.
ConvDigest digest(const Replica& r, const std::set<Hash>& stubs = {}) {
  const Conversation c = r.conversation();
  auto touches_stub = [&](const Hash& id) {
    if (stubs.count(id)) return true;
    auto m = r.message(id);
    return m && m->target_event && stubs.count(*m->target_event) != 0;
  };
  ConvDigest d;
  for (const auto& p : c.posts)
    if (!stubs.count(p.id))
      d.posts.emplace_back(p.id, p.text, p.edited, p.deleted, p.edits, p.channel, p.reactions);
  for (const auto& ch : c.channels) d.channels.emplace_back(ch.id, ch.name, ch.archived);
  for (const auto& [who, m] : c.mutes) d.mutes.emplace_back(who, m.event, m.until_ms);
  for (const auto& [id, why] : c.refused)
    if (!touches_stub(id)) d.refused.push_back(id);
  for (const auto& a : c.actions)
    if (!touches_stub(a.event)) d.actions.push_back(a.event);
  d.history = r.state().history;
  return d;
}

// A random conversation among the Community's four, with partial syncs (so acts race each
// other) and a modified client's acts mixed in: edits, deletes, unreacts of others' posts and
// reactions, and redactions, mutes, channel events and bans by members who may not. Returns
// the union of every replica's events and counts of what it exercised.
struct Played {
  std::vector<Event> events;
  std::size_t forged = 0;
};

Played random_conversation(Community& c, std::uint64_t seed, std::size_t steps) {
  Rng rng = Rng::from_u64(seed);
  Played out;
  auto pick = [&]() -> Peer& { return *c.peers[rng.uniform(c.peers.size())]; };
  auto some_post = [&](const Replica& r) -> std::optional<Hash> {
    const Conversation conv = r.conversation();
    if (conv.posts.empty()) return std::nullopt;
    return conv.posts[conv.posts.size() - 1 - rng.uniform(std::min<std::size_t>(conv.posts.size(), 8))].id;
  };
  auto some_channel = [&](const Replica& r) {
    const Conversation conv = r.conversation();
    return conv.channels[rng.uniform(conv.channels.size())].id;
  };
  const char* emoji[] = {"👍", "🎉", "❤️"};
  for (std::size_t step = 0; step < steps; ++step) {
    Peer& p = pick();
    if (!p.replica->state().is_member(p.key.public_key())) continue;
    const std::uint64_t t = c.tick() + rng.uniform(500);
    auto at = p.at(t);
    const auto roll = rng.uniform(100);
    if (roll < 25) {
      PostOptions o;
      if (rng.uniform(3) == 0) o.reply_to = some_post(*p.replica);
      if (rng.uniform(2) == 0) o.channel = some_channel(*p.replica);
      o.action = rng.uniform(5) == 0;
      (void)p.replica->post(at, "m" + std::to_string(step), o);
    } else if (roll < 45) {
      sync(*pick().replica, *p.replica);
    } else if (roll < 52) {
      if (auto target = some_post(*p.replica))
        (void)p.replica->react(at, *target, emoji[rng.uniform(3)], rng.uniform(3) != 0);
    } else if (roll < 57) {
      if (auto target = some_post(*p.replica)) (void)p.replica->edit(at, *target, "e" + std::to_string(step));
    } else if (roll < 61) {
      if (auto target = some_post(*p.replica)) (void)p.replica->delete_post(at, *target);
    } else if (roll < 66) {
      Peer& q = pick();
      if (rng.uniform(3) == 0) {
        (void)p.replica->unmute(at, q.key.public_key());
      } else {
        (void)p.replica->mute(at, q.key.public_key(), rng.uniform(2) ? 0 : 200 + rng.uniform(2000));
      }
    } else if (roll < 70) {
      const auto op = rng.uniform(3);
      if (op == 0) (void)p.replica->create_channel(at, "ch" + std::to_string(rng.uniform(4)));
      if (op == 1) (void)p.replica->rename_channel(at, some_channel(*p.replica), "r" + std::to_string(rng.uniform(4)));
      if (op == 2) (void)p.replica->archive_channel(at, some_channel(*p.replica));
    } else if (roll < 74) {
      // Roles between ada (founder, never demoted) and the others: moderator, member or admin.
      Peer& q = *c.peers[1 + rng.uniform(3)];
      const Role roles[] = {Role::member, Role::moderator, Role::admin};
      (void)p.replica->set_role(at, q.key.public_key(), roles[rng.uniform(3)]);
    } else if (roll < 76) {
      // Bans and unbans of bob (who stays banned or out once removed).
      (void)p.replica->ban(at, c.bob().key.public_key(), rng.uniform(2) == 0);
    } else if (roll < 78) {
      (void)p.replica->set_nick(at, "n" + std::to_string(step));
    } else {
      // A modified client: an act its author may not do, which every node must refuse.
      auto target = some_post(*p.replica);
      if (!p.replica->state().current_key_event || !target) continue;
      Peer& q = pick();
      Event e;
      switch (rng.uniform(6)) {
        case 0: e = crafted(p, t, EventKind::edit, encode_plain(EditPlain{*target, "forged"})); break;
        case 1: e = crafted(p, t, EventKind::del, encode_plain(TargetPlain{*target})); break;
        case 2: e = crafted(p, t, EventKind::redact, encode_plain(TargetPlain{*target})); break;
        case 3:
          e = crafted(p, t, EventKind::mute, encode_plain(MutePlain{q.key.public_key(), 0, true}));
          break;
        case 4:
          e = crafted(p, t, EventKind::channel,
                      encode_plain(ChannelPlain{ChannelOp::create, std::nullopt, "forged"}));
          break;
        default:
          e = crafted(p, t, EventKind::react, encode_plain(ReactPlain{*target, "👍", false}));
          break;
      }
      p.replica->ingest({e});
      ++out.forged;
    }
  }
  std::map<Hash, Event> all;
  for (auto& p : c.peers)
    for (auto& e : all_events(*p->replica)) all.emplace(e.id, e);
  for (auto& [id, e] : all) out.events.push_back(e);
  return out;
}

}  // namespace

// Property: members' nodes fed the same events (new kinds, races and forged acts included) in
// any order and batching end with the same conversation: same posts with the same text, edits,
// deletions and reactions, same channels, mutes, refusals and acts. Each forged act changes
// nothing that an honest author could not do: no post shows an edit by someone else.
TEST_CASE("conversations converge whatever the delivery order", "[node][conversation][convergence]") {
  const std::uint64_t base = seed_from_env(11);
  const int runs = std::getenv("QUN_SEED") ? 1 : 8;
  std::size_t edits = 0, deletes = 0, redactions = 0, mutes = 0, reactions = 0, channels = 0,
              bans = 0, refusals = 0, muted_posts = 0;
  for (int run = 0; run < runs; ++run) {
    const std::uint64_t seed = base + static_cast<std::uint64_t>(run);
    INFO("seed " << seed << " (rerun with QUN_SEED=" << seed << ")");
    Community c(seed);
    Played played = random_conversation(c, seed, 250);
    // The reader: cy's identity with every key cy learned (cy is never banned).
    c.sync_all();
    Replica reference = copy_of(c.cy());
    auto rep = reference.ingest(played.events);
    REQUIRE(rep.rejected.empty());
    const Conversation conv = reference.conversation();
    for (const auto& p : conv.posts) {
      for (const Hash& e : p.edits) CHECK(reference.group().find(e)->event.author == p.author);
      edits += p.edits.size();
      deletes += p.deleted && !p.redacted_by;
      redactions += p.redacted_by.has_value();
      for (const auto& [emo, who] : p.reactions) reactions += who.size();
    }
    for (const auto& a : conv.actions) {
      mutes += a.kind == EventKind::mute;
      channels += a.kind == EventKind::channel;
      bans += a.kind == EventKind::ban;
    }
    for (const auto& [id, why] : conv.refused) muted_posts += why == "author muted";
    refusals += conv.refused.size();

    Rng rng = Rng::from_u64(seed ^ 0x5eed);
    for (int order = 0; order < 5; ++order) {
      std::vector<Event> stream = played.events;
      for (std::size_t i = stream.size(); i > 1; --i) std::swap(stream[i - 1], stream[rng.uniform(i)]);
      Replica r(reference.id(), &c.cy().key);
      for (const auto& k : c.cy().replica->keyring().bundle(limits::bundle_epochs_max))
        r.restore_key(k.epoch, k.source, k.key);
      std::size_t pos = 0;
      while (pos < stream.size()) {
        const std::size_t n = 1 + rng.uniform(order % 2 ? 3 : 40);
        std::vector<Event> batch(stream.begin() + static_cast<long>(pos),
                                 stream.begin() + static_cast<long>(std::min(stream.size(), pos + n)));
        pos += batch.size();
        r.ingest(std::move(batch));
      }
      CHECK(r.group().pending_size() == 0);
      std::set<Hash> stubs = stubs_of(reference);
      for (const Hash& id : stubs_of(r)) stubs.insert(id);
      // Whatever the order, every post the reference holds removed is a stub here too.
      for (const auto& p : conv.posts)
        if (p.deleted) CHECK(r.group().find(p.id)->event.payload_dropped);
      CHECK(digest(r, stubs) == digest(reference, stubs));
    }
  }
  INFO("edits " << edits << " deletes " << deletes << " redactions " << redactions << " mutes "
                << mutes << " reactions " << reactions << " channels " << channels << " bans "
                << bans << " refusals " << refusals << " muted posts " << muted_posts);
  if (runs > 1) {
    CHECK(edits > 0);
    CHECK(deletes > 0);
    CHECK(redactions > 0);
    CHECK(mutes > 0);
    CHECK(reactions > 0);
    CHECK(channels > 0);
    CHECK(bans > 0);
    CHECK(refusals > 0);
    CHECK(muted_posts > 0);
  }
}

// Property: ConversationCache (what the daemon reads `qun log`, the group list and streams from)
// always equals a full fold of the replica as it stands, for both scopes, after every ingest:
// events delivered in order in small batches (so appended posts, acts, channels and nicks take
// the incremental path, and mutes, role and membership changes the full one), or shuffled (late
// events that sort earlier), with cy's older keys restored halfway (a key learned) and payloads
// dropped now and then. It fails if the cache ever folds incrementally where a full fold differs
// (a mute or demotion appended, a key learned, a payload dropped), and if it never takes the
// incremental path or never serves a read unchanged.
TEST_CASE("the conversation cache equals a full fold after every ingest", "[node][conversation]") {
  const std::uint64_t base = seed_from_env(31);
  const int runs = std::getenv("QUN_SEED") ? 1 : 4;
  ConversationCache::Stats full_stats, light_stats;
  for (int run = 0; run < runs; ++run) {
    const std::uint64_t seed = base + static_cast<std::uint64_t>(run);
    INFO("seed " << seed << " (rerun with QUN_SEED=" << seed << ")");
    Community c(seed);
    Played played = random_conversation(c, seed, 250);
    c.sync_all();
    Replica reference = copy_of(c.cy());
    REQUIRE(reference.ingest(played.events).rejected.empty());
    std::vector<Event> in_order;
    for (const EventRecord* rec : reference.group().ordered()) in_order.push_back(rec->event);
    const auto keys = c.cy().replica->keyring().bundle(limits::bundle_epochs_max);

    Rng rng = Rng::from_u64(seed ^ 0xcac4e);
    for (int order = 0; order < 3; ++order) {
      std::vector<Event> stream = in_order;
      if (order == 2)
        for (std::size_t i = stream.size(); i > 1; --i) std::swap(stream[i - 1], stream[rng.uniform(i)]);
      Replica r(reference.id(), &c.cy().key);
      // Order 0 holds cy's keys from the start; the others learn them halfway.
      if (order == 0)
        for (const auto& k : keys) r.restore_key(k.epoch, k.source, k.key);
      ConversationCache full(ConversationScope::full);
      ConversationCache light(ConversationScope::channels_and_mutes);
      std::size_t pos = 0;
      bool restored = order == 0;
      while (pos < stream.size()) {
        const std::size_t n = 1 + rng.uniform(order == 1 ? 12 : 4);
        std::vector<Event> batch(stream.begin() + static_cast<long>(pos),
                                 stream.begin() + static_cast<long>(std::min(stream.size(), pos + n)));
        pos += batch.size();
        r.ingest(std::move(batch));
        if (!restored && pos * 2 >= stream.size()) {
          for (const auto& k : keys) r.restore_key(k.epoch, k.source, k.key);
          restored = true;
        }
        if (rng.uniform(20) == 0 && !r.state().history.empty()) {
          const Hash& id = r.state().history[rng.uniform(r.state().history.size())];
          (void)r.drop_payload(id);
        }
        const Conversation& got = full.get(r.group(), r.opener(), r.fold_generation());
        REQUIRE(got == r.conversation());
        // Asked again with nothing new: the same, unchanged.
        REQUIRE(full.get(r.group(), r.opener(), r.fold_generation()) == r.conversation());
        REQUIRE(light.get(r.group(), r.opener(), r.fold_generation()) ==
                r.conversation(ConversationScope::channels_and_mutes));
      }
      full_stats.hits += full.stats().hits;
      full_stats.incremental += full.stats().incremental;
      full_stats.full += full.stats().full;
      light_stats.incremental += light.stats().incremental;
      light_stats.full += light.stats().full;
    }
  }
  INFO("full scope: hits " << full_stats.hits << " incremental " << full_stats.incremental
                           << " full " << full_stats.full << "; channels and mutes: incremental "
                           << light_stats.incremental << " full " << light_stats.full);
  CHECK(full_stats.hits > 0);
  CHECK(full_stats.incremental > full_stats.full);
  CHECK(light_stats.incremental > 0);
}
