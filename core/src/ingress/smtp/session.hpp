#pragma once

#include "ingress/smtp/server.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace postern::ingress::smtp {

/// Runs one SMTP connection to its end: greeting, commands, TLS, AUTH, transactions.
/// Expected protocol errors are replies; anything unexpected (a broken connection, a bug) is
/// an exception caught here, logged, and the connection closed.
boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket, session_services services, bool implicit_tls);

}  // namespace postern::ingress::smtp
