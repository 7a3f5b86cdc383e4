#include "core/mvcc/mvcc.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace gojodb::mvcc {
namespace {

class MvccTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::EngineOptions o;
    o.kind = "memory";
    safe_point_ = std::make_shared<SafePoint>();
    o.filters[kVersionCf] = NewVersionGcFilterFactory(safe_point_);
    engine_ = std::move(storage::OpenEngine(o)).value();
  }
  std::string Row(std::string_view k) { return EncodeRowKey(1, 1, k); }
  void Put(std::string_view k, Timestamp ts, std::string_view v) {
    storage::WriteBatch b;
    PutVersion(&b, Row(k), ts, v);
    ASSERT_TRUE(engine_->Write({}, b).ok());
  }
  void Del(std::string_view k, Timestamp ts) {
    storage::WriteBatch b;
    DeleteVersion(&b, Row(k), ts);
    ASSERT_TRUE(engine_->Write({}, b).ok());
  }
  std::optional<std::string> GetAt(std::string_view k, Timestamp ts) {
    MvccReader r(engine_.get(), nullptr);
    auto v = r.Get(Row(k), ts);
    EXPECT_TRUE(v.ok());
    if (!v.ok() || !*v || (*v)->deleted) return std::nullopt;
    return (*v)->value;
  }
  std::vector<std::string> ScanKeys(ScanOptions o) {
    o.tenant = 1;
    o.collection = 1;
    MvccReader r(engine_.get(), nullptr);
    auto out = r.Scan(o);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    std::vector<std::string> keys;
    for (auto& i : out->items) keys.push_back(i.key + "=" + i.value);
    if (out->next) keys.push_back("next:" + *out->next);
    return keys;
  }

  std::shared_ptr<SafePoint> safe_point_;
  std::unique_ptr<storage::Engine> engine_;
};

TEST_F(MvccTest, ReadSeesNewestVersionAtOrBelowItsTimestamp) {
  Put("k", 10, "v10");
  Put("k", 20, "v20");
  Del("k", 30);
  Put("k", 40, "v40");
  EXPECT_EQ(GetAt("k", 9), std::nullopt);
  EXPECT_EQ(GetAt("k", 10), "v10");
  EXPECT_EQ(GetAt("k", 19), "v10");
  EXPECT_EQ(GetAt("k", 20), "v20");
  EXPECT_EQ(GetAt("k", 35), std::nullopt);  // tombstone
  EXPECT_EQ(GetAt("k", kMaxTimestamp), "v40");
  // Neighbouring keys do not bleed into each other.
  Put(std::string("k\0", 2), 5, "other");
  EXPECT_EQ(GetAt("k", 9), std::nullopt);
  EXPECT_EQ(GetAt("j", kMaxTimestamp), std::nullopt);
}

TEST_F(MvccTest, ScanAtTimestampSkipsTombstonesAndFutureVersions) {
  Put("a", 10, "a10");
  Put("b", 10, "b10");
  Put("b", 30, "b30");
  Put("c", 20, "c20");
  Del("a", 25);
  EXPECT_EQ(ScanKeys({.read_ts = 15}), (std::vector<std::string>{"a=a10", "b=b10"}));
  EXPECT_EQ(ScanKeys({.read_ts = 26}), (std::vector<std::string>{"b=b10", "c=c20"}));
  EXPECT_EQ(ScanKeys({.read_ts = 40}), (std::vector<std::string>{"b=b30", "c=c20"}));
  EXPECT_EQ(ScanKeys({.reverse = true, .read_ts = 15}),
            (std::vector<std::string>{"b=b10", "a=a10"}));
  EXPECT_EQ(ScanKeys({.reverse = true, .read_ts = 40}),
            (std::vector<std::string>{"c=c20", "b=b30"}));
}

TEST_F(MvccTest, ScanBoundsLimitAndContinuation) {
  for (auto k : {"a", "b", "c", "d", "e"}) Put(k, 10, k);
  EXPECT_EQ(ScanKeys({.start = "b", .end = "d"}), (std::vector<std::string>{"b=b", "c=c"}));
  EXPECT_EQ(ScanKeys({.limit = 2}), (std::vector<std::string>{"a=a", "b=b", "next:c"}));
  EXPECT_EQ(ScanKeys({.start = "c", .limit = 2}),
            (std::vector<std::string>{"c=c", "d=d", "next:e"}));
  EXPECT_EQ(ScanKeys({.start = "e", .limit = 2}), (std::vector<std::string>{"e=e"}));
  EXPECT_EQ(ScanKeys({.limit = 2, .reverse = true}),
            (std::vector<std::string>{"e=e", "d=d", "next:d"}));
  EXPECT_EQ(ScanKeys({.end = "d", .limit = 2, .reverse = true}),
            (std::vector<std::string>{"c=c", "b=b", "next:b"}));
  // The collection is its own range: other collections never appear.
  storage::WriteBatch b;
  PutVersion(&b, EncodeRowKey(1, 2, "a"), 10, "other");
  ASSERT_TRUE(engine_->Write({}, b).ok());
  EXPECT_EQ(ScanKeys({.start = "e"}), (std::vector<std::string>{"e=e"}));
}

// Many versions per row (the scan seeks past long runs) and few (it steps over them).
class MvccHistoryTest : public MvccTest, public ::testing::WithParamInterface<int> {};

TEST_P(MvccHistoryTest, ScanMatchesModelUnderRandomHistory) {
  std::mt19937 rng(7);
  std::map<std::string, std::map<Timestamp, std::optional<std::string>>> history;
  const int keys = GetParam();
  for (Timestamp ts = 1; ts <= 400; ++ts) {
    std::string k = std::to_string(1000 + rng() % keys);
    if (rng() % 4 == 0) {
      Del(k, ts);
      history[k][ts] = std::nullopt;
    } else {
      Put(k, ts, std::to_string(ts));
      history[k][ts] = std::to_string(ts);
    }
  }
  for (Timestamp read_ts : {Timestamp{0}, Timestamp{1}, Timestamp{50}, Timestamp{199},
                            Timestamp{273}, Timestamp{399}, Timestamp{400}}) {
    std::vector<std::string> want;
    for (auto& [k, versions] : history) {
      auto it = versions.upper_bound(read_ts);
      if (it == versions.begin()) continue;
      --it;
      if (it->second) want.push_back(k + "=" + *it->second);
    }
    EXPECT_EQ(ScanKeys({.read_ts = read_ts}), want) << read_ts;
    std::reverse(want.begin(), want.end());
    EXPECT_EQ(ScanKeys({.reverse = true, .read_ts = read_ts}), want) << read_ts;
  }
}

// GetEach (and Get, a GetEach of one row) answers each row's newest version at or
// below the read timestamp, for rows in any order: present, deleted, absent, and rows
// whose keys are prefixes of each other.
TEST_P(MvccHistoryTest, GetEachMatchesModelUnderRandomHistory) {
  std::mt19937 rng(11);
  const int keys = GetParam();
  // row -> ts -> (deleted, value)
  std::map<std::string, std::map<Timestamp, std::pair<bool, std::string>>> history;
  for (Timestamp ts = 1; ts <= 400; ++ts) {
    std::string k = std::to_string(1000 + rng() % keys);
    if (rng() % 3 == 0) k += "0";  // "10070" next to "1007"
    const bool del = rng() % 4 == 0;
    if (del) {
      Del(k, ts);
    } else {
      Put(k, ts, std::to_string(ts));
    }
    history[Row(k)][ts] = {del, del ? "" : std::to_string(ts)};
  }
  auto expect_model = [&](const std::string& row, Timestamp read_ts,
                          const std::optional<VersionedValue>& got) {
    std::optional<std::pair<Timestamp, std::pair<bool, std::string>>> want;
    if (auto h = history.find(row); h != history.end()) {
      auto it = h->second.upper_bound(read_ts);
      if (it != h->second.begin()) want = *std::prev(it);
    }
    ASSERT_EQ(got.has_value(), want.has_value()) << read_ts;
    if (!got) return;
    EXPECT_EQ(got->version, want->first);
    EXPECT_EQ(got->deleted, want->second.first);
    if (!got->deleted) {
      EXPECT_EQ(got->value, want->second.second);
    }
  };
  MvccReader r(engine_.get(), nullptr);
  for (Timestamp read_ts : {Timestamp{1}, Timestamp{50}, Timestamp{273}, Timestamp{400}}) {
    std::vector<std::string> rows;
    for (int i = 0; i < 40; ++i) {
      std::string k = std::to_string(1000 + rng() % (keys + 5));  // some never written
      if (rng() % 3 == 0) k += "0";
      rows.push_back(Row(k));
    }
    size_t seen = 0;
    ASSERT_TRUE(
        r.GetEach(rows, read_ts, [&](size_t i, std::optional<VersionedValue> got) -> Result<bool> {
           EXPECT_EQ(i, seen++);
           expect_model(rows[i], read_ts, got);
           return true;
         }).ok());
    EXPECT_EQ(seen, rows.size());
    for (const auto& row : rows) {
      auto got = r.Get(row, read_ts);
      ASSERT_TRUE(got.ok());
      expect_model(row, read_ts, *got);
    }
  }
  // A visitor that answers false stops the walk there.
  size_t calls = 0;
  ASSERT_TRUE(
      r.GetEach({Row("1000"), Row("1001"), Row("1002")}, 400,
                [&](size_t, std::optional<VersionedValue>) -> Result<bool> { return ++calls < 2; })
          .ok());
  EXPECT_EQ(calls, 2u);
}

INSTANTIATE_TEST_SUITE_P(VersionsPerRow, MvccHistoryTest, ::testing::Values(3, 12, 150, 1000));

TEST_F(MvccTest, GcKeepsNewestVersionAtOrBelowSafePoint) {
  Put("k", 10, "v10");
  Put("k", 20, "v20");
  Put("k", 30, "v30");
  Del("gone", 5);
  Put("gone", 3, "old");
  safe_point_->ts = 25;
  ASSERT_TRUE(engine_->CompactRange(kVersionCf, "", "").ok());
  // Reads at or above the safe point are unchanged...
  EXPECT_EQ(GetAt("k", 25), "v20");
  EXPECT_EQ(GetAt("k", 30), "v30");
  EXPECT_EQ(GetAt("gone", 25), std::nullopt);
  // ...and older versions are gone.
  EXPECT_EQ(GetAt("k", 15), std::nullopt);
  EXPECT_EQ(GetAt("gone", 4), std::nullopt);
  int versions = 0;
  auto it = engine_->NewIterator({}, kVersionCf);
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++versions;
  EXPECT_EQ(versions, 3);  // k@30, k@20, gone@5
}

TEST_F(MvccTest, ScanRejectsZeroLimit) {
  MvccReader r(engine_.get(), nullptr);
  auto out = r.Scan({.tenant = 1, .collection = 1, .limit = 0});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gojodb::mvcc
