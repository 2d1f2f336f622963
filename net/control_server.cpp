#include "net/control_server.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace qun {
namespace {

// Bytes read from a client at a time (one buffer serves every client: each read is fed to its
// FrameReader before the next).
constexpr std::size_t read_buffer_bytes = 64 * 1024;
// Pending connections the kernel holds for us: more than control_clients_max arriving at once.
constexpr int listen_backlog = 128;

}  // namespace

struct ControlServer::Impl {
  struct Client {
    Impl* owner;  // null once the server is destroyed
    ClientId id = 0;
    bool accepted = false;  // counted as a client: on_closed is owed
    bool closing = false;
    uv_pipe_t pipe{};
    control::FrameReader reader;
    std::size_t queued_bytes = 0;
  };
  struct Write {
    uv_write_t req{};
    Client* client;
    Bytes bytes;
  };
  template <typename Handle>
  struct Owned {  // a handle of the server's own (the listener, the finishing timer)
    Handle handle{};
    Impl* owner;
  };
  enum class Phase { idle, listening, shutting_down, done };

  uv_loop_t* loop;
  LogSink log;
  Handlers handlers;
  std::string path;
  bool path_bound = false;
  Phase phase = Phase::idle;
  Owned<uv_pipe_t>* listener = nullptr;
  // Exists until shutdown, so that done always comes from a close callback, even when nothing
  // else was open.
  Owned<uv_timer_t>* marker = nullptr;
  std::map<ClientId, Client*> clients;  // connected and not closing
  std::set<Client*> all;                // every Client not yet freed
  ClientId next_id = 1;
  std::function<void()> done;
  std::vector<char> read_buffer = std::vector<char>(read_buffer_bytes);

  Impl(uv_loop_t* l, LogSink s) : loop(l), log(std::move(s)) {
    marker = new Owned<uv_timer_t>;
    marker->owner = this;
    marker->handle.data = marker;
    const int r = uv_timer_init(loop, &marker->handle);
    assert(r == 0);
    (void)r;
  }

  ~Impl() {
    for (Client* c : all) {
      c->owner = nullptr;
      if (!c->closing) {
        c->closing = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), on_client_closed);
      }
    }
    if (listener) {
      listener->owner = nullptr;
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&listener->handle)))
        uv_close(reinterpret_cast<uv_handle_t*>(&listener->handle), on_listener_closed);
    }
    if (marker) {
      marker->owner = nullptr;
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&marker->handle)))
        uv_close(reinterpret_cast<uv_handle_t*>(&marker->handle), on_marker_closed);
    }
    unlink_path();
  }

  void note(LogLevel level, std::string message) {
    if (log) log(LogRecord{level, "control", std::move(message)});
  }

  void unlink_path() {
    if (!path_bound) return;
    path_bound = false;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      note(LogLevel::warn, "cannot remove " + path + ": " + std::strerror(errno));
  }

  // ------------------------------------------------------------------------------ listening

  Result<void> listen(const std::string& socket_path, Handlers h) {
    assert(phase == Phase::idle);
    auto fail = [&](Errc code, const std::string& why) {
      return Error(code, "cannot listen on " + socket_path + ": " + why);
    };
    if (socket_path.empty()) return fail(Errc::invalid_argument, "empty path");
    if (socket_path.size() >= sizeof(sockaddr_un::sun_path))
      return fail(Errc::invalid_argument,
                  "path too long for a Unix socket (" + std::to_string(socket_path.size()) +
                      " bytes, at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + ")");
    struct stat st {};
    if (::lstat(socket_path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        return fail(Errc::already_exists, "a file that is not a socket is there");
      if (::unlink(socket_path.c_str()) != 0)
        return fail(Errc::io,
                    std::string("cannot remove the stale socket: ") + std::strerror(errno));
      note(LogLevel::debug, "removed a stale control socket at " + socket_path);
    } else if (errno != ENOENT) {
      return fail(Errc::io, std::strerror(errno));
    }

    auto* l = new Owned<uv_pipe_t>;
    l->owner = this;
    l->handle.data = l;
    int r = uv_pipe_init(loop, &l->handle, 0);
    if (r != 0) {
      delete l;
      return fail(Errc::io, uv_strerror(r));
    }
    listener = l;
    auto close_listener = [&] {
      listener = nullptr;
      l->owner = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(&l->handle), on_listener_closed);
    };
    // The socket is created with no permission for group and others, and chmod-ed to 0600 after:
    // at no moment can another user connect.
    const mode_t old_mask = ::umask(0177);
    r = uv_pipe_bind(&l->handle, socket_path.c_str());
    ::umask(old_mask);
    if (r != 0) {
      close_listener();
      return fail(Errc::io, uv_strerror(r));
    }
    path = socket_path;
    path_bound = true;
    if (::chmod(socket_path.c_str(), 0600) != 0) {
      const std::string why = std::string("chmod: ") + std::strerror(errno);
      close_listener();
      unlink_path();
      return fail(Errc::io, why);
    }
    r = uv_listen(reinterpret_cast<uv_stream_t*>(&l->handle), listen_backlog, on_connection);
    if (r != 0) {
      close_listener();
      unlink_path();
      return fail(Errc::io, uv_strerror(r));
    }
    handlers = std::move(h);
    phase = Phase::listening;
    note(LogLevel::info, "control socket at " + socket_path);
    return ok_result();
  }

  static void on_listener_closed(uv_handle_t* h) {
    auto* l = static_cast<Owned<uv_pipe_t>*>(h->data);
    Impl* impl = l->owner;
    delete l;
    if (!impl) return;
    impl->listener = nullptr;
    impl->maybe_finish();
  }

  static void on_marker_closed(uv_handle_t* h) {
    auto* m = static_cast<Owned<uv_timer_t>*>(h->data);
    Impl* impl = m->owner;
    delete m;
    if (!impl) return;
    impl->marker = nullptr;
    impl->maybe_finish();
  }

  static void on_connection(uv_stream_t* server, int status) {
    Impl* impl = static_cast<Owned<uv_pipe_t>*>(server->data)->owner;
    if (!impl) return;
    if (status < 0) {
      impl->note(LogLevel::warn, std::string("control accept failed: ") + uv_strerror(status));
      return;
    }
    impl->accept(server);
  }

  void accept(uv_stream_t* server) {
    auto* c = new Client;
    c->owner = this;
    c->pipe.data = c;
    int r = uv_pipe_init(loop, &c->pipe, 0);
    if (r != 0) {
      delete c;
      note(LogLevel::warn, std::string("control accept failed: ") + uv_strerror(r));
      return;
    }
    all.insert(c);
    r = uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->pipe));
    if (r != 0) {
      note(LogLevel::warn, std::string("control accept failed: ") + uv_strerror(r));
      close_now(c);
      return;
    }
    if (phase != Phase::listening || clients.size() >= control_clients_max) {
      note(LogLevel::warn,
           "refused a control client: " + std::to_string(clients.size()) +
               " connected (control_clients_max=" + std::to_string(control_clients_max) + ")");
      close_now(c);
      return;
    }
    r = uv_read_start(reinterpret_cast<uv_stream_t*>(&c->pipe), on_alloc, on_read);
    if (r != 0) {
      note(LogLevel::warn, std::string("control client read failed: ") + uv_strerror(r));
      close_now(c);
      return;
    }
    c->id = next_id++;
    c->accepted = true;
    clients[c->id] = c;
    note(LogLevel::debug, "control client " + std::to_string(c->id) + " connected");
  }

  // ------------------------------------------------------------------------------ clients

  void close_now(Client* c) {
    if (c->closing) return;
    c->closing = true;
    if (c->accepted) clients.erase(c->id);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), on_client_closed);
  }

  static void on_client_closed(uv_handle_t* h) {
    auto* c = static_cast<Client*>(h->data);
    Impl* impl = c->owner;
    const ClientId id = c->id;
    const bool owed = c->accepted;
    if (impl) impl->all.erase(c);
    delete c;
    if (!impl) return;
    if (owed) impl->note(LogLevel::debug, "control client " + std::to_string(id) + " closed");
    if (owed && impl->phase == Phase::listening && impl->handlers.on_closed)
      impl->handlers.on_closed(id);
    impl->maybe_finish();  // last: it may call done, which may destroy the server
  }

  static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    Impl* impl = static_cast<Client*>(h->data)->owner;
    if (!impl) {
      *buf = uv_buf_init(nullptr, 0);
      return;
    }
    *buf = uv_buf_init(impl->read_buffer.data(), static_cast<unsigned>(impl->read_buffer.size()));
  }

  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<Client*>(s->data);
    Impl* impl = c->owner;
    if (!impl || c->closing || nread == 0) return;
    if (nread < 0) {
      if (nread != UV_EOF)
        impl->note(LogLevel::debug, "control client " + std::to_string(c->id) +
                                        " read failed: " + uv_strerror(static_cast<int>(nread)));
      impl->close_now(c);
      return;
    }
    c->reader.feed(ByteView(reinterpret_cast<const std::uint8_t*>(buf->base),
                            static_cast<std::size_t>(nread)));
    // A handler may close this client or shut the server down: stop at once when it does.
    while (!c->closing && impl->phase == Phase::listening) {
      auto next = c->reader.next();
      if (!next.ok()) {
        impl->note(LogLevel::warn, "control client " + std::to_string(c->id) +
                                       " sent a malformed message: " + next.error().context());
        // Written now if the socket has room (it has, unless the client stopped reading); the
        // close right after does not wait for it.
        impl->send_to(
            c, control::Json{{"ok", false},
                             {"error", "malformed control message: " + next.error().context()}});
        impl->close_now(c);
        return;
      }
      if (!*next) return;
      if (impl->handlers.on_request) impl->handlers.on_request(c->id, std::move(**next));
    }
  }

  bool send(ClientId id, const control::Json& message) {
    if (phase != Phase::listening) return false;
    auto it = clients.find(id);
    if (it == clients.end()) return false;
    return send_to(it->second, message);
  }

  bool send_to(Client* c, const control::Json& message) {
    if (c->closing) return false;
    Bytes frame = control::frame(message);
    if (frame.size() - 4 > control::frame_bytes_max) {
      // A bug of ours: the client would reject the frame and hang up. Answer the request, if
      // it is one, with an error it can read instead.
      note(LogLevel::error, "control message of " + std::to_string(frame.size()) +
                                " bytes to client " + std::to_string(c->id) + " is too large");
      if (!message.is_object() || !message.contains("id")) return true;
      frame = control::frame(
          control::Json{{"id", message["id"]}, {"ok", false}, {"error", "response too large"}});
    }
    if (c->queued_bytes + frame.size() > control_client_queue_bytes_max) {
      note(LogLevel::warn, "control client " + std::to_string(c->id) + " has " +
                               std::to_string(c->queued_bytes) +
                               " unsent bytes (control_client_queue_bytes_max): disconnecting");
      close_now(c);
      return false;
    }
    auto* w = new Write;
    w->req.data = w;
    w->client = c;
    w->bytes = std::move(frame);
    const uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->bytes.data()),
                                     static_cast<unsigned>(w->bytes.size()));
    const int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->pipe), &buf, 1, on_write);
    if (r != 0) {
      delete w;
      note(LogLevel::debug,
           "control client " + std::to_string(c->id) + " write failed: " + uv_strerror(r));
      close_now(c);
      return false;
    }
    c->queued_bytes += w->bytes.size();
    return true;
  }

  static void on_write(uv_write_t* req, int status) {
    auto* w = static_cast<Write*>(req->data);
    Client* c = w->client;
    c->queued_bytes -= w->bytes.size();
    delete w;
    Impl* impl = c->owner;
    if (!impl || c->closing || status == 0) return;
    impl->note(LogLevel::debug,
               "control client " + std::to_string(c->id) + " write failed: " + uv_strerror(status));
    impl->close_now(c);
  }

  void close_client(ClientId id) {
    auto it = clients.find(id);
    if (it != clients.end()) close_now(it->second);
  }

  // ------------------------------------------------------------------------------ shutdown

  void shutdown(std::function<void()> on_done) {
    assert(phase == Phase::idle || phase == Phase::listening);
    phase = Phase::shutting_down;
    done = std::move(on_done);
    if (listener && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&listener->handle)))
      uv_close(reinterpret_cast<uv_handle_t*>(&listener->handle), on_listener_closed);
    unlink_path();
    std::vector<Client*> open(all.begin(), all.end());
    for (Client* c : open) close_now(c);
    uv_close(reinterpret_cast<uv_handle_t*>(&marker->handle), on_marker_closed);
  }

  void maybe_finish() {
    if (phase != Phase::shutting_down || !all.empty() || listener || marker) return;
    phase = Phase::done;
    auto d = std::move(done);
    if (d) d();  // last: done may destroy the server
  }
};

ControlServer::ControlServer(uv_loop_t* loop, LogSink log)
    : impl_(std::make_unique<Impl>(loop, std::move(log))) {}

ControlServer::~ControlServer() = default;

Result<void> ControlServer::listen(const std::string& path, Handlers handlers) {
  return impl_->listen(path, std::move(handlers));
}

bool ControlServer::send(ClientId client, const control::Json& message) {
  return impl_->send(client, message);
}

void ControlServer::close_client(ClientId client) { impl_->close_client(client); }

std::size_t ControlServer::clients() const { return impl_->clients.size(); }

void ControlServer::shutdown(std::function<void()> done) { impl_->shutdown(std::move(done)); }

}  // namespace qun
