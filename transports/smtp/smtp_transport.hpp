#pragma once

#include "connection.hpp"
#include "settings.hpp"

#include <postern/host.hpp>
#include <postern/transport.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace postern::transports {

/// Relays mail through smarthosts over SMTP, with STARTTLS and AUTH.
///
/// The transport runs its own io_context on one thread of its own: deliver() only prepares
/// the message (dot-stuffing it once) and hands it over, so the engine's worker returns at
/// once; `done` is called later from that thread. Each relay host has a pool of connections
/// (at most `max_connections`), kept open between messages for `idle_timeout` and reset with
/// RSET before the next transaction. A message's recipients go in transactions of at most
/// `max_recipients`. Relays are tried in order: when a connection to one cannot be opened
/// (no answer, a 421 greeting, a TLS or AUTH failure) the transaction moves on to the next
/// within the same attempt, and a relay that just failed is skipped for a short while.
///
/// Replies map per recipient: the relay's final 2xx delivers, a 4xx defers, a 5xx fails,
/// each with the relay's code, enhanced code and text. A refused RCPT affects that recipient
/// only; a refused MAIL or DATA every recipient of the transaction; a connection lost before
/// the final reply gives 451 4.4.2 to those without an answer.
///
/// Threading: deliver(), probe() and stop() may be called from any thread.
class smtp_transport final : public postern::transport {
 public:
  /// Reads `[transports.smtp]` (see README.md). Throws std::invalid_argument naming the key
  /// for a bad value. Starts the transport's thread.
  explicit smtp_transport(postern::host& host);
  /// Calls stop() if it was not called.
  ~smtp_transport() override;

  /// Available when a relay is configured and one of them answers EHLO within `probe_timeout`.
  /// Relays are tried in order; STARTTLS (with the certificate check) is tried too, and a
  /// failure there is named in the reason without making the transport unavailable. Nothing is
  /// sent beyond EHLO, STARTTLS and QUIT. Blocks the caller for at most about probe_timeout
  /// per relay.
  postern::probe_result probe() override;
  /// Starts one attempt and returns; `done` runs on the transport's thread, exactly once.
  void deliver(postern::delivery_request request, postern::delivery_callback done) override;
  /// Closes every connection, answers 451 for the recipients of attempts in flight and joins
  /// the thread. Idempotent.
  void stop() override;

  const smtp::settings& config() const noexcept { return settings_; }

 private:
  struct job;
  struct batch;
  struct parked;
  struct relay_host;

  void start_job(std::shared_ptr<job> j);
  void place(std::shared_ptr<batch> b);
  void dispatch(std::size_t host_index);
  void setup_failed(std::size_t host_index, std::shared_ptr<batch> b, const postern::smtp_reply& why);
  void complete(batch& b, std::vector<postern::recipient_result> results);
  void complete_all(batch& b, const postern::smtp_reply& reply);
  void finish_job(const std::shared_ptr<job>& j);
  void shutdown_on_io();
  bool host_down(const relay_host& h) const;
  smtp::transaction_request make_request(const batch& b) const;

  boost::asio::awaitable<void> run_connection(std::size_t host_index, std::shared_ptr<batch> first);
  boost::asio::awaitable<void> serve(std::size_t host_index, std::shared_ptr<batch>& current,
                                     std::shared_ptr<smtp::connection>& conn,
                                     std::optional<postern::smtp_reply>& setup_failure);
  boost::asio::awaitable<std::shared_ptr<batch>> next_batch(std::size_t host_index);
  boost::asio::awaitable<void> probe_relays(std::shared_ptr<std::promise<postern::probe_result>> result);

  void log(postern::log_level level, const std::string& text) const;

  postern::host& host_;
  std::string origin_;
  smtp::settings settings_;
  smtp::settings probe_settings_;  // every timeout is probe_timeout
  std::shared_ptr<boost::asio::ssl::context> tls_;

  // Members the io thread touches are declared after io_, so that they go before it.
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::future<void> thread_done_;

  std::vector<relay_host> hosts_;                     // io thread only
  std::set<std::shared_ptr<smtp::connection>> live_;  // io thread only

  std::mutex jobs_mutex_;
  std::set<std::shared_ptr<job>> jobs_;  // attempts not answered yet
  std::atomic<bool> stopping_{false};
  std::mutex stop_mutex_;
  bool stopped_ = false;
};

}  // namespace postern::transports
