#pragma once

#include "ingress/http/rate_limiter.hpp"
#include "mime/builder.hpp"
#include "spool/spool.hpp"
#include "submission/service.hpp"
#include "telemetry/registry.hpp"
#include "tenants/directory.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace postern::ingress::http {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

/// Who sent a request.
struct peer {
  std::string address;
  bool tls = false;
};

/// What the API borrows from the gateway.
struct api_services {
  submission::service& submission;
  spool::spool& spool;
  const tenants::directory& tenants;
  telemetry::registry& metrics;
  std::string hostname;
  std::chrono::milliseconds max_schedule = std::chrono::hours(72);  ///< How far ahead send_at may be.
  double rate_limit = 0;  ///< [http] rate_limit: requests per second per tenant (0: none).
  double rate_burst = 0;
  /// Prometheus lines computed at scrape time (queue depth, open connections).
  std::function<std::string()> gauges;
  /// True once the spool and the plugins are up (/readyz).
  std::function<bool()> ready;
};

/// A message an API request asks for, before it is made into MIME and submitted.
struct composed_message {
  std::string tenant;
  mime::message_spec spec;
  std::string mail_from;                   ///< Envelope sender (the From address).
  std::vector<std::string> recipients;     ///< Envelope recipients: to, cc and bcc addresses.
  std::vector<std::string> tags;
  postern::mail_stream stream = postern::mail_stream::transactional;
  std::chrono::system_clock::time_point send_at{};
  std::string origin_key;                  ///< From an Idempotency-Key.
};

/// The outcome of submitting one composed message.
struct submitted {
  bool ok = false;
  unsigned status = 500;       ///< HTTP status when !ok.
  std::string error;           ///< Why, when !ok.
  std::string queue_id;
  std::string message_id;      ///< Message-ID without angle brackets.
  std::vector<std::string> recipients;
};

/// The REST API: routes, authentication, per-tenant rate limits, and the native (/v1) and
/// Mailgun-compatible (/v3) endpoints. Every message goes through the one submission service.
///
/// Thread-safe: any number of sessions call handle() concurrently.
class api {
 public:
  explicit api(api_services services);

  /// Answers one request. Never throws for bad input: every refusal is a response.
  boost::asio::awaitable<response> handle(request& req, const peer& from);

  /// Builds the MIME text and submits it; resumes once it is durable or refused.
  boost::asio::awaitable<submitted> submit(composed_message& msg);
  /// Submits a complete RFC 5322 text with the given envelope.
  boost::asio::awaitable<submitted> submit_raw(composed_message& msg, std::string& raw);

  const api_services& services() const noexcept { return services_; }

 private:
  struct tenant_ref {
    std::string name;
    const config::tenant_settings* settings = nullptr;
  };
  std::optional<tenant_ref> authenticate(const request& req) const;
  boost::asio::awaitable<response> route_v1(request& req, const tenant_ref& tenant, std::string_view path);
  boost::asio::awaitable<response> post_message(request& req, const tenant_ref& tenant);
  boost::asio::awaitable<response> post_raw(request& req, const tenant_ref& tenant);
  response get_message(const tenant_ref& tenant, std::string_view id);
  response operations(const request& req, std::string_view path);

  api_services services_;
  rate_limiter limiter_;
};

/// {"message": text} with the status: the error shape of both APIs (Mailgun's too).
response error_response(unsigned status, std::string_view message);
response json_response(unsigned status, const boost::json::value& body);

}  // namespace postern::ingress::http
