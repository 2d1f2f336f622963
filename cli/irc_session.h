// irc::Session: one IRC client of `qun irc`, as a sans-IO engine (STYLE.md, "The engine shape").
//
// The session speaks IRC to one client (RFC 1459/2812 and the IRCv3 capabilities server-time,
// message-tags, batch, echo-message and draft/chathistory) and qun's control protocol to the
// node (docs/cli.md, "Control socket"). Each group this node is a member of is a channel (#label),
// and each other channel NAME of the group another (#label/NAME); members are nicks, posts are
// PRIVMSG (an action post is a CTCP ACTION), edits a PRIVMSG marked "(edited)", deletions
// REDACT (draft/message-redaction) or a NOTICE, mutes and bans MODE +q and +b, and
// TOPIC, KICK, NAMES, WHO, WHOIS, LIST, MODE +o (promote) and JOIN with an invite code map to
// the node's requests. Replies and reactions (+draft/reply, +draft/react) are the node's
// reply_to and react; a client without message-tags sees "nick: " before a reply and a NOTICE
// for a reaction. Direct conversations (qun dm) are private queries: a PRIVMSG to a nick is a
// direct message to that member (op "dm"), and a direct message from a member reaches the client
// as a PRIVMSG to the client's nick. docs/irc.md says what each command does.
//
// Calling contract. The driver feeds every line the client sent (on_line, without CR LF), every
// answer to a request the session asked for (on_response, with the token of its NodeRequest),
// every stream value of the node's subscription (on_stream) and the loss of the node
// (on_node_lost); after each input it drains poll() until it returns nullopt and carries out
// each output in order. Answers may come in any order. After a Close output the session takes no
// more input. No clock: times come from the node's entries; the time of day for plain playback
// is formatted by the injected Config::clock.
//
// Peer input: every nick, group name, topic and post that reaches the client goes through
// irc_line.h (neutralise, split_text, make_nick, make_channel), so no peer can break the line
// framing or impersonate another nick; nicks are made unique deterministically (a clash gets
// "|" and the first hex digits of the member id).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"
#include "cli/irc_line.h"
#include "net/control.h"
#include "node/limits.h"

namespace qun::irc {

using Json = control::Json;

// The nick of the service that answers /msg qun COMMAND (bitlbee's "root").
inline constexpr const char* service_nick = "qun";
// History played back on joining a channel: the node's largest `log` page (net/daemon.cpp,
// log_page_max), so one request fetches it.
inline constexpr std::size_t playback_entries_max = 500;
// Entries one CHATHISTORY request may ask for; advertised as CHATHISTORY=100 (a screenful or
// two, what clients ask for when scrolling up; the spec leaves the value to the server).
inline constexpr std::size_t chathistory_entries_max = 100;
// Posts sent to the node and not yet answered. The driver stops reading the client at this
// many (wants_input), so a client that pastes a book is paced by the node, not buffered.
inline constexpr std::size_t posts_in_flight_max = 64;
// Ids of this session's own posts remembered so that their delivery is not shown twice (the
// client already shows what it sent): more than the posts in flight, with room for the node
// delivering a post after answering its request.
inline constexpr std::size_t own_posts_remembered_max = 4 * posts_in_flight_max;
// Posts shown to the client that a reply or reaction (+draft/reply) may name: their author and
// first words, for the readable fallback. A few screens of scrollback; a reply to an older post
// is posted without the name.
inline constexpr std::size_t replyable_posts_max = 1024;
// A reaction's text (+draft/react): an emoji with modifiers, or a short word. Longer ones are
// dropped.
inline constexpr std::size_t reaction_bytes_max = 64;
// Channels of one group shown as IRC channels: all the node holds (node/limits.h, channels_max:
// Discord's cap per server), as the chat shows them.
inline constexpr std::size_t channels_per_group_max = limits::channels_max;
// The excerpt of the post a reaction names.
inline constexpr std::size_t excerpt_bytes_max = 60;

struct Config {
  std::string password;       // what PASS must give
  std::string password_path;  // where it is, for the refusal's words
  std::string server_name = "qun";
  // The time of day of a played-back entry for a client without server-time ("14:03").
  std::function<std::string(std::int64_t unix_ms)> clock;
};

struct ToClient {
  std::string line;  // serialised, CR LF included
};
struct NodeRequest {
  std::uint64_t token;
  std::string op;
  Json args;
};
struct Close {
  std::string reason;  // for the driver's log; the client was already sent ERROR
};
using Output = std::variant<ToClient, NodeRequest, Close>;

class Session {
 public:
  explicit Session(Config config);

  void on_line(std::string_view line);
  void on_response(std::uint64_t token, Result<Json> result);
  void on_stream(const Json& value);
  void on_node_lost(const std::string& why);

  [[nodiscard]] std::optional<Output> poll();

  bool registered() const { return registered_; }
  bool closed() const { return closed_; }
  // False while posts_in_flight_max posts wait for the node: the driver stops reading.
  bool wants_input() const { return !closed_ && posts_in_flight_.size() < posts_in_flight_max; }
  const std::string& nick() const { return nick_; }

 private:
  struct Member {
    std::string id;
    std::string nick;  // the node's, raw
    std::string role;  // "member", "admin", "founder"
  };
  // One IRC channel: a channel of a group (issue 12). The group's main channel, "general", is
  // #label; another channel NAME is #label/NAME (docs/irc.md).
  struct Chan {
    std::string name;        // the qun channel's name ("general" for the group's main channel)
    std::string key;         // the channel's id ("general" for the main one): stays when renamed
    std::string irc;         // the IRC channel's name, unique on this connection
    bool joined = false;     // shown to the client as a joined channel
    bool parted = false;     // the client PARTed it: not joined again until it asks
    bool want_join = false;  // join as soon as the members arrive
  };
  struct Group {
    std::string id;
    std::string label;
    std::optional<std::string> topic;
    std::uint64_t unread = 0;
    bool member = false;
    std::map<std::string, Chan> chans;  // by qun name; "general" is always there
    std::vector<Member> members;
    bool have_members = false;
    bool played = false;     // history played back once this session
    // The playback's `log` is asked and not answered: what the node streams meanwhile is in
    // that page (the node answers and streams on one ordered connection), so it is not shown
    // live, and posts by others add to `unread` so the playback starts where it should.
    bool playback_pending = false;
  };
  enum class Purpose {
    id,
    group_list,
    subscribe,
    members,
    playback,
    post,
    topic,
    kick,
    promote,
    join_code,
    leave,
    invite,
    chathistory,
    read,
    react,
    channels,
    channel_create,
    dm,           // a PRIVMSG to a nick: the node's "dm" (detail: the text)
    dm_playback,  // a direct conversation's unread messages
  };
  struct Pending {
    Purpose purpose;
    std::string group;   // group id where the request is about one
    std::string detail;  // the channel typed, the post's text, the chathistory target
  };

  // Client commands.
  void handle(const Message& m);
  void cmd_cap(const Message& m);
  void cmd_pass(const Message& m);
  void cmd_nick(const Message& m);
  void cmd_user(const Message& m);
  void cmd_join(const Message& m);
  void cmd_part(const Message& m);
  void cmd_privmsg(const Message& m);
  void cmd_topic(const Message& m);
  void cmd_kick(const Message& m);
  void cmd_names(const Message& m);
  void cmd_who(const Message& m);
  void cmd_whois(const Message& m);
  void cmd_mode(const Message& m);
  void cmd_list(const Message& m);
  void cmd_ison(const Message& m);
  void cmd_chathistory(const Message& m);
  void cmd_tagmsg(const Message& m);
  void remember_post(const std::string& id, const std::string& nick, const std::string& text,
                     const std::string& channel);
  void service_command(std::string_view text);
  void try_register();

  // Node answers.
  void on_id(const Json& r);
  void on_group_list(const Json& r);
  void on_members(const std::string& group, const Json& r);
  void on_channels(const std::string& group, const Json& r);
  // The joined channels by (group id, channel key), before a change to groups_.
  std::map<std::pair<std::string, std::string>, std::string> joined_channels() const;
  void rename_channels(const std::map<std::pair<std::string, std::string>, std::string>& old);
  void on_history(const std::string& group, const Json& entries, bool playback,
                  const std::string& target);
  void on_message(const std::string& group, const Json& entry);
  // Direct conversations (qun dm) as private queries.
  struct Direct {
    std::string peer;                 // the other member's id
    std::optional<std::string> nick;  // its nick, as the node gives it
    std::uint64_t unread = 0;
    bool played = false;        // its unread messages were played back this session
    bool playback_pending = false;
  };
  void play_directs();
  // A post of direct group `gid` as a private message: from the peer to this client, or (a post
  // of this node's from another client) from this client to the peer.
  void send_direct(const std::string& gid, const Direct& d, const Json& entry, bool live);
  // The member a nick names (a nick the session shows, or a direct conversation's peer).
  std::optional<std::string> member_by_any_nick(std::string_view nick) const;
  void welcome();

  // Output helpers.
  void send(Message m);
  void numeric(const std::string& code, std::vector<std::string> params);
  void notice(const std::string& text);  // from the server to the client
  void service_reply(const std::string& text);
  void fail_close(const std::string& error_text, const std::string& reason);
  std::uint64_t request(Purpose purpose, std::string op, Json args, std::string group = {},
                        std::string detail = {});
  void join_channel(Group& g, Chan& c);
  void join_wanted(Group& g);
  void send_names(const Group& g, const Chan& c);
  void send_topic(const Group& g, const Chan& c, bool reply_none);
  // An entry of group g: a post goes to its channel, edits and deletions to their post's, other
  // events to the main channel, and changes of membership to every joined channel of the group.
  // With `only`, the entry is sent there or not at all (a CHATHISTORY answer).
  void send_entry(Group& g, const Json& entry, bool live, const std::string& batch,
                  const Chan* only = nullptr);
  // Sends m once to each joined channel of g, its first parameter set to the channel.
  void send_all(const Group& g, Message m);
  void send_text(const std::string& source, const std::string& command, const std::string& target,
                 const std::string& text, bool action,
                 std::vector<std::pair<std::string, std::string>> tags);

  // Names.
  void assign_channels();
  void assign_nicks(bool announce);
  std::string nick_of(const std::string& member_id, const std::optional<std::string>& raw) const;
  std::string source_of(const std::string& member_id, const std::optional<std::string>& raw) const;
  std::string self_source() const;
  struct Target {
    Group* group;
    Chan* chan;
  };
  std::optional<Target> by_channel(std::string_view channel);
  // A member group's channel from what the client typed, or nullptr.
  Group* group_by_channel(std::string_view channel);
  Group* group_by_id(const std::string& id);
  std::optional<std::string> member_by_nick(const Group& g, std::string_view nick) const;
  bool visible(const std::string& member_id) const;
  static bool any_joined(const Group& g);
  static Chan& main_chan(Group& g) { return g.chans["general"]; }

  Config config_;
  std::deque<Output> out_;
  bool closed_ = false;

  // Registration.
  std::optional<std::string> pass_;
  std::string nick_;
  bool have_user_ = false;
  bool cap_negotiating_ = false;
  std::set<std::string> caps_;
  bool registered_ = false;  // password checked, node asked
  bool welcomed_ = false;    // 001 sent
  bool have_id_ = false, have_groups_ = false;

  // The node.
  std::string self_id_;
  std::map<std::string, Group> groups_;  // by id: ordered, so names are assigned the same way
  std::map<std::string, Direct> directs_;  // direct conversations, by group id (not channels)
  std::map<std::string, std::string> nicks_;       // member id -> IRC nick
  std::map<std::string, std::string> nick_owner_;  // fold(IRC nick) -> member id
  std::map<std::uint64_t, Pending> pending_;
  std::uint64_t next_token_ = 1;
  std::set<std::string> read_dirty_;  // groups whose read marker moves at the next drain
  std::multiset<std::string> posts_in_flight_;  // "group\ntext" of posts not yet answered
  std::deque<std::string> own_posts_;           // ids of this session's posts, newest last
  std::uint64_t next_batch_ = 1;
  struct Replyable {
    std::string nick;
    std::string excerpt;
    std::string channel;  // the post's qun channel, where its edits and deletions are shown
  };
  std::map<std::string, Replyable> replyable_;  // by event id
  std::deque<std::string> replyable_order_;     // oldest first

};

}  // namespace qun::irc
