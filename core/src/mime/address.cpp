#include "mime/address.hpp"

#include "mime/gmime_support.hpp"

namespace postern::mime {
namespace {

void collect(InternetAddressList* list, mailbox_list& out) {
  const int n = internet_address_list_length(list);
  for (int i = 0; i < n && out.error.empty(); ++i) {
    InternetAddress* a = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_GROUP(a)) {
      collect(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), out);
      continue;
    }
    const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
    const std::string address = addr ? addr : "";
    if (address.empty() || address.find('@') == std::string::npos || address.front() == '@' ||
        address.back() == '@') {
      out.error = "not an address: " + address;
      return;
    }
    const char* name = internet_address_get_name(a);
    mailbox m;
    m.address = address;
    if (name && *name) {
      // Encoded later by the MIME builder where needed; here only quoted as RFC 5322 wants.
      char* text = internet_address_to_string(a, nullptr, FALSE);
      m.display = text ? text : address;
      g_free(text);
    } else {
      m.display = address;
    }
    out.items.push_back(std::move(m));
  }
}

}  // namespace

mailbox_list parse_mailboxes(std::string_view text) {
  mailbox_list out;
  if (text.find_first_of("\r\n") != std::string_view::npos) {
    out.error = "contains a line break";
    return out;
  }
  if (text.find_first_not_of(" \t,") == std::string_view::npos) return out;
  ensure_gmime();
  const std::string copy(text);
  InternetAddressList* list = internet_address_list_parse(nullptr, copy.c_str());
  if (!list || internet_address_list_length(list) == 0) {
    if (list) g_object_unref(list);
    out.error = "not an address: " + copy;
    return out;
  }
  collect(list, out);
  g_object_unref(list);
  if (!out.error.empty()) out.items.clear();
  return out;
}

}  // namespace postern::mime
