#include "contacts/contact_json.hpp"

#include "ingress/http/json_reader.hpp"
#include "submission/service.hpp"

namespace postern::contacts {
namespace {

using ingress::http::json_reader;

/// Only an explicit true or false changes a flag; null is refused, never read as "yes".
void read_flag(json_reader& r, std::string_view key, std::optional<bool>& target) {
  const auto* v = r.value(key);
  if (!v) return;
  if (!v->is_bool()) r.fail(key, "expected true or false");
  else target = v->get_bool();
}

/// One contact of an upsert; false with the reader's error set.
bool read_contact(json_reader& r, contact_update& u) {
  u.email = r.string("email").value_or("");
  if (r.ok() && !submission::valid_address(u.email)) r.fail("email", "not an address");
  u.first_name = r.string("first_name");
  u.last_name = r.string("last_name");
  if (const auto* c = r.value("consent"); c && r.ok()) {
    if (!c->is_object()) {
      r.fail("consent", "expected an object");
    } else {
      json_reader cr(c->get_object(), r.name("consent."));
      read_flag(cr, "contact", u.contact_allowed);
      read_flag(cr, "show_name", u.show_name);
      read_flag(cr, "show_address", u.show_address);
      cr.refuse_unknown_fields();
      r.adopt(cr);
    }
  }
  read_flag(r, "unsubscribed", u.unsubscribed);
  u.join = r.strings("lists");
  u.leave = r.strings("unsubscribed_lists");
  r.refuse_unknown_fields();
  return r.ok();
}

}  // namespace

bool read_contact_updates(const boost::json::object& body, std::size_t max_contacts, std::vector<contact_update>& out,
                          std::string& error) {
  return ingress::http::read_object_list(body, "contacts", max_contacts, [&](json_reader& r) {
    contact_update u;
    if (read_contact(r, u)) out.push_back(std::move(u));
  }, error);
}

}  // namespace postern::contacts
