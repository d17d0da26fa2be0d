#include "cli/cli.hpp"

#include "tenants/directory.hpp"

#include <CLI/CLI.hpp>

#include <sysexits.h>

#include <iostream>

namespace postern::cli {

std::optional<config::settings> load_or_report(const std::filesystem::path& path) {
  auto loaded = config::load(path);
  for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
  return std::move(loaded.value);
}

namespace {

/// Runs `action` with the loaded configuration, or answers EX_CONFIG.
template <class Action>
int with_config(const std::string& path, Action action) {
  auto settings = load_or_report(config::given_or_default(path));
  if (!settings) return EX_CONFIG;
  return action(*settings);
}

}  // namespace

int run(int argc, char** argv) {
  const std::string program = std::filesystem::path(argc > 0 ? argv[0] : "postern").filename().string();
  // Installed as (or linked to) "sendmail", it behaves as sendmail, like Postfix's does.
  if (program == "sendmail") return sendmail_command({argv + 1, argv + argc});
  // `postern [-c FILE] sendmail ARGS`: everything after "sendmail" is sendmail's own syntax.
  {
    std::string config;
    int i = 1;
    while (i < argc) {
      const std::string_view a = argv[i];
      if ((a == "-c" || a == "--config") && i + 1 < argc) {
        config = argv[i + 1];
        i += 2;
      } else if (a.starts_with("--config=")) {
        config = std::string(a.substr(9));
        ++i;
      } else {
        break;
      }
    }
    if (i < argc && std::string_view(argv[i]) == "sendmail") return sendmail_command({argv + i + 1, argv + argc}, config);
  }

  CLI::App app{"postern: a plugin-based mail transport gateway"};
  app.set_version_flag("--version", std::string("postern ") + POSTERN_VERSION);
  app.require_subcommand(1);
  std::string config_path;
  app.add_option("-c,--config", config_path, "Configuration file (default: $POSTERN_CONFIG, else " POSTERN_DEFAULT_CONFIG ")");

  // -c may come before or after the subcommand ("postern queue list -c FILE").
  app.fallthrough();
  auto* serve = app.add_subcommand("serve", "Run the gateway until SIGTERM or SIGINT");
  auto* plugins = app.add_subcommand("plugins", "List the plugins found, and whether each transport is usable here");
  auto* routes = app.add_subcommand("routes", "Show the delivery routes, with each transport's availability, and the limits");
  auto* config_cmd = app.add_subcommand("config", "Configuration tools");
  auto* check = config_cmd->add_subcommand("check", "Check the configuration file; exit 78 if it is bad");
  config_cmd->require_subcommand(1);
  auto* queue = app.add_subcommand("queue", "Inspect and act on the mail queue");
  queue->require_subcommand(1);
  std::string queue_id;
  auto* q_list = queue->add_subcommand("list", "List messages waiting for delivery (like mailq)");
  auto* q_show = queue->add_subcommand("show", "Show a message's envelope, recipients, events and headers");
  q_show->add_option("id", queue_id, "Queue id")->required();
  auto* q_flush = queue->add_subcommand("flush", "Try deferred mail now (one message, or all)");
  q_flush->add_option("id", queue_id, "Queue id (default: every message)");
  auto* q_hold = queue->add_subcommand("hold", "Keep a message from being delivered");
  q_hold->add_option("id", queue_id, "Queue id")->required();
  auto* q_release = queue->add_subcommand("release", "Let a held message be delivered again");
  q_release->add_option("id", queue_id, "Queue id")->required();
  auto* q_delete = queue->add_subcommand("delete", "Remove a message from the queue without delivering it");
  q_delete->add_option("id", queue_id, "Queue id")->required();
  auto* q_purge = queue->add_subcommand(
      "purge", "Drop finished mail past spool.keep_content and keep_history now (serve does it every 10 minutes)");
  auto* contacts_cmd = app.add_subcommand("contacts", "A tenant's contacts: import, activity, subscriptions, list");
  contacts_cmd->require_subcommand(1);
  std::string tenant, csv_file, status;
  contacts::contact_query contact_filter;
  auto* c_import =
      contacts_cmd->add_subcommand("import", "Create or update contacts from a CSV or JSON file (see docs/rest-api.md)");
  c_import->add_option("--tenant", tenant, "The tenant the contacts belong to")->required();
  c_import->add_option("file", csv_file, "CSV whose first line names the columns, or JSON {\"contacts\": [...]}")
      ->required();
  std::string activity_file;
  auto* c_activity = contacts_cmd->add_subcommand("activity", "Record orders, cart and wishlist adds, signups from a JSON file");
  c_activity->add_option("--tenant", tenant, "The tenant the contacts belong to")->required();
  c_activity->add_option("file", activity_file, "JSON file {\"events\": [...]}, as POST /v1/activity takes")->required();
  contacts::contact_update subscription;
  bool unsubscribe = false, resubscribe = false;
  auto* c_subs = contacts_cmd->add_subcommand("subscriptions", "Change a contact's lists and global unsubscribe");
  c_subs->add_option("--tenant", tenant, "The tenant")->required();
  c_subs->add_option("email", subscription.email, "The contact's address")->required();
  c_subs->add_option("--join", subscription.join, "Lists to join (repeatable)");
  c_subs->add_option("--leave", subscription.leave, "Lists to leave (repeatable)");
  auto* unsub_flag = c_subs->add_flag("--unsubscribe", unsubscribe, "Unsubscribe from everything the tenant sends");
  c_subs->add_flag("--resubscribe", resubscribe, "Undo a global unsubscribe")->excludes(unsub_flag);
  auto* c_list = contacts_cmd->add_subcommand("list", "List contacts, newest interaction first (hidden names and addresses masked)");
  c_list->add_option("--tenant", tenant, "The tenant")->required();
  c_list->add_option("--search", contact_filter.search, "Part of the address or name");
  c_list->add_option("--status", status, "active or inactive (interaction in the last 365 days)")
      ->check(CLI::IsMember({"active", "inactive"}));
  c_list->add_option("--list", contact_filter.list, "Members of this list");
  for (auto* sub : app.get_subcommands({})) sub->fallthrough();
  for (auto* sub : {c_import, c_activity, c_subs, c_list}) sub->fallthrough();
  for (auto* sub : {check, q_list, q_show, q_flush, q_hold, q_release, q_delete}) sub->fallthrough();
  app.add_subcommand("sendmail", "Submit a message from stdin, sendmail-compatible (see docs/cli.md)");
  auto* hash = app.add_subcommand("hash-password",
                                  "Read a password on stdin and print its Argon2id hash for [tenants.NAME] smtp_users");

  auto* api_key = app.add_subcommand("api-key", "Make a new random REST API key and print it with the line for [tenants.NAME] api_keys");
  std::string key_name = "default";
  api_key->add_option("--name", key_name, "A label for the key (shown in logs, not secret)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : EX_USAGE;
  }

  if (*serve) return with_config(config_path, serve_command);
  if (*plugins) return with_config(config_path, plugins_command);
  if (*routes) return with_config(config_path, routes_command);
  if (*c_import) {
    return with_config(config_path, [&](const config::settings& s) { return contacts_import_command(s, tenant, csv_file); });
  }
  if (*c_activity) {
    return with_config(config_path,
                       [&](const config::settings& s) { return contacts_activity_command(s, tenant, activity_file); });
  }
  if (*c_subs) {
    if (unsubscribe || resubscribe) subscription.unsubscribed = unsubscribe;
    return with_config(config_path,
                       [&](const config::settings& s) { return contacts_subscriptions_command(s, tenant, subscription); });
  }
  if (*c_list) {
    if (!status.empty()) contact_filter.active = status == "active";
    return with_config(config_path, [&](const config::settings& s) { return contacts_list_command(s, tenant, contact_filter); });
  }
  if (*hash) return hash_password_command();
  if (*api_key) return api_key_command(key_name);
  if (*check) return config_check_command(config::given_or_default(config_path));
  for (auto* sub : {q_list, q_show, q_flush, q_hold, q_release, q_delete, q_purge}) {
    if (*sub) {
      return with_config(config_path, [&](const config::settings& s) { return queue_command(s, sub->get_name(), queue_id); });
    }
  }
  return EX_USAGE;
}

int hash_password_command() {
  std::string password;
  std::getline(std::cin, password);
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty()) {
    std::cerr << "postern: hash-password reads the password from the first line of standard input\n";
    return EX_USAGE;
  }
  std::cout << tenants::hash_password(password) << '\n';
  return 0;
}

int api_key_command(const std::string& name) {
  const std::string key = tenants::new_api_key();
  std::cout << "key:    " << key << "\n"
            << "config: api_keys = [ { name = \"" << name << "\", sha256 = \"" << tenants::sha256_hex(key) << "\" } ]\n"
            << "The key is shown only now; postern keeps only its SHA-256.\n";
  return 0;
}

int config_check_command(const std::filesystem::path& path) {
  auto settings = load_or_report(path);
  if (!settings) return EX_CONFIG;
  std::cout << settings->file.string() << ": configuration is valid\n";
  return 0;
}

}  // namespace postern::cli
