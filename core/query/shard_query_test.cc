// A query's work on a shard: matches, projections, sort values, the limit and byte
// bound, partial aggregates, and what it refuses.
#include "core/query/shard_query.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gojodb::query {
namespace {

using json = nlohmann::json;

TEST(ShardQueryTest, KeepsMatchesProjectedWithSortValuesUpToTheLimit) {
  ShardQueryText t;
  t.filter_json = R"({"age": {"gte": 30}})";
  t.projection = {"name", "a.b"};
  t.sort = {"age", "missing"};
  t.limit = 2;
  auto q = ParseShardQuery(t);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  // Only these top-level fields are parsed out of each document.
  EXPECT_EQ((*q)->fields, (std::vector<std::string>{"a", "age", "missing", "name"}));
  ShardQueryRun run(**q);
  auto add = [&](const std::string& key, const std::string& value) {
    auto r = run.Add(key, value, 7);
    EXPECT_TRUE(r.ok());
    return r.ok() && *r;
  };
  EXPECT_TRUE(add("k1", R"({"name": "x", "age": 20})"));
  EXPECT_TRUE(add("k2", "not json"));
  EXPECT_TRUE(add("k3", R"({"name": "y", "age": 30, "a": {"b": 1, "c": 2}, "z": 0})"));
  EXPECT_FALSE(add("k4", R"({"age": 41})")) << "the second match fills the limit";
  EXPECT_EQ(run.examined(), 4u);
  EXPECT_EQ(run.matched(), 2u);
  ASSERT_EQ(run.matches().size(), 2u);
  const auto& m = run.matches()[0];
  EXPECT_EQ(m.key, "k3");
  EXPECT_EQ(m.version, 7u);
  EXPECT_EQ(json::parse(m.value), json::parse(R"({"name": "y", "a": {"b": 1}})"));
  ASSERT_EQ(m.sort_values.size(), 2u);
  const json thirty = 30;
  EXPECT_EQ(m.sort_values[0], document::EncodeValue(&thirty));
  EXPECT_EQ(m.sort_values[1], document::EncodeValue(nullptr));
  EXPECT_EQ(json::parse(run.matches()[1].value), json::object()) << "no projected field";
}

TEST(ShardQueryTest, StopsAtItsByteBoundAndKeepsWholeDocumentsWithoutAProjection) {
  ShardQueryText t;
  t.limit = 100;
  t.max_bytes = 50;
  auto q = ParseShardQuery(t);
  ASSERT_TRUE(q.ok());
  ShardQueryRun run(**q);
  const std::string doc = R"({"pad": ")" + std::string(30, 'p') + R"("})";
  ASSERT_TRUE(*run.Add("a", doc, 1));
  EXPECT_FALSE(*run.Add("b", doc, 1)) << "past 50 bytes of matches";
  ASSERT_EQ(run.matches().size(), 2u);
  EXPECT_EQ(run.matches()[1].value, doc);
}

TEST(ShardQueryTest, AggregatesIntoAPartialTheRouterMerges) {
  ShardQueryText t;
  t.filter_json = R"({"n": {"lt": 10}})";
  t.group_by_json = R"(["g"])";
  t.aggregates_json = R"({"c": {"count": "*"}, "s": {"sum": "n"}})";
  auto q = ParseShardQuery(t);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ((*q)->fields, (std::vector<std::string>{"g", "n"}));
  ShardQueryRun a(**q), b(**q);
  for (int i = 0; i < 20; ++i) {
    const json d = {{"g", i % 2 == 0 ? "even" : "odd"}, {"n", i}};
    ASSERT_TRUE(*(i < 7 ? a : b).Add("k" + std::to_string(i), d.dump(), 1)) << "never stops";
  }
  EXPECT_TRUE(a.matches().empty());
  EXPECT_EQ(a.matched() + b.matched(), 10u);
  Aggregator merged(*(*q)->aggregate);
  ASSERT_TRUE(merged.MergePartial(a.EncodePartial()).ok());
  ASSERT_TRUE(merged.MergePartial(b.EncodePartial()).ok());
  EXPECT_EQ(merged.Output(), json::parse(R"({"groups": [
      {"key": {"g": "even"}, "values": {"c": 5, "s": 20}},
      {"key": {"g": "odd"}, "values": {"c": 5, "s": 25}}]})"));
}

TEST(ShardQueryTest, RefusesWhatItCannotParse) {
  auto code = [](ShardQueryText t) { return ParseShardQuery(t).status().code(); };
  ShardQueryText t;
  EXPECT_EQ(code(t), StatusCode::kInvalidArgument) << "neither a limit nor an aggregation";
  t.limit = 1;
  EXPECT_TRUE(ParseShardQuery(t).ok());
  for (const char* bad : {"{", R"({"a": {"near": 1}})", R"({"a": {"in": 3}})", "[1]"}) {
    ShardQueryText f = t;
    f.filter_json = bad;
    EXPECT_EQ(code(f), StatusCode::kInvalidArgument) << bad;
  }
  ShardQueryText p = t;
  p.projection = {"a..b"};
  EXPECT_EQ(code(p), StatusCode::kInvalidArgument);
  ShardQueryText s = t;
  s.sort = {""};
  EXPECT_EQ(code(s), StatusCode::kInvalidArgument);
  ShardQueryText a = t;
  a.aggregates_json = R"({"x": {"median": "a"}})";
  EXPECT_EQ(code(a), StatusCode::kInvalidArgument);
  a.aggregates_json = R"({"x": {"count": "*"}})";
  a.group_by_json = "{";
  EXPECT_EQ(code(a), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gojodb::query
