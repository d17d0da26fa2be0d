#pragma once

#include <chrono>
#include <string>

namespace postern::spool {

/// A new queue id: 16 characters of Crockford base32 — 48 bits of milliseconds (so ids sort
/// by arrival) and 32 random bits. Short enough to grep logs for, unique per gateway.
std::string make_queue_id(std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// True if `text` has the shape of a queue id (for CLI argument checks).
bool looks_like_queue_id(std::string_view text);

}  // namespace postern::spool
