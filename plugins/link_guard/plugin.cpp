#include "link_guard.hpp"

#include <postern/plugin.hpp>

POSTERN_POLICY_PLUGIN(postern::policies::link_guard, "link_guard", "1.0.0",
                      "Marketing mail may link only to the tenant's allowed domains")
