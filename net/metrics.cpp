#include "net/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "base/bytes.h"
#include "net/notify.h"
#include "node/node.h"
#include "store/store.h"

namespace qun::metrics {
namespace {

std::string escape(std::string_view s, bool quotes) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quotes) out += "\\\"";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Counters and sizes are integers: print them exactly (up to 2^53), not as 1.2e+09.
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

std::string exposition(const std::vector<Family>& families) {
  std::string out;
  for (const auto& f : families) {
    out += "# HELP " + f.name + " " + escape(f.help, false) + "\n";
    out += "# TYPE " + f.name + " " + (f.type == Type::counter ? "counter" : "gauge") + "\n";
    for (const auto& s : f.samples) {
      out += f.name;
      if (!s.labels.empty()) {
        out += "{";
        for (std::size_t i = 0; i < s.labels.size(); ++i) {
          if (i) out += ",";
          out += s.labels[i].first + "=\"" + escape(s.labels[i].second, true) + "\"";
        }
        out += "}";
      }
      out += " " + number(s.value) + "\n";
    }
  }
  return out;
}

ProcessFigures process_figures() {
  ProcessFigures p;
  // /proc/self/stat: the command name (field 2) is in parentheses and may hold spaces, so the
  // fields are counted from the last ')'. utime and stime are fields 14 and 15, in clock ticks.
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    const auto close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(line.substr(close + 2));
      std::string field;
      std::uint64_t utime = 0, stime = 0;
      bool ok = true;
      for (int i = 3; i <= 15 && ok; ++i) {
        ok = static_cast<bool>(rest >> field);
        if (ok && i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
        if (ok && i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
      }
      const long ticks = ::sysconf(_SC_CLK_TCK);
      if (ok && ticks > 0) p.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
    }
  }
  // /proc/self/statm: size and resident, in pages.
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  if (statm >> size >> resident) {
    const long page = ::sysconf(_SC_PAGESIZE);
    if (page > 0) p.resident_bytes = static_cast<double>(resident) * static_cast<double>(page);
  }
  return p;
}

std::vector<Family> node_families(const Node& node, const Store& store, bool relay,
                                  const notify::NotifierStats* notify,
                                  std::uint64_t notify_failed) {
  std::vector<Family> out;
  auto one = [&](std::string name, std::string help, Type type, double value) {
    out.push_back(Family{std::move(name), std::move(help), type, {Sample{{}, value}}});
  };
  auto d = [](std::uint64_t v) { return static_cast<double>(v); };
  const NodeStats& s = node.stats();
  const std::vector<Hash> groups = node.groups();

  out.push_back(Family{"qun_node_info", "The node: its mode (member or relay) and short id.",
                       Type::gauge,
                       {Sample{{{"mode", relay ? "relay" : "member"},
                                {"id", to_hex(node.id()).substr(0, 16)}},
                               1}}});
  one("qun_groups", relay ? "Groups this relay serves." : "Groups this node holds.", Type::gauge,
      d(groups.size()));
  Family bytes{"qun_group_bytes",
               "Stored bytes of a group's events (a relay bounds it with relay.max_group_bytes).",
               Type::gauge, {}};
  Family refused{"qun_group_events_refused_total",
                 "Events of a group refused past its byte bound (relay), since start.",
                 Type::counter, {}};
  double bytes_total = 0;
  for (const auto& g : groups) {
    const double b = d(node.group_bytes(g));
    bytes_total += b;
    if (bytes.samples.size() >= group_series_max) continue;
    const std::string id = to_hex(g);
    bytes.samples.push_back(Sample{{{"group", id}}, b});
    refused.samples.push_back(Sample{{{"group", id}}, d(node.group_events_refused(g))});
  }
  out.push_back(std::move(bytes));
  if (relay) out.push_back(std::move(refused));
  one("qun_group_bytes_all", "Stored bytes of every group's events together.", Type::gauge,
      bytes_total);

  one("qun_events_received_total", "Event copies received from peers.", Type::counter,
      d(s.events_received));
  one("qun_events_sent_total", "Event copies sent to peers (pushes and catch-up).", Type::counter,
      d(s.events_sent));
  one("qun_events_duplicate_total", "Event copies received that this node already had.",
      Type::counter, d(s.events_duplicate));
  out.push_back(Family{
      "qun_events_refused_total",
      "Events received and not kept, by reason: rejected (failed admission: signature, rights, "
      "form), full (past a relay's byte bound), over_rate (past the author's rate bound), "
      "former_author (by a former member, needed by nobody), pending_dropped (waiting for "
      "parents that did not come, past a bound or with their sender gone).",
      Type::counter,
      {Sample{{{"reason", "rejected"}}, d(s.events_rejected)},
       Sample{{{"reason", "full"}}, d(s.events_refused_full)},
       Sample{{{"reason", "over_rate"}}, d(s.events_over_rate)},
       Sample{{{"reason", "former_author"}}, d(s.events_former_author)},
       Sample{{{"reason", "pending_dropped"}}, d(s.events_pending_dropped)}}});
  one("qun_messages_malformed_total", "Wire messages from peers that did not decode.",
      Type::counter, d(s.messages_malformed));
  one("qun_links_closed_misbehaving_total", "Links closed because the peer misbehaved.",
      Type::counter, d(s.links_closed_misbehaving));

  double established = 0, opening = 0, inbound = 0, outbound = 0;
  for (const auto& p : node.peers()) {
    (p.established ? established : opening) += 1;
    (p.outbound ? outbound : inbound) += 1;
  }
  out.push_back(Family{"qun_links",
                       "Links to peers: established, or opening (handshake not done).",
                       Type::gauge,
                       {Sample{{{"state", "established"}}, established},
                        Sample{{{"state", "opening"}}, opening}}});
  out.push_back(Family{"qun_links_by_direction", "Links to peers by who dialled.", Type::gauge,
                       {Sample{{{"direction", "inbound"}}, inbound},
                        Sample{{{"direction", "outbound"}}, outbound}}});
  one("qun_bytes_sent_total", "Bytes sent to peers.", Type::counter, d(s.bytes_sent));
  one("qun_bytes_received_total", "Bytes received from peers.", Type::counter, d(s.bytes_received));

  if (relay) {
    out.push_back(Family{"qun_serve_requests_total",
                         "Requests to serve a group: accepted, refused, or kept waiting for the "
                         "operator's approval.",
                         Type::counter,
                         {Sample{{{"result", "accepted"}}, d(s.serves_accepted)},
                          Sample{{{"result", "refused"}}, d(s.serves_refused)},
                          Sample{{{"result", "waiting"}}, d(s.serves_waiting)}}});
    one("qun_serve_requests_waiting", "Serve requests now waiting for `qun relay approve`.",
        Type::gauge, d(node.serve_waiting().size()));
    one("qun_groups_dropped_total", "Groups dropped after probation (no requester was an admin).",
        Type::counter, d(s.groups_dropped));
    const RelayedLinks& rl = node.relayed();
    one("qun_relay_reservations", "Members behind NAT holding a reservation on this relay.",
        Type::gauge, d(rl.reservations()));
    one("qun_relayed_links", "Relayed links this relay carries now.", Type::gauge,
        d(rl.relayed_links()));
    one("qun_relayed_links_max", "Relayed links this relay carries at most (--max-relayed-links).",
        Type::gauge, d(rl.config().relayed_links_max));
    one("qun_relayed_bytes_total", "Bytes of relayed links forwarded (ciphertext).", Type::counter,
        d(rl.stats().relayed_bytes));
    out.push_back(Family{"qun_relayed_links_ended_total",
                         "Relayed links refused or closed by this relay, by reason: full (past "
                         "--max-relayed-links), refused (any refusal), bytes (past "
                         "--max-relayed-link-mib), window (a sender overran its window).",
                         Type::counter,
                         {Sample{{{"reason", "full"}}, d(rl.stats().splices_refused_full)},
                          Sample{{{"reason", "refused"}}, d(rl.stats().splices_refused)},
                          Sample{{{"reason", "bytes"}}, d(rl.stats().splices_closed_bytes)},
                          Sample{{{"reason", "window"}}, d(rl.stats().splices_closed_window)}}});
  }

  if (notify)
    out.push_back(Family{"qun_notifications_total",
                         "Mentions by what became of them: run (the command started), focused (a "
                         "chat client had focus), rate (past the rate bound), failed (could not "
                         "start, or too many still running).",
                         Type::counter,
                         {Sample{{{"result", "run"}}, d(notify->runs - std::min(notify->runs, notify_failed))},
                          Sample{{{"result", "focused"}}, d(notify->skipped_focused)},
                          Sample{{{"result", "rate"}}, d(notify->dropped_rate)},
                          Sample{{{"result", "failed"}}, d(notify_failed)}}});

  if (auto used = store.used_bytes(); used.ok())
    one("qun_store_bytes", "Bytes the store's data occupies (LMDB pages in use).", Type::gauge,
        d(used.value()));

  const ProcessFigures p = process_figures();
  if (p.cpu_seconds)
    one("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", Type::counter,
        *p.cpu_seconds);
  if (p.resident_bytes)
    one("process_resident_memory_bytes", "Resident memory size, in bytes.", Type::gauge,
        *p.resident_bytes);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The HTTP responder.

namespace {

std::string response(int status, const char* reason, const std::string& type,
                     const std::string& body, bool head) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  r += "Content-Type: " + type + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Connection: close\r\n\r\n";
  if (!head) r += body;
  return r;
}

}  // namespace

struct MetricsServer::Impl {
  struct Conn {
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    uv_write_t write{};
    Impl* owner = nullptr;
    std::string request;
    std::string reply;
    bool answered = false;
    int open_handles = 2;
  };

  uv_loop_t* loop;
  LogSink log;
  std::unique_ptr<uv_tcp_t> listener;
  std::function<std::string()> body;
  std::set<Conn*> conns;
  std::uint64_t refused = 0;

  void note(LogLevel level, const std::string& m) { log(LogRecord{level, "metrics", m}); }

  static void on_handle_closed(uv_handle_t* h) {
    auto* c = static_cast<Conn*>(h->data);
    if (--c->open_handles == 0) delete c;
  }

  void drop(Conn* c) {
    if (!conns.erase(c)) return;
    c->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_handle_closed);
  }

  void answer(Conn* c, std::string reply) {
    c->answered = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
    c->reply = std::move(reply);
    uv_buf_t buf = uv_buf_init(c->reply.data(), static_cast<unsigned>(c->reply.size()));
    c->write.data = c;
    int r = uv_write(&c->write, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1,
                     [](uv_write_t* w, int) {
                       auto* c = static_cast<Conn*>(w->data);
                       if (c->owner) c->owner->drop(c);
                     });
    if (r != 0) drop(c);
  }

  // A whole request head arrived: answer it from its request line.
  void handle(Conn* c) {
    const std::string line = c->request.substr(0, c->request.find_first_of("\r\n"));
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
    const std::string text = "text/plain; charset=utf-8";
    if (sp2 == std::string::npos || line.compare(sp2 + 1, 7, "HTTP/1.") != 0)
      return answer(c, response(400, "Bad Request", text, "bad request line\n", false));
    const std::string method = line.substr(0, sp1);
    std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    target = target.substr(0, target.find('?'));
    const bool head = method == "HEAD";
    if (method != "GET" && !head)
      return answer(c, response(405, "Method Not Allowed", text, "only GET\n", false));
    if (target != "/metrics")
      return answer(c, response(404, "Not Found", text, "metrics are at /metrics\n", head));
    answer(c, response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body(), head));
  }

  void on_read(Conn* c, ssize_t n, const uv_buf_t* buf) {
    if (n < 0) {
      delete[] buf->base;
      return drop(c);
    }
    if (n > 0 && !c->answered) {
      c->request.append(buf->base, static_cast<std::size_t>(n));
      if (c->request.find("\r\n\r\n") != std::string::npos ||
          c->request.find("\n\n") != std::string::npos) {
        handle(c);
      } else if (c->request.size() >= request_bytes_max) {
        answer(c, response(431, "Request Header Fields Too Large", "text/plain; charset=utf-8",
                           "request larger than " + std::to_string(request_bytes_max) + " bytes\n",
                           false));
      }
    }
    delete[] buf->base;
  }

  void accept() {
    auto* c = new Conn;
    c->owner = this;
    c->tcp.data = c->timer.data = c;
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    if (uv_accept(reinterpret_cast<uv_stream_t*>(listener.get()), reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0 ||
        conns.size() >= connections_max) {
      if (conns.size() >= connections_max && refused++ % 100 == 0)
        note(LogLevel::warn, "refused a scrape connection: " + std::to_string(connections_max) +
                                 " open already");
      c->owner = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_handle_closed);
      uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_handle_closed);
      return;
    }
    conns.insert(c);
    uv_timer_start(&c->timer, [](uv_timer_t* t) {
      auto* c = static_cast<Conn*>(t->data);
      if (c->owner) c->owner->drop(c);
    }, request_timeout_ms, 0);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
          // One request bound's worth per read, whatever libuv suggests.
          auto* c = static_cast<Conn*>(h->data);
          const std::size_t room = request_bytes_max - std::min(request_bytes_max, c->request.size());
          const std::size_t size = std::max<std::size_t>(room, 1);
          *buf = uv_buf_init(new char[size], static_cast<unsigned>(size));
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* c = static_cast<Conn*>(s->data);
          if (!c->owner) {
            delete[] buf->base;
            return;
          }
          c->owner->on_read(c, n, buf);
        });
  }
};

MetricsServer::MetricsServer(uv_loop_t* loop, LogSink log) : impl_(new Impl{loop, std::move(log), {}, {}, {}, 0}) {}

MetricsServer::~MetricsServer() { close(); }

std::size_t MetricsServer::connections() const { return impl_->conns.size(); }

Result<std::string> MetricsServer::listen(const std::string& address,
                                          std::function<std::string()> body) {
  auto fail = [&](const std::string& why) {
    return Error(Errc::invalid_argument, "cannot serve metrics on " + address + ": " + why);
  };
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return fail("expected HOST:PORT, like 127.0.0.1:9420");
  std::string host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos || std::stoul(port_text) > 65535)
    return fail("bad port");
  const int port = static_cast<int>(std::stoul(port_text));
  sockaddr_storage sa{};
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    if (uv_ip6_addr(host.substr(1, host.size() - 2).c_str(), port, reinterpret_cast<sockaddr_in6*>(&sa)) != 0)
      return fail("bad IPv6 address");
  } else if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&sa)) != 0) {
    return fail("not an IP address (IPv6 goes in brackets, like [::1]:9420)");
  }
  impl_->body = std::move(body);
  impl_->listener = std::make_unique<uv_tcp_t>();
  uv_tcp_t* l = impl_->listener.get();
  uv_tcp_init(impl_->loop, l);
  l->data = impl_.get();
  const auto* addr = reinterpret_cast<const sockaddr*>(&sa);
  int r = uv_tcp_bind(l, addr, addr->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
  if (r == 0)
    r = uv_listen(reinterpret_cast<uv_stream_t*>(l), 16, [](uv_stream_t* s, int status) {
      auto* impl = static_cast<Impl*>(s->data);
      if (status == 0 && impl) impl->accept();
    });
  sockaddr_storage name{};
  int len = sizeof name;
  if (r == 0) r = uv_tcp_getsockname(l, reinterpret_cast<sockaddr*>(&name), &len);
  if (r != 0) {
    close();
    return fail(uv_strerror(r));
  }
  char text[INET6_ADDRSTRLEN + 1] = {};
  std::string bound;
  if (name.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&name), text, sizeof text);
    bound = "[" + std::string(text) + "]:" + std::to_string(ntohs(reinterpret_cast<const sockaddr_in6*>(&name)->sin6_port));
  } else {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&name), text, sizeof text);
    bound = std::string(text) + ":" + std::to_string(ntohs(reinterpret_cast<const sockaddr_in*>(&name)->sin_port));
  }
  impl_->note(LogLevel::info, "serving metrics on http://" + bound + "/metrics");
  return bound;
}

void MetricsServer::close() {
  if (!impl_) return;
  while (!impl_->conns.empty()) impl_->drop(*impl_->conns.begin());
  if (impl_->listener) {
    uv_tcp_t* l = impl_->listener.release();
    l->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(l), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
}

}  // namespace qun::metrics
