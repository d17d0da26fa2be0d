#pragma once
/// @file connection.hpp
/// One SMTP client connection to a relay: connect, greeting, EHLO, STARTTLS, AUTH, then any
/// number of mail transactions, then QUIT.

#include "protocol.hpp"
#include "settings.hpp"

#include <postern/host.hpp>
#include <postern/types.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace postern::transports::smtp {

/// Makes the TLS client context the settings ask for: TLS 1.2 or later; the peer's
/// certificate checked against `tls_ca_file` or the system's CA store unless `tls_verify` is
/// false. Throws std::invalid_argument naming `origin` and tls_ca_file when that file cannot
/// be loaded.
std::shared_ptr<boost::asio::ssl::context> make_client_tls(const settings& s, const std::string& origin);

/// How opening a connection went.
struct open_result {
  bool ok = false;
  /// When !ok: the reply every recipient of the waiting transaction would get, either the
  /// relay's own (421 greeting, 535 to AUTH; code and enhanced code kept) or a 4xx made up
  /// for a network or TLS failure. The text names the relay and says what went wrong.
  postern::smtp_reply failure;
};

/// One mail transaction: a message and some of its recipients.
struct transaction_request {
  mail_parameters mail;                ///< Sender and MAIL parameters (offered ones are used).
  bool sender_needs_smtputf8 = false;  ///< The sender address is not ASCII.
  std::vector<postern::recipient> recipients;
  std::shared_ptr<const std::string> content;  ///< dot_stuff() of the message, "." line included.
};

/// What became of a transaction, one result per recipient, in the order of the request.
struct transaction_result {
  /// A reused connection was found closed before the transaction began (no reply to RSET):
  /// nothing was sent, the results are empty, and the transaction can go on another connection.
  bool not_started = false;
  std::vector<postern::recipient_result> results;
};

/// A log sink: the transport's host log, with its level.
using log_function = std::function<void(postern::log_level, const std::string&)>;

/// A client connection to one relay.
///
/// Every member is a coroutine or a plain function meant for the one strand (thread) of the
/// transport's io_context; nothing here is thread-safe. Each read and write is timed by the
/// phase's timeout from the settings (a Beast tcp_stream expiry set before each operation); a
/// timeout ends the connection. Errors the network or the relay can cause are returned as
/// values; only a failure of the program itself (out of memory) throws.
class connection {
 public:
  /// What the connection is opened for: a probe stops before AUTH.
  enum class purpose { deliver, probe };

  /// `s` and `tls` must outlive the connection.
  connection(boost::asio::any_io_executor executor, const settings& s, boost::asio::ssl::context& tls,
             relay_address relay, log_function log);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Resolves the relay, connects, reads the greeting, says EHLO (HELO when EHLO is refused),
  /// upgrades with STARTTLS as `tls` asks and, for delivery with a username, authenticates
  /// (PLAIN when offered, else LOGIN). Call once.
  boost::asio::awaitable<open_result> open(purpose why);

  /// Runs one transaction. On a connection used before, an RSET goes first. With PIPELINING
  /// the RSET, MAIL, RCPTs and DATA go in one write and the replies are read in order.
  /// Recipients refused by RCPT get that reply; a refused MAIL or DATA, or a failing final
  /// reply, goes to every recipient still in the transaction; a lost connection gives 451
  /// 4.4.2 to those without a final answer. Delivery is claimed only on the final 2xx.
  boost::asio::awaitable<transaction_result> send(const transaction_request& request);

  /// Says QUIT (briefly waiting for the reply) and closes.
  boost::asio::awaitable<void> quit();

  /// Closes the socket at once; operations in progress end with an error that mentions
  /// `reason` (for instance "postern is stopping").
  void close(const std::string& reason) noexcept;

  /// True after a successful open() while no error has ended the connection.
  bool usable() const noexcept { return open_ && !broken_ && !closed_; }
  /// True once the relay has answered EHLO (or HELO), even if opening failed after that.
  bool answered_hello() const noexcept { return answered_hello_; }
  /// What the relay offers (after the last EHLO).
  const capabilities& caps() const noexcept { return caps_; }
  const relay_address& relay() const noexcept { return relay_; }
  /// "TLSv1.3 TLS_AES_256_GCM_SHA384", or empty without TLS.
  std::string tls_description() const;
  /// "relay HOST:PORT", as replies and logs name the relay.
  const std::string& where() const noexcept { return where_; }

 private:
  using milliseconds = std::chrono::milliseconds;

  boost::beast::tcp_stream& lowest();
  boost::asio::awaitable<boost::system::error_code> write(std::string_view data, milliseconds timeout);
  boost::asio::awaitable<reply> read_reply(milliseconds timeout, std::string_view waiting_for);
  boost::asio::awaitable<open_result> hello();
  boost::asio::awaitable<open_result> starttls();
  boost::asio::awaitable<open_result> authenticate();

  reply lost(const std::string& why);
  std::string describe(const boost::system::error_code& ec, milliseconds timeout) const;
  open_result failed(int code, const std::string& enhanced, const std::string& text) const;
  open_result refused(const reply& r, const std::string& what) const;
  postern::smtp_reply outcome(const reply& r, std::string_view command) const;
  void log(postern::log_level level, const std::string& text) const;

  boost::asio::any_io_executor executor_;
  const settings& settings_;
  boost::asio::ssl::context& tls_context_;
  relay_address relay_;
  log_function log_;
  std::string where_;

  boost::asio::ip::tcp::resolver resolver_;
  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_;
  std::vector<char> read_buffer_;
  reply_parser parser_;
  capabilities caps_;
  std::string closed_reason_;
  std::size_t transactions_ = 0;
  bool open_ = false;
  bool answered_hello_ = false;
  bool broken_ = false;
  bool closed_ = false;
};

}  // namespace postern::transports::smtp
