#pragma once
// What every policy plugin test needs: a host whose config answers what the test sets, whose
// store is the real one (plugin data in a campaigns.db of a temporary directory), and views
// of submissions and campaigns to check.

#include "campaign/campaign_store.hpp"
#include "mocks/config_values.hpp"
#include "mocks/mock_host.hpp"
#include "plugin_host/plugin_data.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <map>

namespace postern::testing {

class policy_fixture : public ::testing::Test {
 protected:
  policy_fixture() {
    using ::testing::_;
    using ::testing::Return;
    ON_CALL(host_, config()).WillByDefault(::testing::ReturnRef(config_));
    ON_CALL(host_, store()).WillByDefault(::testing::ReturnRef(data_));
    ON_CALL(host_, now()).WillByDefault([this] { return now_; });
    ON_CALL(host_, hostname()).WillByDefault(Return("gw.example"));
  }

  /// A campaign submission to one recipient with these facts.
  struct campaign_view {
    std::string tenant = "shop", campaign_id = "C1", from = "news@shop.example", raw = "Subject: x\r\n\r\nhi\r\n";
    std::vector<std::string> tags;
    std::vector<postern::recipient> rcpts;
    std::vector<postern::contact_facts> facts;
    postern::campaign_info info{"C1", "Z launch", "news", "fp1", false};
    bool dry_run = false;
    postern::mail_stream stream = postern::mail_stream::marketing;

    campaign_view(std::string address, postern::contact_facts f) {
      rcpts.push_back({0, std::move(address), "", 0});
      facts.push_back(std::move(f));
    }
    postern::submission_view view(bool with_campaign = true) const {
      return {tenant, stream,  tags,    campaign_id,
              from,   rcpts,   raw,     dry_run,
              with_campaign ? &info : nullptr, with_campaign ? &facts : nullptr};
    }
  };

  static postern::contact_facts active_buyer(std::chrono::system_clock::time_point now) {
    postern::contact_facts f;
    f.last_interaction = now - std::chrono::hours(24);
    f.buyer = true;
    return f;
  }

  temp_dir dir_;
  campaign::campaign_store store_{dir_ / "campaigns.db"};
  plugin_host::plugin_data data_{"policy", &store_};
  config_values config_{"test [policies.x]"};
  ::testing::NiceMock<mock_host> host_;
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
};

}  // namespace postern::testing
