#include "mime/note.hpp"

#include "mime/gmime_support.hpp"

#include <gtest/gtest.h>

namespace postern::mime {
namespace {

std::size_t count(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string_view::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

/// True when every LF is preceded by CR.
bool crlf_only(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) return false;
  }
  return true;
}

const std::string head = "From: Tea & Co <shop@tea.example>\r\nTo: ann@x.example\r\nSubject: Your order\r\n";

TEST(add_note, puts_the_note_before_a_plain_text_body) {
  const auto r = add_note(head + "\r\nYour order A-17\r\nis confirmed.\r\n", "Sorry for the delay.");
  ASSERT_EQ(r.error, "");
  EXPECT_NE(r.raw.find("\r\n\r\nSorry for the delay.\r\n\r\nYour order A-17\r\nis confirmed.\r\n"), std::string::npos)
      << r.raw;
  EXPECT_NE(r.raw.find("Subject: Your order\r\n"), std::string::npos);
  EXPECT_TRUE(crlf_only(r.raw));
  // The note is text in a text body: nothing escaped.
  const auto marks = add_note(head + "\r\nHi\r\n", "<b>&</b>");
  EXPECT_NE(marks.raw.find("<b>&</b>\r\n\r\nHi"), std::string::npos) << marks.raw;
}

TEST(add_note, puts_an_escaped_paragraph_at_the_start_of_an_html_body) {
  const auto r = add_note(head + "Content-Type: text/html; charset=utf-8\r\n\r\n"
                                 "<html><body class=\"mail\"><p>Your order A-17</p></body></html>\r\n",
                          "Sorry <&> \"late\"");
  ASSERT_EQ(r.error, "");
  EXPECT_NE(r.raw.find("<html><body class=\"mail\">\r\n<p>Sorry &lt;&amp;&gt; &quot;late&quot;</p>\r\n"
                       "<p>Your order A-17</p></body></html>"),
            std::string::npos)
      << r.raw;
  EXPECT_TRUE(crlf_only(r.raw));
  // Without a <body> tag, at the very start.
  const auto bare = add_note(head + "Content-Type: text/html\r\n\r\n<p>Hi</p>\r\n", "Note");
  ASSERT_EQ(bare.error, "");
  EXPECT_NE(bare.raw.find("\r\n\r\n<p>Note</p>\r\n<p>Hi</p>"), std::string::npos) << bare.raw;
}

TEST(add_note, keeps_non_ascii_text) {
  const auto r = add_note(head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                                 "Gr\xC3\xBC\xC3\x9F" "e\r\n",
                          "Entschuldigung \xE2\x80\x93 sp\xC3\xA4t");
  ASSERT_EQ(r.error, "");
  auto message = parse_message(r.raw);
  ASSERT_TRUE(message);
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  ASSERT_TRUE(GMIME_IS_TEXT_PART(body));
  char* text = g_mime_text_part_get_text(GMIME_TEXT_PART(body));
  std::string decoded = text;
  g_free(text);
  std::erase(decoded, '\r');
  EXPECT_EQ(decoded, "Entschuldigung \xE2\x80\x93 sp\xC3\xA4t\n\nGr\xC3\xBC\xC3\x9F" "e\n");
}

TEST(add_note, notes_both_alternatives_and_leaves_the_attachment_byte_identical) {
  const std::string attachment =
      "Content-Type: application/pdf; name=\"invoice.pdf\"\r\n"
      "Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n"
      "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29k\r\n"
      "ZT4+CnN0cmVhbQp4nCvkMlAwUDC1NNUzMVGwMDHUszRSKErlCtfiyuMCAJfSCHYKZW5kc3RyZWFt\r\n";
  // A text attachment is an attachment too: no note in it.
  const std::string text_attachment =
      "Content-Type: text/plain; charset=us-ascii; name=\"terms.txt\"\r\n"
      "Content-Disposition: attachment; filename=\"terms.txt\"\r\n"
      "\r\n"
      "Terms and conditions.\r\n";
  const std::string raw = head +
                          "MIME-Version: 1.0\r\n"
                          "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
                          "\r\n"
                          "--outer\r\n"
                          "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
                          "\r\n"
                          "--inner\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n"
                          "\r\n"
                          "Your order A-17.\r\n"
                          "--inner\r\n"
                          "Content-Type: text/html; charset=utf-8\r\n"
                          "\r\n"
                          "<html><body><p>Your order A-17.</p></body></html>\r\n"
                          "--inner--\r\n"
                          "--outer\r\n" +
                          attachment + "--outer\r\n" + text_attachment + "--outer--\r\n";
  const auto r = add_note(raw, "Resent at your request.");
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(count(r.raw, "Resent at your request."), 2u) << r.raw;
  EXPECT_NE(r.raw.find("Resent at your request.\r\n\r\nYour order A-17."), std::string::npos) << r.raw;
  EXPECT_NE(r.raw.find("<body>\r\n<p>Resent at your request.</p>\r\n<p>Your order A-17.</p>"), std::string::npos)
      << r.raw;
  EXPECT_NE(r.raw.find(attachment + "--outer\r\n"), std::string::npos) << r.raw;
  EXPECT_NE(r.raw.find(text_attachment + "--outer--"), std::string::npos) << r.raw;
  EXPECT_TRUE(crlf_only(r.raw));

  // And the structure is what it was.
  auto message = parse_message(r.raw);
  ASSERT_TRUE(message);
  GMimeObject* mixed = g_mime_message_get_mime_part(message.get());
  ASSERT_TRUE(GMIME_IS_MULTIPART(mixed));
  ASSERT_EQ(g_mime_multipart_get_count(GMIME_MULTIPART(mixed)), 3);
  GMimeObject* alternative = g_mime_multipart_get_part(GMIME_MULTIPART(mixed), 0);
  ASSERT_TRUE(GMIME_IS_MULTIPART(alternative));
  EXPECT_EQ(g_mime_multipart_get_count(GMIME_MULTIPART(alternative)), 2);
}

TEST(add_note, a_message_without_a_text_body_is_an_error) {
  const auto only_image = add_note(head +
                                       "MIME-Version: 1.0\r\n"
                                       "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                                       "--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                                       "iVBORw0KGgo=\r\n--b--\r\n",
                                   "Note");
  EXPECT_EQ(only_image.error, "the message has no text or HTML body to add a note to");
  EXPECT_EQ(only_image.raw, "");
  const auto only_text_attachment =
      add_note(head + "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=\"a.txt\"\r\n\r\nx\r\n",
               "Note");
  EXPECT_EQ(only_text_attachment.error, "the message has no text or HTML body to add a note to");
  const auto calendar = add_note(head + "Content-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\n", "Note");
  EXPECT_EQ(calendar.error, "the message has no text or HTML body to add a note to");
}

TEST(add_note, text_that_is_not_a_message_is_an_error) {
  EXPECT_EQ(add_note("", "Note").error, "the stored message cannot be parsed");
}

}  // namespace
}  // namespace postern::mime
