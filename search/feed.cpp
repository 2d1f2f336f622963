#include "search/feed.h"

#include <algorithm>

namespace qun::search {
namespace {

// Kinds whose arrival cannot change what earlier posts show: posts themselves (put as they
// come), reactions and nicks (the index holds neither). Everything else marks a resync.
bool changes_nothing_shown(EventKind k) {
  return k == EventKind::post || k == EventKind::react || k == EventKind::set_nick;
}

}  // namespace

std::vector<Post> readable_posts(const Replica& r) { return readable_posts(r, r.conversation()); }

std::vector<Post> readable_posts(const Replica& r, const Conversation& c) {
  std::vector<Post> out;
  out.reserve(c.posts.size());
  for (const PostView& v : c.posts) {
    if (!v.text || v.deleted) continue;
    out.push_back(Post{v.id, r.id(), v.channel, v.author, v.time_ms, v.order_key, *v.text});
  }
  return out;
}

Indexer::Indexer(std::string path, Hooks hooks, LogSink log)
    : path_(std::move(path)), hooks_(std::move(hooks)), log_(std::move(log)) {}

void Indexer::open() {
  index_.reset();
  auto opened = Index::open(path_);
  if (!opened.ok()) {
    unavailable_ = opened.error().context();
    log_(LogRecord{LogLevel::error, "search",
                   "search is off: " + *unavailable_ + "; the node runs on without it"});
    return;
  }
  index_ = std::move(opened).value();
  unavailable_.reset();
  filling_.clear();
  if (const auto& why = index_->rebuilt_because(); why && *why != "created")
    log_(LogRecord{LogLevel::warn, "search",
                   "search index " + path_ + " rebuilt: " + *why + "; it fills again from the store"});
  const std::vector<Hash> held = hooks_.groups();
  dirty_ = std::set<Hash>(held.begin(), held.end());
  if (auto indexed = index_->groups(); indexed.ok()) {
    for (const Hash& g : indexed.value())
      if (!dirty_.count(g)) (void)index_->drop_group(g);
  } else {
    failed(indexed.error());
  }
}

void Indexer::failed(const Error& e) {
  if (e.code() == Errc::malformed) {
    log_(LogRecord{LogLevel::warn, "search",
                   "search index damaged (" + e.context() + "); rebuilding it"});
    index_.reset();
    Index::remove_files(path_);
    open();
    return;
  }
  if (!failing_)
    log_(LogRecord{LogLevel::warn, "search",
                   "search index not updated: " + e.context() + "; retrying every second"});
  failing_ = true;
}

void Indexer::succeeded() {
  if (failing_) log_(LogRecord{LogLevel::info, "search", "search index updated again"});
  failing_ = false;
}

void Indexer::on_delivered(const Replica& r, std::span<const Hash> events) {
  if (!index_) return;
  const Hash g = r.id();
  std::vector<Post> posts;
  std::vector<Post> edited;
  std::vector<Hash> removed;
  std::optional<Conversation> own;  // a fold of its own, without the conversation hook
  const Conversation* conv = nullptr;
  for (const Hash& id : events) {
    auto m = r.message(id);
    if (!m) continue;
    if (!changes_nothing_shown(m->kind)) {
      dirty_.insert(g);
      // Edits and deletions show at once (the resync confirms them within a tick): the fold
      // refuses an edit by anyone but the author, which is checked here too; a deletion the
      // fold refuses (not the author's, not a moderator's) comes back with the resync.
      const auto target = m->target_event ? r.message(*m->target_event) : std::nullopt;
      if (!target || target->kind != EventKind::post) continue;
      if (m->kind == EventKind::del || m->kind == EventKind::redact) {
        removed.push_back(target->id);
      } else if (m->kind == EventKind::edit && m->text && target->author == m->author) {
        edited.push_back(Post{target->id, g, target->channel.value_or(g), target->author,
                              target->time_ms, target->order_key, *m->text});
      }
      continue;
    }
    if (m->kind != EventKind::post || !m->text || !m->stored) continue;
    // As the message stream: a muted author's post, or one to a channel archived or unknown
    // here, is not shown (the resync after the mute or the channel event settles the rest).
    if (!conv) {
      if (hooks_.conversation) {
        conv = &hooks_.conversation(r, ConversationScope::channels_and_mutes);
      } else {
        own = r.conversation(ConversationScope::channels_and_mutes);
        conv = &*own;
      }
    }
    if (conv->muted(m->author, m->order_key)) continue;
    const Hash channel = m->channel.value_or(g);
    const ChannelView* ch = conv->channel(channel);
    if (!ch) {
      dirty_.insert(g);  // a channel this node cannot read: the fold decides
      continue;
    }
    if (ch->archived) continue;
    posts.push_back(Post{m->id, g, channel, m->author, m->time_ms, m->order_key, *m->text});
  }
  if (posts.empty() && edited.empty() && removed.empty()) return;
  pending_groups_.insert(g);
  puts_.insert(puts_.end(), std::make_move_iterator(posts.begin()), std::make_move_iterator(posts.end()));
  edits_.insert(edits_.end(), std::make_move_iterator(edited.begin()), std::make_move_iterator(edited.end()));
  removals_.insert(removals_.end(), removed.begin(), removed.end());
  if (puts_.size() + edits_.size() + removals_.size() >= pending_posts_max) flush();
}

void Indexer::flush() {
  if (!index_ || (puts_.empty() && edits_.empty() && removals_.empty())) return;
  const std::vector<Post> puts = std::move(puts_);
  const std::vector<Post> edits = std::move(edits_);
  const std::vector<Hash> removals = std::move(removals_);
  const std::set<Hash> groups = std::move(pending_groups_);
  puts_.clear();
  edits_.clear();
  removals_.clear();
  pending_groups_.clear();
  auto done = index_->put(puts);
  if (done.ok()) done = index_->update_existing(edits);
  if (done.ok()) done = index_->remove(removals);
  if (!done.ok()) {
    // A resync of each group rebuilds what did not go in.
    dirty_.insert(groups.begin(), groups.end());
    return failed(done.error());
  }
  succeeded();
}

void Indexer::forget(const Hash& g) {
  dirty_.erase(g);
  filling_.erase(g);
  // What waits for this group goes with it (removals are of its posts too, harmless to keep).
  auto of_g = [&](const Post& p) { return p.group == g; };
  puts_.erase(std::remove_if(puts_.begin(), puts_.end(), of_g), puts_.end());
  edits_.erase(std::remove_if(edits_.begin(), edits_.end(), of_g), edits_.end());
  pending_groups_.erase(g);
  if (!index_) return;
  if (auto done = index_->drop_group(g); !done.ok()) return failed(done.error());
  succeeded();
}

void Indexer::resync(const Hash& g) {
  flush();
  if (!index_) return;
  const Replica* r = hooks_.replica(g);
  if (!r) {
    dirty_.erase(g);
    if (auto done = index_->drop_group(g); !done.ok()) return failed(done.error());
    return;
  }
  std::vector<Post> posts =
      hooks_.conversation ? readable_posts(*r, hooks_.conversation(*r, ConversationScope::full))
                          : readable_posts(*r);
  std::size_t bytes = 0;
  for (const Post& p : posts) bytes += p.text.size();
  if (bytes > fill_slice_bytes) {
    auto rows = index_->size(g);
    if (!rows.ok()) return failed(rows.error());
    if (rows.value() == 0) {
      // None of it is in: fill it a slice at a time (tick).
      dirty_.erase(g);
      filling_[g] = Fill{std::move(posts), 0};
      return;
    }
  }
  auto done = index_->sync_group(g, posts);
  if (!done.ok()) return failed(done.error());
  dirty_.erase(g);
  succeeded();
  const SyncStats& s = done.value();
  if (s.added + s.changed + s.removed > 0)
    log_(LogRecord{LogLevel::debug, "search",
                   "group " + short_hex(g) + " resynced: " + std::to_string(s.added) + " added, " +
                       std::to_string(s.changed) + " changed, " + std::to_string(s.removed) +
                       " removed"});
}

bool Indexer::fill_slice(const Hash& g) {
  auto it = filling_.find(g);
  if (it == filling_.end()) return true;
  Fill& f = it->second;
  std::size_t n = 0;
  for (std::size_t bytes = 0; f.next + n < f.posts.size() && bytes < fill_slice_bytes; ++n)
    bytes += f.posts[f.next + n].text.size();
  if (auto done = index_->put(std::span<const Post>(f.posts).subspan(f.next, n)); !done.ok()) {
    failed(done.error());  // may rebuild the index, which clears filling_
    return false;
  }
  succeeded();
  f.next += n;
  if (f.next < f.posts.size()) return true;
  log_(LogRecord{
      LogLevel::debug, "search",
      "group " + short_hex(g) + " indexed: " + std::to_string(f.posts.size()) + " posts"});
  filling_.erase(it);
  return true;
}

void Indexer::tick() {
  flush();
  if (!index_) return;
  const auto start = std::chrono::steady_clock::now();
  auto spent = [&] { return std::chrono::steady_clock::now() - start >= tick_budget; };
  // A copy: a failure may rebuild the index and mark every group again. A group being filled
  // is resynced once its fill is done.
  const std::vector<Hash> marked(dirty_.begin(), dirty_.end());
  for (const Hash& g : marked) {
    if (!index_ || spent()) return;
    if (!dirty_.count(g) || filling_.count(g)) continue;
    resync(g);
  }
  while (index_ && !filling_.empty() && !spent()) {
    const Hash g = filling_.begin()->first;  // a copy: the slice may erase its entry
    if (!fill_slice(g)) return;
  }
}

std::size_t Indexer::pending() const {
  std::size_t n = dirty_.size();
  for (const auto& [g, f] : filling_) n += dirty_.count(g) ? 0 : 1;
  return n;
}

Result<std::vector<Hit>> Indexer::search(const Query& query) {
  if (!index_)
    return Error(Errc::internal, "search is not available on this node: " +
                                     unavailable_.value_or("the index did not open"));
  flush();
  if (!index_) return Error(Errc::internal, "search is not available on this node: the index is being rebuilt");
  auto hits = index_->search(query);
  if (!hits.ok() && hits.error().code() != Errc::invalid_argument &&
      hits.error().code() != Errc::too_large) {
    const Error e = hits.error();
    failed(e);
    return Error(e.code(), "search failed: " + e.context() +
                               (e.code() == Errc::malformed ? "; the index is being rebuilt, try again in a moment" : ""));
  }
  return hits;
}

}  // namespace qun::search
