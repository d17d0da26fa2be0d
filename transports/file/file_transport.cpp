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
#include <utility>

namespace postern::transports {
namespace {

/// Disk errors a retry can cure are 4xx; all of them are, for a disk: the mail must stay queued.
postern::smtp_reply disk_error(const std::string& what, int error) {
  if (error == ENOSPC || error == EDQUOT) return {452, "4.3.1", what + ": " + std::strerror(error)};
  return {451, "4.3.0", what + ": " + std::strerror(error)};
}

/// fsync of a file or directory by its path: 0 or an errno value.
int fsync_path(const std::filesystem::path& path, int flags = 0) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | flags);
  if (fd < 0) return errno;
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

int fsync_dir(const std::filesystem::path& dir) {
  return fsync_path(dir, O_DIRECTORY);
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

}  // namespace

file_transport::open_file::open_file(open_file&& other) noexcept
    : fd(std::exchange(other.fd, -1)),
      opened(other.opened),
      tmp(std::move(other.tmp)),
      final_dir(std::move(other.final_dir)),
      final_path(std::move(other.final_path)),
      device(other.device),
      recipients(std::move(other.recipients)),
      error(other.error),
      existed(other.existed) {
  other.tmp.clear();
}

file_transport::open_file::~open_file() {
  if (fd >= 0) ::close(fd);
  if (!tmp.empty()) ::unlink(tmp.c_str());  // never renamed into place
}

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
  // Numbered once open and before its first write: a group's lowest number was opened before
  // any file of the group was written, so syncfs on it reports every write-back error of theirs.
  file.opened = ++opened_;
  int rc = write_all(file.fd, head);
  if (rc == 0) rc = write_all(file.fd, body);
  struct stat st {};
  if (rc == 0 && ::fstat(file.fd, &st) != 0) rc = errno;
  if (rc != 0) {
    ::close(std::exchange(file.fd, -1));  // the temporary name goes with the file
    return disk_error("cannot write " + file.final_path.string(), rc);
  }
  file.device = st.st_dev;
  return {250, "2.0.0", ""};
}

int file_transport::name_file(open_file& file) const {
  if (!file.tmp.empty()) {
    if (::rename(file.tmp.c_str(), file.final_path.c_str()) != 0) return errno;
    file.tmp.clear();
    return 0;
  }
  const std::string self = "/proc/self/fd/" + std::to_string(file.fd);
  // EEXIST: an earlier attempt of this very delivery wrote it (names are per delivery), and
  // a crash kept its outcome from being recorded. It is there, whole: delivered.
  if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, file.final_path.c_str(), AT_SYMLINK_FOLLOW) == 0) return 0;
  if (errno != EEXIST) return errno;
  file.existed = true;
  return 0;
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
    if (out.files.size() == files_per_group) finish_files({&out, 1});
    open_file file;
    const auto reply = create_file(dir, delivery_name(msg, first), head, body, file);
    if (file.fd < 0) {
      forget_dirs();
      for (auto index : recipients) out.results.push_back({index, reply, ""});
      return;
    }
    file.recipients = std::move(recipients);
    out.files.push_back(std::move(file));
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

int file_transport::sync_named(const open_file& file) const {
  if (!file.existed) return ::fsync(file.fd) == 0 ? 0 : errno;
  // The name was there already (an earlier attempt's file): that file is the one to sync.
  return fsync_path(file.final_path);
}

void file_transport::sync_files(std::span<waiting_delivery> batch, bool names) const {
  if (shared_sync_) {
    sync_file_system(batch);
    return;
  }
  // Contents: fdatasync. Names: fsync of the file (a link changes its inode's link count,
  // which a directory's fsync does not write on a file system without a journal) and of
  // each directory once.
  std::map<std::filesystem::path, int> directories;
  for (auto& d : batch) {
    for (auto& f : d.files) {
      if (f.error) continue;
      f.error = names ? sync_named(f) : (::fdatasync(f.fd) == 0 ? 0 : errno);
      if (names && !f.error) directories.emplace(f.final_dir, -1);
    }
  }
  for (auto& [dir, rc] : directories) rc = fsync_dir(dir);
  for (auto& d : batch) {
    for (auto& f : d.files) {
      if (names && !f.error) f.error = directories[f.final_dir];
    }
  }
}

void file_transport::sync_file_system(std::span<waiting_delivery> batch) const {
  // One syncfs per file system makes all of it durable: contents and inodes, then directory
  // entries and link counts. The inode-table, bitmap and directory blocks that many new files
  // share are written once per group. syncfs reports the write-back errors seen since the
  // descriptor it is given was opened: the group's earliest file covers them all.
  std::map<dev_t, open_file*> earliest;
  for (auto& d : batch) {
    for (auto& f : d.files) {
      auto& e = earliest[f.device];
      if (!f.error && (!e || f.opened < e->opened)) e = &f;
    }
  }
  std::map<dev_t, int> synced;
  for (const auto& [device, f] : earliest) synced[device] = f && ::syncfs(f->fd) != 0 ? errno : 0;
  for (auto& d : batch) {
    for (auto& f : d.files) {
      if (!f.error) f.error = synced[f.device];
    }
  }
}

void file_transport::finish_files(std::span<waiting_delivery> batch) const {
  sync_files(batch, false);
  for (auto& d : batch) {
    for (auto& f : d.files) {
      if (!f.error) f.error = name_file(f);
    }
  }
  sync_files(batch, true);
  bool failed = false;
  for (auto& d : batch) {
    // Appended whole, so that an exception midway leaves each delivery answered or not at all.
    std::vector<postern::recipient_result> answers;
    for (const auto& f : d.files) {
      failed = failed || f.error != 0;
      // A name made but not known durable stays: a retry finds it (EEXIST) and writes no copy.
      const auto reply = f.error == 0 ? postern::smtp_reply{250, "2.0.0", "written to " + f.final_path.string()}
                                      : disk_error("cannot write " + f.final_path.string(), f.error);
      for (auto index : f.recipients) answers.push_back({index, reply, ""});
    }
    d.results.insert(d.results.end(), std::make_move_iterator(answers.begin()), std::make_move_iterator(answers.end()));
    d.files.clear();
  }
  if (failed) forget_dirs();
}

void file_transport::deliver(postern::delivery_request request, postern::delivery_callback done) {
  if (request.recipients.empty()) {
    done({});
    return;
  }
  waiting_delivery delivery;
  write_files(request, delivery);
  if (!delivery.files.empty()) {
    if (shared_sync_ && queue(delivery, done)) return;
    // sync = "each", or after stop (the engine delivers nothing then): finished here.
    finish_files({&delivery, 1});
  }
  done(std::move(delivery.results));
}

bool file_transport::queue(waiting_delivery& delivery, postern::delivery_callback& done) {
  const std::size_t files = delivery.files.size();
  std::unique_lock lock(waiting_mutex_);
  // A bound on descriptors held open for the sync thread; a lone delivery always fits.
  room_cv_.wait(lock, [&] { return stopping_ || waiting_files_ == 0 || waiting_files_ + files <= max_waiting_files; });
  if (stopping_) return false;
  delivery.done = std::move(done);
  waiting_.push_back(std::move(delivery));
  waiting_files_ += files;
  waiting_cv_.notify_one();
  return true;
}

void file_transport::sync_loop() {
  std::unique_lock lock(waiting_mutex_);
  for (;;) {
    waiting_cv_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
    if (waiting_.empty()) return;  // stopping, and nothing left
    auto batch = std::move(waiting_);
    waiting_.clear();
    lock.unlock();
    std::size_t files = 0;
    for (const auto& d : batch) files += d.files.size();
    // Deliveries written meanwhile wait for the next round: this one's syncfs may have
    // started before their files were written.
    finish_together(batch);
    lock.lock();
    waiting_files_ -= files;
    room_cv_.notify_all();
  }
}

void file_transport::finish_together(std::vector<waiting_delivery>& batch) const {
  try {
    finish_files(batch);
  } catch (const std::exception&) {
    // Out of memory, say: whatever was not answered is tried again later.
    for (auto& d : batch) {
      for (const auto& f : d.files) {
        for (auto index : f.recipients)
          d.results.push_back({index, {451, "4.3.0", "file transport: internal error"}, ""});
      }
      d.files.clear();
    }
  }
  for (auto& d : batch) {
    try {
      d.done(std::move(d.results));
    } catch (...) {
      // The contract says callbacks do not throw; one that does must not end the process.
    }
  }
}

void file_transport::stop() {
  {
    std::lock_guard lock(waiting_mutex_);
    stopping_ = true;
  }
  waiting_cv_.notify_one();
  room_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
}

file_transport::~file_transport() {
  stop();
}

}  // namespace postern::transports
