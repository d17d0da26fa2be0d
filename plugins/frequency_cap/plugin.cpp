#include "frequency_cap.hpp"

#include <postern/plugin.hpp>

POSTERN_POLICY_PLUGIN(postern::policies::frequency_cap, "frequency_cap", "1.0.0",
                      "At most N marketing messages per recipient per window")
