#pragma once

#include <postern/policy.hpp>

#include <memory>
#include <string>
#include <vector>

namespace postern::policies {

/// A policy with the name it was configured under.
struct named_policy {
  std::string name;
  std::shared_ptr<postern::policy> impl;
};

/// The combined decision of the chain for one stage.
struct chain_result {
  postern::verdict::action decision = postern::verdict::action::accept;
  postern::smtp_reply reply;          ///< From the policy that refused, as it gave it.
  std::string decided_by;             ///< Name of that policy.
  std::vector<postern::dropped_recipient> drops;   ///< From every policy, in order.
  std::vector<std::string> drop_policies;          ///< Which policy dropped each one.
  std::vector<postern::header_field> add_headers;  ///< From every policy, in order.
  std::string route;                  ///< The first route any policy chose.
  std::int64_t cost = 0;              ///< Sum of the accepting policies' costs.
};

/// Runs policies in their configured order. The first reject or defer ends the chain; drops,
/// headers and routes of the policies before it are combined. Once every recipient is dropped
/// the chain ends too: later policies never count or charge a message that does not go out.
/// Thread-safe if the policies are.
class chain {
 public:
  chain() = default;
  explicit chain(std::vector<named_policy> policies) : policies_(std::move(policies)) {}

  chain_result evaluate(const postern::submission_view& view, postern::policy_stage stage) const;
  /// Tells every policy an outcome. Exceptions from a policy are swallowed (and logged).
  void notify(const postern::outcome_event& event) const;
  /// Asks every policy, in order, whether a campaign may start; the first refusal ends it
  /// (an exception counts as a 451 defer). Only `decision`, `reply` and `decided_by` are set.
  chain_result campaign_start(const postern::campaign_summary& summary) const;
  /// Tells every policy a campaign ended. Exceptions are swallowed (and logged).
  void campaign_end(const postern::campaign_summary& summary) const;
  bool empty() const noexcept { return policies_.empty(); }
  /// The policies, in order (for `postern plugins`).
  const std::vector<named_policy>& policies() const noexcept { return policies_; }

 private:
  std::vector<named_policy> policies_;
};

}  // namespace postern::policies
