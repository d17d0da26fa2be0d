#pragma once
// CSV as RFC 4180 describes it (quoted fields, doubled quotes, CRLF or LF), for contact
// imports. Written here: the format is small, and the import must name the line and column of
// a problem, which the CSV libraries Debian ships do not report in a form we can pass on.

#include <string>
#include <string_view>
#include <vector>

namespace postern::ingress::http {

struct csv_table {
  std::vector<std::vector<std::string>> rows;  ///< The header row first.
  std::vector<std::size_t> lines;              ///< The line each row starts on (1-based).
  std::string error;                           ///< "line N: …" when the text is not CSV.
};

csv_table parse_csv(std::string_view text);

}  // namespace postern::ingress::http
