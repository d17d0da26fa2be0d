// kill -9 at random moments while a process is writing to the spool: every message whose
// enqueue was acknowledged must be there, whole, after restart, and no partial write may have
// become a message.
#include "spool/spool.hpp"

#include "spool/queue_id.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

namespace postern::spool {
namespace {

using postern::testing::temp_dir;

/// The body a message with this id must have: its size varies with the id, up to ~64 KiB.
std::string body_for(const std::string& id) {
  std::string body = "Subject: " + id + "\r\n\r\n";
  const std::size_t repeat = 1 + (static_cast<unsigned char>(id.back()) * 131u) % 4000u;
  for (std::size_t i = 0; i < repeat; ++i) body += id;
  return body + "\r\n";
}

/// Child: enqueue without pause, a few hundred in flight, writing each acknowledged id to
/// the pipe only from the callback, which runs after the commit is durable.
[[noreturn]] void writer_child(const std::filesystem::path& dir, int ack_fd) {
  // Bodies over 16 KiB go to segment files; 1 MiB segments make kills land during rotations too.
  spool_options options{dir};
  options.segment_bytes = 1 << 20;
  spool s(options);
  std::atomic<int> in_flight{0};
  for (;;) {
    while (in_flight.load() > 300) std::this_thread::yield();
    new_entry e;
    e.msg.queue_id = make_queue_id();
    e.msg.tenant = "t";
    e.msg.env.mail_from = "s@example.com";
    e.msg.env.recipients.push_back({0, "r@example.com", "", 0});
    e.msg.raw = body_for(e.msg.queue_id);
    e.msg.arrival = std::chrono::system_clock::now();
    ++in_flight;
    s.enqueue(std::move(e), [&in_flight, ack_fd](enqueue_result r) {
      if (r.ok) {
        const std::string line = r.queue_id + "\n";
        // 17 bytes < PIPE_BUF: each write is atomic.
        if (::write(ack_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(3);
      }
      --in_flight;
    });
  }
}

std::set<std::string> read_acks(int fd, std::string& partial) {
  std::set<std::string> ids;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    partial.append(buffer, static_cast<std::size_t>(n));
  }
  std::size_t pos;
  while ((pos = partial.find('\n')) != std::string::npos) {
    ids.insert(partial.substr(0, pos));
    partial.erase(0, pos + 1);
  }
  return ids;
}

TEST(spool_crash, acknowledged_messages_survive_kill_9) {
  temp_dir dir;
  std::mt19937 random{std::random_device{}()};
  std::set<std::string> acknowledged;
  for (int round = 0; round < 4; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      writer_child(dir.path(), fds[1]);
    }
    ::close(fds[1]);
    // Let it run for a random while, then kill it without warning.
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + random() % 500));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer died on its own, status " << status;
    std::string partial;
    auto acks = read_acks(fds[0], partial);
    ::close(fds[0]);
    EXPECT_GT(acks.size(), 0u) << "round " << round << " acknowledged nothing";
    acknowledged.insert(acks.begin(), acks.end());
  }

  spool s({dir.path()});
  std::size_t found = 0;
  for (const auto& id : acknowledged) {
    auto m = s.load(id);
    ASSERT_TRUE(m) << "acknowledged message " << id << " is missing";
    ASSERT_EQ(m->msg->raw, body_for(id)) << "message " << id << " is damaged";
    ASSERT_EQ(m->recipients.size(), 1u);
    ++found;
  }
  // Messages stored but killed before their acknowledgement reached the pipe are fine; every
  // stored message must be whole.
  for (const auto& m : s.pending()) {
    auto full = s.load(m.msg->queue_id);
    ASSERT_EQ(full->msg->raw, body_for(m.msg->queue_id)) << "partial message " << m.msg->queue_id;
  }
  EXPECT_EQ(found, acknowledged.size());
  std::printf("%zu acknowledged messages checked after 4 kills\n", found);
}

}  // namespace
}  // namespace postern::spool
