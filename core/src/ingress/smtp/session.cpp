#include "ingress/smtp/session.hpp"

#include "ingress/run_blocking.hpp"
#include "ingress/smtp/command.hpp"
#include "logging/log.hpp"
#include "spool/queue_id.hpp"
#include "submission/async_submit.hpp"

#include <postern/xtext.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <sodium.h>

#include <charconv>
#include <optional>

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;

namespace postern::ingress::smtp {
namespace {

constexpr std::size_t max_command_line = 1000;  // octets with CRLF; RFC 5321 §4.5.3.1.4 says 512,
                                                // extensions (SIZE, DSN, AUTH) need more


std::optional<std::string> base64_decode(std::string_view text) {
  std::string out(text.size(), '\0');
  std::size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &length, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
    return std::nullopt;
  out.resize(length);
  return out;
}

/// Text from a client made safe for one log line: control characters become '?'.
std::string printable(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 32 || c == 127) c = '?';
  }
  return out;
}

struct line_result {
  std::string text;
  bool too_long = false;
};

class session {
 public:
  session(tcp::socket socket, session_services services, bool implicit_tls)
      : services_(services),
        options_(services.options),
        executor_(socket.get_executor()),
        read_timer_(executor_),
        plain_(std::move(socket)),
        implicit_tls_(implicit_tls),
        log_(logging::get("smtp")) {
    boost::system::error_code ec;
    const auto remote = plain_.socket().remote_endpoint(ec);
    if (!ec) {
      client_ = remote.address();
      client_text_ = client_.to_string();
    }
    trusted_ = in_any(options_.trusted, client_);
    // Replies are small and each one waits for the client's next command: send them at once.
    plain_.socket().set_option(tcp::no_delay(true), ec);
  }

  asio::awaitable<void> run() {
    const auto slot = services_.server.admit(client_);
    if (!slot) {
      log_->warn("refused a connection from [{}]: connection limit reached", client_text_);
      // On an implicit-TLS port the client expects a handshake, not clear text: just close.
      if (!implicit_tls_) {
        out_ = "421 4.7.0 " + options_.hostname + " Too many connections, try again later\r\n";
        co_await flush();
      }
      co_return;
    }
    log_->debug("connect from [{}]", client_text_);
    if (implicit_tls_) {
      const bool secured = co_await start_tls();
      if (!secured) co_return;
    }
    reply(220, "", options_.hostname + " ESMTP postern");
    while (!closing_) {
      auto line = co_await read_line(options_.smtp.command_timeout);
      if (!line) break;
      if (line->too_long) {
        error_reply(500, "5.5.2", "Line too long (the limit is 1000 octets)");
        continue;
      }
      co_await handle(line->text);
    }
    co_await flush();
    log_->debug("disconnect from [{}]", client_text_);
  }

 private:
  // ---- I/O ---------------------------------------------------------------------------------

  void set_timeout(std::chrono::milliseconds t) {
    if (tls_)
      beast::get_lowest_layer(*tls_).expires_after(t);
    else
      plain_.expires_after(t);
  }

  asio::awaitable<void> flush() {
    if (out_.empty()) co_return;
    set_timeout(options_.smtp.command_timeout);
    // Nothing else touches out_ while the write is under way (one coroutine per session), so
    // it is written in place and keeps its capacity for the next replies.
    boost::system::error_code ec;
    if (tls_) {
      std::tie(ec, std::ignore) =
          co_await asio::async_write(*tls_, asio::buffer(out_), asio::as_tuple(asio::use_awaitable));
    } else {
      std::tie(ec, std::ignore) =
          co_await asio::async_write(plain_, asio::buffer(out_), asio::as_tuple(asio::use_awaitable));
    }
    out_.clear();
    if (ec) closing_ = true;
  }

  /// Reads more input, after sending what is queued (RFC 2920: replies are buffered only
  /// while more commands are already waiting). False at end of input, error or timeout.
  /// The default chunk is RFC 5321's limit for a command line (§4.5.3.1.4): an idle session
  /// holds no more than that.
  asio::awaitable<bool> fill(std::chrono::milliseconds timeout, std::size_t chunk = 512) {
    co_await flush();
    if (closing_) co_return false;
    if (in_pos_ > 0) {
      in_.erase(0, in_pos_);
      in_pos_ = 0;
    }
    const std::size_t old = in_.size();
    // Small reads while waiting for commands keep idle sessions small; big ones for content.
    in_.resize(old + chunk);
    // Reads are timed by our own timer rather than the stream's expiry, which would close the
    // socket: on a timeout the client still gets "421 … timeout exceeded" (as Postfix does).
    arm_read_timer(timeout);
    boost::system::error_code ec;
    std::size_t n = 0;
    if (tls_) {
      std::tie(ec, n) =
          co_await tls_->async_read_some(asio::buffer(in_.data() + old, chunk), asio::as_tuple(asio::use_awaitable));
    } else {
      std::tie(ec, n) =
          co_await plain_.async_read_some(asio::buffer(in_.data() + old, chunk), asio::as_tuple(asio::use_awaitable));
    }
    read_timer_.cancel();
    in_.resize(old + n);
    // The timer may fire just as data arrives: only a read it actually cancelled is a timeout.
    if (timed_out_ && ec == asio::error::operation_aborted) {
      log_->info("timeout from [{}]", client_text_);
      out_ = "421 4.4.2 " + options_.hostname + " Error: timeout exceeded\r\n";
      co_await flush();
      closing_ = true;
      co_return false;
    }
    if (ec) {
      closing_ = true;
      co_return false;
    }
    co_return true;
  }

  void arm_read_timer(std::chrono::milliseconds timeout) {
    if (tls_)
      beast::get_lowest_layer(*tls_).expires_never();
    else
      plain_.expires_never();
    timed_out_ = false;
    read_timer_.expires_after(timeout);
    read_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: the read finished in time
      timed_out_ = true;
      boost::system::error_code ignored;
      if (tls_)
        beast::get_lowest_layer(*tls_).socket().cancel(ignored);
      else
        plain_.socket().cancel(ignored);
    });
  }

  asio::awaitable<std::optional<line_result>> read_line(std::chrono::milliseconds timeout) {
    bool too_long = false;
    for (;;) {
      const auto nl = in_.find('\n', in_pos_);
      if (nl != std::string::npos) {
        line_result r;
        r.too_long = too_long || nl + 1 - in_pos_ > max_command_line;
        std::size_t end = nl;
        if (end > in_pos_ && in_[end - 1] == '\r') --end;
        if (!r.too_long) r.text.assign(in_, in_pos_, end - in_pos_);
        in_pos_ = nl + 1;
        co_return r;
      }
      if (in_.size() - in_pos_ > max_command_line) {
        too_long = true;  // drop what we have; keep reading to the end of the line
        in_.clear();
        in_pos_ = 0;
      }
      const bool more = co_await fill(timeout);
      if (!more) co_return std::nullopt;
    }
  }

  // ---- replies -----------------------------------------------------------------------------

  void reply(int code, std::string_view enhanced, std::string_view text) {
    out_ += std::to_string(code);
    out_ += ' ';
    if (!enhanced.empty()) {
      out_ += enhanced;
      out_ += ' ';
    }
    out_ += text;
    out_ += "\r\n";
  }

  void reply(const postern::smtp_reply& r) { reply(r.code, r.enhanced, r.text); }

  /// A reply to a client mistake. Too many of them end the session (a confused or hostile peer).
  void error_reply(int code, std::string_view enhanced, std::string_view text) {
    reply(code, enhanced, text);
    if (++errors_ >= options_.smtp.max_errors) {
      reply(421, "4.7.0", options_.hostname + " Error: too many errors");
      closing_ = true;
    }
  }

  void error_reply(const postern::smtp_reply& r) { error_reply(r.code, r.enhanced, r.text); }

  // ---- commands ----------------------------------------------------------------------------

  asio::awaitable<void> handle(const std::string& line) {
    auto parsed = parse_command(line);
    if (!parsed.cmd) {
      error_reply(parsed.error);
      co_return;
    }
    const command& cmd = *parsed.cmd;
    switch (cmd.what) {
      case verb::helo: helo(cmd, false); break;
      case verb::ehlo: helo(cmd, true); break;
      case verb::mail: mail(cmd); break;
      case verb::rcpt: rcpt(cmd); break;
      case verb::data: co_await data(); break;
      case verb::bdat: co_await bdat(cmd); break;
      case verb::rset:
        reset_transaction();
        reply(250, "2.0.0", "Ok");
        break;
      case verb::noop: reply(250, "2.0.0", "Ok"); break;
      case verb::quit:
        reply(221, "2.0.0", "Bye");
        closing_ = true;
        break;
      case verb::vrfy: reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery"); break;
      case verb::expn: error_reply(502, "5.5.1", "EXPN not available"); break;
      case verb::help: reply(214, "2.0.0", "postern: see docs/smtp.md; RFC 5321 commands and ESMTP extensions"); break;
      case verb::starttls: co_await starttls(); break;
      case verb::auth: co_await auth(cmd); break;
      default: error_reply(500, "5.5.1", "Unknown command"); break;
    }
  }

  void helo(const command& cmd, bool extended) {
    reset_transaction();
    helo_ = cmd.argument.substr(0, 255);
    extended_ = extended;
    if (!extended) {
      reply(250, "", options_.hostname);
      return;
    }
    std::string r = "250-" + options_.hostname + "\r\n";
    r += "250-PIPELINING\r\n250-SIZE " + std::to_string(options_.max_message_size) + "\r\n";
    r += "250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-CHUNKING\r\n";
    if (options_.tls && !tls_) r += "250-STARTTLS\r\n";
    if (auth_offered()) r += "250-AUTH PLAIN LOGIN\r\n";
    r += "250 HELP\r\n";
    out_ += r;
  }

  bool auth_offered() const { return !tenant_from_auth_ && (tls_ || options_.smtp.auth_without_tls); }

  bool may_submit() const { return tenant_from_auth_ || trusted_; }

  void mail(const command& cmd) {
    if (helo_.empty()) return error_reply(503, "5.5.1", "Error: send HELO/EHLO first");
    if (in_transaction_) return error_reply(503, "5.5.1", "Error: nested MAIL command");
    if (!may_submit()) return error_reply(530, "5.7.0", "Authentication required");
    mail_request_ = {};
    auto& req = mail_request_;
    bool utf8 = false;
    for (const auto& [key, value] : cmd.params) {
      if (key == "SIZE") {
        std::size_t declared = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), declared);
        if (ec != std::errc{} || end != value.data() + value.size() || value.empty())
          return error_reply(501, "5.5.4", "Syntax: SIZE=<number>");
        if (declared > options_.max_message_size)
          return error_reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
      } else if (key == "BODY") {
        if (!beast::iequals(value, "7BIT") && !beast::iequals(value, "8BITMIME"))
          return error_reply(555, "5.5.4", "Unsupported BODY type " + printable(value));
      } else if (key == "SMTPUTF8") {
        utf8 = true;
      } else if (key == "RET") {
        if (value == "FULL")
          req.env.ret = postern::dsn_ret::full;
        else if (value == "HDRS")
          req.env.ret = postern::dsn_ret::headers;
        else
          return error_reply(501, "5.5.4", "Syntax: RET=FULL or RET=HDRS");
      } else if (key == "ENVID") {
        auto decoded = postern::decode_xtext(value);
        if (!decoded || decoded->size() > 100) return error_reply(501, "5.5.4", "Syntax: ENVID=<xtext>");
        req.env.envid = *decoded;
      } else if (key == "AUTH") {
        // RFC 4954 §5: accepted and not relied upon.
      } else {
        return error_reply(555, "5.5.4", "Unsupported parameter " + key);
      }
    }
    if (!cmd.address.empty() && !submission::valid_address(cmd.address))
      return error_reply(553, "5.1.7", "Bad sender address syntax");
    if (has_non_ascii(cmd.address) && !utf8) return error_reply(553, "5.6.7", "SMTPUTF8 required for this address");
    req.env.mail_from = cmd.address;
    utf8_ = utf8;
    auto verdict = check_policies(postern::policy_stage::mail_from);
    if (verdict.decision != postern::verdict::action::accept) return reply(verdict.reply);
    in_transaction_ = true;
    reply(250, "2.1.0", "Ok");
  }

  void rcpt(const command& cmd) {
    if (!in_transaction_) return error_reply(503, "5.5.1", "Error: need MAIL command");
    if (!may_submit()) return error_reply(530, "5.7.0", "Authentication required");
    auto& req = mail_request_;
    if (req.env.recipients.size() >= options_.smtp.max_recipients)
      return reply(452, "4.5.3", "Error: too many recipients");
    postern::recipient r;
    r.address = cmd.address;
    if (r.address.size() == 10 && beast::iequals(r.address, "postmaster"))
      r.address = "postmaster@" + options_.hostname;
    for (const auto& [key, value] : cmd.params) {
      if (key == "NOTIFY") {
        if (!parse_notify(value, r.notify))
          return error_reply(501, "5.5.4", "Syntax: NOTIFY=NEVER or SUCCESS,FAILURE,DELAY");
      } else if (key == "ORCPT") {
        const auto semicolon = value.find(';');
        auto decoded = semicolon == std::string::npos ? std::nullopt : postern::decode_xtext(value.substr(semicolon + 1));
        if (!decoded) return error_reply(501, "5.5.4", "Syntax: ORCPT=<addr-type>;<xtext>");
        r.orcpt = value.substr(0, semicolon) + ";" + *decoded;
      } else {
        return error_reply(555, "5.5.4", "Unsupported parameter " + key);
      }
    }
    if (!submission::valid_address(r.address)) return error_reply(553, "5.1.3", "Bad recipient address syntax");
    if (has_non_ascii(r.address) && !utf8_) return error_reply(553, "5.6.7", "SMTPUTF8 required for this address");
    r.index = static_cast<std::uint32_t>(req.env.recipients.size());
    req.env.recipients.push_back(r);
    auto verdict = check_policies(postern::policy_stage::recipient);
    if (verdict.decision != postern::verdict::action::accept) {
      req.env.recipients.pop_back();
      return reply(verdict.reply);
    }
    reply(250, "2.1.5", "Ok");
  }

  /// The policy chain's answer on the transaction so far (no content before DATA).
  policies::chain_result check_policies(postern::policy_stage stage) const {
    const std::string tenant_name = tenant();
    const auto& req = mail_request_;
    const std::string no_content;
    const postern::submission_view view{tenant_name,       req.stream,         req.tags,   req.campaign_id,
                                        req.env.mail_from, req.env.recipients, no_content, false};
    return services_.policies.evaluate(view, stage);
  }

  static bool parse_notify(std::string_view value, unsigned& out) {
    out = 0;
    while (!value.empty()) {
      const auto comma = value.find(',');
      const auto item = value.substr(0, comma);
      if (beast::iequals(item, "NEVER"))
        out |= postern::notify_never;
      else if (beast::iequals(item, "SUCCESS"))
        out |= postern::notify_success;
      else if (beast::iequals(item, "FAILURE"))
        out |= postern::notify_failure;
      else if (beast::iequals(item, "DELAY"))
        out |= postern::notify_delay;
      else
        return false;
      value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    }
    return out != 0 && (!(out & postern::notify_never) || out == postern::notify_never);
  }

  asio::awaitable<void> data() {
    if (!in_transaction_) {
      error_reply(503, "5.5.1", "Error: need MAIL command");
      co_return;
    }
    if (mail_request_.env.recipients.empty()) {
      error_reply(554, "5.5.1", "Error: no valid recipients");
      co_return;
    }
    if (chunks_) {
      error_reply(503, "5.5.1", "Error: DATA after BDAT");
      co_return;
    }
    reply(354, "", "End data with <CR><LF>.<CR><LF>");
    data_reader reader(data_reader::mode::data, options_.max_message_size, options_.bare_line_endings);
    for (;;) {
      in_pos_ += reader.feed(std::string_view(in_).substr(in_pos_));
      if (reader.finished()) break;
      const bool more = co_await fill(options_.smtp.data_timeout, 16384);
      if (!more) co_return;
    }
    co_await finish_message(reader);
  }

  asio::awaitable<void> bdat(const command& cmd) {
    std::size_t size = 0;
    bool last = false;
    {
      const auto space = cmd.argument.find(' ');
      try {
        std::size_t used = 0;
        size = std::stoull(cmd.argument.substr(0, space), &used);
        if (used != cmd.argument.substr(0, space).size()) throw std::invalid_argument("size");
      } catch (const std::exception&) {
        {
          error_reply(501, "5.5.4", "Syntax: BDAT <size> [LAST]");
          co_return;
        }
      }
      if (space != std::string::npos) {
        if (!beast::iequals(std::string_view(cmd.argument).substr(space + 1), "LAST")) {
          error_reply(501, "5.5.4", "Syntax: BDAT <size> [LAST]");
          co_return;
        }
        last = true;
      }
    }
    // The chunk is read whatever happens, so the session stays in step (RFC 3030 §3).
    if (!chunks_) chunks_.emplace(data_reader::mode::bdat, options_.max_message_size, options_.bare_line_endings);
    std::size_t remaining = size;
    while (remaining > 0) {
      if (in_pos_ == in_.size()) {
        const bool more = co_await fill(options_.smtp.data_timeout, 16384);
        if (!more) co_return;
      }
      const std::size_t take = std::min(remaining, in_.size() - in_pos_);
      chunks_->feed(std::string_view(in_).substr(in_pos_, take));
      in_pos_ += take;
      remaining -= take;
    }
    if (!in_transaction_ || mail_request_.env.recipients.empty()) {
      chunks_.reset();
      {
        error_reply(in_transaction_ ? 554 : 503, "5.5.1",
                    in_transaction_ ? "Error: no valid recipients" : "Error: need MAIL command");
        co_return;
      }
    }
    if (!last) {
      reply(250, "2.0.0", std::to_string(size) + " octets received");
      co_return;
    }
    chunks_->finish_chunks();
    data_reader reader = std::move(*chunks_);
    chunks_.reset();
    co_await finish_message(reader);
  }

  asio::awaitable<void> finish_message(data_reader& reader) {
    // The content buffer grew for the message; give the memory back before idling.
    if (in_.capacity() > 4096 && in_.size() - in_pos_ < 1024) {
      in_.erase(0, in_pos_);
      in_pos_ = 0;
      in_.shrink_to_fit();
    }
    switch (reader.error()) {
      case data_reader::problem::too_big:
        reset_transaction();
        {
          reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
          co_return;
        }
      case data_reader::problem::line_too_long:
        reset_transaction();
        {
          error_reply(500, "5.5.2", "Message refused: a line is over 1000 octets (RFC 5321 4.5.3.1.6)");
          co_return;
        }
      case data_reader::problem::bare_line_ending:
        reset_transaction();
        {
          error_reply(550, "5.5.2", "Message refused: bare CR or LF in the content (RFC 5321 2.3.8)");
          co_return;
        }
      case data_reader::problem::none: break;
    }
    auto req = std::move(mail_request_);
    reset_transaction();
    req.tenant = tenant();
    req.raw = reader.take();
    req.source = "smtp";
    req.trace.helo = helo_;
    req.trace.client_address = client_text_;
    // RFC 3848 names: SMTP for a plain HELO session, ESMTP with S (TLS) and A (AUTH) otherwise.
    const bool esmtp = extended_ || tls_ || tenant_from_auth_;
    req.trace.protocol = esmtp ? std::string("ESMTP") + (tls_ ? "S" : "") + (tenant_from_auth_ ? "A" : "") : "SMTP";
    auto result = co_await submission::async_submit(services_.submission, req, asio::use_awaitable);
    reply(result.reply);
  }

  asio::awaitable<void> starttls() {
    if (!options_.tls) {
      error_reply(454, "4.7.0", "TLS not available");
      co_return;
    }
    if (tls_) {
      error_reply(503, "5.5.1", "Error: TLS already active");
      co_return;
    }
    reply(220, "2.0.0", "Ready to start TLS");
    co_await flush();
    // Anything pipelined after STARTTLS arrived in clear text: discard it (RFC 3207 §4.2,
    // the command injection problem).
    in_.clear();
    in_pos_ = 0;
    const bool secured = co_await start_tls();
    if (!secured) {
      closing_ = true;
      co_return;
    }
    // RFC 3207 4.2: forget everything learned before TLS, a login included.
    helo_.clear();
    tenant_from_auth_.reset();
    reset_transaction();
  }

  asio::awaitable<bool> start_tls() {
    tls_.emplace(std::move(plain_), *options_.tls);
    beast::get_lowest_layer(*tls_).expires_after(options_.smtp.command_timeout);
    boost::system::error_code ec;
    co_await tls_->async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      log_->info("TLS handshake with [{}] failed: {}", client_text_, ec.message());
      closing_ = true;
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<void> auth(const command& cmd) {
    if (tenant_from_auth_) {
      error_reply(503, "5.5.1", "Error: already authenticated");
      co_return;
    }
    if (in_transaction_) {
      error_reply(503, "5.5.1", "Error: AUTH not allowed during a mail transaction");
      co_return;
    }
    if (!tls_ && !options_.smtp.auth_without_tls) {
      error_reply(538, "5.7.11", "Encryption required for requested authentication mechanism");
      co_return;
    }
    if (helo_.empty()) {
      error_reply(503, "5.5.1", "Error: send EHLO first");
      co_return;
    }
    if (services_.server.auth_blocked(client_)) {
      log_->warn("[{}] AUTH refused: too many failed attempts", client_text_);
      reply(421, "4.7.0", options_.hostname + " Error: too many failed authentication attempts, try later");
      closing_ = true;
      co_return;
    }
    const auto space = cmd.argument.find(' ');
    const std::string mechanism = cmd.argument.substr(0, space);
    std::optional<std::string> initial;
    if (space != std::string::npos) initial = cmd.argument.substr(space + 1);
    std::string user, password;
    if (beast::iequals(mechanism, "PLAIN")) {
      auto response = co_await challenge(initial, "");
      if (!response) co_return;
      const auto first = response->find('\0');
      const auto second = first == std::string::npos ? first : response->find('\0', first + 1);
      if (second == std::string::npos) {
        error_reply(501, "5.5.2", "Syntax: bad PLAIN response");
        co_return;
      }
      user = response->substr(first + 1, second - first - 1);
      password = response->substr(second + 1);
    } else if (beast::iequals(mechanism, "LOGIN")) {
      auto name = co_await challenge(initial, "VXNlcm5hbWU6");  // "Username:"
      if (!name) co_return;
      const std::optional<std::string> no_initial_response;
      auto secret = co_await challenge(no_initial_response, "UGFzc3dvcmQ6");  // "Password:"
      if (!secret) co_return;
      user = *name;
      password = *secret;
    } else {
      {
        error_reply(504, "5.5.4", "Unrecognized authentication type");
        co_return;
      }
    }
    auto& tenants = services_.tenants;
    auto check = [&tenants, user, password] { return tenants.authenticate_smtp(user, password); };
    auto tenant = co_await run_blocking(services_.blocking, check, asio::use_awaitable);
    sodium_memzero(password.data(), password.size());
    if (!tenant) {
      services_.server.auth_failed(client_);
      log_->warn("authentication failed for user {} from [{}]", printable(user.substr(0, 64)), client_text_);
      // A pause per failure slows guessing; the limiter above ends it for a while.
      asio::steady_timer pause(executor_, options_.smtp.auth_failure_delay);
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      {
        error_reply(535, "5.7.8", "Authentication credentials invalid");
        co_return;
      }
    }
    tenant_from_auth_ = *tenant;
    log_->info("[{}] authenticated as {} (tenant {})", client_text_, printable(user.substr(0, 64)), *tenant);
    reply(235, "2.7.0", "Authentication successful");
  }

  /// One SASL step: the initial response if given, else a 334 challenge and the client's line.
  /// Nothing if the client cancelled or sent bad base64 (the reply is already queued).
  asio::awaitable<std::optional<std::string>> challenge(const std::optional<std::string>& initial,
                                                        std::string_view prompt) {
    std::string encoded;
    if (initial) {
      encoded = *initial;
    } else {
      reply(334, "", prompt);
      auto line = co_await read_line(options_.smtp.command_timeout);
      if (!line) co_return std::nullopt;
      if (line->too_long) {
        error_reply(500, "5.5.2", "Line too long");
        co_return std::nullopt;
      }
      encoded = line->text;
    }
    if (encoded == "*") {
      error_reply(501, "5.0.0", "Authentication cancelled");
      co_return std::nullopt;
    }
    if (encoded == "=") co_return std::string();
    auto decoded = base64_decode(encoded);
    if (!decoded) error_reply(501, "5.5.2", "Cannot decode the response (base64)");
    co_return decoded;
  }

  // ---- state -------------------------------------------------------------------------------

  std::string tenant() const {
    if (tenant_from_auth_) return *tenant_from_auth_;
    return options_.smtp.trusted_tenant;
  }

  void reset_transaction() {
    in_transaction_ = false;
    utf8_ = false;
    mail_request_ = {};
    chunks_.reset();
  }

  session_services services_;
  const server_options& options_;
  asio::any_io_executor executor_;
  asio::steady_timer read_timer_;  // on the session's strand, like every handler here
  bool timed_out_ = false;
  beast::tcp_stream plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  bool implicit_tls_;
  std::shared_ptr<spdlog::logger> log_;
  asio::ip::address client_;
  std::string client_text_ = "unknown";
  bool trusted_ = false;

  std::string in_;
  std::size_t in_pos_ = 0;
  std::string out_;
  bool closing_ = false;
  std::size_t errors_ = 0;

  std::string helo_;
  bool extended_ = false;
  std::optional<std::string> tenant_from_auth_;
  bool in_transaction_ = false;
  bool utf8_ = false;
  submission::request mail_request_;
  std::optional<data_reader> chunks_;
};

}  // namespace

asio::awaitable<void> run_session(tcp::socket socket, session_services services, bool implicit_tls) {
  session s(std::move(socket), services, implicit_tls);
  try {
    co_await s.run();
  } catch (const std::exception& e) {
    logging::get("smtp")->warn("session ended by an unexpected error: {}", e.what());
  }
}

}  // namespace postern::ingress::smtp
