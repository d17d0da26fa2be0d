#include "ingress/http/csv.hpp"

namespace postern::ingress::http {

csv_table parse_csv(std::string_view text) {
  csv_table out;
  std::vector<std::string> row;
  std::string field;
  std::size_t line = 1, row_line = 1;
  bool quoted = false, was_quoted = false, row_open = false;
  auto end_field = [&] {
    row.push_back(std::move(field));
    field.clear();
    was_quoted = false;
  };
  auto end_row = [&] {
    end_field();
    if (!(row.size() == 1 && row[0].empty() && !was_quoted)) {  // blank lines are skipped
      out.rows.push_back(std::move(row));
      out.lines.push_back(row_line);
    }
    row.clear();
    row_open = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (!row_open) {
      row_open = true;
      row_line = line;
    }
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"') {
      if (!field.empty() || was_quoted) {
        out.error = "line " + std::to_string(line) + ": a quote inside an unquoted field";
        return out;
      }
      quoted = was_quoted = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_row();
      ++line;
    } else if (was_quoted) {
      out.error = "line " + std::to_string(line) + ": text after a closing quote";
      return out;
    } else {
      field += c;
    }
  }
  if (quoted) {
    out.error = "line " + std::to_string(row_line) + ": a quoted field is not closed";
    return out;
  }
  if (row_open) end_row();
  return out;
}

}  // namespace postern::ingress::http
