#pragma once

#include <postern/plugin.hpp>

#include <boost/dll/shared_library.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace postern::plugin_host {

/// A loaded plugin library. Shared by every object it created: the library is unloaded only
/// when the last of them is destroyed.
class library : public std::enable_shared_from_this<library> {
 public:
  library(boost::dll::shared_library lib, const postern_plugin_descriptor& descriptor,
          postern::plugin_create_fn* create, postern::plugin_destroy_fn* destroy);
  const postern_plugin_descriptor& descriptor() const noexcept { return descriptor_; }

  /// Creates the plugin's object. Throws std::runtime_error with the plugin's reason on failure.
  std::shared_ptr<postern::transport> create_transport(postern::host& services);
  std::shared_ptr<postern::policy> create_policy(postern::host& services);

 private:
  void* create(postern::host& services);
  template <class Interface>
  std::shared_ptr<Interface> create_as(postern::host& services, std::string_view kind);

  boost::dll::shared_library lib_;
  const postern_plugin_descriptor& descriptor_;
  postern::plugin_create_fn* create_;
  postern::plugin_destroy_fn* destroy_;
};

/// What the loader found in one file.
struct plugin_record {
  std::filesystem::path file;
  std::string name, kind, version, summary;
  std::uint32_t abi_version = 0;
  std::shared_ptr<library> lib;  ///< Null when the file could not be used.
  std::string error;             ///< Why not, when lib is null.
};

/// Scans directories for `postern-*.so`, in the given order and by file name within each.
/// Never throws for a bad file: a corrupt or foreign library, a missing entry point, a wrong
/// ABI version or a duplicate name gives a record with an error and no library.
std::vector<plugin_record> scan(const std::vector<std::filesystem::path>& directories);

/// Loads one file (see scan).
plugin_record load(const std::filesystem::path& file);

}  // namespace postern::plugin_host
