#pragma once

#include "campaign/campaign_store.hpp"
#include "contacts/contact_store.hpp"
#include "policies/chain.hpp"
#include "spool/spool.hpp"
#include "submission/service.hpp"

#include <postern/policy.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace postern::campaign {

/// What a tenant asks to send: one message to every contact an audience selects.
struct definition {
  std::string tenant;
  std::string name;
  contacts::audience_rule rule;
  std::string list;           ///< Unsubscribe scope: the list the campaign goes to, or empty.
  std::string mail_from;      ///< Envelope sender.
  std::string raw;            ///< The message without a To field (CRLF); each recipient gets its own.
  std::string content_key;    ///< Subject and bodies, for the fingerprint.
  std::string audience_key;   ///< The rule in a canonical text, for the fingerprint.
  std::vector<std::string> tags;
  bool resend = false;        ///< Send even though an earlier campaign sent the same.
  std::string json;           ///< The request as given, kept with the campaign.
};

/// One contact a report shows: masked as the contact chose.
struct report_entry {
  std::string email;
  std::string first_name;
  std::string last_name;
};

/// A campaign's refusal as a whole, by a policy at the campaign stage or at its start.
struct refusal {
  std::string policy;
  postern::smtp_reply reply;
};

/// The dry run's answer, and the real send's selection: the same numbers from the same path.
struct report {
  std::uint64_t selected = 0;
  std::uint64_t remaining = 0;
  std::vector<drop_count> drops;  ///< By policy and reason.
  std::int64_t cost = 0;
  std::vector<report_entry> sample;
  std::vector<report_entry> recipients;  ///< The remaining ones when asked for, 10,000 at most.
  std::optional<refusal> refused;
};

/// Where a campaign stands now.
struct progress {
  campaign_record record;
  recipient_counts own;       ///< In the campaign's queue: pending, queued, dropped, cancelled.
  spool::spool_stats spooled; ///< Its queued recipients in the spool.
  std::vector<drop_count> drops;
};

/// Campaigns: selects an audience, walks each contact through the submission service's policy
/// chain exactly as a real message would go (a dry run stops before the spool), records a real
/// campaign with its recipients in one transaction with its policies' start hooks, and feeds
/// the recipients to the spool on a thread of its own, which also notices when a campaign has
/// ended and tells the policies.
///
/// Thread-safe. `start` and `dry_run` block for as long as the selection takes.
class campaign_service {
 public:
  /// `status_max_age`: how old the counts of a large campaign that status() answers may be.
  campaign_service(submission::service& submission, spool::spool& spool, contacts::contact_store& contacts,
                   campaign_store& store, const policies::chain& policies,
                   std::chrono::milliseconds status_max_age = std::chrono::seconds(1));
  ~campaign_service();

  /// Called (on the feeder thread) after the policies heard of a campaign's end, at least once
  /// per campaign; set before run(). serve queues the `campaign_completed` webhook with it.
  void on_end(std::function<void(const postern::campaign_summary&)> notify) { on_end_ = std::move(notify); }

  /// Starts the feeding thread. Campaigns left sending by an earlier run go on; one left
  /// starting (a crash while its recipients were recorded) goes back to draft.
  void run();
  void stop();

  /// The report, with `all_recipients` the remaining recipients too (the first 10,000).
  /// Records nothing.
  report dry_run(const definition& def, bool all_recipients);
  /// Records the campaign (as a draft: nothing is sent until `send`) and reports.
  std::pair<campaign_record, report> create(const definition& def, bool draft);
  /// Starts a draft with the message it was made with; nothing if it is not a draft.
  std::optional<report> send_draft(const campaign_record& draft);

  /// The record is always read afresh; the counts of a campaign of `large_campaign` recipients
  /// or more may be up to the constructor's `status_max_age` old, or ten times as long as
  /// counting them took if that is longer (see status_cache_).
  std::optional<progress> status(std::string_view tenant, std::string_view id);
  /// pause, resume or cancel. Answers the new state, or an error text.
  std::variant<campaign_state, std::string> change(std::string_view tenant, std::string_view id, std::string_view action);

  /// How long the feeder waits after a policy defers a recipient (pacing) or the spool refuses.
  static constexpr std::chrono::milliseconds retry_pause{20};
  static constexpr std::uint64_t large_campaign = 10'000;

 private:
  report select(const definition& def, const postern::campaign_info& info, bool all_recipients,
                const std::function<void(const recipient_row&)>& each);
  std::optional<refusal> check_campaign(const definition& def, const postern::campaign_info& info);
  /// Nothing when the record was a draft that another request started or cancelled first.
  std::optional<report> start(const definition& def, campaign_record record);
  submission::request request_for(const definition& def, const postern::campaign_info& info,
                                  const contacts::selected_contact& c, bool dry_run) const;
  /// One round of the feeder: up to feed_batch pending recipients of a campaign.
  struct feed_round {
    struct to_spool_entry {
      std::int64_t seq;
      std::string email;
      submission::request request;
      submission::checked checked;
    };
    std::vector<to_spool_entry> to_spool;  ///< Passed the chain: handed to the spool.
    bool paced = false;                    ///< A policy asked for a moment: the rest of the round waits.
    std::mutex mutex;                      // guards what follows: the spool answers on its thread
    std::condition_variable spooled;
    std::size_t in_flight = 0;
    std::vector<recipient_row> settled;    ///< Queued or dropped: recorded when the round ends.
    std::vector<std::size_t> refused;      ///< Of to_spool: the spool was full or failing for now.
  };
  void feeder_loop();
  /// Feeds a few rounds of a sending campaign; true when a recipient was settled.
  bool feed_some(const campaign_record& c);
  /// Walks the round's recipients through the chain, in one campaign-store transaction.
  std::unique_ptr<feed_round> check_round(const campaign_record& c, const std::vector<recipient_row>& rows);
  /// Hands what passed to the spool; the answers arrive on the spool's thread.
  void start_spooling(feed_round& round);
  /// Waits until the spool has answered for every message of the round.
  void wait_spooled(feed_round& round);
  /// True when the feeder should end its turn: a pause, resume or cancel waits, or stop().
  bool yielding();
  void finish_if_done(const campaign_record& c);
  postern::campaign_summary summary_of(const campaign_record& c, const postern::campaign_info& info,
                                       const spool::spool_stats& spooled);
  static postern::campaign_summary start_summary(const campaign_record& c, const postern::campaign_info& info,
                                                 const report& rep);

  submission::service& submission_;
  spool::spool& spool_;
  contacts::contact_store& contacts_;
  campaign_store& store_;
  const policies::chain& policies_;

  std::function<void(const postern::campaign_summary&)> on_end_;
  // Counting a million recipients (and joining their spooled messages) takes a second or more
  // and holds the campaign store and the spool's reader meanwhile; progress pages poll. So the
  // counts of a large campaign are kept for a second, or ten times as long as counting took,
  // and dropped by pause, resume and cancel.
  struct counted {
    std::chrono::steady_clock::time_point at;
    std::chrono::steady_clock::duration max_age;
    recipient_counts own;
    spool::spool_stats spooled;
    std::vector<drop_count> drops;
  };
  const std::chrono::milliseconds status_max_age_;
  std::mutex status_mutex_;
  std::map<std::string, counted, std::less<>> status_cache_;
  std::uint64_t status_generation_ = 0;  // under status_mutex_; moved on by every action
  std::mutex feed_mutex_;  // one feeding turn, or one pause/resume/cancel, at a time
  std::atomic<int> changes_waiting_{0};  // actions waiting for feed_mutex_
  // Per campaign: recipients that passed the chain but that the spool refused for now (full
  // disk), spooled again before anything new. Under feed_mutex_. Lost at a restart: then
  // they are checked again.
  std::map<std::string, std::vector<feed_round::to_spool_entry>, std::less<>> unspooled_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread feeder_;
};

/// The campaign info policies see for a definition (fingerprint included).
postern::campaign_info info_of(const definition& def, std::string id);

}  // namespace postern::campaign
