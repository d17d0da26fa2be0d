#include "cli/cli.hpp"

#include "contacts/activity_json.hpp"
#include "contacts/contact_json.hpp"
#include "contacts/contact_store.hpp"
#include "contacts/csv.hpp"
#include "ingress/http/json_reader.hpp"

#include <sysexits.h>

#include <fstream>
#include <limits>
#include <optional>
#include <iostream>
#include <sstream>

namespace postern::cli {
namespace {

constexpr auto activity_window = std::chrono::hours(24 * 365);

std::optional<std::string> read_whole(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "postern: cannot read " << file << '\n';
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool known_tenant(const config::settings& s, const std::string& tenant) {
  for (const auto& t : s.tenants) {
    if (t.name == tenant) return true;
  }
  std::cerr << "postern: no tenant named " << tenant << " in " << s.file.string() << '\n';
  return false;
}

}  // namespace

int contacts_import_command(const config::settings& s, const std::string& tenant, const std::string& file) {
  if (!known_tenant(s, tenant)) return EX_USAGE;
  const auto text = read_whole(file);
  if (!text) return EX_NOINPUT;
  std::vector<contacts::contact_update> updates;
  std::string error;
  // JSON as POST /v1/contacts takes it ({"contacts": [...]}), else CSV as /v1/contacts/import.
  if (const auto first = text->find_first_not_of(" \t\r\n"); first != std::string::npos && (*text)[first] == '{') {
    const auto body = ingress::http::parse_json_object(*text);
    error = body.error;
    if (error.empty()) contacts::read_contact_updates(body.object, std::numeric_limits<std::size_t>::max(), updates, error);
  } else {
    auto parsed = contacts::contacts_from_csv(*text);
    error = std::move(parsed.error);
    updates = std::move(parsed.contacts);
  }
  if (!error.empty()) {
    std::cerr << file << ": " << error << '\n';
    return EX_DATAERR;
  }
  contacts::contact_store store(s.server.data_dir / "contacts.db");
  const auto n = store.upsert(tenant, updates, std::chrono::system_clock::now());
  std::cout << n.created << " contacts created, " << n.updated << " updated for tenant " << tenant << '\n';
  return 0;
}

int contacts_list_command(const config::settings& s, const std::string& tenant, const contacts::contact_query& query) {
  if (!known_tenant(s, tenant)) return EX_USAGE;
  contacts::contact_store store(s.server.data_dir / "contacts.db");
  const auto now = std::chrono::system_clock::now();
  contacts::contact_query q = query;
  q.limit = 1000;
  std::size_t shown = 0;
  for (;;) {
    const auto page = store.list(tenant, q, now - activity_window);
    for (const auto& c : page.items) {
      // The same masking as the API: what the contact chose not to show stays hidden.
      const auto email = c.allowed.show_address ? c.email : contacts::mask_address(c.email);
      const auto name = c.allowed.show_name ? c.first_name + " " + c.last_name
                                            : contacts::mask_name(c.first_name) + " " + contacts::mask_name(c.last_name);
      std::cout << email << '\t' << name << '\t' << (c.last_interaction >= now - activity_window ? "active" : "inactive")
                << '\t' << (c.unsubscribed ? "unsubscribed" : c.allowed.contact ? "contactable" : "no contact") << '\n';
      ++shown;
    }
    if (page.next.empty()) break;
    q.after = page.next;
  }
  std::cerr << shown << " contacts\n";
  return 0;
}

int contacts_activity_command(const config::settings& s, const std::string& tenant, const std::string& file) {
  if (!known_tenant(s, tenant)) return EX_USAGE;
  const auto text = read_whole(file);
  if (!text) return EX_NOINPUT;
  const auto body = ingress::http::parse_json_object(*text);
  std::vector<contacts::activity> events;
  std::string error = body.error;
  // The API takes 10,000 events a request; a file from the command line may hold them all.
  if (error.empty()) contacts::read_activity_events(body.object, std::numeric_limits<std::size_t>::max(), events, error);
  if (!error.empty()) {
    std::cerr << file << ": " << error << '\n';
    return EX_DATAERR;
  }
  contacts::contact_store store(s.server.data_dir / "contacts.db");
  const auto created = store.record(tenant, events, std::chrono::system_clock::now());
  std::cout << events.size() << " events recorded, " << created << " contacts created for tenant " << tenant << '\n';
  return 0;
}

int contacts_subscriptions_command(const config::settings& s, const std::string& tenant,
                                   const contacts::contact_update& change) {
  if (!known_tenant(s, tenant)) return EX_USAGE;
  contacts::contact_store store(s.server.data_dir / "contacts.db");
  if (!store.find(tenant, change.email)) {
    std::cerr << "postern: tenant " << tenant << " has no contact " << change.email << '\n';
    return EX_DATAERR;
  }
  store.upsert(tenant, {change}, std::chrono::system_clock::now());
  const auto c = *store.find(tenant, change.email);
  std::string lists, left;
  for (const auto& l : c.lists) lists += (lists.empty() ? "" : ",") + l;
  for (const auto& l : c.left) left += (left.empty() ? "" : ",") + l;
  std::cout << c.email << '\t' << (c.unsubscribed ? "unsubscribed" : "subscribed") << "\tlists=" << lists
            << "\tleft=" << left << '\n';
  return 0;
}

}  // namespace postern::cli
