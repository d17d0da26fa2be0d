#include "campaign_pacing.hpp"

#include <postern/plugin.hpp>

POSTERN_POLICY_PLUGIN(postern::policies::campaign_pacing, "campaign_pacing", "1.0.0",
                      "Meters each campaign's messages out at a set rate instead of in one burst")
