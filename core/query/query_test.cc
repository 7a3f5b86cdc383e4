// The filter language (parsing, errors, evaluation) and the planner: the index it picks
// for each shape of filter, and, over random documents and filters, that an index plan's
// ranges hold the entry of every document the filter matches.
#include "core/query/query.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

namespace gojodb::query {
namespace {

using json = nlohmann::json;
using document::IndexSpec;

document::Path P(std::string_view t) { return std::move(document::ParsePath(t)).value(); }

bool Match(const char* filter, const char* doc) {
  auto f = ParseFilter(json::parse(filter));
  EXPECT_TRUE(f.ok()) << filter << ": " << f.status().ToString();
  return f.ok() && Matches(*f, json::parse(doc));
}

TEST(FilterTest, Operators) {
  const char* doc = R"({"age": 41, "name": "Ada", "tags": ["x"], "a": {"b": 2}, "n": null})";
  EXPECT_TRUE(Match(R"({"age": 41})", doc));
  EXPECT_TRUE(Match(R"({"age": 41.0})", doc));
  EXPECT_FALSE(Match(R"({"age": "41"})", doc)) << "no coercion";
  EXPECT_TRUE(Match(R"({"age": {"gt": 40, "lte": 41}})", doc));
  EXPECT_FALSE(Match(R"({"age": {"gt": 41}})", doc));
  EXPECT_FALSE(Match(R"({"age": {"lt": "a"}})", doc)) << "ranges compare like with like";
  EXPECT_FALSE(Match(R"({"name": {"gt": 5}})", doc));
  EXPECT_TRUE(Match(R"({"name": {"gte": "Ada", "lt": "B"}})", doc));
  EXPECT_TRUE(Match(R"({"name": {"prefix": "Ad"}})", doc));
  EXPECT_FALSE(Match(R"({"name": {"prefix": "ad"}})", doc));
  EXPECT_FALSE(Match(R"({"age": {"prefix": "4"}})", doc));
  EXPECT_TRUE(Match(R"({"name": {"in": ["Bo", "Ada"]}})", doc));
  EXPECT_FALSE(Match(R"({"name": {"in": []}})", doc));
  EXPECT_TRUE(Match(R"({"missing": {"exists": false}, "n": {"exists": true}})", doc));
  EXPECT_TRUE(Match(R"({"n": null})", doc));
  EXPECT_FALSE(Match(R"({"missing": null})", doc)) << "missing is not null";
  EXPECT_TRUE(Match(R"({"missing": {"ne": 1}})", doc));
  EXPECT_FALSE(Match(R"({"age": {"ne": 41}})", doc));
  EXPECT_TRUE(Match(R"({"a.b": {"gte": 2}})", doc));
  EXPECT_TRUE(Match(R"({"a": {"eq": {"b": 2}}})", doc));
  EXPECT_TRUE(Match(R"({"tags": ["x"]})", doc));
  EXPECT_TRUE(Match(R"({"or": [{"age": 1}, {"name": "Ada"}]})", doc));
  EXPECT_FALSE(Match(R"({"or": []})", doc));
  EXPECT_TRUE(Match(R"({"and": []})", doc));
  EXPECT_TRUE(Match(R"({"not": {"age": 1}})", doc));
  EXPECT_FALSE(Match(R"({"not": {"age": 41}, "name": "Ada"})", doc));
  EXPECT_TRUE(Match(R"({})", doc));
  auto all = ParseFilter(json(nullptr));
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(Matches(*all, json::parse(doc)));
}

TEST(FilterTest, BadFiltersAreClearErrors) {
  for (const char* bad :
       {R"([])", R"(3)", R"({"age": {"between": [1, 2]}})", R"({"age": {"gt": 1, "nope": 2}})",
        R"({"age": {"in": 3}})", R"({"age": {"exists": 1}})", R"({"name": {"prefix": 3}})",
        R"({"age": {"gt": [1]}})", R"({"age": {"lt": null}})", R"({"and": {}})", R"({"or": [3]})",
        R"({"not": []})", R"({"a..b": 1})", R"({"": 1})"}) {
    auto f = ParseFilter(json::parse(bad));
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(f.status().message().find("filter"), std::string::npos) << f.status().ToString();
  }
  json deep = {{"age", 1}};
  for (int i = 0; i < kMaxFilterDepth + 1; ++i) deep = {{"not", deep}};
  EXPECT_EQ(ParseFilter(deep).status().code(), StatusCode::kInvalidArgument);
  json many = json::array();
  for (size_t i = 0; i <= kMaxInValues; ++i) many.push_back(i);
  EXPECT_FALSE(ParseFilter({{"age", {{"in", many}}}}).ok());

  auto schema = document::Schema::Parse(
      R"({"fields": {"age": {"type": "integer"}, "name": {"type": "string"}},
          "additional_fields": false})");
  ASSERT_TRUE(schema.ok());
  EXPECT_TRUE(ParseFilter(json::parse(R"({"age": {"gt": 3}})"), &*schema).ok());
  EXPECT_FALSE(ParseFilter(json::parse(R"({"agee": 3})"), &*schema).ok()) << "unknown field";
  EXPECT_FALSE(ParseFilter(json::parse(R"({"age": {"gt": "x"}})"), &*schema).ok())
      << "type mismatch";
  EXPECT_FALSE(ParseFilter(json::parse(R"({"name": {"lt": 4}})"), &*schema).ok());
}

class PlannerTest : public ::testing::Test {
 protected:
  std::vector<IndexSpec> indexes_ = {
      {"by_age", 10, {P("age")}, false},
      {"by_city_age", 11, {P("city"), P("age")}, false},
      {"by_email", 12, {P("email")}, true},
      {"by_city", 13, {P("city")}, false},
      {"by_email_city", 14, {P("email"), P("city")}, true},
  };
  json Explain(const char* filter) {
    auto f = ParseFilter(json::parse(filter));
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return ChoosePlan(*f, indexes_).Explain();
  }
};

TEST_F(PlannerTest, PicksTheIndexThatFixesMost) {
  EXPECT_EQ(Explain(R"({"name": "x"})")["plan"], "collection_scan");
  EXPECT_EQ(Explain(R"({})")["plan"], "collection_scan");
  EXPECT_EQ(Explain(R"({"or": [{"age": 1}, {"city": "x"}]})")["plan"], "collection_scan");
  EXPECT_EQ(Explain(R"({"not": {"age": 1}})")["plan"], "collection_scan");
  EXPECT_EQ(Explain(R"({"age": {"ne": 1}})")["plan"], "collection_scan");
  json e = Explain(R"({"age": 3})");
  EXPECT_EQ(e["plan"], "index_scan");
  EXPECT_EQ(e["index"], "by_age");
  EXPECT_EQ(e["fixed_fields"], 1);
  e = Explain(R"({"age": {"gte": 3, "lt": 9}})");
  EXPECT_EQ(e["index"], "by_age");
  EXPECT_EQ(e["range"], true);
  // Both fields of the compound index beat one field of another.
  e = Explain(R"({"city": "Oslo", "age": 40})");
  EXPECT_EQ(e["index"], "by_city_age");
  EXPECT_EQ(e["fixed_fields"], 2);
  // A fixed city and a range on age: the compound index, with its range.
  e = Explain(R"({"and": [{"city": "Oslo"}, {"age": {"gt": 30}}]})");
  EXPECT_EQ(e["index"], "by_city_age");
  EXPECT_EQ(e["range"], true);
  // City alone: the tighter single-field index.
  EXPECT_EQ(Explain(R"({"city": "Oslo"})")["index"], "by_city");
  // A unique point lookup wins over everything.
  e = Explain(R"({"email": "a@b", "city": "Oslo", "age": 4})");
  EXPECT_EQ(e["index"], "by_email_city");
  EXPECT_EQ(Explain(R"({"email": "a@b"})")["index"], "by_email");
  // Not with null: a unique index has no entries for it.
  EXPECT_NE(Explain(R"({"email": null})")["plan"], "index_scan");
  // in: one range per value.
  e = Explain(R"({"city": {"in": ["A", "B", "C"]}})");
  EXPECT_EQ(e["index"], "by_city");
  EXPECT_EQ(e["ranges"].size(), 3u);
  // A prefix is a range.
  e = Explain(R"({"city": {"prefix": "Os"}})");
  EXPECT_EQ(e["plan"], "index_scan");
  EXPECT_EQ(e["range"], true);
  // exists: missing is a value of its own in a non-unique index; present is a range.
  e = Explain(R"({"city": {"exists": false}})");
  EXPECT_EQ(e["index"], "by_city");
  EXPECT_EQ(e["fixed_fields"], 1);
  e = Explain(R"({"city": "Oslo", "age": {"exists": true}})");
  EXPECT_EQ(e["index"], "by_city_age");
  EXPECT_EQ(e["range"], true);
  EXPECT_NE(Explain(R"({"email": {"exists": true}})")["plan"], "index_scan")
      << "a unique index has no entries for null";
  // Contradicting equalities: nothing to scan.
  e = Explain(R"({"age": 1, "and": [{"age": 2}]})");
  EXPECT_EQ(e["plan"], "index_scan");
  EXPECT_EQ(e["ranges"].size(), 0u);
}

// Random documents and filters: every document the filter matches has its entry inside
// the plan's ranges (the plan may read more, never less).
TEST_F(PlannerTest, IndexRangesNeverMissAMatch) {
  std::mt19937 rng(2026);
  auto value = [&]() -> json {
    switch (rng() % 7) {
      case 0:
        return nullptr;
      case 1:
        return rng() % 2 == 0;
      case 2:
        return static_cast<int>(rng() % 7) - 3;
      case 3:
        return (static_cast<int>(rng() % 13) - 6) / 2.0;
      case 4:
      case 5: {
        const char* s[] = {"", "a", "ab", "abc", "b", "ba", "Oslo"};
        return s[rng() % 7];
      }
      default:
        return json::array({static_cast<int>(rng() % 2)});
    }
  };
  const char* fields[] = {"age", "city", "email"};
  std::vector<json> docs;
  for (int i = 0; i < 300; ++i) {
    json d = json::object();
    for (const char* f : fields) {
      if (rng() % 4 != 0) d[f] = value();
    }
    docs.push_back(std::move(d));
  }
  const char* ops[] = {"eq", "lt", "lte", "gt", "gte", "in", "prefix", "exists"};
  int index_plans = 0;
  for (int round = 0; round < 3000; ++round) {
    json filter = json::object();
    json conj = json::array();
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) {
      const std::string op = ops[rng() % 8];
      json operand;
      if (op == "in") {
        operand = json::array({value(), value()});
      } else if (op == "exists") {
        operand = rng() % 2 == 0;
      } else if (op == "prefix") {
        const char* s[] = {"", "a", "ab", "O"};
        operand = s[rng() % 4];
      } else if (op == "eq") {
        operand = value();
      } else {
        do operand = value();
        while (!operand.is_number() && !operand.is_string() && !operand.is_boolean());
      }
      conj.push_back({{fields[rng() % 3], {{op, operand}}}});
    }
    filter["and"] = conj;
    auto f = ParseFilter(filter);
    ASSERT_TRUE(f.ok()) << filter.dump() << f.status().ToString();
    const Plan plan = ChoosePlan(*f, indexes_);
    if (plan.kind != Plan::Kind::kIndexScan) continue;
    ++index_plans;
    for (size_t d = 0; d < docs.size(); ++d) {
      if (!Matches(*f, docs[d])) continue;
      auto entry = document::EntryFor(*plan.index, "k" + std::to_string(d), docs[d]);
      ASSERT_TRUE(entry) << "a match without an entry in " << plan.index->name << ": "
                         << filter.dump() << " " << docs[d].dump();
      bool inside = false;
      for (const auto& r : plan.ranges) {
        inside = inside || (entry->key >= r.start && (r.end.empty() || entry->key < r.end));
      }
      ASSERT_TRUE(inside) << filter.dump() << " misses " << docs[d].dump() << " via "
                          << plan.Explain().dump();
    }
  }
  EXPECT_GT(index_plans, 500);
}

}  // namespace
}  // namespace gojodb::query
