#include "app/event_json.h"

namespace qun::render {

control::Json message_json(const Replica& r, const Message& m) {
  using Json = control::Json;
  Json j{{"id", to_hex(m.id)},
         {"author", to_hex(m.author)},
         {"time", m.time_ms},
         {"kind", event_kind_name(m.kind)}};
  auto nick = r.nick(m.author);
  j["nick"] = nick ? Json(*nick) : Json();
  j["text"] = m.text ? Json(*m.text) : Json();
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
  if (m.close_reason) j["reason"] = invite_close_reason_name(*m.close_reason);
  return j;
}

}  // namespace qun::render
