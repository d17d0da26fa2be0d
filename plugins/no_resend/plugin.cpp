#include "no_resend.hpp"

#include <postern/plugin.hpp>

POSTERN_POLICY_PLUGIN(postern::policies::no_resend, "no_resend", "1.0.0",
                      "Refuses a campaign that repeats one already sent to the same audience")
