#include "plugin_host/loader.hpp"

#include "plugin_host/plugin_services.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

namespace postern::plugin_host {
namespace {

using postern::testing::temp_dir;

const std::filesystem::path plugin_dir = POSTERN_PLUGIN_DIR;
const std::filesystem::path test_plugin_dir = POSTERN_TEST_PLUGIN_DIR;
const std::filesystem::path bad_plugin_dir = POSTERN_BAD_PLUGIN_DIR;

struct services_fixture {
  temp_dir dir;
  gateway_services gateway{"gw.example", dir.path(), nullptr, nullptr};
  std::unique_ptr<plugin_services> make(const std::string& name, toml::table section = {}) {
    return std::make_unique<plugin_services>(name, config::toml_section(std::move(section), "test"), gateway);
  }
};

TEST(loader, loads_a_built_plugin_and_reads_its_descriptor) {
  auto r = load(plugin_dir / "postern-file.so");
  ASSERT_TRUE(r.lib) << r.error;
  EXPECT_EQ(r.name, "file");
  EXPECT_EQ(r.kind, "transport");
  EXPECT_EQ(r.version, "1.0.0");
  EXPECT_EQ(r.abi_version, postern::sdk_abi_version);
  EXPECT_FALSE(r.summary.empty());
}

TEST(loader, a_created_object_keeps_its_library_loaded) {
  services_fixture f;
  auto services = f.make("scripted");
  std::shared_ptr<postern::transport> transport;
  {
    auto r = load(test_plugin_dir / "postern-scripted.so");
    ASSERT_TRUE(r.lib) << r.error;
    transport = r.lib->create_transport(*services);
  }  // the record and its reference to the library are gone
  // Calling into the plugin still works: the object's deleter holds the library.
  auto probe = transport->probe();
  EXPECT_TRUE(probe.available);
  auto msg = std::make_shared<postern::message>();
  msg->queue_id = "Q";
  msg->raw = "x";
  std::vector<postern::recipient_result> results;
  transport->deliver({msg, {{0, "fail@example.com", "", 0}}}, [&](auto r) { results = std::move(r); });
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 550);
  transport.reset();  // destroyed by the plugin's own destroy, then the library unloads
}

TEST(loader, refuses_another_abi_version_naming_both) {
  auto r = load(bad_plugin_dir / "postern-wrong_abi.so");
  EXPECT_FALSE(r.lib);
  EXPECT_EQ(r.abi_version, 999u);
  EXPECT_NE(r.error.find("ABI version 999"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("ABI version " + std::to_string(postern::sdk_abi_version)), std::string::npos) << r.error;
}

TEST(loader, reports_a_library_that_is_not_a_plugin) {
  auto r = load(bad_plugin_dir / "postern-foreign.so");
  EXPECT_FALSE(r.lib);
  EXPECT_NE(r.error.find("not a postern plugin"), std::string::npos) << r.error;
}

TEST(loader, reports_a_corrupt_file) {
  temp_dir dir;
  postern::testing::write_file(dir / "postern-corrupt.so", std::string("\x7f" "ELF garbage that is not a library", 36));
  auto r = load(dir / "postern-corrupt.so");
  EXPECT_FALSE(r.lib);
  EXPECT_NE(r.error.find("cannot load"), std::string::npos) << r.error;
}

TEST(loader, a_plugin_that_refuses_to_start_says_why) {
  services_fixture f;
  auto services = f.make("refusing");
  auto r = load(bad_plugin_dir / "postern-refusing.so");
  ASSERT_TRUE(r.lib) << r.error;
  try {
    r.lib->create_transport(*services);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("setting 'relay' is required"), std::string::npos) << e.what();
  }
  EXPECT_THROW(r.lib->create_policy(*services), std::runtime_error) << "a transport is not a policy";
}

TEST(loader, scan_reports_bad_files_and_keeps_the_good_ones) {
  temp_dir dir;
  for (const auto& name : {"postern-foreign.so", "postern-wrong_abi.so"})
    std::filesystem::copy_file(bad_plugin_dir / name, dir / name);
  postern::testing::write_file(dir / "postern-corrupt.so", "not a library at all");
  postern::testing::write_file(dir / "README.txt", "ignored: not postern-*.so");
  std::filesystem::copy_file(plugin_dir / "postern-file.so", dir / "postern-file-copy.so");
  // The built-in directory holds every transport; only the file transport is wanted here.
  temp_dir builtin;
  std::filesystem::copy_file(plugin_dir / "postern-file.so", builtin / "postern-file.so");
  auto records = scan({builtin.path(), dir.path()});
  ASSERT_EQ(records.size(), 5u);
  EXPECT_TRUE(records[0].lib);
  EXPECT_EQ(records[0].name, "file");
  int bad = 0;
  for (const auto& r : records) bad += r.lib ? 0 : 1;
  EXPECT_EQ(bad, 4);
  const auto& duplicate = records[2];  // postern-file-copy.so sorts after postern-corrupt.so
  EXPECT_EQ(duplicate.file.filename(), "postern-file-copy.so");
  EXPECT_NE(duplicate.error.find("was found first"), std::string::npos) << duplicate.error;
}

TEST(loader, a_missing_directory_is_not_an_error) {
  EXPECT_TRUE(scan({"/nonexistent/plugins"}).empty());
}

}  // namespace
}  // namespace postern::plugin_host
