#include "frequency_cap.hpp"

#include <postern/duration.hpp>
#include <postern/setting_text.hpp>

#include <cctype>
#include <stdexcept>

namespace postern::policies {

frequency_cap::frequency_cap(postern::host& host) : host_(host) {
  const auto& c = host.config();
  max_ = c.get_int("max").value_or(3);
  if (max_ < 1) throw std::runtime_error(c.origin() + ": max must be at least 1");
  window_text_ = c.get_string("window").value_or("7d");
  const auto window = postern::parse_duration(window_text_);
  if (!window || *window < std::chrono::minutes(1))
    throw std::runtime_error(c.origin() + ": window: expected a duration of a minute or more, e.g. \"7d\"");
  window_ = std::chrono::duration_cast<std::chrono::seconds>(*window);
}

postern::verdict frequency_cap::check(const postern::submission_view& s, postern::policy_stage stage) {
  if (stage != postern::policy_stage::content || s.stream != postern::mail_stream::marketing)
    return postern::verdict::accept();
  auto v = postern::verdict::accept();
  const auto bucket = std::chrono::duration_cast<std::chrono::seconds>(host_.now().time_since_epoch()) / window_;
  for (const auto& r : s.recipients) {
    std::string address = r.address;
    for (auto& ch : address) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const auto key = s.tenant + "\n" + address + "\n" + std::to_string(bucket);
    // A report counts without taking; a send takes one of the recipient's messages.
    const bool over = s.dry_run ? std::stoll(host_.store().get(key).value_or("0")) >= max_
                                : !host_.store().add(key, 1, max_);
    if (over)
      v.drops.push_back({r.index, "frequency cap: " + std::to_string(max_) + " marketing messages per " + window_text_});
  }
  return v;
}

std::vector<std::pair<std::string, std::string>> frequency_cap::settings() const {
  return {{"max", std::to_string(max_)}, {"window", postern::setting_text(window_text_)}};
}

}  // namespace postern::policies
