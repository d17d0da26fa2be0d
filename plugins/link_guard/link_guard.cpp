#include "link_guard.hpp"

#include <postern/setting_text.hpp>

#include <gmime/gmime.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>

namespace postern::policies {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// The host part of "[scheme:]//[user@]host[:port][/...]".
std::string host_of(std::string_view url) {
  auto rest = url.substr(url.find("//") + 2);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (!rest.empty() && rest.front() == '[') return lower(rest.substr(0, rest.find(']') + 1));  // IPv6 literal
  return lower(rest.substr(0, rest.find(':')));
}

/// The text as a browser would read a link in it: HTML character references decoded
/// ("https&#58;//" is "https://") and backslashes made slashes ("https:\\evil.test" and
/// "https://evil.test\\@good.test" go to evil.test).
std::string as_browsers_read(std::string_view text) {
  static const std::pair<const char*, char> named[] = {{"amp", '&'},  {"colon", ':'}, {"sol", '/'},  {"period", '.'},
                                                       {"quot", '"'}, {"apos", '\''}, {"lt", '<'},   {"gt", '>'},
                                                       {"bsol", '/'}, {"commat", '@'}};
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      out += '/';
      continue;
    }
    const auto semi = c == '&' ? text.find(';', i) : std::string_view::npos;
    if (semi == std::string_view::npos || semi - i > 10) {
      out += c;
      continue;
    }
    const auto ref = text.substr(i + 1, semi - i - 1);
    long code = -1;
    if (ref.size() > 1 && ref[0] == '#') {
      const bool hex = ref[1] == 'x' || ref[1] == 'X';
      char* end = nullptr;
      const std::string digits(ref.substr(hex ? 2 : 1));
      code = std::strtol(digits.c_str(), &end, hex ? 16 : 10);
      if (digits.empty() || *end != '\0') code = -1;
    } else {
      for (const auto& [name, ch] : named)
        if (ref == name) code = static_cast<unsigned char>(ch);
    }
    if (code > 0 && code < 128) {
      out += code == '\\' ? '/' : static_cast<char>(code);
      i = semi;
    } else {
      out += c;
    }
  }
  return out;
}

void scan_text(std::string_view raw_text, std::vector<std::string>& out) {
  const std::string text = as_browsers_read(raw_text);
  const std::string folded = lower(text);
  for (std::size_t pos = 0;;) {
    // http://, https://, and links without a scheme in attributes (href="//evil.test/").
    std::size_t start = std::string::npos, host = 0;
    for (const char* mark : {"http://", "https://", "=\"//", "='//", "=//"}) {
      const auto at = folded.find(mark, pos);
      if (at < start) {
        start = at;
        host = at + std::string_view(mark).size();
      }
    }
    if (start == std::string::npos) return;
    auto end = text.find_first_of(" \t\r\n\"'<>()[]{}", host);
    if (end == std::string::npos) end = text.size();
    std::string url = folded[start] == '=' ? "//" + text.substr(host, end - host) : text.substr(start, end - start);
    while (!url.empty() && (url.back() == '.' || url.back() == ',' || url.back() == ';')) url.pop_back();
    if (url.find("//") + 2 < url.size()) out.push_back(std::move(url));
    pos = end;
  }
}

struct gobject_unref {
  void operator()(void* p) const { g_object_unref(p); }
};

void collect(GMimeObject*, GMimeObject* part, gpointer data) {
  if (!GMIME_IS_TEXT_PART(part)) return;
  char* text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
  if (!text) return;
  scan_text(text, *static_cast<std::vector<std::string>*>(data));
  g_free(text);
}

}  // namespace

link_guard::link_guard(postern::host& host) : host_(host) {
  g_mime_init();  // counted by GMime; the host has called it already when it uses GMime
  allow_sender_domain_ = host.config().get_bool("allow_sender_domain").value_or(true);
  for (auto& d : host.config().get_strings("allowed_everywhere")) allowed_everywhere_.push_back(lower(d));
}

std::vector<std::string> link_guard::links_in(const std::string& raw) const {
  std::vector<std::string> out;
  std::unique_ptr<GMimeStream, gobject_unref> stream(g_mime_stream_mem_new_with_buffer(raw.data(), raw.size()));
  std::unique_ptr<GMimeParser, gobject_unref> parser(g_mime_parser_new_with_stream(stream.get()));
  GMimeMessage* message = g_mime_parser_construct_message(parser.get(), nullptr);
  if (!message) {
    scan_text(raw, out);  // not MIME we can read: look at it as it is
    return out;
  }
  std::unique_ptr<GMimeMessage, gobject_unref> owned(message);
  g_mime_message_foreach(message, collect, &out);
  return out;
}

bool link_guard::allowed(std::string_view host, const std::vector<std::string>& domains) const {
  for (const auto& d : domains)
    if (host == d || (host.size() > d.size() && host.ends_with(d) && host[host.size() - d.size() - 1] == '.')) return true;
  return false;
}

postern::verdict link_guard::check(const postern::submission_view& s, postern::policy_stage stage) {
  if (s.stream != postern::mail_stream::marketing) return postern::verdict::accept();
  // A campaign is read once, whole, at the campaign stage; other marketing mail at content.
  const bool whole_campaign = stage == postern::policy_stage::campaign;
  const bool single = stage == postern::policy_stage::content && !s.campaign;
  if (!whole_campaign && !single) return postern::verdict::accept();
  std::vector<std::string> domains = allowed_everywhere_;
  for (auto& d : host_.config().get_strings("allowed." + s.tenant)) domains.push_back(lower(d));
  if (allow_sender_domain_) {
    const auto at = s.mail_from.rfind('@');
    if (at != std::string::npos) domains.push_back(lower(s.mail_from.substr(at + 1)));
  }
  std::vector<std::string> offending;
  for (auto& url : links_in(s.raw))
    if (!allowed(host_of(url), domains) && std::find(offending.begin(), offending.end(), url) == offending.end())
      offending.push_back(std::move(url));
  if (offending.empty()) return postern::verdict::accept();
  std::string list;
  for (std::size_t i = 0; i < offending.size() && i < 10; ++i) list += (i ? ", " : "") + offending[i];
  if (offending.size() > 10) list += " and " + std::to_string(offending.size() - 10) + " more";
  return postern::verdict::reject(550, "5.7.1", "Links outside the allowed domains: " + list);
}

std::vector<std::pair<std::string, std::string>> link_guard::settings() const {
  return {{"allow_sender_domain", postern::setting_text(allow_sender_domain_)},
          {"allowed_everywhere", postern::setting_text(allowed_everywhere_)}};
}

}  // namespace postern::policies
