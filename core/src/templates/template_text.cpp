#include "templates/template_text.hpp"

#include <algorithm>
#include <cctype>

namespace postern::templates {
namespace {

bool valid_name(std::string_view name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// Walks the template: `literal(text)` for text between placeholders, `placeholder(name, line)`
/// for each one. Stops at the first syntax error and returns it.
template <class Literal, class Placeholder>
std::optional<template_error> walk(std::string_view source, Literal literal, Placeholder placeholder) {
  std::size_t pos = 0;
  std::size_t line = 1;
  for (;;) {
    const auto open = source.find("{{", pos);
    const auto chunk = source.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos);
    literal(chunk);
    line += static_cast<std::size_t>(std::count(chunk.begin(), chunk.end(), '\n'));
    if (open == std::string_view::npos) return std::nullopt;
    const auto close = source.find("}}", open + 2);
    const auto next_open = source.find("{{", open + 2);
    if (close == std::string_view::npos || (next_open != std::string_view::npos && next_open < close))
      return template_error{line, "", "unclosed {{"};
    const auto inside = source.substr(open + 2, close - open - 2);
    if (inside.find('\n') != std::string_view::npos) return template_error{line, "", "unclosed {{"};
    const auto name = trim(inside);
    if (!valid_name(name)) return template_error{line, std::string(name), "bad variable name \"" + std::string(name) + "\""};
    if (auto e = placeholder(name, line)) return e;
    pos = close + 2;
  }
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

rendered render(std::string_view source, const variables& values, escaping mode) {
  rendered out;
  out.error = walk(
      source, [&](std::string_view text) { out.text.append(text); },
      [&](std::string_view name, std::size_t line) -> std::optional<template_error> {
        const auto found = values.find(name);
        if (found == values.end()) return template_error{line, std::string(name), "unknown variable " + std::string(name)};
        out.text += mode == escaping::html ? html_escape(found->second) : found->second;
        return std::nullopt;
      });
  if (out.error) out.text.clear();
  return out;
}

std::optional<template_error> check_syntax(std::string_view source) {
  return walk(source, [](std::string_view) {}, [](std::string_view, std::size_t) -> std::optional<template_error> {
    return std::nullopt;
  });
}

std::vector<std::string> names_used(std::string_view source) {
  std::vector<std::string> names;
  walk(source, [](std::string_view) {}, [&](std::string_view name, std::size_t) -> std::optional<template_error> {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.emplace_back(name);
    return std::nullopt;
  });
  return names;
}

}  // namespace postern::templates
