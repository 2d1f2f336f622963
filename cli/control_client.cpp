#include "cli/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace qun {

Result<ControlClient> ControlClient::connect(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path))
    return Error(Errc::invalid_argument, "node home path too long for a Unix socket: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(Errc::io, std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    if (err == ENOENT || err == ECONNREFUSED)
      return Error(Errc::not_found, "no qun node is running for this home; start one with `qun node`");
    return Error(Errc::io, "cannot reach the node at " + socket_path + ": " + std::strerror(err));
  }
  return ControlClient(fd);
}

ControlClient::ControlClient(ControlClient&& o) noexcept
    : fd_(o.fd_), next_id_(o.next_id_), reader_(std::move(o.reader_)), queued_(std::move(o.queued_)) {
  o.fd_ = -1;
}

ControlClient& ControlClient::operator=(ControlClient&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    next_id_ = o.next_id_;
    reader_ = std::move(o.reader_);
    queued_ = std::move(o.queued_);
    o.fd_ = -1;
  }
  return *this;
}

ControlClient::~ControlClient() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> ControlClient::write_all(const Bytes& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, 1000);
        continue;
      }
      return Error(Errc::io, "the node closed the control connection (it stopped?)");
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<bool> ControlClient::fill(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  int r = ::poll(&p, 1, timeout_ms);
  if (r < 0) {
    if (errno == EINTR) return false;
    return Error(Errc::io, std::string("poll: ") + std::strerror(errno));
  }
  if (r == 0) return false;
  std::uint8_t buf[64 * 1024];
  ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
  if (n == 0) return Error(Errc::io, "the node closed the control connection (it stopped?)");
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
    return Error(Errc::io, "the node closed the control connection (it stopped?)");
  }
  reader_.feed(ByteView(buf, static_cast<std::size_t>(n)));
  for (;;) {
    QUN_TRY(std::optional<Json> m, reader_.next());
    if (!m) break;
    queued_.push_back(std::move(*m));
  }
  return true;
}

Result<std::uint64_t> ControlClient::send(const std::string& op, Json args) {
  if (!args.is_object()) args = Json::object();
  const std::uint64_t id = next_id_++;
  args["id"] = id;
  args["op"] = op;
  QUN_TRY_VOID(write_all(control::frame(args)));
  return id;
}

Result<ControlClient::Json> ControlClient::request(const std::string& op, Json args,
                                                   int timeout_ms) {
  QUN_TRY(std::uint64_t id, send(op, std::move(args)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    for (auto it = queued_.begin(); it != queued_.end(); ++it) {
      if (it->contains("id") && (*it)["id"].is_number_unsigned() &&
          (*it)["id"].get<std::uint64_t>() == id) {
        Json response = std::move(*it);
        queued_.erase(it);
        if (response.value("ok", false)) return response.contains("result") ? response["result"] : Json();
        return Error(Errc::invalid_argument, response.value("error", std::string("request failed")));
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return Error(Errc::io, "the node did not answer `" + op + "` in time");
    QUN_TRY(bool got, fill(static_cast<int>(left)));
    (void)got;
  }
}

Result<std::vector<ControlClient::Json>> ControlClient::read_available() {
  for (;;) {
    QUN_TRY(bool got, fill(0));
    if (!got) break;
  }
  std::vector<Json> out(std::make_move_iterator(queued_.begin()),
                        std::make_move_iterator(queued_.end()));
  queued_.clear();
  return out;
}

Result<std::optional<ControlClient::Json>> ControlClient::next(int timeout_ms) {
  if (queued_.empty()) {
    QUN_TRY(bool got, fill(timeout_ms));
    (void)got;
  }
  if (queued_.empty()) return std::optional<Json>{};
  Json m = std::move(queued_.front());
  queued_.pop_front();
  return std::optional<Json>(std::move(m));
}

}  // namespace qun
