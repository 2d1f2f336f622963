// Direct groups (DMs): a group of exactly two, with its own log and keys (docs/protocol.md,
// "Direct groups").
//
// A direct group is a group whose create carries the `direct` setting (create flag bit 2, fixed
// at creation). Its founder adds exactly one peer in an add event, whose sealed bundle gives the
// peer the epoch key: no invite is needed, and none is valid. Resolution refuses in it every kind
// that would let a third key in or rank the two (invite, a second add, remove, set-role, ban,
// set-settings, channel, mute, redact); leave and everything a member does are as anywhere.
//
// How the peer learns of a group it does not hold yet: nodes that hold a direct group (its
// founder, and relays serving it) send `direct-offer{group}` on a link whose authenticated peer
// is the group's other member and whose hello does not show the group. The receiver takes the
// offer (DirectOffers below) only from a peer it shares a group with and has not blocked, within
// bounds; it then fetches the group like a joiner and keeps it only if it turns out to be a
// direct group naming it, whose other member it has not blocked.
//
// Everything here is plain code without IO or clock: the Node calls it with the time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/time.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "node/group.h"

namespace qun::direct {

// Offers a node has taken and is still checking (fetching the group to see whether it is a
// direct group naming it), at once and per offering peer. A person is offered a handful of new
// conversations at a time; 16 covers a burst after a long absence, and each one costs at most a
// pending group's bounds (limits.h, pending_*) until offer_wait_ms passes.
inline constexpr std::size_t offers_checking_max = 16;
inline constexpr std::size_t offers_checking_per_peer_max = 4;
static_assert(offers_checking_per_peer_max <= offers_checking_max);
// How long an offered group may take to show a create event naming this node before it is
// dropped: the relay's probation (node.h, serve_probation_ms) for the same question.
inline constexpr Millis offer_wait_ms = 60'000;
// Groups whose offer was refused after the check (not direct, not naming this node, another
// member blocked), remembered so a peer offering them again on every link costs nothing: as many
// as the refusals a relay remembers (node.cpp, serve_refusals_max).
inline constexpr std::size_t refused_max = 1024;
// Relay: direct groups one member may have served (as founder or peer) at once. A person keeps a
// few dozen conversations going; each takes a relay slot (NodeConfig::relay_groups_max).
inline constexpr std::size_t relay_groups_per_member_max = 32;
// Relay: stored bytes of one direct group past which the relay drops its oldest posts'
// payloads (as NodeConfig::relay_group_bytes_max does for a community). 16 MiB holds about
// 50,000 short messages of two people: months of conversation waiting for an offline peer,
// while a relay serving 100 DMs at the bound stays under 2 GiB.
inline constexpr std::uint64_t relay_group_bytes_max = std::uint64_t{16} << 20;
// Relay: how often, at most, it checks again that both members of each direct group it keeps are
// still members of a group it serves (after any change to a group it serves): a member removed
// from the community loses the relay's DM service at most this long after the removal reaches
// the relay. A check looks each pair up in every group held (a million lookups for 500 DMs on a
// relay of 1,000 groups, tens of milliseconds), so not on every event.
inline constexpr Millis relay_recheck_interval_ms = 10'000;

// Relays a new direct group names (qun dm): relays of the groups its two members share, so a
// message reaches a peer that is offline. Two, so that one relay down does not stop it; each
// takes a slot on its relay.
inline constexpr std::size_t relays_named_max = 2;

// Why resolution refuses `rec` in the direct group `s` (empty: the direct rules allow it; the
// ordinary rules still apply). Called by Group::apply for every non-create event of a group
// whose settings say direct.
std::string refusal(const GroupState& s, const EventRecord& rec);

// The two members a direct group names: its founder, then the peer its first accepted add
// named (one entry until that add is in). Empty for a group that is not direct.
const std::vector<PublicKey>& pair(const GroupState& s);
// The other member of a direct group for `self` (one of the pair), once both are named.
std::optional<PublicKey> other(const GroupState& s, const PublicKey& self);

// What a node does with a direct-offer.
enum class OfferDecision {
  take,         // fetch the group (add it, empty, and check it once it arrives)
  held,         // this node holds the group already: nothing to do
  blocked,      // the offering peer is blocked
  stranger,     // the offering peer shares no group with this node
  refused,      // the group was checked and refused before
  busy,         // offers_checking_max (or the peer's share) are being checked
};
const char* offer_decision_name(OfferDecision d);

// The outcome of checking an offered group after an ingest or at its deadline.
enum class Verdict { wait, keep, drop };

// The receiving side's state: blocked keys, offers being checked, refused groups.
class Offers {
 public:
  // Keys whose offers and direct groups this node refuses (`qun dm block`).
  void set_blocked(const PublicKey& key, bool blocked);
  bool blocked(const PublicKey& key) const { return blocked_.count(key) != 0; }
  const std::set<PublicKey>& blocked_keys() const { return blocked_; }

  // An offer of `group` from `from`: held says whether this node holds the group; co_member
  // whether `from` is a member or named relay of a group both hold. On take, the offer is
  // recorded as being checked until now + offer_wait_ms.
  OfferDecision on_offer(Millis now, const Hash& group, const PublicKey& from, bool held,
                         bool co_member);
  bool checking(const Hash& group) const { return checking_.count(group) != 0; }
  // Judges an offered group being checked by what this node holds of it now (`now` past its
  // deadline turns wait into drop). keep and drop end the check; drop remembers the refusal.
  // `why` says what was wrong on drop.
  Verdict review(Millis now, const Hash& group, const GroupState& s, const PublicKey& self,
                 std::string* why);
  // Offers being checked whose deadline has passed, for review.
  std::vector<Hash> due(Millis now) const;
  // Forget a group (removed from the node by other means).
  void forget(const Hash& group) { checking_.erase(group); }
  std::size_t checking_count() const { return checking_.size(); }

 private:
  struct Checking {
    PublicKey from;
    Millis deadline = 0;
  };
  void refuse(const Hash& group);
  std::set<PublicKey> blocked_;
  std::map<Hash, Checking> checking_;
  std::set<Hash> refused_;
  std::vector<Hash> refused_order_;  // oldest first, to forget past refused_max
};

}  // namespace qun::direct
