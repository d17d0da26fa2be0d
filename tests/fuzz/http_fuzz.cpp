// libFuzzer target for the parsers of the HTTP API: JSON request bodies and the reader over
// them, RFC 3339 times, form bodies (urlencoded and multipart), address lists and templates.
// The first byte picks the parser, the rest is its input. Besides "does not crash" it checks
// properties, and aborts when one fails:
//  - JSON: an error names a byte inside the input (or says a number is out of range); a parsed
//    object serializes to JSON that parses back to the same object (numbers within a unit in
//    the last place); the reader names the field of every problem and knows every field it read;
//  - RFC 3339: a parsed time formats and parses back to itself;
//  - urlencoded: the fields, encoded again, parse back to the same fields;
//  - multipart: every field and file has a name;
//  - addresses: each address has a local part and a domain, and each display (as it goes in a
//    header field) reads back as that one mailbox;
//  - templates: in HTML mode no '<' of a value survives (rendering with HTML escaping is
//    rendering the escaped values without), and an error leaves no half-rendered text.
#include "ingress/http/form.hpp"
#include "ingress/http/json_reader.hpp"
#include "mime/address.hpp"
#include "templates/template_text.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <limits>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace postern;
using namespace postern::ingress::http;

namespace {

/// Aborts with a word on stderr, so that a crash report says which property failed.
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "property failed: %s\n", what);
    std::abort();
  }
}

bool nearly_equal(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() || b.is_double()) {
    if (!a.is_number() || !b.is_number()) return false;
    const double x = a.to_number<double>(), y = b.to_number<double>();
    return x == y || std::fabs(x - y) <= 4 * std::numeric_limits<double>::epsilon() * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.is_array() && b.is_array()) {
    const auto &p = a.get_array(), &q = b.get_array();
    if (p.size() != q.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (!nearly_equal(p[i], q[i])) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    const auto &p = a.get_object(), &q = b.get_object();
    if (p.size() != q.size()) return false;
    for (const auto& [k, v] : p) {
      const auto* w = q.if_contains(k);
      if (!w || !nearly_equal(v, *w)) return false;
    }
    return true;
  }
  return a == b;
}

void fuzz_json(std::string_view input) {
  const auto parsed = parse_json_object(input);
  if (!parsed.error.empty()) {
    constexpr std::string_view prefix = "malformed JSON at byte ";
    if (parsed.error == "the body must be a JSON object") return;
    if (parsed.error == "malformed JSON: a number is beyond the range of a double") return;
    check(parsed.error.starts_with(prefix), "a JSON error says where");
    const auto byte = std::strtoull(parsed.error.c_str() + prefix.size(), nullptr, 10);
    check(byte <= input.size(), "the byte of a JSON error is inside the input");
    return;
  }
  // Boost.JSON 1.81 reads some numbers (long mantissas, large exponents) to within a unit in
  // the last place, not exactly: numbers compare with that tolerance, everything else exactly.
  const auto text = boost::json::serialize(parsed.object);
  const auto again = parse_json_object(text);
  check(again.error.empty() && nearly_equal(again.object, parsed.object), "a parsed object serializes and parses back");

  // Every field through every kind of read: a problem names the field it is about.
  for (const auto& [key, value] : parsed.object) {
    const std::string name(key);
    for (int kind = 0; kind < 4; ++kind) {
      json_reader r(parsed.object, "body.");
      switch (kind) {
        case 0: (void)r.string(name); break;
        case 1: (void)r.boolean(name, false); break;
        case 2: (void)r.strings(name); break;
        case 3: (void)r.string_map(name); break;
      }
      check(r.ok() || r.error().starts_with("body." + name), "a reader error names its field");
      r.refuse_unknown_fields();
      check(r.error() != "body." + name + ": unknown field", "a field read is known");
    }
  }
  json_reader all(parsed.object);
  for (const auto& [key, value] : parsed.object) (void)all.value(key);
  all.refuse_unknown_fields();
  check(all.ok(), "after reading every field none is unknown");
}

void fuzz_rfc3339(std::string_view input) {
  const auto t = parse_rfc3339(input);
  if (!t) return;
  const auto text = format_rfc3339(*t);
  check(text.size() == 24 && text.back() == 'Z', "a formatted time is UTC with milliseconds");
  check(parse_rfc3339(text) == t, "a parsed time formats and parses back");
}

std::string encode_component(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

void fuzz_urlencoded(std::string_view input) {
  const auto form = parse_urlencoded(input);
  check(form.files.empty(), "urlencoded has no files");
  if (!form.error.empty()) {
    check(form.error.find('\n') == std::string::npos && form.error.find('\r') == std::string::npos,
          "a form error is one line");
    return;
  }
  std::string encoded;
  for (const auto& [name, value] : form.fields) {
    if (!encoded.empty()) encoded += '&';
    encoded += encode_component(name) + "=" + encode_component(value);
  }
  const auto again = parse_urlencoded(encoded);
  check(again.error.empty() && again.fields == form.fields, "urlencoded fields encode and parse back");
}

void fuzz_multipart(std::string_view input) {
  // The boundary of the seeds in tests/fuzz/http_corpus.
  const auto form = parse_multipart("multipart/form-data; boundary=XyZ", input);
  if (!form.error.empty()) {
    check(form.fields.empty() && form.files.empty(), "a refused form has nothing in it");
    return;
  }
  for (const auto& [name, value] : form.fields) check(!name.empty(), "a form field has a name");
  for (const auto& file : form.files) check(!file.field.empty(), "a form file has a name");
}

bool has_control(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 32 || c == 127) return true;
  }
  return false;
}

void fuzz_mailboxes(std::string_view input) {
  const auto list = mime::parse_mailboxes(input);
  if (input.find_first_of("\r\n") != std::string_view::npos) check(!list.error.empty(), "a line break is refused");
  if (!list.error.empty()) {
    check(list.items.empty(), "a refused list has no mailboxes");
    return;
  }
  for (const auto& m : list.items) {
    const auto at = m.address.rfind('@');
    check(at != std::string::npos && at > 0 && at + 1 < m.address.size(), "an address has both sides of '@'");
    // A display with control characters (decoded from an encoded word) is refused by the MIME
    // builder; any other must read back as the same mailbox.
    if (has_control(m.display)) continue;
    const auto again = mime::parse_mailboxes(m.display);
    check(again.error.empty() && again.items.size() == 1, "a display reads back as one mailbox");
    check(again.items[0].address == m.address, "a display reads back with its address");
    check(again.items[0].display == m.display, "a display reads back as itself");
  }
}

void fuzz_template(std::string_view input) {
  // The template, then values for a, b, name and x.y, separated by NUL bytes. Missing values
  // make unknown variables, which is worth exercising too.
  std::vector<std::string_view> pieces;
  for (std::size_t start = 0;;) {
    const auto end = input.find('\0', start);
    pieces.push_back(input.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  const std::string_view source = pieces[0];
  templates::variables values, escaped;
  const char* names[] = {"a", "b", "name", "x.y"};
  for (std::size_t i = 1; i < pieces.size() && i <= 4; ++i) {
    values[names[i - 1]] = std::string(pieces[i]);
    escaped[names[i - 1]] = templates::html_escape(pieces[i]);
  }
  const auto html = templates::render(source, values, templates::escaping::html);
  const auto plain = templates::render(source, values, templates::escaping::none);
  const auto reference = templates::render(source, escaped, templates::escaping::none);
  const auto syntax = templates::check_syntax(source);
  check(html.error.has_value() == plain.error.has_value(), "both modes fail alike");
  check(html.text == reference.text, "html rendering is rendering the escaped values");
  if (html.error) {
    check(html.text.empty() && plain.text.empty(), "an error leaves no text");
    check(html.error->line >= 1, "an error has a line");
    const auto lines = 1 + static_cast<std::size_t>(std::count(source.begin(), source.end(), '\n'));
    check(html.error->line <= lines, "an error's line is in the template");
    // The first problem is reported: an unknown name may come before a syntax error.
    if (syntax) check(html.error->line <= syntax->line, "no problem is reported after the first syntax error");
  } else {
    check(!syntax, "a rendered template has no syntax error");
    // Only the template can bring a '<' into the HTML; a value cannot.
    if (source.find('<') == std::string_view::npos)
      check(html.text.find('<') == std::string::npos, "no '<' of a value is left unescaped");
    for (const auto& name : templates::names_used(source))
      check(values.count(name) == 1, "a rendered template uses only known names");
  }
  for (const auto& [name, value] : values) {
    const auto e = templates::html_escape(value);
    check(e.find_first_of("<>\"'") == std::string::npos, "html_escape leaves no markup characters");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 6) {
    case 0: fuzz_json(input); break;
    case 1: fuzz_urlencoded(input); break;
    case 2: fuzz_multipart(input); break;
    case 3: fuzz_mailboxes(input); break;
    case 4: fuzz_template(input); break;
    case 5: fuzz_rfc3339(input); break;
  }
  return 0;
}
