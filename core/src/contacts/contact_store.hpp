#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace postern::spool {
class database;
}

namespace postern::contacts {

using time_point = std::chrono::system_clock::time_point;

/// What a contact allows (all true unless the tenant says otherwise).
struct consent {
  bool contact = true;       ///< The tenant may write to this contact at all.
  bool show_name = true;     ///< Reports may show the name.
  bool show_address = true;  ///< Reports may show the address.
};

/// A person a tenant may write to. Addresses are kept lower-cased: one contact per address.
struct contact {
  std::string email;
  std::string first_name;
  std::string last_name;
  consent allowed;
  bool unsubscribed = false;         ///< From everything the tenant sends (global unsubscribe).
  std::vector<std::string> lists;    ///< Lists the contact is a member of.
  std::vector<std::string> left;     ///< Lists the contact unsubscribed from.
  time_point created{};
  time_point last_interaction{};
};

/// A change to a contact; fields left empty are kept as they are.
struct contact_update {
  std::string email;
  std::optional<std::string> first_name, last_name;
  std::optional<bool> contact_allowed, show_name, show_address, unsubscribed;
  std::vector<std::string> join;   ///< Lists to join.
  std::vector<std::string> leave;  ///< Lists to leave (unsubscribe from).
};

enum class activity_kind { order = 0, cart = 1, wishlist = 2, signup = 3 };
std::optional<activity_kind> activity_kind_from(std::string_view name);
const char* to_string(activity_kind kind);

/// Something a contact did that a campaign may select on. An order lists its products.
struct activity {
  std::string email;
  activity_kind kind = activity_kind::order;
  std::vector<std::string> products;
  std::string order_id;
  time_point time{};
};

struct upsert_counts {
  std::size_t created = 0;
  std::size_t updated = 0;
};

/// A page of contacts, newest interaction first, and where the next page starts.
struct contact_page {
  std::vector<contact> items;
  std::string next;  ///< Empty on the last page.
};

/// Where a contacts page starts: after this (last interaction in ms, id).
struct page_position {
  std::int64_t last_interaction = 0;
  std::int64_t id = 0;
};

/// A page token as contact_page::next gives it ("<last interaction>.<id>", two whole numbers);
/// nothing for anything else. Thread-safe, pure.
std::optional<page_position> read_page_token(std::string_view token);

struct contact_query {
  std::string search;        ///< Part of the address or name; empty: any.
  std::optional<bool> active;  ///< Interaction within the activity window (true) or not (false).
  std::string list;          ///< Members of this list only.
  std::size_t limit = 100;
  std::string after;         ///< A page token from contact_page::next.
};

/// Who a campaign is for: every condition given must hold (an empty one is not a condition).
/// "Bought X and Y but not yet Z" is bought_all = {X, Y}, bought_none = {Z}.
struct audience_rule {
  std::vector<std::string> bought_all;   ///< Ordered every one of these products.
  std::vector<std::string> bought_any;   ///< Ordered at least one of these.
  std::vector<std::string> bought_none;  ///< Ordered none of these.
  bool any_purchase = false;             ///< Ordered anything at all.
  bool prospects = false;                ///< Has a product in the cart or wishlist that they never ordered.
  std::vector<std::string> lists;        ///< A member of at least one of these lists.
  std::optional<std::chrono::hours> active_within;  ///< An interaction in this window.
};

/// How many contacts a rule selects, and the first few of them by address.
struct audience_preview {
  std::size_t count = 0;
  std::vector<contact> sample;
};

/// A contact an audience selected, with what the campaign policies decide on.
struct selected_contact {
  contact person;          ///< `left` is filled; `lists` is not.
  bool buyer = false;      ///< Ordered at least once.
  bool prospect = false;   ///< A product in the cart or wishlist that they never ordered.
};

/// Each tenant's contacts and their activity (orders, cart and wishlist adds, signups), in one
/// SQLite database (WAL, synchronous=FULL) of its own, apart from the spool and the gateway's
/// state: audiences are selected from it with queries over millions of rows.
///
/// Thread-safe: one connection behind a mutex. Bulk writes are one transaction each.
class contact_store {
 public:
  explicit contact_store(const std::filesystem::path& file);
  ~contact_store();

  /// Creates or changes contacts, all in one transaction.
  upsert_counts upsert(std::string_view tenant, const std::vector<contact_update>& updates, time_point now);
  /// Records activity, creating contacts for addresses not seen before; each event moves its
  /// contact's last interaction forward (never back). One transaction. Returns contacts created.
  std::size_t record(std::string_view tenant, const std::vector<activity>& events, time_point now);

  std::optional<contact> find(std::string_view tenant, std::string_view email);
  /// How many contacts a rule selects, and the first `sample_size` by address, counted in SQL.
  /// Consent and unsubscribes are not applied here: that is the policies' work, so that a
  /// report can say what each of them dropped.
  audience_preview preview(std::string_view tenant, const audience_rule& rule, time_point now, std::size_t sample_size);
  contact_page list(std::string_view tenant, const contact_query& query, time_point active_since);
  /// Every contact a rule selects, by address, handed to `each` one at a time (a million-contact
  /// audience is never held in memory). Each call reads on a connection of its own and holds
  /// no lock of the store while `each` runs: writes and other selections go on meanwhile.
  void select(std::string_view tenant, const audience_rule& rule, time_point now,
              const std::function<void(selected_contact&)>& each);
  /// The same facts for given addresses (lower-cased); unknown ones are left out.
  std::vector<selected_contact> lookup(std::string_view tenant, const std::vector<std::string>& emails);

 private:
  std::int64_t ensure(std::string_view tenant, std::string_view email, time_point now, bool& created);
  void load_lists(contact& c, std::int64_t id);

  std::mutex mutex_;
  std::unique_ptr<spool::database> db_;
  std::filesystem::path file_;
};

/// "a***@example.com": the first character of the local part, the domain kept.
std::string mask_address(std::string_view email);
/// "A***": the first character, for names the contact chose not to show.
std::string mask_name(std::string_view name);

}  // namespace postern::contacts
