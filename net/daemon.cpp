#include "net/daemon.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdlib>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "app/event_json.h"
#include "app/naming.h"
#include "app/service.h"
#include "crypto/key_file.h"
#include "net/control.h"
#include "net/control_server.h"
#include "net/files.h"
#include "net/home.h"
#include "net/listing.h"
#include "net/log_stderr.h"
#include "net/metrics.h"
#include "net/notify.h"
#include "net/transport.h"
#include "net/verify_parallel.h"
#include "node/group_store.h"
#include "node/limits.h"
#include "node/direct.h"
#include "node/node.h"
#include "search/feed.h"

namespace qun {
namespace {

using Json = control::Json;
using ClientId = ControlServer::ClientId;

constexpr Millis housekeeping_interval_ms = 1'000;
// While the search index has groups to fill or resync (search/feed.h, fill_slice_bytes), the
// daemon ticks it again this long after a tick of at most search::tick_budget (50 ms), instead of
// at the next housekeeping: the loop turns in between, and a rebuild goes at about four fifths
// of the index's rate.
constexpr Millis search_fill_gap_ms = 10;
// Group commit: events from peers are written together once this long has passed since the
// first of them (one LMDB transaction and fsync instead of one per batch). net_bench at 20 nodes
// and 50 posts/s: CPU per node 0.085 s with 10 ms, 0.068 s with 100 ms, 0.058 s with 200 ms. They are not
// acknowledged to anyone, and a crash within the window only loses what catch-up fetches again;
// this node's own events are committed before their request is answered.
constexpr Millis group_commit_ms = 100;
// Peer addresses of each group saved for the next start (besides --peer and invite hints).
constexpr std::size_t saved_peers_max = 16;
// `log` pages.
constexpr std::size_t log_page_default = 50;
constexpr std::size_t log_page_max = 500;
// Invites default to one use that never expires; uses are bounded by limits::invite_uses_max.
constexpr std::uint32_t invite_uses_default = 1;
// "Never expires": the largest expiry an invite payload carries (node/payload.cpp).
constexpr std::uint64_t invite_expiry_never_ms = UINT64_MAX / 2;

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// CLOCK_MONOTONIC microseconds (steady_clock on Linux), comparable across processes: net_bench
// measures publish-to-delivery latency with it.
std::uint64_t mono_us() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Bytes as_bytes(std::string_view s) {
  return Bytes(reinterpret_cast<const std::uint8_t*>(s.data()),
               reinterpret_cast<const std::uint8_t*>(s.data()) + s.size());
}

std::string as_string(ByteView b) { return std::string(b.begin(), b.end()); }

bool is_wildcard_host(const std::string& address) {
  return address.rfind("0.0.0.0:", 0) == 0 || address.rfind("[::]:", 0) == 0;
}

// The addresses to advertise for a listener, best first: the listener's own, unless it is bound
// to a wildcard. For 0.0.0.0, the first non-loopback IPv4 address of this machine, else loopback;
// for [::] (IPv6 only: the transport binds it so), each global IPv6 address of this machine
// (node/addresses.h: a home's IPv6 address needs no NAT), else loopback, or nothing unless
// `loopback` (a second listener's loopback address would only lead a peer to itself).
std::vector<std::string> advertise_for(const std::string& bound, bool loopback = true) {
  if (!is_wildcard_host(bound)) return {bound};
  const bool v6 = bound.front() == '[';
  const std::string port = bound.substr(bound.rfind(':') + 1);
  uv_interface_address_t* ifs = nullptr;
  int count = 0;
  std::vector<std::string> out;
  if (uv_interface_addresses(&ifs, &count) == 0) {
    for (int i = 0; i < count; ++i) {
      if (ifs[i].is_internal) continue;
      char buf[INET6_ADDRSTRLEN];
      if (!v6 && ifs[i].address.address4.sin_family == AF_INET) {
        uv_ip4_name(&ifs[i].address.address4, buf, sizeof buf);
        out.push_back(std::string(buf) + ":" + port);
        break;
      }
      if (v6 && ifs[i].address.address6.sin6_family == AF_INET6) {
        uv_ip6_name(&ifs[i].address.address6, buf, sizeof buf);
        auto hp = parse_host_port("[" + std::string(buf) + "]:" + port);
        if (hp && is_public_host(*hp) &&
            std::find(out.begin(), out.end(), hp->str()) == out.end())
          out.push_back(hp->str());
      }
    }
    uv_free_interface_addresses(ifs, count);
  }
  if (out.empty() && loopback) out.push_back((v6 ? "[::1]:" : "127.0.0.1:") + port);
  return out;
}

// A group, member or relay argument, by the one naming rule (app/naming.h).
template <typename Key>
Result<Key> resolve_name(const std::string& arg, const std::vector<std::pair<Key, std::string>>& all,
                         naming::Noun noun) {
  std::vector<naming::Candidate> candidates;
  candidates.reserve(all.size());
  for (const auto& [key, name] : all) candidates.push_back({to_hex(key), name});
  QUN_TRY(std::size_t i, naming::find(arg, candidates, noun));
  return all[i].first;
}

class Daemon {
 public:
  explicit Daemon(DaemonOptions options)
      : opts_(std::move(options)), log_(stderr_log_sink(opts_.log_level)), rng_(Rng::from_os()) {}
  ~Daemon() {
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  int run() {
    if (uv_loop_init(&loop_) != 0) {
      std::cerr << "qun node: cannot start the event loop\n";
      return 1;
    }
    loop_.data = this;
    auto started = start();
    if (!started.ok()) {
      std::cerr << "qun node: " << started.error().context() << "\n";
      // Close whatever was opened, then drain the loop.
      teardown([] {});
      uv_run(&loop_, UV_RUN_DEFAULT);
      uv_loop_close(&loop_);
      return 1;
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    commit();  // what arrived while links were closing
    node_.reset();
    store_.reset();
    uv_loop_close(&loop_);
    log(LogLevel::info, "node stopped");
    return 0;
  }

 private:
  // ---- start-up and shutdown -------------------------------------------------------------

  Result<void> start() {
    const std::string& home = opts_.home;
    uv_timer_init(&loop_, &housekeeping_);
    housekeeping_.data = this;
    uv_timer_init(&loop_, &commit_timer_);
    commit_timer_.data = this;
    uv_timer_init(&loop_, &search_timer_);
    search_timer_.data = this;
    timer_ = true;
    if (!std::filesystem::exists(home::identity_path(home)))
      return Error(Errc::not_found,
                   home + " has no identity; create one with `qun init --home " + home + "`");
    lock_fd_ = ::open(home::lock_path(home).c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (lock_fd_ < 0) return Error(Errc::io, "cannot open " + home::lock_path(home));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
      return Error(Errc::already_exists,
                   "another qun node is already running on " + home + "; stop it first");

    auto sealed = key_file_is_sealed(home::identity_path(home));
    if (sealed.ok() && sealed.value() && !opts_.passphrase)
      return Error(Errc::invalid_argument,
                   "the identity is sealed with a passphrase; pass --passphrase-file FILE");
    auto key = read_key_file(home::identity_path(home), opts_.passphrase);
    if (!key.ok()) return Error(key.error().code(), "cannot read the identity: " + key.error().message());
    key_.emplace(std::move(key).value());
    storage_key_.emplace(storage_key_for(*key_));

    // A fault reading the store (its file truncated while mapped, or damage inside LMDB's
    // pages) ends the node with one line naming the file, not SIGBUS.
    Store::exit_on_damage_fault("qun node: ");
    StoreOptions store_options;
    store_options.map_bytes = opts_.map_bytes;
    auto store = Store::open(home::store_dir(home), store_options);
    if (!store.ok()) {
      // A damaged file's message names it and says what to do already.
      if (store.error().code() == Errc::malformed) return store.error();
      return Error(store.error().code(), "cannot open the store: " + store.error().message());
    }
    store_ = std::move(store).value();
    if (auto nick = store_->get_meta(home::meta_nick); nick.ok() && nick.value())
      nick_ = as_string(*nick.value());
    const std::string mode = opts_.relay ? "relay" : "member";
    auto stored_mode = store_->get_meta(home::meta_mode);
    if (stored_mode.ok() && stored_mode.value() && as_string(*stored_mode.value()) != mode) {
      return Error(Errc::invalid_argument,
                   home + " holds a " + as_string(*stored_mode.value()) + " node; a " + mode +
                       " needs its own home (qun init --home DIR)");
    }
    if (!stored_mode.ok() || !stored_mode.value()) {
      WriteBatch b;
      b.put_meta(home::meta_mode, as_bytes(mode));
      QUN_TRY_VOID(store_->commit(b));
    }

    transport_ = std::make_unique<Transport>(&loop_, log_);
    std::vector<std::string> listen = opts_.listen;
    if (listen.empty()) listen.push_back(default_listen_address);
    auto bound = transport_->listen(listen);
    if (!bound.ok() && (opts_.listen.empty() || opts_.listen_is_default)) {
      // Nobody chose the port, and 7420 is taken: another node or a relay on this machine has
      // it (the package's relay unit listens there). Any free port serves a person's node: peers
      // learn its address from hellos, shuffles and observed addresses. A relay sets --listen.
      log(LogLevel::warn, bound.error().message() + "; listening on a free port instead (set " +
                              "--listen, or listen in config.toml, to choose one)");
      listen = {default_listen_fallback};
      bound = transport_->listen(listen);
    }
    QUN_TRY(listen_addrs_, std::move(bound));
    if (opts_.listen.empty() || opts_.listen_is_default) listen_ipv6_too();
    advertise_ = opts_.advertise ? *opts_.advertise : advertise_for(listen_addrs_.front()).front();
    // Every other address of every listener (IPv6 beside IPv4), as many as a list holds.
    std::vector<std::string> others;
    for (const auto& bound_address : listen_addrs_)
      for (const auto& a : advertise_for(bound_address, false))
        if (a != advertise_ && std::find(others.begin(), others.end(), a) == others.end() &&
            others.size() + 1 < address_limits::addresses_max)
          others.push_back(a);

    NodeConfig config;
    config.listen_address = advertise_;
    config.other_addresses = others;
    config.relay = opts_.relay;
    config.relay_groups_max = opts_.max_groups;
    config.relay_group_bytes_max = opts_.max_group_bytes;
    config.relay_open = opts_.relay_open;
    config.relay_groups_per_requester_max = opts_.max_groups_per_key;
    config.relayed_links_max = opts_.max_relayed_links;
    config.relayed_link_bytes_max = opts_.max_relayed_link_bytes;
    config.overlay.conn_queue_bytes_max = opts_.peer_queue_bytes;
    // Checking the node's invariants after every input about triples an idle node's CPU: for
    // tests (the integration harness sets it), not for people.
    const char* check = std::getenv("QUN_CHECK_INVARIANTS");
    config.check_invariants = check != nullptr && std::string_view(check) == "1";
    if (opts_.relay) {
      QUN_TRY(config.relay_allow, read_relay_allow(home));
    }
    node_ = std::make_unique<Node>(config, *key_, rng_.fork(), log_);
    transport_->start(*node_, [this](NodeOutput&& out) { on_output(std::move(out)); });
    started_ = transport_->now();

    QUN_TRY_VOID(load_groups());
    if (!opts_.relay) open_search();

    control_ = std::make_unique<ControlServer>(&loop_, log_);
    files_ = std::make_unique<FileService>(&loop_, home, opts_.relay, opts_.max_group_bytes,
                                           *node_, *control_, log_,
                                           [this] { return transport_->now(); },
                                           [this] { transport_->pump(); });
    if (auto u = store_->get_meta(uploads_meta_key); u.ok() && u.value())
      files_->restore_uploads(transport_->now(), *u.value());
    ControlServer::Handlers handlers;
    handlers.on_request = [this](ClientId c, Json req) { on_request(c, std::move(req)); };
    handlers.on_closed = [this](ClientId c) {
      subscribers_.erase(c);
      channel_filters_.erase(c);
      if (notifications_) notifications_->notifier().client_gone(c);
      if (files_) files_->on_client_closed(c);
    };
    QUN_TRY_VOID(control_->listen(home::socket_path(home), std::move(handlers)));
    if (!opts_.relay)
      notifications_ = std::make_unique<notify::Notifications>(&loop_, opts_.notify_command, log_);
    if (opts_.metrics) {
      metrics_ = std::make_unique<metrics::MetricsServer>(&loop_, log_);
      QUN_TRY(metrics_address_, metrics_->listen(*opts_.metrics, [this] {
        return metrics::exposition(metrics::node_families(
            *node_, *store_, opts_.relay,
            notifications_ ? &notifications_->notifier().stats() : nullptr,
            notifications_ ? notifications_->failed() : 0));
      }));
    }

    uv_signal_init(&loop_, &sigint_);
    uv_signal_init(&loop_, &sigterm_);
    sigint_.data = sigterm_.data = this;
    auto on_signal = [](uv_signal_t* s, int signum) {
      auto* d = static_cast<Daemon*>(s->data);
      d->log(LogLevel::info, std::string("stopping (") + (signum == SIGINT ? "SIGINT" : "SIGTERM") + ")");
      d->stop();
    };
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    signals_ = true;
    uv_timer_start(&housekeeping_, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->housekeeping(); },
                   housekeeping_interval_ms, housekeeping_interval_ms);

    std::string listening;
    for (const auto& a : listen_addrs_) listening += (listening.empty() ? "" : ",") + a;
    log(LogLevel::info, std::string(opts_.relay ? "relay" : "node") + " " +
                            short_hex(key_->public_key()) + " ready on " + listening +
                            " (advertised " + advertise_ + "), " +
                            std::to_string(node_->groups().size()) + " groups");
    transport_->pump();
    return ok_result();
  }

  // Nobody chose where to listen: besides IPv4 (0.0.0.0), listen on IPv6 ([::], IPv6 only) on
  // the same port, so that a home with IPv6 and an IPv4 NAT is reachable over IPv6
  // (docs/protocol.md, "Addresses"). A machine without IPv6, or with that port taken on IPv6,
  // listens on IPv4 alone, and says so.
  void listen_ipv6_too() {
    const std::string& v4 = listen_addrs_.front();
    const std::string port = v4.substr(v4.rfind(':') + 1);
    auto six = transport_->listen({"[::]:" + port});
    if (!six.ok()) {
      log(LogLevel::info, six.error().message() + "; listening on IPv4 only");
      return;
    }
    listen_addrs_.insert(listen_addrs_.end(), six->begin(), six->end());
  }

  // The search index (search/feed.h) of a member's node: what it shows, of groups it is not
  // leaving. Opening it marks every group for a resync, which housekeeping carries out.
  void open_search() {
    search::Indexer::Hooks hooks;
    hooks.conversation = [this](const Replica& r, ConversationScope scope) -> const Conversation& {
      return conversation_of(r, scope);
    };
    hooks.replica = [this](const Hash& g) -> const Replica* {
      return app_.leaving(g) ? nullptr : node_->group(g);
    };
    hooks.groups = [this] {
      std::vector<Hash> out;
      for (const Hash& g : node_->groups())
        if (!app_.leaving(g)) out.push_back(g);
      return out;
    };
    search_ = std::make_unique<search::Indexer>(home::search_path(opts_.home), std::move(hooks), log_);
    search_->open();
  }

  // A group that did not load: named by `qun status`, kept out of the node (so nothing of it is
  // served or overwritten) until `qun group repair` rebuilds it.
  void mark_damaged(const Hash& g, const std::string& why) {
    damaged_[g] = why;
    log(LogLevel::error, "group " + short_hex(g) + " could not be loaded: " + why +
                             "; `qun group repair " + to_hex(g) + "` fetches it again from its peers");
  }

  Result<void> load_groups() {
    // The group listings span every group: damage there is damage to the whole store.
    auto whole_store = [&](const Error& e) {
      if (e.code() != Errc::malformed) return e;
      return Error(Errc::malformed, e.context() + "; restore it from a backup, or move " +
                                        home::store_dir(opts_.home) + " aside and start again");
    };
    auto listed = store_->groups();
    if (!listed.ok()) return whole_store(listed.error());
    std::vector<Hash> stored = std::move(listed).value();
    std::sort(stored.begin(), stored.end());
    // Joins in progress (their group may have no stored event yet).
    if (auto j = store_->get_meta(app::joins_key); j.ok() && j.value())
      (void)app_.load_joins(*j.value());
    if (auto h = store_->get_meta(app::hidden_key); h.ok() && h.value())
      app_.load_hidden(*h.value());
    if (auto b = store_->get_meta(app::blocked_key); b.ok() && b.value()) {
      app_.load_blocked(*b.value());
      for (const auto& pk : app_.blocked_members()) node_->set_blocked(transport_->now(), pk, true);
    }
    // A group with events but no record lost its record to damage: it is damaged too.
    auto with_events = store_->groups_with_events();
    if (!with_events.ok()) return whole_store(with_events.error());
    for (const auto& g : with_events.value())
      if (!std::binary_search(stored.begin(), stored.end(), g))
        mark_damaged(g, "its group record is missing");
    for (const auto& g : stored) {
      auto replica = load_replica(*store_, g, opts_.relay ? nullptr : &*key_,
                                  opts_.relay ? nullptr : &*storage_key_, verify_on_all_cores);
      if (!replica.ok()) {
        mark_damaged(g, replica.error().context());
        continue;
      }
      auto r = std::make_unique<Replica>(std::move(replica).value());
      // A member's group without its create event that no join waits on: a direct offer whose
      // check the last run did not finish (node/direct.h). Its peer offers it again.
      if (!opts_.relay && !r->state().created && !app_.join_code(g)) {
        WriteBatch b;
        b.delete_group(g);
        (void)store_->commit(b);
        continue;
      }
      if (const InviteCode* code = app_.join_code(g)) r->hold_invite(*code);
      if (auto o = store_->get_meta(app::outbox_key(g)); o.ok() && o.value())
        app_.load_outbox(g, *o.value());
      node_->add_group(transport_->now(), std::move(r), hints_for(g));
    }
    for (const Hash& g : app_.joins()) {
      if (!node_->group(g) && !damaged_.count(g)) {
        auto r = std::make_unique<Replica>(g, &*key_);
        r->hold_invite(*app_.join_code(g));
        node_->add_group(transport_->now(), std::move(r), hints_for(g));
      }
    }
    for (const Hash& g : app_.joins())
      if (!damaged_.count(g)) try_join(g);
    return ok_result();
  }

  // ---- outbox -------------------------------------------------------------------------------
  // Own events authored while no peer of their group was linked. They are stored like every
  // event and go out by catch-up on the next link of the group (each new link exchanges heads,
  // and the peer fetches what it lacks); the list only lets people see that they wait. Kept in
  // the store (meta "outbox/<group>"), cleared once a peer of the group is linked again.

  // Events just published in g: queued when no peer of g is linked. Returns true if queued.
  bool queue_if_unreachable(const Hash& g, const std::vector<Event>& events) {
    if (opts_.relay || reachable(g)) return false;
    std::vector<Hash> ids;
    for (const auto& e : events) ids.push_back(e.id);
    app_.queue(g, ids);
    drain();
    return true;
  }

  // Outboxes of groups that have a linked peer again: catch-up on that link hands the events over.
  void flush_outboxes() {
    bool flushed = false;
    for (const Hash& g : app_.outbox_groups()) {
      if (node_->group(g) && !reachable(g)) continue;
      log(LogLevel::info, "group " + short_hex(g) + ": " + std::to_string(app_.outbox(g).size()) +
                              " queued events go out to a peer that is back");
      flushed = app_.clear_outbox(g) || flushed;
    }
    if (!flushed) return;
    drain();
    broadcast_groups();
  }

  // A peer of the group is linked, or there is nobody to reach: no other member and no relay
  // (a group of one loses nothing; whoever joins later gets its history by catch-up).
  bool reachable(const Hash& g) {
    if (!node_->active_peers(g).empty()) return true;
    const Replica* r = node_->group(g);
    if (!r || !r->state().relays.empty()) return false;
    for (const auto& [pk, info] : r->state().members)
      if (pk != key_->public_key()) return false;
    return r->state().created;
  }

  std::size_t outbox_size(const Hash& g) const { return app_.outbox_posts(g, node_->group(g)); }

  // Where to look for a group's nodes: --peer addresses, saved peers, invite hints.
  std::vector<std::string> hints_for(const Hash& g) {
    std::vector<std::string> out = opts_.peers;
    if (auto saved = store_->get_meta("peers/" + to_hex(g)); saved.ok() && saved.value()) {
      if (auto list = control::decode(*saved.value()); list.ok() && list.value().is_array())
        for (const auto& a : list.value())
          if (a.is_string()) out.push_back(a.get<std::string>());
    }
    if (const InviteCode* code = app_.join_code(g))
      out.insert(out.end(), code->peers.begin(), code->peers.end());
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    out.erase(std::remove(out.begin(), out.end(), advertise_), out.end());
    for (const auto& own : node_->config().other_addresses)
      out.erase(std::remove(out.begin(), out.end(), own), out.end());
    return out;
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    commit();
    save_peers();
    teardown([this] { log(LogLevel::debug, "links closed"); });
  }

  void teardown(std::function<void()> done) {
    if (timer_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&housekeeping_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&commit_timer_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&search_timer_), nullptr);
    }
    if (signals_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
    }
    timer_ = signals_ = false;
    if (control_) control_->shutdown([] {});
    if (metrics_) metrics_->close();
    if (notifications_) notifications_->close();
    if (transport_) transport_->shutdown(std::move(done));
    else done();
  }

  void housekeeping() {
    const Millis now = transport_->now();
    // Join requests that waited long enough get an answer (the join goes on); groups left long
    // enough ago go.
    std::set<Hash> linked;
    for (const auto& g : node_->groups())
      if (!node_->active_peers(g).empty()) linked.insert(g);
    app_.on_tick(now, linked);
    drain();
    flush_outboxes();
    upkeep_groups();
    if (direct_relays_due_) name_direct_relays();
    save_peers();
    tick_search();
    if (files_) {
      files_->on_tick(now);
      transport_->pump();
    }
  }

  // Ticks the search index, and again search_fill_gap_ms later while groups wait to be indexed
  // (not while the index fails: housekeeping retries it once a second).
  void tick_search() {
    if (!search_ || stopping_) return;
    search_->tick();
    if (search_->working() && !uv_is_active(reinterpret_cast<uv_handle_t*>(&search_timer_)))
      uv_timer_start(
          &search_timer_, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->tick_search(); },
          search_fill_gap_ms, 0);
  }

  // What a member's node authors on its own (Replica::upkeep, docs/protocol.md): closes of
  // invites that are used up or expired, and a healing rekey when a bad one blinded this node.
  void upkeep_groups() {
    if (opts_.relay) return;
    for (const auto& g : node_->groups()) {
      Replica* r = node_->group(g);
      if (!r || app_.joining(g) || app_.leaving(g)) continue;
      std::vector<Event> events = r->upkeep(authoring());
      if (events.empty()) continue;
      for (const auto& e : events) {
        std::string what = event_kind_name(e.kind);
        if (e.kind == EventKind::rekey) {
          auto p = decode_rekey(e.payload);
          if (p.ok() && p->replaces) what = "healing rekey replacing " + short_hex(*p->replaces);
        }
        log(LogLevel::info, "group " + short_hex(g) + ": authored " + what);
      }
      if (auto p = publish(g, events); !p.ok())
        log(LogLevel::warn, "group " + short_hex(g) + ": " + p.error().message());
    }
  }

  void save_peers() {
    if (!node_ || !store_) return;
    std::map<PublicKey, std::string> address_of;
    for (const auto& p : node_->peers())
      if (p.id && p.established && !p.address.empty()) address_of[*p.id] = p.address;
    WriteBatch b;
    for (const auto& g : node_->groups()) {
      std::vector<std::pair<std::string, PublicKey>> linked;
      for (const auto& peer : node_->active_peers(g)) {
        auto it = address_of.find(peer);
        if (it != address_of.end() && linked.size() < saved_peers_max) linked.emplace_back(it->second, peer);
      }
      std::sort(linked.begin(), linked.end());
      std::vector<std::string> list, ids;
      for (const auto& [address, id] : linked) {
        list.push_back(address);
        ids.push_back(to_hex(id));
      }
      // Written when the linked peers change (checked every second), so a node killed soon
      // after its first link still finds its group at the next start. The ids let `qun group
      // repair` sync with these peers even when what it kept of the group no longer names them.
      if (list.empty() || saved_peers_[g] == linked) continue;
      saved_peers_[g] = linked;
      b.put_meta("peers/" + to_hex(g), control::encode(Json(list)));
      b.put_meta("peer-ids/" + to_hex(g), control::encode(Json(ids)));
    }
    if (b.empty()) return;
    if (auto r = store_->commit(b); !r.ok()) log(LogLevel::warn, "peers not saved: " + r.error().message());
  }

  // The ids of the peers save_peers last saved for group g (none for a home of an older build).
  std::vector<PublicKey> saved_peer_ids(const Hash& g) {
    std::vector<PublicKey> out;
    auto saved = store_->get_meta("peer-ids/" + to_hex(g));
    if (!saved.ok() || !saved.value()) return out;
    auto list = control::decode(*saved.value());
    if (!list.ok() || !list.value().is_array()) return out;
    for (const auto& id : list.value())
      if (id.is_string())
        if (auto bytes = from_hex(id.get<std::string>()); bytes && bytes->size() == PublicKey::size())
          if (auto key = PublicKey::from_view(*bytes)) out.push_back(*key);
    return out;
  }

  // The files this node keeps offering to relays (net/files.h), for the next start.
  void save_uploads() {
    WriteBatch b;
    b.put_meta(uploads_meta_key, files_->uploads_record());
    if (auto r = store_->commit(b); !r.ok())
      log(LogLevel::warn, "files to offer to relays not saved: " + r.error().message());
  }

  // Removes a group from the node and deletes its data.
  void drop_group(const Hash& g, const std::string& why) {
    std::vector<Hash> channels;  // their read markers go with the group
    if (const Replica* r = node_->group(g); r && !opts_.relay)
      for (const auto& ch : conversation_of(*r, ConversationScope::channels_and_mutes).channels)
        channels.push_back(ch.id);
    forget_conversation(g);
    node_->remove_group(transport_->now(), g);
    transport_->pump();
    commit();
    WriteBatch b;
    b.delete_group(g);
    b.put_meta("peers/" + to_hex(g), Bytes{});
    b.put_meta("peer-ids/" + to_hex(g), Bytes{});
    if (auto r = store_->commit(b); !r.ok())
      log(LogLevel::error, "group " + short_hex(g) + " data not deleted: " + r.error().message());
    app_.forget(g, channels);  // its outbox and read markers
    if (files_) {
      files_->forget_group(g);
      save_uploads();
    }
    if (search_) search_->forget(g);
    drain();
    log(LogLevel::info, "group " + short_hex(g) + " dropped (" + why + ")");
    broadcast_groups();
  }

  // ---- node outputs -----------------------------------------------------------------------

  void on_output(NodeOutput&& out) {
    if (auto* p = std::get_if<node_output::Persist>(&out)) {
      Replica* r = node_->group(p->group);
      if (!r) return;
      // This node's own events, committed by publish() before the node saw them: the Persist
      // repeats that commit.
      if (publishing_ && publishing_->first == p->group && p->keys.empty() &&
          p->report.evicted.empty() &&
          std::all_of(p->report.admitted.begin(), p->report.admitted.end(),
                      [&](const Hash& id) { return publishing_->second.count(id) != 0; }))
        return;
      persist_into(commit_batch_, *r, p->report, p->keys, opts_.relay ? nullptr : &*storage_key_);
      commit_events_ += p->report.admitted.size();
      if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&commit_timer_)))
        uv_timer_start(&commit_timer_, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->commit(); },
                       group_commit_ms, 0);
    } else if (auto* d = std::get_if<node_output::Delivered>(&out)) {
      on_delivered(*d);
    } else if (auto* a = std::get_if<node_output::ServeAnswer>(&out)) {
      on_serve_answer(*a);
    } else if (auto* added = std::get_if<node_output::GroupAdded>(&out)) {
      // Record the group at once, so a restart serves it even before its first event arrives.
      if (Replica* r = node_->group(added->group)) {
        persist_into(commit_batch_, *r, IngestReport{}, {}, nullptr);
        commit();
        log(LogLevel::info, (opts_.relay ? "serving group " : "fetching offered direct group ") +
                                short_hex(added->group));
      }
    } else if (auto* fm = std::get_if<node_output::FileMessage>(&out)) {
      if (files_) files_->on_message(transport_->now(), std::move(*fm));
    } else if (auto* ready = std::get_if<node_output::FileLaneReady>(&out)) {
      if (files_) files_->on_lane_ready(transport_->now(), ready->peer);
    } else if (auto* dropped = std::get_if<node_output::GroupDropped>(&out)) {
      if (files_) files_->forget_group(dropped->group);
      forget_conversation(dropped->group);
      commit();
      WriteBatch b;
      b.delete_group(dropped->group);
      if (auto done = store_->commit(b); !done.ok())
        log(LogLevel::error, "group " + short_hex(dropped->group) + " data not deleted: " + done.error().message());
      log(LogLevel::info, "group " + short_hex(dropped->group) + " dropped: " + dropped->reason);
    }
  }

  void on_delivered(const node_output::Delivered& d) {
    Replica* r = node_->group(d.group);
    if (!r) return;
    if (search_ && !app_.leaving(d.group)) search_->on_delivered(*r, d.events);
    const std::uint64_t received = mono_us();
    bool list_changed = false;
    // Channel names and mutes only (no post is opened): a stream entry is the event as made.
    const Conversation* conv = nullptr;  // conversation_of(*r), found once if needed
    for (const auto& id : d.events) {
      auto m = r->message(id);
      if (!m) continue;
      // A relay or a member more in a shared group: direct groups may name a relay now (at the
      // next tick: authoring here would re-enter the node while it delivers).
      if ((m->kind == EventKind::relay || m->kind == EventKind::add ||
           m->kind == EventKind::join) &&
          !r->state().settings.direct)
        direct_relays_due_ = true;
      if (m->kind != EventKind::post) list_changed = true;
      // A mention, or any message of the other member in a direct conversation, notifies.
      else if (notifications_ && !app_.joining(d.group) && !app_.hidden(m->author) &&
               m->author != key_->public_key() && m->text &&
               (naming::mentions(*m->text, nick_) || direct_peer(*r) == m->author))
        notifications_->on_mention(
            peer_nick(m->author).value_or(r->nick(m->author).value_or(short_hex(m->author))),
            display_name(*r), *m->text);
      if (subscribers_.empty() || app_.hidden(m->author)) continue;
      if (!conv) conv = &conversation_of(*r, ConversationScope::channels_and_mutes);
      // A muted author's post is refused by every member's node: not shown.
      if (m->kind == EventKind::post && conv->muted(m->author, m->order_key)) continue;
      Json msg = render::message_json(*r, *m, conv);
      std::optional<std::optional<Hash>> channel;  // r->channel_of(*m), found once if needed
      for (const auto& [client, filter] : subscribers_) {
        if (filter && *filter != d.group) continue;
        if (auto cf = channel_filters_.find(client); cf != channel_filters_.end()) {
          if (!channel) channel = r->channel_of(*m);
          // This node's own removal still reaches it: `log --follow` says so with the way back.
          const bool removes_me = (m->kind == EventKind::remove || m->kind == EventKind::ban) &&
                                  m->target == key_->public_key();
          if (*channel != cf->second && !removes_me) continue;
        }
        control_->send(client, Json{{"stream", "message"},
                                    {"group", to_hex(d.group)},
                                    {"message", msg},
                                    {"received_us", received}});
      }
    }
    if (app_.joining(d.group)) try_join(d.group);
    if (list_changed) broadcast_groups();
  }

  // Commits what the node handed over since the last commit, in one transaction.
  void commit() { (void)commit_now(); }
  Result<void> commit_now() {
    if (commit_batch_.empty()) return ok_result();
    uv_timer_stop(&commit_timer_);
    WriteBatch batch = std::move(commit_batch_);
    commit_batch_ = WriteBatch{};
    const std::size_t events = commit_events_;
    commit_events_ = 0;
    auto done = store_->commit(batch);
    if (!done.ok())
      log(LogLevel::error, std::to_string(events) + " events not stored: " + done.error().context());
    return done;
  }

  void broadcast_groups() {
    for (const auto& [client, filter] : subscribers_) control_->send(client, Json{{"stream", "groups"}});
  }

  // ---- requests -----------------------------------------------------------------------------

  void respond(ClientId c, const Json& id, Json result) {
    control_->send(c, Json{{"id", id}, {"ok", true}, {"result", std::move(result)}});
  }
  void fail(ClientId c, const Json& id, const std::string& message) {
    control_->send(c, Json{{"id", id}, {"ok", false}, {"error", message}});
  }

  // Carries out what the application service decided (app/service.h), in order; its meta
  // values go into one transaction. Errors: the store's, when that commit failed.
  void drain() { (void)drain_now(); }
  Result<void> drain_now() {
    WriteBatch meta;
    while (auto out = app_.poll()) {
      if (auto* reply = std::get_if<app::output::Reply>(&*out)) {
        if (reply->result.ok()) respond(reply->client, reply->id, std::move(reply->result).value());
        else fail(reply->client, reply->id, reply->result.error().context());
      } else if (auto* save = std::get_if<app::output::SaveMeta>(&*out)) {
        meta.put_meta(save->key, save->value);
      } else if (auto* drop = std::get_if<app::output::DropGroup>(&*out)) {
        drop_group(drop->group, drop->why);
      }
    }
    if (meta.empty()) return ok_result();
    auto done = store_->commit(meta);
    if (!done.ok()) log(LogLevel::warn, "node state not saved: " + done.error().message());
    return done;
  }

  // One control request: who sent it, its id (echoed in the answer) and its arguments.
  struct Request {
    ClientId client;
    const Json& id;
    const Json& args;
  };
  // A handler's answer; nullopt when it answers later (join, relay add).
  using Reply = std::optional<Result<Json>>;
  // Who may make a request: anyone, or only a member's node (a relay is a member of no group).
  enum class Who { any, member };
  struct Handler {
    Who who;
    Reply (*run)(Daemon& d, const Request& r);
  };

  // Adapters from the three shapes of op_ methods to a Handler's run.
  template <Result<Json> (Daemon::*op)()>
  static Reply bare(Daemon& d, const Request&) { return (d.*op)(); }
  template <Result<Json> (Daemon::*op)(const Json&)>
  static Reply args(Daemon& d, const Request& r) { return (d.*op)(r.args); }
  template <Reply (Daemon::*op)(const Request&)>
  static Reply whole(Daemon& d, const Request& r) { return (d.*op)(r); }

  // The requests (docs/cli.md, "Control socket"): one entry each. Adding a request is adding an
  // entry and its op_ method.
  static const std::map<std::string_view, Handler>& handlers() {
    static const std::map<std::string_view, Handler> table{
        {"id", {Who::any, bare<&Daemon::op_id>}},
        {"group.list", {Who::any, bare<&Daemon::op_group_list>}},
        {"status", {Who::any, bare<&Daemon::op_status>}},
        {"peers", {Who::any, bare<&Daemon::op_peers>}},
        {"subscribe", {Who::any, whole<&Daemon::op_subscribe>}},
        {"focus", {Who::any, whole<&Daemon::op_focus>}},
        {"log", {Who::any, args<&Daemon::op_log>}},
        {"read", {Who::any, args<&Daemon::op_read>}},
        {"members", {Who::any, args<&Daemon::op_members>}},
        {"relays", {Who::any, args<&Daemon::op_relays>}},
        {"invite.list", {Who::any, args<&Daemon::op_invite_list>}},
        {"relay.drop", {Who::any, args<&Daemon::op_relay_drop>}},
        {"relay.requests", {Who::any, bare<&Daemon::op_relay_requests>}},
        {"relay.approve", {Who::any, args<&Daemon::op_relay_approve>}},
        {"group.repair", {Who::any, args<&Daemon::op_group_repair>}},
        {"join", {Who::any, whole<&Daemon::op_join>}},
        {"relay.add", {Who::any, whole<&Daemon::op_relay_add>}},
        {"group.create", {Who::member, args<&Daemon::op_group_create>}},
        {"invite", {Who::member, args<&Daemon::op_invite>}},
        {"invite.revoke", {Who::member, args<&Daemon::op_invite_revoke>}},
        {"post", {Who::member, args<&Daemon::op_post>}},
        {"kick", {Who::member, args<&Daemon::op_kick>}},
        {"promote", {Who::member, args<&Daemon::op_promote>}},
        {"leave", {Who::member, args<&Daemon::op_leave>}},
        {"topic", {Who::member, args<&Daemon::op_topic>}},
        {"relay.remove", {Who::member, args<&Daemon::op_relay_remove>}},
        {"hide", {Who::member, args<&Daemon::op_hide>}},
        {"unhide", {Who::member, args<&Daemon::op_unhide>}},
        {"hidden", {Who::member, bare<&Daemon::op_hidden>}},
        // Direct messages (issue 15; docs/cli.md, "Direct messages").
        {"dm", {Who::member, args<&Daemon::op_dm>}},
        {"dm.list", {Who::member, bare<&Daemon::op_dm_list>}},
        {"dm.block", {Who::member, args<&Daemon::op_dm_block>}},
        {"dm.unblock", {Who::member, args<&Daemon::op_dm_unblock>}},
        {"dm.blocked", {Who::member, bare<&Daemon::op_dm_blocked>}},
        {"modlog", {Who::member, args<&Daemon::op_modlog>}},
        // The conversation layer (issue 12; docs/cli.md, "Conversation").
        {"react", {Who::member, args<&Daemon::op_react>}},
        {"edit", {Who::member, args<&Daemon::op_edit>}},
        {"delete", {Who::member, args<&Daemon::op_delete>}},
        {"mute", {Who::member, args<&Daemon::op_mute>}},
        {"unmute", {Who::member, args<&Daemon::op_unmute>}},
        {"ban", {Who::member, args<&Daemon::op_ban>}},
        {"unban", {Who::member, args<&Daemon::op_unban>}},
        {"demote", {Who::member, args<&Daemon::op_demote>}},
        {"nick", {Who::member, args<&Daemon::op_nick>}},
        {"group.rename", {Who::member, args<&Daemon::op_group_rename>}},
        {"group.set", {Who::member, args<&Daemon::op_group_set>}},
        {"channel.create", {Who::member, args<&Daemon::op_channel_create>}},
        {"channel.rename", {Who::member, args<&Daemon::op_channel_rename>}},
        {"channel.archive", {Who::member, args<&Daemon::op_channel_archive>}},
        {"channel.list", {Who::any, args<&Daemon::op_channel_list>}},
        // Full-text search (issue 15; docs/cli.md, "Search").
        {"search", {Who::member, args<&Daemon::op_search>}},
        // Files (issue 15; docs/cli.md, "Files").
        {"file.send", {Who::member, whole<&Daemon::op_file_send>}},
        {"file.fetch", {Who::member, whole<&Daemon::op_file_fetch>}},
    };
    return table;
  }

  void on_request(ClientId c, Json req) {
    const Json id = req.is_object() && req.contains("id") ? req["id"] : Json();
    if (stopping_) return fail(c, id, "the node is stopping");
    Reply r;
    try {
      if (!req.is_object() || !req.contains("op") || !req["op"].is_string())
        return fail(c, id, "bad request: no op");
      const std::string op = req["op"].get<std::string>();
      auto h = handlers().find(op);
      if (h == handlers().end())
        r = Error(Errc::invalid_argument, "unknown op '" + op + "' (is the CLI newer than the node?)");
      else if (h->second.who == Who::member && opts_.relay)
        r = Error(Errc::invalid_argument,
                  "this node is a relay: it serves groups but is not a member of any");
      else
        r = h->second.run(*this, Request{c, id, req});
    } catch (const Json::exception& e) {
      r = Error(Errc::invalid_argument, std::string("bad request: ") + e.what());
    }
    if (!r) return;  // answered later (join, relay add)
    if (r->ok()) respond(c, id, std::move(*r).value());
    else fail(c, id, r->error().context());
  }

  Authoring authoring() { return Authoring{*key_, rng_, wall_ms()}; }

  std::string arg(const Json& req, const char* name) {
    if (!req.contains(name) || req[name].is_null()) return {};
    return req[name].get<std::string>();
  }

  Result<Hash> find_group(const Json& req) {
    std::vector<std::pair<Hash, std::string>> all;
    for (const auto& g : node_->groups()) {
      if (app_.leaving(g)) continue;
      const Replica* r = node_->group(g);
      all.emplace_back(g, r ? display_name(*r) : "");
    }
    auto found = resolve_name(arg(req, "group"), all, naming::Noun{"group", "qun group list"});
    if (found.ok() || found.error().code() != Errc::not_found) return found;
    // A group that did not load is not in the node, but the person is naming it.
    if (auto d = find_damaged(arg(req, "group")); d.ok())
      return Error(Errc::not_found, "group " + short_hex(d.value()) + " could not be loaded (" +
                                        damaged_.at(d.value()) + "); run `qun group repair " +
                                        to_hex(d.value()) + "`");
    return found;
  }

  // A damaged group by id or unique id prefix (damaged groups have no name: it is in the events).
  Result<Hash> find_damaged(const std::string& arg) {
    std::vector<std::pair<Hash, std::string>> all;
    for (const auto& [g, why] : damaged_) all.emplace_back(g, "");
    return resolve_name(arg, all, naming::Noun{"damaged group", "qun status"});
  }

  // A group this node is a member of, in its own resolved state: what members act in. Anything
  // else is refused with the reason, so that nothing is authored that peers would not accept.
  Result<Replica*> member_group(const Json& req) {
    QUN_TRY(Hash g, find_group(req));
    Replica* r = node_->group(g);
    if (r->state().is_member(key_->public_key())) return r;
    if (app_.joining(g))
      return Error(Errc::invalid_argument, "still joining this group; wait for `qun join` to finish");
    return Error(Errc::unauthorized, not_member_reason(*r));
  }

  // Why this node is not a member of the group, and what to do: from its last removal or leave.
  std::string not_member_reason(const Replica& r) {
    const PublicKey& self = key_->public_key();
    const std::string name = r.name().value_or(short_hex(r.id()));
    const std::string back = "; to come back, ask an admin for a new invite and run `qun join CODE`";
    const auto& hist = r.state().history;
    bool unbanned = false;  // an unban of this node came after what the loop finds next
    for (auto it = hist.rbegin(); it != hist.rend(); ++it) {
      const EventRecord* rec = r.group().find(*it);
      if (!rec) continue;
      if (rec->event.kind == EventKind::leave && rec->event.author == self)
        return "you left " + name + back;
      if (rec->event.kind == EventKind::remove && rec->target && *rec->target == self)
        return "you were removed from " + name + " by " +
               r.nick(rec->event.author).value_or(short_hex(rec->event.author)) + back;
      // A ban removes too, and refuses joins until an unban: an invite alone does not help.
      if (rec->event.kind == EventKind::ban && rec->target && *rec->target == self) {
        if (!rec->banned) {
          unbanned = true;
          continue;
        }
        const std::string by = " by " + r.nick(rec->event.author).value_or(short_hex(rec->event.author));
        if (unbanned) return "you were banned from " + name + by + " and unbanned since" + back;
        return "you were banned from " + name + by +
               "; an admin must unban you (`qun unban`) before an invite lets you back";
      }
    }
    return "you are not a member of " + name + "; join it with an invite: `qun join CODE`";
  }

  Result<PublicKey> find_member(const Replica& r, const Json& req) {
    std::vector<std::pair<PublicKey, std::string>> all;
    for (const auto& [pk, info] : r.state().members) all.emplace_back(pk, r.nick(pk).value_or(""));
    return resolve_name(arg(req, "member"), all, naming::Noun{"member", "qun members GROUP"});
  }

  // Publishes events this node authored (already ingested by its replica): commits them, with
  // whatever the group commit holds, and only then hands them to the node, which sends them.
  // A commit that fails sent nothing: the replica is rolled back to what the store holds, so
  // neither catch-up nor a later post spreads the unstored events, and a retry does not
  // duplicate anything.
  Result<void> publish(const Hash& g, const std::vector<Event>& events) {
    Replica* r = node_->group(g);
    if (!r || events.empty()) return ok_result();
    IngestReport own;
    for (const auto& e : events) own.admitted.push_back(e.id);
    own.payloads_dropped = r->take_payloads_dropped();  // an own delete drops its post's text
    persist_into(commit_batch_, *r, own, r->take_new_keys(), opts_.relay ? nullptr : &*storage_key_);
    commit_events_ += events.size();
    if (auto done = commit_now(); !done.ok()) {
      reload_group(g);
      return Error(done.error().code(), "not stored, and not sent to anyone: " + done.error().context());
    }
    publishing_.emplace(g, std::set<Hash>(own.admitted.begin(), own.admitted.end()));
    node_->publish(transport_->now(), g, events);
    transport_->pump();
    publishing_.reset();
    return ok_result();
  }

  // Replaces a group's replica in the node by what the store holds (after a failed commit).
  void reload_group(const Hash& group) {
    const Hash g = group;  // callers pass the replica's own id, which dies with remove_group
    forget_conversation(g);
    node_->remove_group(transport_->now(), g);
    auto replica = load_replica(*store_, g, opts_.relay ? nullptr : &*key_,
                                opts_.relay ? nullptr : &*storage_key_, verify_on_all_cores);
    if (!replica.ok()) {
      // Nothing stored yet (a join whose first commit failed): start it again from nothing.
      if (replica.error().code() != Errc::not_found) {
        mark_damaged(g, replica.error().context());
        transport_->pump();
        return;
      }
    }
    auto r = replica.ok() ? std::make_unique<Replica>(std::move(replica).value())
                          : std::make_unique<Replica>(g, opts_.relay ? nullptr : &*key_);
    if (const InviteCode* code = app_.join_code(g)) r->hold_invite(*code);
    node_->add_group(transport_->now(), std::move(r), hints_for(g));
    transport_->pump();
  }

  std::size_t read_mark(const Hash& g) {
    auto v = store_->get_meta(app::read_key(g));
    return v.ok() && v.value() ? app::decode_read_mark(*v.value()) : 0;
  }

  // The group's unread counts, per channel too (app::unread); conv gives the channels.
  app::Unread unread_of(const Hash& g, const Conversation& conv) {
    const Replica* r = node_->group(g);
    app::ReadMarks marks{read_mark(g), {}};
    for (const auto& ch : conv.channels) {
      auto v = store_->get_meta(app::read_key(g, ch.id));
      if (v.ok() && v.value()) marks.channels[ch.id] = app::decode_read_mark(*v.value());
    }
    return app::unread(*r, marks, key_->public_key(), nick_, app_.hidden_members());
  }

  // The channels with their unread counts, as `group list` and `channel list` give them.
  Json channels_json(const Conversation& conv, const app::Unread* unread) {
    Json out = Json::array();
    for (const auto& ch : conv.channels) {
      Json j{{"id", to_hex(ch.id)},
             {"name", ch.name ? Json(*ch.name) : Json()},
             {"archived", ch.archived}};
      if (unread) {
        auto it = unread->by_channel.find(ch.id);
        j["unread"] = it == unread->by_channel.end() ? 0 : it->second.posts;
        j["mentions"] = it == unread->by_channel.end() ? 0 : it->second.mentions;
      }
      out.push_back(std::move(j));
    }
    return out;
  }

  Json group_json(const Hash& g) {
    const Replica* r = node_->group(g);
    const auto& st = r->state();
    Json j{{"id", to_hex(g)}, {"members", st.members.size()}, {"events", r->group().size()}};
    auto name = r->name();
    auto topic = r->topic();
    j["name"] = name ? Json(*name) : Json();
    j["topic"] = topic ? Json(*topic) : Json();
    // A direct group (qun dm) is named after the other member: "@nick".
    j["direct"] = st.settings.direct;
    if (auto peer = direct_peer(*r)) {
      j["name"] = display_name(*r);
      j["peer"] = member_ref(*peer);
    }
    j["member"] = !opts_.relay && st.is_member(key_->public_key());
    j["joining"] = app_.joining(g);
    // No peer of the group linked: what is posted waits in the outbox.
    j["reachable"] = reachable(g);
    j["outbox"] = outbox_size(g);
    app::Unread unread;
    if (!opts_.relay) {
      // Per channel too (the chat's sidebar, `qun group list`), from the read markers.
      const Conversation& conv = conversation_of(*r, ConversationScope::channels_and_mutes);
      unread = unread_of(g, conv);
      j["channels"] = channels_json(conv, &unread);
    }
    j["unread"] = unread.posts;
    j["mentions"] = unread.mentions;
    return j;
  }

  // What peers see this node from, and whether a dial-back got through (node/reachability.h).
  Json observed_json() const {
    auto o = node_->reachability().observed();
    return o ? Json(*o) : Json();
  }
  Json reachability_json() const { return status_json(node_->reachability().status()); }
  static Json status_json(Reachable status) {
    switch (status) {
      case Reachable::reachable: return "reachable";
      case Reachable::behind_nat: return "behind_nat";
      case Reachable::unknown: break;
    }
    return "unknown";
  }
  // Reachability per address family (node.h, reachability_other): a home may be reachable on
  // IPv6 and behind NAT on IPv4. The listen address's family first.
  Json families_json() const {
    Json out = Json::array();
    for (const Reachability* r : {&node_->reachability(), node_->reachability_other()}) {
      if (!r) continue;
      auto hp = parse_host_port(r->listen_address());
      auto o = r->observed();
      out.push_back(Json{{"family", hp && hp->v6 ? "ipv6" : "ipv4"},
                         {"listen", r->listen_address()},
                         {"advertised", r->advertised()},
                         {"observed", o ? Json(*o) : Json()},
                         {"reachability", status_json(r->status())}});
    }
    return out;
  }

  Result<Json> op_id() {
    Json listen = Json::array();
    for (const auto& a : listen_addrs_) listen.push_back(a);
    return Json{{"id", to_hex(key_->public_key())},
                {"nick", nick_.empty() ? Json() : Json(nick_)},
                {"listen", listen},
                {"advertised", node_->reachability().advertised()},
                {"addresses", node_->advertised_addresses()},
                {"relayed_address", node_->relayed().relayed_address().empty()
                                        ? Json()
                                        : Json(node_->relayed().relayed_address())},
                {"observed", observed_json()},
                {"reachability", reachability_json()},
                {"families", families_json()},
                {"relay", opts_.relay},
                {"home", opts_.home},
                {"metrics", metrics_address_ ? Json(*metrics_address_) : Json()}};
  }

  // When this node joined g: the time of the event that admitted it (its create, join or add),
  // UINT64_MAX while it is not a member.
  std::uint64_t joined_ms(const Replica& r) {
    if (opts_.relay) return 0;
    auto it = r.state().members.find(key_->public_key());
    if (it == r.state().members.end()) return UINT64_MAX;
    const EventRecord* rec = r.group().find(it->second.admitted_by);
    return rec ? rec->event.time_ms : UINT64_MAX;
  }

  // Groups by name, then join time (net/listing.h), each with a "label" that tells apart two
  // groups of one name.
  Result<Json> op_group_list() {
    std::vector<Json> groups;
    std::vector<listing::Entry> entries;
    for (const auto& g : node_->groups()) {
      if (app_.leaving(g)) continue;
      const Replica* r = node_->group(g);
      groups.push_back(group_json(g));
      entries.push_back({to_hex(g), display_name(*r), joined_ms(*r), 0});
    }
    const auto labels = listing::labels(entries);
    Json out = Json::array();
    for (std::size_t i : listing::order(entries)) {
      groups[i]["label"] = labels[i];
      out.push_back(std::move(groups[i]));
    }
    return out;
  }

  // The nick a peer has in any group this node shares with it (the first group that names one).
  std::optional<std::string> peer_nick(const PublicKey& id) {
    for (const auto& g : node_->groups()) {
      const Replica* r = node_->group(g);
      if (!r || !r->state().is_member(id)) continue;
      if (auto nick = r->nick(id); nick && !nick->empty()) return nick;
    }
    return std::nullopt;
  }

  Result<Json> op_peers() {
    Json out = Json::array();
    for (const auto& p : node_->peers()) {
      std::optional<std::string> nick = p.id ? peer_nick(*p.id) : std::nullopt;
      out.push_back(Json{{"id", p.id ? Json(to_hex(*p.id)) : Json()},
                         {"nick", nick ? Json(*nick) : Json()},
                         {"address", p.address},
                         {"via", p.via ? Json(to_hex(*p.via)) : Json()},
                         {"state", p.established ? "established" : "handshake"},
                         {"direction", p.outbound ? "outbound" : "inbound"},
                         {"bytes_sent", p.bytes_sent},
                         {"bytes_received", p.bytes_received}});
    }
    return out;
  }

  Result<Json> op_status() {
    const auto& s = node_->stats();
    const auto& t = transport_->counters();
    std::size_t established = 0;
    for (const auto& p : node_->peers()) established += p.established ? 1 : 0;
    Json groups = Json::array();
    for (const auto& g : node_->groups()) {
      const Replica* r = node_->group(g);
      const std::size_t active = node_->active_peers(g).size();
      Json j{{"id", to_hex(g)},
             {"events", r->group().size()},
             {"pending", r->group().pending_size()},
             {"heads", r->group().heads().size()},
             {"members", r->state().members.size()},
             {"active_peers", active},
             {"passive_peers", node_->passive_size(g)},
             {"member", !opts_.relay && r->state().is_member(key_->public_key())},
             {"joining", app_.joining(g)},
             {"leaving", app_.leaving(g)},
             {"synced", active > 0 && r->group().pending_size() == 0 && !app_.joining(g)},
             {"reachable", reachable(g)},
             {"outbox", outbox_size(g)},
             {"relays", relays_json(g)},
             {"bytes", node_->group_bytes(g)},
             {"blobs", files_ ? files_->store().group_blobs(g) : 0},
             {"blob_bytes", files_ ? files_->store().group_bytes(g) : 0},
             {"events_refused", node_->group_events_refused(g)},
             {"payloads_dropped", node_->group_payloads_dropped(g)}};
      auto name = r->name();
      j["name"] = name ? Json(*name) : Json();
      groups.push_back(std::move(j));
    }
    Json damaged = Json::array();
    for (const auto& [g, why] : damaged_)
      damaged.push_back(Json{{"id", to_hex(g)}, {"reason", why}, {"peers", hints_for(g).size()}});
    auto used = store_->used_bytes();
    return Json{{"id", to_hex(key_->public_key())},
                {"damaged", damaged},
                {"relay", opts_.relay},
                {"uptime_ms", transport_->now() - started_},
                {"listen", listen_addrs_},
                {"observed", observed_json()},
                {"reachability", reachability_json()},
                {"families", families_json()},
                {"peers", established},
                {"store_bytes", used.ok() ? used.value() : 0},
                {"transport",
                 {{"bytes_written", t.bytes_written},
                  {"bytes_read", t.bytes_read},
                  {"conns_accepted", t.conns_accepted},
                  {"conns_refused", t.conns_refused},
                  {"conns_evicted", t.conns_evicted},
                  {"dials_started", t.dials_started},
                  {"dials_failed", t.dials_failed}}},
                {"overlay",
                 {{"events_received", s.events_received},
                  {"events_duplicate", s.events_duplicate},
                  {"events_rejected", s.events_rejected},
                  {"messages_malformed", s.messages_malformed},
                  {"links_closed_misbehaving", s.links_closed_misbehaving},
                  {"events_over_rate", s.events_over_rate},
                  {"events_former_author", s.events_former_author},
                  {"duplicate_prunes", s.duplicate_prunes}}},
                {"relayed", relayed_json()},
                {"groups", groups}};
  }

  // Relayed links (node/relayed.h): this node's reservation and links through relays, and on a
  // relay the links it carries, against its bounds.
  Json relayed_json() const {
    const RelayedLinks& r = node_->relayed();
    const auto& s = r.stats();
    auto reserved = r.reserved_relay();
    std::size_t links = 0;
    for (const auto& p : node_->peers()) links += p.via && p.established ? 1 : 0;
    return Json{{"reserved_on", reserved ? Json(to_hex(*reserved)) : Json()},
                {"address", r.relayed_address()},
                {"links", links},
                {"links_opened", s.links_opened},
                {"links_failed", s.links_failed},
                {"reservations", r.reservations()},
                {"carried", r.relayed_links()},
                {"carried_max", r.config().relayed_links_max},
                {"link_bytes_max", r.config().relayed_link_bytes_max},
                {"splices_opened", s.splices_opened},
                {"refused", s.splices_refused},
                {"refused_full", s.splices_refused_full},
                {"closed_bytes", s.splices_closed_bytes},
                {"closed_window", s.splices_closed_window},
                {"bytes", s.relayed_bytes},
                {"punch",
                 {{"exchanges", node_->punch().stats().exchanges},
                  {"dials", node_->punch().stats().dials},
                  {"succeeded", node_->punch().stats().succeeded},
                  {"failed", node_->punch().stats().failed}}}};
  }

  Reply op_subscribe(const Request& request) {
    const ClientId c = request.client;
    const Json& req = request.args;
    std::optional<Hash> filter;
    if (req.contains("group") && !req["group"].is_null()) {
      QUN_TRY(filter, find_group(req));
    }
    // With a channel (`log --follow --channel`): its posts and the acts on them only.
    channel_filters_.erase(c);
    if (!arg(req, "channel").empty()) {
      if (!filter) return Error(Errc::invalid_argument, "a channel is one group's: give the group too");
      QUN_TRY(Hash channel, find_channel(*node_->group(*filter), req, "channel"));
      channel_filters_[c] = channel;
    }
    subscribers_[c] = filter;
    return Json::object();
  }

  // A chat client says whether it has focus (net/notify.h); mentions notify only while none has.
  Reply op_focus(const Request& request) {
    const Json& req = request.args;
    if (!req.contains("focused") || !req["focused"].is_boolean())
      return Error(Errc::invalid_argument, "focus needs focused: true or false");
    if (notifications_) notifications_->notifier().set_focus(request.client, req["focused"].get<bool>());
    return Json::object();
  }

  // A group's conversation as it stands (Replica::conversation), folded again only as far as
  // the history changed since the last read (node/conversation.h, ConversationCache). Valid
  // until the next call for that group; the entry goes with the replica (forget_conversation).
  const Conversation& conversation_of(const Replica& r,
                                      ConversationScope scope = ConversationScope::full) {
    Conversations& c = conversations_[r.id()];
    ConversationCache& cache = scope == ConversationScope::full ? c.full : c.channels_and_mutes;
    return cache.get(r.group(), r.opener(), r.fold_generation());
  }
  void forget_conversation(const Hash& g) { conversations_.erase(g); }

  Result<Json> op_log(const Json& req) {
    QUN_TRY(Hash g, find_group(req));
    const Replica* r = node_->group(g);
    std::size_t limit = req.value("limit", log_page_default);
    limit = std::clamp<std::size_t>(limit, 1, log_page_max);
    const auto& hist = r->state().history;
    std::size_t end = hist.size();
    if (std::string before = arg(req, "before"); !before.empty()) {
      auto raw = from_hex(before);
      auto h = raw ? Hash::from_view(*raw) : std::nullopt;
      if (!h) return Error(Errc::invalid_argument, "`before` is not an event id");
      auto it = std::find(hist.begin(), hist.end(), *h);
      if (it == hist.end()) return Error(Errc::not_found, "no event " + before + " in this group");
      end = static_cast<std::size_t>(it - hist.begin());
    }
    // Posts as they stand now (edits, deletions, reactions), folded only as far as the history
    // changed since the last read.
    const Conversation& c = conversation_of(*r);
    std::optional<Hash> channel;
    if (!arg(req, "channel").empty()) {
      QUN_TRY(channel, find_channel(*r, req, "channel"));
    }
    // The newest `limit` entries before `end`, leaving out hidden members' and the posts the
    // conversation refused (a muted author's, one to an archived channel: the chat does not show
    // them either); with a channel, only its posts. Left-out entries do not count toward the
    // limit, so a page is short only at the start of the history.
    std::vector<std::size_t> shown;
    for (std::size_t i = end; i > 0 && shown.size() < limit; --i) {
      const EventRecord* rec = r->group().find(hist[i - 1]);
      if (rec && app_.hidden(rec->event.author)) continue;
      if (rec && rec->event.kind == EventKind::post && c.refused.count(hist[i - 1])) continue;
      if (channel) {
        const PostView* v = c.post(hist[i - 1]);
        if (!v || v->channel != *channel) continue;
      }
      shown.push_back(i - 1);
    }
    Json out = Json::array();
    for (auto it = shown.rbegin(); it != shown.rend(); ++it)
      if (auto m = r->message(hist[*it])) out.push_back(render::message_json(*r, *m, &c));
    return out;
  }

  Result<Json> op_read(const Json& req) {
    QUN_TRY(Hash g, find_group(req));
    // With a channel, that channel's posts only (the chat shows one channel at a time).
    std::optional<Hash> channel;
    if (!arg(req, "channel").empty()) {
      QUN_TRY(channel, find_channel(*node_->group(g), req, "channel"));
    }
    app_.mark_read(g, node_->group(g)->state().history.size(), channel);
    QUN_TRY_VOID(drain_now());
    return Json::object();
  }

  Result<Json> op_members(const Json& req) {
    QUN_TRY(Hash g, find_group(req));
    const Replica* r = node_->group(g);
    // By role, then nick (net/listing.h), each with a "label" that tells apart two members of
    // one nick.
    std::vector<Json> members;
    std::vector<listing::Entry> entries;
    const Conversation& conv = conversation_of(*r, ConversationScope::channels_and_mutes);
    const std::uint64_t now = wall_ms();
    for (const auto& [pk, info] : r->state().members) {
      auto nick = r->nick(pk);
      const Role role = r->state().role_of(pk);
      // A mute in force now by this node's clock (the rule itself is in event time).
      auto mute = conv.muted(pk, now);
      members.push_back(Json{{"id", to_hex(pk)},
                             {"nick", nick ? Json(*nick) : Json()},
                             {"role", role_name(role)},
                             {"self", pk == key_->public_key()},
                             {"muted", mute.has_value()},
                             {"muted_until", mute && mute->until_ms ? Json(*mute->until_ms) : Json()}});
      entries.push_back({to_hex(pk), nick.value_or(""), 0, 3 - role_rank(role)});
    }
    const auto labels = listing::labels(entries);
    Json out = Json::array();
    for (std::size_t i : listing::order(entries)) {
      members[i]["label"] = labels[i];
      out.push_back(std::move(members[i]));
    }
    return out;
  }

  Result<Json> op_relays(const Json& req) {
    QUN_TRY(Hash g, find_group(req));
    return relays_json(g);
  }

  // The relays a group names, each with what this node knows of it: "serving" (its last hello
  // showed the group), "not serving" (its last hello did not: it dropped the group, or never took
  // it), "unknown" (no hello from it since this node started).
  Json relays_json(const Hash& g) {
    Json out = Json::array();
    for (const auto& rs : node_->relay_status(g)) {
      const char* state = !rs.serving ? "unknown" : *rs.serving ? "serving" : "not serving";
      out.push_back(Json{{"id", to_hex(rs.id)},
                         {"address", rs.address},
                         {"state", state},
                         {"linked", rs.linked}});
    }
    return out;
  }

  // Every invite the group's history holds, oldest first, with what is left of it.
  Result<Json> op_invite_list(const Json& req) {
    QUN_TRY(Hash g, find_group(req));
    const Replica* r = node_->group(g);
    const auto& st = r->state();
    const std::uint64_t now = wall_ms();
    Json out = Json::array();
    for (const Hash& id : st.history) {
      auto it = st.invites.find(id);
      if (it == st.invites.end()) continue;
      const InviteInfo& inv = it->second;
      const std::uint32_t left = inv.uses >= inv.uses_max ? 0 : inv.uses_max - inv.uses;
      const bool never = inv.expires_ms >= invite_expiry_never_ms;
      // Used up and expired come before revoked: nodes close such invites on their own
      // (a close event), and the person listing wants to know why an invite is shut.
      const char* state = left == 0                             ? "used up"
                          : !never && inv.expires_ms < now      ? "expired"
                          : inv.revoked                         ? "revoked"
                                                                : "open";
      auto nick = r->nick(inv.creator);
      out.push_back(Json{{"id", to_hex(inv.id)},
                         {"creator", to_hex(inv.creator)},
                         {"creator_nick", nick ? Json(*nick) : Json()},
                         {"uses", inv.uses},
                         {"uses_max", inv.uses_max},
                         {"uses_left", left},
                         {"expires", never ? Json() : Json(inv.expires_ms)},
                         {"state", state}});
    }
    return out;
  }

  // Closes an invite (a close-invite event) so nobody else joins with it. INVITE is its event
  // id or a unique prefix, as `qun invite list` shows it.
  Result<Json> op_invite_revoke(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    const std::string query = lower(arg(req, "invite"));
    if (query.empty())
      return Error(Errc::invalid_argument,
                   "name the invite: its id or a unique prefix (see `qun invite list GROUP`)");
    std::vector<Hash> found;
    for (const auto& [id, inv] : r->state().invites)
      if (to_hex(id).rfind(query, 0) == 0) found.push_back(id);
    if (found.empty())
      return Error(Errc::not_found, "no invite matches '" + query + "'; see `qun invite list GROUP`");
    if (found.size() > 1)
      return Error(Errc::invalid_argument,
                   "'" + query + "' matches more than one invite; use more of the id");
    if (r->state().invites.at(found[0]).revoked)
      return Error(Errc::already_exists,
                   "invite " + short_hex(found[0]) + " is already closed; nothing changed");
    QUN_TRY(Event e, r->close_invite(authoring(), found[0], InviteCloseReason::revoked));
    QUN_TRY_VOID(publish(r->id(), {e}));
    return Json{{"id", to_hex(e.id)}, {"invite", to_hex(found[0])}};
  }

  // The moderation log: who redacted, muted, banned, removed, changed a role, a channel, the
  // settings, the name or the topic, oldest first, as the conversation fold accepted them.
  Result<Json> op_modlog(const Json& req) {
    QUN_TRY(Hash g, find_group(req));
    const Replica* r = node_->group(g);
    Json out = Json::array();
    for (const auto& a : conversation_of(*r).actions)
      if (a.moderation) out.push_back(render::action_json(*r, a));
    return out;
  }

  // ---- search -------------------------------------------------------------------------------

  // Full-text search over the posts this node shows (search/feed.h), newest first, leaving out
  // hidden members; in one group (and channel) or in all.
  Result<Json> op_search(const Json& req) {
    if (!search_) return Error(Errc::invalid_argument, "this node does not search");
    search::Query q;
    q.text = arg(req, "text");
    if (!arg(req, "group").empty()) {
      QUN_TRY(Hash g, find_group(req));
      q.group = g;
      if (!arg(req, "channel").empty()) {
        QUN_TRY(q.channel, find_channel(*node_->group(g), req, "channel"));
      }
    } else if (!arg(req, "channel").empty()) {
      return Error(Errc::invalid_argument, "a channel belongs to a group: name the GROUP too");
    }
    if (req.contains("limit") && !req["limit"].is_null()) {
      if (!req["limit"].is_number_unsigned() || req["limit"].get<std::uint64_t>() == 0 ||
          req["limit"].get<std::uint64_t>() > search::results_max)
        return Error(Errc::invalid_argument,
                     "the limit is 1 to " + std::to_string(search::results_max) + " results");
      q.limit = req["limit"].get<std::size_t>();
    }
    q.exclude_authors = app_.hidden_members();
    QUN_TRY(std::vector<search::Hit> hits, search_->search(q));
    Json results = Json::array();
    std::map<Hash, const Conversation*> channels;  // per group, for channel names
    for (const auto& h : hits) {
      const Replica* r = node_->group(h.post.group);
      if (!r || app_.leaving(h.post.group)) continue;
      auto c = channels.find(h.post.group);
      if (c == channels.end())
        c = channels.emplace(h.post.group,
                             &conversation_of(*r, ConversationScope::channels_and_mutes)).first;
      const ChannelView* ch = c->second->channel(h.post.channel);
      auto name = r->name();
      auto nick = r->nick(h.post.author);
      results.push_back(Json{{"id", to_hex(h.post.id)},
                             {"group", to_hex(h.post.group)},
                             {"group_name", name ? Json(*name) : Json()},
                             {"channel", ch && ch->name ? Json(*ch->name) : Json()},
                             {"channel_id", to_hex(h.post.channel)},
                             {"author", to_hex(h.post.author)},
                             {"nick", nick ? Json(*nick) : Json()},
                             {"time_ms", h.post.time_ms},
                             {"snippet", h.snippet},
                             {"text", h.post.text}});
    }
    // Groups still being (re)indexed: results may miss some of their posts.
    return Json{{"results", results}, {"indexing", search_->pending()}};
  }

  // ---- hidden members (qun hide) -------------------------------------------------------------

  // A member of any group this node holds, former members included, by the naming rule; any
  // full node id too (someone not met yet).
  Result<PublicKey> find_anyone(const std::string& query) {
    std::map<PublicKey, std::string> known;
    for (const auto& g : node_->groups()) {
      const Replica* r = node_->group(g);
      if (!r) continue;
      for (const auto& [pk, info] : r->state().members) known.emplace(pk, r->nick(pk).value_or(""));
      for (const auto& pk : r->state().former_members) known.emplace(pk, r->nick(pk).value_or(""));
    }
    for (const auto& pk : app_.hidden_members()) known.emplace(pk, peer_nick(pk).value_or(""));
    if (auto raw = from_hex(query); raw && raw->size() == PublicKey{}.size())
      if (auto pk = PublicKey::from_view(*raw)) return *pk;
    std::vector<std::pair<PublicKey, std::string>> all(known.begin(), known.end());
    return resolve_name(query, all, naming::Noun{"member", "qun members GROUP"});
  }

  Json member_ref(const PublicKey& pk) {
    auto nick = peer_nick(pk);
    return Json{{"member", to_hex(pk)}, {"nick", nick ? Json(*nick) : Json()}};
  }

  // Hides a member from this node's own views: `log`, the message stream (`--follow`, the chat)
  // and unread counts leave out what they author. No event is sent; nobody else learns of it.
  Result<Json> op_hide(const Json& req) {
    QUN_TRY(PublicKey who, find_anyone(arg(req, "member")));
    if (who == key_->public_key()) return Error(Errc::invalid_argument, "you cannot hide yourself");
    QUN_TRY_VOID(app_.hide(who));
    QUN_TRY_VOID(drain_now());
    log(LogLevel::info, "member " + short_hex(who) + " hidden");
    broadcast_groups();  // unread counts change
    return member_ref(who);
  }

  Result<Json> op_unhide(const Json& req) {
    std::vector<std::pair<PublicKey, std::string>> hidden;
    for (const auto& pk : app_.hidden_members()) hidden.emplace_back(pk, peer_nick(pk).value_or(""));
    QUN_TRY(PublicKey who, resolve_name(arg(req, "member"), hidden,
                                        naming::Noun{"hidden member", "qun hidden"}));
    QUN_TRY_VOID(app_.unhide(who));
    QUN_TRY_VOID(drain_now());
    log(LogLevel::info, "member " + short_hex(who) + " shown again");
    broadcast_groups();
    return member_ref(who);
  }

  Result<Json> op_hidden() {
    Json out = Json::array();
    for (const auto& pk : app_.hidden_members()) out.push_back(member_ref(pk));
    return out;
  }

  // ---- direct messages (qun dm) -------------------------------------------------------------

  // The other member of a direct group this node is one of (none for any other group).
  std::optional<PublicKey> direct_peer(const Replica& r) const {
    if (opts_.relay) return std::nullopt;
    return direct::other(r.state(), key_->public_key());
  }

  // How a group is named in listings and by `find_group`: its name, or "@nick" of the other
  // member for a direct group (the nick it has in any group shared with it, else its short id).
  std::string display_name(const Replica& r) {
    if (auto peer = direct_peer(r)) return "@" + peer_nick(*peer).value_or(short_hex(*peer));
    return r.name().value_or("");
  }

  // This node's direct group with `peer` that it is a member of, if any.
  Replica* direct_with(const PublicKey& peer) {
    for (const auto& g : node_->groups()) {
      Replica* r = node_->group(g);
      if (r && !app_.leaving(g) && direct_peer(*r) == peer && r->state().is_member(key_->public_key()))
        return r;
    }
    return nullptr;
  }

  // The relays named by the groups (not direct) that this node and `peer` are both members of,
  // in key order; `shared` says whether there is any such group.
  std::map<PublicKey, std::string> shared_relays(const PublicKey& peer, bool* shared) {
    const PublicKey& self = key_->public_key();
    std::map<PublicKey, std::string> relays;
    for (const auto& g : node_->groups()) {
      const Replica* s = node_->group(g);
      if (!s || app_.leaving(g) || s->state().settings.direct || !s->state().is_member(self) ||
          !s->state().is_member(peer))
        continue;
      if (shared) *shared = true;
      for (const auto& [id, address] : s->state().relays) relays.emplace(id, address);
    }
    return relays;
  }

  // Names in each direct group this node founded the relays that the groups it shares with the
  // other member name now, up to direct::relays_named_max (docs/protocol.md, "Offline
  // delivery"): a conversation opened before a shared group had a relay gets one once that
  // group names it. Only the founder's node does it: a relay event needs an admin, and the
  // founder is a direct group's only one. A relay the group named before and stopped naming
  // (its founder's `qun relay remove`) is not named again. The node then offers the group to the
  // relay (node.cpp, after_admit), which takes it on as it takes a new conversation.
  void name_direct_relays() {
    direct_relays_due_ = false;
    if (opts_.relay) return;
    const PublicKey& self = key_->public_key();
    for (const auto& g : node_->groups()) {
      Replica* r = node_->group(g);
      if (!r || app_.leaving(g)) continue;
      const GroupState& s = r->state();
      const auto& pair = direct::pair(s);
      if (!s.settings.direct || pair.size() != 2 || pair[0] != self || !s.is_member(self) ||
          !s.is_member(pair[1]) || s.relays.size() >= direct::relays_named_max)
        continue;
      auto named_before = [&](const PublicKey& relay) {
        for (const auto* rec : r->group().ordered())
          if (rec->event.kind == EventKind::relay && rec->relay && rec->relay->relay == relay)
            return true;
        return false;
      };
      std::vector<Event> events;
      for (const auto& [id, address] : shared_relays(pair[1], nullptr)) {
        if (s.relays.size() >= direct::relays_named_max) break;
        if (s.relays.count(id) || named_before(id)) continue;
        auto e = r->set_relay(authoring(), id, address, true);
        if (!e.ok()) {
          log(LogLevel::warn, "direct group " + short_hex(g) + ": relay " + short_hex(id) +
                                  " not named: " + e.error().message());
          break;
        }
        log(LogLevel::info, "direct group " + short_hex(g) + " names relay " + short_hex(id) +
                                " at " + address + ", a relay of a group shared with " +
                                short_hex(pair[1]));
        events.push_back(std::move(e).value());
      }
      if (events.empty()) continue;
      if (auto p = publish(g, events); !p.ok())
        log(LogLevel::warn, "direct group " + short_hex(g) + ": " + p.error().message());
    }
  }

  // Opens the direct group with a member of any group this node shares with it (creating it:
  // its create and add, then relay events naming up to direct::relays_named_max relays of the
  // shared groups, which the node offers it to), then posts `text` in it if given.
  Result<Json> op_dm(const Json& req) {
    QUN_TRY(PublicKey peer, find_anyone(arg(req, "member")));
    const PublicKey& self = key_->public_key();
    if (peer == self) return Error(Errc::invalid_argument, "a direct message needs someone else");
    const std::string who = peer_nick(peer).value_or(short_hex(peer));
    if (app_.blocked_members().count(peer))
      return Error(Errc::unauthorized, "you blocked " + who + "; `qun dm unblock " + who + "` first");
    bool created = false;
    Replica* r = direct_with(peer);
    if (!r) {
      // Relays of groups both are members of: they serve the new group while either is offline.
      bool shared = false;
      const std::map<PublicKey, std::string> relays = shared_relays(peer, &shared);
      if (!shared)
        return Error(Errc::not_found, who + " is in none of your groups; a direct message goes to "
                                            "a member of a group you share");
      QUN_TRY(Replica made, Replica::create_direct(authoring(), nick_, peer));
      // Named before the node gets the group, so that it offers the group to these relays
      // (direct-offer) on its links to them, and they take it on.
      for (const auto& [id, address] : relays) {
        if (made.state().relays.size() >= direct::relays_named_max) break;
        (void)made.set_relay(authoring(), id, address, true);
      }
      const Hash g = made.id();
      IngestReport own;
      for (const auto* rec : made.group().ordered()) own.admitted.push_back(rec->event.id);
      QUN_TRY_VOID(persist(*store_, made, own, made.take_new_keys(), &*storage_key_));
      node_->add_group(transport_->now(), std::make_unique<Replica>(std::move(made)), {});
      transport_->pump();
      r = node_->group(g);
      created = true;
      log(LogLevel::info, "direct group " + short_hex(g) + " created with " + short_hex(peer));
      broadcast_groups();
    }
    Json out{{"group", to_hex(r->id())}, {"created", created}, {"peer", member_ref(peer)}};
    const std::string text = arg(req, "text");
    if (!text.empty()) {
      if (text.size() > limits::post_text_bytes_max)
        return Error(Errc::too_large, "message too large: " + std::to_string(text.size()) +
                                          " bytes, at most " +
                                          std::to_string(limits::post_text_bytes_max));
      PostOptions o;
      o.action = req.value("action", false);  // a /me (IRC's CTCP ACTION)
      QUN_TRY(std::vector<Event> events, r->post(authoring(), text, o));
      QUN_TRY_VOID(publish(r->id(), events));
      out["id"] = to_hex(events.back().id);
      out["queued"] = queue_if_unreachable(r->id(), events);
    }
    return out;
  }

  // This node's direct groups, with the other member and unread counts.
  Result<Json> op_dm_list() {
    Json out = Json::array();
    for (const auto& g : node_->groups()) {
      const Replica* r = node_->group(g);
      if (!r || app_.leaving(g)) continue;
      auto peer = direct_peer(*r);
      if (!peer) continue;
      const Conversation conv = r->conversation(ConversationScope::channels_and_mutes);
      const app::Unread unread = unread_of(g, conv);
      std::uint64_t last_ms = 0;
      for (const auto& id : r->state().history)
        if (const EventRecord* rec = r->group().find(id); rec && rec->event.kind == EventKind::post)
          last_ms = std::max(last_ms, rec->event.time_ms);
      out.push_back(Json{{"group", to_hex(g)},
                         {"name", display_name(*r)},
                         {"peer", member_ref(*peer)},
                         {"member", r->state().is_member(key_->public_key())},
                         {"peer_member", r->state().is_member(*peer)},
                         {"unread", unread.posts},
                         {"last_ms", last_ms},
                         {"reachable", reachable(g)}});
    }
    return out;
  }

  // Blocks a member: its direct offers are refused from now on, and this node's direct groups
  // with it are removed (their log deleted here; unblocking lets the peer offer them again).
  Result<Json> op_dm_block(const Json& req) {
    QUN_TRY(PublicKey who, find_anyone(arg(req, "member")));
    if (who == key_->public_key()) return Error(Errc::invalid_argument, "you cannot block yourself");
    Json ref = member_ref(who);
    QUN_TRY_VOID(app_.block(who));
    QUN_TRY_VOID(drain_now());
    node_->set_blocked(transport_->now(), who, true);
    std::vector<Hash> gone;
    for (const auto& g : node_->groups())
      if (const Replica* r = node_->group(g); r && direct_peer(*r) == who) gone.push_back(g);
    for (const auto& g : gone) drop_group(g, "its other member is blocked");
    log(LogLevel::info, "member " + short_hex(who) + " blocked");
    ref["removed"] = gone.size();
    return ref;
  }

  Result<Json> op_dm_blocked() {
    Json out = Json::array();
    for (const auto& pk : app_.blocked_members()) out.push_back(member_ref(pk));
    return out;
  }

  Result<Json> op_dm_unblock(const Json& req) {
    std::vector<std::pair<PublicKey, std::string>> blocked;
    for (const auto& pk : app_.blocked_members()) blocked.emplace_back(pk, peer_nick(pk).value_or(""));
    QUN_TRY(PublicKey who, resolve_name(arg(req, "member"), blocked,
                                        naming::Noun{"blocked member", "qun dm blocked"}));
    QUN_TRY_VOID(app_.unblock(who));
    QUN_TRY_VOID(drain_now());
    node_->set_blocked(transport_->now(), who, false);
    transport_->pump();
    log(LogLevel::info, "member " + short_hex(who) + " unblocked");
    return member_ref(who);
  }

  Result<Json> op_group_create(const Json& req) {
    const std::string name = arg(req, "name");
    if (name.empty()) return Error(Errc::invalid_argument, "a group needs a name");
    GroupSettings settings;
    settings.members_can_invite = req.value("members_can_invite", false);
    QUN_TRY(Replica r, Replica::create_group(authoring(), name, nick_, settings));
    const Hash g = r.id();
    IngestReport own;
    for (const auto* rec : r.group().ordered()) own.admitted.push_back(rec->event.id);
    QUN_TRY_VOID(persist(*store_, r, own, r.take_new_keys(), &*storage_key_));
    node_->add_group(transport_->now(), std::make_unique<Replica>(std::move(r)), hints_for(g));
    transport_->pump();
    log(LogLevel::info, "group " + short_hex(g) + " created");
    broadcast_groups();
    return Json{{"id", to_hex(g)}};
  }

  Result<Json> op_invite(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    const std::uint64_t uses = req.value("uses", std::uint64_t{invite_uses_default});
    if (uses == 0 || uses > limits::invite_uses_max)
      return Error(Errc::invalid_argument,
                   "uses must be 1 to " + std::to_string(limits::invite_uses_max));
    const std::uint64_t expires_in = req.value("expires_ms", std::uint64_t{0});
    const std::uint64_t expires = expires_in == 0 ? invite_expiry_never_ms
                                                  : wall_ms() + expires_in;
    // Hints for the joiner, who dials them at once (up to OverlayConfig::active_target): this
    // node's own address (a joiner on its LAN links to it directly), its public address once a
    // dial-back proved it (docs/protocol.md, "Reachability"), the group's relays (they work from
    // anywhere, also when this node is behind NAT), then its active peers in the group; at most
    // invite_peers_written_max of them (each one lengthens the code people copy).
    std::vector<std::string> peers{advertise_};
    // Then what it advertises: its public address, and its other family's (a global IPv6
    // address works from any home with IPv6, NAT or not, unless a dial-back found it shut).
    for (const auto& a : node_->advertised_addresses()) peers.push_back(a);
    for (const auto& [pk, address] : r->state().relays) peers.push_back(address);
    // Linked peers in this group only: a peer linked for another group may not hold this one.
    const auto active = node_->active_peers(r->id());
    for (const auto& p : node_->peers())
      if (p.established && !p.address.empty() && p.id &&
          std::find(active.begin(), active.end(), *p.id) != active.end())
        peers.push_back(p.address);
    std::vector<std::string> unique;
    for (const auto& p : peers) {
      auto canonical = canonical_invite_peer(p);
      if (canonical && std::find(unique.begin(), unique.end(), *canonical) == unique.end() &&
          unique.size() < invite_peers_written_max)
        unique.push_back(*canonical);
    }
    // A group whose current key may have reached someone who left (or that has none that is
    // clean) rekeys first, as a post would: the invite's bundle then carries a key the joiner
    // can author its join under. Without it, the join waits until somebody posts.
    if (r->state().needs_rekey()) {
      QUN_TRY(auto rekey, r->rekey(authoring()));
      QUN_TRY_VOID(publish(r->id(), rekey));
    }
    QUN_TRY(auto made, r->invite(authoring(), static_cast<std::uint32_t>(uses), expires, unique));
    QUN_TRY_VOID(publish(r->id(), {made.first}));
    Json out{{"code", encode_invite_code(made.second)}};
    // Behind NAT with nothing public to name, the code works on this LAN only: say so.
    const bool any_public = std::any_of(unique.begin(), unique.end(), [](const std::string& a) {
      auto hp = parse_host_port(a);
      return !hp || is_public_host(*hp);  // a host name is taken to be public
    });
    if (node_->reachability().status() == Reachable::behind_nat && !any_public)
      out["warning"] = "this node is behind NAT and the group names no relay: only people on your "
                       "network can join with this code; add one with qun relay add";
    return out;
  }

  Result<Json> op_post(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    const std::string text = arg(req, "text");
    if (text.empty()) return Error(Errc::invalid_argument, "nothing to post");
    if (text.size() > limits::post_text_bytes_max)
      return Error(Errc::too_large, "message too large: " + std::to_string(text.size()) +
                                        " bytes, at most " +
                                        std::to_string(limits::post_text_bytes_max));
    PostOptions o;
    if (!arg(req, "reply_to").empty()) {
      QUN_TRY(o.reply_to, find_event(*r, req, "reply_to"));
    }
    if (!arg(req, "channel").empty()) {
      QUN_TRY(o.channel, find_channel(*r, req, "channel"));
    }
    o.action = req.value("action", false);
    QUN_TRY(std::vector<Event> events, r->post(authoring(), text, o));
    QUN_TRY_VOID(publish(r->id(), events));
    // Stored either way; "queued" tells the poster that no peer has it yet.
    const bool queued = queue_if_unreachable(r->id(), events);
    return Json{{"id", to_hex(events.back().id)}, {"queued", queued}};
  }

  // `qun send`: seals the file into blobs (off the loop), then posts it and offers the blobs to
  // the group's relays; answered once posted.
  Reply op_file_send(const Request& request) {
    const Json& req = request.args;
    auto r = member_group(req);
    if (!r.ok()) return Result<Json>(r.error());
    const std::string path = arg(req, "path");
    if (path.empty() || path[0] != '/')
      return Result<Json>(Error(Errc::invalid_argument, "give the file's absolute path"));
    const std::string caption = arg(req, "text");
    if (caption.size() > limits::post_text_bytes_max)
      return Result<Json>(Error(Errc::too_large, "the caption is over " +
                                                     std::to_string(limits::post_text_bytes_max) + " bytes"));
    PostOptions o;
    if (!arg(req, "reply_to").empty()) {
      auto reply_to = find_event(*r.value(), req, "reply_to");
      if (!reply_to.ok()) return Result<Json>(reply_to.error());
      o.reply_to = reply_to.value();
    }
    if (!arg(req, "channel").empty()) {
      auto channel = find_channel(*r.value(), req, "channel");
      if (!channel.ok()) return Result<Json>(channel.error());
      o.channel = channel.value();
    }
    const Hash gid = r.value()->id();
    files_->seal(gid, path, rng_,
                 [this, gid, caption, o, client = request.client, id = Json(request.id)](
                     Result<FileRef> sealed) mutable {
                   auto posted = post_file(gid, caption, std::move(o), std::move(sealed));
                   if (posted.ok()) return respond(client, id, std::move(posted).value());
                   fail(client, id, posted.error().context());
                 });
    return std::nullopt;
  }

  // The second half of `qun send`, once the file is sealed: posts it in the group (if this node
  // is still a member there) and offers its blobs to the group's relays.
  Result<Json> post_file(const Hash& gid, const std::string& caption, PostOptions o,
                         Result<FileRef> sealed) {
    QUN_TRY(o.file, std::move(sealed));
    if (stopping_) return Error(Errc::io, "the node is stopping; send the file again after it starts");
    Replica* r = node_->group(gid);
    if (!r || !r->state().is_member(key_->public_key()))
      return Error(Errc::unauthorized, "this node left the group while the file was sealed");
    const FileRef file = *o.file;
    QUN_TRY(std::vector<Event> events, r->post(authoring(), caption, o));
    QUN_TRY_VOID(publish(gid, events));
    files_->uploaded(transport_->now(), gid, file);
    save_uploads();
    transport_->pump();
    const bool queued = queue_if_unreachable(gid, events);
    return Json{{"id", to_hex(events.back().id)}, {"name", file.name}, {"size", file.size},
                {"queued", queued}};
  }

  // `qun fetch`: answered when the file is complete (and written to `path`, if given).
  Reply op_file_fetch(const Request& request) {
    const Json& req = request.args;
    auto r = member_group(req);
    if (!r.ok()) return Result<Json>(r.error());
    auto id = find_event(*r.value(), req, "event");
    if (!id.ok()) return Result<Json>(id.error());
    auto m = r.value()->message(id.value());
    if (!m || !m->file)
      return Result<Json>(Error(Errc::invalid_argument, "message " + short_hex(id.value()) +
                                                            " shares no file this node can read"));
    std::string path = arg(req, "path");
    if (path.empty() && !arg(req, "dir").empty()) path = arg(req, "dir") + "/" + m->file->name;
    if (!path.empty() && path[0] != '/')
      return Result<Json>(Error(Errc::invalid_argument, "give an absolute path to save to"));
    // The chat's /open reuses what it saved before (its cache folder, one copy per post).
    if (!path.empty() && req.value("reuse", false) && std::filesystem::is_regular_file(path))
      return Result<Json>(Json{{"name", m->file->name}, {"size", m->file->size}, {"path", path},
                               {"moved", 0}, {"present", 0}});
    auto started = files_->fetch(transport_->now(), r.value()->id(), *m->file, path,
                                 request.client, request.id);
    transport_->pump();
    if (!started.ok()) return Result<Json>(started.error());
    return std::nullopt;
  }

  Result<Json> op_kick(const Json& req) { return op_member_change(req, "kick"); }
  Result<Json> op_promote(const Json& req) { return op_member_change(req, "promote"); }

  Result<Json> op_member_change(const Json& req, const std::string& what) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(PublicKey who, find_member(*r, req));
    if (what == "kick" && who == key_->public_key())
      return Error(Errc::invalid_argument, "you cannot kick yourself; use `qun leave`");
    Role to = Role::admin;
    if (what == "promote") {
      const std::string want = req.value("to", std::string("admin"));
      if (want == "moderator") {
        to = Role::moderator;
      } else if (want != "admin") {
        return Error(Errc::invalid_argument, "--to is moderator or admin, not '" + want + "'");
      }
    }
    if (what == "promote" && at_least(r->state().role_of(who), to)) {
      const std::string name = r->nick(who).value_or(short_hex(who));
      const Role now = r->state().role_of(who);
      return Error(Errc::already_exists,
                   name + " is already " +
                       (now == Role::founder ? std::string("the founder")
                                             : std::string(now == Role::admin ? "an " : "a ") +
                                                   role_name(now)) +
                       "; nothing changed");
    }
    // A removal is its key event, then the key parts of a group too large for one event.
    std::vector<Event> events;
    if (what == "kick") {
      QUN_TRY(events, r->remove(authoring(), who));
    } else {
      QUN_TRY(auto e, r->set_role(authoring(), who, to));
      events.push_back(std::move(e));
    }
    QUN_TRY_VOID(publish(r->id(), events));
    return Json{{"id", to_hex(events.front().id)}, {"member", to_hex(who)}};
  }

  // An event of the group named by req[name]: its full id or a unique prefix of it.
  Result<Hash> find_event(const Replica& r, const Json& req, const char* name) {
    const std::string want = arg(req, name);
    if (want.empty()) return Error(Errc::invalid_argument, std::string("no `") + name + "`: give a message id");
    for (char c : want)
      if (!std::isxdigit(static_cast<unsigned char>(c)))
        return Error(Errc::invalid_argument, "'" + want + "' is not a message id (hex, as `qun log --json` shows)");
    std::optional<Hash> found;
    for (const Hash& h : r.state().history) {
      if (to_hex(h).compare(0, want.size(), want) != 0) continue;
      if (found) return Error(Errc::invalid_argument, "message id '" + want + "' is ambiguous; give more of it");
      found = h;
    }
    if (!found) return Error(Errc::not_found, "no message " + want + " in this group; `qun log GROUP --json` shows ids");
    return *found;
  }

  // A channel by name (a leading '#' is fine): one not archived first.
  Result<Hash> find_channel(const Replica& r, const Json& req, const char* name) {
    std::string want = arg(req, name);
    if (!want.empty() && want[0] == '#') want.erase(0, 1);
    const Conversation& c = conversation_of(r, ConversationScope::channels_and_mutes);
    if (const ChannelView* ch = c.channel_named(want)) return ch->id;
    return Error(Errc::not_found, "no channel #" + want + " in this group; `qun channel list GROUP` shows them");
  }

  // A member, or a key the group knew (a former or banned member): for ban and unban.
  Result<PublicKey> find_known(const Replica& r, const Json& req) {
    std::vector<std::pair<PublicKey, std::string>> all;
    std::set<PublicKey> keys;
    for (const auto& [pk, info] : r.state().members) keys.insert(pk);
    keys.insert(r.state().former_members.begin(), r.state().former_members.end());
    keys.insert(r.state().banned.begin(), r.state().banned.end());
    for (const PublicKey& pk : keys) all.emplace_back(pk, r.nick(pk).value_or(""));
    auto found = resolve_name(arg(req, "member"), all, naming::Noun{"member", "qun members GROUP"});
    if (found.ok() || found.error().code() != Errc::not_found) return found;
    // A key the group never saw may be banned ahead of time: the full id only.
    auto raw = from_hex(arg(req, "member"));
    if (raw && raw->size() == 32) {
      PublicKey pk;
      std::copy(raw->begin(), raw->end(), pk.bytes.begin());
      return pk;
    }
    return found;
  }

  // Publishes what a conversation call authored and answers with the last event's id.
  Result<Json> published(const Replica& r, Result<std::vector<Event>> events) {
    if (!events.ok()) return events.error();
    QUN_TRY_VOID(publish(r.id(), events.value()));
    const bool queued = queue_if_unreachable(r.id(), events.value());
    return Json{{"id", to_hex(events.value().back().id)}, {"queued", queued}};
  }

  Result<Json> op_react(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(Hash target, find_event(*r, req, "event"));
    const std::string emoji = arg(req, "emoji");
    return published(*r, r->react(authoring(), target, emoji, !req.value("undo", false)));
  }

  Result<Json> op_edit(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(Hash target, find_event(*r, req, "event"));
    const std::string text = arg(req, "text");
    if (text.empty()) return Error(Errc::invalid_argument, "nothing to change the message to; to remove it, use `qun delete`");
    return published(*r, r->edit(authoring(), target, text));
  }

  Result<Json> op_delete(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(Hash target, find_event(*r, req, "event"));
    return published(*r, r->delete_post(authoring(), target));
  }

  Result<Json> op_mute(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(PublicKey who, find_member(*r, req));
    std::uint64_t for_ms = 0;
    if (req.contains("for_ms") && !req["for_ms"].is_null()) {
      if (!req["for_ms"].is_number_unsigned() || req["for_ms"].get<std::uint64_t>() == 0)
        return Error(Errc::invalid_argument, "a mute's duration is a positive number of milliseconds");
      for_ms = req["for_ms"].get<std::uint64_t>();
    }
    auto done = published(*r, r->mute(authoring(), who, for_ms));
    if (done.ok()) done.value()["member"] = to_hex(who);
    return done;
  }

  Result<Json> op_unmute(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(PublicKey who, find_member(*r, req));
    auto done = published(*r, r->unmute(authoring(), who));
    if (done.ok()) done.value()["member"] = to_hex(who);
    return done;
  }

  Result<Json> op_ban(const Json& req) { return op_ban_change(req, true); }
  Result<Json> op_unban(const Json& req) { return op_ban_change(req, false); }
  Result<Json> op_ban_change(const Json& req, bool banned) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(PublicKey who, find_known(*r, req));
    auto done = published(*r, r->ban(authoring(), who, banned));
    if (done.ok()) done.value()["member"] = to_hex(who);
    return done;
  }

  Result<Json> op_demote(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(PublicKey who, find_member(*r, req));
    const Role now = r->state().role_of(who);
    if (now == Role::member)
      return Error(Errc::already_exists, r->nick(who).value_or(short_hex(who)) + " is a member already; nothing changed");
    // One step down: admin to moderator, moderator to member.
    const Role to = now == Role::moderator ? Role::member : Role::moderator;
    QUN_TRY(Event e, r->set_role(authoring(), who, to));
    QUN_TRY_VOID(publish(r->id(), {e}));
    return Json{{"id", to_hex(e.id)}, {"member", to_hex(who)}, {"role", role_name(to)}};
  }

  // The nick in every group this node is a member of: one set-nick event per group.
  Result<Json> op_nick(const Json& req) {
    const std::string nick = arg(req, "nick");
    Json groups = Json::array();
    for (const Hash& g : node_->groups()) {
      Replica* r = node_->group(g);
      if (!r || app_.leaving(g) || !r->state().is_member(key_->public_key())) continue;
      QUN_TRY(auto events, r->set_nick(authoring(), nick));
      QUN_TRY_VOID(publish(g, events));
      (void)queue_if_unreachable(g, events);
      groups.push_back(to_hex(g));
    }
    if (groups.empty()) return Error(Errc::not_found, "you are in no group yet; the nick is given when you join");
    return Json{{"groups", groups}};
  }

  Result<Json> op_group_rename(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(Event e, r->set_name(authoring(), arg(req, "name")));
    QUN_TRY_VOID(publish(r->id(), {e}));
    return Json{{"id", to_hex(e.id)}};
  }

  Result<Json> op_group_set(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    GroupSettings s = r->state().settings;
    bool any = false;
    if (req.contains("history") && !req["history"].is_null()) {
      const std::string v = arg(req, "history");
      if (v != "on" && v != "off") return Error(Errc::invalid_argument, "history is on or off, not '" + v + "'");
      s.history_visible = v == "on";
      any = true;
    }
    if (req.contains("invites") && !req["invites"].is_null()) {
      const std::string v = arg(req, "invites");
      if (v != "members" && v != "admins")
        return Error(Errc::invalid_argument, "invites is members or admins, not '" + v + "'");
      s.members_can_invite = v == "members";
      any = true;
    }
    if (!any) return Error(Errc::invalid_argument, "nothing to set: give history on|off or invites members|admins");
    QUN_TRY(Event e, r->set_settings(authoring(), s));
    QUN_TRY_VOID(publish(r->id(), {e}));
    return Json{{"id", to_hex(e.id)},
                {"history", s.history_visible ? "on" : "off"},
                {"invites", s.members_can_invite ? "members" : "admins"}};
  }

  Result<Json> op_channel_create(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    std::string name = arg(req, "name");
    if (!name.empty() && name[0] == '#') name.erase(0, 1);
    return published(*r, r->create_channel(authoring(), name));
  }

  Result<Json> op_channel_rename(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(Hash ch, find_channel(*r, req, "name"));
    std::string to = arg(req, "new");
    if (!to.empty() && to[0] == '#') to.erase(0, 1);
    return published(*r, r->rename_channel(authoring(), ch, to));
  }

  Result<Json> op_channel_archive(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    QUN_TRY(Hash ch, find_channel(*r, req, "name"));
    return published(*r, r->archive_channel(authoring(), ch));
  }

  Result<Json> op_channel_list(const Json& req) {
    QUN_TRY(Hash g, find_group(req));
    const Replica* r = node_->group(g);
    const Conversation& c = conversation_of(*r, ConversationScope::channels_and_mutes);
    if (opts_.relay) return channels_json(c, nullptr);
    const app::Unread unread = unread_of(g, c);
    return channels_json(c, &unread);
  }

  Result<Json> op_topic(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    const std::string text = arg(req, "text");
    if (text.size() > limits::topic_bytes_max)
      return Error(Errc::too_large, "topic too long: at most " +
                                        std::to_string(limits::topic_bytes_max) + " bytes");
    QUN_TRY(Event e, r->set_topic(authoring(), text));
    QUN_TRY_VOID(publish(r->id(), {e}));
    return Json{{"id", to_hex(e.id)}};
  }

  Result<Json> op_leave(const Json& req) {
    QUN_TRY(Hash g, find_group(req));
    Replica* r = node_->group(g);
    // The result names the leave event; null when there was none to make (a join in progress
    // was abandoned, or this node was no longer a member).
    if (app_.joining(g)) {  // abandon a join in progress
      cancel_join(g, "join cancelled by `qun leave`");
      drop_group(g, "join cancelled");
      return Json{{"id", nullptr}, {"group", to_hex(g)}};
    }
    Json out{{"id", nullptr}, {"group", to_hex(g)}};
    if (r->state().is_member(key_->public_key())) {
      QUN_TRY(Event e, r->leave(authoring()));
      QUN_TRY_VOID(publish(g, {e}));
      app_.left(g, transport_->now(), !node_->active_peers(g).empty());
      if (search_) search_->forget(g);  // nothing of a group left is found any more
      out["id"] = to_hex(e.id);
    } else {
      drop_group(g, "no longer a member");
    }
    broadcast_groups();
    return out;
  }

  // ---- joining ------------------------------------------------------------------------------

  Reply op_join(const Request& request) {
    const ClientId c = request.client;
    const Json &id = request.id, &req = request.args;
    if (opts_.relay) return Result<Json>(Error(Errc::invalid_argument, "a relay joins no group"));
    auto decoded = decode_invite_code(arg(req, "code"));
    if (!decoded.ok()) return Result<Json>(Error(Errc::invalid_argument, decoded.error().context()));
    InviteCode code = std::move(decoded).value();
    const Hash g = code.group;
    if (Replica* r = node_->group(g); r && !app_.joining(g)) {
      if (r->state().is_member(key_->public_key())) return Result<Json>(Json{{"group", to_hex(g)}});
      // A former member coming back (it was removed and kept the group, or left moments ago):
      // it keeps what it holds, takes the invite, and shows it to its peers, who otherwise shun
      // it (docs/protocol.md, "Coming back").
      r->hold_invite(code);
      app_.join_started(std::move(code));
      drain();
      node_->announce_invite(transport_->now(), g);
      log(LogLevel::info, "joining group " + short_hex(g) + " again");
    }
    if (!app_.joining(g)) {
      auto r = std::make_unique<Replica>(g, &*key_);
      r->hold_invite(code);
      const std::size_t peers = code.peers.size();
      app_.join_started(std::move(code));
      drain();
      node_->add_group(transport_->now(), std::move(r), hints_for(g));
      log(LogLevel::info, "joining group " + short_hex(g) + " via " + std::to_string(peers) +
                              " peers");
    }
    app_.wait_for_join(g, app::Waiter{c, id, transport_->now()});
    drain();
    transport_->pump();
    try_join(g);
    return std::nullopt;
  }

  // Authors the join as soon as the invite is in this node's copy of the group.
  void try_join(const Hash& g) {
    const InviteCode* code = app_.join_code(g);
    Replica* r = node_->group(g);
    if (!code || !r) return;
    if (!r->state().is_member(key_->public_key())) {
      auto e = r->join(authoring(), *code, nick_);
      if (!e.ok()) {
        if (e.error().code() == Errc::not_found) return;  // the invite has not arrived yet
        // A banned key's join is refused by every node (docs/protocol.md): say what helps.
        const std::string why =
            r->state().banned.count(key_->public_key())
                ? "you are banned from " + r->name().value_or(short_hex(g)) +
                      "; an admin must unban you (`qun unban`) before an invite lets you in"
                : e.error().context();
        log(LogLevel::warn, "join of group " + short_hex(g) + " failed: " + why);
        cancel_join(g, why);
        // A former member keeps the history it had; a group fetched only for the join goes.
        if (!r->state().former_members.count(key_->public_key())) drop_group(g, "join failed");
        return;
      }
      if (auto p = publish(g, {e.value()}); !p.ok()) {
        log(LogLevel::error, "join of group " + short_hex(g) + " not stored: " + p.error().message());
        return;  // retried at the next delivery or restart
      }
    }
    app_.join_done(g);
    drain();
    log(LogLevel::info, "joined group " + short_hex(g));
    broadcast_groups();
  }

  void cancel_join(const Hash& g, const std::string& why) {
    app_.join_failed(g, why);
    drain();
  }


  // ---- relays ---------------------------------------------------------------------------------

  Reply op_relay_add(const Request& request) {
    const ClientId c = request.client;
    const Json &id = request.id, &req = request.args;
    if (opts_.relay)
      return Result<Json>(Error(Errc::invalid_argument, "run `qun relay add` on a member's node"));
    auto r = member_group(req);
    if (!r.ok()) return Result<Json>(r.error());
    Replica* replica = r.value();
    if (replica->state().role_of(key_->public_key()) == Role::member)
      return Result<Json>(Error(Errc::unauthorized, "only admins can add relays to this group"));
    const std::string address = arg(req, "address");
    if (address.empty() || address.find(':') == std::string::npos)
      return Result<Json>(Error(Errc::invalid_argument, "give the relay's address as HOST:PORT"));
    app_.wait_for_serve(replica->id(), address, app::Waiter{c, id, transport_->now()});
    drain();
    node_->request_serve(transport_->now(), replica->id(), address);
    transport_->pump();
    return std::nullopt;
  }

  // The relay answered: name it in the group (a relay event) and tell whoever asked.
  void on_serve_answer(const node_output::ServeAnswer& a) {
    std::vector<app::Waiter> waiters = app_.take_serve_waiters(a.group, a.address);
    if (waiters.empty()) return;
    Result<Json> result = Error(Errc::invalid_argument, "");
    Replica* r = node_->group(a.group);
    if (!a.accepted || !a.relay) {
      result = Error(Errc::invalid_argument, "the relay at " + a.address + " did not take the group: " + a.reason);
    } else if (!r) {
      result = Error(Errc::not_found, "the group is gone from this node");
    } else {
      auto e = r->set_relay(authoring(), *a.relay, a.address, true);
      if (!e.ok()) {
        result = Error(e.error().code(), "the relay took the group, but naming it failed: " + e.error().context());
      } else if (auto p = publish(a.group, {e.value()}); !p.ok()) {
        result = p.error();
      } else {
        log(LogLevel::info, "group " + short_hex(a.group) + " relay " + short_hex(*a.relay) + " at " + a.address);
        result = Json{{"relay", to_hex(*a.relay)}, {"address", a.address}};
      }
    }
    for (const auto& w : waiters) {
      if (result.ok()) respond(w.client, w.id, result.value());
      else fail(w.client, w.id, result.error().context());
    }
  }

  // Rebuilds a group that did not load: keeps every stored event and key of it that still reads
  // (own posts that never reached a peer among them), rewrites the group's records from them,
  // and adds it back to the node, which fetches the rest from the group's peers (saved peer
  // addresses, which live in the meta table apart from the events, --peer, and the relays the
  // kept events name). Nothing that reads is deleted.
  Result<Json> op_group_repair(const Json& req) {
    QUN_TRY(Hash g, find_damaged(arg(req, "group")));
    Salvage s = salvage_replica(*store_, g, opts_.relay ? nullptr : &*key_,
                                opts_.relay ? nullptr : &*storage_key_);
    commit();  // the group commit first, so that the rewrite is the last word on this group
    WriteBatch b;
    rewrite_into(b, s.replica, opts_.relay ? nullptr : &*storage_key_, s.stale());
    if (auto done = store_->commit(b); !done.ok())
      return Error(done.error().code(), "group " + short_hex(g) + " not repaired: " + done.error().context());
    const std::vector<std::string> hints = hints_for(g);
    auto r = std::make_unique<Replica>(std::move(s.replica));
    if (const InviteCode* code = app_.join_code(g)) r->hold_invite(*code);
    damaged_.erase(g);
    node_->add_repaired_group(transport_->now(), std::move(r), hints, saved_peer_ids(g));
    if (search_) search_->mark(g);
    transport_->pump();
    log(LogLevel::info, "group " + short_hex(g) + " repaired: kept " + std::to_string(s.events_kept) +
                            " events, " + std::to_string(s.events_unread) + " did not read; " +
                            "fetching the rest from " + std::to_string(hints.size()) + " peers");
    broadcast_groups();
    return Json{{"id", to_hex(g)},
                {"events_kept", s.events_kept},
                {"events_unread", s.events_unread},
                {"keys_unread", s.keys_unread},
                {"peers", hints.size()}};
  }

  // An admin un-names a relay (an inactive relay event): members stop linking to it.
  Result<Json> op_relay_remove(const Json& req) {
    QUN_TRY(Replica* r, member_group(req));
    if (r->state().role_of(key_->public_key()) == Role::member)
      return Error(Errc::unauthorized, "only admins can remove relays from this group");
    std::vector<std::pair<PublicKey, std::string>> named;
    for (const auto& [pk, address] : r->state().relays) named.emplace_back(pk, address);
    QUN_TRY(PublicKey relay, resolve_name(arg(req, "relay"), named,
                                          naming::Noun{"relay", "qun relay list GROUP"}));
    QUN_TRY(Event e, r->set_relay(authoring(), relay, "", false));
    QUN_TRY_VOID(publish(r->id(), {e}));
    log(LogLevel::info, "group " + short_hex(r->id()) + " relay " + short_hex(relay) + " removed");
    return Json{{"id", to_hex(e.id)}, {"relay", to_hex(relay)}};
  }

  Result<Json> op_relay_drop(const Json& req) {
    QUN_TRY(Hash g, find_group(req));
    if (!opts_.relay)
      return Error(Errc::invalid_argument,
                   "`qun relay drop` runs on a relay; members use `qun leave`");
    drop_group(g, "dropped by the operator");
    return Json{{"id", to_hex(g)}};
  }

  // The allow-list: --relay-allow keys and the home's relay-allow file. Errors: invalid_argument
  // naming the file and line (or the flag) of a key that does not parse.
  Result<std::set<PublicKey>> read_relay_allow(const std::string& home) {
    std::set<PublicKey> out;
    auto parse = [](std::string_view text) -> std::optional<PublicKey> {
      auto raw = from_hex(text);
      return raw ? PublicKey::from_view(*raw) : std::nullopt;
    };
    for (const auto& k : opts_.relay_allow) {
      auto key = parse(k);
      if (!key) return Error(Errc::invalid_argument, "--relay-allow " + k + " is not a node id (64 hex digits)");
      out.insert(*key);
    }
    std::ifstream in(home::relay_allow_path(home));
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      line = line.substr(0, line.find('#'));
      line.erase(std::remove_if(line.begin(), line.end(), [](unsigned char ch) { return std::isspace(ch); }),
                 line.end());
      if (line.empty()) continue;
      auto key = parse(line);
      if (!key)
        return Error(Errc::invalid_argument, home::relay_allow_path(home) + " line " +
                                                 std::to_string(n) + " is not a node id (64 hex digits)");
      out.insert(*key);
    }
    return out;
  }

  Result<Json> op_relay_requests() {
    if (!opts_.relay) return Error(Errc::invalid_argument, "`qun relay requests` runs on a relay");
    Json out = Json::array();
    const Millis now = transport_->now();
    for (const auto& w : node_->serve_waiting())
      out.push_back(Json{{"group", to_hex(w.group)}, {"requester", to_hex(w.requester)},
                         {"address", w.address}, {"age_ms", now >= w.at ? now - w.at : 0}});
    return out;
  }

  // `qun relay approve TARGET`: a group a waiting request names (full id or unique prefix) is
  // taken on now; otherwise a waiting requester (id or unique prefix), or any full node id, is
  // added to the allow-list (and to the home's relay-allow file, so it survives a restart), and
  // what it asked for is taken on.
  Result<Json> op_relay_approve(const Json& req) {
    if (!opts_.relay) return Error(Errc::invalid_argument, "`qun relay approve` runs on a relay");
    std::string target = arg(req, "target");
    std::transform(target.begin(), target.end(), target.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (target.empty()) return Error(Errc::invalid_argument, "name a GROUP or KEY from `qun relay requests`");
    const auto waiting = node_->serve_waiting();
    std::set<Hash> groups;
    std::set<PublicKey> keys;
    for (const auto& w : waiting) {
      if (to_hex(w.group).rfind(target, 0) == 0) groups.insert(w.group);
      if (to_hex(w.requester).rfind(target, 0) == 0) keys.insert(w.requester);
    }
    const Millis now = transport_->now();
    if (groups.size() + keys.size() > 1)
      return Error(Errc::invalid_argument, "'" + target + "' matches more than one request: give more of it");
    if (groups.size() == 1) {
      QUN_TRY_VOID(node_->approve_serve(now, *groups.begin()));
      transport_->pump();
      log(LogLevel::info, "operator approved serving group " + short_hex(*groups.begin()));
      return Json{{"group", to_hex(*groups.begin())}};
    }
    std::optional<PublicKey> key;
    if (keys.size() == 1) key = *keys.begin();
    else if (auto raw = from_hex(target)) key = PublicKey::from_view(*raw);
    if (!key) return Error(Errc::not_found, "no waiting request matches '" + target + "' (see `qun relay requests`)");
    if (!node_->relay_allowed().count(*key)) {
      std::ofstream out(home::relay_allow_path(opts_.home), std::ios::app);
      out << to_hex(*key) << "\n";
      if (!out) return Error(Errc::io, "cannot write " + home::relay_allow_path(opts_.home));
    }
    auto taken = node_->allow_requester(now, *key);
    transport_->pump();
    log(LogLevel::info, "operator allowed key " + short_hex(*key) + "; groups taken on: " +
                            std::to_string(taken.size()));
    Json groups_json = Json::array();
    for (const Hash& g : taken) groups_json.push_back(to_hex(g));
    return Json{{"key", to_hex(*key)}, {"groups", groups_json}};
  }

  void log(LogLevel level, const std::string& message) { log_(LogRecord{level, "daemon", message}); }

  DaemonOptions opts_;
  uv_loop_t loop_{};
  LogSink log_;
  Rng rng_;
  int lock_fd_ = -1;
  std::optional<SigningKey> key_;
  std::optional<SymmetricKey> storage_key_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<metrics::MetricsServer> metrics_;
  std::optional<std::string> metrics_address_;  // where metrics_ listens (`qun id` shows it)
  std::unique_ptr<notify::Notifications> notifications_;  // members only: a relay reads nothing
  std::unique_ptr<search::Indexer> search_;  // members only, like notifications_
  // Direct groups may name a relay of a shared group (name_direct_relays): at start, and after a
  // relay, add or join event in a group that is not direct.
  bool direct_relays_due_ = true;
  std::unique_ptr<Node> node_;
  std::unique_ptr<FileService> files_;  // shared files (net/files.h)
  std::string nick_;
  std::vector<std::string> listen_addrs_;
  std::string advertise_;
  uv_signal_t sigint_{}, sigterm_{};
  uv_timer_t housekeeping_{};
  uv_timer_t commit_timer_{};
  uv_timer_t search_timer_{};      // tick_search while the index fills
  WriteBatch commit_batch_;        // persists waiting for the group commit
  std::size_t commit_events_ = 0;  // events in commit_batch_
  bool signals_ = false, timer_ = false, stopping_ = false;
  Millis started_ = 0;
  // What save_peers last wrote per group: each peer's address and id.
  std::map<Hash, std::vector<std::pair<std::string, PublicKey>>> saved_peers_;
  // Joins, relay requests, leaves, outboxes and read markers (app/service.h).
  app::Service app_;
  std::map<ClientId, std::optional<Hash>> subscribers_;
  std::map<ClientId, Hash> channel_filters_;  // subscribers that want one channel only
  // Groups that did not load, with the reason (mark_damaged); `qun group repair` rebuilds them.
  std::map<Hash, std::string> damaged_;
  // Each group's conversation, kept between reads (conversation_of): the full one and the one
  // of channels and mutes only (which opens no post, so is cheaper to fold again).
  struct Conversations {
    ConversationCache full{ConversationScope::full};
    ConversationCache channels_and_mutes{ConversationScope::channels_and_mutes};
  };
  std::map<Hash, Conversations> conversations_;
  // During publish(): the group and the ids of own events just committed.
  std::optional<std::pair<Hash, std::set<Hash>>> publishing_;
};

}  // namespace

int run_daemon(const DaemonOptions& options) {
  std::signal(SIGPIPE, SIG_IGN);
  Daemon d(options);
  return d.run();
}

}  // namespace qun
