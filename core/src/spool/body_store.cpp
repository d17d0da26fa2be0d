#include "spool/body_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <stdexcept>
#include <system_error>

namespace postern::spool {

namespace {

[[noreturn]] void fail(const std::string& what) {
  const int e = errno;
  // The spool's callers look for "full" to answer a full disk as such.
  const std::string reason = (e == ENOSPC || e == EDQUOT) ? "the spool's disk is full" : "";
  throw std::system_error(e, std::generic_category(), what + (reason.empty() ? "" : " (" + reason + ")"));
}

/// The segment number of a file name "<number>.seg", or -1.
std::int64_t segment_of(const std::filesystem::path& file) {
  if (file.extension() != ".seg") return -1;
  const auto stem = file.stem().string();
  std::int64_t n = -1;
  const auto [end, ec] = std::from_chars(stem.data(), stem.data() + stem.size(), n);
  return ec == std::errc() && end == stem.data() + stem.size() && n >= 0 ? n : -1;
}

void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("could not open " + dir.string());
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  errno = e;
  if (rc != 0) fail("could not sync " + dir.string());
}

/// A segment being made: "<dir>/.new-<pid>-<n>", locked, then linked to its number.
bool is_new_segment(const std::filesystem::path& file) {
  return file.filename().string().starts_with(".new-");
}

/// Not touched for a minute.
bool is_stale(const std::filesystem::path& file) {
  std::error_code ec;
  const auto written = std::filesystem::last_write_time(file, ec);
  return !ec && std::filesystem::file_time_type::clock::now() - written > std::chrono::minutes(1);
}

}  // namespace

body_store::body_store(std::filesystem::path dir, std::uint64_t segment_bytes)
    : dir_(std::move(dir)), segment_bytes_(segment_bytes) {
  // The directory's own entry must survive a power loss too, with the first body in it.
  if (std::filesystem::create_directories(dir_)) sync_directory(dir_.parent_path());
}

body_store::~body_store() {
  committed();
  close_segment();
}

void body_store::committed() noexcept {
  for (const int fd : retired_) ::close(fd);
  retired_.clear();
}

void body_store::rolled_back() noexcept {
  // The batch's rows are gone: nothing refers to what it wrote, and a failed sync no longer
  // matters (its segment is closed and never appended to again).
  failed_sync_ = 0;
  committed();
}

std::filesystem::path body_store::file_of(std::int64_t segment) const {
  return dir_ / (std::to_string(segment) + ".seg");
}

void body_store::close_segment() noexcept {
  if (fd_ >= 0) ::close(fd_);  // closing drops the lock
  fd_ = -1;
}

void body_store::open_next_segment() {
  // The file is made and locked under a private name, and only then linked to its number:
  // no other process's clean-up can ever find a numbered segment that is not locked while
  // its writer still appends to it.
  static std::atomic<unsigned> made{0};
  std::filesystem::path draft;
  int fd = -1;
  while (fd < 0) {  // a crashed process with the same pid may have left one of these names
    draft = dir_ / (".new-" + std::to_string(::getpid()) + "-" + std::to_string(made++));
    fd = ::open(draft.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) fail("could not create " + draft.string());
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    ::unlink(draft.c_str());
    fail("could not lock a new body segment");
  }
  // After every segment on disk: a process never appends to a file it did not create, so a
  // crash's torn tail is never written after, and two processes never share a segment
  // (link(2) fails on an existing name, which settles a race between them).
  std::int64_t next = segment_ + 1;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) next = std::max(next, segment_of(entry.path()) + 1);
  for (;; ++next) {
    if (::link(draft.c_str(), file_of(next).c_str()) == 0) break;
    if (errno != EEXIST) {
      const int e = errno;
      ::close(fd);
      ::unlink(draft.c_str());
      errno = e;
      fail("could not create " + file_of(next).string());
    }
  }
  ::unlink(draft.c_str());
  fd_ = fd;
  segment_ = next;
  size_ = 0;
  new_file_ = true;
}

body_location body_store::append(std::string_view body) {
  if (fd_ >= 0 && size_ > 0 && size_ + body.size() > segment_bytes_) {
    sync();  // the full segment's bodies belong to this batch too
    retired_.push_back(fd_);  // still locked: rows of this batch, not yet committed, refer to it
    fd_ = -1;
  }
  if (fd_ < 0) open_next_segment();
  const body_location where{segment_, static_cast<std::int64_t>(size_)};
  std::size_t done = 0;
  while (done < body.size()) {
    const auto n = ::pwrite(fd_, body.data() + done, body.size() - done, static_cast<off_t>(size_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // Give back what the partial body took: on a full disk, that is the room the next
      // (smaller) message needs.
      const int e = errno;
      (void)::ftruncate(fd_, static_cast<off_t>(size_));
      errno = e;
      fail("could not write a message body to " + file_of(segment_).string());
    }
    done += static_cast<std::size_t>(n);
  }
  size_ += body.size();
  unsynced_ = true;
  return where;
}

void body_store::sync() {
  if (failed_sync_) {
    // A segment of this batch could not be synced (while rotating, in an append whose own
    // operation failed alone): the batch's other rows may point into it, so it must not commit.
    errno = failed_sync_;
    fail("a body segment of this batch could not be synced");
  }
  if (!unsynced_ && !new_file_) return;
  if (unsynced_ && ::fdatasync(fd_) != 0) {
    const int e = errno;
    close_segment();  // what the kernel kept of this segment is unknown: never append to it again
    unsynced_ = false;
    new_file_ = false;
    failed_sync_ = e;
    errno = e;
    fail("could not sync " + file_of(segment_).string());
  }
  unsynced_ = false;
  if (new_file_) {
    sync_directory(dir_);
    new_file_ = false;
  }
}

std::string body_store::read(body_location where, std::uint64_t size) const {
  const auto file = file_of(where.segment);
  std::string out(size, '\0');  // before the open: a throw here leaks no descriptor
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) throw missing_body("message body segment " + file.string() + " is missing");
  if (fd < 0) fail("could not open " + file.string());
  std::size_t done = 0;
  while (done < size) {
    const auto n = ::pread(fd, out.data() + done, size - done, static_cast<off_t>(where.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {  // an I/O error, which may pass: not a lost body
      const int e = errno;
      ::close(fd);
      errno = e;
      fail("could not read " + file.string());
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (done < size) throw missing_body("message body segment " + file.string() + " is shorter than its bodies");
  return out;
}

std::size_t body_store::remove_unused(const std::function<bool(std::int64_t)>& in_use) {
  std::size_t removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    const auto n = segment_of(entry.path());
    // A draft left by a crash while it was being made; a young one may be between its
    // creation and its lock in another process, and is left alone.
    const bool draft = is_new_segment(entry.path()) && is_stale(entry.path());
    if ((n < 0 && !draft) || (fd_ >= 0 && n == segment_)) continue;
    // Lock first, then ask: a writer holds the segments its uncommitted rows point into
    // locked, so once we hold the lock every row that refers to it is committed and seen.
    const int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && (draft || !in_use(n))) {
      std::error_code ec;
      if (std::filesystem::remove(entry.path(), ec) && !draft) ++removed;
    }
    ::close(fd);
  }
  return removed;
}

}  // namespace postern::spool
