#pragma once

#include "config/config.hpp"
#include "ingress/smtp/data_reader.hpp"
#include "ingress/smtp/network.hpp"
#include "policies/chain.hpp"
#include "submission/service.hpp"
#include "tenants/directory.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace postern::ingress::smtp {

/// What sessions need to know, fixed at start-up.
struct server_options {
  std::string hostname;
  std::size_t max_message_size = 50ull << 20;
  config::smtp_settings smtp;
  std::vector<cidr> trusted;
  line_ending_rule bare_line_endings = line_ending_rule::normalise;
  std::shared_ptr<boost::asio::ssl::context> tls;  ///< Null: no STARTTLS, no implicit TLS.
};

/// Everything a session borrows from the gateway.
struct session_services {
  const server_options& options;
  submission::service& submission;
  const policies::chain& policies;
  const tenants::directory& tenants;
  boost::asio::thread_pool& blocking;  ///< For password checks (Argon2 is slow on purpose).
  class server& server;
};

/// The SMTP listeners: accepts connections, enforces connection limits and remembers failed
/// AUTH attempts per client address; each connection runs as its own coroutine (session).
///
/// Thread-safety: start/stop from one thread; the limit functions from any session.
class server {
 public:
  server(boost::asio::io_context& io, server_options options, submission::service& submission,
         const policies::chain& policies, const tenants::directory& tenants);
  ~server();

  /// Binds every configured address. Throws std::runtime_error naming one that fails.
  void start();
  /// Stops accepting; sessions in progress end when the io_context stops.
  void stop();
  /// The addresses actually bound ("127.0.0.1:2525"), plain listeners first.
  std::vector<std::string> bound() const;

  /// Counts a new connection. Returns its slot, freed when the token is destroyed (which may
  /// happen after the server is gone, when the io_context destroys abandoned sessions); null if
  /// a limit is reached (the session answers 421).
  std::shared_ptr<void> admit(const boost::asio::ip::address& client);
  std::size_t connections() const;

  /// True while the client has too many recent failed AUTH attempts.
  bool auth_blocked(const boost::asio::ip::address& client);
  void auth_failed(const boost::asio::ip::address& client);

 private:
  boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, bool implicit_tls);

  boost::asio::io_context& io_;
  server_options options_;
  submission::service& submission_;
  const policies::chain& policies_;
  const tenants::directory& tenants_;
  boost::asio::thread_pool blocking_{2};
  session_services services_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::vector<bool> implicit_tls_;

  struct connection_counts {
    std::mutex mutex;
    std::map<boost::asio::ip::address, std::size_t> per_client;
    std::size_t total = 0;
  };
  std::shared_ptr<connection_counts> counts_ = std::make_shared<connection_counts>();

  std::mutex mutex_;
  std::map<boost::asio::ip::address, std::deque<std::chrono::steady_clock::time_point>> auth_failures_;
};

}  // namespace postern::ingress::smtp
