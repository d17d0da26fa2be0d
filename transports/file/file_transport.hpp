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
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace postern::transports {

/// Delivers to the local file system — a sink for development, tests and archiving.
///
/// layout = "maildir": each recipient gets a Maildir `<directory>/<address>/`; the message is
/// written as an unnamed file in new/ (O_TMPFILE), made durable, then linked under its unique
/// name and the directory fsync'd. Where O_TMPFILE is not available, the classic Maildir way:
/// written in tmp/, made durable, renamed into new/.
/// layout = "eml": one `<unique>.eml` per message in `<directory>`, same care.
/// sync = "shared" (default): `deliver` writes the files and returns; one thread of the
/// transport makes everything written meanwhile durable with one syncfs(2), names the files,
/// fsyncs each directory once, and answers. sync = "each": `deliver` syncs its own files
/// (fdatasync) and answers before it returns.
/// Failures to write (full disk, read-only or unwritable directory) answer 4xx, never lose mail.
class file_transport final : public postern::transport {
 public:
  enum class layout { maildir, eml };

  /// Reads `directory` (default "outbox", relative to the data directory), `layout`
  /// ("maildir" or "eml"), `line_endings` ("lf" or "crlf") and `sync` ("shared" or "each"). Throws std::invalid_argument
  /// on a bad value.
  explicit file_transport(postern::host& host);
  /// Answers the deliveries still waiting for their sync (see stop).
  ~file_transport() override;

  postern::probe_result probe() override;
  void deliver(postern::delivery_request request, postern::delivery_callback done) override;
  /// Syncs, names and answers every delivery written so far, then ends the sync thread.
  void stop() override;

  const std::filesystem::path& directory() const noexcept { return directory_; }

 private:
  /// A file written but not yet durable nor named.
  struct open_file {
    int fd = -1;
    std::filesystem::path tmp;  // its temporary name; empty when unnamed (O_TMPFILE)
    std::filesystem::path final_dir;
    std::filesystem::path final_path;
    dev_t device = 0;
  };
  /// A delivery whose files wait for the sync thread; `files[i]` answers `recipients[i]`.
  struct waiting_delivery {
    std::vector<open_file> files;
    std::vector<std::vector<std::uint32_t>> recipients;
    std::vector<postern::recipient_result> results;  // those already answered (a failed write)
    postern::delivery_callback done;
  };

  /// Creates the file for `name` in `dir` (and its Maildir folders) and writes it, unnamed
  /// where the file system allows; on failure, `file.fd` is -1 and the reply says why.
  postern::smtp_reply create_file(const std::filesystem::path& dir, const std::string& name, std::string_view head,
                                  std::string_view body, open_file& file) const;
  /// Gives a durable file its final name (0 or an errno value); closes nothing.
  int name_file(const open_file& file) const;
  /// sync = "each": makes one file durable, names it and syncs its directory.
  postern::smtp_reply finish_alone(open_file& file) const;
  /// The files of one delivery, with the recipients each one answers.
  void write_files(const postern::delivery_request& request, waiting_delivery& out) const;
  /// The sync thread: takes every waiting delivery at once and finishes them together.
  void sync_loop();
  void finish_together(std::vector<waiting_delivery> batch) const;
  /// Syncs, names and closes the batch's files; per file, 0 or the errno value that failed it.
  std::vector<std::vector<int>> make_durable(std::vector<waiting_delivery>& batch) const;
  int ensure_dir(const std::filesystem::path& dir) const;
  int sync_directory(const std::filesystem::path& dir) const;
  void forget_dirs() const;

  /// Group commit for directory syncs with sync = "each": a writer takes a ticket once its own change is made;
  /// whoever gets the lock first syncs for every ticket taken so far, and those waiting behind
  /// find their ticket covered and return without a system call of their own.
  struct sync_group {
    std::mutex mutex;
    std::atomic<std::uint64_t> tickets{0};  // changes made so far (a ticket per writer)
    std::uint64_t synced = 0;               // tickets covered by a completed sync
    template <typename Sync>
    int join(Sync sync) {
      const std::uint64_t mine = ++tickets;
      std::lock_guard lock(mutex);
      if (synced >= mine) return 0;
      const std::uint64_t covered = tickets.load();
      if (int rc = sync(); rc != 0) return rc;
      synced = covered;
      return 0;
    }
  };
  std::shared_ptr<sync_group> group_for(std::map<std::string, std::shared_ptr<sync_group>>& groups,
                                        const std::string& key) const;
  std::string unique_name() const;
  std::string delivery_name(const postern::message& msg, std::uint32_t recipient_index) const;

  std::string name_host_;  // host name as used in unique file names
  std::filesystem::path directory_;
  layout layout_ = layout::maildir;
  bool crlf_ = false;
  bool shared_sync_ = true;  // sync = "shared": the sync thread finishes deliveries in groups
  mutable std::atomic<unsigned long> counter_{0};
  mutable std::atomic<bool> use_tmpfile_{true};     // O_TMPFILE + linkat, while the fs allows it
  mutable std::mutex dirs_mutex_;
  mutable std::set<std::string> known_dirs_;        // created already: no stat per message
  mutable std::map<std::string, std::shared_ptr<sync_group>> dir_syncs_;  // by directory (sync = "each")

  std::mutex waiting_mutex_;
  std::condition_variable waiting_cv_;
  std::vector<waiting_delivery> waiting_;  // written, for the sync thread
  bool stopping_ = false;
  std::thread syncer_;  // sync = "shared" only
};

/// The directory name a recipient's Maildir gets: the address lower-cased, with characters
/// that are unsafe in a path ("/", a leading ".") replaced by "_".
std::string maildir_name(std::string_view address);

}  // namespace postern::transports
