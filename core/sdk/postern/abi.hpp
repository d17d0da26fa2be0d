#pragma once
/// @file abi.hpp
/// The SDK's ABI version. The host refuses any plugin built against another one.

#include <cstdint>

#ifndef POSTERN_SDK_ABI_VERSION
/// Bumped whenever a change to the SDK headers changes what crosses the plugin boundary
/// (a virtual function, a value type's layout, an entry point's signature). Plugins record
/// the value they were compiled with in their descriptor; the host compares it with its own.
/// 2: recipient_result::retry_after.
/// 3: campaigns: submission_view::campaign and ::contacts, policy_stage::campaign, verdict::cost,
///    policy::on_campaign_start/on_campaign_end, host::store, host::unsubscribe_url, host::route_of,
///    new_message::origin_key.
/// 4: policy::settings.
#define POSTERN_SDK_ABI_VERSION 4
#endif

namespace postern {

/// The ABI version this copy of the SDK headers describes.
inline constexpr std::uint32_t sdk_abi_version = POSTERN_SDK_ABI_VERSION;

}  // namespace postern
