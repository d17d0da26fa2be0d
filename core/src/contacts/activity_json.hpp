#pragma once
// Activity events as JSON ({"events": [...]}), read the same way by the REST API and the CLI.

#include "contacts/contact_store.hpp"

#include <boost/json/object.hpp>

#include <string>
#include <vector>

namespace postern::contacts {

/// Reads `body["events"]`: each {email, type (order, cart, wishlist, signup), products,
/// order_id, time (RFC 3339)}. False with `error` naming the first bad field
/// ("events[2].type: expected order, cart, wishlist or signup"). At most `max_events`.
bool read_activity_events(const boost::json::object& body, std::size_t max_events, std::vector<activity>& out,
                          std::string& error);

}  // namespace postern::contacts
