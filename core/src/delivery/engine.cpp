#include "delivery/engine.hpp"

#include "delivery/dsn.hpp"
#include "logging/log.hpp"
#include "spool/body_store.hpp"
#include "spool/queue_id.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>

namespace asio = boost::asio;

namespace postern::delivery {

struct engine::attempt {
  spool::queued_message message;
  std::vector<spool::recipient_status> due;
  std::chrono::steady_clock::time_point started;
  std::size_t parts_pending = 0;
  std::vector<postern::recipient_result> results;
  std::map<std::uint32_t, std::string> transport_of;  // recipient index -> transport that had it
  // recipient index -> the reply of a recipient no transport had: why none could
  std::map<std::uint32_t, postern::smtp_reply> unrouted;
};

/// The recipients of an attempt that go through one transport (and one limited domain).
struct engine::part {
  std::shared_ptr<attempt> owner;
  const plugin_host::transport_entry* transport = nullptr;
  std::string domain;  // the limited recipient domain, or empty
  std::vector<postern::recipient> recipients;
  std::vector<std::size_t> held;  // limiter gates passed
  std::chrono::steady_clock::time_point started;
};

namespace {

std::shared_ptr<spdlog::logger> log() {
  return logging::get("delivery");
}

postern::smtp_reply sane(const postern::smtp_reply& reply) {
  if (reply.code < 200 || reply.code > 599 || (reply.code >= 300 && reply.code < 400))
    return {451, "4.3.0", "transport gave an invalid reply: " + std::to_string(reply.code) + " " + reply.text};
  return reply;
}

std::string describe(const postern::smtp_reply& r) {
  return std::to_string(r.code) + (r.enhanced.empty() ? "" : " " + r.enhanced) + " " + r.text;
}

}  // namespace

engine::engine(asio::io_context& io, spool::spool& spool, plugin_host::transport_set& transports,
               const policies::chain& policies, engine_options options, postern::metrics* metrics)
    : strand_(asio::make_strand(io)),
      timer_(strand_),
      workers_work_(workers_.get_executor()),
      spool_(spool),
      transports_(transports),
      policies_(policies),
      options_(std::move(options)),
      router_(options_.routes, transports),
      limiter_(options_.limits),
      gate_timer_(strand_),
      backoff_(options_.retry_schedule, options_.jitter),
      metrics_(metrics) {
  for (std::size_t i = 0; i < options_.workers; ++i) {
    worker_threads_.emplace_back([this] {
      // Best effort: an unprivileged process may raise its nice value; failure changes nothing.
      (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 5);
      workers_.run();
    });
  }
}

engine::~engine() {
  stop();
}

void engine::start() {
  asio::co_spawn(strand_, run(), asio::detached);
}

void engine::shutdown(std::function<void()> drained) {
  asio::post(strand_, [this, drained = std::move(drained)] {
    stopping_ = true;
    timer_.cancel();
    gate_timer_.cancel();
    // Deliveries held back by a limit are not started any more. They were never tried, so
    // nothing is recorded for their recipients: those stay due as they were.
    auto parked = std::move(parked_);
    parked_.clear();
    parked_bytes_ = 0;
    for (auto& p : parked) {
      auto& due = p->owner->due;
      for (const auto& r : p->recipients) {
        due.erase(std::remove_if(due.begin(), due.end(), [&](const auto& d) { return d.rcpt.index == r.index; }),
                  due.end());
      }
      if (--p->owner->parts_pending == 0) finish_attempt(p->owner, std::move(p->owner->results));
    }
    if (in_flight_.empty()) {
      drained();
    } else {
      drained_ = drained;
    }
  });
}

void engine::stop() {
  workers_work_.reset();
  for (auto& t : worker_threads_) {
    if (t.joinable()) t.join();
  }
}

void engine::offer(spool::spool::stored_messages messages) {
  asio::post(strand_, [this, messages = std::move(messages)] {
    if (stopping_) return;
    for (const auto& m : messages) {
      if (in_flight_.count(m->queue_id) || waiting_ids_.count(m->queue_id)) continue;
      if (slot_free()) {
        begin_fresh(m);
      } else if (waiting_.size() < max_waiting && waiting_bytes_ + m->raw.size() <= max_waiting_bytes) {
        // Keep it in memory for the next free slot: no need to read it back from the spool.
        waiting_.push_back(m);
        waiting_ids_.insert(m->queue_id);
        waiting_bytes_ += m->raw.size();
      } else {
        backlog_ = true;  // it is in the spool: a poll picks it up when a slot frees
      }
    }
  });
}

bool engine::slot_free() const {
  // Parked deliveries lend their slots to other mail (up to max_parked of them); their
  // messages stay in in_flight_, so that none is started twice.
  const std::size_t lent = parked_bytes_ <= max_parked_bytes ? std::min(parked_.size(), max_parked) : 0;
  return in_flight_.size() < options_.max_parallel + lent;
}

void engine::start_waiting() {
  while (slot_free() && !waiting_.empty()) {
    auto m = std::move(waiting_.front());
    waiting_.pop_front();
    waiting_ids_.erase(m->queue_id);
    waiting_bytes_ -= m->raw.size();
    if (!in_flight_.count(m->queue_id)) begin_fresh(m);
  }
}

void engine::begin_fresh(const std::shared_ptr<const postern::message>& m) {
  // Just stored: every recipient is queued, never tried, due since arrival.
  spool::queued_message q;
  q.msg = m;
  q.size = m->raw.size();
  for (const auto& r : m->env.recipients) {
    spool::recipient_status status;
    status.rcpt = r;
    status.next_attempt = m->arrival;
    q.recipients.push_back(std::move(status));
  }
  begin(std::move(q));
}

asio::awaitable<void> engine::run() {
  while (!stopping_) {
    wake_pending_ = false;
    try {
      poll();
    } catch (const std::exception& e) {
      log()->error("cannot read the spool: {}", e.what());
    }
    // A freed slot with mail left in the spool asks for a poll soon, but not in a tight loop.
    timer_.expires_after(wake_pending_ ? std::chrono::milliseconds(5) : options_.poll_interval);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void engine::poll() {
  if (!slot_free()) return;
  const std::size_t limit = options_.max_parallel + in_flight_.size();
  const auto ids = spool_.due(std::chrono::system_clock::now(), limit);
  backlog_ = ids.size() >= limit;  // more may be waiting than one poll takes
  for (const auto& id : ids) {
    if (!slot_free()) break;
    // Messages waiting in memory are started from there, never twice.
    if (!in_flight_.count(id) && !waiting_ids_.count(id)) start_attempt(id);
  }
}

void engine::start_attempt(const std::string& queue_id) {
  std::optional<spool::queued_message> loaded;
  try {
    loaded = spool_.load(queue_id, true);
  } catch (const spool::missing_body& e) {
    hold_lost(queue_id, e.what());
    return;
  } catch (const std::exception& e) {
    defer_unreadable(queue_id, e.what());
    return;
  }
  if (!loaded || loaded->held) return;
  begin(std::move(*loaded));
}

void engine::hold_lost(const std::string& queue_id, const std::string& why) {
  // Its content is gone (a body segment removed or damaged by hand, or a backup restored
  // without it): held, so that it is neither retried in a loop nor bounced unseen. The
  // operator decides (queue show, queue delete).
  log()->error("{}: cannot read the message from the spool, holding it: {}", queue_id, why);
  try {
    spool_.hold(queue_id);
  } catch (const std::exception& e) {
    log()->error("{}: could not hold it either: {}", queue_id, e.what());
  }
}

void engine::defer_unreadable(const std::string& queue_id, const std::string& why) {
  // It may pass (no descriptor free, an I/O error): a temporary failure of this attempt,
  // deferred on the retry schedule like any other, so that it neither comes back at every
  // poll nor takes the places of other due mail.
  log()->error("{}: cannot read the message from the spool now: {}", queue_id, why);
  std::optional<spool::queued_message> bare;
  try {
    bare = spool_.load(queue_id, false);
  } catch (const std::exception&) {
    return;  // the spool itself cannot be read: the next poll tries again
  }
  if (!bare || bare->held) return;
  const postern::smtp_reply reply{451, "4.3.0", "cannot read the message from the spool: " + why};
  begin(std::move(*bare), &reply);
}

void engine::begin(spool::queued_message message, const postern::smtp_reply* fail_all) {
  const std::string queue_id = message.msg->queue_id;
  auto a = std::make_shared<attempt>();
  a->message = std::move(message);
  a->started = std::chrono::steady_clock::now();
  const auto now = std::chrono::system_clock::now();
  for (const auto& r : a->message.recipients) {
    if (r.state < spool::recipient_state::delivered && r.next_attempt <= now) a->due.push_back(r);
  }
  if (a->due.empty()) return;
  in_flight_.insert(queue_id);
  if (fail_all) {  // no transport gets it: each due recipient ends with this reply
    for (const auto& r : a->due) a->unrouted[r.rcpt.index] = *fail_all;
    finish_attempt(a, {});
    return;
  }
  route(a);
}

void engine::route(const std::shared_ptr<attempt>& a) {
  const auto& msg = *a->message.msg;
  auto decide = [&](const std::string& address) { return router_.route(msg, address); };
  bool none_available = false;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<part>> parts;  // (transport, domain)
  for (const auto& r : a->due) {
    auto d = decide(r.rcpt.address);
    if (!d.transport && !none_available && std::chrono::steady_clock::now() - last_reprobe_ > std::chrono::seconds(30)) {
      // Nothing usable for this one: look again now and then, so a relay that comes back is
      // used without a restart.
      last_reprobe_ = std::chrono::steady_clock::now();
      if (transports_.reprobe() > 0) d = decide(r.rcpt.address);
    }
    if (!d.transport) {
      none_available = true;
      a->unrouted[r.rcpt.index] = {451, "4.3.5", d.reason};
      continue;
    }
    const auto domain = domain_of(r.rcpt.address);
    const auto key = std::make_pair(d.transport->name, limiter_.limits_domain(domain) ? domain : std::string());
    auto& p = parts[key];
    if (!p) {
      p = std::make_shared<part>();
      p->owner = a;
      p->transport = d.transport;
      p->domain = key.second;
    }
    p->recipients.push_back(r.rcpt);
    a->transport_of[r.rcpt.index] = d.transport->name;
  }
  if (parts.empty()) {
    finish_attempt(a, {});  // every recipient gets its "no transport" deferral
    return;
  }
  a->parts_pending = parts.size();
  for (auto& [key, p] : parts) dispatch(p);
}

void engine::dispatch(std::shared_ptr<part> p) {
  std::chrono::steady_clock::duration wait{};
  if (!limiter_.try_acquire(p->transport->name, p->domain, std::chrono::steady_clock::now(), p->held, wait)) {
    parked_bytes_ += p->owner->message.msg->raw.size();
    parked_.push_back(std::move(p));
    if (wait > std::chrono::steady_clock::duration::zero()) {
      // A rate limit: come back when a token is there (slots wake us when they free).
      if (gate_timer_.expiry() <= std::chrono::steady_clock::now() ||
          gate_timer_.expiry() > std::chrono::steady_clock::now() + wait) {
        gate_timer_.expires_after(wait);
        gate_timer_.async_wait([this](const boost::system::error_code& ec) {
          if (!ec) start_parked();
        });
      }
    }
    return;
  }
  run_part(std::move(p));
}

void engine::start_parked() {
  // In arrival order; those that still cannot pass go back in the same order.
  std::deque<std::shared_ptr<part>> waiting;
  waiting.swap(parked_);
  parked_bytes_ = 0;  // those that park again count again
  while (!waiting.empty()) {
    auto p = std::move(waiting.front());
    waiting.pop_front();
    dispatch(std::move(p));
  }
}

void engine::run_part(std::shared_ptr<part> p) {
  p->started = std::chrono::steady_clock::now();
  postern::delivery_request request;
  request.msg = p->owner->message.msg;
  request.recipients = p->recipients;
  auto impl = p->transport->impl;
  asio::post(workers_, [this, p, impl, request = std::move(request)]() mutable {
    auto called = std::make_shared<std::atomic<bool>>(false);
    auto done = [this, p, called](std::vector<postern::recipient_result> results) {
      if (called->exchange(true)) return;  // the contract says once; be safe if not
      asio::post(strand_, [this, p, results = std::move(results)]() mutable { part_done(p, std::move(results)); });
    };
    try {
      impl->deliver(std::move(request), done);
    } catch (const std::exception& e) {
      log()->error("{}: transport {} threw: {}", p->owner->message.msg->queue_id, p->transport->name, e.what());
      done({});
    } catch (...) {
      done({});
    }
  });
}

void engine::part_done(std::shared_ptr<part> p, std::vector<postern::recipient_result> results) {
  limiter_.release(p->held);
  if (metrics_) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - p->started).count();
    metrics_->observe("postern_delivery_seconds", seconds, {{"transport", p->transport->name}});
  }
  auto a = p->owner;
  for (auto& r : results) a->results.push_back(std::move(r));
  if (!parked_.empty()) start_parked();
  if (--a->parts_pending == 0) finish_attempt(a, std::move(a->results));
}

void engine::finish_attempt(std::shared_ptr<attempt> a, std::vector<postern::recipient_result> results) {
  const auto now = std::chrono::system_clock::now();
  const auto& msg = *a->message.msg;
  std::map<std::uint32_t, postern::recipient_result> by_index;
  for (auto& r : results) by_index[r.recipient_index] = std::move(r);
  const auto expiry = msg.arrival + options_.max_age;

  spool::attempt_record record;
  std::vector<dsn_recipient> report;
  for (const auto& r : a->due) {
    const auto routed = a->transport_of.find(r.rcpt.index);
    const std::string transport = routed == a->transport_of.end() ? std::string() : routed->second;
    const auto unrouted = a->unrouted.find(r.rcpt.index);
    postern::smtp_reply reply = unrouted == a->unrouted.end()
                                    ? postern::smtp_reply{451, "4.3.5", "no transport is available"}
                                    : unrouted->second;
    std::string remote_id;
    std::chrono::seconds retry_after{0};
    if (!transport.empty()) {
      auto found = by_index.find(r.rcpt.index);
      reply = found == by_index.end() ? postern::smtp_reply{451, "4.3.0", "transport gave no result for this recipient"}
                                      : sane(found->second.reply);
      if (found != by_index.end()) {
        remote_id = found->second.remote_id;
        retry_after = found->second.retry_after;
      }
    }
    spool::recipient_update u{msg.queue_id, r.rcpt.index, spool::recipient_state::delivered, r.attempts + 1, now, reply,
                              transport, remote_id};
    std::string action;
    if (reply.success()) {
      action = "delivered";
    } else if (reply.permanent()) {
      u.state = spool::recipient_state::failed;
      action = "failed";
    } else if (now >= expiry) {
      u.state = spool::recipient_state::failed;
      u.reply = {reply.code, "4.4.7", "message expired in the queue; last reply: " + describe(reply)};
      action = "failed";
    } else {
      u.state = spool::recipient_state::deferred;
      // The peer's Retry-After, when longer than our own backoff, wins.
      u.next_attempt = std::min(now + std::max<std::chrono::system_clock::duration>(backoff_.delay(u.attempts), retry_after),
                                expiry);
      action = "deferred";
    }
    record.events.push_back({now, msg.queue_id, r.rcpt.address, action, transport, u.reply});
    if (action != "deferred" && wants_report(r.rcpt, action)) report.push_back({r.rcpt, action, u.reply, transport});
    record.updates.push_back(std::move(u));
  }

  if (!report.empty() && !msg.env.mail_from.empty()) {
    spool::new_entry dsn;
    dsn.msg.queue_id = spool::make_queue_id(now);
    dsn.msg.tenant = msg.tenant;
    dsn.msg.arrival = now;
    dsn.msg.raw = build_dsn(msg, report, options_.hostname, now, dsn.msg.queue_id);
    // A report about a report is never sent (RFC 3461 §6.2): the null sender, and NOTIFY=NEVER.
    dsn.msg.env.recipients.push_back({0, msg.env.mail_from, "", postern::notify_never});
    dsn.source = "dsn";
    record.events.push_back(
        {now, msg.queue_id, msg.env.mail_from, "dsn", "", {250, "2.0.0", "report queued as " + dsn.msg.queue_id}});
    record.new_messages.push_back(std::move(dsn));
  }

  auto shared_record = std::make_shared<spool::attempt_record>(std::move(record));
  spool_.record(*shared_record, [this, a, shared_record](std::string error) {
    asio::post(strand_, [this, a, shared_record, error = std::move(error)] { recorded(a, *shared_record, error); });
  });
}

void engine::recorded(std::shared_ptr<attempt> a, const spool::attempt_record& record, const std::string& error) {
  const auto& msg = *a->message.msg;
  in_flight_.erase(msg.queue_id);
  if (stopping_ && in_flight_.empty() && drained_) std::exchange(drained_, nullptr)();
  if (!error.empty()) {
    // The outcome is not stored, so the recipients are still pending: they are tried again,
    // which may deliver twice; nothing is lost.
    log()->error("{}: cannot record the delivery outcome: {}", msg.queue_id, error);
    return;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - a->started).count();
  for (const auto& e : record.events) {
    if (e.type == "dsn") {
      log()->info("{}: sender non-delivery notification: {}", msg.queue_id, e.reply.text);
      continue;
    }
    const double since_arrival = std::chrono::duration<double>(e.time - msg.arrival).count();
    log()->info("{}: to=<{}>, transport={}, delay={:.3f}s, attempt={:.3f}s, status={} ({})", msg.queue_id, e.recipient,
                e.transport.empty() ? "none" : e.transport, since_arrival, seconds, e.type, describe(e.reply));
    if (metrics_) {
      metrics_->add("postern_messages_" + e.type + "_total", 1, {{"transport", e.transport}, {"tenant", msg.tenant}});
    }
    postern::outcome_event outcome;
    outcome.what = e.type == "delivered"  ? postern::outcome_event::kind::delivered
                   : e.type == "deferred" ? postern::outcome_event::kind::deferred
                                          : postern::outcome_event::kind::failed;
    outcome.queue_id = msg.queue_id;
    outcome.tenant = msg.tenant;
    outcome.campaign_id = msg.campaign_id;
    outcome.recipient = e.recipient;
    outcome.transport = e.transport;
    outcome.reply = e.reply;
    policies_.notify(outcome);
  }
  // A slot is free: mail waiting in memory first, then, if some had to stay in the spool, a
  // poll without waiting for the tick.
  if (!stopping_) start_waiting();
  if (!stopping_ && backlog_ && waiting_.empty()) {
    wake_pending_ = true;
    timer_.cancel();
  }
}

}  // namespace postern::delivery
