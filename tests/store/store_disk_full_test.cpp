// A full file system under the store, by fault injection: this test binary interposes pwrite,
// writev (what liblmdb writes pages with) and statvfs (what the store asks for free space) and
// makes them fail on demand, as a full disk does: ENOSPC, or first a short write, which LMDB
// reports as EIO. Proves the store says "disk full" in both cases (distinct from the map being
// full, see store_crash_test.cpp), applies nothing of the failed batch, and takes the retry once.
#include <dlfcn.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>

#include "store/store.h"
#include "tests/store/test_util.h"

namespace {

enum class WriteFault { none, no_space, short_write };
std::atomic<WriteFault> write_fault{WriteFault::none};
// When set, statvfs reports this many bytes free (in 4 KiB blocks).
std::atomic<long long> free_bytes_reported{-1};
constexpr unsigned long reported_block_bytes = 4096;

}  // namespace

extern "C" ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  using Fn = ssize_t (*)(int, const void*, size_t, off_t);
  static Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "pwrite"));
  switch (write_fault.load()) {
    case WriteFault::no_space:
      errno = ENOSPC;
      return -1;
    case WriteFault::short_write:
      // The disk filled up partway: some bytes went, the rest did not.
      return n > 1 ? real(fd, buf, n / 2, offset) : (errno = ENOSPC, -1);
    case WriteFault::none:
      break;
  }
  return real(fd, buf, n, offset);
}

extern "C" ssize_t writev(int fd, const struct iovec* iov, int count) {
  using Fn = ssize_t (*)(int, const struct iovec*, int);
  static Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "writev"));
  switch (write_fault.load()) {
    case WriteFault::no_space:
      errno = ENOSPC;
      return -1;
    case WriteFault::short_write:
      return count > 1 ? real(fd, iov, count / 2) : (errno = ENOSPC, -1);
    case WriteFault::none:
      break;
  }
  return real(fd, iov, count);
}

extern "C" int statvfs(const char* path, struct statvfs* out) {
  using Fn = int (*)(const char*, struct statvfs*);
  static Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "statvfs"));
  int rc = real(path, out);
  const long long reported = free_bytes_reported.load();
  if (rc == 0 && reported >= 0) {
    out->f_frsize = reported_block_bytes;
    out->f_bavail = static_cast<fsblkcnt_t>(reported) / reported_block_bytes;
  }
  return rc;
}

namespace qun {
namespace {

using store_test::bytes_of;
using store_test::make_hash;
using store_test::numbered_hash;
using store_test::TempDir;

struct FaultScope {
  FaultScope(WriteFault f, long long free_bytes) {
    write_fault = f;
    free_bytes_reported = free_bytes;
  }
  ~FaultScope() {
    write_fault = WriteFault::none;
    free_bytes_reported = -1;
  }
};

const Hash g = make_hash(0xd0, 0x01);

WriteBatch post_batch(std::uint64_t n) {
  WriteBatch b;
  b.put_event(g, numbered_hash(7, n), 100 + n, Bytes(500, static_cast<std::uint8_t>(n)));
  b.add_head(g, numbered_hash(7, n));
  return b;
}

std::uint64_t arrivals(const Store& store) {
  std::uint64_t n = 0;
  REQUIRE(store.for_each_arrival(g, 0, [&](std::uint64_t, const Hash&) {
    ++n;
    return true;
  }).ok());
  return n;
}

// Runs one failing commit under `fault` and checks what a person reads, that nothing of it was
// applied, and that the retry after the fault is gone is stored exactly once.
void fails_then_retries(WriteFault fault, long long free_bytes, Errc code,
                        const std::vector<std::string>& says) {
  TempDir tmp;
  auto opened = Store::open(tmp.db());
  REQUIRE(opened.ok());
  Store& store = **opened;
  REQUIRE(store.commit(post_batch(0)).ok());
  Result<void> failed = ok_result();
  {
    FaultScope scope(fault, free_bytes);
    failed = store.commit(post_batch(1));
  }
  REQUIRE_FALSE(failed.ok());
  INFO(failed.error().message());
  CHECK(failed.error().code() == code);
  for (const auto& s : says) CHECK_THAT(failed.error().context(), Catch::Contains(s));
  CHECK(failed.error().context().find('\n') == std::string::npos);
  auto has = store.has_event(numbered_hash(7, 1));
  REQUIRE(has.ok());
  CHECK_FALSE(*has);
  CHECK(arrivals(store) == 1);
  // Space came back: the same batch commits, once.
  REQUIRE(store.commit(post_batch(1)).ok());
  CHECK(arrivals(store) == 2);
  opened->reset();
  auto reopened = Store::open(tmp.db());
  REQUIRE(reopened.ok());
  CHECK(arrivals(**reopened) == 2);
}

TEST_CASE("ENOSPC at commit reads as a full disk, not an i/o error", "[store][disk_full]") {
  fails_then_retries(WriteFault::no_space, -1, Errc::disk_full,
                     {"disk full: no space left", "free space in ", ", then retry"});
}

// Before: "i/o error: ...: Input/output error", LMDB's word for a short write.
TEST_CASE("a short write on a full file system reads as a full disk", "[store][disk_full]") {
  fails_then_retries(WriteFault::short_write, 8192, Errc::disk_full,
                     {"disk full: a write was cut short", "8 KiB free", "free space in "});
}

// A short write with plenty of space left is not a full disk: the device failed.
TEST_CASE("a short write with space left stays an i/o error", "[store][disk_full]") {
  fails_then_retries(WriteFault::short_write, 1ll << 30, Errc::io,
                     {"Input/output error", "check the disk"});
}

}  // namespace
}  // namespace qun
