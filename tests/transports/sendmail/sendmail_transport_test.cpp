#include "sendmail_transport.hpp"

#include "mocks/config_values.hpp"
#include "mocks/mock_host.hpp"
#include "test_support.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <sstream>
#include <thread>

namespace postern::transports {
namespace {

using namespace std::chrono_literals;
using postern::testing::config_values;
using postern::testing::mock_host;
using postern::testing::read_file;
using postern::testing::temp_dir;
using ::testing::_;
using ::testing::NiceMock;
using ::testing::Return;
using ::testing::ReturnRef;

using setting = postern::testing::config_value;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class sendmail_test : public ::testing::Test {
 protected:
  /// Writes an executable shell script in the test's directory and returns its path.
  std::string script(const std::string& name, const std::string& body) {
    const auto path = dir_ / name;
    postern::testing::write_file(path, "#!/bin/sh\n" + body + "\n");
    ::chmod(path.c_str(), 0755);
    return path.string();
  }

  std::unique_ptr<sendmail_transport> make(const std::map<std::string, setting>& settings) {
    config_.assign(settings);
    ON_CALL(host_, config()).WillByDefault(ReturnRef(config_));
    ON_CALL(host_, resolve_path(_)).WillByDefault([this](std::string_view p) {
      return p.starts_with("/") ? std::string(p) : (dir_.path() / p).string();
    });
    return std::make_unique<sendmail_transport>(host_);
  }

  static postern::delivery_request request(std::vector<std::string> rcpts, std::string sender = "shop@example.com") {
    auto msg = std::make_shared<postern::message>();
    msg->queue_id = "QUEUEID000000001";
    msg->env.mail_from = std::move(sender);
    for (std::size_t i = 0; i < rcpts.size(); ++i)
      msg->env.recipients.push_back({static_cast<std::uint32_t>(i), rcpts[i], "", 0});
    msg->raw = "From: shop@example.com\r\nSubject: hi\r\n\r\nline one\r\n.\r\nline two\r\n";
    return {msg, msg->env.recipients};
  }

  static std::vector<postern::recipient_result> run(sendmail_transport& t, postern::delivery_request r) {
    std::vector<postern::recipient_result> out;
    int calls = 0;
    t.deliver(std::move(r), [&](auto results) {
      out = std::move(results);
      ++calls;
    });
    EXPECT_EQ(calls, 1) << "done is called once, before deliver returns";
    return out;
  }

  /// A program that exits with `code` after writing two lines to stderr.
  std::string exits_with(int code) {
    return script(
        "exit" + std::to_string(code),
        "cat > /dev/null\necho \"first problem\" >&2\necho \"second line\" >&2\nexit " + std::to_string(code));
  }

  temp_dir dir_;
  config_values config_{"test.toml [transports.sendmail]"};
  NiceMock<mock_host> host_;
};

// --- the command line ----------------------------------------------------------------------

TEST(sendmail_argv, is_arguments_then_sender_then_recipients_after_a_double_dash) {
  const std::vector<postern::recipient> rcpts{{0, "ann@example.com", "", 0}, {1, "-oi@example.com", "", 0}};
  EXPECT_EQ(sendmail_argv("/usr/bin/msmtp", {"--host=127.0.0.1", "--port=2525"}, "shop@example.com", rcpts),
            (std::vector<std::string>{"/usr/bin/msmtp", "--host=127.0.0.1", "--port=2525", "-i", "-f",
                                      "shop@example.com", "--", "ann@example.com", "-oi@example.com"}));
  // The null sender, as every sendmail implementation reads it.
  EXPECT_EQ(sendmail_argv("/usr/sbin/sendmail", {}, "", {rcpts[0]}),
            (std::vector<std::string>{"/usr/sbin/sendmail", "-i", "-f", "<>", "--", "ann@example.com"}));
}

TEST_F(sendmail_test, runs_the_program_with_that_command_line_and_the_message_on_stdin) {
  const auto prog = script("recorder", "for a in \"$@\"; do echo \"$a\"; done > \"" + (dir_ / "argv").string() +
                                           "\"\ncat > \"" + (dir_ / "stdin").string() + "\"");
  auto t = make({{"binary", prog}, {"arguments", std::vector<std::string>{"--extra", "two words"}}});
  auto results = run(*t, request({"ann@example.com", "bob@example.com"}));
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 250) << r.reply.text;
    EXPECT_EQ(r.reply.text, "accepted by " + prog);
  }
  EXPECT_EQ(results[1].recipient_index, 1u);
  EXPECT_EQ(lines(read_file(dir_ / "argv")),
            (std::vector<std::string>{"--extra", "two words", "-i", "-f", "shop@example.com", "--", "ann@example.com",
                                      "bob@example.com"}));
  EXPECT_EQ(read_file(dir_ / "stdin"), "From: shop@example.com\nSubject: hi\n\nline one\n.\nline two\n")
      << "UNIX line endings by default, the lone dot kept (-i)";

  auto crlf = make({{"binary", prog}, {"line_endings", std::string("crlf")}});
  run(*crlf, request({"ann@example.com"}, ""));
  EXPECT_EQ(read_file(dir_ / "stdin"), "From: shop@example.com\r\nSubject: hi\r\n\r\nline one\r\n.\r\nline two\r\n");
  EXPECT_EQ(lines(read_file(dir_ / "argv")), (std::vector<std::string>{"-i", "-f", "<>", "--", "ann@example.com"}));
}

// --- exit codes ------------------------------------------------------------------------------

TEST_F(sendmail_test, exit_codes_map_to_replies_with_the_first_line_of_stderr) {
  struct expectation {
    int exit;
    int code;
    const char* enhanced;
    const char* name;
  };
  for (const auto& e : {expectation{75, 451, "4.3.0", "EX_TEMPFAIL"}, expectation{69, 451, "4.3.0", "EX_UNAVAILABLE"},
                        expectation{67, 550, "5.1.1", "EX_NOUSER"}, expectation{68, 550, "5.1.2", "EX_NOHOST"},
                        expectation{65, 554, "5.6.0", "EX_DATAERR"}, expectation{78, 554, "5.3.5", "EX_CONFIG"},
                        expectation{1, 554, "5.3.0", ""}}) {
    const auto prog = exits_with(e.exit);
    auto t = make({{"binary", prog}});
    const auto results = run(*t, request({"ann@example.com", "bob@example.com"}));
    ASSERT_EQ(results.size(), 2u);
    for (const auto& r : results) {
      EXPECT_EQ(r.reply.code, e.code) << e.exit << ": " << r.reply.text;
      EXPECT_EQ(r.reply.enhanced, e.enhanced) << e.exit;
      const std::string expected = prog + " exited with " + std::to_string(e.exit) +
                                   (*e.name ? std::string(" (") + e.name + ")" : "") + ": first problem";
      EXPECT_EQ(r.reply.text, expected);
    }
  }
}

TEST_F(sendmail_test, ex_unavailable_can_be_made_permanent) {
  auto t = make({{"binary", exits_with(69)}, {"unavailable_is_temporary", false}});
  const auto results = run(*t, request({"ann@example.com"}));
  EXPECT_EQ(results[0].reply.code, 554);
  EXPECT_EQ(results[0].reply.enhanced, "5.3.0");
}

TEST(map_sendmail_result, failures_to_run_or_finish_are_temporary) {
  child_result spawn_failed;
  spawn_failed.spawn_error = ENOENT;
  auto r = map_sendmail_result(spawn_failed, "/x/sendmail", true, 60s);
  EXPECT_EQ(r.code, 451);
  EXPECT_EQ(r.text, "cannot run /x/sendmail: No such file or directory");

  child_result killed;
  killed.signal = SIGSEGV;
  killed.err = "\n  segfault here  \nmore\n";
  r = map_sendmail_result(killed, "/x/sendmail", true, 60s);
  EXPECT_EQ(r.code, 451);
  EXPECT_EQ(r.text, "/x/sendmail was killed by signal 11 (SIGSEGV): segfault here");

  child_result slow;
  slow.timed_out = true;
  slow.signal = SIGTERM;
  r = map_sendmail_result(slow, "/x/sendmail", true, 1500ms);
  EXPECT_EQ(r.code, 451);
  EXPECT_EQ(r.enhanced, "4.4.1");
  EXPECT_EQ(r.text, "/x/sendmail did not finish within 1500ms and was killed");

  child_result half_read;
  half_read.exited = true;
  half_read.exit_code = 0;
  half_read.input_error = EPIPE;
  half_read.input_written = 100;
  r = map_sendmail_result(half_read, "/x/sendmail", true, 60s);
  EXPECT_EQ(r.code, 451) << "exit 0 without the whole message is no delivery";

  child_result quiet_stderr;
  quiet_stderr.exited = true;
  quiet_stderr.exit_code = 75;
  quiet_stderr.out = "said on stdout\n";
  r = map_sendmail_result(quiet_stderr, "/x/sendmail", true, 60s);
  EXPECT_EQ(r.text, "/x/sendmail exited with 75 (EX_TEMPFAIL): said on stdout");
}

TEST_F(sendmail_test, a_program_past_its_timeout_is_killed_and_deferred) {
  auto t = make({{"binary", script("slow", "sleep 30")}, {"timeout", std::string("500ms")}});
  const auto started = std::chrono::steady_clock::now();
  const auto results = run(*t, request({"ann@example.com"}));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 451);
  EXPECT_NE(results[0].reply.text.find("did not finish within 500ms and was killed"), std::string::npos)
      << results[0].reply.text;
}

TEST_F(sendmail_test, a_large_message_reaches_a_program_that_talks_a_lot_while_reading) {
  const auto got = dir_ / "stdin";
  auto t = make({{"binary", script("noisy", "head -c 200000 /dev/zero | tr '\\0' e >&2\ntee \"" + got.string() +
                                                "\" >&2\necho 'done' >&2\nexit 75")}});
  auto req = request({"ann@example.com"});
  auto msg = std::make_shared<postern::message>(*req.msg);
  msg->raw = "Subject: big\r\n\r\n" + std::string(3 * 1024 * 1024, 'x') + "\r\n";
  req.msg = msg;
  const auto results = run(*t, req);
  EXPECT_EQ(std::filesystem::file_size(got), 3u * 1024 * 1024 + std::string("Subject: big\n\n\n").size());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 451);
  // The first line of what it wrote, bounded.
  EXPECT_LT(results[0].reply.text.size(), 500u);
  EXPECT_NE(results[0].reply.text.find("eeee"), std::string::npos);
}

TEST_F(sendmail_test, at_most_max_processes_run_at_once) {
  const auto runs = dir_ / "runs";
  std::filesystem::create_directories(runs);
  const auto prog = script("counted", "cat > /dev/null\nmkdir \"" + runs.string() + "/$$\"\nls \"" + runs.string() +
                                          "\" | wc -l >> \"" + (dir_ / "counts").string() + "\"\nsleep 0.3\nrmdir \"" +
                                          runs.string() + "/$$\"");
  auto t = make({{"binary", prog}, {"max_processes", std::int64_t{2}}});
  std::vector<std::thread> workers;
  std::atomic<int> delivered{0};
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) {
    workers.emplace_back([&] {
      for (const auto& r : run(*t, request({"ann@example.com"}))) delivered += r.reply.code == 250;
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(delivered.load(), 6);
  int most = 0;
  for (const auto& line : lines(read_file(dir_ / "counts"))) most = std::max(most, std::stoi(line));
  EXPECT_EQ(most, 2) << read_file(dir_ / "counts");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 900ms) << "six runs of 0.3 s, two at a time";
}

TEST_F(sendmail_test, stop_kills_running_programs_and_refuses_new_attempts) {
  auto t = make({{"binary", script("slow", "sleep 30")}});
  auto future = std::async(std::launch::async, [&] { return run(*t, request({"ann@example.com"})); });
  std::this_thread::sleep_for(300ms);
  const auto started = std::chrono::steady_clock::now();
  t->stop();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  const auto results = future.get();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 451);
  EXPECT_EQ(results[0].reply.enhanced, "4.3.2");
  const auto later = run(*t, request({"bob@example.com"}));
  EXPECT_EQ(later[0].reply.code, 451);
}

// --- probe and settings ------------------------------------------------------------------------

TEST_F(sendmail_test, probe_names_the_program_or_why_there_is_none) {
  const auto prog = script("mysendmail", "exit 0");
  auto found = make({{"binary", prog}, {"arguments", std::vector<std::string>{"-C", "/secret/file"}}})->probe();
  EXPECT_TRUE(found.available);
  EXPECT_EQ(found.reason, "runs " + prog + " with 2 extra arguments");

  auto missing = make({{"binary", (dir_ / "nothere").string()}})->probe();
  EXPECT_FALSE(missing.available);
  EXPECT_NE(missing.reason.find("nothere: No such file or directory"), std::string::npos) << missing.reason;

  postern::testing::write_file(dir_ / "plain", "text");
  ::chmod((dir_ / "plain").c_str(), 0644);
  auto not_executable = make({{"binary", (dir_ / "plain").string()}})->probe();
  EXPECT_FALSE(not_executable.available);
  EXPECT_NE(not_executable.reason.find("not executable"), std::string::npos) << not_executable.reason;

  // A relative path is taken from the data directory.
  auto relative = make({{"binary", std::string("./mysendmail")}})->probe();
  EXPECT_TRUE(relative.available) << relative.reason;

  // Without a program, an attempt is deferred, naming what was looked for.
  auto t = make({{"binary", (dir_ / "nothere").string()}});
  const auto results = run(*t, request({"ann@example.com"}));
  EXPECT_EQ(results[0].reply.code, 451);
}

TEST(find_sendmail, looks_names_up_in_path_and_lists_each_place_when_nothing_is_found) {
  temp_dir dir;
  postern::testing::write_file(dir / "bin" / "fake-sendmail", "#!/bin/sh\n");
  ::chmod((dir / "bin" / "fake-sendmail").c_str(), 0755);
  const std::string path = "/nonexistent:" + (dir / "bin").string();
  EXPECT_EQ(find_sendmail("fake-sendmail", path).path, (dir / "bin" / "fake-sendmail").string());
  const auto none = find_sendmail("nosuch-sendmail", path);
  EXPECT_EQ(none.path, "");
  EXPECT_EQ(none.reason, "binary nosuch-sendmail: not found in PATH (" + path + ")");
  // The default candidates, in order; msmtp from PATH when neither sendmail exists.
  const auto defaults = find_sendmail("", path);
  if (defaults.path.empty()) {
    EXPECT_NE(defaults.reason.find("/usr/sbin/sendmail"), std::string::npos) << defaults.reason;
    EXPECT_NE(defaults.reason.find("/usr/lib/sendmail"), std::string::npos) << defaults.reason;
    EXPECT_NE(defaults.reason.find("msmtp: not found in PATH"), std::string::npos) << defaults.reason;
  } else {
    EXPECT_TRUE(defaults.path == "/usr/sbin/sendmail" || defaults.path == "/usr/lib/sendmail") << defaults.path;
  }
}

TEST_F(sendmail_test, bad_values_are_refused_naming_the_section) {
  const std::vector<std::map<std::string, setting>> bad = {
      {{"binary", std::string("")}},         {{"binary", std::int64_t{1}}},
      {{"timeout", std::string("forever")}}, {{"timeout", std::int64_t{-1}}},
      {{"max_processes", std::int64_t{0}}},  {{"unavailable_is_temporary", std::string("yes")}},
      {{"line_endings", std::string("cr")}},
  };
  for (const auto& settings : bad) {
    try {
      make(settings);
      ADD_FAILURE() << "accepted " << settings.begin()->first;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("test.toml [transports.sendmail]: "), std::string::npos) << e.what();
    }
  }
  const auto t = make({{"timeout", std::string("2m")}, {"max_processes", std::int64_t{3}}});
  EXPECT_EQ(t->settings().timeout, 120s);
  EXPECT_EQ(t->settings().max_processes, 3u);
  EXPECT_TRUE(t->settings().unavailable_is_temporary);
  EXPECT_EQ(make({{"timeout", std::int64_t{7}}})->settings().timeout, 7s);
}

}  // namespace
}  // namespace postern::transports
