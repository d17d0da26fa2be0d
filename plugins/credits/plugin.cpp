#include "credits.hpp"

#include <postern/plugin.hpp>

POSTERN_POLICY_PLUGIN(postern::policies::credits, "credits", "1.0.0",
                      "Charges credits for campaign mail to prospects; refuses what the balance cannot pay")
