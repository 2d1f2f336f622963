// What the conversation layer (issue 12) keeps in and reads from a node's store, between real
// processes: a deleted or redacted post's ciphertext and its edits' are dropped on every
// member's node (stubs kept); unread counts are kept per channel across a restart; and `log
// --follow --channel` streams that channel only.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "node/event.h"
#include "node/payload.h"
#include "store/store.h"
#include "tests/integration/harness.h"

namespace qun::integration {
namespace {

Json entry(const std::vector<Json>& log, const std::string& id) {
  for (const auto& e : log)
    if (e.value("id", std::string()) == id) return e;
  return Json();
}

// The first bytes of the ciphertext of event `id` as the (stopped) node of `home` stores it, or
// "" when it holds none (not stored, or a stub).
std::string stored_ciphertext(const fs::path& home, const std::string& id) {
  auto store = Store::open((home / "db").string());
  REQUIRE(store.ok());
  auto raw = from_hex(id);
  REQUIRE(raw);
  auto h = Hash::from_view(*raw);
  REQUIRE(h);
  auto bytes = (*store)->get_event(*h);
  REQUIRE(bytes.ok());
  if (!*bytes) return "";
  auto e = decode_event(**bytes);
  REQUIRE(e.ok());
  if (e->payload_dropped) return "";
  auto text = decode_text(e->payload);
  REQUIRE(text.ok());
  // 48 bytes of AEAD output cannot occur elsewhere by chance.
  REQUIRE(text->text.data.size() >= 48);
  return std::string(text->text.data.begin(), text->text.data.begin() + 48);
}

}  // namespace

// Proves: bob's post, edited, then redacted by alice (the founder), and bob's own deleted post
// are gone from alice's and bob's stores: each store holds their events, and the edit's, as
// stubs only (read back from the stopped nodes' stores), while the log still shows the
// tombstones in place (deleted, text null, the reply to it kept), also after a restart. The
// control: the relay, which cannot read what a redaction names, still holds the ciphertext.
TEST_CASE("a removed post is a stub in every member's store", "[integration][conversation]") {
  Cluster cluster;
  AliceBobRelay nodes = start_alice_bob_relay(cluster);
  Node &r = nodes.relay, &a = nodes.alice, &b = nodes.bob;
  const std::string group = create_group(a, "plaza");
  a.ok({"relay", "add", group, r.address()});
  REQUIRE(invite_and_join(a, b, group) == group);

  const std::string spam_text = "spam-" + random_hex(16);
  const std::string spam = b.json({"post", group, spam_text}).value("id", std::string());
  const std::string edit_text = "spam-edited-" + random_hex(16);
  const std::string edit = b.json({"edit", group, spam, edit_text}).value("id", std::string());
  const std::string reply = a.json({"post", group, "stop that", "--reply", spam}).value("id", std::string());
  const std::string mine_text = "regret-" + random_hex(16);
  const std::string mine = b.json({"post", group, mine_text}).value("id", std::string());
  REQUIRE(spam.size() == 64);
  REQUIRE(edit.size() == 64);
  REQUIRE(mine.size() == 64);
  wait_for_posts(a, group, {edit_text, mine_text});
  a.ok({"delete", group, spam});  // the founder's redaction
  b.ok({"delete", group, mine});
  for (const Node* n : {&a, &b}) {
    wait_until(
        [&] {
          auto log = log_of(*n, group);
          return entry(log, spam).value("deleted", false) && entry(log, mine).value("deleted", false);
        },
        propagate_bound, n->name() + " shows both posts deleted");
  }
  wait_until(
      [&] {
        const auto held = events_held(r, group);
        return held > 0 && held == events_held(a, group) && held == events_held(b, group);
      },
      propagate_bound, "the relay holds every event alice and bob hold");
  auto log = log_of(b, group);
  CHECK(entry(log, spam)["text"].is_null());
  CHECK(entry(log, reply).value("reply_to", std::string()) == spam);
  CHECK(entry(log, reply).value("text", std::string()) == "stop that");

  a.stop();
  b.stop();
  r.stop();
  for (const std::string& id : {spam, edit, mine}) {
    const std::string cipher = stored_ciphertext(r.home(), id);
    REQUIRE(!cipher.empty());
    for (const Node* n : {&a, &b}) {
      INFO(n->name() << " still stores the ciphertext of " << id);
      CHECK(stored_ciphertext(n->home(), id).empty());
    }
    // Not checked: that no file holds the bytes. LMDB writes copy-on-write, so the page that
    // held the full event stays in data.mdb as a free page until a later write reuses it
    // (docs/protocol.md, "Known limits"); the store has no scrub or compaction yet.
  }
  // Restarted, a member still shows the tombstones (the stubs keep the DAG and the order).
  a.start();
  log = log_of(a, group);
  CHECK(entry(log, spam).value("deleted", false));
  CHECK(entry(log, mine).value("deleted", false));
  CHECK(entry(log, reply).value("reply_to", std::string()) == spam);
}

// Proves `log --follow --channel dev` streams #dev's posts and the acts on them (a reaction, an
// edit, the channel's rename) and nothing of #general: neither its posts nor the reaction to
// one of them. The general post is sent last, after the dev acts were seen, so its absence is
// not a matter of timing: a second follower of the whole group shows it arrived.
TEST_CASE("log --follow --channel streams that channel only", "[integration][conversation]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "works");
  REQUIRE(invite_and_join(a, b, group) == group);
  a.ok({"channel", "create", group, "dev"});
  wait_until([&] { return b.json({"channel", "list", group}).size() == 2; }, propagate_bound,
             "bob sees #dev");
  const std::string general = a.json({"post", group, "general-before"}).value("id", std::string());
  wait_for_posts(b, group, {"general-before"});

  const fs::path dev_out = cluster.dir() / "dev.out", all_out = cluster.dir() / "all.out";
  Process dev = Process::spawn({qun_binary(), "log", group, "--follow", "--json", "--channel",
                                "dev", "--home", b.home().string()},
                               cluster.env(), cluster.dir() / "logs/dev.log", dev_out);
  Process all = Process::spawn(
      {qun_binary(), "log", group, "--follow", "--json", "--home", b.home().string()},
      cluster.env(), cluster.dir() / "logs/all.log", all_out);
  auto bad = b.qun({"log", group, "--follow", "--channel", "nope"});
  CHECK(bad.code == 1);
  CHECK(bad.err.find("no channel #nope") != std::string::npos);

  const std::string in_dev =
      a.json({"post", group, "dev-post", "--channel", "dev"}).value("id", std::string());
  a.ok({"post", group, "general-middle"});
  wait_for_posts(b, group, {"dev-post", "general-middle"});
  a.ok({"react", group, in_dev, "🚀"});
  a.ok({"react", group, general, "👀"});
  a.ok({"edit", group, in_dev, "dev-post, fixed"});
  a.ok({"channel", "rename", group, "dev", "devel"});
  auto has = [](const fs::path& f, const std::string& kind, const std::string& what) {
    for (const auto& l : parse_json_lines(file_contents(f)))
      if (l.value("kind", std::string()) == kind &&
          (l.value("target", std::string()) == what || text_of(l) == what))
        return true;
    return false;
  };
  wait_until(
      [&] {
        return has(dev_out, "post", "dev-post") && has(dev_out, "react", in_dev) &&
               has(dev_out, "edit", in_dev) && has(dev_out, "channel", "devel");
      },
      propagate_bound, "the #dev follower streams its post, reaction, edit and rename");
  a.ok({"post", group, "general-after"});
  wait_until([&] { return has(all_out, "post", "general-after"); }, propagate_bound,
             "the whole-group follower streams the last general post");
  // The dev follower got the same stream up to there; the node sends in order, so a general
  // post would have come before the rename it followed, and general-after before nothing.
  for (const auto& l : parse_json_lines(file_contents(dev_out))) {
    INFO(l.dump());
    CHECK(text_of(l).rfind("general-", 0) == std::string::npos);
    CHECK(l.value("target", std::string()) != general);
    CHECK((l.value("kind", std::string()) != "post" || l.value("channel", std::string()) == "dev"));
  }
  CHECK(has(all_out, "post", "general-middle"));
  CHECK(has(all_out, "react", general));
  dev.stop();
  all.stop();
}

// Proves unread counts per channel come from read markers kept per channel: bob reads #dev
// with `log --channel dev`, and `group list` (JSON and text) and `channel list` then show
// #general's post unread and #dev's read, the same after bob's node restarts; `log` without
// --channel then reads them all.
TEST_CASE("unread counts per channel survive a restart", "[integration][conversation]") {
  Cluster cluster;
  Node& a = cluster.add("alice");
  Node& b = cluster.add("bob");
  a.start();
  b.start(NodeOptions::with_peers({a.address()}));
  const std::string group = create_group(a, "mill");
  REQUIRE(invite_and_join(a, b, group) == group);
  a.ok({"channel", "create", group, "dev"});
  a.ok({"post", group, "general news"});
  a.ok({"post", group, "dev one", "--channel", "dev"});
  a.ok({"post", group, "dev two, bob?", "--channel", "dev"});
  // Waiting on `group list` (a `log` would mark them read).
  wait_until([&] { return group_entry(b, group).value("unread", 0) == 3; }, propagate_bound,
             "bob has the three posts unread");
  b.ok({"log", group, "--channel", "dev"});

  auto counts = [&](const Node& n) {
    std::map<std::string, std::uint64_t> out;  // channel name -> unread; "" -> the group's
    const Json g = group_entry(n, group);
    out[""] = g.value("unread", std::uint64_t{99});
    for (const auto& c : g.value("channels", Json::array()))
      out[c.value("name", std::string("?"))] = c.value("unread", std::uint64_t{99});
    return out;
  };
  const std::map<std::string, std::uint64_t> want{{"", 1}, {"general", 1}, {"dev", 0}};
  CHECK(counts(b) == want);
  CHECK(b.ok({"group", "list"}).find("1 unread (#general 1)") != std::string::npos);
  b.stop();
  b.start(NodeOptions::with_peers({a.address()}));
  CHECK(counts(b) == want);
  const std::string list = b.ok({"channel", "list", group});
  CHECK(list.find("#general  1 unread") != std::string::npos);
  CHECK(list.find("#dev  ") == std::string::npos);
  b.ok({"log", group});
  CHECK(counts(b) == (std::map<std::string, std::uint64_t>{{"", 0}, {"general", 0}, {"dev", 0}}));
}

}  // namespace qun::integration
