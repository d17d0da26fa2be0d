#pragma once

#include "submission/service.hpp"

#include <spdlog/logger.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <string>

namespace postern::maildrop {

/// Takes what `postern sendmail` dropped into the maildrop and submits it like any other mail.
/// A drop is removed only after the spool has it; its file name is the submission's origin key,
/// so a crash between the two never makes a second copy. A file that is not a complete drop is
/// moved to corrupt/ and reported, never deleted.
class pickup {
 public:
  pickup(boost::asio::io_context& io, std::filesystem::path dir, submission::service& submission,
         std::chrono::milliseconds interval = std::chrono::milliseconds(250));
  void start();
  void stop();

 private:
  boost::asio::awaitable<void> run();
  void scan();
  void take(const std::filesystem::path& file);
  /// Moves a file that must not be submitted into `subdir`; if even that fails, it stays and
  /// is looked at again later (never every tick, never lost).
  void set_aside(const std::filesystem::path& file, const std::string& subdir, const std::string& why);
  void retry_later(const std::string& name);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  std::filesystem::path dir_;
  submission::service& submission_;
  std::chrono::milliseconds interval_;
  std::set<std::string> in_progress_;
  std::map<std::string, std::chrono::steady_clock::time_point> retry_after_;  // refused for now
  bool stopping_ = false;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace postern::maildrop
