// The HTTP API end to end over a real KvStore (memory engine), without sockets.
#include "api/http/http_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/kv/forwarding_kv_service.h"
#include "core/kv/ingest_fake.h"
#include "core/kv/kv_store.h"

namespace gojodb::http {
namespace {

using nlohmann::json;

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::EngineOptions eo;
    eo.kind = "memory";
    engine_ = std::move(storage::OpenEngine(eo)).value();
    tso_ =
        std::move(mvcc::LocalTimestampOracle::Open(engine_.get(), SystemClock::Default())).value();
    kv::KvStoreOptions o;
    o.limits.max_value_bytes = 1000;
    store_ = std::move(kv::KvStore::Open(engine_.get(), tso_.get(), SystemClock::Default(),
                                         std::make_shared<mvcc::SafePoint>(), o))
                 .value();
    api_ = std::make_unique<HttpApi>(store_.get(), &metrics_,
                                     [] { return R"({"mode":"standalone"})"; });
  }
  HttpResponse Do(std::string method, std::string target, std::string body = "") {
    return api_->Handle(method, target, body);
  }
  json Body(const HttpResponse& r) { return json::parse(r.body); }
  void ExpectError(const HttpResponse& r, int status, const char* code) {
    EXPECT_EQ(r.status, status) << r.body;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.body;
    EXPECT_EQ(j["error"]["code"], code) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string());
  }

  Metrics metrics_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<mvcc::LocalTimestampOracle> tso_;
  std::unique_ptr<kv::KvStore> store_;
  std::unique_ptr<HttpApi> api_;
};

TEST_F(HttpApiTest, PutGetDelete) {
  auto put = Do("PUT", "/v1/collections/default/keys/greeting", "hello");
  ASSERT_EQ(put.status, 200) << put.body;
  uint64_t v = Body(put)["version"];
  EXPECT_EQ(Body(put)["key"], "greeting");
  auto get = Do("GET", "/v1/collections/default/keys/greeting");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "hello");
  ASSERT_EQ(get.headers.size(), 1u);
  EXPECT_EQ(get.headers[0], std::make_pair(std::string("X-GojoDB-Version"), std::to_string(v)));
  auto del = Do("DELETE", "/v1/collections/default/keys/greeting");
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(Body(del)["existed"], true);
  ExpectError(Do("GET", "/v1/collections/default/keys/greeting"), 404, "NOT_FOUND");
}

TEST_F(HttpApiTest, ConditionalPutReportsCurrentVersion) {
  auto first = Do("PUT", "/v1/collections/default/keys/k?if_version=0", "a");
  ASSERT_EQ(first.status, 200);
  uint64_t v = Body(first)["version"];
  auto conflict = Do("PUT", "/v1/collections/default/keys/k?if_version=0", "b");
  ExpectError(conflict, 409, "FAILED_PRECONDITION");
  EXPECT_EQ(Body(conflict)["error"]["current_version"], v);
  EXPECT_EQ(Do("PUT", "/v1/collections/default/keys/k?if_version=" + std::to_string(v), "c").status,
            200);
  ExpectError(Do("PUT", "/v1/collections/default/keys/k?if_version=abc", "c"), 400,
              "INVALID_ARGUMENT");
}

TEST_F(HttpApiTest, ScanReturnsJsonValuesStringsAndBase64) {
  Do("PUT", "/v1/collections/default/keys/a", R"({"n":1})");
  Do("PUT", "/v1/collections/default/keys/b", "plain text");
  Do("PUT", "/v1/collections/default/keys?key_base64=/w==", std::string("\x01\xff", 2));
  auto scan = Do("GET", "/v1/collections/default/keys?limit=2");
  ASSERT_EQ(scan.status, 200) << scan.body;
  auto j = Body(scan);
  ASSERT_EQ(j["items"].size(), 2u);
  EXPECT_EQ(j["items"][0]["value"]["n"], 1);
  EXPECT_EQ(j["items"][1]["value"], "plain text");
  // The third key ("\x01\xff"... no: the key is 0xFF) is not UTF-8: next travels as base64.
  EXPECT_EQ(j["next_base64"], "/w==");
}

TEST_F(HttpApiTest, JsonValuesComeBackAsStored) {
  // Field order, spacing and the digits of a number past 64 bits are the stored bytes'.
  const std::string doc = R"({"z": 1, "a": [true, null], "big": 123456789012345678901234567890})";
  Do("PUT", "/v1/collections/default/keys/doc", doc);
  Do("PUT", "/v1/collections/default/keys/half", R"({"open": )");
  Do("PUT", "/v1/collections/default/keys/quote", "say \"hi\"\n");
  // What nlohmann's accept() reads past must not reach the answer as it is.
  Do("PUT", "/v1/collections/default/keys/znul", std::string("{\"a\":1}\0],\"x\":1", 15));
  Do("PUT", "/v1/collections/default/keys/zbom", "\xEF\xBB\xBF{}");
  auto scan = Do("GET", "/v1/collections/default/keys");
  ASSERT_EQ(scan.status, 200) << scan.body;
  EXPECT_NE(scan.body.find("\"value\":" + doc + ","), std::string::npos) << scan.body;
  auto j = Body(scan);
  ASSERT_EQ(j["items"].size(), 5u);
  EXPECT_FALSE(j.contains("x")) << scan.body;
  EXPECT_EQ(j["items"][3]["value"], "\xEF\xBB\xBF{}");  // keys zbom, znul
  EXPECT_EQ(j["items"][4]["value"], std::string("{\"a\":1}\0],\"x\":1", 15));
  EXPECT_EQ(j["items"][0]["key"], "doc");
  EXPECT_EQ(j["items"][0]["value"]["a"], json::parse("[true, null]"));
  EXPECT_GT(j["items"][0]["version"].get<uint64_t>(), 0u);
  // Not JSON: a string, escaped.
  EXPECT_EQ(j["items"][1]["value"], R"({"open": )");
  EXPECT_EQ(j["items"][2]["value"], "say \"hi\"\n");
  EXPECT_EQ(j["next"], nullptr);
}

TEST_F(HttpApiTest, ScanPaginationAndBinaryKeys) {
  Do("PUT", "/v1/collections/default/keys/a", "1");
  Do("PUT", "/v1/collections/default/keys?key_base64=/w==", std::string("\x01\xff", 2));
  auto first = Body(Do("GET", "/v1/collections/default/keys?limit=1"));
  ASSERT_EQ(first["items"].size(), 1u);
  EXPECT_EQ(first["items"][0]["key"], "a");
  // The next key is not UTF-8, so it travels as next_base64.
  ASSERT_TRUE(first.contains("next_base64")) << first.dump();
  auto second = Body(Do("GET", "/v1/collections/default/keys?start_base64=" +
                                   first["next_base64"].get<std::string>()));
  ASSERT_EQ(second["items"].size(), 1u);
  EXPECT_EQ(second["items"][0]["key_base64"], "/w==");
  EXPECT_EQ(second["items"][0]["value_base64"], "Af8=");
  EXPECT_EQ(second["next"], nullptr);
  EXPECT_GT(second["read_ts"].get<uint64_t>(), 0u);
}

// Keys that need escaping in JSON come back whole: quotes, backslashes, control
// characters and non-ASCII UTF-8 as JSON strings, next to plain ASCII keys.
TEST_F(HttpApiTest, ScanKeysAreEscapedAsNeeded) {
  for (const char* k : {"YSJiXGM=", "w6k=", "dGFiCWtleQ=="}) {
    ASSERT_EQ(Do("PUT", std::string("/v1/collections/default/keys?key_base64=") + k, "1").status,
              200);
  }
  Do("PUT", "/v1/collections/default/keys/plain~key", "2");
  auto j = Body(Do("GET", "/v1/collections/default/keys"));
  ASSERT_EQ(j["items"].size(), 4u) << j.dump();
  EXPECT_EQ(j["items"][0]["key"], "a\"b\\c");
  EXPECT_EQ(j["items"][1]["key"], "plain~key");
  EXPECT_EQ(j["items"][2]["key"], "tab\tkey");
  EXPECT_EQ(j["items"][3]["key"], "\xc3\xa9");
  EXPECT_EQ(j["items"][1]["value"], 2);
}

TEST_F(HttpApiTest, BatchAppliesAtomically) {
  auto ok =
      Do("POST", "/v1/batch",
         R"({"ops":[{"op":"put","key":"x","value":{"a":1}},{"op":"put","key":"y","value":"s"}]})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Do("GET", "/v1/collections/default/keys/x").body, R"({"a":1})");
  EXPECT_EQ(Do("GET", "/v1/collections/default/keys/y").body, "s");
  auto bad =
      Do("POST", "/v1/batch",
         R"({"ops":[{"op":"put","key":"z","value":1},{"op":"delete","key":"x","if_version":1}]})");
  ExpectError(bad, 409, "FAILED_PRECONDITION");
  ExpectError(Do("GET", "/v1/collections/default/keys/z"), 404, "NOT_FOUND");
}

TEST_F(HttpApiTest, MalformedBodiesAndUnknownFields) {
  ExpectError(Do("POST", "/v1/batch", "{not json"), 400, "INVALID_ARGUMENT");
  ExpectError(Do("POST", "/v1/batch", "[]"), 400, "INVALID_ARGUMENT");
  ExpectError(Do("POST", "/v1/batch", R"({"ops":[],"extra":1})"), 400, "INVALID_ARGUMENT");
  ExpectError(Do("POST", "/v1/batch", R"({"ops":[{"op":"upsert","key":"k"}]})"), 400,
              "INVALID_ARGUMENT");
  ExpectError(Do("POST", "/v1/batch", R"({"ops":[{"op":"put","key":"k"}]})"), 400,
              "INVALID_ARGUMENT");
  ExpectError(Do("POST", "/v1/batch", R"({"ops":[{"op":"put","key":"k","value_base64":"**"}]})"),
              400, "INVALID_ARGUMENT");
  ExpectError(Do("POST", "/v1/collections", R"({"name":"c","colour":"red"})"), 400,
              "INVALID_ARGUMENT");
  ExpectError(Do("POST", "/v1/collections", ""), 400, "INVALID_ARGUMENT");
}

TEST_F(HttpApiTest, LimitsAndRouting) {
  ExpectError(Do("PUT", "/v1/collections/default/keys/big", std::string(1001, 'x')), 413,
              "RESOURCE_EXHAUSTED");
  ExpectError(Do("PUT", "/v1/collections/default/keys/" + std::string(4097, 'k'), "v"), 413,
              "RESOURCE_EXHAUSTED");
  ExpectError(Do("PUT", "/v1/collections/default/keys/", "v"), 400, "INVALID_ARGUMENT");
  ExpectError(Do("PUT", "/v1/collections/nope/keys/k", "v"), 404, "NOT_FOUND");
  auto wrong = Do("POST", "/v1/collections/default/keys/k", "v");
  ExpectError(wrong, 405, "UNIMPLEMENTED");
  ExpectError(Do("GET", "/v2/anything"), 404, "NOT_FOUND");
  ExpectError(Do("GET", "/v1/collections/default/keys/k%G0"), 400, "INVALID_ARGUMENT");
  ExpectError(Do("POST", "/v1/txn/begin"), 501, "UNIMPLEMENTED");
  ExpectError(Do("POST", "/v1/collections/default/query", "{}"), 501, "UNIMPLEMENTED");
  ExpectError(Do("POST", "/v1/collections/default/query", R"({"limit": 0})"), 400,
              "INVALID_ARGUMENT");
  ExpectError(Do("GET", "/v1/collections/default/keys?limit=0"), 400, "INVALID_ARGUMENT");
  ExpectError(Do("GET", "/v1/collections/default/keys?consistency=weird"), 400, "INVALID_ARGUMENT");
}

TEST_F(HttpApiTest, CollectionsLifecycle) {
  auto created = Do("POST", "/v1/collections", R"({"name":"users"})");
  ASSERT_EQ(created.status, 201) << created.body;
  ExpectError(Do("POST", "/v1/collections", R"({"name":"users"})"), 409, "ALREADY_EXISTS");
  auto list = Body(Do("GET", "/v1/collections"));
  EXPECT_EQ(list["collections"].size(), 2u);
  EXPECT_EQ(Body(Do("GET", "/v1/collections/users"))["name"], "users");
  EXPECT_EQ(Do("PUT", "/v1/collections/users/keys/u1", R"({"name":"ada"})").status, 200);
  EXPECT_EQ(Do("DELETE", "/v1/collections/users").status, 200);
  ExpectError(Do("GET", "/v1/collections/users"), 404, "NOT_FOUND");
  ExpectError(
      Do("POST", "/v1/collections", R"({"name":"i","indexes":[{"name":"a","fields":["a"]}]})"), 501,
      "UNIMPLEMENTED");
}

TEST_F(HttpApiTest, HealthReadinessAndMetrics) {
  EXPECT_EQ(Do("GET", "/healthz").status, 200);
  EXPECT_EQ(Do("GET", "/readyz").status, 200);
  Do("PUT", "/v1/collections/default/keys/m", "1");
  auto m = Do("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find(R"(gojodb_requests_total{api="http",op="put",code="OK"} 1)"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("gojodb_request_duration_seconds_bucket{api=\"http\",op=\"put\""),
            std::string::npos);
  EXPECT_EQ(Body(Do("GET", "/v1/cluster/status"))["mode"], "standalone");
}

TEST_F(HttpApiTest, BulkLoadsInChunksReportsEachBadLineAndResumes) {
  // The HTTP layer's chunking, progress and error reporting, checked without a cluster.
  kv::testing::IngestFake fake(store_.get(), 3);
  HttpApi api(&fake, &metrics_, [] { return "{}"; });
  auto bulk = [&](const std::string& target, const std::string& body) {
    return api.Handle("POST", target, body);
  };
  std::string body;
  for (int i = 1; i <= 9; ++i) {
    if (i == 3)
      body += "garbage\n";
    else if (i == 2)
      body += "{\"_id\":\"bad2\"}\n";  // refused in the chunk that also holds line 3
    else if (i == 5)
      body += "{\"_id\":\"bad5\"}\n";
    else
      body += "{\"_id\":\"k" + std::to_string(i) + "\",\"n\":" + std::to_string(i) + "}\n";
  }
  auto r = bulk("/v1/collections/docs/bulk?ingest_id=load1", body);
  ASSERT_EQ(r.status, 200) << r.body;
  json out = json::parse(r.body);
  EXPECT_EQ(out["lines"], 9);
  EXPECT_EQ(out["written"], 6);
  EXPECT_EQ(out["failed"], 3);
  EXPECT_EQ(out["skipped"], 0);
  EXPECT_EQ(out["lines_done"], 9);
  ASSERT_EQ(out["errors"].size(), 3u);
  EXPECT_EQ(out["errors"][0]["line"], 2) << "in line order across parsing and writing";
  EXPECT_EQ(out["errors"][0]["reason"], "UNIQUE");
  EXPECT_EQ(out["errors"][1]["line"], 3);
  EXPECT_EQ(out["errors"][1]["reason"], "NOT_JSON");
  EXPECT_EQ(out["errors"][2]["line"], 5);
  EXPECT_EQ(out["errors"][2]["reason"], "UNIQUE");
  EXPECT_EQ(fake.chunks, (std::vector<size_t>{3, 3, 2})) << "8 records in chunks of 3";
  EXPECT_EQ(fake.rows.size(), 6u);
  EXPECT_EQ(fake.rows["k9"], "{\"_id\":\"k9\",\"n\":9}");

  // The same id again: every line is done, so nothing is sent.
  fake.chunks.clear();
  out = json::parse(bulk("/v1/collections/docs/bulk?ingest_id=load1", body).body);
  EXPECT_EQ(out["skipped"], 8);
  EXPECT_EQ(out["written"], 0);
  EXPECT_EQ(out["failed"], 0) << "bad lines already reported are not reported again";
  EXPECT_TRUE(fake.chunks.empty());
  auto p = api.Handle("GET", "/v1/collections/docs/bulk/load1", "");
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(json::parse(p.body)["lines_done"], 9);
  EXPECT_EQ(api.Handle("GET", "/v1/collections/docs/bulk/never", "").status, 404);

  // A failure midway answers what is known to be in; a retry with the id resumes there.
  fake.fail_at = 15;
  std::string more;
  for (int i = 10; i <= 18; ++i) {
    more += "{\"_id\":\"m" + std::to_string(i) + "\"}\n";
  }
  auto failed = bulk("/v1/collections/docs/bulk?ingest_id=load2&first_line=10", more);
  EXPECT_EQ(failed.status, 503) << failed.body;
  json err = json::parse(failed.body)["error"];
  EXPECT_EQ(err["lines_done"], 12) << failed.body;
  EXPECT_EQ(err["written"], 3);
  fake.fail_at = 0;
  fake.chunks.clear();
  out = json::parse(bulk("/v1/collections/docs/bulk?ingest_id=load2&first_line=10", more).body);
  EXPECT_EQ(out["skipped"], 3);
  EXPECT_EQ(out["written"], 6);
  EXPECT_EQ(out["lines_done"], 18);
  EXPECT_EQ(fake.chunks, (std::vector<size_t>{3, 3}));

  // Bad parameters.
  EXPECT_EQ(bulk("/v1/collections/docs/bulk?first_line=0", body).status, 400);
  EXPECT_EQ(bulk("/v1/collections/docs/bulk?ingest_id=", body).status, 400);
  EXPECT_EQ(bulk("/v1/collections/docs/bulk?unknown=1", body).status, 400);
  EXPECT_EQ(api.Handle("PUT", "/v1/collections/docs/bulk", body).status, 405);
  // Without an ingest id, keys from another field.
  out =
      json::parse(bulk("/v1/collections/docs/bulk?key_field=n", "{\"n\":41}\n{\"n\":\"x\"}").body);
  EXPECT_EQ(out["written"], 2);
  EXPECT_EQ(fake.rows.count("41"), 1u);
  EXPECT_TRUE(out["ingest_id"].is_null());
}

}  // namespace
}  // namespace gojodb::http
