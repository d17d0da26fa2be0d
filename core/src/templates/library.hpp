#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::templates {

/// A named message template: subject, text and HTML bodies with {{ variable }} placeholders.
struct message_template {
  std::string name;
  std::string subject;
  std::string text;
  std::string html;
  bool builtin = false;  ///< Shipped with postern (a tenant may replace it with its own).
};

/// The templates postern ships for shops: order_received, order_confirmation, order_shipped and
/// order_cancelled. They use company_name, company_url, today, customer_name, order_id and
/// order_date.
const std::vector<message_template>& builtin_templates();
std::optional<message_template> find_builtin(std::string_view name);

/// A template name: 1 to 64 of letters, digits, '_', '-' and '.'.
bool valid_template_name(std::string_view name);

}  // namespace postern::templates
