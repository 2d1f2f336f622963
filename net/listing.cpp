#include "net/listing.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace qun::listing {
namespace {

// ASCII case folding; other bytes compare as they are (UTF-8 keeps code point order).
std::string folded(const std::string& s) {
  std::string out = s;
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

std::vector<std::size_t> order(const std::vector<Entry>& entries) {
  std::vector<std::size_t> idx(entries.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::vector<std::string> keys;
  keys.reserve(entries.size());
  for (const auto& e : entries) keys.push_back(folded(e.name));
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    const Entry &x = entries[a], &y = entries[b];
    // Unnamed entries (a group still joining, a member without a nick) go after named ones.
    return std::make_tuple(x.rank, x.name.empty(), keys[a], x.since_ms, x.id) <
           std::make_tuple(y.rank, y.name.empty(), keys[b], y.since_ms, y.id);
  });
  return idx;
}

std::vector<std::string> labels(const std::vector<Entry>& entries) {
  std::map<std::string, std::vector<std::size_t>> by_name;
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (!entries[i].name.empty()) by_name[entries[i].name].push_back(i);
  std::vector<std::string> out(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (entries[i].name.empty()) out[i] = entries[i].id.substr(0, 8);
  for (const auto& [name, members] : by_name) {
    if (members.size() == 1) {
      out[members[0]] = name;
      continue;
    }
    for (std::size_t i : members) {
      const std::string& id = entries[i].id;
      std::size_t digits = std::min(label_id_digits_min, id.size());
      for (std::size_t j : members) {
        if (j == i) continue;
        const std::string& other = entries[j].id;
        std::size_t common = 0;
        while (common < id.size() && common < other.size() && id[common] == other[common])
          ++common;
        digits = std::max(digits, std::min(common + 1, id.size()));
      }
      out[i] = name + "\u00B7" + id.substr(0, digits);
    }
  }
  return out;
}

}  // namespace qun::listing
