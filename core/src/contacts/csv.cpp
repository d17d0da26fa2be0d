#include "contacts/csv.hpp"

#include "submission/service.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>

namespace postern::contacts {
namespace {

std::optional<bool> flag_text(std::string_view text) {
  std::string t(text);
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "1" || t == "true" || t == "yes") return true;
  if (t == "0" || t == "false" || t == "no") return false;
  return std::nullopt;
}

}  // namespace

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

namespace {
/// A cell of list names separated by ';'.
std::vector<std::string> list_names(std::string_view cell) {
  std::vector<std::string> names;
  while (!cell.empty()) {
    const auto semicolon = cell.find(';');
    if (auto name = cell.substr(0, semicolon); !name.empty()) names.emplace_back(name);
    cell = semicolon == std::string_view::npos ? std::string_view() : cell.substr(semicolon + 1);
  }
  return names;
}
}  // namespace

csv_contacts contacts_from_csv(std::string_view text) {
  // Spreadsheets save "CSV UTF-8" with a byte order mark.
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  auto table = parse_csv(text);
  if (!table.error.empty()) return {{}, table.error};
  if (table.rows.empty()) return {{}, "the file is empty; the first line names the columns"};
  static const std::vector<std::string> known{"email",        "first_name",   "last_name",    "lists",
                                              "unsubscribed_lists", "contact_allowed", "show_name", "show_address",
                                              "unsubscribed"};
  std::map<std::string, std::size_t> column;
  for (std::size_t i = 0; i < table.rows[0].size(); ++i) {
    const auto& name = table.rows[0][i];
    if (std::find(known.begin(), known.end(), name) == known.end())
      return {{}, "line 1: unknown column \"" + name + "\" (known: email, first_name, last_name, lists, "
                  "unsubscribed_lists, contact_allowed, show_name, show_address, unsubscribed)"};
    column[name] = i;
  }
  if (!column.count("email")) return {{}, "line 1: an email column is needed"};
  std::vector<contact_update> out;
  for (std::size_t r = 1; r < table.rows.size(); ++r) {
    const auto& row = table.rows[r];
    const auto where = "line " + std::to_string(table.lines[r]) + ": ";
    if (row.size() != table.rows[0].size())
      return {{}, where + std::to_string(row.size()) + " fields, the header has " + std::to_string(table.rows[0].size())};
    contact_update u;
    u.email = row[column["email"]];
    if (!submission::valid_address(u.email)) return {{}, where + "email: not an address"};
    if (column.count("first_name")) u.first_name = row[column["first_name"]];
    if (column.count("last_name")) u.last_name = row[column["last_name"]];
    if (column.count("lists")) u.join = list_names(row[column["lists"]]);
    if (column.count("unsubscribed_lists")) u.leave = list_names(row[column["unsubscribed_lists"]]);
    for (auto [name, target] : {std::pair{"contact_allowed", &u.contact_allowed}, std::pair{"show_name", &u.show_name},
                                std::pair{"show_address", &u.show_address}, std::pair{"unsubscribed", &u.unsubscribed}}) {
      if (!column.count(name) || row[column[name]].empty()) continue;
      *target = flag_text(row[column[name]]);
      if (!*target) return {{}, where + name + ": expected true or false"};
    }
    out.push_back(std::move(u));
  }
  return {std::move(out), ""};
}

}  // namespace postern::contacts
