#pragma once

#include "config/config.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace postern::tenants {

/// The tenants postern sends for, and their credentials. Passwords are checked against
/// Argon2id hashes (libsodium). A successful check is remembered as a keyed BLAKE2b digest
/// of user and password under a per-process random key, so an app that logs in on every
/// connection costs one Argon2 verification, not one per connection; no password is kept.
///
/// Thread-safe.
class directory {
 public:
  explicit directory(std::vector<config::tenant_settings> tenants);

  const config::tenant_settings* find(std::string_view name) const;
  /// The tenant that owns this SMTP login, if the password matches. Slow (Argon2id) unless
  /// the same credentials succeeded before: call it off the I/O threads.
  std::optional<std::string> authenticate_smtp(std::string_view user, std::string_view password) const;
  /// The tenant and key name that own this REST API key, if any. Fast (one SHA-256): keys are
  /// long random tokens, not passwords. Callable on the I/O threads.
  struct api_identity {
    std::string tenant;
    std::string key_name;
  };
  std::optional<api_identity> authenticate_api(std::string_view key) const;
  /// How many Argon2 verifications ran (the cache spares the others); for metrics and tests.
  std::size_t slow_checks() const noexcept { return slow_checks_.load(); }

 private:
  std::string digest(std::string_view user, std::string_view password) const;

  std::vector<config::tenant_settings> tenants_;
  std::map<std::string, std::pair<std::string, std::string>, std::less<>> users_;  // user -> (tenant, hash)
  std::map<std::string, api_identity, std::less<>> api_keys_;  // SHA-256 hex -> owner
  unsigned char cache_key_[32];
  mutable std::once_flag decoy_once_;
  mutable std::string decoy_;  // checked for unknown users, so their timing matches a real check
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::string, std::less<>> verified_;  // user -> digest
  mutable std::atomic<std::size_t> slow_checks_{0};
};

/// Lower-case hex of the SHA-256 of `text` (how API keys are kept in the configuration).
std::string sha256_hex(std::string_view text);
/// Lower-case hex of `bytes` random bytes from libsodium (ids, tokens, secret keys).
std::string random_hex(std::size_t bytes);
/// A new random API key ("pk_" and 43 base64url characters: 256 bits).
std::string new_api_key();

/// An Argon2id hash of `password` in libsodium's string format ("$argon2id$v=19$…").
std::string hash_password(std::string_view password);

}  // namespace postern::tenants
