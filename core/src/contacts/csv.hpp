#pragma once
// CSV as RFC 4180 describes it (quoted fields, doubled quotes, CRLF or LF), for contact
// imports. Written here: the format is small, and the import must name the line and column of
// a problem, which the CSV libraries Debian ships do not report in a form we can pass on.

#include <string>
#include <string_view>
#include <vector>

#include "contacts/contact_store.hpp"

namespace postern::contacts {

struct csv_table {
  std::vector<std::vector<std::string>> rows;  ///< The header row first.
  std::vector<std::size_t> lines;              ///< The line each row starts on (1-based).
  std::string error;                           ///< "line N: …" when the text is not CSV.
};

csv_table parse_csv(std::string_view text);

struct contact_update;

/// Contacts from a CSV text whose first line names the columns: email (required), first_name,
/// last_name, lists (separated by ';'), contact_allowed, show_name, show_address, unsubscribed
/// (true/false, yes/no, 1/0). A problem is named by line and column: "line 3: email: not an address".
struct csv_contacts {
  std::vector<contact_update> contacts;
  std::string error;
};
csv_contacts contacts_from_csv(std::string_view text);

}  // namespace postern::contacts
