// An event's tag: the first 8 bytes of its id. Announcements (ihave) and the grafts that answer
// them name events by tag, a quarter of an id's bytes: most of what a lazy link carries. A tag
// only ever stands for an event the announcer admitted recently (Broadcast keeps the recent
// ones, broadcast_seen_max), so a collision among those is what matters: 2^-64 per pair by
// chance. A member could grind two events of its own to the same tag (about 2^32 signed
// events); a node holding one then takes the other's announcements for it and gets it by push
// or catch-up instead, so only the grinder's own event is delayed (docs/threat-model.md).
#pragma once

#include <algorithm>

#include "base/bytes.h"
#include "crypto/hash.h"

namespace qun {

struct EventTagTag {};
using EventTag = FixedBytes<8, EventTagTag>;

inline EventTag tag_of(const Hash& id) {
  EventTag t;
  std::copy_n(id.bytes.begin(), EventTag::size(), t.bytes.begin());
  return t;
}

}  // namespace qun
