#include "cli/chat_message.h"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <limits>
#include <vector>

#include "cli/chat_text.h"
#include "app/naming.h"
#include "app/render.h"

namespace qun::chat {

std::optional<std::string> json_string(const Json& v, const char* key) {
  if (!v.is_object()) return std::nullopt;
  auto it = v.find(key);
  if (it == v.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::size_t json_count(const Json& v, const char* key) {
  if (!v.is_object()) return 0;
  auto it = v.find(key);
  if (it == v.end()) return 0;
  if (it->is_number_unsigned()) return it->get<std::size_t>();
  if (it->is_number_integer())
    return static_cast<std::size_t>(std::max<std::int64_t>(0, it->get<std::int64_t>()));
  if (it->is_array()) return it->size();
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Messages.

namespace {

bool json_flag(const Json& v, const char* key) {
  auto it = v.find(key);
  return it != v.end() && it->is_boolean() && it->get<bool>();
}

// The fields of issue 12's contract. Fields of the wrong type read as absent; a reactions object
// is taken only as far as the node's own bounds, so a hostile or broken node cannot make one
// message hold more than the chat can draw.
void read_conversation(const Json& v, Message& m) {
  if (auto c = json_string(v, "channel"); c && !c->empty()) m.channel = *c;
  m.reply_to = json_string(v, "reply_to");
  m.action = json_flag(v, "action");
  m.conversation = v.contains("reply_to") || v.contains("reactions") || v.contains("deleted");
  if (auto r = v.find("reactions"); r != v.end() && r->is_object()) {
    for (auto it = r->begin(); it != r->end(); ++it) {
      if (m.reactions.size() >= reactions_per_message_max) break;
      if (!it.value().is_array() || it.key().empty() || it.key().size() > emoji_bytes_max)
        continue;
      std::vector<std::string> who;
      for (const auto& id : it.value()) {
        if (who.size() >= reactors_per_emoji_max) break;
        if (id.is_string()) who.push_back(id.get<std::string>());
      }
      if (!who.empty()) m.reactions[it.key()] = std::move(who);
    }
  }
  m.emoji = json_string(v, "emoji");
  if (!m.emoji && m.kind == "react") m.emoji = m.text;
  m.redacted_by = json_string(v, "redacted_by");
  m.refused = json_string(v, "refused");
}

}  // namespace

Result<Message> parse_message(const Json& v) {
  QUN_TRY(render::Entry e, render::parse_entry(v));
  Message m;
  static_cast<render::Entry&>(m) = std::move(e);
  read_conversation(v, m);
  return m;
}

std::string display_nick(const std::optional<std::string>& nick, const std::string& id) {
  if (nick && !nick->empty()) return sanitize(*nick, false);
  return sanitize(id.substr(0, 8), false);
}

std::string system_text(const Message& m) {
  // The words are the CLI's too (app/render.h); the chat sanitizes them for its own drawing.
  const std::string actor = display_nick(m.nick, m.author);
  const std::string target = m.target ? display_nick(m.target_nick, *m.target) : "someone";
  return sanitize(render::entry_words(m, actor, target), false);
}

LocalTime local_time(std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  if (::localtime_r(&seconds, &tm) == nullptr) return {"--:--", ""};
  char clock[16], day[64];
  std::strftime(clock, sizeof clock, "%H:%M", &tm);
  std::strftime(day, sizeof day, "%a %d %b %Y", &tm);
  return {clock, day};
}

std::string message_line(const Message& m, const TimeFormat& format) {
  const std::string clock = format(m.time_ms).clock;
  if (m.kind == "post") {
    const std::string text = m.deleted ? "message deleted"
                             : m.text  ? sanitize(*m.text, false)
                             : m.stored ? render::unreadable_text
                                        : render::not_stored_text;
    const std::string edited = m.edited && !m.deleted ? " (edited)" : "";
    if (m.action && !m.deleted)
      return clock + " * " + display_nick(m.nick, m.author) + " " + text + edited;
    return clock + " " + display_nick(m.nick, m.author) + ": " + text + edited;
  }
  return clock + " * " + system_text(m);
}

Json message_json_line(const Json& message, const std::string& group, const std::string& own_id) {
  Json out = message;
  out["group"] = group;
  const auto author = json_string(message, "author");
  out["self"] = !own_id.empty() && author && *author == own_id;
  return out;
}

std::string chat_words(std::string error) {
  // The node words its errors for the shell; in the chat the same advice is a command.
  static const std::pair<const char*, const char*> words[] = {
      {"see `qun members GROUP`", "/members lists them"},
      {"`qun members GROUP`", "/members"},
      {"see `qun group list`", "your groups are on the left"},
      {"use `qun leave`", "use /leave"},
      {"`qun leave`", "/leave"},
      {"wait for `qun join` to finish", "wait for the join to finish"},
      {" (`qun status` shows the join)", ""},
      {"`qun join CODE`", "/join CODE"},
      {"`qun invite GROUP`", "/invite"},
  };
  for (const auto& [shell, chat] : words) {
    for (std::size_t at = error.find(shell); at != std::string::npos;
         at = error.find(shell, at + std::strlen(chat)))
      error.replace(at, std::strlen(shell), chat);
  }
  return error;
}

Result<std::string> resolve_group(const Json& list, std::string_view query) {
  if (!list.is_array()) return Error(Errc::malformed, "group list is not an array");
  std::vector<naming::Candidate> groups;
  for (const auto& g : list) {
    auto id = json_string(g, "id");
    if (id) groups.push_back({std::move(*id), json_string(g, "name").value_or("")});
  }
  QUN_TRY(std::size_t i, naming::find(query, groups, naming::Noun{"group", "qun group list"}));
  return groups[i].id;
}

}  // namespace qun::chat
