#include "campaign/campaign_service.hpp"

#include "contacts/audience_json.hpp"
#include "logging/log.hpp"
#include "spool/queue_id.hpp"
#include "tenants/directory.hpp"

#include <boost/json/serialize.hpp>

#include <map>
#include <unordered_map>

namespace postern::campaign {
namespace {

constexpr std::size_t sample_size = 10;
constexpr std::size_t max_listed = 10000;     // recipients a dry run lists, at most
constexpr std::size_t feed_batch = 200;       // recipients per round of the feeder
constexpr std::size_t rounds_per_turn = 25;   // rounds fed before a pause or cancel may act
constexpr std::size_t record_chunk = 10000;   // recipients per insert at a campaign's start
constexpr std::chrono::seconds status_max_age_cap{30};  // however long counting a campaign took

/// Thrown inside a campaign's start transaction to roll it back when a policy refuses.
struct refused_start {
  refusal why;
};

report_entry entry_of(const contacts::contact& c) {
  return {c.allowed.show_address ? c.email : contacts::mask_address(c.email),
          c.allowed.show_name ? c.first_name : contacts::mask_name(c.first_name),
          c.allowed.show_name ? c.last_name : contacts::mask_name(c.last_name)};
}

postern::contact_facts facts_of(const contacts::selected_contact& c) {
  postern::contact_facts f;
  f.contact_allowed = c.person.allowed.contact;
  f.unsubscribed = c.person.unsubscribed;
  f.left_lists = c.person.left;
  f.last_interaction = c.person.last_interaction;
  f.buyer = c.buyer;
  f.prospect = c.prospect;
  return f;
}

/// What became of one recipient walked through the chain, before the spool.
recipient_row outcome_of(const std::string& email, const submission::checked& checked) {
  recipient_row row;
  row.email = email;
  if (checked.refusal && !checked.refusal->reply.transient()) {
    row.state = recipient_state::dropped;
    // A refusal without a policy is the gateway's own check (an address it cannot send to).
    row.policy = checked.refused_by.empty() ? "gateway" : checked.refused_by;
    row.reason = checked.refusal->reply.text;
  } else if (!checked.suppressed.empty()) {
    row.state = recipient_state::dropped;
    row.policy = checked.suppressed.front().policy;
    row.reason = checked.suppressed.front().reason;
  }
  return row;
}

definition definition_of(const campaign_record& c) {
  definition def;
  def.tenant = c.tenant;
  def.name = c.name;
  def.rule = contacts::audience_from_text(c.audience).value_or(contacts::audience_rule{});
  def.list = c.list;
  def.mail_from = c.mail_from;
  def.raw = c.raw;
  def.audience_key = c.audience;
  def.tags = c.tags;
  def.resend = c.resend;
  def.json = c.definition;
  return def;
}

postern::campaign_info info_of_record(const campaign_record& c) {
  return {c.id, c.name, c.list, c.fingerprint, c.resend};
}

}  // namespace

postern::campaign_info info_of(const definition& def, std::string id) {
  // The tenant, what the mail says and who it is for: the same three give the same campaign.
  return {std::move(id), def.name, def.list,
          tenants::sha256_hex(def.tenant + '\0' + def.content_key + '\0' + def.audience_key), def.resend};
}

campaign_service::campaign_service(submission::service& submission, spool::spool& spool,
                                   contacts::contact_store& contacts, campaign_store& store,
                                   const policies::chain& policies, std::chrono::milliseconds status_max_age)
    : submission_(submission),
      spool_(spool),
      contacts_(contacts),
      store_(store),
      policies_(policies),
      status_max_age_(status_max_age) {}

campaign_service::~campaign_service() { stop(); }

void campaign_service::run() {
  for (const auto& c : store_.starting()) {
    logging::get("campaign")->warn("{}: campaign \"{}\" was still starting when postern stopped; it is a draft again",
                                   c.id, c.name);
    store_.abandon(c.id, true);
  }
  // Campaigns that ended before their final states were kept with them: counted now, while
  // the spool still has their messages (its history purge comes ten minutes after start).
  for (const auto& id : store_.ended_without_final_spool()) store_.set_final_spool(id, spool_.campaign_stats(id));
  if (!feeder_.joinable()) feeder_ = std::thread([this] { feeder_loop(); });
}

void campaign_service::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (feeder_.joinable()) feeder_.join();
}

submission::request campaign_service::request_for(const definition& def, const postern::campaign_info& info,
                                                  const contacts::selected_contact& c, bool dry_run) const {
  submission::request req;
  req.tenant = def.tenant;
  req.stream = postern::mail_stream::marketing;
  req.tags = def.tags;
  req.campaign_id = info.id;
  req.env.mail_from = def.mail_from;
  req.env.recipients.push_back({0, c.person.email, "", postern::notify_default});
  // The address alone: check() refuses one that could not stand in a header.
  req.raw = "To: <" + c.person.email + ">\r\n" + def.raw;
  req.trace.protocol = "campaign";
  req.source = "campaign";
  // The spool stores one message per (campaign, recipient): a recipient fed again after a
  // crash gets the first message's id, not a second message.
  if (!dry_run) req.origin_key = "campaign:" + info.id + ":" + c.person.email;
  req.campaign = &info;
  req.contacts.push_back(facts_of(c));
  req.dry_run = dry_run;
  return req;
}

std::optional<refusal> campaign_service::check_campaign(const definition& def, const postern::campaign_info& info) {
  const std::vector<postern::recipient> none;
  const std::string no_id;
  const postern::submission_view view{def.tenant, postern::mail_stream::marketing, def.tags, no_id, def.mail_from,
                                      none, def.raw, info.id.empty(), &info, nullptr};
  const auto verdict = policies_.evaluate(view, postern::policy_stage::campaign);
  if (verdict.decision == postern::verdict::action::accept) return std::nullopt;
  return refusal{verdict.decided_by, verdict.reply};
}

report campaign_service::select(const definition& def, const postern::campaign_info& info, bool all_recipients,
                                const std::function<void(const recipient_row&)>& each) {
  report rep;
  std::map<std::pair<std::string, std::string>, std::uint64_t> drops;
  contacts_.select(def.tenant, def.rule, std::chrono::system_clock::now(), [&](contacts::selected_contact& c) {
    ++rep.selected;
    // Always in report mode: the real send records this selection, then feeds it.
    auto req = request_for(def, info, c, true);
    const auto checked = submission_.check(req);
    auto row = outcome_of(c.person.email, checked);
    if (row.state == recipient_state::dropped) {
      ++drops[{row.policy, row.reason}];
    } else {
      ++rep.remaining;
      rep.cost += checked.cost;
      row.cost = checked.cost;
      if (rep.sample.size() < sample_size) rep.sample.push_back(entry_of(c.person));
      if (all_recipients && rep.recipients.size() < max_listed) rep.recipients.push_back(entry_of(c.person));
    }
    if (each) each(row);
  });
  for (auto& [key, n] : drops) rep.drops.push_back({key.first, key.second, n});
  return rep;
}

report campaign_service::dry_run(const definition& def, bool all_recipients) {
  const auto info = info_of(def, "");
  if (auto refused = check_campaign(def, info)) {
    report rep;
    rep.refused = std::move(refused);
    return rep;
  }
  return select(def, info, all_recipients, nullptr);
}

std::pair<campaign_record, report> campaign_service::create(const definition& def, bool draft) {
  const auto now = std::chrono::system_clock::now();
  campaign_record record;
  record.id = "C" + spool::make_queue_id(now);
  record.tenant = def.tenant;
  record.name = def.name;
  record.state = draft ? campaign_state::draft : campaign_state::sending;
  record.definition = def.json;
  record.audience = def.audience_key;
  record.mail_from = def.mail_from;
  record.raw = def.raw;
  record.tags = def.tags;
  const auto info = info_of(def, record.id);
  record.fingerprint = info.fingerprint;
  record.resend = def.resend;
  record.list = def.list;
  record.created = now;
  if (auto refused = check_campaign(def, info)) {
    report rep;
    rep.refused = std::move(refused);
    return {record, rep};
  }
  if (!draft) return {record, *start(def, record)};
  auto rep = select(def, info, false, nullptr);
  record.selected = rep.selected;
  record.cost = rep.cost;
  store_.insert(record);
  return {record, rep};
}

std::optional<report> campaign_service::send_draft(const campaign_record& draft) {
  if (draft.state != campaign_state::draft) return std::nullopt;
  const auto def = definition_of(draft);
  const auto info = info_of_record(draft);
  if (auto refused = check_campaign(def, info)) {
    report rep;
    rep.refused = std::move(refused);
    return rep;
  }
  return start(def, draft);  // nothing when another request started or cancelled it first
}

std::optional<report> campaign_service::start(const definition& def, campaign_record record) {
  const bool was_draft = record.state == campaign_state::draft;
  const auto now = std::chrono::system_clock::now();
  // Claimed first: of two requests sending one draft, one goes on.
  if (was_draft && !store_.set_state(record.id, campaign_state::starting, {campaign_state::draft}, now))
    return std::nullopt;
  record.state = campaign_state::starting;
  if (!was_draft) store_.insert(record);
  const auto info = info_of_record(record);
  report rep;
  try {
    // The recipients are recorded in chunks of their own, without holding the store for the
    // whole selection: other campaigns, and policies reading their store for mail being
    // submitted meanwhile, wait for one chunk at most. A campaign that is `starting` is never
    // fed, and one left starting by a crash is put back to draft when postern starts.
    std::vector<recipient_row> chunk;
    rep = select(def, info, false, [&](const recipient_row& row) {
      chunk.push_back(row);
      if (chunk.size() == record_chunk) {
        store_.add_recipients(record.id, chunk);
        chunk.clear();
      }
    });
    store_.add_recipients(record.id, chunk);
    record.selected = rep.selected;
    record.cost = rep.cost;
    record.started = now;
    store_.set_totals(record.id, rep.selected, rep.cost, now);
    // One short transaction: what the policies record (credits debited, fingerprint kept) and
    // the campaign becoming one that is sent.
    store_.transaction([&] {
      auto summary = start_summary(record, info, rep);
      const auto verdict = policies_.campaign_start(summary);
      if (verdict.decision != postern::verdict::action::accept) throw refused_start{{verdict.decided_by, verdict.reply}};
      store_.set_state(record.id, campaign_state::sending, {campaign_state::starting}, now);
    });
  } catch (const refused_start& r) {
    store_.abandon(record.id, was_draft);
    rep.refused = r.why;
    return rep;
  } catch (...) {
    store_.abandon(record.id, was_draft);
    throw;
  }
  logging::get("campaign")->info("{}: campaign \"{}\" of {} started: {} selected, {} to send, cost {}", record.id,
                                 record.name, record.tenant, rep.selected, rep.remaining, rep.cost);
  wake_.notify_all();
  return rep;
}

std::optional<progress> campaign_service::status(std::string_view tenant, std::string_view id) {
  auto record = store_.find(tenant, id);
  if (!record) return std::nullopt;
  progress p;
  p.record = std::move(*record);
  const bool large = p.record.selected >= large_campaign;
  const auto now = std::chrono::steady_clock::now();
  std::uint64_t generation = 0;  // of a large campaign's count: kept only if no action came since
  if (large) {
    std::lock_guard lock(status_mutex_);
    if (auto it = status_cache_.find(id); it != status_cache_.end() && now - it->second.at < it->second.max_age) {
      p.own = it->second.own;
      p.spooled = it->second.spooled;
      p.drops = it->second.drops;
      return p;
    }
    generation = status_generation_;
  }
  p.own = store_.counts(id);
  // Once the end is reported the states are final, and kept with the campaign: the spool
  // deletes old messages (spool.keep_history).
  p.spooled = p.record.final_spool ? *p.record.final_spool : spool_.campaign_stats(id);
  p.drops = store_.drops(id);
  if (large) {
    // Kept for at least ten times as long as counting took: however often a progress page
    // polls, counting takes at most a tenth of the time (and of the spool's reader, which
    // the feeder shares).
    const std::chrono::steady_clock::duration counted_in = std::chrono::steady_clock::now() - now;
    const auto max_age = std::max<std::chrono::steady_clock::duration>(
        status_max_age_, std::min<std::chrono::steady_clock::duration>(10 * counted_in, status_max_age_cap));
    std::lock_guard lock(status_mutex_);
    std::erase_if(status_cache_, [&](const auto& entry) { return now - entry.second.at >= entry.second.max_age; });
    if (generation == status_generation_) status_cache_[std::string(id)] = {now, max_age, p.own, p.spooled, p.drops};
  }
  return p;
}

std::variant<campaign_state, std::string> campaign_service::change(std::string_view tenant, std::string_view id,
                                                                   std::string_view action) {
  // Never in the middle of a feeding round: a pause or cancel answered is one the feeder sees.
  // The feeder ends its turn after the round under way once it sees a change waiting.
  ++changes_waiting_;
  std::unique_lock feeding(feed_mutex_);
  --changes_waiting_;
  // Whoever acted sees the effect at once: the counts kept for status() go on the way out
  // (after the action, so that a status() meanwhile cannot keep those from before it).
  struct forget_counts {
    campaign_service& service;
    std::string id;
    ~forget_counts() {
      std::lock_guard lock(service.status_mutex_);
      service.status_cache_.erase(id);
      ++service.status_generation_;  // a count begun before the action is not kept
    }
  } forget{*this, std::string(id)};
  const auto record = store_.find(tenant, id);
  if (!record) return std::string("no campaign ") + std::string(id);
  const auto now = std::chrono::system_clock::now();
  const auto refuse = [&] {
    return std::string("cannot ") + std::string(action) + " a campaign that is " + to_string(record->state);
  };
  if (action == "pause") {
    if (!store_.set_state(id, campaign_state::paused, {campaign_state::sending}, now)) return refuse();
    return campaign_state::paused;
  }
  if (action == "resume") {
    if (!store_.set_state(id, campaign_state::sending, {campaign_state::paused}, now)) return refuse();
    wake_.notify_all();
    return campaign_state::sending;
  }
  if (action == "cancel") {
    // Cancelling a cancelled campaign again finishes what a failure may have left undone.
    if (record->state != campaign_state::cancelled &&
        !store_.set_state(id, campaign_state::cancelled,
                          {campaign_state::draft, campaign_state::sending, campaign_state::paused}, now))
      return refuse();
    unspooled_.erase(std::string(id));
    store_.cancel_pending(id);
    store_.mark_cancelled(id, spool_.cancel_campaign(id));
    // A draft never started: there is no end to report.
    if (record->state == campaign_state::draft) store_.mark_end_reported(id, {});  // nothing was spooled
    logging::get("campaign")->info("{}: campaign cancelled", id);
    wake_.notify_all();
    return campaign_state::cancelled;
  }
  return std::string("unknown action ") + std::string(action);
}

void campaign_service::feeder_loop() {
  auto log = logging::get("campaign");
  for (;;) {
    bool worked = false;
    try {
      for (const auto& c : store_.unfinished()) {
        // The end is looked for only once nothing is left to feed: a count over a large
        // campaign's recipients on every round would cost more than the feeding.
        const bool fed = c.state == campaign_state::sending && feed_some(c);
        worked = worked || fed;
        if (!fed) finish_if_done(c);
      }
    } catch (const std::exception& e) {
      // A database error: nothing is lost (pending recipients stay pending); try again soon.
      log->error("campaign feeder: {}", e.what());
    }
    std::unique_lock lock(mutex_);
    if (stopping_) return;
    if (!worked) wake_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stopping_; });
    if (stopping_) return;
  }
}

bool campaign_service::feed_some(const campaign_record& c) {
  std::lock_guard feeding(feed_mutex_);
  if (store_.state_of(c.id) != campaign_state::sending) return false;
  // Two rounds overlap: while the spool's writer commits one, this thread walks the next
  // through the chain. Both are recorded before the turn ends, so a pause or cancel (which
  // waits for feed_mutex_) never finds a round handed over but not recorded.
  std::unique_ptr<feed_round> previous;
  bool fed = false;
  bool wait_a_little = false;
  std::int64_t after = 0;
  const auto record = [&](std::unique_ptr<feed_round> done) {
    wait_spooled(*done);
    if (!done->settled.empty()) store_.update(c.id, done->settled);
    fed = fed || !done->settled.empty();
    for (const auto i : done->refused) unspooled_[c.id].push_back(std::move(done->to_spool[i]));
    wait_a_little = wait_a_little || done->paced || !done->refused.empty();
  };
  std::unique_ptr<feed_round> round;
  try {
    // Recipients that passed the chain but that the spool refused for now go first, without
    // the chain again (it would count them again); nothing new until they are in.
    if (auto waiting = unspooled_.find(c.id); waiting != unspooled_.end()) {
      round = std::make_unique<feed_round>();
      round->to_spool = std::move(waiting->second);
      unspooled_.erase(waiting);
      start_spooling(*round);
      record(std::move(round));  // what is refused again goes back, and this turn ends
    }
    for (std::size_t turn = 0; turn < rounds_per_turn && !wait_a_little && !yielding(); ++turn) {
      const auto rows = store_.pending(c.id, feed_batch, after);
      if (rows.empty()) break;
      after = rows.back().seq;
      round = check_round(c, rows);
      start_spooling(*round);
      if (previous) record(std::move(previous));
      wait_a_little = wait_a_little || round->paced;
      previous = std::move(round);
    }
    if (previous) record(std::move(previous));
  } catch (...) {
    // The spool still answers for what it was handed: wait before the rounds go. What it
    // took is found under its origin keys next time.
    if (round) wait_spooled(*round);
    if (previous) wait_spooled(*previous);
    throw;
  }
  if (wait_a_little) {
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, retry_pause, [this] { return stopping_; });
  }
  return fed;
}

std::unique_ptr<campaign_service::feed_round> campaign_service::check_round(const campaign_record& c,
                                                                            const std::vector<recipient_row>& rows) {
  const auto def = definition_of(c);
  const auto info = info_of_record(c);
  std::vector<std::string> emails;
  for (const auto& r : rows) emails.push_back(r.email);
  std::unordered_map<std::string, contacts::selected_contact> known;
  for (auto& s : contacts_.lookup(c.tenant, emails)) known.emplace(s.person.email, std::move(s));

  auto round = std::make_unique<feed_round>();
  std::vector<submission::request> requests;
  std::vector<std::string> keys;
  for (const auto& row : rows) {
    auto it = known.find(row.email);
    contacts::selected_contact contact;
    if (it != known.end()) contact = it->second;
    else contact.person.email = row.email;  // removed from the contacts since: no facts, policies decide
    requests.push_back(request_for(def, info, contact, false));
    keys.push_back(requests.back().origin_key);
  }
  // Fed before, and spooled, but not recorded here (a crash, a failed update): the spool has
  // it under its key. Not checked again: policies that count would count it twice.
  const auto spooled = spool_.find_origins(keys);
  // What the policies record for the round (frequency counts, say) commits once, before any
  // of it is spooled: a crash in between counts a message that was not sent, never the reverse.
  // What they record for a recipient that is not sent (a later policy dropped or deferred it)
  // is undone, whatever the order of the chain.
  store_.transaction([&] {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (auto queued = spooled.find(keys[i]); queued != spooled.end()) {
        round->settled.push_back({rows[i].seq, rows[i].email, recipient_state::queued, "", "", queued->second});
        continue;
      }
      submission::checked checked;
      recipient_row outcome;
      store_.keep_if([&] {
        checked = submission_.check(requests[i]);
        outcome = outcome_of(rows[i].email, checked);
        return !(checked.refusal && checked.refusal->reply.transient()) && outcome.state != recipient_state::dropped;
      });
      if (checked.refusal && checked.refusal->reply.transient()) {
        round->paced = true;  // pacing, or a policy that wants a moment: the rest waits its turn
        return;
      }
      if (outcome.state == recipient_state::dropped) {
        outcome.seq = rows[i].seq;
        round->settled.push_back(std::move(outcome));
      } else {
        round->to_spool.push_back({rows[i].seq, rows[i].email, std::move(requests[i]), std::move(checked)});
      }
    }
  });
  return round;
}

void campaign_service::start_spooling(feed_round& round) {
  const auto answered = [&round](std::size_t i, const postern::submit_result& r) {
    std::lock_guard lock(round.mutex);
    const auto& s = round.to_spool[i];
    if (r.accepted) {
      round.settled.push_back({s.seq, s.email, recipient_state::queued, "", "", r.queue_id});
    } else if (r.reply.transient()) {
      round.refused.push_back(i);  // the spool is full or failing: spooled again later, unchecked
    } else {
      round.settled.push_back({s.seq, s.email, recipient_state::dropped, "gateway", r.reply.text, ""});
    }
    --round.in_flight;
    round.spooled.notify_all();
  };
  for (std::size_t i = 0; i < round.to_spool.size(); ++i) {
    {
      std::lock_guard lock(round.mutex);
      ++round.in_flight;
    }
    try {
      // The entry stays, to be spooled again if the spool refuses it for now.
      auto& s = round.to_spool[i];
      submission_.spool_checked(s.request, s.checked, [answered, i](postern::submit_result r) { answered(i, r); });
    } catch (...) {
      std::lock_guard lock(round.mutex);
      --round.in_flight;  // no answer will come for this one
      throw;
    }
  }
}

bool campaign_service::yielding() {
  if (changes_waiting_ > 0) return true;
  std::lock_guard lock(mutex_);
  return stopping_;
}

void campaign_service::wait_spooled(feed_round& round) {
  std::unique_lock lock(round.mutex);
  round.spooled.wait(lock, [&] { return round.in_flight == 0; });
}

void campaign_service::finish_if_done(const campaign_record& c) {
  auto current = c;
  if (current.state == campaign_state::sending) {
    if (!store_.pending(c.id, 1).empty() || spool_.campaign_open(c.id)) return;
    if (!store_.set_state(c.id, campaign_state::finished, {campaign_state::sending}, std::chrono::system_clock::now()))
      return;
    current = *store_.find(c.tenant, c.id);
    logging::get("campaign")->info("{}: campaign finished", c.id);
  }
  if ((current.state != campaign_state::finished && current.state != campaign_state::cancelled) || current.end_reported)
    return;
  const auto info = info_of_record(current);
  // The hooks run before the mark: after a crash between the two they run again, and
  // plugins make their effects once (origin keys, their store).
  const auto spooled = spool_.campaign_stats(c.id);
  const auto summary = summary_of(current, info, spooled);
  policies_.campaign_end(summary);
  if (on_end_) on_end_(summary);
  store_.mark_end_reported(c.id, spooled);
}

postern::campaign_summary campaign_service::start_summary(const campaign_record& c, const postern::campaign_info& info,
                                                          const report& rep) {
  postern::campaign_summary s;
  s.id = c.id;
  s.tenant = c.tenant;
  s.name = c.name;
  s.info = &info;
  s.selected = rep.selected;
  s.dropped = rep.selected - rep.remaining;
  s.cost = rep.cost;
  s.started = c.started;
  return s;
}

postern::campaign_summary campaign_service::summary_of(const campaign_record& c, const postern::campaign_info& info,
                                                      const spool::spool_stats& spooled) {
  postern::campaign_summary s;
  s.id = c.id;
  s.tenant = c.tenant;
  s.name = c.name;
  s.info = &info;
  const auto own = store_.counts(c.id);
  s.selected = c.selected;
  s.dropped = own.dropped;
  s.queued = own.queued;
  s.delivered = spooled.delivered;
  s.deferred = spooled.deferred + spooled.queued;
  s.failed = spooled.failed - spooled.cancelled;  // a cancel's ending is not a failure
  s.cancelled = own.cancelled;
  s.cost = c.cost;
  s.unsent_cost = store_.unsent_cost(c.id);
  s.started = c.started;
  s.finished = c.finished;
  s.was_cancelled = c.state == campaign_state::cancelled;
  return s;
}

}  // namespace postern::campaign
