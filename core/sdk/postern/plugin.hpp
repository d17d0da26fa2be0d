#pragma once
/// @file plugin.hpp
/// Entry points every plugin exports, and macros that write them.
///
/// A plugin is a shared library named `postern-NAME.so` exporting three `extern "C"`,
/// `noexcept` functions through Boost.DLL aliases:
///   - `postern_plugin_descriptor`: static facts about the plugin (never fails);
///   - `postern_plugin_create`: makes the plugin object, given the host;
///   - `postern_plugin_destroy`: destroys an object made by create.
/// Objects are always destroyed by the library that made them, and the host keeps the library
/// loaded while any object from it lives. Write one of the macros below in `plugin.cpp`
/// instead of these functions by hand.

#include <postern/abi.hpp>
#include <postern/host.hpp>
#include <postern/policy.hpp>
#include <postern/transport.hpp>

#include <boost/dll/alias.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>

extern "C" {

/// Static description of a plugin. The layout starts with the ABI version so that a host can
/// read it from a plugin of any version and refuse a mismatch before touching anything else.
/// All strings are static, NUL-terminated, owned by the plugin library.
struct postern_plugin_descriptor {
  std::uint32_t abi_version;  ///< POSTERN_SDK_ABI_VERSION the plugin was built with.
  const char* kind;           ///< "transport" or "policy".
  const char* name;           ///< Unique name, [a-z0-9_]+; also its config section name.
  const char* version;        ///< The plugin's own version, e.g. "1.2.0".
  const char* summary;        ///< One line for `postern plugins`.
};

}  // extern "C"

namespace postern {

/// Signature of `postern_plugin_descriptor`.
using plugin_descriptor_fn = const postern_plugin_descriptor*() noexcept;
/// Signature of `postern_plugin_create`: returns the object (a `transport*` or `policy*` per
/// the descriptor's kind, converted to void*), or nullptr after writing a reason into `error`
/// (at most `error_size` bytes, NUL-terminated). The host reference outlives the object.
using plugin_create_fn = void*(host& services, char* error, std::size_t error_size) noexcept;
/// Signature of `postern_plugin_destroy`: destroys an object returned by create.
using plugin_destroy_fn = void(void* object) noexcept;

namespace detail {
/// Runs `make` and turns any exception into an error message for the host.
template <class Base, class Make>
void* create_guarded(Make make, char* error, std::size_t error_size) noexcept {
  try {
    return static_cast<void*>(static_cast<Base*>(make()));
  } catch (const std::exception& e) {
    std::snprintf(error, error_size, "%s", e.what());
  } catch (...) {
    std::snprintf(error, error_size, "unknown exception");
  }
  return nullptr;
}
}  // namespace detail

}  // namespace postern

/// Writes the entry points of a plugin whose class `CLASS` derives from postern::BASE and has
/// a constructor taking `postern::host&`. Throwing from the constructor (for a bad setting)
/// is fine: the message reaches the operator.
#define POSTERN_DETAIL_PLUGIN(BASE, KIND, CLASS, NAME, VERSION, SUMMARY)                      \
  namespace {                                                                                 \
  const postern_plugin_descriptor postern_detail_descriptor_value{                            \
      POSTERN_SDK_ABI_VERSION, KIND, NAME, VERSION, SUMMARY};                                 \
  extern "C" const postern_plugin_descriptor* postern_detail_descriptor() noexcept {          \
    return &postern_detail_descriptor_value;                                                  \
  }                                                                                           \
  extern "C" void* postern_detail_create(postern::host& services, char* error,                \
                                         std::size_t error_size) noexcept {                   \
    return postern::detail::create_guarded<postern::BASE>(                                    \
        [&] { return new CLASS(services); }, error, error_size);                              \
  }                                                                                           \
  extern "C" void postern_detail_destroy(void* object) noexcept {                             \
    delete static_cast<postern::BASE*>(object);                                               \
  }                                                                                           \
  }                                                                                           \
  BOOST_DLL_ALIAS(postern_detail_descriptor, postern_plugin_descriptor)                       \
  BOOST_DLL_ALIAS(postern_detail_create, postern_plugin_create)                               \
  BOOST_DLL_ALIAS(postern_detail_destroy, postern_plugin_destroy)

/// Declares a transport plugin: `POSTERN_TRANSPORT_PLUGIN(my_transport, "mine", "1.0.0", "...")`.
#define POSTERN_TRANSPORT_PLUGIN(CLASS, NAME, VERSION, SUMMARY) \
  POSTERN_DETAIL_PLUGIN(transport, "transport", CLASS, NAME, VERSION, SUMMARY)

/// Declares a policy plugin: `POSTERN_POLICY_PLUGIN(my_policy, "mine", "1.0.0", "...")`.
#define POSTERN_POLICY_PLUGIN(CLASS, NAME, VERSION, SUMMARY) \
  POSTERN_DETAIL_PLUGIN(policy, "policy", CLASS, NAME, VERSION, SUMMARY)
