// The one JSON form of an event (app/event_json.h) and its reading back (render::parse_entry):
// what the node writes is what the CLI and the chat read.
#include "app/event_json.h"

#include <catch2/catch.hpp>

#include "app/render.h"
#include "tests/node/fixture.h"

using namespace qun;
using namespace qun::test;

namespace {
constexpr std::uint64_t t0 = 1'700'000'000'000;
}  // namespace

// Proves a post, a topic and a promotion come out with their fields, and parse back into the
// same entry the text renderer prints.
TEST_CASE("event json: written by the node, read by the CLI and chat", "[app]") {
  Peer a(0);
  Replica r = must(Replica::create_group(a.at(t0), "lobby", "ada", GroupSettings{}));
  must(r.post(a.at(t0 + 1), "hello bob"));
  must(r.set_topic(a.at(t0 + 2), "be kind"));

  const auto history = r.history();
  REQUIRE(history.size() >= 3);
  const Message& post = history[history.size() - 2];
  REQUIRE(post.kind == EventKind::post);
  const control::Json j = render::message_json(r, post);
  CHECK(j["id"] == to_hex(post.id));
  CHECK(j["author"] == to_hex(a.key.public_key()));
  CHECK(j["nick"] == "ada");
  CHECK(j["kind"] == "post");
  CHECK(j["text"] == "hello bob");
  CHECK(j["time"] == t0 + 1);

  auto e = render::parse_entry(j);
  REQUIRE(e.ok());
  CHECK(e->id == to_hex(post.id));
  CHECK(e->nick == std::optional<std::string>("ada"));
  CHECK(e->text == std::optional<std::string>("hello bob"));
  CHECK(e->time_ms == static_cast<std::int64_t>(t0 + 1));
  CHECK(render::log_entry(*e, "T") == "T  ada: hello bob");

  auto topic = render::parse_entry(render::message_json(r, history.back()));
  REQUIRE(topic.ok());
  CHECK(render::log_entry(*topic, "T") == "T  * ada set the topic: be kind");
}

// Proves a post entry shows the post as it stands (issue 12): channel name, reply, edited,
// deleted with text null, reactions by member id; and the acts carry "target".
TEST_CASE("event json: posts as they stand, acts with their target", "[app]") {
  Peer a(0);
  Replica r = must(Replica::create_group(a.at(t0), "lobby", "ada", GroupSettings{}));
  const Hash dev = must(r.create_channel(a.at(t0 + 1), "dev")).back().id;
  const Hash p1 = must(r.post(a.at(t0 + 2), "first")).back().id;
  const Hash p2 = must(r.post(a.at(t0 + 3), "second", PostOptions{p1, dev, true})).back().id;
  const Hash react = must(r.react(a.at(t0 + 4), p2, "🎉", true)).back().id;
  must(r.edit(a.at(t0 + 5), p2, "second!"));
  const Hash del = must(r.delete_post(a.at(t0 + 6), p1)).back().id;
  const Conversation c = r.conversation();
  const auto j1 = render::message_json(r, *r.message(p1), &c);
  CHECK(j1["deleted"] == true);
  CHECK(j1["text"].is_null());
  CHECK(j1["channel"] == "general");
  const auto j2 = render::message_json(r, *r.message(p2), &c);
  CHECK(j2["text"] == "second!");
  CHECK(j2["edited"] == true);
  CHECK(j2["channel"] == "dev");
  CHECK(j2["reply_to"] == to_hex(p1));
  CHECK(j2["action"] == true);
  CHECK(j2["reactions"]["🎉"] == control::Json::array({to_hex(a.key.public_key())}));
  const auto jr = render::message_json(r, *r.message(react), &c);
  CHECK(jr["kind"] == "react");
  CHECK(jr["target"] == to_hex(p2));
  CHECK(jr["emoji"] == "🎉");
  CHECK(render::message_json(r, *r.message(del), &c)["target"] == to_hex(p1));
}

// Proves the text of a post as it stands (edited, reactions, deleted) and of the acts, and the
// moderation log's JSON: ada mutes bob for a minute, and the act names him and the duration.
TEST_CASE("event json: text of posts as they stand, acts and the moderation log", "[app]") {
  Peer a(0), b(1);
  Replica r = must(Replica::create_group(a.at(t0), "lobby", "ada", GroupSettings{}));
  const Hash first = must(r.post(a.at(t0 + 1), "frist")).back().id;
  const Hash second = must(r.post(a.at(t0 + 2), "to go")).back().id;
  must(r.edit(a.at(t0 + 3), first, "first"));
  must(r.react(a.at(t0 + 4), first, "\U0001F44D", true));
  must(r.delete_post(a.at(t0 + 5), second));
  auto [ev, code] = must(r.invite(a.at(t0 + 6), 1, t0 + 10'000'000, {}));
  (void)ev;
  b.replica = std::make_unique<Replica>(r.id(), &b.key);
  sync(r, *b.replica);
  must(b.replica->join(b.at(t0 + 7), code, "bob"));
  sync(*b.replica, r);
  must(r.mute(a.at(t0 + 8), b.key.public_key(), 60'000));
  const Conversation c = r.conversation();

  std::map<std::string, std::string> text_of;  // id -> log line
  std::vector<std::string> acts;
  for (const auto& m : r.history()) {
    auto e = render::parse_entry(render::message_json(r, m, &c));
    REQUIRE(e.ok());
    const std::string line = render::log_entry(*e, "T");
    if (m.kind == EventKind::post) text_of[to_hex(m.id)] = line;
    else acts.push_back(line);
  }
  CHECK(text_of.at(to_hex(first)) == "T  ada: first (edited) [\U0001F44D 1]");
  CHECK(text_of.at(to_hex(second)) == "T  ada: (message deleted)");
  CHECK(std::find(acts.begin(), acts.end(), "T  * ada reacted \U0001F44D") != acts.end());
  CHECK(std::find(acts.begin(), acts.end(), "T  * ada edited a message") != acts.end());
  CHECK(std::find(acts.begin(), acts.end(), "T  * ada deleted a message") != acts.end());
  CHECK(std::find(acts.begin(), acts.end(), "T  * ada muted bob for 1m") != acts.end());

  std::vector<control::Json> modlog;
  for (const auto& act : c.actions)
    if (act.moderation) modlog.push_back(render::action_json(r, act));
  REQUIRE(!modlog.empty());
  CHECK(modlog.back()["kind"] == "mute");
  CHECK(modlog.back()["author"] == to_hex(a.key.public_key()));
  CHECK(modlog.back()["target"] == to_hex(b.key.public_key()));
  CHECK(modlog.back()["target_nick"] == "bob");
  CHECK(modlog.back()["undo"] == false);
  CHECK(modlog.back()["duration_ms"] == 60'000);
}
