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

/// Linux: an unnamed file in the final directory, given its name only once it is complete
/// and on disk (linkat). One directory operation per message instead of two (create in tmp/,
/// rename into new/), with the same guarantee: a reader never sees a partial file.
/// Returns -1 with errno set when the file system cannot do it; the caller falls back.
/// `make_durable(fd)` makes the file's content durable (0 or an errno value).
template <typename Durable>
postern::smtp_reply link_tmpfile(const std::filesystem::path& final_dir, const std::filesystem::path& final_path,
                                 std::string_view head, std::string_view body, Durable make_durable,
                                 bool& unsupported) {
  unsupported = false;
  const int fd = ::open(final_dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
  if (fd < 0) {
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
      unsupported = true;
      return {};
    }
    return disk_error("cannot create a file in " + final_dir.string(), errno);
  }
  int rc = write_all(fd, head);
  if (rc == 0) rc = write_all(fd, body);
  if (rc == 0) rc = make_durable(fd);
  if (rc == 0) {
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    // EEXIST: an earlier attempt of this very delivery wrote it (names are per delivery), and
    // a crash kept its outcome from being recorded. It is there, whole: delivered.
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, final_path.c_str(), AT_SYMLINK_FOLLOW) != 0 && errno != EEXIST)
      rc = errno;
  }
  ::close(fd);
  if (rc != 0) return disk_error("cannot write " + final_path.string(), rc);
  return {250, "2.0.0", ""};
}

/// Portable path: write under a temporary name, fsync, rename into place.
template <typename Durable>
postern::smtp_reply rename_into_place(const std::filesystem::path& tmp, const std::filesystem::path& final_path,
                                      std::string_view head, std::string_view body, Durable make_durable) {
  // Not O_EXCL: names are per delivery, and a crash may have left this one's temporary file.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return disk_error("cannot create " + tmp.string(), errno);
  int rc = write_all(fd, head);
  if (rc == 0) rc = write_all(fd, body);
  if (rc == 0) rc = make_durable(fd);
  ::close(fd);
  if (rc == 0 && ::rename(tmp.c_str(), final_path.c_str()) != 0) rc = errno;
  if (rc != 0) {
    ::unlink(tmp.c_str());
    return disk_error("cannot write " + final_path.string(), rc);
  }
  return {250, "2.0.0", ""};
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

postern::smtp_reply file_transport::write_file(const std::filesystem::path& dir, const std::string& name,
                                               std::string_view head, std::string_view body) const {
  const bool maildir = layout_ == layout::maildir;
  const auto tmp_dir = maildir ? dir / "tmp" : dir;
  const auto final_dir = maildir ? dir / "new" : dir;
  for (const auto& d : maildir ? std::vector<std::filesystem::path>{tmp_dir, final_dir, dir / "cur"}
                               : std::vector<std::filesystem::path>{final_dir}) {
    if (int rc = ensure_dir(d); rc != 0) return disk_error("cannot create " + d.string(), rc);
  }
  const auto final_path = final_dir / (maildir ? name : name + ".eml");

  const auto durable = [this](int fd) { return sync_data(fd); };
  bool unsupported = true;
  postern::smtp_reply reply;
  if (use_tmpfile_.load()) reply = link_tmpfile(final_dir, final_path, head, body, durable, unsupported);
  if (unsupported) {
    use_tmpfile_ = false;
    reply = rename_into_place(tmp_dir / (maildir ? name : "." + name + ".tmp"), final_path, head, body, durable);
  }
  if (!reply.success()) {
    // The directory may have gone (an operator cleaned up): check again next time.
    std::lock_guard lock(dirs_mutex_);
    known_dirs_.clear();
    dir_syncs_.clear();
    return reply;
  }
  if (int rc = sync_directory(final_dir); rc != 0) return disk_error("cannot fsync " + final_dir.string(), rc);
  return {250, "2.0.0", "written to " + final_path.string()};
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

int file_transport::sync_data(int fd) const {
  if (!shared_sync_) return ::fdatasync(fd) == 0 ? 0 : errno;
  // syncfs writes back every dirty file of the file system in one go: the inode table blocks
  // that many new files share are written once, not once per file, and the device is flushed
  // once. The group is per file system, so a leader's syncfs covers its followers' files.
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno;
  return group_for(data_syncs_, std::to_string(st.st_dev))->join([fd] { return ::syncfs(fd) == 0 ? 0 : errno; });
}

void file_transport::deliver(postern::delivery_request request, postern::delivery_callback done) {
  if (request.recipients.empty()) {
    done({});
    return;
  }
  const auto& msg = *request.msg;
  const std::string eol = crlf_ ? "\r\n" : "\n";
  // The body is written as it is (CRLF) or converted once (LF), never copied per recipient.
  std::string converted;
  if (!crlf_) converted = postern::to_lf(msg.raw);
  const std::string_view body = crlf_ ? std::string_view(msg.raw) : std::string_view(converted);
  const std::string return_path = "Return-Path: <" + msg.env.mail_from + ">" + eol;
  std::vector<postern::recipient_result> results;

  if (layout_ == layout::eml) {
    std::string head = return_path;
    for (const auto& r : request.recipients) head += "X-Envelope-To: <" + r.address + ">" + eol;
    // One file for the part's recipients, named after the first: a part is written whole or
    // not at all, so its recipients are always retried together.
    const auto reply = write_file(directory_, delivery_name(msg, request.recipients.front().index), head, body);
    for (const auto& r : request.recipients) results.push_back({r.index, reply, ""});
  } else {
    for (const auto& r : request.recipients) {
      const std::string head = return_path + "Delivered-To: " + r.address + eol;
      results.push_back(
          {r.index, write_file(directory_ / maildir_name(r.address), delivery_name(msg, r.index), head, body), ""});
    }
  }
  done(std::move(results));
}

}  // namespace postern::transports
