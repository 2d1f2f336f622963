// A small, valid group history built deterministically (fixed Rng seed, fixed times), shared by
// the fuzz targets that need real events and by the seed corpus generator.
//
// The history: a founder creates a group, invites two members who join, adds a third, sets a
// topic and a role, rekeys, removes a member, and everyone posts in between. keys[0] is the
// founder, keys[1..3] are (or were) members, keys[4] is never admitted. Building it takes a few
// milliseconds; call it once per process.
#pragma once

#include <vector>

#include "crypto/keys.h"
#include "node/event.h"
#include "node/invite.h"

namespace qun::fuzz {

struct Fixture {
  Hash group;
  std::vector<SigningKey> keys;
  std::vector<Event> events;      // in the order they were authored: parents first
  std::vector<Bytes> encoded;     // encode(events[i])
  std::vector<InviteCode> codes;  // the invites keys[1] and keys[2] joined with
};

// Aborts with a message on any failure: the fixture is our own code, not peer input.
Fixture build_fixture();

// Stops the fuzzer with a message when an invariant of our own code does not hold. Used instead
// of assert() so the checks stay on whatever the build type.
[[noreturn]] void fail(const char* what);
inline void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

}  // namespace qun::fuzz
