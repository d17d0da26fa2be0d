#pragma once
// Audience rules as JSON: read from API requests, kept with saved audiences and campaigns.

#include "contacts/contact_store.hpp"
#include "ingress/http/json_reader.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>

namespace postern::contacts {

/// Reads a rule's fields from `r` (and refuses unknown ones); false with r's error set.
bool read_audience(ingress::http::json_reader& r, audience_rule& rule);
/// The rule in canonical JSON: fields in a fixed order, lists sorted and without repeats, so
/// that two ways of writing one rule give one text (no_resend compares them).
boost::json::object audience_to_json(const audience_rule& rule);
/// A rule from stored JSON; nothing if it no longer reads.
std::optional<audience_rule> audience_from_text(std::string_view text);

}  // namespace postern::contacts
