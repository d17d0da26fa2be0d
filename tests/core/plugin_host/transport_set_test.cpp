#include "plugin_host/transport_set.hpp"

#include "mocks/mock_transport.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

namespace postern::plugin_host {
namespace {

using postern::testing::mock_transport;
using postern::testing::temp_dir;
using ::testing::Return;

/// A plugin directory with only the file transport of the built-in ones (the build's holds
/// them all), so that the tests do not depend on which other transports this machine can use.
std::filesystem::path file_plugin_only(const temp_dir& dir) {
  std::filesystem::create_directories(dir / "plugins");
  std::filesystem::copy_file(std::filesystem::path(POSTERN_PLUGIN_DIR) / "postern-file.so", dir / "plugins/postern-file.so");
  return dir / "plugins";
}

config::settings settings_from(const std::string& text, const std::filesystem::path& dir) {
  auto r = config::parse(text, dir / "postern.toml");
  EXPECT_TRUE(r.value) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return *r.value;
}

TEST(transport_set, picks_the_first_available_in_priority_order) {
  auto down = std::make_shared<mock_transport>();
  auto up = std::make_shared<mock_transport>();
  std::vector<transport_entry> entries(3);
  entries[0].name = "smtp";
  entries[0].impl = down;
  entries[0].probe = {false, "relay unreachable"};
  entries[1].name = "mailgun";
  entries[1].probe = {false, "no plugin"};
  entries[2].name = "file";
  entries[2].impl = up;
  entries[2].probe = {true, ""};
  transport_set set(std::move(entries));
  ASSERT_TRUE(set.pick());
  EXPECT_EQ(set.pick()->name, "file");
  EXPECT_EQ(set.pick("smtp")->name, "file") << "a preferred transport that is down is passed over";
  EXPECT_CALL(*down, stop());
  EXPECT_CALL(*up, stop());
  set.stop_all();
}

TEST(transport_set, builds_from_plugins_and_config_and_probes_each) {
  temp_dir dir;
  auto plugins = scan({file_plugin_only(dir), POSTERN_TEST_PLUGIN_DIR});
  gateway_services gateway{"gw", dir.path(), nullptr, nullptr};
  auto s = settings_from("[server]\ndata_dir = \".\"\n[transports.scripted]\nunavailable = \"no relay configured\"\n",
                         dir.path());
  transport_set set(s, plugins, gateway);
  ASSERT_EQ(set.entries().size(), 2u);
  // Built-in priority puts file before unknown names; scripted is not in the list, so it follows.
  EXPECT_EQ(set.entries()[0].name, "file");
  EXPECT_TRUE(set.entries()[0].probe.available);
  EXPECT_EQ(set.entries()[1].name, "scripted");
  EXPECT_FALSE(set.entries()[1].probe.available);
  EXPECT_EQ(set.entries()[1].probe.reason, "no relay configured");
  EXPECT_EQ(set.pick()->name, "file");
}

TEST(transport_set, configured_order_wins_and_missing_plugins_are_reported) {
  temp_dir dir;
  auto plugins = scan({file_plugin_only(dir), POSTERN_TEST_PLUGIN_DIR});
  gateway_services gateway{"gw", dir.path(), nullptr, nullptr};
  auto s = settings_from("[server]\ndata_dir = \".\"\n[delivery]\ntransports = [\"nosuch\", \"scripted\", \"file\"]\n",
                         dir.path());
  transport_set set(s, plugins, gateway);
  ASSERT_EQ(set.entries().size(), 3u);
  EXPECT_FALSE(set.entries()[0].impl);
  EXPECT_NE(set.entries()[0].probe.reason.find("no transport plugin named nosuch"), std::string::npos);
  EXPECT_EQ(set.pick()->name, "scripted");
}

TEST(transport_set, a_plugin_that_refuses_its_settings_is_unavailable_with_the_reason) {
  temp_dir dir;
  auto plugins = scan({POSTERN_BAD_PLUGIN_DIR});
  gateway_services gateway{"gw", dir.path(), nullptr, nullptr};
  auto s = settings_from("[server]\ndata_dir = \".\"\n[delivery]\ntransports = [\"refusing\"]\n", dir.path());
  transport_set set(s, plugins, gateway);
  ASSERT_EQ(set.entries().size(), 1u);
  EXPECT_FALSE(set.entries()[0].probe.available);
  EXPECT_NE(set.entries()[0].probe.reason.find("setting 'relay' is required"), std::string::npos);
  EXPECT_EQ(set.pick(), nullptr);
}

}  // namespace
}  // namespace postern::plugin_host
