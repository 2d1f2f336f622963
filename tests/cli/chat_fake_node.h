// A fake node for the chat model's tests (tests/cli/chat_model_test.cpp and
// chat_conversation_test.cpp): it answers every request the model emits from its own state, as
// the daemon would, with helpers to type, press keys and read the screen as text.
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "cli/chat_model.h"
#include "app/render.h"

namespace qun::chat::test {

// Widths of a few well-known characters.
const std::string cjk = "\u65E5\u672C\u8A9E";     // 日本語, 2 columns each
const std::string emoji = "\U0001F600";           // 😀, 2 columns
const std::string e_acute = "e\u0301";            // e + combining acute, 1 column
const std::string hangul = "\uD55C\uAD6D\uC5B4";  // 한국어, 2 columns each

// Deterministic clock for layouts: UTC, so the test does not depend on TZ.
inline LocalTime utc_time(std::int64_t ms) {
  const std::time_t s = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char clock[16], day[32];
  std::strftime(clock, sizeof clock, "%H:%M", &tm);
  std::strftime(day, sizeof day, "%Y-%m-%d", &tm);
  return {clock, day};
}

// A message object as the node sends it.
inline Json message(const std::string& id, const std::string& author, const std::string& nick,
             const std::string& text, const std::string& kind = "post",
             std::int64_t time_ms = 1'700'000'000'000) {
  return Json{{"id", id},        {"author", author}, {"nick", nick},
              {"time", time_ms}, {"kind", kind},     {"text", text}};
}

inline std::string row_text(const Row& row) {
  std::string s;
  for (const auto& span : row) s += span.text;
  return s;
}

// A fake node: it answers every request the model emits from its own state, as the daemon would.
struct FakeNode {
  std::string own_id = std::string(64, 'a');
  std::string own_nick = "alice";
  Json groups = Json::array();
  std::map<std::string, std::vector<Json>> logs;  // group id -> messages, oldest first
  std::vector<NodeRequest> seen;                  // every request, in order
  std::vector<Json> posts;                        // args of successful posts
  std::vector<Json> dm_requests;                  // args of every dm request (/msg, /query)
  std::map<std::string, std::string> fail;        // op -> error to answer with
  Json status_g1 = Json{{"id", "g1"}, {"synced", true}};  // g1's entry in the status answer
  std::string invite_code = "qun1CODE";
  Json modlog = Json::array();                    // the answer to modlog
  Json members = Json::array({Json{{"id", own_id}, {"nick", "alice"}, {"role", "founder"}},
                              Json{{"id", std::string(64, 'b')}, {"nick", "bob"}, {"role", "member"}}});
  int bells = 0;
  std::vector<std::string> opened;  // OpenFile actions' paths
  bool quit = false;
  bool answering = true;  // false: requests stay unanswered

  ChatModel model{ChatModel::Config{std::nullopt, utc_time}};
  std::vector<NodeRequest> unanswered;

  void add_group(const std::string& id, const std::string& name, std::size_t unread = 0,
                 std::size_t mentions = 0) {
    groups.push_back(Json{{"id", id},
                          {"name", name},
                          {"topic", "about " + name},
                          {"members", 2},
                          {"unread", unread},
                          {"mentions", mentions}});
  }

  Result<Json> answer(const NodeRequest& r) {
    if (auto it = fail.find(r.op); it != fail.end())
      return Error(Errc::invalid_argument, it->second);
    if (r.op == "id") return Json{{"id", own_id}, {"nick", own_nick}, {"listen", Json::array()}};
    if (r.op == "subscribe" || r.op == "read") return Json::object();
    if (r.op == "group.list") return groups;
    if (r.op == "status") return Json{{"peers", 3}, {"groups", Json::array({status_g1})}};
    if (r.op == "log") {
      const auto& log = logs[r.args["group"].get<std::string>()];
      std::size_t end = log.size();
      if (r.args.contains("before")) {
        const std::string before = r.args["before"];
        end = static_cast<std::size_t>(
            std::find_if(log.begin(), log.end(), [&](const Json& m) { return m["id"] == before; }) -
            log.begin());
      }
      const std::size_t limit = r.args.value("limit", std::size_t{50});
      const std::size_t begin = end > limit ? end - limit : 0;
      Json page = Json::array();
      for (std::size_t i = begin; i < end; ++i) page.push_back(log[i]);
      return page;
    }
    if (r.op == "post") {
      posts.push_back(r.args);
      return Json{{"id", "p" + std::to_string(posts.size())}};
    }
    if (r.op == "invite") return Json{{"code", invite_code}};
    if (r.op == "members") return members;
    if (r.op == "modlog") return modlog;
    if (r.op == "join") return Json{{"group", "g9"}};
    if (r.op == "file.fetch")
      return Json{{"name", "photo.png"}, {"path", r.args.value("path", std::string())}};
    if (r.op == "dm") {
      // A direct conversation "d1" with the member, made on the first /msg or /query.
      dm_requests.push_back(r.args);
      const bool created = std::none_of(groups.begin(), groups.end(),
                                        [](const Json& g) { return g["id"] == "d1"; });
      if (created)
        groups.push_back(Json{{"id", "d1"}, {"name", "@bob"}, {"members", 2}, {"direct", true},
                              {"unread", 0}, {"mentions", 0}});
      Json out{{"group", "d1"}, {"created", created}};
      if (r.args.contains("text"))
        logs["d1"].push_back(message("m" + std::to_string(logs["d1"].size()), own_id, own_nick,
                                     r.args["text"].get<std::string>()));
      return out;
    }
    return Json::object();
  }

  // Drains the model, answering requests until it asks nothing more.
  void settle() {
    for (int round = 0; round < 100; ++round) {
      std::vector<NodeRequest> batch;
      while (auto a = model.poll()) {
        if (auto* r = std::get_if<NodeRequest>(&*a)) {
          seen.push_back(*r);
          batch.push_back(*r);
        } else if (std::holds_alternative<Bell>(*a)) {
          ++bells;
        } else if (auto* o = std::get_if<OpenFile>(&*a)) {
          opened.push_back(o->path);
        } else {
          quit = true;
        }
      }
      if (batch.empty()) return;
      for (auto& r : batch) {
        if (answering)
          model.on_response(r, answer(r));
        else
          unanswered.push_back(r);
      }
    }
    FAIL("the model keeps asking");
  }

  void connect() {
    model.on_connected();
    settle();
  }

  void deliver(const std::string& group, const Json& m) {
    logs[group].push_back(m);
    model.on_stream(Json{{"stream", "message"}, {"group", group}, {"message", m}});
    settle();
  }

  void type(const std::string& text) {
    std::size_t pos = 0;
    while (pos < text.size()) model.on_key(Key{Key::Kind::text, next_code_point(text, pos)});
    settle();
  }
  void key(Key::Kind kind, char32_t ch = 0) {
    model.on_key(Key{kind, ch});
    settle();
  }

  // The whole frame at 80x24 as text, one row a line.
  std::string screen(int cols = 80, int rows = 24) {
    Frame f = model.layout(cols, rows);
    std::string out = row_text(f.title) + "\n";
    for (const auto& row : f.messages) out += row_text(row) + "\n";
    for (const auto& row : f.groups) out += row_text(row) + "\n";
    return out + row_text(f.status) + "\n" + f.prompt + f.input + "\n";
  }

  std::size_t count(const std::string& op) const {
    return static_cast<std::size_t>(
        std::count_if(seen.begin(), seen.end(), [&](const NodeRequest& r) { return r.op == op; }));
  }
};


}  // namespace qun::chat::test
