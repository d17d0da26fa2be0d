#include "completion_notice.hpp"

#include <postern/setting_text.hpp>

#include <ctime>

namespace postern::policies {
namespace {

std::string utc(std::chrono::system_clock::time_point t) {
  if (t.time_since_epoch().count() == 0) return "-";
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return out;
}

/// Printable ASCII only, for header fields: names in UTF-8 stay in the body.
bool plain_ascii(const std::string& text) {
  for (unsigned char c : text)
    if (c < 32 || c > 126) return false;
  return true;
}

}  // namespace

completion_notice::completion_notice(postern::host& host) : host_(host) {
  from_ = host.config().get_string("from").value_or("postern@" + host.hostname());
}

std::string completion_notice::compose(const postern::campaign_summary& s, const std::string& to) const {
  const std::string outcome = s.was_cancelled ? "cancelled" : "finished";
  std::string subject = "Campaign " + outcome + ": " + std::to_string(s.delivered) + " delivered, " +
                        std::to_string(s.failed) + " failed";
  if (plain_ascii(s.name) && s.name.size() < 60) subject = "Campaign \"" + s.name + "\" " + outcome + ": " +
                                                           std::to_string(s.delivered) + " delivered, " +
                                                           std::to_string(s.failed) + " failed";
  std::string text;
  text += "From: <" + from_ + ">\r\n";
  text += "To: <" + to + ">\r\n";
  text += "Subject: " + subject + "\r\n";
  text += "MIME-Version: 1.0\r\n";
  text += "Content-Type: text/plain; charset=utf-8\r\n";
  text += "Content-Transfer-Encoding: 8bit\r\n";
  text += "X-Postern-Campaign: " + s.id + "\r\n";
  text += "\r\n";
  text += "Campaign:    " + s.name + " (" + s.id + ")\r\n";
  text += "Outcome:     " + outcome + "\r\n";
  text += "Started:     " + utc(s.started) + "\r\n";
  text += "Ended:       " + utc(s.finished) + "\r\n";
  text += "\r\n";
  text += "Selected by the audience:  " + std::to_string(s.selected) + "\r\n";
  text += "Dropped by policies:       " + std::to_string(s.dropped) + "\r\n";
  text += "Handed to delivery:        " + std::to_string(s.queued) + "\r\n";
  text += "  delivered:               " + std::to_string(s.delivered) + "\r\n";
  text += "  failed:                  " + std::to_string(s.failed) + "\r\n";
  text += "  still trying:            " + std::to_string(s.deferred) + "\r\n";
  text += "Not sent (cancelled):      " + std::to_string(s.cancelled) + "\r\n";
  text += "Credits charged:           " + std::to_string(s.cost) + "\r\n";
  return text;
}

void completion_notice::on_campaign_end(const postern::campaign_summary& s) {
  const auto to = host_.config().get_string("notify." + s.tenant);
  if (!to) {
    host_.log(postern::log_level::info, s.id + ": no notify address for tenant " + s.tenant + "; no notice sent");
    return;
  }
  postern::new_message m;
  m.tenant = s.tenant;
  m.stream = postern::mail_stream::transactional;
  m.tags = {"campaign-notice"};
  m.env.mail_from = from_;
  m.env.recipients.push_back({0, *to, "", postern::notify_default});
  m.raw = compose(s, *to);
  m.origin_key = "campaign-end:" + s.id;
  auto& host = host_;
  const auto id = s.id;
  host_.submit(std::move(m), [&host, id](postern::submit_result r) {
    if (r.accepted) host.log(postern::log_level::info, id + ": completion notice queued as " + r.queue_id);
    else host.log(postern::log_level::error, id + ": completion notice refused: " + r.reply.text);
  });
}

std::vector<std::pair<std::string, std::string>> completion_notice::settings() const {
  return {{"from", postern::setting_text(from_)}};
}

}  // namespace postern::policies
