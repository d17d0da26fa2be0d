#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>
#include <vector>

namespace postern::ingress::smtp {

/// An address block such as "127.0.0.0/8" or "::1". IPv4-mapped IPv6 addresses match IPv4 blocks.
class cidr {
 public:
  /// Throws std::invalid_argument on a malformed block.
  explicit cidr(const std::string& text);
  bool contains(const boost::asio::ip::address& address) const;

 private:
  boost::asio::ip::address network_;
  unsigned bits_;
};

/// True if any block contains the address.
bool in_any(const std::vector<cidr>& blocks, const boost::asio::ip::address& address);

/// Parses "host:port", "[v6]:port" or ":port" (all interfaces). Throws std::invalid_argument.
boost::asio::ip::tcp::endpoint parse_endpoint(const std::string& text);

/// A listening acceptor on `text` ("host:port"). Throws std::runtime_error starting with
/// `what` ("smtp", "http") and naming the address on a bad address or a failed bind.
std::unique_ptr<boost::asio::ip::tcp::acceptor> listen_on(boost::asio::io_context& io, const std::string& text,
                                                         const std::string& what);

/// The addresses acceptors are bound to ("127.0.0.1:2525", "[::1]:25"), in order.
std::vector<std::string> bound_addresses(const std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>>& acceptors);

}  // namespace postern::ingress::smtp
