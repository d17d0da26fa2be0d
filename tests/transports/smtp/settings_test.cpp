#include "settings.hpp"
#include "connection.hpp"

#include "mocks/config_values.hpp"
#include "mocks/mock_host.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace postern::transports::smtp {
namespace {

using postern::testing::config_values;
using postern::testing::mock_host;
using ::testing::_;
using ::testing::NiceMock;
using ::testing::Return;
using ::testing::ReturnRef;

TEST(relay_address, parses_names_literals_and_ports) {
  auto a = parse_relay_address("mail.example.com");
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.address.host, "mail.example.com");
  EXPECT_EQ(a.address.port, 25);
  EXPECT_FALSE(a.address.literal);
  EXPECT_EQ(a.address.text(), "mail.example.com:25");

  a = parse_relay_address("smtp.example.com:587");
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.address.port, 587);

  a = parse_relay_address("[192.0.2.1]:2525");
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.address.host, "192.0.2.1");
  EXPECT_EQ(a.address.port, 2525);
  EXPECT_TRUE(a.address.literal);

  a = parse_relay_address("192.0.2.1");
  ASSERT_TRUE(a.ok);
  EXPECT_TRUE(a.address.literal);
  EXPECT_EQ(a.address.port, 25);

  a = parse_relay_address("[2001:db8::1]:26");
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.address.host, "2001:db8::1");
  EXPECT_EQ(a.address.port, 26);
  EXPECT_EQ(a.address.text(), "[2001:db8::1]:26");

  a = parse_relay_address("[IPv6:2001:db8::1]");
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.address.host, "2001:db8::1");
}

TEST(relay_address, says_what_is_wrong) {
  const std::pair<const char*, const char*> bad[] = {
      {"", "empty"},
      {"host:0", "port"},
      {"host:65536", "port"},
      {"host:smtp", "port"},
      {"host:", "without a port"},
      {"[192.0.2.1", "without \"]\""},
      {"[mail.example.com]:25", "not an IP address"},
      {"[192.0.2.1]x", "not \":port\""},
      {"2001:db8::1", "brackets"},
      {"bad host!", "not a host name"},
  };
  for (const auto& [text, why] : bad) {
    const auto r = parse_relay_address(text);
    EXPECT_FALSE(r.ok) << text;
    EXPECT_NE(r.error.find(why), std::string::npos) << text << ": " << r.error;
  }
}

class settings_test : public ::testing::Test {
 protected:
  void SetUp() override {
    ON_CALL(host_, config()).WillByDefault(ReturnRef(config_));
    ON_CALL(host_, hostname()).WillByDefault(Return("gw.example"));
    ON_CALL(host_, resolve_path(_)).WillByDefault([](std::string_view p) { return "/data/" + std::string(p); });
  }

  void string(const char* key, std::string value) { config_.set(key, std::move(value)); }
  void integer(const char* key, std::int64_t value) { config_.set(key, value); }
  void boolean(const char* key, bool value) { config_.set(key, value); }
  void strings(const char* key, std::vector<std::string> value) { config_.set_list(key, std::move(value)); }

  /// The message of the std::invalid_argument that reading the settings throws, or "".
  std::string error() {
    try {
      read_settings(host_);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  }

  config_values config_{"test.toml [transports.smtp]"};
  NiceMock<mock_host> host_;
};

TEST_F(settings_test, defaults) {
  const auto s = read_settings(host_);
  EXPECT_TRUE(s.relays.empty());
  EXPECT_EQ(s.helo_name, "gw.example");
  EXPECT_EQ(s.tls, tls_mode::opportunistic);
  EXPECT_TRUE(s.tls_verify);
  EXPECT_TRUE(s.username.empty());
  EXPECT_EQ(s.max_connections, 10u);
  EXPECT_EQ(s.max_recipients, 100u);
  EXPECT_EQ(s.connect_timeout, std::chrono::seconds(30));
  EXPECT_EQ(s.helo_timeout, std::chrono::seconds(60));
  EXPECT_EQ(s.command_timeout, std::chrono::seconds(60));
  EXPECT_EQ(s.data_timeout, std::chrono::seconds(120));
  EXPECT_EQ(s.data_done_timeout, std::chrono::seconds(300));
  EXPECT_EQ(s.idle_timeout, std::chrono::seconds(30));
  EXPECT_EQ(s.probe_timeout, std::chrono::seconds(5));
}

TEST_F(settings_test, reads_every_setting) {
  strings("relays", {"a.example:587", "[192.0.2.7]"});
  string("helo_name", "out.example");
  string("username", "shop");
  string("password", "s3cret");
  boolean("tls_verify", false);
  string("tls_ca_file", "ca.pem");
  string("tls_server_name", "relay.example");
  integer("max_connections", 3);
  integer("max_recipients", 2);
  string("connect_timeout", "2s");
  integer("helo_timeout", 7);
  string("command_timeout", "1m");
  string("data_timeout", "90s");
  string("data_done_timeout", "1h30m");
  string("idle_timeout", "500ms");
  string("probe_timeout", "3s");
  const auto s = read_settings(host_);
  ASSERT_EQ(s.relays.size(), 2u);
  EXPECT_EQ(s.relays[0].text(), "a.example:587");
  EXPECT_EQ(s.relays[1].text(), "192.0.2.7:25");
  EXPECT_EQ(s.helo_name, "out.example");
  EXPECT_EQ(s.username, "shop");
  EXPECT_EQ(s.password, "s3cret");
  EXPECT_EQ(s.tls, tls_mode::required) << "credentials make TLS required by default";
  EXPECT_FALSE(s.tls_verify);
  EXPECT_EQ(s.tls_ca_file, "/data/ca.pem");
  EXPECT_EQ(s.tls_server_name, "relay.example");
  EXPECT_EQ(s.max_connections, 3u);
  EXPECT_EQ(s.max_recipients, 2u);
  EXPECT_EQ(s.connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(s.helo_timeout, std::chrono::seconds(7));
  EXPECT_EQ(s.command_timeout, std::chrono::minutes(1));
  EXPECT_EQ(s.data_timeout, std::chrono::seconds(90));
  EXPECT_EQ(s.data_done_timeout, std::chrono::minutes(90));
  EXPECT_EQ(s.idle_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(s.probe_timeout, std::chrono::seconds(3));
}

TEST_F(settings_test, a_single_relay_may_be_a_string) {
  string("relays", "smtp.example.com:2525");
  const auto s = read_settings(host_);
  ASSERT_EQ(s.relays.size(), 1u);
  EXPECT_EQ(s.relays[0].port, 2525);
}

TEST_F(settings_test, password_from_the_environment) {
  ::setenv("POSTERN_SMTP_TEST_PASSWORD", "from-env", 1);
  string("username", "shop");
  string("password_env", "POSTERN_SMTP_TEST_PASSWORD");
  EXPECT_EQ(read_settings(host_).password, "from-env");
  ::unsetenv("POSTERN_SMTP_TEST_PASSWORD");
  EXPECT_NE(error().find("password_env names the environment variable POSTERN_SMTP_TEST_PASSWORD, which is not set"),
            std::string::npos)
      << error();
}

TEST_F(settings_test, errors_name_the_section_and_the_key) {
  struct scenario {
    std::function<void()> set;
    std::string expected;
  };
  const std::vector<scenario> scenarios = {
      {[&] {
         strings("relays", {"ok.example", "bad:99999"});
       },
       "relays entry \"bad:99999\" has port"},
      {[&] { integer("relays", 25); }, "relays must be a list"},
      {[&] { string("tls", "sometimes"); },
       "tls must be \"required\", \"opportunistic\" or \"none\", not \"sometimes\""},
      {[&] { string("username", "shop"); }, "password is missing"},
      {[&] { string("password", "x"); }, "username is missing"},
      {[&] {
         string("username", "shop");
         string("password", "x");
         string("password_env", "X");
       },
       "password_env cannot be set together with password"},
      {[&] {
         string("username", "shop");
         string("password", "x");
         string("tls", "none");
       },
       "tls is \"none\" while username is set"},
      {[&] { integer("max_recipients", 0); }, "max_recipients must be between 1 and"},
      {[&] { string("max_connections", "ten"); }, "max_connections must be an integer"},
      {[&] { string("command_timeout", "soon"); }, "command_timeout must be a positive duration"},
      {[&] { integer("idle_timeout", 0); }, "idle_timeout must be a positive duration"},
      {[&] { integer("data_timeout", -5); }, "data_timeout must be a positive duration"},
      // As in the gateway's own settings: a number of seconds is an integer, not a string.
      {[&] { string("probe_timeout", "30"); }, "probe_timeout must be a positive duration"},
      {[&] { integer("helo_name", 1); }, "helo_name must be a string"},
      {[&] { string("helo_name", "two words"); }, "helo_name must be a host name"},
      {[&] { string("tls_verify", "yes"); }, "tls_verify must be true or false"},
      {[&] { string("tls_server_name", "a b"); }, "tls_server_name is not a host name"},
  };
  for (const auto& s : scenarios) {
    config_.assign({});
    s.set();
    const auto e = error();
    EXPECT_EQ(e.rfind("test.toml [transports.smtp]: ", 0), 0u) << e;
    EXPECT_NE(e.find(s.expected), std::string::npos) << "expected \"" << s.expected << "\" in: " << e;
  }
}

TEST_F(settings_test, auth_without_tls_only_when_allowed) {
  string("username", "shop");
  string("password", "x");
  string("tls", "none");
  boolean("allow_auth_without_tls", true);
  const auto s = read_settings(host_);
  EXPECT_EQ(s.tls, tls_mode::none);
  EXPECT_TRUE(s.allow_auth_without_tls);
}

TEST_F(settings_test, an_unreadable_ca_file_is_named) {
  settings s;
  s.tls_ca_file = "/nonexistent/ca.pem";
  try {
    make_client_tls(s, "test.toml [transports.smtp]");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("test.toml [transports.smtp]: tls_ca_file: cannot load"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace postern::transports::smtp
