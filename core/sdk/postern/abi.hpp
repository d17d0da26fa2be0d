#pragma once
/// @file abi.hpp
/// The SDK's ABI version. The host refuses any plugin built against another one.

#include <cstdint>

#ifndef POSTERN_SDK_ABI_VERSION
/// Bumped whenever a change to the SDK headers changes what crosses the plugin boundary
/// (a virtual function, a value type's layout, an entry point's signature). Plugins record
/// the value they were compiled with in their descriptor; the host compares it with its own.
/// 2: recipient_result::retry_after.
#define POSTERN_SDK_ABI_VERSION 2
#endif

namespace postern {

/// The ABI version this copy of the SDK headers describes.
inline constexpr std::uint32_t sdk_abi_version = POSTERN_SDK_ABI_VERSION;

}  // namespace postern
