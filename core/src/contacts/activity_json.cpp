#include "contacts/activity_json.hpp"

#include "ingress/http/json_reader.hpp"
#include "submission/service.hpp"

namespace postern::contacts {

using ingress::http::json_reader;

bool read_activity_events(const boost::json::object& body, std::size_t max_events, std::vector<activity>& out,
                          std::string& error) {
  return ingress::http::read_object_list(body, "events", max_events, [&](json_reader& r) {
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
    if (r.ok()) out.push_back(std::move(e));
  }, error);
}

}  // namespace postern::contacts
