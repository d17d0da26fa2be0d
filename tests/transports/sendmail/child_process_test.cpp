#include "child_process.hpp"

#include "test_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

namespace postern::transports {
namespace {

using namespace std::chrono_literals;
using postern::testing::read_file;
using postern::testing::temp_dir;

/// Writes an executable shell script and returns its path.
std::string script(const temp_dir& dir, const std::string& name, const std::string& body) {
  const auto path = dir / name;
  postern::testing::write_file(path, "#!/bin/sh\n" + body + "\n");
  ::chmod(path.c_str(), 0755);
  return path.string();
}

child_result run(std::vector<std::string> argv, std::string_view input = "", std::chrono::milliseconds timeout = 20s,
                 std::chrono::milliseconds grace = 2s) {
  child_process::options o;
  o.argv = std::move(argv);
  o.input = input;
  o.timeout = timeout;
  o.kill_grace = grace;
  return child_process::run(o);
}

TEST(child_process, feeds_stdin_and_captures_both_outputs_and_the_exit_code) {
  temp_dir dir;
  const auto got = dir / "stdin";
  const auto prog = script(dir, "prog", "cat > \"$1\"\necho out-line\necho err-line >&2\nexit 3");
  const auto r = run({prog, got.string()}, "line one\nline two\n");
  EXPECT_EQ(r.spawn_error, 0);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out-line\n");
  EXPECT_EQ(r.err, "err-line\n");
  EXPECT_EQ(r.input_error, 0);
  EXPECT_EQ(read_file(got), "line one\nline two\n");
}

TEST(child_process, a_child_that_writes_much_before_it_reads_does_not_deadlock) {
  temp_dir dir;
  const auto got = dir / "stdin";
  // 300 KB to stderr before reading a byte, then all of stdin copied to stderr as it is read,
  // then 300 KB to stdout: a parent that pushed all of stdin first (or read the outputs only
  // after) would block against it for good.
  const auto prog = script(dir, "noisy",
                           "head -c 300000 /dev/zero | tr '\\0' e >&2\n"
                           "tee \"$1\" >&2\n"
                           "head -c 300000 /dev/zero | tr '\\0' o");
  const std::string input(2 * 1024 * 1024, 'x');  // far more than a pipe holds (64 KiB)
  const auto r = run({prog, got.string()}, input, 20s);
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.input_written, input.size());
  EXPECT_EQ(std::filesystem::file_size(got), input.size());
  // Captured up to the bound, the rest drained.
  EXPECT_EQ(r.err.size(), 8192u);
  EXPECT_EQ(r.out.size(), 8192u);
  EXPECT_LT(r.elapsed, 15s);
}

TEST(child_process, the_time_limit_kills_the_child_and_what_it_started) {
  temp_dir dir;
  // A background child keeps the pipes open: only killing the whole group ends the wait.
  const auto prog = script(dir, "slow", "sleep 30 &\nsleep 30\nwait");
  const auto started = std::chrono::steady_clock::now();
  const auto r = run({prog}, "", 300ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.exited);
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(child_process, a_child_that_ignores_sigterm_gets_sigkill_after_the_grace) {
  temp_dir dir;
  const auto prog = script(dir, "stubborn", "trap '' TERM\nsleep 30");
  const auto started = std::chrono::steady_clock::now();
  const auto r = run({prog}, "", 300ms, 300ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(child_process, a_program_that_cannot_start_says_why) {
  temp_dir dir;
  EXPECT_EQ(run({(dir / "missing").string()}).spawn_error, ENOENT);
  postern::testing::write_file(dir / "plain", "not a program");
  ::chmod((dir / "plain").c_str(), 0644);
  EXPECT_EQ(run({(dir / "plain").string()}).spawn_error, EACCES);
}

TEST(child_process, a_child_that_stops_reading_does_not_kill_us_with_sigpipe) {
  temp_dir dir;
  const auto prog = script(dir, "deaf", "exec 0<&-\nsleep 0.2\nexit 0");
  const std::string input(4 * 1024 * 1024, 'x');
  const auto r = run({prog}, input);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.input_error, EPIPE);
  EXPECT_LT(r.input_written, input.size());
  // No SIGPIPE is left pending for this thread either.
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
}

TEST(child_process, cancel_kills_a_running_child) {
  temp_dir dir;
  const auto prog = script(dir, "slow", "sleep 30");
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    cancel = true;
  });
  child_process::options o;
  o.argv = {prog};
  o.cancel = &cancel;
  const auto started = std::chrono::steady_clock::now();
  const auto r = child_process::run(o);
  canceller.join();
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(child_process, the_child_inherits_no_other_descriptor) {
  temp_dir dir;
  // Opened without O_CLOEXEC, as code elsewhere in the gateway might.
  const int leaked = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 3);
  const auto prog =
      script(dir, "fds", "if [ -e /proc/$$/fd/" + std::to_string(leaked) + " ]; then echo leaked; else echo clean; fi");
  const auto r = run({prog});
  ::close(leaked);
  EXPECT_EQ(r.out, "clean\n");
}

}  // namespace
}  // namespace postern::transports
