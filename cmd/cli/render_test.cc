#include "cmd/cli/render.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gojodb::cli {
namespace {

using nlohmann::json;

TEST(Render, GetTableWritesRawBytes) {
  kv::GetResult r{true, std::string("a\x01\n", 3), 5};
  EXPECT_EQ(RenderGet(OutputMode::kTable, "k", r, /*escape_unprintable=*/false),
            std::string("a\x01\n\n", 4));
  EXPECT_EQ(RenderGet(OutputMode::kTable, "k", r, /*escape_unprintable=*/true), "a\\x01\\n\n");
  kv::GetResult text{true, "two\nlines", 5};
  EXPECT_EQ(RenderGet(OutputMode::kTable, "k", text, true), "two\nlines\n");
}

TEST(Render, GetJson) {
  kv::GetResult r{true, R"({"name":"ann"})", 9};
  EXPECT_EQ(json::parse(RenderGet(OutputMode::kJson, "user:1", r, false)),
            json::parse(R"({"key":"user:1","value":{"name":"ann"},"version":9})"));
  kv::GetResult bin{true, std::string("\x00\xff", 2), 3};
  json doc = json::parse(RenderGet(OutputMode::kJson, "\xfe", bin, false));
  EXPECT_EQ(doc["key_base64"], "/g==");
  EXPECT_EQ(doc["value_base64"], "AP8=");
  EXPECT_FALSE(doc.contains("value"));
}

TEST(Render, JsonIsOneDocumentPerLine) {
  std::string out = RenderPut(OutputMode::kJson, "k", {7, false});
  EXPECT_EQ(out, "{\"key\":\"k\",\"version\":7}\n");
}

TEST(Render, PutAndDeleteTable) {
  EXPECT_EQ(RenderPut(OutputMode::kTable, "k", {7, false}), "OK version=7\n");
  EXPECT_EQ(RenderDelete(OutputMode::kTable, "k", {8, true}), "OK version=8\n");
  EXPECT_EQ(RenderDelete(OutputMode::kTable, "k", {8, false}),
            "OK version=8 (the key did not exist)\n");
}

TEST(Render, ScanTableEscapesAndAligns) {
  kv::ScanResult r;
  r.items = {{"a", "1", 10}, {"key\nb", std::string("\x00v", 2), 1234}};
  r.read_ts = 99;
  EXPECT_EQ(RenderScan(OutputMode::kTable, r, false),
            "KEY     VERSION  VALUE\n"
            "a       10       1\n"
            "key\\nb  1234     \\x00v\n"
            "(2 rows)\n");
}

TEST(Render, ScanTableSaysWhereMoreRowsStart) {
  kv::ScanResult r;
  r.items = {{"a", "1", 1}};
  r.next = "b";
  std::string fwd = RenderScan(OutputMode::kTable, r, false);
  EXPECT_NE(fwd.find("(1 row; more from \"b\": pass it as START"), std::string::npos) << fwd;
  std::string rev = RenderScan(OutputMode::kTable, r, true);
  EXPECT_NE(rev.find("more before \"b\": pass it as END"), std::string::npos) << rev;
}

TEST(Render, ScanJson) {
  kv::ScanResult r;
  r.items = {{"a", "[1,2]", 3}, {"b", "plain", 4}};
  r.read_ts = 5;
  EXPECT_EQ(json::parse(RenderScan(OutputMode::kJson, r, false)),
            json::parse(R"({"items":[{"key":"a","value":[1,2],"version":3},
                                     {"key":"b","value":"plain","version":4}],
                            "next":null,"read_ts":5})"));
  r.next = "c";
  EXPECT_EQ(json::parse(RenderScan(OutputMode::kJson, r, false))["next"], "c");
}

TEST(Render, Collections) {
  kv::CollectionInfo users{"users",
                           3,
                           1000,
                           R"({"type":"object"})",
                           {{"by_age", {"age"}, false}, {"by_email", {"email"}, true}}};
  kv::CollectionInfo plain{"default", 1, 1, "", {}};
  EXPECT_EQ(RenderCollectionList(OutputMode::kTable, {plain, users}),
            "NAME     ID  CREATED_AT  SCHEMA  INDEXES\n"
            "default  1   1           no\n"
            "users    3   1000        yes     by_age(age), by_email(email) unique\n");
  json doc = json::parse(RenderCollection(OutputMode::kJson, users));
  EXPECT_EQ(doc["schema"], json::parse(R"({"type":"object"})"));
  EXPECT_EQ(doc["indexes"][1]["unique"], true);
  EXPECT_EQ(RenderCollection(OutputMode::kTable, plain),
            "name:        default\n"
            "id:          1\n"
            "created_at:  1\n"
            "schema:      (none)\n"
            "indexes:     (none)\n");
}

TEST(Render, ClusterStatus) {
  v1::ClusterStatusResponse s;
  s.set_mode("standalone");
  s.set_version("1.2.3");
  s.set_leader(1);
  auto* n = s.add_storage_nodes();
  n->set_id(1);
  n->set_role("standalone");
  n->set_grpc_addr("127.0.0.1:7001");
  n->set_state("up");
  auto* sh = s.add_shards();
  sh->set_id(1);
  sh->set_end_key("\xff");
  sh->add_replicas(1);
  sh->set_leader(1);
  std::string table = RenderClusterStatus(OutputMode::kTable, s);
  EXPECT_NE(table.find("mode:    standalone\n"), std::string::npos) << table;
  EXPECT_NE(table.find("1   standalone  127.0.0.1:7001        up"), std::string::npos) << table;
  EXPECT_NE(table.find("1   -inf   \\xff  1         1"), std::string::npos) << table;
  json doc = json::parse(RenderClusterStatus(OutputMode::kJson, s));
  EXPECT_EQ(doc["shards"][0]["end_key_base64"], "/w==");
  EXPECT_EQ(doc["shards"][0]["start_key"], "");
  EXPECT_EQ(doc["storage_nodes"][0]["grpc_addr"], "127.0.0.1:7001");
}

}  // namespace
}  // namespace gojodb::cli
