#include "cmd/cli/format.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gojodb::cli {
namespace {

using nlohmann::json;

TEST(Format, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST(Format, PrintableText) {
  EXPECT_TRUE(IsPrintableText("multi\nline\ttext \xc3\xa9"));
  EXPECT_FALSE(IsPrintableText("bell\x07"));
  EXPECT_FALSE(IsPrintableText("esc\x1b[31m"));
  EXPECT_FALSE(IsPrintableText("del\x7f"));
  EXPECT_FALSE(IsPrintableText("c1\xc2\x9b"));
  EXPECT_FALSE(IsPrintableText("bad\xff"));
}

TEST(Format, EscapeForDisplay) {
  EXPECT_EQ(EscapeForDisplay("plain"), "plain");
  EXPECT_EQ(EscapeForDisplay("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeForDisplay("l1\nl2\r\t"), "l1\\nl2\\r\\t");
  EXPECT_EQ(EscapeForDisplay(std::string("\x00\x01\x7f", 3)), "\\x00\\x01\\x7f");
  EXPECT_EQ(EscapeForDisplay("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 kept
  EXPECT_EQ(EscapeForDisplay("\xff\xfe"
                             "ok"),
            "\\xff\\xfeok");
  EXPECT_EQ(EscapeForDisplay("\xc3"), "\\xc3");           // truncated sequence
  EXPECT_EQ(EscapeForDisplay("\xc2\x85"), "\\xc2\\x85");  // C1 control NEL
}

TEST(Format, Base64) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xff\x00\xfe", 3)), "/wD+");
}

TEST(Format, JsonValueRules) {
  json doc = json::object();
  SetBytesField(doc, "value", R"({"a":[1,2]})", true);
  EXPECT_EQ(doc["value"], json::parse(R"({"a":[1,2]})"));

  doc = json::object();
  SetBytesField(doc, "value", "42", true);
  EXPECT_TRUE(doc["value"].is_number());
  EXPECT_EQ(doc["value"], 42);

  doc = json::object();
  SetBytesField(doc, "value", "hello world", true);  // not JSON: a string
  EXPECT_EQ(doc["value"], "hello world");

  doc = json::object();
  SetBytesField(doc, "value", "", true);  // empty bytes: the empty string
  EXPECT_EQ(doc["value"], "");

  doc = json::object();
  SetBytesField(doc, "value", std::string("\xff\x00\xfe", 3), true);
  EXPECT_FALSE(doc.contains("value"));
  EXPECT_EQ(doc["value_base64"], "/wD+");
}

TEST(Format, KeysAreNeverParsedAsJson) {
  json doc = json::object();
  SetBytesField(doc, "key", "42", false);
  EXPECT_TRUE(doc["key"].is_string());
  EXPECT_EQ(doc["key"], "42");
  doc = json::object();
  SetBytesField(doc, "key", "\x80", false);
  EXPECT_EQ(doc["key_base64"], "gA==");
}

TEST(Format, DumpJsonIsOneLine) {
  json doc = {{"k", "a\nb"}, {"n", 1}};
  EXPECT_EQ(DumpJson(doc), R"({"k":"a\nb","n":1})");
}

TEST(Format, TableAlignsColumns) {
  std::string t =
      RenderTable({"KEY", "VERSION", "VALUE"}, {{"a", "7", "x"}, {"longer-key", "12345678", "y"}});
  EXPECT_EQ(t,
            "KEY         VERSION   VALUE\n"
            "a           7         x\n"
            "longer-key  12345678  y\n");
}

TEST(Format, TableCountsCodePointsAndLeavesNoTrailingBlanks) {
  std::string t = RenderTable({"K", "V"}, {{"\xc3\xa9\xc3\xa9", ""}, {"x", "1"}});
  EXPECT_EQ(t,
            "K   V\n"
            "\xc3\xa9\xc3\xa9\n"  // é is one column wide; no padding before an empty cell
            "x   1\n");
  // Trailing spaces that belong to a cell stay.
  EXPECT_EQ(RenderTable({"A"}, {{"x "}}), "A\nx \n");
}

}  // namespace
}  // namespace gojodb::cli
