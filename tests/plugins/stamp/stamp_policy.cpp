// A policy for tests: adds `X-Stamp: <stamp setting>` to every message, drops recipients whose
// address starts with "drop", and rejects content containing "REJECT-ME" with 550 5.7.1.
// With `settings_fail = "TEXT"`, settings() throws TEXT (what `postern plugins` must survive).
#include <postern/plugin.hpp>

#include <stdexcept>

namespace {

class stamp_policy final : public postern::policy {
 public:
  explicit stamp_policy(postern::host& host)
      : stamp_(host.config().get_string("stamp").value_or("stamped")),
        settings_fail_(host.config().get_string("settings_fail").value_or("")) {}

  std::vector<std::pair<std::string, std::string>> settings() const override {
    if (!settings_fail_.empty()) throw std::runtime_error(settings_fail_);
    return {};
  }

  postern::verdict check(const postern::submission_view& s, postern::policy_stage stage) override {
    if (stage != postern::policy_stage::content) return postern::verdict::accept();
    if (s.raw.find("REJECT-ME") != std::string::npos)
      return postern::verdict::reject(550, "5.7.1", "Message refused by the stamp policy");
    postern::verdict v;
    for (const auto& r : s.recipients) {
      if (r.address.starts_with("drop")) v.drops.push_back({r.index, "dropped by the stamp policy"});
    }
    v.add_headers.push_back({"X-Stamp", stamp_});
    return v;
  }

 private:
  std::string stamp_;
  std::string settings_fail_;
};

}  // namespace

POSTERN_POLICY_PLUGIN(stamp_policy, "stamp", "0.1.0", "Test policy: stamps, drops and rejects on cue")
