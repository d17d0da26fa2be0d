#pragma once

#include "delivery/backoff.hpp"
#include "delivery/limiter.hpp"
#include "delivery/router.hpp"
#include "plugin_host/transport_set.hpp"
#include "policies/chain.hpp"
#include "spool/spool.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <vector>
#include <string>

namespace postern::delivery {

struct engine_options {
  std::string hostname;
  std::vector<std::chrono::milliseconds> retry_schedule;
  double jitter = 0.2;
  std::chrono::milliseconds max_age = std::chrono::hours(24 * 5);
  std::size_t max_parallel = 32;
  std::size_t workers = 4;
  std::chrono::milliseconds poll_interval = std::chrono::seconds(1);
  std::vector<config::route_settings> routes;  ///< See router.
  std::vector<config::limit_settings> limits;  ///< See limiter.
};

/// Moves spooled messages out through transports.
///
/// It picks messages with due recipients, hands each to the first available transport, and
/// acts on the per-recipient replies: 2xx delivered; 4xx deferred with backoff until the
/// message is older than max_age, then failed; 5xx failed. Failures (and successes the sender
/// asked to hear of) produce one DSN per attempt to the envelope sender, unless it is the null
/// sender. The new states, their events and the DSN are committed together, so a crash never
/// loses a report nor sends one twice. A crash between a transport's success and that commit
/// delivers the message again after restart: delivery is at least once.
///
/// Threading: its own state lives on a strand of `io`; transports run on a worker pool.
class engine {
 public:
  engine(boost::asio::io_context& io, spool::spool& spool, plugin_host::transport_set& transports,
         const policies::chain& policies, engine_options options, postern::metrics* metrics = nullptr);
  ~engine();

  /// Starts polling the spool. Call once.
  void start();
  /// Starts no more attempts; calls `drained` on the strand once every attempt in flight has
  /// been recorded. Thread-safe.
  void shutdown(std::function<void()> drained);
  /// Waits for the transports' calls in progress to return (after the io_context stopped).
  void stop();
  /// Takes messages the spool has just made durable and starts delivering them from memory,
  /// without reading them back; those beyond the parallelism limit wait in the spool for a
  /// poll. Thread-safe.
  void offer(spool::spool::stored_messages messages);

 private:
  struct attempt;
  struct part;
  boost::asio::awaitable<void> run();
  void route(const std::shared_ptr<attempt>& a);
  void dispatch(std::shared_ptr<part> p);
  void run_part(std::shared_ptr<part> p);
  void part_done(std::shared_ptr<part> p, std::vector<postern::recipient_result> results);
  void start_parked();
  void poll();
  void start_attempt(const std::string& queue_id);
  void hold_lost(const std::string& queue_id, const std::string& why);
  void defer_unreadable(const std::string& queue_id, const std::string& why);
  /// Starts an attempt of the message's due recipients; with `fail_all`, the attempt ends at
  /// once with that reply for each of them (no transport is asked).
  void begin(spool::queued_message message, const postern::smtp_reply* fail_all = nullptr);
  void begin_fresh(const std::shared_ptr<const postern::message>& message);
  void start_waiting();

  static constexpr std::size_t max_waiting = 100000;
  static constexpr std::size_t max_waiting_bytes = 256ull << 20;
  /// A delivery held back by a limit does not hold a slot of max_parallel, up to this many
  /// and while their messages take no more than max_parked_bytes: mail a limit holds back (a
  /// campaign to one rate-limited domain) must not keep other mail (an order confirmation
  /// elsewhere) from going out. Beyond that, other mail waits again: per-destination queues
  /// that leave mail for a closed gate in the spool would lift the bound.
  static constexpr std::size_t max_parked = 1000;
  static constexpr std::size_t max_parked_bytes = 64ull << 20;
  bool slot_free() const;
  void finish_attempt(std::shared_ptr<attempt> a, std::vector<postern::recipient_result> results);
  void recorded(std::shared_ptr<attempt> a, const spool::attempt_record& record, const std::string& error);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  // Transports run here: threads with a lower CPU priority (nice +5), so that accepting mail
  // (SMTP sessions, spool commits) gets the processor first and delivery uses what is left.
  boost::asio::io_context workers_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> workers_work_;
  std::vector<std::thread> worker_threads_;
  spool::spool& spool_;
  plugin_host::transport_set& transports_;
  std::chrono::steady_clock::time_point last_reprobe_{};
  const policies::chain& policies_;
  engine_options options_;
  router router_;
  limiter limiter_;
  // Deliveries held back by a concurrency or rate limit, in arrival order; their messages
  // stay in flight. Tried again when a slot frees or the gate timer fires.
  std::size_t parked_bytes_ = 0;  // of the messages of parked_, counted per part
  std::deque<std::shared_ptr<part>> parked_;
  boost::asio::steady_timer gate_timer_;
  backoff backoff_;
  postern::metrics* metrics_;
  std::set<std::string> in_flight_;
  bool stopping_ = false;
  bool wake_pending_ = false;
  bool backlog_ = false;  // offered messages left in the spool for lack of a slot
  // Fresh messages beyond max_parallel, kept in memory (bounded) until a slot frees.
  std::deque<std::shared_ptr<const postern::message>> waiting_;
  std::set<std::string> waiting_ids_;
  std::size_t waiting_bytes_ = 0;
  std::function<void()> drained_;
};

}  // namespace postern::delivery
