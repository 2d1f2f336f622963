#include "node/replica.h"

#include <algorithm>
#include <cassert>
#include <iterator>

#include <cstdio>

#include "crypto/seal.h"
#include "base/utf8.h"
#include "node/limits.h"

namespace qun {
namespace {

// Text this node authors is valid UTF-8 without control characters (a post may hold newlines
// and tabs), so what others show is what the author typed and no escape sequence rides along.
// Readers still neutralise both (a peer's implementation may not check), this only keeps our
// own events clean and tells the author at once. `what` names the text in the error.
Result<void> check_text(std::string_view text, const char* what, bool allow_line_breaks) {
  if (auto bad = utf8::first_invalid(text))
    return Error(Errc::invalid_argument, std::string(what) + " is not valid UTF-8 (at byte " +
                                             std::to_string(*bad) + "); send UTF-8 text");
  if (auto c = utf8::first_control(text, allow_line_breaks)) {
    char code[16];
    std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(*c));
    return Error(Errc::invalid_argument,
                 std::string(what) + " holds the control character " + code + "; remove it" +
                     (allow_line_breaks ? " (newlines and tabs are fine)" : ""));
  }
  return ok_result();
}

}  // namespace

Hash key_id(const SymmetricKey& key) {
  Hasher h;
  h.update(as_bytes("qun-key-id-v1"));
  h.update(key.view());
  return h.finish();
}

bool Keyring::add(std::uint64_t epoch, const Hash& source, const SymmetricKey& key) {
  auto& slot = keys_[epoch];
  if (slot.count(source)) return false;
  slot.emplace(source, key.clone());
  return true;
}

const SymmetricKey* Keyring::find(std::uint64_t epoch, const Hash& source) const {
  auto e = keys_.find(epoch);
  if (e == keys_.end()) return nullptr;
  auto k = e->second.find(source);
  return k == e->second.end() ? nullptr : &k->second;
}

std::vector<const SymmetricKey*> Keyring::for_epoch(std::uint64_t epoch) const {
  std::vector<const SymmetricKey*> out;
  auto e = keys_.find(epoch);
  if (e != keys_.end())
    for (const auto& [source, key] : e->second) out.push_back(&key);
  return out;
}

std::vector<BundleKey> Keyring::bundle(std::size_t epochs_max) const {
  std::vector<BundleKey> out;
  std::size_t epochs = 0;
  for (auto e = keys_.rbegin(); e != keys_.rend() && epochs < epochs_max; ++e, ++epochs) {
    for (const auto& [source, key] : e->second) out.push_back({e->first, source, key.clone()});
  }
  return out;
}

std::size_t Keyring::size() const {
  std::size_t n = 0;
  for (const auto& [e, m] : keys_) n += m.size();
  return n;
}

Replica::Replica(const Hash& group, const SigningKey* self) : group_(group), self_(self) {}

bool Replica::verified(std::uint64_t epoch, const Hash& source, const SymmetricKey& key) const {
  const EventRecord* rec = group_.find(source);
  if (!rec || !rec->key_check || rec->event.epoch != epoch) return false;
  // A create's check is over an all-zero group: its id is not known before it is signed.
  const Hash group = rec->event.kind == EventKind::create ? Hash{} : group_.id();
  return key_check(key, group, epoch) == *rec->key_check;
}

void Replica::learn(std::uint64_t epoch, const Hash& source, const SymmetricKey& key) {
  // A key that does not match its event's commitment (a junk or per-member-wrong box, or a
  // wrong key in a bundle) is never used, to read or to post.
  if (!verified(epoch, source, key)) {
    ++keys_refused_;
    return;
  }
  if (keys_.add(epoch, source, key)) {
    new_keys_.push_back({epoch, source, key.clone()});
    ++fold_generation_;
  }
}

void Replica::restore_key(std::uint64_t epoch, const Hash& source, const SymmetricKey& key) {
  if (keys_.add(epoch, source, key)) ++fold_generation_;
}

Replica Replica::clone_for(const SigningKey* self) const {
  Replica out(group_.id(), self);
  out.group_ = group_;
  if (self) {
    for (const auto* rec : out.group_.ordered()) out.absorb(*rec);
  }
  return out;
}

std::vector<BundleKey> Replica::take_new_keys() { return std::exchange(new_keys_, {}); }

void Replica::absorb(const EventRecord& rec) {
  const Event& e = rec.event;
  auto open_key = [&](ByteView box, const SigningKey& with) -> std::optional<SymmetricKey> {
    auto plain = seal_open(with, box);
    if (!plain.ok() || plain->size() != 32) return std::nullopt;
    SymmetricKey k;
    std::copy(plain->begin(), plain->end(), k.data());
    sodium_memzero(plain->data(), plain->size());
    return k;
  };
  auto open_bundle = [&](const Bytes& plain) {
    auto keys = decode_bundle(plain);
    if (keys.ok())
      for (const auto& k : *keys) learn(k.epoch, k.source, k.key);
  };
  auto open_entries = [&](const RekeyPayload& p) {
    if (self_) {
      for (const auto& entry : p.members) {
        if (entry.recipient != self_->public_key()) continue;
        if (auto k = open_key(entry.box, *self_)) learn(e.epoch, e.id, *k);
      }
    }
    for (const auto& entry : p.invites) {
      auto secret = invite_secrets_.find(entry.recipient);
      if (secret == invite_secrets_.end()) continue;
      if (auto k = open_key(entry.box, invite_signing_key(secret->second))) learn(e.epoch, e.id, *k);
    }
  };
  switch (e.kind) {
    case EventKind::create:
      if (self_ && e.author == self_->public_key()) {
        if (auto k = open_key(decode_create(e.payload)->founder_box, *self_)) learn(e.epoch, e.id, *k);
      }
      break;
    case EventKind::invite: {
      auto secret = invite_secrets_.find(rec.invite->invite_key);
      if (secret == invite_secrets_.end()) break;
      auto plain = aead_decrypt(invite_bundle_key(secret->second), rec.invite->bundle.nonce,
                                content_ad(e.kind, e.group, e.author, e.epoch),
                                rec.invite->bundle.data);
      if (plain.ok()) open_bundle(*plain);
      break;
    }
    case EventKind::add:
      if (self_ && *rec.target == self_->public_key()) {
        auto plain = seal_open(*self_, decode_add(e.payload)->bundle_box);
        if (plain.ok()) open_bundle(*plain);
      }
      break;
    case EventKind::remove:
      open_entries(decode_remove(e.payload)->keys);
      break;
    case EventKind::rekey:
      open_entries(*decode_rekey(e.payload));
      break;
    case EventKind::key_part:
      // Entries for the key of the part's key event (admission checked it is one, by the same
      // author and in the same epoch): a key opened here is verified against that event's check.
      if (self_) {
        const auto part = decode_key_part(e.payload);
        for (const auto& entry : part->members) {
          if (entry.recipient != self_->public_key()) continue;
          if (auto k = open_key(entry.box, *self_)) learn(e.epoch, *rec.key_event, *k);
        }
      }
      break;
    default:
      break;
  }
}

IngestReport Replica::ingest(std::vector<Event> events, std::optional<PublicKey> from,
                             Signatures signatures) {
  const auto resolved_before = group_.resolve_stats();
  IngestReport report = group_.ingest(std::move(events), std::move(from), signatures);
  // Anything but a continued resolution (a late event sorting earlier, a revocation reaching
  // back) or a restored payload may change what the conversation fold saw before.
  const auto& resolved = group_.resolve_stats();
  if (resolved.full != resolved_before.full ||
      resolved.from_checkpoint != resolved_before.from_checkpoint ||
      !report.payloads_restored.empty())
    ++fold_generation_;
  const std::size_t keys_before = keys_.size();
  if (self_ || !invite_secrets_.empty()) {
    for (const auto& id : report.admitted) absorb(*group_.find(id));
  }
  if (self_) {
    drop_removed(report, keys_before);
    for (Hash& id : take_payloads_dropped()) report.payloads_dropped.push_back(id);
  }
  return report;
}

void Replica::drop_removed(const IngestReport& report, std::size_t keys_before) {
  // A fold (one decryption per post and conversation event) only when something may have
  // removed a post: a delete or redaction; once the group has one, any event that may change
  // what the fold accepts (a mute, channel, role or membership change, which can make an
  // earlier deletion take effect); a payload restored by a full copy; or a new key that may
  // open a deletion. Posts, reactions and edits, the common case, need none: an edit is
  // checked against the posts known removed.
  bool refold = !report.payloads_restored.empty();
  std::vector<const EventRecord*> edits;
  for (const Hash& id : report.admitted) {
    const EventRecord* rec = group_.find(id);
    if (!rec || !rec->accepted) continue;
    const EventKind kind = rec->event.kind;
    if (kind == EventKind::del || kind == EventKind::redact) refold = has_removals_ = true;
    if (kind == EventKind::edit) edits.push_back(rec);
    if (has_removals_ && kind != EventKind::post && kind != EventKind::react &&
        kind != EventKind::edit)
      refold = true;
  }
  if (has_removals_ && keys_.size() != keys_before) refold = true;
  if (!refold) {
    for (const EventRecord* rec : edits) drop_if_edit_of_removed(*rec);
    return;
  }
  const Conversation c = conversation();
  for (const PostView& p : c.posts)
    if (p.deleted) removed_posts_.insert(p.id);
  if (removed_posts_.empty()) return;
  for (const Hash& id : state().history) {
    const EventRecord& rec = *group_.find(id);
    if (rec.event.kind == EventKind::post && removed_posts_.count(id)) {
      if (group_.drop_payload(id)) {
        dropped_.push_back(id);
        ++fold_generation_;
      }
    } else if (rec.event.kind == EventKind::edit) {
      drop_if_edit_of_removed(rec);
    }
  }
}

void Replica::drop_if_edit_of_removed(const EventRecord& rec) {
  // Any edit naming a removed post, accepted or not: its text is a version of the post (or
  // claims to be), and it goes with the post.
  if (rec.event.payload_dropped || removed_posts_.empty()) return;
  auto plain = open(rec.event);
  if (!plain) return;
  auto p = decode_edit_plain(*plain);
  if (p.ok() && removed_posts_.count(p->target) && group_.drop_payload(rec.event.id)) {
    dropped_.push_back(rec.event.id);
    ++fold_generation_;
  }
}

void Replica::hold_invite(const InviteCode& code) {
  auto key = invite_signing_key(code.secret);
  invite_secrets_.emplace(key.public_key(), code.secret.clone());
  last_held_ = key.public_key();
  // Open what is already here: the invite's bundle and rekeys sealed to the invite since.
  for (const auto* rec : group_.ordered()) absorb(*rec);
}

std::optional<std::pair<PublicKey, Signature>> Replica::holder_proof() const {
  // Also once our own join is in our state: peers that have not seen it yet sync with us only
  // on the invite (node.cpp, may_sync), and those that have see a member.
  if (!self_ || invite_secrets_.empty()) return {};
  // An invite open in our state beats one we have not seen yet (a new code, its event still to
  // come), which beats a closed one (the code a former member joined with the first time).
  auto rank_of = [&](const PublicKey& invite_key) {
    for (const auto& [iid, inv] : state().invites)
      if (inv.invite_key == invite_key) return !inv.revoked && inv.uses < inv.uses_max ? 2 : 0;
    return 1;
  };
  const PublicKey* chosen = nullptr;
  int chosen_rank = -1;
  for (const auto& [key, secret] : invite_secrets_) {
    const int r = rank_of(key) * 2 + (last_held_ && *last_held_ == key ? 1 : 0);
    if (r > chosen_rank) {
      chosen = &key;
      chosen_rank = r;
    }
  }
  const SigningKey invite_key = invite_signing_key(invite_secrets_.at(*chosen));
  return std::make_pair(invite_key.public_key(),
                        invite_key.sign(join_proof_message(group_.id(), self_->public_key())));
}

Event Replica::draft(Authoring& a, EventKind kind, std::uint64_t epoch) const {
  Event e;
  e.group = kind == EventKind::create ? Hash{} : group_.id();
  e.author = a.key.public_key();
  e.kind = kind;
  e.epoch = epoch;
  if (kind != EventKind::create) {
    e.parents = group_.next_parents();
    e.depth = group_.next_depth(e.parents);
  }
  e.time_ms = a.now_ms;
  return e;
}

Result<Event> Replica::sign_checked(Authoring& a, Event e) const {
  sign_event(e, a.key);
  if (e.encoded_bytes > limits::event_bytes_max) {
    return Error(Errc::too_large, std::string(event_kind_name(e.kind)) + " event of " +
                                      std::to_string(e.encoded_bytes) + " bytes");
  }
  // A refused action must leave no trace: resolve it on a copy first. Posts by members (checked
  // by the caller) are always accepted, so the common path skips the copy.
  if (e.kind != EventKind::post) {
    Group trial = group_;
    auto trial_report = trial.ingest({e});
    const EventRecord* rec = trial.find(e.id);
    if (!trial_report.rejected.empty()) {
      return Error(Errc::internal, "own event rejected: " + trial_report.rejected.front().second);
    }
    if (!rec || !rec->accepted) {
      return Error(Errc::unauthorized, rec ? rec->why_not : std::string("not admitted"));
    }
  }
  return e;
}

Result<Event> Replica::finish(Authoring& a, Event e) {
  QUN_TRY(e, sign_checked(a, std::move(e)));
  auto report = ingest({e});
  // An own delete or redaction dropped its post's payload: kept for take_payloads_dropped.
  for (const Hash& id : report.payloads_dropped) dropped_.push_back(id);
  if (!report.rejected.empty()) {
    return Error(Errc::internal, "own event rejected: " + report.rejected.front().second);
  }
  const EventRecord* rec = group_.find(e.id);
  if (!rec) return Error(Errc::internal, "own event not admitted");
  if (!rec->accepted) return Error(Errc::unauthorized, rec->why_not);
  return e;
}

Result<Ciphertext> Replica::encrypt(Authoring& a, EventKind kind, std::uint64_t epoch,
                                    ByteView plain) {
  const SymmetricKey* key = nullptr;
  const auto& s = state();
  // Only the key resolution chose: any other key of this epoch may have reached a non-member.
  if (s.current_key_event && epoch == s.epoch) key = keys_.find(epoch, *s.current_key_event);
  if (!key) {
    return Error(Errc::not_found, "this node does not hold the group key for epoch " +
                                      std::to_string(epoch) + " yet");
  }
  Ciphertext c;
  c.nonce = random_nonce(a.rng);
  c.data = aead_encrypt(*key, c.nonce, content_ad(kind, group_.id(), a.key.public_key(), epoch),
                        plain);
  return c;
}

std::optional<Bytes> Replica::decrypt(const Event& e, const Ciphertext& c) const {
  const Bytes ad = content_ad(e.kind, e.group, e.author, e.epoch);
  for (const SymmetricKey* key : keys_.for_epoch(e.epoch)) {
    auto plain = aead_decrypt(*key, c.nonce, ad, c.data);
    if (plain.ok()) return std::move(plain).value();
  }
  return std::nullopt;
}

Result<Replica> Replica::create_group(Authoring a, std::string_view name, std::string_view nick,
                                      const GroupSettings& settings) {
  if (name.empty() || name.size() > limits::name_bytes_max)
    return Error(Errc::invalid_argument, "a group name is 1 to " +
                                             std::to_string(limits::name_bytes_max) + " bytes");
  if (nick.size() > limits::nick_bytes_max)
    return Error(Errc::invalid_argument, "nick is longer than " +
                                             std::to_string(limits::nick_bytes_max) + " bytes");
  QUN_TRY_VOID(check_text(name, "the group name", false));
  QUN_TRY_VOID(check_text(nick, "the nick", false));
  SymmetricKey key = random_key(a.rng);
  CreatePayload p;
  p.settings = settings;
  QUN_TRY(auto founder_x, to_x25519(a.key.public_key()));
  p.founder_box = seal(founder_x, key.view(), a.rng);
  p.key_check = key_check(key, Hash{}, 0);
  const Bytes ad = content_ad(EventKind::create, Hash{}, a.key.public_key(), 0);
  p.name.nonce = random_nonce(a.rng);
  p.name.data = aead_encrypt(key, p.name.nonce, ad, encode_text_plain(name));
  p.profile.nonce = random_nonce(a.rng);
  p.profile.data = aead_encrypt(key, p.profile.nonce, ad, encode_text_plain(nick));
  Event e;
  e.author = a.key.public_key();
  e.kind = EventKind::create;
  e.epoch = 0;
  e.time_ms = a.now_ms;
  e.payload = encode_payload(p);
  sign_event(e, a.key);
  Replica r(e.id, &a.key);
  auto report = r.ingest({e});
  if (report.admitted.size() != 1) return Error(Errc::internal, "create event not admitted");
  return r;
}

Result<Replica> Replica::create_direct(Authoring a, std::string_view nick, const PublicKey& peer) {
  if (peer == a.key.public_key())
    return Error(Errc::invalid_argument, "a direct conversation needs another member");
  GroupSettings settings;
  settings.direct = true;
  QUN_TRY(Replica r, create_group(a, "direct", nick, settings));
  QUN_TRY(Event add, r.add(a, peer));
  (void)add;
  return r;
}

Result<void> Replica::need_member(const PublicKey& who) const {
  if (!state().is_member(who)) {
    return Error(Errc::unauthorized, "not a member of this group");
  }
  return ok_result();
}

Result<RekeyPayload> Replica::seal_new_key(Authoring& a, const SymmetricKey& key,
                                           std::uint64_t epoch,
                                           const std::optional<PublicKey>& excluded) {
  RekeyPayload p;
  p.key_check = key_check(key, group_.id(), epoch);
  for (const auto& [id, m] : state().members) {
    if (excluded && id == *excluded) continue;
    QUN_TRY(auto x, to_x25519(id));
    p.members.push_back({id, seal(x, key.view(), a.rng)});
  }
  std::optional<Hash> excluded_invite;
  if (excluded) excluded_invite = state().members.at(*excluded).joined_with;
  for (const auto& [iid, inv] : state().invites) {
    if (inv.revoked || inv.uses >= inv.uses_max || inv.expires_ms < a.now_ms) continue;
    // The excluded member knows the secrets of invites it made or joined with.
    if (excluded && (inv.creator == *excluded || excluded_invite == iid)) continue;
    if (p.invites.size() >= limits::open_invites_max) break;
    QUN_TRY(auto x, to_x25519(inv.invite_key));
    p.invites.push_back({inv.invite_key, seal(x, key.view(), a.rng)});
  }
  return p;
}

Result<std::vector<Event>> Replica::post(Authoring a, std::string_view text) {
  return post(a, text, PostOptions{});
}

Result<std::vector<Event>> Replica::author_content(Authoring& a, EventKind kind,
                                                   const Bytes& plain) {
  std::vector<Event> out;
  // A key this node cannot verify is never used: heal first, as upkeep would a moment later.
  if (auto bad = unverified_key(); bad || state().needs_rekey()) {
    QUN_TRY(auto r, start_epoch(a, EventKind::rekey, std::nullopt,
                                [](RekeyPayload keys) { return encode_payload(keys); }, bad));
    for (auto& ev : r) out.push_back(std::move(ev));
  }
  Event e = draft(a, kind, state().epoch);
  TextPayload p;
  QUN_TRY(p.text, encrypt(a, e.kind, e.epoch, plain));
  e.payload = encode_payload(p);
  QUN_TRY(auto done, finish(a, std::move(e)));
  out.push_back(std::move(done));
  return out;
}

namespace {

std::string short_id(const Hash& h) { return to_hex(h.view()).substr(0, 12); }

}  // namespace

Result<const PostView*> Replica::live_post(const Conversation& c, const Hash& post) const {
  const PostView* v = c.post(post);
  if (!v) return Error(Errc::not_found, "no post " + short_id(post) + " in this group");
  if (v->deleted) return Error(Errc::not_found, "post " + short_id(post) + " was deleted");
  return v;
}

Result<std::vector<Event>> Replica::post(Authoring a, std::string_view text,
                                         const PostOptions& options) {
  const PublicKey me = a.key.public_key();
  QUN_TRY_VOID(need_member(me));
  if (text.size() > limits::post_text_bytes_max)
    return Error(Errc::too_large, "a post is at most " +
                                      std::to_string(limits::post_text_bytes_max) + " bytes");
  QUN_TRY_VOID(check_text(text, "the post", true));
  const Conversation c = conversation(ConversationScope::channels_and_mutes);
  const auto at = group_.order_key_for(group_.next_parents(), a.now_ms);
  if (auto m = c.muted(me, at)) {
    return Error(Errc::unauthorized,
                 m->until_ms ? "you are muted in this group until " + std::to_string(*m->until_ms) +
                                   " (Unix ms)"
                             : std::string("you are muted in this group until a moderator unmutes you"));
  }
  PostPlain p;
  p.text = std::string(text);
  p.reply_to = options.reply_to;
  p.action = options.action;
  p.file = options.file;
  p.channel = options.channel.value_or(group_.id());
  if (p.reply_to) {
    const EventRecord* parent = group_.find(*p.reply_to);
    if (!parent || parent->event.kind != EventKind::post || !parent->accepted)
      return Error(Errc::not_found, "no post " + short_id(*p.reply_to) + " to reply to");
  }
  const ChannelView* ch = c.channel(p.channel);
  if (!ch) return Error(Errc::not_found, "no such channel in this group");
  if (ch->archived) return Error(Errc::unauthorized, "the channel is archived; post in another");
  return author_content(a, EventKind::post, encode_plain(p));
}

Result<std::vector<Event>> Replica::react(Authoring a, const Hash& post, std::string_view emoji,
                                          bool on) {
  const PublicKey me = a.key.public_key();
  QUN_TRY_VOID(need_member(me));
  if (emoji.empty() || emoji.size() > limits::reaction_bytes_max)
    return Error(Errc::invalid_argument, "a reaction is 1 to " +
                                             std::to_string(limits::reaction_bytes_max) +
                                             " bytes (one emoji)");
  QUN_TRY_VOID(check_text(emoji, "the reaction", false));
  const Conversation c = conversation();
  QUN_TRY(const PostView* v, live_post(c, post));
  if (c.muted(me, group_.order_key_for(group_.next_parents(), a.now_ms)))
    return Error(Errc::unauthorized, "you are muted in this group");
  auto r = v->reactions.find(std::string(emoji));
  const bool mine = r != v->reactions.end() && r->second.count(me);
  if (on && mine) return Error(Errc::invalid_argument, "you reacted with " + std::string(emoji) + " already");
  if (!on && !mine) return Error(Errc::not_found, "you have no " + std::string(emoji) + " reaction on that post");
  if (on && r == v->reactions.end() && v->reactions.size() >= limits::reactions_per_post_max)
    return Error(Errc::too_large, "that post has " +
                                      std::to_string(limits::reactions_per_post_max) +
                                      " different reactions already; add to one of them");
  return author_content(a, EventKind::react, encode_plain(ReactPlain{post, std::string(emoji), on}));
}

Result<std::vector<Event>> Replica::edit(Authoring a, const Hash& post, std::string_view text) {
  const PublicKey me = a.key.public_key();
  QUN_TRY_VOID(need_member(me));
  if (text.size() > limits::post_text_bytes_max)
    return Error(Errc::too_large, "a post is at most " +
                                      std::to_string(limits::post_text_bytes_max) + " bytes");
  QUN_TRY_VOID(check_text(text, "the post", true));
  const Conversation c = conversation();
  QUN_TRY(const PostView* v, live_post(c, post));
  if (v->author != me) return Error(Errc::unauthorized, "only its author can edit a post");
  if (c.muted(me, group_.order_key_for(group_.next_parents(), a.now_ms)))
    return Error(Errc::unauthorized, "you are muted in this group");
  return author_content(a, EventKind::edit, encode_plain(EditPlain{post, std::string(text)}));
}

Result<std::vector<Event>> Replica::delete_post(Authoring a, const Hash& post) {
  const PublicKey me = a.key.public_key();
  QUN_TRY_VOID(need_member(me));
  const Conversation c = conversation();
  QUN_TRY(const PostView* v, live_post(c, post));
  EventKind kind = EventKind::del;
  if (v->author != me) {
    if (!at_least(state().role_of(me), Role::moderator))
      return Error(Errc::unauthorized,
                   "only its author can delete a post; moderators and admins can remove anyone's");
    kind = EventKind::redact;
  }
  return author_content(a, kind, encode_plain(TargetPlain{post}));
}

Result<std::vector<Event>> Replica::mute(Authoring a, const PublicKey& member,
                                         std::uint64_t duration_ms) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (!at_least(state().role_of(a.key.public_key()), Role::moderator))
    return Error(Errc::unauthorized, "muting needs a moderator or admin");
  if (!state().is_member(member)) return Error(Errc::not_found, "not a member");
  if (member == a.key.public_key()) return Error(Errc::invalid_argument, "you cannot mute yourself");
  if (at_least(state().role_of(member), Role::moderator))
    return Error(Errc::unauthorized, "moderators and admins cannot be muted; demote them first");
  if (duration_ms > limits::mute_duration_ms_max)
    return Error(Errc::invalid_argument, "a mute lasts at most 366 days; leave out the duration "
                                         "to mute until unmuted");
  return author_content(a, EventKind::mute, encode_plain(MutePlain{member, duration_ms, true}));
}

Result<std::vector<Event>> Replica::unmute(Authoring a, const PublicKey& member) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (!at_least(state().role_of(a.key.public_key()), Role::moderator))
    return Error(Errc::unauthorized, "unmuting needs a moderator or admin");
  const Conversation c = conversation(ConversationScope::channels_and_mutes);
  if (!c.muted(member, group_.order_key_for(group_.next_parents(), a.now_ms)))
    return Error(Errc::not_found, "that member is not muted");
  return author_content(a, EventKind::mute, encode_plain(MutePlain{member, 0, false}));
}

namespace {

Result<void> check_channel_name(std::string_view name) {
  if (name.empty() || name.size() > limits::channel_name_bytes_max)
    return Error(Errc::invalid_argument, "a channel name is 1 to " +
                                             std::to_string(limits::channel_name_bytes_max) +
                                             " bytes");
  for (char ch : name)
    if (ch == ' ' || ch == '#')
      return Error(Errc::invalid_argument, "a channel name has no spaces and no '#'");
  return check_text(name, "the channel name", false);
}

}  // namespace

Result<std::vector<Event>> Replica::create_channel(Authoring a, std::string_view name) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  QUN_TRY_VOID(check_channel_name(name));
  if (!at_least(state().role_of(a.key.public_key()), Role::admin))
    return Error(Errc::unauthorized, "creating a channel needs an admin");
  const Conversation c = conversation(ConversationScope::channels_and_mutes);
  if (c.channels.size() >= limits::channels_max)
    return Error(Errc::too_large, "a group holds at most " +
                                      std::to_string(limits::channels_max) + " channels");
  if (auto ch = c.channel_named(name); ch && !ch->archived)
    return Error(Errc::invalid_argument, "a channel named " + std::string(name) + " exists");
  return author_content(a, EventKind::channel,
                        encode_plain(ChannelPlain{ChannelOp::create, std::nullopt, std::string(name)}));
}

Result<std::vector<Event>> Replica::rename_channel(Authoring a, const Hash& channel,
                                                   std::string_view name) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  QUN_TRY_VOID(check_channel_name(name));
  if (!at_least(state().role_of(a.key.public_key()), Role::admin))
    return Error(Errc::unauthorized, "renaming a channel needs an admin");
  const Conversation c = conversation(ConversationScope::channels_and_mutes);
  const ChannelView* ch = c.channel(channel);
  if (!ch) return Error(Errc::not_found, "no such channel");
  if (ch->archived) return Error(Errc::unauthorized, "the channel is archived");
  if (auto other = c.channel_named(name); other && !other->archived)
    return Error(Errc::invalid_argument, "a channel named " + std::string(name) + " exists");
  return author_content(a, EventKind::channel,
                        encode_plain(ChannelPlain{ChannelOp::rename, channel, std::string(name)}));
}

Result<std::vector<Event>> Replica::archive_channel(Authoring a, const Hash& channel) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (!at_least(state().role_of(a.key.public_key()), Role::admin))
    return Error(Errc::unauthorized, "archiving a channel needs an admin");
  const Conversation c = conversation(ConversationScope::channels_and_mutes);
  const ChannelView* ch = c.channel(channel);
  if (!ch) return Error(Errc::not_found, "no such channel");
  if (ch->archived) return Error(Errc::invalid_argument, "the channel is archived already");
  if (channel == group_.id()) return Error(Errc::invalid_argument, "#general cannot be archived");
  return author_content(a, EventKind::channel,
                        encode_plain(ChannelPlain{ChannelOp::archive, channel, std::string()}));
}

Result<std::vector<Event>> Replica::ban(Authoring a, const PublicKey& member, bool banned) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (member == a.key.public_key()) return Error(Errc::invalid_argument, "you cannot ban yourself");
  if (banned && state().banned.count(member)) return Error(Errc::invalid_argument, "already banned");
  if (!banned && !state().banned.count(member)) return Error(Errc::not_found, "not banned");
  Event e = draft(a, EventKind::ban, state().epoch);
  e.payload = encode_payload(BanPayload{member, banned});
  QUN_TRY(auto done, finish(a, std::move(e)));
  std::vector<Event> out{std::move(done)};
  // The banned member held the current key: the next epoch starts now, not at the next post.
  if (state().needs_rekey()) {
    QUN_TRY(auto r, start_epoch(a, EventKind::rekey, std::nullopt,
                                [](RekeyPayload keys) { return encode_payload(keys); }));
    for (auto& ev : r) out.push_back(std::move(ev));
  }
  return out;
}

Result<std::vector<Event>> Replica::set_nick(Authoring a, std::string_view nick) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (nick.empty() || nick.size() > limits::nick_bytes_max)
    return Error(Errc::invalid_argument,
                 "a nick is 1 to " + std::to_string(limits::nick_bytes_max) + " bytes");
  QUN_TRY_VOID(check_text(nick, "the nick", false));
  return author_content(a, EventKind::set_nick, encode_text_plain(nick));
}

Result<Event> Replica::set_settings(Authoring a, const GroupSettings& settings) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  Event e = draft(a, EventKind::set_settings, state().epoch);
  e.payload = encode_payload(SettingsPayload{settings});
  return finish(a, std::move(e));
}

std::optional<Bytes> Replica::open(const Event& e) const {
  auto p = decode_text(e.payload);
  if (!p.ok()) return std::nullopt;
  return decrypt(e, p->text);
}

Conversation Replica::conversation(ConversationScope scope) const {
  return build_conversation(group_, [this](const Event& e) { return open(e); }, scope);
}

Result<std::pair<Event, InviteCode>> Replica::invite(Authoring a, std::uint32_t uses_max,
                                                     std::uint64_t expires_ms,
                                                     std::vector<std::string> peers) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (uses_max == 0 || uses_max > limits::invite_uses_max)
    return Error(Errc::invalid_argument,
                 "an invite has 1 to " + std::to_string(limits::invite_uses_max) + " uses");
  if (peers.size() > invite_peers_max) peers.resize(invite_peers_max);
  InviteCode code;
  code.group = group_.id();
  a.rng.fill(code.secret.mut_view());
  code.peers = std::move(peers);
  InvitePayload p;
  p.invite_key = invite_signing_key(code.secret).public_key();
  p.uses_max = uses_max;
  p.expires_ms = expires_ms;
  // History visible: every key this node holds; otherwise only the current epoch's.
  std::vector<BundleKey> keys = keys_.bundle(limits::bundle_epochs_max);
  if (!state().settings.history_visible) {
    std::erase_if(keys, [&](const BundleKey& k) { return k.epoch != state().epoch; });
  }
  Event e = draft(a, EventKind::invite, state().epoch);
  p.bundle.nonce = random_nonce(a.rng);
  p.bundle.data = aead_encrypt(invite_bundle_key(code.secret), p.bundle.nonce,
                               content_ad(e.kind, e.group, e.author, e.epoch), encode_bundle(keys));
  e.payload = encode_payload(p);
  QUN_TRY(auto done, finish(a, std::move(e)));
  return std::make_pair(std::move(done), std::move(code));
}

Result<Event> Replica::join(Authoring a, const InviteCode& code, std::string_view nick) {
  if (code.group != group_.id()) return Error(Errc::invalid_argument, "invite is for another group");
  if (nick.size() > limits::nick_bytes_max)
    return Error(Errc::invalid_argument, "nick is too long");
  QUN_TRY_VOID(check_text(nick, "the nick", false));
  if (state().is_member(a.key.public_key())) return Error(Errc::already_exists, "already a member");
  const SigningKey invite_key = invite_signing_key(code.secret);
  const InviteInfo* invite = nullptr;
  for (const auto& [iid, inv] : state().invites)
    if (inv.invite_key == invite_key.public_key()) invite = &inv;
  if (!invite) {
    return Error(Errc::not_found, "the invite is not in this node's copy of the group yet");
  }
  if (invite->revoked || invite->uses >= invite->uses_max) {
    return Error(Errc::unauthorized, "this invite has been used up or revoked; ask for a new one");
  }
  if (invite->expires_ms < a.now_ms) {
    return Error(Errc::unauthorized, "this invite has expired; ask for a new one");
  }
  hold_invite(code);
  JoinPayload p;
  p.invite = invite->id;
  p.proof = invite_key.sign(join_proof_message(group_.id(), a.key.public_key()));
  Event e = draft(a, EventKind::join, state().epoch);
  // The join must descend from its invite; next_parents names the newest heads, which do.
  QUN_TRY(p.profile, encrypt(a, e.kind, e.epoch, encode_text_plain(nick)));
  e.payload = encode_payload(p);
  return finish(a, std::move(e));
}

Result<Event> Replica::add(Authoring a, const PublicKey& member) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (state().is_member(member)) return Error(Errc::already_exists, "already a member");
  std::vector<BundleKey> keys = keys_.bundle(limits::bundle_epochs_max);
  if (!state().settings.history_visible) {
    std::erase_if(keys, [&](const BundleKey& k) { return k.epoch != state().epoch; });
  }
  QUN_TRY(auto x, to_x25519(member));
  AddPayload p;
  p.member = member;
  p.bundle_box = seal(x, encode_bundle(keys), a.rng);
  Event e = draft(a, EventKind::add, state().epoch);
  e.payload = encode_payload(p);
  return finish(a, std::move(e));
}

Result<std::vector<Event>> Replica::start_epoch(Authoring& a, EventKind kind,
                                                const std::optional<PublicKey>& excluded,
                                                const std::function<Bytes(RekeyPayload)>& make,
                                                const std::optional<Hash>& replaces) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  SymmetricKey key = random_key(a.rng);
  const std::uint64_t epoch = state().epoch + 1;
  QUN_TRY(auto sealed, seal_new_key(a, key, epoch, excluded));
  sealed.replaces = replaces;
  // The key event keeps the first rekey_members_per_event member entries (and the invites'); the
  // rest go, in member order, into key parts that name it as their only parent.
  std::vector<KeyPartPayload> parts;
  for (std::size_t i = limits::rekey_members_per_event; i < sealed.members.size();
       i += limits::rekey_members_per_event) {
    KeyPartPayload part;
    part.index = static_cast<std::uint32_t>(parts.size() + 1);
    const std::size_t end = std::min(i + limits::rekey_members_per_event, sealed.members.size());
    part.members.assign(std::make_move_iterator(sealed.members.begin() + i),
                        std::make_move_iterator(sealed.members.begin() + end));
    parts.push_back(std::move(part));
  }
  if (sealed.members.size() > limits::rekey_members_per_event)
    sealed.members.resize(limits::rekey_members_per_event);
  assert(parts.size() <= limits::rekey_parts_max);  // members_max bounds the group
  sealed.parts = static_cast<std::uint32_t>(parts.size());
  Event e = draft(a, kind, epoch);
  e.payload = make(std::move(sealed));
  if (parts.empty()) {
    QUN_TRY(auto done, finish(a, std::move(e)));
    learn(done.epoch, done.id, key);
    return std::vector<Event>{std::move(done)};
  }
  // Check the key event on a copy, sign every part, then ingest them together, so that a
  // refused removal leaves no trace. Parts of an accepted key event by a member are accepted.
  QUN_TRY(auto head, sign_checked(a, std::move(e)));
  std::vector<Event> out{head};
  for (auto& part : parts) {
    part.key_event = head.id;
    Event p;
    p.group = group_.id();
    p.author = a.key.public_key();
    p.parents = {head.id};
    p.depth = head.depth + 1;
    p.time_ms = a.now_ms;
    p.kind = EventKind::key_part;
    p.epoch = epoch;
    p.payload = encode_payload(part);
    sign_event(p, a.key);
    if (p.encoded_bytes > limits::event_bytes_max)
      return Error(Errc::internal, "key part of " + std::to_string(p.encoded_bytes) + " bytes");
    out.push_back(std::move(p));
  }
  auto report = ingest(out);
  if (!report.rejected.empty())
    return Error(Errc::internal, "own key event rejected: " + report.rejected.front().second);
  for (const auto& ev : out) {
    const EventRecord* rec = group_.find(ev.id);
    if (!rec || !rec->accepted)
      return Error(Errc::internal, "own key event not accepted: " +
                                       (rec ? rec->why_not : std::string("not admitted")));
  }
  learn(epoch, head.id, key);
  return out;
}

Result<std::vector<Event>> Replica::remove(Authoring a, const PublicKey& member) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (!state().is_member(member)) return Error(Errc::not_found, "not a member");
  return start_epoch(a, EventKind::remove, member, [&](RekeyPayload keys) {
    return encode_payload(RemovePayload{member, std::move(keys)});
  });
}

Result<std::vector<Event>> Replica::rekey(Authoring a) {
  return start_epoch(a, EventKind::rekey, std::nullopt,
                     [](RekeyPayload keys) { return encode_payload(keys); });
}

Result<Event> Replica::close_invite(Authoring a, const Hash& invite, InviteCloseReason reason) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  auto it = state().invites.find(invite);
  if (it == state().invites.end()) return Error(Errc::not_found, "no such invite in this group");
  if (it->second.revoked) return Error(Errc::already_exists, "the invite is closed already");
  Event e = draft(a, EventKind::close_invite, state().epoch);
  e.payload = encode_payload(CloseInvitePayload{invite, reason});
  return finish(a, std::move(e));
}

std::optional<Hash> Replica::unverified_key() const {
  const GroupState& s = state();
  if (!self_ || !s.created || !s.is_member(self_->public_key())) return std::nullopt;
  if (!s.current_key_event || keys_.find(s.epoch, *s.current_key_event)) return std::nullopt;
  return s.current_key_event;
}

std::uint64_t Replica::heal_turn_ms(const Hash& bad) const {
  auto rank_key = [&](const PublicKey& member) {
    Hasher h;
    h.update(as_bytes("qun heal order v1"));
    h.update(bad.view());
    h.update(member.view());
    return h.finish();
  };
  const Hash mine = rank_key(self_->public_key());
  std::uint64_t rank = 0;
  for (const auto& [id, m] : state().members)
    if (id != self_->public_key() && rank_key(id) < mine) ++rank;
  return std::min(rank, limits::heal_ranks_max) * limits::heal_slot_ms;
}

std::vector<Event> Replica::upkeep(Authoring a) {
  std::vector<Event> out;
  const GroupState& s = state();
  if (!self_ || !s.is_member(a.key.public_key())) {
    heal_due_.reset();
    close_due_.clear();
    return out;
  }
  // Healing: a rekey at the next epoch, sealed to every member and open invite, naming the bad
  // key event. Members blinded by the same event take turns (heal_turn_ms); a heal that arrives
  // first gives this node a verified key and cancels its own.
  if (auto bad = unverified_key()) {
    if (!heal_due_ || heal_due_->first != *bad)
      heal_due_ = {*bad, a.now_ms + heal_turn_ms(*bad) + a.rng.uniform(limits::heal_slot_ms)};
    if (a.now_ms >= heal_due_->second) {
      heal_due_.reset();
      auto healed = start_epoch(a, EventKind::rekey, std::nullopt,
                                [](RekeyPayload keys) { return encode_payload(keys); }, bad);
      if (healed.ok())
        for (auto& ev : healed.value()) out.push_back(std::move(ev));
    }
  } else {
    heal_due_.reset();
  }
  // Closing invites that are used up or expired: the creator's node and admins' at once, other
  // members' after a random delay if nobody closed it meanwhile.
  const MemberInfo& me = s.members.at(a.key.public_key());
  const bool admin = at_least(me.role, Role::admin);
  std::vector<std::pair<Hash, InviteCloseReason>> due;
  for (const auto& [iid, inv] : s.invites) {
    std::optional<InviteCloseReason> reason;
    if (inv.revoked) {
      reason.reset();
    } else if (inv.uses >= inv.uses_max) {
      reason = InviteCloseReason::used_up;
    } else if (a.now_ms >= inv.expires_ms + limits::invite_close_grace_ms) {
      reason = InviteCloseReason::expired;
    }
    if (!reason) {
      close_due_.erase(iid);
      continue;
    }
    auto [slot, fresh] = close_due_.try_emplace(iid, a.now_ms);
    if (fresh && inv.creator != me.id && !admin) {
      slot->second += limits::close_delay_ms_min +
                      a.rng.uniform(limits::close_delay_ms_max - limits::close_delay_ms_min);
    }
    if (a.now_ms >= slot->second) due.emplace_back(iid, *reason);
  }
  // Forget timers of invites a re-fold took away (their invite event was revoked).
  std::erase_if(close_due_, [&](const auto& entry) { return !s.invites.count(entry.first); });
  for (const auto& [iid, reason] : due) {
    close_due_.erase(iid);
    auto closed = close_invite(a, iid, reason);
    if (closed.ok()) out.push_back(std::move(closed).value());
  }
  return out;
}

Result<Event> Replica::leave(Authoring a) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  Event e = draft(a, EventKind::leave, state().epoch);
  e.payload = encode_leave_payload();
  return finish(a, std::move(e));
}

Result<Event> Replica::set_role(Authoring a, const PublicKey& member, Role role) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (!state().is_member(member)) return Error(Errc::not_found, "not a member");
  SetRolePayload p{member, role};
  Event e = draft(a, EventKind::set_role, state().epoch);
  e.payload = encode_payload(p);
  return finish(a, std::move(e));
}

Result<Event> Replica::set_name(Authoring a, std::string_view name) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (name.empty() || name.size() > limits::name_bytes_max)
    return Error(Errc::invalid_argument, "a group name is 1 to " +
                                             std::to_string(limits::name_bytes_max) + " bytes");
  QUN_TRY_VOID(check_text(name, "the group name", false));
  Event e = draft(a, EventKind::set_name, state().epoch);
  TextPayload p;
  QUN_TRY(p.text, encrypt(a, e.kind, e.epoch, encode_text_plain(name)));
  e.payload = encode_payload(p);
  return finish(a, std::move(e));
}

Result<Event> Replica::set_topic(Authoring a, std::string_view topic) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  if (topic.size() > limits::topic_bytes_max)
    return Error(Errc::invalid_argument,
                 "a topic is at most " + std::to_string(limits::topic_bytes_max) + " bytes");
  QUN_TRY_VOID(check_text(topic, "the topic", false));
  Event e = draft(a, EventKind::set_topic, state().epoch);
  TextPayload p;
  QUN_TRY(p.text, encrypt(a, e.kind, e.epoch, encode_text_plain(topic)));
  e.payload = encode_payload(p);
  return finish(a, std::move(e));
}

Result<Event> Replica::set_relay(Authoring a, const PublicKey& relay, std::string_view address,
                                bool active) {
  QUN_TRY_VOID(need_member(a.key.public_key()));
  RelayPayload p{relay, active ? std::string(address) : std::string(), active};
  if (active) {
    if (address.empty() || address.size() > limits::address_bytes_max)
      return Error(Errc::invalid_argument,
                   "a relay address is 1 to " + std::to_string(limits::address_bytes_max) +
                       " bytes");
    if (!state().relays.count(relay) && state().relays.size() >= limits::relays_max)
      return Error(Errc::too_large, "a group names at most " +
                                        std::to_string(limits::relays_max) + " relays");
  } else if (!state().relays.count(relay)) {
    return Error(Errc::not_found, "not a relay of this group");
  }
  Event e = draft(a, EventKind::relay, state().epoch);
  e.payload = encode_payload(p);
  return finish(a, std::move(e));
}

IngestReport Replica::drop_payload(const Hash& id) {
  IngestReport report;
  if (group_.drop_payload(id)) {
    report.payloads_dropped.push_back(id);
    ++fold_generation_;
  }
  report.pending = group_.pending_size();
  return report;
}

std::optional<std::string> Replica::decrypt_text(const Hash& id, std::size_t text_bytes_max) const {
  const EventRecord* rec = group_.find(id);
  if (!rec || rec->event.payload_dropped) return std::nullopt;
  const Event& e = rec->event;
  std::optional<Ciphertext> c;
  switch (e.kind) {
    case EventKind::create: c = decode_create(e.payload)->name; break;
    case EventKind::join: c = decode_join(e.payload)->profile; break;
    case EventKind::set_name:
    case EventKind::set_topic:
    case EventKind::set_nick:
    case EventKind::post: {
      // A post's payload is not checked at admission (a stub is admitted alike): it may not
      // decode, and then it reads as nothing.
      auto t = decode_text(e.payload);
      if (!t.ok()) return std::nullopt;
      c = std::move(t->text);
      break;
    }
    default: return std::nullopt;
  }
  auto plain = decrypt(e, *c);
  if (!plain) return std::nullopt;
  if (e.kind == EventKind::post) {
    auto p = decode_post_plain(*plain);
    if (!p.ok() || p->text.size() > text_bytes_max) return std::nullopt;
    return std::move(p->text);
  }
  auto text = decode_text_plain(*plain, text_bytes_max);
  if (!text.ok()) return std::nullopt;
  return std::move(text).value();
}

namespace {

// A conversation plaintext decoded as T, or none when it did not open or does not decode.
template <typename T>
std::optional<T> opened(const std::optional<Bytes>& plain, Result<T> (*decode)(ByteView)) {
  if (!plain) return std::nullopt;
  auto p = decode(*plain);
  if (!p.ok()) return std::nullopt;
  return std::move(p).value();
}

}  // namespace

std::optional<Message> Replica::message(const Hash& id) const {
  const EventRecord* rec = group_.find(id);
  if (!rec || !rec->accepted) return std::nullopt;
  Message m;
  m.id = id;
  m.author = rec->event.author;
  m.time_ms = rec->event.time_ms;
  m.order_key = rec->order_key;
  m.kind = rec->event.kind;
  m.target = rec->target;
  m.role = rec->role;
  m.stored = !rec->event.payload_dropped;
  if (m.kind == EventKind::post) m.text = decrypt_text(id, limits::post_text_bytes_max);
  if (m.kind == EventKind::set_name) m.text = decrypt_text(id, limits::name_bytes_max);
  if (m.kind == EventKind::set_topic) m.text = decrypt_text(id, limits::topic_bytes_max);
  if (m.kind == EventKind::rekey) m.replaces = decode_rekey(rec->event.payload)->replaces;
  if (m.kind == EventKind::remove) m.replaces = decode_remove(rec->event.payload)->keys.replaces;
  if (m.kind == EventKind::join || m.kind == EventKind::close_invite) m.invite = rec->invite_ref;
  if (m.kind == EventKind::close_invite) m.close_reason = rec->close_reason;
  if (m.kind == EventKind::relay) {
    m.text = rec->relay->address;
    m.relay_active = rec->relay->active;
  }
  if (m.kind == EventKind::ban) m.on = rec->banned;
  if (m.kind == EventKind::set_settings) m.settings = rec->settings;
  if (m.kind == EventKind::set_nick) m.text = decrypt_text(id, limits::nick_bytes_max);
  // The conversation kinds say the rest inside their ciphertext: one open each.
  const Event& e = rec->event;
  switch (m.kind) {
    case EventKind::post:
      if (auto p = opened(open(e), decode_post_plain)) {
        m.reply_to = p->reply_to;
        m.channel = p->channel;
        m.action = p->action;
        m.file = p->file;
      }
      break;
    case EventKind::react:
      if (auto p = opened(open(e), decode_react_plain)) {
        m.target_event = p->target;
        m.text = p->emoji;
        m.on = p->on;
      }
      break;
    case EventKind::edit:
      if (auto p = opened(open(e), decode_edit_plain)) {
        m.target_event = p->target;
        m.text = p->text;
      }
      break;
    case EventKind::del:
    case EventKind::redact:
      if (auto p = opened(open(e), decode_target_plain)) m.target_event = p->target;
      break;
    case EventKind::mute:
      if (auto p = opened(open(e), decode_mute_plain)) {
        m.target = p->member;
        m.on = p->on;
        m.duration_ms = p->duration_ms;
      }
      break;
    case EventKind::channel:
      if (auto p = opened(open(e), decode_channel_plain)) {
        m.channel_op = p->op;
        m.target_event = p->op == ChannelOp::create ? e.id : *p->channel;
        m.text = p->name;
      }
      break;
    default:
      break;
  }
  return m;
}

std::optional<Hash> Replica::channel_of(const Message& m) const {
  switch (m.kind) {
    case EventKind::post:
      return m.channel.value_or(id());
    case EventKind::react:
    case EventKind::edit:
    case EventKind::del:
    case EventKind::redact: {
      if (!m.target_event) return std::nullopt;
      auto post = message(*m.target_event);
      if (!post || post->kind != EventKind::post) return std::nullopt;
      return post->channel.value_or(id());
    }
    case EventKind::channel:
      return m.target_event;
    default:
      return std::nullopt;
  }
}

std::vector<Message> Replica::history() const {
  std::vector<Message> out;
  out.reserve(state().history.size());
  for (const auto& id : state().history) out.push_back(*message(id));
  return out;
}

std::optional<std::string> Replica::name() const {
  if (!state().name_event) return std::nullopt;
  return decrypt_text(*state().name_event, limits::name_bytes_max);
}

std::optional<std::string> Replica::topic() const {
  if (!state().topic_event) return std::nullopt;
  return decrypt_text(*state().topic_event, limits::topic_bytes_max);
}

std::optional<std::string> Replica::nick(const PublicKey& member) const {
  // A current member's nick is in the event that admitted it; a former member's in its latest
  // accepted join (or the create), so history still names people who left.
  std::optional<Hash> source;
  if (auto n = state().nick_events.find(member); n != state().nick_events.end()) {
    if (auto t = decrypt_text(n->second, limits::nick_bytes_max)) return t;
  }
  if (auto it = state().members.find(member); it != state().members.end()) {
    source = it->second.admitted_by;
  } else {
    for (auto h = state().history.rbegin(); h != state().history.rend() && !source; ++h) {
      const Event& e = group_.find(*h)->event;
      if (e.author == member && (e.kind == EventKind::join || e.kind == EventKind::create))
        source = *h;
    }
  }
  if (!source) return std::nullopt;
  const EventRecord* rec = group_.find(*source);
  if (!rec) return std::nullopt;
  if (rec->event.kind == EventKind::create) {
    auto c = decode_create(rec->event.payload)->profile;
    auto plain = decrypt(rec->event, c);
    if (!plain) return std::nullopt;
    auto t = decode_text_plain(*plain, limits::nick_bytes_max);
    return t.ok() ? std::optional<std::string>(*t) : std::nullopt;
  }
  if (rec->event.kind == EventKind::join) return decrypt_text(rec->event.id, limits::nick_bytes_max);
  return std::nullopt;
}

}  // namespace qun
