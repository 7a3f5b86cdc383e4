// The filter language (parsing, errors, evaluation) and the planner: the index it picks
// for each shape of filter, and, over random documents and filters, that an index plan's
// ranges hold the entry of every document the filter matches.
#include "core/query/query.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "core/mvcc/key_codec.h"

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

// Random documents and filters for the planner's properties below.
class RandomPlannerTest : public PlannerTest {
 protected:
  std::mt19937 rng_{2026};
  const char* fields_[3] = {"age", "city", "email"};

  json Value() {
    switch (rng_() % 7) {
      case 0:
        return nullptr;
      case 1:
        return rng_() % 2 == 0;
      case 2:
        return static_cast<int>(rng_() % 7) - 3;
      case 3:
        return (static_cast<int>(rng_() % 13) - 6) / 2.0;
      case 4:
      case 5: {
        const char* s[] = {"", "a", "ab", "abc", "b", "ba", "Oslo"};
        return s[rng_() % 7];
      }
      default:
        return json::array({static_cast<int>(rng_() % 2)});
    }
  }
  std::vector<json> Docs(int n) {
    std::vector<json> docs;
    for (int i = 0; i < n; ++i) {
      json d = json::object();
      for (const char* f : fields_) {
        if (rng_() % 4 != 0) d[f] = Value();
      }
      docs.push_back(std::move(d));
    }
    return docs;
  }
  // An `and` of one to three comparisons of random fields.
  json Filter() {
    const char* ops[] = {"eq", "lt", "lte", "gt", "gte", "in", "prefix", "exists"};
    json conj = json::array();
    const int n = 1 + static_cast<int>(rng_() % 3);
    for (int i = 0; i < n; ++i) {
      const std::string op = ops[rng_() % 8];
      json operand;
      if (op == "in") {
        operand = json::array({Value(), Value()});
      } else if (op == "exists") {
        operand = rng_() % 2 == 0;
      } else if (op == "prefix") {
        const char* s[] = {"", "a", "ab", "O"};
        operand = s[rng_() % 4];
      } else if (op == "eq") {
        operand = Value();
      } else {
        do operand = Value();
        while (!operand.is_number() && !operand.is_string() && !operand.is_boolean());
      }
      conj.push_back({{fields_[rng_() % 3], {{op, operand}}}});
    }
    return {{"and", conj}};
  }
};

// Every document the filter matches has its entry inside the plan's ranges (the plan
// may read more, never less).
TEST_F(RandomPlannerTest, IndexRangesNeverMissAMatch) {
  const std::vector<json> docs = Docs(300);
  int index_plans = 0;
  for (int round = 0; round < 3000; ++round) {
    const json filter = Filter();
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

// What the router's early end of an ordered walk rests on (docs/architecture/documents.md,
// "Queries"): in an ordered plan, the matches' entries in key order come with sort
// values that never go down, and the walk after a cursor leaves out no entry whose sort
// values are at or after the cursor's (descending: at or before).
TEST_F(RandomPlannerTest, OrderedPlansMeetTheMatchesInSortOrder) {
  const std::vector<json> docs = Docs(300);
  const std::vector<std::vector<const char*>> sorts = {
      {"age"}, {"city"}, {"city", "age"}, {"email"}, {"email", "city"}, {"age", "city"}};
  int ordered = 0, whole = 0, exact = 0, backward = 0;
  for (int round = 0; round < 4000; ++round) {
    json filter = rng_() % 5 == 0 ? json::object() : Filter();
    std::vector<document::Path> sort;
    for (const char* p : sorts[rng_() % sorts.size()]) sort.push_back(P(p));
    const bool descending = rng_() % 2 == 0;
    auto f = ParseFilter(filter);
    ASSERT_TRUE(f.ok()) << filter.dump() << f.status().ToString();
    const Plan plan = ChoosePlan(*f, indexes_, sort, descending);
    const Plan unsorted = ChoosePlan(*f, indexes_);
    if (unsorted.kind == Plan::Kind::kIndexScan) {
      // The sort only breaks a tie between indexes that fix as much.
      ASSERT_EQ(plan.fixed_fields, unsorted.fixed_fields) << filter.dump();
      ASSERT_EQ(plan.has_range, unsorted.has_range) << filter.dump();
    }
    if (!plan.ordered) continue;
    ++ordered;
    ASSERT_EQ(plan.descending, descending);
    ASSERT_FALSE(descending && plan.exactly_ordered);
    backward += descending;
    if (plan.ranges.size() == 1 && plan.ranges[0].start.empty() && plan.ranges[0].end.empty()) {
      ++whole;
    }
    ASSERT_EQ(plan.kind, Plan::Kind::kIndexScan);
    ASSERT_LE(plan.ranges.size(), 1u);
    // The matches, by entry key, with their sort values and document keys.
    struct Step {
      std::string entry;
      std::vector<std::string> values;
      std::string doc;
      bool operator<(const Step& o) const { return entry < o.entry; }
    };
    std::vector<Step> walk;
    for (size_t d = 0; d < docs.size(); ++d) {
      if (!Matches(*f, docs[d])) continue;
      auto entry = document::EntryFor(*plan.index, "k" + std::to_string(d), docs[d]);
      ASSERT_TRUE(entry) << filter.dump() << " " << docs[d].dump();
      std::vector<std::string> values;
      for (const auto& p : sort)
        values.push_back(document::EncodeValue(document::Lookup(docs[d], p)));
      walk.push_back({entry->key, std::move(values), "k" + std::to_string(d)});
    }
    std::sort(walk.begin(), walk.end());
    for (size_t i = 1; i < walk.size(); ++i) {
      ASSERT_LE(walk[i - 1].values, walk[i].values)
          << filter.dump() << " sort " << sort.size() << " via " << plan.Explain().dump();
      // The page's own order: sort values, then document key. (Not for a unique index:
      // these random documents share values, which a unique index refuses.)
      if (plan.exactly_ordered && !plan.index->unique) {
        ASSERT_LT(std::tie(walk[i - 1].values, walk[i - 1].doc),
                  std::tie(walk[i].values, walk[i].doc))
            << filter.dump() << " sort " << sort.size() << " via " << plan.Explain().dump();
      }
    }
    exact += plan.exactly_ordered;
    // A cursor at each match's sort values: the rest of the walk, within the range,
    // holds every match that may follow it.
    const KeyRange& all = plan.ranges[0];
    for (const auto& step : walk) {
      const KeyRange rest = OrderedRange(plan, sort, step.values);
      ASSERT_GE(rest.start, all.start);
      ASSERT_TRUE(all.end.empty() || (!rest.end.empty() && rest.end <= all.end));
      for (const auto& other : walk) {
        if (descending ? other.values > step.values : other.values < step.values) continue;
        ASSERT_GE(other.entry, rest.start) << filter.dump() << " via " << plan.Explain().dump();
        ASSERT_TRUE(rest.end.empty() || other.entry < rest.end)
            << filter.dump() << " via " << plan.Explain().dump();
      }
    }
  }
  EXPECT_GT(ordered, 300);
  EXPECT_GT(whole, 100);
  EXPECT_GT(exact, 50);
  EXPECT_GT(backward, 150);
}

TEST_F(PlannerTest, AnIndexThatFollowsAnAscendingSortWalksInItsOrder) {
  auto plan = [&](const char* filter, std::vector<const char*> sort) {
    auto f = ParseFilter(json::parse(filter));
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    std::vector<document::Path> paths;
    for (const char* p : sort) paths.push_back(P(p));
    return ChoosePlan(*f, indexes_, paths).Explain();
  };
  // No filter an index narrows: the whole of the tightest non-unique index that leads
  // with the sort's paths.
  json e = plan("{}", {"age"});
  EXPECT_EQ(e["index"], "by_age");
  EXPECT_EQ(e["ordered"], true);
  EXPECT_EQ(e["fixed_fields"], 0);
  EXPECT_EQ(plan(R"({"name": "x"})", {"city"})["index"], "by_city");
  e = plan("{}", {"city", "age"});
  EXPECT_EQ(e["index"], "by_city_age");
  EXPECT_EQ(e["ordered"], true);
  // A unique index lacks documents, and no index leads with name.
  EXPECT_EQ(plan("{}", {"email"})["plan"], "collection_scan");
  EXPECT_EQ(plan("{}", {"name"})["plan"], "collection_scan");
  EXPECT_EQ(plan("{}", {"age", "city"})["plan"], "collection_scan");
  // A fixed city, sorted by age: of the two indexes that fix city, the one in age order.
  e = plan(R"({"city": "Oslo"})", {"age"});
  EXPECT_EQ(e["index"], "by_city_age");
  EXPECT_EQ(e["ordered"], true);
  EXPECT_EQ(plan(R"({"city": "Oslo"})", {"city", "age"})["ordered"], true);
  EXPECT_EQ(plan(R"({"city": "Oslo"})", {})["index"], "by_city");
  // A range on the sort's field.
  e = plan(R"({"age": {"gt": 3}})", {"age"});
  EXPECT_EQ(e["index"], "by_age");
  EXPECT_EQ(e["ordered"], true);
  // Not in order: several ranges; only fixed fields sorted on; another index fixes more.
  EXPECT_EQ(plan(R"({"city": {"in": ["A", "B"]}})", {"age"})["ordered"], false);
  EXPECT_EQ(plan(R"({"city": "Oslo", "age": 4})", {"age"})["ordered"], false);
  EXPECT_EQ(plan(R"({"city": "Oslo"})", {"city"})["ordered"], false);
  e = plan(R"({"email": "a@b"})", {"age"});
  EXPECT_EQ(e["index"], "by_email");
  EXPECT_EQ(e["ordered"], false);
  // Descending: the same plans, walked backward.
  auto parsed = ParseFilter(json::parse(R"({"city": "Oslo"})"));
  ASSERT_TRUE(parsed.ok());
  e = ChoosePlan(*parsed, indexes_, {P("age")}, true).Explain();
  EXPECT_EQ(e["index"], "by_city_age");
  EXPECT_EQ(e["ordered"], true);
  EXPECT_EQ(e["reverse"], true);
  EXPECT_EQ(plan(R"({"city": "Oslo"})", {"age"})["reverse"], false);

  // In the page's exact order only when the sort reaches the index's last field: by
  // city alone, (city, age) meets one city's documents by age, not by key.
  auto all = ParseFilter(json::object());
  ASSERT_TRUE(all.ok());
  const std::vector<IndexSpec> compound = {{"by_city_age", 11, {P("city"), P("age")}, false}};
  Plan p = ChoosePlan(*all, compound, {P("city")});
  EXPECT_TRUE(p.ordered);
  EXPECT_FALSE(p.exactly_ordered);
  p = ChoosePlan(*all, compound, {P("city"), P("age")});
  EXPECT_TRUE(p.exactly_ordered);
  // Backward, equal values come by key backward.
  p = ChoosePlan(*all, compound, {P("city"), P("age")}, true);
  EXPECT_TRUE(p.ordered);
  EXPECT_FALSE(p.exactly_ordered);
  auto oslo = ParseFilter(json::parse(R"({"city": "Oslo"})"));
  ASSERT_TRUE(oslo.ok());
  p = ChoosePlan(*oslo, compound, {P("age")});
  EXPECT_TRUE(p.exactly_ordered);
  const std::vector<IndexSpec> wide = {
      {"by_city_age_name", 15, {P("city"), P("age"), P("name")}, false}};
  p = ChoosePlan(*oslo, wide, {P("age")});
  EXPECT_TRUE(p.ordered);
  EXPECT_FALSE(p.exactly_ordered);
}

// After a cursor, an ordered walk starts at the cursor's sort values, behind the fixed
// ones; a descending one ends past them.
TEST_F(PlannerTest, AnOrderedWalkAfterACursorGoesOnFromItsSortValues) {
  auto f = ParseFilter(json::parse(R"({"city": "Oslo"})"));
  ASSERT_TRUE(f.ok());
  const Plan plan = ChoosePlan(*f, indexes_, {P("age")});
  ASSERT_TRUE(plan.ordered);
  const json oslo = "Oslo", forty = 40;
  const std::string city = document::EncodeValue(&oslo), age = document::EncodeValue(&forty);
  EXPECT_EQ(OrderedRange(plan, {P("age")}, {age}), (KeyRange{city + age, plan.ranges[0].end}));
  // The sort's fixed first path is skipped.
  const Plan both = ChoosePlan(*f, indexes_, {P("city"), P("age")});
  ASSERT_TRUE(both.ordered);
  EXPECT_EQ(OrderedRange(both, {P("city"), P("age")}, {city, age}).start, city + age);
  // Backward: up to the last entry with those values.
  const Plan back = ChoosePlan(*f, indexes_, {P("age")}, true);
  ASSERT_TRUE(back.descending);
  EXPECT_EQ(OrderedRange(back, {P("age")}, {age}),
            (KeyRange{back.ranges[0].start, mvcc::PrefixSuccessor(city + age)}));
  // Never past the range; a plan that is not ordered keeps it.
  auto ranged = ParseFilter(json::parse(R"({"age": {"gt": 50}})"));
  const Plan above = ChoosePlan(*ranged, indexes_, {P("age")});
  ASSERT_TRUE(above.ordered);
  EXPECT_EQ(OrderedRange(above, {P("age")}, {age}), above.ranges[0]);
  const Plan below =
      ChoosePlan(*ParseFilter(json::parse(R"({"age": {"lt": 30}})")), indexes_, {P("age")}, true);
  ASSERT_TRUE(below.descending);
  EXPECT_EQ(OrderedRange(below, {P("age")}, {age}), below.ranges[0]);
  const Plan unordered = ChoosePlan(*f, indexes_);
  EXPECT_EQ(OrderedRange(unordered, {P("age")}, {age}), unordered.ranges[0]);
}

}  // namespace
}  // namespace gojodb::query
