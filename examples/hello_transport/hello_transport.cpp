// hello: a transport that appends one line per recipient to a log file and reports success.
// Small on purpose: it shows the whole plugin contract (settings, probe, deliver, entry points).
#include <postern/postern.hpp>

#include <filesystem>
#include <fstream>
#include <mutex>

namespace {

class hello_transport final : public postern::transport {
 public:
  // Settings come from the [transports.hello] section; throwing here reports a bad value.
  explicit hello_transport(postern::host& host)
      : host_(host), log_file_(host.resolve_path(host.config().get_string("log_file").value_or("hello.log"))) {}

  postern::probe_result probe() override {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(log_file_).parent_path(), ec);
    std::ofstream out(log_file_, std::ios::app);
    if (!out) return {false, "cannot write " + log_file_};
    return {true, "logging to " + log_file_};
  }

  // Called on a delivery worker thread, possibly several at once: guard shared state.
  void deliver(postern::delivery_request request, postern::delivery_callback done) override {
    std::vector<postern::recipient_result> results;
    {
      std::lock_guard lock(mutex_);
      std::ofstream out(log_file_, std::ios::app);
      for (const auto& r : request.recipients) {
        out << request.msg->queue_id << " from=<" << request.msg->env.mail_from << "> to=<" << r.address << ">\n";
        // 4xx asks the engine to retry later; 5xx fails the recipient for good.
        results.push_back({r.index, out ? postern::smtp_reply{250, "2.0.0", "logged"}
                                        : postern::smtp_reply{451, "4.3.0", "cannot write the log"}, ""});
      }
    }
    host_.log(postern::log_level::info, "said hello for " + request.msg->queue_id);
    done(std::move(results));
  }

 private:
  postern::host& host_;
  std::string log_file_;
  std::mutex mutex_;
};

}  // namespace

POSTERN_TRANSPORT_PLUGIN(hello_transport, "hello", "1.0.0", "Logs one line per recipient (example plugin)")
