#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace postern::transports {

/// How a child process ended, and what it wrote.
struct child_result {
  int spawn_error = 0;  ///< errno when the program could not be started; nothing else is set then.
  bool exited = false;  ///< It called exit: `exit_code` holds the status.
  int exit_code = -1;
  int signal = 0;          ///< The signal that ended it, when it did not exit.
  bool timed_out = false;  ///< Killed because the time limit passed.
  bool cancelled = false;  ///< Killed because the caller asked (`cancel` became true).
  int input_error = 0;     ///< errno when its standard input could not all be written (EPIPE: it stopped reading).
  std::size_t input_written = 0;
  std::string out;  ///< The first `capture_limit` bytes of its standard output.
  std::string err;  ///< The first `capture_limit` bytes of its standard error.
  std::chrono::milliseconds elapsed{0};
};

/// Runs a program with a message on its standard input, without a shell, and waits for it
/// within a time limit.
///
/// The input is written while both outputs are read (poll on non-blocking pipes), so a child
/// that writes much before it reads cannot deadlock against us. Outputs are captured up to a
/// bound and drained past it. The child runs in a process group of its own, with default
/// signal dispositions and an empty signal mask, and inherits no descriptor but its three
/// pipes. Past the time limit (or on `cancel`), the group gets SIGTERM, then SIGKILL after
/// `kill_grace`.
///
/// Threading: `run` blocks the calling thread for the child's life; any number of threads may
/// run children at once. SIGPIPE is blocked in the calling thread while it writes, and a
/// SIGPIPE raised by a child that stopped reading is consumed, so the process never dies of it.
class child_process {
 public:
  struct options {
    std::vector<std::string> argv;  ///< argv[0] is the program's path, executed as given (no PATH search).
    std::string_view input;         ///< Written to its standard input, which is then closed.
    std::chrono::milliseconds timeout{std::chrono::seconds(60)};
    std::chrono::milliseconds kill_grace{std::chrono::seconds(2)};
    std::size_t capture_limit = 8192;
    const std::atomic<bool>* cancel = nullptr;  ///< Polled about every 100 ms; true kills the child.
  };

  /// Starts the program, feeds it, and waits until it has ended and its outputs are read.
  static child_result run(const options& opts);
};

}  // namespace postern::transports
