#pragma once
// Large message bodies in append-only segment files beside the queue database.
//
// SQLite in WAL mode writes a blob twice (into the log, then into the database at the
// checkpoint) and reads it back in between; at 100 KiB per message that was most of the
// spool's disk traffic. A segment file takes each body once, with one fdatasync per group
// commit, and the database keeps only where it is. A segment is deleted as a whole once no
// message refers to it any more.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace postern::spool {

/// Where a body lies: the segment's number and the body's first byte in it.
struct body_location {
  std::int64_t segment = 0;
  std::int64_t offset = 0;
};

/// A body whose segment file is gone or too short: lost content, as opposed to an error that
/// may pass (no descriptor left, an I/O error), which is a std::system_error.
class missing_body : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Segment files `<dir>/<number>.seg`. Appending and syncing belong to one thread (the spool's
/// writer); reading is safe from any thread. Several processes may share the directory: each
/// appends only to segments it created, and holds an advisory lock on its current one so that
/// no other process's clean-up deletes it.
class body_store {
 public:
  /// Creates `dir` if needed. No file is created until the first append.
  explicit body_store(std::filesystem::path dir, std::uint64_t segment_bytes = 64ull << 20);
  ~body_store();
  body_store(const body_store&) = delete;
  body_store& operator=(const body_store&) = delete;

  /// Writes `body` at the end of the current segment (starting a new one when it is full) and
  /// says where. Not durable until sync(). Throws std::system_error; a failed append leaves no
  /// partial body behind (the next append writes over it).
  body_location append(std::string_view body);

  /// Makes every append since the last sync durable (fdatasync, and the directory entry of a new
  /// segment). A no-op when nothing was appended. Throws std::system_error; after a failure the
  /// store moves to a new segment, since what the kernel kept of the old one is unknown.
  void sync();

  /// Called once the database commit that refers to the bodies synced so far has returned:
  /// segments filled during that batch are released to other processes' clean-up only now.
  void committed() noexcept;

  /// Called when that commit did not happen: forgets a failed sync of this batch, and releases
  /// the segments it filled.
  void rolled_back() noexcept;

  /// The `size` bytes at `where`. Throws missing_body when the segment is gone or short, and
  /// std::system_error when it cannot be read now.
  std::string read(body_location where, std::uint64_t size) const;

  /// Deletes every segment file for which `in_use(number)` is false, except those another
  /// writer (or this one) is appending to. Returns how many were deleted. Call it from the
  /// appending thread between batches, so that `in_use` sees every body this store wrote.
  std::size_t remove_unused(const std::function<bool(std::int64_t)>& in_use);

  const std::filesystem::path& dir() const noexcept { return dir_; }

 private:
  void open_next_segment();
  void close_segment() noexcept;
  std::filesystem::path file_of(std::int64_t segment) const;

  std::filesystem::path dir_;
  std::uint64_t segment_bytes_;
  int fd_ = -1;                  // current segment, locked; -1 before the first append
  std::vector<int> retired_;     // segments filled in this batch, synced, still locked
  std::int64_t segment_ = 0;     // its number
  std::uint64_t size_ = 0;       // bytes of whole bodies in it
  bool unsynced_ = false;        // appended since the last sync
  bool new_file_ = false;        // created since the last sync: the directory needs a sync too
  int failed_sync_ = 0;          // errno of a sync that failed in this batch; 0 when none
};

}  // namespace postern::spool
