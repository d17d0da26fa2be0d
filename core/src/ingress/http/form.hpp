#pragma once
// Request bodies of the Mailgun-compatible API: application/x-www-form-urlencoded and
// multipart/form-data (RFC 7578). Fields keep their order and repeats, because Mailgun clients
// send `to` (and `attachment`) once per value.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace postern::ingress::http {

struct form_file {
  std::string field;         ///< The part's form-data name.
  std::string filename;      ///< As sent (GMime decodes RFC 2231 and encoded words); may be empty.
  std::string content_type;  ///< The part's Content-Type value, empty when the part had none.
  std::string data;          ///< Transfer encoding removed; otherwise the bytes as sent.
};

struct form_data {
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<form_file> files;
  std::string error;  ///< Empty on success; then fields and files are complete.
};

/// Decodes '+' as space and %XX escapes; a pair without '=' is a field with an empty value.
form_data parse_urlencoded(std::string_view body);

/// A part is a file when its Content-Disposition has a filename parameter (even an empty one,
/// as browsers send for an empty file input), a field otherwise.
form_data parse_multipart(std::string_view content_type_header, std::string_view body);

}  // namespace postern::ingress::http
