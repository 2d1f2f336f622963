// Checking many events' signatures on every core: a node loading a long history from its store
// (node/group_store.h, load_replica's SignatureCheck) checks 200,000 signatures, 11 s on one core.
// The node itself is sans-IO and single-threaded; this is the driver's to do.
#pragma once

#include <vector>

#include "node/event.h"

namespace qun {

// ok[i] is whether events[i]'s signature verifies: the events cut into one slice per core (a
// slice at least signature_slice_min long), each checked on its own thread.
std::vector<bool> verify_on_all_cores(const std::vector<Event>& events);

}  // namespace qun
