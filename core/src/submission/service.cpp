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

std::string service::complete_headers(std::string raw, const request& req, const std::string& queue_id,
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
  return received_field(req, identity_, queue_id, now) + added + raw;
}

void service::submit(request req, postern::submit_callback done) {
  auto& log = log_;
  // Every way in (SMTP, maildrop, plugins) meets the same limit here.
  if (req.raw.size() > identity_.max_message_size)
    return done(refused(552, "5.3.4", "Message size exceeds fixed maximum message size"));
  if (!req.env.mail_from.empty() && !valid_address(req.env.mail_from))
    return done(refused(553, "5.1.7", "Bad sender address syntax: " + req.env.mail_from));
  if (req.env.recipients.empty()) return done(refused(554, "5.5.1", "No valid recipients"));
  for (std::size_t i = 0; i < req.env.recipients.size(); ++i) {
    auto& r = req.env.recipients[i];
    if (!valid_address(r.address)) return done(refused(553, "5.1.3", "Bad recipient address syntax: " + r.address));
    r.index = static_cast<std::uint32_t>(i);
  }

  const auto now = std::chrono::system_clock::now();
  const std::string queue_id = spool::make_queue_id(now);
  // SMTP content is CRLF already: take it as it is rather than copy a large message.
  std::string raw = is_crlf(req.raw) ? std::move(req.raw) : to_crlf(req.raw);
  ensure_header_section(raw);  // a text with no header section is all body

  if (!policies_.empty()) {
    const postern::submission_view view{req.tenant, req.stream, req.tags, req.campaign_id,
                                        req.env.mail_from, req.env.recipients, raw, false};
    auto verdict = policies_.evaluate(view, postern::policy_stage::content);
    if (verdict.decision != postern::verdict::action::accept) {
      log->info("{}: refused by policy {}: {} {}", queue_id, verdict.decided_by, verdict.reply.code, verdict.reply.text);
      return done({false, "", verdict.reply});
    }
    for (std::size_t i = 0; i < verdict.drops.size(); ++i) {
      const auto& d = verdict.drops[i];
      auto& rcpts = req.env.recipients;
      for (auto it = rcpts.begin(); it != rcpts.end(); ++it) {
        if (it->index != d.recipient_index) continue;
        log->info("{}: to=<{}>, status=suppressed by {} ({})", queue_id, it->address, verdict.drop_policies[i], d.reason);
        rcpts.erase(it);
        break;
      }
    }
    if (req.env.recipients.empty()) return done({true, "", {250, "2.0.0", "Ok: every recipient suppressed by policy"}});
    std::string extra;
    for (const auto& h : verdict.add_headers) extra += format_field(h.name, h.value);
    raw = extra + raw;
  }

  raw = complete_headers(std::move(raw), req, queue_id, now);

  spool::new_entry entry;
  entry.msg.queue_id = queue_id;
  entry.msg.tenant = std::move(req.tenant);
  entry.msg.stream = req.stream;
  entry.msg.tags = std::move(req.tags);
  entry.msg.campaign_id = std::move(req.campaign_id);
  entry.msg.env = std::move(req.env);
  entry.msg.raw = std::move(raw);
  entry.msg.arrival = now;
  entry.source = std::move(req.source);
  entry.origin_key = std::move(req.origin_key);
  entry.not_before = req.not_before;

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
