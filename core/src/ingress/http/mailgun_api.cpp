#include "ingress/http/mailgun_api.hpp"

#include "ingress/http/form.hpp"
#include "ingress/http/json_reader.hpp"
#include "mime/address.hpp"
#include "submission/header_block.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

#include <gmime/gmime.h>

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
namespace asio = boost::asio;

namespace postern::ingress::http {
namespace {

constexpr std::string_view queued = "Queued. Thank you.";

/// Form fields by name, in the order given.
class fields {
 public:
  explicit fields(const form_data& form) : form_(form) {}
  std::vector<std::string> all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : form_.fields) {
      if (k == name) out.push_back(v);
    }
    return out;
  }
  std::string last(std::string_view name) const {
    auto values = all(name);
    return values.empty() ? std::string() : values.back();
  }
  /// Every field whose name starts with `prefix`, the prefix removed.
  std::vector<std::pair<std::string, std::string>> with_prefix(std::string_view prefix) const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, v] : form_.fields) {
      if (k.size() > prefix.size() && k.starts_with(prefix)) out.emplace_back(k.substr(prefix.size()), v);
    }
    return out;
  }

 private:
  const form_data& form_;
};

bool yes(std::string_view value) {
  return beast::iequals(value, "yes") || beast::iequals(value, "true") || value == "1";
}

/// Mailboxes of every value of a field (each may be a comma list); false with `error` set.
bool mailboxes(const fields& f, std::string_view name, std::vector<mime::mailbox>& out, std::string& error) {
  for (const auto& value : f.all(name)) {
    auto list = mime::parse_mailboxes(value);
    if (!list.error.empty()) {
      error = "'" + std::string(name) + "' parameter is not a valid address: " + list.error;
      return false;
    }
    out.insert(out.end(), list.items.begin(), list.items.end());
  }
  return true;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc2822_date(const std::string& text) {
  GDateTime* date = g_mime_utils_header_decode_date(text.c_str());
  if (!date) return std::nullopt;
  const auto seconds = g_date_time_to_unix(date);
  g_date_time_unref(date);
  return std::chrono::system_clock::from_time_t(static_cast<std::time_t>(seconds));
}

form_data parse_body(const request& req) {
  const std::string_view type = req[bhttp::field::content_type];
  if (type.size() >= 19 && beast::iequals(type.substr(0, 19), "multipart/form-data")) return parse_multipart(type, req.body());
  if (type.empty() || (type.size() >= 33 && beast::iequals(type.substr(0, 33), "application/x-www-form-urlencoded")))
    return parse_urlencoded(req.body());
  form_data f;
  f.error = "expected multipart/form-data or application/x-www-form-urlencoded, not " + std::string(type);
  return f;
}

response queued_response(const std::string& message_id) {
  return json_response(200, json::object{{"id", "<" + message_id + ">"}, {"message", queued}});
}

/// The options common to both endpoints: tags, test mode, delivery time.
struct options {
  std::vector<std::string> tags;
  bool testmode = false;
  std::chrono::system_clock::time_point send_at{};
};

bool read_options(const fields& f, options& out, std::string& error) {
  out.tags = f.all("o:tag");
  out.testmode = yes(f.last("o:testmode"));
  if (const auto when = f.last("o:deliverytime"); !when.empty()) {
    auto t = parse_rfc2822_date(when);
    if (!t) {
      error = "'o:deliverytime' parameter is not a valid RFC 2822 date: " + when;
      return false;
    }
    out.send_at = *t;
  }
  return true;
}

asio::awaitable<response> send_mime(api& a, const fields& f, const form_data& form, composed_message& msg,
                                    const config::tenant_settings* settings) {
  std::vector<mime::mailbox> to;
  std::string error;
  if (!mailboxes(f, "to", to, error)) co_return error_response(400, error);
  if (to.empty()) co_return error_response(400, "'to' parameter is missing");
  const form_file* file = nullptr;
  for (const auto& x : form.files) {
    if (x.field == "message") file = &x;
  }
  std::string raw = file ? file->data : f.last("message");
  if (raw.empty()) co_return error_response(400, "'message' parameter is missing");
  // Line endings first: a bare LF could otherwise hide a field from the checks below.
  if (!submission::is_crlf(raw)) raw = submission::to_crlf(raw);
  const auto froms = submission::header_values(raw, "From");
  const auto from = froms.size() == 1 ? mime::parse_single_mailbox(froms[0]) : std::nullopt;
  if (!from) co_return error_response(400, "the message needs exactly one From field with one mailbox");
  msg.mail_from = from->address;
  if (!sends_for(settings, msg.mail_from))
    co_return error_response(403, "From: " + std::string(mime::domain_part(msg.mail_from)) + " is not a sending domain of this account");
  for (const auto& m : to) msg.recipients.push_back(m.address);
  options o;
  if (!read_options(f, o, error)) co_return error_response(400, error);
  msg.tags = o.tags;
  msg.send_at = o.send_at;
  if (o.testmode) co_return queued_response("testmode." + msg.mail_from);
  submitted s = co_await a.submit_raw(msg, raw);
  if (!s.ok) co_return error_response(s.status, s.error);
  co_return queued_response(s.message_id);
}

/// Fills the parts of the message every recipient shares; false with `error` set.
bool read_message(const fields& f, const form_data& form, composed_message& msg, std::string& error) {
  const auto from_values = f.all("from");
  if (from_values.empty()) return error = "'from' parameter is missing", false;
  const auto from = mime::parse_single_mailbox(from_values.back());
  if (!from) return error = "'from' parameter is not a valid address: " + from_values.back(), false;
  msg.spec.from = from->display;
  msg.mail_from = from->address;
  msg.spec.subject = f.last("subject");
  msg.spec.text = f.last("text");
  msg.spec.html = f.last("html");
  if (msg.spec.text.empty() && msg.spec.html.empty())
    return error = "Need at least one of 'text' or 'html' parameters specified", false;
  msg.spec.reply_to = f.last("h:Reply-To");
  for (auto& [name, value] : f.with_prefix("h:")) {
    if (!beast::iequals(name, "Reply-To")) msg.spec.headers.emplace_back(name, value);
  }
  json::object variables;
  for (auto& [name, value] : f.with_prefix("v:")) variables[name] = value;
  if (!variables.empty()) msg.spec.headers.emplace_back("X-Mailgun-Variables", json::serialize(variables));
  for (const auto& file : form.files) {
    if (file.field != "attachment" && file.field != "inline") continue;
    mime::attachment att;
    att.filename = file.filename;
    att.content_type = file.content_type.empty() ? "application/octet-stream" : file.content_type;
    att.data = file.data;
    att.inline_part = file.field == "inline";
    if (att.inline_part) {
      // Mailgun's cid is the file name; characters a Content-ID cannot hold become '_'.
      att.content_id = file.filename;
      for (auto& c : att.content_id) {
        if (c <= 32 || c >= 127 || c == '<' || c == '>') c = '_';
      }
    }
    msg.spec.attachments.push_back(std::move(att));
  }
  options o;
  if (!read_options(f, o, error)) return false;
  msg.tags = o.tags;
  msg.send_at = o.send_at;
  return true;
}

asio::awaitable<response> send_message(api& a, const fields& f, const form_data& form, composed_message& msg,
                                       const config::tenant_settings* settings) {
  std::string error;
  if (!read_message(f, form, msg, error)) co_return error_response(400, error);
  if (!sends_for(settings, msg.mail_from))
    co_return error_response(403, "'from' parameter: " + std::string(mime::domain_part(msg.mail_from)) + " is not a sending domain of this account");
  std::vector<mime::mailbox> to, cc, bcc;
  if (!mailboxes(f, "to", to, error) || !mailboxes(f, "cc", cc, error) || !mailboxes(f, "bcc", bcc, error))
    co_return error_response(400, error);
  if (to.empty()) co_return error_response(400, "'to' parameter is missing");
  if (to.size() + cc.size() + bcc.size() > a.services().max_recipients)
    co_return error_response(400, "Too many recipients: at most " + std::to_string(a.services().max_recipients));
  const bool testmode = yes(f.last("o:testmode"));

  const auto batch_text = f.last("recipient-variables");
  if (batch_text.empty()) {
    for (const auto& m : to) msg.spec.to.push_back(m.display);
    for (const auto& m : cc) msg.spec.cc.push_back(m.display);
    for (auto* list : {&to, &cc, &bcc}) {
      for (const auto& m : *list) msg.recipients.push_back(m.address);
    }
    if (testmode) {
      auto built = mime::build(msg.spec);
      if (!built.error.empty()) co_return error_response(400, built.error);
      co_return queued_response("testmode@" + a.services().hostname);
    }
    submitted s = co_await a.submit(msg);
    if (!s.ok) co_return error_response(s.status, s.error);
    co_return queued_response(s.message_id);
  }

  // Batch sending: one message per 'to' recipient, with %recipient.KEY% filled in.
  const auto parsed = parse_json_object(batch_text);
  if (!parsed.error.empty()) co_return error_response(400, "'recipient-variables' parameter: " + parsed.error);
  if (!cc.empty() || !bcc.empty())
    co_return error_response(400, "'cc' and 'bcc' cannot be combined with 'recipient-variables'");
  std::string first_id;
  for (const auto& m : to) {
    composed_message one = msg;
    const auto* vars = parsed.object.if_contains(m.address);
    const json::object empty;
    const json::object& v = vars && vars->is_object() ? vars->get_object() : empty;
    one.spec.subject = substitute_recipient_variables(msg.spec.subject, v);
    one.spec.text = substitute_recipient_variables(msg.spec.text, v);
    one.spec.html = substitute_recipient_variables(msg.spec.html, v);
    one.spec.to = {m.display};
    one.recipients = {m.address};
    if (testmode) continue;
    submitted s = co_await a.submit(one);
    if (!s.ok) co_return error_response(s.status, s.error);
    if (first_id.empty()) first_id = s.message_id;
  }
  co_return queued_response(first_id.empty() ? "testmode@" + a.services().hostname : first_id);
}

}  // namespace

std::string substitute_recipient_variables(std::string_view text, const json::object& variables) {
  static constexpr std::string_view marker = "%recipient.";
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const auto start = text.find(marker, pos);
    const auto end = start == std::string_view::npos ? start : text.find('%', start + marker.size());
    if (end == std::string_view::npos) {
      out.append(text.substr(pos));
      return out;
    }
    out.append(text.substr(pos, start - pos));
    const auto key = text.substr(start + marker.size(), end - start - marker.size());
    if (const auto* v = variables.if_contains(key)) out += scalar_text(*v).value_or(json::serialize(*v));
    pos = end + 1;
  }
}

asio::awaitable<response> handle_mailgun(api& a, request& req, const std::string& tenant,
                                         const config::tenant_settings* settings, std::string_view path) {
  // /v3/{domain}/messages or /v3/{domain}/messages.mime
  const auto rest = path.substr(4);
  const auto slash = rest.find('/');
  const std::string domain(rest.substr(0, slash));
  const auto endpoint = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (endpoint != "messages" && endpoint != "messages.mime")
    co_return error_response(404, "no such endpoint: " + std::string(path));
  if (req.method() != bhttp::verb::post) co_return error_response(405, "use POST");
  bool known = false;
  for (const auto& d : settings ? settings->sending_domains : std::vector<std::string>{}) known = known || beast::iequals(d, domain);
  if (!known) co_return error_response(404, "Domain not found: " + domain);

  const form_data form = parse_body(req);
  if (!form.error.empty()) co_return error_response(400, form.error);
  const fields f(form);
  composed_message msg;
  msg.tenant = tenant;
  if (endpoint == "messages.mime") {
    response res = co_await send_mime(a, f, form, msg, settings);
    co_return res;
  }
  response res = co_await send_message(a, f, form, msg, settings);
  co_return res;
}

}  // namespace postern::ingress::http
