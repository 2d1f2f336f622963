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
