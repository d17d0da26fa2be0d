#include "contacts/audience_json.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>

namespace postern::contacts {

namespace json = boost::json;

bool read_audience(ingress::http::json_reader& r, audience_rule& rule) {
  rule.bought_all = r.strings("bought_all");
  rule.bought_any = r.strings("bought_any");
  rule.bought_none = r.strings("bought_none");
  rule.any_purchase = r.boolean("any_purchase", false);
  rule.prospects = r.boolean("prospects", false);
  rule.lists = r.strings("lists");
  if (const auto* days = r.value("active_within_days"); days && !days->is_null()) {
    if (!days->is_int64() || days->get_int64() < 1 || days->get_int64() > 36500)
      r.fail("active_within_days", "expected a whole number of days, 1 to 36500");
    else
      rule.active_within = std::chrono::hours(24 * days->get_int64());
  }
  r.refuse_unknown_fields();
  return r.ok();
}

namespace {
json::array sorted(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  json::array out;
  for (auto& s : items) out.emplace_back(s);
  return out;
}
}  // namespace

json::object audience_to_json(const audience_rule& rule) {
  json::object out;
  out["bought_all"] = sorted(rule.bought_all);
  out["bought_any"] = sorted(rule.bought_any);
  out["bought_none"] = sorted(rule.bought_none);
  out["any_purchase"] = rule.any_purchase;
  out["prospects"] = rule.prospects;
  out["lists"] = sorted(rule.lists);
  if (rule.active_within) out["active_within_days"] = rule.active_within->count() / 24;
  else out["active_within_days"] = nullptr;
  return out;
}

std::optional<audience_rule> audience_from_text(std::string_view text) {
  const auto parsed = ingress::http::parse_json_object(text);
  if (!parsed.error.empty()) return std::nullopt;
  ingress::http::json_reader r(parsed.object);
  audience_rule rule;
  if (!read_audience(r, rule)) return std::nullopt;
  return rule;
}

}  // namespace postern::contacts
