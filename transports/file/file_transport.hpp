#pragma once

#include <postern/host.hpp>
#include <postern/transport.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace postern::transports {

/// Delivers to the local file system — a sink for development, tests and archiving.
///
/// layout = "maildir": each recipient gets a Maildir `<directory>/<address>/`; the message is
/// written as an unnamed file in new/ (O_TMPFILE), made durable, then linked under its unique
/// name and the directory fsync'd. Writers in flight at the same time share those syncs:
/// sync = "shared" (default) makes file contents durable with one syncfs(2) for all of them,
/// sync = "each" with one fdatasync per file. Where O_TMPFILE is not available, the classic Maildir way:
/// written in tmp/, fsync'd, renamed into new/.
/// layout = "eml": one `<unique>.eml` per message in `<directory>`, same care.
/// Failures to write (full disk, read-only or unwritable directory) answer 4xx, never lose mail.
class file_transport final : public postern::transport {
 public:
  enum class layout { maildir, eml };

  /// Reads `directory` (default "outbox", relative to the data directory), `layout`
  /// ("maildir" or "eml"), `line_endings` ("lf" or "crlf") and `sync` ("shared" or "each"). Throws std::invalid_argument
  /// on a bad value.
  explicit file_transport(postern::host& host);

  postern::probe_result probe() override;
  void deliver(postern::delivery_request request, postern::delivery_callback done) override;

  const std::filesystem::path& directory() const noexcept { return directory_; }

 private:
  postern::smtp_reply write_file(const std::filesystem::path& dir, const std::string& name, std::string_view head,
                                 std::string_view body) const;
  int ensure_dir(const std::filesystem::path& dir) const;
  int sync_directory(const std::filesystem::path& dir) const;
  int sync_data(int fd) const;

  /// Group commit for one kind of sync: a writer takes a ticket once its own change is made;
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
  bool shared_sync_ = true;  // sync = "shared": one syncfs for the writers in flight
  mutable std::atomic<unsigned long> counter_{0};
  mutable std::atomic<bool> use_tmpfile_{true};     // O_TMPFILE + linkat, while the fs allows it
  mutable std::mutex dirs_mutex_;
  mutable std::set<std::string> known_dirs_;        // created already: no stat per message
  mutable std::map<std::string, std::shared_ptr<sync_group>> dir_syncs_;   // by directory
  mutable std::map<std::string, std::shared_ptr<sync_group>> data_syncs_;  // by file system (st_dev)
};

/// The directory name a recipient's Maildir gets: the address lower-cased, with characters
/// that are unsafe in a path ("/", a leading ".") replaced by "_".
std::string maildir_name(std::string_view address);

}  // namespace postern::transports
