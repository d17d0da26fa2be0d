#include "protocol.hpp"

#include <postern/xtext.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace postern::transports::smtp {
namespace {

std::string upper(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

/// Length of an RFC 3463 code "c.sss.ddd" at the start of `text` whose class is `klass`
/// ('2', '4' or '5'), followed by a space or the end; 0 when there is none.
std::size_t enhanced_code_length(std::string_view text, char klass) {
  if (text.size() < 5 || text[0] != klass || text[1] != '.') return 0;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    const std::size_t start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    if (i == start || i - start > 3) return 0;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return 0;
      ++i;
    }
  }
  if (i < text.size() && text[i] != ' ') return 0;
  return i;
}

/// The first whitespace-separated word of `text` after `from`, or empty.
std::string_view word_after(std::string_view text, std::size_t from) {
  while (from < text.size() && text[from] == ' ') ++from;
  std::size_t end = from;
  while (end < text.size() && text[end] != ' ' && text[end] != ';' && text[end] != ',') ++end;
  return text.substr(from, end - from);
}

}  // namespace

// ---- reply -----------------------------------------------------------------------------------

std::string reply::text() const {
  std::string out;
  for (const auto& line : lines) {
    if (line.empty()) continue;
    if (!out.empty()) out += ' ';
    out += line;
  }
  return out;
}

postern::smtp_reply reply::to_smtp_reply() const {
  return {code, enhanced, text()};
}

void reply_parser::feed(std::string_view bytes) {
  if (!error_.empty()) return;
  // Taken replies are dropped only now, so that next() never moves memory.
  if (pos_ > 0) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<reply> reply_parser::next() {
  if (!error_.empty()) return std::nullopt;
  reply r;
  std::size_t at = pos_;
  for (;;) {
    const auto nl = buffer_.find('\n', at);
    if (nl == std::string::npos) {
      if (buffer_.size() - at > max_line) error_ = "a reply line longer than " + std::to_string(max_line) + " octets";
      return std::nullopt;
    }
    std::string_view line(buffer_.data() + at, nl - at);
    if (line.size() > max_line) {
      error_ = "a reply line longer than " + std::to_string(max_line) + " octets";
      return std::nullopt;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) || line[0] < '2' ||
        line[0] > '5' || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
      std::string shown(line.substr(0, 80));
      for (auto& c : shown) {
        if (static_cast<unsigned char>(c) < 32 || c == 127) c = '?';
      }
      error_ = "a line that is not an SMTP reply: \"" + shown + "\"";
      return std::nullopt;
    }
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    const bool last = line.size() == 3 || line[3] == ' ';
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
    if (r.lines.empty()) {
      r.code = code;
      if (const auto n = enhanced_code_length(text, line[0]); n > 0) r.enhanced.assign(text.substr(0, n));
    }
    // Servers repeat the enhanced code on every line of a multi-line reply: keep it once.
    if (!r.enhanced.empty() && text.substr(0, r.enhanced.size()) == r.enhanced &&
        (text.size() == r.enhanced.size() || text[r.enhanced.size()] == ' ')) {
      text.remove_prefix(std::min(text.size(), r.enhanced.size() + 1));
    }
    r.lines.emplace_back(text);
    at = nl + 1;
    if (last) {
      pos_ = at;
      return r;
    }
    if (r.lines.size() >= max_lines) {
      error_ = "a reply of more than " + std::to_string(max_lines) + " lines";
      return std::nullopt;
    }
  }
}

// ---- capabilities ----------------------------------------------------------------------------

bool capabilities::offers_auth(std::string_view mechanism) const {
  return std::find(auth.begin(), auth.end(), mechanism) != auth.end();
}

std::string capabilities::summary() const {
  std::string out = esmtp ? "ESMTP" : "SMTP";
  if (pipelining) out += " PIPELINING";
  if (size) out += size_limit ? " SIZE=" + std::to_string(size_limit) : std::string(" SIZE");
  if (eight_bit_mime) out += " 8BITMIME";
  if (smtputf8) out += " SMTPUTF8";
  if (dsn) out += " DSN";
  if (starttls) out += " STARTTLS";
  if (!auth.empty()) {
    out += " AUTH=";
    for (std::size_t i = 0; i < auth.size(); ++i) out += (i ? "," : "") + auth[i];
  }
  return out;
}

capabilities parse_ehlo(const reply& ehlo) {
  capabilities caps;
  caps.esmtp = true;
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
    const std::string line = upper(ehlo.lines[i]);
    const std::string_view view(line);
    const auto space = view.find_first_of(" =");
    const std::string_view keyword = view.substr(0, space);
    const std::string_view params = space == std::string_view::npos ? std::string_view() : view.substr(space + 1);
    if (keyword == "PIPELINING") {
      caps.pipelining = true;
    } else if (keyword == "STARTTLS") {
      caps.starttls = true;
    } else if (keyword == "8BITMIME") {
      caps.eight_bit_mime = true;
    } else if (keyword == "SMTPUTF8") {
      caps.smtputf8 = true;
    } else if (keyword == "DSN") {
      caps.dsn = true;
    } else if (keyword == "SIZE") {
      caps.size = true;
      std::uint64_t limit = 0;
      const auto word = word_after(params, 0);
      const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), limit);
      if (ec == std::errc{} && end == word.data() + word.size()) caps.size_limit = limit;
    } else if (keyword == "AUTH") {
      std::size_t at = 0;
      while (at < params.size()) {
        const auto mechanism = word_after(params, at);
        if (mechanism.empty()) break;
        if (!caps.offers_auth(mechanism)) caps.auth.emplace_back(mechanism);
        at = static_cast<std::size_t>(mechanism.data() + mechanism.size() - params.data()) + 1;
      }
    }
  }
  return caps;
}

// ---- commands --------------------------------------------------------------------------------

std::string mail_command(const mail_parameters& mail, const capabilities& caps) {
  std::string out = "MAIL FROM:<" + mail.sender + ">";
  if (caps.size) out += " SIZE=" + std::to_string(mail.size);
  if (mail.eight_bit && caps.eight_bit_mime) out += " BODY=8BITMIME";
  if (mail.smtputf8 && caps.smtputf8) out += " SMTPUTF8";
  if (caps.dsn) {
    if (mail.ret == postern::dsn_ret::full) out += " RET=FULL";
    if (mail.ret == postern::dsn_ret::headers) out += " RET=HDRS";
    if (!mail.envid.empty()) out += " ENVID=" + postern::encode_xtext(mail.envid);
  }
  out += "\r\n";
  return out;
}

std::string rcpt_command(const postern::recipient& rcpt, const capabilities& caps) {
  std::string out = "RCPT TO:<" + rcpt.address + ">";
  if (caps.dsn) {
    if (rcpt.notify & postern::notify_never) {
      out += " NOTIFY=NEVER";
    } else if (rcpt.notify != postern::notify_default) {
      std::string flags;
      if (rcpt.notify & postern::notify_success) flags += ",SUCCESS";
      if (rcpt.notify & postern::notify_failure) flags += ",FAILURE";
      if (rcpt.notify & postern::notify_delay) flags += ",DELAY";
      if (!flags.empty()) out += " NOTIFY=" + flags.substr(1);
    }
    if (const auto semicolon = rcpt.orcpt.find(';'); semicolon != std::string::npos && semicolon > 0)
      out +=
          " ORCPT=" + rcpt.orcpt.substr(0, semicolon) + ";" + postern::encode_xtext(std::string_view(rcpt.orcpt).substr(semicolon + 1));
  }
  out += "\r\n";
  return out;
}

// ---- content ---------------------------------------------------------------------------------

std::string dot_stuff(std::string_view raw) {
  // Line by line with memchr, appending whole lines: a byte-at-a-time loop cost a fifth of a
  // core at 100 KiB messages.
  std::string out;
  out.reserve(raw.size() + raw.size() / 64 + 8);
  std::size_t pos = 0;
  while (pos < raw.size()) {
    if (raw[pos] == '.') out += '.';
    const void* found = std::memchr(raw.data() + pos, '\n', raw.size() - pos);
    if (!found) {
      out.append(raw.substr(pos));
      out += "\r\n";
      break;
    }
    const auto lf = static_cast<std::size_t>(static_cast<const char*>(found) - raw.data());
    const bool bare = lf == pos || raw[lf - 1] != '\r';
    out.append(raw.substr(pos, lf - pos));
    out += bare ? "\r\n" : "\n";
    pos = lf + 1;
  }
  out += ".\r\n";
  return out;
}

bool has_8bit(std::string_view text) noexcept {
  // Eight bytes at a time: the test runs over every message body.
  constexpr std::uint64_t high_bits = 0x8080808080808080ULL;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    if (word & high_bits) return true;
  }
  for (; i < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) > 127) return true;
  }
  return false;
}

bool header_has_8bit(std::string_view raw) noexcept {
  std::size_t end = raw.find("\r\n\r\n");
  if (end == std::string_view::npos) end = raw.find("\n\n");
  return has_8bit(raw.substr(0, end));
}

std::vector<std::vector<std::size_t>> recipient_batches(std::size_t count, std::size_t max_per_transaction) {
  if (max_per_transaction == 0) max_per_transaction = 1;
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i % max_per_transaction == 0) out.emplace_back();
    out.back().push_back(i);
  }
  return out;
}

std::string remote_queue_id(std::string_view text) {
  const auto lower = [](std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  const std::string folded = lower(text);
  // Postfix "Ok: queued as 4Q1x2y3z"; Exim "OK id=1qXyZ-0001Ab-Cd"; qmail "ok 1700000000 qp 1234".
  for (const std::string_view marker : {"queued as ", "id="}) {
    if (const auto at = folded.find(marker); at != std::string::npos) {
      const auto id = word_after(text, at + marker.size());
      if (!id.empty()) return std::string(id);
    }
  }
  // Sendmail: "x8ABCD123 Message accepted for delivery".
  if (const auto at = folded.find(" message accepted for delivery"); at != std::string::npos && at > 0) {
    const auto id = text.substr(0, at);
    if (id.find(' ') == std::string_view::npos) return std::string(id);
  }
  return std::string(text);
}

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

std::string auth_plain_response(std::string_view user, std::string_view password) {
  std::string message;
  message += '\0';
  message += user;
  message += '\0';
  message += password;
  std::string encoded = base64(message);
  OPENSSL_cleanse(message.data(), message.size());  // the password does not linger in freed memory
  return encoded;
}

}  // namespace postern::transports::smtp
