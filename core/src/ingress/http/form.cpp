#include "ingress/http/form.hpp"

#include "mime/gmime_support.hpp"

#include <memory>
#include <optional>

namespace postern::ingress::http {
namespace {

using mime::owned;

struct format_options_free {
  void operator()(GMimeFormatOptions* options) const { g_mime_format_options_free(options); }
};

/// A client's text as it may appear inside an error message: no control characters, bounded.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += static_cast<unsigned char>(c) < 32 || c == 127 ? '?' : c;
  return s.size() > 64 ? out + "..." : out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// One name or value of application/x-www-form-urlencoded; nothing on a bad %-escape.
std::optional<std::string> decode_component(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] != '%') {
      out += s[i];
    } else {
      const int high = i + 2 < s.size() ? hex_digit(s[i + 1]) : -1;
      const int low = high >= 0 ? hex_digit(s[i + 2]) : -1;
      if (low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    }
  }
  return out;
}

form_data failure(std::string error) {
  form_data out;
  out.error = std::move(error);
  return out;
}

/// The content type of a part as the client wrote it, or empty when it wrote none (GMime
/// reports text/plain then, the RFC 7578 default, which is wrong for most attachments).
std::string declared_content_type(GMimeObject* part) {
  const char* value = g_mime_object_get_header(part, "Content-Type");
  return value ? value : "";
}

/// The bytes of a part, transfer encoding removed. GMime parses message/* and multipart/*
/// parts into trees; those are written back out, with CRLF line endings.
std::string part_data(GMimeObject* part) {
  owned<GMimeStream> out(g_mime_stream_mem_new());
  if (GMIME_IS_PART(part)) {
    if (GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(part)))
      g_mime_data_wrapper_write_to_stream(content, out.get());
  } else {
    std::unique_ptr<GMimeFormatOptions, format_options_free> options(g_mime_format_options_new());
    g_mime_format_options_set_newline_format(options.get(), GMIME_NEWLINE_FORMAT_DOS);
    g_mime_object_write_content_to_stream(part, options.get(), out.get());
  }
  const GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

/// Adds one part to `form`; an error when the part has no name.
std::string add_part(GMimeObject* part, int number, form_data& form) {
  GMimeContentDisposition* disposition = g_mime_object_get_content_disposition(part);
  const char* name = disposition ? g_mime_content_disposition_get_parameter(disposition, "name") : nullptr;
  if (!name || !*name)
    return "part " + std::to_string(number) + " has no name (Content-Disposition: form-data; name=\"...\")";
  const char* filename = g_mime_content_disposition_get_parameter(disposition, "filename");
  if (!filename) {
    form.fields.emplace_back(name, part_data(part));
    return {};
  }
  form.files.push_back(
      {.field = name, .filename = filename, .content_type = declared_content_type(part), .data = part_data(part)});
  return {};
}

/// What is wrong with the header or body before GMime sees them: GMime makes up a boundary
/// when there is none, and takes a truncated body for a complete one.
std::string framing_problem(std::string_view content_type_header, std::string_view body) {
  if (content_type_header.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
    return "the Content-Type header contains a line break or NUL";
  owned<GMimeContentType> type(g_mime_content_type_parse(nullptr, std::string(content_type_header).c_str()));
  if (!type || !g_mime_content_type_is_type(type.get(), "multipart", "form-data"))
    return "the Content-Type \"" + printable(content_type_header) + "\" is not multipart/form-data";
  const char* parameter = g_mime_content_type_get_parameter(type.get(), "boundary");
  if (!parameter || !*parameter) return "the multipart/form-data Content-Type has no boundary parameter";
  const std::string boundary = parameter;
  if (body.find("--" + boundary) == std::string_view::npos)
    return "the body is not multipart: the boundary \"--" + printable(boundary) + "\" does not occur in it";
  if (body.find("--" + boundary + "--") == std::string_view::npos)
    return "the multipart body has no closing boundary (truncated?)";
  return {};
}

/// The body behind a header line, as one MIME entity for GMime's parser, copied once.
owned<GMimeStream> entity_stream(std::string_view content_type_header, std::string_view body) {
  const std::string header = "Content-Type: " + std::string(content_type_header) + "\r\n\r\n";
  // GMime keeps the CR of the last CRLF before a closing boundary that ends the input.
  const std::string_view tail = body.ends_with('\n') ? "" : "\r\n";
  GByteArray* bytes = g_byte_array_sized_new(static_cast<guint>(header.size() + body.size() + tail.size()));
  g_byte_array_append(bytes, reinterpret_cast<const guint8*>(header.data()), static_cast<guint>(header.size()));
  g_byte_array_append(bytes, reinterpret_cast<const guint8*>(body.data()), static_cast<guint>(body.size()));
  g_byte_array_append(bytes, reinterpret_cast<const guint8*>(tail.data()), static_cast<guint>(tail.size()));
  return owned<GMimeStream>(g_mime_stream_mem_new_with_byte_array(bytes));  // the stream owns the array
}

}  // namespace

form_data parse_urlencoded(std::string_view body) {
  form_data form;
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    const std::string_view raw_name = pair.substr(0, eq);
    auto name = decode_component(raw_name);
    if (!name) return failure("field name \"" + printable(raw_name) + "\" has a bad %-escape");
    auto value = decode_component(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value) return failure("field \"" + printable(*name) + "\" has a bad %-escape");
    form.fields.emplace_back(std::move(*name), std::move(*value));
  }
  return form;
}

form_data parse_multipart(std::string_view content_type_header, std::string_view body) {
  mime::ensure_gmime();
  if (auto problem = framing_problem(content_type_header, body); !problem.empty()) return failure(problem);
  owned<GMimeStream> stream = entity_stream(content_type_header, body);
  owned<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  owned<GMimeObject> entity(g_mime_parser_construct_part(parser.get(), nullptr));
  if (!entity || !GMIME_IS_MULTIPART(entity.get())) return failure("the body is not multipart");
  GMimeMultipart* multipart = GMIME_MULTIPART(entity.get());
  form_data form;
  for (int i = 0; i < g_mime_multipart_get_count(multipart); ++i)
    if (auto problem = add_part(g_mime_multipart_get_part(multipart, i), i + 1, form); !problem.empty())
      return failure(problem);
  return form;
}

}  // namespace postern::ingress::http
