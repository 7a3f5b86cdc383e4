#include "tools/bench/workload.h"

#include <gtest/gtest.h>

#include <array>
#include <set>

namespace gojodb::bench {
namespace {

TEST(WorkloadTest, CoreWorkloadMixes) {
  struct Want {
    const char* name;
    double read, update, insert, scan, rmw;
    Distribution dist;
  };
  const Want wants[] = {
      {"a", 0.5, 0.5, 0, 0, 0, Distribution::kZipfian},
      {"b", 0.95, 0.05, 0, 0, 0, Distribution::kZipfian},
      {"c", 1, 0, 0, 0, 0, Distribution::kZipfian},
      {"d", 0.95, 0, 0.05, 0, 0, Distribution::kLatest},
      {"e", 0, 0, 0.05, 0.95, 0, Distribution::kZipfian},
      {"f", 0.5, 0, 0, 0, 0.5, Distribution::kZipfian},
      {"write", 0, 1, 0, 0, 0, Distribution::kZipfian},
  };
  for (const auto& w : wants) {
    auto s = WorkloadByName(w.name);
    ASSERT_TRUE(s.ok()) << w.name;
    EXPECT_DOUBLE_EQ(s->read, w.read) << w.name;
    EXPECT_DOUBLE_EQ(s->update, w.update) << w.name;
    EXPECT_DOUBLE_EQ(s->insert, w.insert) << w.name;
    EXPECT_DOUBLE_EQ(s->scan, w.scan) << w.name;
    EXPECT_DOUBLE_EQ(s->read_modify_write, w.rmw) << w.name;
    EXPECT_EQ(s->distribution, w.dist) << w.name;
    EXPECT_FALSE(s->load_only());
  }
  auto load = WorkloadByName("load");
  ASSERT_TRUE(load.ok());
  EXPECT_TRUE(load->load_only());
  auto bad = WorkloadByName("g");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(WorkloadTest, DistributionNamesRoundTrip) {
  for (auto d : {Distribution::kZipfian, Distribution::kUniform, Distribution::kLatest}) {
    EXPECT_EQ(ParseDistribution(DistributionName(d)), d);
  }
  EXPECT_FALSE(ParseDistribution("normal").has_value());
}

TEST(KeyNameTest, FixedWidthHashedAndDistinct) {
  EXPECT_EQ(KeyName(0), "user" + std::string(19 - std::to_string(FnvHash64(0)).size(), '0') +
                            std::to_string(FnvHash64(0)));
  std::set<std::string> seen;
  for (uint64_t i = 0; i < 100000; ++i) {
    const std::string k = KeyName(i);
    ASSERT_EQ(k.size(), 23u) << k;
    ASSERT_EQ(k.rfind("user", 0), 0u);
    ASSERT_TRUE(seen.insert(k).second) << "duplicate key for " << i;
  }
  // Hashed, not sequential: consecutive records are not adjacent in key order.
  EXPECT_GT(KeyName(1), KeyName(2));
}

std::array<int, kNumOpTypes> CountOps(OperationStream& s, int n, uint64_t index_limit) {
  std::array<int, kNumOpTypes> counts{};
  for (int i = 0; i < n; ++i) {
    const Operation op = s.Next();
    ++counts[static_cast<int>(op.type)];
    if (op.type != OpType::kInsert) {
      EXPECT_LT(op.index, index_limit);
    }
  }
  return counts;
}

TEST(OperationStreamTest, WorkloadAMixAndKeyRange) {
  WorkloadState state(*WorkloadByName("a"), 5000, 100000);
  OperationStream s(&state, 1);
  auto c = CountOps(s, 100000, 5000);
  EXPECT_NEAR(c[static_cast<int>(OpType::kRead)] / 1e5, 0.5, 0.01);
  EXPECT_NEAR(c[static_cast<int>(OpType::kUpdate)] / 1e5, 0.5, 0.01);
  EXPECT_EQ(c[static_cast<int>(OpType::kInsert)], 0);
}

TEST(OperationStreamTest, SameSeedSameStreamOtherSeedOther) {
  WorkloadState state(*WorkloadByName("b"), 100000, 10000);
  OperationStream s1(&state, 77), s2(&state, 77), s3(&state, 78);
  int same = 0;
  for (int i = 0; i < 2000; ++i) {
    const Operation a = s1.Next(), b = s2.Next(), c = s3.Next();
    ASSERT_EQ(a.type, b.type);
    ASSERT_EQ(a.index, b.index);
    same += a.index == c.index && a.type == c.type;
  }
  EXPECT_LT(same, 400);  // the hottest key alone draws about 4%
}

TEST(OperationStreamTest, WorkloadEScansAndInserts) {
  WorkloadState state(*WorkloadByName("e"), 1000, 10000);
  OperationStream s(&state, 3);
  uint64_t min_len = UINT64_MAX, max_len = 0;
  uint64_t next_insert = 1000;
  int scans = 0;
  for (int i = 0; i < 10000; ++i) {
    const Operation op = s.Next();
    if (op.type == OpType::kScan) {
      ++scans;
      min_len = std::min(min_len, op.scan_length);
      max_len = std::max(max_len, op.scan_length);
      EXPECT_LT(op.index, state.inserts().Limit());
    } else {
      ASSERT_EQ(op.type, OpType::kInsert);
      EXPECT_EQ(op.index, next_insert++);  // fresh, sequential record numbers
      state.inserts().Acknowledge(op.index);
    }
  }
  EXPECT_NEAR(scans / 1e4, 0.95, 0.01);
  EXPECT_EQ(min_len, 1u);
  EXPECT_EQ(max_len, 100u);
  EXPECT_GT(state.inserts().Limit(), 1000u);
}

TEST(OperationStreamTest, WorkloadDReadsTheLatestInserts) {
  WorkloadState state(*WorkloadByName("d"), 1000, 20000);
  OperationStream s(&state, 5);
  int reads = 0, reads_of_newest_ten = 0;
  for (int i = 0; i < 20000; ++i) {
    const Operation op = s.Next();
    if (op.type == OpType::kInsert) {
      state.inserts().Acknowledge(op.index);
      continue;
    }
    ASSERT_EQ(op.type, OpType::kRead);
    const uint64_t limit = state.inserts().Limit();
    ASSERT_LT(op.index, limit);
    ++reads;
    reads_of_newest_ten += op.index + 10 >= limit;
  }
  // With theta 0.99 the newest 10 of about 2000 records take about 35% of the reads.
  EXPECT_GT(reads_of_newest_ten, reads / 4);
  EXPECT_NEAR(reads / 2e4, 0.95, 0.01);
}

TEST(OperationStreamTest, UniformOverride) {
  WorkloadSpec spec = *WorkloadByName("c");
  spec.distribution = Distribution::kUniform;
  WorkloadState state(spec, 10, 1000);
  OperationStream s(&state, 5);
  std::array<int, 10> counts{};
  for (int i = 0; i < 100000; ++i) ++counts[s.Next().index];
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
}

TEST(ThreadSeedTest, DistinctPerThreadAndPhase) {
  std::set<uint64_t> seeds;
  for (uint64_t phase = 0; phase < 2; ++phase) {
    for (uint64_t t = 0; t < 64; ++t) seeds.insert(ThreadSeed(1, phase, t));
  }
  EXPECT_EQ(seeds.size(), 128u);
  EXPECT_EQ(ThreadSeed(1, 1, 3), ThreadSeed(1, 1, 3));
  EXPECT_NE(ThreadSeed(1, 1, 3), ThreadSeed(2, 1, 3));
}

TEST(TransferWorkload, PicksTwoDistinctRecordsUniformly) {
  auto spec = WorkloadByName("transfer");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->distribution, Distribution::kUniform);
  WorkloadState state(*spec, 100, 1000);
  OperationStream s(&state, 9);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    Operation op = s.Next();
    ASSERT_EQ(op.type, OpType::kTransfer);
    EXPECT_NE(op.index, op.other);
    EXPECT_LT(op.other, 100u);
    seen.insert(op.index);
  }
  EXPECT_GT(seen.size(), 90u);
  EXPECT_EQ(OpTypeName(OpType::kTransfer), "TRANSFER");
}

TEST(TransferWorkload, BalancesRoundTripThroughValues) {
  EXPECT_EQ(ParseBalance(BalanceValue(-42, "xyz")), -42);
  EXPECT_EQ(ParseBalance(BalanceValue(1234567, "")), 1234567);
  EXPECT_EQ(BalanceValue(7, "pad"), "7 pad");
  EXPECT_EQ(ParseBalance("random bytes"), 0);
  EXPECT_EQ(ParseBalance(""), 0);
  EXPECT_EQ(ParseBalance(std::string(100, '9')) > 0, true);  // no overflow
}

}  // namespace
}  // namespace gojodb::bench
