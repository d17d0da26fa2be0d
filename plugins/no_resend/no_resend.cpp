#include "no_resend.hpp"

namespace postern::policies {
namespace {

std::string fingerprint_key(std::string_view tenant, std::string_view fingerprint) {
  return "sent:" + std::to_string(tenant.size()) + ":" + std::string(tenant) + ":" + std::string(fingerprint);
}

}  // namespace

no_resend::no_resend(postern::host& host) : host_(host) {}

postern::verdict no_resend::check(const postern::submission_view& s, postern::policy_stage stage) {
  if (stage != postern::policy_stage::campaign || !s.campaign || s.campaign->resend) return postern::verdict::accept();
  const auto earlier = host_.store().get(fingerprint_key(s.tenant, s.campaign->fingerprint));
  if (!earlier) return postern::verdict::accept();
  // Stored as "<id>\n<name>".
  const auto nl = earlier->find('\n');
  const std::string id = earlier->substr(0, nl);
  const std::string name = nl == std::string::npos ? std::string() : earlier->substr(nl + 1);
  return postern::verdict::reject(550, "5.7.1",
                                  "Campaign \"" + name + "\" (" + id +
                                      ") already sent this content to this audience; set resend to send it again");
}

postern::verdict no_resend::on_campaign_start(const postern::campaign_summary& summary) {
  if (!summary.info) return postern::verdict::accept();
  const auto key = fingerprint_key(summary.tenant, summary.info->fingerprint);
  const auto value = summary.id + "\n" + summary.name;
  if (summary.info->resend) {
    // The override is kept: which campaign sent again what an earlier one had sent.
    if (auto earlier = host_.store().get(key))
      host_.store().put("resend:" + summary.id, earlier->substr(0, earlier->find('\n')));
    host_.log(postern::log_level::info,
              summary.id + ": sent again on request (resend), fingerprint " + summary.info->fingerprint);
    host_.store().put(key, value);
    return postern::verdict::accept();
  }
  // Checked again here, in the start's transaction: of two identical campaigns started at
  // once (a double click) only the first gets through.
  if (host_.store().put_new(key, value)) return postern::verdict::accept();
  const auto earlier = host_.store().get(key).value_or("");
  return postern::verdict::reject(550, "5.7.1",
                                  "Campaign " + earlier.substr(0, earlier.find('\n')) +
                                      " already sent this content to this audience; set resend to send it again");
}

}  // namespace postern::policies
