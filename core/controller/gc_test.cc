// The GC safe point's arithmetic (gc.h) and its replicated record.
#include "core/controller/gc.h"

#include <gtest/gtest.h>

#include "core/mvcc/key_codec.h"

namespace gojodb::controller {
namespace {

constexpr uint64_t Ts(uint64_t ms) { return ms << 18; }

ShardRecord Shard(uint64_t id, std::string start, std::string end, uint64_t version = 1) {
  ShardRecord s;
  s.id = id;
  s.start_key = std::move(start);
  s.end_key = std::move(end);
  s.epoch.version = version;
  return s;
}

TEST(GcTest, TargetIsTheTtlAgoUnlessALiveHoldIsOlder) {
  std::map<std::string, GcHold> holds;
  EXPECT_EQ(GcTarget(5000, 10000, holds), 0u);  // the cluster is younger than the TTL
  EXPECT_EQ(GcTarget(100000, 10000, holds), Ts(90000));
  holds["gateway-a"] = {Ts(95000), 200000};  // younger than the TTL: no effect
  EXPECT_EQ(GcTarget(100000, 10000, holds), Ts(90000));
  holds["gateway-b"] = {Ts(42000) + 7, 200000};  // an old open transaction holds it back
  EXPECT_EQ(GcTarget(100000, 10000, holds), Ts(42000) + 7);
  holds["gateway-b"].expires_ms = 100000;  // lapsed: ignored
  EXPECT_EQ(GcTarget(100000, 10000, holds), Ts(90000));
  holds["gateway-c"] = {0, 200000};  // holds nothing
  EXPECT_EQ(GcTarget(100000, 10000, holds), Ts(90000));
}

TEST(GcTest, TargetMovesInStepsOfATenthOfTheTtl) {
  EXPECT_EQ(NextGcTarget(0, Ts(1000), 10000), Ts(1000));
  EXPECT_EQ(NextGcTarget(Ts(1000), Ts(1999), 10000), Ts(1000));
  EXPECT_EQ(NextGcTarget(Ts(1000), Ts(2000), 10000), Ts(2000));
  EXPECT_EQ(NextGcTarget(Ts(2000), Ts(500), 10000), Ts(2000)) << "never back";
  EXPECT_EQ(NextGcTarget(Ts(2000), Ts(2000) + 1, 5), Ts(2000) + 1) << "a tiny TTL: any move";
}

TEST(GcTest, SafePointNeedsEveryShardOfATilingMapResolvedAtItsEpoch) {
  std::map<uint64_t, ShardRecord> shards = {{1, Shard(1, "", "m")}, {2, Shard(2, "m", "")}};
  std::map<uint64_t, GcResolvedReport> resolved;
  EXPECT_EQ(GcSafePointFromReports(shards, resolved), 0u);
  resolved[1] = {1, 1, 500};
  EXPECT_EQ(GcSafePointFromReports(shards, resolved), 0u) << "shard 2 has not reported";
  resolved[2] = {2, 1, 300};
  EXPECT_EQ(GcSafePointFromReports(shards, resolved), 300u) << "the least fence";
  // Shard 2 split: its report was about its old range.
  shards[2] = Shard(2, "m", "t", 2);
  EXPECT_EQ(GcSafePointFromReports(shards, resolved), 0u) << "a gap at [t, end)";
  shards[3] = Shard(3, "t", "", 2);
  EXPECT_EQ(GcSafePointFromReports(shards, resolved), 0u) << "reports at the old epoch";
  resolved[2] = {2, 2, 400};
  resolved[3] = {3, 2, 400};
  EXPECT_EQ(GcSafePointFromReports(shards, resolved), 400u);
  // A map that does not end at the end of the keyspace, or overlaps, allows nothing.
  shards.erase(3);
  EXPECT_EQ(GcSafePointFromReports(shards, resolved), 0u);
  shards[3] = Shard(3, "s", "", 2);
  EXPECT_EQ(GcSafePointFromReports(shards, resolved), 0u);
  EXPECT_EQ(GcSafePointFromReports({}, resolved), 0u);
  EXPECT_EQ(GcSafePointFromReports({{1, Shard(1, "", "")}}, {{1, {1, 1, 9}}}), 9u);
}

TEST(GcTest, DroppedRowsAreHandedOutPastTheirLeaseAndDoneWhenReportsCoverThem) {
  std::map<uint32_t, ReclaimEntry> reclaim = {{7, {1, 7, Ts(5000)}}, {9, {2, 9, Ts(8000)}}};
  EXPECT_TRUE(ReadyToReclaim(reclaim, Ts(4999)).empty());
  auto ready = ReadyToReclaim(reclaim, Ts(5000));
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0], reclaim.at(7));
  EXPECT_EQ(ReadyToReclaim(reclaim, Ts(9000)).size(), 2u);
  const auto [lo, hi] = ReclaimRange(reclaim.at(7));
  EXPECT_EQ(lo, mvcc::CollectionPrefix(1, 7));
  EXPECT_LT(mvcc::EncodeRowKey(1, 7, "\xff\xff"), hi);
  EXPECT_GE(mvcc::EncodeRowKey(1, 8, ""), hi);

  // Id 7's rows span shards 2 and 3 (split inside them); id 9's lie in shard 4 alone.
  const std::string mid7 = mvcc::EncodeRowKey(1, 7, "m");
  const std::string end7 = mvcc::EncodeRowKey(1, 8, "");
  std::map<uint64_t, ShardRecord> shards = {{1, Shard(1, "", lo)},
                                            {2, Shard(2, lo, mid7)},
                                            {3, Shard(3, mid7, end7)},
                                            {4, Shard(4, end7, "")}};
  std::set<ReclaimedReport> reports;
  EXPECT_TRUE(ReclaimedIds(shards, reclaim, reports).empty());
  reports.insert({2, 1, 7});
  EXPECT_TRUE(ReclaimedIds(shards, reclaim, reports).empty()) << "shard 3 holds the rest";
  reports.insert({3, 1, 9});
  EXPECT_TRUE(ReclaimedIds(shards, reclaim, reports).empty()) << "a report of another id";
  reports.insert({3, 1, 7});
  EXPECT_EQ(ReclaimedIds(shards, reclaim, reports), std::vector<uint32_t>{7})
      << "shard 1 ends where the rows begin: it need not report";
  reports.insert({4, 1, 9});
  EXPECT_EQ(ReclaimedIds(shards, reclaim, reports), (std::vector<uint32_t>{7, 9}));
  // Shard 3 split after it reported: its report covered its old, wider range, but the
  // new shard is not in the map yet (a gap), then is and has not reported.
  shards[3] = Shard(3, mid7, mvcc::EncodeRowKey(1, 7, "t"), 2);
  EXPECT_EQ(ReclaimedIds(shards, reclaim, reports), std::vector<uint32_t>{9})
      << "a report at an older epoch counts for nothing";
  reports.insert({3, 2, 7});
  EXPECT_EQ(ReclaimedIds(shards, reclaim, reports), std::vector<uint32_t>{9}) << "a gap";
  shards[5] = Shard(5, mvcc::EncodeRowKey(1, 7, "t"), end7, 2);
  EXPECT_EQ(ReclaimedIds(shards, reclaim, reports), std::vector<uint32_t>{9});
  reports.insert({5, 2, 7});
  EXPECT_EQ(ReclaimedIds(shards, reclaim, reports), (std::vector<uint32_t>{7, 9}));
  // One shard over everything.
  EXPECT_EQ(ReclaimedIds({{1, Shard(1, "", "")}}, reclaim, {{1, 1, 9}}), std::vector<uint32_t>{9});
}

TEST(GcTest, TheTtlSettingIsBounded) {
  Settings s;
  s.gc_ttl_seconds = kMaxGcTtlSeconds;
  EXPECT_TRUE(ValidateSettings(s).ok());
  s.gc_ttl_seconds = kMaxGcTtlSeconds + 1;  // beyond: ms and timestamp arithmetic could wrap
  EXPECT_EQ(ValidateSettings(s).code(), StatusCode::kInvalidArgument);
  s.gc_ttl_seconds = 18446744073709552ull;
  EXPECT_EQ(ValidateSettings(s).code(), StatusCode::kInvalidArgument);
}

TEST(GcTest, TheSafePointRecordNeverMovesBackAndSurvivesEncoding) {
  ClusterState st = ClusterState::Initial();
  std::string result;
  std::vector<std::string> touched;
  ASSERT_TRUE(Apply(&st, cmd::GcSafePoint(1000), &result, &touched).ok());
  EXPECT_EQ(st.gc_safe_point, 1000u);
  ASSERT_TRUE(Apply(&st, cmd::GcSafePoint(10), &result, &touched).ok());
  EXPECT_EQ(st.gc_safe_point, 1000u);
  auto decoded = DecodeState(EncodeState(st));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->gc_safe_point, 1000u);
  ClusterState loaded = ClusterState::Initial();
  for (const auto& key : RecordKeys(st)) {
    auto value = RecordValue(st, key);
    ASSERT_TRUE(value);
    ASSERT_TRUE(LoadRecord(&loaded, key, *value).ok()) << key;
  }
  EXPECT_EQ(loaded.gc_safe_point, 1000u);
}

}  // namespace
}  // namespace gojodb::controller
