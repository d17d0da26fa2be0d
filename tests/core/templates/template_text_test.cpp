#include "templates/template_text.hpp"

#include "templates/library.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace postern::templates {
namespace {

TEST(render, replaces_placeholders_with_values) {
  const variables v{{"name", "Ann"}, {"order_id", "A-17"}};
  const auto r = render("Hello {{ name }}, order {{order_id}} / {{  name\t}}.", v, escaping::none);
  ASSERT_FALSE(r.error) << r.error->message;
  EXPECT_EQ(r.text, "Hello Ann, order A-17 / Ann.");
  EXPECT_EQ(render("", v, escaping::none).text, "");
  EXPECT_EQ(render("no placeholders } { }}", v, escaping::none).text, "no placeholders } { }}");
}

TEST(render, takes_dotted_and_underscored_names) {
  const variables v{{"customer.first_name", "Ann"}, {"_x9", "!"}};
  EXPECT_EQ(render("{{ customer.first_name }}{{_x9}}", v, escaping::none).text, "Ann!");
}

TEST(render, escapes_values_but_not_the_template_in_html) {
  const variables v{{"name", "<script>alert('x')</script> & \"co\""}};
  const auto html = render("<p class=\"x\">{{ name }}</p>", v, escaping::html);
  ASSERT_FALSE(html.error);
  EXPECT_EQ(html.text, "<p class=\"x\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;</p>");
  const auto text = render("{{ name }}", v, escaping::none);
  EXPECT_EQ(text.text, v.at("name"));
}

TEST(render, values_are_not_rendered_again) {
  const variables v{{"a", "{{ b }}"}, {"b", "B"}};
  EXPECT_EQ(render("{{ a }}", v, escaping::none).text, "{{ b }}");
}

TEST(render, an_unknown_variable_is_named_with_its_line) {
  const variables v{{"name", "Ann"}};
  const auto r = render("Hello {{ name }},\n\nyour order\n{{ order_id }} is here.", v, escaping::html);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->line, 4u);
  EXPECT_EQ(r.error->variable, "order_id");
  EXPECT_EQ(r.error->message, "unknown variable order_id");
  EXPECT_EQ(r.text, "");  // nothing half rendered
}

TEST(render, reports_the_first_problem) {
  const auto r = render("{{ first }}\n{{ second }}\n{{", {}, escaping::none);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->variable, "first");
  EXPECT_EQ(r.error->line, 1u);
}

TEST(render, an_unclosed_placeholder_is_an_error) {
  for (const char* source : {"Hello {{ name", "Hello {{ name }", "{{ a {{ b }}", "Hello {{ name\n}}"}) {
    const auto r = render(source, {{"name", "x"}, {"a", "x"}, {"b", "x"}}, escaping::none);
    ASSERT_TRUE(r.error) << source;
    EXPECT_EQ(r.error->message, "unclosed {{") << source;
    EXPECT_EQ(r.error->line, 1u) << source;
    EXPECT_EQ(r.text, "");
  }
  const auto late = check_syntax("a\nb\nc {{ x }} {{ y");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->line, 3u);
}

TEST(render, a_bad_name_is_an_error_naming_it) {
  for (const char* name : {"1abc", "a-b", "a b", "", ".a", "a$"}) {
    const auto r = render("x {{ " + std::string(name) + " }} y", {{name, "v"}}, escaping::none);
    ASSERT_TRUE(r.error) << name;
    EXPECT_EQ(r.error->variable, name);
    EXPECT_EQ(r.error->message, "bad variable name \"" + std::string(name) + "\"");
  }
}

TEST(check_syntax, accepts_unknown_names_and_finds_syntax_errors) {
  EXPECT_EQ(check_syntax("{{ anything }} and {{ more.of_it }}"), std::nullopt);
  EXPECT_EQ(check_syntax("plain"), std::nullopt);
  const auto e = check_syntax("line 1\nline {{ 2x }}");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->line, 2u);
  EXPECT_EQ(e->variable, "2x");
}

TEST(names_used, lists_each_name_once_in_order_of_first_use) {
  EXPECT_EQ(names_used("{{ b }} {{ a }}\n{{b}} {{ c.d }}"), (std::vector<std::string>{"b", "a", "c.d"}));
  EXPECT_TRUE(names_used("none").empty());
}

TEST(html_escape, escapes_the_five_characters) {
  EXPECT_EQ(html_escape("&<>\"'"), "&amp;&lt;&gt;&quot;&#39;");
  EXPECT_EQ(html_escape("plain Grüße – {{ x }}"), "plain Grüße – {{ x }}");
  EXPECT_EQ(html_escape("&amp;"), "&amp;amp;");  // no double-escape detection: values are text
  EXPECT_EQ(html_escape(""), "");
}

// --- the shipped templates -------------------------------------------------------------------

const std::vector<std::string> builtin_variables{"company_name", "company_url", "today",
                                                  "customer_name", "order_id",  "order_date"};

variables sample_values() {
  return {{"company_name", "Tea & Co"},      {"company_url", "https://tea.example/?a=1&b=2"},
          {"today", "2026-11-24"},           {"customer_name", "Ann <ann@x.example>"},
          {"order_id", "A-17"},              {"order_date", "2026-11-20"}};
}

TEST(builtin_templates, are_the_four_order_templates) {
  std::vector<std::string> names;
  for (const auto& t : builtin_templates()) {
    names.push_back(t.name);
    EXPECT_TRUE(t.builtin) << t.name;
    EXPECT_TRUE(valid_template_name(t.name)) << t.name;
    const auto found = find_builtin(t.name);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->html, t.html);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"order_received", "order_confirmation", "order_shipped", "order_cancelled"}));
  EXPECT_EQ(find_builtin("order_lost"), std::nullopt);
}

TEST(builtin_templates, use_exactly_the_documented_variables) {
  const std::set<std::string> expected(builtin_variables.begin(), builtin_variables.end());
  for (const auto& t : builtin_templates()) {
    for (const auto* part : {&t.subject, &t.text, &t.html}) {
      EXPECT_EQ(check_syntax(*part), std::nullopt) << t.name;
      for (const auto& name : names_used(*part)) EXPECT_TRUE(expected.count(name)) << t.name << ": " << name;
    }
    // The bodies each use every one of them.
    const auto text = names_used(t.text);
    const auto html = names_used(t.html);
    EXPECT_EQ(std::set<std::string>(text.begin(), text.end()), expected) << t.name;
    EXPECT_EQ(std::set<std::string>(html.begin(), html.end()), expected) << t.name;
  }
}

TEST(builtin_templates, render_with_the_documented_variables) {
  const auto values = sample_values();
  for (const auto& t : builtin_templates()) {
    const auto subject = render(t.subject, values, escaping::none);
    const auto text = render(t.text, values, escaping::none);
    const auto html = render(t.html, values, escaping::html);
    ASSERT_FALSE(subject.error) << t.name << ": " << subject.error->message;
    ASSERT_FALSE(text.error) << t.name << ": " << text.error->message;
    ASSERT_FALSE(html.error) << t.name << ": " << html.error->message;
    EXPECT_NE(subject.text.find("A-17"), std::string::npos) << t.name;
    EXPECT_EQ(subject.text.find("{{"), std::string::npos) << t.name;
    for (const auto& r : {text.text, html.text}) EXPECT_EQ(r.find("{{"), std::string::npos) << t.name;
    EXPECT_NE(text.text.find("Hello Ann <ann@x.example>,"), std::string::npos) << t.name;
    EXPECT_NE(text.text.find("Tea & Co"), std::string::npos) << t.name;
    // In HTML every value is escaped, in attributes too.
    EXPECT_NE(html.text.find("Hello Ann &lt;ann@x.example&gt;,"), std::string::npos) << t.name;
    EXPECT_NE(html.text.find("href=\"https://tea.example/?a=1&amp;b=2\""), std::string::npos) << t.name;
    EXPECT_EQ(html.text.find("<ann@"), std::string::npos) << t.name;
  }
}

TEST(builtin_templates, name_the_variable_left_out) {
  for (const auto& t : builtin_templates()) {
    for (const auto& missing : builtin_variables) {
      auto values = sample_values();
      values.erase(missing);
      const auto text = render(t.text, values, escaping::none);
      const auto html = render(t.html, values, escaping::html);
      for (const auto* r : {&text, &html}) {
        ASSERT_TRUE(r->error) << t.name << " without " << missing;
        EXPECT_EQ(r->error->variable, missing) << t.name;
        EXPECT_EQ(r->error->message, "unknown variable " + missing) << t.name;
        EXPECT_GE(r->error->line, 1u);
      }
      // The subject uses the order id only.
      EXPECT_EQ(render(t.subject, values, escaping::none).error.has_value(), missing == "order_id") << t.name;
    }
  }
}

TEST(valid_template_name, takes_letters_digits_and_three_marks) {
  EXPECT_TRUE(valid_template_name("order_shipped"));
  EXPECT_TRUE(valid_template_name("v2.order-shipped"));
  EXPECT_TRUE(valid_template_name(std::string(64, 'a')));
  EXPECT_FALSE(valid_template_name(std::string(65, 'a')));
  EXPECT_FALSE(valid_template_name(""));
  EXPECT_FALSE(valid_template_name("a/b"));
  EXPECT_FALSE(valid_template_name("a b"));
  EXPECT_FALSE(valid_template_name("gr\xC3\xBC\xC3\x9F"));
}

}  // namespace
}  // namespace postern::templates
