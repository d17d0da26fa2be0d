// The template endpoints of the native API and the rendering of templated messages.

#include "ingress/http/api.hpp"
#include "ingress/http/json_reader.hpp"

#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <ctime>

namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace postern::ingress::http {
namespace {

json::object template_json(const templates::message_template& t) {
  json::array names;
  for (const auto* part : {&t.subject, &t.text, &t.html}) {
    for (auto& n : templates::names_used(*part)) {
      if (std::find(names.begin(), names.end(), json::value(n)) == names.end()) names.push_back(json::string(n));
    }
  }
  return {{"name", t.name}, {"subject", t.subject}, {"text", t.text}, {"html", t.html},
          {"builtin", t.builtin}, {"variables", std::move(names)}};
}

response render_refusal(std::string_view template_name, std::string_view part, const templates::template_error& e) {
  json::object body{{"message", "template " + std::string(template_name) + ", " + std::string(part) + " line " +
                                    std::to_string(e.line) + ": " + e.message},
                    {"template", template_name},
                    {"part", part},
                    {"line", e.line}};
  if (!e.variable.empty()) body["variable"] = e.variable;
  return json_response(422, body);
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &tm);
  return text;
}

}  // namespace

std::optional<templates::message_template> api::find_template(const tenant_ref& tenant, std::string_view name) {
  if (auto own = services_.state.get_template(tenant.name, name)) return own;
  return templates::find_builtin(name);
}

response api::templates_route(request& req, const tenant_ref& tenant, std::string_view name) {
  if (name.empty()) {
    if (req.method() != bhttp::verb::get) return error_response(405, "use GET");
    json::array list;
    std::vector<std::string> seen;
    for (const auto& t : services_.state.list_templates(tenant.name)) {
      list.push_back(template_json(t));
      seen.push_back(t.name);
    }
    for (const auto& t : templates::builtin_templates()) {
      if (std::find(seen.begin(), seen.end(), t.name) == seen.end()) list.push_back(template_json(t));
    }
    return json_response(200, json::object{{"templates", std::move(list)}});
  }
  if (!templates::valid_template_name(name))
    return error_response(400, "template names are 1 to 64 letters, digits, '_', '-' or '.'");
  switch (req.method()) {
    case bhttp::verb::get: {
      auto t = find_template(tenant, name);
      if (!t) return error_response(404, "no template " + std::string(name));
      return json_response(200, template_json(*t));
    }
    case bhttp::verb::put: {
      const auto body = parse_json_object(req.body());
      if (!body.error.empty()) return error_response(400, body.error);
      json_reader r(body.object);
      templates::message_template t{std::string(name), r.string("subject").value_or(""), r.string("text").value_or(""),
                                    r.string("html").value_or(""), false};
      r.refuse_unknown_fields();
      if (r.ok() && t.subject.empty()) r.fail("subject", "missing");
      if (r.ok() && t.text.empty() && t.html.empty()) r.fail("text", "text or html is needed");
      if (!r.ok()) return error_response(400, r.error());
      for (auto [part, source] : {std::pair{"subject", &t.subject}, std::pair{"text", &t.text}, std::pair{"html", &t.html}}) {
        if (auto e = templates::check_syntax(*source)) return render_refusal(name, part, *e);
      }
      const bool existed = services_.state.get_template(tenant.name, name).has_value();
      services_.state.put_template(tenant.name, t);
      return json_response(existed ? 200 : 201, template_json(t));
    }
    case bhttp::verb::delete_:
      if (!services_.state.delete_template(tenant.name, name))
        return error_response(404, templates::find_builtin(name) ? "template " + std::string(name) +
                                                                       " is built in and cannot be deleted"
                                                                 : "no template " + std::string(name));
      return response{bhttp::status::no_content, 11};
    default:
      return error_response(405, "use GET, PUT or DELETE");
  }
}

std::variant<std::vector<composed_message>, response> api::expand(native_request& req, const tenant_ref& tenant) {
  std::vector<composed_message> out;
  if (!req.render) {
    out.push_back(std::move(req.msg));
    return out;
  }
  templates::message_template source{"inline", req.msg.spec.subject, req.msg.spec.text, req.msg.spec.html, false};
  if (!req.template_name.empty()) {
    auto found = find_template(tenant, req.template_name);
    if (!found) return error_response(422, "template " + req.template_name + " does not exist");
    source = *found;
    if (!req.msg.spec.subject.empty()) source.subject = req.msg.spec.subject;
  }
  templates::variables base{{"today", today()}};
  if (tenant.settings) {
    base["company_name"] = tenant.settings->company_name;
    base["company_url"] = tenant.settings->company_url;
  }
  for (auto& [k, v] : req.variables) base[k] = v;

  // One message, or one per 'to' recipient with that recipient's variables on top.
  const bool per_recipient = !req.per_recipient.empty();
  const std::size_t count = per_recipient ? req.msg.recipients.size() : 1;
  for (std::size_t i = 0; i < count; ++i) {
    composed_message one = req.msg;
    templates::variables values = base;
    if (per_recipient) {
      one.recipients = {req.msg.recipients[i]};
      one.spec.to = {req.msg.spec.to[i]};
      if (auto it = req.per_recipient.find(req.msg.recipients[i]); it != req.per_recipient.end()) {
        for (auto& [k, v] : it->second) values[k] = v;
      }
    }
    const struct {
      const char* part;
      const std::string* source;
      std::string* target;
      templates::escaping mode;
    } parts[] = {{"subject", &source.subject, &one.spec.subject, templates::escaping::none},
                 {"text", &source.text, &one.spec.text, templates::escaping::none},
                 {"html", &source.html, &one.spec.html, templates::escaping::html}};
    for (const auto& p : parts) {
      auto r = templates::render(*p.source, values, p.mode);
      if (r.error) return render_refusal(source.name, p.part, *r.error);
      *p.target = std::move(r.text);
    }
    out.push_back(std::move(one));
  }
  return out;
}

}  // namespace postern::ingress::http
