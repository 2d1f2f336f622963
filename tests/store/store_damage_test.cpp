// Damaged data files: a truncated file, damaged meta pages, a stored size that runs past the end
// of the file, bytes flipped anywhere, and a file truncated under a running process. Each must
// give an error that names the file (or, for the running process, one line and an exit status),
// never SIGBUS or SIGSEGV.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "store/store.h"
#include "tests/store/test_util.h"

namespace qun {
namespace {

using store_test::bytes_of;
using store_test::make_hash;
using store_test::numbered_hash;
using store_test::TempDir;

// Three groups of events_per_group events each, with heads, pending entries, keys, records and
// meta: every table holds something, and the file spans a few dozen pages.
constexpr std::uint64_t groups_written = 3;
constexpr std::uint64_t events_per_group = 40;
constexpr std::size_t event_bytes = 300;  // inline in a leaf page (LMDB's overflow starts near 2 KiB)

Hash group_id(std::uint64_t g) { return make_hash(static_cast<std::uint8_t>(0x10 + g), 0x01); }
Hash event_id(std::uint64_t g, std::uint64_t i) { return numbered_hash(g + 1, i); }

void write_store(const std::string& dir) {
  auto opened = Store::open(dir);
  REQUIRE(opened.ok());
  for (std::uint64_t g = 0; g < groups_written; ++g) {
    WriteBatch b;
    for (std::uint64_t i = 0; i < events_per_group; ++i)
      b.put_event(group_id(g), event_id(g, i), i, Bytes(event_bytes, static_cast<std::uint8_t>(i)));
    b.add_head(group_id(g), event_id(g, events_per_group - 1));
    b.put_pending(group_id(g), numbered_hash(0x99, g), bytes_of("pending"));
    b.put_key(group_id(g), 1, numbered_hash(0x77, g), Bytes(72, 0x42));
    b.put_group(group_id(g), bytes_of("record"));
    b.put_meta("peers/" + std::to_string(g), bytes_of("127.0.0.1:1"));
    REQUIRE((*opened)->commit(b).ok());
  }
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Reads everything a node reads at start-up; the first error, or ok.
Result<void> read_everything(const Store& store) {
  QUN_TRY(auto groups, store.groups());
  QUN_TRY(auto with_events, store.groups_with_events());
  groups.insert(groups.end(), with_events.begin(), with_events.end());
  for (const Hash& g : groups) {
    if (auto record = store.get_group(g); !record.ok()) return record.error();
    std::size_t seen = 0;
    QUN_TRY_VOID(store.for_each_event(g, [&](const Hash&, std::uint64_t, ByteView v) {
      seen += v.size();
      return true;
    }));
    QUN_TRY_VOID(store.for_each_arrival(g, 0, [&](std::uint64_t, const Hash& id) {
      auto e = store.get_event(id);
      return e.ok();
    }));
    QUN_TRY(auto heads, store.heads(g));
    QUN_TRY(auto pending, store.pending(g));
    QUN_TRY(auto keys, store.keys(g));
    (void)heads;
    (void)pending;
    (void)keys;
  }
  if (auto meta = store.get_meta("peers/0"); !meta.ok()) return meta.error();
  return ok_result();
}

void check_refused(const Result<std::unique_ptr<Store>>& opened, const std::string& dir,
                   const std::string& why) {
  REQUIRE_FALSE(opened.ok());
  INFO(opened.error().message());
  CHECK(opened.error().code() == Errc::malformed);
  CHECK_THAT(opened.error().context(), Catch::Contains("the database file " + dir + "/data.mdb is damaged"));
  CHECK_THAT(opened.error().context(), Catch::Contains(why));
  CHECK_THAT(opened.error().context(), Catch::Contains("move " + dir + " aside"));
  CHECK(opened.error().context().find('\n') == std::string::npos);
}

// Proves that a data file cut short anywhere (to nothing, inside a meta page, or anywhere past
// them) is refused at open with an error naming the file and saying what to do. Before the
// pre-open check LMDB mapped such a file and the first read past its end was SIGBUS.
TEST_CASE("a truncated data file is refused at open, never mapped", "[store][damage]") {
  TempDir tmp;
  write_store(tmp.db());
  const std::string file = Store::data_file(tmp.db());
  const Bytes whole = read_file(file);
  constexpr std::size_t page_bytes = 4096;
  REQUIRE(whole.size() > 8 * page_bytes);
  const std::vector<std::pair<std::size_t, std::string>> cuts = {
      {0, "it is empty"},
      {100, "inside meta page 0"},
      {page_bytes + 10, "inside meta page 1"},
      {2 * page_bytes, "truncated: 8192 bytes"},
      {whole.size() / 2, "truncated"},
      {whole.size() - page_bytes, "truncated"},
      {whole.size() - 1, "truncated"},
  };
  for (const auto& [bytes, why] : cuts) {
    INFO("cut to " << bytes << " bytes");
    write_file(file, Bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(bytes)));
    check_refused(Store::open(tmp.db()), tmp.db(), why);
  }
  // The whole file, written back, opens and reads: the check refuses only what is short.
  write_file(file, whole);
  auto opened = Store::open(tmp.db());
  REQUIRE(opened.ok());
  CHECK(read_everything(**opened).ok());
}

// Proves that damaged meta pages (not LMDB's magic, or a last page far past the file) are a
// damaged-file error at open.
TEST_CASE("damaged meta pages are refused at open", "[store][damage]") {
  TempDir tmp;
  write_store(tmp.db());
  const std::string file = Store::data_file(tmp.db());
  const Bytes whole = read_file(file);
  constexpr std::size_t magic_at = 16;
  constexpr std::size_t last_page_at = 16 + 120;
  constexpr std::size_t page_bytes = 4096;

  Bytes bad_magic = whole;
  bad_magic[magic_at] ^= 0xff;
  write_file(file, bad_magic);
  check_refused(Store::open(tmp.db()), tmp.db(), "meta page 0 is not an LMDB meta page");

  // Both meta pages claim a last page far past the end of the file.
  Bytes far = whole;
  for (std::size_t meta : {std::size_t{0}, page_bytes}) far[meta + last_page_at + 3] ^= 0x40;
  write_file(file, far);
  check_refused(Store::open(tmp.db()), tmp.db(), "truncated");
}

// Proves that a stored value whose size field was damaged (so that it would run past the end of
// the file) is an error when read, not a copy past the end of the map. The node header of an
// events-table entry is 8 bytes before its key: size low 16 bits, size high 16 bits, flags,
// key size (32 for an event id).
TEST_CASE("a stored size that runs past the file is a damaged-file error", "[store][damage]") {
  TempDir tmp;
  write_store(tmp.db());
  const std::string file = Store::data_file(tmp.db());
  Bytes bytes = read_file(file);
  const Hash victim = event_id(1, 7);
  Bytes pattern{32, 0};
  pattern.insert(pattern.end(), victim.bytes.begin(), victim.bytes.end());
  auto at = std::search(bytes.begin(), bytes.end(), pattern.begin(), pattern.end());
  REQUIRE(at != bytes.end());
  const auto header = static_cast<std::size_t>(at - bytes.begin()) - 6;
  CHECK(bytes[header] == event_bytes % 256);
  bytes[header + 2] = 0xff;  // size high bits: about 4 GiB
  bytes[header + 3] = 0x7f;
  write_file(file, bytes);

  auto opened = Store::open(tmp.db());
  REQUIRE(opened.ok());
  auto e = (*opened)->get_event(victim);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().code() == Errc::malformed);
  CHECK_THAT(e.error().context(), Catch::Contains(file + " is damaged"));
  CHECK_THAT(e.error().context(), Catch::Contains("runs past the end of the file"));
  auto scan = (*opened)->for_each_event(group_id(1), [](const Hash&, std::uint64_t, ByteView) {
    return true;
  });
  CHECK_FALSE(scan.ok());
  // The other groups read as before.
  auto other = (*opened)->event_count(group_id(0));
  REQUIRE(other.ok());
  CHECK(*other == events_per_group);
}

// Runs fn in a child process; returns its wait status.
template <typename Fn>
int in_child(Fn&& fn) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    fn();
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// Proves that 64 flipped bytes anywhere in the file (every page past the meta pages, at its
// header, its first entries, its middle and its end) never kill a process that opens the store,
// installs exit_on_damage_fault as the daemon does, and reads everything: each case reads, fails
// with an error, or (damage inside LMDB's page structure, which LMDB reads unchecked) exits with
// map_fault_exit_status and one line. Run in a child per case, so that a crash is reported with
// the page and offset that caused it.
TEST_CASE("64 flipped bytes anywhere never crash a reader", "[store][damage]") {
  TempDir tmp;
  write_store(tmp.db());
  const std::string file = Store::data_file(tmp.db());
  const Bytes whole = read_file(file);
  constexpr std::size_t page_bytes = 4096;
  constexpr std::size_t flip_bytes = 64;
  const std::size_t pages = whole.size() / page_bytes;
  std::size_t failed_cleanly = 0, read_fine = 0, faulted = 0;
  for (std::size_t page = 2; page < pages; ++page) {
    for (std::size_t offset : {std::size_t{0}, std::size_t{16}, page_bytes / 2, page_bytes - flip_bytes}) {
      Bytes damaged = whole;
      for (std::size_t i = 0; i < flip_bytes; ++i) damaged[page * page_bytes + offset + i] ^= 0xa5;
      write_file(file, damaged);
      int status = in_child([&] {
        // Catch's own handlers would report the fault as a failure of this child.
        ::signal(SIGSEGV, SIG_DFL);
        ::signal(SIGBUS, SIG_DFL);
        ::close(STDERR_FILENO);
        Store::exit_on_damage_fault("");
        auto opened = Store::open(tmp.db());
        if (!opened.ok()) ::_exit(2);
        ::_exit(read_everything(**opened).ok() ? 0 : 2);
      });
      INFO("page " << page << " offset " << offset);
      REQUIRE(WIFEXITED(status));
      const int code = WEXITSTATUS(status);
      REQUIRE((code == 0 || code == 2 || code == map_fault_exit_status));
      (code == 0 ? read_fine : code == 2 ? failed_cleanly : faulted) += 1;
    }
  }
  // Most flips land where LMDB or the store notice; the sweep is not vacuous.
  WARN("flips: " << read_fine << " read, " << failed_cleanly << " errors, " << faulted
                 << " ended by exit_on_damage_fault");
  CHECK(failed_cleanly > 0);
  write_file(file, whole);
}

// Proves the last gap: a file truncated by someone else while a process has it mapped. A read
// then faults, which no check before the read can prevent; exit_on_damage_fault turns the fault
// into one line naming the file and exit status map_fault_exit_status instead of SIGBUS.
TEST_CASE("a file truncated while mapped ends the process with one line, not SIGBUS",
          "[store][damage]") {
  TempDir tmp;
  write_store(tmp.db());
  const std::string file = Store::data_file(tmp.db());
  int err_pipe[2];
  REQUIRE(::pipe(err_pipe) == 0);
  int status = in_child([&] {
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::signal(SIGSEGV, SIG_DFL);
    ::signal(SIGBUS, SIG_DFL);
    Store::exit_on_damage_fault("test: ");
    auto opened = Store::open(tmp.db());
    if (!opened.ok()) ::_exit(3);
    if (::truncate(file.c_str(), 0) != 0) ::_exit(4);
    auto e = (*opened)->get_event(event_id(0, 0));
    ::_exit(e.ok() ? 5 : 6);
  });
  ::close(err_pipe[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = ::read(err_pipe[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<std::size_t>(n));
  ::close(err_pipe[0]);
  INFO(err);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == map_fault_exit_status);
  CHECK_THAT(err, Catch::StartsWith("test: the database file " + file + " is damaged, or was truncated while in use"));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

}  // namespace
}  // namespace qun
