#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

extern char** environ;

namespace postern::transports {
namespace {

using clock = std::chrono::steady_clock;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

/// Moves a descriptor above the standard three, so that the child's dup2 onto 0, 1 and 2
/// cannot overwrite one of the other pipes (a daemon may run with those closed).
int lift(int fd) {
  if (fd < 0 || fd > 2) return fd;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

bool make_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  fds[0] = lift(fds[0]);
  fds[1] = lift(fds[1]);
  return fds[0] >= 0 && fds[1] >= 0;
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/// A descriptor that polls readable when the child ends (Linux 5.3+), or -1.
int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

/// Reads what is there; false at end of file or on an error.
bool drain(int fd, std::string& into, std::size_t limit) {
  char buffer[16384];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      // Past the limit the output is read and dropped: a child blocked on a full pipe never ends.
      if (into.size() < limit) into.append(buffer, std::min(static_cast<std::size_t>(n), limit - into.size()));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
}

}  // namespace

child_result child_process::run(const options& o) {
  child_result result;
  const auto started = clock::now();
  if (o.argv.empty()) {
    result.spawn_error = EINVAL;
    return result;
  }

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (!make_pipe(in) || !make_pipe(out) || !make_pipe(err)) {
    result.spawn_error = errno ? errno : EMFILE;
    for (int* fd : {&in[0], &in[1], &out[0], &out[1], &err[0], &err[1]}) close_fd(*fd);
    return result;
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // Descriptors another thread opened without O_CLOEXEC (sockets, files) must not leak in.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  // Dispositions the gateway may have changed are reset, so that the program behaves as it
  // would from a shell (an ignored SIGPIPE would survive exec).
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s :
       {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2, SIGXFSZ, SIGTTIN, SIGTTOU})
    sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  // A group of its own: a time-out kills what it started too (a shell script's children),
  // which would otherwise hold the pipes open.
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close_fd(in[0]);
  close_fd(out[1]);
  close_fd(err[1]);
  if (spawned != 0) {
    result.spawn_error = spawned;
    close_fd(in[1]);
    close_fd(out[0]);
    close_fd(err[0]);
    return result;
  }
  int input_fd = in[1], out_fd = out[0], err_fd = err[0];
  set_nonblocking(input_fd);
  set_nonblocking(out_fd);
  set_nonblocking(err_fd);
  int pid_fd = open_pidfd(pid);

  // Writing to a child that stopped reading raises SIGPIPE in this thread: blocked while we
  // write, and the one we caused is consumed before the mask is restored.
  sigset_t pipe_signal, old_mask, pending;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &old_mask);
  sigpending(&pending);
  const bool pipe_was_pending = sigismember(&pending, SIGPIPE) == 1;

  if (o.input.empty()) close_fd(input_fd);
  bool reaped = false;
  int status = 0;
  clock::time_point reaped_at{};
  bool terminating = false, killed = false;
  clock::time_point kill_at{};
  const auto deadline = started + o.timeout;

  const auto reap = [&](int flags) {
    if (reaped) return;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, flags);
    } while (r < 0 && errno == EINTR);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      if (r < 0) status = -1;  // reaped elsewhere (SIGCHLD ignored): the status is lost
      reaped = true;
      reaped_at = clock::now();
    }
  };

  while (true) {
    reap(WNOHANG);
    const auto now = clock::now();
    if (reaped) {
      // Nobody reads the rest of the input any more.
      if (input_fd >= 0) {
        if (result.input_written < o.input.size() && !result.input_error) result.input_error = EPIPE;
        close_fd(input_fd);
      }
      if (out_fd < 0 && err_fd < 0) break;
      // Something it started still holds the pipes: stop waiting for them after a moment.
      if (now - reaped_at > std::chrono::milliseconds(500)) break;
    }
    if (!reaped && !terminating && (now >= deadline || (o.cancel && o.cancel->load()))) {
      (now >= deadline ? result.timed_out : result.cancelled) = true;
      ::kill(-pid, SIGTERM);
      terminating = true;
      kill_at = now + o.kill_grace;
      close_fd(input_fd);
    }
    if (!reaped && terminating && !killed && now >= kill_at) {
      ::kill(-pid, SIGKILL);
      killed = true;
    }

    pollfd fds[4];
    nfds_t n = 0;
    int input_slot = -1, out_slot = -1, err_slot = -1;
    if (input_fd >= 0) {
      input_slot = static_cast<int>(n);
      fds[n++] = {input_fd, POLLOUT, 0};
    }
    if (out_fd >= 0) {
      out_slot = static_cast<int>(n);
      fds[n++] = {out_fd, POLLIN, 0};
    }
    if (err_fd >= 0) {
      err_slot = static_cast<int>(n);
      fds[n++] = {err_fd, POLLIN, 0};
    }
    if (pid_fd >= 0 && !reaped) fds[n++] = {pid_fd, POLLIN, 0};
    // Short slices: the cancel flag, the deadline and (without a pidfd) the child's end are
    // checked between them.
    auto wait = std::chrono::milliseconds(pid_fd >= 0 ? 100 : 20);
    const auto next = !terminating ? deadline : (killed ? now + wait : kill_at);
    wait = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(next - now), std::chrono::milliseconds(1), wait);
    if (::poll(fds, n, static_cast<int>(wait.count())) < 0 && errno != EINTR) break;

    if (input_slot >= 0 && (fds[input_slot].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const auto rest = o.input.substr(result.input_written);
      const ssize_t w = ::write(input_fd, rest.data(), std::min<std::size_t>(rest.size(), 65536));
      if (w > 0) {
        result.input_written += static_cast<std::size_t>(w);
        if (result.input_written == o.input.size()) close_fd(input_fd);
      } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        result.input_error = errno;
        close_fd(input_fd);
      }
    }
    if (out_slot >= 0 && fds[out_slot].revents && !drain(out_fd, result.out, o.capture_limit)) close_fd(out_fd);
    if (err_slot >= 0 && fds[err_slot].revents && !drain(err_fd, result.err, o.capture_limit)) close_fd(err_fd);
  }

  if (!reaped) {
    // Only a failing poll gets here: do not leave a child behind.
    ::kill(-pid, SIGKILL);
    reap(0);
  }
  close_fd(input_fd);
  close_fd(out_fd);
  close_fd(err_fd);
  close_fd(pid_fd);

  if (result.input_error == EPIPE && !pipe_was_pending) {
    const timespec zero{0, 0};
    sigtimedwait(&pipe_signal, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);

  if (status != -1) {
    if (WIFEXITED(status)) {
      result.exited = true;
      result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      result.signal = WTERMSIG(status);
    }
  }
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
  return result;
}

}  // namespace postern::transports
