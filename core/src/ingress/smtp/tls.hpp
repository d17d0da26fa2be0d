#pragma once

#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <memory>

namespace postern::ingress::smtp {

/// A server TLS context: TLS 1.2 and 1.3 only, the given PEM certificate chain and key.
/// Throws std::runtime_error naming the file when one cannot be used.
std::shared_ptr<boost::asio::ssl::context> make_server_tls(const std::filesystem::path& certificate,
                                                           const std::filesystem::path& private_key);

}  // namespace postern::ingress::smtp
