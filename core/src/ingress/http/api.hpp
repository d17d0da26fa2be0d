#pragma once

#include "ingress/http/rate_limiter.hpp"
#include "mime/builder.hpp"
#include "campaign/campaign_service.hpp"
#include "campaign/unsubscribe_links.hpp"
#include "contacts/contact_store.hpp"
#include "plugin_host/transport_set.hpp"
#include "spool/spool.hpp"
#include "store/state_store.hpp"
#include "templates/template_text.hpp"
#include "submission/service.hpp"
#include "telemetry/registry.hpp"
#include "tenants/directory.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <variant>
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
  store::state_store& state;
  contacts::contact_store& contacts;
  const plugin_host::transport_set& transports;  ///< For test sends.
  std::string hostname;
  std::chrono::milliseconds max_schedule = std::chrono::hours(72);  ///< How far ahead send_at may be.
  std::size_t max_recipients = 1000;  ///< Per request (a message, or a batch); [smtp] max_recipients.
  double rate_limit = 0;  ///< [http] rate_limit: requests per second per tenant (0: none).
  double rate_burst = 0;
  /// Prometheus lines computed at scrape time (queue depth, open connections).
  std::function<std::string()> gauges;
  /// True once the spool and the plugins are up (/readyz).
  std::function<bool()> ready;
  campaign::campaign_service* campaigns = nullptr;   ///< Campaigns and saved audiences; null: none.
  campaign::campaign_store* campaign_data = nullptr;
  const campaign::unsubscribe_links* unsubscribe = nullptr;  ///< Serves /unsubscribe/; null: none.
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

/// A native message request before templates are applied: one message, or one per recipient
/// when per-recipient variables are given.
struct native_request {
  composed_message msg;
  std::string template_name;
  bool render = false;  ///< Subject and bodies are templates (a template, or variables given).
  templates::variables variables;
  std::map<std::string, templates::variables> per_recipient;  ///< By address.
};

/// What a native message is read for: a message to its own recipients, or a campaign's
/// message (no recipients: they come from the audience).
enum class message_use { single, campaign };
/// Reads the native message fields; false with `error` naming the first bad field.
bool read_native_message(const boost::json::object& body, native_request& request, std::string& error,
                         message_use use);

/// The outcome of submitting one composed message.
struct submitted {
  bool ok = false;
  unsigned status = 500;       ///< HTTP status when !ok.
  std::string error;           ///< Why, when !ok.
  std::string queue_id;
  bool suppressed = false;     ///< Accepted, but policies dropped every recipient: nothing queued.
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
  ~api();

  /// What may be known before a request's body is read: a refusal (no or a wrong key, over the
  /// tenant's rate), or the body size this endpoint accepts. Takes a rate-limit token.
  struct admission {
    std::optional<response> refusal;
    std::uint64_t body_limit = 0;
  };
  admission admit(const request& header, std::uint64_t message_body_limit);

  /// Answers one admitted request. Never throws: every refusal, and an unexpected error, is
  /// a response (the latter a 500 or 503, logged).
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
  boost::asio::awaitable<response> dispatch(request& req, const tenant_ref& tenant, std::string_view path);
  boost::asio::awaitable<response> route_v1(request& req, const tenant_ref& tenant, std::string_view path);
  /// The endpoints that only read or write the databases; runs on blocking_.
  response route_stored(request& req, const tenant_ref& tenant, std::string_view path);
  boost::asio::awaitable<response> post_message(request& req, const tenant_ref& tenant);
  boost::asio::awaitable<response> post_raw(request& req, const tenant_ref& tenant);
  response get_message(const tenant_ref& tenant, std::string_view id);
  boost::asio::awaitable<response> resend(request& req, const tenant_ref& tenant, std::string_view id);
  boost::asio::awaitable<response> test_send(request& req, const tenant_ref& tenant);
  response events(const request& req, const tenant_ref& tenant);
  response webhooks_route(request& req, const tenant_ref& tenant);
  // Contacts and activity (contacts_api.cpp).
  response contacts_route(request& req, const tenant_ref& tenant, std::string_view rest);
  response activity_route(request& req, const tenant_ref& tenant);
  response audience_preview(request& req, const tenant_ref& tenant);
  // Campaigns, saved audiences and unsubscribe links (campaigns_api.cpp).
  response campaigns_route(request& req, const tenant_ref& tenant, std::string_view rest);
  response audiences_route(request& req, const tenant_ref& tenant, std::string_view name);
  response unsubscribe_route(request& req, std::string_view token);
  response campaign_recipients(request& req, const tenant_ref& tenant, const std::string& id);
  response campaign_test(request& req, const tenant_ref& tenant, const campaign::campaign_record& record);
  /// A campaign definition from a request body, or the response refusing it.
  std::variant<campaign::definition, response> read_campaign(const boost::json::object& body, const tenant_ref& tenant);
  response operations(const request& req, std::string_view path);

  // Templates (templates_api.cpp).
  response templates_route(request& req, const tenant_ref& tenant, std::string_view name);
  std::optional<templates::message_template> find_template(const tenant_ref& tenant, std::string_view name);
  /// The messages a native request makes (several with per-recipient variables), or the
  /// response refusing it (unknown template, render error).
  std::variant<std::vector<composed_message>, response> expand(native_request& req, const tenant_ref& tenant);

  api_services services_;
  rate_limiter limiter_;
  boost::asio::thread_pool test_sends_{2};  ///< Runs transports for /v1/test-send.
  boost::asio::thread_pool blocking_{2};    ///< Database work of requests, off the I/O threads.
};

/// True when the tenant may send from this address (its sending domains, when it has any).
bool sends_for(const config::tenant_settings* tenant, std::string_view address);

/// {"message": text} with the status: the error shape of both APIs (Mailgun's too).
response error_response(unsigned status, std::string_view message);
response json_response(unsigned status, const boost::json::value& body);

}  // namespace postern::ingress::http
