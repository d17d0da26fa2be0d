#include "ingress/smtp/data_reader.hpp"

#include <gtest/gtest.h>

namespace postern::ingress::smtp {
namespace {

using problem = data_reader::problem;

/// Feeds `input` in pieces of `step` octets; returns the reader and what it left unconsumed.
std::pair<data_reader, std::string> read(std::string_view input, std::size_t step = 1000000,
                                         line_ending_rule rule = line_ending_rule::normalise,
                                         std::size_t max = 1 << 20) {
  data_reader r(data_reader::mode::data, max, rule);
  std::size_t pos = 0;
  while (pos < input.size() && !r.finished()) {
    const auto piece = input.substr(pos, std::min(step, input.size() - pos));
    const auto used = r.feed(piece);
    pos += used;
    if (used < piece.size()) break;
  }
  return {std::move(r), std::string(input.substr(pos))};
}

TEST(data_reader, ends_only_at_crlf_dot_crlf_and_leaves_what_follows) {
  for (std::size_t step : {1, 2, 3, 7, 1000}) {
    auto [r, rest] = read("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", step);
    ASSERT_TRUE(r.finished()) << step;
    EXPECT_EQ(r.error(), problem::none);
    EXPECT_EQ(r.take(), "Subject: x\r\n\r\nbody\r\n") << step;
    EXPECT_EQ(rest, "QUIT\r\n") << step;
  }
}

TEST(data_reader, an_empty_message_is_just_the_dot) {
  auto [r, rest] = read(".\r\n");
  EXPECT_TRUE(r.finished());
  EXPECT_EQ(r.take(), "");
}

TEST(data_reader, undoes_dot_stuffing) {
  auto [r, rest] = read("..leading dot\r\n...two\r\n.\r\n");
  EXPECT_EQ(r.take(), ".leading dot\r\n..two\r\n");
}

TEST(data_reader, smuggling_sequences_are_not_the_end) {
  // <LF>.<LF>, <LF>.<CRLF> and <CRLF>.<LF> are content, never the end of the message.
  for (const char* sneaky : {"a\n.\nMAIL FROM:<x@y>\r\n", "a\n.\r\nMAIL FROM:<x@y>\r\n", "a\r\n.\nMAIL FROM:<x@y>\r\n"}) {
    auto [r, rest] = read(std::string(sneaky) + ".\r\n");
    ASSERT_TRUE(r.finished()) << sneaky;
    EXPECT_EQ(rest, "") << sneaky;
    const auto text = r.take();
    EXPECT_NE(text.find("MAIL FROM:<x@y>\r\n"), std::string::npos) << "the smuggled command stays inside the message";
    EXPECT_EQ(text.find('\n', 0) != std::string::npos && text.find("\r\n") == std::string::npos, false);
  }
}

TEST(data_reader, normalises_bare_line_endings_to_crlf) {
  auto [r, rest] = read("one\ntwo\rthree\r\n.\r\n");
  EXPECT_EQ(r.error(), problem::none);
  EXPECT_EQ(r.take(), "one\r\ntwo\r\nthree\r\n");
}

TEST(data_reader, or_refuses_them_when_told_to) {
  auto [r, rest] = read("one\ntwo\r\n.\r\nNOOP\r\n", 4, line_ending_rule::reject);
  EXPECT_TRUE(r.finished());
  EXPECT_EQ(r.error(), problem::bare_line_ending);
  EXPECT_EQ(rest, "NOOP\r\n") << "the whole message is consumed, the session stays in step";
}

TEST(data_reader, lines_over_1000_octets_are_refused) {
  const std::string ok(998, 'a');
  auto [fine, rest1] = read(ok + "\r\n.\r\n");
  EXPECT_EQ(fine.error(), problem::none);
  auto [r, rest2] = read(std::string(999, 'a') + "\r\n.\r\n", 100);
  EXPECT_TRUE(r.finished());
  EXPECT_EQ(r.error(), problem::line_too_long);
}

TEST(data_reader, size_limit_keeps_reading_but_stops_storing) {
  std::string big;
  for (int i = 0; i < 100; ++i) big += std::string(70, 'x') + "\r\n";
  auto [r, rest] = read(big + ".\r\nQUIT\r\n", 512, line_ending_rule::normalise, 1000);
  EXPECT_TRUE(r.finished());
  EXPECT_EQ(r.error(), problem::too_big);
  EXPECT_EQ(rest, "QUIT\r\n");
}

TEST(data_reader, bdat_chunks_are_taken_as_they_are) {
  data_reader r(data_reader::mode::bdat, 1 << 20, line_ending_rule::normalise);
  const std::string first = "Subject: x\r\n\r\n.not stuffed\r\n", second = ".\r\nlast line without CRLF";
  EXPECT_EQ(r.feed(first), first.size());
  EXPECT_EQ(r.feed(second), second.size());
  EXPECT_FALSE(r.finished()) << "BDAT has no end marker";
  r.finish_chunks();
  EXPECT_EQ(r.take(), "Subject: x\r\n\r\n.not stuffed\r\n.\r\nlast line without CRLF\r\n");
}

}  // namespace
}  // namespace postern::ingress::smtp
