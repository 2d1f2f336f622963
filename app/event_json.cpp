#include "app/event_json.h"

namespace qun::render {

control::Json message_json(const Replica& r, const Message& m, const Conversation* conv) {
  using Json = control::Json;
  Json j{{"id", to_hex(m.id)},
         {"author", to_hex(m.author)},
         {"time", m.time_ms},
         {"kind", event_kind_name(m.kind)}};
  auto nick = r.nick(m.author);
  j["nick"] = nick ? Json(*nick) : Json();
  j["text"] = m.text ? Json(*m.text) : Json();
  // A post or edit whose payload no peer we reached still stored (a relay over its byte bound
  // kept only its stub): its text is gone for good, not merely unreadable.
  if (payload_droppable(m.kind)) j["stored"] = m.stored;
  if (m.target) {
    j["target"] = to_hex(*m.target);
    auto tn = r.nick(*m.target);
    j["target_nick"] = tn ? Json(*tn) : Json();
  }
  if (m.kind == EventKind::set_role) j["role"] = role_name(m.role);
  // A healing rekey names the bad key event it replaces; a close names its invite and reason.
  if (m.replaces) {
    j["replaces"] = to_hex(*m.replaces);
    if (const EventRecord* bad = r.group().find(*m.replaces)) {
      j["replaces_author"] = to_hex(bad->event.author);
      auto bn = r.nick(bad->event.author);
      j["replaces_nick"] = bn ? Json(*bn) : Json();
    }
  }
  if (m.invite) j["invite"] = to_hex(*m.invite);
  if (m.kind == EventKind::post) {
    const Hash channel = m.channel.value_or(r.id());
    std::optional<std::string> channel_name;
    if (channel == r.id()) channel_name = "general";
    const PostView* v = conv ? conv->post(m.id) : nullptr;
    if (conv) {
      if (const ChannelView* ch = conv->channel(channel)) channel_name = ch->name;
      if (auto why = conv->refused.find(m.id); why != conv->refused.end()) j["refused"] = why->second;
    }
    j["channel"] = channel_name ? Json(*channel_name) : Json(to_hex(channel));
    j["reply_to"] = m.reply_to ? Json(to_hex(*m.reply_to)) : Json();
    j["action"] = m.action;
    j["edited"] = v && v->edited;
    j["deleted"] = v && v->deleted;
    if (v) j["text"] = v->text ? Json(*v->text) : Json();
    if (v && v->redacted_by) j["redacted_by"] = to_hex(*v->redacted_by);
    Json reactions = Json::object();
    if (v)
      for (const auto& [emoji, who] : v->reactions) {
        Json ids = Json::array();
        for (const auto& pk : who) ids.push_back(to_hex(pk));
        reactions[emoji] = std::move(ids);
      }
    j["reactions"] = std::move(reactions);
    // A file post: what it shares (never its key: the node fetches with it, `qun fetch`).
    if (m.file && !(v && v->deleted))
      j["file"] = Json{{"name", m.file->name},
                       {"size", m.file->size},
                       {"media_type", m.file->media_type},
                       {"root", to_hex(m.file->root)}};
  }
  // The conversation kinds (issue 12): "target" is the message (react, edit, delete, redact, a
  // channel's rename or archive) or the member (mute, ban) acted on; "undo" marks an unreact,
  // unmute or unban.
  if (m.target_event) j["target"] = to_hex(*m.target_event);
  switch (m.kind) {
    case EventKind::react:
      j["emoji"] = m.text ? Json(*m.text) : Json();
      j["undo"] = !m.on;
      break;
    case EventKind::mute:
      j["undo"] = !m.on;
      j["duration_ms"] = m.duration_ms;
      break;
    case EventKind::ban:
      j["undo"] = !m.on;
      break;
    case EventKind::channel:
      if (m.channel_op) j["op"] = channel_op_name(*m.channel_op);
      break;
    case EventKind::set_settings:
      if (m.settings) {
        j["history"] = m.settings->history_visible ? "on" : "off";
        j["invites"] = m.settings->members_can_invite ? "members" : "admins";
      }
      break;
    default:
      break;
  }
  if (m.close_reason) j["reason"] = invite_close_reason_name(*m.close_reason);
  return j;
}

control::Json action_json(const Replica& r, const ConversationAction& a) {
  using Json = control::Json;
  auto nick_of = [&](const PublicKey& pk) {
    auto nick = r.nick(pk);
    return nick ? Json(*nick) : Json();
  };
  Json j{{"id", to_hex(a.event)},
         {"kind", event_kind_name(a.kind)},
         {"author", to_hex(a.author)},
         {"nick", nick_of(a.author)},
         {"time", a.time_ms},
         {"undo", !a.on},
         {"detail", a.detail},
         {"duration_ms", a.duration_ms},
         {"target", Json()},
         {"target_nick", Json()}};
  if (a.target_member) {
    j["target"] = to_hex(*a.target_member);
    j["target_nick"] = nick_of(*a.target_member);
  } else if (a.target_event) {
    j["target"] = to_hex(*a.target_event);
  }
  return j;
}

}  // namespace qun::render
