#include "mime/gmime_support.hpp"

#include <mutex>

namespace postern::mime {

void ensure_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

std::string to_crlf_text(GMimeObject* object) {
  GMimeFormatOptions* options = g_mime_format_options_new();
  g_mime_format_options_set_newline_format(options, GMIME_NEWLINE_FORMAT_DOS);
  owned<GMimeStream> stream(g_mime_stream_mem_new());
  g_mime_object_write_to_stream(object, options, stream.get());
  g_mime_format_options_free(options);
  const GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

owned<GMimeMessage> parse_message(std::string_view raw) {
  ensure_gmime();
  // The stream copies the text: GMime may keep references into it while parsing.
  owned<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(raw.data(), raw.size()));
  owned<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  return owned<GMimeMessage>(g_mime_parser_construct_message(parser.get(), nullptr));
}

}  // namespace postern::mime
