#include "policies/chain.hpp"

#include "logging/log.hpp"

namespace postern::policies {
namespace {

bool every_recipient_dropped(const postern::submission_view& view, const chain_result& result) {
  for (const auto& r : view.recipients) {
    bool dropped = false;
    for (const auto& d : result.drops) dropped = dropped || d.recipient_index == r.index;
    if (!dropped) return false;
  }
  return true;
}

/// Asks one policy for a verdict. A policy must not throw; if one does, the safe answer is
/// "try again later".
template <class Ask>
postern::verdict verdict_of(const named_policy& p, const char* hook, Ask ask) {
  try {
    return ask(*p.impl);
  } catch (const std::exception& e) {
    logging::get("policy")->error("policy {} threw in {}: {}", p.name, hook, e.what());
    return postern::verdict::defer(451, "4.3.0", "Temporary policy failure");
  }
}

/// Ends `result` with a policy's refusal.
chain_result& refused(chain_result& result, const named_policy& p, const postern::verdict& v) {
  result.decision = v.decision;
  result.reply = v.reply;
  result.decided_by = p.name;
  return result;
}

}  // namespace

chain_result chain::evaluate(const postern::submission_view& view, postern::policy_stage stage) const {
  chain_result result;
  for (const auto& p : policies_) {
    auto v = verdict_of(p, "check", [&](postern::policy& impl) { return impl.check(view, stage); });
    if (v.decision != postern::verdict::action::accept) return refused(result, p, v);
    for (auto& d : v.drops) {
      result.drops.push_back(std::move(d));
      result.drop_policies.push_back(p.name);
    }
    for (auto& h : v.add_headers) result.add_headers.push_back(std::move(h));
    if (result.route.empty()) result.route = v.route;
    result.cost += v.cost;
    // Nobody left: later policies would count or charge a message that never goes out.
    if (!view.recipients.empty() && every_recipient_dropped(view, result)) return result;
  }
  return result;
}

void chain::notify(const postern::outcome_event& event) const {
  for (const auto& p : policies_) {
    try {
      p.impl->on_outcome(event);
    } catch (const std::exception& e) {
      logging::get("policy")->error("policy {} threw in on_outcome: {}", p.name, e.what());
    }
  }
}

chain_result chain::campaign_start(const postern::campaign_summary& summary) const {
  chain_result result;
  for (const auto& p : policies_) {
    const auto v =
        verdict_of(p, "on_campaign_start", [&](postern::policy& impl) { return impl.on_campaign_start(summary); });
    if (v.decision != postern::verdict::action::accept) return refused(result, p, v);
  }
  return result;
}

void chain::campaign_end(const postern::campaign_summary& summary) const {
  for (const auto& p : policies_) {
    try {
      p.impl->on_campaign_end(summary);
    } catch (const std::exception& e) {
      logging::get("policy")->error("policy {} threw in on_campaign_end: {}", p.name, e.what());
    }
  }
}

}  // namespace postern::policies
