#include "cli/chat_conversation.h"

#include <algorithm>

#include "cli/chat_text.h"
#include "app/render.h"

namespace qun::chat {

bool acts_on_message(std::string_view kind) {
  return kind == "react" || kind == "edit" || kind == "delete" || kind == "redact";
}

bool apply_to_target(std::vector<Message>& messages, const Message& line) {
  if (!acts_on_message(line.kind) || !line.target) return false;
  auto it = std::find_if(messages.rbegin(), messages.rend(), [&](const Message& m) {
    return !m.id.empty() && m.id == *line.target;
  });
  if (it == messages.rend() || it->kind != "post") return false;
  Message& m = *it;
  if (line.kind == "delete" || line.kind == "redact") {
    if (line.kind == "redact" && line.author != m.author) m.redacted_by = line.author;
    m.deleted = true;
    m.text.reset();
    m.reactions.clear();
    return true;
  }
  if (m.deleted) return true;
  if (line.kind == "edit") {
    // Only the author edits a post; every node checks that, and so does the chat, so a node
    // that passed on a stranger's edit still cannot change what is shown.
    if (line.author != m.author) return false;
    m.text = line.text;
    m.edited = true;
    return true;
  }
  // react
  if (!line.emoji || line.emoji->empty() || line.emoji->size() > emoji_bytes_max) return false;
  auto r = m.reactions.find(*line.emoji);
  if (line.undo) {
    if (r == m.reactions.end()) return true;
    std::erase(r->second, line.author);
    if (r->second.empty()) m.reactions.erase(r);
    return true;
  }
  if (r == m.reactions.end()) {
    if (m.reactions.size() >= reactions_per_message_max) return false;
    r = m.reactions.emplace(*line.emoji, std::vector<std::string>{}).first;
  }
  if (r->second.size() < reactors_per_emoji_max &&
      std::find(r->second.begin(), r->second.end(), line.author) == r->second.end())
    r->second.push_back(line.author);
  return true;
}

std::map<std::string, std::string> short_refs(const std::vector<Message>& messages) {
  std::vector<std::string> ids;
  for (const auto& m : messages)
    if (!m.id.empty()) ids.push_back(m.id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  auto common = [](const std::string& a, const std::string& b) {
    std::size_t n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
    return n;
  };
  std::map<std::string, std::string> refs;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::size_t n = ref_digits_min;
    if (i > 0) n = std::max(n, common(ids[i], ids[i - 1]) + 1);
    if (i + 1 < ids.size()) n = std::max(n, common(ids[i], ids[i + 1]) + 1);
    refs[ids[i]] = ids[i].substr(0, std::min(n, ids[i].size()));
  }
  return refs;
}

bool looks_like_ref(std::string_view word) {
  if (word.size() < ref_digits_min || word.size() > 64) return false;
  return std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

Result<std::size_t> resolve_ref(const std::vector<Message>& messages, std::string_view ref) {
  std::string lower(ref);
  for (auto& c : lower)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  const std::string shown = truncate_to_width(sanitize(ref, false), 20);
  if (!looks_like_ref(lower))
    return Error(Errc::invalid_argument,
                 "\"" + shown + "\" is not a message reference (Ctrl+R shows them, Alt+Up selects)");
  std::optional<std::size_t> found;
  std::string found_id;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const std::string& id = messages[i].id;
    if (id.empty() || id.compare(0, lower.size(), lower) != 0 || id == found_id) continue;
    if (found)
      return Error(Errc::invalid_argument,
                   "several messages start with " + shown + "; give more of the reference");
    found = i;
    found_id = id;
  }
  if (!found)
    return Error(Errc::not_found, "no message " + shown +
                                      " here (Ctrl+R shows the references of what is loaded)");
  return *found;
}

std::string quote_start(const Message& parent, int cols) {
  std::string text;
  if (parent.deleted)
    text = "message deleted";
  else if (!parent.text)
    text = parent.stored ? render::unreadable_text : render::not_stored_text;
  else
    text = sanitize(*parent.text, false);
  if (display_width(text) <= cols) return text;
  return truncate_to_width(text, std::max(0, cols - 1)) + "\u2026";
}

}  // namespace qun::chat
