// Metrics (net/metrics.h): the Prometheus text format 0.0.4, /proc figures, and the HTTP
// responder on a loop: a scrape, a wrong path, an oversized request and the connection bound.
#include "net/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <string>
#include <thread>

#include "tests/net/uv_loop.h"

using namespace qun;
using namespace qun::metrics;

TEST_CASE("text format 0.0.4: help, type, labels escaped, integers exact", "[net][metrics]") {
  const std::vector<Family> families{
      Family{"qun_a_total", "Line one\nback\\slash", Type::counter, {Sample{{}, 12345678901234.0}}},
      Family{"qun_b",
             "B.",
             Type::gauge,
             {Sample{{{"group", "x\"y\\z\nw"}, {"k", "v"}}, 0.5}, Sample{{{"group", "2"}}, 3}}},
      Family{"qun_empty", "No samples.", Type::gauge, {}},
  };
  CHECK(exposition(families) ==
        "# HELP qun_a_total Line one\\nback\\\\slash\n"
        "# TYPE qun_a_total counter\n"
        "qun_a_total 12345678901234\n"
        "# HELP qun_b B.\n"
        "# TYPE qun_b gauge\n"
        "qun_b{group=\"x\\\"y\\\\z\\nw\",k=\"v\"} 0.5\n"
        "qun_b{group=\"2\"} 3\n"
        "# HELP qun_empty No samples.\n"
        "# TYPE qun_empty gauge\n");
}

TEST_CASE("process figures come from /proc/self", "[net][metrics]") {
  const ProcessFigures p = process_figures();
  REQUIRE(p.resident_bytes);
  CHECK(*p.resident_bytes > 0);
  REQUIRE(p.cpu_seconds);
  CHECK(*p.cpu_seconds >= 0);
}

namespace {

// Sends `request` from a blocking client on its own thread (the loop serves on this one) and
// returns what the server sent until it closed.
std::string fetch(test::Loop& loop, int port, const std::string& request) {
  std::string reply;
  std::atomic<bool> finished{false};
  // The thread wakes the loop when it is done: otherwise the loop could sleep in its poll with
  // nothing of its own left to do until run_until's guard timer fires.
  auto* wake = new uv_async_t;
  uv_async_init(&loop.loop, wake, [](uv_async_t*) {});
  std::thread t([&] {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      std::size_t sent = 0;
      while (sent < request.size()) {
        const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    finished = true;
    uv_async_send(wake);
  });
  loop.run_until([&] { return finished.load(); });
  t.join();
  uv_close(reinterpret_cast<uv_handle_t*>(wake), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  return reply;
}

}  // namespace

TEST_CASE("the responder answers GET /metrics and refuses the rest", "[net][metrics]") {
  test::Loop loop;
  {
    MetricsServer server(&loop.loop, null_log_sink());
    int scrapes = 0;
    auto bound = server.listen("127.0.0.1:0", [&] {
      ++scrapes;
      return std::string("qun_x 1\n");
    });
    REQUIRE(bound.ok());
    const int port = std::stoi(bound->substr(bound->rfind(':') + 1));

    const std::string ok = fetch(loop, port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(ok.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(ok.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
    CHECK(ok.find("Content-Length: 8\r\n") != std::string::npos);
    CHECK(ok.substr(ok.size() - 8) == "qun_x 1\n");
    CHECK(scrapes == 1);

    CHECK(fetch(loop, port, "GET /other HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 404", 0) == 0);
    CHECK(fetch(loop, port, "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0) == 0);
    CHECK(fetch(loop, port, "hello\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
    // A request head reaching the bound without its end is refused, not buffered further. (Exactly
    // the bound: bytes the server never reads would make its close a reset, losing the answer.)
    std::string huge = "GET /metrics HTTP/1.1\r\nX: ";
    huge += std::string(request_bytes_max - huge.size(), 'a');
    CHECK(fetch(loop, port, huge).rfind("HTTP/1.1 431", 0) == 0);
    CHECK(scrapes == 1);
    CHECK(server.connections() == 0);

    auto taken = MetricsServer(&loop.loop, null_log_sink()).listen(*bound, [] { return std::string(); });
    REQUIRE_FALSE(taken.ok());
    CHECK(taken.error().context().rfind("cannot serve metrics on " + *bound + ": ", 0) == 0);
    CHECK_FALSE(MetricsServer(&loop.loop, null_log_sink()).listen("nohost", [] { return std::string(); }).ok());
    server.close();
  }
  loop.finish();
}
