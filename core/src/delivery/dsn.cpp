#include "delivery/dsn.hpp"

#include "spool/queue_id.hpp"
#include "submission/header_block.hpp"

namespace postern::delivery {

bool wants_report(const postern::recipient& rcpt, const std::string& action) {
  if (rcpt.notify & postern::notify_never) return false;
  if (action == "failed") return rcpt.notify == postern::notify_default || (rcpt.notify & postern::notify_failure);
  if (action == "delivered") return rcpt.notify & postern::notify_success;
  if (action == "delayed") return rcpt.notify & postern::notify_delay;
  return false;
}

namespace {

std::string status_of(const postern::smtp_reply& reply) {
  if (!reply.enhanced.empty()) return reply.enhanced;
  if (reply.success()) return "2.0.0";
  return reply.transient() ? "4.0.0" : "5.0.0";
}

std::string human_part(const std::vector<dsn_recipient>& recipients, const std::string& host) {
  bool any_failed = false;
  for (const auto& r : recipients) any_failed |= r.action == "failed";
  std::string text = "This is the mail system at host " + host + ".\r\n\r\n";
  text += any_failed ? "Your message could not be delivered to one or more recipients.\r\n"
                       "It is attached below. The reasons the remote systems gave follow.\r\n\r\n"
                     : "This is a delivery status report for your message, as you requested.\r\n\r\n";
  for (const auto& r : recipients) {
    text += "<" + r.rcpt.address + ">: " + r.action;
    if (r.reply.code) text += ": " + std::to_string(r.reply.code) + " " + r.reply.enhanced + " " + r.reply.text;
    text += "\r\n";
  }
  return text;
}

std::string status_part(const postern::message& original, const std::vector<dsn_recipient>& recipients,
                        const std::string& host, std::chrono::system_clock::time_point now) {
  std::string s;
  if (!original.env.envid.empty()) s += "Original-Envelope-Id: " + original.env.envid + "\r\n";
  s += "Reporting-MTA: dns; " + host + "\r\n";
  s += "X-Postern-Queue-ID: " + original.queue_id + "\r\n";
  s += "Arrival-Date: " + submission::rfc5322_date(original.arrival) + "\r\n";
  for (const auto& r : recipients) {
    s += "\r\n";
    if (!r.rcpt.orcpt.empty()) s += "Original-Recipient: " + r.rcpt.orcpt + "\r\n";
    s += "Final-Recipient: rfc822; " + r.rcpt.address + "\r\n";
    s += "Action: " + r.action + "\r\n";
    s += "Status: " + status_of(r.reply) + "\r\n";
    if (!r.remote_mta.empty()) s += "Remote-MTA: x-postern; " + r.remote_mta + "\r\n";
    if (r.reply.code)
      s += "Diagnostic-Code: smtp; " + std::to_string(r.reply.code) + " " + r.reply.enhanced + " " + r.reply.text + "\r\n";
    s += "Last-Attempt-Date: " + submission::rfc5322_date(now) + "\r\n";
  }
  return s;
}

}  // namespace

std::string build_dsn(const postern::message& original, const std::vector<dsn_recipient>& recipients,
                      const std::string& host, std::chrono::system_clock::time_point now, const std::string& queue_id) {
  const std::string boundary = queue_id + "/" + host;
  bool any_failed = false;
  for (const auto& r : recipients) any_failed |= r.action == "failed";
  const bool full = original.env.ret == postern::dsn_ret::full;

  std::string m;
  m += submission::format_field("From", "Mail Delivery System <MAILER-DAEMON@" + host + ">");
  m += submission::format_field("To", "<" + original.env.mail_from + ">");
  m += submission::format_field(
      "Subject", any_failed ? "Undelivered Mail Returned to Sender" : "Delivery Status Notification");
  m += submission::format_field("Date", submission::rfc5322_date(now));
  m += submission::format_field("Message-ID", "<" + queue_id + "@" + host + ">");
  m += submission::format_field("Auto-Submitted", "auto-replied");
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + boundary + "\"\r\n";
  m += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

  m += "--" + boundary + "\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
  m += human_part(recipients, host) + "\r\n";
  m += "--" + boundary + "\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n";
  m += status_part(original, recipients, host, now) + "\r\n";

  const std::size_t header_length = submission::header_section_length(original.raw);
  if (full) {
    m += "--" + boundary + "\r\nContent-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n\r\n";
    m += original.raw;
    if (!original.raw.ends_with("\r\n")) m += "\r\n";
  } else {
    m += "--" + boundary + "\r\nContent-Description: Undelivered Message Headers\r\n"
         "Content-Type: text/rfc822-headers\r\n\r\n";
    m += original.raw.substr(0, header_length);
  }
  m += "\r\n--" + boundary + "--\r\n";
  return m;
}

}  // namespace postern::delivery
