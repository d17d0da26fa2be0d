// The contact endpoints of the native API: upserts (JSON and CSV), activity, listing with
// masking, and subscriptions.

#include "contacts/contact_store.hpp"
#include "contacts/activity_json.hpp"
#include "contacts/contact_json.hpp"
#include "contacts/audience_json.hpp"
#include "contacts/csv.hpp"
#include "ingress/http/api.hpp"
#include "ingress/http/json_reader.hpp"
#include "submission/service.hpp"

#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>

#include <map>

namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace postern::ingress::http {
namespace {

constexpr std::size_t max_batch = 10000;  // contacts or events per request
constexpr auto activity_window = std::chrono::hours(24 * 365);

json::object contact_json(const contacts::contact& c, std::chrono::system_clock::time_point active_since) {
  const auto strings = [](const std::vector<std::string>& v) {
    json::array a;
    for (const auto& s : v) a.push_back(json::string(s));
    return a;
  };
  // What the contact chose not to show is masked, here and in every report.
  return {{"email", c.allowed.show_address ? c.email : contacts::mask_address(c.email)},
          {"first_name", c.allowed.show_name ? c.first_name : contacts::mask_name(c.first_name)},
          {"last_name", c.allowed.show_name ? c.last_name : contacts::mask_name(c.last_name)},
          {"status", c.last_interaction >= active_since ? "active" : "inactive"},
          {"consent", json::object{{"contact", c.allowed.contact}, {"show_name", c.allowed.show_name},
                                   {"show_address", c.allowed.show_address}}},
          {"unsubscribed", c.unsubscribed},
          {"lists", strings(c.lists)},
          {"unsubscribed_lists", strings(c.left)},
          {"created", format_rfc3339(c.created)},
          {"last_interaction", format_rfc3339(c.last_interaction)}};
}

response upserted(const contacts::upsert_counts& n) {
  return json_response(200, json::object{{"created", n.created}, {"updated", n.updated}});
}

}  // namespace

response api::contacts_route(request& req, const tenant_ref& tenant, std::string_view rest) {
  const auto now = std::chrono::system_clock::now();
  auto& store = services_.contacts;
  if (rest.empty() && req.method() == bhttp::verb::get) {
    contacts::contact_query q;
    auto url = boost::urls::parse_origin_form(req.target());
    for (auto param : url ? url->params() : boost::urls::params_view()) {
      const std::string key(param.key), value(param.value);
      if (key == "search") q.search = value;
      else if (key == "list") q.list = value;
      else if (key == "page" && contacts::read_page_token(value)) q.after = value;
      else if (key == "status" && (value == "active" || value == "inactive")) q.active = value == "active";
      else if (key == "limit") q.limit = query_limit(value);
      else return error_response(400, key + ": unknown parameter, or a bad value");
    }
    if (q.limit < 1 || q.limit > 1000) return error_response(400, "limit: 1 to 1000");
    auto page = store.list(tenant.name, q, now - activity_window);
    json::array items;
    for (const auto& c : page.items) items.push_back(contact_json(c, now - activity_window));
    json::object out{{"items", std::move(items)}};
    if (!page.next.empty()) out["next_page"] = page.next;
    return json_response(200, out);
  }
  if (rest.empty() && req.method() == bhttp::verb::post) {
    const auto body = parse_json_object(req.body());
    if (!body.error.empty()) return error_response(400, body.error);
    std::vector<contacts::contact_update> updates;
    std::string error;
    if (!contacts::read_contact_updates(body.object, max_batch, updates, error)) return error_response(400, error);
    return upserted(store.upsert(tenant.name, updates, now));
  }
  if (rest == "/import") {
    if (req.method() != bhttp::verb::post) return error_response(405, "use POST");
    auto parsed = contacts::contacts_from_csv(req.body());
    if (!parsed.error.empty()) return error_response(400, parsed.error);
    if (parsed.contacts.size() > max_batch) return error_response(400, "at most 10000 contacts at once");
    return upserted(store.upsert(tenant.name, parsed.contacts, now));
  }
  if (rest.starts_with("/") && rest.ends_with("/subscriptions")) {
    if (req.method() != bhttp::verb::put) return error_response(405, "use PUT");
    // The address arrives percent-encoded by most clients (ann%40example.com).
    const auto encoded = boost::urls::make_pct_string_view(rest.substr(1, rest.size() - 1 - 14));
    if (!encoded) return error_response(400, "the address in the path is not valid percent-encoding");
    const std::string email = encoded->decode();
    if (!store.find(tenant.name, email)) return error_response(404, "no contact " + email);
    const auto body = parse_json_object(req.body());
    if (!body.error.empty()) return error_response(400, body.error);
    json_reader r(body.object);
    contacts::contact_update u;
    u.email = email;
    if (const auto* v = r.value("unsubscribed")) {
      if (!v->is_bool()) r.fail("unsubscribed", "expected true or false");
      else u.unsubscribed = v->get_bool();
    }
    if (const auto* lists = r.value("lists"); lists && r.ok()) {
      if (!lists->is_object()) r.fail("lists", "expected an object of list name: true or false");
      for (const auto& [name, member] : lists->is_object() ? lists->get_object() : json::object()) {
        if (!member.is_bool()) r.fail("lists." + std::string(name), "expected true or false");
        else (member.get_bool() ? u.join : u.leave).emplace_back(name);
      }
    }
    r.refuse_unknown_fields();
    if (!r.ok()) return error_response(400, r.error());
    store.upsert(tenant.name, {u}, now);
    return json_response(200, contact_json(*store.find(tenant.name, email), now - activity_window));
  }
  return error_response(rest.empty() ? 405 : 404, rest.empty() ? "use GET or POST" : "no such endpoint");
}

response api::audience_preview(request& req, const tenant_ref& tenant) {
  if (req.method() != bhttp::verb::post) return error_response(405, "use POST");
  const auto body = parse_json_object(req.body());
  if (!body.error.empty()) return error_response(400, body.error);
  json_reader r(body.object);
  contacts::audience_rule rule;
  if (!read_audience(r, rule)) return error_response(400, r.error());
  const auto now = std::chrono::system_clock::now();
  const auto preview = services_.contacts.preview(tenant.name, rule, now, 10);
  json::array sample;
  for (const auto& c : preview.sample) sample.push_back(contact_json(c, now - activity_window));
  return json_response(200, json::object{{"count", preview.count}, {"sample", std::move(sample)}});
}

response api::activity_route(request& req, const tenant_ref& tenant) {
  if (req.method() != bhttp::verb::post) return error_response(405, "use POST");
  const auto body = parse_json_object(req.body());
  if (!body.error.empty()) return error_response(400, body.error);
  std::vector<contacts::activity> events;
  std::string error;
  if (!contacts::read_activity_events(body.object, max_batch, events, error)) return error_response(400, error);
  const auto created = services_.contacts.record(tenant.name, events, std::chrono::system_clock::now());
  return json_response(200, json::object{{"recorded", events.size()}, {"contacts_created", created}});
}

}  // namespace postern::ingress::http
