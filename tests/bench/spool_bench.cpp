// Spool benchmark: messages made durable per second through the spool, beside the disk's
// raw rate of file create + write + fsync measured in the same run on the same directory.
//
//   spool_bench DIR [messages] [size] [in_flight]
//
// Every loop is bounded by its count; nothing touches the network.
#include "spool/queue_id.hpp"
#include "spool/spool.hpp"
#include "telemetry/registry.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// What an MTA that fsyncs one file per message can do at best on this disk.
double raw_create_fsync_rate(const std::filesystem::path& dir, int files, std::size_t size) {
  std::filesystem::create_directories(dir);
  const std::string data(size, 'x');
  const auto start = clock_type::now();
  for (int i = 0; i < files; ++i) {
    const auto path = dir / std::to_string(i);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size()) || ::fsync(fd) != 0) {
      std::perror("raw write");
      std::exit(1);
    }
    ::close(fd);
  }
  const double rate = files / seconds_since(start);
  std::filesystem::remove_all(dir);
  return rate;
}

struct spool_result {
  double rate = 0;
  double commits = 0;
};

spool_result spool_rate(const std::filesystem::path& dir, int messages, std::size_t size, int in_flight) {
  std::filesystem::remove_all(dir);
  postern::telemetry::registry metrics;
  postern::spool::spool spool({dir, 1024, &metrics});
  const std::string body = "Subject: bench\r\n\r\n" + std::string(size, 'x') + "\r\n";
  std::mutex mutex;
  std::condition_variable changed;
  int outstanding = 0, failed = 0, done = 0;
  const auto start = clock_type::now();
  for (int i = 0; i < messages; ++i) {
    {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return outstanding < in_flight; });
      ++outstanding;
    }
    postern::spool::new_entry e;
    e.msg.queue_id = postern::spool::make_queue_id();
    e.msg.tenant = "bench";
    e.msg.env.mail_from = "bench@example.com";
    e.msg.env.recipients.push_back({0, "rcpt@example.com", "", 0});
    e.msg.raw = body;
    e.msg.arrival = std::chrono::system_clock::now();
    spool.enqueue(std::move(e), [&](postern::spool::enqueue_result r) {
      std::lock_guard lock(mutex);
      --outstanding;
      ++done;
      if (!r.ok) ++failed;
      changed.notify_all();
    });
  }
  std::unique_lock lock(mutex);
  changed.wait(lock, [&] { return done == messages; });
  const double elapsed = seconds_since(start);
  if (failed) {
    std::fprintf(stderr, "%d enqueues failed\n", failed);
    std::exit(1);
  }
  return {messages / elapsed, metrics.counter("postern_spool_commits_total")};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [messages] [size] [in_flight]\n", argv[0]);
    return 64;
  }
  const std::filesystem::path dir = argv[1];
  const int messages = argc > 2 ? std::stoi(argv[2]) : 20000;
  const std::size_t size = argc > 3 ? std::stoul(argv[3]) : 1024;
  const int in_flight = argc > 4 ? std::stoi(argv[4]) : 512;

  const int raw_files = std::min(messages, 2000);
  const double raw = raw_create_fsync_rate(dir / "raw", raw_files, size);
  const auto one = spool_rate(dir / "spool-serial", std::min(messages, 1000), size, 1);
  const auto grouped = spool_rate(dir / "spool", messages, size, in_flight);
  std::filesystem::remove_all(dir / "spool-serial");
  std::filesystem::remove_all(dir / "spool");

  std::printf("spool benchmark: %d messages of %zu bytes, directory %s\n", messages, size, dir.c_str());
  std::printf("  %-46s %10.0f /s\n", "disk: create + write + fsync + close (raw)", raw);
  std::printf("  %-46s %10.0f msg/s\n", "spool, 1 submission in flight", one.rate);
  std::printf("  %-46s %10.0f msg/s  (%.0f commits, %.1f messages per fsync)\n",
              ("spool, " + std::to_string(in_flight) + " submissions in flight").c_str(), grouped.rate, grouped.commits,
              messages / std::max(1.0, grouped.commits));
  std::printf("  ratio spool (group commit) / raw fsync rate:  %.1fx  (target >= 10x)\n", grouped.rate / raw);
  return 0;
}
