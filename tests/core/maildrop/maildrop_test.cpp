#include "maildrop/maildrop.hpp"

#include "maildrop/pickup.hpp"
#include "test_support.hpp"

#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <thread>

namespace postern::maildrop {
namespace {

using namespace std::chrono_literals;
using postern::testing::temp_dir;

drop sample() {
  drop d;
  d.mail_from = "app@example.com";
  d.recipients = {"a@example.com", "b@example.com"};
  d.tenant = "demo";
  d.user = "www-data";
  d.raw = "Subject: x\r\n\r\nbody\r\n";
  d.notify = postern::notify_success | postern::notify_failure;
  d.ret = "hdrs";
  d.envid = "order-7";
  return d;
}

TEST(maildrop, a_drop_reads_back_exactly) {
  temp_dir dir;
  const auto name = write(dir.path(), sample());
  auto files = waiting(dir.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].filename(), name);
  EXPECT_TRUE(std::filesystem::is_empty(dir / "tmp")) << "nothing left half-written";
  std::string error;
  auto d = read(files[0], error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->mail_from, "app@example.com");
  EXPECT_EQ(d->recipients, sample().recipients);
  EXPECT_EQ(d->tenant, "demo");
  EXPECT_EQ(d->user, "www-data");
  EXPECT_EQ(d->raw, sample().raw);
  EXPECT_EQ(d->notify, sample().notify);
  EXPECT_EQ(d->ret, "hdrs");
  EXPECT_EQ(d->envid, "order-7");
}

TEST(maildrop, a_truncated_or_foreign_file_is_not_a_drop) {
  temp_dir dir;
  write(dir.path(), sample());
  const auto file = waiting(dir.path()).front();
  auto text = postern::testing::read_file(file);
  postern::testing::write_file(file, text.substr(0, text.size() - 3));
  std::string error;
  EXPECT_FALSE(read(file, error));
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;
  postern::testing::write_file(file, "From someone\n");
  EXPECT_FALSE(read(file, error));
  EXPECT_EQ(error, "not a maildrop file");
}

TEST(maildrop, a_file_that_cannot_be_opened_is_a_temporary_problem) {
  temp_dir dir;
  std::string error;
  bool temporary = false;
  EXPECT_FALSE(read(dir / "new" / "gone", error, &temporary));
  EXPECT_TRUE(temporary) << "not corrupt: the pickup tries again instead of setting it aside";
  write(dir.path(), sample());
  postern::testing::write_file(waiting(dir.path()).front(), "junk");
  EXPECT_FALSE(read(waiting(dir.path()).front(), error, &temporary));
  EXPECT_FALSE(temporary);
}

TEST(maildrop, an_unwritable_maildrop_throws_and_leaves_nothing) {
  temp_dir dir;
  postern::testing::write_file(dir / "file", "a regular file where a directory should be");
  EXPECT_THROW(write(dir / "file" / "maildrop", sample()), std::exception);
}

TEST(pickup, submits_drops_and_removes_them_and_sets_aside_corrupt_ones) {
  temp_dir dir;
  const auto drops = dir / "maildrop";
  write(drops, sample());
  postern::testing::write_file(drops / "new" / "0-broken", "garbage");
  spool::spool spool({dir / "spool"});
  policies::chain chain;
  submission::service service(spool, chain, {"gw"});
  boost::asio::io_context io;
  pickup p(io, drops, service, 20ms);
  p.start();
  std::thread runner([&] { io.run_for(3s); });
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!waiting(drops).empty() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  p.stop();
  runner.join();
  EXPECT_TRUE(waiting(drops).empty());
  EXPECT_TRUE(std::filesystem::exists(drops / "corrupt" / "0-broken"));
  auto pending = spool.pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].source, "local");
  EXPECT_EQ(pending[0].msg->tenant, "demo");
  EXPECT_EQ(pending[0].recipients.size(), 2u);
}

TEST(pickup, a_drop_seen_twice_is_queued_once) {
  // A crash after the spool took a drop but before the file was removed: on restart the same
  // file is submitted again, and its origin key makes that a no-op.
  temp_dir dir;
  const auto drops = dir / "maildrop";
  const auto name = write(drops, sample());
  const auto copy = postern::testing::read_file(drops / "new" / name);
  spool::spool spool({dir / "spool"});
  policies::chain chain;
  submission::service service(spool, chain, {"gw"});
  for (int round = 0; round < 2; ++round) {
    postern::testing::write_file(drops / "new" / name, copy);
    boost::asio::io_context io;
    pickup p(io, drops, service, 20ms);
    p.start();
    std::thread runner([&] { io.run_for(2s); });
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!waiting(drops).empty() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    p.stop();
    runner.join();
  }
  EXPECT_EQ(spool.pending().size(), 1u);
}

}  // namespace
}  // namespace postern::maildrop
