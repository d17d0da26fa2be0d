#include "plugin_host/loader.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

namespace postern::plugin_host {
namespace {
constexpr const char* descriptor_symbol = "postern_plugin_descriptor";
constexpr const char* create_symbol = "postern_plugin_create";
constexpr const char* destroy_symbol = "postern_plugin_destroy";

bool valid_kind(std::string_view kind) { return kind == "transport" || kind == "policy"; }

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}
}  // namespace

library::library(boost::dll::shared_library lib, const postern_plugin_descriptor& descriptor,
                 postern::plugin_create_fn* create, postern::plugin_destroy_fn* destroy)
    : lib_(std::move(lib)), descriptor_(descriptor), create_(create), destroy_(destroy) {}

void* library::create(postern::host& services) {
  char error[512] = {};
  void* object = create_(services, error, sizeof error);
  if (!object)
    throw std::runtime_error(std::string("plugin ") + descriptor_.name + " refused to start: " +
                             (error[0] ? error : "no reason given"));
  return object;
}

template <class Interface>
std::shared_ptr<Interface> library::create_as(postern::host& services, std::string_view kind) {
  if (std::string_view(descriptor_.kind) != kind)
    throw std::runtime_error(std::string("plugin ") + descriptor_.name + " is not a " + std::string(kind));
  // The plugin returned an Interface* converted to void*; converting back is exact.
  auto* object = static_cast<Interface*>(create(services));
  // The deleter owns a reference to the library: it stays mapped while the object lives, and
  // the object is destroyed by the code that made it.
  return std::shared_ptr<Interface>(object, [self = shared_from_this(), destroy = destroy_](Interface* o) {
    destroy(static_cast<void*>(o));
  });
}

std::shared_ptr<postern::transport> library::create_transport(postern::host& services) {
  return create_as<postern::transport>(services, "transport");
}

std::shared_ptr<postern::policy> library::create_policy(postern::host& services) {
  return create_as<postern::policy>(services, "policy");
}

plugin_record load(const std::filesystem::path& file) {
  plugin_record record;
  record.file = file;
  boost::dll::shared_library lib;
  try {
    // RTLD_LOCAL: plugins' symbols stay out of each other's way.
    lib.load(file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    record.error = std::string("cannot load: ") + e.what();
    return record;
  }
  if (!lib.has(descriptor_symbol) || !lib.has(create_symbol) || !lib.has(destroy_symbol)) {
    record.error = "not a postern plugin: no postern_plugin_descriptor/create/destroy entry points";
    return record;
  }
  const postern_plugin_descriptor* d = lib.get_alias<postern::plugin_descriptor_fn>(descriptor_symbol)();
  if (!d) {
    record.error = "the plugin's descriptor is missing";
    return record;
  }
  record.abi_version = d->abi_version;
  if (d->abi_version != postern::sdk_abi_version) {
    // Nothing past the version is read: the rest of the layout may differ.
    record.error = "built for SDK ABI version " + std::to_string(d->abi_version) + ", this postern has ABI version " +
                   std::to_string(postern::sdk_abi_version) + "; rebuild the plugin against this postern's SDK";
    return record;
  }
  record.name = d->name ? d->name : "";
  record.kind = d->kind ? d->kind : "";
  record.version = d->version ? d->version : "";
  record.summary = d->summary ? d->summary : "";
  if (!valid_name(record.name) || !valid_kind(record.kind)) {
    record.error = "invalid descriptor: needs a name of [a-z0-9_] and kind \"transport\" or \"policy\"";
    return record;
  }
  auto& create = lib.get_alias<postern::plugin_create_fn>(create_symbol);
  auto& destroy = lib.get_alias<postern::plugin_destroy_fn>(destroy_symbol);
  record.lib = std::make_shared<library>(std::move(lib), *d, &create, &destroy);
  return record;
}

std::vector<plugin_record> scan(const std::vector<std::filesystem::path>& directories) {
  std::vector<plugin_record> records;
  std::map<std::string, std::filesystem::path> seen;
  for (const auto& dir : directories) {
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
      const auto name = it->path().filename().string();
      if (name.starts_with("postern-") && name.ends_with(".so")) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      auto record = load(file);
      if (record.lib) {
        if (auto [it, inserted] = seen.emplace(record.name, file); !inserted) {
          record.error = "another plugin named " + record.name + " was found first, in " + it->second.string();
          record.lib.reset();
        }
      }
      records.push_back(std::move(record));
    }
  }
  return records;
}

}  // namespace postern::plugin_host
