#include "cli/cli.hpp"

#include "maildrop/maildrop.hpp"
#include "submission/header_block.hpp"
#include "submission/service.hpp"

#include <fmt/format.h>
#include <gmime/gmime.h>

#include <pwd.h>
#include <sysexits.h>
#include <unistd.h>

#include <iostream>
#include <optional>
#include <iterator>

namespace postern::cli {
namespace {

struct sendmail_options {
  bool extract_recipients = false;  // -t
  bool ignore_dots = false;         // -i, -oi
  std::string sender;               // -f, -r
  bool sender_given = false;
  std::string full_name;            // -F
  std::string config_path;          // -C
  std::string notify;               // -N, RFC 3461 NOTIFY for every recipient
  std::string ret;                  // -R full|hdrs
  std::string envid;                // -V
  std::vector<std::string> recipients;
};

std::string login_name() {
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_name) return pw->pw_name;
  return "unknown";
}

/// Parses sendmail's options the way getopt does (flags may be clustered: -ti, -oi, -fuser),
/// which CLI11 cannot express for these single-letter, sometimes glued options. Options that
/// change nothing for a gateway (-odi, -oem, -B8BITMIME, -v, …) are accepted and ignored so
/// that the command lines legacy programs use keep working. Returns an error, empty on success.
std::string parse(const std::vector<std::string>& args, sendmail_options& o) {
  static const std::string with_value = "frFCoBNRVhLXqAObe";  // -eX: error mode, as sendmail reads it
  static const std::string flags = "tivmnUG";
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      o.recipients.push_back(a);
      continue;
    }
    if (a[1] == '-') return "unknown option " + a;
    for (std::size_t k = 1; k < a.size(); ++k) {
      const char c = a[k];
      if (flags.find(c) != std::string::npos) {
        if (c == 't') o.extract_recipients = true;
        if (c == 'i') o.ignore_dots = true;
        continue;
      }
      if (with_value.find(c) == std::string::npos) return fmt::format("unknown option -{}", c);
      std::string value;
      if (k + 1 < a.size()) {
        value = a.substr(k + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return fmt::format("option -{} needs {}", c, c == 'f' || c == 'r' ? "an address" : "a value");
      }
      switch (c) {
        case 'f': case 'r': o.sender = value; o.sender_given = true; break;
        case 'F': o.full_name = value; break;
        case 'C': o.config_path = value; break;
        case 'o': if (value == "i") o.ignore_dots = true; break;
        case 'b':
          if (value != "m") return "mode -b" + value + " is not supported (only -bm, the default: deliver mail)";
          break;
        case 'N': o.notify = value; break;
        case 'R':
          o.ret = value;
          for (auto& ch : o.ret) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          break;
        case 'V': o.envid = value; break;
        default: break;  // accepted for compatibility, no effect here
      }
      break;  // the value took the rest of this argument
    }
  }
  for (; i < args.size(); ++i) o.recipients.push_back(args[i]);
  return {};
}

/// RFC 3461 NOTIFY from -N ("never", or a list of success, failure, delay). Nothing if invalid.
std::optional<unsigned> parse_notify(const std::string& text) {
  if (text.empty()) return 0u;
  unsigned out = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    for (auto& c : item) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (item == "never") out |= postern::notify_never;
    else if (item == "success") out |= postern::notify_success;
    else if (item == "failure") out |= postern::notify_failure;
    else if (item == "delay") out |= postern::notify_delay;
    else return std::nullopt;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if ((out & postern::notify_never) && out != postern::notify_never) return std::nullopt;
  return out;
}

/// Reads the message from stdin. Without -i, a line holding only "." ends it, as in sendmail.
std::string read_message(bool ignore_dots) {
  if (ignore_dots) return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::string message, line;
  while (std::getline(std::cin, line)) {
    if (line == "." || line == ".\r") break;
    message += line;
    message += '\n';
  }
  return message;
}

/// How many addresses a header value names: commas outside quotes, comments, angle brackets
/// and groups separate them; a group counts its members. Used to notice what GMime skipped.
std::size_t count_addresses(std::string_view value) {
  std::size_t count = 0;
  bool quoted = false, in_group = false, item_has_text = false;
  int angle = 0, paren = 0;
  auto end_item = [&] {
    if (item_has_text) ++count;
    item_has_text = false;
  };
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
      continue;
    }
    if (paren > 0) {
      if (c == '(') ++paren;
      else if (c == ')') --paren;
      continue;
    }
    switch (c) {
      case '"': quoted = true; item_has_text = true; break;
      case '(': ++paren; break;
      case '<': ++angle; item_has_text = true; break;
      case '>': --angle; break;
      case ':': if (angle == 0 && !in_group) { in_group = true; item_has_text = false; } break;
      case ';': if (in_group) { end_item(); in_group = false; } break;
      case ',': if (angle == 0) end_item(); break;
      case ' ': case '\t': break;
      default: item_has_text = true; break;
    }
  }
  end_item();
  return count;
}

/// Addresses from a header value ("Ann <a@x>, b@y, group: c@z;"), parsed by GMime. False if
/// one of them could not be read: a recipient is never dropped without a word.
bool add_addresses(const std::string& value, std::vector<std::string>& out) {
  std::size_t found = 0;
  if (InternetAddressList* list = internet_address_list_parse(nullptr, value.c_str())) {
    const int n = internet_address_list_length(list);
    for (int i = 0; i < n; ++i) {
      InternetAddress* a = internet_address_list_get_address(list, i);
      if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
        out.emplace_back(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a)));
        ++found;
      } else if (INTERNET_ADDRESS_IS_GROUP(a)) {
        InternetAddressList* members = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
        for (int j = 0; j < internet_address_list_length(members); ++j) {
          InternetAddress* m = internet_address_list_get_address(members, j);
          if (!INTERNET_ADDRESS_IS_MAILBOX(m)) continue;
          out.emplace_back(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(m)));
          ++found;
        }
      }
    }
    g_object_unref(list);
  }
  return found == count_addresses(value);
}

/// -t: recipients from To/Cc/Bcc (or the Resent- ones when present); Bcc lines are removed.
/// Nothing, with `bad` set to the header value, if an address there cannot be read.
std::optional<std::vector<std::string>> extract_recipients(std::string& raw, std::string& bad) {
  const bool resent = submission::has_header(raw, "Resent-To") || submission::has_header(raw, "Resent-Cc") ||
                      submission::has_header(raw, "Resent-Bcc");
  const std::string prefix = resent ? "Resent-" : "";
  std::vector<std::string> out;
  for (const char* name : {"To", "Cc", "Bcc"}) {
    for (const auto& v : submission::header_values(raw, prefix + name)) {
      if (!add_addresses(v, out)) {
        bad = prefix + name + ": " + v;
        return std::nullopt;
      }
    }
  }
  raw = submission::remove_header(raw, prefix + "Bcc");
  return out;
}

/// A recipient given as a bare local part is qualified with the host name, as sendmail does.
std::string qualify(std::string address, const std::string& hostname) {
  if (!address.empty() && address.front() == '<' && address.back() == '>') address = address.substr(1, address.size() - 2);
  if (!address.empty() && address.find('@') == std::string::npos) address += "@" + hostname;
  return address;
}

}  // namespace

int sendmail_command(const std::vector<std::string>& args, const std::string& config_path) {
  sendmail_options o;
  o.config_path = config_path;
  if (auto error = parse(args, o); !error.empty()) {
    std::cerr << "sendmail: " << error << '\n';
    return EX_USAGE;
  }
  const auto notify = parse_notify(o.notify);
  if (!notify) {
    std::cerr << "sendmail: -N takes never, or a comma list of success, failure and delay\n";
    return EX_USAGE;
  }
  if (!o.ret.empty() && o.ret != "full" && o.ret != "hdrs") {
    std::cerr << "sendmail: -R takes full or hdrs\n";
    return EX_USAGE;
  }
  auto settings = load_or_report(config::given_or_default(o.config_path));
  if (!settings) return EX_CONFIG;
  const std::string& hostname = settings->server.hostname;

  std::string raw = read_message(o.ignore_dots);
  if (!std::cin.eof() && std::cin.fail()) {
    std::cerr << "sendmail: cannot read the message from standard input\n";
    return EX_IOERR;
  }
  // The drop holds the message with CRLF line endings, as the spool will.
  g_mime_init();  // address lists (-t, and "Name <addr>" arguments) are parsed with GMime
  std::string crlf = submission::to_crlf(raw);
  std::vector<std::string> recipients;
  if (o.extract_recipients) {
    std::string bad;
    auto extracted = extract_recipients(crlf, bad);
    if (!extracted) {
      std::cerr << "sendmail: cannot read every address in the header " << bad << '\n';
      return EX_DATAERR;
    }
    recipients = std::move(*extracted);
  }
  for (const auto& r : o.recipients) {
    if (r.find_first_of("<,") == std::string::npos) {
      recipients.push_back(r);
    } else if (!add_addresses(r, recipients)) {
      std::cerr << "sendmail: cannot read every address in the argument " << r << '\n';
      return EX_DATAERR;
    }
  }
  for (auto& r : recipients) r = qualify(r, hostname);
  if (recipients.empty()) {
    std::cerr << "sendmail: no recipients: name them as arguments or use -t with To/Cc/Bcc headers\n";
    return EX_USAGE;
  }
  for (const auto& r : recipients) {
    if (!submission::valid_address(r)) {
      std::cerr << "sendmail: bad recipient address: " << r << '\n';
      return EX_DATAERR;
    }
  }

  const std::string user = login_name();
  // -f '<>' or -f '' is the null sender: qualify() leaves it empty.
  const std::string sender = o.sender_given ? qualify(o.sender, hostname) : user + "@" + hostname;
  if (!sender.empty() && !submission::valid_address(sender)) {
    std::cerr << "sendmail: bad sender address: " << sender << '\n';
    return EX_DATAERR;
  }
  if (crlf.size() > settings->submission.max_message_size) {
    std::cerr << "sendmail: message of " << crlf.size() << " bytes is over the limit of "
              << settings->submission.max_message_size << " bytes\n";
    return EX_DATAERR;
  }
  if (!o.full_name.empty() && !submission::has_header(crlf, "From") && !sender.empty()) {
    submission::ensure_header_section(crlf);
    crlf = submission::format_field("From", "\"" + o.full_name + "\" <" + sender + ">") + crlf;
  }

  maildrop::drop d;
  d.mail_from = sender;
  d.recipients = recipients;
  d.tenant = settings->submission.local_tenant;
  d.user = user;
  d.raw = std::move(crlf);
  d.notify = *notify;
  d.ret = o.ret;
  d.envid = o.envid;
  try {
    maildrop::write(settings->maildrop_dir(), d);
  } catch (const std::exception& e) {
    // Not taken: the caller keeps the message and may try again.
    std::cerr << "sendmail: cannot queue the message: " << e.what() << '\n';
    return EX_TEMPFAIL;
  }
  return 0;
}

}  // namespace postern::cli
