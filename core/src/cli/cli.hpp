#pragma once

#include "config/config.hpp"
#include "contacts/contact_store.hpp"

#include <optional>
#include <string>
#include <vector>

namespace postern::cli {

/// The `postern` command line. Returns the process exit status (sysexits.h values on errors).
int run(int argc, char** argv);

/// Loads the configuration or prints each problem to stderr ("file:line:col: key: message").
std::optional<config::settings> load_or_report(const std::filesystem::path& path);

int serve_command(const config::settings& settings);
int plugins_command(const config::settings& settings);
int routes_command(const config::settings& settings);
int contacts_import_command(const config::settings& settings, const std::string& tenant, const std::string& file);
int contacts_activity_command(const config::settings& settings, const std::string& tenant, const std::string& file);
int contacts_subscriptions_command(const config::settings& settings, const std::string& tenant,
                                   const contacts::contact_update& change);
int contacts_list_command(const config::settings& settings, const std::string& tenant, const contacts::contact_query& query);
int config_check_command(const std::filesystem::path& path);
int hash_password_command();
int api_key_command(const std::string& name);
int queue_command(const config::settings& settings, const std::string& action, const std::string& queue_id);
/// `postern sendmail ARGS…` and `sendmail ARGS…`: sendmail's own option syntax, parsed by hand.
/// `config_path` comes from `postern -c FILE sendmail`; -C in ARGS overrides it.
int sendmail_command(const std::vector<std::string>& args, const std::string& config_path = {});

}  // namespace postern::cli
