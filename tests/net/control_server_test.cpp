// ControlServer: raw Unix-socket clients against the server on one uv loop. Each client's
// socket is watched by a uv_poll_t so the loop wakes when the server writes to it; the loop
// runs until a condition holds, bounded by a guard timer; nothing sleeps.
#include "net/control_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/control.h"
#include "net/log_stderr.h"
#include "tests/net/uv_loop.h"
#include "tests/temp_dir.h"

using namespace qun;
using Json = control::Json;

namespace {

using test::Loop;

// A fresh directory under the temp dir, removed at the end.

// A raw, non-blocking Unix-socket client. Whatever the server writes is read into `received`
// by a uv_poll_t callback; `ended` is set at EOF or a reset.
struct Client {
  int fd = -1;
  uv_poll_t* poll = new uv_poll_t{};  // freed by its close callback, which may run after us
  bool polling = false;
  Bytes received;
  bool ended = false;

  Client(uv_loop_t* loop, const std::string& path) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(uv_poll_init(loop, poll, fd) == 0);
    poll->data = this;
    polling = true;
    uv_poll_start(poll, UV_READABLE,
                  [](uv_poll_t* p, int, int) { static_cast<Client*>(p->data)->drain(); });
  }
  ~Client() {
    stop();
    if (fd >= 0) ::close(fd);
  }
  void stop() {
    if (!polling) return;
    polling = false;
    uv_close(reinterpret_cast<uv_handle_t*>(poll),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  }
  void drain() {
    std::uint8_t buf[65536];
    while (true) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        received.insert(received.end(), buf, buf + n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      ended = true;  // 0: EOF; ECONNRESET: closed with our bytes unread
      uv_poll_stop(poll);
      return;
    }
  }
  void write(ByteView bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
  }
  // Every complete frame received so far, decoded.
  std::vector<Json> frames() const {
    control::FrameReader reader;
    reader.feed(received);
    std::vector<Json> out;
    while (true) {
      auto next = reader.next();
      REQUIRE(next.ok());
      if (!*next) break;
      out.push_back(std::move(**next));
    }
    return out;
  }
};

// A server whose handler answers {"id", "op"} requests with {"id", "ok": true, "result": op}
// and records what it saw.
struct Echo {
  ControlServer server;
  std::vector<std::pair<ControlServer::ClientId, Json>> requests;
  std::vector<ControlServer::ClientId> closed;
  std::function<void(ControlServer::ClientId, const Json&)> extra;

  Echo(uv_loop_t* loop, const std::string& path) : server(loop, null_log_sink()) {
    ControlServer::Handlers h;
    h.on_request = [this](ControlServer::ClientId id, Json request) {
      requests.push_back({id, request});
      if (extra) extra(id, request);
      server.send(
          id,
          Json{{"id", request.value("id", 0)}, {"ok", true}, {"result", request.value("op", "")}});
    };
    h.on_closed = [this](ControlServer::ClientId id) { closed.push_back(id); };
    auto r = server.listen(path, std::move(h));
    if (!r.ok()) FAIL(r.error().message());
  }
  void shut_down(Loop& loop) {
    bool done = false;
    server.shutdown([&] { done = true; });
    REQUIRE_FALSE(done);
    REQUIRE(loop.run_until([&] { return done; }));
  }
};

}  // namespace

// Proves a request framed by a client reaches on_request and the handler's response reaches the
// client as a frame; the socket is a 0600 socket; a client hanging up is reported by on_closed;
// shutdown calls done and removes the socket file.
TEST_CASE("control server: request and response", "[net]") {
  Loop loop;
  qun::test::TempDir dir{"qun-net"};
  const std::string path = dir.path() + "/control.sock";
  {
    Echo echo(&loop.loop, path);
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);

    Client c(&loop.loop, path);
    c.write(control::frame(Json{{"id", 7}, {"op", "status"}}));
    REQUIRE(loop.run_until([&] { return c.frames().size() == 1; }));
    REQUIRE(echo.requests.size() == 1);
    CHECK(echo.requests[0].second == Json{{"id", 7}, {"op", "status"}});
    CHECK(c.frames()[0] == Json{{"id", 7}, {"ok", true}, {"result", "status"}});
    CHECK(echo.server.clients() == 1);

    // Two frames in one write, the second split over two writes: all answered in order.
    Bytes two = control::frame(Json{{"id", 8}, {"op", "a"}});
    Bytes third = control::frame(Json{{"id", 9}, {"op", "b"}});
    two.insert(two.end(), third.begin(), third.begin() + 3);
    c.write(two);
    c.write(ByteView(third).subspan(3));
    REQUIRE(loop.run_until([&] { return c.frames().size() == 3; }));
    CHECK(c.frames()[2]["id"] == 9);

    c.stop();
    ::close(c.fd);
    c.fd = -1;
    REQUIRE(loop.run_until([&] { return echo.closed.size() == 1; }));
    CHECK(echo.closed[0] == echo.requests[0].first);
    CHECK(echo.server.clients() == 0);
    CHECK_FALSE(echo.server.send(echo.closed[0], Json{{"late", true}}));

    echo.shut_down(loop);
    CHECK_FALSE(std::filesystem::exists(path));
  }
  loop.finish();
}

// Proves an undecodable frame and an oversized one each get one error response and a
// disconnect, without reaching on_request.
TEST_CASE("control server: malformed and oversized frames", "[net]") {
  Loop loop;
  qun::test::TempDir dir{"qun-net"};
  const std::string path = dir.path() + "/control.sock";
  {
    Echo echo(&loop.loop, path);
    Client garbage(&loop.loop, path);
    Client huge(&loop.loop, path);
    garbage.write(Bytes{0, 0, 0, 1, 0xc1});  // 0xc1 is never valid msgpack
    Bytes header{0xff, 0xff, 0xff, 0xff};    // 4 GiB announced
    header.resize(1000, 0x90);
    huge.write(header);
    REQUIRE(loop.run_until([&] { return garbage.ended && huge.ended; }));
    for (Client* c : {&garbage, &huge}) {
      const auto frames = c->frames();
      REQUIRE(frames.size() == 1);
      CHECK(frames[0]["ok"] == false);
      const std::string error = frames[0]["error"];
      CHECK(error.rfind("malformed control message: ", 0) == 0);
    }
    CHECK(echo.requests.empty());
    REQUIRE(loop.run_until([&] { return echo.closed.size() == 2; }));
    CHECK(echo.server.clients() == 0);
    garbage.stop();
    huge.stop();
    echo.shut_down(loop);
  }
  loop.finish();
}

// Proves control_clients_max: 64 clients are served and the 65th is closed at once.
TEST_CASE("control server: the 65th client is refused", "[net]") {
  Loop loop;
  qun::test::TempDir dir{"qun-net"};
  const std::string path = dir.path() + "/control.sock";
  {
    Echo echo(&loop.loop, path);
    std::vector<std::unique_ptr<Client>> clients;
    for (std::size_t i = 0; i < control_clients_max; ++i) {
      clients.push_back(std::make_unique<Client>(&loop.loop, path));
      REQUIRE(loop.run_until([&] { return echo.server.clients() == i + 1; }));
    }
    clients.push_back(std::make_unique<Client>(&loop.loop, path));
    REQUIRE(loop.run_until([&] { return clients.back()->ended; }));
    CHECK(echo.server.clients() == control_clients_max);
    for (std::size_t i = 0; i < control_clients_max; ++i) CHECK_FALSE(clients[i]->ended);
    // The refused one was never a client, so no on_closed for it.
    CHECK(echo.closed.empty());
    // Still served: a request from the first client is answered.
    clients[0]->write(control::frame(Json{{"id", 1}, {"op", "ping"}}));
    REQUIRE(loop.run_until([&] { return clients[0]->frames().size() == 1; }));
    for (auto& c : clients) c->stop();
    echo.shut_down(loop);
    // Shutdown calls no handler.
    CHECK(echo.closed.empty());
  }
  loop.finish();
}

// Proves the handlers may call send and close_client re-entrantly: a client closed from within
// on_request gets no further requests (even of frames already received), send to it returns
// false, and on_closed comes later, once.
TEST_CASE("control server: handlers close clients re-entrantly", "[net]") {
  Loop loop;
  qun::test::TempDir dir{"qun-net"};
  const std::string path = dir.path() + "/control.sock";
  {
    Echo echo(&loop.loop, path);
    bool send_after_close = true;
    echo.extra = [&](ControlServer::ClientId id, const Json& request) {
      if (request["op"] != "quit") return;
      CHECK(echo.server.send(id, Json{{"bye", true}}));
      echo.server.close_client(id);
      CHECK(echo.closed.empty());  // not from within close_client
      send_after_close = echo.server.send(id, Json{{"late", true}});
    };
    Client c(&loop.loop, path);
    Bytes both = control::frame(Json{{"id", 1}, {"op", "quit"}});
    Bytes next = control::frame(Json{{"id", 2}, {"op", "never"}});
    both.insert(both.end(), next.begin(), next.end());
    c.write(both);
    REQUIRE(loop.run_until([&] { return c.ended; }));
    CHECK_FALSE(send_after_close);
    REQUIRE(echo.requests.size() == 1);
    const auto frames = c.frames();
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == Json{{"bye", true}});
    REQUIRE(loop.run_until([&] { return echo.closed.size() == 1; }));
    c.stop();
    echo.shut_down(loop);
  }
  loop.finish();
}

// Proves control_client_queue_bytes_max: a client that never reads is disconnected once its
// unsent bytes would pass the bound, and send returns false from then on.
TEST_CASE("control server: a stalled client is disconnected", "[net]") {
  Loop loop;
  qun::test::TempDir dir{"qun-net"};
  const std::string path = dir.path() + "/control.sock";
  {
    Echo echo(&loop.loop, path);
    Client c(&loop.loop, path);
    uv_poll_stop(c.poll);  // a subscriber that stopped reading
    REQUIRE(loop.run_until([&] { return echo.server.clients() == 1; }));
    const ControlServer::ClientId id = 1;
    const Json big = Json{{"stream", "message"}, {"text", std::string(1024 * 1024, 'x')}};
    std::size_t sent = 0;
    while (echo.server.send(id, big)) {
      ++sent;
      REQUIRE(sent <= control_client_queue_bytes_max / (1024 * 1024) + 64);
    }
    CHECK(sent >= control_client_queue_bytes_max / (1024 * 1024 + 64));
    CHECK(echo.server.clients() == 0);
    CHECK_FALSE(echo.server.send(id, Json{{"x", 1}}));
    REQUIRE(loop.run_until([&] { return echo.closed.size() == 1; }));
    c.stop();
    echo.shut_down(loop);
  }
  loop.finish();
}

// Proves listen removes a stale socket left by a dead node, refuses to remove a file that is
// not a socket, and rejects a path too long for sun_path, naming the path each time.
TEST_CASE("control server: stale sockets, files in the way, long paths", "[net]") {
  Loop loop;
  qun::test::TempDir dir{"qun-net"};
  {
    const std::string stale = dir.path() + "/stale.sock";
    {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      std::strncpy(sa.sun_path, stale.c_str(), sizeof sa.sun_path - 1);
      REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
      ::close(fd);  // the file stays: a node that died
    }
    Echo echo(&loop.loop, stale);
    Client c(&loop.loop, stale);
    REQUIRE(loop.run_until([&] { return echo.server.clients() == 1; }));
    c.stop();
    echo.shut_down(loop);

    const std::string file = dir.path() + "/not-a-socket";
    std::ofstream(file) << "keep me";
    ControlServer server(&loop.loop, null_log_sink());
    auto r = server.listen(file, {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == Errc::already_exists);
    CHECK(r.error().context().rfind("cannot listen on " + file + ": ", 0) == 0);
    CHECK(std::filesystem::exists(file));

    const std::string long_path = dir.path() + "/" + std::string(120, 'x');
    auto l = server.listen(long_path, {});
    REQUIRE_FALSE(l.ok());
    CHECK(l.error().code() == Errc::invalid_argument);
    bool done = false;
    server.shutdown([&] { done = true; });
    REQUIRE(loop.run_until([&] { return done; }));
  }
  loop.finish();
}

// Proves the stderr sink's line format and the level names it parses.
TEST_CASE("log_stderr: line format and level parsing", "[net]") {
  const std::uint64_t t = 1'795'608'000'123;  // 2026-11-25T12:00:00.123Z
  CHECK(format_log_line(LogRecord{LogLevel::info, "net", "listening on 127.0.0.1:7000"}, t) ==
        "2026-11-25T12:00:00.123Z INFO  net: listening on 127.0.0.1:7000");
  CHECK(format_log_line(LogRecord{LogLevel::debug, "control", "a\nb\x01"}, t) ==
        "2026-11-25T12:00:00.123Z DEBUG control: a\\nb\\x01");
  CHECK(format_log_line(LogRecord{LogLevel::error, "x", "y"}, 0) ==
        "1970-01-01T00:00:00.000Z ERROR x: y");
  CHECK(parse_log_level("debug") == LogLevel::debug);
  CHECK(parse_log_level("info") == LogLevel::info);
  CHECK(parse_log_level("warn") == LogLevel::warn);
  CHECK(parse_log_level("error") == LogLevel::error);
  CHECK_FALSE(parse_log_level("INFO").has_value());
  CHECK_FALSE(parse_log_level("").has_value());
  // Below the minimum nothing is printed; at it, a line (to stderr; not captured here).
  auto sink = stderr_log_sink(LogLevel::error);
  sink(LogRecord{LogLevel::debug, "net", "not printed"});
}
