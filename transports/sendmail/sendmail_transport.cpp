#include "sendmail_transport.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <postern/duration.hpp>
#include <postern/line_endings.hpp>

namespace postern::transports {
namespace {

/// Empty when `path` is a regular file we may execute, else why not.
std::string unusable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
  if (::access(path.c_str(), X_OK) != 0) return path + ": not executable (" + std::strerror(errno) + ")";
  return "";
}

/// The first line with text in it, made safe for a one-line reply.
std::string first_line(std::string_view text) {
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string line;
    for (char c : text.substr(0, end)) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
      line += c;
    }
    const auto first = line.find_first_not_of(' ');
    if (first != std::string::npos) {
      line = line.substr(first, line.find_last_not_of(' ') - first + 1);
      if (line.size() > 300) line = line.substr(0, 300) + "...";
      return line;
    }
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return "";
}

const char* sysexits_name(int code) {
  switch (code) {
    case 64: return "EX_USAGE";
    case 65: return "EX_DATAERR";
    case 66: return "EX_NOINPUT";
    case 67: return "EX_NOUSER";
    case 68: return "EX_NOHOST";
    case 69: return "EX_UNAVAILABLE";
    case 70: return "EX_SOFTWARE";
    case 71: return "EX_OSERR";
    case 72: return "EX_OSFILE";
    case 73: return "EX_CANTCREAT";
    case 74: return "EX_IOERR";
    case 75: return "EX_TEMPFAIL";
    case 76: return "EX_PROTOCOL";
    case 77: return "EX_NOPERM";
    case 78: return "EX_CONFIG";
    default: return nullptr;
  }
}

/// The enhanced status (RFC 3463) that says most about a permanent sysexits code.
std::pair<int, const char*> permanent_status(int code) {
  switch (code) {
    case 64: return {554, "5.3.5"};  // usage: the arguments are wrong for this program
    case 65: return {554, "5.6.0"};  // the message itself
    case 67: return {550, "5.1.1"};  // no such user
    case 68: return {550, "5.1.2"};  // no such host
    case 76: return {554, "5.5.0"};  // the remote protocol
    case 77: return {554, "5.7.1"};  // not permitted
    case 78: return {554, "5.3.5"};  // configuration
    default: return {554, "5.3.0"};
  }
}

std::string describe(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace

sendmail_program find_sendmail(const std::string& binary, const std::string& path_env) {
  const auto in_path = [&](const std::string& name, std::string& why) -> std::string {
    std::string_view dirs = path_env;
    while (true) {
      const auto colon = dirs.find(':');
      const std::string dir(dirs.substr(0, colon));
      if (!dir.empty()) {
        const std::string candidate = dir + "/" + name;
        if (unusable(candidate).empty()) return candidate;
      }
      if (colon == std::string_view::npos) break;
      dirs.remove_prefix(colon + 1);
    }
    why = name + ": not found in PATH (" + path_env + ")";
    return "";
  };
  const std::vector<std::string> candidates =
      binary.empty() ? std::vector<std::string>{"/usr/sbin/sendmail", "/usr/lib/sendmail", "msmtp"}
                     : std::vector<std::string>{binary};
  std::string reasons;
  for (const auto& c : candidates) {
    std::string why;
    std::string found;
    if (c.find('/') == std::string::npos) {
      found = in_path(c, why);
    } else if (why = unusable(c); why.empty()) {
      found = c;
    }
    if (!found.empty()) return {found, ""};
    reasons += (reasons.empty() ? "" : "; ") + why;
  }
  return {"", (binary.empty() ? "no sendmail program found: " : "binary ") + reasons};
}

std::vector<std::string> sendmail_argv(const std::string& program, const std::vector<std::string>& arguments,
                                       const std::string& sender, const std::vector<postern::recipient>& recipients) {
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  // -i: a line with a single "." is text, not the end of the message.
  argv.insert(argv.end(), {"-i", "-f", sender.empty() ? "<>" : sender, "--"});
  for (const auto& r : recipients) argv.push_back(r.address);
  return argv;
}

postern::smtp_reply map_sendmail_result(const child_result& r, std::string_view program, bool unavailable_is_temporary,
                                        std::chrono::milliseconds timeout) {
  const std::string name(program);
  std::string said = first_line(r.err);
  if (said.empty()) said = first_line(r.out);
  const std::string tail = said.empty() ? "" : ": " + said;

  if (r.spawn_error) return {451, "4.3.0", "cannot run " + name + ": " + std::strerror(r.spawn_error)};
  if (r.cancelled) return {451, "4.3.2", "postern is stopping: " + name + " was stopped" + tail};
  if (r.timed_out) {
    return {451, "4.4.1", name + " did not finish within " + describe(timeout) + " and was killed" + tail};
  }
  if (!r.exited) {
    if (r.signal) {
      const char* sig = ::sigabbrev_np(r.signal);
      return {451, "4.3.0",
              name + " was killed by signal " + std::to_string(r.signal) +
                  (sig ? std::string(" (SIG") + sig + ")" : "") + tail};
    }
    return {451, "4.3.0", name + " ended, but its exit status was lost" + tail};
  }

  const int code = r.exit_code;
  if (code == 0) {
    // A sendmail that exits 0 before it read the whole message may have sent part of it.
    if (r.input_error) {
      return {451, "4.3.0",
              name + " exited 0 without reading the whole message (" + std::to_string(r.input_written) +
                  " bytes taken)" + tail};
    }
    return {250, "2.0.0", "accepted by " + name};
  }
  const char* symbol = sysexits_name(code);
  std::string text =
      name + " exited with " + std::to_string(code) + (symbol ? std::string(" (") + symbol + ")" : "") + tail;
  if (code == 75) return {451, "4.3.0", text};
  if (code == 69)
    return unavailable_is_temporary ? postern::smtp_reply{451, "4.3.0", text} : postern::smtp_reply{554, "5.3.0", text};
  const auto [basic, enhanced] = permanent_status(code);
  return {basic, enhanced, text};
}

sendmail_settings sendmail_settings::read(const postern::host& host) {
  const auto& config = host.config();
  const std::string origin = config.origin();
  const auto fail = [&](const std::string& what) { throw std::invalid_argument(origin + ": " + what); };

  sendmail_settings s;
  if (config.has("binary")) {
    auto b = config.get_string("binary");
    if (!b || b->empty()) fail("binary must be the path or name of a program");
    // A name is looked up in PATH; a relative path is taken from the data directory, like
    // every other path in a plugin's settings.
    s.binary = b->find('/') == std::string::npos ? *b : host.resolve_path(*b);
  }
  if (config.has("arguments")) {
    s.arguments = config.get_strings("arguments");
  }
  if (config.has("timeout")) {
    const auto t = postern::duration_setting(config, "timeout");
    if (!t) fail("timeout must be a positive duration such as \"60s\" or \"2m\"");
    s.timeout = *t;
  }
  if (config.has("max_processes")) {
    auto n = config.get_int("max_processes");
    if (!n || *n < 1 || *n > 256) fail("max_processes must be an integer from 1 to 256");
    s.max_processes = static_cast<std::size_t>(*n);
  }
  if (config.has("unavailable_is_temporary")) {
    auto v = config.get_bool("unavailable_is_temporary");
    if (!v) fail("unavailable_is_temporary must be true or false");
    s.unavailable_is_temporary = *v;
  }
  if (config.has("line_endings")) {
    const auto e = config.get_string("line_endings").value_or("");
    if (e != "lf" && e != "crlf") fail("line_endings must be \"lf\" or \"crlf\", not \"" + e + "\"");
    s.crlf = e == "crlf";
  }
  return s;
}

sendmail_transport::sendmail_transport(postern::host& host) : settings_(sendmail_settings::read(host)) {
  const char* path = std::getenv("PATH");
  path_env_ = path ? path : "/usr/local/bin:/usr/bin:/bin";
}

postern::probe_result sendmail_transport::probe() {
  const auto program = find_sendmail(settings_.binary, path_env_);
  if (program.path.empty()) return {false, program.reason};
  // The arguments are not shown: they may name credentials files or accounts.
  std::string reason = "runs " + program.path;
  if (!settings_.arguments.empty())
    reason += " with " + std::to_string(settings_.arguments.size()) + " extra argument" +
              (settings_.arguments.size() == 1 ? "" : "s");
  return {true, reason};
}

postern::smtp_reply sendmail_transport::run(const postern::delivery_request& request) {
  const auto program = find_sendmail(settings_.binary, path_env_);
  if (program.path.empty()) return {451, "4.3.5", program.reason};

  std::unique_lock lock(slots_mutex_);
  slots_free_.wait(lock, [this] { return stopping_.load() || running_ < settings_.max_processes; });
  if (stopping_) return {451, "4.3.2", "postern is stopping"};
  ++running_;
  lock.unlock();
  struct slot_release {
    sendmail_transport& self;
    ~slot_release() {
      {
        std::lock_guard l(self.slots_mutex_);
        --self.running_;
      }
      self.slots_free_.notify_one();
    }
  } release{*this};

  const auto& msg = *request.msg;
  // The spool holds CRLF; a local mailer reads UNIX text unless told otherwise.
  const std::string converted = settings_.crlf ? std::string() : postern::to_lf(msg.raw);
  child_process::options o;
  o.argv = sendmail_argv(program.path, settings_.arguments, msg.env.mail_from, request.recipients);
  o.input = settings_.crlf ? std::string_view(msg.raw) : std::string_view(converted);
  o.timeout = settings_.timeout;
  o.cancel = &stopping_;
  return map_sendmail_result(child_process::run(o), program.path, settings_.unavailable_is_temporary,
                             settings_.timeout);
}

void sendmail_transport::deliver(postern::delivery_request request, postern::delivery_callback done) {
  postern::smtp_reply reply;
  try {
    reply = run(request);
  } catch (const std::exception& e) {
    reply = {451, "4.3.0", std::string("sendmail transport: ") + e.what()};
  }
  // The program took every recipient at once: they share its answer.
  std::vector<postern::recipient_result> results;
  results.reserve(request.recipients.size());
  for (const auto& r : request.recipients) results.push_back({r.index, reply, "", {}});
  done(std::move(results));
}

void sendmail_transport::stop() {
  {
    std::lock_guard lock(slots_mutex_);
    stopping_ = true;
  }
  slots_free_.notify_all();
}

}  // namespace postern::transports
