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
  std::vector<std::string> recipients;
};

std::string login_name() {
  if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_name) return pw->pw_name;
  return "unknown";
}

/// Parses sendmail's options. Returns an error text, empty on success. Options that change
/// nothing for a gateway (-odi, -oem, -B8BITMIME, -v, …) are accepted and ignored so that
/// the command lines legacy programs use keep working.
std::string parse(const std::vector<std::string>& args, sendmail_options& o) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      o.recipients.insert(o.recipients.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      o.recipients.push_back(a);
      continue;
    }
    // Options that take a value accept it attached (-ffoo) or as the next argument (-f foo).
    auto value = [&](std::string& out) -> bool {
      if (a.size() > 2) {
        out = a.substr(2);
        return true;
      }
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    std::string ignored;
    switch (a[1]) {
      case 't': o.extract_recipients = true; break;
      case 'i': o.ignore_dots = true; break;
      case 'o':
        if (a == "-oi") o.ignore_dots = true;
        else if (a.size() == 2 && !value(ignored)) return "option -o needs a value";
        break;
      case 'f':
      case 'r':
        if (!value(o.sender)) return fmt::format("option -{} needs an address", a[1]);
        o.sender_given = true;
        break;
      case 'F':
        if (!value(o.full_name)) return "option -F needs a name";
        break;
      case 'C':
        if (!value(o.config_path)) return "option -C needs a file";
        break;
      case 'b':
        if (a != "-bm") return "mode " + a + " is not supported (only -bm, the default: deliver mail)";
        break;
      case 'B': case 'N': case 'R': case 'V': case 'h': case 'L': case 'X': case 'q': case 'A': case 'O':
        if (!value(ignored)) return "option " + a + " needs a value";
        break;
      case 'v': case 'm': case 'e': case 'n': case 'U': case 'G': break;
      default: return "unknown option " + a;
    }
  }
  return {};
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

/// Addresses from header values ("Ann <a@x>, b@y, group: c@z;"), parsed by GMime.
void add_addresses(const std::string& value, std::vector<std::string>& out) {
  InternetAddressList* list = internet_address_list_parse(nullptr, value.c_str());
  if (!list) return;
  const int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* a = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
      out.emplace_back(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a)));
    } else if (INTERNET_ADDRESS_IS_GROUP(a)) {
      InternetAddressList* members = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
      for (int j = 0; j < internet_address_list_length(members); ++j) {
        InternetAddress* m = internet_address_list_get_address(members, j);
        if (INTERNET_ADDRESS_IS_MAILBOX(m)) out.emplace_back(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(m)));
      }
    }
  }
  g_object_unref(list);
}

/// -t: recipients from To/Cc/Bcc (or the Resent- ones when present); Bcc lines are removed.
std::vector<std::string> extract_recipients(std::string& raw) {
  g_mime_init();
  const bool resent = submission::has_header(raw, "Resent-To") || submission::has_header(raw, "Resent-Cc") ||
                      submission::has_header(raw, "Resent-Bcc");
  const std::string prefix = resent ? "Resent-" : "";
  std::vector<std::string> out;
  for (const char* name : {"To", "Cc", "Bcc"}) {
    for (const auto& v : submission::header_values(raw, prefix + name)) add_addresses(v, out);
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

int sendmail_command(const std::vector<std::string>& args) {
  sendmail_options o;
  if (auto error = parse(args, o); !error.empty()) {
    std::cerr << "sendmail: " << error << '\n';
    return EX_USAGE;
  }
  auto settings = load_or_report(o.config_path.empty() ? config::default_path() : std::filesystem::path(o.config_path));
  if (!settings) return EX_CONFIG;
  const std::string& hostname = settings->server.hostname;

  std::string raw = read_message(o.ignore_dots);
  if (!std::cin.eof() && std::cin.fail()) {
    std::cerr << "sendmail: cannot read the message from standard input\n";
    return EX_IOERR;
  }
  // Line endings: the drop keeps what came in; the submission turns it into CRLF.
  std::string crlf = submission::to_crlf(raw);
  std::vector<std::string> recipients;
  if (o.extract_recipients) recipients = extract_recipients(crlf);
  g_mime_init();
  for (const auto& r : o.recipients) {
    std::vector<std::string> parsed;
    if (r.find_first_of("<,") != std::string::npos) add_addresses(r, parsed);
    else parsed.push_back(r);
    for (auto& p : parsed) recipients.push_back(std::move(p));
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

  std::string sender = o.sender_given ? qualify(o.sender, hostname) : login_name() + "@" + hostname;
  if (o.sender_given && (o.sender == "<>" || o.sender.empty())) sender.clear();
  if (!sender.empty() && !submission::valid_address(sender)) {
    std::cerr << "sendmail: bad sender address: " << sender << '\n';
    return EX_DATAERR;
  }
  if (crlf.size() > settings->submission.max_message_size) {
    std::cerr << "sendmail: message of " << crlf.size() << " bytes is over the limit of "
              << settings->submission.max_message_size << " bytes\n";
    return EX_DATAERR;
  }
  if (!o.full_name.empty() && !submission::has_header(crlf, "From") && !sender.empty())
    crlf = submission::format_field("From", "\"" + o.full_name + "\" <" + sender + ">") + crlf;

  maildrop::drop d{sender, recipients, settings->submission.local_tenant, login_name(), std::move(crlf)};
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
