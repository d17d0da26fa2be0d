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

}  // namespace postern::ingress::smtp
