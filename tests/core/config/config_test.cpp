#include "config/config.hpp"
#include "config/duration.hpp"
#include "config/toml_section.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

namespace postern::config {
namespace {

using namespace std::chrono_literals;

load_result parse_text(const std::string& text) { return parse(text, "/etc/postern/test.toml"); }

std::string all_errors(const load_result& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

TEST(config, shipped_default_is_valid) {
  auto r = load(std::filesystem::path(POSTERN_SOURCE_DIR) / "config/postern.toml");
  ASSERT_TRUE(r.value) << all_errors(r);
  EXPECT_EQ(r.value->server.data_dir, std::filesystem::path(POSTERN_SOURCE_DIR) / "var");
  EXPECT_EQ(r.value->spool.dir, std::filesystem::path(POSTERN_SOURCE_DIR) / "var/spool");
  EXPECT_EQ(r.value->delivery.transports, std::vector<std::string>{"file"});
  EXPECT_EQ(r.value->submission.local_tenant, "demo");
}

TEST(config, defaults_when_sections_are_missing) {
  auto r = parse_text("");
  ASSERT_TRUE(r.value) << all_errors(r);
  const auto& s = *r.value;
  EXPECT_EQ(s.server.data_dir, "/var/lib/postern");
  EXPECT_EQ(s.delivery.max_age, 120h);
  EXPECT_EQ(s.delivery.retry_schedule.front(), 1min);
  EXPECT_EQ(s.delivery.retry_schedule.back(), 4h);
  EXPECT_FALSE(s.server.hostname.empty());
  EXPECT_EQ(s.submission.max_message_size, 50ull << 20);
}

TEST(config, relative_paths_follow_the_file_and_data_dir) {
  auto r = parse_text("[server]\ndata_dir = \"data\"\nplugin_dirs = [\"plugins\", \"/opt/p\"]\n[spool]\ndir = \"q\"\n");
  ASSERT_TRUE(r.value) << all_errors(r);
  EXPECT_EQ(r.value->server.data_dir, "/etc/postern/data");
  EXPECT_EQ(r.value->spool.dir, "/etc/postern/data/q");
  EXPECT_EQ(r.value->server.plugin_dirs, (std::vector<std::filesystem::path>{"/etc/postern/plugins", "/opt/p"}));
  EXPECT_EQ(r.value->maildrop_dir(), "/etc/postern/data/maildrop");
}

TEST(config, syntax_error_names_file_and_line) {
  auto r = parse_text("[server]\nlog_level = \"info\"\ndata_dir = \n");
  ASSERT_FALSE(r.value);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].file, "/etc/postern/test.toml");
  EXPECT_EQ(r.errors[0].line, 3u);
}

TEST(config, wrong_type_names_key_and_line) {
  auto r = parse_text("[delivery]\n\nmax_parallel = \"many\"\n");
  ASSERT_FALSE(r.value);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].key, "delivery.max_parallel");
  EXPECT_EQ(r.errors[0].line, 3u);
  EXPECT_EQ(r.errors[0].to_string(), "/etc/postern/test.toml:3:16: delivery.max_parallel: expected an integer");
}

TEST(config, unknown_keys_and_sections_are_errors) {
  auto r = parse_text("[server]\nlog_levle = \"debug\"\n[smtpd]\nport = 25\n");
  ASSERT_FALSE(r.value);
  const auto text = all_errors(r);
  EXPECT_NE(text.find("server.log_levle: unknown setting"), std::string::npos) << text;
  EXPECT_NE(text.find("smtpd: unknown section"), std::string::npos) << text;
}

TEST(config, spool_history_is_kept_at_least_as_long_as_content) {
  auto ok = parse_text("[spool]\nkeep_content = \"1d\"\nkeep_history = \"7d\"\n");
  ASSERT_TRUE(ok.value) << all_errors(ok);
  EXPECT_EQ(ok.value->spool.keep_history, std::chrono::hours(24 * 7));
  EXPECT_EQ(parse_text("").value->spool.keep_history, std::chrono::hours(24 * 30));
  EXPECT_EQ(parse_text("[spool]\nkeep_content = \"60d\"\n").value->spool.keep_history, std::chrono::hours(24 * 60))
      << "unset, it follows a longer keep_content";
  EXPECT_FALSE(parse_text("[spool]\nkeep_content = \"0s\"\nkeep_history = \"10m\"\n").value) << "an hour at least";
  auto shorter = parse_text("[spool]\nkeep_content = \"3d\"\nkeep_history = \"1d\"\n");
  ASSERT_FALSE(shorter.value);
  EXPECT_NE(all_errors(shorter).find("spool.keep_history: must be at least keep_content"), std::string::npos)
      << all_errors(shorter);
}

TEST(config, every_problem_is_reported_at_once) {
  auto r = parse_text("[delivery]\nmax_age = \"forever\"\njitter = 2.0\nretry_schedule = [\"1m\", \"soon\"]\n"
                      "[server]\nlog_level = \"loud\"\n");
  ASSERT_FALSE(r.value);
  EXPECT_EQ(r.errors.size(), 4u) << all_errors(r);
}

TEST(config, routes_limits_and_http_are_read_and_checked) {
  auto r = parse_text(
      "[http]\nlisten = [\"127.0.0.1:8025\"]\nrate_limit = 10\n"
      "[tenants.shop]\nrate_limit = 2.5\ncompany_name = \"Shop\"\n"
      "api_keys = [{ name = \"k\", sha256 = \"" + std::string(64, 'a') + "\" }]\n"
      "[[delivery.routes]]\nname = \"campaigns\"\nstream = \"marketing\"\ntransports = [\"mailgun\", \"smtp\"]\n"
      "[[delivery.routes]]\nrecipient_domain = [\"a.example\", \"b.example\"]\ntag = \"x\"\ntransports = \"smtp\"\n"
      "[[delivery.limits]]\ndomain = \"Gmail.com\"\nconcurrency = 5\nrate = 20\n");
  ASSERT_TRUE(r.value) << all_errors(r);
  const auto& d = r.value->delivery;
  ASSERT_EQ(d.routes.size(), 2u);
  EXPECT_EQ(d.routes[0].name, "campaigns");
  EXPECT_EQ(d.routes[0].transports, (std::vector<std::string>{"mailgun", "smtp"}));
  EXPECT_EQ(d.routes[1].name, "route 2");
  EXPECT_EQ(d.routes[1].recipient_domains.size(), 2u);
  EXPECT_EQ(d.routes[1].tags, std::vector<std::string>{"x"});
  ASSERT_EQ(d.limits.size(), 1u);
  EXPECT_EQ(d.limits[0].domain, "gmail.com");
  EXPECT_EQ(d.limits[0].concurrency, 5u);
  EXPECT_EQ(r.value->http.rate_limit, 10);
  EXPECT_EQ(r.value->tenants[0].rate_limit, 2.5);
  EXPECT_EQ(r.value->tenants[0].api_keys[0].name, "k");

  auto bad = parse_text(
      "[tenants.shop]\napi_keys = [{ name = \"k\", sha256 = \"demo-key\" }]\n"
      "[[delivery.routes]]\nstream = \"bulk\"\nfoo = 1\n"
      "[[delivery.limits]]\ntransport = \"smtp\"\ndomain = \"x\"\nrate = -1\n");
  ASSERT_FALSE(bad.value);
  const auto text = all_errors(bad);
  for (const char* expected : {"api_keys: each entry needs sha256", "delivery.routes[0].stream: expected",
                               "delivery.routes[0].transports: a route needs", "delivery.routes[0].foo: unknown setting",
                               "delivery.limits[0].transport: a limit names either", "delivery.limits[0].rate: must not"})
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
}

TEST(config, plugin_sections_are_kept_for_plugins) {
  auto r = parse_text("[transports.file]\ndirectory = \"out\"\nlayout = \"eml\"\n[policies]\norder = [\"a\"]\n"
                      "[policies.a]\nlimit = 3\n");
  ASSERT_TRUE(r.value) << all_errors(r);
  toml_section section(*r.value->transports["file"].as_table(), "test");
  EXPECT_EQ(section.get_string("directory"), "out");
  EXPECT_EQ(r.value->policy_order, std::vector<std::string>{"a"});
  EXPECT_EQ(r.value->policies["a"]["limit"].value<std::int64_t>(), 3);
}

TEST(config, trusted_networks_are_checked_as_the_smtp_listener_reads_them) {
  for (const char* bad : {"10.0.0.0/8x", "10.0.0.0/33", "example.com"}) {
    auto r = parse_text(std::string("[smtp]\ntrusted_networks = [\"") + bad +
                        "\"]\ntrusted_tenant = \"t\"\n[tenants.t]\n");
    ASSERT_FALSE(r.value) << bad;
    EXPECT_EQ(r.errors[0].key, "smtp.trusted_networks") << bad;
  }
  EXPECT_TRUE(parse_text("[smtp]\ntrusted_networks = [\"::ffff:10.0.0.1\", \"127.0.0.0/8\"]\n"
                         "trusted_tenant = \"t\"\n[tenants.t]\n").value);
}

TEST(config, a_transport_section_must_be_a_table) {
  auto r = parse_text("[transports]\nfile = 3\n");
  ASSERT_FALSE(r.value);
  EXPECT_EQ(r.errors[0].key, "transports.file");
}

TEST(config, missing_file_is_an_error) {
  auto r = load("/nonexistent/postern.toml");
  ASSERT_FALSE(r.value);
  EXPECT_NE(r.errors[0].to_string().find("cannot read the file"), std::string::npos);
}

TEST(toml_section, reads_nested_keys_and_lists) {
  auto table = toml::parse("tls = { verify = true }\nhosts = [\"a\", \"b\", 3]\nport = 25\n");
  toml_section s(table, "origin");
  EXPECT_EQ(s.get_bool("tls.verify"), true);
  EXPECT_EQ(s.get_strings("hosts"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.get_int("port"), 25);
  EXPECT_FALSE(s.get_string("port"));
  EXPECT_TRUE(s.has("port"));
  EXPECT_FALSE(s.has("nothing"));
  EXPECT_EQ(s.origin(), "origin");
}

TEST(duration, parses_units_and_rejects_garbage) {
  EXPECT_EQ(parse_duration("90s"), 90s);
  EXPECT_EQ(parse_duration("1h30m"), 90min);
  EXPECT_EQ(parse_duration("5d"), 120h);
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("5 days"));
  EXPECT_FALSE(parse_duration("-5s"));
}

TEST(size, parses_units) {
  EXPECT_EQ(parse_size("1024"), 1024u);
  EXPECT_EQ(parse_size("10MiB"), 10u << 20);
  EXPECT_EQ(parse_size("512KiB"), 512u << 10);
  EXPECT_FALSE(parse_size("lots"));
  EXPECT_FALSE(parse_size("10MB"));
}

}  // namespace
}  // namespace postern::config
