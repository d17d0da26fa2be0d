#include "tenants/directory.hpp"

#include <sodium.h>

#include <stdexcept>

namespace postern::tenants {
namespace {

void init_sodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
}

}  // namespace

directory::directory(std::vector<config::tenant_settings> tenants) : tenants_(std::move(tenants)) {
  init_sodium();
  randombytes_buf(cache_key_, sizeof cache_key_);
  for (const auto& t : tenants_) {
    for (const auto& u : t.smtp_users) users_[u.user] = {t.name, u.password_hash};
    for (const auto& k : t.api_keys) api_keys_[k.sha256_hex] = {t.name, k.name};
  }
}

std::optional<directory::api_identity> directory::authenticate_api(std::string_view key) const {
  if (key.empty()) return std::nullopt;
  const auto found = api_keys_.find(sha256_hex(key));
  if (found == api_keys_.end()) return std::nullopt;
  return found->second;
}

std::string sha256_hex(std::string_view text) {
  init_sodium();
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, out, sizeof out);
  return hex;
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string hex(bytes * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  hex.pop_back();  // the terminating NUL
  return hex;
}

std::string new_api_key() {
  init_sodium();
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  char text[sodium_base64_ENCODED_LEN(sizeof bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(text, sizeof text, bytes, sizeof bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return std::string("pk_") + text;
}

const config::tenant_settings* directory::find(std::string_view name) const {
  for (const auto& t : tenants_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string directory::digest(std::string_view user, std::string_view password) const {
  unsigned char out[32];
  crypto_generichash_state state;
  crypto_generichash_init(&state, cache_key_, sizeof cache_key_, sizeof out);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(user.data()), user.size());
  const unsigned char separator = 0;
  crypto_generichash_update(&state, &separator, 1);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(password.data()), password.size());
  crypto_generichash_final(&state, out, sizeof out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

std::optional<std::string> directory::authenticate_smtp(std::string_view user, std::string_view password) const {
  const auto found = users_.find(user);
  if (found == users_.end()) {
    // Spend the same effort as a real check, so timing does not tell which users exist. The
    // decoy hash is made on first need, not at start-up (it costs an Argon2 run).
    std::call_once(decoy_once_, [this] { decoy_ = hash_password("decoy password"); });
    [[maybe_unused]] const int ignored = crypto_pwhash_str_verify(decoy_.c_str(), password.data(), password.size());
    return std::nullopt;
  }
  const std::string d = digest(user, password);
  {
    std::lock_guard lock(mutex_);
    auto cached = verified_.find(user);
    if (cached != verified_.end() && sodium_memcmp(cached->second.data(), d.data(), d.size()) == 0)
      return found->second.first;
  }
  const auto& hash = found->second.second;
  ++slow_checks_;
  if (crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) != 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  verified_[std::string(user)] = d;
  return found->second.first;
}

std::string hash_password(std::string_view password) {
  init_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    throw std::runtime_error("out of memory while hashing a password");
  return out;
}

}  // namespace postern::tenants
