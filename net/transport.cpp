#include "net/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace qun {
namespace {

// node.cpp numbers its outbound (Dial) ids from here up; ours stay below.
constexpr ConnId outbound_conn_first = ConnId{1} << 62;
// TCP keepalive: a peer that vanished without a FIN (power loss, NAT timeout) is noticed after
// this idle time plus the kernel's probes, instead of never on a connection we only read.
constexpr unsigned keepalive_delay_s = 60;
// TCP_NOTSENT_LOWAT: the kernel takes more bytes for a link only while fewer than this wait in
// its send queue unsent. Without it the queue grows to the socket's autotuned buffer (megabytes
// on a fast link), and a post waits behind a file's chunks there, where the node's file lane
// (node/file_lane.h) cannot put it first. 128 KiB is two file chunks: enough to keep a 1 Gbit/s
// link busy between two turns of the loop (1 ms), 10 ms of a 100 Mbit/s one.
constexpr int notsent_lowat_bytes = 128 * 1024;
// Refused inbound connections are logged at most this often (a flood must not flood the log).
constexpr Millis refusal_log_interval_ms = 1'000;

struct Address {
  enum class Kind { ip, name };
  Kind kind = Kind::ip;
  std::string host;  // for names
  std::uint16_t port = 0;
  sockaddr_storage sa{};  // for ip
};

// Parses "HOST:PORT". Errors are short reasons for "cannot ... on ADDRESS: reason".
Result<Address> parse_address(const std::string& text, bool port_zero_ok) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return Error(Errc::invalid_argument, "expected HOST:PORT");
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return Error(Errc::invalid_argument, "bad port");
  const unsigned long port = std::stoul(port_text);
  if (port > 65535 || (port == 0 && !port_zero_ok))
    return Error(Errc::invalid_argument, "port out of range");
  Address a;
  a.port = static_cast<std::uint16_t>(port);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']')
      return Error(Errc::invalid_argument, "bad bracketed IPv6 address");
    const std::string inner = host.substr(1, host.size() - 2);
    if (uv_ip6_addr(inner.c_str(), a.port, reinterpret_cast<sockaddr_in6*>(&a.sa)) != 0)
      return Error(Errc::invalid_argument, "bad IPv6 address");
    return a;
  }
  if (host == "localhost") host = "127.0.0.1";
  if (uv_ip4_addr(host.c_str(), a.port, reinterpret_cast<sockaddr_in*>(&a.sa)) == 0) return a;
  if (host.empty()) return Error(Errc::invalid_argument, "empty host");
  if (host.find(':') != std::string::npos)
    return Error(Errc::invalid_argument, "IPv6 addresses go in brackets, like [::1]:7000");
  if (host.size() > 253 ||
      host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
          std::string::npos)
    return Error(Errc::invalid_argument, "bad host name");
  a.kind = Address::Kind::name;
  a.host = std::move(host);
  return a;
}

std::string format_sockaddr(const sockaddr* sa) {
  char name[INET6_ADDRSTRLEN + 1] = {};
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    uv_ip4_name(in, name, sizeof name);
    return std::string(name) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    uv_ip6_name(in6, name, sizeof name);
    return "[" + std::string(name) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "?";
}

std::string reason(int uv_error) { return uv_strerror(uv_error); }

// The peer address of a connected socket, as the node tells the peer it sees it
// (node/reachability.h): an IPv4 peer on an IPv6 listener ("[::ffff:1.2.3.4]:5") as IPv4.
std::string peer_address(const uv_tcp_t* tcp) {
  sockaddr_storage peer{};
  int len = sizeof peer;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return {};
  std::string a = format_sockaddr(reinterpret_cast<const sockaddr*>(&peer));
  constexpr std::string_view mapped = "[::ffff:";
  if (a.rfind(mapped, 0) == 0 && a.find('.') != std::string::npos) {
    const auto close = a.find(']');
    a = a.substr(mapped.size(), close - mapped.size()) + a.substr(close + 1);
  }
  return a == "?" ? std::string() : a;
}

}  // namespace

struct Transport::Impl {
  // One TCP connection, inbound or outbound, from the Dial (or accept) until its handles are
  // closed. Freed when its two handles and any pending resolution have called back; until then
  // the libuv requests embedded in it stay valid.
  struct Conn {
    Impl* owner;  // null once the transport is destroyed
    ConnId id;
    bool outbound;
    std::string address;  // dialled address, or the peer's address for inbound
    enum class State { held, resolving, connecting, open, closing } state = State::open;
    // A hole punch (node_output::Dial::punch): dialled from the listening port, never held in
    // backoff, and its failure does not count for the address's backoff.
    bool punch = false;
    bool node_knows = false;  // the node learned of the id: on_closed is owed unless it closed it
    bool handles_closing = false;
    int refs = 0;  // open handles plus a pending resolution
    uv_tcp_t tcp{};
    uv_timer_t timer{};  // holds a dial in backoff; bounds a graceful close's flush
    uv_connect_t connect_req{};
    uv_shutdown_t shutdown_req{};
    uv_getaddrinfo_t* resolve = nullptr;  // owned by its callback
    std::size_t writes_pending = 0;
    std::size_t write_bytes_pending = 0;
    // Sends of the running drain, written as one uv_write (one syscall) when it ends.
    Bytes outbox;
  };
  struct Write {
    uv_write_t req{};
    Conn* conn;
    Bytes bytes;
  };
  struct Resolve {
    uv_getaddrinfo_t req{};
    Conn* conn;
  };
  struct Listener {
    uv_tcp_t tcp{};
    Impl* owner;
    std::string address;
  };
  struct Timer {
    uv_timer_t timer{};
    Impl* owner;
  };
  struct Backoff {
    std::uint32_t failures = 0;
    Millis next_at = 0;
  };
  enum class Phase { configured, running, shutting_down, done };

  uv_loop_t* loop;
  LogSink log;
  TransportConfig config;
  Node* node = nullptr;
  AppOutput app;
  TransportCounters counters;
  Phase phase = Phase::configured;
  std::vector<Listener*> listeners;  // open or closing
  std::map<ConnId, Conn*> conns;     // connections the node may still use (not closing)
  std::set<Conn*> all;               // every Conn not yet freed
  std::size_t inbound_open = 0;
  ConnId next_inbound = 1;
  Timer* tick = nullptr;
  bool pumping = false;
  bool pump_again = false;
  std::vector<ConnId> outbox_conns;  // connections with bytes in their outbox
  std::map<std::string, Backoff> backoff;
  std::vector<char> read_buffer;
  std::function<void()> done;
  Millis refusal_logged_at = 0;
  std::uint64_t refused_unlogged = 0;

  Impl(uv_loop_t* l, LogSink s, TransportConfig c)
      : loop(l),
        log(std::move(s)),
        config(c),
        read_buffer(std::max<std::size_t>(c.read_buffer_bytes, 1)) {
    tick = new Timer;
    tick->owner = this;
    const int r = uv_timer_init(loop, &tick->timer);
    assert(r == 0);
    (void)r;
    tick->timer.data = tick;
  }

  ~Impl() {
    // Abrupt teardown (shutdown not finished): close every handle; the callbacks see no owner.
    for (Conn* c : all) {
      c->owner = nullptr;
      close_handles(c);
    }
    for (Listener* l : listeners) {
      l->owner = nullptr;
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&l->tcp)))
        uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), on_listener_closed);
    }
    if (tick) {
      tick->owner = nullptr;
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&tick->timer)))
        uv_close(reinterpret_cast<uv_handle_t*>(&tick->timer), on_tick_closed);
    }
  }

  Millis now() const { return uv_now(loop); }

  void note(LogLevel level, std::string message) {
    if (log) log(LogRecord{level, "net", std::move(message)});
  }

  bool driving() const { return phase == Phase::running && node != nullptr; }

  // ------------------------------------------------------------------------------ listening

  Result<std::vector<std::string>> listen(const std::vector<std::string>& addresses) {
    assert(phase == Phase::configured || phase == Phase::running);
    std::vector<Listener*> opened;
    std::vector<std::string> bound;
    auto fail = [&](Errc code, const std::string& address, const std::string& why) {
      for (Listener* l : opened) {
        listeners.erase(std::find(listeners.begin(), listeners.end(), l));
        l->owner = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), on_listener_closed);
      }
      return Error(code, "cannot listen on " + address + ": " + why);
    };
    for (const std::string& text : addresses) {
      auto parsed = parse_address(text, true);
      if (!parsed.ok()) return fail(Errc::invalid_argument, text, parsed.error().context());
      if (parsed->kind != Address::Kind::ip)
        return fail(Errc::invalid_argument, text, "not an IP address or localhost");
      auto* l = new Listener;
      l->owner = this;
      l->tcp.data = l;
      int r = uv_tcp_init(loop, &l->tcp);
      if (r != 0) {
        delete l;
        return fail(Errc::io, text, reason(r));
      }
      listeners.push_back(l);
      opened.push_back(l);
      const auto* sa = reinterpret_cast<const sockaddr*>(&parsed->sa);
      r = uv_tcp_bind(&l->tcp, sa, sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
      // SO_REUSEPORT after the bind: the bind itself still fails when another process holds the
      // port, and hole punches (punch_socket) can then bind their dials to this port.
      if (r == 0) r = allow_port_reuse(&l->tcp);
      if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), SOMAXCONN, on_connection);
      if (r != 0) return fail(Errc::io, text, reason(r));
      sockaddr_storage name{};
      int len = sizeof name;
      r = uv_tcp_getsockname(&l->tcp, reinterpret_cast<sockaddr*>(&name), &len);
      if (r != 0) return fail(Errc::io, text, reason(r));
      l->address = format_sockaddr(reinterpret_cast<const sockaddr*>(&name));
      bound.push_back(l->address);
    }
    for (Listener* l : opened) note(LogLevel::info, "listening on " + l->address);
    return bound;
  }

  static void on_listener_closed(uv_handle_t* h) {
    auto* l = static_cast<Listener*>(h->data);
    Impl* impl = l->owner;
    delete l;
    if (!impl) return;
    auto it = std::find(impl->listeners.begin(), impl->listeners.end(), l);
    if (it != impl->listeners.end()) impl->listeners.erase(it);
    impl->maybe_finish();
  }

  static void on_connection(uv_stream_t* server, int status) {
    auto* l = static_cast<Listener*>(server->data);
    Impl* impl = l->owner;
    if (!impl) return;
    if (status < 0) {
      impl->note(LogLevel::warn, "accept failed on " + l->address + ": " + reason(status));
      return;
    }
    impl->accept(l, server);
  }

  // At the inbound limit, the oldest inbound connection whose handshake has not completed makes
  // room: otherwise whoever holds inbound_conns_max idle sockets (each lasting until the
  // handshake timeout) would keep every new peer out. A peer that completed its handshake has
  // an identity the node can ban; those connections are never evicted here.
  void evict_unauthenticated() {
    std::optional<ConnId> oldest;
    for (const auto& p : node->peers()) {
      if (p.outbound || p.established) continue;
      auto it = conns.find(p.conn);
      if (it == conns.end() || it->second->state != Conn::State::open) continue;
      if (!oldest || p.conn < *oldest) oldest = p.conn;
    }
    if (!oldest) return;
    ++counters.conns_evicted;
    close_conn(conns.at(*oldest), true, "evicted: handshake incomplete at inbound_conns_max");
    pump();
  }

  void accept(Listener* l, uv_stream_t* server) {
    Conn* c = new_conn(0, false, "");
    const int r = uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp));
    if (r != 0) {
      note(LogLevel::warn, "accept failed on " + l->address + ": " + reason(r));
      c->state = Conn::State::closing;
      close_handles(c);
      return;
    }
    sockaddr_storage peer{};
    int len = sizeof peer;
    if (uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&peer), &len) == 0)
      c->address = format_sockaddr(reinterpret_cast<const sockaddr*>(&peer));
    if (driving() && inbound_open >= config.inbound_conns_max) evict_unauthenticated();
    if (!driving() || inbound_open >= config.inbound_conns_max) {
      ++counters.conns_refused;
      ++refused_unlogged;
      if (refusal_logged_at == 0 || now() >= refusal_logged_at + refusal_log_interval_ms) {
        note(LogLevel::warn,
             "refused " + std::to_string(refused_unlogged) +
                 " inbound connection(s) (latest from " + c->address + "): " +
                 (driving() ? "at inbound_conns_max=" + std::to_string(config.inbound_conns_max)
                            : std::string("not running")));
        refusal_logged_at = std::max<Millis>(now(), 1);
        refused_unlogged = 0;
      }
      c->state = Conn::State::closing;
      close_handles(c);
      return;
    }
    tune(c);
    const int rr = uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
    if (rr != 0) {
      note(LogLevel::warn, "cannot read from " + c->address + ": " + reason(rr));
      c->state = Conn::State::closing;
      close_handles(c);
      return;
    }
    c->id = next_inbound++;
    assert(c->id < outbound_conn_first);
    c->node_knows = true;
    c->state = Conn::State::open;
    conns[c->id] = c;
    ++inbound_open;
    ++counters.conns_accepted;
    note(LogLevel::debug, "accepted conn=" + std::to_string(c->id) + " from " + c->address);
    node->on_connected(now(), c->id, false, peer_address(&c->tcp));
    pump();
  }

  // ------------------------------------------------------------------------------ connections

  Conn* new_conn(ConnId id, bool outbound, std::string address) {
    auto* c = new Conn;
    c->owner = this;
    c->id = id;
    c->outbound = outbound;
    c->address = std::move(address);
    c->tcp.data = c;
    c->timer.data = c;
    c->connect_req.data = c;
    c->shutdown_req.data = c;
    int r = uv_tcp_init(loop, &c->tcp);
    assert(r == 0);
    r = uv_timer_init(loop, &c->timer);
    assert(r == 0);
    (void)r;
    c->refs = 2;
    all.insert(c);
    return c;
  }

  // Socket options of every link: no Nagle delay, keepalive, and a short unsent queue in the
  // kernel (notsent_lowat_bytes). Each is best effort: a link works without them.
  static void tune(Conn* c) {
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, keepalive_delay_s);
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) == 0)
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &notsent_lowat_bytes,
                         sizeof notsent_lowat_bytes);
  }

  // Starts reading a connected dial; on failure closes it (reporting) and returns false.
  bool start_reading(Conn* c) {
    tune(c);
    const int r = uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
    if (r != 0) {
      close_conn(c, true, reason(r));
      return false;
    }
    return true;
  }

  static void close_handles(Conn* c) {
    if (c->handles_closing) return;
    c->handles_closing = true;
    if (c->resolve) uv_cancel(reinterpret_cast<uv_req_t*>(c->resolve));
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_conn_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_conn_handle_closed);
  }

  static void release(Conn* c) {
    if (--c->refs > 0) return;
    Impl* impl = c->owner;
    if (impl) impl->all.erase(c);
    delete c;
    if (impl) impl->maybe_finish();  // last: it may call done, which may destroy the transport
  }

  static void on_conn_handle_closed(uv_handle_t* h) { release(static_cast<Conn*>(h->data)); }

  // Takes a connection out of use and closes it at once. When `report` is set and the node
  // knows the id, the node gets on_closed (only while running: never after shutdown starts).
  void close_conn(Conn* c, bool report, const std::string& why) {
    if (c->state == Conn::State::closing) return;
    const bool was_open = c->state == Conn::State::open;
    detach(c);
    if (was_open)
      note(LogLevel::debug, "closed conn=" + std::to_string(c->id) + " " +
                                (c->outbound ? "to " : "from ") + c->address + ": " + why);
    close_handles(c);
    if (report && c->node_knows && driving()) {
      node->on_closed(now(), c->id);
      pump();
    }
  }

  void detach(Conn* c) {
    if (c->id != 0) {
      auto it = conns.find(c->id);
      if (it != conns.end() && it->second == c) conns.erase(it);
    }
    if (!c->outbound && c->node_knows) --inbound_open;
    c->state = Conn::State::closing;
  }

  // Closes after the queued writes reach the kernel (bounded by shutdown_flush_ms_max); never
  // reports to the node. For the node's Close outputs and for shutdown.
  void close_gracefully(Conn* c, const char* why) {
    if (c->state == Conn::State::closing) return;
    if (c->state != Conn::State::open || c->writes_pending == 0) {
      close_conn(c, false, why);
      return;
    }
    note(LogLevel::debug, "closing conn=" + std::to_string(c->id) + " after " +
                              std::to_string(c->write_bytes_pending) + " queued bytes: " + why);
    detach(c);
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
    if (uv_shutdown(&c->shutdown_req, reinterpret_cast<uv_stream_t*>(&c->tcp), on_shutdown) != 0) {
      close_handles(c);
      return;
    }
    uv_timer_start(&c->timer, on_flush_timeout, config.shutdown_flush_ms_max, 0);
  }

  static void on_shutdown(uv_shutdown_t* req, int) { close_handles(static_cast<Conn*>(req->data)); }
  static void on_flush_timeout(uv_timer_t* t) { close_handles(static_cast<Conn*>(t->data)); }

  // ------------------------------------------------------------------------------ dialing

  void dial(const node_output::Dial& d) {
    if (!driving()) return;  // shutting down: the node gets no more inputs, so no on_closed
    assert(d.conn >= outbound_conn_first && !conns.count(d.conn));
    ++counters.dials_started;
    Conn* c = new_conn(d.conn, true, d.address);
    c->node_knows = true;
    c->state = Conn::State::connecting;
    c->punch = d.punch;
    conns[c->id] = c;
    auto parsed = parse_address(c->address, false);
    if (!parsed.ok()) {
      fail_dial(c, parsed.error().context());
      return;
    }
    if (c->punch) {
      if (parsed->kind != Address::Kind::ip) return fail_dial(c, "a punch needs an IP address");
      const auto* sa = reinterpret_cast<const sockaddr*>(&parsed->sa);
      if (int r = punch_socket(c, sa->sa_family); r != 0) return fail_dial(c, reason(r));
      return connect_to(c, sa);
    }
    auto b = backoff.find(c->address);
    if (b != backoff.end() && now() < b->second.next_at) {
      const Millis wait_ms = b->second.next_at - now();
      note(LogLevel::debug, "holding dial conn=" + std::to_string(c->id) + " to " + c->address +
                                " for " + std::to_string(wait_ms) + " ms (backoff)");
      c->state = Conn::State::held;
      uv_timer_start(&c->timer, on_hold_over, wait_ms, 0);
      return;
    }
    connect(c, *parsed);
  }

  static void on_hold_over(uv_timer_t* t) {
    auto* c = static_cast<Conn*>(t->data);
    Impl* impl = c->owner;
    if (!impl || c->state != Conn::State::held) return;
    auto parsed = parse_address(c->address, false);
    assert(parsed.ok());  // it parsed when the dial was held
    impl->connect(c, *parsed);
  }

  void connect(Conn* c, const Address& a) {
    if (a.kind == Address::Kind::name) {
      c->state = Conn::State::resolving;
      auto* r = new Resolve;
      r->conn = c;
      r->req.data = r;
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
      const std::string port = std::to_string(a.port);
      const int rc =
          uv_getaddrinfo(loop, &r->req, on_resolved, a.host.c_str(), port.c_str(), &hints);
      if (rc != 0) {
        delete r;
        fail_dial(c, reason(rc));
        return;
      }
      c->resolve = &r->req;
      ++c->refs;
      return;
    }
    connect_to(c, reinterpret_cast<const sockaddr*>(&a.sa));
  }

  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
    auto* r = static_cast<Resolve*>(req->data);
    Conn* c = r->conn;
    delete r;
    c->resolve = nullptr;
    std::optional<sockaddr_storage> first;
    for (addrinfo* ai = res; ai && !first; ai = ai->ai_next) {
      if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
          ai->ai_addrlen <= sizeof(sockaddr_storage)) {
        sockaddr_storage ss{};
        std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        first = ss;
      }
    }
    if (res) uv_freeaddrinfo(res);
    Impl* impl = c->owner;
    if (impl && c->state == Conn::State::resolving) {
      if (status != 0)
        impl->fail_dial(c, reason(status));
      else if (!first)
        impl->fail_dial(c, "no IPv4 or IPv6 address");
      else
        impl->connect_to(c, reinterpret_cast<const sockaddr*>(&*first));
    }
    release(c);
  }

  void connect_to(Conn* c, const sockaddr* sa) {
    c->state = Conn::State::connecting;
    const int r = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connect);
    if (r != 0) fail_dial(c, reason(r));
  }

  static void on_connect(uv_connect_t* req, int status) {
    auto* c = static_cast<Conn*>(req->data);
    Impl* impl = c->owner;
    if (!impl || c->state != Conn::State::connecting) return;
    if (status != 0) {
      impl->fail_dial(c, reason(status));
      return;
    }
    impl->backoff.erase(c->address);
    c->state = Conn::State::open;
    impl->note(LogLevel::debug, "connected conn=" + std::to_string(c->id) + " to " + c->address);
    if (!impl->start_reading(c)) return;
    impl->node->on_connected(impl->now(), c->id, true, peer_address(&c->tcp));
    impl->pump();
  }

  void fail_dial(Conn* c, const std::string& why) {
    ++counters.dials_failed;
    if (c->punch) {  // a missed punch says nothing about the address for ordinary dials
      note(LogLevel::info, "punch failed conn=" + std::to_string(c->id) + " to " + c->address + ": " + why);
      return close_conn(c, true, why);
    }
    Backoff& b = backoff_entry(c->address);
    ++b.failures;
    Millis delay_ms = config.redial_delay_ms_min;
    for (std::uint32_t i = 1; i < b.failures && delay_ms < config.redial_delay_ms_max; ++i)
      delay_ms *= 2;
    delay_ms = std::min(delay_ms, config.redial_delay_ms_max);
    b.next_at = now() + delay_ms;
    // The first failure of a streak is news; the retries of a dead address are routine.
    note(b.failures == 1 ? LogLevel::info : LogLevel::debug,
         "dial failed conn=" + std::to_string(c->id) + " to " + c->address + ": " + why +
             " (failures=" + std::to_string(b.failures) +
             " retry_after_ms=" + std::to_string(delay_ms) + ")");
    close_conn(c, true, why);
  }

  static int allow_port_reuse(uv_tcp_t* tcp) {
    uv_os_fd_t fd;
    if (int r = uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd); r != 0) return r;
    const int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) return uv_translate_sys_error(errno);
    return 0;
  }

  // Gives a punch dial its socket, bound to the port of a listener of the same family (with
  // SO_REUSEPORT, as the listener has), so that the peer's router sees it come from the port it
  // was told; the simultaneous open then forms one connection. Returns 0 or a libuv error.
  int punch_socket(Conn* c, int family) {
    const Listener* from = nullptr;
    sockaddr_storage local{};
    for (const Listener* l : listeners) {
      int len = sizeof local;
      if (uv_tcp_getsockname(&l->tcp, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
          local.ss_family == family) {
        from = l;
        break;
      }
    }
    if (!from) return UV_EAFNOSUPPORT;
    const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return uv_translate_sys_error(errno);
    const int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        ::bind(fd, reinterpret_cast<const sockaddr*>(&local),
               family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in)) != 0) {
      const int e = errno;
      ::close(fd);
      return uv_translate_sys_error(e);
    }
    if (int r = uv_tcp_open(&c->tcp, fd); r != 0) {
      ::close(fd);
      return r;
    }
    return 0;
  }

  Backoff& backoff_entry(const std::string& address) {
    auto it = backoff.find(address);
    if (it != backoff.end()) return it->second;
    if (backoff.size() >= transport_backoff_addresses_max) {
      auto oldest = std::min_element(
          backoff.begin(), backoff.end(),
          [](const auto& x, const auto& y) { return x.second.next_at < y.second.next_at; });
      backoff.erase(oldest);
    }
    return backoff[address];
  }

  // ------------------------------------------------------------------------------ IO

  static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(h->data);
    if (!c->owner) {
      *buf = uv_buf_init(nullptr, 0);
      return;
    }
    // One buffer serves every connection: each read is handed to the node before the next.
    *buf = uv_buf_init(c->owner->read_buffer.data(),
                       static_cast<unsigned>(c->owner->read_buffer.size()));
  }

  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(s->data);
    Impl* impl = c->owner;
    if (!impl || c->state != Conn::State::open || nread == 0) return;
    if (nread < 0) {
      impl->close_conn(c, true,
                       nread == UV_EOF ? "closed by peer" : reason(static_cast<int>(nread)));
      return;
    }
    const auto n = static_cast<std::size_t>(nread);
    impl->counters.bytes_read += n;
    if (!impl->driving()) return;
    impl->node->on_bytes(impl->now(), c->id,
                         ByteView(reinterpret_cast<const std::uint8_t*>(buf->base), n));
    impl->pump();
  }

  // A node drain often emits several sends to one connection (a push, announcements, a
  // catch-up batch): they are gathered per connection and written together when the drain ends.
  void send(node_output::Send&& s) {
    auto it = conns.find(s.conn);
    if (it == conns.end() || it->second->state != Conn::State::open) {
      note(LogLevel::debug, "dropped a send to conn=" + std::to_string(s.conn) + " (not open)");
      return;
    }
    if (s.bytes.empty()) return;
    Conn* c = it->second;
    if (c->outbox.empty()) {
      outbox_conns.push_back(c->id);
      c->outbox = std::move(s.bytes);
    } else {
      c->outbox.insert(c->outbox.end(), s.bytes.begin(), s.bytes.end());
    }
  }

  void flush_outboxes() {
    std::vector<ConnId> ids;
    ids.swap(outbox_conns);
    for (ConnId id : ids) {
      auto it = conns.find(id);
      if (it != conns.end()) flush_outbox(it->second);
    }
  }

  void flush_outbox(Conn* c) {
    if (c->outbox.empty()) return;
    Bytes bytes = std::move(c->outbox);
    c->outbox = Bytes{};
    if (c->state != Conn::State::open) return;
    auto* w = new Write;
    w->req.data = w;
    w->conn = c;
    w->bytes = std::move(bytes);
    const uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->bytes.data()),
                                     static_cast<unsigned>(w->bytes.size()));
    const int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, on_write);
    if (r != 0) {
      delete w;
      close_conn(c, true, "write: " + reason(r));
      return;
    }
    ++c->writes_pending;
    c->write_bytes_pending += w->bytes.size();
  }

  static void on_write(uv_write_t* req, int status) {
    auto* w = static_cast<Write*>(req->data);
    Conn* c = w->conn;
    const std::size_t n = w->bytes.size();
    delete w;
    --c->writes_pending;
    c->write_bytes_pending -= n;
    Impl* impl = c->owner;
    if (!impl) return;
    if (status == 0) impl->counters.bytes_written += n;
    if (c->state != Conn::State::open) return;
    if (status != 0) {
      impl->close_conn(c, true, "write: " + reason(status));
      return;
    }
    if (!impl->driving()) return;
    impl->node->on_flushed(impl->now(), c->id, n);
    impl->pump();
  }

  // ------------------------------------------------------------------------------ the node

  void pump() {
    if (!node) return;
    if (pumping) {
      pump_again = true;
      return;
    }
    pumping = true;
    do {
      pump_again = false;
      while (auto o = node->poll()) handle(std::move(*o));
    } while (pump_again);
    pumping = false;
    flush_outboxes();
    arm();
  }

  void handle(NodeOutput&& o) {
    if (auto* d = std::get_if<node_output::Dial>(&o)) {
      dial(*d);
    } else if (auto* s = std::get_if<node_output::Send>(&o)) {
      if (phase == Phase::running) send(std::move(*s));
    } else if (auto* cl = std::get_if<node_output::Close>(&o)) {
      auto it = conns.find(cl->conn);
      if (it != conns.end()) {
        flush_outbox(it->second);  // what the node sent before closing goes first
        close_gracefully(it->second, "closed by node");
      }
    } else if (app) {
      app(std::move(o));
    }
  }

  void arm() {
    if (!driving() || !tick) return;
    const auto deadline = node->next_deadline();
    if (!deadline) {
      uv_timer_stop(&tick->timer);
      return;
    }
    const Millis t = now();
    uv_timer_start(&tick->timer, on_tick, *deadline > t ? *deadline - t : 0, 0);
  }

  static void on_tick(uv_timer_t* t) {
    Impl* impl = static_cast<Timer*>(t->data)->owner;
    if (!impl || !impl->driving()) return;
    impl->node->on_tick(impl->now());
    impl->pump();
  }

  static void on_tick_closed(uv_handle_t* h) {
    auto* t = static_cast<Timer*>(h->data);
    Impl* impl = t->owner;
    delete t;
    if (!impl) return;
    impl->tick = nullptr;
    impl->maybe_finish();
  }

  // ------------------------------------------------------------------------------ shutdown

  void shutdown(std::function<void()> on_done) {
    assert(phase != Phase::shutting_down && phase != Phase::done);
    phase = Phase::shutting_down;
    done = std::move(on_done);
    flush_outboxes();
    note(LogLevel::info, "shutting down: " + std::to_string(conns.size()) + " connection(s)");
    for (Listener* l : listeners) {
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&l->tcp)))
        uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), on_listener_closed);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&tick->timer), on_tick_closed);
    std::vector<Conn*> open;
    for (auto& [id, c] : conns) open.push_back(c);
    for (Conn* c : open) close_gracefully(c, "shutting down");
    // Every close above completes in a later callback, the tick timer's at least, so done is
    // never called from within shutdown().
  }

  void maybe_finish() {
    if (phase != Phase::shutting_down || !all.empty() || !listeners.empty() || tick) return;
    phase = Phase::done;
    node = nullptr;  // pump() is a no-op from here: the node may be destroyed
    note(LogLevel::info, "shut down");
    auto d = std::move(done);
    if (d) d();  // last: done may destroy the transport
  }
};

Transport::Transport(uv_loop_t* loop, LogSink log, TransportConfig config)
    : impl_(std::make_unique<Impl>(loop, std::move(log), config)) {}

Transport::~Transport() = default;

Result<std::vector<std::string>> Transport::listen(const std::vector<std::string>& addresses) {
  return impl_->listen(addresses);
}

void Transport::start(Node& node, AppOutput app) {
  assert(impl_->phase == Impl::Phase::configured);
  impl_->node = &node;
  impl_->app = std::move(app);
  impl_->phase = Impl::Phase::running;
  impl_->pump();
}

Millis Transport::now() const { return impl_->now(); }

void Transport::pump() { impl_->pump(); }

void Transport::shutdown(std::function<void()> done) { impl_->shutdown(std::move(done)); }

const TransportCounters& Transport::counters() const { return impl_->counters; }

std::size_t Transport::connections() const { return impl_->conns.size(); }

}  // namespace qun
