#include "node/conversation.h"

#include "node/limits.h"

namespace qun {

const PostView* Conversation::post(const Hash& id) const {
  auto it = post_index.find(id);
  return it == post_index.end() ? nullptr : &posts[it->second];
}

const ChannelView* Conversation::channel(const Hash& id) const {
  for (const auto& c : channels)
    if (c.id == id) return &c;
  return nullptr;
}

const ChannelView* Conversation::channel_named(std::string_view name) const {
  const ChannelView* archived = nullptr;
  for (const auto& c : channels) {
    if (!c.name || *c.name != name) continue;
    if (!c.archived) return &c;
    if (!archived) archived = &c;
  }
  return archived;
}

std::optional<MuteView> Conversation::muted(const PublicKey& member, std::uint64_t at_ms) const {
  auto it = mutes.find(member);
  if (it == mutes.end()) return std::nullopt;
  if (it->second.until_ms && at_ms >= *it->second.until_ms) return std::nullopt;
  return it->second;
}

namespace {

// One mute of a member: in force from its event until the earlier of its end by duration and
// the next mute or unmute of that member (both in order keys).
struct MuteWindow {
  Hash event;
  PublicKey by;
  std::uint64_t from_ms = 0;
  std::optional<std::uint64_t> until_ms;  // from the duration; none: until unmuted
  std::optional<std::uint64_t> ended_ms;  // by the next mute or unmute
  std::optional<std::uint64_t> end() const {
    if (until_ms && ended_ms) return std::min(*until_ms, *ended_ms);
    return until_ms ? until_ms : ended_ms;
  }
};

bool is_staff(const GroupState& s, const PublicKey& who) {
  return at_least(s.role_of(who), Role::moderator) && s.is_member(who);
}

}  // namespace

// What the fold has built so far: the conversation, and the mute windows and acts found by its
// first pass. ConversationCache keeps it between reads to extend it with new events.
struct FoldState {
  Conversation c;
  std::map<PublicKey, std::vector<MuteWindow>> windows;
  std::map<Hash, ConversationAction> mute_actions;
};

namespace {

class Fold {
 public:
  Fold(const Group& group, const OpenFn& open, ConversationScope scope, FoldState& state)
      : g_(group),
        s_(group.state()),
        open_(open),
        scope_(scope),
        c_(state.c),
        windows_(state.windows),
        mute_actions_(state.mute_actions) {}

  // Pass 1: mutes, which refuse posts that sort before them (a post the muter had not seen is
  // muted even if dated earlier), so they are known before any post is judged. Then #general.
  void start() {
    for (const Hash& id : s_.history) {
      const EventRecord& rec = *g_.find(id);
      if (rec.event.kind == EventKind::mute) fold_mute(rec);
    }
    c_.channels.push_back(ChannelView{g_.id(), std::string("general"), false});
  }

  // Pass 2 over history[begin, end).
  void fold_range(std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const EventRecord& rec = *g_.find(s_.history[i]);
      if (scope_ == ConversationScope::full || rec.event.kind == EventKind::channel ||
          rec.event.kind == EventKind::mute)
        fold(rec);
    }
  }

  // The mutes in force at the end of the log.
  void finish() {
    c_.mutes.clear();
    for (const auto& [member, ws] : windows_) {
      if (ws.empty() || ws.back().ended_ms) continue;
      const MuteWindow& w = ws.back();
      c_.mutes[member] = MuteView{member, w.event, w.by, w.from_ms, w.until_ms};
    }
  }

 private:
  template <typename T>
  std::optional<T> open_as(const EventRecord& rec, Result<T> (*decode)(ByteView)) {
    auto plain = open_(rec.event);
    if (!plain) return std::nullopt;
    auto p = decode(*plain);
    if (!p.ok()) return std::nullopt;
    return std::move(p).value();
  }

  void refuse(const EventRecord& rec, std::string why) { c_.refused[rec.event.id] = std::move(why); }

  ConversationAction action(const EventRecord& rec) {
    ConversationAction a;
    a.event = rec.event.id;
    a.kind = rec.event.kind;
    a.author = rec.event.author;
    a.time_ms = rec.event.time_ms;
    return a;
  }

  void fold_mute(const EventRecord& rec) {
    auto p = open_as<MutePlain>(rec, decode_mute_plain);
    if (!p) return refuse(rec, "unreadable");
    // Judged against the roles as they stand: staff are not muted (demote first), and a mute of
    // someone promoted since stops applying.
    if (is_staff(s_, p->member)) return refuse(rec, "a moderator or admin cannot be muted");
    if (p->member == rec.event.author) return refuse(rec, "cannot mute oneself");
    auto& ws = windows_[p->member];
    const bool open = !ws.empty() && !ws.back().ended_ms &&
                      (!ws.back().until_ms || *ws.back().until_ms > rec.order_key);
    if (!p->on && !open) return refuse(rec, "not muted");
    if (!ws.empty() && !ws.back().ended_ms) ws.back().ended_ms = rec.order_key;
    if (p->on) {
      std::optional<std::uint64_t> until;
      if (p->duration_ms != 0) until = rec.order_key + p->duration_ms;
      ws.push_back(MuteWindow{rec.event.id, rec.event.author, rec.order_key, until, std::nullopt});
    }
    ConversationAction a = action(rec);
    a.target_member = p->member;
    a.on = p->on;
    a.duration_ms = p->duration_ms;
    a.moderation = true;
    mute_actions_[rec.event.id] = std::move(a);
  }

  // A mute covers the member's events that its author had not seen (not its ancestors) and
  // that sort before the mute's end: a post dated before the mute to dodge it is one the muter
  // had not seen, so it is covered too; a post made after seeing the mute sorts after it.
  std::optional<std::string> muted(const EventRecord& rec) const {
    auto it = windows_.find(rec.event.author);
    if (it == windows_.end()) return std::nullopt;
    for (const MuteWindow& w : it->second) {
      const auto end = w.end();
      if (end && rec.order_key >= *end) continue;
      if (g_.is_ancestor(rec.event.id, w.event)) continue;
      return std::string("author muted");
    }
    return std::nullopt;
  }

  // The post a react, edit, delete or redact acts on: shown, not deleted, earlier in order.
  PostView* live_target(const EventRecord& rec, const Hash& target, std::string& why) {
    auto it = c_.post_index.find(target);
    if (it == c_.post_index.end()) {
      why = "no such post";
      return nullptr;
    }
    PostView& p = c_.posts[it->second];
    if (p.deleted) {
      why = "post deleted";
      return nullptr;
    }
    (void)rec;
    return &p;
  }

  void fold(const EventRecord& rec) {
    const Event& e = rec.event;
    switch (e.kind) {
      case EventKind::post: return fold_post(rec);
      case EventKind::channel: return fold_channel(rec);
      case EventKind::mute: {
        auto a = mute_actions_.find(e.id);
        if (a != mute_actions_.end()) c_.actions.push_back(std::move(a->second));
        return;
      }
      case EventKind::react: {
        auto p = open_as<ReactPlain>(rec, decode_react_plain);
        if (!p) return refuse(rec, "unreadable");
        if (auto why = muted(rec)) return refuse(rec, *why);
        std::string why;
        PostView* t = live_target(rec, p->target, why);
        if (!t) return refuse(rec, why);
        auto r = t->reactions.find(p->emoji);
        if (p->on) {
          if (r == t->reactions.end()) {
            if (t->reactions.size() >= limits::reactions_per_post_max)
              return refuse(rec, "too many different reactions on this post");
            r = t->reactions.emplace(p->emoji, std::set<PublicKey>()).first;
          }
          if (!r->second.insert(e.author).second) return refuse(rec, "already reacted");
        } else {
          if (r == t->reactions.end() || r->second.erase(e.author) == 0)
            return refuse(rec, "no such reaction to take back");
          if (r->second.empty()) t->reactions.erase(r);
        }
        ConversationAction a = action(rec);
        a.target_event = p->target;
        a.on = p->on;
        a.detail = p->emoji;
        c_.actions.push_back(std::move(a));
        return;
      }
      case EventKind::edit: {
        auto p = open_as<EditPlain>(rec, decode_edit_plain);
        if (!p) return refuse(rec, "unreadable");
        if (auto why = muted(rec)) return refuse(rec, *why);
        std::string why;
        PostView* t = live_target(rec, p->target, why);
        if (!t) return refuse(rec, why);
        if (t->author != e.author) return refuse(rec, "only its author edits a post");
        t->text = p->text;
        t->edited = true;
        t->edits.push_back(e.id);
        ConversationAction a = action(rec);
        a.target_event = p->target;
        c_.actions.push_back(std::move(a));
        return;
      }
      case EventKind::del:
      case EventKind::redact: {
        auto p = open_as<TargetPlain>(rec, decode_target_plain);
        if (!p) return refuse(rec, "unreadable");
        std::string why;
        PostView* t = live_target(rec, p->target, why);
        if (!t) return refuse(rec, why);
        // Group checked that a redaction's author is a moderator (with the grant, not revoked).
        if (e.kind == EventKind::del && t->author != e.author)
          return refuse(rec, "only its author deletes a post (moderators redact)");
        t->deleted = true;
        t->text.reset();
        t->reactions.clear();
        t->removed_by = e.id;
        if (e.kind == EventKind::redact) t->redacted_by = e.author;
        ConversationAction a = action(rec);
        a.target_event = p->target;
        a.moderation = e.kind == EventKind::redact;
        c_.actions.push_back(std::move(a));
        return;
      }
      case EventKind::ban:
      case EventKind::remove:
      case EventKind::set_role: {
        ConversationAction a = action(rec);
        a.target_member = rec.target;
        a.on = e.kind != EventKind::ban || rec.banned;
        if (e.kind == EventKind::set_role) a.detail = role_name(rec.role);
        a.moderation = true;
        c_.actions.push_back(std::move(a));
        return;
      }
      case EventKind::set_settings:
      case EventKind::set_name:
      case EventKind::set_topic: {
        ConversationAction a = action(rec);
        a.moderation = true;
        c_.actions.push_back(std::move(a));
        return;
      }
      case EventKind::set_nick: {
        c_.actions.push_back(action(rec));
        return;
      }
      default:
        return;
    }
  }

  void fold_post(const EventRecord& rec) {
    const Event& e = rec.event;
    PostView v;
    v.id = e.id;
    v.author = e.author;
    v.time_ms = e.time_ms;
    v.order_key = rec.order_key;
    v.channel = g_.id();
    if (auto why = muted(rec)) return refuse(rec, *why);
    if (auto p = open_as<PostPlain>(rec, decode_post_plain)) {
      // A reply answers a post its author had seen.
      if (p->reply_to) {
        const EventRecord* parent = g_.find(*p->reply_to);
        if (!parent || parent->event.kind != EventKind::post || *p->reply_to == e.id ||
            !g_.is_ancestor(*p->reply_to, e.id))
          return refuse(rec, "replies to a post its author had not seen");
      }
      const ChannelView* ch = c_.channel(p->channel);
      if (!ch) {
        // A channel event this node cannot read (its key predates our joining) still made a
        // channel: the group accepted it from an admin. Anything else is no channel.
        const EventRecord* made = g_.find(p->channel);
        if (!made || !made->accepted || made->event.kind != EventKind::channel ||
            open_(made->event))
          return refuse(rec, "no such channel");
        c_.channels.push_back(ChannelView{p->channel, std::nullopt, false});
        ch = &c_.channels.back();
      }
      if (ch->archived) return refuse(rec, "channel archived");
      v.readable = true;
      v.channel = p->channel;
      v.reply_to = p->reply_to;
      v.action = p->action;
      v.text = std::move(p->text);
    }
    c_.post_index[v.id] = c_.posts.size();
    c_.posts.push_back(std::move(v));
  }

  bool name_taken(const std::string& name) const {
    for (const auto& c : c_.channels)
      if (!c.archived && c.name && *c.name == name) return true;
    return false;
  }

  void fold_channel(const EventRecord& rec) {
    auto p = open_as<ChannelPlain>(rec, decode_channel_plain);
    if (!p) return refuse(rec, "unreadable");
    ConversationAction a = action(rec);
    a.channel_op = p->op;
    a.detail = p->name;
    a.moderation = true;
    if (p->op == ChannelOp::create) {
      if (c_.channels.size() >= limits::channels_max)
        return refuse(rec, "the group holds " + std::to_string(limits::channels_max) +
                               " channels already");
      if (name_taken(p->name)) return refuse(rec, "a channel of that name exists");
      c_.channels.push_back(ChannelView{rec.event.id, p->name, false});
      a.target_event = rec.event.id;
      c_.actions.push_back(std::move(a));
      return;
    }
    ChannelView* ch = nullptr;
    for (auto& c : c_.channels)
      if (c.id == *p->channel) ch = &c;
    if (!ch) return refuse(rec, "no such channel");
    if (ch->archived) return refuse(rec, "channel archived");
    if (p->op == ChannelOp::rename) {
      if (name_taken(p->name)) return refuse(rec, "a channel of that name exists");
      ch->name = p->name;
    } else {
      if (ch->id == g_.id()) return refuse(rec, "#general cannot be archived");
      ch->archived = true;
    }
    a.target_event = ch->id;
    c_.actions.push_back(std::move(a));
  }

  const Group& g_;
  const GroupState& s_;
  const OpenFn& open_;
  const ConversationScope scope_;
  Conversation& c_;
  std::map<PublicKey, std::vector<MuteWindow>>& windows_;
  std::map<Hash, ConversationAction>& mute_actions_;
};

// Whether an accepted event of this kind, appended to the history, can be folded onto the
// conversation folded so far with the same result as folding everything again. Pass 1 reads
// every mute and judges each against the roles and membership at the end of the log, so a mute
// and any event that changes roles or membership (set-role, add, join, remove, leave, ban,
// close-invite, which may close joins) needs the whole fold. The rest acts only at its place.
bool appendable(EventKind kind) {
  switch (kind) {
    case EventKind::post:
    case EventKind::react:
    case EventKind::edit:
    case EventKind::del:
    case EventKind::redact:
    case EventKind::channel:
    case EventKind::set_nick:
    case EventKind::set_name:
    case EventKind::set_topic:
    case EventKind::set_settings:
    case EventKind::invite:
    case EventKind::rekey:
    case EventKind::relay:
      return true;
    default:
      return false;
  }
}

}  // namespace

Conversation build_conversation(const Group& group, const OpenFn& open, ConversationScope scope) {
  FoldState state;
  Fold fold(group, open, scope, state);
  fold.start();
  fold.fold_range(0, group.state().history.size());
  fold.finish();
  return std::move(state.c);
}

ConversationCache::ConversationCache(ConversationScope scope) : scope_(scope) {}
ConversationCache::~ConversationCache() = default;
ConversationCache::ConversationCache(ConversationCache&&) noexcept = default;
ConversationCache& ConversationCache::operator=(ConversationCache&&) noexcept = default;

const Conversation& ConversationCache::get(const Group& group, const OpenFn& open,
                                           std::uint64_t generation) {
  const std::vector<Hash>& history = group.state().history;
  const bool same_prefix = state_ && group_ == &group && generation_ == generation &&
                           folded_ <= history.size() &&
                           (folded_ == 0 || history[folded_ - 1] == last_);
  if (same_prefix) {
    if (folded_ == history.size()) {
      ++stats_.hits;
      return state_->c;
    }
    bool append = true;
    for (std::size_t i = folded_; i < history.size() && append; ++i)
      append = appendable(group.find(history[i])->event.kind);
    if (append) {
      Fold(group, open, scope_, *state_).fold_range(folded_, history.size());
      ++stats_.incremental;
      folded_ = history.size();
      last_ = history.back();
      return state_->c;
    }
  }
  state_ = std::make_unique<FoldState>();
  Fold fold(group, open, scope_, *state_);
  fold.start();
  fold.fold_range(0, history.size());
  fold.finish();
  ++stats_.full;
  group_ = &group;
  generation_ = generation;
  folded_ = history.size();
  last_ = history.empty() ? Hash{} : history.back();
  return state_->c;
}

}  // namespace qun
