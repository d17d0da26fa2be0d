#pragma once
// Composes an RFC 5322 message from its parts (the REST APIs take fields, not MIME text). The
// MIME work is GMime's; this file decides the structure and refuses anything that could smuggle
// a header field or an address past the caller.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace postern::mime {

struct attachment {
  std::string filename;
  std::string content_type;  ///< "type/subtype" with optional parameters; empty: application/octet-stream.
  std::string data;
  bool inline_part = false;  ///< With a content_id, placed next to the HTML for "cid:" references.
  std::string content_id;    ///< Without angle brackets.
};

struct message_spec {
  std::string from;                 ///< "Name <a@b>" or "a@b"; required.
  std::vector<std::string> to, cc;  ///< Each one mailbox, "Name <a@b>" or "a@b" (bcc is never written).
  std::string reply_to;
  std::string subject;
  std::string text, html;                                    ///< Either or both (or neither: an empty text body).
  std::vector<std::pair<std::string, std::string>> headers;  ///< Extra header fields, in order.
  std::vector<attachment> attachments;
  std::string message_id;                      ///< Without angle brackets; written as Message-ID when given.
  std::chrono::system_clock::time_point date;  ///< The Date field; the epoch (default) means now.
};

struct build_result {
  std::string raw;    ///< The message, CRLF line endings, no line over 998 octets.
  std::string error;  ///< Empty on success; otherwise names the offending field.
};

/// Builds the message. Never throws for bad input: every refusal is `error`.
build_result build(const message_spec& spec);

}  // namespace postern::mime
