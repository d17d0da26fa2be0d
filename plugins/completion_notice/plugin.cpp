#include "completion_notice.hpp"

#include <postern/plugin.hpp>

POSTERN_POLICY_PLUGIN(postern::policies::completion_notice, "completion_notice", "1.0.0",
                      "Mails the tenant one summary when a campaign has ended")
