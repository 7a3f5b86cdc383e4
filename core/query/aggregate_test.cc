// Aggregation: parsing and its errors; over random documents, every function of every
// group equals an independent computation, and partial results merged equal the whole.
#include "core/query/aggregate.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

namespace gojodb::query {
namespace {

using json = nlohmann::json;

TEST(AggregateTest, ParseAndErrors) {
  auto q = ParseAggregate(json::array({"city", "a.b"}),
                          json::parse(R"({"n": {"count": "*"}, "s": {"sum": "age"},
                                          "d": {"count_distinct": "name"}})"));
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->group_by.size(), 2u);
  ASSERT_EQ(q->aggregates.size(), 3u);
  EXPECT_TRUE(ParseAggregate(nullptr, json::parse(R"({"n": {"count": "*"}})")).ok());
  for (const char* bad :
       {R"({})", R"([])", R"({"n": {"count": "*", "sum": "a"}})", R"({"n": {"median": "a"}})",
        R"({"n": {"sum": "*"}})", R"({"n": {"sum": 3}})", R"({"n": "count"})",
        R"({"n": {"sum": "a..b"}})"}) {
    EXPECT_EQ(ParseAggregate(nullptr, json::parse(bad)).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_FALSE(ParseAggregate(json("city"), json::parse(R"({"n": {"count": "*"}})")).ok());
  EXPECT_FALSE(ParseAggregate(json::array({3}), json::parse(R"({"n": {"count": "*"}})")).ok());
}

TEST(AggregateTest, RandomGroupsMatchAnIndependentComputationAndMerge) {
  std::mt19937 rng(11);
  std::vector<json> docs;
  for (int i = 0; i < 2000; ++i) {
    json d = json::object();
    const int c = static_cast<int>(rng() % 5);
    if (c < 3) d["city"] = std::string(1, static_cast<char>('A' + c));
    if (c == 3) d["city"] = nullptr;
    if (rng() % 6 != 0) d["age"] = static_cast<int>(rng() % 50) - 10;
    if (rng() % 7 == 0) d["age"] = "not a number";
    d["score"] = (static_cast<int>(rng() % 1000)) / 8.0;
    d["tag"] = "t" + std::to_string(rng() % 13);
    docs.push_back(std::move(d));
  }
  auto q = ParseAggregate(json::array({"city"}), json::parse(R"({
      "n": {"count": "*"}, "ages": {"count": "age"}, "sum": {"sum": "age"},
      "avg": {"avg": "score"}, "min": {"min": "score"}, "max": {"max": "score"},
      "tags": {"count_distinct": "tag"}})"));
  ASSERT_TRUE(q.ok());
  Aggregator whole(*q);
  Aggregator parts[3] = {Aggregator(*q), Aggregator(*q), Aggregator(*q)};
  for (size_t i = 0; i < docs.size(); ++i) {
    ASSERT_TRUE(whole.Add(docs[i]).ok());
    ASSERT_TRUE(parts[i % 3].Add(docs[i]).ok());
  }
  Aggregator merged(*q);
  for (auto& p : parts) ASSERT_TRUE(merged.Merge(p).ok());
  EXPECT_EQ(merged.Output(), whole.Output());
  // The same through bytes, as shards send their parts to the router.
  Aggregator from_bytes(*q);
  for (auto& p : parts) {
    const std::string bytes = p.EncodePartial();
    ASSERT_TRUE(from_bytes.MergePartial(bytes).ok());
  }
  EXPECT_EQ(from_bytes.Output(), whole.Output());

  // Independently: group by the city's JSON text ("missing" apart).
  struct Expect {
    int n = 0, ages = 0;
    double sum = 0, score_sum = 0;
    int scores = 0;
    double min = 1e18, max = -1e18;
    std::set<std::string> tags;
  };
  std::map<std::string, Expect> want;
  for (const auto& d : docs) {
    Expect& e = want[d.contains("city") ? d["city"].dump() : "missing"];
    ++e.n;
    if (d.contains("age")) ++e.ages;
    if (d.contains("age") && d["age"].is_number()) e.sum += d["age"].get<double>();
    e.score_sum += d["score"].get<double>();
    ++e.scores;
    e.min = std::min(e.min, d["score"].get<double>());
    e.max = std::max(e.max, d["score"].get<double>());
    e.tags.insert(d["tag"].get<std::string>());
  }
  const json out = whole.Output();
  ASSERT_EQ(out["groups"].size(), want.size());
  for (const auto& g : out["groups"]) {
    const std::string k = g["key"].contains("city") ? g["key"]["city"].dump() : "missing";
    ASSERT_TRUE(want.count(k)) << k;
    const Expect& e = want[k];
    const json& v = g["values"];
    EXPECT_EQ(v["n"], e.n) << k;
    EXPECT_EQ(v["ages"], e.ages) << k;
    EXPECT_DOUBLE_EQ(v["sum"].get<double>(), e.sum) << k;
    EXPECT_NEAR(v["avg"].get<double>(), e.score_sum / e.scores, 1e-9) << k;
    EXPECT_DOUBLE_EQ(v["min"].get<double>(), e.min) << k;
    EXPECT_DOUBLE_EQ(v["max"].get<double>(), e.max) << k;
    EXPECT_EQ(v["tags"], e.tags.size()) << k;
  }
  // Groups come in value order: missing, null, then the strings.
  EXPECT_FALSE(out["groups"][0]["key"].contains("city"));
  EXPECT_TRUE(out["groups"][1]["key"]["city"].is_null());
  EXPECT_EQ(out["groups"][2]["key"]["city"], "A");
}

TEST(AggregateTest, PartialsOfAnotherShapeOrCutShortAreRefused) {
  auto q = ParseAggregate(json::array({"city"}), json::parse(R"({"n": {"count": "*"},
                                                                "d": {"count_distinct": "t"},
                                                                "m": {"max": "t"}})"));
  ASSERT_TRUE(q.ok());
  Aggregator a(*q);
  ASSERT_TRUE(a.Add(json::parse(R"({"city": "Oslo", "t": "x"})")).ok());
  ASSERT_TRUE(a.Add(json::parse(R"({"t": 3})")).ok());
  const std::string bytes = a.EncodePartial();
  // Every cut, and every byte changed to 0xff, is refused or merges without a crash; a
  // cut never merges cleanly.
  for (size_t n = 0; n < bytes.size(); ++n) {
    Aggregator b(*q);
    EXPECT_EQ(b.MergePartial(bytes.substr(0, n)).code(), StatusCode::kInvalidArgument) << n;
    std::string bent = bytes;
    bent[n] = '\xff';
    Aggregator c(*q);
    (void)c.MergePartial(bent);
  }
  Aggregator d(*q);
  EXPECT_EQ(d.MergePartial(bytes + "x").code(), StatusCode::kInvalidArgument);
  auto other = ParseAggregate(nullptr, json::parse(R"({"n": {"count": "*"}})"));
  ASSERT_TRUE(other.ok());
  Aggregator e(*other);
  const Status s = e.MergePartial(bytes);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("another query"), std::string::npos) << s.ToString();
  // Merging twice counts twice; the distinct set does not grow.
  Aggregator f(*q);
  ASSERT_TRUE(f.MergePartial(bytes).ok());
  ASSERT_TRUE(f.MergePartial(bytes).ok());
  const json out = f.Output();
  ASSERT_EQ(out["groups"].size(), 2u);
  EXPECT_EQ(out["groups"][1]["key"]["city"], "Oslo");
  EXPECT_EQ(out["groups"][1]["values"]["n"], 2);
  EXPECT_EQ(out["groups"][1]["values"]["d"], 1);
  EXPECT_EQ(out["groups"][1]["values"]["m"], "x");
}

TEST(AggregateTest, EmptyInputAndNoGroups) {
  auto q = ParseAggregate(nullptr, json::parse(R"({"n": {"count": "*"}, "a": {"avg": "x"},
                                                  "m": {"min": "x"}})"));
  ASSERT_TRUE(q.ok());
  Aggregator a(*q);
  const json none = a.Output();
  ASSERT_EQ(none["groups"].size(), 1u) << "without group_by there is one group, even empty";
  EXPECT_EQ(none["groups"][0]["values"]["n"], 0);
  EXPECT_TRUE(none["groups"][0]["values"]["a"].is_null());
  auto by_city = ParseAggregate(json::array({"city"}), json::parse(R"({"n": {"count": "*"}})"));
  ASSERT_TRUE(by_city.ok());
  EXPECT_EQ(Aggregator(*by_city).Output()["groups"].size(), 0u);
  ASSERT_TRUE(a.Add(json::parse(R"({"y": 1})")).ok());
  const json out = a.Output();
  ASSERT_EQ(out["groups"].size(), 1u);
  EXPECT_EQ(out["groups"][0]["values"]["n"], 1);
  EXPECT_TRUE(out["groups"][0]["values"]["a"].is_null());
  EXPECT_TRUE(out["groups"][0]["values"]["m"].is_null());
}

}  // namespace
}  // namespace gojodb::query
