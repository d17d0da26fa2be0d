#include "mime/builder.hpp"

#include "mime/gmime_support.hpp"
#include "submission/header_block.hpp"

#include <algorithm>
#include <array>
#include <cctype>
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

std::string mailbox_problem(std::string_view field, const std::string& text) {
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

/// A text body in UTF-8 as given (g_mime_text_part_set_text would convert it to the smallest
/// charset). 7bit when it already fits, quoted-printable otherwise: GMime would pick base64
/// for short or mostly non-ASCII text, which spam filters hold against a text part.
owned<GMimeObject> text_part(const char* subtype, std::string_view text) {
  owned<GMimePart> part(g_mime_part_new_with_type("text", subtype));
  set_content(part.get(), submission::to_crlf(text));
  const bool ascii = std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 128; });
  g_mime_object_set_content_type_parameter(GMIME_OBJECT(part.get()), "charset", ascii ? "us-ascii" : "utf-8");
  const bool fits =
      g_mime_part_get_best_content_encoding(part.get(), GMIME_ENCODING_CONSTRAINT_7BIT) == GMIME_CONTENT_ENCODING_7BIT;
  g_mime_part_set_content_encoding(part.get(),
                                   fits ? GMIME_CONTENT_ENCODING_7BIT : GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
  return owned<GMimeObject>(GMIME_OBJECT(part.release()));
}

owned<GMimeObject> attachment_part(const attachment& a) {
  owned<GMimePart> part(g_mime_part_new());
  const std::string type = a.content_type.empty() ? "application/octet-stream" : a.content_type;
  owned<GMimeContentType> content_type(g_mime_content_type_parse(nullptr, type.c_str()));
  g_mime_object_set_content_type(GMIME_OBJECT(part.get()), content_type.get());
  set_content(part.get(), a.data);
  g_mime_part_set_content_encoding(part.get(), GMIME_CONTENT_ENCODING_BASE64);
  g_mime_object_set_disposition(GMIME_OBJECT(part.get()), a.inline_part ? "inline" : "attachment");
  if (!a.filename.empty()) g_mime_part_set_filename(part.get(), a.filename.c_str());
  if (!a.content_id.empty()) g_mime_object_set_content_id(GMIME_OBJECT(part.get()), a.content_id.c_str());
  return owned<GMimeObject>(GMIME_OBJECT(part.release()));
}

owned<GMimeObject> multipart(const char* subtype, std::vector<owned<GMimeObject>> parts) {
  owned<GMimeMultipart> multipart(g_mime_multipart_new_with_subtype(subtype));
  for (auto& part : parts) g_mime_multipart_add(multipart.get(), part.get());
  return owned<GMimeObject>(GMIME_OBJECT(multipart.release()));
}

bool goes_with_html(const message_spec& spec, const attachment& a) {
  return a.inline_part && !a.content_id.empty() && !spec.html.empty();
}

/// The HTML, with the images it references by cid: beside it in multipart/related.
owned<GMimeObject> html_body(const message_spec& spec) {
  std::vector<owned<GMimeObject>> parts;
  parts.push_back(text_part("html", spec.html));
  for (const auto& a : spec.attachments)
    if (goes_with_html(spec, a)) parts.push_back(attachment_part(a));
  if (parts.size() == 1) return std::move(parts.front());
  owned<GMimeObject> related = multipart("related", std::move(parts));
  g_mime_object_set_content_type_parameter(related.get(), "type", "text/html");  // RFC 2387 requires it
  return related;
}

owned<GMimeObject> body(const message_spec& spec) {
  if (spec.html.empty()) return text_part("plain", spec.text);
  if (spec.text.empty()) return html_body(spec);
  std::vector<owned<GMimeObject>> alternatives;
  alternatives.push_back(text_part("plain", spec.text));
  alternatives.push_back(html_body(spec));
  return multipart("alternative", std::move(alternatives));
}

owned<GMimeObject> mime_tree(const message_spec& spec) {
  std::vector<owned<GMimeObject>> parts;
  parts.push_back(body(spec));
  for (const auto& a : spec.attachments)
    if (!goes_with_html(spec, a)) parts.push_back(attachment_part(a));
  if (parts.size() == 1) return std::move(parts.front());
  return multipart("mixed", std::move(parts));
}

void add_mailbox(GMimeMessage* message, GMimeAddressType type, const std::string& text) {
  owned<InternetAddress> mailbox = parse_mailbox(text);  // validated before: never null here
  internet_address_list_add(g_mime_message_get_addresses(message, type), mailbox.get());
}

void set_date(GMimeMessage* message, std::chrono::system_clock::time_point date) {
  if (date == std::chrono::system_clock::time_point{}) date = std::chrono::system_clock::now();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(date.time_since_epoch()).count();
  GDateTime* utc = g_date_time_new_from_unix_utc(seconds);
  g_mime_message_set_date(message, utc);
  g_date_time_unref(utc);
}

/// Every header value is handed to GMime raw, with the charset for its encoded words: GMime
/// folds and RFC 2047-encodes as it writes.
owned<GMimeMessage> compose(const message_spec& spec) {
  owned<GMimeMessage> message(g_mime_message_new(FALSE));
  add_mailbox(message.get(), GMIME_ADDRESS_TYPE_FROM, spec.from);
  for (const auto& to : spec.to) add_mailbox(message.get(), GMIME_ADDRESS_TYPE_TO, to);
  for (const auto& cc : spec.cc) add_mailbox(message.get(), GMIME_ADDRESS_TYPE_CC, cc);
  if (!spec.reply_to.empty()) add_mailbox(message.get(), GMIME_ADDRESS_TYPE_REPLY_TO, spec.reply_to);
  g_mime_message_set_subject(message.get(), spec.subject.c_str(), "utf-8");
  set_date(message.get(), spec.date);
  if (!spec.message_id.empty()) g_mime_message_set_message_id(message.get(), spec.message_id.c_str());
  for (const auto& [name, value] : spec.headers)
    g_mime_object_append_header(GMIME_OBJECT(message.get()), name.c_str(), value.c_str(), "utf-8");
  g_mime_message_set_mime_part(message.get(), mime_tree(spec).get());
  return message;
}

/// GMime folds and encodes, but cannot split what has no place to fold, such as a very long
/// address; such a message is refused rather than sent broken.
std::string output_problem(std::string_view raw) {
  if (!submission::is_crlf(raw)) return "the message has a line ending that is not CRLF";
  for (std::size_t pos = 0; pos < raw.size();) {
    const std::size_t eol = std::min(raw.find("\r\n", pos), raw.size());
    if (eol - pos > max_line) return "the message would have a line over 998 octets (an unbreakable header value?)";
    pos = eol + 2;
  }
  return {};
}

}  // namespace

build_result build(const message_spec& spec) {
  ensure_gmime();
  if (auto problem = spec_problem(spec); !problem.empty()) return {.raw = {}, .error = problem};
  owned<GMimeMessage> message = compose(spec);
  std::string raw = to_crlf_text(GMIME_OBJECT(message.get()));
  if (auto problem = output_problem(raw); !problem.empty()) return {.raw = {}, .error = problem};
  return {.raw = std::move(raw), .error = {}};
}

}  // namespace postern::mime
