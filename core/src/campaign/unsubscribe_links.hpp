#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace postern::campaign {

/// Whom a one-click unsubscribe link names.
struct unsubscribe_target {
  std::string tenant;
  std::string email;
  std::string list;      ///< Empty: unsubscribe from everything the tenant sends.
  std::string campaign;  ///< The campaign that carried the link, for the record.
};

/// Signed one-click unsubscribe links (RFC 8058). A link carries its target in the clear and
/// an HMAC-SHA256 of it under the gateway's own key, so the server needs no table of links
/// and nobody can make a link that unsubscribes someone else. Links do not expire: an
/// unsubscribe must keep working for as long as the mail is in someone's mailbox.
///
/// Thread-safe.
class unsubscribe_links {
 public:
  /// `base_url` without a trailing slash (may be set later); `key` is secret bytes (at least 32).
  unsubscribe_links(std::string base_url, std::string key);

  /// Sets the base once the listener's address is known (a configured port of 0).
  void set_base_url(std::string base_url);

  /// "<base_url>/unsubscribe/<token>"; empty if a field holds a line break (never signed).
  std::string url(std::string_view tenant, std::string_view email, std::string_view list,
                  std::string_view campaign) const;
  /// The target of a token, if its signature holds.
  std::optional<unsubscribe_target> verify(std::string_view token) const;

 private:
  std::string mac(std::string_view payload) const;

  mutable std::mutex mutex_;
  std::string base_url_;  // under mutex_
  std::string key_;
};

}  // namespace postern::campaign
