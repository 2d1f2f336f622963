#include "app/render.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <limits>

#include "base/utf8.h"

namespace qun::render {
namespace {

constexpr char32_t symbol_for_escape = 0x241B;    // ␛
constexpr char32_t control_pictures = 0x2400;     // ␀ is U+2400, ␟ is U+241F
constexpr char32_t symbol_for_delete = 0x2421;    // ␡
constexpr const char* newline_symbol = "\u21B5";  // ↵

std::optional<std::string> string_field(const Json& v, const char* key) {
  auto it = v.find(key);
  if (it == v.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

Result<Entry> parse_entry(const Json& v) {
  if (!v.is_object()) return Error(Errc::malformed, "entry is not an object");
  Entry e;
  auto id = string_field(v, "id");
  auto author = string_field(v, "author");
  auto kind = string_field(v, "kind");
  if (!id || !author || !kind) return Error(Errc::malformed, "entry lacks id, author or kind");
  e.id = std::move(*id);
  e.author = std::move(*author);
  e.kind = std::move(*kind);
  e.nick = string_field(v, "nick");
  e.text = string_field(v, "text");
  if (auto st = v.find("stored"); st != v.end() && st->is_boolean()) e.stored = st->get<bool>();
  e.target = string_field(v, "target");
  e.target_nick = string_field(v, "target_nick");
  e.role = string_field(v, "role");
  e.replaces_author = string_field(v, "replaces_author");
  e.replaces_nick = string_field(v, "replaces_nick");
  auto flag = [&](const char* key) {
    auto it = v.find(key);
    return it != v.end() && it->is_boolean() && it->get<bool>();
  };
  e.edited = flag("edited");
  e.deleted = flag("deleted");
  e.undo = flag("undo");
  e.op = string_field(v, "op");
  if (auto d = v.find("duration_ms"); d != v.end() && d->is_number_integer())
    e.duration_ms = d->is_number_unsigned()
                        ? d->get<std::uint64_t>()
                        : static_cast<std::uint64_t>(std::max<std::int64_t>(0, d->get<std::int64_t>()));
  if (auto r = v.find("reactions"); r != v.end() && r->is_object())
    for (auto it = r->begin(); it != r->end(); ++it)
      if (it.value().is_array() && !it.value().empty()) e.reactions[it.key()] = it.value().size();
  if (auto f = v.find("file"); f != v.end() && f->is_object()) {
    Entry::File file;
    file.name = string_field(*f, "name").value_or("file");
    file.media_type = string_field(*f, "media_type").value_or("");
    if (auto sz = f->find("size"); sz != f->end() && sz->is_number_unsigned())
      file.size = sz->get<std::uint64_t>();
    e.file = std::move(file);
  }
  auto t = v.find("time");
  if (t != v.end() && t->is_number_unsigned()) {
    e.time_ms = static_cast<std::int64_t>(std::min<std::uint64_t>(
        t->get<std::uint64_t>(),
        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())));
  } else if (t != v.end() && t->is_number_integer()) {
    e.time_ms = t->get<std::int64_t>();
  }
  return e;
}

bool bookkeeping(std::string_view kind) {
  return kind == "invite" || kind == "rekey" || kind == "key-part" || kind == "close-invite";
}

std::string name(const std::optional<std::string>& nick, std::string_view id) {
  if (nick && !nick->empty()) return *nick;
  return std::string(id.substr(0, 8));
}

std::string event_words(std::string_view kind, std::string_view actor_view,
                        std::string_view target_view, const std::optional<std::string>& text_opt,
                        const std::optional<std::string>& role) {
  const std::string actor(actor_view);
  const std::string target = target_view.empty() ? "someone" : std::string(target_view);
  const std::string text = text_opt.value_or("");
  if (kind == "create") return actor + " created the group" + (text.empty() ? "" : " \"" + text + "\"");
  if (kind == "join") return actor + " joined";
  if (kind == "add") return actor + " added " + target;
  if (kind == "remove") return actor + " removed " + target;
  if (kind == "leave") return actor + " left";
  if (kind == "set-role") return actor + " made " + target + " " + role.value_or("something new");
  if (kind == "set-name") return actor + " renamed the group to \"" + text + "\"";
  if (kind == "set-topic")
    return text.empty() ? actor + " cleared the topic" : actor + " set the topic: " + text;
  if (kind == "rekey") return actor + " rotated the group key";
  if (kind == "key-part") return actor + " sent more of a new group key";
  if (kind == "invite") return actor + " created an invite";
  if (kind == "close-invite") return actor + " closed an invite";
  if (kind == "relay") return actor + " added the relay " + text;
  if (kind == "post") return actor + ": " + (text_opt ? text : unreadable_text);
  return actor + " " + std::string(kind);
}

std::string entry_words(const Entry& e, std::string_view actor_view, std::string_view target_view) {
  const std::string actor(actor_view);
  const std::string target = target_view.empty() ? "someone" : std::string(target_view);
  const std::string text = e.text.value_or("");
  if (e.kind == "react") return actor + (e.undo ? " took back the reaction " : " reacted ") + text;
  if (e.kind == "edit") return actor + " edited a message";
  if (e.kind == "delete") return actor + " deleted a message";
  if (e.kind == "redact") return actor + " deleted a message (moderation)";
  if (e.kind == "mute") {
    if (e.undo) return actor + " unmuted " + target;
    return actor + " muted " + target +
           (e.duration_ms > 0 ? " for " + duration_words(e.duration_ms) : "");
  }
  if (e.kind == "ban") return actor + (e.undo ? " unbanned " : " banned ") + target;
  if (e.kind == "channel") {
    const std::string op = e.op.value_or("create");
    if (op == "rename") return actor + " renamed a channel to #" + text;
    if (op == "archive") return actor + " archived the channel #" + text;
    return actor + " created the channel #" + text;
  }
  if (e.kind == "set-nick") return actor + " is now known as " + text;
  if (e.kind == "set-settings") return actor + " changed the group's settings";
  return event_words(e.kind, actor, target, e.text, e.role);
}

std::string size_words(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else if (v < 10) std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  else std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
  return buf;
}

std::string file_words(const Entry::File& file) {
  return "\U0001F4CE " + file.name + " \u00B7 " + size_words(file.size);
}

std::string for_terminal(std::string_view s, bool keep_line_breaks) {
  std::string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  while (pos < s.size()) {
    char32_t c = utf8::next(s, pos);
    if (c == '\n') {
      out += keep_line_breaks ? "\n" : newline_symbol;
      continue;
    }
    if (c == '\t') {
      out += keep_line_breaks ? '\t' : ' ';
      continue;
    }
    if (c == 0x1B) c = symbol_for_escape;
    else if (c < 0x20) c = control_pictures + c;
    else if (c == 0x7F) c = symbol_for_delete;
    else if (c >= 0x80 && c < 0xA0) c = utf8::replacement;
    utf8::append(out, c);
  }
  return out;
}

std::string log_entry(const Entry& e, std::string_view time) {
  const std::string actor = for_terminal(name(e.nick, e.author), false);
  std::string line(time);
  line += "  ";
  if (e.kind == "post") {
    line += actor + ": ";
    if (e.deleted) return line + "(message deleted)";
    if (!e.text) return line + (e.stored ? unreadable_text : not_stored_text);
    if (e.file) {
      line += for_terminal(file_words(*e.file), false);
      if (!e.text->empty()) line += " \u2014 ";
    }
    std::string after;
    if (e.edited) after += " (edited)";
    if (!e.reactions.empty()) {
      after += " [";
      bool first = true;
      for (const auto& [emoji, n] : e.reactions) {
        after += (first ? "" : ", ") + for_terminal(emoji, false) + " " + std::to_string(n);
        first = false;
      }
      after += "]";
    }
    // Continuation lines start under the nick: the width of "TIME  " (the time is ASCII).
    const std::string indent(time.size() + 2, ' ');
    for (char ch : for_terminal(*e.text, true)) {
      line += ch;
      if (ch == '\n') line += indent;
    }
    return line + after;
  }
  const std::string target =
      e.target ? for_terminal(name(e.target_nick, *e.target), false) : std::string();
  std::string words = entry_words(e, actor, target);
  // A healing rekey names whose key it replaces: the moderation trail of a bad rekey.
  if (e.kind == "rekey" && e.replaces_author)
    words += ", replacing a bad key from " + name(e.replaces_nick, *e.replaces_author);
  return line + "* " + for_terminal(words, false);
}

std::string json_line(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<std::string> removed_you_words(const Entry& e, std::string_view own_id,
                                             std::string_view group, std::string_view actor) {
  if (e.kind != "remove" || own_id.empty() || !e.target || *e.target != own_id)
    return std::nullopt;
  return "you were removed from " + std::string(group) + " by " + std::string(actor);
}

std::string succession_words(std::string_view who, bool you, bool last_admin_removed) {
  return (you ? std::string("you are") : std::string(who) + " is") +
         " now an admin: the last admin " + (last_admin_removed ? "was removed" : "left");
}

std::string duration_words(std::uint64_t ms) {
  if (ms % 86'400'000 == 0 && ms > 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms % 3'600'000 == 0 && ms > 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0 && ms > 0) return std::to_string(ms / 60'000) + "m";
  return std::to_string(std::max<std::uint64_t>(1, ms / 1000)) + "s";
}

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

}  // namespace qun::render
