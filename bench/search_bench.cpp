// search_bench: the search index (search/index.h) with 1,000,000 posts. It prints how fast
// posts are indexed (goal: at least 50,000 posts/s) and how long queries take (goal: under
// 50 ms), for the kinds of query people make: a common word, a rare one, a CJK substring, a
// two-character CJK word (the scan of the newest posts), one group only. It prints figures and
// never fails.
//
//   search_bench [--posts N] [--dir DIR]     (default 1,000,000 posts in a temporary directory)
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "search/feed.h"
#include "search/index.h"

using namespace qun;
using Clock = std::chrono::steady_clock;

namespace {

// xorshift64*: deterministic texts, the same on every run.
struct Gen {
  std::uint64_t s = 0x9E3779B97F4A7C15ull;
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

// Words of chat: English, and Japanese and Chinese phrases (no spaces between their words).
const std::vector<std::string> words{
    "the", "relay", "is", "up", "again", "did", "anyone", "try", "new", "chat", "client", "it",
    "handles", "and", "emoji", "lunch", "at", "noon", "deploy", "finished", "build", "failed",
    "on", "main", "please", "review", "my", "patch", "thanks", "morning", "all", "coffee",
    "meeting", "moved", "to", "tomorrow", "can", "you", "invite", "colleague", "ops", "release",
    "notes", "are", "in", "dev", "server", "restarted", "latency", "looks", "good", "now",
    "おはようございます", "今日はいい天気ですね", "会議は明日に変更", "ありがとう", "日本語",
    "你好", "我们明天见", "服务器重启了", "谢谢大家", "天気", "問題ありません"};

std::string text_for(Gen& g) {
  std::string t;
  const std::size_t n = 4 + g.below(10);
  for (std::size_t i = 0; i < n; ++i) {
    if (!t.empty()) t += ' ';
    t += words[g.below(words.size())];
  }
  return t;
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t posts = 1'000'000;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--posts") == 0) posts = std::strtoull(argv[i + 1], nullptr, 10);
    else if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
  }
  bool temporary = false;
  if (dir.empty()) {
    char pattern[] = "/tmp/qun_search_bench_XXXXXX";
    if (!::mkdtemp(pattern)) return 1;
    dir = pattern;
    temporary = true;
  }
  const std::string path = dir + "/search.db";
  search::Index::remove_files(path);
  auto opened = search::Index::open(path);
  if (!opened.ok()) {
    std::fprintf(stderr, "search_bench: %s\n", opened.error().context().c_str());
    return 1;
  }
  auto index = std::move(opened).value();

  // Two ways posts reach the index, measured apart. A rebuild (search.db missing, damaged or
  // of an older schema, and every start-up's check) hands each group over whole to sync_group,
  // one transaction: 1,000,000 posts in 10 groups. Live deliveries are put() in batches: a
  // delivery of the daemon holds up to limits::batch_events_max (512) events, mostly far fewer;
  // 20,000 more posts in batches of 100, then 20,000 in batches of 512.
  constexpr std::size_t groups = 10;
  constexpr std::size_t live_posts = 20'000;
  constexpr std::size_t live_batch = 100;
  Gen g;
  std::size_t made = 0;
  std::size_t bytes = 0;
  auto make = [&](std::size_t group) {
    search::Post p;
    const std::uint64_t n = ++made;
    std::memcpy(p.id.data(), &n, sizeof n);
    p.group.bytes.fill(static_cast<std::uint8_t>(1 + group));
    p.channel = p.group;
    p.author.bytes.fill(static_cast<std::uint8_t>(g.below(50)));
    p.time_ms = 1'780'000'000'000ull + n * 10;
    p.order_key = p.time_ms;
    p.text = text_for(g);
    bytes += p.text.size();
    return p;
  };
  // Prints a rate by the wall clock and by CPU time: on a shared machine the wall clock counts
  // other processes' time too.
  auto report = [](const char* what, std::size_t n, Clock::time_point wall, std::clock_t cpu) {
    const double wall_s = ms_since(wall) / 1000;
    const double cpu_s = static_cast<double>(std::clock() - cpu) / CLOCKS_PER_SEC;
    std::printf("%s: %zu posts, %.1f s wall = %.0f posts/s, %.1f s CPU = %.0f posts/s "
                "(goal >= 50000)\n",
                what, n, wall_s, static_cast<double>(n) / wall_s, cpu_s,
                static_cast<double>(n) / cpu_s);
  };
  std::vector<std::vector<search::Post>> by_group(groups);
  for (std::size_t i = 0; i < posts; ++i) by_group[i % groups].push_back(make(i % groups));
  auto wall = Clock::now();
  auto cpu = std::clock();
  for (std::size_t k = 0; k < groups; ++k) {
    auto r = index->sync_group(by_group[k].front().group, by_group[k]);
    if (!r.ok()) {
      std::fprintf(stderr, "search_bench: %s\n", r.error().context().c_str());
      return 1;
    }
  }
  report("rebuild (sync_group, 10 groups)", posts, wall, cpu);
  // Every start-up checks each group against the index (sync_group with nothing to change).
  wall = Clock::now();
  cpu = std::clock();
  for (std::size_t k = 0; k < groups; ++k) {
    auto r = index->sync_group(by_group[k].front().group, by_group[k]);
    if (!r.ok()) {
      std::fprintf(stderr, "search_bench: %s\n", r.error().context().c_str());
      return 1;
    }
  }
  report("start-up check (sync_group, nothing changed)", posts, wall, cpu);
  by_group.clear();
  // Live deliveries: batches of 100, and of the Indexer's pending_posts_max (what a burst of
  // deliveries hands over: the daemon flushes when that many posts wait).
  for (const std::size_t batch : {live_batch, search::pending_posts_max}) {
    std::vector<search::Post> pending;
    wall = Clock::now();
    cpu = std::clock();
    for (std::size_t i = 0; i < live_posts; ++i) {
      pending.push_back(make(i % groups));
      if (pending.size() == batch || i + 1 == live_posts) {
        if (auto r = index->put(pending); !r.ok()) {
          std::fprintf(stderr, "search_bench: %s\n", r.error().context().c_str());
          return 1;
        }
        pending.clear();
      }
    }
    report(("live (put, batches of " + std::to_string(batch) + ")").c_str(), live_posts, wall, cpu);
  }
  std::printf("text: %.1f MB\n", static_cast<double>(bytes) / 1e6);
  std::error_code ec;
  std::printf("search.db: %.1f MB\n",
              static_cast<double>(std::filesystem::file_size(path, ec)) / 1e6);

  struct Case {
    const char* what;
    std::string text;
    bool one_group;
  };
  const std::vector<Case> cases{
      {"common word", "relay", false},
      {"two words", "deploy finished", false},
      {"rare phrase", "notes are in dev server", false},
      {"no match", "zebra", false},
      {"CJK substring", "いい天気", false},
      {"CJK 2 chars (scan)", "天気", false},
      {"1 char (scan)", "x", false},
      {"one group", "coffee", true},
  };
  constexpr int runs = 20;
  std::printf("%-20s %8s %10s %10s   (goal < 50 ms; %d runs, 20 results)\n", "query", "results",
              "median ms", "max ms", runs);
  for (const auto& c : cases) {
    std::vector<double> times;
    std::size_t found = 0;
    for (int r = 0; r < runs; ++r) {
      search::Query q;
      q.text = c.text;
      q.limit = 20;
      if (c.one_group) q.group = search::Post{}.group, q.group->bytes.fill(3);
      const auto t = Clock::now();
      auto hits = index->search(q);
      times.push_back(ms_since(t));
      found = hits.ok() ? hits.value().size() : 0;
    }
    std::sort(times.begin(), times.end());
    std::printf("%-20s %8zu %10.2f %10.2f\n", c.what, found, times[runs / 2], times.back());
  }
  index.reset();
  if (temporary) std::filesystem::remove_all(dir, ec);
  return 0;
}
