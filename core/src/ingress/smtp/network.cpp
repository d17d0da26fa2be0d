#include "ingress/smtp/network.hpp"

#include <stdexcept>

namespace postern::ingress::smtp {
namespace {

boost::asio::ip::address unmapped(const boost::asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  return a;
}

template <class Bytes>
bool prefix_equal(const Bytes& a, const Bytes& b, unsigned bits) {
  for (std::size_t i = 0; i < a.size() && bits > 0; ++i) {
    const unsigned take = bits >= 8 ? 8 : bits;
    const unsigned mask = (0xffu << (8 - take)) & 0xffu;
    if ((a[i] & mask) != (b[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

}  // namespace

cidr::cidr(const std::string& text) {
  const auto slash = text.find('/');
  boost::system::error_code ec;
  network_ = unmapped(boost::asio::ip::make_address(text.substr(0, slash), ec));
  if (ec) throw std::invalid_argument("not an address: " + text);
  const unsigned max = network_.is_v4() ? 32 : 128;
  bits_ = max;
  if (slash != std::string::npos) {
    std::size_t used = 0;
    const int n = std::stoi(text.substr(slash + 1), &used);
    if (n < 0 || static_cast<unsigned>(n) > max || used != text.size() - slash - 1)
      throw std::invalid_argument("bad prefix length: " + text);
    bits_ = static_cast<unsigned>(n);
  }
}

bool cidr::contains(const boost::asio::ip::address& address) const {
  const auto a = unmapped(address);
  if (a.is_v4() != network_.is_v4()) return false;
  if (a.is_v4()) return prefix_equal(a.to_v4().to_bytes(), network_.to_v4().to_bytes(), bits_);
  return prefix_equal(a.to_v6().to_bytes(), network_.to_v6().to_bytes(), bits_);
}

bool in_any(const std::vector<cidr>& blocks, const boost::asio::ip::address& address) {
  for (const auto& b : blocks) {
    if (b.contains(address)) return true;
  }
  return false;
}

boost::asio::ip::tcp::endpoint parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("expected host:port, got " + text);
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  if (ec) throw std::invalid_argument("not an IP address: " + host);
  std::size_t used = 0;
  const int port = std::stoi(text.substr(colon + 1), &used);
  if (port < 0 || port > 65535 || used != text.size() - colon - 1) throw std::invalid_argument("bad port in " + text);
  return {address, static_cast<unsigned short>(port)};
}

std::unique_ptr<boost::asio::ip::tcp::acceptor> listen_on(boost::asio::io_context& io, const std::string& text,
                                                         const std::string& what) {
  using boost::asio::ip::tcp;
  tcp::endpoint endpoint;
  try {
    endpoint = parse_endpoint(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": bad listen address: " + std::string(e.what()));
  }
  auto acceptor = std::make_unique<tcp::acceptor>(io);
  boost::system::error_code ec;
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(what + ": cannot listen on " + text + ": " + ec.message());
  return acceptor;
}

std::vector<std::string> bound_addresses(const std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>>& acceptors) {
  std::vector<std::string> out;
  for (const auto& a : acceptors) {
    boost::system::error_code ec;
    const auto e = a->local_endpoint(ec);
    if (ec) continue;
    const auto host = e.address().to_string();
    out.push_back((e.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(e.port()));
  }
  return out;
}

}  // namespace postern::ingress::smtp
