#include "mime/address.hpp"

#include "mime/gmime_support.hpp"

#include <cctype>

namespace postern::mime {
namespace {

/// A display name as a header field holds it: as it is when it is words of atext (UTF-8
/// allowed, RFC 6532), else a quoted string with '"' and backslash escaped. GMime's own writer
/// leaves a name with a lone '"' or a backslash unquoted, which then reads back as another
/// name, as no mailbox, or as a second address (from "x\" <evil@a.example>" <q@b.example>).
std::string phrase(std::string_view name) {
  // GMime decodes "=?...?=" even inside quotes: a name with one is written as an encoded word.
  if (name.find("=?") != std::string_view::npos) {
    char* base64 = g_base64_encode(reinterpret_cast<const guchar*>(name.data()), name.size());
    std::string out = "=?utf-8?b?" + std::string(base64) + "?=";
    g_free(base64);
    return out;
  }
  static constexpr std::string_view atext_marks = "!#$%&'*+-^_`{|}~";
  bool plain = name.front() != ' ' && name.back() != ' ';
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && u < 0x80 && c != ' ' && atext_marks.find(c) == std::string_view::npos) plain = false;
  }
  if (plain) return std::string(name);
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

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
      m.display = phrase(name) + " <" + address + ">";
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
  // GMime reads a C string: whatever follows a NUL would be dropped without a word.
  if (text.find('\0') != std::string_view::npos) {
    out.error = "contains a NUL";
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

std::optional<mailbox> parse_single_mailbox(std::string_view text) {
  auto list = parse_mailboxes(text);
  if (!list.error.empty() || list.items.size() != 1) return std::nullopt;
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  const auto& address = list.items[0].address;
  if (text != address && !text.ends_with("<" + address + ">")) return std::nullopt;
  return list.items[0];
}

}  // namespace postern::mime
