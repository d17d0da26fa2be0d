#pragma once

#include "ingress/http/api.hpp"

#include <boost/asio/awaitable.hpp>

#include <string>
#include <string_view>

namespace postern::ingress::http {

/// The Mailgun-compatible endpoints, so that existing Mailgun clients work unchanged:
/// POST /v3/{domain}/messages (form fields as Mailgun documents them) and
/// POST /v3/{domain}/messages.mime (a complete message in the `message` field).
/// `{domain}` must be one of the tenant's sending domains. Answers and errors use Mailgun's
/// status codes and its `{"message": …}` shape.
boost::asio::awaitable<response> handle_mailgun(api& a, request& req, const std::string& tenant,
                                                const config::tenant_settings* settings, std::string_view path);

/// Replaces %recipient.KEY% with the recipient's variables (Mailgun batch sending); unknown
/// keys become empty, as Mailgun does.
std::string substitute_recipient_variables(std::string_view text, const boost::json::object& variables);

}  // namespace postern::ingress::http
