// Campaigns (/v1/campaigns), saved audiences (/v1/audiences) and one-click unsubscribe links
// (/unsubscribe/TOKEN). Everything here runs on the API's blocking pool.

#include "contacts/audience_json.hpp"
#include "ingress/http/api.hpp"
#include "ingress/http/json_reader.hpp"
#include "logging/log.hpp"
#include "mime/address.hpp"
#include "submission/header_block.hpp"

#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <cctype>

namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace postern::ingress::http {
namespace {

/// Text with runs of white space made one space: a re-wrapped body is the same content.
std::string normalized(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

json::object entry_json(const campaign::report_entry& e) {
  return {{"email", e.email}, {"first_name", e.first_name}, {"last_name", e.last_name}};
}

json::array drops_json(const std::vector<campaign::drop_count>& drops) {
  json::array out;
  for (const auto& d : drops) out.push_back(json::object{{"policy", d.policy}, {"reason", d.reason}, {"count", d.count}});
  return out;
}

json::object report_json(const campaign::report& rep) {
  std::uint64_t dropped = 0;
  for (const auto& d : rep.drops) dropped += d.count;
  json::array sample, recipients;
  for (const auto& e : rep.sample) sample.push_back(entry_json(e));
  for (const auto& e : rep.recipients) recipients.push_back(entry_json(e));
  json::object out{{"selected", rep.selected}, {"dropped", dropped},        {"drops", drops_json(rep.drops)},
                   {"remaining", rep.remaining}, {"cost", rep.cost},      {"sample", std::move(sample)}};
  if (!rep.recipients.empty()) {
    const bool truncated = rep.recipients.size() < rep.remaining;
    out["recipients"] = std::move(recipients);
    out["recipients_truncated"] = truncated;
  }
  return out;
}

/// A campaign refused whole: 422 for a permanent refusal, 503 for "later", naming the policy.
response refused_response(const campaign::refusal& r) {
  auto res = json_response(r.reply.transient() ? 503 : 422,
                           json::object{{"message", r.reply.text}, {"policy", r.policy},
                                        {"code", r.reply.code}, {"enhanced", r.reply.enhanced}});
  if (r.reply.transient()) res.set(bhttp::field::retry_after, "60");
  return res;
}

json::object record_json(const campaign::campaign_record& c) {
  json::object out{{"id", c.id},
                   {"name", c.name},
                   {"state", campaign::to_string(c.state)},
                   {"created", format_rfc3339(c.created)},
                   {"selected", c.selected},
                   {"cost", c.cost},
                   {"list", c.list},
                   {"resend", c.resend},
                   {"fingerprint", c.fingerprint}};
  out["audience"] = parse_json_object(c.audience).object;
  out["definition"] = parse_json_object(c.definition).object;
  if (c.started.time_since_epoch().count() != 0) out["started"] = format_rfc3339(c.started);
  if (c.finished.time_since_epoch().count() != 0) out["finished"] = format_rfc3339(c.finished);
  return out;
}

json::object progress_json(const campaign::progress& p) {
  auto out = record_json(p.record);
  out["progress"] = json::object{{"selected", p.record.selected},
                                 {"dropped", p.own.dropped},
                                 {"waiting", p.own.pending},
                                 {"queued", p.own.queued},
                                 {"delivered", p.spooled.delivered},
                                 {"deferred", p.spooled.deferred + p.spooled.queued},
                                 {"failed", p.spooled.failed - p.spooled.cancelled},
                                 {"cancelled", p.own.cancelled}};
  out["drops"] = drops_json(p.drops);
  return out;
}

}  // namespace

std::variant<campaign::definition, response> api::read_campaign(const json::object& body, const tenant_ref& tenant) {
  json_reader r(body);
  campaign::definition def;
  def.tenant = tenant.name;
  def.name = r.string("name").value_or("");
  if (r.ok() && def.name.empty()) r.fail("name", "missing");
  const auto* audience = r.value("audience");
  if (r.ok() && !audience) r.fail("audience", "missing: a rule object, or the name of a saved audience");
  if (r.ok() && audience->is_string()) {
    const auto saved = services_.campaign_data->find_audience(tenant.name, std::string(audience->get_string()));
    if (!saved) return error_response(404, "audience: no saved audience " + std::string(audience->get_string()));
    def.rule = contacts::audience_from_text(saved->rule).value_or(contacts::audience_rule{});
  } else if (r.ok() && audience->is_object()) {
    json_reader a(audience->get_object(), "audience.");
    contacts::read_audience(a, def.rule);
    r.adopt(a);
  } else if (r.ok()) {
    r.fail("audience", "expected a rule object or the name of a saved audience");
  }
  def.audience_key = json::serialize(contacts::audience_to_json(def.rule));
  def.list = r.string("list").value_or(def.rule.lists.size() == 1 ? def.rule.lists.front() : "");
  def.tags = r.strings("tags");
  def.resend = r.boolean("resend", false);
  r.boolean("dry_run", false);  // read by the caller; known here
  r.boolean("draft", false);
  r.boolean("list_recipients", false);
  native_request message;
  const auto* msg = r.value("message");
  if (r.ok() && (!msg || !msg->is_object())) r.fail("message", "expected an object: from, subject, text/html or template");
  // The sender may stand beside the message or in it; the stream, if given, is marketing.
  const auto from = r.string("from");
  if (const auto stream = r.string("stream"); r.ok() && stream && *stream != "marketing")
    r.fail("stream", "campaigns are marketing mail: \"marketing\" or leave it out");
  r.refuse_unknown_fields();
  if (r.ok() && from && msg->get_object().contains("from")) r.fail("from", "give the sender here or in message, not both");
  if (!r.ok()) return error_response(400, r.error());
  json::object message_fields = msg->get_object();
  if (from) message_fields["from"] = *from;
  std::string error;
  if (!read_native_message(message_fields, message, error, message_use::campaign))
    return error_response(400, "message." + error);
  if (!sends_for(tenant.settings, message.msg.mail_from))
    return error_response(403, "message.from: " + std::string(mime::domain_part(message.msg.mail_from)) + " is not a sending domain of tenant " +
                                   tenant.name);
  message.msg.tenant = tenant.name;
  auto expanded = expand(message, tenant);
  if (auto* refusal = std::get_if<response>(&expanded)) return std::move(*refusal);
  auto& composed = std::get<std::vector<composed_message>>(expanded).front();
  composed.spec.date = std::chrono::system_clock::now();
  auto built = mime::build(composed.spec);  // no Message-ID: each recipient's message gets its own
  if (!built.error.empty()) return error_response(400, "message." + built.error);
  def.mail_from = composed.mail_from;
  // Each recipient's copy gets its own Date (and Message-ID) when it is handed to the spool:
  // a paced or paused campaign may send the last copy days after the first.
  def.raw = submission::remove_header(built.raw, "Date");
  def.content_key = composed.spec.from + '\0' + normalized(composed.spec.subject) + '\0' +
                    normalized(composed.spec.text) + '\0' + normalized(composed.spec.html);
  def.json = json::serialize(body);
  return def;
}

response api::campaigns_route(request& req, const tenant_ref& tenant, std::string_view rest) {
  auto& campaigns = *services_.campaigns;
  const auto method = req.method();
  if (rest.empty() && method == bhttp::verb::post) {
    const auto body = parse_json_object(req.body());
    if (!body.error.empty()) return error_response(400, body.error);
    auto read = read_campaign(body.object, tenant);
    if (auto* refusal = std::get_if<response>(&read)) return std::move(*refusal);
    const auto& def = std::get<campaign::definition>(read);
    const auto flag = [&](const char* key) {
      const auto* v = body.object.if_contains(key);
      return v && v->is_bool() && v->get_bool();
    };
    if (flag("dry_run")) {
      const auto rep = campaigns.dry_run(def, flag("list_recipients"));
      auto out = report_json(rep);
      out["dry_run"] = true;
      if (rep.refused)
        out["refused"] = json::object{{"policy", rep.refused->policy}, {"message", rep.refused->reply.text},
                                      {"code", rep.refused->reply.code}};
      return json_response(200, out);
    }
    const bool draft = flag("draft");
    auto [record, rep] = campaigns.create(def, draft);
    if (rep.refused) return refused_response(*rep.refused);
    return json_response(draft ? 201 : 202, json::object{{"id", record.id},
                                                         {"state", campaign::to_string(record.state)},
                                                         {"report", report_json(rep)}});
  }
  if (rest.empty() && method == bhttp::verb::get) {
    auto url = boost::urls::parse_origin_form(req.target());
    std::size_t limit = 50;
    campaign::time_point before{};
    for (auto param : url ? url->params() : boost::urls::params_view()) {
      const std::string key(param.key), value(param.value);
      if (key == "limit") limit = query_limit(value);
      else if (key == "before" && parse_rfc3339(value)) before = *parse_rfc3339(value);
      else return error_response(400, key + ": unknown parameter, or a bad value");
    }
    if (limit < 1 || limit > 500) return error_response(400, "limit: 1 to 500");
    json::array items;
    for (const auto& c : services_.campaign_data->list(tenant.name, limit, before)) items.push_back(record_json(c));
    return json_response(200, json::object{{"items", std::move(items)}});
  }
  if (rest.empty()) return error_response(405, "use GET or POST");
  // /{id}, /{id}/recipients, /{id}/pause|resume|cancel|send|test
  const auto slash = rest.find('/', 1);
  const std::string id(rest.substr(1, slash == std::string_view::npos ? std::string_view::npos : slash - 1));
  const std::string_view action = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (action.empty()) {
    if (method != bhttp::verb::get) return error_response(405, "use GET");
    const auto p = campaigns.status(tenant.name, id);
    if (!p) return error_response(404, "no campaign " + id);
    return json_response(200, progress_json(*p));
  }
  if (action == "recipients") return campaign_recipients(req, tenant, id);
  if (method != bhttp::verb::post) return error_response(405, "use POST");
  if (action == "pause" || action == "resume" || action == "cancel") {
    auto changed = campaigns.change(tenant.name, id, action);
    if (auto* error = std::get_if<std::string>(&changed))
      return error_response(error->starts_with("no campaign") ? 404 : 409, *error);
    return json_response(200, json::object{{"id", id}, {"state", campaign::to_string(std::get<campaign::campaign_state>(changed))}});
  }
  const auto record = services_.campaign_data->find(tenant.name, id);
  if (!record) return error_response(404, "no campaign " + id);
  if (action == "send") {
    // The draft's message as it was made (and tested): a template changed since does not
    // change what this campaign sends.
    const auto rep = campaigns.send_draft(*record);
    if (!rep) return error_response(409, "campaign " + id + " is " + campaign::to_string(record->state) + ", not a draft");
    if (rep->refused) return refused_response(*rep->refused);
    return json_response(202, json::object{{"id", id}, {"state", "sending"}, {"report", report_json(*rep)}});
  }
  if (action == "test") return campaign_test(req, tenant, *record);
  return error_response(404, "no such endpoint");
}

response api::campaign_recipients(request& req, const tenant_ref& tenant, const std::string& id) {
  if (req.method() != bhttp::verb::get) return error_response(405, "use GET");
  if (!services_.campaign_data->find(tenant.name, id)) return error_response(404, "no campaign " + id);
  auto url = boost::urls::parse_origin_form(req.target());
  std::optional<campaign::recipient_state> state;
  std::int64_t after = 0;
  std::size_t limit = 100;
  for (auto param : url ? url->params() : boost::urls::params_view()) {
    const std::string key(param.key), value(param.value);
    if (key == "limit") limit = query_limit(value);
    else if (auto seq = key == "page" ? whole_number(value) : std::nullopt) after = *seq;
    else if (key == "state" && (value == "pending" || value == "queued" || value == "dropped" || value == "cancelled"))
      state = value == "pending" ? campaign::recipient_state::pending
              : value == "queued" ? campaign::recipient_state::queued
              : value == "dropped" ? campaign::recipient_state::dropped
                                   : campaign::recipient_state::cancelled;
    else return error_response(400, key + ": unknown parameter, or a bad value");
  }
  if (limit < 1 || limit > 1000) return error_response(400, "limit: 1 to 1000");
  const auto rows = services_.campaign_data->recipients(id, state, after, limit);
  // Addresses the contact chose to hide stay hidden here too.
  std::vector<std::string> emails;
  for (const auto& r : rows) emails.push_back(r.email);
  std::map<std::string, bool> shown;
  for (const auto& c : services_.contacts.lookup(tenant.name, emails)) shown[c.person.email] = c.person.allowed.show_address;
  json::array items;
  for (const auto& r : rows) {
    const auto it = shown.find(r.email);
    const bool show = it == shown.end() || it->second;
    json::object item{{"email", show ? r.email : contacts::mask_address(r.email)}, {"state", campaign::to_string(r.state)}};
    if (!r.policy.empty()) item["policy"] = r.policy;
    if (!r.reason.empty()) item["reason"] = r.reason;
    if (!r.queue_id.empty()) item["message_id"] = r.queue_id;
    items.push_back(std::move(item));
  }
  json::object out{{"items", std::move(items)}};
  if (rows.size() == limit) out["next_page"] = std::to_string(rows.back().seq);
  return json_response(200, out);
}

response api::campaign_test(request& req, const tenant_ref& tenant, const campaign::campaign_record& record) {
  const auto body = parse_json_object(req.body());
  if (!body.error.empty()) return error_response(400, body.error);
  json_reader r(body.object);
  const auto to = r.strings("to");
  r.refuse_unknown_fields();
  if (r.ok() && (to.empty() || to.size() > 20)) r.fail("to", "one to 20 addresses");
  if (!r.ok()) return error_response(400, r.error());
  json::array sent;
  for (const auto& address : to) {
    // A test copy is an ordinary marketing message to the given address: not part of the
    // campaign's progress, and marked as a test for whoever reads it.
    submission::request msg;
    msg.tenant = tenant.name;
    msg.stream = postern::mail_stream::marketing;
    msg.tags = record.tags;
    msg.tags.push_back("campaign-test");
    msg.env.mail_from = record.mail_from;
    msg.env.recipients.push_back({0, address, "", postern::notify_default});
    msg.raw = submission::format_field("To", "<" + address + ">") +
              submission::format_field("X-Postern-Campaign-Test", record.id) + record.raw;
    msg.trace.protocol = "HTTP";
    msg.source = "http";
    const auto result = services_.submission.submit_wait(std::move(msg));
    if (!result.accepted) return error_response(result.reply.transient() ? 503 : 400, address + ": " + result.reply.text);
    sent.push_back(json::object{{"address", address}, {"id", result.queue_id.empty() ? json::value() : json::value(result.queue_id)}});
  }
  return json_response(202, json::object{{"campaign", record.id}, {"sent", std::move(sent)}});
}

response api::audiences_route(request& req, const tenant_ref& tenant, std::string_view name) {
  auto& store = *services_.campaign_data;
  const auto method = req.method();
  if (name.empty() && method == bhttp::verb::get) {
    json::array items;
    for (const auto& a : store.audiences(tenant.name))
      items.push_back(json::object{{"name", a.name}, {"audience", parse_json_object(a.rule).object},
                                   {"created", format_rfc3339(a.created)}});
    return json_response(200, json::object{{"items", std::move(items)}});
  }
  if (name.empty() && method == bhttp::verb::post) {
    const auto body = parse_json_object(req.body());
    if (!body.error.empty()) return error_response(400, body.error);
    json_reader r(body.object);
    const auto audience_name = r.string("name").value_or("");
    if (r.ok() && !templates::valid_template_name(audience_name))
      r.fail("name", "1 to 64 of letters, digits, '_', '-' and '.'");
    if (r.ok() && audience_name == "preview") r.fail("name", "\"preview\" is taken by /v1/audiences/preview");
    const auto* rule_value = r.value("audience");
    contacts::audience_rule rule;
    if (r.ok() && (!rule_value || !rule_value->is_object())) r.fail("audience", "expected a rule object");
    if (r.ok()) {
      json_reader a(rule_value->get_object(), "audience.");
      contacts::read_audience(a, rule);
      r.adopt(a);
    }
    r.refuse_unknown_fields();
    if (!r.ok()) return error_response(400, r.error());
    const auto canonical = contacts::audience_to_json(rule);
    store.save_audience(tenant.name, {audience_name, json::serialize(canonical), std::chrono::system_clock::now()});
    return json_response(200, json::object{{"name", audience_name}, {"audience", canonical}});
  }
  if (name.empty()) return error_response(405, "use GET or POST");
  const std::string key(name.substr(1));
  if (method == bhttp::verb::delete_) {
    if (!store.delete_audience(tenant.name, key)) return error_response(404, "no saved audience " + key);
    return json_response(200, json::object{{"deleted", key}});
  }
  if (method != bhttp::verb::get) return error_response(405, "use GET or DELETE");
  const auto saved = store.find_audience(tenant.name, key);
  if (!saved) return error_response(404, "no saved audience " + key);
  // With the count it selects now: an audience is a rule, its members change with the data.
  const auto rule = contacts::audience_from_text(saved->rule).value_or(contacts::audience_rule{});
  const auto preview = services_.contacts.preview(tenant.name, rule, std::chrono::system_clock::now(), 0);
  return json_response(200, json::object{{"name", saved->name}, {"audience", parse_json_object(saved->rule).object},
                                         {"created", format_rfc3339(saved->created)}, {"count", preview.count}});
}

response api::unsubscribe_route(request& req, std::string_view token) {
  const auto target = services_.unsubscribe ? services_.unsubscribe->verify(token) : std::nullopt;
  const auto page = [](unsigned status, std::string_view text) {
    response res{static_cast<bhttp::status>(status), 11};
    res.set(bhttp::field::content_type, "text/html; charset=utf-8");
    res.body() = "<!doctype html><meta charset=utf-8><title>Unsubscribe</title><p>" + std::string(text) + "</p>\n";
    return res;
  };
  if (!target) return page(404, "This unsubscribe link is not valid.");
  if (req.method() == bhttp::verb::get || req.method() == bhttp::verb::head) {
    // RFC 8058: a GET must not unsubscribe (mail scanners follow links); it offers the POST.
    return page(200, "<form method=post><button type=submit>Unsubscribe</button></form>");
  }
  if (req.method() != bhttp::verb::post) return page(405, "Use the button on this page.");
  contacts::contact_update u;
  u.email = target->email;
  if (target->list.empty()) u.unsubscribed = true;
  else u.leave.push_back(target->list);
  services_.contacts.upsert(target->tenant, {u}, std::chrono::system_clock::now());
  logging::get("http")->info("unsubscribed <{}> of tenant {} from {} (campaign {})", target->email, target->tenant,
                             target->list.empty() ? std::string("everything") : "list " + target->list,
                             target->campaign.empty() ? std::string("-") : target->campaign);
  return page(200, "You are unsubscribed.");
}

}  // namespace postern::ingress::http
