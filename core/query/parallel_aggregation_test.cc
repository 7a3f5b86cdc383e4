// ParallelAggregation: the same groups and counts as one run over the same rows, for
// ranges below and above a batch, and a worker's error ends the aggregation.
#include "core/query/parallel_aggregation.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "internal/failpoint.h"

namespace gojodb::query {
namespace {

using json = nlohmann::json;

std::unique_ptr<ShardQuery> Query(const std::string& group_by) {
  ShardQueryText t;
  t.filter_json = R"({"n": {"lt": 900}})";
  t.group_by_json = group_by;
  t.aggregates_json =
      R"({"c": {"count": "*"}, "s": {"sum": "n"}, "lo": {"min": "n"}, "hi": {"max": "n"},)"
      R"( "d": {"count_distinct": "n"}})";
  auto q = ParseShardQuery(t);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return std::move(q).value();
}

TEST(ParallelAggregationTest, MatchesOneRunOverTheSameRows) {
  auto q = Query(R"(["g"])");
  std::mt19937_64 rng(3);
  for (size_t rows : {size_t{0}, size_t{1}, ParallelAggregation::kBatchRows - 1,
                      ParallelAggregation::kBatchRows, size_t{10007}}) {
    for (unsigned workers : {1u, 3u}) {
      ShardQueryRun serial(*q), parallel(*q);
      ParallelAggregation par(*q, workers);
      for (size_t i = 0; i < rows; ++i) {
        // Whole numbers: their sums are exact in any order. Some rows are not documents.
        const std::string v = i % 97 == 0 ? std::string("not json")
                                          : json{{"g", "g" + std::to_string(rng() % 37)},
                                                 {"n", static_cast<int>(rng() % 1000)}}
                                                .dump();
        ASSERT_TRUE(serial.Add("k", v, 1).ok());
        ASSERT_TRUE(par.Add(v).ok());
      }
      ASSERT_TRUE(par.Finish(&parallel).ok());
      EXPECT_EQ(parallel.examined(), rows) << rows << " rows, " << workers << " workers";
      EXPECT_EQ(parallel.matched(), serial.matched()) << rows;
      EXPECT_EQ(parallel.EncodePartial(), serial.EncodePartial()) << rows << " rows";
    }
  }
}

// With fewer threads than asked for, or none at all, every row is still folded once.
TEST(ParallelAggregationTest, FewerThreadsThanAskedForLoseNoRow) {
  auto q = Query(R"(["g"])");
  for (uint64_t granted : {0u, 1u}) {
    failpoint::ScopedError refuse("query/aggregation_thread", [granted](uint64_t i) {
      return i >= granted ? Status::Unavailable("no thread") : Status::OK();
    });
    ShardQueryRun serial(*q), parallel(*q);
    ParallelAggregation par(*q, 3);
    for (int i = 0; i < 3000; ++i) {
      const std::string v = json{{"g", i % 7}, {"n", i % 1000}}.dump();
      ASSERT_TRUE(serial.Add("k", v, 1).ok());
      ASSERT_TRUE(par.Add(v).ok());
    }
    ASSERT_TRUE(par.Finish(&parallel).ok());
    EXPECT_EQ(parallel.examined(), 3000u) << granted << " threads";
    EXPECT_EQ(parallel.EncodePartial(), serial.EncodePartial()) << granted << " threads";
  }
}

TEST(ParallelAggregationTest, AWorkersErrorEndsTheAggregation) {
  auto q = Query(R"(["id"])");  // a group per document: past kMaxGroups
  ParallelAggregation par(*q, 2);
  Status fed;
  size_t i = 0;
  for (; i <= kMaxGroups + ParallelAggregation::kBatchRows * 8 && fed.ok(); ++i) {
    fed = par.Add(json{{"id", i}, {"n", 1}}.dump());
  }
  ShardQueryRun out(*q);
  Status finished = par.Finish(&out);
  // Each worker's share may stay under the limit: then the merge is what refuses.
  EXPECT_EQ(finished.code(), StatusCode::kInvalidArgument) << finished.ToString();
  if (!fed.ok()) EXPECT_EQ(fed.code(), StatusCode::kInvalidArgument) << fed.ToString();
}

TEST(ParallelAggregationTest, AbandonedWithoutFinishJoinsItsWorkers) {
  auto q = Query(R"(["g"])");
  auto par = std::make_unique<ParallelAggregation>(*q, 2);
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(par->Add(json{{"g", i % 3}, {"n", i}}.dump()).ok());
  par.reset();  // the scan failed midway: no hang, no crash
}

}  // namespace
}  // namespace gojodb::query
