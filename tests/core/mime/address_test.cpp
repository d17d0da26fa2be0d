#include "mime/address.hpp"

#include <gtest/gtest.h>

namespace postern::mime {
namespace {

using pairs = std::vector<std::pair<std::string, std::string>>;  // display, address

pairs items(const mailbox_list& list) {
  pairs out;
  for (const auto& m : list.items) out.emplace_back(m.display, m.address);
  return out;
}

TEST(parse_mailboxes, reads_bare_and_named_mailboxes) {
  auto r = parse_mailboxes("a@b.example");
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(items(r), (pairs{{"a@b.example", "a@b.example"}}));
  r = parse_mailboxes("Jane Doe <jane@b.example>");
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(items(r), (pairs{{"Jane Doe <jane@b.example>", "jane@b.example"}}));
  r = parse_mailboxes("<a@b.example>");
  EXPECT_EQ(items(r), (pairs{{"a@b.example", "a@b.example"}}));
}

TEST(parse_mailboxes, reads_lists_with_quoted_commas) {
  const auto r = parse_mailboxes("\"Doe, John\" <j@x.example>, b@y.example ,c@z.example");
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(items(r), (pairs{{"\"Doe, John\" <j@x.example>", "j@x.example"},
                             {"b@y.example", "b@y.example"},
                             {"c@z.example", "c@z.example"}}));
  // Empty elements of a list are skipped.
  EXPECT_EQ(items(parse_mailboxes("x@y.example,,z@w.example")),
            (pairs{{"x@y.example", "x@y.example"}, {"z@w.example", "z@w.example"}}));
}

TEST(parse_mailboxes, flattens_groups_to_their_members) {
  const auto r = parse_mailboxes("team: a@x.example, Bo <b@x.example>;, c@y.example");
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(items(r), (pairs{{"a@x.example", "a@x.example"}, {"Bo <b@x.example>", "b@x.example"},
                             {"c@y.example", "c@y.example"}}));
  EXPECT_TRUE(parse_mailboxes("undisclosed-recipients:;").items.empty());
}

TEST(parse_mailboxes, decodes_names_and_keeps_utf8) {
  EXPECT_EQ(items(parse_mailboxes("J\xC3\xB6rg <j@x.example>")), (pairs{{"J\xC3\xB6rg <j@x.example>", "j@x.example"}}));
  EXPECT_EQ(items(parse_mailboxes("=?utf-8?q?J=C3=B6rg?= <j@x.example>")),
            (pairs{{"J\xC3\xB6rg <j@x.example>", "j@x.example"}}));
}

TEST(parse_mailboxes, empty_text_is_an_empty_list) {
  for (const char* text : {"", " ", " , ,\t"}) {
    const auto r = parse_mailboxes(text);
    EXPECT_EQ(r.error, "") << text;
    EXPECT_TRUE(r.items.empty()) << text;
  }
}

TEST(parse_mailboxes, refuses_what_is_not_a_mailbox_naming_it) {
  EXPECT_EQ(parse_mailboxes("not an address").error, "not an address: not an address");
  EXPECT_EQ(parse_mailboxes("a@").error, "not an address: a@");
  EXPECT_EQ(parse_mailboxes("@b.example").error, "not an address: @b.example");
  EXPECT_EQ(parse_mailboxes("a b@c.example").error, "not an address: a b@c.example");
  // One bad element spoils the list: nothing is half accepted.
  const auto r = parse_mailboxes("a@b.example, junk");
  EXPECT_EQ(r.error, "not an address: junk");
  EXPECT_TRUE(r.items.empty());
}

TEST(parse_mailboxes, refuses_line_breaks_and_nul) {
  for (const std::string& text : {std::string("a@b.example\r\nBcc: x@y.example"), std::string("a@b.example\n"),
                                 std::string("a@b.example\r")}) {
    const auto r = parse_mailboxes(text);
    EXPECT_EQ(r.error, "contains a line break");
    EXPECT_TRUE(r.items.empty());
  }
  // GMime reads C strings: what follows a NUL would be dropped without a word.
  const auto r = parse_mailboxes(std::string("a@b.example\0, c@d.example", 25));
  EXPECT_NE(r.error, "");
  EXPECT_TRUE(r.items.empty());
}

TEST(parse_mailboxes, a_display_reads_back_as_the_same_mailbox) {
  // The display goes into a header field (and through the MIME builder, which parses it
  // again): it must read back as this one mailbox, with this name, whatever the name holds.
  for (const char* text : {
           "Jane Doe <jane@b.example>",
           "\"Doe, John\" <j@x.example>",
           "Mr. Smith <s@x.example>",
           "\"a\\\"b\" <q@x.example>",                        // a lone quote in the name
           "\"back\\\\slash\" <q@x.example>",                 // a backslash
           "\"x\\\" <evil@a.example>\" <q@x.example>",        // an address inside the name
           "\"a\\\"b, evil@a.example\" <q@x.example>",
           "\"<evil@a.example>\" <q@x.example>",
           "\"J\xC3\xB6rg, \\\"the\\\" boss\" <j@x.example>",
           "\"\\\"\" <q@x.example>",
           "\"semi;colon: group\" <q@x.example>",
           "\" spaced \" <q@x.example>",
           "\"=?utf-8?q?J=C3=B6rg?=\" <j@x.example>",  // GMime decodes encoded words in quotes too
           "=?utf-8?q?=3D=3Fiso-8859-1=3Fq=3Fx=3F=3D?= <j@x.example>",  // one that decodes to "=?...?="
       }) {
    const auto first = parse_mailboxes(text);
    ASSERT_EQ(first.error, "") << text;
    ASSERT_EQ(first.items.size(), 1u) << text;
    const auto again = parse_mailboxes(first.items[0].display);
    ASSERT_EQ(again.error, "") << text << " -> " << first.items[0].display;
    ASSERT_EQ(again.items.size(), 1u) << text << " -> " << first.items[0].display;
    EXPECT_EQ(again.items[0].address, first.items[0].address) << text;
    EXPECT_EQ(again.items[0].display, first.items[0].display) << text;
  }
  EXPECT_EQ(parse_mailboxes("\"a\\\"b\" <q@x.example>").items[0].display, "\"a\\\"b\" <q@x.example>");
}

}  // namespace
}  // namespace postern::mime
