#pragma once
// Message templates: text with {{ variable }} placeholders. Written here rather than taken from
// a template library: the API promises errors that name the template part, line and variable,
// and HTML escaping of every value in HTML bodies with no way to turn it off by accident; a
// general template language would bring loops, partials and raw output that a mail template
// for shops does not need (docs/templates.md).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::templates {

using variables = std::map<std::string, std::string, std::less<>>;

/// Where and why a template cannot be rendered.
struct template_error {
  std::size_t line = 0;   ///< 1-based line of the placeholder.
  std::string variable;   ///< The variable name, when one is at fault.
  std::string message;    ///< "unknown variable order_id", "unclosed {{", ...
};

enum class escaping { none, html };

struct rendered {
  std::string text;
  std::optional<template_error> error;
};

/// Replaces every {{ name }} with its value (HTML-escaped with escaping::html). A name is
/// letters, digits, '_' and '.', starting with a letter or '_'. An unknown name, an unclosed
/// "{{" or a bad name is an error; the first one found is reported.
rendered render(std::string_view source, const variables& values, escaping mode);

/// The first syntax error of a template, if any (names are not checked against values).
std::optional<template_error> check_syntax(std::string_view source);

/// The names a template uses, each once, in order of first use.
std::vector<std::string> names_used(std::string_view source);

/// & < > " ' as HTML character references.
std::string html_escape(std::string_view text);

}  // namespace postern::templates
