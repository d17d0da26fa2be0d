#include "mailgun_transport.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace postern::transports {
namespace {

constexpr std::string_view us_base = "https://api.mailgun.net";
constexpr std::string_view eu_base = "https://api.eu.mailgun.net";
constexpr std::size_t max_detail = 300;  // Mailgun's message in a reply: one readable line

/// One line, printable, bounded: texts from the network end up in logs, `queue show` and DSNs.
std::string one_line(std::string_view text, std::size_t limit = max_detail) {
  std::string out;
  for (char c : text) {
    const bool control = static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    if (control) c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() > limit) out = out.substr(0, limit) + "...";
  return out;
}

std::string replace_all(std::string text, std::string_view what, std::string_view with) {
  if (what.empty()) return text;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size()))
    text.replace(at, what.size(), with);
  return text;
}

/// Mailgun's "message" (and "id") from a JSON body, or a short plain-text body as it is.
struct body_fields {
  std::string message;
  std::string id;
};

body_fields read_body(const std::string& body) {
  body_fields out;
  boost::system::error_code ec;
  const auto value = boost::json::parse(body, ec);
  if (!ec && value.is_object()) {
    const auto& o = value.get_object();
    if (const auto* m = o.if_contains("message"); m && m->is_string()) out.message = std::string(m->get_string());
    if (const auto* id = o.if_contains("id"); id && id->is_string()) out.id = std::string(id->get_string());
    return out;
  }
  // A proxy in front of the API may answer in plain text ("Forbidden"); HTML pages say nothing useful.
  if (!body.empty() && body.size() <= 200 && body.find('<') == std::string::npos) out.message = body;
  return out;
}

std::string status_text(int status) {
  std::string text = "HTTP " + std::to_string(status);
  if (const char* reason = http_reason(status); *reason) text += std::string(" ") + reason;
  return text;
}

bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.front() == '-' || d.back() == '.') return false;
  return std::all_of(d.begin(), d.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

int month_number(std::string_view name) {
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (months[i] == name) return i + 1;
  }
  return 0;
}

/// An HTTP date (RFC 9110 §5.6.7) in any of its three forms, as a point in time.
std::optional<std::chrono::system_clock::time_point> parse_http_date(const std::string& v) {
  char month[4] = {};
  int day = 0, year = 0, hour = 0, minute = 0, second = 0, used = 0;
  bool parsed = false;
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (std::sscanf(v.c_str(), "%*3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", &day, month, &year, &hour, &minute,
                  &second, &used) == 6 &&
      static_cast<std::size_t>(used) == v.size()) {
    parsed = true;
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year is taken as the nearest one.
  if (!parsed &&
      std::sscanf(v.c_str(), "%*[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", &day, month, &year, &hour, &minute,
                  &second, &used) == 6 &&
      static_cast<std::size_t>(used) == v.size()) {
    year += year < 70 ? 2000 : 1900;
    parsed = true;
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (!parsed &&
      std::sscanf(v.c_str(), "%*3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", month, &day, &hour, &minute, &second,
                  &year, &used) == 6 &&
      static_cast<std::size_t>(used) == v.size()) {
    parsed = true;
  }
  if (!parsed) return std::nullopt;
  const int mon = month_number(month);
  if (mon == 0 || hour > 23 || minute > 59 || second > 60 || year < 1970) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(mon)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second);
}

}  // namespace


std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  // A year is far past any retry schedule; the bound only keeps the arithmetic sane.
  constexpr std::chrono::seconds longest = std::chrono::hours(24 * 366);
  if (std::all_of(value.begin(), value.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (value.size() > 9) return longest;
    return std::min(std::chrono::seconds(std::stoll(std::string(value))), longest);
  }
  const auto when = parse_http_date(std::string(value));
  if (!when) return std::nullopt;
  if (*when <= now) return std::chrono::seconds(0);
  return std::min(std::chrono::ceil<std::chrono::seconds>(*when - now), longest);
}

mailgun_outcome map_mailgun_response(const http_response& r, std::chrono::system_clock::time_point now,
                                     std::string_view secret) {
  mailgun_outcome out;
  const auto clean = [&](std::string text) { return replace_all(std::move(text), secret, "[redacted]"); };

  if (r.error != transfer_error::none) {
    const std::string why = one_line(r.error_text);
    switch (r.error) {
      case transfer_error::timed_out: out.reply = {451, "4.4.1", "no answer from Mailgun in time: " + why}; break;
      case transfer_error::cannot_resolve: out.reply = {451, "4.4.3", "cannot resolve Mailgun's host: " + why}; break;
      case transfer_error::cannot_connect: out.reply = {451, "4.4.1", "cannot connect to Mailgun: " + why}; break;
      case transfer_error::tls: out.reply = {451, "4.7.5", "TLS with Mailgun failed: " + why}; break;
      case transfer_error::broken: out.reply = {451, "4.4.2", "connection to Mailgun broke: " + why}; break;
      case transfer_error::stopped: out.reply = {451, "4.3.2", "postern is stopping: " + why}; break;
      default: out.reply = {451, "4.3.0", "request to Mailgun failed: " + why}; break;
    }
    out.reply.text = clean(out.reply.text);
    return out;
  }

  const auto fields = read_body(r.body);
  std::string text = status_text(r.status);
  if (const auto detail = one_line(fields.message); !detail.empty()) text += ": " + detail;
  text = clean(text);

  if (r.status >= 200 && r.status < 300) {
    out.remote_id = clean(one_line(fields.id, 998));
    out.reply = {250, "2.0.0",
                 out.remote_id.empty() ? "accepted by Mailgun (" + text + ")"
                                       : "queued by Mailgun as " + out.remote_id + " (" + text + ")"};
    return out;
  }
  switch (r.status) {
    case 400: out.reply = {554, "5.5.4", "Mailgun refused the request: " + text}; return out;
    case 401: out.reply = {554, "5.7.8", "Mailgun refused the API key: " + text}; return out;
    case 403: out.reply = {554, "5.7.1", "Mailgun refused the request: " + text}; return out;
    case 404: out.reply = {554, "5.3.5", "Mailgun does not know the domain or the endpoint: " + text}; return out;
    case 413: out.reply = {552, "5.3.4", "Mailgun refused the message's size: " + text}; return out;
    default: break;
  }
  if (r.status == 429) {
    out.reply = {451, "4.4.5", "Mailgun is rate limiting: " + text};
  } else if (r.status >= 500 && r.status < 600) {
    out.reply = {451, "4.3.0", "Mailgun failed: " + text};
  } else {
    out.reply = {451, "4.3.0", "unexpected answer from Mailgun: " + text};
  }
  if (const auto wait = parse_retry_after(r.retry_after, now); wait && wait->count() > 0) {
    out.retry_after = *wait;
    out.reply.text += " (retry after " + std::to_string(wait->count()) + "s)";
  }
  return out;
}

mailgun_settings mailgun_settings::read(const postern::config_section& config) {
  const std::string origin = config.origin();
  const auto fail = [&](const std::string& what) { throw std::invalid_argument(origin + ": " + what); };
  const auto text = [&](std::string_view key) -> std::optional<std::string> {
    if (!config.has(key)) return std::nullopt;
    auto v = config.get_string(key);
    if (!v) fail(std::string(key) + " must be a string");
    return v;
  };
  const auto flag = [&](std::string_view key, bool fallback) {
    if (!config.has(key)) return fallback;
    auto v = config.get_bool(key);
    if (!v) fail(std::string(key) + " must be true or false");
    return *v;
  };

  mailgun_settings s;
  s.domain = text("domain").value_or("");
  if (!s.domain.empty() && !valid_domain(s.domain)) fail("domain \"" + s.domain + "\" is not a domain name");

  const auto region = text("region").value_or("us");
  if (region == "us")
    s.base_url = us_base;
  else if (region == "eu")
    s.base_url = eu_base;
  else
    fail("region must be \"us\" or \"eu\", not \"" + region + "\"");
  if (auto base = text("base_url")) {
    if (!base->starts_with("https://") && !base->starts_with("http://"))
      fail("base_url must start with https:// (or http://), not \"" + *base + "\"");
    while (base->ends_with("/")) base->pop_back();
    s.base_url = *base;
  }

  if (config.has("api_key") && config.has("api_key_env")) fail("set api_key or api_key_env, not both");
  if (auto key = text("api_key")) {
    s.api_key = *key;
    s.key_source = "api_key";
  } else {
    const auto name = text("api_key_env").value_or("MAILGUN_API_KEY");
    if (name.empty()) fail("api_key_env must name an environment variable");
    // Read once, here: getenv is not safe against a setenv on another thread later on.
    if (const char* value = std::getenv(name.c_str())) s.api_key = value;
    s.key_source = "$" + name;
  }

  s.testmode = flag("testmode", false);
  s.probe_request = flag("probe_request", false);

  if (config.has("timeout")) {
    const auto t = postern::duration_setting(config, "timeout");
    if (!t) fail("timeout must be a positive duration such as \"30s\" or \"2m\"");
    s.timeout = *t;
  }
  if (config.has("max_in_flight")) {
    auto n = config.get_int("max_in_flight");
    if (!n || *n < 1 || *n > 1000) fail("max_in_flight must be an integer from 1 to 1000");
    s.max_in_flight = static_cast<std::size_t>(*n);
  }
  return s;
}

mailgun_transport::mailgun_transport(postern::host& host)
    : host_(host), settings_(mailgun_settings::read(host.config())), client_(settings_.max_in_flight) {}

mailgun_transport::~mailgun_transport() {
  client_.stop();
}

std::string mailgun_transport::redact(std::string text) const {
  return replace_all(std::move(text), settings_.api_key, "[redacted]");
}

std::string mailgun_transport::missing() const {
  std::string key_hint = settings_.key_source == "api_key"
                             ? "api_key is empty"
                             : "set api_key, or the environment variable " + settings_.key_source.substr(1);
  const bool no_domain = settings_.domain.empty();
  const bool no_key = settings_.api_key.empty();
  if (no_domain && no_key) return "no domain and no API key (set domain, and " + key_hint + ")";
  if (no_domain) return "no domain (set domain in [transports.mailgun])";
  if (no_key) return "no API key (" + key_hint + ")";
  return "";
}

postern::probe_result mailgun_transport::probe() {
  try {
    if (auto why = missing(); !why.empty()) return {false, why};
    const std::string where =
        settings_.domain + " at " + settings_.base_url + (settings_.testmode ? ", test mode" : "");
    if (!settings_.probe_request) return {true, "sends as " + where};

    http_request check;
    check.method = http_request::verb::get;
    check.url = settings_.base_url + "/v3/domains/" + settings_.domain;
    check.username = "api";
    check.password = settings_.api_key;
    // A probe runs before delivery starts: a few seconds at most.
    check.timeout = std::min<std::chrono::milliseconds>(settings_.timeout, std::chrono::seconds(5));
    check.connect_timeout = check.timeout;
    const auto r = http_client::perform(check);
    const std::string asked = "GET " + check.url;
    if (r.error != transfer_error::none)
      return {true, redact("sends as " + where + " (could not check with Mailgun: " + one_line(r.error_text) + ")")};
    const std::string status = status_text(r.status);
    if (r.status >= 200 && r.status < 300) return {true, "sends as " + where + " (Mailgun knows the domain and key)"};
    if (r.status == 401)
      return {false, "API key refused (" + status + " to " + asked + ", key from " + settings_.key_source + ")"};
    if (r.status == 403)
      return {false, "API key refused for " + settings_.domain + " (" + status + " to " + asked + ")"};
    if (r.status == 404)
      return {false, "Mailgun does not know the domain " + settings_.domain + " (" + status + " to " + asked +
                         "; check domain and region)"};
    return {true, "sends as " + where + " (could not check with Mailgun: " + status + ")"};
  } catch (const std::exception& e) {
    return {false, redact(e.what())};
  }
}

void mailgun_transport::deliver(postern::delivery_request request, postern::delivery_callback done) {
  auto answer_all = [](const std::vector<postern::recipient>& recipients, const mailgun_outcome& o) {
    std::vector<postern::recipient_result> results;
    results.reserve(recipients.size());
    for (const auto& r : recipients) results.push_back({r.index, o.reply, o.remote_id, o.retry_after});
    return results;
  };
  if (auto why = missing(); !why.empty()) {
    done(answer_all(request.recipients, {{451, "4.3.5", "the mailgun transport is not configured: " + why}, "", {}}));
    return;
  }

  http_request post;
  post.url = settings_.base_url + "/v3/" + settings_.domain + "/messages.mime";
  post.username = "api";
  post.password = settings_.api_key;
  post.timeout = settings_.timeout;
  post.connect_timeout = std::min<std::chrono::milliseconds>(settings_.timeout, std::chrono::seconds(10));
  // The envelope's recipients of this attempt, not the header's: Mailgun sends to `to` only.
  for (const auto& r : request.recipients) post.form.push_back({"to", r.address, nullptr, "", ""});
  // The raw message is streamed from the spooled copy, which the pointer keeps alive.
  post.form.push_back({"message", "", std::shared_ptr<const std::string>(request.msg, &request.msg->raw),
                       "message.mime", "message/rfc822"});
  if (settings_.testmode) post.form.push_back({"o:testmode", "yes", nullptr, "", ""});

  client_.submit(std::move(post), [this, recipients = std::move(request.recipients), done = std::move(done),
                                   queue_id = request.msg->queue_id, answer_all](http_response response) {
    const auto outcome = map_mailgun_response(response, host_.now(), settings_.api_key);
    if (outcome.reply.permanent() && (response.status == 401 || response.status == 403 || response.status == 404)) {
      // Every message will fail the same way until an operator fixes the settings: say so.
      host_.log(postern::log_level::warn,
                queue_id + ": " + outcome.reply.text + " (check domain, region and key in [transports.mailgun])");
    }
    done(answer_all(recipients, outcome));
  });
}

void mailgun_transport::stop() {
  client_.stop();
}

}  // namespace postern::transports
