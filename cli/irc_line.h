// IRC framing for `qun irc` (cli/irc_session.h): parsing and serialising lines (RFC 1459 2.3,
// RFC 2812 2.3.1, IRCv3 message-tags), reassembling lines from a byte stream, and the rules
// that keep a peer's text from breaking the framing: control characters neutralised, long text
// split to fit a line, nicks and channel names made valid.
//
// Everything here that takes text from a peer (nicks, group names, topics, posts) returns
// something that is safe to put in a line: no CR, LF or NUL, no other control character, valid
// UTF-8. Pure functions and a small value type; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qun::irc {

// A line without its tags, CR LF included (RFC 1459 2.3: "512 characters, counting the trailing
// CR-LF pair").
inline constexpr std::size_t line_bytes_max = 512;
// The tags section, its leading '@' and trailing space included (IRCv3 message-tags, "Size
// limit": 8191 bytes in all, of which clients may use 4096).
inline constexpr std::size_t tags_bytes_max = 8191;
// The longest line read from a client: both parts at their limits. A longer line is dropped
// (and counted) rather than buffered.
inline constexpr std::size_t input_line_bytes_max = tags_bytes_max + line_bytes_max;
// Parameters of one message (RFC 2812 2.3.1: at most 14 middle parameters and a trailing one).
inline constexpr std::size_t params_max = 15;
// Nicks: RFC 2812 says 9, every client and server of the last twenty years takes 30 or more;
// 30 is what we advertise (ISUPPORT NICKLEN) and what we make peers' nicks fit.
inline constexpr std::size_t nick_bytes_max = 30;
// Channel names (RFC 2812 1.3: "up to fifty (50) characters"); advertised as CHANNELLEN.
inline constexpr std::size_t channel_bytes_max = 50;

struct Message {
  std::vector<std::pair<std::string, std::string>> tags;  // unescaped values
  std::string prefix;                                     // without ':'
  std::string command;                                    // upper-cased
  std::vector<std::string> params;

  const std::string& param(std::size_t i) const;  // "" when absent
  std::optional<std::string> tag(std::string_view key) const;
};

// Parses one line without its CR LF. nullopt for an empty line or one with no command. The
// command is upper-cased; a trailing parameter (after " :") may be empty or hold spaces.
std::optional<Message> parse(std::string_view line);

// One line with CR LF. The caller keeps params free of CR, LF and NUL and only the last may be
// empty, start with ':' or hold a space (it is then sent as the trailing parameter).
std::string serialise(const Message& m);

// IRCv3 message-tags value escaping: ';' '\\' ' ' CR LF as \: \\ \s \r \n.
std::string escape_tag_value(std::string_view value);
std::string unescape_tag_value(std::string_view value);

// A peer's text for one IRC parameter: invalid UTF-8 as U+FFFD, C0 controls (CR, LF and NUL
// among them) as their Control Pictures, ESC as U+241B, DEL as U+2421, C1 controls as U+FFFD, tab
// as a space (app/render.h, for_terminal). IRC formatting codes (^B, ^C) are controls too, so a
// peer cannot colour or hide text either.
std::string neutralise(std::string_view text);

// Splits text into pieces of at most bytes_max bytes each, never inside a UTF-8 sequence,
// breaking after the last space of a piece where one is in its second half. bytes_max >= 4.
std::vector<std::string> split_text(std::string_view text, std::size_t bytes_max);

// ASCII case folding (CASEMAPPING=ascii).
std::string fold(std::string_view s);

// RFC 2812 2.3.1: nickname = ( letter / special ) *( letter / digit / special / "-" ), here up
// to nick_bytes_max bytes.
bool valid_nick(std::string_view nick);
// A peer's nick as a valid IRC nick: characters that may not appear become '_', runs of them
// one '_', a leading digit or '-' gets a '_' before it, cut to fit max_bytes. "" when nothing
// of it is a letter or a digit (the caller names the member by id then). Deterministic.
std::string make_nick(std::string_view raw, std::size_t max_bytes = nick_bytes_max);

// A group's label as a channel name: '#', then the label with ' ', ',', ':', controls and
// the middle dot that labels use ("lobby·1b11") as '-', cut to channel_bytes_max bytes on a
// UTF-8 boundary. The caller makes names unique.
std::string make_channel(std::string_view label);

// Unix milliseconds as an IRCv3 server-time value: "2026-11-27T06:13:11.123Z" (UTC).
std::string iso_time(std::int64_t unix_ms);

// Reassembles lines from a byte stream: CR LF, or a lone LF, ends a line (RFC 2812 2.3 asks
// for CR LF; clients that send LF alone exist). A line longer than input_line_bytes_max is
// dropped whole and counted; NUL bytes inside a line are dropped.
class LineReader {
 public:
  void feed(std::string_view bytes);
  std::optional<std::string> next();
  std::uint64_t dropped_lines() const { return dropped_; }

 private:
  std::vector<std::string> ready_;
  std::size_t ready_pos_ = 0;
  std::string partial_;
  bool overlong_ = false;
  std::uint64_t dropped_ = 0;
};

}  // namespace qun::irc
