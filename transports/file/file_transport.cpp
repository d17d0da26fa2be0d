#include "file_transport.hpp"

#include <postern/line_endings.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace postern::transports {
namespace {

/// Disk errors a retry can cure are 4xx; all of them are, for a disk: the mail must stay queued.
postern::smtp_reply disk_error(const std::string& what, int error) {
  if (error == ENOSPC || error == EDQUOT) return {452, "4.3.1", what + ": " + std::strerror(error)};
  return {451, "4.3.0", what + ": " + std::strerror(error)};
}

int fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

/// Creates `dir` and its parents, fsyncing each parent a new entry was made in.
int make_dirs(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return 0;
  if (int rc = make_dirs(dir.parent_path()); rc != 0) return rc;
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) return errno;
  return fsync_dir(dir.parent_path());
}

}  // namespace

std::string maildir_name(std::string_view address) {
  std::string name;
  for (char c : address) name += (c == '/' || c == '\0') ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name.empty() || name.front() == '.') name.insert(name.begin(), '_');
  return name;
}

file_transport::file_transport(postern::host& host) : name_host_(host.hostname()) {
  // The host name in unique file names, without the characters Maildir readers treat specially.
  for (auto& c : name_host_) {
    if (c == '/' || c == ':') c = '_';
  }
  const auto& cfg = host.config();
  directory_ = host.resolve_path(cfg.get_string("directory").value_or("outbox"));
  const auto l = cfg.get_string("layout").value_or("maildir");
  if (l == "maildir") layout_ = layout::maildir;
  else if (l == "eml") layout_ = layout::eml;
  else throw std::invalid_argument(cfg.origin() + ": layout must be \"maildir\" or \"eml\", not \"" + l + "\"");
  const auto endings = cfg.get_string("line_endings").value_or(layout_ == layout::maildir ? "lf" : "crlf");
  if (endings != "lf" && endings != "crlf")
    throw std::invalid_argument(cfg.origin() + ": line_endings must be \"lf\" or \"crlf\", not \"" + endings + "\"");
  crlf_ = endings == "crlf";
  const auto sync = cfg.get_string("sync").value_or("shared");
  if (sync != "shared" && sync != "each")
    throw std::invalid_argument(cfg.origin() + ": sync must be \"shared\" or \"each\", not \"" + sync + "\"");
  shared_sync_ = sync == "shared";
  if (shared_sync_) syncer_ = std::thread([this] { sync_loop(); });
}

postern::probe_result file_transport::probe() {
  if (int rc = make_dirs(directory_); rc != 0)
    return {false, "cannot create " + directory_.string() + ": " + std::strerror(rc)};
  const auto test = directory_ / (".probe." + unique_name());
  const int fd = ::open(test.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return {false, directory_.string() + " is not writable: " + std::strerror(errno)};
  ::close(fd);
  ::unlink(test.c_str());
  return {true, std::string(layout_ == layout::maildir ? "Maildirs" : ".eml files") + " in " + directory_.string()};
}

std::string file_transport::unique_name() const {
  // Maildir-style unique name: time, microseconds, process and a per-process counter.
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now).count();
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now).count() % 1000000;
  return std::to_string(seconds) + ".M" + std::to_string(micros) + "P" + std::to_string(::getpid()) + "Q" +
         std::to_string(counter_++) + "." + name_host_;
}

std::string file_transport::delivery_name(const postern::message& msg, std::uint32_t recipient_index) const {
  // The same for every attempt of one delivery (arrival, queue id, recipient): an attempt
  // repeated after a crash, whose outcome was not recorded, finds the file the first one
  // wrote instead of writing a second copy. Arrival first, so names sort by time.
  const auto arrival = std::chrono::duration_cast<std::chrono::seconds>(msg.arrival.time_since_epoch()).count();
  return std::to_string(arrival) + "." + msg.queue_id + "R" + std::to_string(recipient_index) + "." + name_host_;
}

namespace {

int write_all(int fd, std::string_view content) {
  while (!content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    content.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

/// Closes a file that will not be named; a temporary name goes with it.
void discard(int fd, const std::filesystem::path& tmp) {
  if (fd >= 0) ::close(fd);
  if (!tmp.empty()) ::unlink(tmp.c_str());
}

}  // namespace

int file_transport::ensure_dir(const std::filesystem::path& dir) const {
  {
    std::lock_guard lock(dirs_mutex_);
    if (known_dirs_.count(dir.string())) return 0;
  }
  if (int rc = make_dirs(dir); rc != 0) return rc;
  std::lock_guard lock(dirs_mutex_);
  known_dirs_.insert(dir.string());
  return 0;
}

void file_transport::forget_dirs() const {
  // A directory may have gone (an operator cleaned up): check again next time.
  std::lock_guard lock(dirs_mutex_);
  known_dirs_.clear();
  dir_syncs_.clear();
}

postern::smtp_reply file_transport::create_file(const std::filesystem::path& dir, const std::string& name,
                                                std::string_view head, std::string_view body, open_file& file) const {
  const bool maildir = layout_ == layout::maildir;
  const auto tmp_dir = maildir ? dir / "tmp" : dir;
  file.final_dir = maildir ? dir / "new" : dir;
  for (const auto& d : maildir ? std::vector<std::filesystem::path>{tmp_dir, file.final_dir, dir / "cur"}
                               : std::vector<std::filesystem::path>{file.final_dir}) {
    if (int rc = ensure_dir(d); rc != 0) return disk_error("cannot create " + d.string(), rc);
  }
  file.final_path = file.final_dir / (maildir ? name : name + ".eml");
  // Linux: an unnamed file in the final directory, named (linkat) only once it is complete
  // and on disk: one directory operation per message instead of two (create in tmp/, rename
  // into new/), with the same guarantee that a reader never sees a partial file.
  if (use_tmpfile_.load()) {
    file.fd = ::open(file.final_dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
    if (file.fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
      return disk_error("cannot create a file in " + file.final_dir.string(), errno);
    if (file.fd < 0) use_tmpfile_ = false;
  }
  if (file.fd < 0) {
    // The portable way: a temporary name, renamed into place. Not O_EXCL: names are per
    // delivery, and a crash may have left this one's temporary file.
    file.tmp = tmp_dir / (maildir ? name : "." + name + ".tmp");
    file.fd = ::open(file.tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (file.fd < 0) return disk_error("cannot create " + file.tmp.string(), errno);
  }
  int rc = write_all(file.fd, head);
  if (rc == 0) rc = write_all(file.fd, body);
  struct stat st {};
  if (rc == 0 && ::fstat(file.fd, &st) != 0) rc = errno;
  if (rc != 0) {
    discard(file.fd, file.tmp);
    file.fd = -1;
    return disk_error("cannot write " + file.final_path.string(), rc);
  }
  file.device = st.st_dev;
  return {250, "2.0.0", ""};
}

int file_transport::name_file(const open_file& file) const {
  if (!file.tmp.empty()) return ::rename(file.tmp.c_str(), file.final_path.c_str()) == 0 ? 0 : errno;
  const std::string self = "/proc/self/fd/" + std::to_string(file.fd);
  // EEXIST: an earlier attempt of this very delivery wrote it (names are per delivery), and
  // a crash kept its outcome from being recorded. It is there, whole: delivered.
  if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, file.final_path.c_str(), AT_SYMLINK_FOLLOW) != 0 && errno != EEXIST)
    return errno;
  return 0;
}

postern::smtp_reply file_transport::finish_alone(open_file& file) const {
  int rc = ::fdatasync(file.fd) == 0 ? 0 : errno;
  if (rc == 0) rc = name_file(file);
  discard(file.fd, rc == 0 ? std::filesystem::path() : file.tmp);
  file.fd = -1;
  if (rc == 0) rc = sync_directory(file.final_dir);
  if (rc != 0) {
    forget_dirs();
    return disk_error("cannot write " + file.final_path.string(), rc);
  }
  return {250, "2.0.0", "written to " + file.final_path.string()};
}

std::shared_ptr<file_transport::sync_group> file_transport::group_for(
    std::map<std::string, std::shared_ptr<sync_group>>& groups, const std::string& key) const {
  std::lock_guard lock(dirs_mutex_);
  auto& slot = groups[key];
  if (!slot) slot = std::make_shared<sync_group>();
  return slot;
}

int file_transport::sync_directory(const std::filesystem::path& dir) const {
  // One fsync of the directory makes every name linked into it before that fsync durable.
  return group_for(dir_syncs_, dir.string())->join([&dir] { return fsync_dir(dir); });
}

void file_transport::write_files(const postern::delivery_request& request, waiting_delivery& out) const {
  const auto& msg = *request.msg;
  const std::string eol = crlf_ ? "\r\n" : "\n";
  // The body is written as it is (CRLF) or converted once (LF), never copied per recipient.
  std::string converted;
  if (!crlf_) converted = postern::to_lf(msg.raw);
  const std::string_view body = crlf_ ? std::string_view(msg.raw) : std::string_view(converted);
  const std::string return_path = "Return-Path: <" + msg.env.mail_from + ">" + eol;
  const auto write = [&](const std::filesystem::path& dir, std::uint32_t first, const std::string& head,
                         std::vector<std::uint32_t> recipients) {
    open_file file;
    const auto reply = create_file(dir, delivery_name(msg, first), head, body, file);
    if (file.fd < 0) {
      forget_dirs();
      for (auto index : recipients) out.results.push_back({index, reply, ""});
      return;
    }
    out.files.push_back(std::move(file));
    out.recipients.push_back(std::move(recipients));
  };
  if (layout_ == layout::eml) {
    // One file for the part's recipients, named after the first: a part is written whole or
    // not at all, so its recipients are always retried together.
    std::string head = return_path;
    std::vector<std::uint32_t> indexes;
    for (const auto& r : request.recipients) {
      head += "X-Envelope-To: <" + r.address + ">" + eol;
      indexes.push_back(r.index);
    }
    write(directory_, request.recipients.front().index, head, std::move(indexes));
  } else {
    for (const auto& r : request.recipients)
      write(directory_ / maildir_name(r.address), r.index, return_path + "Delivered-To: " + r.address + eol, {r.index});
  }
}

void file_transport::deliver(postern::delivery_request request, postern::delivery_callback done) {
  if (request.recipients.empty()) {
    done({});
    return;
  }
  waiting_delivery delivery;
  write_files(request, delivery);
  if (delivery.files.empty() || !shared_sync_) {
    for (std::size_t i = 0; i < delivery.files.size(); ++i) {
      const auto reply = finish_alone(delivery.files[i]);
      for (auto index : delivery.recipients[i]) delivery.results.push_back({index, reply, ""});
    }
    done(std::move(delivery.results));
    return;
  }
  delivery.done = std::move(done);
  {
    std::lock_guard lock(waiting_mutex_);
    if (!stopping_) {
      waiting_.push_back(std::move(delivery));
      waiting_cv_.notify_one();
      return;
    }
  }
  // After stop (the engine delivers nothing then): finished here, as the sync thread would.
  std::vector<waiting_delivery> late;
  late.push_back(std::move(delivery));
  finish_together(std::move(late));
}

void file_transport::sync_loop() {
  std::unique_lock lock(waiting_mutex_);
  for (;;) {
    waiting_cv_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
    if (waiting_.empty()) return;  // stopping, and nothing left
    auto batch = std::move(waiting_);
    waiting_.clear();
    lock.unlock();
    // Deliveries that arrive meanwhile wait for the next round: this one's syncfs may have
    // started before their files were written.
    finish_together(std::move(batch));
    lock.lock();
  }
}

std::vector<std::vector<int>> file_transport::make_durable(std::vector<waiting_delivery>& batch) const {
  // One syncfs per file system makes every file of the batch durable (data and inode): many
  // new files share inode-table blocks, written once this way, and the device is flushed once.
  std::map<dev_t, int> synced;
  for (const auto& d : batch) {
    for (const auto& f : d.files) {
      if (!synced.count(f.device)) synced[f.device] = ::syncfs(f.fd) == 0 ? 0 : errno;
    }
  }
  // Then the names, and one fsync per directory for every name made in it.
  std::map<std::filesystem::path, int> directories;
  std::vector<std::vector<int>> outcome(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    for (auto& f : batch[i].files) {
      int rc = synced[f.device];
      if (rc == 0) rc = name_file(f);
      if (rc == 0) directories.emplace(f.final_dir, 0);
      discard(f.fd, rc == 0 ? std::filesystem::path() : f.tmp);
      f.fd = -1;
      outcome[i].push_back(rc);
    }
  }
  for (auto& [dir, rc] : directories) rc = fsync_dir(dir);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    for (std::size_t j = 0; j < batch[i].files.size(); ++j) {
      if (outcome[i][j] == 0) outcome[i][j] = directories[batch[i].files[j].final_dir];
    }
  }
  return outcome;
}

void file_transport::finish_together(std::vector<waiting_delivery> batch) const {
  const auto outcome = make_durable(batch);
  bool failed = false;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& d = batch[i];
    for (std::size_t j = 0; j < d.files.size(); ++j) {
      const int rc = outcome[i][j];
      const auto& path = d.files[j].final_path;
      failed = failed || rc != 0;
      const auto reply = rc == 0 ? postern::smtp_reply{250, "2.0.0", "written to " + path.string()}
                                 : disk_error("cannot write " + path.string(), rc);
      for (auto index : d.recipients[j]) d.results.push_back({index, reply, ""});
    }
  }
  if (failed) forget_dirs();
  for (auto& d : batch) d.done(std::move(d.results));
}

void file_transport::stop() {
  {
    std::lock_guard lock(waiting_mutex_);
    stopping_ = true;
  }
  waiting_cv_.notify_one();
  if (syncer_.joinable()) syncer_.join();
}

file_transport::~file_transport() {
  stop();
}

}  // namespace postern::transports
