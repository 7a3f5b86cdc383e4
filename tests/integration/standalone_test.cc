// gojodb-standalone as a user meets it: a real process on loopback, reached over HTTP
// and gRPC; startup errors and a clean restart.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "gojodb/v1/kv.pb.h"
#include "pkg/client/client.h"
#include "tests/integration/standalone_server.h"

namespace gojodb::testing {
namespace {

using nlohmann::json;

class StandaloneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("standalone");
    server_ = std::make_unique<StandaloneServer>(dir_ + "/data");
    ASSERT_TRUE(server_->Start()) << server_->Log();
    http_ = std::make_unique<httplib::Client>("127.0.0.1", server_->http_port());
    auto c = client::Client::Connect({.addr = server_->grpc_addr()});
    ASSERT_TRUE(c.ok());
    client_ = std::move(c).value();
  }
  void TearDown() override {
    client_.reset();
    http_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::unique_ptr<StandaloneServer> server_;
  std::unique_ptr<httplib::Client> http_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(StandaloneTest, HttpAndGrpcSeeTheSameData) {
  auto put =
      http_->Put("/v1/collections/default/keys/user%2F1", R"({"name":"ada"})", "application/json");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 200) << put->body;
  uint64_t version = json::parse(put->body)["version"];

  auto got = client_->Get({.key = "user/1"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->found);
  EXPECT_EQ(got->value, R"({"name":"ada"})");
  EXPECT_EQ(got->version, version);

  auto w = client_->Put({.key = "user/2", .value = std::string("\x00\xff", 2)});
  ASSERT_TRUE(w.ok());
  auto scan = http_->Get("/v1/collections/default/keys?prefix=user%2F");
  ASSERT_TRUE(scan);
  auto j = json::parse(scan->body);
  ASSERT_EQ(j["items"].size(), 2u);
  EXPECT_EQ(j["items"][0]["value"]["name"], "ada");
  EXPECT_EQ(j["items"][1]["value_base64"], "AP8=");

  auto cond = client_->Put({.key = "user/1", .value = "x", .if_version = 0});
  ASSERT_EQ(cond.status().code(), StatusCode::kFailedPrecondition);
  ASSERT_FALSE(cond.status().details().empty());
  EXPECT_EQ(cond.status().details()[0].second, std::to_string(version));

  auto del = http_->Delete("/v1/collections/default/keys/user%2F1");
  ASSERT_EQ(del->status, 200);
  EXPECT_FALSE(client_->Get({.key = "user/1"})->found);
}

TEST_F(StandaloneTest, CollectionsAndBatchOverGrpc) {
  ASSERT_TRUE(client_->CreateCollection({.name = "orders"}).ok());
  auto list = client_->ListCollections();
  ASSERT_EQ(list->size(), 2u);
  auto b = client_->Batch(
      {.ops = {
           {.kind = kv::BatchOp::Kind::kPut, .collection = "orders", .key = "o1", .value = "1"},
           {.kind = kv::BatchOp::Kind::kPut, .collection = "orders", .key = "o2", .value = "2"}}});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto scan = client_->Scan({.collection = "orders"});
  ASSERT_EQ(scan->items.size(), 2u);
  EXPECT_EQ(scan->items[0].version, b->version);
  auto missing = client_->Get({.collection = "nope", .key = "k"});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto big = client_->Put({.key = "big", .value = std::string((8 << 20) + 1, 'x')});
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(client_->DropCollection("orders").ok());
  auto status = client_->ClusterStatus();
  ASSERT_TRUE(status.ok());
}

TEST_F(StandaloneTest, BadHttpRequestsGetJsonErrorsAndTheServerStaysUp) {
  struct Case {
    std::string method, path, body;
    int status;
  };
  std::vector<Case> cases = {
      {"PUT", "/v1/collections/default/keys/k%ZZ", "v", 400},
      {"POST", "/v1/batch", "{\"ops\":[", 400},
      {"POST", "/v1/batch", R"({"ops":[],"bogus":true})", 400},
      {"GET", "/v1/collections/ghost/keys/k", "", 404},
      {"PATCH", "/v1/collections/default/keys/k", "", 405},
      {"PUT", "/v1/collections/default/keys/k", std::string((8 << 20) + 10, 'v'), 413},
      {"GET", "/v1/collections/default/keys/k?unknown=1", "", 400},
  };
  for (const auto& c : cases) {
    httplib::Request req;
    req.method = c.method;
    req.path = c.path;
    req.body = c.body;
    auto res = http_->send(req);
    ASSERT_TRUE(res) << c.method << " " << c.path;
    EXPECT_EQ(res->status, c.status) << c.method << " " << c.path << ": " << res->body;
    auto j = json::parse(res->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << res->body;
    EXPECT_TRUE(j["error"]["code"].is_string()) << res->body;
  }
  // A body far above the HTTP limit is refused before it is read.
  auto huge = http_->Put("/v1/collections/default/keys/k", std::string(65 << 20, 'x'),
                         "application/octet-stream");
  if (huge) {
    EXPECT_EQ(huge->status, 413);
  }
  // A bulk body is read as NDJSON whatever its content type, curl's default (a form)
  // included.
  std::string lines;
  for (int i = 0; i < 1000; ++i) lines += "{\"_id\":\"f" + std::to_string(i) + "\"}\n";
  auto form =
      http_->Post("/v1/collections/default/bulk", lines, "application/x-www-form-urlencoded");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 200) << form->body;
  EXPECT_EQ(json::parse(form->body)["written"], 1000) << form->body;
  auto ndjson = http_->Post("/v1/collections/default/bulk", lines, "application/x-ndjson");
  ASSERT_TRUE(ndjson);
  EXPECT_EQ(ndjson->status, 200) << ndjson->body;
  auto ok = http_->Get("/healthz");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto metrics = http_->Get("/metrics");
  EXPECT_NE(metrics->body.find("gojodb_requests_total"), std::string::npos);
  EXPECT_NE(metrics->body.find("gojodb_storage_l0_files"), std::string::npos);
}

TEST_F(StandaloneTest, SecondProcessOnTheSameDataDirIsRefused) {
  auto r = RunCommand({BinDir() + "/gojodb-standalone", "--data-dir", dir_ + "/data", "--http-addr",
                       "127.0.0.1:" + std::to_string(FreePort()), "--grpc-addr",
                       "127.0.0.1:" + std::to_string(FreePort())});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("in use by another process"), std::string::npos) << r.err;
}

TEST_F(StandaloneTest, CleanShutdownAndRestartKeepData) {
  ASSERT_TRUE(client_->Put({.key = "durable", .value = "yes"}).ok());
  server_->process()->Signal(SIGTERM);
  EXPECT_EQ(server_->process()->Wait(), 0) << server_->Log();
  ASSERT_TRUE(server_->Start()) << server_->Log();
  auto c = client::Client::Connect({.addr = server_->grpc_addr()});
  auto got = (*c)->Get({.key = "durable"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "yes");
}

TEST_F(StandaloneTest, CliRoundTripsWithHttpAndGrpc) {
  const std::string cli = BinDir() + "/gojodb";
  const std::string addr = server_->grpc_addr();
  auto put = RunCommand({cli, "--addr", addr, "put", "cli/key", "from the cli"});
  ASSERT_EQ(put.status, 0) << put.err;
  // Visible over HTTP and gRPC.
  auto http_get = http_->Get("/v1/collections/default/keys/cli%2Fkey");
  ASSERT_TRUE(http_get);
  EXPECT_EQ(http_get->body, "from the cli");
  EXPECT_EQ(client_->Get({.key = "cli/key"})->value, "from the cli");
  // Written over HTTP, read by the CLI (table and JSON output).
  http_->Put("/v1/collections/default/keys/doc", R"({"n":7})", "application/json");
  auto get = RunCommand({cli, "--addr", addr, "get", "doc"});
  EXPECT_EQ(get.status, 0);
  EXPECT_EQ(get.out, "{\"n\":7}\n");
  auto json_get = RunCommand({cli, "--addr", addr, "--output", "json", "get", "doc"});
  ASSERT_EQ(json_get.status, 0) << json_get.err;
  auto j = json::parse(json_get.out);
  EXPECT_EQ(j["value"]["n"], 7);
  auto scan = RunCommand({cli, "--addr", addr, "--output", "json", "scan"});
  ASSERT_EQ(scan.status, 0) << scan.err;
  EXPECT_NE(scan.out.find("cli/key"), std::string::npos) << scan.out;
  // Collections through the CLI, data through gRPC.
  ASSERT_EQ(RunCommand({cli, "--addr", addr, "collections", "create", "cli_coll"}).status, 0);
  EXPECT_TRUE(client_->Put({.collection = "cli_coll", .key = "k", .value = "v"}).ok());
  auto list = RunCommand({cli, "--addr", addr, "collections", "list"});
  EXPECT_NE(list.out.find("cli_coll"), std::string::npos) << list.out;
  // The documented exit codes.
  auto missing = RunCommand({cli, "--addr", addr, "get", "no-such-key"});
  EXPECT_EQ(missing.status, 1);
  auto usage = RunCommand({cli, "--addr", addr, "get"});
  EXPECT_EQ(usage.status, 2);
  auto conflict = RunCommand({cli, "--addr", addr, "put", "cli/key", "x", "--if-version", "0"});
  EXPECT_EQ(conflict.status, 3);
  EXPECT_NE(conflict.err.find("FAILED_PRECONDITION"), std::string::npos) << conflict.err;
  // The shell, scripted on stdin.
  auto shell =
      RunCommand({cli, "--addr", addr, "shell"}, "put s1 one\nget s1\nuse cli_coll\nget k\n");
  EXPECT_EQ(shell.status, 0) << shell.err;
  EXPECT_NE(shell.out.find("one"), std::string::npos) << shell.out;
  EXPECT_NE(shell.out.find("v"), std::string::npos) << shell.out;
  auto unreachable = RunCommand({cli, "--addr", "127.0.0.1:1", "--timeout-ms", "500", "get", "k"});
  EXPECT_EQ(unreachable.status, 3);
}

// Transactions on the standalone server, over gRPC (the client library and the CLI
// shell) and HTTP: one-shot with a condition, interactive with a conflict, the shell's
// begin/commit.
TEST_F(StandaloneTest, TransactionsOverGrpcHttpAndTheShell) {
  ASSERT_TRUE(client_->Put({.key = "acct/a", .value = "100"}).ok());
  auto r = client_->Txn({.reads = {{"", "acct/a"}},
                         .ops = {{kv::BatchOp::Kind::kPut, "", "acct/a", "70", std::nullopt},
                                 {kv::BatchOp::Kind::kPut, "", "acct/b", "30", std::nullopt}},
                         .conditions = {{"", "acct/b", std::nullopt, std::nullopt, false}}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->reads.size(), 1u);
  EXPECT_EQ(r->reads[0].value, "100");
  EXPECT_GT(r->commit_ts, r->start_ts);
  // The same condition now fails: acct/b exists.
  auto again = client_->Txn({.ops = {{kv::BatchOp::Kind::kPut, "", "acct/b", "0", std::nullopt}},
                             .conditions = {{"", "acct/b", std::nullopt, std::nullopt, false}}});
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition) << again.status().ToString();

  // Interactive over gRPC: a write committed after begin makes the commit conflict.
  auto t = client_->BeginTxn();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto got = client_->TxnGet(t->id, {"", "acct/a"});
  ASSERT_TRUE(got.ok() && got->found);
  EXPECT_EQ(got->value, "70");
  ASSERT_TRUE(
      client_->TxnWrite(t->id, {kv::BatchOp::Kind::kPut, "", "acct/a", "60", std::nullopt}).ok());
  auto theirs = client_->TxnScan(t->id, {.prefix = "acct/b"});  // none of its own writes
  ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();
  ASSERT_EQ(theirs->items.size(), 1u);
  EXPECT_EQ(theirs->items[0].key, "acct/b");
  EXPECT_EQ(theirs->items[0].value, "30");
  auto mine = client_->TxnScan(t->id, {.prefix = "acct/"});
  ASSERT_TRUE(mine.ok()) << mine.status().ToString();
  ASSERT_EQ(mine->items.size(), 2u);
  EXPECT_EQ(mine->items[0].value, "60");  // its own write
  ASSERT_TRUE(client_->Put({.key = "acct/a", .value = "outside"}).ok());
  auto conflict = client_->CommitTxn(t->id);
  EXPECT_EQ(conflict.status().code(), StatusCode::kAborted) << conflict.status().ToString();
  EXPECT_EQ(client_->CommitTxn(t->id).status().code(), StatusCode::kNotFound);

  // HTTP one-shot reads.
  auto h = http_->Post("/v1/txn", R"({"reads":[{"key":"acct/a"},{"key":"acct/b"}]})",
                       "application/json");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200) << h->body;
  EXPECT_NE(h->body.find("outside"), std::string::npos) << h->body;

  // The shell.
  const std::string cli = BinDir() + "/gojodb";
  auto shell = RunCommand({cli, "--addr", server_->grpc_addr(), "shell"},
                          "begin\nput acct/a 1\nput acct/b 2\nget acct/a\ncommit\n");
  EXPECT_EQ(shell.status, 0) << shell.err;
  EXPECT_NE(shell.out.find("committed at"), std::string::npos) << shell.out;
  auto a = client_->Get({.key = "acct/a"});
  auto b = client_->Get({.key = "acct/b"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->value, "1");
  EXPECT_EQ(b->value, "2");
  EXPECT_EQ(a->version, b->version);  // one commit timestamp
}

TEST_F(StandaloneTest, ClusterStatusIsStandaloneWithOneShardOnNodeOne) {
  auto res = http_->Get("/v1/cluster/status");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto j = json::parse(res->body);
  EXPECT_EQ(j["mode"], "standalone") << res->body;
  ASSERT_EQ(j["controllers"].size(), 1u) << res->body;
  EXPECT_EQ(j["controllers"][0]["id"], 1) << res->body;
  EXPECT_EQ(j["leader"], 1) << res->body;
  ASSERT_EQ(j["storage_nodes"].size(), 1u) << res->body;
  EXPECT_EQ(j["storage_nodes"][0]["id"], 1) << res->body;
  ASSERT_EQ(j["shards"].size(), 1u) << res->body;
  EXPECT_EQ(j["shards"][0]["replicas"], json::array({1})) << res->body;
  auto status = client_->ClusterStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->mode(), "standalone");
  ASSERT_EQ(status->shards_size(), 1);
  ASSERT_EQ(status->shards(0).replicas_size(), 1);
  EXPECT_EQ(status->shards(0).replicas(0), 1u);
}

// A million small documents in NDJSON requests of 10,000 lines (a few of them bad),
// into a collection with a schema; then every one is there: the count and the sum of a
// field over all of them equal what was sent, and a sample reads back as sent. The
// count can be raised (GOJODB_BULK_DOCS) for a longer soak.
TEST_F(StandaloneTest, BulkLoadOfAMillionDocumentsIsAllThereAndCounted) {
  size_t total = 1'000'000;
  if (const char* env = std::getenv("GOJODB_BULK_DOCS")) total = std::stoull(env);
  constexpr size_t kPerRequest = 10'000;
  auto created = http_->Post("/v1/collections", R"({"name": "events",
      "schema": {"fields": {"n": {"type": "integer", "required": true},
                            "kind": {"type": "string"}}}})",
                             "application/json");
  ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "no answer");
  http_->set_read_timeout(120, 0);
  const char* kinds[] = {"click", "view", "buy"};
  uint64_t want_sum = 0, sent = 0, bad = 0;
  for (size_t first = 0; first < total; first += kPerRequest) {
    std::string body;
    body.reserve(kPerRequest * 48);
    const size_t n = std::min(kPerRequest, total - first);
    for (size_t i = first; i < first + n; ++i) {
      body += "{\"_id\":\"e";
      body += std::to_string(i);
      body += "\",\"n\":";
      body += std::to_string(i);
      body += ",\"kind\":\"";
      body += kinds[i % 3];
      body += "\"}\n";
      want_sum += i;
    }
    sent += n;
    if (first % 100'000 == 0) {
      body += "{\"_id\":\"bad\",\"n\":\"not a number\"}\n";  // one schema violation
      ++bad;
    }
    auto r = http_->Post("/v1/collections/events/bulk?first_line=" + std::to_string(first + 1),
                         body, "application/x-ndjson");
    ASSERT_TRUE(r) << "no answer at line " << first + 1;
    ASSERT_EQ(r->status, 200) << r->body.substr(0, 2000);
    auto out = json::parse(r->body);
    ASSERT_EQ(out["written"], n) << r->body.substr(0, 2000);
    if (first % 100'000 == 0) {
      ASSERT_EQ(out["errors"].size(), 1u);
      EXPECT_EQ(out["errors"][0]["line"], first + n + 1);
      EXPECT_EQ(out["errors"][0]["reason"], "SCHEMA");
    } else {
      EXPECT_EQ(out["failed"], 0);
    }
  }
  EXPECT_GT(bad, 0u);
  auto agg = http_->Post("/v1/collections/events/aggregate",
                         R"({"aggregates": {"docs": {"count": "*"}, "sum": {"sum": "n"}}})",
                         "application/json");
  ASSERT_TRUE(agg && agg->status == 200) << (agg ? agg->body : "no answer");
  auto groups = json::parse(agg->body)["groups"];
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0]["values"]["docs"], sent);
  EXPECT_EQ(groups[0]["values"]["sum"].get<double>(), static_cast<double>(want_sum));
  for (size_t i : {size_t{0}, total / 3, total - 1}) {
    auto g = http_->Get("/v1/collections/events/keys/e" + std::to_string(i));
    ASSERT_TRUE(g && g->status == 200) << i;
    EXPECT_EQ(json::parse(g->body)["n"], i);
  }
  EXPECT_EQ(http_->Get("/v1/collections/events/keys/bad")->status, 404);
}

// Two bulk loads at once claim the same unique values, line for line: each value ends
// up held by exactly one document, the loser of each race is refused with UNIQUE, and
// the index names exactly the documents that hold each value. A load's claim on an
// entry it read as free at its start is kept by the commit's conflict check alone, so
// this fails if that check misses a write.
TEST_F(StandaloneTest, ConcurrentBulkLoadsClaimEachUniqueValueOnce) {
  auto created = http_->Post("/v1/collections", R"({"name": "members",
      "indexes": [{"name": "by_email", "fields": ["email"], "unique": true}]})",
                             "application/json");
  ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "no answer");
  constexpr int kRounds = 3, kLines = 3000;  // above a part (2,500): parts commit in turn
  std::map<std::string, int> written, refused;
  for (int round = 0; round < kRounds; ++round) {
    auto load = [&](const std::string& who, std::string* answer) {
      std::string body;
      for (int i = 0; i < kLines; ++i) {
        body += json{{"_id", who + std::to_string(round * kLines + i)},
                     {"email", "e" + std::to_string(round * kLines + i)}}
                    .dump() +
                "\n";
      }
      httplib::Client c("127.0.0.1", server_->http_port());
      c.set_read_timeout(120, 0);
      auto r = c.Post("/v1/collections/members/bulk", body, "application/x-ndjson");
      *answer = r ? std::to_string(r->status) + " " + r->body : "no answer";
    };
    std::string a, b;
    std::thread other([&] { load("b", &b); });
    load("a", &a);
    other.join();
    for (const auto& [who, answer] : {std::pair{"a", &a}, std::pair{"b", &b}}) {
      ASSERT_EQ(answer->substr(0, 4), "200 ") << who << ": " << answer->substr(0, 500);
      const json out = json::parse(answer->substr(4));
      written[who] += out["written"].get<int>();
      for (const auto& e : out["errors"]) EXPECT_EQ(e["reason"], "UNIQUE") << e.dump();
      refused[who] += out["failed"].get<int>();
      EXPECT_EQ(out["written"].get<int>() + out["failed"].get<int>(), kLines) << out.dump();
    }
  }
  EXPECT_EQ(written["a"] + written["b"], kRounds * kLines);
  EXPECT_EQ(refused["a"] + refused["b"], kRounds * kLines);
  // Every value: one holder, and the index finds that one.
  auto scan = http_->Get("/v1/collections/members/keys?limit=10000");
  ASSERT_TRUE(scan && scan->status == 200);
  std::map<std::string, std::string> holder;  // email -> _id
  const json scanned = json::parse(scan->body);
  for (const auto& item : scanned["items"]) {
    const std::string email = item["value"]["email"];
    EXPECT_TRUE(holder.emplace(email, item["key"].get<std::string>()).second)
        << email << " is held twice";
  }
  EXPECT_EQ(holder.size(), static_cast<size_t>(kRounds * kLines));
  for (int i = 0; i < kRounds * kLines; i += 997) {
    const std::string email = "e" + std::to_string(i);
    auto q = http_->Post("/v1/collections/members/query",
                         json{{"filter", {{"email", email}}}, {"explain", true}}.dump(),
                         "application/json");
    ASSERT_TRUE(q && q->status == 200) << (q ? q->body : "no answer");
    const json got = json::parse(q->body);
    ASSERT_EQ(got["items"].size(), 1u) << got.dump();
    EXPECT_EQ(got["items"][0]["key"], holder[email]);
    EXPECT_EQ(got["plan"]["index"], "by_email") << got["plan"].dump();
  }
}

// Lines whose key breaks the limits (checked before anything is read) are refused on
// their own, in a plain collection and in an indexed one: the lines before and after
// them load.
TEST_F(StandaloneTest, BulkLinesWithKeysAboveTheLimitAreRefusedAndTheRestLoad) {
  auto created = http_->Post("/v1/collections", R"({"name": "indexed",
      "indexes": [{"name": "by_n", "fields": ["n"]}]})",
                             "application/json");
  ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "no answer");
  created = http_->Post("/v1/collections", R"({"name": "plain"})", "application/json");
  ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "no answer");
  constexpr int kLines = 40;
  const std::set<int> bad = {5, 17, 18, 40};  // lines with a 4,097-byte key
  std::string body;
  for (int i = 1; i <= kLines; ++i) {
    const std::string key = bad.count(i) ? std::string(4097, 'k') : "d" + std::to_string(i);
    body += json{{"_id", key}, {"n", i}}.dump() + "\n";
  }
  for (const std::string collection : {"indexed", "plain"}) {
    SCOPED_TRACE(collection);
    auto r = http_->Post("/v1/collections/" + collection + "/bulk", body, "application/x-ndjson");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    const json out = json::parse(r->body);
    EXPECT_EQ(out["written"], kLines - static_cast<int>(bad.size())) << out.dump();
    EXPECT_EQ(out["failed"], bad.size());
    std::set<int> refused;
    for (const auto& e : out["errors"]) {
      refused.insert(e["line"].get<int>());
      EXPECT_EQ(e["reason"], "TOO_LARGE") << e.dump();
    }
    EXPECT_EQ(refused, bad);
    auto scan = http_->Get("/v1/collections/" + collection + "/keys?limit=1000");
    ASSERT_TRUE(scan && scan->status == 200);
    std::set<std::string> keys;
    const json scanned = json::parse(scan->body);
    for (const auto& item : scanned["items"]) keys.insert(item["key"].get<std::string>());
    std::set<std::string> want;
    for (int i = 1; i <= kLines; ++i) {
      if (!bad.count(i)) want.insert("d" + std::to_string(i));
    }
    EXPECT_EQ(keys, want);
  }
  // The index holds the loaded documents' entries, and only theirs.
  auto q = http_->Post("/v1/collections/indexed/query",
                       R"({"filter": {"n": {"gte": 1}}, "limit": 1000, "explain": true})",
                       "application/json");
  ASSERT_TRUE(q && q->status == 200) << (q ? q->body : "no answer");
  const json got = json::parse(q->body);
  EXPECT_EQ(got["plan"]["index"], "by_n") << got["plan"].dump();
  EXPECT_EQ(got["items"].size(), static_cast<size_t>(kLines) - bad.size());
}

// The document API over gRPC (client library) and the CLI: import, query, aggregate and
// export, with the aggregation checked against a computation over the exported file.
TEST_F(StandaloneTest, DocumentsOverGrpcAndTheCliRoundTrip) {
  const std::string cli = BinDir() + "/gojodb";
  const std::string addr = server_->grpc_addr();
  kv::CollectionSpec spec;
  spec.name = "people";
  spec.schema_json = R"({"fields": {"age": {"type": "integer", "required": true}}})";
  spec.indexes = {{"by_city", {"city"}, false, 0}};
  ASSERT_TRUE(client_->CreateCollection(spec).ok());

  // 3,000 documents with a 400-byte tag each, and two bad lines.
  constexpr int kDocs = 3000;
  const char* cities[] = {"Oslo", "Lima", "Pune", "Kiev", "Baku"};
  std::mt19937 rng(7);
  std::map<std::string, json> want;
  std::string ndjson;
  for (int i = 0; i < kDocs; ++i) {
    json d = {{"_id", "p" + std::to_string(i)},
              {"age", static_cast<int>(rng() % 80)},
              {"score", static_cast<double>(rng() % 1000) / 8.0},
              {"tag", std::string(400, static_cast<char>('a' + i % 26))}};
    if (rng() % 7 != 0) d["city"] = cities[rng() % 5];
    want[d["_id"]] = d;
    ndjson += d.dump() + "\n";
    if (i == 10) ndjson += "{\"_id\":\"bad\",\"age\":\"old\"}\n";
    if (i == 2000) ndjson += "{not json\n";
  }
  const std::string in = dir_ + "/people.ndjson";
  std::ofstream(in, std::ios::binary) << ndjson;
  auto imp = RunCommand({cli, "--addr", addr, "-o", "json", "-c", "people", "import", in, "--batch",
                         "500", "--ingest-id", "load-1"});
  EXPECT_EQ(imp.status, 3) << "two refused lines: " << imp.err;
  json sum = json::parse(imp.out, nullptr, false);
  ASSERT_TRUE(sum.is_object()) << imp.out << imp.err;
  EXPECT_EQ(sum["written"], kDocs);
  EXPECT_EQ(sum["failed"], 2);
  EXPECT_EQ(sum["lines_done"], kDocs + 2);
  ASSERT_EQ(sum["errors"].size(), 2u);
  EXPECT_EQ(sum["errors"][0]["line"], 12);
  EXPECT_EQ(sum["errors"][0]["reason"], "SCHEMA");
  EXPECT_EQ(sum["errors"][1]["line"], 2003);
  EXPECT_EQ(sum["errors"][1]["reason"], "NOT_JSON");
  auto again = RunCommand(
      {cli, "--addr", addr, "-o", "json", "-c", "people", "import", in, "--ingest-id", "load-1"});
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(json::parse(again.out, nullptr, false)["skipped"], kDocs + 1) << again.out;
  auto progress = client_->IngestProgress("people", "load-1");
  ASSERT_TRUE(progress.ok()) << progress.status().ToString();
  EXPECT_EQ(*progress, kDocs + 2u);

  // A query over gRPC uses the index and pages to the end at one snapshot.
  kv::QueryRequest q;
  q.collection = "people";
  q.filter_json = R"({"city": {"eq": "Oslo"}})";
  q.limit = 100;
  q.explain = true;
  size_t oslo = 0, want_oslo = 0;
  for (const auto& [k, d] : want) want_oslo += d.value("city", "") == "Oslo";
  for (int page = 0;; ++page) {
    auto r = client_->Query(q);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (page == 0) {
      EXPECT_NE(r->plan_json.find("by_city"), std::string::npos) << r->plan_json;
    }
    for (const auto& item : r->items) {
      ++oslo;
      EXPECT_EQ(json::parse(item.value), want[item.key]);
    }
    if (r->cursor.empty()) break;
    q.cursor = r->cursor;
    q.explain = false;
  }
  EXPECT_EQ(oslo, want_oslo);

  // Sorted by city both ways: the index walked in order and backward, the documents read
  // with the entries on the one shard, each city's 600 or so a tie the key breaks; the
  // pages add up to the sorted truth.
  for (bool descending : {false, true}) {
    std::vector<std::pair<std::string, std::string>> by_city_key;
    for (const auto& [k, d] : want) by_city_key.emplace_back(d.value("city", ""), k);
    std::sort(by_city_key.begin(), by_city_key.end(), [&](const auto& a, const auto& b) {
      if (a.first != b.first) return descending ? b.first < a.first : a.first < b.first;
      return a.second < b.second;
    });
    kv::QueryRequest sorted;
    sorted.collection = "people";
    sorted.sort = {{"city", descending}};
    sorted.projection = {"city"};
    sorted.limit = 70;
    sorted.explain = true;
    std::vector<std::string> keys;
    for (int page = 0; page < 100; ++page) {
      auto r = client_->Query(sorted);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (page == 0) {
        const json plan = json::parse(r->plan_json);
        EXPECT_EQ(plan["ordered"], true) << plan.dump();
        EXPECT_EQ(plan["reverse"], descending) << plan.dump();
      }
      for (const auto& item : r->items) keys.push_back(item.key);
      if (r->cursor.empty()) break;
      sorted.cursor = r->cursor;
      sorted.explain = false;
    }
    ASSERT_EQ(keys.size(), by_city_key.size()) << "descending: " << descending;
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSERT_EQ(keys[i], by_city_key[i].second) << i << ", descending: " << descending;
    }
  }
  q.filter_json = R"({"city": {"near": 1}})";
  EXPECT_EQ(client_->Query(q).status().code(), StatusCode::kInvalidArgument);

  // Aggregation over gRPC: one group per document, about 1.3 MB, streamed in parts.
  auto by_id = client_->Aggregate({.collection = "people",
                                   .group_by_json = R"(["_id"])",
                                   .aggregates_json = R"({"t": {"max": "tag"}})"});
  ASSERT_TRUE(by_id.ok()) << by_id.status().ToString();
  json groups = json::parse(by_id->groups_json);
  ASSERT_EQ(groups.size(), static_cast<size_t>(kDocs));
  EXPECT_EQ(groups[0]["values"]["t"], want[groups[0]["key"]["_id"]]["tag"]);

  // Export, then check the CLI's aggregation against the exported file.
  const std::string out = dir_ + "/export.ndjson";
  auto exp = RunCommand({cli, "--addr", addr, "-c", "people", "export", out});
  ASSERT_EQ(exp.status, 0) << exp.err;
  std::ifstream ex(out);
  std::map<std::string, json> exported;
  for (std::string line; std::getline(ex, line);) {
    json d = json::parse(line);
    exported[d["_id"]] = d;
  }
  EXPECT_EQ(exported, want) << "the export holds every document as loaded";
  struct Acc {
    int n = 0;
    double sum = 0, min = 1e9, max = -1e9;
    std::set<int> ages;
  };
  std::map<std::string, Acc> by_city;
  for (const auto& [k, d] : exported) {
    Acc& a = by_city[d.contains("city") ? d["city"].dump() : "missing"];
    ++a.n;
    a.sum += d["score"].get<double>();
    a.min = std::min(a.min, d["score"].get<double>());
    a.max = std::max(a.max, d["score"].get<double>());
    a.ages.insert(d["age"].get<int>());
  }
  auto agg = RunCommand({cli,          "--addr",
                         addr,         "-o",
                         "json",       "-c",
                         "people",     "aggregate",
                         "--group-by", "city",
                         "--agg",      "n=count",
                         "--agg",      "s=sum:score",
                         "--agg",      "lo=min:score",
                         "--agg",      "hi=max:score",
                         "--agg",      "mean=avg:score",
                         "--agg",      "ages=count_distinct:age"});
  ASSERT_EQ(agg.status, 0) << agg.err;
  json got = json::parse(agg.out)["groups"];
  ASSERT_EQ(got.size(), by_city.size()) << agg.out;
  for (const auto& g : got) {
    const std::string city = g["key"].contains("city") ? g["key"]["city"].dump() : "missing";
    ASSERT_TRUE(by_city.count(city)) << city;
    const Acc& a = by_city[city];
    EXPECT_EQ(g["values"]["n"], a.n) << city;
    EXPECT_DOUBLE_EQ(g["values"]["s"].get<double>(), a.sum) << city;
    EXPECT_DOUBLE_EQ(g["values"]["lo"].get<double>(), a.min) << city;
    EXPECT_DOUBLE_EQ(g["values"]["hi"].get<double>(), a.max) << city;
    EXPECT_NEAR(g["values"]["mean"].get<double>(), a.sum / a.n, 1e-9) << city;
    EXPECT_EQ(g["values"]["ages"], a.ages.size()) << city;
  }

  // CSV: export, import into a plain collection, and the documents are the same.
  const std::string csv = dir_ + "/export.csv";
  auto exp_csv = RunCommand({cli, "--addr", addr, "-c", "people", "export", csv});
  ASSERT_EQ(exp_csv.status, 0) << exp_csv.err;
  ASSERT_TRUE(client_->CreateCollection({.name = "copy"}).ok());
  auto imp_csv = RunCommand({cli, "--addr", addr, "-c", "copy", "import", csv});
  ASSERT_EQ(imp_csv.status, 0) << imp_csv.out << imp_csv.err;
  auto back = RunCommand({cli, "--addr", addr, "-c", "copy", "export", "-"});
  ASSERT_EQ(back.status, 0) << back.err;
  std::istringstream lines(back.out);
  size_t n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    json d = json::parse(line);
    EXPECT_EQ(d, want[d["_id"]]);
  }
  EXPECT_EQ(n, want.size());

  // A stream of its own: records with refusals from the client, in two messages.
  auto stream = client_->OpenIngest("copy", "");
  ASSERT_TRUE(stream.ok());
  ASSERT_TRUE((*stream)
                  ->Add({{1, "s1", "{\"a\":1}"}, {3, "s3", "{\"a\":3}"}},
                        {{2, Status::InvalidArgument("no key").WithDetail("reason", "NO_KEY")}}, 3)
                  .ok());
  ASSERT_TRUE((*stream)->Add({{4, "", "{}"}, {5, "s5", "{}"}}, {}, 6).ok());
  auto done = (*stream)->Finish();
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->written, 3u);
  EXPECT_EQ(done->lines_done, 6u);
  ASSERT_EQ(done->errors.size(), 2u);
  EXPECT_EQ(done->errors[0].line, 2u);
  EXPECT_EQ(done->errors[1].line, 4u) << "an empty key is refused on its own";
  EXPECT_EQ(done->errors[1].status.code(), StatusCode::kInvalidArgument);
  auto out_of_order = client_->OpenIngest("copy", "");
  ASSERT_TRUE(out_of_order.ok());
  Status st = (*out_of_order)->Add({{5, "x", "{}"}, {4, "y", "{}"}}, {}, 5);
  if (st.ok()) st = (*out_of_order)->Finish().status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  // One chunk through Ingest is a session of its own: a retry under its id is skipped.
  kv::IngestRequest chunk{"copy", {{7, "i7", "{\"i\":7}"}}, "one-chunk", 7};
  auto first = client_->Ingest(chunk);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->written, 1u);
  auto retry = client_->Ingest(chunk);
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_EQ(retry->written, 0u);
  EXPECT_EQ(client_->IngestProgress("copy", "one-chunk").value(), 7u);
  auto nowhere = client_->OpenIngest("no_such_collection", "");
  ASSERT_TRUE(nowhere.ok());
  st = (*nowhere)->Add({{1, "x", "{}"}}, {}, 1);
  if (st.ok()) st = (*nowhere)->Finish().status();
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
}

// Starts `server`, then creates collection c, indexed by_a on a, over HTTP.
::testing::AssertionResult StartWithIndexedCollection(StandaloneServer& server) {
  if (!server.Start()) return ::testing::AssertionFailure() << server.Log();
  httplib::Client http("127.0.0.1", server.http_port());
  auto created = http.Post("/v1/collections",
                           R"({"name": "c", "indexes": [{"name": "by_a", "fields": ["a"]}]})",
                           "application/json");
  if (!created || created->status != 201) {
    return ::testing::AssertionFailure() << (created ? created->body : "no answer");
  }
  return ::testing::AssertionSuccess();
}

// A query sorted by an index no condition narrows walks the index in order; one whose
// filter passes too few documents gives way to a collection scan past the walk budget,
// with the same answer.
TEST(StandaloneFlagsTest, ASortedWalkThatFindsFewMatchesGivesWayToACollectionScan) {
  const std::string dir = TempDir("standalone-walk");
  StandaloneServer server(dir + "/data", {"--query-walk-budget", "50"});
  ASSERT_TRUE(StartWithIndexedCollection(server));
  httplib::Client http("127.0.0.1", server.http_port());
  std::string ndjson;
  for (int i = 0; i < 300; ++i) {
    ndjson +=
        json{{"_id", "k" + std::to_string(1000 + i)}, {"a", 300 - i}, {"b", i % 100 == 7}}.dump() +
        "\n";
  }
  auto loaded = http.Post("/v1/collections/c/bulk", ndjson, "application/x-ndjson");
  ASSERT_TRUE(loaded && loaded->status == 200) << (loaded ? loaded->body : "no answer");
  auto query = [&](const json& body) {
    auto r = http.Post("/v1/collections/c/query", body.dump(), "application/json");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r && r->status == 200 ? json::parse(r->body) : json::object();
  };
  // Most documents pass: the walk fills its page at once.
  json o = query({{"filter", {{"b", false}}}, {"sort", {"a"}}, {"limit", 3}, {"explain", true}});
  EXPECT_EQ(o["plan"]["plan"], "index_scan") << o.dump();
  EXPECT_EQ(o["plan"]["ordered"], true) << o.dump();
  EXPECT_LT(o["plan"]["examined"].get<int>(), 50) << o.dump();
  ASSERT_EQ(o["items"].size(), 3u) << o.dump();
  EXPECT_EQ(o["items"][0]["value"]["a"], 1);
  // Three pass (a = 293, 193, 93): past 50 documents the walk gives way.
  o = query({{"filter", {{"b", true}}}, {"sort", {"a"}}, {"limit", 5}, {"explain", true}});
  EXPECT_EQ(o["plan"]["plan"], "collection_scan") << o.dump();
  EXPECT_EQ(o["plan"]["abandoned_walk"]["index"], "by_a") << o.dump();
  EXPECT_GT(o["plan"]["abandoned_walk"]["examined"].get<int>(), 50) << o.dump();
  EXPECT_LT(o["plan"]["abandoned_walk"]["examined"].get<int>(), 300) << o.dump();
  EXPECT_EQ(o["plan"]["examined"], 300) << o.dump();
  std::vector<int> as;
  for (const auto& item : o["items"]) as.push_back(item["value"]["a"].get<int>());
  EXPECT_EQ(as, (std::vector<int>{93, 193, 293}));
  std::filesystem::remove_all(dir);
}

// query.require_limit: a query without a page limit is refused, over HTTP and gRPC.
TEST(StandaloneFlagsTest, ARequiredLimitRefusesQueriesWithoutOne) {
  const std::string dir = TempDir("standalone-limit");
  StandaloneServer server(dir + "/data", {"--query-require-limit", "true"});
  ASSERT_TRUE(StartWithIndexedCollection(server));
  httplib::Client http("127.0.0.1", server.http_port());
  ASSERT_EQ(http.Put("/v1/collections/c/keys/k", R"({"a": 1})", "application/json")->status, 200);
  auto without =
      http.Post("/v1/collections/c/query", R"({"filter": {"a": 1}})", "application/json");
  ASSERT_TRUE(without);
  EXPECT_EQ(without->status, 400) << without->body;
  EXPECT_EQ(json::parse(without->body)["error"]["reason"], "LIMIT_REQUIRED") << without->body;
  auto with = http.Post("/v1/collections/c/query", R"({"filter": {"a": 1}, "limit": 5})",
                        "application/json");
  ASSERT_TRUE(with);
  EXPECT_EQ(with->status, 200) << with->body;
  EXPECT_EQ(json::parse(with->body)["items"].size(), 1u);
  auto c = client::Client::Connect({.addr = server.grpc_addr()});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Query({.collection = "c"}).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

// A bulk chunk with indexes goes in parts (here of 50 documents), each read at the
// chunk's snapshot while the parts before it commit, while another client rewrites some
// of its documents (its commits make parts meet write conflicts and go again). The
// chunk's own rules hold across parts: the later of two lines with one key wins, a
// unique value goes to the earlier line, one held by a document outside the chunk is
// refused. Afterwards every document has exactly its index entries.
TEST(StandaloneFlagsTest, BulkChunksInPartsKeepIndexesExactWhileAnotherClientWrites) {
  const std::string dir = TempDir("standalone-parts");
  StandaloneServer server(dir + "/data", {"--bulk-part-documents", "50"});
  ASSERT_TRUE(server.Start()) << server.Log();
  httplib::Client http("127.0.0.1", server.http_port());
  http.set_read_timeout(120, 0);
  auto post = [&](httplib::Client& c, const std::string& path, const std::string& body) {
    auto r = c.Post(path, body, "application/json");
    EXPECT_TRUE(r) << path;
    return std::make_pair(r ? r->status : 0, r ? json::parse(r->body, nullptr, false) : json());
  };
  auto [code, out] = post(http, "/v1/collections", R"({"name": "people",
      "indexes": [{"name": "by_age", "fields": ["age"]},
                  {"name": "by_email", "fields": ["email"], "unique": true}]})");
  ASSERT_EQ(code, 201) << out.dump();
  const std::string docs = "/v1/collections/people/keys/";
  ASSERT_EQ(http.Put(docs + "x1", R"({"email":"held","age":1})", "application/json")->status, 200);
  ASSERT_EQ(http.Put(docs + "d5", R"({"email":"old5","age":99})", "application/json")->status, 200);

  constexpr int kLines = 2000;
  std::string body;
  for (int i = 1; i <= kLines; ++i) {
    json d = {
        {"_id", "d" + std::to_string(i)}, {"email", "e" + std::to_string(i)}, {"age", i % 30}};
    if (i == 300) d["email"] = "held";                                 // x1 holds it
    if (i == 500 || i == 1500) d["email"] = "dup";                     // line 500 takes it
    if (i == 1900) d = {{"_id", "d7"}, {"email", "e7b"}, {"age", 5}};  // d7 again: wins
    if (i == 1200) d["email"] = std::string(5000, 'x');  // its entry's key is too large
    body += d.dump() + "\n";
  }
  // Another client rewrites d1000..d1099 meanwhile (its own emails: w<i>).
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    httplib::Client c("127.0.0.1", server.http_port());
    std::mt19937 rng(11);
    while (!stop) {
      const int i = 1000 + static_cast<int>(rng() % 100);
      json d = {{"email", "w" + std::to_string(i)}, {"age", 29}};
      (void)c.Put(docs + "d" + std::to_string(i), d.dump(), "application/json");
    }
  });
  std::tie(code, out) = post(http, "/v1/collections/people/bulk", body);
  for (int i = 0; i < 2; ++i) {  // and again, so that the writer meets parts in flight
    if (code != 200) break;
    std::tie(code, out) = post(http, "/v1/collections/people/bulk", body);
  }
  stop = true;
  writer.join();
  ASSERT_EQ(code, 200) << out.dump();
  EXPECT_EQ(out["lines"], kLines);
  EXPECT_EQ(out["written"], kLines - 3) << out.dump();
  EXPECT_EQ(out["failed"], 3) << out.dump();
  std::map<int, std::string> reasons;
  for (const auto& e : out["errors"]) reasons[e["line"].get<int>()] = e["reason"];
  EXPECT_EQ(reasons, (std::map<int, std::string>{
                         {300, "UNIQUE"}, {1200, "INDEX_KEY_TOO_LARGE"}, {1500, "UNIQUE"}}))
      << out.dump();

  // The truth, and every index against it.
  std::map<std::string, json> truth;
  std::string start;
  for (;;) {
    auto scan = http.Get(docs.substr(0, docs.size() - 1) + "?limit=10000&start=" + start);
    ASSERT_TRUE(scan && scan->status == 200);
    const json page = json::parse(scan->body);
    for (const auto& item : page["items"]) truth[item["key"].get<std::string>()] = item["value"];
    if (page["next"].is_null()) break;
    start = page["next"].get<std::string>();
  }
  // x1, and d1..d2000 but d1900 (line 1900 is d7), d300, d1200 and d1500 (refused); d5
  // replaced.
  EXPECT_EQ(truth.size(), 1u + kLines - 1 - 3);
  EXPECT_EQ(truth.count("d1200"), 0u);
  EXPECT_EQ(truth["d7"]["email"], "e7b");
  EXPECT_EQ(truth["d500"]["email"], "dup");
  EXPECT_EQ(truth["d5"]["email"], "e5");
  EXPECT_EQ(truth.count("d300"), 0u);
  EXPECT_EQ(truth.count("d1500"), 0u);
  auto query = [&](const json& filter) {
    auto [c, o] = post(http, "/v1/collections/people/query",
                       json{{"filter", filter}, {"explain", true}, {"limit", 10000}}.dump());
    EXPECT_EQ(c, 200) << o.dump();
    return o;
  };
  for (int a : {0, 1, 5, 7, 29, 99}) {
    json o = query({{"age", a}});
    std::vector<std::string> want, got;
    for (const auto& [k, d] : truth) {
      if (d["age"] == a) want.push_back(k);
    }
    for (const auto& item : o["items"]) got.push_back(item["key"]);
    EXPECT_EQ(got, want) << "age " << a;
    EXPECT_EQ(o["plan"]["index"], "by_age");
    EXPECT_EQ(o["plan"]["examined"], want.size()) << "entries of age " << a << " are not exact";
  }
  std::map<std::string, std::string> email_holder;
  for (const auto& [k, d] : truth) {
    auto [it, fresh] = email_holder.emplace(d["email"].get<std::string>(), k);
    EXPECT_TRUE(fresh) << k << " and " << it->second << " share " << it->first;
  }
  for (const auto& [email, holder] : email_holder) {
    json o = query({{"email", email}});
    ASSERT_EQ(o["items"].size(), 1u) << email << " " << o.dump();
    EXPECT_EQ(o["items"][0]["key"], holder) << email;
    EXPECT_EQ(o["plan"]["examined"], 1) << email;
  }
  for (const char* gone : {"e7", "old5", "e300", "e1500"}) {
    json o = query({{"email", gone}});
    EXPECT_EQ(o["items"].size(), 0u) << gone;
    EXPECT_EQ(o["plan"]["examined"], 0) << gone << ": an entry points to nothing";
  }
  std::filesystem::remove_all(dir);
}

TEST(StandaloneFlagsTest, DataDirOfTheOldFormatIsRefused) {
  // The previous standalone server kept a single-node store in db/ and nothing else.
  const std::string dir = TempDir("standalone-old");
  std::filesystem::create_directories(dir + "/data/db");
  std::ofstream(dir + "/data/db/CURRENT") << "MANIFEST-000005\n";
  auto r = RunCommand({BinDir() + "/gojodb-standalone", "--data-dir", dir + "/data", "--http-addr",
                       "127.0.0.1:" + std::to_string(FreePort()), "--grpc-addr",
                       "127.0.0.1:" + std::to_string(FreePort())});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("format has changed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("empty data directory"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // Nothing was written next to it.
  EXPECT_FALSE(std::filesystem::exists(dir + "/data/controller"));
  std::filesystem::remove_all(dir);
}

TEST(StandaloneFlagsTest, BadFlagsExitTwoWithOneLine) {
  std::string bin = BinDir() + "/gojodb-standalone";
  auto missing = RunCommand({bin, "--http-addr", "127.0.0.1:1"});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("--data-dir is required"), std::string::npos) << missing.err;
  auto bad_addr = RunCommand(
      {bin, "--data-dir", "/tmp/x", "--http-addr", "nowhere", "--grpc-addr", "127.0.0.1:1"});
  EXPECT_EQ(bad_addr.status, 2);
  auto bad_bool = RunCommand({bin, "--data-dir", "/tmp/x", "--http-addr", "127.0.0.1:1",
                              "--grpc-addr", "127.0.0.1:2", "--storage-sync-writes", "perhaps"});
  EXPECT_EQ(bad_bool.status, 2);
  EXPECT_NE(bad_bool.err.find("must be true or false"), std::string::npos) << bad_bool.err;
  auto unknown = RunCommand({bin, "--no-such-flag"});
  EXPECT_EQ(unknown.status, 2);
  auto file = RunCommand({bin, "--data-dir", "/proc/forbidden/x", "--http-addr", "127.0.0.1:1",
                          "--grpc-addr", "127.0.0.1:2"});
  EXPECT_EQ(file.status, 1);
  EXPECT_NE(file.err.find("data directory"), std::string::npos) << file.err;
}

}  // namespace
}  // namespace gojodb::testing
