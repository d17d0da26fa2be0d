#pragma once

#include "config/config.hpp"
#include "ingress/http/api.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace postern::ingress::http {

/// The HTTP listeners of the REST API: accepts connections up to `max_connections`, and runs
/// each as a coroutine that reads requests (HTTP/1.1 keep-alive, a body limit, a time limit
/// per request and between requests) and answers them through `api`.
///
/// Thread-safety: start/stop from one thread; connections() from any.
class server {
 public:
  server(boost::asio::io_context& io, config::http_settings settings, std::shared_ptr<boost::asio::ssl::context> tls,
         api& handler);
  ~server();

  /// Binds every configured address. Throws std::runtime_error naming one that fails.
  void start();
  /// Stops accepting; connections in progress end when the io_context stops.
  void stop();
  /// The addresses actually bound ("127.0.0.1:8025"), plain listeners first.
  std::vector<std::string> bound() const;
  std::size_t connections() const noexcept { return connections_->load(); }

 private:
  boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, bool tls);

  boost::asio::io_context& io_;
  config::http_settings settings_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  api& api_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::vector<bool> is_tls_;
  // Shared with the sessions, which may outlive the server at shutdown.
  std::shared_ptr<std::atomic<std::size_t>> connections_ = std::make_shared<std::atomic<std::size_t>>(0);
};

}  // namespace postern::ingress::http
