#include "contacts/activity_json.hpp"

#include "ingress/http/json_reader.hpp"
#include "submission/service.hpp"

namespace postern::contacts {

using ingress::http::json_reader;

bool read_activity_events(const boost::json::object& body, std::size_t max_events, std::vector<activity>& out,
                          std::string& error) {
  json_reader top(body);
  const auto* list = top.value("events");
  top.refuse_unknown_fields();
  if (!top.ok()) {
    error = top.error();
    return false;
  }
  if (!list || !list->is_array()) {
    error = "events: expected a list of events";
    return false;
  }
  if (list->get_array().size() > max_events) {
    error = "at most " + std::to_string(max_events) + " events at once";
    return false;
  }
  for (std::size_t i = 0; i < list->get_array().size(); ++i) {
    const auto& item = list->get_array()[i];
    const std::string name = "events[" + std::to_string(i) + "]";
    if (!item.is_object()) {
      error = name + ": expected an object";
      return false;
    }
    json_reader r(item.get_object(), name + ".");
    activity e;
    e.email = r.string("email").value_or("");
    if (r.ok() && !submission::valid_address(e.email)) r.fail("email", "not an address");
    const auto type = r.string("type").value_or("");
    if (auto kind = activity_kind_from(type)) e.kind = *kind;
    else if (r.ok()) r.fail("type", "expected order, cart, wishlist or signup");
    e.products = r.strings("products");
    e.order_id = r.string("order_id").value_or("");
    if (auto time = r.string("time")) {
      // A day of clock skew is allowed; later than that is a mistake that would keep the
      // contact "active" for years.
      const auto latest = std::chrono::system_clock::now() + std::chrono::hours(24);
      if (auto t = ingress::http::parse_rfc3339(*time); t && *t <= latest) e.time = *t;
      else if (t) r.fail("time", "in the future");
      else r.fail("time", "expected an RFC 3339 date-time");
    }
    if (r.ok() && e.kind != activity_kind::signup && e.products.empty())
      r.fail("products", "an order, cart or wishlist event names its products");
    r.refuse_unknown_fields();
    if (!r.ok()) {
      error = r.error();
      return false;
    }
    out.push_back(std::move(e));
  }
  return true;
}

}  // namespace postern::contacts
