#include "ingress/http/server.hpp"

#include "ingress/smtp/network.hpp"
#include "logging/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace postern::ingress::http {
namespace {

constexpr std::uint32_t max_header_size = 64 * 1024;

/// Limits for one connection, fixed at start-up.
struct session_limits {
  std::uint64_t max_body_size;
  std::chrono::milliseconds request_timeout;
  std::chrono::milliseconds idle_timeout;
};

/// The status a failed read earns, or 0 when the connection just went away.
unsigned status_for_read_error(const boost::system::error_code& ec) {
  if (ec == bhttp::error::body_limit) return 413;
  if (ec == bhttp::error::header_limit) return 431;
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == beast::error::timeout || ec == asio::error::operation_aborted)
    return 0;
  return 400;
}

template <class Stream>
asio::awaitable<void> write_response(Stream& stream, beast::tcp_stream& lowest, response& res,
                                     std::chrono::milliseconds timeout, boost::system::error_code& ec) {
  res.prepare_payload();
  lowest.expires_after(timeout);
  co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
}

/// Reads requests and answers them until the client closes, asks to close, times out, or
/// sends something unreadable (answered with 400/413/431 and the connection closed).
template <class Stream>
asio::awaitable<void> serve_requests(Stream& stream, beast::tcp_stream& lowest, api& handler, const peer& from,
                                     const session_limits& limits) {
  beast::flat_buffer buffer;
  // Beast reads what the buffer has room for, at least 512 bytes: a typical API request
  // (1-2 KiB) then takes one read instead of three.
  buffer.reserve(4096);
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    // The body's limit depends on who asks and for what (api::admit), known after the header:
    // none while the header is read, so that a client without a key hears 401, not 413.
    parser.body_limit(boost::none);
    parser.header_limit(max_header_size);
    boost::system::error_code ec;
    lowest.expires_after(limits.idle_timeout);
    co_await bhttp::async_read_header(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      // Who asks, and for what, before reading a body: a client without a key is answered
      // before it can make us buffer megabytes.
      auto admission = handler.admit(parser.get(), limits.max_body_size);
      if (admission.refusal) {
        response& refusal = *admission.refusal;
        refusal.keep_alive(false);
        co_await write_response(stream, lowest, refusal, limits.request_timeout, ec);
        co_return;
      }
      const auto announced = parser.content_length();
      if (announced && *announced > admission.body_limit) {
        response refusal = error_response(413, "request body too large");
        refusal.keep_alive(false);
        co_await write_response(stream, lowest, refusal, limits.request_timeout, ec);
        co_return;
      }
      parser.body_limit(admission.body_limit);  // a chunked body is counted as it comes
    }
    if (!ec && beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
      // curl and others wait for this before sending a large body.
      bhttp::response<bhttp::empty_body> go_on{bhttp::status::continue_, parser.get().version()};
      lowest.expires_after(limits.request_timeout);
      co_await bhttp::async_write(stream, go_on, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!ec) {
      lowest.expires_after(limits.request_timeout);
      co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      const unsigned status = status_for_read_error(ec);
      if (status == 0) co_return;
      response refusal = error_response(status, status == 413   ? "request body too large"
                                                : status == 431 ? "request header fields too large"
                                                                : "malformed HTTP request: " + ec.message());
      refusal.keep_alive(false);
      co_await write_response(stream, lowest, refusal, limits.request_timeout, ec);
      co_return;
    }
    request req = parser.release();
    response res = co_await handler.handle(req, from);
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    co_await write_response(stream, lowest, res, limits.request_timeout, ec);
    if (ec || !res.keep_alive()) co_return;
  }
}

asio::awaitable<void> run_session(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls, api& handler,
                                  session_limits limits, std::shared_ptr<std::atomic<std::size_t>> connections) {
  struct counted {
    std::shared_ptr<std::atomic<std::size_t>> n;
    ~counted() { --*n; }
  } slot{connections};
  peer from;
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  from.address = ec ? "unknown" : remote.address().to_string();
  from.tls = tls != nullptr;
  try {
    if (!tls) {
      beast::tcp_stream stream(std::move(socket));
      co_await serve_requests(stream, stream, handler, from, limits);
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls);
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(limits.request_timeout);
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    co_await serve_requests(stream, lowest, handler, from, limits);
    lowest.expires_after(std::chrono::seconds(5));
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  } catch (const std::exception& e) {
    logging::get("http")->error("session with {} ended by an unexpected error: {}", from.address, e.what());
  }
}

}  // namespace

server::server(asio::io_context& io, config::http_settings settings, std::shared_ptr<asio::ssl::context> tls,
               api& handler)
    : io_(io), settings_(std::move(settings)), tls_(std::move(tls)), api_(handler) {}

server::~server() { stop(); }

void server::start() {
  auto bind = [&](const std::string& text, bool tls) {
    acceptors_.push_back(smtp::listen_on(io_, text, "http"));
    is_tls_.push_back(tls);
  };
  for (const auto& l : settings_.listen) bind(l, false);
  if (!settings_.tls_listen.empty() && !tls_)
    throw std::runtime_error("http: tls_listen needs [tls] certificate and private_key");
  for (const auto& l : settings_.tls_listen) bind(l, true);
  const auto addresses = bound();
  for (std::size_t i = 0; i < acceptors_.size(); ++i) {
    logging::get("http")->info("listening on {}{}", addresses[i], is_tls_[i] ? " (HTTPS)" : "");
    asio::co_spawn(io_, accept_loop(*acceptors_[i], is_tls_[i]), asio::detached);
  }
}

void server::stop() {
  for (auto& a : acceptors_) {
    boost::system::error_code ignored;
    a->close(ignored);
  }
}

std::vector<std::string> server::bound() const { return smtp::bound_addresses(acceptors_); }

asio::awaitable<void> server::accept_loop(tcp::acceptor& acceptor, bool tls) {
  // The largest message, base64-encoded (4/3) in a JSON or form body, plus room for the rest.
  const std::uint64_t body_limit =
      settings_.max_body_size ? settings_.max_body_size : api_.services().submission.max_message_size() / 3 * 4 + (1u << 20);
  const session_limits limits{body_limit, settings_.request_timeout, settings_.idle_timeout};
  for (;;) {
    boost::system::error_code ec;
    auto strand = asio::make_strand(io_);
    tcp::socket socket = co_await acceptor.async_accept(strand, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      logging::get("http")->warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::use_awaitable);
      continue;
    }
    if (connections_->load() >= settings_.max_connections) {
      // Over the limit: a short 503 is kinder than a silent close.
      static constexpr std::string_view busy =
          "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      socket.write_some(asio::buffer(busy), ec);
      socket.close(ec);
      continue;
    }
    ++*connections_;
    auto executor = socket.get_executor();
    asio::co_spawn(executor, run_session(std::move(socket), tls ? tls_ : nullptr, api_, limits, connections_),
                   asio::detached);
  }
}

}  // namespace postern::ingress::http
