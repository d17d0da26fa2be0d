#include "ingress/smtp/server.hpp"

#include "ingress/smtp/session.hpp"
#include "logging/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace postern::ingress::smtp {

server::server(asio::io_context& io, server_options options, submission::service& submission,
               const policies::chain& policies, const tenants::directory& tenants)
    : io_(io),
      options_(std::move(options)),
      submission_(submission),
      policies_(policies),
      tenants_(tenants),
      services_{options_, submission_, policies_, tenants_, blocking_, *this} {}

server::~server() {
  stop();
  blocking_.join();
}

void server::start() {
  auto bind = [&](const std::string& text, bool implicit_tls) {
    acceptors_.push_back(listen_on(io_, text, "smtp"));
    implicit_tls_.push_back(implicit_tls);
  };
  for (const auto& l : options_.smtp.listen) bind(l, false);
  if (!options_.smtp.tls_listen.empty() && !options_.tls)
    throw std::runtime_error("smtp: tls_listen needs [tls] certificate and private_key");
  for (const auto& l : options_.smtp.tls_listen) bind(l, true);
  const auto addresses = bound();
  for (std::size_t i = 0; i < acceptors_.size(); ++i) {
    logging::get("smtp")->info("listening on {}{}", addresses[i], implicit_tls_[i] ? " (implicit TLS)" : "");
    asio::co_spawn(io_, accept_loop(*acceptors_[i], implicit_tls_[i]), asio::detached);
  }
}

void server::stop() {
  for (auto& a : acceptors_) {
    boost::system::error_code ignored;
    a->close(ignored);
  }
}

std::vector<std::string> server::bound() const { return bound_addresses(acceptors_); }

asio::awaitable<void> server::accept_loop(tcp::acceptor& acceptor, bool implicit_tls) {
  for (;;) {
    boost::system::error_code ec;
    // Each connection gets its own strand: its coroutine never runs on two threads at once.
    // A named strand: no temporaries with destructors inside a co_await expression (GCC 12).
    auto strand = asio::make_strand(io_);
    tcp::socket socket = co_await acceptor.async_accept(strand, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // EMFILE and friends: wait a little instead of spinning.
      logging::get("smtp")->warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::use_awaitable);
      continue;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, run_session(std::move(socket), services_, implicit_tls), asio::detached);
  }
}

std::shared_ptr<void> server::admit(const asio::ip::address& client) {
  auto counts = counts_;
  std::lock_guard lock(counts->mutex);
  auto& n = counts->per_client[client];
  if (counts->total >= options_.smtp.max_connections || n >= options_.smtp.max_connections_per_client) {
    if (n == 0) counts->per_client.erase(client);
    return nullptr;
  }
  ++n;
  ++counts->total;
  // The token shares the counts, not the server: it may outlive the server at shutdown.
  return std::shared_ptr<void>(static_cast<void*>(counts.get()), [counts, client](void*) {
    std::lock_guard lock(counts->mutex);
    auto it = counts->per_client.find(client);
    if (it == counts->per_client.end()) return;
    if (--it->second == 0) counts->per_client.erase(it);
    --counts->total;
  });
}

std::size_t server::connections() const {
  std::lock_guard lock(counts_->mutex);
  return counts_->total;
}

bool server::auth_blocked(const asio::ip::address& client) {
  std::lock_guard lock(mutex_);
  auto it = auth_failures_.find(client);
  if (it == auth_failures_.end()) return false;
  const auto horizon = std::chrono::steady_clock::now() - options_.smtp.auth_failure_window;
  while (!it->second.empty() && it->second.front() < horizon) it->second.pop_front();
  if (it->second.empty()) {
    auth_failures_.erase(it);
    return false;
  }
  return it->second.size() >= options_.smtp.auth_max_failures;
}

void server::auth_failed(const asio::ip::address& client) {
  std::lock_guard lock(mutex_);
  auto& failures = auth_failures_[client];
  failures.push_back(std::chrono::steady_clock::now());
  // Bounded memory per address: only the most recent failures matter.
  while (failures.size() > options_.smtp.auth_max_failures) failures.pop_front();
}

}  // namespace postern::ingress::smtp
