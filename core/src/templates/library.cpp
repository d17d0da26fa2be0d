#include "templates/library.hpp"

#include <algorithm>
#include <cctype>

namespace postern::templates {
namespace {

message_template shipped(std::string name, std::string subject, std::string intro, std::string closing) {
  const std::string text = "Hello {{ customer_name }},\n\n" + intro +
                           "\n\nOrder: {{ order_id }}\nOrder date: {{ order_date }}\n\n" + closing +
                           "\n\n{{ company_name }}\n{{ company_url }}\n\n({{ today }})\n";
  const std::string html =
      "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n"
      "<p>Hello {{ customer_name }},</p>\n<p>" + intro + "</p>\n"
      "<table><tr><td>Order</td><td><b>{{ order_id }}</b></td></tr>\n"
      "<tr><td>Order date</td><td>{{ order_date }}</td></tr></table>\n"
      "<p>" + closing + "</p>\n"
      "<p><a href=\"{{ company_url }}\">{{ company_name }}</a></p>\n"
      "<p style=\"color: #777\">{{ today }}</p>\n</body></html>\n";
  return {std::move(name), std::move(subject), text, html, true};
}

}  // namespace

const std::vector<message_template>& builtin_templates() {
  static const std::vector<message_template> all{
      shipped("order_received", "We have received your order {{ order_id }}",
              "Thank you for your order. We have received it and will confirm it shortly.",
              "We will write again as soon as it is confirmed."),
      shipped("order_confirmation", "Your order {{ order_id }} is confirmed",
              "Your order is confirmed and is being prepared.",
              "We will let you know when it has been shipped."),
      shipped("order_shipped", "Your order {{ order_id }} has been shipped",
              "Good news: your order is on its way.", "Thank you for shopping with us."),
      shipped("order_cancelled", "Your order {{ order_id }} has been cancelled",
              "Your order has been cancelled. If you paid already, the payment will be refunded.",
              "If you did not ask for this, please reply to this message."),
  };
  return all;
}

std::optional<message_template> find_builtin(std::string_view name) {
  for (const auto& t : builtin_templates()) {
    if (t.name == name) return t;
  }
  return std::nullopt;
}

bool valid_template_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace postern::templates
