// The commands of `qun chat`: what a line starting with '/' asks for, parsed without any chat
// state. Errors are one line, ready for the status line.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace qun::chat {

struct Command {
  enum class Kind {
    join, invite, members, kick, promote, demote, topic, leave, relays, help, quit,
    // The conversation layer (issue 12). reply, react, edit and del name a message by a short
    // reference as the first word of arg, or act on the selected message (the model decides,
    // since only it knows whether one is selected).
    reply, react, edit, del, me, nick, mute, unmute, ban, unban, hide, unhide, channel, modlog,
    // Search (issue 15): search takes the words in arg; jump the result number in uses.
    search, jump,
    // Files (issue 15): open and save take the file's number (a file line's /open N) in uses;
    // save an optional path in arg.
    open, save,
    // Direct messages (issue 15): msg NICK TEXT and query NICK [TEXT]: arg the member, arg2
    // the text (may be empty for query).
    msg, query,
  };
  // What /channel does: with no argument it lists; with a name alone it shows that channel.
  enum class ChannelOp { list, show, create, rename, archive };
  Kind kind = Kind::help;
  // join: code (whitespace removed); kick, promote, demote, mute, ban, hide...: member; topic,
  // me: text;
  // reply, edit: [REF] TEXT; react: [REF] EMOJI; del: [REF]; nick: the new nick; channel: name.
  std::string arg;
  std::string arg2;              // channel rename: the new name; promote: the role (admin default)
  ChannelOp channel_op = ChannelOp::list;
  std::uint32_t uses = 1;        // invite
  std::int64_t expires_ms = 0;   // invite: valid for this long, 0 never expires; mute: for how
                                 // long, 0 until unmuted
};

// The longest mute: a year, as the node allows (a longer one is a ban).
inline constexpr std::int64_t mute_ms_max = 366LL * 86'400'000;
// A channel name typed into the chat: the node's bound (issue 12: Slack's 80 characters).
inline constexpr std::size_t channel_name_bytes_max = 80;

// The newest acts /modlog shows: a screenful and more; `qun modlog GROUP` prints them all.
inline constexpr std::size_t modlog_lines_max = 50;

// The name of a command as typed, for messages about it ("/mute: ...").
const char* command_name(Command::Kind kind);
// The commands of the conversation layer (issue 12), which ChatModel runs and answers in
// cli/chat_conversation_model.cpp: reply, react, edit, delete, me, nick, mute, unmute, ban,
// unban, hide, unhide, channel, modlog.
bool is_conversation(Command::Kind kind);

// The longest expiry /invite takes: a year. Longer-lived invites are better made without one
// (and revoked when no longer wanted) than with a date nobody remembers.
inline constexpr std::int64_t invite_expiry_ms_max = 366LL * 86'400'000;

// Parses a line that starts with '/'. Errors are one line, ready for the status line. /join takes
// a code broken over several lines (a paste) and drops the whitespace inside it.
[[nodiscard]] Result<Command> parse_command(std::string_view line);
// "90s", "30m", "12h", "7d", "2w": a unit is required, 0 is refused, at most
// invite_expiry_ms_max.
[[nodiscard]] Result<std::int64_t> parse_expiry(std::string_view text);
// The same units for a mute: "10m", "2h", "7d"; at most mute_ms_max.
[[nodiscard]] Result<std::int64_t> parse_mute_duration(std::string_view text);
// One line per command, for /help.
const std::vector<std::string>& help_lines();

}  // namespace qun::chat
