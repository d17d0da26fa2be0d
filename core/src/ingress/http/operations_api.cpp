// Native API endpoints around messages: resend, test send, the event feed and webhooks.

#include "ingress/http/api.hpp"
#include "ingress/http/json_reader.hpp"
#include "ingress/run_blocking.hpp"
#include "logging/log.hpp"
#include "mime/address.hpp"
#include "mime/note.hpp"
#include "submission/header_block.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/url/parse.hpp>

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace postern::ingress::http {
namespace {

constexpr std::size_t max_events_page = 1000;
constexpr std::chrono::seconds feed_settle_time{2};

/// Event type names of the API; the spool calls a bounce "dsn".
std::string api_event_type(const std::string& spool_type) { return spool_type == "dsn" ? "bounced" : spool_type; }
std::string spool_event_type(const std::string& api_type) { return api_type == "bounced" ? "dsn" : api_type; }

const std::vector<std::string>& webhook_event_types() {
  static const std::vector<std::string> types{"delivered", "deferred", "failed", "bounced", "campaign_completed"};
  return types;
}

/// The second part of an events page token: arrivals are numbered below zero in the feed.
std::optional<std::int64_t> signed_whole_number(std::string_view text) {
  if (!text.starts_with('-')) return whole_number(text);
  const auto magnitude = whole_number(text.substr(1));
  return magnitude ? std::optional<std::int64_t>(-*magnitude) : std::nullopt;
}

/// Query parameters, percent-decoded (Boost.URL).
std::map<std::string, std::string> query_of(const request& req) {
  std::map<std::string, std::string> out;
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) return out;
  for (auto param : url->params()) out[std::string(param.key)] = std::string(param.value);
  return out;
}

/// Runs a transport's delivery on `pool` and resumes the coroutine with its results.
template <class Token>
auto async_deliver(asio::thread_pool& pool, postern::transport& t, postern::delivery_request& request, Token&& token) {
  return asio::async_initiate<Token, void(std::vector<postern::recipient_result>)>(
      [&pool, &t, &request](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        auto work = asio::prefer(asio::get_associated_executor(*shared), asio::execution::outstanding_work.tracked);
        asio::post(pool, [&t, request, shared, work]() mutable {
          t.deliver(std::move(request), [shared, work](std::vector<postern::recipient_result> results) {
            asio::post(work, [shared, results = std::move(results)]() mutable { (*shared)(std::move(results)); });
          });
        });
      },
      token);
}

}  // namespace

api::~api() {
  test_sends_.join();
  blocking_.join();
}

asio::awaitable<response> api::resend(request& req, const tenant_ref& tenant, std::string_view id) {
  auto load = [this, queue_id = std::string(id)] { return services_.spool.load(queue_id, true); };
  auto found = co_await run_blocking(blocking_, load, asio::use_awaitable);
  if (!found || found->msg->tenant != tenant.name) co_return error_response(404, "no message " + std::string(id));
  if (found->msg->raw.empty()) co_return error_response(410, "the content of message " + std::string(id) + " is no longer kept");
  std::string note;
  if (!req.body().empty()) {
    const auto body = parse_json_object(req.body());
    if (!body.error.empty()) co_return error_response(400, body.error);
    json_reader r(body.object);
    note = r.string("note").value_or("");
    if (std::any_of(note.begin(), note.end(), [](char c) { return static_cast<unsigned char>(c) < 32 && c != '\n' && c != '\t'; }))
      r.fail("note", "control characters are not allowed (line breaks are)");
    r.refuse_unknown_fields();
    if (!r.ok()) co_return error_response(400, r.error());
  }
  std::string raw = found->msg->raw;
  if (!note.empty()) {
    auto noted = mime::add_note(raw, note);
    if (!noted.error.empty()) co_return error_response(422, noted.error);
    raw = std::move(noted.raw);
  }
  // A new message: new Message-ID, Date and trace; it names the one it repeats.
  for (const char* field : {"Received", "Message-ID", "Date"}) raw = submission::remove_header(raw, field);
  raw.insert(0, "X-Postern-Resend-Of: " + std::string(id) + "\r\n");
  composed_message msg;
  msg.tenant = tenant.name;
  msg.mail_from = found->msg->env.mail_from;
  msg.stream = found->msg->stream;
  msg.tags = found->msg->tags;
  for (const auto& r : found->recipients) msg.recipients.push_back(r.rcpt.address);
  submitted s = co_await submit_raw(msg, raw);
  if (!s.ok) co_return error_response(s.status, s.error);
  // Recorded on the original: it was resent on purpose, and as which message.
  spool::attempt_record record;
  record.events.push_back({std::chrono::system_clock::now(), std::string(id), "", "resent", "",
                           {250, "2.0.0", "resent as " + s.queue_id + (note.empty() ? "" : " with a note")}});
  auto note_on_original = [this, record = std::move(record)]() mutable {
    return services_.spool.record_wait(std::move(record));
  };
  const std::string error = co_await run_blocking(blocking_, note_on_original, asio::use_awaitable);
  if (!error.empty()) logging::get("http")->warn("{}: resend not recorded on the original: {}", id, error);
  json::array recipients;
  for (std::size_t i = 0; i < s.recipients.size(); ++i)
    recipients.push_back(json::object{{"address", s.recipients[i]}, {"id", s.queue_id + "." + std::to_string(i)}});
  co_return json_response(202, json::object{{"id", s.queue_id}, {"message_id", s.message_id}, {"resend_of", id},
                                            {"recipients", std::move(recipients)}});
}

asio::awaitable<response> api::test_send(request& req, const tenant_ref& tenant) {
  const auto body = parse_json_object(req.body());
  if (!body.error.empty()) co_return error_response(400, body.error);
  json_reader r(body.object);
  const auto to = r.string("to");
  const auto from_domain = tenant.settings && !tenant.settings->sending_domains.empty()
                               ? tenant.settings->sending_domains.front()
                               : services_.hostname;
  const auto from = r.string("from").value_or("postmaster@" + from_domain);
  r.refuse_unknown_fields();
  if (r.ok() && !to) r.fail("to", "missing");
  if (!r.ok()) co_return error_response(400, r.error());
  if (!submission::valid_address(*to) || !submission::valid_address(from))
    co_return error_response(400, "to and from must be addresses");
  if (!sends_for(tenant.settings, from))
    co_return error_response(403, "from: " + std::string(mime::domain_part(from)) + " is not a sending domain of tenant " + tenant.name);
  const auto* transport = services_.transports.pick();
  if (!transport) co_return error_response(503, "no transport is available (see `postern plugins`)");

  mime::message_spec spec;
  spec.from = from;
  spec.to = {*to};
  spec.subject = "postern test message";
  spec.text = "This is a test message from postern for " + tenant.name + ", sent through the " + transport->name +
              " transport.\n";
  spec.message_id = "test." + std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "@" +
                    services_.hostname;
  auto built = mime::build(spec);
  if (!built.error.empty()) co_return error_response(400, built.error);
  auto msg = std::make_shared<postern::message>();
  msg->queue_id = "TEST";
  msg->tenant = tenant.name;
  msg->env.mail_from = from;
  msg->env.recipients.push_back({0, *to, "", 0});
  msg->raw = std::move(built.raw);
  msg->arrival = std::chrono::system_clock::now();
  postern::delivery_request request{msg, msg->env.recipients};
  auto results = co_await async_deliver(test_sends_, *transport->impl, request, asio::use_awaitable);
  postern::smtp_reply reply{451, "4.3.0", "the transport gave no result"};
  if (!results.empty()) reply = results.front().reply;
  logging::get("http")->info("test send for {} to <{}> through {}: {} {}", tenant.name, *to, transport->name, reply.code,
                             reply.text);
  co_return json_response(200, json::object{{"transport", transport->name},
                                            {"delivered", reply.success()},
                                            {"code", reply.code},
                                            {"enhanced", reply.enhanced},
                                            {"text", reply.text}});
}

response api::events(const request& req, const tenant_ref& tenant) {
  auto query = query_of(req);
  spool::feed_cursor after;
  std::size_t limit = 100;
  const std::string type = query.count("type") ? query["type"] : "";
  if (!type.empty() && type != "accepted" && type != "resent" && type != "webhook" &&
      std::find(webhook_event_types().begin(), webhook_event_types().end(), type) == webhook_event_types().end())
    return error_response(400, "type: one of accepted, deferred, delivered, failed, bounced, resent, webhook");
  if (query.count("since")) {
    auto t = parse_rfc3339(query["since"]);
    if (!t) return error_response(400, "since: expected an RFC 3339 date-time, e.g. 2026-11-24T10:00:00Z");
    after.time = *t - std::chrono::milliseconds(1);
    after.seq = std::numeric_limits<std::int64_t>::max();
  }
  if (query.count("page")) {
    // The opaque cursor of a previous page: "<time in ms>.<seq>".
    const std::string_view page = query["page"];
    const auto dot = page.find('.');
    const auto ms = whole_number(page.substr(0, dot));
    const auto seq = dot == std::string_view::npos ? std::nullopt : signed_whole_number(page.substr(dot + 1));
    // Beyond the clock's range the conversion to a time point would overflow.
    constexpr auto max_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::time_point::max().time_since_epoch())
                                .count();
    if (!ms || !seq || *ms > max_ms) return error_response(400, "page: not a page token");
    after.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(*ms));
    after.seq = *seq;
  }
  if (query.count("limit")) {
    limit = query_limit(query["limit"]);
    if (limit < 1 || limit > max_events_page) return error_response(400, "limit: 1 to 1000");
  }
  // Only events older than a short settling time: an event's time is taken just before its
  // commit, so a younger one could still be joined by an older one, which a client paging by
  // time would then miss.
  const auto settled = std::chrono::system_clock::now() - feed_settle_time;
  const auto rows = services_.spool.tenant_events(tenant.name, spool_event_type(type), after, settled, limit);
  json::array items;
  for (const auto& f : rows) {
    const auto& e = f.event;
    json::object o{{"time", format_rfc3339(e.time)}, {"type", api_event_type(e.type)}, {"message_id", e.queue_id}};
    if (!e.recipient.empty()) o["recipient"] = e.recipient;
    if (!e.transport.empty()) o["transport"] = e.transport;
    if (e.reply.code)
      o["response"] = json::object{{"code", e.reply.code}, {"enhanced", e.reply.enhanced}, {"text", e.reply.text}};
    items.push_back(std::move(o));
  }
  json::object out{{"items", std::move(items)}};
  if (!rows.empty()) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(rows.back().event.time.time_since_epoch());
    // Asking again with this token returns what happened since (empty when nothing did).
    out["next_page"] = std::to_string(ms.count()) + "." + std::to_string(rows.back().seq);
  }
  return json_response(200, out);
}

response api::webhooks_route(request& req, const tenant_ref& tenant) {
  if (req.method() == bhttp::verb::put) {
    const auto body = parse_json_object(req.body());
    if (!body.error.empty()) return error_response(400, body.error);
    std::map<std::string, std::string> urls;
    for (const auto& [type, url] : body.object) {
      const std::string name(type);
      if (std::find(webhook_event_types().begin(), webhook_event_types().end(), name) == webhook_event_types().end())
        return error_response(400, name + ": not an event type webhooks are sent for (delivered, deferred, failed, bounced)");
      if (url.is_null()) continue;
      if (!url.is_string()) return error_response(400, name + ": expected a URL");
      const std::string text(url.get_string());
      auto parsed = boost::urls::parse_absolute_uri(text);
      if (!parsed || (parsed->scheme() != "http" && parsed->scheme() != "https") || parsed->host().empty())
        return error_response(400, name + ": expected an http:// or https:// URL");
      urls[name] = text;
    }
    services_.state.set_webhooks(tenant.name, urls);
  } else if (req.method() != bhttp::verb::get) {
    return error_response(405, "use GET or PUT");
  }
  json::object hooks;
  for (const auto& [type, url] : services_.state.webhooks(tenant.name)) hooks[type] = url;
  return json_response(200, json::object{{"webhooks", std::move(hooks)},
                                         {"signing_key", services_.state.signing_key(tenant.name)}});
}

}  // namespace postern::ingress::http
