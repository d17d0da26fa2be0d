#include "mime/builder.hpp"

#include "mime/gmime_support.hpp"
#include "submission/header_block.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <random>

namespace postern::mime {
namespace {

/// Reads the builder's output back with GMime's parser, the way a receiver would.
owned<GMimeMessage> parse(const std::string& raw) {
  return parse_message(raw);
}

std::string mime_type(GMimeObject* object) {
  char* type = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(object));
  std::string out = type;
  g_free(type);
  return out;
}

/// A leaf part's content with the transfer encoding removed.
std::string decoded(GMimeObject* part) {
  owned<GMimeStream> out(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(GMIME_PART(part)), out.get());
  const GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

GMimeObject* child(GMimeObject* multipart, int index) {
  return g_mime_multipart_get_part(GMIME_MULTIPART(multipart), index);
}

std::size_t longest_line(std::string_view raw) {
  std::size_t longest = 0;
  for (std::size_t pos = 0; pos < raw.size();) {
    const std::size_t eol = std::min(raw.find("\r\n", pos), raw.size());
    longest = std::max(longest, eol - pos);
    pos = eol + 2;
  }
  return longest;
}

message_spec simple() {
  message_spec spec;
  spec.from = "Sender <sender@example.com>";
  spec.to = {"rcpt@example.org", "Second <second@example.org>"};
  spec.subject = "Hello";
  spec.text = "Plain body\r\n";
  return spec;
}

attachment file(std::string filename, std::string content_type, std::string data) {
  attachment a;
  a.filename = std::move(filename);
  a.content_type = std::move(content_type);
  a.data = std::move(data);
  return a;
}

std::string all_bytes() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  return bytes;
}

TEST(builder, text_only_is_a_single_text_part) {
  auto spec = simple();
  spec.cc = {"cc@example.net"};
  spec.reply_to = "replies@example.com";
  spec.message_id = "abc.123@example.com";
  spec.date = std::chrono::system_clock::from_time_t(1700000000);
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  EXPECT_NE(result.raw.find("From: Sender <sender@example.com>\r\n"), std::string::npos) << result.raw;
  EXPECT_NE(result.raw.find("To: rcpt@example.org, Second <second@example.org>\r\n"), std::string::npos);
  EXPECT_NE(result.raw.find("Cc: cc@example.net\r\n"), std::string::npos);
  EXPECT_NE(result.raw.find("Reply-To: replies@example.com\r\n"), std::string::npos);
  EXPECT_NE(result.raw.find("Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"), std::string::npos);
  EXPECT_NE(result.raw.find("Message-Id: <abc.123@example.com>\r\n"), std::string::npos);
  EXPECT_NE(result.raw.find("MIME-Version: 1.0\r\n"), std::string::npos);
  EXPECT_EQ(result.raw.find("Bcc"), std::string::npos);

  const auto message = parse(result.raw);
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  EXPECT_EQ(mime_type(body), "text/plain");
  EXPECT_STREQ(g_mime_object_get_content_type_parameter(body, "charset"), "us-ascii");
  EXPECT_EQ(g_mime_part_get_content_encoding(GMIME_PART(body)), GMIME_CONTENT_ENCODING_7BIT);
  EXPECT_EQ(decoded(body), "Plain body\r\n");
}

TEST(builder, header_values_read_back_as_given_whether_written_plain_or_encoded) {
  const std::vector<std::string> subjects = {
      "Hello",
      "",
      "Two  spaces inside",
      "A subject line in plain ASCII that is longer than one folded header line may be, so it folds",
      "tab\there",
      "Grüße"};
  for (const auto& subject : subjects) {
    auto spec = simple();
    spec.subject = subject;
    spec.headers = {{"X-Same", subject}};
    const auto result = build(spec);
    ASSERT_EQ(result.error, "") << subject;
    EXPECT_LE(longest_line(result.raw), 78u) << result.raw;
    const auto message = parse(result.raw);
    EXPECT_EQ(g_mime_message_get_subject(message.get()), subject) << result.raw;
    EXPECT_EQ(g_mime_object_get_header(GMIME_OBJECT(message.get()), "X-Same"), subject) << result.raw;
  }
}

TEST(builder, an_encoded_word_given_in_a_value_is_read_as_the_text_it_encodes) {
  auto spec = simple();
  spec.subject = "Pre-encoded =?utf-8?q?Gr=C3=BC=C3=9Fe?=";
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  EXPECT_STREQ(g_mime_message_get_subject(parse(result.raw).get()), "Pre-encoded Grüße");
}

TEST(builder, mailboxes_read_back_as_given_whether_written_plain_or_encoded) {
  struct mailbox {
    std::string text, name, addr;
  };
  const std::vector<mailbox> cases = {{"plain@example.org", "", "plain@example.org"},
                                      {"Plain Name <plain@example.org>", "Plain Name", "plain@example.org"},
                                      {"J. Smith <j@example.org>", "J. Smith", "j@example.org"},
                                      {"\"Doe, Jane\" <jane@example.org>", "Doe, Jane", "jane@example.org"},
                                      {"first.last+tag@example.org", "", "first.last+tag@example.org"}};
  auto spec = simple();
  spec.to.clear();
  for (const auto& c : cases) spec.to.push_back(c.text);
  for (int i = 0; i < 6; ++i) spec.to.push_back("recipient" + std::to_string(i) + "@example.org");
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  EXPECT_LE(longest_line(result.raw), 78u) << result.raw;
  const auto message = parse(result.raw);
  InternetAddressList* to = g_mime_message_get_to(message.get());
  ASSERT_EQ(internet_address_list_length(to), static_cast<int>(spec.to.size())) << result.raw;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    InternetAddress* address = internet_address_list_get_address(to, static_cast<int>(i));
    const char* name = internet_address_get_name(address);
    EXPECT_EQ(name ? name : "", cases[i].name) << cases[i].text;
    EXPECT_STREQ(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(address)), cases[i].addr.c_str());
  }
}

TEST(builder, a_list_that_mixes_plain_and_encoded_mailboxes_keeps_every_one) {
  auto spec = simple();
  spec.to = {"Jörg <j@example.de>", "a@xn--bcher-kva.example", "Plain Name <p@example.org>"};
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  EXPECT_NE(result.raw.find("a@xn--bcher-kva.example"), std::string::npos) << result.raw;
  const auto message = parse(result.raw);
  InternetAddressList* to = g_mime_message_get_to(message.get());
  ASSERT_EQ(internet_address_list_length(to), 3) << result.raw;
  EXPECT_STREQ(internet_address_get_name(internet_address_list_get_address(to, 0)), "Jörg");
  EXPECT_STREQ(internet_address_get_name(internet_address_list_get_address(to, 2)), "Plain Name");
}

TEST(builder, a_body_without_a_final_line_break_still_ends_the_message_with_crlf) {
  for (const std::string text : {"no break at the end", "ümlaut, no break at the end"}) {
    auto spec = simple();
    spec.text = text;
    const auto result = build(spec);
    ASSERT_EQ(result.error, "");
    EXPECT_TRUE(result.raw.ends_with("\r\n")) << result.raw;
    EXPECT_EQ(decoded(g_mime_message_get_mime_part(parse(result.raw).get())).substr(0, text.size()), text);
  }
}

TEST(builder, nul_bytes_in_a_text_body_are_quoted_printable) {
  auto spec = simple();
  spec.text = std::string("a\0b\r\n", 5);
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  EXPECT_EQ(result.raw.find('\0'), std::string::npos);
  const auto message = parse(result.raw);
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  EXPECT_EQ(g_mime_part_get_content_encoding(GMIME_PART(body)), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
}

TEST(builder, neither_text_nor_html_gives_an_empty_text_body) {
  auto spec = simple();
  spec.text.clear();
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  const auto message = parse(result.raw);
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  EXPECT_EQ(mime_type(body), "text/plain");
  EXPECT_EQ(decoded(body), "");
}

TEST(builder, text_and_html_make_multipart_alternative) {
  auto spec = simple();
  spec.html = "<p>Hello</p>";
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  const auto message = parse(result.raw);
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  ASSERT_EQ(mime_type(body), "multipart/alternative");
  ASSERT_EQ(g_mime_multipart_get_count(GMIME_MULTIPART(body)), 2);
  EXPECT_EQ(mime_type(child(body, 0)), "text/plain") << "the preferred alternative comes last";
  EXPECT_EQ(mime_type(child(body, 1)), "text/html");
  EXPECT_EQ(decoded(child(body, 1)), "<p>Hello</p>");
}

TEST(builder, html_only_is_a_single_html_part) {
  auto spec = simple();
  spec.text.clear();
  spec.html = "<p>Only</p>";
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  EXPECT_EQ(mime_type(g_mime_message_get_mime_part(parse(result.raw).get())), "text/html");
}

TEST(builder, attachments_are_base64_in_multipart_mixed) {
  auto spec = simple();
  spec.attachments = {file("all.bin", "application/octet-stream", all_bytes()),
                      file("notes.txt", "text/plain; charset=utf-8", "n\n"), file("", "", "x")};
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  const auto message = parse(result.raw);
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  ASSERT_EQ(mime_type(body), "multipart/mixed");
  ASSERT_EQ(g_mime_multipart_get_count(GMIME_MULTIPART(body)), 4);
  EXPECT_EQ(mime_type(child(body, 0)), "text/plain");
  GMimeObject* binary = child(body, 1);
  EXPECT_EQ(g_mime_part_get_content_encoding(GMIME_PART(binary)), GMIME_CONTENT_ENCODING_BASE64);
  EXPECT_STREQ(g_mime_part_get_filename(GMIME_PART(binary)), "all.bin");
  EXPECT_STREQ(g_mime_object_get_disposition(binary), "attachment");
  EXPECT_EQ(decoded(binary), all_bytes());
  EXPECT_EQ(g_mime_part_get_content_encoding(GMIME_PART(child(body, 2))), GMIME_CONTENT_ENCODING_BASE64);
  EXPECT_STREQ(g_mime_object_get_content_type_parameter(child(body, 2), "charset"), "utf-8");
  EXPECT_EQ(decoded(child(body, 2)), "n\n") << "attachment data is never converted";
  EXPECT_EQ(mime_type(child(body, 3)), "application/octet-stream");
}

TEST(builder, inline_parts_go_in_multipart_related_with_the_html) {
  auto spec = simple();
  spec.html = "<img src=\"cid:logo@example.com\">";
  spec.attachments = {file("logo.png", "image/png", "PNG"), file("report.pdf", "application/pdf", "PDF")};
  spec.attachments[0].inline_part = true;
  spec.attachments[0].content_id = "logo@example.com";
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  const auto message = parse(result.raw);
  GMimeObject* mixed = g_mime_message_get_mime_part(message.get());
  ASSERT_EQ(mime_type(mixed), "multipart/mixed");
  ASSERT_EQ(g_mime_multipart_get_count(GMIME_MULTIPART(mixed)), 2);
  GMimeObject* alternative = child(mixed, 0);
  ASSERT_EQ(mime_type(alternative), "multipart/alternative");
  GMimeObject* related = child(alternative, 1);
  ASSERT_EQ(mime_type(related), "multipart/related");
  EXPECT_STREQ(g_mime_object_get_content_type_parameter(related, "type"), "text/html");
  ASSERT_EQ(g_mime_multipart_get_count(GMIME_MULTIPART(related)), 2);
  EXPECT_EQ(mime_type(child(related, 0)), "text/html");
  GMimeObject* logo = child(related, 1);
  EXPECT_STREQ(g_mime_object_get_content_id(logo), "logo@example.com");
  EXPECT_STREQ(g_mime_object_get_disposition(logo), "inline");
  EXPECT_EQ(decoded(logo), "PNG");
  EXPECT_EQ(mime_type(child(mixed, 1)), "application/pdf");
}

TEST(builder, utf8_header_values_become_encoded_words_that_decode_back) {
  auto spec = simple();
  spec.from = "Jörg Müller <joerg@example.com>";
  spec.to = {"\"Zoë, Δ\" <zoe@example.org>"};
  spec.subject = "Grüße aus Köln – schöne Tage";
  spec.headers = {{"X-Note", "naïve café"}};
  spec.attachments = {file("Übersicht.pdf", "application/pdf", "%PDF")};
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  EXPECT_NE(result.raw.find("Subject: =?UTF-8?"), std::string::npos) << result.raw;
  EXPECT_NE(result.raw.find("From: =?UTF-8?"), std::string::npos) << result.raw;
  EXPECT_NE(result.raw.find("X-Note: =?UTF-8?"), std::string::npos) << result.raw;
  const auto raw_headers = result.raw.substr(0, result.raw.find("\r\n\r\n"));
  EXPECT_TRUE(std::all_of(raw_headers.begin(), raw_headers.end(), [](char c) { return c > 0 && c < 127; }));

  const auto message = parse(result.raw);
  EXPECT_STREQ(g_mime_message_get_subject(message.get()), "Grüße aus Köln – schöne Tage");
  InternetAddress* from = internet_address_list_get_address(g_mime_message_get_from(message.get()), 0);
  EXPECT_STREQ(internet_address_get_name(from), "Jörg Müller");
  InternetAddress* to = internet_address_list_get_address(g_mime_message_get_to(message.get()), 0);
  EXPECT_STREQ(internet_address_get_name(to), "Zoë, Δ");
  EXPECT_STREQ(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(to)), "zoe@example.org");
  EXPECT_STREQ(g_mime_object_get_header(GMIME_OBJECT(message.get()), "X-Note"), "naïve café");
  GMimeObject* pdf = child(g_mime_message_get_mime_part(message.get()), 1);
  EXPECT_STREQ(g_mime_part_get_filename(GMIME_PART(pdf)), "Übersicht.pdf");
}

TEST(builder, utf8_body_is_declared_and_round_trips) {
  auto spec = simple();
  spec.text = "Grüße\r\n";
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  const auto message = parse(result.raw);
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  EXPECT_STREQ(g_mime_object_get_content_type_parameter(body, "charset"), "utf-8");
  EXPECT_EQ(g_mime_part_get_content_encoding(GMIME_PART(body)), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
  EXPECT_EQ(decoded(body), "Grüße\r\n");
}

TEST(builder, long_lines_are_encoded_so_no_line_exceeds_998_octets) {
  auto spec = simple();
  spec.text = std::string(5000, 'a') + "\r\n";
  spec.html = "<p>" + std::string(5000, 'b') + "</p>";
  spec.headers = {{"X-Long", std::string(2000, 'c')}, {"X-Words", std::string(3000, 'w').replace(100, 1, " ")}};
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  EXPECT_LE(longest_line(result.raw), 998u);
  const auto message = parse(result.raw);
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  EXPECT_EQ(g_mime_part_get_content_encoding(GMIME_PART(child(body, 0))), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
  EXPECT_EQ(decoded(child(body, 0)), spec.text);
  EXPECT_EQ(decoded(child(body, 1)), spec.html);
  EXPECT_EQ(g_mime_object_get_header(GMIME_OBJECT(message.get()), "X-Long"), spec.headers[0].second);
}

TEST(builder, every_line_ends_in_crlf) {
  auto spec = simple();
  spec.text = "unix\nlines\nand a bare\rcr\n";
  spec.html = "<p>\n</p>\n";
  spec.attachments = {file("a.txt", "text/plain", "x\ny\n")};
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  EXPECT_TRUE(submission::is_crlf(result.raw)) << result.raw;
  EXPECT_EQ(result.raw.find("\r\r"), std::string::npos);
  const auto message = parse(result.raw);
  GMimeObject* alternative = child(g_mime_message_get_mime_part(message.get()), 0);
  EXPECT_EQ(decoded(child(alternative, 0)), "unix\r\nlines\r\nand a bare\r\ncr\r\n");
}

TEST(builder, extra_headers_keep_their_order) {
  auto spec = simple();
  spec.headers = {{"X-A", "1"}, {"List-Unsubscribe", "<mailto:u@example.com>"}, {"X-A", "2"}};
  const auto result = build(spec);
  ASSERT_EQ(result.error, "");
  const auto a1 = result.raw.find("X-A: 1\r\n");
  const auto list = result.raw.find("List-Unsubscribe: <mailto:u@example.com>\r\n");
  const auto a2 = result.raw.find("X-A: 2\r\n");
  ASSERT_NE(a2, std::string::npos) << result.raw;
  EXPECT_LT(a1, list);
  EXPECT_LT(list, a2);
}

struct refusal {
  const char* what;
  std::function<void(message_spec&)> change;
  const char* error;
};

void expect_refusals(const std::vector<refusal>& cases) {
  for (const auto& c : cases) {
    auto spec = simple();
    spec.html = "<p>x</p>";
    c.change(spec);
    const auto result = build(spec);
    EXPECT_EQ(result.error, c.error) << c.what;
    EXPECT_EQ(result.raw, "") << c.what;
  }
}

TEST(builder, refuses_every_header_injection) {
  using s = message_spec&;
  const attachment text_file = file("f.txt", "text/plain", "x");
  expect_refusals({
      {"from", [](s m) { m.from = "a@example.com\r\nBcc: victim@example.net"; }, "from contains a line break"},
      {"to", [](s m) { m.to.push_back("b@example.com\nBcc: v@example.net"); }, "to contains a line break"},
      {"cc", [](s m) { m.cc = {"c@example.com\r"}; }, "cc contains a line break"},
      {"reply_to", [](s m) { m.reply_to = "r@example.com\r\nX: y"; }, "reply_to contains a line break"},
      {"subject", [](s m) { m.subject = "Hi\r\nBcc: v@example.net"; }, "subject contains a line break"},
      {"subject lf", [](s m) { m.subject = "Hi\nthere"; }, "subject contains a line break"},
      {"nul", [](s m) { m.subject = std::string("Hi\0there", 8); }, "subject contains a NUL byte"},
      {"message_id", [](s m) { m.message_id = "a@b\r\nX: y"; }, "message_id contains a line break"},
      {"filename",
       [text_file](s m) {
         m.attachments = {text_file, text_file};
         m.attachments[1].filename = "a\r\nContent-Type: x/y";
       },
       "attachment 2 filename contains a line break"},
      {"content type",
       [text_file](s m) {
         m.attachments = {text_file};
         m.attachments[0].content_type = "text/plain\r\nX: y";
       },
       "attachment 1 content type contains a line break"},
      {"content id",
       [text_file](s m) {
         m.attachments = {text_file};
         m.attachments[0].content_id = "a@b\nX: y";
       },
       "attachment 1 content id contains a line break"},
      {"encoded line break in a display name",
       [](s m) { m.from = "=?utf-8?q?A=0D=0AX-Injected=3A_1?= <a@example.com>"; },
       "from display name contains a line break"},
  });
}

TEST(builder, refuses_extra_header_fields_that_could_inject) {
  struct bad_header {
    std::string name, value, error;
  };
  const std::string not_a_name = "\" is not a field name (printable ASCII, no colon or space)";
  const std::vector<bad_header> cases = {
      {"X-Foo", "v\r\nBcc: v@example.net", "header \"X-Foo\" contains a line break"},
      {"X-Foo", "v\r\n continued", "header \"X-Foo\" contains a line break"},
      {"X-Foo", "v\nw", "header \"X-Foo\" contains a line break"},
      {"X-Foo", std::string("v\0w", 3), "header \"X-Foo\" contains a NUL byte"},
      {"X-Foo\r\nBcc", "v", "header name \"X-Foo??Bcc\" contains a line break"},
      {"Bcc: v@example.net\r\nX", "v", "header name \"Bcc: v@example.net??X\" contains a line break"},
      {"X Foo", "v", "header name \"X Foo" + not_a_name},
      {"X:Foo", "v", "header name \"X:Foo" + not_a_name},
      {"", "v", "header name \"" + not_a_name},
      {"X-\xC3\x9C", "v", "header name \"X-\xC3\x9C" + not_a_name},
  };
  for (const auto& c : cases) {
    auto spec = simple();
    spec.headers = {{"X-Fine", "ok"}, {c.name, c.value}};
    const auto result = build(spec);
    EXPECT_EQ(result.error, c.error) << c.name;
    EXPECT_EQ(result.raw, "");
  }
}

TEST(builder, refuses_extra_headers_that_replace_structural_or_own_fields) {
  using s = message_spec&;
  expect_refusals({
      {"content-type",
       [](s m) {
         m.headers = {{"Content-Type", "text/html"}};
       },
       "header \"Content-Type\" describes the MIME structure the builder writes"},
      {"cte, any case",
       [](s m) {
         m.headers = {{"content-transfer-encoding", "8bit"}};
       },
       "header \"content-transfer-encoding\" describes the MIME structure the builder writes"},
      {"mime-version",
       [](s m) {
         m.headers = {{"MIME-Version", "1.0"}};
       },
       "header \"MIME-Version\" describes the MIME structure the builder writes"},
      {"bcc",
       [](s m) {
         m.headers = {{"Bcc", "hidden@example.net"}};
       },
       "header \"Bcc\" must be given as its own field, not as an extra header"},
      {"to",
       [](s m) {
         m.headers = {{"TO", "other@example.net"}};
       },
       "header \"TO\" must be given as its own field, not as an extra header"},
  });
}

TEST(builder, refuses_what_is_not_one_mailbox) {
  using s = message_spec&;
  const std::string usage = " is not one mailbox (\"local@domain\" or \"Name <local@domain>\")";
  expect_refusals({
      {"no from", [](s m) { m.from.clear(); }, "from is required"},
      {"no domain", [](s m) { m.from = "sender"; }, ("from \"sender\"" + usage).c_str()},
  });
  for (const std::string bad :
       {"not an address", "a@example.com, b@example.com", "a@example.com b@example.com", "a@b@example.com",
        "Name <a@example.com> junk", "@example.com", "a@", "Name <>", "a@example.com;", "Group: a@example.com;", " "}) {
    auto spec = simple();
    spec.to = {"ok@example.com", bad};
    EXPECT_EQ(build(spec).error, "to \"" + bad + "\"" + usage) << bad;
    spec = simple();
    spec.reply_to = bad;
    EXPECT_EQ(build(spec).error, "reply_to \"" + bad + "\"" + usage) << bad;
  }
}

TEST(builder, refuses_bad_attachment_metadata_and_message_ids) {
  using s = message_spec&;
  const attachment text_file = file("f.txt", "text/plain", "x");
  expect_refusals({
      {"content type",
       [text_file](s m) {
         m.attachments = {text_file};
         m.attachments[0].content_type = "pdf";
       },
       "attachment 1 content type \"pdf\" is not \"type/subtype\""},
      {"multipart",
       [text_file](s m) {
         m.attachments = {text_file};
         m.attachments[0].content_type = "multipart/mixed; boundary=x";
       },
       "attachment 1 cannot have a multipart content type"},
      {"content id",
       [text_file](s m) {
         m.attachments = {text_file};
         m.attachments[0].content_id = "<a@b>";
       },
       "attachment 1 content id \"<a@b>\" has brackets, spaces or control characters"},
      {"message id", [](s m) { m.message_id = "no at sign"; },
       "message_id \"no at sign\" is not \"left@right\" without brackets or spaces"},
  });
}

TEST(builder, an_unfoldable_line_is_refused_rather_than_sent_broken) {
  auto spec = simple();
  spec.to = {std::string(1200, 'l') + "@example.com"};
  EXPECT_EQ(build(spec).error, "the message would have a line over 998 octets (an unbreakable header value?)");
}

std::string random_bytes(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {"\r\n",
                                                  "\n",
                                                  "\r",
                                                  "@",
                                                  "<",
                                                  ">",
                                                  ",",
                                                  ":",
                                                  ";",
                                                  "\"",
                                                  " ",
                                                  "=?utf-8?q?",
                                                  "=0D=0A",
                                                  "?=",
                                                  "ü",
                                                  "a@example.com",
                                                  std::string(1, '\0')};
  std::string out;
  const int length = std::uniform_int_distribution<int>(0, 40)(rng);
  for (int i = 0; i < length; ++i) {
    if (rng() % 3 == 0)
      out += pieces[rng() % pieces.size()];
    else
      out += static_cast<char>(rng() % 256);
  }
  return out;
}

TEST(builder, survives_random_input) {
  std::mt19937 rng(20260101);
  int built = 0;
  for (int i = 0; i < 2000; ++i) {
    message_spec spec;
    spec.from = rng() % 4 ? "a@example.com" : random_bytes(rng);
    spec.to = {rng() % 4 ? "b@example.com" : random_bytes(rng)};
    if (rng() % 2) spec.cc = {random_bytes(rng)};
    spec.subject = random_bytes(rng);
    spec.text = random_bytes(rng);
    if (rng() % 2) spec.html = random_bytes(rng);
    spec.headers = {{rng() % 2 ? "X-R" : random_bytes(rng), random_bytes(rng)}};
    if (rng() % 2)
      spec.attachments = {{random_bytes(rng), random_bytes(rng), random_bytes(rng), rng() % 2 == 0, random_bytes(rng)}};
    const auto result = build(spec);
    if (result.error.empty()) {
      ++built;
      EXPECT_TRUE(submission::is_crlf(result.raw));
      EXPECT_LE(longest_line(result.raw), 998u);
    }
  }
  EXPECT_GT(built, 0);
}

}  // namespace
}  // namespace postern::mime
