// Documents: paths, the order of typed values and its encoding, index entries, schemas.
#include "core/document/document.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

namespace gojodb::document {
namespace {

using json = nlohmann::json;

Path P(std::string_view text) { return std::move(ParsePath(text)).value(); }

TEST(PathTest, SegmentsEscapesAndErrors) {
  EXPECT_EQ(P("a").segments, std::vector<std::string>({"a"}));
  EXPECT_EQ(P("address.city").segments, std::vector<std::string>({"address", "city"}));
  EXPECT_EQ(P(R"(a\.b.c)").segments, std::vector<std::string>({"a.b", "c"}));
  EXPECT_EQ(P(R"(a\\)").segments, std::vector<std::string>({"a\\"}));
  for (std::string_view bad : {"", ".", "a.", ".a", "a..b", "a\\", "a\\x"}) {
    EXPECT_EQ(ParsePath(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  std::string deep = "a";
  for (size_t i = 1; i < kMaxPathSegments; ++i) deep += ".a";
  EXPECT_TRUE(ParsePath(deep).ok());
  EXPECT_FALSE(ParsePath(deep + ".a").ok());

  const json doc = json::parse(R"({"a": {"b": {"c": 3}, "arr": [1]}, "x.y": 5})");
  ASSERT_NE(Lookup(doc, P("a.b.c")), nullptr);
  EXPECT_EQ(*Lookup(doc, P("a.b.c")), 3);
  EXPECT_EQ(Lookup(doc, P("a.b.d")), nullptr);
  EXPECT_EQ(Lookup(doc, P("a.arr.0")), nullptr) << "array elements are not addressed";
  EXPECT_EQ(*Lookup(doc, P(R"(x\.y)")), 5);
}

TEST(DocumentTest, OnlyObjectsAreDocuments) {
  EXPECT_TRUE(ParseDocument(R"({"a":1})").ok());
  // Nesting is bounded: printing or copying a value recurses once per level.
  std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_TRUE(ParseDocument(deep).ok());
  deep = "{\"a\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  EXPECT_EQ(ParseDocument(deep).status().code(), StatusCode::kInvalidArgument);
  for (std::string_view bad : {"", "[1]", "3", "\"s\"", "{", "null", "{\"a\":}"}) {
    auto d = ParseDocument(bad);
    ASSERT_EQ(d.status().code(), StatusCode::kInvalidArgument) << bad;
    bool reason = false;
    for (const auto& [k, v] : d.status().details())
      reason |= k == "reason" && v == "NOT_A_DOCUMENT";
    EXPECT_TRUE(reason) << bad;
  }
}

// The values in ascending order, with equal neighbours marked.
TEST(ValueTest, EncodingOrdersValuesByTypeThenValue) {
  const std::vector<json> ascending = {nullptr,
                                       false,
                                       true,
                                       -1e300,
                                       -2.5,
                                       -1,
                                       -0.0,
                                       0,
                                       1e-300,
                                       1,
                                       1.5,
                                       2,
                                       1u << 31,
                                       9007199254740992.0,
                                       1e300,
                                       "",
                                       "A",
                                       "a",
                                       std::string("a\0b", 3),
                                       "ab",
                                       "b",
                                       json::array({1}),
                                       json::array(),
                                       json::object()};
  // -0.0 and 0 are equal, as are 1 and 1.0.
  std::vector<std::string> enc;
  enc.push_back(EncodeValue(nullptr));  // missing first
  for (const auto& v : ascending) enc.push_back(EncodeValue(&v));
  for (size_t i = 1; i < enc.size(); ++i) {
    const json* prev = i == 1 ? nullptr : &ascending[i - 2];
    const bool equal = prev && prev->is_number() && ascending[i - 1].is_number() &&
                       prev->get<double>() == ascending[i - 1].get<double>();
    if (equal) {
      EXPECT_EQ(enc[i - 1], enc[i]) << i;
    } else {
      EXPECT_LT(enc[i - 1], enc[i]) << "position " << i << ": " << ascending[i - 1].dump();
    }
  }
  const json one = 1, one_f = 1.0, str = "1";
  EXPECT_EQ(CompareValues(&one, &one_f), 0);
  EXPECT_LT(CompareValues(&one, &str), 0);
  EXPECT_GT(CompareValues(&one, nullptr), 0);
  // Objects compare by canonical text: key order in the input does not matter.
  const json o1 = json::parse(R"({"b":1,"a":2})"), o2 = json::parse(R"({"a":2,"b":1})");
  EXPECT_EQ(CompareValues(&o1, &o2), 0);
}

TEST(ValueTest, RandomNumbersAndStringsSortAsTheirValues) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> num(-1e6, 1e6);
  std::vector<double> nums;
  for (int i = 0; i < 2000; ++i) nums.push_back(i % 3 == 0 ? std::round(num(rng)) : num(rng));
  std::vector<std::pair<std::string, double>> enc;
  for (double d : nums) {
    const json j = d;
    enc.emplace_back(EncodeValue(&j), d);
  }
  std::sort(enc.begin(), enc.end());
  for (size_t i = 1; i < enc.size(); ++i) EXPECT_LE(enc[i - 1].second, enc[i].second);
  std::vector<std::pair<std::string, std::string>> strs;
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 6, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 3);  // many 0x00 and shared prefixes
    const json j = s;
    strs.emplace_back(EncodeValue(&j), s);
  }
  std::sort(strs.begin(), strs.end());
  for (size_t i = 1; i < strs.size(); ++i) EXPECT_LE(strs[i - 1].second, strs[i].second);
  // A string's prefix encoding starts every string with that prefix, and no other.
  for (const auto& [e, s] : strs) {
    const std::string p = EncodeStringPrefix("\x01");
    EXPECT_EQ(e.rfind(p, 0) == 0, s.rfind("\x01", 0) == 0) << s.size();
  }
}

TEST(IndexEntryTest, NonUniqueAndUniqueEntries) {
  IndexSpec by_city{"by_city", 9, {P("city"), P("age")}, false};
  const json doc = json::parse(R"({"city": "Oslo", "age": 41})");
  auto e = EntryFor(by_city, "k1", doc);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->value.empty());
  EXPECT_EQ(*DocKeyOf(by_city, *e), "k1");
  // Entries sort by the values, then by the document key.
  auto e2 = EntryFor(by_city, "k0", json::parse(R"({"city": "Oslo", "age": 42})"));
  auto e3 = EntryFor(by_city, "k2", json::parse(R"({"city": "Oslo", "age": 41})"));
  EXPECT_LT(e->key, e2->key);
  EXPECT_LT(e->key, e3->key);
  EXPECT_LT(e3->key, e2->key);
  // Missing fields are indexed (as missing) in a non-unique index.
  auto missing = EntryFor(by_city, "k3", json::parse(R"({"age": 1})"));
  ASSERT_TRUE(missing);
  EXPECT_LT(missing->key, e->key);
  EXPECT_EQ(*DocKeyOf(by_city, *missing), "k3");

  IndexSpec email{"by_email", 10, {P("email")}, true};
  auto u = EntryFor(email, "k1", json::parse(R"({"email": "a@b"})"));
  ASSERT_TRUE(u);
  EXPECT_EQ(u->value, "k1");
  EXPECT_EQ(u->key, EntryFor(email, "k2", json::parse(R"({"email": "a@b"})"))->key)
      << "the same values want the same entry";
  EXPECT_FALSE(EntryFor(email, "k1", json::parse(R"({"email": null})")));
  EXPECT_FALSE(EntryFor(email, "k1", json::parse(R"({"name": "x"})")));
  EXPECT_EQ(*DocKeyOf(email, *u), "k1");
  // Damaged entries are errors, not crashes.
  for (std::string bad : {std::string(""), std::string("\x04\x01"), std::string("\x09"),
                          e->key.substr(0, e->key.size() - 1), e->key + "x"}) {
    EXPECT_FALSE(DocKeyOf(by_city, {bad, ""}).ok());
  }
}

TEST(SchemaTest, TypesRequiredAndAdditionalFields) {
  auto s = Schema::Parse(R"({"fields": {"name": {"type": "string", "required": true},
                                        "age": {"type": "integer"},
                                        "address.city": {"type": ["string", "null"]}},
                             "additional_fields": false})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->Check(json::parse(R"({"name": "a"})")).ok());
  EXPECT_TRUE(s->Check(json::parse(R"({"name": "a", "age": 3, "address": {"city": null}})")).ok());
  EXPECT_TRUE(s->Check(json::parse(R"({"name": "a", "age": 3.0})")).ok()) << "3.0 is an integer";
  EXPECT_TRUE(s->Check(json::parse(R"({"name": "a", "age": 9223372036854775807})")).ok());
  EXPECT_FALSE(s->Check(json::parse(R"({"name": "a", "age": 9223372036854775808})")).ok())
      << "beyond int64";
  auto expect_violation = [&](const char* doc, const char* field) {
    Status st = s->Check(json::parse(doc));
    ASSERT_EQ(st.code(), StatusCode::kInvalidArgument) << doc;
    std::string reason, f;
    for (const auto& [k, v] : st.details()) {
      if (k == "reason") reason = v;
      if (k == "field") f = v;
    }
    EXPECT_EQ(reason, "SCHEMA") << doc;
    EXPECT_EQ(f, field) << doc;
  };
  expect_violation(R"({"age": 3})", "name");
  expect_violation(R"({"name": 7})", "name");
  expect_violation(R"({"name": "a", "age": 3.5})", "age");
  expect_violation(R"({"name": "a", "age": "3"})", "age");
  expect_violation(R"({"name": "a", "address": {"city": 4}})", "address.city");
  expect_violation(R"({"name": "a", "extra": 1})", "extra");
  EXPECT_TRUE(s->Names(P("address")));
  EXPECT_TRUE(s->Names(P("address.city.zip")));
  EXPECT_TRUE(s->Names(P("address.zip"))) << "writes close only the top level; so do filters";
  EXPECT_FALSE(s->Names(P("extra")));
  EXPECT_EQ(s->TypesOf(P("age")), std::vector<std::string>({"integer"}));

  for (std::string_view bad :
       {"[]", "{\"fields\": 3}", "{\"fields\": {\"a\": {\"type\": \"date\"}}}",
        "{\"fields\": {\"a\": {\"type\": []}}}", "{\"fields\": {\"a\": {\"required\": 1}}}",
        "{\"fields\": {\"a\": {\"min\": 1}}}", "{\"fields\": {\"a..b\": {}}}",
        "{\"additional_fields\": \"no\"}", "{\"other\": 1}", "not json"}) {
    EXPECT_EQ(Schema::Parse(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(Schema::Parse("{}").ok());
}

TEST(DocumentTest, ParsingSomeFieldsKeepsTheVerdictAndTheValues) {
  const std::vector<std::string> keep = {"a", "c"};
  // Kept members whole (nested, repeated: the last), the others not built.
  auto d = ParseDocumentFields(
      R"({"a": {"x": [1, {"y": null}]}, "b": [true, "s\u00e9"], "c": 1, "c": -2.5e3, "d": {}})",
      keep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, json::parse(R"({"a": {"x": [1, {"y": null}]}, "c": -2500.0})"));
  auto none = ParseDocumentFields(R"({"a": 1})", {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, json::object());
  // The same refusals as ParseDocument, wherever the fault is, kept member or not.
  auto reason = [](const Status& st) {
    for (const auto& [k, v] : st.details()) {
      if (k == "reason") return v;
    }
    return std::string();
  };
  std::string deep = "{\"b\": ";
  for (int i = 0; i < 200; ++i) deep += "[";
  for (int i = 0; i < 200; ++i) deep += "]";
  deep += "}";
  for (const std::string& bad :
       {std::string("[1]"), std::string("\"a\""), std::string(R"({"b": [1,]})"),
        std::string(R"({"b": tru})"), std::string("{\"b\": \"\xff\"}"),
        std::string(R"({"a": 1} x)"), std::string(R"({"b": "\ud800"})"), std::string(""), deep}) {
    EXPECT_FALSE(ParseDocument(bad).ok()) << bad;
    auto r = ParseDocumentFields(bad, keep);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(reason(r.status()), "NOT_A_DOCUMENT") << bad;
  }
  // Nesting right at the limit is a document both ways.
  std::string edge = "{\"b\": ";
  for (int i = 0; i < 127; ++i) edge += "[";
  edge += "1";
  for (int i = 0; i < 127; ++i) edge += "]";
  edge += "}";
  EXPECT_EQ(ParseDocument(edge).ok(), ParseDocumentFields(edge, keep).ok());
  // Values as a whole parse gives them: long texts, integers past 64 bits, negative
  // zero, unsigned and signed integers, escapes.
  for (const std::string& text :
       {"{\"a\": \"" + std::string(100000, 'x') + "\", \"c\": 1}",
        std::string(R"({"a": 123456789012345678901234567890, "c": -0})"),
        std::string(R"({"c": 18446744073709551615, "a": -9223372036854775808})"),
        std::string(R"({"a": [1.5e300, -1e-300, 0.1], "c": "tab\there \u00e9 \ud83d\ude00"})"),
        std::string("\xEF\xBB\xBF{\"a\": 1}")}) {
    auto whole = ParseDocument(text);
    auto some = ParseDocumentFields(text, keep);
    ASSERT_EQ(whole.ok(), some.ok()) << text.substr(0, 80);
    if (!whole.ok()) continue;
    for (const auto& k : keep) {
      ASSERT_EQ(whole->contains(k), some->contains(k)) << k;
      if (whole->contains(k)) {
        EXPECT_EQ((*whole)[k], (*some)[k]) << k;
        EXPECT_EQ((*whole)[k].dump(), (*some)[k].dump()) << k;
        EXPECT_EQ((*whole)[k].type(), (*some)[k].type()) << k << " " << text.substr(0, 80);
      }
    }
  }
}

// IsJsonText decides as json::accept does, on texts each side of simdjson's limits and
// on random damage to a document.
TEST(DocumentTest, IsJsonTextAgreesWithAccept) {
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "[";
  for (int i = 0; i < 1000; ++i) deep += "]";
  std::vector<std::string> texts = {"{}",
                                    "[]",
                                    "1",
                                    "-0",
                                    "\"s\"",
                                    "null",
                                    " true ",
                                    "1e400",
                                    "-1e-400",
                                    "123456789012345678901234567890",
                                    "18446744073709551616",
                                    "-9223372036854775809",
                                    R"("\ud800")",
                                    R"("\udc00\ud800")",
                                    R"("\ud83d\ude00")",
                                    "\"\xff\"",
                                    "\"\xc0\x80\"",
                                    "\"\xed\xa0\x80\"",
                                    "[1,]",
                                    "01",
                                    "NaN",
                                    "{\"a\":1} x",
                                    "",
                                    " ",
                                    "{\"a\" 1}",
                                    "\"\t\"",
                                    "\"a\x01\"",
                                    deep,
                                    "{\"a\": \"" + std::string(300000, 'x') + "\"}",
                                    "{\"a\": \"" + std::string(300000, 'x') + "\""};
  std::mt19937_64 rng(7);
  const std::string doc =
      R"({"id": 12, "name": "n\u00e9", "tags": ["a", "b"], "x": {"y": [1.5, -2e3, null, true]}})";
  for (int i = 0; i < 3000; ++i) {
    std::string t = doc;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
      const size_t at = rng() % t.size();
      switch (rng() % 3) {
        case 0:
          t.erase(at, 1);
          break;
        case 1:
          t.insert(at, 1, "{}[]\",:0e-.\\u\xff \x7f"[rng() % 19]);
          break;
        default:
          t[at] = static_cast<char>(rng() % 256);
      }
    }
    if (t.find('\0') == std::string::npos) texts.push_back(std::move(t));
  }
  for (const auto& t : texts) {
    EXPECT_EQ(IsJsonText(t), json::accept(t)) << t.substr(0, 100);
  }
}

}  // namespace
}  // namespace gojodb::document
