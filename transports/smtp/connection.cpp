#include "connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <stdexcept>

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;

namespace postern::transports::smtp {
namespace {

constexpr std::size_t content_block = 64 * 1024;  // one write of content, timed by data_timeout
constexpr std::chrono::milliseconds quit_timeout{std::chrono::seconds(5)};

std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 != 0) return std::to_string(d.count()) + " ms";
  return std::to_string(d.count() / 1000) + " s";
}

/// Forgets a secret before its memory is freed.
void wipe(std::string& secret) {
  OPENSSL_cleanse(secret.data(), secret.size());
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_client_tls(const settings& s, const std::string& origin) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  if (!s.tls_verify) {
    ctx->set_verify_mode(asio::ssl::verify_none);
    return ctx;
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  boost::system::error_code ec;
  if (!s.tls_ca_file.empty()) {
    // A private CA replaces the system store: only what the operator named is trusted.
    ctx->load_verify_file(s.tls_ca_file, ec);
    if (ec)
      throw std::invalid_argument(origin + ": tls_ca_file: cannot load CA certificates from " + s.tls_ca_file + ": " +
                                  ec.message());
  } else {
    ctx->set_default_verify_paths(ec);  // a missing system store shows as a verification failure
  }
  return ctx;
}

connection::connection(asio::any_io_executor executor, const settings& s, asio::ssl::context& tls, relay_address relay,
                       log_function log)
    : executor_(std::move(executor)),
      settings_(s),
      tls_context_(tls),
      relay_(std::move(relay)),
      log_(std::move(log)),
      where_("relay " + relay_.text()),
      resolver_(executor_),
      read_buffer_(16 * 1024) {}

// ---- I/O ---------------------------------------------------------------------------------------

beast::tcp_stream& connection::lowest() {
  return tls_ ? beast::get_lowest_layer(*tls_) : *plain_;
}

asio::awaitable<boost::system::error_code> connection::write(std::string_view data, milliseconds timeout) {
  boost::system::error_code ec;
  if (closed_ || (!plain_ && !tls_)) co_return asio::error::not_connected;
  lowest().expires_after(timeout);
  const auto buffer = asio::buffer(data.data(), data.size());
  if (tls_) {
    std::tie(ec, std::ignore) = co_await asio::async_write(*tls_, buffer, asio::as_tuple(asio::use_awaitable));
  } else {
    std::tie(ec, std::ignore) = co_await asio::async_write(*plain_, buffer, asio::as_tuple(asio::use_awaitable));
  }
  if (ec) broken_ = true;
  co_return ec;
}

asio::awaitable<reply> connection::read_reply(milliseconds timeout, std::string_view waiting_for) {
  for (;;) {
    auto next = parser_.next();
    if (next) co_return std::move(*next);
    if (!parser_.error().empty()) {
      broken_ = true;
      co_return lost("sent " + parser_.error() + " in reply to " + std::string(waiting_for));
    }
    if (closed_ || (!plain_ && !tls_)) co_return lost(closed_ ? closed_reason_ : "not connected");
    // The timer before every read: a relay that stops answering costs at most `timeout`.
    lowest().expires_after(timeout);
    boost::system::error_code ec;
    std::size_t n = 0;
    const auto buffer = asio::buffer(read_buffer_);
    if (tls_) {
      std::tie(ec, n) = co_await tls_->async_read_some(buffer, asio::as_tuple(asio::use_awaitable));
    } else {
      std::tie(ec, n) = co_await plain_->async_read_some(buffer, asio::as_tuple(asio::use_awaitable));
    }
    if (ec) {
      broken_ = true;
      co_return lost(describe(ec, timeout) + " waiting for the reply to " + std::string(waiting_for));
    }
    parser_.feed(std::string_view(read_buffer_.data(), n));
  }
}

reply connection::lost(const std::string& why) {
  broken_ = true;
  reply r;
  r.lines.push_back(why);
  return r;
}

std::string connection::describe(const boost::system::error_code& ec, milliseconds timeout) const {
  if (closed_) return closed_reason_;
  if (ec == beast::error::timeout) return "timed out after " + format_duration(timeout);
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) return "the relay closed the connection";
  if (ec == asio::error::connection_reset) return "the relay reset the connection";
  return ec.message();
}

void connection::close(const std::string& reason) noexcept {
  if (closed_) return;
  closed_ = true;
  closed_reason_ = reason;
  resolver_.cancel();
  boost::system::error_code ignored;
  if (tls_) beast::get_lowest_layer(*tls_).socket().close(ignored);
  if (plain_) plain_->socket().close(ignored);
}

std::string connection::tls_description() const {
  if (!tls_) return "";
  auto* ssl = const_cast<beast::ssl_stream<beast::tcp_stream>&>(*tls_).native_handle();
  return std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl);
}

void connection::log(postern::log_level level, const std::string& text) const {
  if (log_) log_(level, text);
}

// ---- opening -----------------------------------------------------------------------------------

open_result connection::failed(int code, const std::string& enhanced, const std::string& text) const {
  return {false, {code, enhanced, where_ + ": " + text}};
}

open_result connection::refused(const reply& r, const std::string& what) const {
  if (r.code == 0) return failed(451, "4.4.2", r.text());
  // The relay's own code decides: 421 and 454 are worth a retry, 535 and 554 are not.
  const int code = r.transient() || r.permanent() ? r.code : 451;
  return failed(code, r.enhanced, what + ": " + std::to_string(r.code) + " " + r.text());
}

asio::awaitable<open_result> connection::open(purpose why) {
  boost::system::error_code ec;
  tcp::resolver::results_type endpoints;
  const std::string port = std::to_string(relay_.port);
  const auto flags = relay_.literal ? tcp::resolver::numeric_host : tcp::resolver::flags();
  std::tie(ec, endpoints) =
      co_await resolver_.async_resolve(relay_.host, port, flags, asio::as_tuple(asio::use_awaitable));
  if (closed_) co_return failed(451, "4.4.1", closed_reason_);
  if (ec) co_return failed(451, "4.4.3", "cannot resolve " + relay_.host + ": " + ec.message());

  plain_.emplace(executor_);
  plain_->expires_after(settings_.connect_timeout);
  tcp::endpoint peer;
  std::tie(ec, peer) = co_await plain_->async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return failed(451, "4.4.1", "cannot connect: " + describe(ec, settings_.connect_timeout));
  boost::system::error_code ignored;
  // Commands wait for replies: send each group at once rather than after a delayed ACK.
  plain_->socket().set_option(tcp::no_delay(true), ignored);
  log(postern::log_level::debug, "connected to " + where_ + " [" + peer.address().to_string() + "]");

  auto greeting = co_await read_reply(settings_.helo_timeout, "the greeting");
  if (!greeting.positive()) co_return refused(greeting, "greeting");

  auto hello_result = co_await hello();
  if (!hello_result.ok) co_return hello_result;

  if (settings_.tls != tls_mode::none) {
    if (caps_.starttls) {
      auto tls_result = co_await starttls();
      if (!tls_result.ok) co_return tls_result;
    } else if (settings_.tls == tls_mode::required) {
      co_return failed(451, "4.7.4", "does not offer STARTTLS, and tls = \"required\"");
    }
  }

  if (why == purpose::deliver && !settings_.username.empty()) {
    auto auth_result = co_await authenticate();
    if (!auth_result.ok) co_return auth_result;
  }
  open_ = true;
  co_return open_result{true, {}};
}

asio::awaitable<open_result> connection::hello() {
  const std::string ehlo = "EHLO " + settings_.helo_name + "\r\n";
  auto ec = co_await write(ehlo, settings_.helo_timeout);
  if (ec) co_return failed(451, "4.4.2", "connection lost sending EHLO: " + describe(ec, settings_.helo_timeout));
  auto r = co_await read_reply(settings_.helo_timeout, "EHLO");
  if (r.positive()) {
    caps_ = parse_ehlo(r);
    answered_hello_ = true;
    co_return open_result{true, {}};
  }
  if (r.code == 0 || r.code == 421) co_return refused(r, "EHLO");
  // An SMTP server without extensions: HELO, and none of them.
  const std::string helo = "HELO " + settings_.helo_name + "\r\n";
  ec = co_await write(helo, settings_.helo_timeout);
  if (ec) co_return failed(451, "4.4.2", "connection lost sending HELO: " + describe(ec, settings_.helo_timeout));
  auto fallback = co_await read_reply(settings_.helo_timeout, "HELO");
  if (!fallback.positive()) co_return refused(fallback, "HELO");
  caps_ = capabilities{};
  answered_hello_ = true;
  co_return open_result{true, {}};
}

asio::awaitable<open_result> connection::starttls() {
  const std::string command = "STARTTLS\r\n";
  auto ec = co_await write(command, settings_.helo_timeout);
  if (ec) co_return failed(451, "4.4.2", "connection lost sending STARTTLS: " + describe(ec, settings_.helo_timeout));
  auto r = co_await read_reply(settings_.helo_timeout, "STARTTLS");
  if (r.code == 0) co_return refused(r, "STARTTLS");
  if (r.code != 220) {
    // Opportunistic TLS goes on in clear text when the relay declines; required TLS cannot.
    if (settings_.tls == tls_mode::required || r.code == 421) co_return refused(r, "STARTTLS refused");
    log(postern::log_level::info, where_ + " declined STARTTLS (" + std::to_string(r.code) + " " + r.text() +
                                      "); going on without TLS (tls = \"opportunistic\")");
    co_return open_result{true, {}};
  }
  // Anything sent before the handshake would be taken as if it came over TLS (CVE-2011-0411).
  if (parser_.has_pending_input()) co_return failed(451, "4.7.5", "sent data after its STARTTLS reply");

  tls_.emplace(std::move(*plain_), tls_context_);
  plain_.reset();
  SSL* ssl = tls_->native_handle();
  const std::string& name = settings_.tls_server_name.empty() ? relay_.host : settings_.tls_server_name;
  const bool name_is_ip = settings_.tls_server_name.empty() && relay_.literal;
  if (!name_is_ip) SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI carries host names only
  if (settings_.tls_verify) {
    if (name_is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, name.c_str());
    }
  }
  lowest().expires_after(settings_.helo_timeout);
  std::tie(ec) = co_await tls_->async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
  if (ec) {
    broken_ = true;
    std::string why = describe(ec, settings_.helo_timeout);
    const long verify = SSL_get_verify_result(ssl);
    if (settings_.tls_verify && verify != X509_V_OK) {
      why = std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
      if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH)
        why += " (the certificate is not for " + name + ")";
      else if (settings_.tls_ca_file.empty())
        why += " (checked against the system CA store; set tls_ca_file for a private CA)";
    }
    co_return failed(451, "4.7.5", "TLS handshake failed: " + why);
  }
  log(postern::log_level::debug, where_ + ": TLS established, " + tls_description());
  // RFC 3207 §4.2: forget what was learnt in clear text and ask again.
  caps_ = capabilities{};
  auto again = co_await hello();
  co_return again;
}

asio::awaitable<open_result> connection::authenticate() {
  if (!tls_ && !settings_.allow_auth_without_tls)
    co_return failed(451, "4.7.4",
                     "no TLS on this connection, so the credentials were not sent "
                     "(the relay did not offer STARTTLS; allow_auth_without_tls = true would permit it)");
  reply r;
  if (caps_.offers_auth("PLAIN")) {
    std::string response = auth_plain_response(settings_.username, settings_.password);
    std::string command;
    command.reserve(response.size() + 16);  // no reallocation leaves a copy of the secret behind
    command += "AUTH PLAIN ";
    command += response;
    command += "\r\n";
    wipe(response);
    auto ec = co_await write(command, settings_.helo_timeout);
    wipe(command);
    if (ec) co_return failed(451, "4.4.2", "connection lost sending AUTH: " + describe(ec, settings_.helo_timeout));
    r = co_await read_reply(settings_.helo_timeout, "AUTH PLAIN");
  } else if (caps_.offers_auth("LOGIN")) {
    const std::string start = "AUTH LOGIN\r\n";
    auto ec = co_await write(start, settings_.helo_timeout);
    if (ec) co_return failed(451, "4.4.2", "connection lost sending AUTH: " + describe(ec, settings_.helo_timeout));
    r = co_await read_reply(settings_.helo_timeout, "AUTH LOGIN");
    if (r.code == 334) {
      const std::string user = base64(settings_.username) + "\r\n";
      ec = co_await write(user, settings_.helo_timeout);
      if (ec) co_return failed(451, "4.4.2", "connection lost during AUTH: " + describe(ec, settings_.helo_timeout));
      r = co_await read_reply(settings_.helo_timeout, "the AUTH LOGIN user name");
    }
    if (r.code == 334) {
      std::string secret = base64(settings_.password);
      secret.reserve(secret.size() + 2);  // appending in place: no unwiped copy
      secret += "\r\n";
      ec = co_await write(secret, settings_.helo_timeout);
      wipe(secret);
      if (ec) co_return failed(451, "4.4.2", "connection lost during AUTH: " + describe(ec, settings_.helo_timeout));
      r = co_await read_reply(settings_.helo_timeout, "the AUTH LOGIN password");
    }
  } else {
    std::string offered;
    for (const auto& m : caps_.auth) offered += (offered.empty() ? "" : " ") + m;
    co_return failed(451, "4.7.4",
                     "offers no AUTH mechanism postern can use (PLAIN or LOGIN)" +
                         (offered.empty() ? std::string("; it offers no AUTH at all") : "; it offers " + offered));
  }
  if (r.code != 235) co_return refused(r, "AUTH refused");
  log(postern::log_level::debug, where_ + ": authenticated as " + settings_.username);
  co_return open_result{true, {}};
}

// ---- transactions --------------------------------------------------------------------------------

postern::smtp_reply connection::outcome(const reply& r, std::string_view command) const {
  if (r.code == 0) return {451, "4.4.2", where_ + ": " + r.text()};
  if (r.transient() || r.permanent() || r.positive()) return r.to_smtp_reply();
  return {451, "4.5.0",
          where_ + ": unexpected reply to " + std::string(command) + ": " + std::to_string(r.code) + " " + r.text()};
}

asio::awaitable<transaction_result> connection::send(const transaction_request& request) {
  transaction_result out;
  const std::size_t n = request.recipients.size();
  out.results.resize(n);
  std::vector<bool> decided(n, false);
  for (std::size_t i = 0; i < n; ++i) out.results[i].recipient_index = request.recipients[i].index;
  auto decide = [&](std::size_t i, const postern::smtp_reply& reply) {
    if (decided[i]) return;
    out.results[i].reply = reply;
    decided[i] = true;
  };
  auto decide_rest = [&](const postern::smtp_reply& reply) {
    for (std::size_t i = 0; i < n; ++i) decide(i, reply);
  };

  // What the relay cannot take is answered before anything is sent.
  const auto size = request.mail.size;
  if (caps_.size_limit > 0 && size > caps_.size_limit) {
    decide_rest({552, "5.3.4",
                 "message of " + std::to_string(size) + " octets exceeds the limit of " + where_ + " (" +
                     std::to_string(caps_.size_limit) + " octets)"});
    co_return out;
  }
  if (request.sender_needs_smtputf8 && !caps_.smtputf8) {
    decide_rest(
        {550, "5.6.7", "the sender address is not ASCII and needs SMTPUTF8, which " + where_ + " does not offer"});
    co_return out;
  }
  std::vector<std::size_t> active;
  for (std::size_t i = 0; i < n; ++i) {
    if (!caps_.smtputf8 && has_8bit(request.recipients[i].address)) {
      decide(i, {550, "5.6.7",
                 "the recipient address is not ASCII and needs SMTPUTF8, which " + where_ + " does not offer"});
    } else {
      active.push_back(i);
    }
  }
  if (active.empty()) co_return out;

  const bool reused = transactions_ > 0;
  ++transactions_;
  const bool pipelining = caps_.pipelining;
  const auto timeout = settings_.command_timeout;
  const std::string rset = "RSET\r\n";
  const std::string mail = mail_command(request.mail, caps_);
  std::vector<std::string> rcpts;
  for (auto i : active) rcpts.push_back(rcpt_command(request.recipients[i], caps_));
  const std::string data = "DATA\r\n";
  auto lost_all = [&](const reply& r) { decide_rest(outcome(r, "")); };
  boost::system::error_code ec;

  if (pipelining) {
    // RFC 2920: the whole envelope in one write; the replies come back in order.
    std::string group = reused ? rset : std::string();
    group += mail;
    for (const auto& r : rcpts) group += r;
    group += data;
    ec = co_await write(group, timeout);
    if (ec && reused) {
      out.not_started = true;
      out.results.clear();
      co_return out;
    }
    if (ec) {
      lost_all(lost("connection lost sending the envelope: " + describe(ec, timeout)));
      co_return out;
    }
  } else if (reused) {
    ec = co_await write(rset, timeout);
  }
  if (reused) {
    reply r;
    if (!ec) r = co_await read_reply(timeout, "RSET");
    if (ec || !r.positive()) {
      // A cached connection the relay has given up on: nothing of this transaction was sent.
      log(postern::log_level::debug, where_ + ": a reused connection failed its RSET (" + r.text() + "); reconnecting");
      broken_ = true;
      out.not_started = true;
      out.results.clear();
      co_return out;
    }
  }

  if (!pipelining) ec = co_await write(mail, timeout);
  if (ec) {
    lost_all(lost("connection lost sending MAIL FROM: " + describe(ec, timeout)));
    co_return out;
  }
  auto mail_reply = co_await read_reply(timeout, "MAIL FROM");
  if (mail_reply.code == 0) {
    lost_all(mail_reply);
    co_return out;
  }
  const bool mail_ok = mail_reply.positive();
  if (!mail_ok) decide_rest(outcome(mail_reply, "MAIL FROM"));
  if (mail_reply.code == 421) {
    broken_ = true;
    co_return out;
  }
  if (!mail_ok && !pipelining) co_return out;

  std::vector<std::size_t> accepted;
  for (std::size_t k = 0; k < active.size(); ++k) {
    if (!pipelining) ec = co_await write(rcpts[k], timeout);
    if (ec) {
      lost_all(lost("connection lost sending RCPT TO: " + describe(ec, timeout)));
      co_return out;
    }
    auto r = co_await read_reply(timeout, "RCPT TO");
    if (r.code == 0) {
      lost_all(r);
      co_return out;
    }
    if (!mail_ok) continue;  // pipelined commands after a refused MAIL: replies read, not used
    if (r.positive()) {
      accepted.push_back(active[k]);
    } else {
      decide(active[k], outcome(r, "RCPT TO"));
      if (r.code == 421) {
        decide_rest(outcome(r, "RCPT TO"));
        broken_ = true;
        co_return out;
      }
    }
  }
  // Without PIPELINING, DATA is not sent when nobody is left; the next transaction's RSET
  // clears the open one.
  if (!pipelining && accepted.empty()) co_return out;

  if (!pipelining) ec = co_await write(data, timeout);
  if (ec) {
    lost_all(lost("connection lost sending DATA: " + describe(ec, timeout)));
    co_return out;
  }
  auto data_reply = co_await read_reply(timeout, "DATA");
  if (data_reply.code == 0) {
    lost_all(data_reply);
    co_return out;
  }
  if (!mail_ok || accepted.empty()) {
    // A relay that says 354 with no recipient gets an empty message, which it then refuses.
    if (data_reply.code == 354) {
      const std::string end = ".\r\n";
      ec = co_await write(end, settings_.data_timeout);
      if (!ec) {
        [[maybe_unused]] auto refused = co_await read_reply(settings_.data_done_timeout, "the end of an empty message");
      }
    }
    co_return out;
  }
  if (data_reply.code != 354) {
    decide_rest(outcome(
        data_reply.positive() ? reply{451, "4.5.0", {"answered DATA with " + data_reply.text()}} : data_reply, "DATA"));
    if (data_reply.code == 421) broken_ = true;
    co_return out;
  }

  const std::string& content = *request.content;
  for (std::size_t at = 0; at < content.size(); at += content_block) {
    const auto block = std::string_view(content).substr(at, content_block);
    ec = co_await write(block, settings_.data_timeout);
    if (ec) {
      lost_all(lost("connection lost sending the message: " + describe(ec, settings_.data_timeout)));
      co_return out;
    }
  }
  auto final_reply = co_await read_reply(settings_.data_done_timeout, "the end of the message");
  if (final_reply.code == 0) {
    // Whether the relay took it is unknown: a retry may deliver twice, which beats losing it.
    lost_all(lost(final_reply.text() + "; the relay may or may not have taken the message"));
    co_return out;
  }
  const auto final_outcome = outcome(final_reply, "the end of the message");
  const std::string id = final_reply.positive() ? remote_queue_id(final_reply.text()) : std::string();
  for (auto i : accepted) {
    decide(i, final_outcome);
    out.results[i].remote_id = id;
  }
  if (final_reply.code == 421) broken_ = true;
  co_return out;
}

asio::awaitable<void> connection::quit() {
  if (!closed_ && !broken_ && (plain_ || tls_)) {
    const std::string command = "QUIT\r\n";
    auto ec = co_await write(command, quit_timeout);
    if (!ec) {
      [[maybe_unused]] auto bye = co_await read_reply(std::min(settings_.command_timeout, quit_timeout), "QUIT");
    }
  }
  close("closed after QUIT");
}

}  // namespace postern::transports::smtp
