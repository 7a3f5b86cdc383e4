#include "tools/bench/histogram.h"

#include <gtest/gtest.h>

#include "tools/bench/generators.h"

namespace gojodb::bench {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.ValueAtQuantile(0.99), 0u);
}

TEST(LatencyHistogramTest, BucketsTileTheValueRange) {
  const size_t n = LatencyHistogram::BucketCount();
  EXPECT_EQ(LatencyHistogram::BucketLowest(0), 0u);
  for (size_t i = 0; i + 1 < n; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketHighest(i) + 1, LatencyHistogram::BucketLowest(i + 1)) << i;
  }
  EXPECT_EQ(LatencyHistogram::BucketHighest(n - 1), UINT64_MAX);
  EXPECT_EQ(LatencyHistogram::BucketIndex(UINT64_MAX), n - 1);
}

TEST(LatencyHistogramTest, BucketWidthIsWithinRelativePrecision) {
  Rng rng(1);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng.Next() >> rng.Uniform(64);
    const size_t b = LatencyHistogram::BucketIndex(v);
    const uint64_t lo = LatencyHistogram::BucketLowest(b);
    const uint64_t hi = LatencyHistogram::BucketHighest(b);
    ASSERT_LE(lo, v);
    ASSERT_GE(hi, v);
    if (v < 512) {
      ASSERT_EQ(lo, hi);
    } else {
      ASSERT_LE(static_cast<double>(hi - lo), static_cast<double>(lo) / 256.0) << v;
    }
  }
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 50u);
  EXPECT_EQ(h.ValueAtQuantile(0.95), 95u);
  EXPECT_EQ(h.ValueAtQuantile(0.99), 99u);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 100u);
  EXPECT_EQ(h.ValueAtQuantile(0.0), 1u);
}

TEST(LatencyHistogramTest, QuantileRankRoundsUp) {
  // The sample at quantile q is the ceil(q * count)-th smallest: the median of three is
  // the second, and p99 of ten samples is the tenth.
  LatencyHistogram h;
  for (uint64_t v : {10, 20, 30}) h.Record(v);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 20u);
  EXPECT_EQ(h.ValueAtQuantile(0.34), 20u);
  EXPECT_EQ(h.ValueAtQuantile(0.33), 10u);
  LatencyHistogram ten;
  for (uint64_t v = 1; v <= 10; ++v) ten.Record(v);
  EXPECT_EQ(ten.ValueAtQuantile(0.99), 10u);
  EXPECT_EQ(ten.ValueAtQuantile(0.95), 10u);
  EXPECT_EQ(ten.ValueAtQuantile(0.85), 9u);
}

TEST(LatencyHistogramTest, QuantilesOfLargeValuesWithinPrecision) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 1'000'000; ++v) h.Record(v * 1000);  // 1 us .. 1 s in ns
  auto near = [](uint64_t got, double want) {
    EXPECT_GE(static_cast<double>(got), want * (1 - 1e-9));
    EXPECT_LE(static_cast<double>(got), want * (1 + 1.0 / 256));
  };
  near(h.ValueAtQuantile(0.50), 500'000'000.0);
  near(h.ValueAtQuantile(0.95), 950'000'000.0);
  near(h.ValueAtQuantile(0.99), 990'000'000.0);
  near(h.ValueAtQuantile(0.999), 999'000'000.0);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 1'000'000'000u);
  EXPECT_EQ(h.max(), 1'000'000'000u);
  EXPECT_NEAR(h.mean(), 500'000'500.0, 1.0);
}

TEST(LatencyHistogramTest, TailIsSeenAmongManyFastSamples) {
  LatencyHistogram h;
  for (int i = 0; i < 9990; ++i) h.Record(100'000);   // 100 us
  for (int i = 0; i < 10; ++i) h.Record(50'000'000);  // 50 ms: the slowest 0.1%
  EXPECT_LE(h.ValueAtQuantile(0.99), 100'000u * 257 / 256);
  EXPECT_LE(h.ValueAtQuantile(0.999), 100'000u * 257 / 256);
  EXPECT_GE(h.ValueAtQuantile(0.9991), 50'000'000u);
  EXPECT_EQ(h.max(), 50'000'000u);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingIntoOne) {
  LatencyHistogram a, b, all;
  Rng rng(4);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t v = rng.Uniform(10'000'000);
    (i % 3 ? a : b).Record(v);
    all.Record(v);
  }
  LatencyHistogram empty;
  a.Merge(b);
  a.Merge(empty);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double q : {0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    EXPECT_EQ(a.ValueAtQuantile(q), all.ValueAtQuantile(q)) << q;
  }
}

}  // namespace
}  // namespace gojodb::bench
