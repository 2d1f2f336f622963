#include "app/service.h"

#include <algorithm>

#include "app/naming.h"

namespace qun::app {
namespace {

const std::vector<Hash> no_ids;

const char* const join_goes_on =
    "no node of the group answered yet; qun keeps trying in the background "
    "(`qun status` shows the join)";

}  // namespace

std::string outbox_key(const Hash& g) { return "outbox/" + to_hex(g); }
std::string read_key(const Hash& g) { return "read/" + to_hex(g); }

std::string read_key(const Hash& g, const Hash& channel) {
  return read_key(g) + "/" + to_hex(channel);
}

Unread unread(const Replica& r, const ReadMarks& marks, const PublicKey& self,
              const std::string& nick, const std::set<PublicKey>& hidden) {
  Unread out;
  const auto& hist = r.state().history;
  std::size_t scanned = 0;
  for (std::size_t i = hist.size(); i > marks.group; --i) {
    const EventRecord* rec = r.group().find(hist[i - 1]);
    if (!rec || rec->event.kind != EventKind::post || rec->event.author == self ||
        hidden.count(rec->event.author))
      continue;
    if (scanned++ >= mention_scan_max) {
      ++out.posts;
      continue;
    }
    auto m = r.message(hist[i - 1]);
    const Hash channel = m && m->channel ? *m->channel : r.id();
    if (auto c = marks.channels.find(channel); c != marks.channels.end() && i <= c->second)
      continue;
    const bool mention = m && m->text && naming::mentions(*m->text, nick);
    ++out.posts;
    out.mentions += mention;
    ChannelUnread& in = out.by_channel[channel];
    ++in.posts;
    in.mentions += mention;
  }
  return out;
}

Bytes encode_read_mark(std::uint64_t n) {
  Bytes v(8);
  for (int i = 7; i >= 0; --i, n >>= 8) v[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n);
  return v;
}

std::size_t decode_read_mark(ByteView value) {
  if (value.size() != 8) return 0;
  std::uint64_t n = 0;
  for (auto b : value) n = (n << 8) | b;
  return static_cast<std::size_t>(n);
}

// ---- start-up ---------------------------------------------------------------------------------

std::vector<Hash> Service::load_joins(ByteView value) {
  std::vector<Hash> out;
  if (value.empty()) return out;
  auto codes = control::decode(value);
  if (!codes.ok() || !codes.value().is_array()) return out;
  for (const auto& c : codes.value()) {
    if (!c.is_string()) continue;
    if (auto code = decode_invite_code(c.get<std::string>()); code.ok()) {
      const Hash g = code.value().group;
      if (joins_.emplace(g, PendingJoin{std::move(code).value(), {}}).second) out.push_back(g);
    }
  }
  return out;
}

void Service::load_outbox(const Hash& g, ByteView value) {
  if (value.empty()) return;
  auto list = control::decode(value);
  if (!list.ok() || !list.value().is_array()) return;
  std::vector<Hash> ids;
  for (const auto& v : list.value()) {
    auto raw = v.is_string() ? from_hex(v.get<std::string>()) : std::nullopt;
    auto h = raw ? Hash::from_view(*raw) : std::nullopt;
    if (h) ids.push_back(*h);
  }
  if (ids.size() > outbox_ids_max)
    ids.erase(ids.begin(), ids.begin() + static_cast<long>(ids.size() - outbox_ids_max));
  if (!ids.empty()) outbox_[g] = std::move(ids);
}

// ---- joins ----------------------------------------------------------------------------------

void Service::join_started(InviteCode code) {
  const Hash g = code.group;
  leaving_.erase(g);
  auto& pj = joins_[g];
  pj.code = std::move(code);
  save_joins();
}

void Service::wait_for_join(const Hash& g, Waiter w) {
  auto it = joins_.find(g);
  if (it == joins_.end()) return reply(w, Json{{"group", to_hex(g)}});
  if (it->second.waiters.size() >= waiters_per_answer_max)
    return reply(w, Error(Errc::too_large, join_goes_on));
  it->second.waiters.push_back(std::move(w));
}

const InviteCode* Service::join_code(const Hash& g) const {
  auto it = joins_.find(g);
  return it == joins_.end() ? nullptr : &it->second.code;
}

std::vector<Hash> Service::joins() const {
  std::vector<Hash> out;
  for (const auto& [g, pj] : joins_) out.push_back(g);
  return out;
}

void Service::join_done(const Hash& g) {
  auto it = joins_.find(g);
  if (it == joins_.end()) return;
  for (const auto& w : it->second.waiters) reply(w, Json{{"group", to_hex(g)}});
  joins_.erase(it);
  save_joins();
}

void Service::join_failed(const Hash& g, const std::string& why) {
  auto it = joins_.find(g);
  if (it == joins_.end()) return;
  for (const auto& w : it->second.waiters) reply(w, Error(Errc::invalid_argument, why));
  joins_.erase(it);
  save_joins();
}

void Service::save_joins() {
  Json codes = Json::array();
  for (const auto& [g, pj] : joins_) codes.push_back(encode_invite_code(pj.code));
  out_.push_back(output::SaveMeta{joins_key, control::encode(codes)});
}

// ---- relay requests -------------------------------------------------------------------------

void Service::wait_for_serve(const Hash& g, const std::string& address, Waiter w) {
  auto& waiters = serve_waiters_[{g, address}];
  if (waiters.size() >= waiters_per_answer_max)
    return reply(w, Error(Errc::too_large, "the relay at " + address +
                                          " has not answered earlier requests yet; try later"));
  waiters.push_back(std::move(w));
}

std::vector<Waiter> Service::take_serve_waiters(const Hash& g, const std::string& address) {
  auto it = serve_waiters_.find({g, address});
  if (it == serve_waiters_.end()) return {};
  std::vector<Waiter> out = std::move(it->second);
  serve_waiters_.erase(it);
  return out;
}

// ---- leaving --------------------------------------------------------------------------------

void Service::left(const Hash& g, Millis now, bool linked) { leaving_[g] = Leaving{now, linked}; }

// ---- outbox ---------------------------------------------------------------------------------

void Service::queue(const Hash& g, const std::vector<Hash>& ids) {
  if (ids.empty()) return;
  auto& list = outbox_[g];
  list.insert(list.end(), ids.begin(), ids.end());
  if (list.size() > outbox_ids_max)
    list.erase(list.begin(), list.begin() + static_cast<long>(list.size() - outbox_ids_max));
  save_outbox(g);
}

const std::vector<Hash>& Service::outbox(const Hash& g) const {
  auto it = outbox_.find(g);
  return it == outbox_.end() ? no_ids : it->second;
}

std::size_t Service::outbox_posts(const Hash& g, const Replica* r) const {
  std::size_t posts = 0;
  for (const Hash& id : outbox(g)) {
    const EventRecord* rec = r ? r->group().find(id) : nullptr;
    if (!rec || rec->event.kind == EventKind::post) ++posts;
  }
  return posts;
}

bool Service::clear_outbox(const Hash& g) {
  const bool held = outbox_.erase(g) != 0;
  if (held) save_outbox(g);
  return held;
}

std::vector<Hash> Service::outbox_groups() const {
  std::vector<Hash> out;
  for (const auto& [g, ids] : outbox_) out.push_back(g);
  return out;
}

void Service::save_outbox(const Hash& g) {
  auto it = outbox_.find(g);
  if (it == outbox_.end() || it->second.empty()) {
    out_.push_back(output::SaveMeta{outbox_key(g), Bytes{}});
    return;
  }
  Json list = Json::array();
  for (const auto& id : it->second) list.push_back(to_hex(id));
  out_.push_back(output::SaveMeta{outbox_key(g), control::encode(list)});
}

// ---- read markers ---------------------------------------------------------------------------

void Service::mark_read(const Hash& g, std::uint64_t history_size,
                        const std::optional<Hash>& channel) {
  out_.push_back(output::SaveMeta{channel ? read_key(g, *channel) : read_key(g),
                                  encode_read_mark(history_size)});
}

// ---- hidden members -------------------------------------------------------------------------

void Service::load_hidden(ByteView value) {
  if (value.empty()) return;
  auto list = control::decode(value);
  if (!list.ok() || !list.value().is_array()) return;
  for (const auto& v : list.value()) {
    if (hidden_.size() >= hidden_members_max) break;
    auto raw = v.is_string() ? from_hex(v.get<std::string>()) : std::nullopt;
    auto pk = raw ? PublicKey::from_view(*raw) : std::nullopt;
    if (pk) hidden_.insert(*pk);
  }
}

Result<void> Service::hide(const PublicKey& member) {
  if (hidden_.count(member)) return Error(Errc::already_exists, "already hidden; nothing changed");
  if (hidden_.size() >= hidden_members_max)
    return Error(Errc::too_large, "you hide " + std::to_string(hidden_members_max) +
                                      " members already, the most a node keeps; unhide some first");
  hidden_.insert(member);
  save_hidden();
  return ok_result();
}

Result<void> Service::unhide(const PublicKey& member) {
  if (!hidden_.erase(member)) return Error(Errc::not_found, "not hidden; nothing changed");
  save_hidden();
  return ok_result();
}

namespace {
// A meta value holding a list of keys (hex), at most `max` of them; what does not read is skipped.
void load_keys(ByteView value, std::set<PublicKey>& into, std::size_t max) {
  if (value.empty()) return;
  auto list = control::decode(value);
  if (!list.ok() || !list.value().is_array()) return;
  for (const auto& v : list.value()) {
    if (into.size() >= max) break;
    auto raw = v.is_string() ? from_hex(v.get<std::string>()) : std::nullopt;
    auto pk = raw ? PublicKey::from_view(*raw) : std::nullopt;
    if (pk) into.insert(*pk);
  }
}
}  // namespace

void Service::load_blocked(ByteView value) { load_keys(value, blocked_, blocked_members_max); }

Result<void> Service::block(const PublicKey& member) {
  if (blocked_.count(member)) return Error(Errc::already_exists, "already blocked; nothing changed");
  if (blocked_.size() >= blocked_members_max)
    return Error(Errc::too_large, "you block " + std::to_string(blocked_members_max) +
                                      " members already, the most a node keeps; unblock some first");
  blocked_.insert(member);
  save_blocked();
  return ok_result();
}

Result<void> Service::unblock(const PublicKey& member) {
  if (!blocked_.erase(member)) return Error(Errc::not_found, "not blocked; nothing changed");
  save_blocked();
  return ok_result();
}

void Service::save_blocked() {
  Json list = Json::array();
  for (const auto& pk : blocked_) list.push_back(to_hex(pk));
  out_.push_back(output::SaveMeta{blocked_key, control::encode(list)});
}

void Service::save_hidden() {
  Json list = Json::array();
  for (const auto& pk : hidden_) list.push_back(to_hex(pk));
  out_.push_back(output::SaveMeta{hidden_key, control::encode(list)});
}

// ---- time -----------------------------------------------------------------------------------

void Service::on_tick(Millis now, const std::set<Hash>& linked) {
  for (auto& [g, pj] : joins_) {
    auto& w = pj.waiters;
    for (auto it = w.begin(); it != w.end();) {
      if (now < it->since + join_answer_ms_max) {
        ++it;
        continue;
      }
      reply(*it, Error(Errc::not_found, join_goes_on));
      it = w.erase(it);
    }
  }
  for (auto it = leaving_.begin(); it != leaving_.end();) {
    // Peers drop a former member soon after its leave arrives, so "was linked since leaving"
    // (not "is linked now") tells that the leave went out.
    Leaving& l = it->second;
    l.linked = l.linked || linked.count(it->first) != 0;
    if (now < l.since + leave_linger_ms || (!l.linked && now < l.since + leave_linger_ms_max)) {
      ++it;
      continue;
    }
    out_.push_back(output::DropGroup{it->first, "left"});
    it = leaving_.erase(it);
  }
}

void Service::forget(const Hash& g, const std::vector<Hash>& channels) {
  leaving_.erase(g);
  outbox_.erase(g);
  out_.push_back(output::SaveMeta{outbox_key(g), Bytes{}});
  out_.push_back(output::SaveMeta{read_key(g), Bytes{}});
  for (const Hash& c : channels) out_.push_back(output::SaveMeta{read_key(g, c), Bytes{}});
}

void Service::reply(const Waiter& w, Result<Json> result) {
  out_.push_back(output::Reply{w.client, w.id, std::move(result)});
}

std::optional<Output> Service::poll() {
  if (out_.empty()) return std::nullopt;
  Output o = std::move(out_.front());
  out_.pop_front();
  return o;
}

}  // namespace qun::app
