#include "core/kv/csv.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gojodb::kv {
namespace {

using nlohmann::json;

std::string Reason(const IngestError& e) {
  for (const auto& [k, v] : e.status.details()) {
    if (k == "reason") return v;
  }
  return "";
}

NdjsonRecords Decode(std::string_view text, CsvOptions o = {}, size_t piece = 0) {
  CsvDecoder d(std::move(o));
  NdjsonRecords out;
  if (piece == 0) piece = text.size() + 1;
  for (size_t i = 0; i < text.size(); i += piece) {
    EXPECT_TRUE(d.Feed(text.substr(i, piece), &out).ok());
  }
  EXPECT_TRUE(d.Finish(&out).ok());
  return out;
}

TEST(Csv, RowsBecomeTypedDocumentsKeyedByTheKeyColumn) {
  const std::string text =
      "_id,name,age,score,ok,none,zip,note\r\n"
      "a1,Ada,36,1.5e2,true,null,01234,\"said \"\"hi\"\", twice\"\n"
      "a2,\"42\",-0.5,,false,,0,\"two\nlines\"\n"
      "\n"
      "a3,Bo,7,3,x,y,z\n"
      "a4,Cy,1,2,true,null,5,\"open\n";
  for (size_t piece : {size_t{0}, size_t{1}, size_t{2}, size_t{7}}) {
    NdjsonRecords out = Decode(text, {}, piece);
    ASSERT_EQ(out.records.size(), 2u) << "piece " << piece;
    EXPECT_EQ(out.records[0].line, 2u);
    EXPECT_EQ(out.records[0].key, "a1");
    EXPECT_EQ(json::parse(out.records[0].value),
              json::parse(R"({"_id":"a1","name":"Ada","age":36,"score":150.0,"ok":true,
                             "none":null,"zip":"01234","note":"said \"hi\", twice"})"));
    EXPECT_EQ(out.records[1].line, 3u);
    EXPECT_EQ(json::parse(out.records[1].value),
              json::parse(R"({"_id":"a2","name":"42","age":-0.5,"ok":false,"zip":0,
                             "note":"two\nlines"})"))
        << "quoted is a string, empty is absent";
    ASSERT_EQ(out.errors.size(), 2u);
    EXPECT_EQ(out.errors[0].line, 6u) << "the row after the quoted break and the blank line";
    EXPECT_EQ(Reason(out.errors[0]), "CSV_FIELDS");
    EXPECT_EQ(out.errors[1].line, 7u);
    EXPECT_EQ(Reason(out.errors[1]), "NOT_CSV") << "an unterminated quote at the end";
    EXPECT_EQ(out.last_line, 8u);
  }
}

TEST(Csv, StrayQuotesEmptyKeysAndStringsOnly) {
  CsvOptions o;
  o.key_field = "k";
  NdjsonRecords out = Decode("k,v\nx,a\"b\ny,\"a\"b\n,3\nz,4\n", o);
  ASSERT_EQ(out.errors.size(), 3u);
  EXPECT_EQ(Reason(out.errors[0]), "NOT_CSV");
  EXPECT_EQ(Reason(out.errors[1]), "NOT_CSV");
  EXPECT_EQ(Reason(out.errors[2]), "NO_KEY");
  ASSERT_EQ(out.records.size(), 1u);
  EXPECT_EQ(json::parse(out.records[0].value), json::parse(R"({"k":"z","v":4})"));

  o.strings_only = true;
  out = Decode("k,v\nz,4\n", o);
  ASSERT_EQ(out.records.size(), 1u);
  EXPECT_EQ(json::parse(out.records[0].value), json::parse(R"({"k":"z","v":"4"})"));
}

TEST(Csv, AHeaderThatCannotBeUsedFailsTheLoad) {
  for (const char* text : {"a,b,a\n1,2,3\n", "_id,,b\n", "x,y\n1,2\n", "\"_id\nx"}) {
    CsvDecoder d({});
    NdjsonRecords out;
    Status s = d.Feed(text, &out);
    if (s.ok()) s = d.Finish(&out);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_TRUE(out.records.empty());
  }
}

TEST(Csv, FieldsWrittenByCsvFieldReadBackTheSame) {
  const json doc = json::parse(
      R"({"_id":"k,1","s":"a \"q\"\nb","n":-12.5,"i":7,"t":true,"f":false,"z":null,
          "e":"","num_text":"123","obj":{"a":[1,2]}})");
  std::string header, row;
  for (const auto& [k, v] : doc.items()) {
    header += (header.empty() ? "" : ",") + CsvText(k);
    row += (row.empty() ? "" : ",") + CsvField(v.dump());
  }
  NdjsonRecords out = Decode(header + "\n" + row + "\n");
  ASSERT_EQ(out.records.size(), 1u) << (out.errors.empty() ? "" : out.errors[0].status.message());
  EXPECT_EQ(out.records[0].key, "k,1");
  json back = json::parse(out.records[0].value);
  json want = doc;
  want["obj"] = doc["obj"].dump();  // objects come back as their JSON text
  EXPECT_EQ(back, want);
}

}  // namespace
}  // namespace gojodb::kv
