#include "ingress/smtp/tls.hpp"

#include <openssl/ssl.h>

#include <stdexcept>

namespace postern::ingress::smtp {

std::shared_ptr<boost::asio::ssl::context> make_server_tls(const std::filesystem::path& certificate,
                                                           const std::filesystem::path& private_key) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(certificate.string(), ec);
  if (ec) throw std::runtime_error("TLS certificate " + certificate.string() + ": " + ec.message());
  ctx->use_private_key_file(private_key.string(), ssl::context::pem, ec);
  if (ec) throw std::runtime_error("TLS private key " + private_key.string() + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    throw std::runtime_error("TLS private key " + private_key.string() + " does not match " + certificate.string());
  return ctx;
}

}  // namespace postern::ingress::smtp
