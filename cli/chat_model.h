// The logic of `qun chat`, apart from the screen: text width and wrapping, the input line, command
// parsing, per-group message buffers with bounded scrollback, unread counts and the last-read
// marker, mention detection, and the layout of one frame as rows of styled spans.
//
// ChatModel is sans-IO in the engine shape of STYLE.md: it opens no socket, reads no clock and
// draws nothing. The driver (cli/chat.cpp) feeds it inputs (on_connected, on_disconnected,
// on_response, on_stream, on_key, on_tick) and after every input drains poll() until it is empty:
// NodeRequests to send on the control socket, a Bell, or Quit. Then it asks layout(cols, rows)
// for the frame and the view (cli/chat_view.h) draws it. Every NodeRequest that poll() returned
// must come back exactly once through on_response, with the node's result or an Error (also when
// the connection was lost before the answer). Time only moves forward through on_tick.
//
// Text from the node (messages, nicks, names, topics) is peer input: it is sanitized before it is
// measured or drawn, so no control character or escape sequence ever reaches the terminal.
//
// Not thread-safe; one model per client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "cli/chat_command.h"
#include "cli/chat_conversation.h"
#include "cli/chat_message.h"
#include "cli/chat_text.h"
#include "net/control.h"
#include "node/limits.h"

namespace qun::chat {

using Json = control::Json;

// ---------------------------------------------------------------------------------------------
// Bounds.

// Messages kept in memory per group. A busy group sees a few hundred a day; 2,000 is days of
// scrollback, and at most ~32 MB per group if every one were a maximal post. Past it the oldest
// are dropped; they stay in the node's store (`qun log`).
inline constexpr std::size_t scrollback_messages_max = 2000;
// Messages asked for per `log` page: a few screens of history, well under the node's 500.
inline constexpr std::size_t log_page_messages = 100;
// How long a notice (an error or a confirmation) stays on the status line.
inline constexpr std::int64_t notice_ms = 10'000;
// Messages typed while the node is away (or not yet acknowledged), held until it is back. More
// than a person types during a node restart; past it, Enter refuses and the text stays in the
// input, so nothing typed is lost either way.
inline constexpr std::size_t outbox_messages_max = 100;
// A message taking more rows than this is folded to fold_rows_shown rows and a line saying how
// many more there are (Ctrl+O unfolds): a pasted log of 16 KiB would otherwise fill screens.
inline constexpr std::size_t fold_rows_max = 12;
inline constexpr std::size_t fold_rows_shown = 8;
static_assert(fold_rows_shown < fold_rows_max);
// How often the node's status (peers, sync) is asked for: the status line may lag this much.
inline constexpr std::int64_t status_poll_ms = 2'000;
// The groups pane: its widest, and the narrowest terminal that still shows it.
inline constexpr int groups_pane_cols_max = 22;
inline constexpr int groups_pane_min_screen_cols = 60;
// Nicks wider than this are cut in message rows, so text keeps most of the width.
inline constexpr int nick_cols_max = 16;
// Below this the client only says the terminal is too small.
inline constexpr int screen_cols_min = 20;
inline constexpr int screen_rows_min = 5;

// Results a /search lists: a screenful; `qun search --limit` gives more.
inline constexpr std::size_t search_results_max = 20;
// Channels shown per group: the node holds at most 500 (issue 12: Discord's cap per server).
inline constexpr std::size_t channels_shown_max = 500;

static_assert(log_page_messages <= 500, "the node answers at most 500 messages per log page");
static_assert(log_page_messages < scrollback_messages_max);

// ---------------------------------------------------------------------------------------------
// Keys, after the view decoded them.

struct Key {
  enum class Kind {
    text,  // ch: a code point (Enter in a paste arrives as text '\n')
    enter,
    backspace,
    erase,  // Delete
    left,
    right,
    home,
    end,
    up,
    down,
    page_up,
    page_down,
    tab,
    ctrl,       // ch: 'a'..'z'
    alt_digit,  // ch: 1..9
    paste_begin,
    paste_end,
    scroll_bottom,  // Alt+End or Ctrl+End: back to the newest message
    select_up,      // Alt+Up: select the message above (the newest first)
    select_down,    // Alt+Down: select the message below
    escape,         // a lone Esc: let go of the selected message, cancel an edit
  };
  Kind kind = Kind::text;
  char32_t ch = 0;
};

// ---------------------------------------------------------------------------------------------
// What the model asks of the driver.

struct NodeRequest {
  enum class Purpose {
    id,
    subscribe,
    group_list,
    status,
    log_latest,
    log_older,
    read,
    post,
    command,
    members,   // the member list, for labels and succession notices
    channels,  // a group's channel list, for the groups pane
    auto_fetch,  // a file fetched on arrival (below Config::auto_fetch_bytes_max)
  };
  std::string op;
  Json args = Json::object();
  Purpose purpose = Purpose::status;
  std::string group;  // the group id it concerns, if any
  std::string typed;  // post and command: the line as typed, restored on failure
  Command::Kind command = Command::Kind::help;
  std::uint64_t pending = 0;  // post: the outbox entry it sends
};
struct Bell {};
struct Quit {};
// Open a file the node saved (/open): with the desktop's opener where there is a display.
struct OpenFile {
  std::string path;
};
using Action = std::variant<NodeRequest, Bell, Quit, OpenFile>;

// ---------------------------------------------------------------------------------------------
// One frame, as styled rows; the view maps styles to colours.

enum class Style {
  normal,
  time,
  nick,  // Span::color picks one of nick_colors
  own_nick,
  own_text,
  mention,  // text of a message that mentions you
  ref,       // a message's short reference (Ctrl+R)
  selected,  // the reference of the selected message (Alt+Up)
  quote,     // the quoted start of a reply's parent, "(edited)", "message deleted"
  reaction,  // the reactions under a message
  system,   // joins, leaves, kicks, role and topic changes
  info,     // local lines: command results, help
  error,    // local error lines
  code,     // an invite code: a row with this first span spans the whole screen, from column 0
  marker,   // the unread marker line
  day,      // a day separator
  title,
  status,
  status_bad,  // the node is not reachable
  notice,
  notice_error,
  group,
  group_selected,
  group_unread,
  group_mention,
  channel,  // a channel row under its group, without unread messages
  separator,
};
inline constexpr int nick_colors = 6;

struct Span {
  std::string text;
  Style style = Style::normal;
  int color = 0;
};
using Row = std::vector<Span>;

struct Frame {
  int cols = 0;
  int rows = 0;
  bool too_small = false;
  Row title;                  // row 0
  int groups_cols = 0;        // 0: no groups pane
  std::vector<Row> groups;    // rows 1 .. rows-3, left pane
  // rows 1 .. rows-3, right of the pane and its separator; a row whose first span is
  // Style::code starts at column 0 instead, over the pane (is_wide_row).
  std::vector<Row> messages;
  Row status;                 // row rows-2
  std::string input;          // row rows-1, after the prompt
  std::string prompt;
  int cursor_col = 0;  // screen column of the cursor on the input row
};

// A message row drawn across the whole screen rather than beside the groups pane.
inline bool is_wide_row(const Row& row) { return !row.empty() && row[0].style == Style::code; }

// ---------------------------------------------------------------------------------------------
// The model.

class ChatModel {
 public:
  struct Config {
    std::optional<std::string> initial_group;  // id, id prefix or name
    TimeFormat time_format = local_time;
    // Files (issue 15): files up to this size are fetched as they arrive, so /open is at once;
    // larger ones only on /open or /save (the setting chat.auto_fetch_mib; 0 never).
    std::uint64_t auto_fetch_bytes_max = 0;
    std::string open_dir = {};  // where /open saves a file first (a cache folder)
    std::string save_dir = {};  // where /save saves without a PATH (the downloads folder)
    bool display = false;  // a desktop to open files on (the driver runs xdg-open)
  };
  explicit ChatModel(Config config);

  // The control connection came up: asks for identity, subscription, groups and status.
  void on_connected();
  // The control connection is gone (reason is one line). In-flight requests must still be
  // answered through on_response. Everything typed stays.
  void on_disconnected(const std::string& reason);
  void on_response(const NodeRequest& request, Result<Json> result);
  // A value with "stream" from the subscription.
  void on_stream(const Json& value);
  void on_key(const Key& key);
  // Time passes: notices expire, status is polled. Early or repeated calls do nothing harmful.
  void on_tick(std::int64_t now_ms);

  [[nodiscard]] std::optional<Action> poll();
  // The frame for a terminal of cols x rows. Remembers the size for scrolling by pages.
  Frame layout(int cols, int rows);

  // For tests and the driver.
  bool connected() const { return connected_; }
  const InputLine& input() const { return input_; }
  InputLine& input() { return input_; }
  std::size_t group_count() const { return order_.size(); }
  std::optional<std::string> selected_group() const;
  struct GroupView {
    std::string id;
    std::string name;
    std::string label;  // the name, or name·1b11 when another group has the same name
    bool member = true;
    std::string topic;
    std::size_t unread = 0;
    std::size_t mentions = 0;
    std::size_t messages = 0;
    std::size_t scroll_rows = 0;
    std::size_t new_below = 0;
    bool history_complete = false;
    std::string channel;  // the channel shown
    std::string own_role;  // this node's role in the group, once the member list is in
    bool direct = false;   // a direct conversation, listed under 'direct' in the pane
  };
  // One row of the groups pane: a group (showing its #general) or one of its other channels.
  struct PaneEntry {
    std::string group;
    std::string channel;  // "general" for the group's own row
    std::size_t unread = 0;
    std::size_t mentions = 0;
  };
  std::vector<PaneEntry> pane_entries() const;
  // The channels of a group, #general first; empty for an unknown group.
  std::vector<std::string> channels(std::string_view group_id) const;
  // The message selected with Alt+Up (its id), if any.
  std::optional<std::string> selected_message() const { return selected_message_; }
  // The message being edited (its id), after Up on an empty input or /edit without text.
  std::optional<std::string> editing() const;
  bool showing_refs() const { return show_refs_; }
  std::optional<GroupView> group(std::string_view id) const;
  std::optional<std::string> notice() const;
  std::size_t outbox_size() const { return outbox_.size(); }
  const std::vector<Message>* messages(std::string_view group_id) const;

 private:
  struct Member {
    std::string label;  // the nick, or nick·1b11 when two members share it
    std::string role;
    std::optional<std::int64_t> muted_until;  // Unix ms; members --json "muted_until"
  };
  struct Channel {
    std::string name;
    std::size_t unread = 0;
    std::size_t mentions = 0;
  };
  struct Buffer {
    std::string id;
    std::string name;
    std::string label;
    std::string topic;
    bool member = true;     // this node is a member (group.list, or a removal just seen)
    bool direct = false;    // a direct conversation (qun dm), listed under 'direct'
    std::string removed_by; // who removed us, when we saw it happen
    std::map<std::string, Member> roster;  // member id -> label and role, once fetched
    bool roster_loaded = false;
    bool roster_loading = false;
    bool roster_stale = false;  // a membership change arrived while it was loading
    // A leave or removal arrived since the roster was fetched ("left", "was removed"): a new
    // admin in the next roster without a set-role is the group's succession rule at work.
    std::string succession_cause;
    std::set<std::string> promoted_since;  // set-role targets since the roster was fetched
    std::size_t new_below = 0;  // messages that arrived while scrolled up
    bool unfolded = false;      // Ctrl+O: long messages shown whole
    std::size_t members = 0;
    std::size_t unread = 0;
    std::size_t mentions = 0;
    // Channels other than #general (issue 12), by name; #general's counts are unread/mentions.
    std::map<std::string, Channel> channels;
    std::string channel = "general";  // the channel shown
    bool channels_loading = false;
    bool channels_loaded = false;  // asked for since (re)connecting
    std::vector<Message> messages;  // oldest first, at most scrollback_messages_max
    std::set<std::string> ids;      // ids of messages, for de-duplication
    bool loaded = false;            // the latest page was fetched since (re)connecting
    bool loading_latest = false;
    bool loading_older = false;
    bool history_complete = false;  // the oldest message of the group is in messages
    std::size_t scroll_rows = 0;    // rows scrolled up from the bottom; 0 follows new ones
    // The unread marker sits after this message (nullopt: at the top, before all of them).
    std::optional<std::string> marker_after;
    bool marker_set = false;
    std::size_t unread_at_open = 0;  // unread when first opened: where the marker goes
    bool synced = true;
    // From the node's status: no peer of the group is linked (what is posted waits in the
    // node's outbox), and how many own posts wait there.
    bool reachable = true;
    std::size_t outbox = 0;
  };

  struct Outgoing {
    std::uint64_t number = 0;
    std::string group;
    std::string channel = "general";
    std::optional<std::string> reply_to;
    bool action = false;
    std::string text;
    std::string typed;
    bool sent = false;  // a post request is out for it
  };

  void request(NodeRequest r);
  void notify(std::string text, bool error);
  void clear_error_notice();
  void add_info(std::string text, bool error, bool bare = false);
  void add_info_to(Buffer& b, std::string text, bool error);
  void send_outbox();
  void post_failed(const NodeRequest& r, const std::string& error);
  void remove_pending(std::uint64_t number);
  void refresh_roster(Buffer& b);
  void apply_roster(Buffer& b, const Json& list);
  void on_membership_event(Buffer& b, const Message& m);
  std::string author_label(const Buffer& b, const Message& m) const;
  void submit();
  void run_command(const Command& c, const std::string& typed);
  void select(std::size_t index);
  void select_entry(std::size_t index);  // a row of pane_entries()
  void show_channel(Buffer& b, const std::string& channel);
  bool in_view(const Buffer& b, const Message& m) const;  // shown in b's current channel
  bool shown(const Buffer& b, const Message& m) const;    // in view and a line of its own
  std::size_t& unread_of(Buffer& b, const std::string& channel);
  std::size_t& mentions_of(Buffer& b, const std::string& channel);
  void refresh_channels(Buffer& b);
  void apply_channel_list(Buffer& b, const Json& list);
  // Conversation (chat_conversation_model.cpp).
  void on_conversation_line(Buffer& b, const Message& m);
  void select_message(int direction);  // -1 older, +1 newer
  void keep_selected_in_view(Buffer& b);
  bool start_edit_last();
  void start_edit(Buffer& b, std::size_t k);
  void submit_edit();
  void cancel_edit();
  // The message a command acts on: the selected one, else the reference that starts arg.
  // *rest receives what follows the reference (all of arg when a message is selected).
  [[nodiscard]] Result<std::size_t> command_target(const Buffer& b, const Command& c,
                                                   std::string* rest) const;
  [[nodiscard]] Result<void> run_conversation_command(const Command& c, const std::string& typed,
                                                      Buffer& b, NodeRequest& r);
  void handle_conversation_result(const NodeRequest& r, const Json& result);
  std::string member_arg(const Buffer& b, const std::string& name) const;
  bool node_lacks_conversation() const { return node_conversation_ == false; }
  void queue_post(Buffer& b, std::string text, const std::string& typed,
                  std::optional<std::string> reply_to, bool action);
  const std::map<std::string, std::string>& refs(const Buffer& b) const;
  // Files (chat_files.cpp).
  void learn_file(Buffer& b, const Message& m);
  void auto_fetch(Buffer& b, const Message& m);
  void run_file_command(const Command& c, const std::string& typed);
  void on_file_result(const NodeRequest& r, const Json& result);
  void on_file_progress(const Json& v);
  // Search (chat_search.cpp).
  void show_search_results(const std::string& query, const Json& result);
  void jump(std::size_t n);
  void continue_jump(Buffer& b);  // after a page of b arrived
  void scroll(int pages);
  void scroll_to_bottom();
  void quit();
  void complete_nick();
  void maybe_load_older(Buffer& b);
  void ensure_loaded(Buffer& b);
  void mark_read(Buffer& b);
  void place_marker_from_unread(Buffer& b);
  void append(Buffer& b, Message m);
  void merge_latest(Buffer& b, std::vector<Message> page);
  void learn_from(Buffer& b, const Message& m);  // node capabilities, channels
  void prepend_older(Buffer& b, std::vector<Message> page);
  void trim(Buffer& b);
  void apply_group_list(const Json& list);
  void handle_command_result(const NodeRequest& r, const Json& result);
  Buffer* selected();
  const Buffer* selected() const;
  Buffer* find(std::string_view id);

  // Rows of message k of b at the given width (with its day separator and marker line above).
  // marker: the index of the message the marker line goes above (marker_index()).
  std::vector<Row> message_block(const Buffer& b, std::size_t k, int cols,
                                 std::optional<std::size_t> marker) const;
  // The first message from the node after the marker position, if the marker shows at all.
  std::optional<std::size_t> marker_index(const Buffer& b) const;
  // Rows of b from the bottom up, at least `need` of them when there are that many (all when
  // need is SIZE_MAX); returned top to bottom. Sets *all when every row was produced.
  std::vector<Row> rows_from_bottom(const Buffer& b, int cols, std::size_t need, bool* all) const;
  std::size_t message_area_rows(int rows) const;
  int message_area_cols(int cols) const;
  int groups_pane_cols(int cols) const;

  Config config_;
  bool connected_ = false;
  std::string disconnect_reason_;
  std::string own_id_;
  std::optional<std::string> own_nick_;
  std::size_t peers_ = 0;
  std::map<std::string, Buffer> buffers_;
  std::vector<std::string> order_;  // group ids, in the node's order
  std::size_t selected_ = 0;
  std::optional<std::string> select_when_listed_;  // after /join, or the initial group
  bool initial_resolved_ = false;
  InputLine input_;
  bool pasting_ = false;
  std::deque<Action> actions_;
  std::optional<std::string> notice_;
  std::deque<Outgoing> outbox_;
  std::uint64_t next_outgoing_ = 1;
  std::optional<std::string> leave_confirm_;  // the group a first /leave asked about
  bool quit_confirm_ = false;  // a first Ctrl+C or /quit warned that the outbox is not empty
  bool notice_error_ = false;
  std::int64_t notice_until_ms_ = 0;
  std::int64_t now_ms_ = 0;
  std::int64_t next_status_ms_ = 0;
  bool status_in_flight_ = false;
  int last_cols_ = 80;
  int last_rows_ = 24;
  // Conversation state (issue 12).
  bool show_refs_ = false;                         // Ctrl+R
  std::optional<std::string> selected_message_;    // in the selected group's current channel
  struct Editing {
    std::string group;
    std::string id;
    std::string original;
  };
  std::optional<Editing> editing_;
  // Whether the node keeps replies, reactions, edits and deletions: known from the first post it
  // gives (Message::conversation); unknown until then.
  std::optional<bool> node_conversation_;
  // short_refs of one buffer, kept while its messages are the same ones.
  struct RefsCache {
    std::string group;
    std::size_t size = 0;
    std::string first, last;
    std::map<std::string, std::string> refs;
  };
  mutable RefsCache refs_cache_;
  // Search (issue 15): the last /search's results, and the one /jump is loading pages for.
  struct SearchResult {
    std::string group;
    std::string channel;  // its name ("general" for #general)
    std::string id;
  };
  std::vector<SearchResult> search_results_;
  std::optional<SearchResult> jump_pending_;
  // Files (issue 15): the file posts the chat has seen, numbered from 1 in the order it saw
  // them (the N of /open N), at most files_max; the last progress shown per file.
  struct SharedFile {
    std::string group;
    std::string id;
    std::string name;
    std::uint64_t size = 0;
  };
  std::vector<SharedFile> files_;
  std::map<std::string, std::size_t> file_numbers_;  // post id -> its number
  std::map<std::string, int> file_progress_;         // root -> percent last shown
 public:
  // The number of the file a post shares (its /open N), or 0 when it has none.
  std::size_t file_number(const std::string& post_id) const {
    auto it = file_numbers_.find(post_id);
    return it == file_numbers_.end() ? 0 : it->second;
  }
};

}  // namespace qun::chat
