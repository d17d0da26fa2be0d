#pragma once

#include "child_process.hpp"

#include <postern/host.hpp>
#include <postern/transport.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::transports {

/// The settings of `[transports.sendmail]`, read and checked.
struct sendmail_settings {
  std::string binary;                  ///< As configured (a relative path resolved); empty: the default candidates.
  std::vector<std::string> arguments;  ///< Inserted before "-i".
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  std::size_t max_processes = 4;
  bool unavailable_is_temporary = true;  ///< EX_UNAVAILABLE (69) is 4xx, else 5xx.
  bool crlf = false;                     ///< line_endings = "crlf": the message as spooled; default LF.

  /// Reads the section; throws std::invalid_argument naming `host.config().origin()` for a
  /// value that can never work.
  static sendmail_settings read(const postern::host& host);
};

/// The program a delivery runs, or why there is none.
struct sendmail_program {
  std::string path;    ///< Empty when nothing usable was found.
  std::string reason;  ///< Why not, naming each place looked at.
};

/// Finds the program: `binary` when set (a name without "/" is looked up in `path_env`), else
/// the first usable of /usr/sbin/sendmail, /usr/lib/sendmail and msmtp (in `path_env`).
/// Usable means a regular file this process may execute.
sendmail_program find_sendmail(const std::string& binary, const std::string& path_env);

/// The command line: program, `arguments`, then `-i -f <sender> -- <recipients...>`. The null
/// sender is passed as "<>", which Sendmail, Postfix, Exim and msmtp all read as the null
/// sender; "--" ends the options, so a recipient starting with "-" is never taken for one.
std::vector<std::string> sendmail_argv(const std::string& program, const std::vector<std::string>& arguments,
                                       const std::string& sender, const std::vector<postern::recipient>& recipients);

/// Maps how the program ended to the reply every recipient gets (sysexits.h): 0 delivered;
/// EX_TEMPFAIL (75) 4xx; EX_UNAVAILABLE (69) 4xx or 5xx per `unavailable_is_temporary`; any
/// other exit code 5xx; a time-out, a signal, a failure to start it or to hand it the whole
/// message 4xx. Every failure's text keeps the first line of its standard error (else of its
/// standard output). `timeout` is the limit the run had, for the text.
postern::smtp_reply map_sendmail_result(const child_result& result, std::string_view program,
                                        bool unavailable_is_temporary, std::chrono::milliseconds timeout);

/// Delivers by running a local sendmail-compatible program (Postfix's or Sendmail's sendmail,
/// msmtp, ...) once per attempt, with all of the attempt's recipients on its command line and
/// the message on its standard input. No shell is involved.
///
/// `deliver` blocks the calling worker thread for one run of the program (at most `timeout`);
/// at most `max_processes` run at once, further callers wait for a slot.
class sendmail_transport final : public postern::transport {
 public:
  /// Reads the settings (see sendmail_settings::read; throws on a bad value).
  explicit sendmail_transport(postern::host& host);

  /// Available when a program is found; the reason names it, or each place looked at.
  postern::probe_result probe() override;
  void deliver(postern::delivery_request request, postern::delivery_callback done) override;
  /// Kills programs still running (their recipients get 451 4.3.2) and refuses new attempts.
  void stop() override;

  const sendmail_settings& settings() const noexcept { return settings_; }

 private:
  postern::smtp_reply run(const postern::delivery_request& request);

  sendmail_settings settings_;
  std::string path_env_;  // PATH, read once: getenv is not safe against a setenv elsewhere
  std::mutex slots_mutex_;
  std::condition_variable slots_free_;
  std::size_t running_ = 0;  // guarded by slots_mutex_
  std::atomic<bool> stopping_{false};
};

}  // namespace postern::transports
