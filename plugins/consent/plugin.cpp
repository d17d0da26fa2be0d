#include "consent.hpp"

#include <postern/plugin.hpp>

POSTERN_POLICY_PLUGIN(postern::policies::consent, "consent", "1.0.0",
                      "Drops contacts who refused mail or unsubscribed; adds one-click List-Unsubscribe (RFC 8058)")
