#include "spool/body_store.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <set>

namespace postern::spool {
namespace {

using postern::testing::temp_dir;
using ::testing::HasSubstr;

std::set<std::string> segment_files(const std::filesystem::path& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

TEST(body_store, gives_back_what_it_took_across_segments) {
  temp_dir dir;
  body_store store(dir.path(), 100);  // tiny segments: every second body starts a new one
  EXPECT_TRUE(segment_files(dir.path()).empty()) << "no file before the first body";
  std::vector<std::pair<body_location, std::string>> written;
  for (int i = 0; i < 5; ++i) {
    const std::string body(60 + i, static_cast<char>('a' + i));
    written.emplace_back(store.append(body), body);
  }
  store.sync();
  store.committed();
  for (const auto& [where, body] : written) EXPECT_EQ(store.read(where, body.size()), body);
  EXPECT_EQ(written[0].first.offset, 0);
  EXPECT_NE(written[0].first.segment, written[1].first.segment);
  EXPECT_EQ(segment_files(dir.path()).size(), 5u);
}

TEST(body_store, a_missing_or_short_segment_is_an_error_not_a_wrong_body) {
  temp_dir dir;
  body_store store(dir.path());
  const auto where = store.append("hello");
  store.sync();
  EXPECT_THROW((void)store.read(where, 6), missing_body);
  EXPECT_THAT([&] {
    try {
      (void)store.read({where.segment + 1, 0}, 5);
    } catch (const missing_body& e) {
      return std::string(e.what());
    }
    return std::string();
  }(), HasSubstr("missing"));
}

TEST(body_store, a_new_store_never_appends_to_an_earlier_segment) {
  // After a crash the last segment may end in a torn body: it is only read from, never extended.
  temp_dir dir;
  body_location first;
  {
    body_store store(dir.path());
    first = store.append("first");
    store.sync();
  }
  body_store again(dir.path());
  const auto second = again.append("second");
  EXPECT_GT(second.segment, first.segment);
  EXPECT_EQ(second.offset, 0);
  EXPECT_EQ(again.read(first, 5), "first");
}

TEST(body_store, remove_unused_spares_bodies_in_use_and_segments_being_written) {
  temp_dir dir;
  body_store store(dir.path(), 10);
  const auto a = store.append("0123456789");  // fills its segment
  const auto b = store.append("0123456789");
  const auto c = store.append("current");
  store.sync();
  store.committed();
  body_store other(dir.path());  // another process's writer, appending now
  const auto d = other.append("theirs");

  const auto removed = store.remove_unused([&](std::int64_t n) { return n == b.segment; });
  EXPECT_EQ(removed, 1u) << "only a's segment: b is in use, c is this store's, d is locked by the other";
  EXPECT_THROW((void)store.read(a, 10), std::runtime_error);
  EXPECT_EQ(store.read(b, 10), "0123456789");
  EXPECT_EQ(store.read(c, 7), "current");
  EXPECT_EQ(store.read(d, 6), "theirs");
}

TEST(body_store, clean_up_asks_about_a_segment_only_once_it_holds_its_lock) {
  // Asked before locking, a clean-up could hear "unused" of a segment whose rows were about
  // to commit, and delete it once its writer let go.
  temp_dir dir;
  body_store writer(dir.path(), 10);
  const auto filled = writer.append("0123456789");
  const auto current = writer.append("current");  // `filled` is retired, its batch not committed
  body_store cleaner(dir.path());
  std::vector<std::int64_t> asked;
  (void)cleaner.remove_unused([&](std::int64_t n) {
    asked.push_back(n);
    return false;
  });
  EXPECT_TRUE(asked.empty()) << "asked about a segment a writer holds";
  EXPECT_EQ(writer.read(filled, 10), "0123456789");
  EXPECT_EQ(writer.read(current, 7), "current");
}

TEST(body_store, what_a_crash_left_half_made_is_cleaned_up) {
  temp_dir dir;
  postern::testing::write_file(dir / ".new-999999-0", "");
  postern::testing::write_file(dir / ".new-999999-1", "");  // young: maybe being made right now
  std::filesystem::last_write_time(dir / ".new-999999-0",
                                   std::filesystem::file_time_type::clock::now() - std::chrono::minutes(5));
  body_store store(dir.path());
  (void)store.remove_unused([](std::int64_t) { return true; });
  EXPECT_FALSE(std::filesystem::exists(dir / ".new-999999-0"));
  EXPECT_TRUE(std::filesystem::exists(dir / ".new-999999-1"));
}

TEST(body_store, a_rolled_back_batch_releases_what_it_filled) {
  temp_dir dir;
  body_store writer(dir.path(), 10);
  const auto filled = writer.append("0123456789");
  (void)writer.append("next");
  writer.rolled_back();
  body_store cleaner(dir.path());
  EXPECT_EQ(cleaner.remove_unused([](std::int64_t) { return false; }), 1u) << "only the current segment stays";
  EXPECT_THROW((void)writer.read(filled, 10), missing_body);
}

TEST(body_store, a_full_segment_stays_locked_until_its_batch_commits) {
  temp_dir dir;
  body_store store(dir.path(), 10);
  const auto a = store.append("0123456789");
  (void)store.append("next");  // a's segment is full: retired, but its rows are not committed yet
  body_store cleaner(dir.path());
  EXPECT_EQ(cleaner.remove_unused([](std::int64_t) { return false; }), 0u);
  store.sync();
  store.committed();
  EXPECT_EQ(cleaner.remove_unused([&](std::int64_t n) { return n != a.segment; }), 1u);
}

}  // namespace
}  // namespace postern::spool
