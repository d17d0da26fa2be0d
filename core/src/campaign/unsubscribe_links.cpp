#include "campaign/unsubscribe_links.hpp"

#include <sodium.h>

#include <vector>

namespace postern::campaign {
namespace {

constexpr auto variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

std::string to_base64(std::string_view bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), variant);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::optional<std::string> from_base64(std::string_view text) {
  std::string out(text.size(), '\0');
  std::size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &length, nullptr, variant) != 0)
    return std::nullopt;
  out.resize(length);
  return out;
}

}  // namespace

unsubscribe_links::unsubscribe_links(std::string base_url, std::string key)
    : base_url_(std::move(base_url)), key_(std::move(key)) {}

void unsubscribe_links::set_base_url(std::string base_url) {
  std::lock_guard lock(mutex_);
  base_url_ = std::move(base_url);
}

std::string unsubscribe_links::mac(std::string_view payload) const {
  unsigned char out[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key_.data()), key_.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(payload.data()), payload.size());
  crypto_auth_hmacsha256_final(&state, out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

std::string unsubscribe_links::url(std::string_view tenant, std::string_view email, std::string_view list,
                                   std::string_view campaign) const {
  std::string payload;
  for (auto field : {tenant, email, list, campaign}) {
    if (field.find('\n') != std::string_view::npos) return {};
    payload += std::string(field) + "\n";
  }
  std::string base;
  {
    std::lock_guard lock(mutex_);
    base = base_url_;
  }
  if (base.empty()) return {};
  return base + "/unsubscribe/" + to_base64(payload) + "." + to_base64(mac(payload));
}

std::optional<unsubscribe_target> unsubscribe_links::verify(std::string_view token) const {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto payload = from_base64(token.substr(0, dot));
  const auto signature = from_base64(token.substr(dot + 1));
  if (!payload || !signature || signature->size() != crypto_auth_hmacsha256_BYTES) return std::nullopt;
  if (sodium_memcmp(signature->data(), mac(*payload).data(), signature->size()) != 0) return std::nullopt;
  std::vector<std::string> fields;
  for (std::size_t start = 0; start < payload->size();) {
    const auto end = payload->find('\n', start);
    if (end == std::string::npos) return std::nullopt;
    fields.push_back(payload->substr(start, end - start));
    start = end + 1;
  }
  if (fields.size() != 4) return std::nullopt;
  return unsubscribe_target{fields[0], fields[1], fields[2], fields[3]};
}

}  // namespace postern::campaign
