// A transport for tests whose answers are chosen by the recipient's local part:
//   fail…@   -> the `fail_reply` setting  (default "550 5.1.1 no such user")
//   defer…@  -> the `defer_reply` setting (default "451 4.4.1 try again later")
//   anything else is written to `directory` as <queue id>.<recipient index>.eml and gets 250.
// With `unavailable = "reason"`, probe() reports the transport unusable for that reason.
#include <postern/plugin.hpp>

#include <fstream>
#include <filesystem>
#include <stdexcept>

namespace {

postern::smtp_reply parse_reply(const std::string& text) {
  postern::smtp_reply r;
  r.code = std::stoi(text.substr(0, 3));
  const auto rest = text.size() > 4 ? text.substr(4) : std::string();
  const auto space = rest.find(' ');
  r.enhanced = rest.substr(0, space);
  r.text = space == std::string::npos ? "" : rest.substr(space + 1);
  return r;
}

class scripted_transport final : public postern::transport {
 public:
  explicit scripted_transport(postern::host& host)
      : host_(host),
        directory_(host.resolve_path(host.config().get_string("directory").value_or("scripted"))),
        fail_(parse_reply(host.config().get_string("fail_reply").value_or("550 5.1.1 no such user"))),
        defer_(parse_reply(host.config().get_string("defer_reply").value_or("451 4.4.1 try again later"))),
        unavailable_(host.config().get_string("unavailable").value_or("")) {}

  postern::probe_result probe() override {
    if (!unavailable_.empty()) return {false, unavailable_};
    return {true, "scripted answers, accepted mail in " + directory_.string()};
  }

  void deliver(postern::delivery_request request, postern::delivery_callback done) override {
    std::vector<postern::recipient_result> results;
    for (const auto& r : request.recipients) {
      if (r.address.starts_with("fail")) {
        results.push_back({r.index, fail_, ""});
      } else if (r.address.starts_with("defer")) {
        results.push_back({r.index, defer_, ""});
      } else {
        std::filesystem::create_directories(directory_);
        const auto file = directory_ / (request.msg->queue_id + "." + std::to_string(r.index) + ".eml");
        std::ofstream(file, std::ios::binary) << request.msg->raw;
        results.push_back({r.index, {250, "2.0.0", "ok"}, "scripted-" + request.msg->queue_id});
      }
    }
    host_.log(postern::log_level::debug, "answered " + std::to_string(results.size()) + " recipients");
    done(std::move(results));
  }

 private:
  postern::host& host_;
  std::filesystem::path directory_;
  postern::smtp_reply fail_, defer_;
  std::string unavailable_;
};

}  // namespace

POSTERN_TRANSPORT_PLUGIN(scripted_transport, "scripted", "0.1.0", "Test transport with scripted replies")
