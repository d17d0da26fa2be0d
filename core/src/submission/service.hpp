#pragma once

#include "policies/chain.hpp"
#include "spool/spool.hpp"

#include <postern/host.hpp>

#include <spdlog/logger.h>

#include <functional>
#include <optional>
#include <string>

namespace postern::submission {

/// How a message reached the gateway, for its Received header.
struct trace_info {
  std::string protocol = "local";  ///< "local", "ESMTP", "ESMTPS", "ESMTPSA", "HTTP", ...
  std::string helo;                ///< The client's EHLO/HELO name, if any.
  std::string client_name;         ///< Reverse DNS name, if known.
  std::string client_address;      ///< IP address, if any.
  std::string local_user;          ///< Local user name for `postern sendmail`.
};

/// A message handed to the gateway by any ingress.
struct request {
  std::string tenant;
  postern::mail_stream stream = postern::mail_stream::transactional;
  std::vector<std::string> tags;
  std::string campaign_id;
  postern::envelope env;      ///< recipients' indexes are assigned here.
  std::string raw;            ///< RFC 5322 text, LF or CRLF.
  trace_info trace;
  std::string source = "local";
  std::string origin_key;     ///< See spool::new_entry::origin_key.
  std::chrono::system_clock::time_point not_before{};  ///< Scheduled delivery (spool::new_entry).
  /// Campaign submissions: the campaign, and what the contact store knows of each recipient
  /// (one entry per recipient, in order). Policies see both.
  const postern::campaign_info* campaign = nullptr;
  std::vector<postern::contact_facts> contacts;
  bool dry_run = false;  ///< A campaign report: policies decide but record nothing.
};

/// A recipient a policy removed from a request.
struct suppression {
  std::string address;
  std::string policy;
  std::string reason;
};

/// What checking a request found: a refusal, or the request ready to spool.
struct checked {
  std::string queue_id;                           ///< The id the message will have.
  std::optional<postern::submit_result> refusal;  ///< Set when it must not be spooled.
  std::string refused_by;                         ///< The policy that refused it, if one did.
  std::vector<suppression> suppressed;            ///< Recipients policies removed.
  std::int64_t cost = 0;                          ///< Sum of the policies' verdict costs.
  std::chrono::system_clock::time_point now{};
};

struct identity {
  std::string hostname;       ///< Names this gateway in Message-ID and Received.
  std::size_t max_message_size = 50ull << 20;  ///< Larger messages are refused (552 5.3.4).
  postern::metrics* metrics = nullptr;         ///< Counts accepted messages by tenant, if set.
};

/// The one path every message takes into the spool: checks the envelope, adds the header
/// fields RFC 5322 requires when missing (Date, Message-ID, From) and a Received trace field,
/// runs the policy chain at the content stage, and spools it. The callback says 250 with the
/// queue id only once the spool has made the message durable.
///
/// Thread-safe. The callback runs on the spool's writer thread, or at once on refusal.
class service {
 public:
  service(spool::spool& spool, const policies::chain& policies, identity id);

  void submit(request req, postern::submit_callback done);
  /// The first half of submit: checks the envelope and runs the policy chain, removing the
  /// recipients policies drop and adding their header fields to `req`. Stores nothing: a
  /// campaign's dry run stops here, on the very path of the real send.
  checked check(request& req);
  /// The second half: spools a request that `check` passed. A request whose recipients were
  /// all dropped is answered 250 without storing anything. The request is only read (its
  /// text is copied once, into the spooled message): a campaign keeps its recipient's request
  /// to spool it again if the spool refuses it for now.
  void spool_checked(const request& req, const checked& result, postern::submit_callback done);
  /// Same for a request nobody keeps (a submission): its fields are moved, not copied.
  void spool_checked(request&& req, const checked& result, postern::submit_callback done);
  /// Same, waiting for the answer (for the CLI and tests).
  postern::submit_result submit_wait(request req);

  std::size_t max_message_size() const noexcept { return identity_.max_message_size; }
  const std::string& hostname() const noexcept { return identity_.hostname; }

  /// Adds Date, Message-ID and From when missing and prepends the Received field. Exposed
  /// for tests; `raw` must already use CRLF.
  std::string complete_headers(std::string_view raw, const request& req, const std::string& queue_id,
                               std::chrono::system_clock::time_point now) const;

 private:
  void apply_policies(request& req, checked& out) const;
  /// Hands the entry to the spool and answers from its commit (or 250 at once when no
  /// recipient is left).
  void spool_entry(spool::new_entry entry, postern::submit_callback done);

  spool::spool& spool_;
  const policies::chain& policies_;
  identity identity_;
  std::shared_ptr<spdlog::logger> log_;
};

/// Checks an envelope address: local@domain, printable, no brackets or spaces, at most 254
/// octets (RFC 5321 §4.5.3.1). UTF-8 is allowed (RFC 6531). The empty string is not an address.
bool valid_address(std::string_view address);

}  // namespace postern::submission
