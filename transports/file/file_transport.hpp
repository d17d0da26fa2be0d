#pragma once

#include <postern/host.hpp>
#include <postern/transport.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace postern::transports {

/// Delivers to the local file system — a sink for development, tests and archiving.
///
/// layout = "maildir": each recipient gets a Maildir `<directory>/<address>/`; the message is
/// written as an unnamed file in new/ (O_TMPFILE), made durable, then linked under its
/// delivery's name, and that name made durable. Where O_TMPFILE is not available, the classic
/// Maildir way: written in tmp/, made durable, renamed into new/.
/// layout = "eml": one `<name>.eml` per message in `<directory>`, same care.
/// sync = "shared" (default): `deliver` writes the files and returns; one thread of the
/// transport takes every delivery written meanwhile, makes their files durable with one
/// syncfs(2), names them, makes the names durable with another, and answers. sync = "each":
/// `deliver` syncs its own files (fdatasync, then fsync of file and directory once named) and
/// answers before it returns.
/// Failures to write (full disk, read-only or unwritable directory) answer 4xx, never lose mail.
class file_transport final : public postern::transport {
 public:
  enum class layout { maildir, eml };

  /// Reads `directory` (default "outbox", relative to the data directory), `layout`
  /// ("maildir" or "eml"), `line_endings` ("lf" or "crlf") and `sync` ("shared" or "each").
  /// Throws std::invalid_argument on a bad value.
  explicit file_transport(postern::host& host);
  /// Answers the deliveries still waiting for their sync (see stop).
  ~file_transport() override;

  postern::probe_result probe() override;
  void deliver(postern::delivery_request request, postern::delivery_callback done) override;
  /// Syncs, names and answers every delivery written so far, then ends the sync thread.
  void stop() override;

  const std::filesystem::path& directory() const noexcept { return directory_; }

 private:
  /// A file written and not yet answered for. Owns its descriptor: when it goes, the
  /// descriptor is closed and a temporary name it still has is removed.
  struct open_file {
    int fd = -1;
    std::uint64_t opened = 0;   // creation order: the earliest of a group reports its write-back errors
    std::filesystem::path tmp;  // its temporary name, until renamed; empty when unnamed (O_TMPFILE)
    std::filesystem::path final_dir;
    std::filesystem::path final_path;
    dev_t device = 0;
    std::vector<std::uint32_t> recipients;  // those it answers for
    int error = 0;                          // the errno value that failed it, 0 while all is well
    bool existed = false;                   // its name was there already (an earlier attempt's file)

    open_file() = default;
    open_file(open_file&& other) noexcept;
    open_file& operator=(open_file&&) = delete;
    ~open_file();
  };
  /// A delivery: its files not yet answered for, and the answers so far.
  struct waiting_delivery {
    std::vector<open_file> files;
    std::vector<postern::recipient_result> results;
    postern::delivery_callback done;
  };

  /// A delivery with more files than this finishes them in groups of this size as it writes
  /// them, so that one delivery never holds more descriptors.
  static constexpr std::size_t files_per_group = 64;
  /// `deliver` waits while this many files wait for the sync thread.
  static constexpr std::size_t max_waiting_files = 512;

  /// Creates the file for `name` in `dir` (and its Maildir folders) and writes it, unnamed
  /// where the file system allows; on failure, `file.fd` is -1 and the reply says why.
  postern::smtp_reply create_file(const std::filesystem::path& dir, const std::string& name, std::string_view head,
                                  std::string_view body, open_file& file) const;
  /// Gives a durable file its final name (0 or an errno value).
  int name_file(open_file& file) const;
  /// The files of one delivery, finished in groups past files_per_group.
  void write_files(const postern::delivery_request& request, waiting_delivery& out) const;
  /// Makes the batch's files durable, names them, makes the names durable, and turns each
  /// file into its recipients' results; the files are closed.
  void finish_files(std::span<waiting_delivery> batch) const;
  /// One step of finish_files for every file still without error: contents or, once named, names.
  void sync_files(std::span<waiting_delivery> batch, bool names) const;
  /// sync = "each", once named: fsync of the file, or of the one already under its name.
  int sync_named(const open_file& file) const;
  /// sync = "shared": one syncfs per file system, on its earliest file of the batch.
  void sync_file_system(std::span<waiting_delivery> batch) const;
  /// Queues a written delivery for the sync thread, which calls `done`, waiting for room;
  /// false once stopped (and both are left as they were).
  bool queue(waiting_delivery& delivery, postern::delivery_callback& done);
  /// The sync thread: takes every waiting delivery at once and finishes them together.
  void sync_loop();
  void finish_together(std::vector<waiting_delivery>& batch) const;
  int ensure_dir(const std::filesystem::path& dir) const;
  void forget_dirs() const;
  std::string unique_name() const;
  std::string delivery_name(const postern::message& msg, std::uint32_t recipient_index) const;

  std::string name_host_;  // host name as used in unique file names
  std::filesystem::path directory_;
  layout layout_ = layout::maildir;
  bool crlf_ = false;
  bool shared_sync_ = true;  // sync = "shared": the sync thread finishes deliveries in groups
  mutable std::atomic<unsigned long> counter_{0};
  mutable std::atomic<std::uint64_t> opened_{0};
  mutable std::atomic<bool> use_tmpfile_{true};  // O_TMPFILE + linkat, while the fs allows it
  mutable std::mutex dirs_mutex_;
  mutable std::set<std::string> known_dirs_;  // created already: no stat per message

  std::mutex waiting_mutex_;
  std::condition_variable waiting_cv_;     // the sync thread waits for work
  std::condition_variable room_cv_;        // deliver waits for room
  std::vector<waiting_delivery> waiting_;  // written, for the sync thread
  std::size_t waiting_files_ = 0;          // their files, and those of the group being finished
  bool stopping_ = false;
  std::thread syncer_;  // sync = "shared" only
};

/// The directory name a recipient's Maildir gets: the address lower-cased, with characters
/// that are unsafe in a path ("/", a leading ".") replaced by "_".
std::string maildir_name(std::string_view address);

}  // namespace postern::transports
