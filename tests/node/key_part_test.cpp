// Key parts (docs/protocol.md, "Key parts"): a rekey or removal in a group of more than
// limits::rekey_members_per_event members seals the new key to the first ones in its own event
// and to the rest in key-part events. These tests build a group just past that size (fillers
// added by crafted add events, a few real members added properly) and check that every member
// gets the key whatever order the parts come in, that a member whose part is missing or bad
// heals, that forged parts are refused, and that a removed member reads nothing after.
#include <catch2/catch.hpp>

#include <algorithm>

#include "node/limits.h"
#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000;
// Fillers past one key event's entries: the rekey needs exactly one key part.
// A third of the members land in the part, so some of the real members do.
constexpr std::size_t fillers = limits::rekey_members_per_event + 1000;
constexpr std::size_t real_members = 12;

std::vector<std::string> texts(const Replica& r) {
  std::vector<std::string> out;
  for (const auto& m : r.history())
    if (m.kind == EventKind::post) out.push_back(m.text.value_or("<unreadable>"));
  return out;
}

// A founder, `fillers` members with no node (added with a junk bundle: nobody reads for them)
// and `real_members` members with a replica each, added properly.
struct BigGroup {
  Peer f{0};
  std::vector<Peer> peers;
  std::uint64_t now = t0;

  BigGroup() {
    f.replica = std::make_unique<Replica>(
        must(Replica::create_group(f.at(now), "big", "ada", GroupSettings{})));
    Rng rng = Rng::from_u64(77);
    for (std::size_t i = 0; i < fillers; ++i) {
      const SigningKey filler = SigningKey::generate(rng);
      Bytes junk(64);
      rng.fill(junk);
      f.replica->ingest({crafted(f, ++now, EventKind::add,
                                 encode_payload(AddPayload{filler.public_key(), junk}),
                                 std::nullopt, /*clear=*/true)});
    }
    peers.reserve(real_members);
    for (std::size_t i = 0; i < real_members; ++i) {
      peers.emplace_back(100 + i);
      (void)must(f.replica->add(f.at(++now), peers.back().key.public_key()));
    }
    REQUIRE(f.replica->state().members.size() == 1 + fillers + real_members);
    for (auto& p : peers) p.replica = std::make_unique<Replica>(f.replica->clone_for(&p.key));
  }

  // Where each real member's entry lands in a rekey: in the key event (0) or in a part (1):
  // entries follow member order and the key event holds the first rekey_members_per_event.
  std::size_t slot_of(const PublicKey& who, const std::optional<PublicKey>& excluded = {}) const {
    std::size_t index = 0;
    for (const auto& [id, m] : f.replica->state().members) {
      if (excluded && id == *excluded) continue;
      if (id == who) break;
      ++index;
    }
    return index / limits::rekey_members_per_event;
  }
  // A real member whose entry is in the key event, and one whose entry is in the part.
  Peer& in_slot(std::size_t slot, const std::optional<PublicKey>& excluded = {}) {
    for (auto& p : peers)
      if ((!excluded || p.key.public_key() != *excluded) && slot_of(p.key.public_key(), excluded) == slot)
        return p;
    FAIL("no real member in slot " << slot);
    return peers.front();
  }
};

// A key part by `author` for `key_event`, with the given entries, parents and index.
Event part_event(Peer& author, const Event& key_event, std::uint32_t index,
                 std::vector<KeyEntry> members, std::optional<std::vector<Hash>> parents = {}) {
  Event e;
  e.group = key_event.group;
  e.author = author.key.public_key();
  e.parents = parents.value_or(std::vector<Hash>{key_event.id});
  const bool known = std::all_of(e.parents.begin(), e.parents.end(),
                                 [&](const Hash& h) { return author.replica->group().has(h); });
  e.depth = known ? author.replica->group().next_depth(e.parents) : key_event.depth + 1;
  e.time_ms = key_event.time_ms;
  e.kind = EventKind::key_part;
  e.epoch = key_event.epoch;
  e.payload = encode_payload(KeyPartPayload{key_event.id, index, std::move(members)});
  sign_event(e, author.key);
  return e;
}

bool rejected(const IngestReport& r, const Hash& id) {
  return std::any_of(r.rejected.begin(), r.rejected.end(),
                     [&](const auto& x) { return x.first == id; });
}

}  // namespace

// Proves the codec keeps one byte form: a rekey without parts has four fields (as before key
// parts existed), a part count of zero is refused, and a key part needs an index of 1 or more,
// at most rekey_parts_max, and at least one entry.
TEST_CASE("key part payloads decode strictly", "[node][payload][keys]") {
  RekeyPayload r;
  r.key_check.bytes.fill(1);
  const Bytes four = encode_payload(r);
  CHECK(four[0] == 0x94);  // fixarray of 4
  CHECK(decode_rekey(four).value().parts == 0);
  r.parts = 2;
  const Bytes five = encode_payload(r);
  CHECK(five[0] == 0x95);
  CHECK(decode_rekey(five).value().parts == 2);
  Bytes zero = five;
  zero.back() = 0;  // the part count is the last byte (a positive fixint)
  CHECK_FALSE(decode_rekey(zero).ok());
  Bytes too_many = five;
  too_many.back() = static_cast<std::uint8_t>(limits::rekey_parts_max + 1);
  CHECK_FALSE(decode_rekey(too_many).ok());

  KeyPartPayload p;
  p.key_event.bytes.fill(2);
  p.index = 1;
  p.members.push_back({PublicKey{}, Bytes(32 + seal_overhead_bytes, 3)});
  CHECK(decode_key_part(encode_payload(p)).ok());
  p.index = 0;
  CHECK_FALSE(decode_key_part(encode_payload(p)).ok());
  p.index = static_cast<std::uint32_t>(limits::rekey_parts_max + 1);
  CHECK_FALSE(decode_key_part(encode_payload(p)).ok());
  p.index = 1;
  p.members.clear();
  CHECK_FALSE(decode_key_part(encode_payload(p)).ok());
  p.members.push_back({PublicKey{}, Bytes(31 + seal_overhead_bytes, 3)});
  CHECK_FALSE(decode_key_part(encode_payload(p)).ok());
}

// Proves a removal in a group past one event's entries comes as a key event and one key part;
// that members get the key whether the part comes before, after or with the key event (a part
// that arrives first waits for its parent); that a member whose part has not come yet is blind
// until it does; and that the removed member reads nothing posted after while everyone else
// reads it.
TEST_CASE("a removal in a large group is split into key parts", "[node][group][keys]") {
  BigGroup g;
  Peer& victim = g.peers[0];
  const PublicKey gone = victim.key.public_key();
  Peer& head_reader = g.in_slot(0, gone);
  Peer& part_reader = g.in_slot(1, gone);
  auto removal = must(g.f.replica->remove(g.f.at(++g.now), gone));
  REQUIRE(removal.size() == 2);
  const Event& head = removal[0];
  const Event& part = removal[1];
  CHECK(head.kind == EventKind::remove);
  CHECK(part.kind == EventKind::key_part);
  CHECK(decode_remove(head.payload).value().keys.parts == 1);
  CHECK(decode_remove(head.payload).value().keys.members.size() == limits::rekey_members_per_event);
  CHECK(part.parents == std::vector<Hash>{head.id});
  for (const auto& e : removal) CHECK(e.encoded_bytes <= limits::event_bytes_max);
  // Everyone but the victim: the founder's own entry and each real member's are somewhere.
  CHECK(g.f.replica->state().current_key_event == head.id);
  CHECK_FALSE(g.f.replica->unverified_key());

  // The part first: it waits for its key event.
  auto waiting = part_reader.replica->ingest({part});
  CHECK(waiting.pending == 1);
  CHECK(part_reader.replica->ingest({head}).admitted.size() == 2);
  CHECK_FALSE(part_reader.replica->unverified_key());
  // The key event alone: a member whose entry is in the part is blind until the part comes.
  Peer& late = [&]() -> Peer& {
    for (auto& p : g.peers)
      if (&p != &part_reader && p.key.public_key() != gone && g.slot_of(p.key.public_key(), gone) == 1)
        return p;
    return part_reader;
  }();
  if (&late != &part_reader) {
    late.replica->ingest({head});
    CHECK(late.replica->unverified_key() == head.id);
    late.replica->ingest({part});
    CHECK_FALSE(late.replica->unverified_key());
  }
  // Both together, and the key event alone for a member whose entry is in it.
  head_reader.replica->ingest({head});
  CHECK_FALSE(head_reader.replica->unverified_key());
  head_reader.replica->ingest({part});
  for (auto& p : g.peers) p.replica->ingest(removal);

  auto post = must(part_reader.replica->post(part_reader.at(++g.now), "after the removal"));
  REQUIRE(post.size() == 1);  // no rekey first: the key is good
  for (auto& p : g.peers) p.replica->ingest(post);
  g.f.replica->ingest(post);
  for (auto& p : g.peers) {
    INFO("member " << to_hex(p.key.public_key()).substr(0, 8));
    const bool removed = p.key.public_key() == gone;
    CHECK(p.replica->state().is_member(p.key.public_key()) == !removed);
    CHECK(texts(*p.replica).back() == (removed ? "<unreadable>" : "after the removal"));
  }
  CHECK(texts(*g.f.replica).back() == "after the removal");
}

// Proves every node folds a removal's key event, its part, a concurrent post and a rekey to the
// same state and history whatever order they arrive in (each node gets its own permutation).
TEST_CASE("key parts converge in any arrival order", "[node][group][keys]") {
  BigGroup g;
  const PublicKey gone = g.peers[0].key.public_key();
  std::vector<Event> events = must(g.f.replica->remove(g.f.at(++g.now), gone));
  auto concurrent = must(g.peers[1].replica->post(g.peers[1].at(g.now), "concurrent"));
  for (auto& e : concurrent) events.push_back(e);
  g.f.replica->ingest(concurrent);
  auto rekey = must(g.f.replica->rekey(g.f.at(++g.now)));
  REQUIRE(rekey.size() == 2);
  for (auto& e : rekey) events.push_back(e);
  Rng rng = Rng::from_u64(9);
  std::optional<std::vector<Hash>> history;
  for (std::size_t i = 1; i < g.peers.size(); ++i) {
    std::vector<Event> order = events;
    for (std::size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[rng.uniform(k)]);
    for (const auto& e : order) g.peers[i].replica->ingest({e});
    const auto& s = g.peers[i].replica->state();
    CHECK(s.current_key_event == rekey.front().id);
    CHECK_FALSE(g.peers[i].replica->unverified_key());
    if (!history) history = s.history;
    CHECK(s.history == *history);
  }
  CHECK(g.f.replica->state().history == *history);
}

// Proves forged key parts are refused at admission, on every node alike: a part by another
// member than the key event's author, one announcing an index above the key event's count, one
// that does not name its key event as a parent, one naming an event that is no key event, and
// one in another epoch. None gives anybody a key.
TEST_CASE("forged key parts are refused", "[node][group][keys][attack]") {
  BigGroup g;
  auto rekey = must(g.f.replica->rekey(g.f.at(++g.now)));
  REQUIRE(rekey.size() == 2);
  const Event& head = rekey[0];
  Peer& mallory = g.peers[1];
  mallory.replica->ingest(rekey);
  std::vector<KeyEntry> entry{{mallory.key.public_key(),
                               sealed_to(mallory.key.public_key(), random_key(mallory.rng).view(),
                                         mallory.rng)}};
  // Another author.
  Event by_other = part_event(mallory, head, 1, entry);
  CHECK(rejected(g.f.replica->ingest({by_other}), by_other.id));
  // An index the key event does not announce.
  Event past_count = part_event(g.f, head, 2, entry);
  CHECK(rejected(g.f.replica->ingest({past_count}), past_count.id));
  // Not a child of its key event.
  Event orphaned = part_event(g.f, head, 1, entry, std::vector<Hash>{rekey[1].id});
  CHECK(rejected(g.f.replica->ingest({orphaned}), orphaned.id));
  // Naming a post as its key event.
  auto post = must(g.f.replica->post(g.f.at(++g.now), "a post"));
  Event not_key = part_event(g.f, post.back(), 1, entry);
  CHECK(rejected(g.f.replica->ingest({not_key}), not_key.id));
  // Another epoch than its key event's.
  Event wrong_epoch = part_event(g.f, head, 1, entry);
  wrong_epoch.epoch = head.epoch + 1;
  sign_event(wrong_epoch, g.f.key);
  CHECK(rejected(g.f.replica->ingest({wrong_epoch}), wrong_epoch.id));
  CHECK(g.f.replica->state().current_key_event == head.id);
}

// Proves a second part with an index already used (the author's own, here with a wrong key)
// counts like the first: both are accepted on every node in any order, the member they both
// address keeps the good key and refuses the wrong one, and, since the key's recipients are every
// accepted part's, a part cannot hide whom it sealed the key to behind another of its index.
TEST_CASE("a duplicate key part index counts in full", "[node][group][keys][attack]") {
  BigGroup g;
  const PublicKey gone = g.peers[0].key.public_key();
  Peer& part_reader = g.in_slot(1, gone);
  auto removal = must(g.f.replica->remove(g.f.at(++g.now), gone));
  REQUIRE(removal.size() == 2);
  // A box that opens, to another key than the one the key event commits to.
  std::vector<KeyEntry> wrong{{part_reader.key.public_key(),
                               sealed_to(part_reader.key.public_key(),
                                         random_key(g.f.rng).view(), g.f.rng)}};
  Event dup = part_event(g.f, removal[0], 1, wrong);
  std::vector<KeyEntry> leak{{gone, Bytes(32 + seal_overhead_bytes, 9)}};
  Event leaky = part_event(g.f, removal[0], 1, leak);
  Replica& x = *g.peers[2].replica;
  Replica& y = *g.peers[3].replica;
  x.ingest({removal[0]});
  x.ingest({removal[1]});
  x.ingest({dup});
  y.ingest({removal[0]});
  y.ingest({dup});
  y.ingest({removal[1]});
  CHECK(x.state().history == y.state().history);
  for (Replica* r : {&x, &y}) {
    CHECK(r->group().find(removal[1].id)->accepted);
    CHECK(r->group().find(dup.id)->accepted);
    CHECK(r->state().current_key_event == removal[0].id);
  }
  part_reader.replica->ingest({removal[0], removal[1], dup});
  CHECK_FALSE(part_reader.replica->unverified_key());
  CHECK(part_reader.replica->keys_refused() >= 1);
  // A part addressed to the removed member makes the key unclean, whatever its index.
  x.ingest({leaky});
  CHECK_FALSE(x.state().current_key_event);
  CHECK(x.state().needs_rekey());
}

// Proves a partial split rekey heals: the author announces a part and never sends it (or sends
// junk in it), so the members whose entries it should hold are blind; one of them heals at its
// turn with a new rekey of its own (key event and part), after which everyone holds the key and
// reads what everyone posts.
TEST_CASE("a missing or junk key part is healed", "[node][group][keys][attack]") {
  for (bool junk : {false, true}) {
    INFO("junk " << junk);
    BigGroup g;
    auto rekey = must(g.f.replica->rekey(g.f.at(++g.now)));
    REQUIRE(rekey.size() == 2);
    std::vector<Event> sent{rekey[0]};
    if (junk) {
      auto part = decode_key_part(rekey[1].payload).value();
      for (auto& e : part.members) e.box.assign(e.box.size(), 0x5a);
      sent.push_back(part_event(g.f, rekey[0], 1, part.members));
    }
    std::vector<Peer*> blinded;
    for (auto& p : g.peers) {
      p.replica->ingest(sent);
      if (g.slot_of(p.key.public_key()) == 1) {
        CHECK(p.replica->unverified_key() == rekey[0].id);
        blinded.push_back(&p);
      } else {
        CHECK_FALSE(p.replica->unverified_key());
      }
    }
    REQUIRE_FALSE(blinded.empty());
    // Upkeep until someone heals; everyone gets the heal.
    std::vector<Event> heal;
    for (std::uint64_t now = g.now + 1000; heal.empty() && now <= g.now + 1000 + limits::heal_delay_ms_max + 1000;
         now += 100)
      for (Peer* p : blinded)
        if (heal.empty()) heal = p->replica->upkeep(p->at(now));
    REQUIRE(heal.size() == 2);
    CHECK(decode_rekey(heal[0].payload).value().replaces == rekey[0].id);
    g.f.replica->ingest(heal);
    for (auto& p : g.peers) {
      p.replica->ingest(heal);
      CHECK_FALSE(p.replica->unverified_key());
    }
    auto post = must(blinded.front()->replica->post(blinded.front()->at(g.now + 9000), "healed"));
    for (auto& p : g.peers) p.replica->ingest(post);
    for (auto& p : g.peers) CHECK(texts(*p.replica).back() == "healed");
  }
}

// Proves a removed member reads nothing after its removal even when the remover's key part
// seals the new key to it (a modified client: the remover holds the key and could leak it; this
// makes the leak visible to all): the key's recipients then include a non-member, so the key is
// not clean, nobody posts under it, and the next post starts a new epoch without that member.
TEST_CASE("a key part sealing to the removed member does not let it read on",
          "[node][group][keys][attack]") {
  BigGroup g;
  Peer& victim = g.peers[0];
  const PublicKey gone = victim.key.public_key();
  Replica& founder = *g.f.replica;
  const std::uint64_t epoch = founder.state().epoch + 1;
  const SymmetricKey key = random_key(g.f.rng);
  std::vector<KeyEntry> entries;
  for (const auto& [id, m] : founder.state().members)
    if (id != gone) entries.push_back({id, sealed_to(id, key.view(), g.f.rng)});
  RemovePayload remove;
  remove.member = gone;
  remove.keys.key_check = key_check(key, founder.id(), epoch);
  remove.keys.members.assign(entries.begin(), entries.begin() + limits::rekey_members_per_event);
  remove.keys.parts = 1;
  std::vector<KeyEntry> rest(entries.begin() + limits::rekey_members_per_event, entries.end());
  rest.push_back({gone, sealed_to(gone, key.view(), g.f.rng)});  // the leak
  Event head;
  head.group = founder.id();
  head.author = g.f.key.public_key();
  head.parents = founder.group().next_parents();
  head.depth = founder.group().next_depth(head.parents);
  head.time_ms = ++g.now;
  head.kind = EventKind::remove;
  head.epoch = epoch;
  head.payload = encode_payload(remove);
  sign_event(head, g.f.key);
  const std::vector<Event> removal{head, part_event(g.f, head, 1, rest)};
  founder.ingest(removal);
  for (auto& p : g.peers) p.replica->ingest(removal);
  CHECK_FALSE(founder.state().is_member(gone));
  // The victim holds the leaked key, but it is no current key anywhere: the next post rekeys.
  CHECK(victim.replica->keyring().find(epoch, head.id));
  CHECK_FALSE(founder.state().current_key_event);
  CHECK(founder.state().needs_rekey());
  Peer& poster = g.peers[1];
  auto post = must(poster.replica->post(poster.at(++g.now), "secret"));
  REQUIRE(post.size() == 3);  // rekey, its key part, the post
  CHECK(post[0].kind == EventKind::rekey);
  CHECK(post[2].epoch == epoch + 1);
  for (auto& p : g.peers) p.replica->ingest(post);
  CHECK(texts(*victim.replica).back() == "<unreadable>");
  CHECK(texts(*g.peers[2].replica).back() == "secret");
}
