// Writes the seed corpus of every fuzz target from the fixture's real events:
//   make_seeds <corpus dir>   creates <dir>/{event,payload,invite_code,group_ingest}/
// Seeds are a few small files; the committed copy under fuzz/corpus/ was made with this tool.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "crypto/secret.h"
#include "fuzz/fixture.h"

using namespace qun;

namespace {

void write(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <corpus dir>\n");
    return 2;
  }
  crypto_init();
  const fuzz::Fixture f = fuzz::build_fixture();
  const std::filesystem::path root = argv[1];
  for (const char* dir : {"event", "payload", "invite_code", "group_ingest"})
    std::filesystem::create_directories(root / dir);

  // One event and one payload of each kind the fixture has (the first of each).
  bool seen[event_kind_max + 1] = {};
  for (std::size_t i = 0; i < f.events.size(); ++i) {
    const auto kind = static_cast<std::size_t>(f.events[i].kind);
    if (seen[kind]) continue;
    seen[kind] = true;
    const std::string name = event_kind_name(f.events[i].kind);
    write(root / "event" / name, str(f.encoded[i]));
    write(root / "payload" / name, str(f.events[i].payload));
  }
  write(root / "invite_code" / "code", encode_invite_code(f.codes[0]));

  // group_ingest: the first half of the fixture as base, the rest as chunks, alternately
  // unchanged and re-signed by the admin member onto the current heads (flags 0x1a: key 1,
  // this group, current heads).
  const std::size_t base = f.events.size() / 2;
  std::string input(1, static_cast<char>(base));
  for (std::size_t i = base; i < f.events.size(); ++i) {
    const Bytes& e = f.encoded[i];
    input.push_back(static_cast<char>(e.size() & 0xff));
    input.push_back(static_cast<char>(e.size() >> 8));
    input.push_back(static_cast<char>(i % 2 ? 0x1a : 0x00));
    input += str(e);
  }
  write(root / "group_ingest" / "history", input);
  std::printf("seeds written to %s\n", root.c_str());
  return 0;
}
