#include "maildrop/maildrop.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>

namespace postern::maildrop {
namespace {

constexpr std::string_view magic = "postern-maildrop 1\n";

[[noreturn]] void fail(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

void write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write " + path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail("open " + dir.string());
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail("fsync " + dir.string());
}

std::string unique_name() {
  static std::atomic<unsigned> counter{0};
  thread_local std::mt19937 random{std::random_device{}()};
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  std::ostringstream name;
  name << us << '.' << ::getpid() << '.' << counter++ << '.' << (random() & 0xffff);
  return name.str();
}

}  // namespace

std::string write(const std::filesystem::path& dir, const drop& d) {
  std::filesystem::create_directories(dir / "tmp");
  std::filesystem::create_directories(dir / "new");
  boost::json::object header{{"from", d.mail_from}, {"tenant", d.tenant}, {"user", d.user}};
  boost::json::array rcpts;
  for (const auto& r : d.recipients) rcpts.emplace_back(r);
  header["to"] = std::move(rcpts);
  header["size"] = d.raw.size();
  header["notify"] = d.notify;
  header["ret"] = d.ret;
  header["envid"] = d.envid;

  const std::string name = unique_name();
  const auto tmp = dir / "tmp" / name;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) fail("create " + tmp.string());
  try {
    write_all(fd, magic, tmp);
    write_all(fd, boost::json::serialize(header) + "\n", tmp);
    write_all(fd, d.raw, tmp);
    if (::fsync(fd) != 0) fail("fsync " + tmp.string());
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  const auto final_path = dir / "new" / name;
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    fail("rename into " + final_path.string());
  }
  fsync_dir(dir / "new");
  return name;
}

std::optional<drop> read(const std::filesystem::path& file, std::string& error, bool* temporary) {
  if (temporary) *temporary = false;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = std::string("cannot open: ") + std::strerror(errno);
    if (temporary) *temporary = true;
    return std::nullopt;
  }
  std::string magic_line, header_line;
  if (!std::getline(in, magic_line) || magic_line + "\n" != magic || !std::getline(in, header_line)) {
    error = "not a maildrop file";
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto header = boost::json::parse(header_line, ec);
  if (ec || !header.is_object()) {
    error = "bad maildrop header";
    return std::nullopt;
  }
  drop d;
  try {
    const auto& h = header.as_object();
    d.mail_from = boost::json::value_to<std::string>(h.at("from"));
    d.tenant = boost::json::value_to<std::string>(h.at("tenant"));
    d.user = boost::json::value_to<std::string>(h.at("user"));
    d.recipients = boost::json::value_to<std::vector<std::string>>(h.at("to"));
    const auto size = h.at("size").to_number<std::uint64_t>();
    // Optional fields: drops written by an older postern lack them.
    if (auto* n = h.if_contains("notify")) d.notify = n->to_number<unsigned>();
    if (auto* r = h.if_contains("ret")) d.ret = boost::json::value_to<std::string>(*r);
    if (auto* e = h.if_contains("envid")) d.envid = boost::json::value_to<std::string>(*e);
    std::ostringstream body;
    body << in.rdbuf();
    d.raw = body.str();
    if (d.raw.size() != size) {
      error = "truncated: " + std::to_string(d.raw.size()) + " of " + std::to_string(size) + " bytes";
      return std::nullopt;
    }
  } catch (const std::exception& e) {
    error = std::string("bad maildrop header: ") + e.what();
    return std::nullopt;
  }
  return d;
}

std::vector<std::filesystem::path> waiting(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir / "new", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace postern::maildrop
