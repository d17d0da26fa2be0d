#include "webhooks/dispatcher.hpp"

#include "logging/log.hpp"
#include "tenants/directory.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <curl/curl.h>
#include <sodium.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <map>
#include <thread>

namespace json = boost::json;

namespace postern::webhooks {
namespace {

constexpr std::size_t events_per_round = 500;
constexpr std::size_t sends_per_round = 200;
constexpr std::size_t sends_per_tenant = 10;  // per round
constexpr std::size_t lane_count = 4;         // deliveries in flight at once

/// The webhook name of a spool event type, or empty when webhooks are not sent for it.
std::string webhook_type(const std::string& spool_type) {
  if (spool_type == "delivered" || spool_type == "deferred" || spool_type == "failed") return spool_type;
  if (spool_type == "dsn") return "bounced";
  return "";
}

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string event_data(const spool::feed_event& f, const std::string& type) {
  const auto& e = f.event;
  json::object data{{"event", type},
                    {"id", std::to_string(f.seq)},
                    {"timestamp", unix_seconds(e.time)},
                    {"recipient", e.recipient},
                    {"message", json::object{{"queue-id", e.queue_id}}},
                    {"delivery-status", json::object{{"code", e.reply.code},
                                                     {"enhanced-code", e.reply.enhanced},
                                                     {"message", e.reply.text},
                                                     {"transport", e.transport}}}};
  return json::serialize(data);
}

std::size_t discard(char*, std::size_t size, std::size_t count, void*) { return size * count; }

}  // namespace

std::string signature(std::string_view key, std::string_view timestamp, std::string_view token) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(timestamp.data()), timestamp.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(token.data()), token.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&state, mac);
  char hex[sizeof mac * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
  return hex;
}

namespace {

bool private_address(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    const auto ip = ntohl(reinterpret_cast<const sockaddr_in*>(address)->sin_addr.s_addr);
    const auto in = [ip](std::uint32_t net, int bits) { return (ip >> (32 - bits)) == (net >> (32 - bits)); };
    return in(0x7F000000, 8) || in(0x0A000000, 8) || in(0xAC100000, 12) || in(0xC0A80000, 16) ||
           in(0xA9FE0000, 16) || in(0x00000000, 8) || in(0x64400000, 10);
  }
  if (address->sa_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      sockaddr_in v4{};
      v4.sin_family = AF_INET;
      std::memcpy(&v4.sin_addr, a.s6_addr + 12, 4);
      return private_address(reinterpret_cast<const sockaddr*>(&v4));
    }
    return IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LINKLOCAL(&a) ||
           (a.s6_addr[0] & 0xFE) == 0xFC;  // fc00::/7, unique local
  }
  return true;
}

curl_socket_t open_public_socket(void*, curlsocktype, curl_sockaddr* address) {
  if (private_address(&address->addr)) return CURL_SOCKET_BAD;
  return ::socket(address->family, address->socktype, address->protocol);
}

}  // namespace

post_result curl_post(const std::string& url, const std::string& body, bool private_networks) {
  CURL* curl = curl_easy_init();
  if (!curl) return {0, "libcurl could not start"};
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  if (!private_networks) curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
  const CURLcode rc = curl_easy_perform(curl);
  post_result out;
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
    out.text = "HTTP " + std::to_string(out.status);
  } else {
    // Only the kind of failure goes back to the tenant, not curl's details about our network.
    out.text = rc == CURLE_OPERATION_TIMEDOUT ? "no answer in time"
               : rc == CURLE_COULDNT_CONNECT  ? "could not connect (or the address is not allowed)"
               : rc == CURLE_COULDNT_RESOLVE_HOST ? "the host name does not resolve"
                                                  : std::string("request failed: ") + curl_easy_strerror(rc);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return out;
}

dispatcher::dispatcher(spool::spool& spool, store::state_store& state, dispatcher_options options, poster post)
    : spool_(spool), state_(state), options_(std::move(options)), post_(std::move(post)) {}

dispatcher::~dispatcher() { stop(); }

void dispatcher::start() {
  thread_ = std::thread([this] { loop(); });
}

void dispatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void dispatcher::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    try {
      run_once(std::chrono::system_clock::now());
    } catch (const std::exception& e) {
      logging::get("webhooks")->error("webhook round failed: {}", e.what());
    }
    lock.lock();
    wake_.wait_for(lock, options_.poll_interval, [this] { return stopping_; });
  }
}

void dispatcher::run_once(std::chrono::system_clock::time_point now) {
  generate(now);
  send_due(now);
}

void dispatcher::generate(std::chrono::system_clock::time_point now) {
  const auto events = spool_.events_after(state_.webhook_cursor(), events_per_round);
  if (events.empty()) return;
  std::map<std::string, std::map<std::string, std::string>> hooks;  // tenant -> type -> url
  std::vector<store::webhook_delivery> deliveries;
  for (const auto& f : events) {
    const auto type = webhook_type(f.event.type);
    if (type.empty()) continue;
    auto [it, fresh] = hooks.try_emplace(f.tenant);
    if (fresh) it->second = state_.webhooks(f.tenant);
    const auto url = it->second.find(type);
    if (url == it->second.end()) continue;
    store::webhook_delivery d;
    d.tenant = f.tenant;
    d.event_type = type;
    d.url = url->second;
    d.payload = event_data(f, type);
    deliveries.push_back(std::move(d));
  }
  // Due at this round's `now`: the store's clock reads later, and send_due(now) would skip them.
  state_.add_webhook_deliveries(deliveries, events.back().seq, now);
}

std::string dispatcher::signed_body(const store::webhook_delivery& d) {
  const std::string timestamp = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count());
  const std::string token = tenants::random_hex(25);
  const std::string key = state_.signing_key(d.tenant);
  json::object body{{"signature", json::object{{"timestamp", timestamp},
                                               {"token", token},
                                               {"signature", signature(key, timestamp, token)}}},
                    {"event-data", json::parse(d.payload)}};
  return json::serialize(body);
}

void dispatcher::send_due(std::chrono::system_clock::time_point now) {
  // A few lanes at once, each tenant in one lane and at most a few deliveries of a tenant per
  // round: a tenant whose URL hangs holds up its own webhooks (and a few others' in its lane),
  // not everyone's.
  std::map<std::string, std::vector<store::webhook_delivery>> by_tenant;
  for (auto& d : state_.due_webhooks(now, sends_per_round)) {
    auto& mine = by_tenant[d.tenant];
    if (mine.size() < sends_per_tenant) mine.push_back(std::move(d));
  }
  std::vector<std::vector<store::webhook_delivery>> lanes(std::min(lane_count, by_tenant.size()));
  std::size_t next_lane = 0;
  for (auto& [tenant, deliveries] : by_tenant) {
    auto& lane = lanes[next_lane++ % lanes.size()];
    lane.insert(lane.end(), std::make_move_iterator(deliveries.begin()), std::make_move_iterator(deliveries.end()));
  }
  std::vector<std::thread> threads;
  for (auto& lane : lanes) {
    threads.emplace_back([this, &lane, now] {
      for (const auto& d : lane) {
        if (stopping()) return;  // the rest stays due for the next start
        send_one(d, now);
      }
    });
  }
  for (auto& t : threads) t.join();
}

bool dispatcher::stopping() {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void dispatcher::send_one(const store::webhook_delivery& d, std::chrono::system_clock::time_point now) {
  const auto result = post_(d.url, signed_body(d));
  const auto data = json::parse(d.payload).as_object();
  // A delivery event names its message and recipient; a campaign's end names the campaign.
  const auto* message = data.if_contains("message");
  const auto* recipient_value = data.if_contains("recipient");
  const std::string queue_id(message ? message->as_object().at("queue-id").as_string()
                                     : data.at("campaign").as_object().at("id").as_string());
  const std::string recipient(recipient_value ? recipient_value->as_string() : "");
  spool::event_record event{std::chrono::system_clock::now(), queue_id, recipient, "webhook", "",
                            {result.success() ? 250 : 451, result.success() ? "2.0.0" : "4.4.0",
                             d.event_type + " to " + d.url + ": " + result.text}};
  if (result.success()) {
    state_.webhook_done(d.id);
  } else {
    const auto& schedule = options_.retry_schedule;
    std::optional<std::chrono::system_clock::time_point> next;
    if (d.attempts < schedule.size()) next = now + schedule[d.attempts];
    if (!next) event.reply = {551, "5.4.0", d.event_type + " to " + d.url + ": gave up: " + result.text};
    state_.webhook_failed(d.id, next);
    logging::get("webhooks")->warn("{} webhook for {} failed ({}){}", d.event_type, d.tenant, result.text,
                                   next ? ", will retry" : ", giving up");
  }
  spool::attempt_record record;
  record.events.push_back(std::move(event));
  spool_.record(std::move(record), [](const std::string&) {});
}

}  // namespace postern::webhooks
