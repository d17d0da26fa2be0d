#pragma once

#include <string>
#include <string_view>

namespace postern::mime {

struct noted {
  std::string raw;    ///< The message with the note, CRLF line endings.
  std::string error;  ///< Why the note could not be added (not a message, no text part).
};

/// Puts `note` at the top of every text body of a message: before the text of text/plain parts,
/// as an HTML-escaped paragraph at the start of the body of text/html parts. Attachments are
/// left alone. For "resend this order confirmation with a word from us".
noted add_note(std::string_view raw, std::string_view note);

}  // namespace postern::mime
