#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace postern::maildrop {

/// A message dropped by `postern sendmail`, waiting for the server to take it.
struct drop {
  std::string mail_from;
  std::vector<std::string> recipients;
  std::string tenant;
  std::string user;          ///< The local user who submitted it.
  std::string raw;
  unsigned notify = 0;       ///< RFC 3461 NOTIFY for every recipient (sendmail -N).
  std::string ret;           ///< "full", "hdrs" or empty (sendmail -R).
  std::string envid;         ///< sendmail -V.
};

/// Writes a drop so that it survives a crash the moment this returns: the file is written
/// under tmp/, fsync'd, renamed into new/ and the directory fsync'd. Returns the file name.
/// Throws std::system_error (disk full, permissions) — then nothing is left in new/.
std::string write(const std::filesystem::path& dir, const drop& d);

/// Reads a drop back. Nothing (and `error` set) if the file is not a complete drop, or could
/// not be opened at all; then `*temporary` (if given) is set: try again later, the file may be fine.
std::optional<drop> read(const std::filesystem::path& file, std::string& error, bool* temporary = nullptr);

/// Files waiting in new/, oldest name first.
std::vector<std::filesystem::path> waiting(const std::filesystem::path& dir);

}  // namespace postern::maildrop
