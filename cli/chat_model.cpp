#include "cli/chat_model.h"

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstring>

#include "cli/chat_internal.h"
#include "app/render.h"

namespace qun::chat {
namespace {

using detail::hidden;
using detail::plural;

std::string trim_right(std::string_view s) {
  std::size_t n = s.size();
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    --n;
  return std::string(s.substr(0, n));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ChatModel.

ChatModel::ChatModel(Config config) : config_(std::move(config)) {
  if (!config_.time_format) config_.time_format = local_time;
  select_when_listed_ = config_.initial_group;
}

std::optional<Action> ChatModel::poll() {
  if (actions_.empty()) return std::nullopt;
  Action a = std::move(actions_.front());
  actions_.pop_front();
  return a;
}

void ChatModel::request(NodeRequest r) { actions_.push_back(std::move(r)); }

void ChatModel::notify(std::string text, bool error) {
  // Node errors are one line already; a stray newline or escape must not reach the status line.
  notice_ = sanitize(text, false);
  notice_error_ = error;
  notice_until_ms_ = now_ms_ + notice_ms;
}

void ChatModel::clear_error_notice() {
  if (notice_ && notice_error_) notice_.reset();
}

std::optional<std::string> ChatModel::notice() const { return notice_; }

void ChatModel::add_info_to(Buffer& b, std::string text, bool error) {
  Message m;
  m.kind = "info";
  m.text = std::move(text);
  m.error = error;
  append(b, std::move(m));
}

void ChatModel::add_info(std::string text, bool error, bool bare) {
  Buffer* b = selected();
  if (b == nullptr) {
    notify(std::move(text), error);
    return;
  }
  Message m;
  m.kind = "info";
  m.text = std::move(text);
  m.error = error;
  m.bare = bare;
  append(*b, std::move(m));
  b->scroll_rows = 0;
}

ChatModel::Buffer* ChatModel::selected() {
  if (selected_ >= order_.size()) return nullptr;
  return find(order_[selected_]);
}

const ChatModel::Buffer* ChatModel::selected() const {
  if (selected_ >= order_.size()) return nullptr;
  auto it = buffers_.find(order_[selected_]);
  return it == buffers_.end() ? nullptr : &it->second;
}

ChatModel::Buffer* ChatModel::find(std::string_view id) {
  auto it = buffers_.find(std::string(id));
  return it == buffers_.end() ? nullptr : &it->second;
}

std::optional<std::string> ChatModel::selected_group() const {
  const Buffer* b = selected();
  if (b == nullptr) return std::nullopt;
  return b->id;
}

std::optional<ChatModel::GroupView> ChatModel::group(std::string_view id) const {
  auto it = buffers_.find(std::string(id));
  if (it == buffers_.end()) return std::nullopt;
  const Buffer& b = it->second;
  GroupView v;
  v.id = b.id;
  v.name = b.name;
  v.label = b.label;
  v.member = b.member;
  v.direct = b.direct;
  v.topic = b.topic;
  v.unread = b.unread;
  v.mentions = b.mentions;
  v.messages = b.messages.size();
  v.scroll_rows = b.scroll_rows;
  v.new_below = b.new_below;
  v.history_complete = b.history_complete;
  v.channel = b.channel;
  if (auto me = b.roster.find(own_id_); me != b.roster.end()) v.own_role = me->second.role;
  return v;
}

std::vector<std::string> ChatModel::channels(std::string_view id) const {
  auto it = buffers_.find(std::string(id));
  if (it == buffers_.end()) return {};
  std::vector<std::string> out = {"general"};
  for (const auto& [name, c] : it->second.channels) out.push_back(name);
  return out;
}

std::vector<ChatModel::PaneEntry> ChatModel::pane_entries() const {
  std::vector<PaneEntry> out;
  for (const auto& id : order_) {
    auto it = buffers_.find(id);
    if (it == buffers_.end()) continue;
    const Buffer& b = it->second;
    out.push_back({b.id, "general", b.unread, b.mentions});
    for (const auto& [name, c] : b.channels) out.push_back({b.id, name, c.unread, c.mentions});
  }
  return out;
}

std::size_t& ChatModel::unread_of(Buffer& b, const std::string& channel) {
  if (channel == "general") return b.unread;
  return b.channels[channel].unread;
}

std::size_t& ChatModel::mentions_of(Buffer& b, const std::string& channel) {
  if (channel == "general") return b.mentions;
  return b.channels[channel].mentions;
}

bool ChatModel::in_view(const Buffer& b, const Message& m) const {
  // Community events (joins, roles, mutes, bans, nicks) show in #general; posts in their channel;
  // local lines where they were made.
  if (m.kind == "post" || m.kind == "pending" || m.kind == "info") return m.channel == b.channel;
  return b.channel == "general";
}

const std::vector<Message>* ChatModel::messages(std::string_view id) const {
  auto it = buffers_.find(std::string(id));
  return it == buffers_.end() ? nullptr : &it->second.messages;
}

void ChatModel::on_connected() {
  connected_ = true;
  disconnect_reason_.clear();
  for (auto& [id, b] : buffers_) b.loaded = false;  // fetch what was missed while away
  // Subscribe before listing, so nothing delivered in between is missed.
  request({"id", Json::object(), NodeRequest::Purpose::id, "", "", Command::Kind::help});
  request(
      {"subscribe", Json::object(), NodeRequest::Purpose::subscribe, "", "", Command::Kind::help});
  request({"group.list", Json::object(), NodeRequest::Purpose::group_list, "", "",
           Command::Kind::help});
  request({"status", Json::object(), NodeRequest::Purpose::status, "", "", Command::Kind::help});
  status_in_flight_ = true;
  next_status_ms_ = now_ms_ + status_poll_ms;
  clear_error_notice();  // a reconnect is a success: old errors are stale
  for (auto& [id, b] : buffers_) {
    b.roster_loaded = false;
    b.roster_loading = false;
    b.channels_loaded = false;
  }
  send_outbox();
}

void ChatModel::send_outbox() {
  if (!connected_) return;
  for (auto& o : outbox_) {
    if (o.sent) continue;
    o.sent = true;
    Json args = {{"group", o.group}, {"text", o.text}};
    // Only what a post needs beyond a plain one is sent, so a node without the conversation
    // layer takes plain posts in #general as before.
    if (o.channel != "general") args["channel"] = o.channel;
    if (o.reply_to) args["reply_to"] = *o.reply_to;
    if (o.action) args["action"] = true;
    NodeRequest r{"post", std::move(args), NodeRequest::Purpose::post, o.group, o.typed,
                  Command::Kind::help};
    r.pending = o.number;
    request(std::move(r));
  }
}

void ChatModel::remove_pending(std::uint64_t number) {
  std::string group;
  for (auto it = outbox_.begin(); it != outbox_.end(); ++it) {
    if (it->number == number) {
      group = it->group;
      outbox_.erase(it);
      break;
    }
  }
  if (Buffer* b = find(group)) {
    std::erase_if(b->messages, [&](const Message& m) {
      return m.kind == "pending" && m.pending == number;
    });
  }
}

void ChatModel::post_failed(const NodeRequest& r, const std::string& error) {
  auto it = std::find_if(outbox_.begin(), outbox_.end(),
                         [&](const Outgoing& o) { return o.number == r.pending; });
  if (it == outbox_.end()) return;
  if (!connected_) {
    // The connection went while the post was out: it is sent again when the node is back. (If
    // the node had stored it, it appears twice; losing it would be worse.)
    it->sent = false;
    return;
  }
  notify(chat_words(error), true);
  const std::string typed = it->typed;
  remove_pending(r.pending);
  // Nothing typed is lost: back into the input if that is free, else kept as a line to copy.
  if (input_.empty()) {
    input_.set(typed);
  } else if (Buffer* b = find(r.group)) {
    add_info_to(*b, "not sent: " + typed, true);
  }
}

void ChatModel::on_disconnected(const std::string& reason) {
  connected_ = false;
  disconnect_reason_ = sanitize(reason, false);
  peers_ = 0;
}

void ChatModel::on_tick(std::int64_t now_ms) {
  now_ms_ = std::max(now_ms_, now_ms);
  if (notice_ && now_ms_ >= notice_until_ms_) notice_.reset();
  if (connected_ && !status_in_flight_ && now_ms_ >= next_status_ms_) {
    request({"status", Json::object(), NodeRequest::Purpose::status, "", "", Command::Kind::help});
    status_in_flight_ = true;
    next_status_ms_ = now_ms_ + status_poll_ms;
  }
}

void ChatModel::on_response(const NodeRequest& r, Result<Json> result) {
  using P = NodeRequest::Purpose;
  switch (r.purpose) {
    case P::id:
      if (result.ok()) {
        own_id_ = json_string(*result, "id").value_or("");
        own_nick_ = json_string(*result, "nick");
      }
      return;
    case P::subscribe:
      if (!result.ok()) notify("cannot follow new messages: " + result.error().context(), true);
      return;
    case P::group_list:
      if (result.ok())
        apply_group_list(*result);
      else if (connected_)
        notify("cannot list groups: " + result.error().context(), true);
      return;
    case P::status:
      status_in_flight_ = false;
      if (!result.ok()) return;
      peers_ = json_count(*result, "peers");
      if (auto it = result->find("groups"); it != result->end() && it->is_array()) {
        for (const auto& g : *it) {
          auto id = json_string(g, "id");
          if (!id) continue;
          if (Buffer* b = find(*id)) {
            auto s = g.find("synced");
            b->synced = s == g.end() || !s->is_boolean() || s->get<bool>();
            auto r = g.find("reachable");
            b->reachable = r == g.end() || !r->is_boolean() || r->get<bool>();
            b->outbox = json_count(g, "outbox");
          }
        }
      }
      return;
    case P::log_latest:
    case P::log_older: {
      Buffer* b = find(r.group);
      if (b == nullptr) return;
      (r.purpose == P::log_latest ? b->loading_latest : b->loading_older) = false;
      if (!result.ok()) {
        if (connected_) notify("cannot load messages: " + result.error().context(), true);
        return;
      }
      std::vector<Message> page;
      if (result->is_array()) {
        for (const auto& v : *result) {
          auto m = parse_message(v);
          if (m.ok()) page.push_back(std::move(m).value());
        }
      }
      const bool short_page = !result->is_array() || result->size() < log_page_messages;
      if (r.purpose == P::log_latest) {
        merge_latest(*b, std::move(page));
        if (short_page && b->messages.size() < scrollback_messages_max) b->history_complete = true;
      } else {
        prepend_older(*b, std::move(page));
        if (short_page) b->history_complete = true;
      }
      continue_jump(*b);
      return;
    }
    case P::read:
      return;
    case P::post:
      if (!result.ok()) {
        post_failed(r, result.error().context());
        return;
      }
      remove_pending(r.pending);
      clear_error_notice();
      return;
    case P::command:
      if (!result.ok()) {
        // A node older than the command answers "unknown op": say what that means here.
        if (result.error().context().rfind("unknown op", 0) == 0)
          notify(std::string(command_name(r.command)) + ": not supported by this node yet", true);
        else
          notify(chat_words(result.error().context()), true);
        if (input_.empty()) input_.set(r.typed);  // nothing typed is lost
        return;
      }
      clear_error_notice();
      if (r.command == Command::Kind::open || r.command == Command::Kind::save)
        return on_file_result(r, *result);
      handle_command_result(r, *result);
      return;
    case P::auto_fetch:
      return;  // a file fetched ahead of /open: nothing to say either way
    case P::channels: {
      Buffer* b = find(r.group);
      if (b == nullptr) return;
      b->channels_loading = false;
      b->channels_loaded = true;
      // A node without channels answers "unknown op": the group has #general only.
      if (result.ok()) apply_channel_list(*b, *result);
      return;
    }
    case P::members: {
      Buffer* b = find(r.group);
      if (b == nullptr) return;
      b->roster_loading = false;
      if (result.ok()) apply_roster(*b, *result);
      if (b->roster_stale) {
        b->roster_stale = false;
        refresh_roster(*b);
      }
      return;
    }
  }
}

void ChatModel::handle_command_result(const NodeRequest& r, const Json& result) {
  using K = Command::Kind;
  if (is_conversation(r.command)) return handle_conversation_result(r, result);
  switch (r.command) {
    case K::join: {
      auto id = json_string(result, "group");
      if (id) {
        // Open it now if the node lists it already, else when the refreshed list has it.
        auto it = std::find(order_.begin(), order_.end(), *id);
        if (it != order_.end())
          select(static_cast<std::size_t>(it - order_.begin()));
        else
          select_when_listed_ = *id;
      }
      notify("joined; the group's history arrives as it syncs", false);
      request({"group.list", Json::object(), NodeRequest::Purpose::group_list, "", "",
               Command::Kind::help});
      return;
    }
    case K::invite: {
      const std::string code = json_string(result, "code").value_or("?");
      const std::uint32_t uses = r.args.value("uses", 1u);
      const std::int64_t expires_ms = r.args.value("expires_ms", std::int64_t{0});
      std::string valid;
      if (expires_ms > 0) {
        const std::int64_t hours = expires_ms / 3'600'000;
        valid = hours >= 48   ? ", valid " + plural(static_cast<std::size_t>(hours / 24), "day", "days")
                : hours >= 1 ? ", valid " + plural(static_cast<std::size_t>(hours), "hour", "hours")
                             : ", valid " + plural(static_cast<std::size_t>(std::max<std::int64_t>(
                                                       1, expires_ms / 60'000)),
                                                   "minute", "minutes");
      }
      add_info("invite code for " + plural(uses, "person", "people") + valid +
                   "; they type /join CODE in qun chat, or run `qun join CODE` (if it wraps "
                   "here, copy all of it: line breaks inside a code do no harm):",
               false);
      add_info(code, false, true);
      return;
    }
    case K::members: {
      std::string line = "members (" + std::to_string(result.is_array() ? result.size() : 0) + "):";
      if (result.is_array()) {
        bool first = true;
        for (const auto& m : result) {
          line += first ? " " : ", ";
          first = false;
          auto label = json_string(m, "label");
          line += label ? sanitize(*label, false)
                        : display_nick(json_string(m, "nick"), json_string(m, "id").value_or("?"));
          auto role = json_string(m, "role");
          if (role && *role != "member") line += " (" + *role + ")";
          if (auto u = m.find("muted_until"); u != m.end() && u->is_number_integer())
            line += " (muted until " + config_.time_format(u->get<std::int64_t>()).clock + ")";
        }
      }
      add_info(line, false);
      return;
    }
    case K::relays: {
      if (!result.is_array() || result.empty()) {
        add_info("this group has no relays", false);
        return;
      }
      std::string line = "relays:";
      bool first = true;
      for (const auto& rl : result) {
        line += first ? " " : ", ";
        first = false;
        line += json_string(rl, "address").value_or("?") + " (" +
                json_string(rl, "id").value_or("?").substr(0, 8) + ")";
      }
      add_info(line, false);
      return;
    }
    case K::kick:
    case K::promote:
    case K::demote: {
      std::string who = r.args.value("member", std::string());
      Buffer* b = find(r.group);
      if (b != nullptr)
        if (auto it = b->roster.find(who); it != b->roster.end()) who = it->second.label;
      who = sanitize(who, false);
      if (r.command == K::kick) notify("removed " + who, false);
      if (r.command == K::promote)
        notify("made " + who + " " + (r.args.value("to", std::string("admin")) == "moderator"
                                          ? "a moderator" : "an admin"),
               false);
      if (r.command == K::demote) {
        const std::string role = json_string(result, "role").value_or("member");
        notify(who + " is now " + (role == "moderator" ? "a moderator" : "a member"), false);
      }
      // The roles shown in the header and by /members.
      if (b != nullptr && r.command != K::kick) refresh_roster(*b);
      return;
    }
    case K::topic:
      notify("topic set", false);
      return;
    case K::leave:
      if (const Buffer* b = find(r.group))
        notify("left " + sanitize(b->label, false), false);
      else
        notify("left the group", false);
      request({"group.list", Json::object(), NodeRequest::Purpose::group_list, "", "",
               Command::Kind::help});
      return;
    case K::search:
      show_search_results(r.args.value("text", ""), result);
      return;
    case K::msg:
    case K::query: {
      // The conversation opens (after a /msg too: the answer comes there); a new one once the
      // refreshed list has it.
      auto id = json_string(result, "group");
      if (id) {
        auto it = std::find(order_.begin(), order_.end(), *id);
        if (it != order_.end()) {
          buffers_.at(*id).channel = "general";
          select(static_cast<std::size_t>(it - order_.begin()));
        } else {
          select_when_listed_ = *id;
        }
      }
      if (result.value("created", false))
        notify("opened a direct conversation; only the two of you can read it", false);
      request({"group.list", Json::object(), NodeRequest::Purpose::group_list, "", "",
               Command::Kind::help});
      return;
    }
    case K::jump:
    case K::help:
    case K::quit:
    default:  // the conversation kinds, answered above
      return;
  }
}

void ChatModel::refresh_roster(Buffer& b) {
  if (!connected_) return;
  if (b.roster_loading) {
    b.roster_stale = true;
    return;
  }
  b.roster_loading = true;
  request({"members", Json{{"group", b.id}}, NodeRequest::Purpose::members, b.id, "",
           Command::Kind::help});
}

void ChatModel::apply_roster(Buffer& b, const Json& list) {
  if (!list.is_array()) return;
  std::map<std::string, Member> roster;
  for (const auto& m : list) {
    auto id = json_string(m, "id");
    if (!id) continue;
    Member member;
    auto label = json_string(m, "label");
    member.label = label ? sanitize(*label, false) : display_nick(json_string(m, "nick"), *id);
    member.role = json_string(m, "role").value_or("member");
    if (auto u = m.find("muted_until"); u != m.end() && u->is_number_integer())
      member.muted_until = u->get<std::int64_t>();
    roster[*id] = std::move(member);
  }
  // Succession: after a leave or a removal, a member who became admin without a set-role was
  // made admin by the group's rule (docs/protocol.md, "Succession").
  if (b.roster_loaded && !b.succession_cause.empty()) {
    for (const auto& [id, m] : roster) {
      if (m.role == "member" || b.promoted_since.count(id)) continue;
      auto old = b.roster.find(id);
      if (old == b.roster.end() || old->second.role != "member") continue;
      add_info_to(b,
                  render::succession_words(m.label, id == own_id_,
                                           b.succession_cause == "was removed"),
                  false);
    }
  }
  b.succession_cause.clear();
  b.promoted_since.clear();
  b.roster = std::move(roster);
  b.roster_loaded = true;
}

void ChatModel::on_membership_event(Buffer& b, const Message& m) {
  if (m.kind == "set-role" && m.target) b.promoted_since.insert(*m.target);
  if (m.kind == "leave") b.succession_cause = "left";
  if (m.kind == "remove") b.succession_cause = "was removed";
  const bool removal = m.kind == "remove" || (m.kind == "ban" && !m.undo);
  if (removal) b.succession_cause = "was removed";
  if (removal && m.target && *m.target == own_id_ && !own_id_.empty()) {
    b.member = false;
    b.removed_by = author_label(b, m);
    render::Entry e;
    e.kind = "remove";
    e.target = m.target;
    const std::string words =
        render::removed_you_words(e, own_id_, sanitize(b.label, false), b.removed_by)
            .value_or("you were removed");
    add_info_to(b, words + "; to come back, ask a member for a new invite, then /join CODE",
                true);
    notify(words, true);
    actions_.push_back(Bell{});
  }
  if (b.roster_loaded || b.roster_loading) refresh_roster(b);
}

std::string ChatModel::author_label(const Buffer& b, const Message& m) const {
  auto it = b.roster.find(m.author);
  if (it != b.roster.end()) return it->second.label;
  return display_nick(m.nick, m.author);
}

void ChatModel::apply_group_list(const Json& list) {
  if (!list.is_array()) return;
  const std::optional<std::string> was_selected = selected_group();
  std::vector<std::string> order;
  std::set<std::string> seen;
  for (const auto& g : list) {
    auto id = json_string(g, "id");
    if (!id || !seen.insert(*id).second) continue;
    Buffer& b = buffers_[*id];
    b.id = *id;
    b.name = json_string(g, "name").value_or(id->substr(0, 8));
    b.label = json_string(g, "label").value_or(b.name);
    b.topic = json_string(g, "topic").value_or("");
    if (auto it = g.find("member"); it != g.end() && it->is_boolean()) {
      const bool joining = g.value("joining", false);
      b.member = it->get<bool>() || joining;
      if (b.member) b.removed_by.clear();
    }
    b.direct = g.value("direct", false);
    b.members = json_count(g, "members");
    b.unread = json_count(g, "unread");
    b.mentions = json_count(g, "mentions");
    // Per-channel counts, where the node gives them (issue 12); then #general's are its own.
    if (auto c = g.find("channels"); c != g.end() && c->is_array()) apply_channel_list(b, *c);
    order.push_back(*id);
  }
  for (auto it = buffers_.begin(); it != buffers_.end();) {
    it = seen.count(it->first) ? std::next(it) : buffers_.erase(it);
  }
  // Direct conversations after the groups, under their own heading, each part in the node's order.
  std::stable_partition(order.begin(), order.end(),
                        [&](const std::string& id) { return !buffers_.at(id).direct; });
  order_ = std::move(order);

  std::size_t index = 0;
  if (was_selected) {
    auto it = std::find(order_.begin(), order_.end(), *was_selected);
    index = it != order_.end() ? static_cast<std::size_t>(it - order_.begin())
                               : std::min(selected_, order_.empty() ? 0 : order_.size() - 1);
  }
  if (select_when_listed_) {
    auto id = resolve_group(list, *select_when_listed_);
    if (id.ok()) {
      index =
          static_cast<std::size_t>(std::find(order_.begin(), order_.end(), *id) - order_.begin());
      select_when_listed_.reset();
    } else if (!initial_resolved_) {
      notify(id.error().context(), true);
      select_when_listed_.reset();
    }
  }
  initial_resolved_ = true;
  for (const auto& id : order_) {
    Buffer& g = buffers_.at(id);
    if (!g.channels_loaded) refresh_channels(g);
  }
  selected_ = order_.empty() ? 0 : std::min(index, order_.size() - 1);
  if (Buffer* b = selected()) {
    if (!b->marker_set) b->unread_at_open = b->unread;
    ensure_loaded(*b);
    if (!b->roster_loaded && !b->roster_loading) refresh_roster(*b);
    if (b->unread > 0 || b->mentions > 0) mark_read(*b);
  }
}

void ChatModel::select(std::size_t index) {
  if (index >= order_.size()) return;
  Buffer* old = selected();
  if (old != nullptr && index != selected_) {
    // Everything shown so far is read: the marker moves below it.
    old->marker_after.reset();
    for (auto it = old->messages.rbegin(); it != old->messages.rend(); ++it) {
      if (!it->id.empty()) {
        old->marker_after = it->id;
        break;
      }
    }
    old->marker_set = true;
  }
  if (index != selected_) {
    cancel_edit();
    selected_message_.reset();
  }
  selected_ = index;
  Buffer& b = *selected();
  if (!b.marker_set) {
    b.unread_at_open = b.unread;
    if (b.loaded) place_marker_from_unread(b);
  }
  ensure_loaded(b);
  if (!b.roster_loaded && !b.roster_loading) refresh_roster(b);
  if (unread_of(b, b.channel) > 0 || mentions_of(b, b.channel) > 0) mark_read(b);
}

void ChatModel::select_entry(std::size_t index) {
  const auto entries = pane_entries();
  if (index >= entries.size()) return;
  const auto it = std::find(order_.begin(), order_.end(), entries[index].group);
  if (it == order_.end()) return;
  Buffer* b = find(entries[index].group);
  if (b == nullptr) return;
  const std::size_t group_index = static_cast<std::size_t>(it - order_.begin());
  if (group_index == selected_ && b->channel == entries[index].channel) return;
  if (group_index != selected_) {
    // The channel is set first, so select() marks the right one read.
    b->channel = entries[index].channel;
    select(group_index);
  } else {
    show_channel(*b, entries[index].channel);
  }
}

void ChatModel::show_channel(Buffer& b, const std::string& channel) {
  if (b.channel == channel) return;
  cancel_edit();
  selected_message_.reset();
  b.channel = channel;
  b.scroll_rows = 0;
  b.new_below = 0;
  if (unread_of(b, channel) > 0 || mentions_of(b, channel) > 0) mark_read(b);
}

void ChatModel::refresh_channels(Buffer& b) {
  if (!connected_ || b.channels_loading) return;
  b.channels_loaded = true;
  b.channels_loading = true;
  request({"channel.list", Json{{"group", b.id}}, NodeRequest::Purpose::channels, b.id, "",
           Command::Kind::help});
}

void ChatModel::apply_channel_list(Buffer& b, const Json& list) {
  if (!list.is_array()) return;
  std::map<std::string, Channel> channels;
  for (const auto& c : list) {
    auto name = c.is_string() ? std::optional<std::string>(c.get<std::string>())
                              : json_string(c, "name");
    if (!name || name->empty() || name->size() > channel_name_bytes_max) continue;
    if (c.is_object() && c.value("archived", false)) continue;
    if (channels.size() >= channels_shown_max) break;
    if (*name == "general") {
      if (c.is_object() && c.contains("unread")) {
        b.unread = json_count(c, "unread");
        b.mentions = json_count(c, "mentions");
      }
      continue;
    }
    Channel ch;
    ch.name = *name;
    auto old = b.channels.find(*name);
    if (c.is_object() && c.contains("unread")) {
      ch.unread = json_count(c, "unread");
      ch.mentions = json_count(c, "mentions");
    } else if (old != b.channels.end()) {
      ch.unread = old->second.unread;
      ch.mentions = old->second.mentions;
    }
    channels[*name] = std::move(ch);
  }
  b.channels = std::move(channels);
  if (b.channel != "general" && !b.channels.count(b.channel)) {
    // The channel shown was archived (or renamed): back to #general.
    b.channel = "general";
    b.scroll_rows = 0;
  }
}

void ChatModel::ensure_loaded(Buffer& b) {
  if (b.loaded || b.loading_latest || !connected_) return;
  b.loading_latest = true;
  Json args = {{"group", b.id}, {"limit", log_page_messages}};
  request(
      {"log", std::move(args), NodeRequest::Purpose::log_latest, b.id, "", Command::Kind::help});
}

void ChatModel::mark_read(Buffer& b) {
  unread_of(b, b.channel) = 0;
  mentions_of(b, b.channel) = 0;
  if (!connected_) return;
  // The channel shown only: #general's posts are read, #dev's still unread.
  Json args = {{"group", b.id}, {"channel", b.channel}};
  request({"read", std::move(args), NodeRequest::Purpose::read, b.id, "", Command::Kind::help});
}

void ChatModel::place_marker_from_unread(Buffer& b) {
  // The marker goes above the last unread_at_open posts by others.
  std::size_t left = b.unread_at_open;
  b.marker_set = true;
  b.marker_after.reset();
  std::size_t k = b.messages.size();
  while (k > 0 && left > 0) {
    --k;
    const Message& m = b.messages[k];
    if (m.kind == "post" && m.author != own_id_) --left;
  }
  if (left > 0) return;  // more unread than loaded: the marker sits at the top
  for (std::size_t j = k; j > 0; --j) {
    if (!b.messages[j - 1].id.empty()) {
      b.marker_after = b.messages[j - 1].id;
      return;
    }
  }
}

void ChatModel::trim(Buffer& b) {
  if (b.messages.size() <= scrollback_messages_max) return;
  const std::size_t drop = b.messages.size() - scrollback_messages_max;
  for (std::size_t i = 0; i < drop; ++i) b.ids.erase(b.messages[i].id);
  b.messages.erase(b.messages.begin(), b.messages.begin() + static_cast<std::ptrdiff_t>(drop));
  b.history_complete = false;
}

void ChatModel::append(Buffer& b, Message m) {
  if (!m.id.empty() && !b.ids.insert(m.id).second) return;
  // On screen with nothing unread below the marker, the marker follows the newest message, so
  // it only ever marks what arrived while the group was away.
  const bool on_screen = &b == selected();
  if (on_screen && !m.id.empty() && b.marker_set && b.marker_after) {
    auto last = std::find_if(b.messages.rbegin(), b.messages.rend(),
                             [](const Message& x) { return !x.id.empty(); });
    if (last != b.messages.rend() && last->id == *b.marker_after) b.marker_after = m.id;
  }
  // Our own messages still in the outbox stay below everything else until they are sent.
  auto at = b.messages.end();
  if (m.kind != "pending")
    while (at != b.messages.begin() && std::prev(at)->kind == "pending") --at;
  const bool counts = !m.id.empty() && !hidden(m);
  at = b.messages.insert(at, std::move(m));
  const std::size_t index = static_cast<std::size_t>(at - b.messages.begin());
  const std::size_t before = b.messages.size();
  trim(b);
  const std::size_t k = index - (before - b.messages.size());
  if (b.scroll_rows > 0 && &b == selected()) {
    // Keep the rows on screen where they are while the reader is scrolled up, and say that
    // something new is below.
    b.scroll_rows +=
        message_block(b, k, message_area_cols(last_cols_), marker_index(b)).size();
    if (counts) ++b.new_below;
  }
}

void ChatModel::learn_from(Buffer& b, const Message& m) {
  if (m.kind != "post") return;
  if (m.file) learn_file(b, m);
  node_conversation_ = m.conversation;
  // A post in a channel the list does not have yet (it was made since): the pane shows it.
  if (m.channel != "general" && !b.channels.count(m.channel) &&
      m.channel.size() <= channel_name_bytes_max && b.channels.size() < channels_shown_max) {
    b.channels[m.channel].name = m.channel;
    refresh_channels(b);
  }
}

void ChatModel::merge_latest(Buffer& b, std::vector<Message> page) {
  for (const auto& m : page) learn_from(b, m);
  // page is the newest part of the group's log, contiguous and authoritative for its range.
  std::set<std::string> page_ids;
  for (const auto& m : page) page_ids.insert(m.id);
  std::size_t first_overlap = b.messages.size();
  for (std::size_t i = 0; i < b.messages.size(); ++i) {
    if (page_ids.count(b.messages[i].id)) {
      first_overlap = i;
      break;
    }
  }
  std::vector<Message> merged;
  const bool overlap = first_overlap < b.messages.size();
  const std::int64_t page_end_ms = page.empty() ? 0 : page.back().time_ms;
  if (overlap) {
    // Older messages we hold, then the page, then what arrived after it (stream, info lines).
    for (std::size_t i = 0; i < first_overlap; ++i) merged.push_back(std::move(b.messages[i]));
  } else {
    // No overlap: a gap (we were away for longer than a page) or only newer stream messages.
    b.history_complete = false;
  }
  for (auto& m : page) merged.push_back(std::move(m));
  for (std::size_t i = overlap ? first_overlap : 0; i < b.messages.size(); ++i) {
    Message& m = b.messages[i];
    if (!m.id.empty() && page_ids.count(m.id)) continue;
    if (!overlap && m.id.empty() == false && m.time_ms < page_end_ms) continue;
    merged.push_back(std::move(m));
  }
  b.messages = std::move(merged);
  b.ids.clear();
  for (const auto& m : b.messages)
    if (!m.id.empty()) b.ids.insert(m.id);
  trim(b);
  b.loaded = true;
  if (!b.marker_set && &b == selected()) place_marker_from_unread(b);
}

void ChatModel::prepend_older(Buffer& b, std::vector<Message> page) {
  for (const auto& m : page) learn_from(b, m);
  std::vector<Message> fresh;
  for (auto& m : page)
    if (!m.id.empty() && !b.ids.count(m.id)) fresh.push_back(std::move(m));
  const std::size_t room = b.messages.size() >= scrollback_messages_max
                               ? 0
                               : scrollback_messages_max - b.messages.size();
  if (fresh.size() > room) {
    fresh.erase(fresh.begin(), fresh.end() - static_cast<std::ptrdiff_t>(room));
    notify("scrollback holds " + std::to_string(scrollback_messages_max) +
               " messages; `qun log` shows older ones",
           false);
  }
  for (const auto& m : fresh) b.ids.insert(m.id);
  b.messages.insert(b.messages.begin(), std::make_move_iterator(fresh.begin()),
                    std::make_move_iterator(fresh.end()));
}

void ChatModel::maybe_load_older(Buffer& b) {
  if (!connected_ || b.history_complete || b.loading_older || !b.loaded) return;
  if (b.messages.size() >= scrollback_messages_max) {
    notify("scrollback holds " + std::to_string(scrollback_messages_max) +
               " messages; `qun log` shows older ones",
           false);
    return;
  }
  auto oldest = std::find_if(b.messages.begin(), b.messages.end(),
                             [](const Message& m) { return !m.id.empty(); });
  if (oldest == b.messages.end()) return;
  b.loading_older = true;
  Json args = {{"group", b.id}, {"limit", log_page_messages}, {"before", oldest->id}};
  request({"log", std::move(args), NodeRequest::Purpose::log_older, b.id, "", Command::Kind::help});
}

void ChatModel::on_stream(const Json& v) {
  const auto stream = json_string(v, "stream");
  if (!stream) return;
  if (*stream == "groups") {
    request({"group.list", Json::object(), NodeRequest::Purpose::group_list, "", "",
             Command::Kind::help});
    return;
  }
  if (*stream == "progress") return on_file_progress(v);
  if (*stream != "message") return;
  const auto group_id = json_string(v, "group");
  auto it = v.find("message");
  if (!group_id || it == v.end()) return;
  auto parsed = parse_message(*it);
  if (!parsed.ok()) return;
  Message m = std::move(parsed).value();
  Buffer* b = find(*group_id);
  if (b == nullptr) return;  // a group we do not list yet; its "groups" notice follows
  if (b->ids.count(m.id)) return;
  if (acts_on_message(m.kind)) {
    on_conversation_line(*b, m);
    return;
  }
  learn_from(*b, m);
  if (m.file) auto_fetch(*b, m);
  if (m.kind == "set-topic") b->topic = m.text.value_or("");
  if (m.kind == "set-name" && m.text) b->name = *m.text;
  const bool own = !own_id_.empty() && m.author == own_id_;
  if (own && m.kind == "post" && m.text) {
    // Our post is in: its pending line goes (the acknowledgement may come after the message).
    for (const auto& o : outbox_) {
      if (o.sent && o.group == b->id && o.text == *m.text) {
        remove_pending(o.number);
        break;
      }
    }
  }
  // A reply to one of our messages calls us as a mention does (Element, Slack).
  bool replies_to_us = false;
  if (m.reply_to && !own_id_.empty())
    for (const auto& p : b->messages)
      if (p.id == *m.reply_to) replies_to_us = p.author == own_id_;
  const bool mention = !own && m.kind == "post" &&
                       ((m.text && own_nick_ && mentions(*m.text, *own_nick_)) || replies_to_us);
  const bool is_post = m.kind == "post";
  // A channel past the pane's bound (see learn_from) counts in #general.
  const std::string channel =
      m.channel == "general" || b->channels.count(m.channel) ? m.channel : "general";
  // Changes to members (and their nicks, mutes and bans) refresh the roster; channel changes
  // the channel list.
  const bool membership = m.kind == "join" || m.kind == "add" || m.kind == "remove" ||
                          m.kind == "leave" || m.kind == "set-role" || m.kind == "mute" ||
                          m.kind == "ban" || m.kind == "set-nick";
  if (membership) on_membership_event(*b, m);
  if (m.kind == "channel") refresh_channels(*b);
  if (own && m.kind == "set-nick" && m.text) own_nick_ = *m.text;
  append(*b, std::move(m));
  if (own || !is_post) return;
  if (b == selected() && b->channel == channel) {
    mark_read(*b);
  } else {
    ++unread_of(*b, channel);
    if (mention) ++mentions_of(*b, channel);
  }
  if (mention) actions_.push_back(Bell{});
}

void ChatModel::quit() {
  // Messages still in the outbox live only in this process: quitting loses them, so it takes
  // a second Ctrl+C or /quit (anything else in between cancels).
  const std::size_t waiting = outbox_.size();
  if (waiting == 0 || quit_confirm_) {
    actions_.push_back(Quit{});
    return;
  }
  quit_confirm_ = true;
  notify(plural(waiting, "message is", "messages are") +
             " not sent yet (the node has not taken them); Ctrl+C again quits and loses them",
         true);
}

void ChatModel::on_key(const Key& key) {
  using K = Key::Kind;
  const bool quitting = (key.kind == K::ctrl && key.ch == 'c') || key.kind == K::enter;
  if (!quitting) quit_confirm_ = false;
  // A key press answers whatever the status line said: it goes (a new error may replace it).
  if (key.kind != K::paste_begin && key.kind != K::paste_end) notice_.reset();
  switch (key.kind) {
    case K::scroll_bottom:
      scroll_to_bottom();
      return;
    case K::text: {
      std::string s;
      append_utf8(s, key.ch);
      if (!input_.insert(s))
        notify("the input is full (" + std::to_string(input_bytes_max) + " bytes)", true);
      return;
    }
    case K::enter:
      if (pasting_) {
        if (!input_.insert("\n"))
          notify("the input is full (" + std::to_string(input_bytes_max) + " bytes)", true);
      } else {
        submit();
      }
      return;
    case K::backspace:
      input_.backspace();
      return;
    case K::erase:
      input_.erase_forward();
      return;
    case K::left:
      input_.left();
      return;
    case K::right:
      input_.right();
      return;
    case K::home:
      input_.home();
      return;
    case K::end:
      input_.end();
      return;
    case K::up:
      // Up on an empty input edits your last message (Element, Slack, Discord); in an edit
      // whose text is untouched, Up goes on to the lines you sent, as in irssi.
      if (editing_ && input_.text() == editing_->original) {
        cancel_edit();
        input_.history_prev();
        return;
      }
      if (!pasting_ && input_.empty() && !editing_ && start_edit_last()) return;
      input_.history_prev();
      return;
    case K::down:
      if (editing_ && input_.text() == editing_->original) {
        cancel_edit();
        return;
      }
      input_.history_next();
      return;
    case K::select_up:
      select_message(-1);
      return;
    case K::select_down:
      select_message(+1);
      return;
    case K::escape:
      if (editing_) {
        cancel_edit();
        notify("edit cancelled", false);
      } else {
        selected_message_.reset();
      }
      return;
    case K::page_up:
      scroll(1);
      return;
    case K::page_down:
      scroll(-1);
      return;
    case K::tab:
      if (pasting_) {
        if (!input_.insert(" ")) notify("the input is full", true);
      } else {
        complete_nick();
      }
      return;
    case K::alt_digit:
      if (key.ch >= 1 && key.ch <= 9) select_entry(key.ch - 1);
      return;
    case K::paste_begin:
      pasting_ = true;
      return;
    case K::paste_end:
      pasting_ = false;
      return;
    case K::ctrl:
      switch (key.ch) {
        case 'a':
          input_.home();
          return;
        case 'e':
          input_.end();
          return;
        case 'u':
          input_.kill_to_start();
          return;
        case 'k':
          input_.kill_to_end();
          return;
        case 'w':
          input_.kill_word();
          return;
        case 'd':
          input_.erase_forward();
          return;
        case 'n':
        case 'p': {
          // Through groups and their channels, in the pane's order.
          const auto entries = pane_entries();
          if (entries.empty()) return;
          std::size_t at = 0;
          if (const Buffer* b = selected())
            for (std::size_t i = 0; i < entries.size(); ++i)
              if (entries[i].group == b->id && entries[i].channel == b->channel) at = i;
          const std::size_t n = entries.size();
          select_entry(key.ch == 'n' ? (at + 1) % n : (at + n - 1) % n);
          return;
        }
        case 'r':
          show_refs_ = !show_refs_;
          notify(show_refs_ ? "message references shown (Ctrl+R hides them); use them as "
                              "/reply REF TEXT, /react REF EMOJI, /edit REF, /delete REF"
                            : "message references hidden",
                 false);
          return;
        case 'c':
          quit();
          return;
        case 'o':
          if (Buffer* b = selected()) {
            b->unfolded = !b->unfolded;
            notify(b->unfolded ? "long messages shown whole (Ctrl+O folds them)"
                               : "long messages folded (Ctrl+O unfolds them)",
                   false);
          }
          return;
        default:
          return;
      }
  }
}

void ChatModel::submit() {
  if (editing_) {
    submit_edit();
    return;
  }
  const std::string typed = input_.text();
  std::string text = trim_right(typed);
  std::size_t lead = 0;
  while (lead < text.size() && text[lead] == '\n') ++lead;
  text.erase(0, lead);
  if (text.empty()) return;
  // A /leave or /quit waiting for its confirmation is cancelled by anything else.
  const bool quit_confirming = quit_confirm_;
  quit_confirm_ = false;
  std::optional<std::string> confirming = std::move(leave_confirm_);
  leave_confirm_.reset();
  if (text[0] == '/' && !(text.size() > 1 && text[1] == '/')) {
    auto c = parse_command(text);
    if (!c.ok()) {
      notify(c.error().context(), true);
      return;
    }
    if (c->kind == Command::Kind::quit) {
      input_.clear();
      quit_confirm_ = quit_confirming;
      quit();
      return;
    }
    if (c->kind == Command::Kind::help) {
      input_.remember(typed);
      input_.clear();
      if (selected() == nullptr) {
        notify("/join CODE joins a group; /quit quits", false);
        return;
      }
      for (const auto& line : help_lines()) add_info(line, false);
      return;
    }
    if (c->kind == Command::Kind::leave) {
      const Buffer* b = selected();
      if (b != nullptr && confirming != b->id) {
        // Leaving deletes the group's history on this machine: ask first, as a line that
        // stays in the conversation rather than a notice that goes away.
        leave_confirm_ = b->id;
        input_.remember(typed);
        input_.clear();
        add_info("/leave deletes " + sanitize(b->label, false) +
                     " and its history from this machine; type /leave again to leave "
                     "(anything else cancels)",
                 true);
        return;
      }
    }
    run_command(*c, typed);
    return;
  }
  if (text[0] == '/') text.erase(0, 1);  // "//text" posts "/text"
  Buffer* b = selected();
  if (b == nullptr) {
    notify("no group yet: /join CODE joins one", true);
    return;
  }
  queue_post(*b, std::move(text), typed, std::nullopt, false);
}

void ChatModel::queue_post(Buffer& buffer, std::string text, const std::string& typed,
                           std::optional<std::string> reply_to, bool action) {
  Buffer* b = &buffer;
  if (!b->member) {
    notify("you are not a member of " + sanitize(b->label, false) +
               " any more; ask a member for a new invite, then /join CODE",
           true);
    return;
  }
  if (text.size() > limits::post_text_bytes_max) {
    notify("message too large: " + std::to_string(text.size()) + " bytes, at most " +
               std::to_string(limits::post_text_bytes_max) + "; it stays in the input",
           true);
    return;
  }
  if (outbox_.size() >= outbox_messages_max) {
    notify(std::to_string(outbox_messages_max) +
               " messages are waiting for the node already; this one stays in the input",
           true);
    return;
  }
  // Every post goes through the outbox: shown at once as pending, sent now or when the node is
  // back, and gone from the outbox when the node has it.
  Outgoing o;
  o.number = next_outgoing_++;
  o.group = b->id;
  o.channel = b->channel;
  o.reply_to = reply_to;
  o.action = action;
  o.text = text;
  o.typed = typed;
  Message pending;
  pending.kind = "pending";
  pending.author = own_id_;
  pending.nick = own_nick_;
  pending.text = text;
  pending.channel = b->channel;
  pending.reply_to = std::move(reply_to);
  pending.action = action;
  pending.pending = o.number;
  outbox_.push_back(std::move(o));
  b->scroll_rows = 0;
  b->new_below = 0;
  append(*b, std::move(pending));
  input_.remember(typed);
  input_.clear();
  if (!connected_)
    notify("the node is not running: your message is queued and goes out when it is back", false);
  send_outbox();
}

void ChatModel::run_command(const Command& c, const std::string& typed) {
  using K = Command::Kind;
  if (!connected_) {
    notify("not connected to the node; your command stays here until it is back", true);
    return;
  }
  Buffer* b = selected();
  if (b == nullptr && c.kind != K::join) {
    notify("no group yet: /join CODE joins one", true);
    return;
  }
  NodeRequest r;
  r.purpose = NodeRequest::Purpose::command;
  r.command = c.kind;
  r.typed = typed;
  if (b != nullptr) r.group = b->id;
  switch (c.kind) {
    case K::join:
      r.op = "join";
      r.args = {{"code", c.arg}};
      break;
    case K::invite:
      r.op = "invite";
      r.args = {{"group", b->id}, {"uses", c.uses}, {"expires_ms", c.expires_ms}};
      break;
    case K::members:
      r.op = "members";
      r.args = {{"group", b->id}};
      break;
    case K::kick:
    case K::promote:
    case K::demote: {
      r.op = c.kind == K::kick ? "kick" : c.kind == K::promote ? "promote" : "demote";
      // A label (bob, or bob·1b11 when two share the nick) names that member's id.
      r.args = {{"group", b->id}, {"member", member_arg(*b, c.arg)}};
      if (c.kind == K::promote) r.args["to"] = c.arg2.empty() ? "admin" : c.arg2;
      break;
    }
    case K::topic:
      r.op = "topic";
      r.args = {{"group", b->id}, {"text", c.arg}};
      break;
    case K::leave:
      r.op = "leave";
      r.args = {{"group", b->id}};
      break;
    case K::relays:
      r.op = "relays";
      r.args = {{"group", b->id}};
      break;
    case K::search:
      r.op = "search";
      r.args = {{"text", c.arg}, {"limit", search_results_max}};
      break;
    case K::msg:
    case K::query:
      r.op = "dm";
      r.args = {{"member", member_arg(*b, c.arg)}};
      if (!c.arg2.empty()) r.args["text"] = c.arg2;
      break;
    case K::jump:
      jump(c.uses);
      input_.remember(typed);
      input_.clear();
      return;
    case K::open:
    case K::save:
      run_file_command(c, typed);
      return;
    case K::help:
    case K::quit:
    default:  // the conversation kinds, below
      break;
  }
  if (is_conversation(c.kind)) {
    if (auto ok = run_conversation_command(c, typed, *b, r); !ok.ok()) {
      notify(ok.error().context(), true);
      return;
    }
    if (r.op.empty()) return;  // done here (a post queued, a channel shown, an edit opened)
  } else if (c.kind == K::help || c.kind == K::quit) {
    return;
  }
  request(std::move(r));
  input_.remember(typed);
  input_.clear();
}

void ChatModel::complete_nick() {
  Buffer* b = selected();
  if (b == nullptr) return;
  const std::string& text = input_.text();
  const std::size_t end = input_.cursor();
  std::size_t start = end;
  while (start > 0 && text[start - 1] != ' ' && text[start - 1] != '\n') --start;
  std::string word = text.substr(start, end - start);
  if (word.empty()) return;
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(fold_case(static_cast<unsigned char>(c)));
    return s;
  };
  const std::string prefix = lower(word);
  std::set<std::string> candidates;
  for (const auto& m : b->messages) {
    if (!m.nick || m.nick->empty() || m.author == own_id_) continue;
    const std::string nick = sanitize(*m.nick, false);
    if (lower(nick).compare(0, prefix.size(), prefix) == 0) candidates.insert(nick);
  }
  if (candidates.empty()) return;
  std::string completion = *candidates.begin();
  if (candidates.size() > 1) {
    // The longest common prefix, cut back to a character boundary.
    for (const auto& c : candidates) {
      std::size_t n = 0;
      while (n < completion.size() && n < c.size() && completion[n] == c[n]) ++n;
      completion.resize(n);
    }
    while (!completion.empty() && (static_cast<unsigned char>(completion.back()) & 0xC0) == 0x80)
      completion.pop_back();
    if (!completion.empty() && static_cast<unsigned char>(completion.back()) >= 0xC0)
      completion.pop_back();
    std::string list;
    for (const auto& c : candidates) list += (list.empty() ? "" : ", ") + c;
    notify(list, false);
    if (completion.size() <= word.size()) return;
  } else {
    completion += start == 0 ? ": " : " ";
  }
  std::string rebuilt = text.substr(0, start) + completion;
  const std::size_t cursor = rebuilt.size();
  rebuilt += text.substr(end);
  input_.set(rebuilt);
  input_.home();
  while (input_.cursor() < cursor) input_.right();
}

void ChatModel::scroll_to_bottom() {
  if (Buffer* b = selected()) {
    b->scroll_rows = 0;
    b->new_below = 0;
  }
}

void ChatModel::scroll(int pages) {
  Buffer* b = selected();
  if (b == nullptr) return;
  const std::size_t height = message_area_rows(last_rows_);
  const std::size_t step = height > 2 ? height - 2 : 1;
  if (pages < 0) {
    b->scroll_rows = b->scroll_rows > step ? b->scroll_rows - step : 0;
    if (b->scroll_rows == 0) b->new_below = 0;
    return;
  }
  bool all = false;
  const std::size_t total =
      rows_from_bottom(*b, message_area_cols(last_cols_), SIZE_MAX, &all).size();
  const std::size_t max_scroll = total > height ? total - height : 0;
  b->scroll_rows = std::min(b->scroll_rows + step, max_scroll);
  if (b->scroll_rows + height + step >= total) maybe_load_older(*b);
}

}  // namespace qun::chat
