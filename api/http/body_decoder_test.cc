#include "api/http/body_decoder.h"

#include <gtest/gtest.h>

#include "core/kv/ndjson.h"

namespace gojodb::http {
namespace {

TEST(TxnBodies, OneShotDecodesEveryPart) {
  auto t = DecodeTxnBody(
      R"({"reads":[{"collection":"c","key":"a"},{"key_base64":"AP8="}],)"
      R"("ops":[{"op":"put","key":"b","value":{"x":1},"if_version":"7"},{"op":"delete","key":"d"}],)"
      R"("conditions":[{"key":"a","version":3},{"key":"v","value":"x"},{"key":"e","exists":false}]})");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->reads.size(), 2u);
  EXPECT_EQ(t->reads[0].collection, "c");
  EXPECT_EQ(t->reads[1].key, std::string("\0\xff", 2));
  ASSERT_EQ(t->ops.size(), 2u);
  EXPECT_EQ(t->ops[0].value, R"({"x":1})");
  EXPECT_EQ(t->ops[0].if_version, 7u);
  EXPECT_EQ(t->ops[1].kind, kv::BatchOp::Kind::kDelete);
  ASSERT_EQ(t->conditions.size(), 3u);
  EXPECT_EQ(t->conditions[0].version, 3u);
  EXPECT_EQ(t->conditions[1].value, "x");
  EXPECT_EQ(t->conditions[2].exists, false);
  // Reads alone, or conditions alone, are transactions too.
  EXPECT_TRUE(DecodeTxnBody(R"({"reads":[{"key":"a"}]})").ok());
}

TEST(TxnBodies, BadBodiesNameTheField) {
  struct Case {
    const char* body;
    const char* says;
  };
  for (const Case& c : {
           Case{"", "empty"},
           Case{"[]", "object"},
           Case{"{}", "needs reads, ops or conditions"},
           Case{R"({"reads":{}})", "'reads' must be an array"},
           Case{R"({"reads":[{"collection":"c"}]})", "reads[0]: 'key' is required"},
           Case{R"({"reads":[{"key":"a","value":"x"}]})", "reads[0]: unknown field 'value'"},
           Case{R"({"ops":[{"op":"merge","key":"a"}]})", "ops[0]: 'op' must be"},
           Case{R"({"conditions":[{"key":"a"}]})", "exactly one of version, value and exists"},
           Case{R"({"conditions":[{"key":"a","version":1,"exists":true}]})", "exactly one"},
           Case{R"({"conditions":[{"key":"a","exists":"yes"}]})", "'exists' must be true or false"},
           Case{R"({"conditions":[{"key":"a","version":-1}]})", "conditions[0]: 'if_version'"},
           Case{R"({"writes":[]})", "unknown field 'writes'"},
       }) {
    auto t = DecodeTxnBody(c.body);
    ASSERT_FALSE(t.ok()) << c.body;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << c.body;
    EXPECT_NE(t.status().message().find(c.says), std::string::npos)
        << c.body << " -> " << t.status().message();
  }
}

TEST(TxnBodies, InteractiveCalls) {
  auto r = DecodeTxnKeyBody(R"({"collection":"c","key":"k"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->key, "k");
  EXPECT_FALSE(DecodeTxnKeyBody(R"({"collection":"c"})").ok());
  auto put = DecodeTxnWriteBody(R"({"key":"k","value":"v"})", false);
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->kind, kv::BatchOp::Kind::kPut);
  EXPECT_EQ(put->value, "v");
  EXPECT_FALSE(DecodeTxnWriteBody(R"({"key":"k"})", false).ok());  // a put needs a value
  auto del = DecodeTxnWriteBody(R"({"key":"k"})", true);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->kind, kv::BatchOp::Kind::kDelete);
  EXPECT_FALSE(DecodeTxnWriteBody(R"({"key":"k","value":"v"})", true).ok());
  EXPECT_FALSE(DecodeTxnWriteBody(R"({"op":"put","key":"k","value":"v"})", false).ok());
  auto scan = DecodeTxnScanBody(
      R"({"collection":"c","start":"a","end_base64":"eg==","limit":5,"reverse":true})");
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_EQ(scan->end, "z");
  EXPECT_EQ(scan->limit, 5u);
  EXPECT_TRUE(scan->reverse);
  EXPECT_FALSE(DecodeTxnScanBody(R"({"limit":0})").ok());
  EXPECT_FALSE(DecodeTxnScanBody(R"({"limit":-3})").ok());
  EXPECT_FALSE(DecodeTxnScanBody(R"({"at":5})").ok());  // a transaction reads its snapshot
  // begin, commit and rollback take nothing.
  EXPECT_TRUE(DecodeEmptyBody("").ok());
  EXPECT_TRUE(DecodeEmptyBody(" { }\n").ok());
  EXPECT_EQ(DecodeEmptyBody(R"({"txn":"x"})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeEmptyBody("[]").code(), StatusCode::kInvalidArgument);
}

TEST(QueryBodies, DecodesEveryPart) {
  auto q = DecodeQueryBody(R"({"filter": {"age": {"gte": 3}}, "sort": ["city", "-age",
      {"name": "desc"}], "projection": ["name"], "limit": 5, "cursor": "abc",
      "consistency": "snapshot", "at": 99, "explain": true})");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->filter_json, R"({"age":{"gte":3}})");
  ASSERT_EQ(q->sort.size(), 3u);
  EXPECT_EQ(q->sort[0], std::make_pair(std::string("city"), false));
  EXPECT_EQ(q->sort[1], std::make_pair(std::string("age"), true));
  EXPECT_EQ(q->sort[2], std::make_pair(std::string("name"), true));
  EXPECT_EQ(q->projection, std::vector<std::string>({"name"}));
  EXPECT_EQ(q->limit, 5u);
  EXPECT_EQ(q->cursor, "abc");
  EXPECT_EQ(q->consistency, kv::Consistency::kSnapshot);
  EXPECT_EQ(q->at, 99u);
  EXPECT_TRUE(q->explain);
  auto empty = DecodeQueryBody("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->filter_json.empty());
  EXPECT_EQ(empty->consistency, kv::Consistency::kLinearizable);
  EXPECT_TRUE(DecodeQueryBody(R"({"filter": null, "cursor": null})").ok());
  // Bodies nest at most kMaxJsonDepth levels: deeper ones are refused, not printed.
  const std::string deep =
      R"({"filter": {"a": {"eq": )" + std::string(100000, '[') + std::string(100000, ']') + "}}}";
  EXPECT_EQ(DecodeQueryBody(deep).status().code(), StatusCode::kInvalidArgument);
}

TEST(QueryBodies, BadBodiesNameTheField) {
  for (const char* bad : {"",
                          "[]",
                          R"({"filter": 3})",
                          R"({"filter": []})",
                          R"({"sort": "age"})",
                          R"({"sort": [3]})",
                          R"({"sort": [{"age": "up"}]})",
                          R"({"sort": [{"a": "asc", "b": "asc"}]})",
                          R"({"projection": "a"})",
                          R"({"projection": [1]})",
                          R"({"limit": 0})",
                          R"({"limit": -1})",
                          R"({"limit": "5"})",
                          R"({"cursor": 5})",
                          R"({"consistency": "stale"})",
                          R"({"consistency": "snapshot"})",
                          R"({"at": 5})",
                          R"({"at": 0, "consistency": "snapshot"})",
                          R"({"explain": "yes"})",
                          R"({"filters": {}})"}) {
    EXPECT_EQ(DecodeQueryBody(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(AggregateBodies, DecodesAndRefuses) {
  auto a = DecodeAggregateBody(R"({"filter": {"age": 3}, "group_by": ["city"],
      "aggregates": {"n": {"count": "*"}}, "consistency": "snapshot", "at": 5, "explain": true})");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->filter_json, R"({"age":3})");
  EXPECT_EQ(a->group_by_json, R"(["city"])");
  EXPECT_EQ(a->aggregates_json, R"({"n":{"count":"*"}})");
  EXPECT_EQ(a->at, 5u);
  EXPECT_TRUE(a->explain);
  EXPECT_TRUE(DecodeAggregateBody(R"({"aggregates": {"n": {"count": "*"}}})").ok());
  for (const char* bad : {"{}", R"({"aggregates": []})", R"({"aggregates": {}, "group_by": "c"})",
                          R"({"aggregates": {}, "filter": 1})", R"({"aggregates": {}, "at": 3})",
                          R"({"aggregates": {}, "having": {}})"}) {
    EXPECT_EQ(DecodeAggregateBody(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(NdjsonBodies, LinesAreNumberedAndEachBadOneReportedAlone) {
  const std::string body =
      "{\"_id\":\"a\",\"x\":1}\r\n"  // 10: CRLF is a line end
      "\n"                           // 11: blank
      "{\"_id\":7}\n"                // 12: an integer key is its decimal text
      "not json\n"                   // 13
      "[1,2]\n"                      // 14: not an object
      "{\"x\":2}\n"                  // 15: no key
      "{\"_id\":1.5}\n"              // 16: a key must be a string or an integer
      "{\"_id\":\"b\"}";             // 17: no final newline
  auto r = kv::DecodeNdjson(body, 10, "_id");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->lines, 8u);
  EXPECT_EQ(r->last_line, 17u);
  ASSERT_EQ(r->records.size(), 3u);
  EXPECT_EQ(r->records[0].line, 10u);
  EXPECT_EQ(r->records[0].key, "a");
  EXPECT_EQ(r->records[0].value, "{\"_id\":\"a\",\"x\":1}") << "the line as given, without CR";
  EXPECT_EQ(r->records[1].key, "7");
  EXPECT_EQ(r->records[1].line, 12u);
  EXPECT_EQ(r->records[2].key, "b");
  EXPECT_EQ(r->records[2].line, 17u);
  ASSERT_EQ(r->errors.size(), 4u);
  const std::pair<uint64_t, const char*> want[] = {
      {13, "NOT_JSON"}, {14, "NOT_A_DOCUMENT"}, {15, "NO_KEY"}, {16, "NO_KEY"}};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(r->errors[i].line, want[i].first);
    EXPECT_EQ(r->errors[i].status.code(), StatusCode::kInvalidArgument);
    std::string reason;
    for (const auto& [k, v] : r->errors[i].status.details()) {
      if (k == "reason") reason = v;
    }
    EXPECT_EQ(reason, want[i].second) << "line " << want[i].first;
  }
}

TEST(NdjsonBodies, KeyFieldAndEdges) {
  auto r = kv::DecodeNdjson("{\"id\":\"k\",\"_id\":\"no\"}\n", 1, "id");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->records.size(), 1u);
  EXPECT_EQ(r->records[0].key, "k");
  auto empty = kv::DecodeNdjson("", 5, "_id");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->lines, 0u);
  EXPECT_EQ(empty->last_line, 4u);
  EXPECT_EQ(kv::DecodeNdjson("{}", 0, "_id").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv::DecodeNdjson("{}", 1, "").status().code(), StatusCode::kInvalidArgument);
  // Nesting past the limit is a bad line, not a crash.
  std::string deep =
      "{\"_id\":\"d\",\"v\":" + std::string(5000, '[') + std::string(5000, ']') + "}";
  auto d = kv::DecodeNdjson(deep, 1, "_id");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->records.empty());
  ASSERT_EQ(d->errors.size(), 1u);
}

}  // namespace
}  // namespace gojodb::http
