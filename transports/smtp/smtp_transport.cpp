#include "smtp_transport.hpp"

#include "protocol.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace asio = boost::asio;

namespace postern::transports {
namespace {

/// A relay whose connection could not be opened is skipped for this long, so that a dead
/// first relay costs one connection attempt, not one per message.
constexpr std::chrono::seconds relay_hold_down{10};

/// How long stop() lets the thread finish once every connection is closed.
constexpr std::chrono::seconds stop_grace{5};

const postern::smtp_reply stopping_reply{451, "4.3.2", "postern is stopping; the message was not sent"};

std::string seconds_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 != 0) return std::to_string(d.count()) + " ms";
  return std::to_string(d.count() / 1000) + " s";
}

/// One reply for a transaction that no relay would take: a 4xx if any relay failed
/// transiently (another try may find it working), the last permanent refusal otherwise.
postern::smtp_reply combine(const std::vector<postern::smtp_reply>& failures) {
  if (failures.empty()) return {451, "4.4.1", "no relay could be reached"};
  postern::smtp_reply chosen = failures.back();
  for (const auto& f : failures) {
    if (!f.permanent()) {
      chosen = f;
      break;
    }
  }
  if (failures.size() > 1) {
    chosen.text.clear();
    for (const auto& f : failures) chosen.text += (chosen.text.empty() ? "" : "; ") + f.text;
  }
  return chosen;
}

}  // namespace

// ---- state ---------------------------------------------------------------------------------------

/// One deliver() call.
struct smtp_transport::job {
  std::shared_ptr<const postern::message> msg;
  postern::delivery_callback done;
  std::vector<postern::recipient> recipients;
  /// One per recipient. They start as the stop reply: whatever no transaction has answered
  /// when stop() gives up is answered with it.
  std::vector<postern::recipient_result> results;
  std::shared_ptr<const std::string> content;  // dot-stuffed once, shared by the batches
  smtp::mail_parameters mail;
  bool sender_needs_smtputf8 = false;
  std::size_t pending = 0;  // batches not finished (io thread)
  std::atomic<bool> answered{false};

  /// Calls `done` unless it was called: the one place that does.
  void answer() noexcept {
    if (answered.exchange(true)) return;
    try {
      done(std::move(results));
    } catch (...) {
      // The engine's callback does not throw; if another host's did, the thread must survive.
    }
  }
};

/// Some recipients of a job that go in one transaction.
struct smtp_transport::batch {
  std::shared_ptr<job> owner;
  std::vector<std::size_t> positions;         // into owner->recipients
  std::size_t relay = 0;                      // the relay being tried
  std::vector<postern::smtp_reply> failures;  // why the relays before it did not take it
  bool requeued = false;                      // sent back to wait for a working connection once
  bool finished = false;
};

/// An idle connection waiting for its next batch, or for its idle time to run out.
struct smtp_transport::parked {
  explicit parked(asio::io_context& io) : wake(io) {}
  asio::steady_timer wake;
  std::shared_ptr<batch> handoff;
};

/// The pool of one relay.
struct smtp_transport::relay_host {
  smtp::relay_address address;
  std::deque<std::shared_ptr<batch>> waiting;
  std::vector<std::shared_ptr<parked>> idle;
  std::size_t open = 0;  // connections opening, busy or idle
  std::chrono::steady_clock::time_point down_until{};
  postern::smtp_reply down_reply;
};

// ---- life ----------------------------------------------------------------------------------------

smtp_transport::smtp_transport(postern::host& host)
    : host_(host), origin_(host.config().origin()), settings_(smtp::read_settings(host)), io_(1) {
  probe_settings_ = settings_;
  for (auto* t : {&probe_settings_.connect_timeout, &probe_settings_.helo_timeout, &probe_settings_.command_timeout,
                  &probe_settings_.data_timeout, &probe_settings_.data_done_timeout}) {
    *t = settings_.probe_timeout;
  }
  tls_ = smtp::make_client_tls(settings_, origin_);
  for (const auto& relay : settings_.relays) {
    relay_host h;
    h.address = relay;
    hosts_.push_back(std::move(h));
  }
  work_.emplace(io_.get_executor());
  std::promise<void> finished;
  thread_done_ = finished.get_future();
  thread_ = std::thread([this, finished = std::move(finished)]() mutable {
    for (;;) {
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {
        log(postern::log_level::error, std::string("unexpected error on the smtp transport's thread: ") + e.what());
      }
    }
    finished.set_value();
  });
}

smtp_transport::~smtp_transport() {
  stop();
}

void smtp_transport::log(postern::log_level level, const std::string& text) const {
  host_.log(level, text);
}

void smtp_transport::stop() {
  {
    std::lock_guard lock(stop_mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  {
    std::lock_guard lock(jobs_mutex_);
    stopping_ = true;
  }
  asio::post(io_, [this] { shutdown_on_io(); });
  work_.reset();
  // Closed sockets end every coroutine at once; only a name lookup in progress can hold the
  // thread longer, and it is not waited for.
  if (thread_done_.wait_for(stop_grace) != std::future_status::ready) {
    log(postern::log_level::warn,
        "smtp transport: connections still busy after " + std::to_string(stop_grace.count()) + " s; abandoning them");
    io_.stop();
  }
  if (thread_.joinable()) thread_.join();
  std::set<std::shared_ptr<job>> left;
  {
    std::lock_guard lock(jobs_mutex_);
    left.swap(jobs_);
  }
  for (const auto& j : left) j->answer();
}

void smtp_transport::shutdown_on_io() {
  for (auto& h : hosts_) {
    auto waiting = std::move(h.waiting);
    h.waiting.clear();
    for (auto& b : waiting) complete_all(*b, stopping_reply);
    for (auto& p : h.idle) p->wake.cancel();
    h.idle.clear();
  }
  // Copied: closing does not change the set, but the coroutines that notice may.
  const auto live = live_;
  for (const auto& c : live) c->close("connection closed because postern is stopping");
}

// ---- deliver ---------------------------------------------------------------------------------------

void smtp_transport::deliver(postern::delivery_request request, postern::delivery_callback done) {
  auto j = std::make_shared<job>();
  j->msg = std::move(request.msg);
  j->done = std::move(done);
  j->recipients = std::move(request.recipients);
  for (const auto& r : j->recipients) j->results.push_back({r.index, stopping_reply, "", {}});
  if (hosts_.empty()) {
    for (auto& r : j->results) r.reply = {451, "4.3.5", "no relay configured (set relays in " + origin_ + ")"};
    j->answer();
    return;
  }
  // The work that grows with the message is done here, on the engine's worker, once.
  const auto& msg = *j->msg;
  j->content = std::make_shared<const std::string>(smtp::dot_stuff(msg.raw));
  j->mail.sender = msg.env.mail_from;
  j->mail.size = msg.raw.size();
  j->mail.eight_bit = smtp::has_8bit(msg.raw);
  j->mail.ret = msg.env.ret;
  j->mail.envid = msg.env.envid;
  j->sender_needs_smtputf8 = smtp::has_8bit(msg.env.mail_from);
  j->mail.smtputf8 = j->sender_needs_smtputf8 || smtp::header_has_8bit(msg.raw) ||
                     std::any_of(j->recipients.begin(), j->recipients.end(),
                                 [](const postern::recipient& r) { return smtp::has_8bit(r.address); });
  {
    std::lock_guard lock(jobs_mutex_);
    if (!stopping_) {
      jobs_.insert(j);
      asio::post(io_, [this, j] { start_job(j); });
      return;
    }
  }
  j->answer();
}

void smtp_transport::start_job(std::shared_ptr<job> j) {
  if (stopping_) return;  // stop() answers it
  const auto groups = smtp::recipient_batches(j->recipients.size(), settings_.max_recipients);
  j->pending = groups.size();
  for (const auto& positions : groups) {
    auto b = std::make_shared<batch>();
    b->owner = j;
    b->positions = positions;
    place(std::move(b));
  }
}

bool smtp_transport::host_down(const relay_host& h) const {
  return std::chrono::steady_clock::now() < h.down_until;
}

void smtp_transport::place(std::shared_ptr<batch> b) {
  while (b->relay < hosts_.size()) {
    auto& h = hosts_[b->relay];
    if (host_down(h) && h.open == 0) {
      b->failures.push_back(h.down_reply);
      ++b->relay;
      continue;
    }
    h.waiting.push_back(b);
    dispatch(b->relay);
    return;
  }
  complete_all(*b, combine(b->failures));
}

void smtp_transport::dispatch(std::size_t host_index) {
  auto& h = hosts_[host_index];
  while (!h.waiting.empty() && !stopping_) {
    if (!h.idle.empty()) {
      auto p = std::move(h.idle.back());
      h.idle.pop_back();
      p->handoff = std::move(h.waiting.front());
      h.waiting.pop_front();
      p->wake.cancel();
      continue;
    }
    if (h.open < settings_.max_connections && !host_down(h)) {
      auto b = std::move(h.waiting.front());
      h.waiting.pop_front();
      ++h.open;
      asio::co_spawn(io_, run_connection(host_index, std::move(b)), asio::detached);
      continue;
    }
    break;
  }
  // Nothing is left that could serve those waiting here: they try the next relay.
  if (host_down(h) && h.open == 0 && !h.waiting.empty()) {
    auto moved = std::move(h.waiting);
    h.waiting.clear();
    for (auto& b : moved) {
      b->failures.push_back(h.down_reply);
      b->relay = host_index + 1;
      place(std::move(b));
    }
  }
}

void smtp_transport::setup_failed(std::size_t host_index, std::shared_ptr<batch> b, const postern::smtp_reply& why) {
  auto& h = hosts_[host_index];
  if (stopping_) {
    complete_all(*b, stopping_reply);
    return;
  }
  log(postern::log_level::warn, why.text + " (" + std::to_string(why.code) + " " + why.enhanced + ")");
  h.down_until = std::chrono::steady_clock::now() + relay_hold_down;
  h.down_reply = why;
  if (h.open > 0 && !b->requeued) {
    // Other connections to this relay work (it may limit connections per client): wait for one.
    b->requeued = true;
    h.waiting.push_front(std::move(b));
  } else {
    b->failures.push_back(why);
    b->relay = host_index + 1;
    place(std::move(b));
  }
  dispatch(host_index);
}

void smtp_transport::complete(batch& b, std::vector<postern::recipient_result> results) {
  if (b.finished) return;
  b.finished = true;
  auto& j = *b.owner;
  for (std::size_t k = 0; k < b.positions.size() && k < results.size(); ++k) {
    j.results[b.positions[k]] = std::move(results[k]);
  }
  if (--j.pending == 0) finish_job(b.owner);
}

void smtp_transport::complete_all(batch& b, const postern::smtp_reply& reply) {
  std::vector<postern::recipient_result> results;
  for (auto position : b.positions) results.push_back({b.owner->recipients[position].index, reply, "", {}});
  complete(b, std::move(results));
}

void smtp_transport::finish_job(const std::shared_ptr<job>& j) {
  {
    std::lock_guard lock(jobs_mutex_);
    jobs_.erase(j);
  }
  j->answer();
}

smtp::transaction_request smtp_transport::make_request(const batch& b) const {
  smtp::transaction_request r;
  r.mail = b.owner->mail;
  r.sender_needs_smtputf8 = b.owner->sender_needs_smtputf8;
  for (auto position : b.positions) r.recipients.push_back(b.owner->recipients[position]);
  r.content = b.owner->content;
  return r;
}

// ---- connections -------------------------------------------------------------------------------------

asio::awaitable<void> smtp_transport::run_connection(std::size_t host_index, std::shared_ptr<batch> first) {
  std::shared_ptr<batch> current = std::move(first);
  std::shared_ptr<smtp::connection> conn;
  std::optional<postern::smtp_reply> setup_failure;
  std::string error;
  try {
    co_await serve(host_index, current, conn, setup_failure);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (conn) {
    conn->close("connection finished");
    live_.erase(conn);
  }
  --hosts_[host_index].open;
  if (!error.empty()) {
    log(postern::log_level::error, "smtp transport: " + error);
    if (current && !current->finished) complete_all(*current, {451, "4.3.0", "smtp transport error: " + error});
  } else if (setup_failure && current) {
    setup_failed(host_index, std::move(current), *setup_failure);
    co_return;
  }
  if (!stopping_) dispatch(host_index);
}

asio::awaitable<void> smtp_transport::serve(std::size_t host_index, std::shared_ptr<batch>& current,
                                            std::shared_ptr<smtp::connection>& conn,
                                            std::optional<postern::smtp_reply>& setup_failure) {
  auto logger = [this](postern::log_level level, const std::string& text) { host_.log(level, text); };
  while (current && !stopping_) {
    if (!conn || !conn->usable()) {
      if (conn) {
        conn->close("replaced");
        live_.erase(conn);
      }
      conn =
          std::make_shared<smtp::connection>(io_.get_executor(), settings_, *tls_, hosts_[host_index].address, logger);
      live_.insert(conn);
      auto opened = co_await conn->open(smtp::connection::purpose::deliver);
      if (!opened.ok) {
        setup_failure = opened.failure;
        co_return;
      }
      hosts_[host_index].down_until = {};
      log(postern::log_level::debug, conn->where() + " offers " + conn->caps().summary());
    }
    const auto request = make_request(*current);
    auto result = co_await conn->send(request);
    if (result.not_started) continue;  // the connection is not usable any more: a new one takes it
    complete(*current, std::move(result.results));
    current.reset();
    if (!conn->usable() || stopping_) co_return;
    current = co_await next_batch(host_index);
  }
  if (conn && conn->usable() && !stopping_) co_await conn->quit();
}

asio::awaitable<std::shared_ptr<smtp_transport::batch>> smtp_transport::next_batch(std::size_t host_index) {
  auto& h = hosts_[host_index];
  if (!h.waiting.empty()) {
    auto b = std::move(h.waiting.front());
    h.waiting.pop_front();
    co_return b;
  }
  if (stopping_) co_return nullptr;
  auto p = std::make_shared<parked>(io_);
  p->wake.expires_after(settings_.idle_timeout);
  h.idle.push_back(p);
  boost::system::error_code ec;
  std::tie(ec) = co_await p->wake.async_wait(asio::as_tuple(asio::use_awaitable));
  if (p->handoff) co_return std::move(p->handoff);
  // The idle time ran out (or postern is stopping): leave the pool.
  std::erase(h.idle, p);
  co_return nullptr;
}

// ---- probe -------------------------------------------------------------------------------------------

postern::probe_result smtp_transport::probe() {
  if (hosts_.empty()) return {false, "no relay configured (set relays = [\"host:port\"] in " + origin_ + ")"};
  {
    std::lock_guard lock(stop_mutex_);
    if (stopped_) return {false, "the smtp transport is stopped"};
  }
  auto promise = std::make_shared<std::promise<postern::probe_result>>();
  auto future = promise->get_future();
  asio::co_spawn(io_, probe_relays(promise), asio::detached);
  // Each relay has probe_timeout; the margin covers a name lookup that ignores it.
  const auto budget = settings_.probe_timeout * static_cast<int>(hosts_.size()) + std::chrono::seconds(2);
  if (future.wait_for(budget) != std::future_status::ready)
    return {false,
            "no relay answered within " + seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(budget))};
  try {
    return future.get();
  } catch (const std::exception& e) {
    return {false, std::string("the probe did not finish: ") + e.what()};
  }
}

asio::awaitable<void> smtp_transport::probe_relays(std::shared_ptr<std::promise<postern::probe_result>> result) {
  auto logger = [this](postern::log_level level, const std::string& text) { host_.log(level, text); };
  std::vector<std::string> problems;
  std::string usable_with_problem;  // the first relay that answered EHLO but failed after it
  for (const auto& h : hosts_) {
    auto conn = std::make_shared<smtp::connection>(io_.get_executor(), probe_settings_, *tls_, h.address, logger);
    live_.insert(conn);
    // One deadline for the whole exchange, the name lookup included.
    asio::steady_timer deadline(io_);
    deadline.expires_after(settings_.probe_timeout);
    const std::string late = "no answer within " + seconds_text(settings_.probe_timeout) + " (probe_timeout)";
    deadline.async_wait([conn, late](const boost::system::error_code& ec) {
      if (!ec) conn->close(late);
    });
    auto opened = co_await conn->open(smtp::connection::purpose::probe);
    deadline.cancel();
    std::string reason = conn->where() + " answers EHLO: " + conn->caps().summary();
    if (opened.ok) {
      if (const auto tls = conn->tls_description(); !tls.empty())
        reason += "; STARTTLS " + tls + (settings_.tls_verify ? ", certificate verified" : ", certificate not checked");
      co_await conn->quit();
      live_.erase(conn);
      for (const auto& p : problems) reason += "; " + p;
      result->set_value({true, reason});
      co_return;
    }
    conn->close("probe finished");
    live_.erase(conn);
    if (conn->answered_hello() && usable_with_problem.empty())
      usable_with_problem = reason + "; but deliveries through it will be deferred: " + opened.failure.text;
    else
      problems.push_back(opened.failure.text);
  }
  // A relay that answers EHLO makes the transport available even when STARTTLS or the
  // certificate fails after it: an unavailable transport stays unused until a restart, while
  // deliveries deferred with the precise reason go through once the relay or the settings
  // are fixed.
  std::string reason = usable_with_problem;
  for (const auto& p : problems) reason += (reason.empty() ? "" : "; ") + p;
  result->set_value({!usable_with_problem.empty(), reason});
}

}  // namespace postern::transports
