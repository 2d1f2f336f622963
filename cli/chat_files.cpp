// The chat's side of files (issue 15): every file post gets a number in the order the chat sees
// it, shown on its line (`📎 photo.png · 2.3 MiB · /open 3`); /open N has the node fetch the
// file into the chat's cache folder and opens it there, /save N [PATH] saves it (default: the
// downloads folder). Files up to the chat.auto_fetch_mib setting are fetched as they arrive, so
// /open is at once; nothing larger is ever fetched without /open or /save.
#include "cli/chat_internal.h"

namespace qun::chat {

// File posts numbered at once: a long session's worth; past it, new files get no number (the
// line says so by having none) and `qun fetch` still takes them by id.
inline constexpr std::size_t files_max = 10'000;

void ChatModel::learn_file(Buffer& b, const Message& m) {
  if (file_numbers_.count(m.id) || files_.size() >= files_max || m.deleted) return;
  files_.push_back(SharedFile{b.id, m.id, m.file->name, m.file->size});
  file_numbers_[m.id] = files_.size();
}

void ChatModel::auto_fetch(Buffer& b, const Message& m) {
  // A file just posted by someone else, small enough: fetched now, into the node's store.
  const bool own = !own_id_.empty() && m.author == own_id_;
  if (m.file && !own && config_.auto_fetch_bytes_max > 0 &&
      m.file->size <= config_.auto_fetch_bytes_max) {
    NodeRequest r;
    r.op = "file.fetch";
    r.args = {{"group", b.id}, {"event", m.id}};
    r.purpose = NodeRequest::Purpose::auto_fetch;
    r.group = b.id;
    request(std::move(r));
  }
}

void ChatModel::run_file_command(const Command& c, const std::string& typed) {
  const bool open = c.kind == Command::Kind::open;
  if (c.uses == 0 || c.uses > files_.size()) {
    notify(files_.empty() ? "no file shown yet: a file's line ends in /open N"
                          : "no file " + std::to_string(c.uses) + "; the numbers are on the files' lines",
           true);
    return;
  }
  const SharedFile& f = files_[c.uses - 1];
  const std::string dir = open ? config_.open_dir : config_.save_dir;
  std::string path = c.arg;
  if (path.empty()) {
    if (dir.empty()) {
      notify("no folder to save into: give a path, /save N PATH", true);
      return;
    }
    // The cache keeps one copy per post: the id's start tells two files of one name apart.
    path = open ? dir + "/" + f.id.substr(0, 16) + "/" + f.name : dir + "/" + f.name;
  }
  if (path[0] != '/') {
    if (config_.save_dir.empty()) {
      notify("give an absolute path", true);
      return;
    }
    path = config_.save_dir + "/" + path;
  }
  NodeRequest r;
  r.op = "file.fetch";
  r.args = {{"group", f.group}, {"event", f.id}, {"path", path}};
  // /open reuses what an earlier /open saved in the cache.
  if (open) r.args["reuse"] = true;
  r.purpose = NodeRequest::Purpose::command;
  r.command = c.kind;
  r.typed = typed;
  r.group = f.group;
  request(std::move(r));
  input_.remember(typed);
  input_.clear();
  notify((open ? "opening " : "fetching ") + sanitize(f.name, false) + " (" +
             render::size_words(f.size) + ")",
         false);
}

void ChatModel::on_file_result(const NodeRequest& r, const Json& result) {
  const std::string path = json_string(result, "path").value_or("");
  const std::string name = sanitize(json_string(result, "name").value_or("the file"), false);
  if (r.command == Command::Kind::open) {
    if (!config_.display) {
      notify("saved " + name + " to " + sanitize(path, false) + " (no display here to open it on)", false);
      return;
    }
    notify("opened " + name + " (" + sanitize(path, false) + ")", false);
    actions_.push_back(OpenFile{path});
    return;
  }
  notify("saved " + name + " to " + sanitize(path, false), false);
}

void ChatModel::on_file_progress(const Json& v) {
  const std::string root = json_string(v, "root").value_or("");
  const auto have = v.value("have", std::uint64_t{0}), total = v.value("total", std::uint64_t{0});
  if (root.empty() || total == 0) return;
  const int percent = static_cast<int>(100 * std::min(have, total) / total);
  // A notice per 10%, not per chunk.
  int& shown = file_progress_[root];
  if (percent < 100 && percent / 10 == shown / 10 && shown != 0) return;
  shown = percent;
  notify("fetching: " + std::to_string(percent) + "% of " +
             render::size_words(v.value("size", std::uint64_t{0})),
         false);
  if (percent == 100) file_progress_.erase(root);
}

}  // namespace qun::chat
