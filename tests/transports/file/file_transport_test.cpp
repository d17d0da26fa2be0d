#include "file_transport.hpp"

#include "mocks/config_values.hpp"
#include "mocks/mock_host.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

namespace postern::transports {
namespace {

using postern::testing::config_values;
using postern::testing::mock_host;
using postern::testing::temp_dir;
using ::testing::_;
using ::testing::NiceMock;
using ::testing::Return;
using ::testing::ReturnRef;

class file_transport_test : public ::testing::Test {
 protected:
  std::unique_ptr<file_transport> make(std::filesystem::path dir, std::string layout = "maildir", std::string endings = "") {
    config_.set("directory", dir.string());
    config_.set("layout", layout);
    if (!endings.empty()) config_.set("line_endings", endings);
    if (!sync_.empty()) config_.set("sync", sync_);
    ON_CALL(host_, config()).WillByDefault(ReturnRef(config_));
    ON_CALL(host_, hostname()).WillByDefault(Return("gw.example"));
    ON_CALL(host_, resolve_path(_)).WillByDefault([](std::string_view p) { return std::string(p); });
    return std::make_unique<file_transport>(host_);
  }

  /// A new message each time (its own queue id), to these recipients.
  static postern::delivery_request request(std::vector<std::string> rcpts) {
    static std::atomic<int> made{0};
    auto msg = std::make_shared<postern::message>();
    const auto n = std::to_string(++made);
    msg->queue_id = "QUEUEID" + std::string(9 - n.size(), '0') + n;
    msg->arrival = std::chrono::system_clock::now();
    msg->env.mail_from = "shop@example.com";
    for (std::size_t i = 0; i < rcpts.size(); ++i) msg->env.recipients.push_back({static_cast<std::uint32_t>(i), rcpts[i], "", 0});
    msg->raw = "Subject: hi\r\n\r\nline one\r\nline two\r\n";
    return {msg, msg->env.recipients};
  }

  /// Delivers and waits for the answer: with sync = "shared" it comes from the transport's
  /// sync thread, after `deliver` has returned.
  static std::vector<postern::recipient_result> run(file_transport& t, postern::delivery_request r) {
    std::promise<std::vector<postern::recipient_result>> answered;
    auto answer = answered.get_future();
    t.deliver(std::move(r), [&answered](auto results) { answered.set_value(std::move(results)); });
    return answer.get();
  }

  static std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) out.push_back(e.path());
    return out;
  }

  config_values config_{"test [transports.file]"};
  NiceMock<mock_host> host_;
  temp_dir dir_;
  std::string sync_;  // the `sync` setting, when a test gives one
};

TEST_F(file_transport_test, writes_one_maildir_per_recipient) {
  auto t = make(dir_ / "out");
  EXPECT_TRUE(t->probe().available);
  auto results = run(*t, request({"Ann@Example.com", "bob@example.com"}));
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_EQ(r.reply.code, 250) << r.reply.text;
  auto ann = files_in(dir_ / "out" / "ann@example.com" / "new");
  ASSERT_EQ(ann.size(), 1u);
  EXPECT_TRUE(files_in(dir_ / "out" / "ann@example.com" / "tmp").empty());
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "out" / "ann@example.com" / "cur"));
  EXPECT_EQ(postern::testing::read_file(ann[0]),
            "Return-Path: <shop@example.com>\nDelivered-To: Ann@Example.com\nSubject: hi\n\nline one\nline two\n");
  EXPECT_EQ(files_in(dir_ / "out" / "bob@example.com" / "new").size(), 1u);
}

TEST_F(file_transport_test, writes_one_eml_per_message_with_crlf) {
  auto t = make(dir_ / "out", "eml");
  auto results = run(*t, request({"a@example.com", "b@example.com"}));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].reply.code, 250);
  auto files = files_in(dir_ / "out");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].extension(), ".eml");
  EXPECT_EQ(postern::testing::read_file(files[0]),
            "Return-Path: <shop@example.com>\r\nX-Envelope-To: <a@example.com>\r\nX-Envelope-To: <b@example.com>\r\n"
            "Subject: hi\r\n\r\nline one\r\nline two\r\n");
}

TEST_F(file_transport_test, a_delivery_repeated_after_a_crash_writes_no_second_copy) {
  // The engine repeats an attempt whose outcome a crash kept from being recorded: the same
  // message to the same recipients. Files are named per delivery, so the second finds the first.
  for (const std::string layout : {"maildir", "eml"}) {
    auto t = make(dir_ / layout, layout);
    const auto once = request({"ann@example.com"});
    for (int attempt = 0; attempt < 2; ++attempt) {
      const auto results = run(*t, once);
      ASSERT_EQ(results.size(), 1u);
      EXPECT_EQ(results[0].reply.code, 250) << layout << ": " << results[0].reply.text;
    }
    const auto dir = layout == "maildir" ? dir_ / layout / "ann@example.com" / "new" : dir_ / layout;
    EXPECT_EQ(files_in(dir).size(), 1u) << layout;
    (void)run(*t, request({"ann@example.com"}));  // another message to the same recipient
    EXPECT_EQ(files_in(dir).size(), 2u) << layout;
  }
}

TEST_F(file_transport_test, bad_settings_are_refused_with_their_origin) {
  try {
    make(dir_ / "out", "mbox");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("test [transports.file]: layout must be"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make(dir_ / "out", "maildir", "cr"), std::invalid_argument);
  sync_ = "sometimes";
  EXPECT_THROW(make(dir_ / "out"), std::invalid_argument);
}

TEST_F(file_transport_test, concurrent_writers_all_land_in_either_sync_mode) {
  for (const std::string sync : {"shared", "each"}) {
    sync_ = sync;
    auto t = make(dir_ / sync, "eml");
    std::vector<std::thread> writers;
    std::atomic<int> written{0};
    for (int i = 0; i < 8; ++i) {
      writers.emplace_back([&] {
        for (int j = 0; j < 25; ++j) {
          for (const auto& r : run(*t, request({"a@example.com"}))) written += r.reply.code == 250;
        }
      });
    }
    for (auto& w : writers) w.join();
    EXPECT_EQ(written.load(), 200) << sync;
    EXPECT_EQ(files_in(dir_ / sync).size(), 200u) << sync;
  }
}

/// Descriptors this process has open.
std::size_t open_descriptors() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST_F(file_transport_test, a_delivery_to_many_maildirs_answers_each_recipient_and_leaks_no_descriptor) {
  // More recipients than a delivery keeps open at once: it finishes its files in groups. One
  // Maildir cannot be made (a plain file holds its place): that recipient alone fails.
  for (const std::string sync : {"shared", "each"}) {
    sync_ = sync;
    auto t = make(dir_ / sync);
    std::vector<std::string> rcpts;
    for (int i = 0; i < 150; ++i) rcpts.push_back("r" + std::to_string(i) + "@example.com");
    postern::testing::write_file(dir_ / sync / "r100@example.com", "not a Maildir");
    const auto before = open_descriptors();
    const auto results = run(*t, request(rcpts));
    EXPECT_EQ(open_descriptors(), before) << sync;
    ASSERT_EQ(results.size(), 150u) << sync;
    std::set<std::uint32_t> answered;
    for (const auto& r : results) {
      EXPECT_EQ(r.reply.code, r.recipient_index == 100 ? 451 : 250) << sync << ": " << r.reply.text;
      answered.insert(r.recipient_index);
    }
    EXPECT_EQ(answered.size(), 150u) << sync << ": one answer per recipient";
    for (int i = 0; i < 150; ++i) {
      if (i == 100) continue;
      EXPECT_EQ(files_in(dir_ / sync / rcpts[i] / "new").size(), 1u) << sync << " " << rcpts[i];
    }
  }
}

TEST_F(file_transport_test, a_repeated_delivery_in_each_mode_syncs_the_file_already_there) {
  // The repeated attempt finds its name taken by the first attempt's file and answers 250
  // without a second copy; the file it syncs then is that one (sync = "each").
  sync_ = "each";
  auto t = make(dir_ / "out", "eml");
  const auto once = request({"a@example.com"});
  ASSERT_EQ(run(*t, once)[0].reply.code, 250);
  const auto again = run(*t, once);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].reply.code, 250) << again[0].reply.text;
  EXPECT_EQ(files_in(dir_ / "out").size(), 1u);
}

TEST_F(file_transport_test, stop_answers_every_delivery_still_waiting_for_its_sync) {
  auto t = make(dir_ / "out", "eml");
  std::atomic<int> answered{0};
  std::atomic<int> written{0};
  for (int i = 0; i < 100; ++i) {
    t->deliver(request({"a@example.com"}), [&](auto results) {
      ++answered;
      for (const auto& r : results) written += r.reply.code == 250;
    });
  }
  t->stop();
  EXPECT_EQ(answered.load(), 100) << "stop returns once every delivery has its answer";
  EXPECT_EQ(written.load(), 100);
  EXPECT_EQ(files_in(dir_ / "out").size(), 100u);
  // The engine delivers nothing after stop; if something did, it is still written and answered.
  const auto late = run(*t, request({"a@example.com"}));
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].reply.code, 250) << late[0].reply.text;
  EXPECT_EQ(files_in(dir_ / "out").size(), 101u);
}

TEST_F(file_transport_test, an_unusable_directory_makes_probe_say_why) {
  postern::testing::write_file(dir_ / "not-a-dir", "x");
  auto t = make(dir_ / "not-a-dir" / "out");
  auto probe = t->probe();
  EXPECT_FALSE(probe.available);
  EXPECT_NE(probe.reason.find("cannot create"), std::string::npos) << probe.reason;
  auto results = run(*t, request({"a@example.com"}));
  EXPECT_EQ(results[0].reply.code, 451) << "an unwritable place is a temporary failure";
}

TEST_F(file_transport_test, a_read_only_disk_is_a_temporary_failure) {
  const auto mount_point = dir_ / "ro";
  const int rc = postern::testing::run_with_tmpfs(mount_point, 64, "ro", [&] {
    auto t = make(mount_point);
    auto probe = t->probe();
    if (probe.available) return 10;
    if (probe.reason.find("Read-only") == std::string::npos) {
      std::fprintf(stderr, "probe reason: %s\n", probe.reason.c_str());
      return 11;
    }
    auto results = run(*t, request({"a@example.com"}));
    if (results.size() != 1 || results[0].reply.code != 451) return 12;
    return 0;
  });
  ASSERT_NE(rc, -1) << "could not mount a tmpfs in a private namespace";
  EXPECT_EQ(rc, 0);
}

TEST_F(file_transport_test, a_full_disk_is_452_and_leaves_no_partial_file) {
  const auto mount_point = dir_ / "small";
  const int rc = postern::testing::run_with_tmpfs(mount_point, 64, "", [&] {
    auto t = make(mount_point);
    if (!t->probe().available) return 10;
    auto big = request({"a@example.com"});
    auto msg = std::make_shared<postern::message>(*big.msg);
    msg->raw += std::string(256 * 1024, 'x');
    big.msg = msg;
    auto results = run(*t, big);
    if (results.size() != 1 || results[0].reply.code != 452 || results[0].reply.enhanced != "4.3.1") {
      std::fprintf(stderr, "reply: %d %s\n", results.empty() ? 0 : results[0].reply.code,
                   results.empty() ? "" : results[0].reply.text.c_str());
      return 11;
    }
    if (!files_in(mount_point / "a@example.com" / "new").empty()) return 12;
    if (!files_in(mount_point / "a@example.com" / "tmp").empty()) return 13;
    // Small mail still fits: the transport is not stuck after the error.
    auto small = run(*t, request({"a@example.com"}));
    return small[0].reply.code == 250 ? 0 : 14;
  });
  ASSERT_NE(rc, -1) << "could not mount a tmpfs in a private namespace";
  EXPECT_EQ(rc, 0);
}

TEST(maildir_name, is_safe_as_a_path) {
  EXPECT_EQ(maildir_name("Ann@Example.COM"), "ann@example.com");
  EXPECT_EQ(maildir_name("../../etc@x"), "_.._.._etc@x");
  EXPECT_EQ(maildir_name("a/b@x"), "a_b@x");
}

}  // namespace
}  // namespace postern::transports
