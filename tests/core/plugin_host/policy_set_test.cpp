#include "plugin_host/policy_set.hpp"

#include "submission/header_block.hpp"
#include "submission/service.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

namespace postern::plugin_host {
namespace {

using postern::testing::temp_dir;

config::settings settings_from(const std::string& text, const std::filesystem::path& dir) {
  auto r = config::parse(text, dir / "postern.toml");
  EXPECT_TRUE(r.value) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return *r.value;
}

TEST(policy_set, a_loaded_policy_plugin_takes_part_in_submission) {
  temp_dir dir;
  auto plugins = scan({POSTERN_TEST_PLUGIN_DIR});
  gateway_services gateway{"gw", dir.path(), nullptr, nullptr};
  auto s = settings_from("[server]\ndata_dir = \".\"\n[policies]\norder = [\"stamp\"]\n[policies.stamp]\nstamp = \"seen\"\n",
                         dir.path());
  policy_set policies(s, plugins, gateway);
  spool::spool spool({dir / "spool"});
  submission::service service(spool, policies.chain(), {"gw"});

  submission::request ok;
  ok.env.mail_from = "a@example.com";
  ok.env.recipients = {{0, "keep@example.com", "", 0}, {0, "drop@example.com", "", 0}};
  ok.raw = "Subject: hi\r\n\r\nbody\r\n";
  auto accepted = service.submit_wait(ok);
  ASSERT_TRUE(accepted.accepted) << accepted.reply.text;
  auto m = spool.load(accepted.queue_id);
  ASSERT_EQ(m->recipients.size(), 1u);
  EXPECT_EQ(m->recipients[0].rcpt.address, "keep@example.com");
  EXPECT_EQ(submission::header_values(m->msg->raw, "X-Stamp"), std::vector<std::string>{"seen"});

  auto refused = ok;
  refused.raw = "Subject: hi\r\n\r\nREJECT-ME\r\n";
  auto r = service.submit_wait(refused);
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.reply.code, 550);
  EXPECT_EQ(r.reply.text, "Message refused by the stamp policy");
}

TEST(policy_set, a_configured_policy_that_is_missing_stops_start_up) {
  temp_dir dir;
  auto plugins = scan({POSTERN_TEST_PLUGIN_DIR});
  gateway_services gateway{"gw", dir.path(), nullptr, nullptr};
  auto s = settings_from("[server]\ndata_dir = \".\"\n[policies]\norder = [\"consent\"]\n", dir.path());
  try {
    policy_set policies(s, plugins, gateway);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("policy consent is listed"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace postern::plugin_host
