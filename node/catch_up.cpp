#include "node/catch_up.h"

#include <algorithm>
#include <unordered_set>

#include "node/event.h"
#include "node/wire.h"

namespace qun {

CatchUp::CatchUp(CatchUpConfig config, Millis first_offer_at) : config_(config) {
  timers_.set(Timer::offer, first_offer_at);
}

void CatchUp::peer_gone(const PublicKey& peer) {
  queues_.erase(peer);
  in_step_.erase(peer);
  deferred_.erase(peer);
  solicited_.erase(peer);
  if (queues_.empty()) timers_.stop(Timer::pump);
  if (deferred_.empty()) timers_.stop(Timer::heads_retry);
}

void CatchUp::offer(Millis, const PublicKey& peer) {
  out_.push_back(catch_up_output::Heads{peer, false});
}

void CatchUp::request(Millis now, const PublicKey& peer) {
  auto last = requested_.find(peer);
  if (last != requested_.end() && now < last->second + heads_reply_gap_ms) {
    // Not lost: an offer we could not answer yet (fetching_ now counts on this request) is
    // asked for once the gap has passed.
    defer(peer, last->second + heads_reply_gap_ms);
    return;
  }
  requested_[peer] = now;
  solicited_[peer] = now;
  out_.push_back(catch_up_output::Heads{peer, true});
}

void CatchUp::request_after(Millis now, const PublicKey& peer, Millis wait) {
  defer(peer, now + wait);
}

void CatchUp::defer(const PublicKey& peer, Millis at) {
  auto [it, fresh] = deferred_.emplace(peer, at);
  if (!fresh) it->second = std::min(it->second, at);
  timers_.set_by(Timer::heads_retry, it->second);
}

bool CatchUp::solicited(Millis now, const PublicKey& peer) const {
  auto asked = solicited_.find(peer);
  return asked != solicited_.end() && now < asked->second + config_.solicited_ms;
}

void CatchUp::note_heads(const PublicKey& peer, const std::vector<Hash>& heads) {
  if (neighbors_.count(peer)) in_step_[peer] = std::set<Hash>(heads.begin(), heads.end());
}

void CatchUp::on_offer(Millis now, const PublicKey& peer, const std::vector<Hash>& heads,
                       const Has& has) {
  note_heads(peer, heads);
  // Ask for heads we lack, unless another peer is already sending them.
  bool ask = false;
  for (const auto& h : heads) {
    if (has(h)) continue;
    auto f = fetching_.find(h);
    if (f == fetching_.end() || f->second <= now) ask = true;
  }
  if (!ask) return;
  for (const auto& h : heads)
    if (!has(h)) fetching_[h] = now + catch_up_wait_ms;
  timers_.set_by(Timer::fetch_expiry, now + catch_up_wait_ms);
  request(now, peer);
}

void CatchUp::on_request(Millis now, const PublicKey& peer, const std::vector<Hash>& heads,
                         const Group& group, const InFlight& in_flight) {
  // Once it has what we send, its heads are ours: no need to offer them again.
  note_heads(peer, std::vector<Hash>(group.heads().begin(), group.heads().end()));
  // Everything the peer holds is the causal past of its heads; send the rest.
  std::unordered_set<Hash, HashHasher> theirs;
  std::vector<Hash> stack;
  for (const auto& h : heads)
    if (group.has(h) && theirs.insert(h).second) stack.push_back(h);
  while (!stack.empty()) {
    Hash cur = stack.back();
    stack.pop_back();
    for (const auto& p : group.find(cur)->event.parents)
      if (theirs.insert(p).second) stack.push_back(p);
  }
  std::deque<Hash> todo;
  for (const auto* rec : group.ordered())
    if (!theirs.count(rec->event.id)) todo.push_back(rec->event.id);
  if (todo.empty()) return;
  queues_[peer] = std::move(todo);
  pump(now, peer, group, in_flight);
}

// Sends the next batches to one peer, within send_window_bytes of bytes in flight. The bytes in
// flight are the link's when the pump starts plus the events of the batches it makes (the
// messages' few framing bytes are not counted: they are well within the window's slack).
void CatchUp::pump(Millis now, const PublicKey& peer, const Group& group,
                   const InFlight& in_flight) {
  auto q = queues_.find(peer);
  if (q == queues_.end()) return;
  const std::optional<std::size_t> linked = in_flight(peer);
  if (!linked) {
    queues_.erase(q);
    if (queues_.empty()) timers_.stop(Timer::pump);
    return;
  }
  std::size_t flight = *linked;
  for (std::size_t b = 0; b < catch_up_batches_per_pump && !q->second.empty(); ++b) {
    if (flight >= config_.send_window_bytes) break;
    // A batch fills what is left of the window (but always carries at least one event).
    const std::size_t budget =
        std::min(wire_limits::events_bytes_max, config_.send_window_bytes - flight);
    std::vector<Bytes> batch;
    std::size_t bytes = 0;
    while (!q->second.empty() && batch.size() < wire_limits::events_max) {
      const EventRecord* rec = group.find(q->second.front());
      if (!rec) {  // not in this replica (it was replaced): nothing to send
        q->second.pop_front();
        continue;
      }
      Bytes e = encode_for_group_message(rec->event);
      if (!batch.empty() && bytes + e.size() > budget) break;
      bytes += e.size();
      batch.push_back(std::move(e));
      q->second.pop_front();
    }
    flight += bytes;
    if (!batch.empty()) out_.push_back(catch_up_output::Events{peer, std::move(batch)});
  }
  if (q->second.empty()) {
    queues_.erase(q);
    if (queues_.empty()) timers_.stop(Timer::pump);
  } else {
    timers_.set_by(Timer::pump, now + catch_up_pump_ms);
  }
}

// Heads requests whose gap has passed.
void CatchUp::retry_requests(Millis now) {
  std::vector<PublicKey> due;
  for (auto it = deferred_.begin(); it != deferred_.end();) {
    if (it->second > now) {
      timers_.set_by(Timer::heads_retry, it->second);
      ++it;
      continue;
    }
    due.push_back(it->first);
    it = deferred_.erase(it);
  }
  for (const auto& peer : due) request(now, peer);
}

// Fetches past their wait are forgotten (an expired entry no longer holds an offer back).
void CatchUp::expire_fetching(Millis now) {
  std::optional<Millis> next;
  for (auto it = fetching_.begin(); it != fetching_.end();) {
    if (it->second <= now) {
      it = fetching_.erase(it);
      continue;
    }
    next = earliest(next, it->second);
    ++it;
  }
  if (next) timers_.set_by(Timer::fetch_expiry, *next);
}

void CatchUp::on_tick(Millis now, const Group& group, Rng& rng, const InFlight& in_flight) {
  if (timers_.take_expired(Timer::heads_retry, now)) retry_requests(now);
  if (timers_.take_expired(Timer::pump, now)) {
    // pump erases a peer's queue once it is sent, and re-arms the timer while any is left.
    std::vector<PublicKey> pumping;
    for (const auto& [peer, q] : queues_) pumping.push_back(peer);
    for (const auto& peer : pumping) pump(now, peer, group, in_flight);
  }
  if (timers_.take_expired(Timer::offer, now)) {
    // Anti-entropy with one random neighbour; with none, tried again soon.
    if (neighbors_.empty()) {
      timers_.set(Timer::offer, now + config_.offer_retry_ms);
    } else {
      timers_.set(Timer::offer, now + config_.offer_interval_ms);
      // A neighbour not in step with our heads; with none, one at random now and then only.
      const std::set<Hash>& ours = group.heads();
      std::vector<PublicKey> behind;
      for (const auto& peer : neighbors_) {
        auto known = in_step_.find(peer);
        if (known == in_step_.end() || known->second != ours) behind.push_back(peer);
      }
      if (behind.empty() && now >= last_offer_at_ + config_.offer_interval_max_ms)
        behind.assign(neighbors_.begin(), neighbors_.end());
      if (!behind.empty()) {
        const PublicKey& peer = behind[rng.uniform(behind.size())];
        in_step_[peer] = ours;
        last_offer_at_ = now;
        offer(now, peer);
      }
    }
    // Requests older than the gap hold nothing back any more: forget them (a bound on
    // requested_, which otherwise keeps every peer ever asked).
    std::erase_if(requested_, [&](const auto& r) { return now >= r.second + heads_reply_gap_ms; });
  }
  if (timers_.take_expired(Timer::fetch_expiry, now)) expire_fetching(now);
}

std::optional<CatchUpOutput> CatchUp::poll() {
  if (out_.empty()) return std::nullopt;
  CatchUpOutput o = std::move(out_.front());
  out_.pop_front();
  return o;
}

std::vector<PublicKey> CatchUp::sending() const {
  std::vector<PublicKey> peers;
  for (const auto& [peer, q] : queues_) peers.push_back(peer);
  return peers;
}

std::optional<std::string> CatchUp::invariant_violation() const {
  auto fail = [](std::string what) { return std::optional<std::string>(std::move(what)); };
  // A peer's queue goes once it is sent (pump), so none is empty.
  for (const auto& [peer, q] : queues_)
    if (q.empty()) return fail("catch-up: an empty queue is kept");
  // Work that waits has a timer that will do it.
  if (!queues_.empty() && !timers_.is_set(Timer::pump)) return fail("catch-up: queued with no pump");
  if (!deferred_.empty() && !timers_.is_set(Timer::heads_retry))
    return fail("catch-up: held-back requests with no timer");
  if (!fetching_.empty() && !timers_.is_set(Timer::fetch_expiry))
    return fail("catch-up: fetches with no expiry");
  // What we know of neighbours' heads is kept for neighbours only.
  for (const auto& [peer, heads] : in_step_)
    if (!neighbors_.count(peer)) return fail("catch-up: heads kept for a peer not a neighbour");
  // The periodic offer is always due some time.
  if (!timers_.is_set(Timer::offer)) return fail("catch-up: the periodic offer is not set");
  return std::nullopt;
}

}  // namespace qun
