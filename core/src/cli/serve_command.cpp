#include "cli/cli.hpp"
#include "cli/memory_release.hpp"
#include "cli/purge.hpp"

#include "delivery/engine.hpp"
#include "ingress/http/api.hpp"
#include "ingress/http/server.hpp"
#include "ingress/smtp/server.hpp"
#include "ingress/smtp/tls.hpp"
#include "logging/log.hpp"
#include "maildrop/pickup.hpp"
#include "telemetry/registry.hpp"
#include "plugin_host/policy_set.hpp"
#include "plugin_host/transport_set.hpp"
#include "spool/spool.hpp"
#include "campaign/campaign_service.hpp"
#include "campaign/unsubscribe_links.hpp"
#include "contacts/contact_store.hpp"
#include "store/state_store.hpp"
#include "webhooks/dispatcher.hpp"
#include "submission/service.hpp"
#include "tenants/directory.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>

#include <sysexits.h>

#include <algorithm>
#include <thread>

namespace asio = boost::asio;

namespace postern::cli {
namespace {

delivery::engine_options engine_options_from(const config::settings& s) {
  delivery::engine_options o;
  o.hostname = s.server.hostname;
  o.retry_schedule = s.delivery.retry_schedule;
  o.jitter = s.delivery.jitter;
  o.max_age = s.delivery.max_age;
  o.max_parallel = s.delivery.max_parallel;
  o.workers = s.delivery.workers;
  o.poll_interval = s.delivery.poll_interval;
  o.routes = s.delivery.routes;
  o.limits = s.delivery.limits;
  return o;
}

/// The SMTP listener's settings, or an exception naming what is wrong (bad TLS files).
ingress::smtp::server_options smtp_options_from(const config::settings& s) {
  ingress::smtp::server_options o;
  o.hostname = s.server.hostname;
  o.max_message_size = s.submission.max_message_size;
  o.smtp = s.smtp;
  for (const auto& n : s.smtp.trusted_networks) o.trusted.emplace_back(n);
  o.bare_line_endings = s.smtp.bare_line_endings == "reject" ? ingress::smtp::line_ending_rule::reject
                                                             : ingress::smtp::line_ending_rule::normalise;
  if (!s.tls.certificate.empty()) o.tls = ingress::smtp::make_server_tls(s.tls.certificate, s.tls.private_key);
  return o;
}

void warn_if_demo(const config::settings& s) {
  if (!s.demo) return;
  auto log = logging::get("postern");
  log->warn("****************************************************************************");
  log->warn("* DEMO SETTINGS (server.demo = true in {}):", s.file.string());
  log->warn("*   well-known logins and trusted local networks, for trying postern on this machine.");
  log->warn("*   Never expose this configuration.");
  log->warn("****************************************************************************");
}

void log_plugins(const std::vector<plugin_host::plugin_record>& plugins) {
  auto log = logging::get("plugins");
  for (const auto& p : plugins) {
    if (p.lib) {
      log->info("loaded {} plugin {} {} from {}", p.kind, p.name, p.version, p.file.string());
    } else {
      log->warn("skipped {}: {}", p.file.string(), p.error);
    }
  }
}

/// Values read at scrape time for GET /metrics.
std::string gauges(spool::spool& spool, const ingress::smtp::server* smtp, const ingress::http::server* http) {
  const auto stats = spool.stats();
  std::string out;
  out += "# TYPE postern_queue_messages gauge\npostern_queue_messages " + std::to_string(stats.messages_pending) + "\n";
  out += "# TYPE postern_queue_recipients gauge\n";
  out += "postern_queue_recipients{state=\"queued\"} " + std::to_string(stats.queued) + "\n";
  out += "postern_queue_recipients{state=\"deferred\"} " + std::to_string(stats.deferred) + "\n";
  out += "# TYPE postern_open_connections gauge\n";
  out += "postern_open_connections{protocol=\"smtp\"} " + std::to_string(smtp ? smtp->connections() : 0) + "\n";
  out += "postern_open_connections{protocol=\"http\"} " + std::to_string(http ? http->connections() : 0) + "\n";
  return out;
}

}  // namespace

namespace {
/// Where recipients reach this server: [http] public_url, or else the first listener as
/// bound (known once it listens: the configured port may be 0).
std::string public_url(const config::settings& s, const ingress::http::server* http) {
  if (!s.http.public_url.empty()) return s.http.public_url;
  if (!http) return {};
  const auto bound = http->bound();
  if (bound.empty()) return {};
  std::string address = bound.front();
  // A wildcard address names no host a recipient could reach: this host's name instead.
  for (const char* any : {"0.0.0.0:", "[::]:"})
    if (address.starts_with(any)) address = s.server.hostname + address.substr(std::string_view(any).size() - 1);
  return (s.http.listen.empty() ? "https://" : "http://") + address;
}
}  // namespace

namespace {
/// The `campaign_completed` webhook of a campaign's tenant, if it has one, queued with the
/// other webhook deliveries (signed and retried the same way). Once per campaign: a second
/// call (after a crash between the report and its mark) queues nothing.
void queue_campaign_webhook(store::state_store& state, const postern::campaign_summary& c) {
  const auto hooks = state.webhooks(c.tenant);
  const auto url = hooks.find("campaign_completed");
  if (url == hooks.end()) return;
  const auto seconds = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  };
  boost::json::object campaign{{"id", c.id},           {"name", c.name},
                               {"outcome", c.was_cancelled ? "cancelled" : "finished"},
                               {"selected", c.selected}, {"dropped", c.dropped},     {"queued", c.queued},
                               {"delivered", c.delivered}, {"failed", c.failed},     {"cancelled", c.cancelled},
                               {"cost", c.cost},         {"started", seconds(c.started)},
                               {"finished", seconds(c.finished)}};
  const boost::json::object data{{"event", "campaign_completed"}, {"id", c.id}, {"timestamp", seconds(c.finished)},
                                 {"campaign", std::move(campaign)}};
  state.add_webhook_delivery({0, c.tenant, "campaign_completed", url->second, boost::json::serialize(data), 0},
                             "campaign_completed:" + c.id, std::chrono::system_clock::now());
}
/// The 10-minute clean-up, on the housekeeping thread: an error is logged, and the next round
/// tries again.
void purge_in_background(spool::spool& spool, campaign::campaign_store& campaigns, const config::settings& s,
                         const std::atomic<bool>& stop) {
  try {
    purge_old_mail(spool, campaigns, s, stop);
  } catch (const std::exception& e) {
    logging::get("postern")->error("could not purge old messages: {}", e.what());
  }
}

}  // namespace

int serve_command(const config::settings& s) {
  logging::init(s.server.log_level);
  auto log = logging::get("postern");
  log->info("postern {} starting: config {}, data {}", POSTERN_VERSION, s.file.string(), s.server.data_dir.string());
  warn_if_demo(s);

  telemetry::registry metrics;
  std::unique_ptr<spool::spool> spool;
  try {
    spool = std::make_unique<spool::spool>(spool::spool_options{s.spool.dir, s.spool.max_batch, &metrics, s.spool.keep_content});
  } catch (const std::exception& e) {
    log->critical("cannot open the spool in {}: {}", s.spool.dir.string(), e.what());
    return EX_CANTCREAT;
  }

  std::unique_ptr<store::state_store> state;
  try {
    state = std::make_unique<store::state_store>(s.server.data_dir / "state.db");
  } catch (const std::exception& e) {
    log->critical("cannot open the state database in {}: {}", s.server.data_dir.string(), e.what());
    return EX_CANTCREAT;
  }
  std::unique_ptr<contacts::contact_store> contact_store;
  try {
    contact_store = std::make_unique<contacts::contact_store>(s.server.data_dir / "contacts.db");
  } catch (const std::exception& e) {
    log->critical("cannot open the contacts database in {}: {}", s.server.data_dir.string(), e.what());
    return EX_CANTCREAT;
  }
  std::unique_ptr<campaign::campaign_store> campaign_data;
  try {
    campaign_data = std::make_unique<campaign::campaign_store>(s.server.data_dir / "campaigns.db");
  } catch (const std::exception& e) {
    log->critical("cannot open the campaigns database in {}: {}", s.server.data_dir.string(), e.what());
    return EX_CANTCREAT;
  }
  // Unsubscribe links are signed with a key of the gateway's own, kept with its other keys.
  campaign::unsubscribe_links unsubscribe(public_url(s, nullptr), state->signing_key("postern:unsubscribe-links"));
  const bool private_hooks = s.http.webhooks_to_private_networks;
  webhooks::dispatcher webhook_dispatcher(*spool, *state, {}, [private_hooks](const std::string& url, const std::string& body) {
    return webhooks::curl_post(url, body, private_hooks);
  });

  const auto plugins = plugin_host::scan(s.server.plugin_dirs);
  log_plugins(plugins);

  asio::io_context io;
  plugin_host::gateway_services gateway{s.server.hostname, s.server.data_dir, &metrics, nullptr, campaign_data.get()};
  gateway.unsubscribe_url = [&unsubscribe](std::string_view tenant, std::string_view email, std::string_view list,
                                             std::string_view campaign) {
      return unsubscribe.url(tenant, email, list, campaign);
    };
  std::unique_ptr<plugin_host::policy_set> policies;
  try {
    policies = std::make_unique<plugin_host::policy_set>(s, plugins, gateway);
  } catch (const std::exception& e) {
    log->critical("{}", e.what());
    return EX_CONFIG;
  }
  plugin_host::transport_set transports(s, plugins, gateway);
  if (!transports.pick())
    log->error("no transport is available: mail is accepted and kept in the queue until one is (see `postern plugins`)");

  // Policies may ask where a message would go (activity_window lifts its window per route).
  const delivery::router route_finder(s.delivery.routes, transports);
  gateway.route_of = [&route_finder](const postern::message& m, std::string_view recipient) {
    return route_finder.route(m, recipient).route;
  };
  submission::service submission(*spool, policies->chain(), {s.server.hostname, s.submission.max_message_size, &metrics});
  gateway.submit = [&submission](postern::new_message m, postern::submit_callback done, const std::string& plugin) {
    submission::request req;
    req.tenant = std::move(m.tenant);
    req.stream = m.stream;
    req.tags = std::move(m.tags);
    req.campaign_id = std::move(m.campaign_id);
    req.env = std::move(m.env);
    req.raw = std::move(m.raw);
    req.source = "plugin:" + plugin;
    if (!m.origin_key.empty()) req.origin_key = "plugin:" + plugin + ":" + m.origin_key;
    submission.submit(std::move(req), std::move(done));
  };

  delivery::engine engine(io, *spool, transports, policies->chain(), engine_options_from(s), &metrics);
  maildrop::pickup pickup(io, s.maildrop_dir(), submission);
  campaign::campaign_service campaigns(submission, *spool, *contact_store, *campaign_data, policies->chain());
  campaigns.on_end([&state](const postern::campaign_summary& c) { queue_campaign_webhook(*state, c); });

  tenants::directory tenant_directory(s.tenants);
  std::unique_ptr<ingress::smtp::server> smtp;
  std::unique_ptr<ingress::http::api> api;
  std::unique_ptr<ingress::http::server> http;
  std::atomic<bool> ready{false};
  try {
    auto smtp_options = smtp_options_from(s);
    if (!s.smtp.listen.empty() || !s.smtp.tls_listen.empty()) {
      smtp = std::make_unique<ingress::smtp::server>(io, smtp_options, submission, policies->chain(), tenant_directory);
      smtp->start();
    }
    if (!s.http.listen.empty() || !s.http.tls_listen.empty()) {
      api = std::make_unique<ingress::http::api>(ingress::http::api_services{
          submission, *spool, tenant_directory, metrics, *state, *contact_store, transports, s.server.hostname, std::min(std::chrono::milliseconds(std::chrono::hours(72)), s.delivery.max_age / 2),
          s.smtp.max_recipients, s.http.rate_limit, s.http.rate_burst,
          [&] { return gauges(*spool, smtp.get(), http.get()); }, [&ready] { return ready.load(); },
          &campaigns, campaign_data.get(), &unsubscribe});
      http = std::make_unique<ingress::http::server>(io, s.http, smtp_options.tls, *api);
      http->start();
      unsubscribe.set_base_url(public_url(s, http.get()));
      if (!public_url(s, http.get()).starts_with("https://") &&
          std::find(s.policy_order.begin(), s.policy_order.end(), "consent") != s.policy_order.end())
        log->warn("unsubscribe links are {}/unsubscribe/...: one-click unsubscribe (RFC 8058) needs an HTTPS link; "
                  "set [http] public_url = \"https://...\"", public_url(s, http.get()));
    }
  } catch (const std::exception& e) {
    log->critical("{}", e.what());
    return EX_CONFIG;
  }

  // Content of finished messages is kept for resends, then dropped (spool.keep_content); the
  // messages themselves, with their recipients and events, go after spool.keep_history. On a
  // thread of their own: a purge of many messages takes seconds, which no I/O thread can spare.
  // The timer lives on a strand: it is armed from the housekeeping thread's hand-back and
  // cancelled by the signal handler, on any I/O thread.
  // The pool is declared after everything its task uses, so that it is destroyed (joined)
  // first.
  auto purge_strand = asio::make_strand(io);
  asio::steady_timer purge_timer(purge_strand);
  std::atomic<bool> stop_housekeeping{false};  // checked between two rounds of a purge
  std::function<void()> schedule_purge;
  asio::thread_pool housekeeping(1);
  schedule_purge = [&] {
    if (stop_housekeeping) return;
    purge_timer.expires_after(std::chrono::minutes(10));
    purge_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      asio::post(housekeeping, [&] {
        purge_in_background(*spool, *campaign_data, s, stop_housekeeping);
        asio::post(purge_strand, [&] { schedule_purge(); });
      });
    });
  };
  schedule_purge();

  memory_release allocator_reserve(io);
  allocator_reserve.start();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer deadline(io);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    log->info("signal {}: stopping; finishing deliveries in progress", signal);
    pickup.stop();
    stop_housekeeping = true;
    asio::post(purge_strand, [&] { purge_timer.cancel(); });
    allocator_reserve.stop();
    if (smtp) smtp->stop();
    if (http) http->stop();
    engine.shutdown([&io] { io.stop(); });
    // Transports get a bounded time; what is not recorded by then is retried after restart.
    deadline.expires_after(std::chrono::seconds(30));
    deadline.async_wait([&io](const boost::system::error_code& e) {
      if (!e) io.stop();
    });
  });

  // Wired only now: no early return above leaves the spool calling into a dead engine.
  spool->on_enqueued([&engine](spool::spool::stored_messages m) { engine.offer(std::move(m)); });
  engine.start();
  pickup.start();
  webhook_dispatcher.start();
  campaigns.run();
  ready = true;
  log->info("postern ready");
  const std::size_t threads =
      s.server.threads ? s.server.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> runners;
  for (std::size_t i = 1; i < threads; ++i) runners.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : runners) t.join();

  spool->on_enqueued(nullptr);
  // Submissions still being committed call back into the pickup and SMTP sessions: let them
  // finish now, while those still exist (their posts to the stopped io_context never run).
  webhook_dispatcher.stop();
  campaigns.stop();
  spool->wait_idle();
  transports.stop_all();
  engine.stop();
  log->info("postern stopped");
  return 0;
}

}  // namespace postern::cli
