#include "activity_window.hpp"

#include <postern/plugin.hpp>

POSTERN_POLICY_PLUGIN(postern::policies::activity_window, "activity_window", "1.0.0",
                      "Marketing mail only to contacts active in the last 365 days (configurable, liftable per route)")
