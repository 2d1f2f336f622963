// How the node lists groups and members for people: the order, and a label that tells apart two
// groups (or two members) of the same name. `group.list`, `members` and everything built on them
// (`qun group list`, `qun members`, the chat's sidebar, its Alt+N numbers and its nicks) use this
// one rule, so a group keeps its number and a name means the same thing everywhere.
//
// Order: groups by name (case-folded), then by when this node joined, then by id; members by role
// (founder, admins, members), then by nick (case-folded), then by id. Hash ids never decide the
// order unless everything else is equal, so joining a group does not reshuffle the others.
//
// Labels: the name itself when it is unique in the list, else the name, U+00B7 and the shortest
// prefix of the id (at least 4 hex digits) that no other entry of that name shares: `lobby·1b11`.
// An entry without a name is labelled by its id's first 8 hex digits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qun::listing {

// Hex digits of the id a label shows at least; two entries that share them get more.
inline constexpr std::size_t label_id_digits_min = 4;

struct Entry {
  std::string id;     // hex
  std::string name;   // group name or nick; empty when unknown
  std::uint64_t since_ms = 0;  // groups: when this node joined (UINT64_MAX: not yet)
  int rank = 0;       // members: 0 founder, 1 admin, 2 moderator, 3 member; groups: 0
};

// The entries' indices in listing order.
std::vector<std::size_t> order(const std::vector<Entry>& entries);
// One label per entry, in the entries' order.
std::vector<std::string> labels(const std::vector<Entry>& entries);

}  // namespace qun::listing
