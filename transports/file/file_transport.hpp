#pragma once

#include <postern/host.hpp>
#include <postern/transport.hpp>

#include <atomic>
#include <filesystem>
#include <string>

namespace postern::transports {

/// Delivers to the local file system — a sink for development, tests and archiving.
///
/// layout = "maildir": each recipient gets a Maildir `<directory>/<address>/` and the message
/// is written to tmp/, fsync'd, renamed into new/ and the directory fsync'd, the Maildir way.
/// layout = "eml": one `<unique>.eml` per message in `<directory>`, same care.
/// Failures to write (full disk, read-only or unwritable directory) answer 4xx, never lose mail.
class file_transport final : public postern::transport {
 public:
  enum class layout { maildir, eml };

  /// Reads `directory` (default "outbox", relative to the data directory), `layout`
  /// ("maildir" or "eml") and `line_endings` ("lf" or "crlf"). Throws std::invalid_argument
  /// on a bad value.
  explicit file_transport(postern::host& host);

  postern::probe_result probe() override;
  void deliver(postern::delivery_request request, postern::delivery_callback done) override;

  const std::filesystem::path& directory() const noexcept { return directory_; }

 private:
  postern::smtp_reply write_file(const std::filesystem::path& dir, const std::string& content) const;
  std::string unique_name() const;

  postern::host& host_;
  std::filesystem::path directory_;
  layout layout_ = layout::maildir;
  bool crlf_ = false;
  mutable std::atomic<unsigned long> counter_{0};
};

/// The directory name a recipient's Maildir gets: the address lower-cased, with characters
/// that are unsafe in a path ("/", a leading ".") replaced by "_".
std::string maildir_name(std::string_view address);

}  // namespace postern::transports
