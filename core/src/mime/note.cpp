#include "mime/note.hpp"

#include "mime/gmime_support.hpp"
#include "templates/template_text.hpp"

#include <cctype>

namespace postern::mime {
namespace {

struct note_walk {
  std::string_view note;
  int changed = 0;
};

std::string with_html_note(std::string html, std::string_view note) {
  const std::string paragraph = "<p>" + templates::html_escape(note) + "</p>\n";
  // After the <body ...> tag when there is one, else at the very start.
  std::string folded = html;
  for (auto& c : folded) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto body = folded.find("<body");
  const auto end = body == std::string::npos ? std::string::npos : folded.find('>', body);
  html.insert(end == std::string::npos ? 0 : end + 1, end == std::string::npos ? paragraph : "\n" + paragraph);
  return html;
}

void add_to_part(GMimeObject*, GMimeObject* part, gpointer data) {
  auto& walk = *static_cast<note_walk*>(data);
  if (!GMIME_IS_TEXT_PART(part) || g_mime_part_is_attachment(GMIME_PART(part))) return;
  GMimeTextPart* text_part = GMIME_TEXT_PART(part);
  GMimeContentType* type = g_mime_object_get_content_type(part);
  char* current = g_mime_text_part_get_text(text_part);
  std::string text = current ? current : "";
  g_free(current);
  if (g_mime_content_type_is_type(type, "text", "plain")) {
    text = std::string(walk.note) + "\n\n" + text;
  } else if (g_mime_content_type_is_type(type, "text", "html")) {
    text = with_html_note(std::move(text), walk.note);
  } else {
    return;
  }
  g_mime_text_part_set_text(text_part, text.c_str());
  ++walk.changed;
}

}  // namespace

noted add_note(std::string_view raw, std::string_view note) {
  noted out;
  auto message = parse_message(raw);
  if (!message) {
    out.error = "the stored message cannot be parsed";
    return out;
  }
  note_walk walk{note};
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  if (body && GMIME_IS_MULTIPART(body)) {
    g_mime_multipart_foreach(GMIME_MULTIPART(body), add_to_part, &walk);
  } else if (body) {
    add_to_part(nullptr, body, &walk);
  }
  if (walk.changed == 0) {
    out.error = "the message has no text or HTML body to add a note to";
    return out;
  }
  out.raw = to_crlf_text(GMIME_OBJECT(message.get()));
  return out;
}

}  // namespace postern::mime
