#include "config/config.hpp"

#include "config/duration.hpp"
#include "ingress/smtp/network.hpp"

#include <unistd.h>

#include <algorithm>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace postern::config {

std::string config_error::to_string() const {
  std::ostringstream out;
  out << file;
  if (line > 0) out << ':' << line << ':' << column;
  out << ": ";
  if (!key.empty()) out << key << ": ";
  out << message;
  return out.str();
}

namespace {

/// Reads one table of the file, records errors with their place, and remembers which keys it
/// read so that unknown (mistyped) keys can be reported.
class table_reader {
 public:
  table_reader(const toml::table* table, std::string prefix, std::string file,
               std::vector<config_error>& errors)
      : table_(table), prefix_(std::move(prefix)), file_(std::move(file)), errors_(errors) {}

  template <class T>
  std::optional<T> get(std::string_view key, const char* expected) {
    known_.emplace(key);
    if (!table_) return std::nullopt;
    const toml::node* node = table_->get(key);
    if (!node) return std::nullopt;
    if (auto v = node->value<T>()) return v;
    type_error(node, key, expected);
    return std::nullopt;
  }

  std::optional<std::string> string(std::string_view key) { return get<std::string>(key, "a string"); }
  std::optional<std::int64_t> integer(std::string_view key) { return get<std::int64_t>(key, "an integer"); }

  std::optional<std::vector<std::string>> strings(std::string_view key) {
    known_.emplace(key);
    if (!table_) return std::nullopt;
    const toml::node* node = table_->get(key);
    if (!node) return std::nullopt;
    const toml::array* array = node->as_array();
    if (!array) {
      error(node, key, "expected a list of strings");
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (const toml::node& element : *array) {
      if (auto s = element.value<std::string>()) {
        out.push_back(*s);
      } else {
        error(&element, key, "expected a list of strings");
        return std::nullopt;
      }
    }
    return out;
  }

  std::optional<std::chrono::milliseconds> duration(std::string_view key) {
    auto text = string(key);
    if (!text) return std::nullopt;
    auto value = parse_duration(*text);
    if (!value) error(table_->get(key), key, "not a duration (examples: \"90s\", \"15m\", \"5d\")");
    return value;
  }

  std::optional<std::uint64_t> size(std::string_view key) {
    known_.emplace(key);
    if (!table_) return std::nullopt;
    const toml::node* node = table_->get(key);
    if (!node) return std::nullopt;
    if (auto n = node->value<std::int64_t>(); n && *n >= 0) return static_cast<std::uint64_t>(*n);
    if (auto s = node->value<std::string>()) {
      if (auto v = parse_size(*s)) return v;
    }
    error(node, key, "not a size (examples: 1048576, \"512KiB\", \"50MiB\")");
    return std::nullopt;
  }

  // Not inlined: GCC 12 warns falsely (-Warray-bounds) about the inlined string concatenation.
  [[gnu::noinline]] void type_error(const toml::node* node, std::string_view key, const char* expected) {
    error(node, key, std::string("expected ") + expected);
  }

  /// An integer within [low, high], or `fallback` (with an error when out of range).
  std::size_t count(std::string_view key, std::size_t fallback, std::int64_t low, std::int64_t high) {
    auto n = integer(key);
    if (!n) return fallback;
    if (*n < low || *n > high) {
      error(table_->get(key), key, "expected " + std::to_string(low) + " to " + std::to_string(high));
      return fallback;
    }
    return static_cast<std::size_t>(*n);
  }

  /// Marks a key as known without reading it (sub-tables handled elsewhere).
  void allow(std::string_view key) { known_.emplace(key); }

  void error(const toml::node* node, std::string_view key, std::string message) {
    config_error e{file_, 0, 0, prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key),
                   std::move(message)};
    if (node) {
      e.line = node->source().begin.line;
      e.column = node->source().begin.column;
    }
    errors_.push_back(std::move(e));
  }

  void report_unknown_keys() {
    if (!table_) return;
    for (const auto& [key, node] : *table_) {
      if (!known_.count(std::string(key.str()))) error(&node, key.str(), "unknown setting");
    }
  }

 private:
  const toml::table* table_;
  std::string prefix_;
  std::string file_;
  std::vector<config_error>& errors_;
  std::set<std::string, std::less<>> known_;
};

std::string system_hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

std::filesystem::path absolute_from(const std::filesystem::path& base, const std::string& path) {
  std::filesystem::path p(path);
  return (p.is_absolute() ? p : base / p).lexically_normal();
}

/// The prefix the running binary is installed under (<prefix>/bin/postern), or empty.
std::filesystem::path install_prefix() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path().parent_path();
}

std::filesystem::path plugin_dir_next_to_binary() {
  const auto prefix = install_prefix();
  return prefix.empty() ? prefix : (prefix / POSTERN_PLUGIN_SUBDIR).lexically_normal();
}

const toml::table* sub_table(const toml::table& root, std::string_view name, const std::string& file,
                             std::vector<config_error>& errors) {
  const toml::node* node = root.get(name);
  if (!node) return nullptr;
  if (auto* t = node->as_table()) return t;
  errors.push_back({file, node->source().begin.line, node->source().begin.column, std::string(name),
                    "expected a table ([" + std::string(name) + "])"});
  return nullptr;
}

void read_server(const toml::table& root, settings& s, std::vector<config_error>& errors) {
  const std::string file = s.file.string();
  table_reader r(sub_table(root, "server", file, errors), "server", file, errors);
  const auto base = s.file.parent_path();
  s.server.hostname = r.string("hostname").value_or(system_hostname());
  s.server.data_dir = absolute_from(base, r.string("data_dir").value_or("/var/lib/postern"));
  s.server.log_level = r.string("log_level").value_or("info");
  if (auto demo = r.get<bool>("demo", "true or false")) s.demo = *demo;
  s.server.threads = r.count("threads", s.server.threads, 0, 256);
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error"};
  if (!levels.count(s.server.log_level))
    r.error(root["server"]["log_level"].node(), "log_level", "expected one of trace, debug, info, warn, error");
  if (auto dirs = r.strings("plugin_dirs")) {
    for (const auto& d : *dirs) s.server.plugin_dirs.push_back(absolute_from(base, d));
  } else if (auto d = plugin_dir_next_to_binary(); !d.empty()) {
    s.server.plugin_dirs.push_back(d);
  }
  r.report_unknown_keys();
}

void read_submission(const toml::table& root, settings& s, std::vector<config_error>& errors) {
  const std::string file = s.file.string();
  table_reader r(sub_table(root, "submission", file, errors), "submission", file, errors);
  s.submission.local_tenant = r.string("local_tenant").value_or("default");
  s.submission.max_message_size = r.size("max_message_size").value_or(s.submission.max_message_size);
  r.report_unknown_keys();
}

void read_spool(const toml::table& root, settings& s, std::vector<config_error>& errors) {
  const std::string file = s.file.string();
  table_reader r(sub_table(root, "spool", file, errors), "spool", file, errors);
  s.spool.dir = absolute_from(s.server.data_dir, r.string("dir").value_or("spool"));
  s.spool.max_batch = r.count("max_batch", s.spool.max_batch, 1, 100000);
  s.spool.keep_content = r.duration("keep_content").value_or(s.spool.keep_content);
  // Unset, it follows a longer keep_content: a config written before keep_history existed
  // keeps working as it did.
  s.spool.keep_history = r.duration("keep_history").value_or(std::max(s.spool.keep_history, s.spool.keep_content));
  if (s.spool.keep_history < s.spool.keep_content || s.spool.keep_history < std::chrono::hours(1)) {
    const toml::node* node = nullptr;
    if (const auto* t = root["spool"].as_table()) node = t->get("keep_history");
    // An hour at least: the webhook dispatcher and a campaign's end read a finished
    // message's events a little after it finished.
    r.error(node, "keep_history", "must be at least keep_content, and at least 1h");
  }
  r.report_unknown_keys();
}

/// Each table of the array `key` in `t`, with its reader; a non-table entry is an error.
template <class Read>
void for_each_table(const toml::table& t, std::string_view key, const std::string& file, std::vector<config_error>& errors,
                    Read read) {
  const toml::node* node = t.get(key);
  if (!node) return;
  const toml::array* list = node->as_array();
  if (!list) {
    errors.push_back({file, node->source().begin.line, node->source().begin.column, "delivery." + std::string(key),
                      "expected [[delivery." + std::string(key) + "]] tables"});
    return;
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    const toml::table* entry = (*list)[i].as_table();
    const std::string prefix = "delivery." + std::string(key) + "[" + std::to_string(i) + "]";
    if (!entry) {
      errors.push_back({file, (*list)[i].source().begin.line, (*list)[i].source().begin.column, prefix, "expected a table"});
      continue;
    }
    table_reader r(entry, prefix, file, errors);
    read(r, *entry, i);
    r.report_unknown_keys();
  }
}

/// A string or a list of strings.
std::vector<std::string> one_or_more(table_reader& r, const toml::table& t, std::string_view key) {
  if (const toml::node* n = t.get(key); n && n->is_string()) return {*r.string(key)};
  return r.strings(key).value_or(std::vector<std::string>{});
}

void read_routes(const toml::table& t, settings& s, const std::string& file, std::vector<config_error>& errors) {
  for_each_table(t, "routes", file, errors, [&](table_reader& r, const toml::table& entry, std::size_t i) {
    route_settings route;
    route.name = r.string("name").value_or("route " + std::to_string(i + 1));
    route.streams = one_or_more(r, entry, "stream");
    route.tenants = one_or_more(r, entry, "tenant");
    route.sender_domains = one_or_more(r, entry, "sender_domain");
    route.recipient_domains = one_or_more(r, entry, "recipient_domain");
    route.tags = one_or_more(r, entry, "tag");
    route.transports = one_or_more(r, entry, "transports");
    for (const auto& stream : route.streams) {
      if (stream != "transactional" && stream != "marketing")
        r.error(entry.get("stream"), "stream", "expected \"transactional\" or \"marketing\", not \"" + stream + "\"");
    }
    if (route.transports.empty()) r.error(&entry, "transports", "a route needs at least one transport");
    s.delivery.routes.push_back(std::move(route));
  });
}

void read_limits(const toml::table& t, settings& s, const std::string& file, std::vector<config_error>& errors) {
  for_each_table(t, "limits", file, errors, [&](table_reader& r, const toml::table& entry, std::size_t) {
    limit_settings limit;
    limit.transport = r.string("transport").value_or("");
    limit.domain = r.string("domain").value_or("");
    limit.concurrency = r.count("concurrency", 0, 0, 100000);
    if (auto rate = r.get<double>("rate", "a number")) {
      if (*rate < 0) r.error(entry.get("rate"), "rate", "must not be negative");
      else limit.rate = *rate;
    }
    if (limit.transport.empty() == limit.domain.empty())
      r.error(&entry, "transport", "a limit names either a transport or a domain");
    if (limit.concurrency == 0 && limit.rate == 0) r.error(&entry, "concurrency", "a limit needs concurrency or rate");
    for (auto& c : limit.domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    s.delivery.limits.push_back(std::move(limit));
  });
}

void read_delivery(const toml::table& root, settings& s, std::vector<config_error>& errors) {
  const std::string file = s.file.string();
  const toml::table* t = sub_table(root, "delivery", file, errors);
  table_reader r(t, "delivery", file, errors);
  auto& d = s.delivery;
  d.transports = r.strings("transports").value_or(std::vector<std::string>{});
  using namespace std::chrono_literals;
  d.retry_schedule = {1min, 5min, 15min, 30min, 1h, 2h, 4h};
  if (auto schedule = r.strings("retry_schedule")) {
    d.retry_schedule.clear();
    for (const auto& step : *schedule) {
      if (auto ms = parse_duration(step); ms && ms->count() > 0) d.retry_schedule.push_back(*ms);
      else r.error((*t)["retry_schedule"].node(), "retry_schedule", "not a duration: \"" + step + "\"");
    }
    if (d.retry_schedule.empty() && schedule->empty())
      r.error((*t)["retry_schedule"].node(), "retry_schedule", "needs at least one step");
  }
  if (auto j = r.get<double>("jitter", "a number between 0 and 0.5")) {
    if (*j < 0 || *j > 0.5) r.error((*t)["jitter"].node(), "jitter", "expected a number between 0 and 0.5");
    else d.jitter = *j;
  }
  d.max_age = r.duration("max_age").value_or(d.max_age);
  d.poll_interval = r.duration("poll_interval").value_or(d.poll_interval);
  if (d.poll_interval < std::chrono::milliseconds(10)) {
    r.error((*t)["poll_interval"].node(), "poll_interval", "must be at least 10ms");
    d.poll_interval = std::chrono::milliseconds(10);
  }
  d.max_parallel = r.count("max_parallel", d.max_parallel, 1, 10000);
  d.workers = r.count("workers", d.workers, 1, 256);
  r.allow("routes");
  r.allow("limits");
  if (t) {
    read_routes(*t, s, file, errors);
    read_limits(*t, s, file, errors);
  }
  r.report_unknown_keys();
}

/// True if `text` is what the SMTP listener will accept as a trusted block.
bool valid_cidr(const std::string& text) {
  try {
    ingress::smtp::cidr{text};
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

void read_smtp(const toml::table& root, settings& s, std::vector<config_error>& errors) {
  const std::string file = s.file.string();
  const toml::table* t = sub_table(root, "smtp", file, errors);
  table_reader r(t, "smtp", file, errors);
  auto& m = s.smtp;
  m.listen = r.strings("listen").value_or(m.listen);
  m.tls_listen = r.strings("tls_listen").value_or(m.tls_listen);
  m.max_recipients = r.count("max_recipients", m.max_recipients, 1, 100000);
  m.max_connections = r.count("max_connections", m.max_connections, 1, 1000000);
  m.max_connections_per_client = r.count("max_connections_per_client", m.max_connections_per_client, 1, 1000000);
  m.max_errors = r.count("max_errors", m.max_errors, 1, 1000);
  m.auth_max_failures = r.count("auth_max_failures", m.auth_max_failures, 1, 1000);
  auto positive = [&](std::string_view key, std::chrono::milliseconds fallback) {
    auto value = r.duration(key);
    if (!value) return fallback;
    if (value->count() <= 0) {
      r.error((*t)[key].node(), key, "must be longer than 0s");
      return fallback;
    }
    return *value;
  };
  m.command_timeout = positive("command_timeout", m.command_timeout);
  m.data_timeout = positive("data_timeout", m.data_timeout);
  m.auth_failure_window = positive("auth_failure_window", m.auth_failure_window);
  m.auth_failure_delay = r.duration("auth_failure_delay").value_or(m.auth_failure_delay);
  m.trusted_tenant = r.string("trusted_tenant").value_or("");
  m.auth_without_tls = r.get<bool>("auth_without_tls", "true or false").value_or(false);
  m.bare_line_endings = r.string("bare_line_endings").value_or(m.bare_line_endings);
  if (m.bare_line_endings != "normalise" && m.bare_line_endings != "reject")
    r.error((*t)["bare_line_endings"].node(), "bare_line_endings", "expected \"normalise\" or \"reject\"");
  m.trusted_networks = r.strings("trusted_networks").value_or(m.trusted_networks);
  for (const auto& n : m.trusted_networks) {
    if (!valid_cidr(n)) r.error((*t)["trusted_networks"].node(), "trusted_networks", "not an address or CIDR block: " + n);
  }
  if (!m.trusted_networks.empty() && m.trusted_tenant.empty())
    r.error((*t)["trusted_networks"].node(), "trusted_tenant", "trusted_networks needs a trusted_tenant to send as");
  r.report_unknown_keys();
}

void read_http(const toml::table& root, settings& s, std::vector<config_error>& errors) {
  const std::string file = s.file.string();
  const toml::table* t = sub_table(root, "http", file, errors);
  table_reader r(t, "http", file, errors);
  auto& h = s.http;
  h.listen = r.strings("listen").value_or(h.listen);
  h.tls_listen = r.strings("tls_listen").value_or(h.tls_listen);
  h.max_body_size = r.size("max_body_size").value_or(h.max_body_size);
  h.max_connections = r.count("max_connections", h.max_connections, 1, 1000000);
  h.request_timeout = r.duration("request_timeout").value_or(h.request_timeout);
  h.idle_timeout = r.duration("idle_timeout").value_or(h.idle_timeout);
  for (auto [key, target] : {std::pair{"rate_limit", &h.rate_limit}, std::pair{"rate_burst", &h.rate_burst}}) {
    if (auto v = r.get<double>(key, "a number")) {
      if (*v < 0) r.error((*t)[key].node(), key, "must not be negative");
      else *target = *v;
    }
  }
  h.webhooks_to_private_networks =
      r.get<bool>("webhooks_to_private_networks", "true or false").value_or(h.webhooks_to_private_networks);
  if (auto url = r.string("public_url")) {
    if (!url->starts_with("http://") && !url->starts_with("https://"))
      r.error((*t)["public_url"].node(), "public_url", "expected an http:// or https:// URL");
    else
      h.public_url = url->ends_with("/") ? url->substr(0, url->size() - 1) : *url;
  }
  if (!h.tls_listen.empty() && s.tls.certificate.empty())
    r.error((*t)["tls_listen"].node(), "tls_listen", "needs [tls] certificate and private_key");
  r.report_unknown_keys();
}

void read_tls(const toml::table& root, settings& s, std::vector<config_error>& errors) {
  const std::string file = s.file.string();
  const toml::table* t = sub_table(root, "tls", file, errors);
  table_reader r(t, "tls", file, errors);
  if (auto c = r.string("certificate")) s.tls.certificate = absolute_from(s.server.data_dir, *c);
  if (auto k = r.string("private_key")) s.tls.private_key = absolute_from(s.server.data_dir, *k);
  if (s.tls.certificate.empty() != s.tls.private_key.empty())
    r.error(t ? t->get("certificate") : nullptr, "certificate", "certificate and private_key go together");
  r.report_unknown_keys();
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

void read_api_keys(const toml::table& t, table_reader& r, tenant_settings& tenant, const std::string& file,
                   std::vector<config_error>& errors) {
  r.allow("api_keys");
  const toml::node* keys = t.get("api_keys");
  if (!keys) return;
  const toml::array* list = keys->as_array();
  if (!list) r.error(keys, "api_keys", "expected a list of { name = \"…\", sha256 = \"…\" }");
  for (std::size_t i = 0; list && i < list->size(); ++i) {
    const toml::table* entry = (*list)[i].as_table();
    table_reader k(entry, "tenants." + tenant.name + ".api_keys[" + std::to_string(i) + "]", file, errors);
    api_key key{k.string("name").value_or("key" + std::to_string(i + 1)), k.string("sha256").value_or("")};
    k.report_unknown_keys();
    if (!entry || !is_sha256_hex(key.sha256_hex)) {
      r.error(entry && entry->get("sha256") ? entry->get("sha256") : &(*list)[i], "api_keys",
              "each entry needs sha256 = the key's SHA-256 in lower-case hex (from `postern api-key`), never the key");
      continue;
    }
    tenant.api_keys.push_back(std::move(key));
  }
}

void read_tenant(const std::string& name, const toml::table& t, settings& s, std::vector<config_error>& errors) {
  const std::string file = s.file.string();
  table_reader r(&t, "tenants." + name, file, errors);
  tenant_settings tenant;
  tenant.name = name;
  tenant.sending_domains = r.strings("sending_domains").value_or(std::vector<std::string>{});
  tenant.notify_address = r.string("notify_address").value_or("");
  tenant.company_name = r.string("company_name").value_or(name);
  tenant.company_url = r.string("company_url").value_or("");
  r.allow("smtp_users");
  if (const toml::node* users = t.get("smtp_users")) {
    const toml::array* list = users->as_array();
    if (!list) r.error(users, "smtp_users", "expected a list of { user = \"…\", password_hash = \"…\" }");
    for (std::size_t i = 0; list && i < list->size(); ++i) {
      const toml::table* entry = (*list)[i].as_table();
      table_reader u(entry, "tenants." + name + ".smtp_users[" + std::to_string(i) + "]", file, errors);
      smtp_user user{u.string("user").value_or(""), u.string("password_hash").value_or("")};
      u.report_unknown_keys();
      if (!entry || user.user.empty()) {
        r.error(&(*list)[i], "smtp_users", "each entry needs a user");
        continue;
      }
      // Only hashes: a clear-text password in a config file is refused outright.
      if (!user.password_hash.starts_with("$argon2id$") && !user.password_hash.starts_with("$argon2i$")) {
        u.error(entry->get("password_hash") ? entry->get("password_hash") : entry, "password_hash",
                "expected an Argon2 hash from `postern hash-password`, never a clear-text password");
        continue;
      }
      tenant.smtp_users.push_back(std::move(user));
    }
  }
  read_api_keys(t, r, tenant, file, errors);
  if (auto v = r.get<double>("rate_limit", "a number")) {
    if (*v < 0) r.error(t.get("rate_limit"), "rate_limit", "must not be negative");
    else tenant.rate_limit = *v;
  }
  r.report_unknown_keys();
  s.tenants.push_back(std::move(tenant));
}

void read_tenants(const toml::table& root, settings& s, std::vector<config_error>& errors) {
  const std::string file = s.file.string();
  const toml::table* t = sub_table(root, "tenants", file, errors);
  for (const auto& [name, node] : t ? *t : toml::table{}) {
    if (const toml::table* tenant = node.as_table()) {
      read_tenant(std::string(name.str()), *tenant, s, errors);
    } else {
      errors.push_back({file, node.source().begin.line, node.source().begin.column, "tenants." + std::string(name.str()),
                        "expected a table"});
    }
  }
  std::map<std::string, std::string> owner;  // SMTP user -> tenant
  for (const auto& tenant : s.tenants) {
    for (const auto& u : tenant.smtp_users) {
      auto [it, inserted] = owner.emplace(u.user, tenant.name);
      if (inserted) continue;
      errors.push_back({file, 0, 0, "tenants." + tenant.name,
                        it->second == tenant.name ? "SMTP user " + u.user + " is listed twice"
                                                  : "SMTP user " + u.user + " belongs to tenants " + it->second +
                                                        " and " + tenant.name});
    }
  }
  std::map<std::string, std::string> key_owner;  // API key hash -> tenant
  for (const auto& tenant : s.tenants) {
    for (const auto& k : tenant.api_keys) {
      auto [it, inserted] = key_owner.emplace(k.sha256_hex, tenant.name);
      if (!inserted)
        errors.push_back({file, 0, 0, "tenants." + tenant.name,
                          "API key " + k.name + " is also a key of tenant " + it->second});
    }
  }
  // A misspelt tenant in a route would quietly let its mail take the default route.
  for (std::size_t i = 0; i < s.delivery.routes.size(); ++i) {
    for (const auto& t : s.delivery.routes[i].tenants) {
      const bool exists = std::any_of(s.tenants.begin(), s.tenants.end(), [&](const auto& x) { return x.name == t; });
      if (!exists) errors.push_back({file, 0, 0, "delivery.routes[" + std::to_string(i) + "].tenant", "no tenant named " + t});
    }
  }
  if (!s.smtp.trusted_tenant.empty()) {
    const bool known = std::any_of(s.tenants.begin(), s.tenants.end(), [&](const auto& x) { return x.name == s.smtp.trusted_tenant; });
    if (!known) errors.push_back({file, 0, 0, "smtp.trusted_tenant", "no tenant named " + s.smtp.trusted_tenant});
  }
}

void read_plugins(const toml::table& root, settings& s, std::vector<config_error>& errors) {
  const std::string file = s.file.string();
  if (const toml::table* t = sub_table(root, "transports", file, errors)) {
    for (const auto& [name, node] : *t) {
      if (!node.is_table())
        errors.push_back({file, node.source().begin.line, node.source().begin.column,
                          "transports." + std::string(name.str()), "expected a table"});
    }
    s.transports = *t;
  }
  if (const toml::table* t = sub_table(root, "policies", file, errors)) {
    table_reader r(t, "policies", file, errors);
    s.policy_order = r.strings("order").value_or(std::vector<std::string>{});
    for (const auto& [name, node] : *t) {
      if (name.str() == "order") continue;
      r.allow(name.str());
      if (!node.is_table()) r.error(&node, name.str(), "expected a table");
    }
    s.policies = *t;
    s.policies.erase("order");
  }
}

}  // namespace

load_result parse(std::string_view text, const std::filesystem::path& file) {
  load_result result;
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    result.errors.push_back({file.string(), e.source().begin.line, e.source().begin.column, "",
                             std::string(e.description())});
    return result;
  }
  settings s;
  s.file = std::filesystem::absolute(file).lexically_normal();
  read_server(root, s, result.errors);
  read_submission(root, s, result.errors);
  read_spool(root, s, result.errors);
  read_delivery(root, s, result.errors);
  read_smtp(root, s, result.errors);
  read_tls(root, s, result.errors);
  read_http(root, s, result.errors);
  read_tenants(root, s, result.errors);
  read_plugins(root, s, result.errors);
  static const std::set<std::string> sections{"server", "submission", "spool", "delivery", "smtp", "tls",
                                              "http", "tenants", "transports", "policies"};
  for (const auto& [key, node] : root) {
    if (!sections.count(std::string(key.str())))
      result.errors.push_back({file.string(), node.source().begin.line, node.source().begin.column,
                               std::string(key.str()), "unknown section"});
  }
  // Name the file as the operator gave it, in every message.
  for (auto& e : result.errors) e.file = file.string();
  if (result.errors.empty()) result.value = std::move(s);
  return result;
}

load_result load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    load_result result;
    result.errors.push_back({file.string(), 0, 0, "", "cannot read the file: " + std::string(std::strerror(errno))});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), file);
}

std::filesystem::path default_path() {
  if (const char* env = std::getenv("POSTERN_CONFIG"); env && *env) return env;
  // An installation moved to another prefix keeps working: <prefix>/etc/postern/postern.toml
  // next to <prefix>/bin/postern wins over the path compiled in.
  if (const auto prefix = install_prefix(); !prefix.empty()) {
    std::error_code ec;
    const auto beside = prefix / "etc/postern/postern.toml";
    if (std::filesystem::exists(beside, ec)) return beside;
  }
  return POSTERN_DEFAULT_CONFIG;
}

std::filesystem::path given_or_default(const std::string& given) {
  return given.empty() ? default_path() : std::filesystem::path(given);
}

}  // namespace postern::config
