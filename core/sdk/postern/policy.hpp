#pragma once
/// @file policy.hpp
/// The policy interface: rules every submission passes before it is spooled.

#include <postern/types.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace postern {

/// The point of a submission at which a policy is consulted.
enum class policy_stage {
  mail_from,  ///< Sender known (SMTP MAIL); recipients and content not yet.
  recipient,  ///< One more recipient known (SMTP RCPT); `submission_view::recipients` ends with it.
  content,    ///< Whole message known (end of DATA, a REST message, a campaign recipient).
  campaign,   ///< A whole campaign, before any recipient is selected: `recipients` is empty and
              ///< `raw` is its message as rendered without a recipient. A reject refuses it whole.
};

/// What the tenant's contact store knows of one campaign recipient.
struct contact_facts {
  bool contact_allowed = true;   ///< The contact lets the tenant write to them.
  bool unsubscribed = false;     ///< Unsubscribed from everything the tenant sends.
  std::vector<std::string> left_lists;  ///< Lists the contact unsubscribed from.
  std::chrono::system_clock::time_point last_interaction{};  ///< Latest order, cart, wishlist or signup.
  bool buyer = false;            ///< Has ordered at least once.
  bool prospect = false;         ///< Has a product in the cart or wishlist that they never ordered.
};

/// The campaign a submission belongs to.
struct campaign_info {
  std::string id;           ///< Empty during a dry run (nothing is recorded).
  std::string name;
  std::string list;         ///< The list the campaign goes to (its unsubscribe scope), or empty.
  std::string fingerprint;  ///< Hex digest of the tenant, the normalized content and the audience rule.
  bool resend = false;      ///< The tenant asked to send again what an earlier campaign sent.
};

/// What a policy sees of a submission. References are valid for the duration of the call only.
struct submission_view {
  const std::string& tenant;
  mail_stream stream;
  const std::vector<std::string>& tags;
  const std::string& campaign_id;
  const std::string& mail_from;
  const std::vector<recipient>& recipients;
  const std::string& raw;   ///< Empty before the content stage.
  bool dry_run;             ///< True when a campaign report runs the chain without sending:
                            ///< decide exactly as for a send, but record nothing.
  const campaign_info* campaign = nullptr;  ///< Set for campaign submissions only.
  /// For campaign submissions: one entry per recipient, in the order of `recipients`.
  const std::vector<contact_facts>* contacts = nullptr;
};

/// A recipient a policy removes from a submission, with the reason (recorded as `suppressed`).
struct dropped_recipient {
  std::uint32_t recipient_index = 0;
  std::string reason;
};

/// A policy's decision.
struct verdict {
  enum class action {
    accept,  ///< Go on to the next policy.
    reject,  ///< Refuse the submission with `reply` (5xx), passed to the client as given.
    defer,   ///< Refuse it for now with `reply` (4xx); the client may try again.
  };
  action decision = action::accept;
  smtp_reply reply;                          ///< Used for reject and defer.
  std::vector<dropped_recipient> drops;      ///< Recipients to suppress (accept only).
  std::vector<header_field> add_headers;     ///< Headers to prepend (content stage only).
  std::string route;                         ///< A transport name to prefer, or empty.
  /// Credits this submission costs the tenant (a pricing policy sets it). A campaign's report
  /// sums it over the recipients; the policy charges the sum in on_campaign_start.
  std::int64_t cost = 0;

  static verdict accept() { return {}; }
  static verdict reject(int code, std::string enhanced, std::string text) {
    verdict v;
    v.decision = action::reject;
    v.reply = {code, std::move(enhanced), std::move(text)};
    return v;
  }
  static verdict defer(int code, std::string enhanced, std::string text) {
    verdict v;
    v.decision = action::defer;
    v.reply = {code, std::move(enhanced), std::move(text)};
    return v;
  }
};

/// What happened to one recipient of a spooled message.
struct outcome_event {
  enum class kind { delivered, deferred, failed, bounced };
  kind what = kind::delivered;
  std::string queue_id;
  std::string tenant;
  std::string campaign_id;
  std::string recipient;
  std::string transport;
  smtp_reply reply;
};

/// A campaign as a whole: what it selected and where its recipients stand.
struct campaign_summary {
  std::string id;
  std::string tenant;
  std::string name;
  const campaign_info* info = nullptr;  ///< Valid for the duration of the call.
  std::uint64_t selected = 0;   ///< Contacts the audience selected.
  std::uint64_t dropped = 0;    ///< Removed by policies.
  std::uint64_t queued = 0;     ///< Handed to the spool.
  std::uint64_t delivered = 0, deferred = 0, failed = 0;
  std::uint64_t cancelled = 0;  ///< Never sent because the campaign was cancelled.
  std::int64_t cost = 0;        ///< Sum of the recipients' verdict costs, charged at the start.
  /// At the end: what `cost` included for recipients that were then never sent (dropped when
  /// their turn came, or cancelled). A pricing policy refunds it.
  std::int64_t unsent_cost = 0;
  std::chrono::system_clock::time_point started{}, finished{};
  bool was_cancelled = false;
};

/// A policy plugin. Policies run in the configured order; the first reject or defer ends the
/// chain.
///
/// Threading: `check` may be called from several threads at once and must not block for long
/// (it runs while an SMTP client waits). `on_outcome` is called on a delivery thread;
/// `on_campaign_start` on the thread of the API request that starts the campaign;
/// `on_campaign_end` on the campaign feeder's thread.
/// Exceptions: none may escape; the host treats one that does as a 451 defer.
class policy {
 public:
  virtual ~policy() = default;
  /// Decides on a submission at one stage. When a campaign's recipient is handed over, what
  /// the policy writes to `host::store()` here is undone unless the whole chain lets that
  /// recipient through (a later policy may drop or defer it).
  virtual verdict check(const submission_view& submission, policy_stage stage) = 0;
  /// Learns the outcome of a delivery. Default: ignore.
  virtual void on_outcome(const outcome_event&) {}
  /// A campaign is about to be sent (never called for a dry run): its recipients are chosen and
  /// recorded, and `summary.cost` is known. Runs inside the one transaction that makes the
  /// campaign one that is sent, and that also holds every `host::store()` write any policy
  /// makes here: a reject refuses the campaign whole and rolls all of them back. Default: accept.
  virtual verdict on_campaign_start(const campaign_summary&) { return verdict::accept(); }
  /// Every recipient of a campaign reached a final state, or it was cancelled. Called at least
  /// once per campaign (again after a crash that fell before the gateway recorded the call);
  /// use `new_message::origin_key` or the store to make effects happen exactly once. An
  /// exception is logged and the call is not repeated.
  virtual void on_campaign_end(const campaign_summary&) {}
  /// The settings in effect, defaults included, in the order a reader expects them: pairs of
  /// a key and its value written as in TOML (`3`, `"7d"`, `["a", "b"]`; see setting_text.hpp).
  /// `postern plugins` prints them, marking those the config does not set. Settings kept per
  /// tenant (tables such as `grants`) may be left out: the config's own tables are printed too.
  /// Called after construction, on the thread that made the policy. Default: none listed.
  virtual std::vector<std::pair<std::string, std::string>> settings() const { return {}; }
};

}  // namespace postern
