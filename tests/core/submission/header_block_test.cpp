#include "submission/header_block.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace postern::submission {
namespace {

const std::string message =
    "Received: from a\r\n\tby b; Mon, 1 Jan 2026 00:00:00 +0000\r\n"
    "Subject: hello\r\n"
    " world\r\n"
    "To: Ann <ann@example.com>\r\n"
    "bcc: hidden@example.com\r\n"
    "\r\n"
    "Body-Line: not a header\r\n";

TEST(header_block, finds_the_end_of_the_header_section) {
  EXPECT_EQ(header_section_length(message), message.find("\r\n\r\n") + 2);
  EXPECT_EQ(header_section_length("just a body line\r\n"), 0u);
  EXPECT_EQ(header_section_length("\r\nbody"), 0u);
  EXPECT_EQ(header_section_length("Subject: only\r\n"), 15u);
}

TEST(header_block, values_are_unfolded_and_case_insensitive) {
  EXPECT_EQ(header_values(message, "subject"), std::vector<std::string>{"hello world"});
  EXPECT_EQ(header_values(message, "BCC"), std::vector<std::string>{"hidden@example.com"});
  EXPECT_TRUE(header_values(message, "Body-Line").empty()) << "the body is not searched";
  EXPECT_TRUE(has_header(message, "received"));
  EXPECT_FALSE(has_header(message, "Date"));
}

TEST(header_block, removes_every_field_of_a_name_with_its_folds) {
  const auto without = remove_header(message, "Subject");
  EXPECT_FALSE(has_header(without, "Subject"));
  EXPECT_EQ(without.find("world"), std::string::npos);
  EXPECT_TRUE(has_header(without, "To"));
  EXPECT_NE(without.find("Body-Line: not a header"), std::string::npos);
}

TEST(header_block, converts_line_endings) {
  EXPECT_EQ(to_crlf("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
  EXPECT_EQ(to_crlf("\r\r\n\n"), "\r\n\r\n\r\n");
  EXPECT_EQ(to_crlf("no line end"), "no line end");
  EXPECT_EQ(to_crlf(""), "");
  EXPECT_TRUE(is_crlf("a\r\nb\r\n"));
  EXPECT_TRUE(is_crlf("no line end"));
  EXPECT_TRUE(is_crlf(""));
  EXPECT_FALSE(is_crlf("a\nb"));
  EXPECT_FALSE(is_crlf("a\rb"));
  EXPECT_FALSE(is_crlf("\r\r\n"));
  EXPECT_FALSE(is_crlf("a\r\n\n"));
  EXPECT_FALSE(is_crlf("\n"));
  EXPECT_EQ(to_crlf("a\r"), "a\r\n");
  EXPECT_EQ(to_crlf("\n\n"), "\r\n\r\n");
  EXPECT_EQ(to_crlf("a\r\n"), "a\r\n");
  EXPECT_FALSE(is_crlf("a\r"));
  EXPECT_FALSE(is_crlf("a\r\r\n"));
}

TEST(header_block, folds_long_fields) {
  const std::string value(40, 'a');
  const auto field = format_field("Received", "from " + value + " by " + value + " id x");
  for (std::size_t pos = 0, eol; (eol = field.find("\r\n", pos)) != std::string::npos; pos = eol + 2)
    EXPECT_LE(eol - pos, 78u) << field;
  EXPECT_TRUE(field.ends_with("\r\n"));
  auto unfolded = header_values(field + "\r\n", "Received").front();
  std::replace(unfolded.begin(), unfolded.end(), '\t', ' ');
  EXPECT_EQ(unfolded, "from " + value + " by " + value + " id x");
}

TEST(header_block, formats_dates_per_rfc5322) {
  const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1795509015));
  EXPECT_EQ(rfc5322_date(t), "Tue, 24 Nov 2026 08:30:15 +0000");
}

}  // namespace
}  // namespace postern::submission
