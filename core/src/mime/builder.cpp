#include "mime/builder.hpp"

#include "mime/gmime_support.hpp"
#include "submission/header_block.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

namespace postern::mime {
namespace {

constexpr std::size_t max_line = 998;  // RFC 5322 §2.1.1, without the CRLF

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// A caller's text as it may appear inside an error message: no control characters, bounded.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += static_cast<unsigned char>(c) < 32 || c == 127 ? '?' : c;
  return s.size() > 64 ? out + "..." : out;
}

/// CR and LF would end a field early (header injection); NUL would cut the value short, since
/// GMime takes C strings.
std::string value_problem(std::string_view what, std::string_view value) {
  if (value.find_first_of("\r\n") != std::string_view::npos) return std::string(what) + " contains a line break";
  if (value.find('\0') != std::string_view::npos) return std::string(what) + " contains a NUL byte";
  return {};
}

/// RFC 5322 §3.6.8: printable US-ASCII except colon.
bool is_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c > 32 && c < 127 && c != ':'; });
}

/// RFC 2045 token: printable US-ASCII except space and tspecials.
bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return c > 32 && c < 127 && std::string_view("()<>@,;:\\\"/[]?=").find(c) == std::string_view::npos;
  });
}

/// For msg-id and content-id: printable, no space, no brackets (GMime adds them), an @ inside.
bool is_id(std::string_view id) {
  const auto at = id.find('@');
  return at != std::string_view::npos && at > 0 && at + 1 < id.size() &&
         std::all_of(id.begin(), id.end(), [](char c) { return c > 32 && c < 127 && c != '<' && c != '>'; });
}

/// A Content-ID: like a msg-id, but an @ is not required (Mailgun clients use the file name).
bool is_content_id(std::string_view id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) { return c > 32 && c < 127 && c != '<' && c != '>'; });
}

bool is_atext(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

/// RFC 5322 dot-atom: atoms of atext joined by single dots.
bool is_dot_atom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '.' || is_atext(c); });
}

/// Display-name words of atext separated by single spaces, nothing GMime would quote or
/// decode ("=?" could open an encoded word).
bool is_plain_phrase(std::string_view s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ' || s.find("  ") != std::string_view::npos) return false;
  if (s.find("=?") != std::string_view::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || is_atext(c); });
}

bool is_plain_addr_spec(std::string_view s) {
  const auto at = s.find('@');
  return at != std::string_view::npos && is_dot_atom(s.substr(0, at)) && is_dot_atom(s.substr(at + 1));
}

struct plain_mailbox {
  std::string_view name, addr;  // parts of the text it was read from
};

/// "local@domain" or "Name <local@domain>" in plain ASCII: what it says is what is written,
/// so it needs neither GMime's parser nor its encoder. (An "xn--" domain stays as it is:
/// GMime's parser would turn it into Unicode.)
std::optional<plain_mailbox> as_plain_mailbox(std::string_view text) {
  if (is_plain_addr_spec(text)) return plain_mailbox{{}, text};
  const auto open = text.find(" <");
  if (open == std::string_view::npos || !text.ends_with('>') || !is_plain_phrase(text.substr(0, open))) return {};
  const std::string_view addr = text.substr(open + 2, text.size() - open - 3);
  if (!is_plain_addr_spec(addr)) return {};
  return plain_mailbox{text.substr(0, open), addr};
}

bool is_plain_mailbox(std::string_view text) {
  return as_plain_mailbox(text).has_value();
}

/// A value written as it is: printable ASCII, single spaces, and short enough not to fold.
bool is_plain_value(std::string_view name, std::string_view value) {
  if (name.size() + 2 + value.size() > 78) return false;
  if (!value.empty() && (value.front() == ' ' || value.back() == ' ')) return false;
  if (value.find("  ") != std::string_view::npos || value.find("=?") != std::string_view::npos) return false;
  return std::all_of(value.begin(), value.end(), [](char c) { return c >= 32 && c < 127; });
}

/// Fields the builder writes itself: given again as extra headers they would describe the
/// body wrongly (structure) or appear twice, unvalidated (addresses and the like).
std::string reserved_header_problem(std::string_view name) {
  static constexpr std::array<std::string_view, 5> structural = {"Content-Type", "Content-Transfer-Encoding",
                                                                 "MIME-Version", "Content-Disposition", "Content-ID"};
  static constexpr std::array<std::string_view, 8> own_field = {"From",     "To",      "Cc",         "Bcc",
                                                                "Reply-To", "Subject", "Message-ID", "Date"};
  const auto is = [&](std::string_view n) { return iequals(n, name); };
  const std::string quoted = "header \"" + std::string(name) + "\"";
  if (std::any_of(structural.begin(), structural.end(), is))
    return quoted + " describes the MIME structure the builder writes";
  if (std::any_of(own_field.begin(), own_field.end(), is))
    return quoted + " must be given as its own field, not as an extra header";
  return {};
}

/// One mailbox, written only as "addr" or "name <addr>". GMime's parser is lenient: it reads
/// "a@b@c" as a@b and "a@b junk" as two addresses, so its result is compared to the input.
owned<InternetAddress> parse_mailbox(const std::string& text) {
  owned<InternetAddressList> list(internet_address_list_parse(nullptr, text.c_str()));
  if (!list || internet_address_list_length(list.get()) != 1) return nullptr;
  InternetAddress* parsed = internet_address_list_get_address(list.get(), 0);
  if (!INTERNET_ADDRESS_IS_MAILBOX(parsed)) return nullptr;
  const char* addr_c = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(parsed));
  const std::string_view addr = addr_c ? addr_c : "";
  const auto at = addr.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == addr.size()) return nullptr;
  const std::string_view input = trim(text);
  if (input != addr && !(input.ends_with(">") && input.substr(0, input.size() - 1).ends_with("<" + std::string(addr))))
    return nullptr;
  const char* name = internet_address_get_name(parsed);
  owned<InternetAddress> mailbox(internet_address_mailbox_new(name, addr_c));
  // Otherwise GMime picks the smallest charset that fits (often ISO-8859-1) for the name.
  internet_address_set_charset(mailbox.get(), "utf-8");
  return mailbox;
}

/// A validated mailbox as a GMime object, for a field that GMime encodes.
owned<InternetAddress> mailbox_object(const std::string& text) {
  if (const auto plain = as_plain_mailbox(text)) {
    const std::string name(plain->name), addr(plain->addr);
    owned<InternetAddress> mailbox(internet_address_mailbox_new(name.empty() ? nullptr : name.c_str(), addr.c_str()));
    internet_address_set_charset(mailbox.get(), "utf-8");
    return mailbox;
  }
  return parse_mailbox(text);  // validated before: never null here
}

std::string mailbox_problem(std::string_view field, const std::string& text) {
  if (is_plain_mailbox(text)) return {};
  if (auto problem = value_problem(field, text); !problem.empty()) return problem;
  owned<InternetAddress> mailbox = parse_mailbox(text);
  if (!mailbox)
    return std::string(field) + " \"" + printable(text) +
           "\" is not one mailbox (\"local@domain\" or \"Name <local@domain>\")";
  // Encoded words in the input decode to anything, line breaks included.
  const char* name = internet_address_get_name(mailbox.get());
  return name ? value_problem(std::string(field) + " display name", name) : std::string();
}

std::string addresses_problem(const message_spec& spec) {
  if (spec.from.empty()) return "from is required";
  if (auto problem = mailbox_problem("from", spec.from); !problem.empty()) return problem;
  if (!spec.reply_to.empty())
    if (auto problem = mailbox_problem("reply_to", spec.reply_to); !problem.empty()) return problem;
  for (const auto& [field, list] : {std::pair{"to", &spec.to}, std::pair{"cc", &spec.cc}})
    for (const auto& address : *list)
      if (auto problem = mailbox_problem(field, address); !problem.empty()) return problem;
  return {};
}

std::string headers_problem(const message_spec& spec) {
  for (const auto& [name, value] : spec.headers) {
    if (!is_field_name(name)) {
      const bool line_break = name.find_first_of("\r\n") != std::string::npos;
      return "header name \"" + printable(name) + "\" " +
             (line_break ? "contains a line break" : "is not a field name (printable ASCII, no colon or space)");
    }
    if (auto problem = reserved_header_problem(name); !problem.empty()) return problem;
    if (auto problem = value_problem("header \"" + name + "\"", value); !problem.empty()) return problem;
  }
  return {};
}

/// The media type of a content type, "type/subtype", when it is well formed.
bool is_media_type(std::string_view content_type) {
  const std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  const auto slash = media.find('/');
  return slash != std::string_view::npos && is_token(media.substr(0, slash)) && is_token(media.substr(slash + 1));
}

std::string attachment_problem(const attachment& a, std::size_t number) {
  const std::string what = "attachment " + std::to_string(number);
  if (auto problem = value_problem(what + " filename", a.filename); !problem.empty()) return problem;
  if (auto problem = value_problem(what + " content type", a.content_type); !problem.empty()) return problem;
  if (!a.content_type.empty() && !is_media_type(a.content_type))
    return what + " content type \"" + printable(a.content_type) + "\" is not \"type/subtype\"";
  // A multipart type would make receivers look for boundaries inside base64.
  if (iequals(trim(a.content_type).substr(0, 10), "multipart/")) return what + " cannot have a multipart content type";
  if (auto problem = value_problem(what + " content id", a.content_id); !problem.empty()) return problem;
  if (!a.content_id.empty() && !is_content_id(a.content_id))
    return what + " content id \"" + printable(a.content_id) + "\" has brackets, spaces or control characters";
  return {};
}

std::string spec_problem(const message_spec& spec) {
  if (auto problem = addresses_problem(spec); !problem.empty()) return problem;
  if (auto problem = value_problem("subject", spec.subject); !problem.empty()) return problem;
  if (!spec.message_id.empty()) {
    if (auto problem = value_problem("message_id", spec.message_id); !problem.empty()) return problem;
    if (!is_id(spec.message_id))
      return "message_id \"" + printable(spec.message_id) + "\" is not \"left@right\" without brackets or spaces";
  }
  if (auto problem = headers_problem(spec); !problem.empty()) return problem;
  for (std::size_t i = 0; i < spec.attachments.size(); ++i)
    if (auto problem = attachment_problem(spec.attachments[i], i + 1); !problem.empty()) return problem;
  return {};
}

void set_content(GMimePart* part, std::string_view data) {
  owned<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(data.data(), data.size()));
  owned<GMimeDataWrapper> wrapper(g_mime_data_wrapper_new_with_stream(stream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(part, wrapper.get());
}

// --- writing -------------------------------------------------------------------------------
// The message is written as text. GMime is called for what needs its encoders (a header value
// with non-ASCII text or no room on one line, a mailbox that is not plain ASCII, quoted-
// printable, an attachment's part): building the whole message as GMime objects cost half the
// CPU of a REST submission (docs/architecture.md, "Composing messages").

/// GMime's text for a field it formats (newlines LF): as CRLF text ending in CRLF.
std::string field_text(const char* text) {
  std::string out = submission::to_crlf(text);
  if (!out.ends_with("\r\n")) out += "\r\n";
  return out;
}

/// An unstructured field: RFC 2047 encoded words for non-ASCII text, folded, as GMime does.
std::string unstructured_field(const std::string& name, const std::string& value) {
  if (is_plain_value(name, value)) return name + ": " + value + "\r\n";
  owned<GMimeHeaderList> list(g_mime_header_list_new(nullptr));
  g_mime_header_list_append(list.get(), name.c_str(), value.c_str(), "utf-8");
  char* text = g_mime_header_list_to_string(list.get(), nullptr);
  std::string out = field_text(text);
  g_free(text);
  return out;
}

/// An address field, folded between mailboxes. Plain mailboxes are written as given; any
/// other makes GMime encode the whole field (display names as encoded words in UTF-8).
std::string address_field(const char* name, const std::vector<std::string>& mailboxes) {
  if (std::all_of(mailboxes.begin(), mailboxes.end(), [](const std::string& m) { return is_plain_mailbox(m); })) {
    std::string out = std::string(name) + ":";
    std::size_t line = out.size();
    for (std::size_t i = 0; i < mailboxes.size(); ++i) {
      const std::string_view separator = i + 1 < mailboxes.size() ? "," : "";
      if (i > 0 && line + 1 + mailboxes[i].size() + separator.size() > 78) {
        out += "\r\n";
        line = 0;
      }
      out += ' ';
      out += mailboxes[i];
      out += separator;
      line += 1 + mailboxes[i].size() + separator.size();
    }
    return out + "\r\n";
  }
  owned<InternetAddressList> list(internet_address_list_new());
  for (const auto& text : mailboxes) internet_address_list_add(list.get(), mailbox_object(text).get());
  GString* field = g_string_new(name);
  g_string_append(field, ": ");
  internet_address_list_encode(list.get(), nullptr, field);
  std::string out = field_text(field->str);
  g_string_free(field, TRUE);
  return out;
}

std::string header_fields(const message_spec& spec) {
  std::string out = address_field("From", {spec.from});
  if (!spec.to.empty()) out += address_field("To", spec.to);
  if (!spec.cc.empty()) out += address_field("Cc", spec.cc);
  if (!spec.reply_to.empty()) out += address_field("Reply-To", {spec.reply_to});
  out += unstructured_field("Subject", spec.subject);
  const auto date = spec.date == std::chrono::system_clock::time_point{} ? std::chrono::system_clock::now() : spec.date;
  out += "Date: " + submission::rfc5322_date(date) + "\r\n";
  if (!spec.message_id.empty()) out += "Message-Id: <" + spec.message_id + ">\r\n";
  for (const auto& [name, value] : spec.headers) out += unstructured_field(name, value);
  return out + "MIME-Version: 1.0\r\n";
}

/// Quoted-printable with GMime's encoder, which takes LF line endings.
std::string quoted_printable(std::string_view crlf_text) {
  std::string lf(crlf_text);
  std::erase(lf, '\r');  // in CRLF text every CR ends a line
  std::string encoded(GMIME_QP_ENCODE_LEN(lf.size()), '\0');
  int state = -1;
  guint32 save = 0;
  encoded.resize(g_mime_encoding_quoted_encode_close(reinterpret_cast<const unsigned char*>(lf.data()), lf.size(),
                                                     reinterpret_cast<unsigned char*>(encoded.data()), &state, &save));
  return submission::to_crlf(encoded);
}

std::size_t longest_line(std::string_view crlf_text) {
  std::size_t longest = 0;
  for (std::size_t pos = 0; pos < crlf_text.size();) {
    const std::size_t eol = std::min(crlf_text.find("\r\n", pos), crlf_text.size());
    longest = std::max(longest, eol - pos);
    pos = eol + 2;
  }
  return longest;
}

/// A text body in UTF-8 as given, 7bit when it fits, quoted-printable otherwise (GMime would
/// pick base64 for short or mostly non-ASCII text, which spam filters hold against a text part).
std::string text_entity(std::string_view subtype, std::string_view text) {
  const std::string crlf = submission::to_crlf(text);
  const bool ascii = std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 128; });
  // 7bit: ASCII without NUL, lines of at most 998 octets (RFC 2045 §2.7).
  const bool seven_bit = ascii && crlf.find('\0') == std::string::npos && longest_line(crlf) <= max_line;
  std::string out = "Content-Type: text/" + std::string(subtype) + "; charset=" + (ascii ? "us-ascii" : "utf-8") +
                    "\r\nContent-Transfer-Encoding: " + (seven_bit ? "7bit" : "quoted-printable") + "\r\n\r\n";
  return out + (seven_bit ? crlf : quoted_printable(crlf));
}

std::string attachment_entity(const attachment& a) {
  owned<GMimePart> part(g_mime_part_new());
  const std::string type = a.content_type.empty() ? "application/octet-stream" : a.content_type;
  owned<GMimeContentType> content_type(g_mime_content_type_parse(nullptr, type.c_str()));
  g_mime_object_set_content_type(GMIME_OBJECT(part.get()), content_type.get());
  set_content(part.get(), a.data);
  g_mime_part_set_content_encoding(part.get(), GMIME_CONTENT_ENCODING_BASE64);
  g_mime_object_set_disposition(GMIME_OBJECT(part.get()), a.inline_part ? "inline" : "attachment");
  if (!a.filename.empty()) g_mime_part_set_filename(part.get(), a.filename.c_str());
  if (!a.content_id.empty()) g_mime_object_set_content_id(GMIME_OBJECT(part.get()), a.content_id.c_str());
  return to_crlf_text(GMIME_OBJECT(part.get()));
}

/// "=-" and 24 random letters and digits, like GMime's; never one that a part contains.
std::string boundary_for(const std::vector<std::string>& parts) {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 random{std::random_device{}()};
  for (;;) {
    std::string boundary = "=-";
    for (int i = 0; i < 24; ++i) boundary += alphabet[random() % alphabet.size()];
    const std::string delimiter = "--" + boundary;
    if (std::none_of(parts.begin(), parts.end(),
                     [&](const std::string& p) { return p.find(delimiter) != std::string::npos; }))
      return boundary;
  }
}

/// `parameters` follow the boundary, each starting with "; ".
std::string multipart_entity(std::string_view subtype, const std::vector<std::string>& parts,
                             std::string_view parameters = {}) {
  const std::string boundary = boundary_for(parts);
  std::string out = "Content-Type: multipart/" + std::string(subtype) + "; boundary=\"" + boundary + "\"";
  out += std::string(parameters) + "\r\n\r\n";
  for (const auto& part : parts) out += "--" + boundary + "\r\n" + part + "\r\n";
  return out + "--" + boundary + "--\r\n";
}

bool goes_with_html(const message_spec& spec, const attachment& a) {
  return a.inline_part && !a.content_id.empty() && !spec.html.empty();
}

/// The HTML, with the images it references by cid: beside it in multipart/related.
std::string html_body(const message_spec& spec) {
  std::vector<std::string> parts;
  parts.push_back(text_entity("html", spec.html));
  for (const auto& a : spec.attachments)
    if (goes_with_html(spec, a)) parts.push_back(attachment_entity(a));
  if (parts.size() == 1) return std::move(parts.front());
  return multipart_entity("related", parts, ";\r\n\ttype=\"text/html\"");  // RFC 2387 requires the type
}

std::string body(const message_spec& spec) {
  if (spec.html.empty()) return text_entity("plain", spec.text);
  if (spec.text.empty()) return html_body(spec);
  return multipart_entity("alternative", {text_entity("plain", spec.text), html_body(spec)});
}

/// The MIME entity of the whole body: its content fields, a blank line, its content.
std::string mime_tree(const message_spec& spec) {
  std::vector<std::string> parts;
  parts.push_back(body(spec));
  for (const auto& a : spec.attachments)
    if (!goes_with_html(spec, a)) parts.push_back(attachment_entity(a));
  if (parts.size() == 1) return std::move(parts.front());
  return multipart_entity("mixed", parts);
}

/// A line too long to fold, such as a very long address, is refused rather than sent broken.
std::string output_problem(std::string_view raw) {
  if (!submission::is_crlf(raw)) return "the message has a line ending that is not CRLF";
  if (longest_line(raw) > max_line) return "the message would have a line over 998 octets (an unbreakable header value?)";
  return {};
}

}  // namespace

build_result build(const message_spec& spec) {
  ensure_gmime();
  if (auto problem = spec_problem(spec); !problem.empty()) return {.raw = {}, .error = problem};
  std::string raw = header_fields(spec) + mime_tree(spec);
  if (!raw.ends_with("\r\n")) raw += "\r\n";  // a body that does not end its last line
  if (auto problem = output_problem(raw); !problem.empty()) return {.raw = {}, .error = problem};
  return {.raw = std::move(raw), .error = {}};
}

}  // namespace postern::mime
