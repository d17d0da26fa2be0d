#include "credits.hpp"

#include <limits>
#include <stdexcept>

namespace postern::policies {

credits::credits(postern::host& host) : host_(host) {
  const auto& c = host.config();
  prospect_cost_ = c.get_int("prospect_cost").value_or(3);
  buyer_cost_ = c.get_int("buyer_cost").value_or(0);
  other_cost_ = c.get_int("other_cost").value_or(0);
  if (prospect_cost_ < 0 || buyer_cost_ < 0 || other_cost_ < 0)
    throw std::runtime_error(c.origin() + ": costs must not be negative");
}

postern::verdict credits::check(const postern::submission_view& s, postern::policy_stage stage) {
  if (stage != postern::policy_stage::content || !s.contacts) return postern::verdict::accept();
  auto v = postern::verdict::accept();
  for (const auto& f : *s.contacts) v.cost += f.buyer ? buyer_cost_ : f.prospect ? prospect_cost_ : other_cost_;
  return v;
}

postern::verdict credits::on_campaign_start(const postern::campaign_summary& summary) {
  if (summary.cost <= 0) return postern::verdict::accept();
  const auto granted = host_.config().get_int("grants." + summary.tenant).value_or(0);
  // What is spent only grows, and never past what was granted: raising the grant in the
  // config tops the balance up.
  const auto key = "spent:" + summary.tenant;
  if (host_.store().add(key, summary.cost, granted)) return postern::verdict::accept();
  const auto spent = std::stoll(host_.store().get(key).value_or("0"));
  return postern::verdict::reject(550, "5.7.1",
                                  "Campaign costs " + std::to_string(summary.cost) + " credits; tenant " +
                                      summary.tenant + " has " + std::to_string(granted - spent) + " left");
}

void credits::on_campaign_end(const postern::campaign_summary& summary) {
  if (summary.unsent_cost <= 0) return;
  // The mark first: after a crash between the two the refund is lost rather than given twice.
  if (!host_.store().put_new("refunded:" + summary.id, std::to_string(summary.unsent_cost))) return;
  host_.store().add("spent:" + summary.tenant, -summary.unsent_cost, std::numeric_limits<std::int64_t>::max());
  host_.log(postern::log_level::info, summary.id + ": refunded " + std::to_string(summary.unsent_cost) +
                                          " credits for recipients never sent");
}

std::vector<std::pair<std::string, std::string>> credits::settings() const {
  return {{"prospect_cost", std::to_string(prospect_cost_)},
          {"buyer_cost", std::to_string(buyer_cost_)},
          {"other_cost", std::to_string(other_cost_)}};
}

}  // namespace postern::policies
