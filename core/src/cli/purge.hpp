#pragma once
// The spool's clean-up of finished mail: what `serve` runs every 10 minutes, and what
// `postern queue purge` runs at once.

#include "campaign/campaign_store.hpp"
#include "config/config.hpp"
#include "spool/spool.hpp"

#include <atomic>
#include <cstddef>

namespace postern::cli {

struct purge_counts {
  std::size_t contents_dropped = 0;  ///< Messages whose content went (spool.keep_content).
  std::size_t messages_deleted = 0;  ///< Messages deleted with their history (spool.keep_history).
};

/// Drops the content of messages finished longer than spool.keep_content ago, then the
/// messages finished longer than spool.keep_history ago, but for those of campaigns whose end
/// is not reported yet (they still count their messages' states). Stops between two rounds
/// once `stop` is set. Throws what the spool or campaigns.db throw; logs what it did.
/// Thread-safety: any thread; it may run beside a `serve` of the same spool (SQLite locks).
purge_counts purge_old_mail(spool::spool& spool, campaign::campaign_store& campaigns, const config::settings& s,
                            const std::atomic<bool>& stop);

}  // namespace postern::cli
