#include "submission/service.hpp"

#include "logging/log.hpp"
#include "spool/queue_id.hpp"
#include "submission/header_block.hpp"

#include <future>

namespace postern::submission {
namespace {

postern::submit_result refused(int code, std::string enhanced, std::string text) {
  return {false, "", {code, std::move(enhanced), std::move(text)}};
}

std::string received_field(const request& req, const identity& id, const std::string& queue_id,
                           std::chrono::system_clock::time_point now) {
  const auto& t = req.trace;
  std::string value;
  if (!t.helo.empty() || !t.client_address.empty()) {
    value += "from " + (t.helo.empty() ? std::string("unknown") : t.helo) + " (";
    value += (t.client_name.empty() ? std::string("unknown") : t.client_name) + " [" + t.client_address + "]) ";
  }
  value += "by " + id.hostname + " (postern";
  if (!t.local_user.empty()) value += ", from user " + t.local_user;
  value += ") with " + t.protocol + " id " + queue_id;
  // "for" only with a single recipient: naming several would disclose Bcc recipients.
  if (req.env.recipients.size() == 1) value += " for <" + req.env.recipients.front().address + ">";
  value += "; " + rfc5322_date(now);
  return format_field("Received", value);
}

}  // namespace

bool valid_address(std::string_view address) {
  if (address.empty() || address.size() > 254) return false;
  const std::size_t at = address.rfind('@');
  if (at == 0 || at == std::string_view::npos || at + 1 == address.size()) return false;
  for (char ch : address) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 32 || c == 127 || c == '<' || c == '>' || c == ',' || c == '(' || c == ')') return false;
  }
  return address.find("..", at) == std::string_view::npos;
}

service::service(spool::spool& spool, const policies::chain& policies, identity id)
    : spool_(spool), policies_(policies), identity_(std::move(id)), log_(logging::get("submission")) {}

std::string service::complete_headers(std::string_view raw, const request& req, const std::string& queue_id,
                                      std::chrono::system_clock::time_point now) const {
  std::string added;
  // RFC 5322 §3.6: Date and From are required; Message-ID should be there. A careful MTA adds
  // them for clients that forgot (Postfix does the same for local submissions).
  if (!has_header(raw, "Date")) added += format_field("Date", rfc5322_date(now));
  if (!has_header(raw, "Message-ID")) added += format_field("Message-ID", "<" + queue_id + "@" + identity_.hostname + ">");
  if (!has_header(raw, "From")) {
    const std::string from = req.env.mail_from.empty() ? "MAILER-DAEMON@" + identity_.hostname : req.env.mail_from;
    added += format_field("From", "<" + from + ">");
  }
  std::string out = received_field(req, identity_, queue_id, now) + added;
  out.reserve(out.size() + raw.size());
  return out.append(raw);
}

void service::submit(request req, postern::submit_callback done) {
  const auto result = check(req);
  if (result.refusal) return done(*result.refusal);
  spool_checked(std::move(req), result, std::move(done));
}

checked service::check(request& req) {
  checked out;
  // Every way in (SMTP, maildrop, plugins, campaigns) meets the same limits here.
  if (req.raw.size() > identity_.max_message_size)
    out.refusal = refused(552, "5.3.4", "Message size exceeds fixed maximum message size");
  else if (!req.env.mail_from.empty() && !valid_address(req.env.mail_from))
    out.refusal = refused(553, "5.1.7", "Bad sender address syntax: " + req.env.mail_from);
  else if (req.env.recipients.empty())
    out.refusal = refused(554, "5.5.1", "No valid recipients");
  for (std::size_t i = 0; !out.refusal && i < req.env.recipients.size(); ++i) {
    auto& r = req.env.recipients[i];
    if (!valid_address(r.address)) out.refusal = refused(553, "5.1.3", "Bad recipient address syntax: " + r.address);
    r.index = static_cast<std::uint32_t>(i);
  }
  if (out.refusal) return out;

  out.now = std::chrono::system_clock::now();
  out.queue_id = spool::make_queue_id(out.now);
  // SMTP content is CRLF already: take it as it is rather than copy a large message.
  if (!is_crlf(req.raw)) req.raw = to_crlf(req.raw);
  ensure_header_section(req.raw);  // a text with no header section is all body
  if (!policies_.empty()) apply_policies(req, out);
  return out;
}

void service::apply_policies(request& req, checked& out) const {
  const postern::submission_view view{req.tenant,    req.stream, req.tags,   req.campaign_id,
                                      req.env.mail_from, req.env.recipients, req.raw, req.dry_run,
                                      req.campaign,  req.campaign ? &req.contacts : nullptr};
  auto verdict = policies_.evaluate(view, postern::policy_stage::content);
  out.cost = verdict.cost;
  if (verdict.decision != postern::verdict::action::accept) {
    // A campaign recipient put off (pacing) is offered again in a moment: not worth a line each time.
    if (!req.dry_run && !(req.campaign && verdict.reply.transient()))
      log_->info("{}: refused by policy {}: {} {}", out.queue_id, verdict.decided_by, verdict.reply.code, verdict.reply.text);
    out.refusal = postern::submit_result{false, "", verdict.reply};
    out.refused_by = verdict.decided_by;
    return;
  }
  auto& rcpts = req.env.recipients;
  for (std::size_t i = 0; i < verdict.drops.size(); ++i) {
    const auto& d = verdict.drops[i];
    for (auto it = rcpts.begin(); it != rcpts.end(); ++it) {
      if (it->index != d.recipient_index) continue;
      if (!req.dry_run)
        log_->info("{}: to=<{}>, status=suppressed by {} ({})", out.queue_id, it->address, verdict.drop_policies[i], d.reason);
      out.suppressed.push_back({it->address, verdict.drop_policies[i], d.reason});
      if (req.campaign) req.contacts.erase(req.contacts.begin() + (it - rcpts.begin()));
      rcpts.erase(it);
      break;
    }
  }
  std::string extra;
  for (const auto& h : verdict.add_headers) extra += format_field(h.name, h.value);
  req.raw = extra + req.raw;
}

namespace {

/// The spool's entry for a checked request, with its completed text: the request's fields are
/// moved when it is a temporary (a submission), copied when the caller keeps it (a campaign).
template <class Request>
spool::new_entry entry_for(Request&& req, const checked& result, std::string raw) {
  spool::new_entry entry;
  entry.msg.queue_id = result.queue_id;
  entry.msg.tenant = std::forward<Request>(req).tenant;
  entry.msg.stream = req.stream;
  entry.msg.tags = std::forward<Request>(req).tags;
  entry.msg.campaign_id = std::forward<Request>(req).campaign_id;
  entry.msg.env = std::forward<Request>(req).env;
  entry.msg.raw = std::move(raw);
  entry.msg.arrival = result.now;
  entry.source = std::forward<Request>(req).source;
  entry.origin_key = std::forward<Request>(req).origin_key;
  entry.not_before = req.not_before;
  return entry;
}

}  // namespace

void service::spool_checked(const request& req, const checked& result, postern::submit_callback done) {
  spool_entry(entry_for(req, result, complete_headers(req.raw, req, result.queue_id, result.now)), std::move(done));
}

void service::spool_checked(request&& req, const checked& result, postern::submit_callback done) {
  std::string raw = complete_headers(req.raw, req, result.queue_id, result.now);
  spool_entry(entry_for(std::move(req), result, std::move(raw)), std::move(done));
}

void service::spool_entry(spool::new_entry entry, postern::submit_callback done) {
  auto& log = log_;
  if (entry.msg.env.recipients.empty())
    return done({true, "", {250, "2.0.0", "Ok: every recipient suppressed by policy"}});
  const auto size = entry.msg.raw.size();
  const auto from = entry.msg.env.mail_from;
  const auto rcpts = entry.msg.env.recipients.size();
  const auto tenant = entry.msg.tenant;
  auto* metrics = identity_.metrics;
  spool_.enqueue(std::move(entry), [done = std::move(done), log, size, from, rcpts, tenant, metrics](spool::enqueue_result r) {
    if (!r.ok) {
      log->error("spool refused a message: {}", r.error);
      if (r.error.find("full") != std::string::npos)
        return done(refused(452, "4.3.1", "Insufficient system storage, try again later"));
      return done(refused(451, "4.3.0", "Temporary failure storing the message, try again later"));
    }
    if (r.duplicate) {
      log->info("{}: duplicate hand-over, already queued", r.queue_id);
    } else {
      log->info("{}: from=<{}>, size={}, nrcpt={} (queued)", r.queue_id, from, size, rcpts);
      if (metrics) metrics->add("postern_messages_accepted_total", 1, {{"tenant", tenant}});
    }
    done({true, r.queue_id, {250, "2.0.0", "Ok: queued as " + r.queue_id}});
  });
}

postern::submit_result service::submit_wait(request req) {
  std::promise<postern::submit_result> promise;
  auto future = promise.get_future();
  submit(std::move(req), [&promise](postern::submit_result r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace postern::submission
