#pragma once

#include <postern/policy.hpp>

#include <gmock/gmock.h>

namespace postern::testing {

class mock_policy : public postern::policy {
 public:
  MOCK_METHOD(postern::verdict, check, (const postern::submission_view& submission, postern::policy_stage stage),
              (override));
  MOCK_METHOD(void, on_outcome, (const postern::outcome_event& event), (override));
  MOCK_METHOD(postern::verdict, on_campaign_start, (const postern::campaign_summary& summary), (override));
  MOCK_METHOD(void, on_campaign_end, (const postern::campaign_summary& summary), (override));
  MOCK_METHOD((std::vector<std::pair<std::string, std::string>>), settings, (), (const, override));
};

}  // namespace postern::testing
