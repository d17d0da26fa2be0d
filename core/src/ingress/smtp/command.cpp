#include "ingress/smtp/command.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace postern::ingress::smtp {
namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequal_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

verb verb_of(const std::string& name) {
  static const std::array<std::pair<const char*, verb>, 17> table{{
      {"HELO", verb::helo}, {"EHLO", verb::ehlo}, {"MAIL", verb::mail}, {"RCPT", verb::rcpt},
      {"DATA", verb::data}, {"BDAT", verb::bdat}, {"RSET", verb::rset}, {"NOOP", verb::noop},
      {"QUIT", verb::quit}, {"VRFY", verb::vrfy}, {"EXPN", verb::expn}, {"HELP", verb::help},
      {"STARTTLS", verb::starttls}, {"AUTH", verb::auth},
      // Known to SMTP but not offered here: 502 rather than 500.
      {"TURN", verb::not_implemented}, {"ETRN", verb::not_implemented}, {"ATRN", verb::not_implemented},
  }};
  for (const auto& [n, v] : table) {
    if (name == n) return v;
  }
  return verb::unknown;
}

parse_result fail(int code, const char* enhanced, std::string text) { return {std::nullopt, {code, enhanced, std::move(text)}}; }

/// Parses "<path> params" after "FROM:" / "TO:". Accepts a space after the colon, as Postfix
/// does, and a source route (<@a,@b:user@c>), which RFC 5321 says to ignore.
bool parse_path_and_params(std::string_view rest, command& cmd, std::string& problem) {
  rest = trim(rest);
  if (rest.empty() || rest.front() != '<') {
    problem = "Syntax: address must be in angle brackets";
    return false;
  }
  // Find the closing bracket outside a quoted string.
  bool quoted = false;
  std::size_t close = std::string_view::npos;
  for (std::size_t i = 1; i < rest.size(); ++i) {
    const char c = rest[i];
    if (c == '\\' && quoted) {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == '>' && !quoted) {
      close = i;
      break;
    }
  }
  if (close == std::string_view::npos) {
    problem = "Syntax: missing '>'";
    return false;
  }
  std::string_view path = rest.substr(1, close - 1);
  if (!path.empty() && path.front() == '@') {
    const auto colon = path.find(':');
    if (colon == std::string_view::npos) {
      problem = "Syntax: bad source route";
      return false;
    }
    path.remove_prefix(colon + 1);
  }
  cmd.address = std::string(path);
  std::string_view params = rest.substr(close + 1);
  if (!params.empty() && params.front() != ' ') {
    problem = "Syntax: parameters must follow the address after a space";
    return false;
  }
  params = trim(params);
  while (!params.empty()) {
    const auto space = params.find(' ');
    std::string_view p = params.substr(0, space);
    const auto eq = p.find('=');
    std::string key = upper(p.substr(0, eq));
    if (key.empty()) {
      problem = "Syntax: empty parameter";
      return false;
    }
    cmd.params.emplace_back(std::move(key), eq == std::string_view::npos ? std::string() : std::string(p.substr(eq + 1)));
    params = space == std::string_view::npos ? std::string_view() : trim(params.substr(space));
  }
  return true;
}

}  // namespace

std::optional<std::string> command::param(std::string_view key) const {
  for (const auto& [k, v] : params) {
    if (k == key) return v;
  }
  return std::nullopt;
}

parse_result parse_command(std::string_view line) {
  for (char c : line) {
    if (c == '\0' || c == '\r' || c == '\n') return fail(500, "5.5.2", "Syntax error: control characters in command");
  }
  const auto space = line.find(' ');
  command cmd;
  cmd.name = upper(line.substr(0, space));
  if (cmd.name.empty()) return fail(500, "5.5.2", "Syntax error: empty command");
  cmd.what = verb_of(cmd.name);
  cmd.argument = std::string(space == std::string_view::npos ? std::string_view() : trim(line.substr(space + 1)));

  std::string problem;
  switch (cmd.what) {
    case verb::unknown:
      return fail(500, "5.5.1", "Unknown command " + cmd.name.substr(0, 16));
    case verb::not_implemented:
      return fail(502, "5.5.1", cmd.name + " not implemented");
    case verb::helo:
    case verb::ehlo:
      if (cmd.argument.empty()) return fail(501, "5.5.4", "Syntax: " + cmd.name + " hostname");
      break;
    case verb::mail:
      if (!iequal_prefix(cmd.argument, "FROM:")) return fail(501, "5.5.4", "Syntax: MAIL FROM:<address>");
      if (!parse_path_and_params(std::string_view(cmd.argument).substr(5), cmd, problem))
        return fail(501, "5.5.4", problem);
      break;
    case verb::rcpt:
      if (!iequal_prefix(cmd.argument, "TO:")) return fail(501, "5.5.4", "Syntax: RCPT TO:<address>");
      if (!parse_path_and_params(std::string_view(cmd.argument).substr(3), cmd, problem))
        return fail(501, "5.5.4", problem);
      break;
    case verb::data:
    case verb::rset:
    case verb::quit:
    case verb::starttls:
      if (!cmd.argument.empty()) return fail(501, "5.5.4", "Syntax: " + cmd.name + " takes no arguments");
      break;
    case verb::bdat:
    case verb::auth:
      if (cmd.argument.empty()) return fail(501, "5.5.4", "Syntax: " + cmd.name + " needs arguments");
      break;
    default:
      break;
  }
  return {std::move(cmd), {}};
}

bool has_non_ascii(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) > 127; });
}

}  // namespace postern::ingress::smtp
