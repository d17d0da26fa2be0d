#pragma once
// Bounds the memory the allocator keeps in reserve and gives it back every few seconds.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>

namespace postern::cli {

/// postern links tcmalloc, which keeps freed memory for reuse: in its threads' caches (up to
/// 32 MiB by default) and as free pages (those of large messages that have left, say) until
/// it is told to return them. After a burst of mixed 1-100 KiB messages it held about 50 MiB
/// more than the application used; with a 4 MiB bound on the caches and the free pages given
/// back every 10 s, about 15 MiB. Without tcmalloc (the unit tests) this does nothing.
///
/// Thread-safety: start once; stop from any thread.
class memory_release {
 public:
  explicit memory_release(boost::asio::io_context& io, std::chrono::seconds every = std::chrono::seconds(10));
  void start();
  void stop();

 private:
  void arm();

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  std::chrono::seconds every_;
  std::atomic<bool> stopped_{false};
};

}  // namespace postern::cli
