#include "api/http/codec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

namespace gojodb::http {
namespace {

TEST(CodecTest, PercentDecoding) {
  EXPECT_EQ(*PercentDecode("a%2Fb%20c", false), "a/b c");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_EQ(*PercentDecode("%00%ff", false), std::string("\0\xff", 2));
  for (auto bad : {"%", "%2", "%zz", "abc%4"}) {
    EXPECT_EQ(PercentDecode(bad, false).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(*PercentDecode(PercentEncode(all), false), all);
}

TEST(CodecTest, Base64RoundTripAndStrictness) {
  std::mt19937 rng(3);
  for (int n = 0; n < 64; ++n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    auto enc = Base64Encode(s);
    EXPECT_EQ(enc.size() % 4, 0u);
    EXPECT_EQ(*Base64Decode(enc), s);
  }
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  for (auto bad : {"abc", "ab!d", "a===", "aGVsbG9=", "=aaa"}) {
    EXPECT_FALSE(Base64Decode(bad).ok()) << bad;
  }
}

TEST(CodecTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(IsValidUtf8("\xff"));
}

TEST(CodecTest, QueryParsing) {
  auto q = ParseQuery("a=1&b=x%20y&c&d=");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ((*q)["a"], "1");
  EXPECT_EQ((*q)["b"], "x y");
  EXPECT_EQ((*q)["c"], "");
  EXPECT_FALSE(ParseQuery("a=1&a=2").ok());
  EXPECT_FALSE(ParseQuery("a=%G1").ok());
  EXPECT_EQ(*ParseUint64("18446744073709551615", "v"), UINT64_MAX);
  for (auto bad : {"", "-1", "1x", " 1", "18446744073709551616"}) {
    EXPECT_FALSE(ParseUint64(bad, "v").ok()) << bad;
  }
}

TEST(CodecTest, ValueRulesOfTheApi) {
  using nlohmann::json;
  EXPECT_EQ(StoredBytesFromJson(json("text")), "text");
  EXPECT_EQ(StoredBytesFromJson(json::parse(R"({"a":1})")), R"({"a":1})");
  EXPECT_EQ(StoredBytesFromJson(json(42)), "42");
  json obj = json::object();
  SetBytesField(obj, "value", R"({"a":1})", true);
  EXPECT_EQ(obj["value"]["a"], 1);
  SetBytesField(obj, "v2", "not json", true);
  EXPECT_EQ(obj["v2"], "not json");
  SetBytesField(obj, "v3", std::string("\xff\x00", 2), true);
  EXPECT_FALSE(obj.contains("v3"));
  EXPECT_EQ(obj["v3_base64"], "/wA=");
}

}  // namespace
}  // namespace gojodb::http
