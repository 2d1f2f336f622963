// ChatModel's layout: one frame as rows of styled spans (cli/chat_model.h).
#include <algorithm>
#include <climits>

#include "cli/chat_internal.h"
#include "cli/chat_model.h"
#include "app/render.h"

namespace qun::chat {
namespace {

using detail::hidden;
using detail::plural;
using detail::spaces;

std::string repeat(std::string_view unit, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += unit;
  return out;
}

int nick_color(const std::string& author) {
  unsigned h = 0;
  for (unsigned char c : author) h = h * 31 + c;
  return static_cast<int>(h % nick_colors);
}

int row_width(const Row& row) {
  int w = 0;
  for (const auto& s : row) w += display_width(s.text);
  return w;
}

// Cuts a row of spans to cols columns.
Row clip_row(Row row, int cols) {
  Row out;
  int used = 0;
  for (auto& span : row) {
    const int w = display_width(span.text);
    if (used + w <= cols) {
      used += w;
      out.push_back(std::move(span));
      continue;
    }
    span.text = truncate_to_width(span.text, cols - used);
    used += display_width(span.text);
    if (!span.text.empty()) out.push_back(std::move(span));
    break;
  }
  return out;
}

// A line of the given style that fills cols with `fill` around a label: "── label ──".
Row rule_row(const std::string& label, Style style, int cols) {
  const int label_cols = display_width(label) + 2;
  if (label_cols + 4 > cols) return clip_row({{label, style, 0}}, cols);
  const int left = (cols - label_cols) / 2;
  const int right = cols - label_cols - left;
  return {{repeat("\u2500", left) + " " + label + " " + repeat("\u2500", right), style, 0}};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Layout.

std::size_t ChatModel::message_area_rows(int rows) const {
  return rows > 3 ? static_cast<std::size_t>(rows - 3) : 0;
}

int ChatModel::groups_pane_cols(int cols) const {
  if (cols < groups_pane_min_screen_cols || order_.empty()) return 0;
  int widest = 8;
  for (const auto& id : order_) {
    auto it = buffers_.find(id);
    if (it == buffers_.end()) continue;
    widest = std::max(widest, display_width(sanitize(it->second.label, false)));
    for (const auto& [name, c] : it->second.channels)
      widest = std::max(widest, 2 + display_width(sanitize(name, false)));  // " #name"
  }
  return std::min(groups_pane_cols_max, widest + 8);  // "1 " + name + " 999@" and a space
}

int ChatModel::message_area_cols(int cols) const {
  const int pane = groups_pane_cols(cols);
  return std::max(1, pane > 0 ? cols - pane - 1 : cols);
}

bool ChatModel::shown(const Buffer& b, const Message& m) const {
  return !hidden(m) && !acts_on_message(m.kind) && !m.refused && in_view(b, m);
}

std::optional<std::size_t> ChatModel::marker_index(const Buffer& b) const {
  if (!b.marker_set) return std::nullopt;
  std::size_t start = 0;
  if (b.marker_after) {
    // A marker message that left the scrollback is older than everything held: start at 0.
    for (std::size_t i = b.messages.size(); i > 0; --i) {
      if (b.messages[i - 1].id == *b.marker_after) {
        start = i;
        break;
      }
    }
  }
  // Local info lines are never news: the marker goes above the next shown message from the node.
  for (std::size_t i = start; i < b.messages.size(); ++i)
    if (!b.messages[i].id.empty() && shown(b, b.messages[i])) return i;
  return std::nullopt;
}

std::vector<Row> ChatModel::message_block(const Buffer& b, std::size_t k, int cols,
                                          std::optional<std::size_t> marker) const {
  std::vector<Row> rows;
  const Message& m = b.messages[k];
  if (!shown(b, m)) return rows;
  const bool info = m.kind == "info";
  const bool pending = m.kind == "pending";
  const LocalTime t = config_.time_format(m.time_ms);
  if (!info && !pending) {
    std::optional<std::string> previous_day;
    for (std::size_t j = k; j > 0; --j) {
      const Message& p = b.messages[j - 1];
      if (p.kind != "info" && p.kind != "pending" && shown(b, p)) {
        previous_day = config_.time_format(b.messages[j - 1].time_ms).day;
        break;
      }
    }
    if (!previous_day || *previous_day != t.day) rows.push_back(rule_row(t.day, Style::day, cols));
  }
  if (marker == k) {
    rows.push_back(rule_row("new messages", Style::marker, cols));
  }
  if (info && m.bare) {
    // An invite code to copy: rows of its own across the whole screen (over the groups pane),
    // so a selection of them holds the code and line breaks only, never the pane's text.
    const int code_cols = std::max(cols, last_cols_);
    for (auto& line : wrap(sanitize(m.text.value_or(""), true), code_cols, code_cols))
      rows.push_back({{std::move(line), Style::code, 0}});
    return rows;
  }
  // Local lines have no time of their own (the model has no wall clock): blank instead.
  const std::string clock = info || pending ? spaces(display_width(t.clock)) : t.clock;
  const int clock_cols = display_width(clock);
  const bool own = !own_id_.empty() && m.author == own_id_;

  Style text_style = Style::normal;
  std::string text;
  Row head;
  head.push_back({clock, Style::time, 0});
  head.push_back({" ", Style::normal, 0});
  if (info) {
    text = sanitize(m.text.value_or(""), true);
    text_style = m.error ? Style::error : Style::info;
    head.push_back({"-- ", text_style, 0});
  } else if (pending) {
    const std::string nick = truncate_to_width(display_nick(own_nick_, own_id_), nick_cols_max);
    if (m.action) head.push_back({"* ", Style::system, 0});
    head.push_back({nick, Style::own_nick, 0});
    head.push_back({m.action ? " " : ": ", Style::normal, 0});
    text = sanitize(m.text.value_or(""), true);
    text_style = Style::system;
  } else if (m.kind == "post") {
    const bool picked = selected_message_ && *selected_message_ == m.id;
    if (show_refs_ || picked) {
      const auto& r = refs(b);
      auto it = r.find(m.id);
      head.push_back({it == r.end() ? m.id.substr(0, ref_digits_min) : it->second,
                      picked ? Style::selected : Style::ref, 0});
      head.push_back({" ", Style::normal, 0});
    }
    const std::string nick = truncate_to_width(author_label(b, m), nick_cols_max);
    if (m.action) head.push_back({"* ", Style::system, 0});
    head.push_back({nick, own ? Style::own_nick : Style::nick, nick_color(m.author)});
    head.push_back({m.action ? " " : ": ", Style::normal, 0});
    if (m.deleted) {
      text = "message deleted";
      if (m.redacted_by && *m.redacted_by != m.author) {
        Message by;
        by.author = *m.redacted_by;
        text += " by " + author_label(b, by);
      }
      text_style = Style::quote;
    } else if (m.text && m.file) {
      // A file post (issue 15): "📎 name · 2.3 MiB · /open 3", then its caption.
      text = sanitize(render::file_words(*m.file), false);
      if (const std::size_t n = file_number(m.id)) text += " \u00B7 /open " + std::to_string(n);
      if (!m.text->empty()) text += "\n" + sanitize(*m.text, true);
      text_style = own ? Style::own_text : Style::normal;
    } else if (m.text) {
      text = sanitize(*m.text, true);
      text_style = own                                          ? Style::own_text
                   : own_nick_ && mentions(*m.text, *own_nick_) ? Style::mention
                                                                : Style::normal;
    } else {
      text = m.stored ? render::unreadable_text : render::not_stored_text;
      text_style = Style::system;
    }
  } else {
    head.push_back({"* ", Style::system, 0});
    // Members who share a nick are told apart here too (their labels, once the roster is in).
    Message shown = m;
    if (auto it = b.roster.find(m.author); it != b.roster.end()) shown.nick = it->second.label;
    if (m.target)
      if (auto it = b.roster.find(*m.target); it != b.roster.end())
        shown.target_nick = it->second.label;
    text = system_text(shown);
    text_style = Style::system;
  }
  if (pending) text += connected_ ? " (sending)" : " (pending: waiting for the node)";
  const int head_cols = row_width(head);
  // Continuation lines start under the text when that leaves room, else under the clock's end.
  const int indent = cols - head_cols >= 20 ? head_cols : std::min(clock_cols + 1, cols - 1);
  if ((m.kind == "post" || pending) && m.reply_to) {
    // A reply quotes the start of its parent on a row above it, under the clock's end.
    const int quote_indent = std::min(clock_cols + 1, cols - 1);
    std::string quote = "\u250C\u2500 ";
    auto parent = std::find_if(b.messages.rbegin(), b.messages.rend(),
                               [&](const Message& p) { return p.id == *m.reply_to; });
    if (parent == b.messages.rend()) {
      quote += "reply to a message not loaded here";
    } else {
      quote += author_label(b, *parent) + ": ";
      quote += quote_start(*parent, cols - quote_indent - display_width(quote));
    }
    rows.push_back(
        clip_row({{spaces(quote_indent), Style::normal, 0}, {quote, Style::quote, 0}}, cols));
  }
  auto lines = wrap(text, cols - head_cols, cols - indent);
  std::size_t folded = 0;
  if (!b.unfolded && !info && lines.size() > fold_rows_max) {
    folded = lines.size() - fold_rows_shown;
    lines.resize(fold_rows_shown);
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    Row row;
    if (i == 0) {
      row = head;
    } else {
      row.push_back({spaces(indent), Style::normal, 0});
    }
    row.push_back({lines[i], text_style, 0});
    rows.push_back(clip_row(std::move(row), cols));
  }
  if (m.kind == "post" && m.edited && !m.deleted && folded == 0) {
    // "(edited)" after the text: on its last row where it fits, else on a row of its own.
    const std::string mark = " (edited)";
    if (row_width(rows.back()) + display_width(mark) <= cols)
      rows.back().push_back({mark, Style::quote, 0});
    else
      rows.push_back(clip_row({{spaces(indent), Style::normal, 0}, {"(edited)", Style::quote, 0}},
                              cols));
  }
  if (folded > 0) {
    rows.push_back(clip_row({{spaces(indent), Style::normal, 0},
                             {"\u2026 " + plural(folded, "more line", "more lines") +
                                  " (Ctrl+O unfolds)",
                              Style::system, 0}},
                            cols));
  }
  if (m.kind == "post" && !m.reactions.empty() && !m.deleted) {
    // Reactions under the message: each emoji with its count; who reacted when it is selected.
    const bool picked = selected_message_ && *selected_message_ == m.id;
    std::string line;
    for (const auto& [emoji, who] : m.reactions) {
      if (!line.empty()) line += "  ";
      line += sanitize(emoji, false) + " ";
      if (!picked) {
        line += std::to_string(who.size());
        continue;
      }
      bool first = true;
      for (const auto& id : who) {
        line += first ? "" : ", ";
        first = false;
        auto it = b.roster.find(id);
        line += it != b.roster.end() ? it->second.label : display_nick(std::nullopt, id);
      }
    }
    for (auto& l : wrap(line, cols - indent, cols - indent))
      rows.push_back(clip_row({{spaces(indent), Style::normal, 0}, {l, Style::reaction, 0}}, cols));
  }
  return rows;
}

std::vector<Row> ChatModel::rows_from_bottom(const Buffer& b, int cols, std::size_t need,
                                             bool* all) const {
  std::vector<std::vector<Row>> blocks;
  const std::optional<std::size_t> marker = marker_index(b);
  std::size_t count = 0;
  std::size_t k = b.messages.size();
  while (k > 0 && count < need) {
    --k;
    blocks.push_back(message_block(b, k, cols, marker));
    count += blocks.back().size();
  }
  *all = k == 0;
  std::vector<Row> rows;
  if (*all) {
    std::string header;
    Style style = Style::info;
    if (b.history_complete) {
      header = "the beginning of " + sanitize(b.label, false);
      style = Style::day;
    } else if (b.loading_older || (b.loading_latest && b.messages.empty())) {
      header = "loading messages\u2026";
    } else if (!b.messages.empty()) {
      header = connected_ ? "PageUp loads older messages" : "";
    }
    if (!header.empty()) rows.push_back(rule_row(header, style, cols));
  }
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
    for (auto& row : *it) rows.push_back(std::move(row));
  return rows;
}

Frame ChatModel::layout(int cols, int rows) {
  Frame f;
  f.cols = cols;
  f.rows = rows;
  if (cols < screen_cols_min || rows < screen_rows_min) {
    f.too_small = true;
    return f;
  }
  last_cols_ = cols;
  last_rows_ = rows;
  Buffer* b = selected();
  const int pane = groups_pane_cols(cols);
  const int area = message_area_cols(cols);
  const std::size_t height = message_area_rows(rows);
  f.groups_cols = pane;

  // Title: name, members and topic.
  if (b != nullptr) {
    std::string title = " " + sanitize(b->label, false);
    if (!b->channels.empty() || b->channel != "general") title += " #" + sanitize(b->channel, false);
    if (b->direct) {
      title += " \u00B7 direct conversation" +
               std::string(b->member && b->members < 2 ? ": they left" : "");
    } else if (!b->member) {
      title += " \u00B7 not a member" +
               (b->removed_by.empty() ? std::string() : " (removed by " + b->removed_by + ")") +
               "; a new invite and /join CODE bring you back";
    } else if (b->members > 0) {
      title += " \u00B7 " + plural(b->members, "member", "members");
    }
    if (auto me = b->roster.find(own_id_); b->member && me != b->roster.end())
      title += " \u00B7 you: " + me->second.role;
    if (!b->topic.empty()) title += " \u2014 " + sanitize(b->topic, false);
    f.title = clip_row({{title, Style::title, 0}}, cols);
  } else {
    f.title = clip_row({{" qun chat", Style::title, 0}}, cols);
  }

  // Groups pane.
  if (pane > 0) {
    // Each group is a row (its #general), with its other channels under it, numbered in order
    // for Alt+1..9 as weechat numbers its buffers.
    // Direct conversations follow under a "direct" heading (a row of its own, not numbered).
    const auto entries = pane_entries();
    std::size_t at = 0;
    std::optional<std::size_t> first_direct;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (b != nullptr && entries[i].group == b->id && entries[i].channel == b->channel) at = i;
      if (!first_direct && buffers_.at(entries[i].group).direct) first_direct = i;
    }
    std::size_t first = at + 1 > height ? at + 1 - height : 0;
    // The heading takes a row above the selected entry: keep the entry in view.
    if (first_direct && *first_direct >= first && at >= *first_direct && at + 2 - first > height)
      ++first;
    for (std::size_t i = first; i < entries.size() && f.groups.size() < height; ++i) {
      const PaneEntry& e = entries[i];
      const Buffer& g = buffers_.at(e.group);
      if (first_direct && i == *first_direct) {
        f.groups.push_back(clip_row({{"direct", Style::separator, 0}}, pane));
        if (f.groups.size() >= height) break;
      }
      const bool channel_row = e.channel != "general";
      std::string suffix;
      if (e.unread > 0) suffix = " " + std::to_string(std::min<std::size_t>(e.unread, 999));
      if (e.mentions > 0) suffix += "@";
      std::string label = (i < 9 ? std::to_string(i + 1) : std::string(" ")) + " ";
      const int name_cols = pane - display_width(label) - display_width(suffix) - 1;
      label += truncate_to_width(
          channel_row ? " #" + sanitize(e.channel, false) : sanitize(g.label, false), name_cols);
      label += spaces(pane - 1 - display_width(label) - display_width(suffix)) + suffix;
      const Style style = i == at && b != nullptr ? Style::group_selected
                          : e.mentions > 0        ? Style::group_mention
                          : e.unread > 0          ? Style::group_unread
                          : channel_row           ? Style::channel
                                                  : Style::group;
      f.groups.push_back(clip_row({{label, style, 0}}, pane));
    }
  }

  // Messages.
  if (b != nullptr) {
    bool all = false;
    std::vector<Row> all_rows = rows_from_bottom(*b, area, b->scroll_rows + height, &all);
    if (all) {
      const std::size_t max_scroll = all_rows.size() > height ? all_rows.size() - height : 0;
      b->scroll_rows = std::min(b->scroll_rows, max_scroll);
    }
    const std::size_t bottom = all_rows.size() - std::min(all_rows.size(), b->scroll_rows);
    const std::size_t top = bottom > height ? bottom - height : 0;
    for (std::size_t i = top; i < bottom; ++i) f.messages.push_back(std::move(all_rows[i]));
  } else {
    const std::vector<std::string> welcome = {
        connected_ ? "You are in no group yet." : "Waiting for the node\u2026",
        "Join one with /join CODE (an invite code from a member),",
        "or create one in a shell: qun group create NAME",
        "/help lists the commands; Ctrl+C quits."};
    for (const auto& line : welcome)
      for (const auto& l : wrap(line, area, area)) f.messages.push_back({{l, Style::info, 0}});
  }
  if (f.messages.size() > height)
    f.messages.erase(f.messages.begin(), f.messages.end() - static_cast<std::ptrdiff_t>(height));
  while (f.messages.size() < height) f.messages.insert(f.messages.begin(), Row{});

  // Status line.
  Row status;
  if (connected_) {
    std::string s = " node: connected \u00B7 " + plural(peers_, "peer", "peers");
    if (b != nullptr && !b->reachable)
      s += " \u00B7 no peer of this group reachable: posts wait here";
    else if (b != nullptr)
      s += b->synced ? " \u00B7 synced" : " \u00B7 syncing";
    if (b != nullptr && b->outbox > 0) s += " \u00B7 " + std::to_string(b->outbox) + " queued";
    status.push_back({s, Style::status, 0});
  } else {
    std::string s = " node: " + (disconnect_reason_.empty() ? "not running" : disconnect_reason_) +
                    " \u2014 retrying every second; your text is kept";
    status.push_back({s, Style::status_bad, 0});
  }
  if (b != nullptr && b->scroll_rows > 0) {
    if (b->new_below > 0)
      status.push_back({" \u00B7 " + plural(b->new_below, "new message", "new messages") +
                            " below (Alt+End)",
                        Style::notice, 0});
    else
      status.push_back({" \u00B7 scrolled up (PageDown, Alt+End)", Style::status, 0});
  }
  if (notice_) {
    status.push_back({" \u2502 ", Style::status, 0});
    status.push_back({*notice_, notice_error_ ? Style::notice_error : Style::notice, 0});
  }
  f.status = clip_row(std::move(status), cols);

  // Input line.
  f.prompt = pasting_ ? "paste> " : editing_ ? "edit> " : "> ";
  const int prompt_cols = display_width(f.prompt);
  const InputLine::Visible v = input_.visible(cols - prompt_cols);
  f.input = v.text;
  f.cursor_col = prompt_cols + v.cursor_col;
  return f;
}

}  // namespace qun::chat