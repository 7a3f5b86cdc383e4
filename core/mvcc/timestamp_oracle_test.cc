#include "core/mvcc/timestamp_oracle.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

namespace gojodb::mvcc {
namespace {

class TsoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("gojodb-tso-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    Open();
  }
  void TearDown() override {
    tso_.reset();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    tso_.reset();
    engine_.reset();
    storage::EngineOptions o;
    o.path = dir_.string();
    engine_ = std::move(storage::OpenEngine(o)).value();
    tso_ = std::move(LocalTimestampOracle::Open(engine_.get(), &clock_, 1000)).value();
  }
  std::filesystem::path dir_;
  ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<LocalTimestampOracle> tso_;
};

TEST_F(TsoTest, StrictlyIncreasingEvenWhenTheClockStandsStillOrGoesBack) {
  Timestamp prev = 0;
  for (int i = 0; i < 1000; ++i) {
    if (i == 300) clock_.Advance(5);
    if (i == 600) clock_.Set(1'600'000'000'000);  // a clock step backwards
    Timestamp t = *tso_->Next();
    ASSERT_GT(t, prev);
    prev = t;
  }
  EXPECT_EQ(tso_->Last(), prev);
}

TEST_F(TsoTest, NeverRepeatsAcrossRestartWithAClockBehind) {
  Timestamp before = 0;
  for (int i = 0; i < 10; ++i) before = *tso_->Next();
  clock_.Set(1'000);  // restart on a machine whose clock is far behind
  Open();
  Timestamp after = *tso_->Next();
  EXPECT_GT(after, before);
}

TEST_F(TsoTest, LogicalOverflowBorrowsTheNextMillisecond) {
  Timestamp first = *tso_->Next();
  Timestamp t = first;
  for (int i = 0; i < (1 << kLogicalBits); ++i) t = *tso_->Next();
  EXPECT_EQ(PhysicalMillis(t), PhysicalMillis(first) + 1);
}

TEST_F(TsoTest, AdvancePastMovesTheFloor) {
  Timestamp far = ComposeTimestamp(clock_.NowMillis() + 60'000, 7);
  ASSERT_TRUE(tso_->AdvancePast(far).ok());
  EXPECT_GT(*tso_->Next(), far);
  Open();  // and the floor is durable
  EXPECT_GT(*tso_->Next(), far);
}

TEST_F(TsoTest, ConcurrentCallersGetUniqueTimestamps) {
  std::vector<std::thread> threads;
  std::vector<std::vector<Timestamp>> got(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) got[t].push_back(*tso_->Next());
    });
  }
  for (auto& th : threads) th.join();
  std::set<Timestamp> all;
  for (auto& g : got) {
    for (size_t i = 1; i < g.size(); ++i) ASSERT_GT(g[i], g[i - 1]);
    all.insert(g.begin(), g.end());
  }
  EXPECT_EQ(all.size(), 8000u);
}

}  // namespace
}  // namespace gojodb::mvcc
