// The chat's side of search (issue 15): /search QUERY lists what the node's index finds, newest
// first and numbered, as info lines; /jump N shows result N's group and channel and selects the
// message (Alt+Up's selection, so /reply, /react, /edit and /delete act on it), loading older
// pages of the group until it is in the scrollback.
#include "cli/chat_internal.h"

namespace qun::chat {

using detail::plural;

void ChatModel::show_search_results(const std::string& query, const Json& result) {
  const Json empty = Json::array();
  const Json& results =
      result.is_object() && result.contains("results") && result["results"].is_array()
          ? result["results"]
          : empty;
  search_results_.clear();
  const std::string shown_query = truncate_to_width(sanitize(query, false), 40);
  if (results.empty()) {
    add_info("search \"" + shown_query + "\": no message matches", false);
  } else {
    add_info("search \"" + shown_query + "\": " + plural(results.size(), "message", "messages") +
                 ", newest first; /jump N shows one",
             false);
  }
  for (const auto& r : results) {
    if (search_results_.size() >= search_results_max) break;
    SearchResult s;
    s.group = json_string(r, "group").value_or("");
    s.channel = json_string(r, "channel").value_or("general");
    s.id = json_string(r, "id").value_or("");
    if (s.group.empty() || s.id.empty()) continue;
    search_results_.push_back(s);
    std::string group = sanitize(json_string(r, "group_name").value_or(s.group.substr(0, 8)), false);
    if (const Buffer* b = find(s.group)) group = b->label;
    const std::string where = s.channel == "general" ? group : group + " #" + sanitize(s.channel, false);
    const auto time = config_.time_format(r.value("time_ms", std::int64_t{0}));
    const std::string nick =
        sanitize(display_nick(json_string(r, "nick"), json_string(r, "author").value_or("")), false);
    add_info(std::to_string(search_results_.size()) + ". " + time.day + " " + time.clock + " " +
                 where + " " + nick + ": " + sanitize(json_string(r, "snippet").value_or(""), false),
             false);
  }
  if (result.is_object() && result.value("indexing", 0) > 0)
    add_info("the node is still indexing some groups; some messages may be missing", false);
}

void ChatModel::jump(std::size_t n) {
  if (n == 0 || n > search_results_.size()) {
    notify(search_results_.empty() ? "nothing to jump to: /search WORDS first"
                                   : "no result " + std::to_string(n) + "; the last search has " +
                                         std::to_string(search_results_.size()),
           true);
    return;
  }
  const SearchResult r = search_results_[n - 1];
  const auto it = std::find(order_.begin(), order_.end(), r.group);
  Buffer* b = find(r.group);
  if (it == order_.end() || b == nullptr) {
    notify("that group is no longer here", true);
    return;
  }
  const std::size_t index = static_cast<std::size_t>(it - order_.begin());
  if (index != selected_) {
    b->channel = r.channel;  // set first, so select() marks the right channel read
    select(index);
  } else {
    show_channel(*b, r.channel);
  }
  jump_pending_ = r;
  continue_jump(*b);
}

void ChatModel::continue_jump(Buffer& b) {
  if (!jump_pending_ || jump_pending_->group != b.id || &b != selected()) return;
  if (b.ids.count(jump_pending_->id)) {
    selected_message_ = jump_pending_->id;
    jump_pending_.reset();
    keep_selected_in_view(b);
    notify("selected: /reply TEXT, /react EMOJI, /edit, /delete; Alt+Up/Down moves, Esc lets go",
           false);
    return;
  }
  if (!b.loaded || b.loading_latest || b.loading_older) return;  // on its way
  if (b.history_complete || b.messages.size() >= scrollback_messages_max) {
    jump_pending_.reset();
    notify("that message is older than the chat holds; `qun log` shows it", true);
    return;
  }
  maybe_load_older(b);
}

}  // namespace qun::chat
