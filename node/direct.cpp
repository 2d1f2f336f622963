#include "node/direct.h"

#include <algorithm>

namespace qun::direct {

std::string refusal(const GroupState& s, const EventRecord& rec) {
  switch (rec.event.kind) {
    case EventKind::invite:
    case EventKind::join:
      return "a direct group takes no invites";
    case EventKind::add:
      if (s.direct_pair.size() >= 2) return "a direct group has its two members already";
      return {};
    case EventKind::remove:
    case EventKind::set_role:
    case EventKind::ban:
    case EventKind::redact:
    case EventKind::mute:
      return "a direct group has no roles to act with";
    case EventKind::set_settings:
      return "a direct group's settings are fixed";
    case EventKind::channel:
      return "a direct group has no channels";
    default:
      return {};
  }
}

const std::vector<PublicKey>& pair(const GroupState& s) { return s.direct_pair; }

std::optional<PublicKey> other(const GroupState& s, const PublicKey& self) {
  if (!s.settings.direct || s.direct_pair.size() != 2) return std::nullopt;
  if (s.direct_pair[0] == self) return s.direct_pair[1];
  if (s.direct_pair[1] == self) return s.direct_pair[0];
  return std::nullopt;
}

const char* offer_decision_name(OfferDecision d) {
  switch (d) {
    case OfferDecision::take: return "taken";
    case OfferDecision::held: return "held already";
    case OfferDecision::blocked: return "blocked peer";
    case OfferDecision::stranger: return "peer shares no group";
    case OfferDecision::refused: return "refused before";
    case OfferDecision::busy: return "too many offers being checked";
  }
  return "?";
}

void Offers::set_blocked(const PublicKey& key, bool blocked) {
  if (blocked) blocked_.insert(key);
  else blocked_.erase(key);
}

OfferDecision Offers::on_offer(Millis now, const Hash& group, const PublicKey& from, bool held,
                               bool co_member) {
  if (held) return OfferDecision::held;
  if (blocked(from)) return OfferDecision::blocked;
  if (!co_member) return OfferDecision::stranger;
  if (refused_.count(group)) return OfferDecision::refused;
  if (checking_.size() >= offers_checking_max) return OfferDecision::busy;
  const auto mine = std::count_if(checking_.begin(), checking_.end(),
                                  [&](const auto& kv) { return kv.second.from == from; });
  if (static_cast<std::size_t>(mine) >= offers_checking_per_peer_max) return OfferDecision::busy;
  checking_[group] = Checking{from, now + offer_wait_ms};
  return OfferDecision::take;
}

Verdict Offers::review(Millis now, const Hash& group, const GroupState& s, const PublicKey& self,
                       std::string* why) {
  auto it = checking_.find(group);
  if (it == checking_.end()) return Verdict::keep;
  auto drop = [&](std::string reason) {
    if (why) *why = std::move(reason);
    checking_.erase(it);
    refuse(group);
    return Verdict::drop;
  };
  if (s.created) {
    if (!s.settings.direct) return drop("offered group is not a direct group");
    const auto& p = s.direct_pair;
    if (p.size() == 2) {
      if (p[0] != self && p[1] != self) return drop("offered direct group does not name this node");
      const PublicKey& peer = p[0] == self ? p[1] : p[0];
      if (blocked(peer)) return drop("offered direct group is with a blocked member");
      if (s.is_member(self)) {
        checking_.erase(it);
        return Verdict::keep;
      }
    } else if (p.size() == 1 && p[0] == self) {
      return drop("offered direct group was founded with this node's own key");
    }
  }
  if (now >= it->second.deadline) {
    return drop(s.created ? "offered direct group did not admit this node in time"
                          : "offered group's create event did not arrive in time");
  }
  return Verdict::wait;
}

std::vector<Hash> Offers::due(Millis now) const {
  std::vector<Hash> out;
  for (const auto& [g, c] : checking_)
    if (now >= c.deadline) out.push_back(g);
  return out;
}

void Offers::refuse(const Hash& group) {
  if (!refused_.insert(group).second) return;
  refused_order_.push_back(group);
  if (refused_order_.size() > refused_max) {
    refused_.erase(refused_order_.front());
    refused_order_.erase(refused_order_.begin());
  }
}

}  // namespace qun::direct
