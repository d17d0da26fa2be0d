#pragma once
/// @file protocol.hpp
/// The pure parts of an SMTP client: replies and their parsing, EHLO capabilities, the
/// envelope commands, dot-stuffing, recipient batches. No I/O, so that unit tests reach them.

#include <postern/types.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::transports::smtp {

/// One reply from an SMTP server, or the lack of one.
struct reply {
  /// The three-digit code; 0 when no reply came (connection lost, timeout): `lines` then holds
  /// one line saying why.
  int code = 0;
  /// The RFC 3463 enhanced status code of the first line ("5.1.1"), or empty when there is none.
  std::string enhanced;
  /// Each line's text, without the code, the separator and a leading enhanced code.
  std::vector<std::string> lines;

  /// The lines joined by single spaces: one line for logs and recipient results.
  std::string text() const;
  bool positive() const noexcept { return code >= 200 && code < 300; }
  bool intermediate() const noexcept { return code >= 300 && code < 400; }
  bool transient() const noexcept { return code >= 400 && code < 500; }
  bool permanent() const noexcept { return code >= 500 && code < 600; }
  /// The reply as the SDK's smtp_reply, code, enhanced code and text kept as the server sent them.
  postern::smtp_reply to_smtp_reply() const;
};

/// Splits what a server sends into replies (RFC 5321 §4.2: "250-" continues a reply, "250 "
/// or a bare "250" ends it). Feed it bytes as they arrive; take complete replies with next().
///
/// A line that does not start with a code from 200 to 599, a line longer than
/// `max_line` octets or a reply of more than `max_lines` lines is a protocol error: next()
/// returns nothing from then on and error() says what was wrong. Not thread-safe.
class reply_parser {
 public:
  static constexpr std::size_t max_line = 4096;
  static constexpr std::size_t max_lines = 512;

  /// Appends bytes received from the server.
  void feed(std::string_view bytes);
  /// The next complete reply, or nothing when the input holds no complete one (or after an error).
  std::optional<reply> next();
  /// Why the input is not SMTP; empty while it is.
  const std::string& error() const noexcept { return error_; }
  /// True when bytes beyond the complete replies taken are waiting (a partial reply).
  bool has_pending_input() const noexcept { return pos_ < buffer_.size(); }

 private:
  std::string buffer_;
  std::size_t pos_ = 0;  // start of the first reply not taken yet
  std::string error_;
};

/// What a server offers in its EHLO reply (RFC 5321 §4.1.1.1 and the extensions postern uses).
struct capabilities {
  bool esmtp = false;             ///< The server answered EHLO (not only HELO).
  bool pipelining = false;        ///< RFC 2920
  bool starttls = false;          ///< RFC 3207
  bool eight_bit_mime = false;    ///< RFC 6152
  bool smtputf8 = false;          ///< RFC 6531
  bool dsn = false;               ///< RFC 3461
  bool size = false;              ///< RFC 1870
  std::uint64_t size_limit = 0;   ///< The SIZE parameter; 0 when the server named no limit.
  std::vector<std::string> auth;  ///< AUTH mechanisms, upper case.

  /// True when `mechanism` (upper case) is among the AUTH mechanisms.
  bool offers_auth(std::string_view mechanism) const;
  /// The keywords postern cares about, for a log line: "PIPELINING SIZE=10240000 STARTTLS AUTH=PLAIN,LOGIN".
  std::string summary() const;
};

/// Reads the capabilities from a positive EHLO reply: the first line is the greeting, every
/// other line one keyword with its parameters. Keywords are case-insensitive; the old
/// "AUTH=PLAIN LOGIN" form counts as AUTH.
capabilities parse_ehlo(const reply& ehlo);


/// What the MAIL command says about one transaction.
struct mail_parameters {
  std::string sender;      ///< Empty: the null sender "<>".
  std::uint64_t size = 0;  ///< Sent as SIZE= when the server offers SIZE.
  bool eight_bit = false;  ///< The content has octets above 127: BODY=8BITMIME when offered.
  bool smtputf8 = false;   ///< The envelope or the header has UTF-8: SMTPUTF8 when offered.
  postern::dsn_ret ret = postern::dsn_ret::unspecified;  ///< RET= when the server offers DSN.
  std::string envid;                                     ///< ENVID= (xtext-encoded here) when the server offers DSN.
};

/// "MAIL FROM:<sender> …\r\n" with the parameters the server offers.
std::string mail_command(const mail_parameters& mail, const capabilities& caps);

/// "RCPT TO:<address> …\r\n", with NOTIFY and ORCPT when the server offers DSN.
/// `orcpt` is "type;address" as postern stores it (decoded); it is xtext-encoded here.
std::string rcpt_command(const postern::recipient& rcpt, const capabilities& caps);

/// The content of DATA as it goes on the wire: every line that starts with "." gets another
/// one (RFC 5321 §4.5.2), a bare LF becomes CRLF, the last line is ended, and the
/// terminating ".\r\n" is appended.
std::string dot_stuff(std::string_view raw);

/// True when `text` has an octet above 127.
bool has_8bit(std::string_view text) noexcept;

/// True when the header section of `raw` (up to the first empty line) has an octet above 127.
bool header_has_8bit(std::string_view raw) noexcept;

/// Splits `count` recipients into transactions of at most `max_per_transaction` each, in
/// order: {0..99}, {100..199}, … Each inner vector holds positions into the recipient list.
std::vector<std::vector<std::size_t>> recipient_batches(std::size_t count, std::size_t max_per_transaction);

/// The server's id for an accepted message, taken from the text of its final reply when it
/// has a form that is recognised ("queued as 4ABC", "id=1abc-0002", sendmail's
/// "x8ABCD123 Message accepted for delivery"); otherwise the text itself.
std::string remote_queue_id(std::string_view final_reply_text);

/// Standard base64 (RFC 4648 §4) without line breaks.
std::string base64(std::string_view data);

/// The initial response of AUTH PLAIN (RFC 4616): base64 of "\0user\0password".
std::string auth_plain_response(std::string_view user, std::string_view password);

}  // namespace postern::transports::smtp
