#include "protocol.hpp"

#include <postern/xtext.hpp>

#include <gtest/gtest.h>

namespace postern::transports::smtp {
namespace {

std::vector<reply> parse_all(reply_parser& p) {
  std::vector<reply> out;
  while (auto r = p.next()) out.push_back(std::move(*r));
  return out;
}

TEST(reply_parser, reads_a_single_line_reply_with_an_enhanced_code) {
  reply_parser p;
  p.feed("250 2.1.0 Ok\r\n");
  auto r = p.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 250);
  EXPECT_EQ(r->enhanced, "2.1.0");
  EXPECT_EQ(r->text(), "Ok");
  EXPECT_TRUE(r->positive());
  EXPECT_FALSE(p.next());
  EXPECT_TRUE(p.error().empty());
}

TEST(reply_parser, joins_a_multi_line_reply_and_keeps_a_repeated_enhanced_code_once) {
  reply_parser p;
  p.feed(
      "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
      "550-5.1.1 Please try double-checking the recipient's email\r\n"
      "550 5.1.1 address for typos. - gsmtp\r\n");
  auto r = p.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 550);
  EXPECT_EQ(r->enhanced, "5.1.1");
  ASSERT_EQ(r->lines.size(), 3u);
  EXPECT_EQ(r->lines[1], "Please try double-checking the recipient's email");
  EXPECT_EQ(r->text(),
            "The email account that you tried to reach does not exist. Please try double-checking the recipient's "
            "email address for typos. - gsmtp");
  const auto sdk = r->to_smtp_reply();
  EXPECT_EQ(sdk.code, 550);
  EXPECT_EQ(sdk.enhanced, "5.1.1");
  EXPECT_TRUE(sdk.permanent());
}

TEST(reply_parser, waits_for_the_rest_of_a_reply_split_across_reads) {
  reply_parser p;
  p.feed("250-smtp.example.com Hello\r\n250-PIPE");
  EXPECT_FALSE(p.next());
  EXPECT_TRUE(p.has_pending_input());
  p.feed("LINING\r\n250 8BITMI");
  EXPECT_FALSE(p.next());
  p.feed("ME\r\n");
  auto r = p.next();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->lines.size(), 3u);
  EXPECT_EQ(r->lines[1], "PIPELINING");
  EXPECT_FALSE(p.has_pending_input());
}

TEST(reply_parser, takes_pipelined_replies_in_order) {
  reply_parser p;
  p.feed(
      "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <b@example.com>: Recipient address rejected\r\n"
      "354 End data with <CR><LF>.<CR><LF>\r\n");
  auto replies = parse_all(p);
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[0].code, 250);
  EXPECT_EQ(replies[2].code, 550);
  EXPECT_EQ(replies[2].text(), "<b@example.com>: Recipient address rejected");
  EXPECT_EQ(replies[3].code, 354);
  EXPECT_TRUE(replies[3].intermediate());
  EXPECT_EQ(replies[3].enhanced, "");
}

TEST(reply_parser, accepts_a_bare_code_and_lf_line_ends) {
  reply_parser p;
  p.feed("250\n221 Bye\n");
  auto replies = parse_all(p);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].code, 250);
  EXPECT_EQ(replies[0].text(), "");
  EXPECT_EQ(replies[1].text(), "Bye");
}

TEST(reply_parser, an_enhanced_code_of_another_class_is_text) {
  reply_parser p;
  p.feed("550 2.1.0 odd server\r\n451 4.7.1 Try again later\r\n250 2.0.0\r\n");
  auto replies = parse_all(p);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].enhanced, "");
  EXPECT_EQ(replies[0].text(), "2.1.0 odd server");
  EXPECT_EQ(replies[1].enhanced, "4.7.1");
  EXPECT_TRUE(replies[1].transient());
  EXPECT_EQ(replies[2].enhanced, "2.0.0");
  EXPECT_EQ(replies[2].text(), "");
}

TEST(reply_parser, refuses_what_is_not_smtp) {
  reply_parser p;
  p.feed("HTTP/1.1 400 Bad Request\r\n");
  EXPECT_FALSE(p.next());
  EXPECT_NE(p.error().find("not an SMTP reply"), std::string::npos) << p.error();
  EXPECT_NE(p.error().find("HTTP/1.1 400"), std::string::npos) << p.error();

  reply_parser codes;
  codes.feed("999 what\r\n");
  EXPECT_FALSE(codes.next());
  EXPECT_FALSE(codes.error().empty());

  reply_parser separator;
  separator.feed("250*bad\r\n");
  EXPECT_FALSE(separator.next());
  EXPECT_FALSE(separator.error().empty());

  reply_parser endless;
  endless.feed("250-" + std::string(reply_parser::max_line + 10, 'x'));
  EXPECT_FALSE(endless.next());
  EXPECT_NE(endless.error().find("longer than"), std::string::npos);
}

TEST(capabilities, are_read_from_an_ehlo_reply) {
  reply_parser p;
  p.feed(
      "250-mail.example.com at your service\r\n"
      "250-SIZE 35882577\r\n"
      "250-8BITMIME\r\n"
      "250-starttls\r\n"
      "250-ENHANCEDSTATUSCODES\r\n"
      "250-PIPELINING\r\n"
      "250-AUTH LOGIN PLAIN XOAUTH2\r\n"
      "250-AUTH=LOGIN\r\n"
      "250-DSN\r\n"
      "250 SMTPUTF8\r\n");
  auto r = p.next();
  ASSERT_TRUE(r);
  const auto caps = parse_ehlo(*r);
  EXPECT_TRUE(caps.esmtp);
  EXPECT_TRUE(caps.pipelining);
  EXPECT_TRUE(caps.starttls);
  EXPECT_TRUE(caps.eight_bit_mime);
  EXPECT_TRUE(caps.smtputf8);
  EXPECT_TRUE(caps.dsn);
  EXPECT_TRUE(caps.size);
  EXPECT_EQ(caps.size_limit, 35882577u);
  EXPECT_EQ(caps.auth, (std::vector<std::string>{"LOGIN", "PLAIN", "XOAUTH2"}));
  EXPECT_TRUE(caps.offers_auth("PLAIN"));
  EXPECT_FALSE(caps.offers_auth("CRAM-MD5"));
  EXPECT_EQ(caps.summary(), "ESMTP PIPELINING SIZE=35882577 8BITMIME SMTPUTF8 DSN STARTTLS AUTH=LOGIN,PLAIN,XOAUTH2");
}

TEST(capabilities, a_bare_ehlo_offers_nothing) {
  reply_parser p;
  p.feed("250 smtp-sink\r\n");
  const auto caps = parse_ehlo(*p.next());
  EXPECT_TRUE(caps.esmtp);
  EXPECT_FALSE(caps.pipelining);
  EXPECT_FALSE(caps.size);
  EXPECT_EQ(caps.size_limit, 0u);
  EXPECT_TRUE(caps.auth.empty());

  reply_parser q;
  q.feed("250-x\r\n250-SIZE\r\n250 AUTH=PLAIN LOGIN\r\n");
  const auto other = parse_ehlo(*q.next());
  EXPECT_TRUE(other.size);
  EXPECT_EQ(other.size_limit, 0u);
  EXPECT_EQ(other.auth, (std::vector<std::string>{"PLAIN", "LOGIN"}));
}

TEST(dot_stuff, doubles_leading_dots_and_terminates) {
  EXPECT_EQ(dot_stuff("Subject: x\r\n\r\n.hidden\r\nmid.dle\r\n..two\r\n."),
            "Subject: x\r\n\r\n..hidden\r\nmid.dle\r\n...two\r\n..\r\n.\r\n");
  EXPECT_EQ(dot_stuff(".first\r\n"), "..first\r\n.\r\n");
  EXPECT_EQ(dot_stuff("a\r\n"), "a\r\n.\r\n");
  EXPECT_EQ(dot_stuff("no end"), "no end\r\n.\r\n");
  EXPECT_EQ(dot_stuff(""), ".\r\n");
}

TEST(dot_stuff, makes_bare_line_feeds_crlf_so_no_end_of_data_can_be_smuggled) {
  // "\n.\n" and "\r\n.\r\n" in a body must never end the DATA early.
  EXPECT_EQ(dot_stuff("a\n.\nb\r\n"), "a\r\n..\r\nb\r\n.\r\n");
  EXPECT_EQ(dot_stuff("a\r\n.\r\nMAIL FROM:<x>\r\n"), "a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n");
  EXPECT_EQ(dot_stuff("\n\n.\n"), "\r\n\r\n..\r\n.\r\n");
  EXPECT_EQ(dot_stuff("\r\n\r\n"), "\r\n\r\n.\r\n");
  EXPECT_EQ(dot_stuff("."), "..\r\n.\r\n");
  // A bare CR is not a line end: the dot after it is not at a line start.
  EXPECT_EQ(dot_stuff("a\r.b\r\n"), "a\r.b\r\n.\r\n");
}

TEST(eight_bit, is_found_in_content_and_in_the_header_only) {
  EXPECT_FALSE(has_8bit("plain ascii"));
  EXPECT_TRUE(has_8bit("gr\xc3\xbc\xc3\x9f"));
  // Before, inside and after the eight-byte words the test reads at once.
  for (std::size_t at = 0; at < 20; ++at) {
    std::string text(20, 'a');
    EXPECT_FALSE(has_8bit(text));
    text[at] = '\x80';
    EXPECT_TRUE(has_8bit(text)) << at;
  }
  EXPECT_FALSE(header_has_8bit("Subject: hi\r\n\r\nbody gr\xc3\xbc\xc3\x9f\r\n"));
  EXPECT_TRUE(header_has_8bit("Subject: gr\xc3\xbc\xc3\x9f\r\n\r\nbody\r\n"));
}

TEST(recipient_batches, split_beyond_the_limit_in_order) {
  const auto batches = recipient_batches(250, 100);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].size(), 100u);
  EXPECT_EQ(batches[1].size(), 100u);
  EXPECT_EQ(batches[2].size(), 50u);
  EXPECT_EQ(batches[1].front(), 100u);
  EXPECT_EQ(batches[2].back(), 249u);
  EXPECT_EQ(recipient_batches(3, 100), (std::vector<std::vector<std::size_t>>{{0, 1, 2}}));
  EXPECT_EQ(recipient_batches(3, 1), (std::vector<std::vector<std::size_t>>{{0}, {1}, {2}}));
  EXPECT_TRUE(recipient_batches(0, 10).empty());
}

TEST(commands, mail_carries_only_what_the_server_offers) {
  mail_parameters m;
  m.sender = "shop@example.com";
  m.size = 1234;
  m.eight_bit = true;
  m.smtputf8 = true;
  m.ret = postern::dsn_ret::headers;
  m.envid = "QUEUE+1 x";
  capabilities none;
  EXPECT_EQ(mail_command(m, none), "MAIL FROM:<shop@example.com>\r\n");
  capabilities all;
  all.size = all.eight_bit_mime = all.smtputf8 = all.dsn = true;
  EXPECT_EQ(mail_command(m, all),
            "MAIL FROM:<shop@example.com> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QUEUE+2B1+20x\r\n");
  mail_parameters bounce;
  EXPECT_EQ(mail_command(bounce, none), "MAIL FROM:<>\r\n");
}

TEST(commands, rcpt_carries_dsn_parameters_when_offered) {
  postern::recipient r{3, "ann@example.com", "rfc822;Ann+x=y@example.com",
                       postern::notify_success | postern::notify_failure};
  capabilities none;
  EXPECT_EQ(rcpt_command(r, none), "RCPT TO:<ann@example.com>\r\n");
  capabilities dsn;
  dsn.dsn = true;
  EXPECT_EQ(rcpt_command(r, dsn),
            "RCPT TO:<ann@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Ann+2Bx+3Dy@example.com\r\n");
  r.notify = postern::notify_never;
  r.orcpt.clear();
  EXPECT_EQ(rcpt_command(r, dsn), "RCPT TO:<ann@example.com> NOTIFY=NEVER\r\n");
  r.notify = postern::notify_default;
  EXPECT_EQ(rcpt_command(r, dsn), "RCPT TO:<ann@example.com>\r\n");
}

TEST(commands, xtext_and_base64) {
  EXPECT_EQ(postern::encode_xtext("a+b=c d\xe9"), "a+2Bb+3Dc+20d+E9");
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("user"), "dXNlcg==");
  EXPECT_EQ(auth_plain_response("user", "pass"), "AHVzZXIAcGFzcw==");
}

TEST(remote_queue_id, is_taken_from_known_final_replies) {
  EXPECT_EQ(remote_queue_id("Ok: queued as 4Q1x2y3zZ9"), "4Q1x2y3zZ9");
  EXPECT_EQ(remote_queue_id("OK id=1qXyZ5-0001Ab-Cd"), "1qXyZ5-0001Ab-Cd");
  EXPECT_EQ(remote_queue_id("x8ABCD123 Message accepted for delivery"), "x8ABCD123");
  EXPECT_EQ(remote_queue_id("Message accepted for delivery"), "Message accepted for delivery");
  EXPECT_EQ(remote_queue_id("OK 1700000000 a1si.123 - gsmtp"), "OK 1700000000 a1si.123 - gsmtp");
}

}  // namespace
}  // namespace postern::transports::smtp
