#pragma once
// Contact upserts as JSON ({"contacts": [...]}), read the same way by the REST API and the CLI.

#include "contacts/contact_store.hpp"

#include <boost/json/object.hpp>

#include <string>
#include <vector>

namespace postern::contacts {

/// Reads `body["contacts"]`: each {email, first_name, last_name, consent {contact, show_name,
/// show_address}, unsubscribed, lists, unsubscribed_lists}. False with `error` naming the
/// first bad field ("contacts[2].consent.contact: expected true or false"), an unknown field
/// included. At most `max_contacts`.
bool read_contact_updates(const boost::json::object& body, std::size_t max_contacts, std::vector<contact_update>& out,
                          std::string& error);

}  // namespace postern::contacts
