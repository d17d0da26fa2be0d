#pragma once
// SMTP command lines (RFC 5321 §4.1), parsed without any I/O so they can be tested and fuzzed.

#include <postern/types.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace postern::ingress::smtp {

enum class verb { helo, ehlo, mail, rcpt, data, bdat, rset, noop, quit, vrfy, expn, help, starttls, auth, unknown, not_implemented };

/// One parsed command line.
struct command {
  verb what = verb::unknown;
  std::string name;      ///< The verb as sent, upper-cased.
  std::string argument;  ///< Everything after the verb, trimmed.
  std::string address;   ///< MAIL/RCPT: the path without brackets or source route; empty for <>.
  std::vector<std::pair<std::string, std::string>> params;  ///< ESMTP parameters, keys upper-cased.

  /// The value of a parameter, if present (keys are compared upper-case).
  std::optional<std::string> param(std::string_view key) const;
};

/// A parse result: a command, or the reply that refuses the line.
struct parse_result {
  std::optional<command> cmd;
  postern::smtp_reply error;
};

/// Parses one line without its CRLF. Never throws.
parse_result parse_command(std::string_view line);

/// True if the text has bytes outside US-ASCII (needs SMTPUTF8 in an address).
bool has_non_ascii(std::string_view text);

}  // namespace postern::ingress::smtp
