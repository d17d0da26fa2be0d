#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::mime {

/// One mailbox of an address list.
struct mailbox {
  std::string display;  ///< As it goes in a header field: "Name <a@b.example>" or "a@b.example".
  std::string address;  ///< The bare address (the envelope's form).
};

struct mailbox_list {
  std::vector<mailbox> items;
  std::string error;  ///< Empty when every part of the text parsed as a mailbox.
};

/// Parses a comma-separated address list (RFC 5322 §3.4) with GMime: display names, quoted
/// strings and groups (flattened to their members). Empty text gives an empty list. A part that
/// is not a mailbox with an address is an error naming it; CR, LF or NUL anywhere is an error.
mailbox_list parse_mailboxes(std::string_view text);

/// Exactly one mailbox, strictly: the text must be the address itself or end in "<address>"
/// (GMime's lenient parse would read "a@b.example@c.example" as a@b.example while the field
/// says otherwise). For From fields, whose address decides who sends.
std::optional<mailbox> parse_single_mailbox(std::string_view text);

/// What follows the last "@" of an address, as written ("" when there is none). No parsing:
/// for addresses already checked. Thread-safe, pure.
inline std::string_view domain_part(std::string_view address) noexcept {
  const auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

}  // namespace postern::mime
