// The chat's files (cli/chat_files.cpp, issue 15): a file post's line with its number, /open and
// /save as the node requests they make, and the rule that nothing above the user's size is
// fetched without being asked for.
#include <catch2/catch.hpp>

#include "cli/chat_model.h"
#include "tests/cli/chat_fake_node.h"

using namespace qun;
using namespace qun::chat;
using namespace qun::chat::test;

namespace {

const std::string bob = std::string(64, 'b');

Json file_post(const std::string& id, const std::string& name, std::uint64_t size,
               const std::string& caption = "") {
  Json m = message(id, bob, "bob", caption);
  m["file"] = Json{{"name", name}, {"size", size}, {"media_type", "image/png"}, {"root", std::string(64, 'c')}};
  return m;
}

FakeNode files_node(std::uint64_t auto_fetch_bytes_max, bool display = true) {
  FakeNode node;
  ChatModel::Config config{std::nullopt, utc_time};
  config.auto_fetch_bytes_max = auto_fetch_bytes_max;
  config.open_dir = "/cache/qun/files";
  config.save_dir = "/home/al/Downloads";
  config.display = display;
  node.model = ChatModel(config);
  node.add_group("g1", "lobby");
  return node;
}

std::vector<NodeRequest> fetches(const FakeNode& node) {
  std::vector<NodeRequest> out;
  for (const auto& r : node.seen)
    if (r.op == "file.fetch") out.push_back(r);
  return out;
}

}  // namespace

// Proves a file post shows as one line with the file's name, size and number for /open, its
// caption below, for history and for new posts alike, numbered in the order the chat saw them.
TEST_CASE("chat: a file post shows its name, size and /open number", "[chat][files]") {
  FakeNode node = files_node(0);
  node.logs["g1"] = {file_post("f1", "photo.png", 2'400'000, "the view")};
  node.connect();
  node.deliver("g1", file_post("f2", "notes.pdf", 12'000));
  const std::string screen = node.screen(100, 24);
  CHECK(screen.find("bob: \U0001F4CE photo.png \u00B7 2.3 MiB \u00B7 /open 1") != std::string::npos);
  CHECK(screen.find("the view") != std::string::npos);
  CHECK(screen.find("\U0001F4CE notes.pdf \u00B7 12 KiB \u00B7 /open 2") != std::string::npos);
  CHECK(node.model.file_number("f2") == 2);
}

// Proves the size setting: with chat.auto_fetch_mib at 10 MiB, a 2 MiB file that arrives is
// fetched at once into the node's store (a file.fetch without a path), a 50 MiB one is not, nor
// is a file in the history loaded at start; with the setting at 0 nothing is.
TEST_CASE("chat: files are fetched on arrival only up to the user's size", "[chat][files]") {
  FakeNode node = files_node(10 << 20);
  node.logs["g1"] = {file_post("old", "old.png", 1000)};
  node.connect();
  node.deliver("g1", file_post("small", "small.png", 2 << 20));
  node.deliver("g1", file_post("big", "film.mkv", 50 << 20));
  auto f = fetches(node);
  REQUIRE(f.size() == 1);
  CHECK(f[0].args["event"] == "small");
  CHECK_FALSE(f[0].args.contains("path"));

  FakeNode never = files_node(0);
  never.connect();
  never.deliver("g1", file_post("small", "small.png", 10));
  CHECK(fetches(never).empty());
}

// Proves /save N asks the node to fetch file N into the downloads folder (or PATH) and says
// where it went; /open N fetches into the cache (reusing an earlier copy) and then opens it
// (an OpenFile action), or says where it is when there is no display; a number that is no file's
// is refused with one line and no request.
TEST_CASE("chat: /save and /open fetch a file and save or open it", "[chat][files]") {
  FakeNode node = files_node(0);
  node.connect();
  node.deliver("g1", file_post("f1", "photo.png", 2'400'000));
  node.type("/save 1");
  node.key(Key::Kind::enter);
  auto f = fetches(node);
  REQUIRE(f.size() == 1);
  CHECK(f[0].args["path"] == "/home/al/Downloads/photo.png");
  CHECK(node.screen(100, 24).find("saved photo.png to /home/al/Downloads/photo.png") != std::string::npos);

  node.type("/save 1 /tmp/x.png");
  node.key(Key::Kind::enter);
  CHECK(fetches(node).back().args["path"] == "/tmp/x.png");

  node.type("/open 1");
  node.key(Key::Kind::enter);
  const auto open = fetches(node).back();
  CHECK(open.args["path"] == "/cache/qun/files/f1/photo.png");
  CHECK(open.args.value("reuse", false));
  REQUIRE(node.opened.size() == 1);
  CHECK(node.opened[0] == "/cache/qun/files/f1/photo.png");

  const std::size_t before = fetches(node).size();
  node.type("/open 7");
  node.key(Key::Kind::enter);
  CHECK(fetches(node).size() == before);
  CHECK(node.screen(100, 24).find("no file 7") != std::string::npos);

  FakeNode headless = files_node(0, false);
  headless.connect();
  headless.deliver("g1", file_post("f1", "photo.png", 10));
  headless.type("/open 1");
  headless.key(Key::Kind::enter);
  CHECK(headless.opened.empty());
  CHECK(headless.screen(200, 24).find("no display here to open it on") != std::string::npos);
}
