#include "cli/irc_line.h"

#include <algorithm>

#include "base/utf8.h"
#include "app/render.h"

namespace qun::irc {
namespace {

bool is_special(char c) {
  return c == '[' || c == ']' || c == '\\' || c == '`' || c == '_' || c == '^' || c == '{' ||
         c == '|' || c == '}';
}
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The length of the longest prefix of s of at most n bytes that ends on a UTF-8 boundary.
std::size_t utf8_cut(std::string_view s, std::size_t n) {
  if (n >= s.size()) return s.size();
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

const std::string& Message::param(std::size_t i) const {
  static const std::string empty;
  return i < params.size() ? params[i] : empty;
}

std::optional<std::string> Message::tag(std::string_view key) const {
  for (const auto& [k, v] : tags)
    if (k == key) return v;
  return std::nullopt;
}

std::optional<Message> parse(std::string_view line) {
  Message m;
  std::size_t pos = 0;
  auto skip_spaces = [&] {
    while (pos < line.size() && line[pos] == ' ') ++pos;
  };
  auto word = [&] {
    const std::size_t end = std::min(line.find(' ', pos), line.size());
    std::string_view w = line.substr(pos, end - pos);
    pos = end;
    return w;
  };
  skip_spaces();
  if (pos < line.size() && line[pos] == '@') {
    ++pos;
    std::string_view tags = word();
    while (!tags.empty()) {
      const std::size_t semi = std::min(tags.find(';'), tags.size());
      std::string_view tag = tags.substr(0, semi);
      tags.remove_prefix(std::min(semi + 1, tags.size()));
      if (tag.empty()) continue;
      const std::size_t eq = tag.find('=');
      if (eq == std::string_view::npos) {
        m.tags.emplace_back(std::string(tag), "");
      } else {
        m.tags.emplace_back(std::string(tag.substr(0, eq)), unescape_tag_value(tag.substr(eq + 1)));
      }
    }
    skip_spaces();
  }
  if (pos < line.size() && line[pos] == ':') {
    ++pos;
    m.prefix = std::string(word());
    skip_spaces();
  }
  std::string_view command = word();
  if (command.empty()) return std::nullopt;
  m.command.reserve(command.size());
  for (char c : command) m.command += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
  for (;;) {
    skip_spaces();
    if (pos >= line.size()) break;
    if (line[pos] == ':' || m.params.size() + 1 == params_max) {
      if (line[pos] == ':') ++pos;
      m.params.emplace_back(line.substr(pos));
      break;
    }
    m.params.emplace_back(word());
  }
  return m;
}

std::string serialise(const Message& m) {
  std::string out;
  if (!m.tags.empty()) {
    out += '@';
    for (std::size_t i = 0; i < m.tags.size(); ++i) {
      if (i) out += ';';
      out += m.tags[i].first;
      if (!m.tags[i].second.empty()) out += '=' + escape_tag_value(m.tags[i].second);
    }
    out += ' ';
  }
  if (!m.prefix.empty()) out += ':' + m.prefix + ' ';
  out += m.command;
  for (std::size_t i = 0; i < m.params.size(); ++i) {
    const std::string& p = m.params[i];
    const bool last = i + 1 == m.params.size();
    out += ' ';
    if (last && (p.empty() || p[0] == ':' || p.find(' ') != std::string::npos)) out += ':';
    out += p;
  }
  out += "\r\n";
  return out;
}

std::string escape_tag_value(std::string_view value) {
  std::string out;
  for (char c : value) {
    switch (c) {
      case ';': out += "\\:"; break;
      case ' ': out += "\\s"; break;
      case '\\': out += "\\\\"; break;
      case '\r': out += "\\r"; break;
      case '\n': out += "\\n"; break;
      case '\0': break;
      default: out += c;
    }
  }
  return out;
}

std::string unescape_tag_value(std::string_view value) {
  std::string out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '\\') {
      out += value[i];
      continue;
    }
    if (++i == value.size()) break;  // a lone trailing backslash is dropped (message-tags)
    switch (value[i]) {
      case ':': out += ';'; break;
      case 's': out += ' '; break;
      case 'r': out += '\r'; break;
      case 'n': out += '\n'; break;
      default: out += value[i];  // "\\" and an unknown escape: the character itself
    }
  }
  return out;
}

std::string neutralise(std::string_view text) { return render::for_terminal(text, false); }

std::vector<std::string> split_text(std::string_view text, std::size_t bytes_max) {
  std::vector<std::string> out;
  while (text.size() > bytes_max) {
    std::size_t cut = utf8_cut(text, bytes_max);
    const std::size_t space = text.substr(0, cut).rfind(' ');
    if (space != std::string_view::npos && space >= cut / 2) cut = space + 1;
    out.emplace_back(text.substr(0, cut));
    text.remove_prefix(cut);
  }
  if (!text.empty() || out.empty()) out.emplace_back(text);
  return out;
}

std::string fold(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

bool valid_nick(std::string_view nick) {
  if (nick.empty() || nick.size() > nick_bytes_max) return false;
  if (!is_letter(nick[0]) && !is_special(nick[0])) return false;
  return std::all_of(nick.begin(), nick.end(),
                     [](char c) { return is_letter(c) || is_digit(c) || is_special(c) || c == '-'; });
}

std::string make_nick(std::string_view raw, std::size_t max_bytes) {
  std::string out;
  bool alnum = false;
  for (char c : raw) {
    if (is_letter(c) || is_digit(c) || is_special(c) || c == '-') {
      alnum = alnum || is_letter(c) || is_digit(c);
      out += c;
    } else if (out.empty() || out.back() != '_') {
      out += '_';
    }
  }
  if (!alnum) return "";
  if (is_digit(out[0]) || out[0] == '-') out.insert(out.begin(), '_');
  if (out.size() > max_bytes) out.resize(max_bytes);
  return out;
}

std::string make_channel(std::string_view label) {
  const std::string safe = utf8::make_valid(label);
  std::string out = "#";
  std::size_t pos = 0;
  while (pos < safe.size()) {
    const char32_t c = utf8::next(safe, pos);
    if (c == ' ' || c == ',' || c == ':' || c == 0xB7 || utf8::is_control(c)) {
      out += '-';
    } else {
      utf8::append(out, c);
    }
  }
  out.resize(utf8_cut(out, channel_bytes_max));
  return out;
}

std::string iso_time(std::int64_t unix_ms) {
  // Days to civil date: Howard Hinnant's algorithm (public domain, "chrono-Compatible Low-Level
  // Date Algorithms"), for the proleptic Gregorian calendar.
  std::int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  const int ms = static_cast<int>(unix_ms - secs * 1000);
  std::int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  const std::int64_t sod = secs - days * 86400;
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03dZ",
                static_cast<long long>(y), static_cast<long long>(m), static_cast<long long>(d),
                static_cast<long long>(sod / 3600), static_cast<long long>(sod / 60 % 60),
                static_cast<long long>(sod % 60), ms);
  return buf;
}

void LineReader::feed(std::string_view bytes) {
  if (ready_pos_ == ready_.size()) {
    ready_.clear();
    ready_pos_ = 0;
  }
  for (char c : bytes) {
    if (c == '\n') {
      if (overlong_) {
        ++dropped_;
      } else {
        if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
        ready_.push_back(std::move(partial_));
      }
      partial_.clear();
      overlong_ = false;
      continue;
    }
    if (overlong_ || c == '\0') continue;
    partial_ += c;
    // One byte of slack for the CR before the LF.
    if (partial_.size() > input_line_bytes_max + 1) {
      overlong_ = true;
      partial_.clear();
    }
  }
}

std::optional<std::string> LineReader::next() {
  if (ready_pos_ == ready_.size()) return std::nullopt;
  return std::move(ready_[ready_pos_++]);
}

}  // namespace qun::irc
