#include "tools/bench/generators.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <thread>
#include <vector>

namespace gojodb::bench {
namespace {

// Observed frequency of each value in `draws` draws.
template <typename Gen>
std::map<uint64_t, double> Frequencies(Gen& gen, Rng& rng, int draws) {
  std::map<uint64_t, double> f;
  for (int i = 0; i < draws; ++i) f[gen.Next(rng)] += 1.0 / draws;
  return f;
}

TEST(RngTest, SameSeedSameStreamDifferentSeedDifferentStream) {
  Rng a(42), b(42), c(43);
  int same_as_c = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    same_as_c += x == c.Next();
  }
  EXPECT_EQ(same_as_c, 0);
}

TEST(RngTest, KnownFirstOutputs) {
  // Pins the stream (xoshiro256** seeded through splitmix64): a change here changes
  // every benchmark's key sequence, so results stop being comparable across versions.
  Rng a(0);
  EXPECT_EQ(a.Next(), 0x99ec5f36cb75f2b4ull);
  EXPECT_EQ(a.Next(), 0xbf6e1f784956452aull);
  EXPECT_EQ(a.Next(), 0x1a5f849d4933e6e0ull);
  Rng b(42);
  EXPECT_EQ(b.Uniform(1000000), 83862u);
}

TEST(RngTest, UniformStaysInRangeAndIsFlat) {
  Rng rng(7);
  constexpr int kDraws = 200000;
  std::vector<int> counts(10, 0);
  for (int i = 0; i < kDraws; ++i) {
    const uint64_t v = rng.Uniform(10);
    ASSERT_LT(v, 10u);
    ++counts[v];
  }
  for (int c : counts) EXPECT_NEAR(c, kDraws / 10, 700);  // about 5 standard deviations
  EXPECT_EQ(rng.Uniform(1), 0u);
}

TEST(RngTest, DoubleIsInUnitInterval) {
  Rng rng(9);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double d = rng.NextDouble();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
    sum += d;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.01);
}

TEST(FnvTest, KnownVectors) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(FnvTest, HashOfIntegerIsFnv1aOverLittleEndianBytesMadeNonNegative) {
  Rng rng(3);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t v = i < 10 ? static_cast<uint64_t>(i) : rng.Next();
    std::string bytes;
    for (int b = 0; b < 8; ++b) bytes.push_back(static_cast<char>((v >> (8 * b)) & 0xff));
    const uint64_t h = Fnv1a64(bytes);
    const uint64_t expected = static_cast<int64_t>(h) < 0 ? 0 - h : h;
    EXPECT_EQ(FnvHash64(v), expected);
    EXPECT_LE(FnvHash64(v), uint64_t{1} << 63);
  }
}

TEST(UniformGeneratorTest, CoversExactlyTheRange) {
  UniformGenerator gen(100, 104);
  Rng rng(1);
  auto f = Frequencies(gen, rng, 50000);
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f.begin()->first, 100u);
  EXPECT_EQ(f.rbegin()->first, 104u);
  for (auto& [v, p] : f) EXPECT_NEAR(p, 0.2, 0.01) << v;
}

TEST(ZipfianTest, ZetaExtendsIncrementally) {
  const double full = ZipfianGenerator::Zeta(0, 5000, 0.99, 0);
  const double part = ZipfianGenerator::Zeta(0, 1234, 0.99, 0);
  EXPECT_NEAR(ZipfianGenerator::Zeta(1234, 5000, 0.99, part), full, 1e-9);
  EXPECT_DOUBLE_EQ(ZipfianGenerator::Zeta(0, 1, 0.99, 0), 1.0);
  EXPECT_NEAR(ZipfianGenerator::Zeta(0, 2, 0.99, 0), 1.0 + std::pow(2.0, -0.99), 1e-12);
}

TEST(ZipfianTest, StaysInRangeAndFirstItemsHaveZipfFrequencies) {
  constexpr uint64_t kItems = 1000;
  ZipfianGenerator gen(10, 10 + kItems - 1);
  Rng rng(11);
  auto f = Frequencies(gen, rng, 400000);
  EXPECT_GE(f.begin()->first, 10u);
  EXPECT_LE(f.rbegin()->first, 10 + kItems - 1);
  const double zetan = ZipfianGenerator::Zeta(0, kItems, 0.99, 0);
  EXPECT_NEAR(gen.zetan(), zetan, 1e-9);
  // P(rank 1) = 1/zeta(n), P(rank 2) = 2^-theta / zeta(n): about 0.134 and 0.067.
  EXPECT_NEAR(f[10], 1.0 / zetan, 0.004);
  EXPECT_NEAR(f[11], std::pow(2.0, -0.99) / zetan, 0.003);
  // Popularity falls with rank.
  EXPECT_GT(f[10], f[11]);
  EXPECT_GT(f[11], f[13]);
  EXPECT_GT(f[13], f[20]);
  EXPECT_GT(f[20], f[100]);
  // The top 10% of items take most of the draws (about 70% for theta 0.99).
  double top = 0;
  for (auto& [v, p] : f) {
    if (v < 10 + kItems / 10) top += p;
  }
  const double expected_top = ZipfianGenerator::Zeta(0, kItems / 10, 0.99, 0) / zetan;
  EXPECT_NEAR(top, expected_top, 0.03);
  EXPECT_GT(top, 0.6);
}

TEST(ZipfianTest, SameSeedSameDraws) {
  ZipfianGenerator a(0, 999), b(0, 999);
  Rng ra(5), rb(5);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.Next(ra), b.Next(rb));
}

TEST(ZipfianTest, ItemCountCanGrowAndShrink) {
  ZipfianGenerator gen(0, 99);
  Rng rng(2);
  for (int i = 0; i < 10000; ++i) ASSERT_LT(gen.Next(rng, 150), 150u);
  EXPECT_EQ(gen.item_count(), 150u);
  EXPECT_NEAR(gen.zetan(), ZipfianGenerator::Zeta(0, 150, 0.99, 0), 1e-9);
  for (int i = 0; i < 10000; ++i) ASSERT_LT(gen.Next(rng, 20), 20u);
  EXPECT_NEAR(gen.zetan(), ZipfianGenerator::Zeta(0, 20, 0.99, 0), 1e-9);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(gen.Next(rng, 1), 0u);
}

TEST(ScrambledZipfianTest, PublishedZetaMatchesTheSum) {
  // zeta(10^10, 0.99) by exact summation up to m, then Euler-Maclaurin for the tail.
  constexpr double kTheta = 0.99;
  constexpr uint64_t m = 1'000'000;
  const double n = static_cast<double>(ScrambledZipfianGenerator::kItemCount);
  double sum = ZipfianGenerator::Zeta(0, m, kTheta, 0);
  auto f = [&](double x) { return std::pow(x, -kTheta); };
  auto df = [&](double x) { return -kTheta * std::pow(x, -kTheta - 1); };
  const double md = static_cast<double>(m);
  sum += (std::pow(n, 1 - kTheta) - std::pow(md, 1 - kTheta)) / (1 - kTheta) + (f(n) - f(md)) / 2 +
         (df(n) - df(md)) / 12;
  EXPECT_NEAR(sum, ScrambledZipfianGenerator::kZetan, 1e-6);
}

TEST(ScrambledZipfianTest, HottestItemIsTheHashOfRankOne) {
  constexpr uint64_t kItems = 1000;
  ScrambledZipfianGenerator gen(0, kItems - 1);
  Rng rng(13);
  auto f = Frequencies(gen, rng, 400000);
  EXPECT_LT(f.rbegin()->first, kItems);
  uint64_t hottest = 0;
  double best = 0;
  for (auto& [v, p] : f) {
    if (p > best) {
      best = p;
      hottest = v;
    }
  }
  EXPECT_EQ(hottest, FnvHash64(0) % kItems);
  // Rank 1 of 10^10 items has probability 1/26.47 = 0.0378; other ranks hashing to the
  // same item add about 1/kItems.
  EXPECT_NEAR(best, 1.0 / ScrambledZipfianGenerator::kZetan + 1.0 / kItems, 0.003);
  // Scrambled: the popular items are spread out, not packed at the low end.
  double low_tenth = 0;
  for (auto& [v, p] : f) {
    if (v < kItems / 10) low_tenth += p;
  }
  EXPECT_LT(low_tenth, 0.3);
  EXPECT_GT(f.size(), kItems * 9 / 10);  // nearly every item is drawn
}

TEST(ScrambledZipfianTest, SameSeedSameDraws) {
  ScrambledZipfianGenerator a(0, 99999), b(0, 99999);
  Rng ra(8), rb(8), rc(9);
  int equal_to_other_seed = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = a.Next(ra);
    ASSERT_EQ(x, b.Next(rb));
    equal_to_other_seed += x == a.Next(rc);
  }
  EXPECT_LT(equal_to_other_seed, 100);
}

TEST(AcknowledgedCounterTest, LimitMovesOnlyOverContiguousAcknowledgements) {
  AcknowledgedCounter c(5);
  EXPECT_EQ(c.Limit(), 5u);
  EXPECT_EQ(c.Next(), 5u);
  EXPECT_EQ(c.Next(), 6u);
  EXPECT_EQ(c.Next(), 7u);
  EXPECT_EQ(c.Next(), 8u);
  c.Acknowledge(6);
  EXPECT_EQ(c.Limit(), 5u);
  c.Acknowledge(8);
  EXPECT_EQ(c.Limit(), 5u);
  c.Acknowledge(5);
  EXPECT_EQ(c.Limit(), 7u);
  c.Acknowledge(7);
  EXPECT_EQ(c.Limit(), 9u);
}

TEST(AcknowledgedCounterTest, ConcurrentInsertersEndContiguous) {
  AcknowledgedCounter c(100);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 5000; ++i) c.Acknowledge(c.Next());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Limit(), 100u + 4 * 5000);
}

TEST(SkewedLatestTest, FavoursTheNewestAcknowledgedRecord) {
  AcknowledgedCounter c(1000);
  SkewedLatestGenerator gen(&c, ZipfianGenerator(0, 999));
  Rng rng(17);
  auto f = Frequencies(gen, rng, 200000);
  EXPECT_LE(f.rbegin()->first, 999u);
  const double zetan = ZipfianGenerator::Zeta(0, 1000, 0.99, 0);
  EXPECT_NEAR(f[999], 1.0 / zetan, 0.004);
  EXPECT_GT(f[999], f[998]);
  EXPECT_GT(f[998], f[990]);
  EXPECT_GT(f[990], f[500]);

  // New inserts become the hot records; unacknowledged ones are never drawn.
  for (int i = 0; i < 100; ++i) c.Acknowledge(c.Next());
  const uint64_t pending = c.Next();  // 1100, never acknowledged
  auto g = Frequencies(gen, rng, 200000);
  EXPECT_LT(g.rbegin()->first, pending);
  EXPECT_EQ(g.rbegin()->first, 1099u);
  EXPECT_NEAR(g[1099], 1.0 / ZipfianGenerator::Zeta(0, 1100, 0.99, 0), 0.004);
}

TEST(DiscreteGeneratorTest, PicksByWeight) {
  DiscreteGenerator<char> gen;
  EXPECT_TRUE(gen.empty());
  gen.Add('r', 0.95);
  gen.Add('x', 0);
  gen.Add('u', 0.05);
  Rng rng(19);
  int r = 0, u = 0;
  for (int i = 0; i < 100000; ++i) {
    const char c = gen.Next(rng);
    ASSERT_NE(c, 'x');
    (c == 'r' ? r : u)++;
  }
  EXPECT_NEAR(r / 100000.0, 0.95, 0.005);
  EXPECT_NEAR(u / 100000.0, 0.05, 0.005);
}

}  // namespace
}  // namespace gojodb::bench
