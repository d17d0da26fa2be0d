#include "ingress/smtp/command.hpp"

#include <postern/xtext.hpp>

#include <gtest/gtest.h>

namespace postern::ingress::smtp {
namespace {

TEST(command, parses_mail_with_parameters) {
  auto r = parse_command("mail FROM:<Ann@Example.com> SIZE=1000 BODY=8BITMIME ret=hdrs ENVID=a+2Bb SMTPUTF8");
  ASSERT_TRUE(r.cmd) << r.error.text;
  EXPECT_EQ(r.cmd->what, verb::mail);
  EXPECT_EQ(r.cmd->address, "Ann@Example.com");
  EXPECT_EQ(r.cmd->param("SIZE"), "1000");
  EXPECT_EQ(r.cmd->param("RET"), "hdrs");
  EXPECT_EQ(r.cmd->param("SMTPUTF8"), "");
  EXPECT_FALSE(r.cmd->param("AUTH"));
}

TEST(command, accepts_the_null_path_a_space_after_the_colon_and_source_routes) {
  EXPECT_EQ(parse_command("MAIL FROM:<>").cmd->address, "");
  EXPECT_EQ(parse_command("MAIL FROM: <a@b.example>").cmd->address, "a@b.example");
  EXPECT_EQ(parse_command("RCPT TO:<@relay.example,@other.example:user@dest.example>").cmd->address, "user@dest.example");
  EXPECT_EQ(parse_command("RCPT TO:<\"odd > name\"@example.com>").cmd->address, "\"odd > name\"@example.com");
}

TEST(command, refuses_malformed_lines_with_the_right_codes) {
  struct bad {
    const char* line;
    int code;
  };
  for (const auto& b : {bad{"FROB", 500}, bad{"", 500}, bad{"TURN", 502}, bad{"ETRN example.com", 502},
                        bad{"EHLO", 501}, bad{"MAIL <a@b>", 501}, bad{"MAIL FROM:a@b", 501},
                        bad{"MAIL FROM:<a@b", 501}, bad{"RCPT TO:<a@b>junk", 501}, bad{"DATA now", 501},
                        bad{"BDAT", 501}, bad{"AUTH", 501}, bad{"RCPT TO:<@bad-route>", 501}}) {
    auto r = parse_command(b.line);
    EXPECT_FALSE(r.cmd) << b.line;
    EXPECT_EQ(r.error.code, b.code) << b.line;
    EXPECT_FALSE(r.error.enhanced.empty()) << b.line;
  }
  EXPECT_EQ(parse_command(std::string("NOOP\0x", 6)).error.code, 500) << "NUL bytes are refused";
}

TEST(command, verbs_are_case_insensitive) {
  EXPECT_EQ(parse_command("eHlO client.example").cmd->what, verb::ehlo);
  EXPECT_EQ(parse_command("starttls").cmd->what, verb::starttls);
  EXPECT_EQ(parse_command("Quit").cmd->what, verb::quit);
}

TEST(xtext, decodes_and_encodes) {
  EXPECT_EQ(decode_xtext("a+2Bb+3Dc"), "a+b=c");
  EXPECT_FALSE(decode_xtext("a+2"));
  EXPECT_FALSE(decode_xtext("a+zz"));
  EXPECT_FALSE(decode_xtext("a=b"));
  EXPECT_EQ(encode_xtext("a+b=c d"), "a+2Bb+3Dc+20d");
  EXPECT_EQ(decode_xtext(encode_xtext("r\xc3\xa9sum\xc3\xa9+x")), "r\xc3\xa9sum\xc3\xa9+x");
}

}  // namespace
}  // namespace postern::ingress::smtp
