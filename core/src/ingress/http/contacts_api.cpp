// The contact endpoints of the native API: upserts (JSON and CSV), activity, listing with
// masking, and subscriptions.

#include "contacts/contact_store.hpp"
#include "ingress/http/api.hpp"
#include "ingress/http/csv.hpp"
#include "ingress/http/json_reader.hpp"
#include "submission/service.hpp"

#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/url/parse.hpp>

#include <map>

namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace postern::ingress::http {
namespace {

constexpr std::size_t max_batch = 10000;  // contacts or events per request
constexpr auto activity_window = std::chrono::hours(24 * 365);

std::optional<bool> flag_text(std::string_view text) {
  if (text == "1" || text == "true" || text == "yes") return true;
  if (text == "0" || text == "false" || text == "no") return false;
  return std::nullopt;
}

/// One contact of a JSON upsert; false with the reader's error set.
bool read_contact(json_reader& r, contacts::contact_update& u) {
  u.email = r.string("email").value_or("");
  if (r.ok() && !submission::valid_address(u.email)) r.fail("email", "not an address");
  u.first_name = r.string("first_name");
  u.last_name = r.string("last_name");
  if (const auto* c = r.value("consent"); c && r.ok()) {
    if (!c->is_object()) {
      r.fail("consent", "expected an object");
    } else {
      json_reader cr(c->get_object(), r.name("consent."));
      if (cr.value("contact")) u.contact_allowed = cr.boolean("contact", true);
      if (cr.value("show_name")) u.show_name = cr.boolean("show_name", true);
      if (cr.value("show_address")) u.show_address = cr.boolean("show_address", true);
      if (auto unknown = cr.unknown_field(); cr.ok() && unknown) cr.fail(*unknown, "unknown field");
      r.adopt(cr);
    }
  }
  if (r.value("unsubscribed")) u.unsubscribed = r.boolean("unsubscribed", false);
  u.join = r.strings("lists");
  u.leave = r.strings("unsubscribed_lists");
  if (auto unknown = r.unknown_field(); r.ok() && unknown) r.fail(*unknown, "unknown field");
  return r.ok();
}

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

/// Contacts from a CSV text with a header row; an error names the line and the column.
std::variant<std::vector<contacts::contact_update>, std::string> contacts_from_csv(std::string_view text) {
  auto table = parse_csv(text);
  if (!table.error.empty()) return table.error;
  if (table.rows.empty()) return std::string("the file is empty; the first line names the columns");
  static const std::vector<std::string> known{"email",        "first_name", "last_name",    "lists",
                                              "contact_allowed", "show_name", "show_address", "unsubscribed"};
  std::map<std::string, std::size_t> column;
  for (std::size_t i = 0; i < table.rows[0].size(); ++i) {
    const auto& name = table.rows[0][i];
    if (std::find(known.begin(), known.end(), name) == known.end())
      return "line 1: unknown column \"" + name + "\" (known: email, first_name, last_name, lists, contact_allowed, "
             "show_name, show_address, unsubscribed)";
    column[name] = i;
  }
  if (!column.count("email")) return std::string("line 1: an email column is needed");
  std::vector<contacts::contact_update> out;
  for (std::size_t r = 1; r < table.rows.size(); ++r) {
    const auto& row = table.rows[r];
    const auto where = "line " + std::to_string(table.lines[r]) + ": ";
    if (row.size() != table.rows[0].size())
      return where + std::to_string(row.size()) + " fields, the header has " + std::to_string(table.rows[0].size());
    contacts::contact_update u;
    u.email = row[column["email"]];
    if (!submission::valid_address(u.email)) return where + "email: not an address";
    if (column.count("first_name")) u.first_name = row[column["first_name"]];
    if (column.count("last_name")) u.last_name = row[column["last_name"]];
    if (column.count("lists")) {
      std::string_view lists = row[column["lists"]];
      while (!lists.empty()) {
        const auto semicolon = lists.find(';');
        if (auto l = lists.substr(0, semicolon); !l.empty()) u.join.emplace_back(l);
        lists = semicolon == std::string_view::npos ? std::string_view() : lists.substr(semicolon + 1);
      }
    }
    for (auto [name, target] : {std::pair{"contact_allowed", &u.contact_allowed}, std::pair{"show_name", &u.show_name},
                                std::pair{"show_address", &u.show_address}, std::pair{"unsubscribed", &u.unsubscribed}}) {
      if (!column.count(name) || row[column[name]].empty()) continue;
      *target = flag_text(row[column[name]]);
      if (!*target) return where + name + ": expected true or false";
    }
    out.push_back(std::move(u));
  }
  if (out.size() > max_batch) return "at most " + std::to_string(max_batch) + " contacts per request";
  return out;
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
      else if (key == "page") q.after = value;
      else if (key == "status" && (value == "active" || value == "inactive")) q.active = value == "active";
      else if (key == "limit") q.limit = std::strtoul(value.c_str(), nullptr, 10);
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
    const auto* list = body.object.if_contains("contacts");
    if (!list || !list->is_array()) return error_response(400, "contacts: expected a list of contacts");
    if (list->get_array().size() > max_batch) return error_response(400, "at most 10000 contacts per request");
    std::vector<contacts::contact_update> updates;
    for (std::size_t i = 0; i < list->get_array().size(); ++i) {
      const auto& item = list->get_array()[i];
      const std::string name = "contacts[" + std::to_string(i) + "]";
      if (!item.is_object()) return error_response(400, name + ": expected an object");
      json_reader r(item.get_object(), name + ".");
      contacts::contact_update u;
      if (!read_contact(r, u)) return error_response(400, r.error());
      updates.push_back(std::move(u));
    }
    return upserted(store.upsert(tenant.name, updates, now));
  }
  if (rest == "/import") {
    if (req.method() != bhttp::verb::post) return error_response(405, "use POST");
    auto parsed = contacts_from_csv(req.body());
    if (auto* error = std::get_if<std::string>(&parsed)) return error_response(400, *error);
    return upserted(store.upsert(tenant.name, std::get<0>(parsed), now));
  }
  if (rest.starts_with("/") && rest.ends_with("/subscriptions")) {
    if (req.method() != bhttp::verb::put) return error_response(405, "use PUT");
    const std::string email(rest.substr(1, rest.size() - 1 - 14));
    if (!store.find(tenant.name, email)) return error_response(404, "no contact " + email);
    const auto body = parse_json_object(req.body());
    if (!body.error.empty()) return error_response(400, body.error);
    json_reader r(body.object);
    contacts::contact_update u;
    u.email = email;
    if (r.value("unsubscribed")) u.unsubscribed = r.boolean("unsubscribed", false);
    if (const auto* lists = r.value("lists"); lists && r.ok()) {
      if (!lists->is_object()) r.fail("lists", "expected an object of list name: true or false");
      for (const auto& [name, member] : lists->is_object() ? lists->get_object() : json::object()) {
        if (!member.is_bool()) r.fail("lists." + std::string(name), "expected true or false");
        else (member.get_bool() ? u.join : u.leave).emplace_back(name);
      }
    }
    if (auto unknown = r.unknown_field(); r.ok() && unknown) r.fail(*unknown, "unknown field");
    if (!r.ok()) return error_response(400, r.error());
    store.upsert(tenant.name, {u}, now);
    return json_response(200, contact_json(*store.find(tenant.name, email), now - activity_window));
  }
  return error_response(rest.empty() ? 405 : 404, rest.empty() ? "use GET or POST" : "no such endpoint");
}

response api::activity_route(request& req, const tenant_ref& tenant) {
  if (req.method() != bhttp::verb::post) return error_response(405, "use POST");
  const auto body = parse_json_object(req.body());
  if (!body.error.empty()) return error_response(400, body.error);
  const auto* list = body.object.if_contains("events");
  if (!list || !list->is_array()) return error_response(400, "events: expected a list of events");
  if (list->get_array().size() > max_batch) return error_response(400, "at most 10000 events per request");
  std::vector<contacts::activity> events;
  for (std::size_t i = 0; i < list->get_array().size(); ++i) {
    const auto& item = list->get_array()[i];
    const std::string name = "events[" + std::to_string(i) + "]";
    if (!item.is_object()) return error_response(400, name + ": expected an object");
    json_reader r(item.get_object(), name + ".");
    contacts::activity e;
    e.email = r.string("email").value_or("");
    if (r.ok() && !submission::valid_address(e.email)) r.fail("email", "not an address");
    const auto type = r.string("type").value_or("");
    if (auto kind = contacts::activity_kind_from(type)) e.kind = *kind;
    else if (r.ok()) r.fail("type", "expected order, cart, wishlist or signup");
    e.products = r.strings("products");
    e.order_id = r.string("order_id").value_or("");
    if (auto time = r.string("time")) {
      if (auto t = parse_rfc3339(*time)) e.time = *t;
      else r.fail("time", "expected an RFC 3339 date-time");
    }
    if (r.ok() && e.kind != contacts::activity_kind::signup && e.products.empty())
      r.fail("products", "an order, cart or wishlist event names its products");
    if (auto unknown = r.unknown_field(); r.ok() && unknown) r.fail(*unknown, "unknown field");
    if (!r.ok()) return error_response(400, r.error());
    events.push_back(std::move(e));
  }
  const auto created = services_.contacts.record(tenant.name, events, std::chrono::system_clock::now());
  return json_response(200, json::object{{"recorded", events.size()}, {"contacts_created", created}});
}

}  // namespace postern::ingress::http
