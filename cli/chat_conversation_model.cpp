// ChatModel's conversation layer (issue 12): replies, reactions, edits, deletions, /me, nicks,
// moderation, hiding and channels as commands; message selection and references; editing in
// the input line. The pure parts are in chat_conversation.h; this is where they meet the model.
#include <algorithm>

#include "cli/chat_internal.h"
#include "cli/chat_model.h"

namespace qun::chat {
namespace {

std::string trim_right(std::string_view s) {
  std::size_t n = s.size();
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    --n;
  return std::string(s.substr(0, n));
}


}  // namespace

std::optional<std::string> ChatModel::editing() const {
  if (!editing_) return std::nullopt;
  return editing_->id;
}

const std::map<std::string, std::string>& ChatModel::refs(const Buffer& b) const {
  auto first = std::find_if(b.messages.begin(), b.messages.end(),
                            [](const Message& m) { return !m.id.empty(); });
  auto last = std::find_if(b.messages.rbegin(), b.messages.rend(),
                           [](const Message& m) { return !m.id.empty(); });
  const std::string first_id = first == b.messages.end() ? "" : first->id;
  const std::string last_id = last == b.messages.rend() ? "" : last->id;
  RefsCache& c = refs_cache_;
  if (c.group != b.id || c.size != b.messages.size() || c.first != first_id ||
      c.last != last_id) {
    c.group = b.id;
    c.size = b.messages.size();
    c.first = first_id;
    c.last = last_id;
    c.refs = short_refs(b.messages);
  }
  return c.refs;
}

std::string ChatModel::member_arg(const Buffer& b, const std::string& name) const {
  // A label (bob, or bob·1b11 when two share the nick) names that member's id; anything else
  // goes to the node as typed (an id or id prefix, which the node resolves).
  std::optional<std::string> found;
  for (const auto& [id, m] : b.roster) {
    if (m.label != name) continue;
    if (found) return name;  // two of one label: the node says it is ambiguous
    found = id;
  }
  return found.value_or(name);
}

void ChatModel::on_conversation_line(Buffer& b, const Message& m) {
  // Not remembered by id: applying a line twice changes nothing (a reaction counts a member
  // once, an edit sets the same text), and remembering every one would grow without bound.
  if (!apply_to_target(b.messages, m)) return;
  if ((m.kind == "delete" || m.kind == "redact") && m.target) {
    if (editing_ && editing_->id == *m.target) {
      cancel_edit();
      notify("the message you were editing was deleted", true);
    }
    if (m.kind == "redact" && m.author != own_id_) {
      for (const auto& p : b.messages)
        if (p.id == *m.target && p.author == own_id_ && !own_id_.empty())
          add_info_to(b, author_label(b, m) + " deleted a message of yours (moderation)", true);
    }
  }
}

Result<std::size_t> ChatModel::command_target(const Buffer& b, const Command& c,
                                              std::string* rest) const {
  using K = Command::Kind;
  std::string_view arg = c.arg;
  const std::size_t sp = arg.find(' ');
  const std::string_view first = arg.substr(0, sp);
  const std::string_view after =
      sp == std::string_view::npos ? std::string_view() : arg.substr(sp + 1);
  // Which words are a reference: /react REF EMOJI and /delete REF name one; /reply and /edit
  // take one first unless a message is selected (then every word is text).
  bool ref_given = false;
  if (c.kind == K::react) ref_given = !after.empty();
  else if (c.kind == K::del) ref_given = !first.empty();
  else ref_given = !selected_message_ && !first.empty();
  std::optional<std::size_t> k;
  // "/reply hello" with nothing selected: the first word is no reference, so the question is
  // which message, not whether "hello" is one.
  if (ref_given && !selected_message_ && !looks_like_ref(first) && c.kind != K::del &&
      c.kind != K::react)
    ref_given = false;
  if (ref_given) {
    auto found = resolve_ref(b.messages, first);
    if (!found.ok()) return found.error();
    k = *found;
    *rest = std::string(after);
  } else if (selected_message_) {
    for (std::size_t i = 0; i < b.messages.size(); ++i)
      if (b.messages[i].id == *selected_message_) k = i;
    if (!k) return Error(Errc::not_found, "the selected message is gone; select another");
    *rest = std::string(arg);
  } else {
    return Error(Errc::invalid_argument,
                 std::string(command_name(c.kind)) +
                     ": which message? Select one with Alt+Up, or give its reference "
                     "(Ctrl+R shows them)");
  }
  if (b.messages[*k].kind != "post")
    return Error(Errc::invalid_argument,
                 std::string(command_name(c.kind)) + " acts on messages, not on events");
  return *k;
}

Result<void> ChatModel::run_conversation_command(const Command& c, const std::string& typed,
                                                 Buffer& b, NodeRequest& r) {
  using K = Command::Kind;
  const std::string name = command_name(c.kind);
  const bool needs_layer = c.kind == K::reply || c.kind == K::react || c.kind == K::edit ||
                           c.kind == K::del || c.kind == K::me;
  if (needs_layer && node_lacks_conversation())
    return Error(Errc::invalid_argument, name + ": not supported by this node yet");
  switch (c.kind) {
    case K::reply: {
      std::string text;
      auto k = command_target(b, c, &text);
      if (!k.ok()) return k.error();
      if (text.empty()) return Error(Errc::invalid_argument, "/reply: what do you answer?");
      const std::string parent = b.messages[*k].id;
      selected_message_.reset();
      queue_post(b, std::move(text), typed, parent, false);
      return {};
    }
    case K::me:
      queue_post(b, c.arg, typed, std::nullopt, true);
      return {};
    case K::react: {
      std::string emoji;
      auto k = command_target(b, c, &emoji);
      if (!k.ok()) return k.error();
      const Message& m = b.messages[*k];
      if (m.deleted) return Error(Errc::invalid_argument, "/react: that message was deleted");
      // Reacting again with the same emoji takes the reaction back, as a click does elsewhere.
      bool undo = false;
      if (auto it = m.reactions.find(emoji); it != m.reactions.end())
        undo = std::find(it->second.begin(), it->second.end(), own_id_) != it->second.end();
      selected_message_.reset();  // done with it, as after /reply and /delete
      r.op = "react";
      r.args = {{"group", b.id}, {"event", m.id}, {"emoji", emoji}};
      if (undo) r.args["undo"] = true;
      return {};
    }
    case K::edit: {
      std::string text;
      auto k = command_target(b, c, &text);
      if (!k.ok()) return k.error();
      const Message& m = b.messages[*k];
      if (m.author != own_id_ || own_id_.empty())
        return Error(Errc::invalid_argument, "/edit: you can edit only your own messages");
      if (m.deleted) return Error(Errc::invalid_argument, "/edit: that message was deleted");
      if (text.empty()) {
        start_edit(b, *k);
        return {};
      }
      if (text.size() > limits::post_text_bytes_max)
        return Error(Errc::invalid_argument, "message too large: " + std::to_string(text.size()) +
                                                 " bytes, at most " +
                                                 std::to_string(limits::post_text_bytes_max));
      r.op = "edit";
      r.args = {{"group", b.id}, {"event", m.id}, {"text", text}};
      selected_message_.reset();
      return {};
    }
    case K::del: {
      std::string rest;
      auto k = command_target(b, c, &rest);
      if (!k.ok()) return k.error();
      const Message& m = b.messages[*k];
      if (m.deleted) return Error(Errc::invalid_argument, "/delete: that message is deleted already");
      std::string role = "member";
      if (auto me = b.roster.find(own_id_); me != b.roster.end()) role = me->second.role;
      if (m.author != own_id_ && role == "member")
        return Error(Errc::invalid_argument,
                     "/delete: you can delete only your own messages (moderators: anyone's)");
      r.op = "delete";
      r.args = {{"group", b.id}, {"event", m.id}};
      selected_message_.reset();
      return {};
    }
    case K::nick:
      r.op = "nick";
      r.args = {{"nick", c.arg}};
      return {};
    case K::mute:
      r.op = "mute";
      r.args = {{"group", b.id}, {"member", member_arg(b, c.arg)}};
      if (c.expires_ms > 0) r.args["for_ms"] = c.expires_ms;
      return {};
    case K::unmute:
    case K::ban:
    case K::unban:
      r.op = c.kind == K::unmute ? "unmute" : c.kind == K::ban ? "ban" : "unban";
      r.args = {{"group", b.id}, {"member", member_arg(b, c.arg)}};
      return {};
    case K::hide:
    case K::unhide:
      r.op = c.kind == K::hide ? "hide" : "unhide";
      r.args = {{"member", member_arg(b, c.arg)}};
      return {};
    case K::channel:
      switch (c.channel_op) {
        case Command::ChannelOp::list:
          r.op = "channel.list";
          r.args = {{"group", b.id}};
          return {};
        case Command::ChannelOp::show:
          if (c.arg != "general" && !b.channels.count(c.arg))
            return Error(Errc::not_found, "no channel #" + sanitize(c.arg, false) + " in " +
                                              sanitize(b.label, false) +
                                              "; /channel lists them");
          show_channel(b, c.arg);
          input_.remember(typed);
          input_.clear();
          return {};
        case Command::ChannelOp::create:
          r.op = "channel.create";
          r.args = {{"group", b.id}, {"name", c.arg}};
          return {};
        case Command::ChannelOp::rename:
          r.op = "channel.rename";
          r.args = {{"group", b.id}, {"name", c.arg}, {"new", c.arg2}};
          return {};
        case Command::ChannelOp::archive:
          r.op = "channel.archive";
          r.args = {{"group", b.id}, {"name", c.arg}};
          return {};
      }
      return {};
    case K::modlog:
      r.op = "modlog";
      r.args = {{"group", b.id}};
      return {};
    default:
      return Error(Errc::invalid_argument, name + " is not a conversation command");
  }
}

void ChatModel::handle_conversation_result(const NodeRequest& r, const Json& result) {
  using K = Command::Kind;
  Buffer* b = find(r.group);
  std::string who = r.args.value("member", std::string());
  if (b != nullptr)
    if (auto it = b->roster.find(who); it != b->roster.end()) who = it->second.label;
  who = sanitize(who, false);
  switch (r.command) {
    case K::react:
      notify(r.args.value("undo", false) ? "reaction taken back" : "reacted", false);
      return;
    case K::edit:
      notify("edited", false);
      return;
    case K::del:
      notify("deleted", false);
      return;
    case K::nick: {
      const std::string nick = r.args.value("nick", std::string());
      own_nick_ = nick;
      notify("you are now " + sanitize(nick, false) + " in every group", false);
      for (auto& [id, g] : buffers_)
        if (g.roster_loaded || g.roster_loading) refresh_roster(g);
      return;
    }
    case K::mute: {
      const std::int64_t ms = r.args.value("for_ms", std::int64_t{0});
      notify("muted " + who + (ms > 0 ? " for " + render::duration_words(static_cast<std::uint64_t>(ms)) : " until /unmute"), false);
      if (b != nullptr) refresh_roster(*b);
      return;
    }
    case K::unmute:
      notify("unmuted " + who, false);
      if (b != nullptr) refresh_roster(*b);
      return;
    case K::ban:
      notify("banned " + who + ": removed, and their joins are refused until /unban", false);
      if (b != nullptr) refresh_roster(*b);
      return;
    case K::unban:
      notify("unbanned " + who + "; they can join again with an invite", false);
      return;
    case K::hide: {
      // The node leaves a hidden member's events out from now on; what is on screen goes too.
      const std::string id = json_string(result, "member").value_or(r.args.value("member", ""));
      for (auto& [gid, g] : buffers_) {
        std::erase_if(g.messages, [&](const Message& m) {
          return !m.id.empty() && m.kind == "post" && !id.empty() && m.author.rfind(id, 0) == 0;
        });
      }
      notify("hidden: " + who + "'s messages no longer show here (/unhide " + who +
                 " brings them back)",
             false);
      return;
    }
    case K::unhide:
      // Their messages come back with the next page of each group.
      for (auto& [gid, g] : buffers_) g.loaded = false;
      if (Buffer* s = selected()) ensure_loaded(*s);
      notify(who + "'s messages show again", false);
      return;
    case K::modlog: {
      if (!result.is_array() || result.empty()) {
        add_info("no moderation in this group yet", false);
        return;
      }
      const std::size_t skip =
          result.size() > modlog_lines_max ? result.size() - modlog_lines_max : 0;
      add_info("moderation log" +
                   (skip > 0 ? " (the newest " + std::to_string(modlog_lines_max) +
                                   "; `qun modlog` has all " + std::to_string(result.size()) + ")"
                             : std::string()) +
                   ":",
               false);
      for (std::size_t i = skip; i < result.size(); ++i) {
        // The same words as `qun modlog` (render::entry_words), made safe for the screen.
        const Json& e = result[i];
        render::Entry entry;
        entry.kind = json_string(e, "kind").value_or("?");
        entry.undo = e.value("undo", false);
        if (auto d = e.find("duration_ms"); d != e.end() && d->is_number_integer())
          entry.duration_ms =
              static_cast<std::uint64_t>(std::max<std::int64_t>(0, d->get<std::int64_t>()));
        if (auto detail = json_string(e, "detail"); detail && !detail->empty()) {
          entry.text = *detail;
          entry.role = *detail;
        }
        const std::string actor =
            display_nick(json_string(e, "nick"), json_string(e, "author").value_or("?"));
        const auto target_id = json_string(e, "target");
        const std::string target =
            target_id ? display_nick(json_string(e, "target_nick"), *target_id) : std::string();
        const std::int64_t time = e.value("time", std::int64_t{0});
        add_info(config_.time_format(time).clock + " " +
                     sanitize(render::entry_words(entry, actor, target), false),
                 false);
      }
      return;
    }
    case K::channel: {
      if (b == nullptr) return;
      const std::string name = sanitize(r.args.value("name", std::string()), false);
      if (r.op == "channel.list") {
        apply_channel_list(*b, result);
        std::string line = "channels of " + sanitize(b->label, false) + ": #general";
        for (const auto& [n, ch] : b->channels) {
          line += ", #" + sanitize(n, false);
          if (ch.unread > 0) line += " (" + std::to_string(ch.unread) + " unread)";
        }
        add_info(line + "; /channel NAME shows one", false);
        return;
      }
      if (r.op == "channel.create") notify("created #" + name + " (/channel " + name + " shows it)", false);
      if (r.op == "channel.rename")
        notify("renamed #" + name + " to #" + sanitize(r.args.value("new", std::string()), false), false);
      if (r.op == "channel.archive") notify("archived #" + name, false);
      refresh_channels(*b);
      return;
    }
    default:
      return;
  }
}

void ChatModel::select_message(int direction) {
  Buffer* b = selected();
  if (b == nullptr) return;
  std::vector<std::size_t> posts;
  for (std::size_t i = 0; i < b->messages.size(); ++i) {
    const Message& m = b->messages[i];
    if (m.kind == "post" && !m.id.empty() && shown(*b, m)) posts.push_back(i);
  }
  if (posts.empty()) return;
  std::optional<std::size_t> at;
  if (selected_message_)
    for (std::size_t j = 0; j < posts.size(); ++j)
      if (b->messages[posts[j]].id == *selected_message_) at = j;
  if (!at) {
    if (direction > 0) return;  // nothing selected: Alt+Down has nowhere to go
    at = posts.size() - 1;
  } else if (direction < 0) {
    if (*at == 0) {
      maybe_load_older(*b);
      return;
    }
    --*at;
  } else {
    if (*at + 1 == posts.size()) {
      selected_message_.reset();  // past the newest: let go, as Esc does
      return;
    }
    ++*at;
  }
  selected_message_ = b->messages[posts[*at]].id;
  keep_selected_in_view(*b);
  notify("selected: /reply TEXT, /react EMOJI, /edit, /delete; Alt+Up/Down moves, Esc lets go",
         false);
}

void ChatModel::keep_selected_in_view(Buffer& b) {
  if (!selected_message_) return;
  const int cols = message_area_cols(last_cols_);
  const std::size_t height = message_area_rows(last_rows_);
  const std::optional<std::size_t> marker = marker_index(b);
  std::size_t below = 0;
  for (std::size_t k = b.messages.size(); k > 0; --k) {
    const std::size_t rows = message_block(b, k - 1, cols, marker).size();
    if (b.messages[k - 1].id == *selected_message_) {
      if (below < b.scroll_rows) b.scroll_rows = below;
      if (below + rows > b.scroll_rows + height)
        b.scroll_rows = below + rows > height ? below + rows - height : 0;
      if (b.scroll_rows == 0) b.new_below = 0;
      return;
    }
    below += rows;
  }
}

bool ChatModel::start_edit_last() {
  Buffer* b = selected();
  if (b == nullptr || own_id_.empty() || node_lacks_conversation()) return false;
  for (std::size_t k = b->messages.size(); k > 0; --k) {
    const Message& m = b->messages[k - 1];
    if (m.kind == "post" && m.author == own_id_ && shown(*b, m)) {
      if (m.deleted || !m.text) return false;
      start_edit(*b, k - 1);
      return true;
    }
  }
  return false;
}

void ChatModel::start_edit(Buffer& b, std::size_t k) {
  const Message& m = b.messages[k];
  editing_ = Editing{b.id, m.id, sanitize(m.text.value_or(""), true)};
  input_.set(editing_->original);
  notify("editing your message: Enter saves, Esc cancels", false);
}

void ChatModel::cancel_edit() {
  if (!editing_) return;
  editing_.reset();
  input_.clear();
}

void ChatModel::submit_edit() {
  const Editing e = *editing_;
  const std::string text = trim_right(input_.text());
  if (text == trim_right(e.original)) {
    cancel_edit();
    notify("nothing changed", false);
    return;
  }
  if (text.empty()) {
    notify("an edit cannot be empty: /delete deletes the message (Esc cancels the edit)", true);
    return;
  }
  if (text.size() > limits::post_text_bytes_max) {
    notify("message too large: " + std::to_string(text.size()) + " bytes, at most " +
               std::to_string(limits::post_text_bytes_max),
           true);
    return;
  }
  if (!connected_) {
    notify("not connected to the node; your edit stays here until it is back", true);
    return;
  }
  Buffer* b = find(e.group);
  if (b == nullptr) {
    cancel_edit();
    return;
  }
  NodeRequest r;
  r.purpose = NodeRequest::Purpose::command;
  r.command = Command::Kind::edit;
  r.group = e.group;
  r.op = "edit";
  r.args = {{"group", e.group}, {"event", e.id}, {"text", text}};
  // Restored on failure as the command it is, so Enter then retries the edit rather than
  // posting the text as a new message.
  std::string ref = e.id.substr(0, ref_digits_min);
  if (auto it = refs(*b).find(e.id); it != refs(*b).end()) ref = it->second;
  r.typed = "/edit " + ref + " " + text;
  editing_.reset();
  input_.clear();
  request(std::move(r));
}

}  // namespace qun::chat
