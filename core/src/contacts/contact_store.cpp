#include "contacts/contact_store.hpp"

#include "ingress/http/json_reader.hpp"
#include "spool/sqlite.hpp"

#include <algorithm>
#include <cctype>
#include <set>

namespace postern::contacts {
namespace {

using spool::from_ms;
using spool::in_transaction;
using spool::statement;
using spool::to_ms;

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS contacts(
  id INTEGER PRIMARY KEY,
  tenant TEXT NOT NULL,
  email TEXT NOT NULL,
  first_name TEXT NOT NULL DEFAULT '',
  last_name TEXT NOT NULL DEFAULT '',
  contact_allowed INTEGER NOT NULL DEFAULT 1,
  show_name INTEGER NOT NULL DEFAULT 1,
  show_address INTEGER NOT NULL DEFAULT 1,
  unsubscribed INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL,
  last_interaction INTEGER NOT NULL,
  buyer INTEGER NOT NULL DEFAULT 0,
  prospect INTEGER NOT NULL DEFAULT 0,
  UNIQUE(tenant, email));
CREATE INDEX IF NOT EXISTS contacts_recent ON contacts(tenant, last_interaction);
-- A contact's lists: member = 1, or unsubscribed from the list = 0.
CREATE TABLE IF NOT EXISTS memberships(
  contact_id INTEGER NOT NULL,
  list TEXT NOT NULL,
  member INTEGER NOT NULL,
  PRIMARY KEY(contact_id, list)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memberships_list ON memberships(list, member, contact_id);
CREATE TABLE IF NOT EXISTS activity(
  id INTEGER PRIMARY KEY,
  contact_id INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  product TEXT NOT NULL,
  order_id TEXT,
  time INTEGER NOT NULL);
-- Audiences select by product and kind ("bought X", "X in the cart").
CREATE INDEX IF NOT EXISTS activity_product ON activity(product, kind, contact_id);
CREATE INDEX IF NOT EXISTS activity_contact ON activity(contact_id, kind);
-- Prospects are a small part of a shop's contacts: found without reading the others.
CREATE INDEX IF NOT EXISTS contacts_prospects ON contacts(tenant) WHERE prospect = 1;
-- "Bought anything, active within N days" is counted from this index alone.
CREATE INDEX IF NOT EXISTS contacts_buyers ON contacts(tenant, buyer, last_interaction);
)sql";

/// Derived per-contact facts, kept up to date by record(): whether the contact ever ordered,
/// and whether a cart or wishlist product of theirs was never ordered. Audiences and campaign
/// policies read them from the contact row instead of probing the activity of each contact.
constexpr const char* derive_facts =
    "UPDATE contacts SET "
    "buyer = EXISTS (SELECT 1 FROM activity a WHERE a.contact_id = contacts.id AND a.kind = 0), "
    "prospect = EXISTS (SELECT 1 FROM activity a WHERE a.contact_id = contacts.id AND a.kind IN (1, 2) AND NOT EXISTS "
    "(SELECT 1 FROM activity b WHERE b.contact_id = contacts.id AND b.kind = 0 AND b.product = a.product))";

/// Version 1 added buyer and prospect. An older database gets the columns before the schema
/// (whose index on prospect names them), and has them computed once after it (when the
/// activity indexes exist); so does a database whose user_version a bulk loader set back to
/// 0 after writing activity behind postern's back (scripts/bench campaign).
void add_fact_columns(spool::database& db) {
  statement table(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'contacts'");
  if (!table.step()) return;  // a new database: the schema makes the columns
  bool has_columns = false;
  statement columns(db, "PRAGMA table_info(contacts)");
  while (columns.step()) has_columns = has_columns || columns.column_text(1) == "buyer";
  if (has_columns) return;
  in_transaction(db, [&] {
    db.exec("ALTER TABLE contacts ADD COLUMN buyer INTEGER NOT NULL DEFAULT 0");
    db.exec("ALTER TABLE contacts ADD COLUMN prospect INTEGER NOT NULL DEFAULT 0");
  });
}

void derive_all_facts(spool::database& db) {
  statement version(db, "PRAGMA user_version");
  if (version.step() && version.column_int(0) >= 1) return;
  in_transaction(db, [&] {
    db.exec(derive_facts);
    db.exec("PRAGMA user_version = 1");
  });
}


std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}


void set_membership(spool::database& db, std::int64_t id, const std::string& list, bool member) {
  statement q(db, "INSERT INTO memberships(contact_id, list, member) VALUES(?1, ?2, ?3) "
                  "ON CONFLICT(contact_id, list) DO UPDATE SET member = ?3");
  q.bind(1, id).bind(2, list).bind(3, static_cast<std::int64_t>(member));
  q.run();
}

}  // namespace

std::optional<activity_kind> activity_kind_from(std::string_view name) {
  if (name == "order") return activity_kind::order;
  if (name == "cart") return activity_kind::cart;
  if (name == "wishlist") return activity_kind::wishlist;
  if (name == "signup") return activity_kind::signup;
  return std::nullopt;
}

const char* to_string(activity_kind kind) {
  switch (kind) {
    case activity_kind::order: return "order";
    case activity_kind::cart: return "cart";
    case activity_kind::wishlist: return "wishlist";
    case activity_kind::signup: return "signup";
  }
  return "?";
}

contact_store::contact_store(const std::filesystem::path& file) : file_(file) {
  std::filesystem::create_directories(file.parent_path());
  db_ = std::make_unique<spool::database>(file, false);
  db_->exec("PRAGMA journal_mode=WAL");
  db_->exec("PRAGMA synchronous=FULL");
  add_fact_columns(*db_);
  db_->exec(schema);
  derive_all_facts(*db_);
}

contact_store::~contact_store() = default;

std::int64_t contact_store::ensure(std::string_view tenant, std::string_view email, time_point now, bool& created) {
  statement find(*db_, "SELECT id FROM contacts WHERE tenant = ?1 AND email = ?2");
  find.bind(1, tenant).bind(2, email);
  created = false;
  if (find.step()) return find.column_int(0);
  statement add(*db_, "INSERT INTO contacts(tenant, email, created, last_interaction) VALUES(?1, ?2, ?3, ?3)");
  add.bind(1, tenant).bind(2, email).bind(3, to_ms(now));
  add.run();
  created = true;
  return sqlite3_last_insert_rowid(db_->handle());
}

upsert_counts contact_store::upsert(std::string_view tenant, const std::vector<contact_update>& updates, time_point now) {
  std::lock_guard lock(mutex_);
  upsert_counts counts;
  in_transaction(*db_, [&] {
    for (const auto& u : updates) {
      bool created = false;
      const auto id = ensure(tenant, lower(u.email), now, created);
      ++(created ? counts.created : counts.updated);
      // COALESCE keeps a field the update leaves out.
      statement set(*db_,
                    "UPDATE contacts SET first_name = COALESCE(?2, first_name), last_name = COALESCE(?3, last_name), "
                    "contact_allowed = COALESCE(?4, contact_allowed), show_name = COALESCE(?5, show_name), "
                    "show_address = COALESCE(?6, show_address), unsubscribed = COALESCE(?7, unsubscribed) WHERE id = ?1");
      set.bind(1, id);
      auto text = [&](int i, const std::optional<std::string>& v) { v ? set.bind(i, *v) : set.bind_null(i); };
      auto flag = [&](int i, const std::optional<bool>& v) {
        v ? set.bind(i, static_cast<std::int64_t>(*v)) : set.bind_null(i);
      };
      text(2, u.first_name);
      text(3, u.last_name);
      flag(4, u.contact_allowed);
      flag(5, u.show_name);
      flag(6, u.show_address);
      flag(7, u.unsubscribed);
      set.run();
      for (const auto& l : u.join) set_membership(*db_, id, l, true);
      for (const auto& l : u.leave) set_membership(*db_, id, l, false);
    }
  });
  return counts;
}

std::size_t contact_store::record(std::string_view tenant, const std::vector<activity>& events, time_point now) {
  std::lock_guard lock(mutex_);
  std::size_t created_count = 0;
  std::set<std::int64_t> touched;
  in_transaction(*db_, [&] {
    statement add(*db_, "INSERT INTO activity(contact_id, kind, product, order_id, time) VALUES(?1, ?2, ?3, ?4, ?5)");
    statement touch(*db_, "UPDATE contacts SET last_interaction = MAX(last_interaction, ?2) WHERE id = ?1");
    for (const auto& e : events) {
      bool created = false;
      const auto when = e.time == time_point{} ? now : e.time;
      const auto id = ensure(tenant, lower(e.email), when, created);
      created_count += created;
      const std::vector<std::string> none{""};  // a signup has no product
      for (const auto& product : e.products.empty() ? none : e.products) {
        add.reset();
        add.bind(1, id).bind(2, static_cast<std::int64_t>(e.kind)).bind(3, product).bind_or_null(4, e.order_id)
            .bind(5, to_ms(when));
        add.run();
      }
      touch.reset();
      touch.bind(1, id).bind(2, to_ms(when));
      touch.run();
      touched.insert(id);
    }
    statement derive(*db_, (std::string(derive_facts) + " WHERE id = ?1").c_str());
    for (const auto id : touched) {
      derive.bind(1, id);
      derive.run();
    }
  });
  return created_count;
}

void contact_store::load_lists(contact& c, std::int64_t id) {
  statement q(*db_, "SELECT list, member FROM memberships WHERE contact_id = ?1 ORDER BY list");
  q.bind(1, id);
  while (q.step()) (q.column_int(1) ? c.lists : c.left).push_back(q.column_text(0));
}

namespace {
constexpr const char* contact_columns =
    "SELECT id, email, first_name, last_name, contact_allowed, show_name, show_address, unsubscribed, created, "
    "last_interaction FROM contacts ";

contact contact_row(statement& q) {
  contact c;
  c.email = q.column_text(1);
  c.first_name = q.column_text(2);
  c.last_name = q.column_text(3);
  c.allowed = {q.column_int(4) != 0, q.column_int(5) != 0, q.column_int(6) != 0};
  c.unsubscribed = q.column_int(7) != 0;
  c.created = from_ms(q.column_int(8));
  c.last_interaction = from_ms(q.column_int(9));
  return c;
}
}  // namespace

namespace {

/// `text` for a LIKE pattern with ESCAPE '\\': its %, _ and \\ stand for themselves.
std::string like_literal(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

/// "?N, ?N+1, …" for a list bound from parameter `first` on.
std::string placeholders(std::size_t count, int first) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out += (i ? ", ?" : "?") + std::to_string(first + static_cast<int>(i));
  return out;
}

}  // namespace

namespace {

/// The WHERE clause of an audience rule, and the values its parameters take (?1 is the tenant).
struct audience_query {
  std::string where;
  std::vector<std::string> values;  // ?2, ?3, ...
  std::optional<std::int64_t> since;  // the last parameter, when the rule has a window
};

audience_query build_audience_query(const audience_rule& rule, time_point now) {
  // Each condition is a clause over the contact; lists are bound as parameters, never
  // spliced into the text. The activity index (product, kind, contact_id) serves the
  // product conditions; contacts are per tenant, so activity needs no tenant of its own.
  audience_query q;
  q.where = "WHERE tenant = ?1";
  int next = 2;
  auto bind_list = [&](const std::vector<std::string>& list) {
    const auto text = placeholders(list.size(), next);
    next += static_cast<int>(list.size());
    q.values.insert(q.values.end(), list.begin(), list.end());
    return text;
  };
  // kind 0 is an order (activity_kind::order).
  if (!rule.bought_all.empty())
    q.where += " AND id IN (SELECT contact_id FROM activity WHERE kind = 0 AND product IN (" +
               bind_list(rule.bought_all) + ") GROUP BY contact_id HAVING COUNT(DISTINCT product) = " +
               std::to_string(rule.bought_all.size()) + ")";
  if (!rule.bought_any.empty())
    q.where += " AND id IN (SELECT contact_id FROM activity WHERE kind = 0 AND product IN (" +
               bind_list(rule.bought_any) + "))";
  if (!rule.bought_none.empty())
    q.where += " AND id NOT IN (SELECT contact_id FROM activity WHERE kind = 0 AND product IN (" +
               bind_list(rule.bought_none) + "))";
  if (rule.any_purchase) q.where += " AND buyer = 1";
  if (rule.prospects) q.where += " AND prospect = 1";
  if (!rule.lists.empty())
    q.where += " AND id IN (SELECT contact_id FROM memberships WHERE member = 1 AND list IN (" +
               bind_list(rule.lists) + "))";
  if (rule.active_within) {
    q.where += " AND last_interaction >= ?" + std::to_string(next);
    q.since = to_ms(now - *rule.active_within);
  }
  return q;
}

void bind_audience(statement& st, std::string_view tenant, const audience_query& q) {
  st.bind(1, tenant);
  for (std::size_t i = 0; i < q.values.size(); ++i) st.bind(static_cast<int>(i) + 2, q.values[i]);
  if (q.since) st.bind(static_cast<int>(q.values.size()) + 2, *q.since);
}

}  // namespace

audience_preview contact_store::preview(std::string_view tenant, const audience_rule& rule, time_point now,
                                        std::size_t sample_size) {
  std::lock_guard lock(mutex_);
  const auto q = build_audience_query(rule, now);
  audience_preview out;
  // Counted in SQL: a preview of a million-contact audience does not load a million rows.
  statement count(*db_, ("SELECT COUNT(*) FROM contacts " + q.where).c_str());
  bind_audience(count, tenant, q);
  if (count.step()) out.count = static_cast<std::size_t>(count.column_int(0));
  statement sample(*db_, (std::string(contact_columns) + q.where + " ORDER BY email LIMIT " +
                          std::to_string(sample_size)).c_str());
  bind_audience(sample, tenant, q);
  while (sample.step()) out.sample.push_back(contact_row(sample));
  return out;
}

namespace {

/// The columns of a selected contact: the contact's, then buyer, prospect and the lists left.
constexpr const char* selected_columns =
    "SELECT id, email, first_name, last_name, contact_allowed, show_name, show_address, unsubscribed, created, "
    "last_interaction, buyer, prospect, "
    "(SELECT group_concat(list, char(10)) FROM memberships m WHERE m.contact_id = contacts.id AND m.member = 0) "
    "FROM contacts ";

selected_contact selected_row(statement& q) {
  selected_contact s;
  s.person = contact_row(q);
  s.buyer = q.column_int(10) != 0;
  s.prospect = q.column_int(11) != 0;
  const std::string left = q.column_text(12);
  for (std::size_t start = 0; start < left.size();) {
    const auto end = std::min(left.find('\n', start), left.size());
    s.person.left.push_back(left.substr(start, end - start));
    start = end + 1;
  }
  return s;
}

}  // namespace

void contact_store::select(std::string_view tenant, const audience_rule& rule, time_point now,
                           const std::function<void(selected_contact&)>& each) {
  spool::database reader(file_, true);  // a read snapshot of its own (WAL)
  const auto q = build_audience_query(rule, now);
  statement rows(reader, (std::string(selected_columns) + q.where + " ORDER BY email").c_str());
  bind_audience(rows, tenant, q);
  while (rows.step()) {
    auto c = selected_row(rows);
    each(c);
  }
}

std::vector<selected_contact> contact_store::lookup(std::string_view tenant, const std::vector<std::string>& emails) {
  std::lock_guard lock(mutex_);
  statement q(*db_, (std::string(selected_columns) + "WHERE tenant = ?1 AND email = ?2").c_str());
  std::vector<selected_contact> out;
  for (const auto& e : emails) {
    q.bind(1, tenant).bind(2, lower(e));
    if (q.step()) out.push_back(selected_row(q));
    q.reset();
  }
  return out;
}

std::optional<contact> contact_store::find(std::string_view tenant, std::string_view email) {
  std::lock_guard lock(mutex_);
  statement q(*db_, (std::string(contact_columns) + "WHERE tenant = ?1 AND email = ?2").c_str());
  q.bind(1, tenant).bind(2, lower(email));
  if (!q.step()) return std::nullopt;
  auto c = contact_row(q);
  load_lists(c, q.column_int(0));
  return c;
}

std::optional<page_position> read_page_token(std::string_view token) {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto time = ingress::http::whole_number(token.substr(0, dot));
  const auto id = ingress::http::whole_number(token.substr(dot + 1));
  if (!time || !id) return std::nullopt;
  return page_position{*time, *id};
}

contact_page contact_store::list(std::string_view tenant, const contact_query& query, time_point active_since) {
  std::lock_guard lock(mutex_);
  // Newest interaction first; the page token is "<last_interaction>.<id>" of the last row.
  const auto position = read_page_token(query.after);
  const bool paged = position.has_value();
  const std::int64_t after_time = paged ? position->last_interaction : 0;
  const std::int64_t after_id = paged ? position->id : 0;
  const std::string sql = std::string(contact_columns) +
                          "WHERE tenant = ?1 "
                          // What a contact hides is not searchable either: a search must not
                          // tell which hidden address or name matches. % and _ match themselves.
                          "AND (?2 = '' OR (show_address = 1 AND email LIKE '%' || ?2 || '%' ESCAPE '\\') "
                          "OR (show_name = 1 AND (first_name || ' ' || last_name) LIKE '%' || ?2 || '%' ESCAPE '\\')) "
                          "AND (?3 < 0 OR (?3 = 1 AND last_interaction >= ?4) OR (?3 = 0 AND last_interaction < ?4)) "
                          "AND (?5 = '' OR id IN (SELECT contact_id FROM memberships WHERE list = ?5 AND member = 1)) "
                          "AND (?6 = 0 OR last_interaction < ?7 OR (last_interaction = ?7 AND id < ?8)) "
                          "ORDER BY last_interaction DESC, id DESC LIMIT ?9";
  statement q(*db_, sql.c_str());
  q.bind(1, tenant)
      .bind(2, like_literal(query.search))
      .bind(3, static_cast<std::int64_t>(query.active ? *query.active : -1))
      .bind(4, to_ms(active_since))
      .bind(5, query.list)
      .bind(6, static_cast<std::int64_t>(paged))
      .bind(7, static_cast<std::int64_t>(after_time))
      .bind(8, static_cast<std::int64_t>(after_id))
      .bind(9, static_cast<std::int64_t>(query.limit + 1));
  contact_page page;
  std::vector<std::int64_t> ids;
  while (q.step()) {
    if (page.items.size() == query.limit) {
      page.next = std::to_string(to_ms(page.items.back().last_interaction)) + "." + std::to_string(ids.back());
      break;
    }
    ids.push_back(q.column_int(0));
    page.items.push_back(contact_row(q));
  }
  for (std::size_t i = 0; i < ids.size(); ++i) load_lists(page.items[i], ids[i]);
  return page;
}

namespace {
/// The first character (a whole UTF-8 sequence) of `text`.
std::string_view first_character(std::string_view text) {
  std::size_t n = text.empty() ? 0 : 1;
  while (n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) ++n;
  return text.substr(0, n);
}
}  // namespace

std::string mask_address(std::string_view email) {
  const auto at = email.rfind('@');
  if (at == std::string_view::npos || at == 0) return "***";
  return std::string(first_character(email)) + "***" + std::string(email.substr(at));
}

std::string mask_name(std::string_view name) {
  return name.empty() ? std::string() : std::string(first_character(name)) + "***";
}

}  // namespace postern::contacts
