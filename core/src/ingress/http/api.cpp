#include "ingress/http/api.hpp"

#include "ingress/http/json_reader.hpp"
#include "ingress/http/mailgun_api.hpp"
#include "ingress/run_blocking.hpp"
#include "logging/log.hpp"
#include "mime/address.hpp"
#include "spool/sqlite.hpp"
#include "submission/async_submit.hpp"
#include "submission/header_block.hpp"

#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

#include <sodium.h>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace postern::ingress::http {
namespace {

constexpr std::size_t max_idempotency_key = 255;

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out(text.size(), '\0');
  std::size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), " \r\n\t",
                        &length, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
    return std::nullopt;
  out.resize(length);
  return out;
}

/// The API key of a request: HTTP Basic with any user ("api" by Mailgun's convention) and the
/// key as password, or a Bearer token.
std::optional<std::string> presented_key(const request& req) {
  const std::string_view auth = req[bhttp::field::authorization];
  if (auth.size() > 7 && beast::iequals(auth.substr(0, 7), "Bearer ")) return std::string(auth.substr(7));
  if (auth.size() > 6 && beast::iequals(auth.substr(0, 6), "Basic ")) {
    auto decoded = base64_decode(auth.substr(6));
    if (!decoded) return std::nullopt;
    const auto colon = decoded->find(':');
    if (colon == std::string::npos) return std::nullopt;
    return decoded->substr(colon + 1);
  }
  return std::nullopt;
}

std::string_view path_of(const request& req) {
  std::string_view target = req.target();
  return target.substr(0, target.find('?'));
}

unsigned status_for_refusal(const postern::smtp_reply& reply) {
  if (reply.code == 552) return 413;
  if (reply.transient()) return 503;
  return 400;
}

json::object recipient_ids(const submitted& s) {
  if (s.suppressed)
    return json::object{{"id", nullptr}, {"message", "every recipient was suppressed by policy: nothing was queued"}};
  json::array list;
  for (std::size_t i = 0; i < s.recipients.size(); ++i)
    list.push_back(json::object{{"address", s.recipients[i]}, {"id", s.queue_id + "." + std::to_string(i)}});
  return json::object{{"id", s.queue_id}, {"message_id", s.message_id}, {"recipients", std::move(list)}};
}

const char* stream_name(postern::mail_stream s) {
  return s == postern::mail_stream::marketing ? "marketing" : "transactional";
}

/// Reads the native message fields into `out`; false with `error` set on the first problem.
void read_variables(json_reader& r, std::string_view key, const json::value* v, templates::variables& out) {
  if (!v || v->is_null()) return;
  if (!v->is_object()) return r.fail(key, "expected an object");
  for (const auto& [name, value] : v->get_object()) {
    auto text = scalar_text(value);
    if (!text) return r.fail(std::string(key) + "." + std::string(name), "expected a string, number or boolean");
    out[std::string(name)] = std::move(*text);
  }
}

void read_template_fields(json_reader& r, native_request& out) {
  out.template_name = r.string("template").value_or("");
  const auto* variables = r.value("variables");
  read_variables(r, "variables", variables, out.variables);
  const auto* per_recipient = r.value("recipient_variables");
  if (per_recipient && !per_recipient->is_null()) {
    if (!per_recipient->is_object()) return r.fail("recipient_variables", "expected an object keyed by address");
    for (const auto& [address, vars] : per_recipient->get_object())
      read_variables(r, "recipient_variables." + std::string(address), &vars, out.per_recipient[std::string(address)]);
  }
  out.render = !out.template_name.empty() || (variables && !variables->is_null()) || !out.per_recipient.empty();
}

}  // namespace

bool read_native_message(const json::object& body, native_request& request, std::string& error, message_use use) {
  composed_message& out = request.msg;
  json_reader r(body);
  const auto from_text = r.string("from");
  if (r.ok() && !from_text) r.fail("from", "missing");
  const auto from = mime::parse_single_mailbox(from_text.value_or(""));
  if (r.ok() && !from) r.fail("from", "expected one mailbox: \"a@b.example\" or \"Name <a@b.example>\"");
  if (r.ok()) {
    out.spec.from = from->display;
    out.mail_from = from->address;
  }
  using header_list = std::vector<std::string>*;  // bcc: envelope only, never written
  for (auto [key, list] : {std::pair<const char*, header_list>{"to", &out.spec.to},
                           std::pair<const char*, header_list>{"cc", &out.spec.cc},
                           std::pair<const char*, header_list>{"bcc", nullptr}}) {
    const auto values = r.strings(key);
    for (std::size_t i = 0; r.ok() && i < values.size(); ++i) {
      const auto parsed = mime::parse_mailboxes(values[i]);
      if (!parsed.error.empty()) r.fail(std::string(key) + "[" + std::to_string(i) + "]", parsed.error);
      for (const auto& m : parsed.items) {
        if (list) list->push_back(m.display);
        out.recipients.push_back(m.address);
      }
    }
  }
  out.spec.reply_to = r.string("reply_to").value_or("");
  out.spec.subject = r.string("subject").value_or("");
  out.spec.text = r.string("text").value_or("");
  out.spec.html = r.string("html").value_or("");
  out.spec.headers = r.string_map("headers");
  out.tags = r.strings("tags");
  const auto stream = r.string("stream").value_or("transactional");
  if (stream == "marketing") out.stream = postern::mail_stream::marketing;
  else if (stream != "transactional") r.fail("stream", "expected \"transactional\" or \"marketing\"");
  if (auto send_at = r.string("send_at")) {
    if (auto t = parse_rfc3339(*send_at)) out.send_at = *t;
    else r.fail("send_at", "expected an RFC 3339 date-time with a zone, e.g. 2026-11-24T10:00:00Z");
  }
  if (const auto* attachments = r.value("attachments"); attachments && r.ok()) {
    if (!attachments->is_array()) r.fail("attachments", "expected a list of objects");
    for (std::size_t i = 0; r.ok() && attachments->is_array() && i < attachments->get_array().size(); ++i) {
      const auto& item = attachments->get_array()[i];
      const std::string name = "attachments[" + std::to_string(i) + "]";
      if (!item.is_object()) {
        r.fail(name, "expected an object");
        break;
      }
      json_reader a(item.get_object(), name + ".");
      mime::attachment att;
      att.filename = a.string("filename").value_or("");
      att.content_type = a.string("content_type").value_or("application/octet-stream");
      att.inline_part = a.boolean("inline", false);
      att.content_id = a.string("content_id").value_or("");
      const auto content = a.string("content");
      if (a.ok() && !content) a.fail("content", "missing (base64 of the file)");
      if (a.ok()) {
        auto data = base64_decode(*content);
        if (!data) a.fail("content", "not valid base64");
        else att.data = std::move(*data);
      }
      a.refuse_unknown_fields();
      r.adopt(a);
      out.spec.attachments.push_back(std::move(att));
    }
  }
  read_template_fields(r, request);
  r.refuse_unknown_fields();
  if (r.ok() && !request.template_name.empty() && (!out.spec.text.empty() || !out.spec.html.empty()))
    r.fail("template", "a template brings its own text and html: leave those out");
  if (r.ok() && !request.per_recipient.empty() && out.spec.to.size() != out.recipients.size())
    r.fail("recipient_variables", "per-recipient messages go to 'to' only: leave cc and bcc out");
  if (use == message_use::single && r.ok() && out.recipients.empty())
    r.fail("to", "at least one recipient is needed in to, cc or bcc");
  if (use == message_use::campaign && r.ok() && (!out.recipients.empty() || !request.per_recipient.empty()))
    r.fail(out.recipients.empty() ? "recipient_variables" : "to", "a campaign's recipients come from its audience");
  // A campaign has its own tags, is always marketing, and starts when it is sent.
  for (const char* key : {"tags", "stream", "send_at"})
    if (use == message_use::campaign && r.ok() && body.contains(key))
      r.fail(key, "not part of a campaign's message (tags go on the campaign; campaigns are marketing mail)");
  if (r.ok() && request.template_name.empty() && out.spec.text.empty() && out.spec.html.empty())
    r.fail("text", "text, html or a template is needed");
  error = r.error();
  return r.ok();
}

bool sends_for(const config::tenant_settings* tenant, std::string_view address) {
  if (!tenant || tenant->sending_domains.empty()) return true;
  const auto domain = mime::domain_part(address);
  for (const auto& d : tenant->sending_domains) {
    if (beast::iequals(d, domain)) return true;
  }
  return false;
}

response error_response(unsigned status, std::string_view message) {
  return json_response(status, json::object{{"message", message}});
}

response json_response(unsigned status, const json::value& body) {
  response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = json::serialize(body);
  res.body() += '\n';
  return res;
}

api::api(api_services services) : services_(std::move(services)) {}

std::optional<api::tenant_ref> api::authenticate(const request& req) const {
  const auto key = presented_key(req);
  if (!key) return std::nullopt;
  const auto who = services_.tenants.authenticate_api(*key);
  if (!who) return std::nullopt;
  return tenant_ref{who->tenant, services_.tenants.find(who->tenant)};
}

api::admission api::admit(const request& header, std::uint64_t message_body_limit) {
  admission out;
  const std::string_view path = path_of(header);
  // Requests without a body of any size: operations, and the small native endpoints.
  constexpr std::uint64_t small_body = 1u << 20;
  out.body_limit = small_body;
  if (!path.starts_with("/v1/") && !path.starts_with("/v3/")) return out;
  const auto tenant = authenticate(header);
  if (!tenant) {
    services_.metrics.add("postern_http_unauthorized_total", 1);
    response res = error_response(401, "missing or wrong API key (HTTP Basic api:KEY or Authorization: Bearer KEY)");
    res.set(bhttp::field::www_authenticate, "Basic realm=\"postern\"");
    out.refusal = std::move(res);
    return out;
  }
  const double rate = tenant->settings && tenant->settings->rate_limit >= 0 ? tenant->settings->rate_limit
                                                                            : services_.rate_limit;
  const auto wait = limiter_.take(tenant->name, rate, services_.rate_burst);
  if (wait > rate_limiter::clock::duration::zero()) {
    response res = error_response(429, "rate limit of tenant " + tenant->name + " reached");
    const auto seconds = std::chrono::ceil<std::chrono::seconds>(wait).count();
    res.set(bhttp::field::retry_after, std::to_string(std::max<long long>(1, seconds)));
    out.refusal = std::move(res);
    return out;
  }
  // Only endpoints that take messages (or contact files) may send a message-sized body.
  const bool big = path.starts_with("/v3/") || path.starts_with("/v1/messages") || path == "/v1/contacts/import" ||
                   path == "/v1/contacts" || path == "/v1/activity";
  if (big) out.body_limit = message_body_limit;
  return out;
}

asio::awaitable<response> api::handle(request& req, const peer& from) {
  const std::string_view path = path_of(req);
  if (path == "/metrics") {
    // Gauges query the spool: off the I/O threads, like every other database read.
    auto scrape = [this, &req, path] { return operations(req, path); };
    response res = co_await run_blocking(blocking_, scrape, asio::use_awaitable);
    co_return res;
  }
  if (path.starts_with("/unsubscribe/")) {
    // Public, like the links in the mail: the token is the authority. Writes a contact.
    auto work = [this, &req, path]() -> std::variant<response, std::exception_ptr> {
      try {
        return unsubscribe_route(req, path.substr(13));
      } catch (...) {
        return std::current_exception();
      }
    };
    auto outcome = co_await run_blocking(blocking_, work, asio::use_awaitable);
    if (auto* failure = std::get_if<std::exception_ptr>(&outcome)) {
      try {
        std::rethrow_exception(*failure);
      } catch (const std::exception& e) {
        logging::get("http")->error("unsubscribe from {}: {}", from.address, e.what());
      }
      co_return error_response(503, "try again later");
    }
    co_return std::move(std::get<response>(outcome));
  }
  if (!path.starts_with("/v1/") && !path.starts_with("/v3/")) co_return operations(req, path);
  // Admitted already (admit): the key is known good; the lookup is one SHA-256.
  const auto tenant = authenticate(req);
  if (!tenant) co_return error_response(401, "missing or wrong API key");
  try {
    response res = co_await dispatch(req, *tenant, path);
    co_return res;
  } catch (const spool::sqlite_error& e) {
    logging::get("http")->error("{} {} from {}: storage error: {}", std::string(req.method_string()),
                                std::string(path), from.address, e.what());
    response res = error_response(503, "storage is busy or failing; try again later");
    res.set(bhttp::field::retry_after, "5");
    co_return res;
  } catch (const std::exception& e) {
    logging::get("http")->error("{} {} from {}: unexpected error: {}", std::string(req.method_string()),
                                std::string(path), from.address, e.what());
    co_return error_response(500, "internal error; it has been logged");
  }
}

asio::awaitable<response> api::dispatch(request& req, const tenant_ref& tenant, std::string_view path) {
  if (path.starts_with("/v3/")) {
    response res = co_await handle_mailgun(*this, req, tenant.name, tenant.settings, path);
    co_return res;
  }
  response res = co_await route_v1(req, tenant, path);
  co_return res;
}

asio::awaitable<response> api::route_v1(request& req, const tenant_ref& tenant, std::string_view path) {
  const auto method = req.method();
  if (path == "/v1/messages") {
    if (method != bhttp::verb::post) co_return error_response(405, "use POST");
    response res = co_await post_message(req, tenant);
    co_return res;
  }
  if (path == "/v1/messages/raw") {
    if (method != bhttp::verb::post) co_return error_response(405, "use POST");
    response res = co_await post_raw(req, tenant);
    co_return res;
  }
  if (path.starts_with("/v1/messages/") && path.ends_with("/resend")) {
    if (method != bhttp::verb::post) co_return error_response(405, "use POST");
    response res = co_await resend(req, tenant, path.substr(13, path.size() - 13 - 7));
    co_return res;
  }
  if (path == "/v1/test-send") {
    if (method != bhttp::verb::post) co_return error_response(405, "use POST");
    response res = co_await test_send(req, tenant);
    co_return res;
  }
  // The rest reads or writes the databases: off the I/O threads. Exceptions come back as a
  // value and are rethrown here, where handle() turns them into an answer.
  auto work = [this, &req, &tenant, path]() -> std::variant<response, std::exception_ptr> {
    try {
      return route_stored(req, tenant, path);
    } catch (...) {
      return std::current_exception();
    }
  };
  auto outcome = co_await run_blocking(blocking_, work, asio::use_awaitable);
  if (auto* failure = std::get_if<std::exception_ptr>(&outcome)) std::rethrow_exception(*failure);
  co_return std::move(std::get<response>(outcome));
}

response api::route_stored(request& req, const tenant_ref& tenant, std::string_view path) {
  const auto method = req.method();
  if (path.starts_with("/v1/messages/") && path.find('/', 13) == std::string_view::npos) {
    if (method != bhttp::verb::get) return error_response(405, "use GET");
    return get_message(tenant, path.substr(13));
  }
  if (path == "/v1/events") {
    if (method != bhttp::verb::get) return error_response(405, "use GET");
    return events(req, tenant);
  }
  if (path == "/v1/webhooks") return webhooks_route(req, tenant);
  if (path == "/v1/contacts" || path.starts_with("/v1/contacts/")) return contacts_route(req, tenant, path.substr(12));
  if (path == "/v1/activity") return activity_route(req, tenant);
  if (path == "/v1/audiences/preview") return audience_preview(req, tenant);
  if (services_.campaigns && (path == "/v1/campaigns" || path.starts_with("/v1/campaigns/")))
    return campaigns_route(req, tenant, path.substr(13));
  if (services_.campaigns && (path == "/v1/audiences" || path.starts_with("/v1/audiences/")))
    return audiences_route(req, tenant, path.substr(13));
  if (path == "/v1/templates") return templates_route(req, tenant, "");
  if (path.starts_with("/v1/templates/")) return templates_route(req, tenant, path.substr(14));
  return error_response(404, "no such endpoint: " + std::string(path));
}

namespace {
/// The Idempotency-Key of a request as a spool origin key, or an error. The tenant's name is
/// length-prefixed, so no tenant and key can spell another tenant's key.
std::optional<std::string> origin_key_of(const request& req, const std::string& tenant, std::string& error) {
  const std::string_view key = req["Idempotency-Key"];
  if (key.empty()) return std::string();
  if (key.size() > max_idempotency_key) {
    error = "Idempotency-Key: at most 255 characters";
    return std::nullopt;
  }
  return "api:" + std::to_string(tenant.size()) + ":" + tenant + ":" + std::string(key);
}

/// A Message-ID field's value without its angle brackets (as it is when it has none).
std::string unbracketed(std::string_view id) {
  while (!id.empty() && (id.front() == ' ' || id.front() == '\t')) id.remove_prefix(1);
  while (!id.empty() && (id.back() == ' ' || id.back() == '\t')) id.remove_suffix(1);
  if (id.size() >= 2 && id.front() == '<' && id.back() == '>') id = id.substr(1, id.size() - 2);
  return std::string(id);
}
}  // namespace

asio::awaitable<response> api::post_message(request& req, const tenant_ref& tenant) {
  const auto body = parse_json_object(req.body());
  if (!body.error.empty()) co_return error_response(400, body.error);
  native_request request;
  request.msg.tenant = tenant.name;
  std::string error;
  if (!read_native_message(body.object, request, error, message_use::single)) co_return error_response(400, error);
  if (request.msg.recipients.size() > services_.max_recipients)
    co_return error_response(400, "at most " + std::to_string(services_.max_recipients) + " recipients per request");
  if (!sends_for(tenant.settings, request.msg.mail_from))
    co_return error_response(403, "from: " + std::string(mime::domain_part(request.msg.mail_from)) + " is not a sending domain of tenant " +
                                      tenant.name);
  auto key = origin_key_of(req, tenant.name, error);
  if (!key) co_return error_response(400, error);
  request.msg.origin_key = std::move(*key);
  auto expanded = expand(request, tenant);
  if (auto* refusal = std::get_if<response>(&expanded)) co_return std::move(*refusal);
  auto& messages = std::get<std::vector<composed_message>>(expanded);
  json::array batch;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    // Each message of a batch has its own idempotency key, derived from the request's.
    if (messages.size() > 1 && !messages[i].origin_key.empty()) messages[i].origin_key += ":" + std::to_string(i);
    submitted s = co_await submit(messages[i]);
    if (!s.ok) co_return error_response(s.status, s.error);
    batch.push_back(recipient_ids(s));
  }
  if (!request.per_recipient.empty()) co_return json_response(202, json::object{{"batch", std::move(batch)}});
  co_return json_response(202, batch.front());
}

asio::awaitable<response> api::post_raw(request& req, const tenant_ref& tenant) {
  // The envelope comes from the header fields: From, and To, Cc and Bcc.
  composed_message msg;
  msg.tenant = tenant.name;
  // Line endings first: a bare LF could otherwise hide a field from the checks below.
  std::string raw = submission::is_crlf(req.body()) ? std::move(req.body()) : submission::to_crlf(req.body());
  const auto field = [&raw](std::string_view name) {
    std::string joined;
    for (const auto& v : submission::header_values(raw, name)) joined += (joined.empty() ? "" : ", ") + v;
    return joined;
  };
  const auto froms = submission::header_values(raw, "From");
  const auto from = froms.size() == 1 ? mime::parse_single_mailbox(froms[0]) : std::nullopt;
  if (!from) co_return error_response(400, "From: expected exactly one From field with one mailbox");
  msg.mail_from = from->address;
  for (const char* name : {"To", "Cc", "Bcc"}) {
    const auto list = mime::parse_mailboxes(field(name));
    if (!list.error.empty()) co_return error_response(400, std::string(name) + ": " + list.error);
    for (const auto& m : list.items) msg.recipients.push_back(m.address);
  }
  if (msg.recipients.empty()) co_return error_response(400, "To: at least one recipient is needed in To, Cc or Bcc");
  if (!sends_for(tenant.settings, msg.mail_from))
    co_return error_response(403, "From: " + std::string(mime::domain_part(msg.mail_from)) + " is not a sending domain of tenant " + tenant.name);
  std::string error;
  auto key = origin_key_of(req, tenant.name, error);
  if (!key) co_return error_response(400, error);
  msg.origin_key = std::move(*key);
  submitted s = co_await submit_raw(msg, raw);
  if (!s.ok) co_return error_response(s.status, s.error);
  co_return json_response(202, recipient_ids(s));
}

asio::awaitable<submitted> api::submit(composed_message& msg) {
  if (msg.spec.message_id.empty()) msg.spec.message_id = tenants::random_hex(16) + "@" + services_.hostname;
  msg.spec.date = std::chrono::system_clock::now();
  auto built = mime::build(msg.spec);
  if (!built.error.empty()) {
    submitted s;
    s.status = 400;
    s.error = built.error;
    co_return s;
  }
  submitted s = co_await submit_raw(msg, built.raw);
  co_return s;
}

asio::awaitable<submitted> api::submit_raw(composed_message& msg, std::string& raw) {
  submitted out;
  const auto now = std::chrono::system_clock::now();
  if (msg.recipients.size() > services_.max_recipients) {
    out.status = 400;
    out.error = "at most " + std::to_string(services_.max_recipients) + " recipients per message";
    co_return out;
  }
  if (msg.send_at > now + services_.max_schedule) {
    out.status = 400;
    out.error = "send_at: at most " + std::to_string(services_.max_schedule.count() / 3600000) + " hours ahead";
    co_return out;
  }
  // Bcc recipients are in the envelope; the field itself must not reach anyone.
  if (submission::has_header(raw, "Bcc")) raw = submission::remove_header(submission::to_crlf(raw), "Bcc");
  auto ids = submission::header_values(raw, "Message-ID");
  if (ids.empty()) {
    const std::string id = tenants::random_hex(16) + "@" + services_.hostname;
    raw.insert(0, "Message-ID: <" + id + ">\r\n");
    ids.push_back("<" + id + ">");
  }
  out.message_id = unbracketed(ids.front());
  out.recipients = msg.recipients;

  submission::request req;
  req.tenant = msg.tenant;
  req.stream = msg.stream;
  req.tags = msg.tags;
  req.env.mail_from = msg.mail_from;
  for (const auto& r : msg.recipients) req.env.recipients.push_back({0, r, "", 0});
  req.raw = std::move(raw);
  req.trace.protocol = "HTTP";
  req.source = "http";
  req.origin_key = msg.origin_key;
  req.not_before = msg.send_at;
  auto result = co_await submission::async_submit(services_.submission, req, asio::use_awaitable);
  if (!result.accepted) {
    out.status = status_for_refusal(result.reply);
    out.error = std::to_string(result.reply.code) + " " + result.reply.enhanced + " " + result.reply.text;
    co_return out;
  }
  out.ok = true;
  out.queue_id = result.queue_id;
  if (out.queue_id.empty()) out.suppressed = true;  // policies dropped every recipient
  services_.metrics.add("postern_http_messages_accepted_total", 1, {{"tenant", msg.tenant}});
  if (!msg.origin_key.empty() && !out.queue_id.empty()) {
    // Perhaps a retry: answer what the first request was answered (read off the I/O threads).
    auto load = [this, id = out.queue_id] { return services_.spool.load(id, true); };
    auto first = co_await run_blocking(blocking_, load, asio::use_awaitable);
    if (first) {
      const auto first_ids = submission::header_values(first->msg->raw, "Message-ID");
      if (!first_ids.empty()) out.message_id = unbracketed(first_ids.front());
      out.recipients.clear();
      for (const auto& r : first->recipients) out.recipients.push_back(r.rcpt.address);
    }
  }
  co_return out;
}

response api::get_message(const tenant_ref& tenant, std::string_view id) {
  const auto found = services_.spool.load(id, false);
  // Another tenant's message is as unknown as a message that does not exist.
  if (!found || found->msg->tenant != tenant.name) return error_response(404, "no message " + std::string(id));
  const auto& m = *found->msg;
  json::array recipients;
  for (const auto& r : found->recipients) {
    json::object o{{"id", m.queue_id + "." + std::to_string(r.rcpt.index)},
                   {"address", r.rcpt.address},
                   {"state", spool::to_string(r.state)},
                   {"attempts", r.attempts}};
    if (r.state == spool::recipient_state::queued || r.state == spool::recipient_state::deferred)
      o["next_attempt"] = format_rfc3339(r.next_attempt);
    if (r.last_reply.code)
      o["last_response"] = json::object{{"code", r.last_reply.code}, {"enhanced", r.last_reply.enhanced},
                                        {"text", r.last_reply.text}};
    if (!r.transport.empty()) o["transport"] = r.transport;
    if (!r.remote_id.empty()) o["remote_id"] = r.remote_id;
    recipients.push_back(std::move(o));
  }
  json::array events;
  for (const auto& e : services_.spool.events(id)) {
    json::object o{{"time", format_rfc3339(e.time)}, {"type", e.type}};
    if (!e.recipient.empty()) o["recipient"] = e.recipient;
    if (!e.transport.empty()) o["transport"] = e.transport;
    if (e.reply.code)
      o["response"] = json::object{{"code", e.reply.code}, {"enhanced", e.reply.enhanced}, {"text", e.reply.text}};
    events.push_back(std::move(o));
  }
  json::array tags;
  for (const auto& t : m.tags) tags.push_back(json::string(t));
  return json_response(200, json::object{{"id", m.queue_id},
                                         {"from", m.env.mail_from},
                                         {"stream", stream_name(m.stream)},
                                         {"tags", std::move(tags)},
                                         {"arrival", format_rfc3339(m.arrival)},
                                         {"size", found->size},
                                         {"held", found->held},
                                         {"recipients", std::move(recipients)},
                                         {"events", std::move(events)}});
}

response api::operations(const request& req, std::string_view path) {
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head)
    return error_response(path == "/healthz" || path == "/readyz" || path == "/metrics" ? 405 : 404,
                          "no such endpoint: " + std::string(path));
  if (path == "/healthz") return json_response(200, json::object{{"status", "ok"}});
  if (path == "/readyz") {
    const bool ready = services_.ready && services_.ready();
    return json_response(ready ? 200 : 503, json::object{{"status", ready ? "ready" : "starting"}});
  }
  if (path == "/metrics") {
    response res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
    res.body() = services_.metrics.snapshot_text();
    if (services_.gauges) res.body() += services_.gauges();
    return res;
  }
  return error_response(404, "no such endpoint: " + std::string(path));
}

}  // namespace postern::ingress::http
