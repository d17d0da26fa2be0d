#include "cli/purge.hpp"

#include "logging/log.hpp"

#include <set>
#include <string>

namespace postern::cli {

purge_counts purge_old_mail(spool::spool& spool, campaign::campaign_store& campaigns, const config::settings& s,
                            const std::atomic<bool>& stop) {
  auto log = logging::get("postern");
  const auto now = std::chrono::system_clock::now();
  purge_counts counts;
  counts.contents_dropped = spool.purge_content(now, &stop);
  if (counts.contents_dropped)
    log->info("dropped the content of {} finished messages older than spool.keep_content", counts.contents_dropped);
  std::set<std::string, std::less<>> open;
  for (const auto& c : campaigns.unfinished()) open.insert(c.id);
  const auto keep = [&open](std::string_view id) { return open.count(id) > 0; };
  counts.messages_deleted = spool.purge_history(now - s.spool.keep_history, keep, &stop);
  if (counts.messages_deleted)
    log->info("deleted {} messages finished longer than spool.keep_history ago", counts.messages_deleted);
  return counts;
}

}  // namespace postern::cli
