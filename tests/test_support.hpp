#pragma once
// Small helpers shared by the unit tests.

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace postern::testing {

/// A fresh directory under the system temp dir, removed with everything in it at the end.
class temp_dir {
 public:
  temp_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("postern-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
}

inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace postern::testing

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

namespace postern::testing {

/// Runs `body` in a child process that sees a fresh tmpfs of `size_kib` KiB at `mount_point`
/// (mounted with `options`, e.g. "ro"), in a private mount namespace, so nothing leaks out.
/// Uses a user namespace when not root. Returns the child's exit code, or -1 if the
/// namespace or mount could not be set up (the caller fails the test then, with the text).
inline int run_with_tmpfs(const std::filesystem::path& mount_point, int size_kib, const std::string& options,
                          const std::function<int()>& body) {
  std::filesystem::create_directories(mount_point);
  const pid_t pid = fork();
  if (pid == 0) {
    const uid_t uid = getuid();
    const gid_t gid = getgid();
    int flags = CLONE_NEWNS;
    if (uid != 0) flags |= CLONE_NEWUSER;
    if (unshare(flags) != 0) _exit(200);
    if (uid != 0) {
      write_file("/proc/self/setgroups", "deny");
      write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
      write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
    }
    if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(201);
    const std::string data = "size=" + std::to_string(size_kib) + "k";
    unsigned long mount_flags = options == "ro" ? MS_RDONLY : 0;
    if (mount("tmpfs", mount_point.c_str(), "tmpfs", mount_flags, data.c_str()) != 0) _exit(202);
    int rc = 0;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "exception in child: %s\n", e.what());
      rc = 203;
    }
    std::fflush(nullptr);
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return -1;
  const int code = WEXITSTATUS(status);
  return (code >= 200 && code <= 202) ? -1 : code;
}

}  // namespace postern::testing
