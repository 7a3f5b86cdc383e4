// RouteTable: locating keys, scans across shards, and corrections from storage nodes'
// answers (splits, membership changes, leader hints, stale answers out of order).
#include "core/sharding/route_table.h"

#include <gtest/gtest.h>

namespace gojodb::sharding {
namespace {

ShardRecord Shard(uint64_t id, std::string start, std::string end, uint64_t version = 1,
                  uint64_t conf_ver = 1, uint64_t leader = 0) {
  ShardRecord s;
  s.id = id;
  s.start_key = std::move(start);
  s.end_key = std::move(end);
  s.epoch.version = version;
  s.epoch.conf_ver = conf_ver;
  s.replicas = {{1, false}, {2, false}, {3, false}};
  s.leader = leader;
  return s;
}

// The id of the shard holding `key`, or 0 when none does.
uint64_t Where(const RouteTable& t, std::string_view key) {
  auto r = t.Locate(key);
  return r.ok() ? r->id : 0;
}

std::vector<uint64_t> Ids(const Result<std::vector<ShardRecord>>& r) {
  std::vector<uint64_t> out;
  if (r.ok())
    for (const auto& s : *r) out.push_back(s.id);
  return out;
}

TEST(RouteTableTest, LocatesKeysAtBoundaries) {
  RouteTable t;
  ASSERT_TRUE(t.Reset(5, {Shard(1, "", "g"), Shard(2, "g", "p"), Shard(3, "p", "")}));
  struct Case {
    std::string key;
    uint64_t shard;
  };
  for (const auto& c : std::vector<Case>{{"", 1},
                                         {"a", 1},
                                         {"f\xff", 1},
                                         {"g", 2},
                                         {std::string("g\0", 2), 2},
                                         {"o", 2},
                                         {"p", 3},
                                         {"zzzz", 3},
                                         {std::string(4096, '\xff'), 3}}) {
    EXPECT_EQ(Where(t, c.key), c.shard) << c.key;
  }
  EXPECT_EQ(t.version(), 5u);
  // An older map is ignored; a newer one replaces everything.
  EXPECT_FALSE(t.Reset(4, {Shard(9, "", "")}));
  EXPECT_EQ(Where(t, "a"), 1u);
  EXPECT_TRUE(t.Reset(6, {Shard(9, "", "")}));
  EXPECT_EQ(Where(t, "a"), 9u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(RouteTableTest, GapsAreNotFoundAndRangesRefuseThem) {
  RouteTable t;
  t.Reset(1, {Shard(1, "a", "g"), Shard(2, "k", "")});
  EXPECT_EQ(t.Locate("").status().code(), StatusCode::kNotFound);   // before the first
  EXPECT_EQ(t.Locate("h").status().code(), StatusCode::kNotFound);  // the gap
  EXPECT_EQ(Where(t, "k"), 2u);
  EXPECT_EQ(Ids(t.Range("b", "f")), (std::vector<uint64_t>{1}));
  EXPECT_EQ(Ids(t.Range("k", "")), (std::vector<uint64_t>{2}));
  EXPECT_EQ(t.Range("b", "m").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(t.Range("", "b").status().code(), StatusCode::kFailedPrecondition);
}

TEST(RouteTableTest, RangesStitchShardsInKeyOrder) {
  RouteTable t;
  t.Reset(1, {Shard(3, "p", ""), Shard(1, "", "g"), Shard(2, "g", "p")});
  EXPECT_EQ(Ids(t.Range("", "")), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(Ids(t.Range("c", "h")), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Ids(t.Range("g", "p")), (std::vector<uint64_t>{2}));  // end is exclusive
  EXPECT_EQ(Ids(t.Range("o", std::string("p\0", 2))), (std::vector<uint64_t>{2, 3}));
}

TEST(RouteTableTest, SplitsReplaceTheOldShardInAnyOrder) {
  // Both halves arrive: the table follows the split.
  RouteTable t;
  t.Reset(1, {Shard(1, "", "")});
  EXPECT_EQ(t.Update({Shard(1, "", "m", 2), Shard(7, "m", "", 2)}), 2);
  EXPECT_EQ(Where(t, "a"), 1u);
  EXPECT_EQ(Where(t, "z"), 7u);

  // Only the right half arrives first: the left keys become a gap (refresh), never the
  // old shard's.
  RouteTable u;
  u.Reset(1, {Shard(1, "", "")});
  EXPECT_EQ(u.Update({Shard(7, "m", "", 2)}), 1);
  EXPECT_EQ(Where(u, "z"), 7u);
  EXPECT_EQ(u.Locate("a").status().code(), StatusCode::kNotFound);
  // The left half fills the gap; then the pre-split descriptor, arriving late, is stale.
  EXPECT_EQ(u.Update({Shard(1, "", "m", 2)}), 1);
  EXPECT_EQ(u.Update({Shard(1, "", "", 1)}), 0);
  EXPECT_EQ(Where(u, "a"), 1u);
  EXPECT_EQ(Where(u, "z"), 7u);
}

TEST(RouteTableTest, MembershipChangesAndStaleAnswers) {
  RouteTable t;
  t.Reset(1, {Shard(1, "", "")});
  auto moved = Shard(1, "", "", 1, 2);
  moved.replicas = {{1, false}, {2, false}, {4, false}};
  EXPECT_EQ(t.Update({moved}), 1);
  EXPECT_EQ(t.Locate("k")->replicas, moved.replicas);
  // An answer from before the change is stale.
  EXPECT_EQ(t.Update({Shard(1, "", "", 1, 1)}), 0);
  EXPECT_EQ(t.Locate("k")->epoch.conf_ver, 2u);
  // A descriptor that contradicts itself (newer version, older conf_ver) is refused.
  EXPECT_EQ(t.Update({Shard(1, "", "", 2, 1)}), 0);
  // Another shard claiming the keys with no newer version is refused.
  EXPECT_EQ(t.Update({Shard(8, "a", "b", 1, 5)}), 0);
  EXPECT_EQ(Where(t, "a"), 1u);
}

TEST(RouteTableTest, LeaderHintsAndInvalidation) {
  RouteTable t;
  t.Reset(1, {Shard(1, "", "m"), Shard(2, "m", "")});
  t.SetLeader(2, 3);
  EXPECT_EQ(t.Locate("x")->leader, 3u);
  t.SetLeader(42, 1);  // unknown: nothing happens
  EXPECT_EQ(t.size(), 2u);
  // The same descriptor again carries a leader hint only.
  EXPECT_EQ(t.Update({Shard(1, "", "m", 1, 1, 2)}), 0);
  EXPECT_EQ(t.Locate("a")->leader, 2u);
  t.Invalidate(1);
  EXPECT_EQ(t.Locate("a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Where(t, "x"), 2u);
}

}  // namespace
}  // namespace gojodb::sharding
