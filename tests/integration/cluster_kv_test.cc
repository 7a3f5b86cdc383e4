// Real processes: three gojodb-controller members, three gojodb-storage nodes and one
// gojodb-api gateway on loopback. Everything is checked through the gateway's HTTP API:
// - puts, gets, deletes, a conditional put refused with current_version, a request-id
//   retry that answers the first version, scans at a snapshot (forward, reverse, paged),
//   batches and collections; linearizable scans at a fresh timestamp;
// - the storage node leading the shard is SIGKILLed while a client writes: writes and
//   reads through the gateway go on within the request deadline, and every write the
//   gateway acknowledged is readable afterwards with its value;
// - the C++ client library in routed mode (pkg/client with `controllers`) serves the same
//   API with the gateway dead, straight from the storage nodes, across a leader's death.
// - transactions across shards, with coordinators stopped mid-commit; and the GC, which
//   resolves what they left, waits for open transactions and refuses old snapshots.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "core/controller/state.h"
#include "core/mvcc/mvcc.h"
#include "core/storage_engine/engine.h"
#include "core/txn/percolator.h"
#include "gojodb/v1/shard.grpc.pb.h"
#include "internal/failpoint.h"
#include "pkg/client/client.h"
#include "tests/integration/process.h"

namespace gojodb::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct Ports {
  int grpc = 0;
  int http = 0;
};

class Cluster {
 public:
  explicit Cluster(std::string dir) : dir_(std::move(dir)) {
    for (int i = 1; i <= 3; ++i) {
      controllers_[i] = {FreePort(), FreePort()};
      storage_[i] = {FreePort(), FreePort()};
    }
    gateway_ = {FreePort(), FreePort()};
    gateway2_ = {FreePort(), FreePort()};
  }

  static std::string Addr(int port) { return "127.0.0.1:" + std::to_string(port); }
  std::string ControllerAddrs() const {
    std::string out;
    for (const auto& [id, p] : controllers_) out += (out.empty() ? "" : ",") + Addr(p.grpc);
    return out;
  }

  void StartControllers() {
    std::string peers;
    for (const auto& [id, p] : controllers_) {
      peers += (peers.empty() ? "" : ",") + std::to_string(id) + "=" + Addr(p.grpc);
    }
    for (const auto& [id, p] : controllers_) {
      const std::string name = "controller-" + std::to_string(id);
      procs_[name] = std::make_unique<Process>(
          std::vector<std::string>{BinDir() + "/gojodb-controller", "--id", std::to_string(id),
                                   "--data-dir", dir_ + "/" + name, "--grpc-addr", Addr(p.grpc),
                                   "--http-addr", Addr(p.http), "--peers", peers,
                                   "--placement-interval-ms", "200"},
          dir_ + "/" + name + ".log");
    }
  }
  void StartStorage(int id) {
    const std::string name = "storage-" + std::to_string(id);
    const Ports p = storage_.at(id);
    procs_[name] = std::make_unique<Process>(
        std::vector<std::string>{BinDir() + "/gojodb-storage", "--id", std::to_string(id),
                                 "--data-dir", dir_ + "/" + name, "--grpc-addr", Addr(p.grpc),
                                 "--http-addr", Addr(p.http), "--controllers", ControllerAddrs(),
                                 "--heartbeat-ms", "200"},
        dir_ + "/" + name + ".log");
  }
  void StartGateway(int n = 1) {
    const Ports& p = n == 1 ? gateway_ : gateway2_;
    const std::string name = "api-" + std::to_string(n);
    procs_[name] = std::make_unique<Process>(
        std::vector<std::string>{BinDir() + "/gojodb-api", "--grpc-addr", Addr(p.grpc),
                                 "--http-addr", Addr(p.http), "--controllers", ControllerAddrs(),
                                 "--request-timeout-ms", "10000"},
        dir_ + "/" + name + ".log");
  }
  bool WaitReady(const std::string& name, int port, int timeout_ms) {
    return testing::WaitReady(port, procs_.at(name).get(), timeout_ms);
  }
  Process* proc(const std::string& name) { return procs_.at(name).get(); }
  const Ports& controller(int id) const { return controllers_.at(id); }
  const Ports& storage(int id) const { return storage_.at(id); }
  const Ports& gateway() const { return gateway_; }
  const Ports& gateway2() const { return gateway2_; }

  // The storage node that leads the (first) shard by its own account, or 0.
  int ShardLeader() {
    for (const auto& [id, p] : storage_) {
      if (!procs_.count("storage-" + std::to_string(id)) ||
          !procs_["storage-" + std::to_string(id)]->Running()) {
        continue;
      }
      httplib::Client c("127.0.0.1", p.http);
      c.set_connection_timeout(0, 300000);
      c.set_read_timeout(1, 0);
      auto r = c.Get("/v1/shards");
      if (!r || r->status != 200) continue;
      auto j = json::parse(r->body, nullptr, false);
      if (j.is_discarded() || j["shards"].empty()) continue;
      if (j["shards"][0].value("leader", 0) == id) return id;
    }
    return 0;
  }

  std::string Logs() {
    std::string out;
    for (auto& [name, p] : procs_) {
      std::string log = p->Log();
      if (log.size() > 3000) log = log.substr(log.size() - 3000);
      out += "--- " + name + "\n" + log;
    }
    return out;
  }

 private:
  std::string dir_;
  std::map<int, Ports> controllers_, storage_;
  Ports gateway_, gateway2_;
  std::map<std::string, std::unique_ptr<Process>> procs_;
};

class ClusterKvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("cluster-kv");
    cluster_ = std::make_unique<Cluster>(dir_);
    cluster_->StartControllers();
    for (int id = 1; id <= 3; ++id) {
      ASSERT_TRUE(cluster_->WaitReady("controller-" + std::to_string(id),
                                      cluster_->controller(id).http, 30000))
          << cluster_->Logs();
    }
    for (int id = 1; id <= 3; ++id) cluster_->StartStorage(id);
    cluster_->StartGateway();
    // Ready once the controller answered with a map that has a shard.
    ASSERT_TRUE(cluster_->WaitReady("api-1", cluster_->gateway().http, 60000)) << cluster_->Logs();
    http_ = std::make_unique<httplib::Client>("127.0.0.1", cluster_->gateway().http);
    http_->set_read_timeout(30, 0);
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "%s\n", cluster_->Logs().c_str());
    http_.reset();
    cluster_.reset();
    std::filesystem::remove_all(dir_);
  }

  // PUT that retries while the shard's replicas are still starting (503).
  httplib::Result PutUntilServed(const std::string& path, const std::string& body) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (;;) {
      auto r = http_->Put(path, body, "application/octet-stream");
      if ((r && r->status != 503 && r->status != 504) ||
          std::chrono::steady_clock::now() > deadline) {
        return r;
      }
      std::this_thread::sleep_for(200ms);
    }
  }

  // Sets the split size small and writes keys k0000, k0001, ... (512-byte values, with
  // request ids) until the gateway's map has `shards` shards and at least `min_writes`
  // were written; then sets it large again. Returns key -> value acknowledged, and the
  // last write's version in *last.
  std::map<std::string, std::string> WriteUntilSplit(uint64_t shards, int min_writes,
                                                     uint64_t* last) {
    std::map<std::string, std::string> acked;
    auto first = PutUntilServed("/v1/collections/default/keys/k0000", "first");
    EXPECT_TRUE(first && first->status == 200);
    SetSetting("shard_split_bytes=32768");
    const std::string pad(512, 'x');
    const auto deadline = std::chrono::steady_clock::now() + 90s;
    for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
      char key[16];
      std::snprintf(key, sizeof(key), "k%04d", i % 10000);
      const std::string value = std::to_string(i) + pad;
      auto r = http_->Put(std::string("/v1/collections/default/keys/") + key +
                              "?request_id=split-" + std::to_string(i),
                          value, "application/octet-stream");
      if (!r || r->status != 200) {
        ADD_FAILURE() << key << ": " << (r ? r->body : "no answer");
        break;
      }
      acked[key] = value;
      *last = json::parse(r->body)["version"].get<uint64_t>();
      if (i + 1 >= min_writes && i % 50 == 0 && GatewayShards() >= shards) break;
    }
    EXPECT_GE(GatewayShards(), shards) << "the shard did not split";
    SetSetting("shard_split_bytes=1073741824");  // no more splits
    return acked;
  }
  uint64_t GatewayShards() {
    auto m = http_->Get("/metrics");
    if (!m || m->status != 200) return 0;
    const std::string name = "\ngojodb_gateway_shards ";
    const size_t at = m->body.find(name);
    return at == std::string::npos ? 0 : std::stoull(m->body.substr(at + name.size()));
  }

  std::string dir_;
  // The C++ client in routed mode (straight to the storage nodes), once it is ready.
  // `gojodb settings set NAME=VALUE` against the controllers; false (and a failure) if
  // it was refused.
  bool SetSetting(const std::string& name_value) {
    auto set =
        RunCommand({BinDir() + "/gojodb", "--addr", Cluster::Addr(cluster_->controller(1).grpc),
                    "settings", "set", name_value});
    EXPECT_EQ(set.status, 0) << set.out << set.err;
    return set.status == 0;
  }
  // POSTs `body` as JSON; the status (0: no answer) and the parsed answer.
  static std::pair<int, json> PostJson(httplib::Client& c, const std::string& path,
                                       const json& body) {
    auto r = c.Post(path, body.dump(), "application/json");
    EXPECT_TRUE(r) << path;
    return std::make_pair(r ? r->status : 0, r ? json::parse(r->body, nullptr, false) : json());
  }

  // SIGKILLs storage node `id` and opens its RocksDB, to look at what it holds on disk;
  // null (and a failure) if it cannot be opened.
  std::unique_ptr<storage::Engine> KilledNodeEngine(int id) {
    Process* p = cluster_->proc("storage-" + std::to_string(id));
    p->Signal(SIGKILL);
    p->Wait();
    storage::EngineOptions eo;
    eo.path = dir_ + "/storage-" + std::to_string(id) + "/db";
    auto engine = storage::OpenEngine(eo);
    if (!engine.ok()) {
      ADD_FAILURE() << "node " << id << ": " << engine.status().ToString();
      return nullptr;
    }
    return std::move(engine).value();
  }
  // The keys of `cf` under the default tenant's `collection`; with `rows`, the distinct
  // rows among them (a version's key is its row's key and an 8-byte timestamp).
  static int CountKeys(storage::Engine& engine, storage::ColumnFamily cf, uint32_t collection,
                       bool rows = false) {
    const std::string prefix = mvcc::CollectionPrefix(controller::kDefaultTenantId, collection);
    const std::string hi = mvcc::PrefixSuccessor(prefix);
    storage::ReadOptions ro;
    ro.lower_bound = prefix;
    ro.upper_bound = hi;
    auto it = engine.NewIterator(ro, cf);
    int n = 0;
    std::string last;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string_view key = it->key();
      const std::string_view row = rows ? key.substr(0, key.size() - 8) : key;
      if (rows && row == last) continue;
      ++n;
      last.assign(row);
    }
    return n;
  }

  std::unique_ptr<client::Client> RoutedClient(int txn_lock_ttl_ms = 3000) {
    std::vector<std::string> controllers;
    for (int id = 1; id <= 3; ++id) {
      controllers.push_back(Cluster::Addr(cluster_->controller(id).grpc));
    }
    auto connected = client::Client::Connect(
        {.controllers = controllers, .timeout_ms = 15000, .txn_lock_ttl_ms = txn_lock_ttl_ms});
    if (!connected.ok()) {
      ADD_FAILURE() << connected.status().ToString();
      return nullptr;
    }
    std::unique_ptr<client::Client> c = std::move(*connected);
    const auto ready_by = std::chrono::steady_clock::now() + 30s;
    while (!c->Ready().ok() && std::chrono::steady_clock::now() < ready_by) {
      std::this_thread::sleep_for(100ms);
    }
    return c;
  }

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<httplib::Client> http_;
};

TEST_F(ClusterKvTest, ServesTheKvApi) {
  // --- Puts, gets, deletes ---
  auto put = PutUntilServed("/v1/collections/default/keys/alpha", "one");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 200) << put->body;
  const uint64_t v1 = json::parse(put->body)["version"].get<uint64_t>();
  EXPECT_GT(v1, 0u);

  auto get = http_->Get("/v1/collections/default/keys/alpha");
  ASSERT_TRUE(get);
  ASSERT_EQ(get->status, 200) << get->body;
  EXPECT_EQ(get->body, "one");
  EXPECT_EQ(get->get_header_value("X-GojoDB-Version"), std::to_string(v1));
  for (const char* c : {"stale", "linearizable"}) {
    auto g = http_->Get(std::string("/v1/collections/default/keys/alpha?consistency=") + c);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->status, 200) << c << " " << g->body;
  }
  auto snap = http_->Get("/v1/collections/default/keys/alpha?consistency=snapshot&at=" +
                         std::to_string(v1 - 1));
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->status, 404) << snap->body;  // before the put

  // Conditional put: 409 naming the current version.
  auto cond = http_->Put("/v1/collections/default/keys/alpha?if_version=0", "two",
                         "application/octet-stream");
  ASSERT_TRUE(cond);
  EXPECT_EQ(cond->status, 409) << cond->body;
  EXPECT_EQ(json::parse(cond->body)["error"].value("current_version", uint64_t{0}), v1);
  auto ok_cond = http_->Put("/v1/collections/default/keys/alpha?if_version=" + std::to_string(v1),
                            "two", "application/octet-stream");
  ASSERT_TRUE(ok_cond);
  EXPECT_EQ(ok_cond->status, 200) << ok_cond->body;

  // A retry with the same request id answers the first version and applies once.
  auto r1 = http_->Put("/v1/collections/default/keys/rid?request_id=req-1", "x",
                       "application/octet-stream");
  ASSERT_TRUE(r1);
  ASSERT_EQ(r1->status, 200) << r1->body;
  auto r2 = http_->Put("/v1/collections/default/keys/rid?request_id=req-1", "x",
                       "application/octet-stream");
  ASSERT_TRUE(r2);
  ASSERT_EQ(r2->status, 200) << r2->body;
  EXPECT_EQ(json::parse(r1->body)["version"], json::parse(r2->body)["version"]);
  // The same id for a different request is refused.
  auto r3 = http_->Put("/v1/collections/default/keys/rid?request_id=req-1", "y",
                       "application/octet-stream");
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->status, 400) << r3->body;

  auto del = http_->Delete("/v1/collections/default/keys/rid");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200) << del->body;
  auto gone = http_->Get("/v1/collections/default/keys/rid");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404) << gone->body;

  // --- Collections ---
  auto created = http_->Post("/v1/collections", R"({"name":"users"})", "application/json");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  auto again = http_->Post("/v1/collections", R"({"name":"users"})", "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409) << again->body;
  auto list = http_->Get("/v1/collections");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200) << list->body;
  EXPECT_NE(list->body.find("\"users\""), std::string::npos) << list->body;
  EXPECT_NE(list->body.find("\"default\""), std::string::npos) << list->body;
  auto missing = http_->Put("/v1/collections/nope/keys/k", "v", "application/octet-stream");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404) << missing->body;

  // --- Scans, at one snapshot (the last put's version) ---
  uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    auto p = http_->Put("/v1/collections/users/keys/u" + std::to_string(i),
                        R"({"n":)" + std::to_string(i) + "}", "application/json");
    ASSERT_TRUE(p);
    ASSERT_EQ(p->status, 200) << p->body;
    last = json::parse(p->body)["version"].get<uint64_t>();
  }
  const std::string at_last = "at=" + std::to_string(last);
  auto scan = http_->Get("/v1/collections/users/keys?" + at_last);
  ASSERT_TRUE(scan);
  ASSERT_EQ(scan->status, 200) << scan->body;
  auto sj = json::parse(scan->body);
  ASSERT_EQ(sj["items"].size(), 5u) << scan->body;
  EXPECT_EQ(sj["items"][0]["key"], "u0");
  EXPECT_EQ(sj["items"][4]["value"]["n"], 4);
  EXPECT_TRUE(sj["next"].is_null());
  EXPECT_EQ(sj["read_ts"].get<uint64_t>(), last);

  auto page = http_->Get("/v1/collections/users/keys?limit=2&" + at_last);
  ASSERT_TRUE(page);
  auto pj = json::parse(page->body);
  ASSERT_EQ(pj["items"].size(), 2u) << page->body;
  EXPECT_EQ(pj["next"], "u2") << page->body;
  auto rest = http_->Get("/v1/collections/users/keys?start=u2&limit=3&" + at_last);
  ASSERT_TRUE(rest);
  auto tj = json::parse(rest->body);
  ASSERT_EQ(tj["items"].size(), 3u) << rest->body;
  EXPECT_TRUE(tj["next"].is_null()) << rest->body;
  auto rev = http_->Get("/v1/collections/users/keys?reverse=true&limit=2&" + at_last);
  ASSERT_TRUE(rev);
  auto rj = json::parse(rev->body);
  ASSERT_EQ(rj["items"].size(), 2u) << rev->body;
  EXPECT_EQ(rj["items"][0]["key"], "u4");
  EXPECT_EQ(rj["next"], "u3") << rev->body;
  auto before = http_->Get("/v1/collections/users/keys?at=" + std::to_string(v1));
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 200) << before->body;
  EXPECT_EQ(json::parse(before->body)["items"].size(), 0u) << before->body;
  auto stale = http_->Get("/v1/collections/users/keys?consistency=stale");
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 200) << stale->body;

  // --- A batch within the one shard ---
  auto batch = http_->Post("/v1/batch",
                           R"({"ops":[{"op":"put","collection":"users","key":"b1","value":"x"},)"
                           R"({"op":"delete","collection":"users","key":"u0"}]})",
                           "application/json");
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->status, 200) << batch->body;
}

// A linearizable scan reads at a fresh timestamp from the controller: it sees every
// write acknowledged before it began.
TEST_F(ClusterKvTest, LinearizableScanSeesEveryAcknowledgedWrite) {
  uint64_t last = 0;
  for (int i = 0; i < 3; ++i) {
    auto p = PutUntilServed("/v1/collections/default/keys/s" + std::to_string(i), "v");
    ASSERT_TRUE(p);
    ASSERT_EQ(p->status, 200) << p->body;
    last = json::parse(p->body)["version"].get<uint64_t>();
  }
  auto scan = http_->Get("/v1/collections/default/keys?prefix=s");
  ASSERT_TRUE(scan);
  // The read timestamp is newer than the storage node's cached batch of timestamps: the
  // node checks it against a fresh one instead of refusing it as "in the future".
  ASSERT_EQ(scan->status, 200) << scan->body;
  auto sj = json::parse(scan->body);
  EXPECT_EQ(sj["items"].size(), 3u) << scan->body;
  EXPECT_GT(sj["read_ts"].get<uint64_t>(), last);
}

TEST_F(ClusterKvTest, KeepsServingWhenTheShardLeaderDies) {
  auto first = PutUntilServed("/v1/collections/default/keys/alpha", "two");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;

  // --- The shard leader dies while a client writes ---
  std::mutex mu;
  std::map<std::string, std::string> acked;  // key -> value the gateway acknowledged
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    httplib::Client c("127.0.0.1", cluster_->gateway().http);
    c.set_read_timeout(30, 0);
    for (int i = 0; !stop; ++i) {
      const std::string key = "w" + std::to_string(i);
      const std::string value = "value-" + std::to_string(i);
      // With a request id, the gateway may resend a write whose outcome it does not know.
      auto r = c.Put("/v1/collections/default/keys/" + key + "?request_id=w-" + std::to_string(i),
                     value, "application/octet-stream");
      if (r && r->status == 200) {
        std::lock_guard lock(mu);
        acked[key] = value;
      } else {
        ++failures;
      }
    }
  });
  std::this_thread::sleep_for(500ms);
  int leader = 0;
  for (int i = 0; i < 100 && leader == 0; ++i) {
    leader = cluster_->ShardLeader();
    if (leader == 0) std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(leader, 0) << "no storage node leads the shard";
  size_t before_kill = 0;
  {
    std::lock_guard lock(mu);
    before_kill = acked.size();
  }
  cluster_->proc("storage-" + std::to_string(leader))->Signal(SIGKILL);
  cluster_->proc("storage-" + std::to_string(leader))->Wait();
  const auto killed_at = std::chrono::steady_clock::now();

  // Writes through the gateway go on: the writer gets new acknowledgements.
  size_t after_kill = before_kill;
  while (std::chrono::steady_clock::now() - killed_at < 20s) {
    {
      std::lock_guard lock(mu);
      after_kill = acked.size();
    }
    if (after_kill >= before_kill + 20) break;
    std::this_thread::sleep_for(100ms);
  }
  stop = true;
  writer.join();
  EXPECT_GE(after_kill, before_kill + 20) << "writes did not resume after the leader died";
  EXPECT_EQ(failures.load(), 0) << "writes with request ids failed across the leader change";

  // A new write and a read after the failover, each within the request deadline.
  const auto t0 = std::chrono::steady_clock::now();
  auto post = http_->Put("/v1/collections/default/keys/after", "kill", "application/octet-stream");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 200) << post->body;
  auto read = http_->Get("/v1/collections/default/keys/alpha");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200) << read->body;
  EXPECT_EQ(read->body, "two");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);

  // Every acknowledged write is there.
  std::map<std::string, std::string> snapshot;
  {
    std::lock_guard lock(mu);
    snapshot = acked;
  }
  for (const auto& [key, value] : snapshot) {
    auto r = http_->Get("/v1/collections/default/keys/" + key);
    ASSERT_TRUE(r) << key;
    ASSERT_EQ(r->status, 200) << key << ": " << r->body;
    EXPECT_EQ(r->body, value) << key;
  }
  // And a scan at one timestamp (the last write's) sees them all.
  const uint64_t after_version = json::parse(post->body)["version"].get<uint64_t>();
  auto all = http_->Get("/v1/collections/default/keys?prefix=w&limit=10000&at=" +
                        std::to_string(after_version));
  ASSERT_TRUE(all);
  ASSERT_EQ(all->status, 200) << all->body;
  size_t seen = 0;
  const json items = json::parse(all->body)["items"];
  for (const auto& item : items) {
    seen += snapshot.count(item["key"].get<std::string>());
  }
  EXPECT_EQ(seen, snapshot.size());
}

// Shards split under the gateway (a small shard_split_bytes): writes go on, scans stitch
// the new shards in order at one timestamp, and every acknowledged write is readable.
TEST_F(ClusterKvTest, WritesAndScansGoOnAcrossSplits) {
  uint64_t last = 0;
  const auto acked = WriteUntilSplit(3, 400, &last);
  if (HasFailure()) return;

  // Paged forward and reverse scans at one snapshot see every key once, in order.
  for (bool reverse : {false, true}) {
    std::vector<std::string> keys;
    std::string cursor;
    for (int page = 0; page < 1000; ++page) {
      std::string q = "/v1/collections/default/keys?limit=37&at=" + std::to_string(last) +
                      (reverse ? "&reverse=true" : "");
      if (!cursor.empty()) q += (reverse ? "&end=" : "&start=") + cursor;
      auto r = http_->Get(q);
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
      const json j = json::parse(r->body);
      for (const auto& item : j["items"]) keys.push_back(item["key"].get<std::string>());
      if (j["next"].is_null()) break;
      cursor = j["next"].get<std::string>();
    }
    std::vector<std::string> want;
    for (const auto& [k, v] : acked) want.push_back(k);
    if (reverse) std::reverse(want.begin(), want.end());
    EXPECT_EQ(keys, want) << (reverse ? "reverse" : "forward");
  }
  for (const auto& [key, value] : acked) {
    auto r = http_->Get("/v1/collections/default/keys/" + key);
    ASSERT_TRUE(r) << key;
    ASSERT_EQ(r->status, 200) << key << ": " << r->body;
    EXPECT_EQ(r->body, value) << key;
  }
}

// A batch whose rows fall in two shards is a Percolator transaction: both rows change at
// one commit timestamp or neither does. A coordinator (here the client library, routed)
// that stops after locking some rows, after locking all, or after its commit point leaves
// locks behind; the gateway's reads and writes resolve them and every reader sees the
// transaction whole or not at all. Concurrent transfers between the two rows keep every
// snapshot's total exact.
TEST_F(ClusterKvTest, BatchesAcrossShardsAreTransactions) {
  uint64_t last = 0;
  const auto acked = WriteUntilSplit(2, 60, &last);
  if (HasFailure()) return;
  const std::string a = acked.begin()->first, z = acked.rbegin()->first;
  const std::string path_a = "/v1/collections/default/keys/" + a;
  const std::string path_z = "/v1/collections/default/keys/" + z;
  auto get = [&](const std::string& path) -> std::pair<std::string, uint64_t> {
    auto r = http_->Get(path);
    if (!r || r->status != 200) {
      ADD_FAILURE() << path << ": " << (r ? r->body : "no answer");
      return {"", 0};
    }
    return {r->body, std::stoull(r->get_header_value("X-GojoDB-Version").empty()
                                     ? "0"
                                     : r->get_header_value("X-GojoDB-Version"))};
  };
  auto batch = [&](const json& ops) {
    return http_->Post("/v1/batch", json{{"ops", ops}}.dump(), "application/json");
  };
  auto put = [&](const std::string& key, const std::string& value) {
    return json{{"op", "put"}, {"key", key}, {"value", value}};
  };

  // Atomic: both rows at one version.
  auto both = batch({put(a, "A1"), put(z, "Z1")});
  ASSERT_TRUE(both);
  ASSERT_EQ(both->status, 200) << both->body;
  const uint64_t v1 = json::parse(both->body)["version"].get<uint64_t>();
  EXPECT_EQ(get(path_a).first, "A1");
  EXPECT_EQ(get(path_z).first, "Z1");
  auto scan = http_->Get("/v1/collections/default/keys?limit=10000");
  ASSERT_TRUE(scan && scan->status == 200);
  int seen_at_v1 = 0;
  const json scanned = json::parse(scan->body);
  for (const auto& item : scanned["items"]) {
    if (item["version"].get<uint64_t>() == v1) ++seen_at_v1;
  }
  EXPECT_EQ(seen_at_v1, 2);
  // A failed condition on either row: nothing applies.
  json cond = put(z, "Z2");
  cond["if_version"] = v1 - 1;
  auto refused = batch({put(a, "A2"), cond});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 409) << refused->body;
  EXPECT_EQ(get(path_a).first, "A1");
  EXPECT_EQ(get(path_z).first, "Z1");
  // Request ids make retries apply once; a transaction cannot promise that yet.
  auto with_id = http_->Post(
      "/v1/batch", json{{"ops", {put(a, "A2"), put(z, "Z2")}}, {"request_id", "t-1"}}.dump(),
      "application/json");
  ASSERT_TRUE(with_id);
  EXPECT_EQ(with_id->status, 400) << with_id->body;

  // The coordinator stops: after locking one shard's rows, after locking both, after
  // the commit point.
  std::unique_ptr<client::Client> c = RoutedClient(500);
  ASSERT_TRUE(c);
  struct Stop {
    const char* point;
    uint64_t after_rows;  // before_prewrite: stop once this many rows are locked
    bool committed;
  };
  int round = 0;
  for (const Stop& stop : {Stop{"cluster_txn.before_prewrite", 1, false},
                           Stop{"cluster_txn.before_primary_commit", 0, false},
                           Stop{"cluster_txn.before_secondaries", 0, true}}) {
    SCOPED_TRACE(stop.point);
    const auto before_a = get(path_a), before_z = get(path_z);
    const std::string va = "A-stop" + std::to_string(round), vz = "Z-stop" + std::to_string(round);
    ++round;
    {
      failpoint::ScopedError fp(stop.point, [&](uint64_t arg) {
        if (std::string_view(stop.point) == "cluster_txn.before_prewrite" &&
            arg < stop.after_rows) {
          return Status::OK();
        }
        return Status::Unavailable("the coordinator stopped");
      });
      kv::BatchRequest b;
      b.ops.push_back({kv::BatchOp::Kind::kPut, "default", a, va, std::nullopt});
      b.ops.push_back({kv::BatchOp::Kind::kPut, "default", z, vz, std::nullopt});
      auto r = c->Batch(b);
      EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
    }
    // The gateway is another coordinator: what it reads is the whole transaction or none
    // of it, at once for a live lock (the reader skips a transaction not committed) or
    // after the locks expire.
    const auto after_a = get(path_a), after_z = get(path_z);
    if (stop.committed) {
      EXPECT_EQ(after_a.first, va);
      EXPECT_EQ(after_z.first, vz);
      EXPECT_EQ(after_a.second, after_z.second);
    } else {
      EXPECT_EQ(after_a, before_a);
      EXPECT_EQ(after_z, before_z);
    }
    // Writes to both rows go through once the locks are resolved: a transaction meets
    // a lock of the stopped one, alive until its TTL runs out, and is refused (409,
    // retryable) until then.
    auto next = batch({put(a, "A-after"), put(z, "Z-after")});
    for (int i = 0; i < 50 && next && next->status == 409; ++i) {
      std::this_thread::sleep_for(100ms);
      next = batch({put(a, "A-after"), put(z, "Z-after")});
    }
    ASSERT_TRUE(next);
    EXPECT_EQ(next->status, 200) << next->body;
    EXPECT_EQ(get(path_a).first, "A-after");
    EXPECT_EQ(get(path_z).first, "Z-after");
  }

  // An interactive transaction older than the lock TTL still commits, even when a
  // reader meets its locks between prewrite and commit: a lock lives from the commit
  // that takes it, not from the transaction's start.
  {
    auto t = c->BeginTxn();
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    std::this_thread::sleep_for(800ms);  // older than the client's 500 ms TTL
    ASSERT_TRUE(
        c->TxnWrite(t->id, {kv::BatchOp::Kind::kPut, "default", a, "old-a", std::nullopt}).ok());
    ASSERT_TRUE(
        c->TxnWrite(t->id, {kv::BatchOp::Kind::kPut, "default", z, "old-z", std::nullopt}).ok());
    std::string seen_z;
    {
      failpoint::Scoped fp("cluster_txn.before_primary_commit",
                           [&](uint64_t) { seen_z = get(path_z).first; });
      auto committed = c->CommitTxn(t->id);
      ASSERT_TRUE(committed.ok()) << committed.status().ToString();
    }
    EXPECT_EQ(seen_z, "Z-after");  // the reader skipped the live lock
    EXPECT_EQ(get(path_a).first, "old-a");
    EXPECT_EQ(get(path_z).first, "old-z");
  }

  // Transfers: 3 threads move units between the two rows with conditional cross-shard
  // batches; linearizable scans meanwhile always see the total.
  ASSERT_EQ(batch({put(a, "500"), put(z, "500")})->status, 200);
  std::atomic<bool> done{false};
  std::atomic<int> committed{0}, conflicts{0}, bad_totals{0}, scans{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client h("127.0.0.1", cluster_->gateway().http);
      h.set_read_timeout(30, 0);
      std::mt19937 rng(t);
      for (int i = 0; i < 25; ++i) {
        auto ra = h.Get(path_a), rz = h.Get(path_z);
        if (!ra || !rz || ra->status != 200 || rz->status != 200) continue;
        const int ba = std::stoi(ra->body), bz = std::stoi(rz->body);
        const int amount = static_cast<int>(rng() % 20) - 10;
        json pa = {{"op", "put"},
                   {"key", a},
                   {"value", std::to_string(ba - amount)},
                   {"if_version", std::stoull(ra->get_header_value("X-GojoDB-Version"))}};
        json pz = {{"op", "put"},
                   {"key", z},
                   {"value", std::to_string(bz + amount)},
                   {"if_version", std::stoull(rz->get_header_value("X-GojoDB-Version"))}};
        auto r = h.Post("/v1/batch", json{{"ops", {pa, pz}}}.dump(), "application/json");
        if (r && r->status == 200) ++committed;
        if (r && r->status == 409) ++conflicts;
      }
    });
  }
  threads.emplace_back([&] {
    httplib::Client h("127.0.0.1", cluster_->gateway().http);
    h.set_read_timeout(30, 0);
    while (!done) {
      auto r = h.Get("/v1/collections/default/keys?limit=10000");
      if (!r || r->status != 200) continue;
      int total = 0;
      const json page = json::parse(r->body);
      for (const auto& item : page["items"]) {
        const auto key = item["key"].get<std::string>();
        // A value that is JSON (here a number) comes back as JSON.
        if (key == a || key == z) {
          total += item["value"].is_number() ? item["value"].get<int>()
                                             : std::stoi(item["value"].get<std::string>());
        }
      }
      if (total != 1000) ++bad_totals;
      ++scans;
    }
  });
  for (size_t i = 0; i + 1 < threads.size(); ++i) threads[i].join();
  done = true;
  threads.back().join();
  EXPECT_EQ(bad_totals.load(), 0);
  EXPECT_GT(scans.load(), 0);
  EXPECT_GT(committed.load(), 0);
  EXPECT_EQ(std::stoi(get(path_a).first) + std::stoi(get(path_z).first), 1000)
      << committed << " committed, " << conflicts << " refused";
}

// The transaction API over HTTP, on two shards: one-shot transactions with reads,
// conditions and ops; interactive ones that read their own writes, see one snapshot,
// conflict with a write made after they began, and allow write skew (snapshot
// isolation checks write-write conflicts only).
TEST_F(ClusterKvTest, TransactionsOverHttp) {
  uint64_t last = 0;
  const auto acked = WriteUntilSplit(2, 60, &last);
  if (HasFailure()) return;
  const std::string a = acked.begin()->first, z = acked.rbegin()->first;
  auto post = [&](const std::string& path, const json& body) {
    return PostJson(*http_, path, body);
  };
  auto value_of = [&](const std::string& key) {
    auto r = http_->Get("/v1/collections/default/keys/" + key);
    return r && r->status == 200 ? r->body : std::string("<absent>");
  };

  // --- One-shot ---
  auto [code, out] = post("/v1/txn", {{"reads", {{{"key", a}}}},
                                      {"ops",
                                       {{{"op", "put"}, {"key", a}, {"value", "T1"}},
                                        {{"op", "put"}, {"key", z}, {"value", "T1"}}}},
                                      {"conditions", {{{"key", z}, {"exists", true}}}}});
  ASSERT_EQ(code, 200) << out.dump();
  EXPECT_EQ(out["reads"][0]["value"], acked.at(a));  // as of the snapshot, before the ops
  const uint64_t t1 = out["commit_ts"].get<uint64_t>();
  EXPECT_GT(t1, out["start_ts"].get<uint64_t>());
  EXPECT_EQ(value_of(a), "T1");
  EXPECT_EQ(value_of(z), "T1");
  std::tie(code, out) = post("/v1/txn", {{"ops", {{{"op", "put"}, {"key", a}, {"value", "T2"}}}},
                                         {"conditions", {{{"key", z}, {"version", t1 - 1}}}}});
  EXPECT_EQ(code, 409) << out.dump();
  EXPECT_EQ(out["error"]["code"], "FAILED_PRECONDITION");
  EXPECT_EQ(out["error"]["condition"], 0);
  EXPECT_EQ(out["error"]["current_version"], t1);
  EXPECT_EQ(value_of(a), "T1");
  std::tie(code, out) =
      post("/v1/txn", {{"reads", {{{"key", a}}, {{"key", z}}, {{"key", "nope"}}}}});
  ASSERT_EQ(code, 200) << out.dump();
  EXPECT_TRUE(out["commit_ts"].is_null());
  EXPECT_EQ(out["reads"][1]["version"], t1);
  EXPECT_EQ(out["reads"][2]["found"], false);
  std::tie(code, out) = post("/v1/txn", json::object());
  EXPECT_EQ(code, 400) << out.dump();

  // --- Interactive: its own writes, one snapshot, commit across shards ---
  std::tie(code, out) = post("/v1/txn/begin", json::object());
  ASSERT_EQ(code, 200) << out.dump();
  const std::string t = out["txn"].get<std::string>();
  const std::string base = "/v1/txn/" + t;
  std::tie(code, out) = post(base + "/get", {{"key", a}});
  EXPECT_EQ(code, 200);
  EXPECT_EQ(out["value"], "T1");
  EXPECT_EQ(post(base + "/put", {{"key", a}, {"value", "I1"}}).first, 200);
  EXPECT_EQ(post(base + "/delete", {{"key", z}}).first, 200);
  std::tie(code, out) = post(base + "/get", {{"key", a}});
  EXPECT_EQ(out["value"], "I1");
  EXPECT_EQ(out["version"], 0);  // not committed yet
  EXPECT_EQ(post(base + "/get", {{"key", z}}).first, 404);
  std::tie(code, out) = post(base + "/scan", {{"limit", 10000}});
  ASSERT_EQ(code, 200) << out.dump();
  std::map<std::string, std::string> seen;
  for (const auto& item : out["items"]) {
    seen[item["key"].get<std::string>()] =
        item["value"].is_string() ? item["value"].get<std::string>() : item["value"].dump();
  }
  EXPECT_EQ(seen.at(a), "I1");
  EXPECT_EQ(seen.count(z), 0u);
  EXPECT_EQ(seen.size(), acked.size() - 1);
  // Nothing is visible outside before commit.
  EXPECT_EQ(value_of(a), "T1");
  std::tie(code, out) = post(base + "/commit", json::object());
  ASSERT_EQ(code, 200) << out.dump();
  const uint64_t t2 = out["commit_ts"].get<uint64_t>();
  EXPECT_GT(t2, t1);
  EXPECT_EQ(value_of(a), "I1");
  EXPECT_EQ(value_of(z), "<absent>");
  // Finished: the id is no longer open.
  EXPECT_EQ(post(base + "/commit", json::object()).first, 404);
  EXPECT_EQ(post(base + "/get", {{"key", a}}).first, 404);
  EXPECT_EQ(post("/v1/txn/not-a-txn/rollback", json::object()).first, 404);

  // --- A write after the snapshot: the transaction reads around it, then conflicts ---
  std::tie(code, out) = post("/v1/txn/begin", json::object());
  const std::string late = "/v1/txn/" + out["txn"].get<std::string>();
  ASSERT_EQ(http_->Put("/v1/collections/default/keys/" + a, "outside", "text/plain")->status, 200);
  std::tie(code, out) = post(late + "/get", {{"key", a}});
  EXPECT_EQ(out["value"], "I1");  // its snapshot, not the newer value
  EXPECT_EQ(post(late + "/put", {{"key", a}, {"value", "mine"}}).first, 200);
  std::tie(code, out) = post(late + "/commit", json::object());
  EXPECT_EQ(code, 409) << out.dump();
  EXPECT_EQ(out["error"]["code"], "ABORTED");
  EXPECT_EQ(value_of(a), "outside");
  // Rolled back: nothing applies.
  std::tie(code, out) = post("/v1/txn/begin", json::object());
  const std::string rb = "/v1/txn/" + out["txn"].get<std::string>();
  EXPECT_EQ(post(rb + "/put", {{"key", z}, {"value", "never"}}).first, 200);
  EXPECT_EQ(post(rb + "/rollback", json::object()).first, 200);
  EXPECT_EQ(value_of(z), "<absent>");

  // --- Write skew is allowed: two transactions each read both rows and write one ---
  // (the on-call rule "at least one of a and z is on" is broken although each
  // transaction kept it in its own snapshot). Write a guard row in both to forbid it.
  ASSERT_EQ(post("/v1/txn", {{"ops",
                              {{{"op", "put"}, {"key", a}, {"value", "on"}},
                               {{"op", "put"}, {"key", z}, {"value", "on"}}}}})
                .first,
            200);
  std::string ids[2];
  for (auto& id : ids) {
    std::tie(code, out) = post("/v1/txn/begin", json::object());
    id = "/v1/txn/" + out["txn"].get<std::string>();
    EXPECT_EQ(post(id + "/get", {{"key", a}}).second["value"], "on");
    EXPECT_EQ(post(id + "/get", {{"key", z}}).second["value"], "on");
  }
  EXPECT_EQ(post(ids[0] + "/put", {{"key", a}, {"value", "off"}}).first, 200);
  EXPECT_EQ(post(ids[1] + "/put", {{"key", z}, {"value", "off"}}).first, 200);
  EXPECT_EQ(post(ids[0] + "/commit", json::object()).first, 200);
  EXPECT_EQ(post(ids[1] + "/commit", json::object()).first, 200);
  EXPECT_EQ(value_of(a), "off");
  EXPECT_EQ(value_of(z), "off");

  // --- No lost updates, no dirty or partial reads ---
  // Two counters on two shards, each transaction incrementing both: conflicts abort
  // (and are retried by the client with a new transaction); every read inside a
  // transaction sees the counters equal; at the end both equal the commits counted.
  ASSERT_EQ(post("/v1/txn", {{"ops",
                              {{{"op", "put"}, {"key", a}, {"value", "0"}},
                               {{"op", "put"}, {"key", z}, {"value", "0"}}}}})
                .first,
            200);
  std::atomic<int> commits{0}, aborts{0}, torn{0}, failures{0};
  std::vector<std::thread> incrementers;
  for (int t = 0; t < 4; ++t) {
    incrementers.emplace_back([&] {
      httplib::Client h("127.0.0.1", cluster_->gateway().http);
      h.set_read_timeout(30, 0);
      auto call = [&](const std::string& path, const json& body) {
        auto r = h.Post(path, body.dump(), "application/json");
        return std::make_pair(r ? r->status : 0, r ? json::parse(r->body, nullptr, false) : json());
      };
      for (int done = 0; done < 10;) {
        auto [c0, begun] = call("/v1/txn/begin", json::object());
        if (c0 != 200) {
          ++failures;
          return;
        }
        const std::string id = "/v1/txn/" + begun["txn"].get<std::string>();
        auto [c1, va] = call(id + "/get", {{"key", a}});
        auto [c2, vz] = call(id + "/get", {{"key", z}});
        if (c1 != 200 || c2 != 200) {
          ++failures;
          return;
        }
        const int x = va["value"].get<int>(), y = vz["value"].get<int>();
        if (x != y) ++torn;
        call(id + "/put", {{"key", a}, {"value", std::to_string(x + 1)}});
        call(id + "/put", {{"key", z}, {"value", std::to_string(y + 1)}});
        auto [c3, committed_at] = call(id + "/commit", json::object());
        if (c3 == 200) {
          ++commits;
          ++done;
        } else if (c3 == 409) {
          ++aborts;
        } else {
          ++failures;
          return;
        }
      }
    });
  }
  for (auto& th : incrementers) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(commits.load(), 40);
  EXPECT_EQ(value_of(a), std::to_string(commits.load())) << aborts << " aborted";
  EXPECT_EQ(value_of(z), std::to_string(commits.load()));
}

// The client library routed by the shard map: no gateway in the path (it is killed first).
// ShardKv.Batch on a storage node itself: a malformed batch is refused as a whole; a
// malformed item, or one for a shard the node lacks, gets its own error while the others
// are answered.
// The GC (docs/architecture/transactions.md, "Garbage collection"): with a 1 s TTL the
// safe point moves on by itself, past a transaction its coordinator abandoned mid-commit
// (its locks are resolved by the storage nodes, with no reader meeting them), but not
// past an interactive transaction that is still open, which reads and commits long
// after the TTL; once it commits the safe point passes it, and a snapshot older than the
// safe point is refused with 400 OUT_OF_RANGE.
TEST_F(ClusterKvTest, GarbageCollectionWaitsForOpenTransactionsAndResolvesAbandonedOnes) {
  uint64_t last = 0;
  const auto acked = WriteUntilSplit(2, 60, &last);
  if (HasFailure()) return;
  const std::string a = acked.begin()->first, z = acked.rbegin()->first;
  const std::string m = std::next(acked.begin())->first;
  auto put = [&](const std::string& key, const std::string& value) -> uint64_t {
    auto r = http_->Put("/v1/collections/default/keys/" + key, value, "application/octet-stream");
    EXPECT_TRUE(r && r->status == 200) << key << ": " << (r ? r->body : "no answer");
    return r && r->status == 200 ? json::parse(r->body)["version"].get<uint64_t>() : 0;
  };
  auto status = [&]() -> json {
    auto r = http_->Get("/v1/cluster/status");
    return r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
  };
  auto safe_point = [&]() -> uint64_t {
    const json st = status();
    return st.contains("gc") ? st["gc"]["safe_point"].get<uint64_t>() : 0;
  };
  auto post = [&](const std::string& path, const json& body) {
    return PostJson(*http_, path, body);
  };
  const uint64_t v_old = put(a, "G0");
  ASSERT_NE(v_old, 0u);
  put(z, "G0");

  // A coordinator (the routed client) stops after locking both rows: the locks stay.
  std::unique_ptr<client::Client> c = RoutedClient(500);
  ASSERT_TRUE(c);
  {
    failpoint::ScopedError fp("cluster_txn.before_primary_commit", [](uint64_t) {
      return Status::Unavailable("the coordinator stopped");
    });
    kv::BatchRequest b;
    b.ops.push_back({kv::BatchOp::Kind::kPut, "default", a, "abandoned", std::nullopt});
    b.ops.push_back({kv::BatchOp::Kind::kPut, "default", z, "abandoned", std::nullopt});
    ASSERT_FALSE(c->Batch(b).ok());
  }
  c.reset();
  const uint64_t after_abandoned = put(m, "M0");
  ASSERT_NE(after_abandoned, 0u);

  // An interactive transaction, begun after that; then the TTL drops to 1 s.
  auto [code, out] = post("/v1/txn/begin", json::object());
  ASSERT_EQ(code, 200) << out.dump();
  const std::string base = "/v1/txn/" + out["txn"].get<std::string>();
  const uint64_t open_start = out["start_ts"].get<uint64_t>();
  ASSERT_TRUE(SetSetting("gc_ttl_seconds=1"));

  // The safe point passes the abandoned transaction: its locks were resolved by the GC
  // (nothing has read a or z since), yet stays at or below the open transaction.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (safe_point() <= after_abandoned && std::chrono::steady_clock::now() < deadline) {
    std::tie(code, out) = post(base + "/get", {{"key", m}});  // keeps the session in use
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_GT(safe_point(), after_abandoned) << status().dump();
  std::this_thread::sleep_for(2500ms);  // well past the TTL
  json st = status();
  EXPECT_LE(st["gc"]["safe_point"].get<uint64_t>(), open_start) << st.dump();
  EXPECT_LE(st["gc"]["target"].get<uint64_t>(), open_start) << st.dump();
  std::tie(code, out) = post(base + "/get", {{"key", m}});
  EXPECT_EQ(code, 200) << out.dump();
  EXPECT_EQ(out["value"], "M0");
  EXPECT_EQ(post(base + "/put", {{"key", m}, {"value", "M1"}}).first, 200);
  std::tie(code, out) = post(base + "/commit", json::object());
  ASSERT_EQ(code, 200) << out.dump();

  // The abandoned transaction never reached its commit point: rolled back.
  for (const auto& key : {a, z}) {
    auto r = http_->Get("/v1/collections/default/keys/" + key);
    ASSERT_TRUE(r && r->status == 200);
    EXPECT_EQ(r->body, "G0") << key;
  }
  // With the transaction done, the safe point passes it, and old snapshots go.
  while (safe_point() <= open_start && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_GT(safe_point(), open_start) << status().dump();
  auto old = http_->Get("/v1/collections/default/keys/" + a +
                        "?consistency=snapshot&at=" + std::to_string(v_old));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, 400) << old->body;
  EXPECT_EQ(json::parse(old->body)["error"]["code"], "OUT_OF_RANGE") << old->body;
  // A fresh timestamp (a new transaction's start): snapshots there still read.
  std::tie(code, out) = post("/v1/txn/begin", json::object());
  ASSERT_EQ(code, 200) << out.dump();
  const uint64_t now_ts = out["start_ts"].get<uint64_t>();
  EXPECT_EQ(post("/v1/txn/" + out["txn"].get<std::string>() + "/rollback", json::object()).first,
            200);
  auto fresh = http_->Get("/v1/collections/default/keys/" + m +
                          "?consistency=snapshot&at=" + std::to_string(now_ts));
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->status, 200) << fresh->body;
  EXPECT_EQ(fresh->body, "M1");
}

// A dropped collection's rows (documents, index entries, locks) are deleted from every
// storage node once the GC safe point passes the drop's schema lease; before that, a
// transaction whose primary is in the collection and whose secondary is elsewhere, left
// half-committed by a coordinator that stopped, is still resolved from its primary.
TEST_F(ClusterKvTest, DroppedCollectionsRowsAreDeletedOnceNothingCanNeedThem) {
  uint64_t last = 0;
  WriteUntilSplit(2, 60, &last);
  if (HasFailure()) return;
  ASSERT_TRUE(SetSetting("schema_lease_ms=500"));
  auto post = [&](const std::string& path, const json& body) {
    return PostJson(*http_, path, body);
  };
  auto [code, out] = post("/v1/collections", json::parse(R"({"name": "gone",
        "indexes": [{"name": "by_a", "fields": ["a"]}]})"));
  ASSERT_EQ(code, 201) << out.dump();
  const uint32_t gone_id = out["id"].get<uint32_t>();
  const uint32_t index_id = gone_id + 1;  // an index declared with it takes the next id
  for (int i = 0; i < 20; ++i) {
    auto r = http_->Put("/v1/collections/gone/keys/d" + std::to_string(i), json{{"a", i}}.dump(),
                        "application/json");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
  }
  // The coordinator commits the primary (a document of "gone", above the default
  // collection's rows in the keyspace, so in the upper shard) and stops before the
  // secondary (k0000, in the lower shard): its lock stays.
  {
    std::unique_ptr<client::Client> c = RoutedClient(500);
    ASSERT_TRUE(c);
    failpoint::ScopedError fp("cluster_txn.before_secondaries", [](uint64_t) {
      return Status::Unavailable("the coordinator stopped");
    });
    kv::BatchRequest b;
    b.ops.push_back({kv::BatchOp::Kind::kPut, "gone", "p", R"({"a": 99})", std::nullopt});
    b.ops.push_back({kv::BatchOp::Kind::kPut, "default", "k0000", "committed", std::nullopt});
    (void)c->Batch(b);  // answers the failure, or success once the primary decided
  }
  auto dropped = http_->Delete("/v1/collections/gone");
  ASSERT_TRUE(dropped && dropped->status == 200) << (dropped ? dropped->body : "no answer");
  auto status = [&]() -> json {
    auto r = http_->Get("/v1/cluster/status");
    return r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
  };
  json st = status();
  ASSERT_TRUE(st.contains("gc")) << st.dump();
  EXPECT_EQ(st["gc"]["reclaim_pending"], 2) << "the collection and its index: " << st.dump();

  ASSERT_TRUE(SetSetting("gc_ttl_seconds=1"));
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (std::chrono::steady_clock::now() < deadline) {
    st = status();
    if (st.contains("gc") && st["gc"]["reclaim_pending"] == 0) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_EQ(st["gc"]["reclaim_pending"], 0) << st.dump();
  // The secondary was resolved through its primary before the primary's rows went.
  auto k = http_->Get("/v1/collections/default/keys/k0000");
  ASSERT_TRUE(k && k->status == 200) << (k ? k->body : "no answer");
  EXPECT_EQ(k->body, "committed");
  // A collection of the same name is a new, empty one.
  std::tie(code, out) = post("/v1/collections", json{{"name", "gone"}});
  ASSERT_EQ(code, 201) << out.dump();
  EXPECT_NE(out["id"].get<uint32_t>(), gone_id);
  auto empty = http_->Get("/v1/collections/gone/keys/d1");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 404) << empty->body;

  // Every node compacted the ranges away (each holds a replica of both shards).
  for (int id = 1; id <= 3; ++id) {
    httplib::Client node("127.0.0.1", cluster_->storage(id).http);
    const std::string name = "\ngojodb_storage_dropped_ranges_compacted ";
    uint64_t compacted = 0;
    for (int i = 0; i < 100 && compacted == 0; ++i) {
      auto m = node.Get("/metrics");
      const size_t at = m && m->status == 200 ? m->body.find(name) : std::string::npos;
      if (at != std::string::npos) compacted = std::stoull(m->body.substr(at + name.size()));
      if (compacted == 0) std::this_thread::sleep_for(100ms);
    }
    EXPECT_GE(compacted, 1u) << "node " << id;
  }

  // On disk: no storage node holds a key of the dropped ids; every node holds the same
  // rows of the default collection.
  http_.reset();
  int default_rows = -1;
  for (int id = 1; id <= 3; ++id) {
    auto engine = KilledNodeEngine(id);
    ASSERT_TRUE(engine);
    for (uint32_t gone : {gone_id, index_id}) {
      EXPECT_EQ(CountKeys(*engine, mvcc::kVersionCf, gone), 0) << "node " << id << " id " << gone;
      EXPECT_EQ(CountKeys(*engine, txn::kLockCf, gone), 0) << "node " << id << " id " << gone;
    }
    // Rows, not versions: how many old versions a node's compactions have collected so
    // far differs from node to node.
    const int rows = CountKeys(*engine, mvcc::kVersionCf, 1, /*rows=*/true);
    EXPECT_GT(rows, 60) << "node " << id;
    if (default_rows >= 0) {
      EXPECT_EQ(rows, default_rows) << "node " << id;
    }
    default_rows = rows;
  }
}

// Documents with a schema and three indexes (one compound, one unique), written by three
// concurrent clients while a storage node is SIGKILLed and restarted, over shards small
// enough to split the documents from their entries. Afterwards, from the documents as
// stored: every index query picks its index (explain), examines exactly the entries the
// documents call for, and answers exactly the matching documents; unique values are
// unique; sorted pages with a cursor add up to the sorted truth. Bad input is refused.
TEST_F(ClusterKvTest, DocumentsKeepTheirIndexesExactAndQueriesUseThem) {
  auto first = PutUntilServed("/v1/collections/default/keys/k0000", "first");
  ASSERT_TRUE(first && first->status == 200);
  SetSetting("shard_split_bytes=16384");
  auto post = [&](const std::string& path, const json& body) {
    return PostJson(*http_, path, body);
  };
  auto [code, out] = post("/v1/collections", json::parse(R"({"name": "people",
        "schema": {"fields": {"name": {"type": "string", "required": true},
                              "age": {"type": "integer"}, "city": {"type": "string"},
                              "email": {"type": ["string", "null"]}}},
        "indexes": [{"name": "by_age", "fields": ["age"]},
                    {"name": "by_city_age", "fields": ["city", "age"]},
                    {"name": "by_email", "fields": ["email"], "unique": true}]})"));
  ASSERT_EQ(code, 201) << out.dump();
  ASSERT_EQ(out["indexes"].size(), 3u);
  const std::string docs = "/v1/collections/people/keys/";
  auto put = [&](const std::string& key, const std::string& body) {
    auto r = http_->Put(docs + key, body, "application/json");
    return std::make_pair(r ? r->status : 0, r ? json::parse(r->body, nullptr, false) : json());
  };

  // Bad input: not a document, schema violations, a request id, a batch, a bad filter.
  std::tie(code, out) = put("x", "not json");
  EXPECT_EQ(code, 400);
  EXPECT_EQ(out["error"]["reason"], "NOT_A_DOCUMENT") << out.dump();
  std::tie(code, out) = put("x", R"({"age": 3})");
  EXPECT_EQ(code, 400);
  EXPECT_EQ(out["error"]["reason"], "SCHEMA") << out.dump();
  EXPECT_EQ(out["error"]["field"], "name");
  std::tie(code, out) = put("x", R"({"name": "x", "age": 3.5})");
  EXPECT_EQ(out["error"]["field"], "age") << out.dump();
  std::tie(code, out) = put("x", json{{"name", "x"}, {"email", std::string(5000, 'e')}}.dump());
  EXPECT_EQ(code, 400);
  EXPECT_EQ(out["error"]["reason"], "INDEX_KEY_TOO_LARGE") << out.dump();
  auto with_id = http_->Put(docs + "x?request_id=r1", R"({"name": "x"})", "application/json");
  ASSERT_TRUE(with_id);
  EXPECT_EQ(with_id->status, 400) << with_id->body;
  // Batches that write documents: checked op by op, all or nothing.
  auto op_put = [](const std::string& key, const json& value) {
    return json{{"op", "put"}, {"collection", "people"}, {"key", key}, {"value", value}};
  };
  std::tie(code, out) = post("/v1/batch", {{"ops",
                                            {op_put("x1", {{"name", "x"}, {"email", "same"}}),
                                             op_put("x2", {{"name", "y"}, {"age", 2.5}})}}});
  EXPECT_EQ(code, 400) << out.dump();
  EXPECT_EQ(out["error"]["reason"], "SCHEMA") << out.dump();
  EXPECT_NE(out["error"]["message"].get<std::string>().find("ops[1]"), std::string::npos)
      << out.dump();
  std::tie(code, out) = post("/v1/batch", {{"ops",
                                            {op_put("x1", {{"name", "x"}, {"email", "same"}}),
                                             op_put("x2", {{"name", "y"}, {"email", "same"}})}}});
  EXPECT_EQ(code, 409) << out.dump();
  EXPECT_EQ(out["error"]["reason"], "UNIQUE") << out.dump();
  std::tie(code, out) =
      post("/v1/batch", {{"ops", {op_put("x1", {{"name", "x"}}), op_put("x1", {{"name", "y"}})}}});
  EXPECT_EQ(code, 400) << "a key twice: " << out.dump();
  std::tie(code, out) =
      post("/v1/batch", {{"ops", {op_put("x1", {{"name", "x"}})}}, {"request_id", "r"}});
  EXPECT_EQ(code, 400) << "a request id: " << out.dump();
  auto absent = http_->Get(docs + "x1");
  ASSERT_TRUE(absent);
  EXPECT_EQ(absent->status, 404) << "a refused batch wrote nothing";
  std::tie(code, out) =
      post("/v1/collections/people/query", {{"filter", {{"age", {{"near", 3}}}}}});
  EXPECT_EQ(code, 400) << out.dump();
  std::tie(code, out) =
      post("/v1/collections/people/query", {{"filter", {{"age", {{"gt", "three"}}}}}});
  EXPECT_EQ(code, 400) << "a type the schema rules out: " << out.dump();
  std::tie(code, out) = post("/v1/collections/people/query", {{"cursor", "bm9wZQ=="}});
  EXPECT_EQ(code, 400) << out.dump();

  // Three writers, a node killed and restarted under them. The third writes two
  // documents at a time: as a batch, a one-shot transaction or an interactive one.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0}, unique_refusals{0}, pairs_written{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", cluster_->gateway().http);
      c.set_read_timeout(15, 0);
      std::mt19937 rng(100 + t);
      const std::string pad(300, 'p');
      auto random_doc = [&] {
        json doc = {{"name", "n" + std::to_string(rng() % 20)},
                    {"age", static_cast<int>(rng() % 10)},
                    {"bio", pad}};
        if (rng() % 4 != 0) doc["city"] = std::string(1, static_cast<char>('A' + rng() % 3));
        const int e = static_cast<int>(rng() % 5);
        if (e < 3) doc["email"] = "e" + std::to_string(rng() % 25);
        if (e == 3) doc["email"] = nullptr;
        return doc;
      };
      while (!stop) {
        const std::string key = "p" + std::to_string(rng() % 60);
        const bool is_put = rng() % 10 < 7;
        json doc = random_doc();
        httplib::Result r{nullptr, httplib::Error::Unknown};
        if (t == 2) {
          const std::string other = "p" + std::to_string(60 + rng() % 20);
          json ops = {is_put ? op_put(key, doc)
                             : json{{"op", "delete"}, {"collection", "people"}, {"key", key}},
                      op_put(other, random_doc())};
          const int form = static_cast<int>(rng() % 3);
          if (form == 0) {
            r = c.Post("/v1/batch", json{{"ops", ops}}.dump(), "application/json");
          } else if (form == 1) {
            r = c.Post("/v1/txn", json{{"ops", ops}}.dump(), "application/json");
          } else {
            auto begun = c.Post("/v1/txn/begin", "{}", "application/json");
            if (!begun || begun->status != 200) continue;
            const std::string base =
                "/v1/txn/" + json::parse(begun->body)["txn"].get<std::string>();
            bool sent = true;
            for (const auto& op : ops) {
              json body = {{"collection", "people"}, {"key", op["key"]}};
              if (op["op"] == "put") body["value"] = op["value"];
              auto w =
                  c.Post(base + "/" + op["op"].get<std::string>(), body.dump(), "application/json");
              sent = sent && w && w->status == 200;
              if (w && w->status >= 400 && w->status < 500) ADD_FAILURE() << w->body;
            }
            if (!sent) continue;
            r = c.Post(base + "/commit", "{}", "application/json");
          }
        } else {
          r = is_put ? c.Put(docs + key, doc.dump(), "application/json") : c.Delete(docs + key);
        }
        if (!r) continue;
        if (r->status == 200) ++written;
        if (r->status == 200 && t == 2) ++pairs_written;
        if (r->status == 409 && r->body.find("UNIQUE") != std::string::npos) ++unique_refusals;
        if (r->status >= 400 && r->status < 500 && r->status != 409) {
          ADD_FAILURE() << r->status << " " << r->body;
        }
      }
    });
  }
  while (written < 150) std::this_thread::sleep_for(50ms);
  cluster_->proc("storage-2")->Signal(SIGKILL);
  cluster_->proc("storage-2")->Wait();
  const int at_kill = written;
  const auto killed = std::chrono::steady_clock::now();
  while (written < at_kill + 100 && std::chrono::steady_clock::now() - killed < 60s) {
    std::this_thread::sleep_for(50ms);
  }
  cluster_->StartStorage(2);
  while (written < at_kill + 250 && std::chrono::steady_clock::now() - killed < 90s) {
    std::this_thread::sleep_for(50ms);
  }
  stop = true;
  for (auto& w : writers) w.join();
  EXPECT_GE(written.load(), at_kill + 100) << "writes did not go on without a node";
  EXPECT_GT(unique_refusals.load(), 0) << "the unique index never refused a write";
  EXPECT_GT(pairs_written.load(), 10) << "batches and transactions of documents";
  SetSetting("shard_split_bytes=1073741824");

  // The truth: the documents as stored.
  auto scan = http_->Get("/v1/collections/people/keys?limit=10000");
  ASSERT_TRUE(scan && scan->status == 200);
  std::map<std::string, json> truth;
  const json scanned = json::parse(scan->body);
  for (const auto& item : scanned["items"]) truth[item["key"].get<std::string>()] = item["value"];
  ASSERT_GT(truth.size(), 20u);
  std::map<std::string, int> emails;
  for (const auto& [k, d] : truth) {
    if (d.contains("email") && d["email"].is_string()) {
      EXPECT_EQ(++emails[d["email"].get<std::string>()], 1) << "two documents share " << d["email"];
    }
  }
  auto query = [&](const json& body) {
    auto [c, o] = post("/v1/collections/people/query", body);
    EXPECT_EQ(c, 200) << body.dump() << " -> " << o.dump();
    if (c != 200) {
      return json{{"items", json::array()}, {"cursor", nullptr}, {"plan", {{"examined", 0}}}};
    }
    return o;
  };
  auto keys_of = [](const json& o) {
    std::vector<std::string> keys;
    for (const auto& item : o["items"]) keys.push_back(item["key"].get<std::string>());
    return keys;
  };
  auto expect = [&](const json& filter, const std::string& index,
                    const std::function<bool(const json&)>& pred, bool exact_entries) {
    json o = query({{"filter", filter}, {"explain", true}, {"limit", 10000}});
    std::vector<std::string> want;
    for (const auto& [k, d] : truth) {
      if (pred(d)) want.push_back(k);
    }
    EXPECT_EQ(keys_of(o), want) << filter.dump();
    if (index.empty()) {
      EXPECT_EQ(o["plan"]["plan"], "collection_scan") << filter.dump();
      EXPECT_EQ(o["plan"]["pushed_down"], true) << filter.dump();
      EXPECT_EQ(o["plan"]["examined"], truth.size()) << filter.dump();
      return;
    }
    EXPECT_EQ(o["plan"]["plan"], "index_scan") << filter.dump();
    EXPECT_EQ(o["plan"]["index"], index) << filter.dump();
    EXPECT_EQ(o["plan"]["pushed_down"], true) << "documents filtered on their shards";
    // Each shard of an index range (or of a unique index's entries, read by key) reads
    // the documents it holds with the entries.
    EXPECT_EQ(o["plan"]["index_join"], true) << filter.dump();
    if (exact_entries) {
      EXPECT_EQ(o["plan"]["examined"].get<size_t>(), want.size())
          << "entries in the range are not exactly the matching documents: " << filter.dump();
    }
  };
  auto num = [](const json& d, const char* f) { return d.contains(f) ? d[f].get<int>() : -1; };
  auto str = [](const json& d, const char* f) {
    return d.contains(f) && d[f].is_string() ? d[f].get<std::string>() : std::string("\x01");
  };
  for (int a = 0; a < 10; ++a) {
    expect(
        {{"age", a}}, "by_age", [&](const json& d) { return num(d, "age") == a; }, true);
  }
  for (std::string city : {"A", "B", "C"}) {
    expect(
        {{"city", city}, {"age", {{"gte", 3}, {"lt", 7}}}}, "by_city_age",
        [&](const json& d) {
          return str(d, "city") == city && num(d, "age") >= 3 && num(d, "age") < 7;
        },
        true);
  }
  for (int e = 0; e < 25; ++e) {
    const std::string email = "e" + std::to_string(e);
    expect(
        {{"email", email}}, "by_email", [&](const json& d) { return str(d, "email") == email; },
        true);
  }
  // Several values of a unique index (point reads of its entries), one of them absent.
  expect(
      {{"email", {{"in", {"e3", "e11", "e24", "absent"}}}}}, "by_email",
      [&](const json& d) {
        const std::string e = str(d, "email");
        return e == "e3" || e == "e11" || e == "e24";
      },
      true);
  expect(
      {{"name", {{"prefix", "n1"}}}}, "",
      [&](const json& d) { return d["name"].get<std::string>().rfind("n1", 0) == 0; }, false);
  expect(
      {{"or", {{{"age", 1}}, {{"city", {{"exists", false}}}}}}}, "",
      [&](const json& d) { return num(d, "age") == 1 || !d.contains("city"); }, false);

  // Storage nodes of a version without the join (a fail point reads their answers so):
  // the router reads the entries, then the documents, with the same answers.
  {
    std::unique_ptr<client::Client> c = RoutedClient();
    ASSERT_TRUE(c);
    // A range of a non-unique index, and values of a unique one read by key (up to three
    // emails the documents hold, and one nobody holds).
    json some = json::array();
    for (const auto& [email, n] : emails) {
      if (some.size() < 3) some.push_back(email);
    }
    ASSERT_FALSE(some.empty());
    some.push_back("absent@nowhere");
    struct Case {
      std::string filter, index;
      std::function<bool(const json&)> pred;
    };
    const std::vector<Case> cases = {
        {R"({"age": {"gte": 3, "lt": 7}})", "by_age",
         [&](const json& d) { return num(d, "age") >= 3 && num(d, "age") < 7; }},
        {json{{"email", {{"in", some}}}}.dump(), "by_email", [&](const json& d) {
           const std::string e = str(d, "email");
           return std::find(some.begin(), some.end(), json(e)) != some.end();
         }}};
    for (const auto& cs : cases) {
      kv::QueryRequest rq;
      rq.collection = "people";
      rq.filter_json = cs.filter;
      rq.limit = 10000;
      rq.explain = true;
      std::vector<std::string> want;
      for (const auto& [k, d] : truth) {
        if (cs.pred(d)) want.push_back(k);
      }
      ASSERT_FALSE(want.empty()) << cs.filter;
      for (bool older : {false, true}) {
        SCOPED_TRACE(cs.filter + (older ? ", older nodes" : ", joining nodes"));
        std::optional<failpoint::ScopedError> fp;
        if (older) {
          fp.emplace("cluster_query.index_join_answer",
                     [](uint64_t) { return Status::Unimplemented("an older node"); });
        }
        auto r = c->Query(rq);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        std::vector<std::string> got;
        for (const auto& item : r->items) got.push_back(item.key);
        EXPECT_EQ(got, want);
        const json plan = json::parse(r->plan_json);
        EXPECT_EQ(plan["index"], cs.index) << plan.dump();
        EXPECT_EQ(plan["pushed_down"], true) << plan.dump();
        EXPECT_EQ(plan["index_join"], !older) << plan.dump();
        EXPECT_EQ(plan["examined"].get<size_t>(), want.size()) << plan.dump();
      }
    }
  }

  // A group-by against the same computation over the exported documents.
  {
    auto [c, o] = post("/v1/collections/people/aggregate",
                       json::parse(R"({"filter": {"age": {"gte": 2}}, "group_by": ["city"],
                         "aggregates": {"n": {"count": "*"}, "s": {"sum": "age"},
                                        "mx": {"max": "age"}, "e": {"count_distinct": "email"}},
                         "explain": true})"));
    ASSERT_EQ(c, 200) << o.dump();
    EXPECT_EQ(o["plan"]["index"], "by_age") << o.dump();
    EXPECT_EQ(o["plan"]["pushed_down"], true) << o.dump();
    std::map<std::string, std::tuple<int, int, int, std::set<std::string>>> want;
    for (const auto& [k, d] : truth) {
      if (num(d, "age") < 2) continue;
      auto& [n, sum, mx, emails] = want[d.contains("city") ? d["city"].get<std::string>() : "-"];
      ++n;
      sum += num(d, "age");
      mx = std::max(mx, num(d, "age"));
      if (d.contains("email") && d["email"].is_string())
        emails.insert(d["email"].get<std::string>());
    }
    ASSERT_EQ(o["groups"].size(), want.size()) << o.dump();
    for (const auto& g : o["groups"]) {
      const std::string city =
          g["key"].contains("city") ? g["key"]["city"].get<std::string>() : "-";
      ASSERT_TRUE(want.count(city)) << city;
      const auto& [n, sum, mx, emails] = want[city];
      EXPECT_EQ(g["values"]["n"], n) << city;
      EXPECT_EQ(g["values"]["s"], sum) << city;
      EXPECT_EQ(g["values"]["mx"], mx) << city;
      EXPECT_EQ(g["values"]["e"], emails.size()) << city;
    }
    std::tie(c, o) =
        post("/v1/collections/people/aggregate", {{"aggregates", {{"n", {{"median", "age"}}}}}});
    EXPECT_EQ(c, 400) << o.dump();
  }
  // A filter no index serves: the shards aggregate their documents, the router merges.
  {
    auto [c, o] = post("/v1/collections/people/aggregate",
                       json::parse(R"({"filter": {"or": [{"age": {"lt": 4}},
                                                          {"city": {"exists": false}}]},
                         "group_by": ["city"],
                         "aggregates": {"n": {"count": "*"}, "s": {"sum": "age"},
                                        "mn": {"min": "name"}, "e": {"count_distinct": "email"}},
                         "explain": true})"));
    ASSERT_EQ(c, 200) << o.dump();
    EXPECT_EQ(o["plan"]["plan"], "collection_scan") << o.dump();
    EXPECT_EQ(o["plan"]["pushed_down"], true) << o.dump();
    EXPECT_EQ(o["plan"]["examined"], truth.size()) << o.dump();
    std::map<std::string, std::tuple<int, int, std::string, std::set<std::string>>> want;
    int matching = 0;
    for (const auto& [k, d] : truth) {
      if (!(d.contains("age") && num(d, "age") < 4) && d.contains("city")) continue;
      ++matching;
      auto& [n, sum, mn, emails] = want[d.contains("city") ? d["city"].get<std::string>() : "-"];
      ++n;
      if (d.contains("age")) sum += num(d, "age");
      const std::string name = d["name"].get<std::string>();
      if (mn.empty() || name < mn) mn = name;
      if (d.contains("email") && d["email"].is_string())
        emails.insert(d["email"].get<std::string>());
    }
    EXPECT_EQ(o["plan"]["matched"], matching) << o.dump();
    ASSERT_EQ(o["groups"].size(), want.size()) << o.dump();
    for (const auto& g : o["groups"]) {
      const std::string city =
          g["key"].contains("city") ? g["key"]["city"].get<std::string>() : "-";
      ASSERT_TRUE(want.count(city)) << city;
      const auto& [n, sum, mn, emails] = want[city];
      EXPECT_EQ(g["values"]["n"], n) << city;
      EXPECT_EQ(g["values"]["s"], sum) << city;
      EXPECT_EQ(g["values"]["mn"], mn) << city;
      EXPECT_EQ(g["values"]["e"], emails.size()) << city;
    }
  }
  // Pages of a pushed-down collection scan: in key order 5 at a time, and sorted by a
  // field the projection leaves out (the shards send each match's sort values).
  {
    std::vector<std::string> want_keys;
    std::vector<std::pair<int, std::string>> by_age;
    for (const auto& [k, d] : truth) {
      if (d["name"].get<std::string>().rfind("n1", 0) != 0) continue;
      want_keys.push_back(k);
      by_age.emplace_back(d.contains("age") ? -num(d, "age") : 1, k);
    }
    ASSERT_GT(want_keys.size(), 5u);
    std::sort(by_age.begin(), by_age.end());
    for (bool sorted_by_age : {false, true}) {
      json body = {{"filter", {{"name", {{"prefix", "n1"}}}}},
                   {"limit", 5},
                   {"projection", {"name"}},
                   {"explain", true}};
      if (sorted_by_age) body["sort"] = {"-age"};
      std::vector<std::string> paged;
      for (int page = 0; page < 1000; ++page) {
        json o = query(body);
        EXPECT_EQ(o["plan"]["pushed_down"], true) << o.dump();
        for (const auto& item : o["items"]) {
          paged.push_back(item["key"].get<std::string>());
          EXPECT_EQ(item["value"].size(), 1u) << item.dump();
        }
        if (o["cursor"].is_null()) break;
        body["cursor"] = o["cursor"];
      }
      std::vector<std::string> want = want_keys;
      if (sorted_by_age) {
        want.clear();
        for (const auto& [neg_age, k] : by_age) want.push_back(k);
      }
      EXPECT_EQ(paged, want) << "sorted: " << sorted_by_age;
    }
  }

  // Sorted pages: age descending, then key; 7 at a time, at one snapshot.
  std::vector<std::pair<int, std::string>> sorted;
  for (const auto& [k, d] : truth) {
    if (num(d, "age") >= 2) sorted.emplace_back(-num(d, "age"), k);
  }
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> paged;
  json body = {{"filter", {{"age", {{"gte", 2}}}}},
               {"sort", {"-age"}},
               {"limit", 7},
               {"projection", {"name", "age"}}};
  for (int page = 0; page < 100; ++page) {
    json o = query(body);
    for (const auto& item : o["items"]) {
      paged.push_back(item["key"].get<std::string>());
      EXPECT_FALSE(item["value"].contains("bio")) << "projected away";
      EXPECT_TRUE(item["value"].contains("age"));
    }
    if (o["cursor"].is_null()) break;
    body["cursor"] = o["cursor"];
  }
  std::vector<std::string> want;
  for (const auto& [neg_age, k] : sorted) want.push_back(k);
  EXPECT_EQ(paged, want);

  // Ascending sorts an index follows: its entries are walked in order, and the walk stops
  // once the page is complete (the first page examines far fewer than all documents);
  // the pages add up to the sorted truth, ties by key.
  struct Sorted {
    json filter, sort;
    size_t limit;
    std::string index;
    std::function<bool(const json&)> pred;
    std::function<std::pair<std::string, int>(const json&)> order;
  };
  const std::vector<Sorted> cases = {
      {json::object(),
       {"age"},
       7,
       "by_age",
       [](const json&) { return true; },
       [&](const json& d) { return std::make_pair(std::string(), num(d, "age")); }},
      {{{"city", "B"}},
       {"age"},
       4,
       "by_city_age",
       [&](const json& d) { return str(d, "city") == "B"; },
       [&](const json& d) { return std::make_pair(std::string(), num(d, "age")); }},
      {{{"age", {{"gte", 5}}}},
       {"age"},
       5,
       "by_age",
       [&](const json& d) { return num(d, "age") >= 5; },
       [&](const json& d) { return std::make_pair(std::string(), num(d, "age")); }},
      // No index on name: the whole of the index that leads with the sort's fields.
      {{{"name", {{"prefix", "n1"}}}},
       {"city", "age"},
       6,
       "by_city_age",
       [](const json& d) { return d["name"].get<std::string>().rfind("n1", 0) == 0; },
       [&](const json& d) { return std::make_pair(str(d, "city"), num(d, "age")); }},
      // By city alone: the walk meets a city's documents by age, the page wants them by
      // key, so a page ends only past its last city.
      {json::object(),
       {"city"},
       5,
       "by_city_age",
       [](const json&) { return true; },
       [&](const json& d) { return std::make_pair(str(d, "city"), 0); }},
      // Descending: the same indexes walked backward, whose equal values come by key
      // backward.
      {json::object(),
       {"-age"},
       7,
       "by_age",
       [](const json&) { return true; },
       [&](const json& d) { return std::make_pair(std::string(), num(d, "age")); }},
      {{{"city", "B"}},
       {"-age"},
       4,
       "by_city_age",
       [&](const json& d) { return str(d, "city") == "B"; },
       [&](const json& d) { return std::make_pair(std::string(), num(d, "age")); }},
      {{{"age", {{"lt", 5}}}},
       {"-age"},
       5,
       "by_age",
       [&](const json& d) { return num(d, "age") >= 0 && num(d, "age") < 5; },
       [&](const json& d) { return std::make_pair(std::string(), num(d, "age")); }},
      {{{"name", {{"prefix", "n1"}}}},
       {"-city", "-age"},
       6,
       "by_city_age",
       [](const json& d) { return d["name"].get<std::string>().rfind("n1", 0) == 0; },
       [&](const json& d) { return std::make_pair(str(d, "city"), num(d, "age")); }},
  };
  for (const auto& c : cases) {
    const bool desc = c.sort[0].get<std::string>()[0] == '-';
    std::vector<std::tuple<std::string, int, std::string>> ordered_truth;
    for (const auto& [k, d] : truth) {
      if (!c.pred(d)) continue;
      const auto [first, second] = c.order(d);
      ordered_truth.emplace_back(first, second, k);
    }
    // By the sort's values (one way), then by key.
    std::sort(ordered_truth.begin(), ordered_truth.end(), [&](const auto& a, const auto& b) {
      const auto va = std::tie(std::get<0>(a), std::get<1>(a));
      const auto vb = std::tie(std::get<0>(b), std::get<1>(b));
      if (va != vb) return desc ? vb < va : va < vb;
      return std::get<2>(a) < std::get<2>(b);
    });
    std::vector<std::string> want_sorted;
    for (const auto& t : ordered_truth) want_sorted.push_back(std::get<2>(t));
    ASSERT_GT(want_sorted.size(), c.limit) << c.filter.dump();
    json body = {{"filter", c.filter}, {"sort", c.sort}, {"limit", c.limit}, {"explain", true}};
    std::vector<std::string> got;
    for (int page = 0; page < 1000; ++page) {
      json o = query(body);
      if (page == 0) {
        EXPECT_EQ(o["plan"]["index"], c.index) << o["plan"].dump();
        EXPECT_EQ(o["plan"]["ordered"], true) << o["plan"].dump();
        EXPECT_EQ(o["plan"]["reverse"], desc) << o["plan"].dump();
        // (Each call of a walk asks for twice what the one before did, so a page may
        // read a good part of these few documents, but not all of them.)
        EXPECT_LT(o["plan"]["examined"].get<size_t>(), truth.size())
            << "the first page of " << c.filter.dump() << " walked on: " << o["plan"].dump();
      }
      for (const auto& item : o["items"]) got.push_back(item["key"].get<std::string>());
      if (o["cursor"].is_null()) break;
      body["cursor"] = o["cursor"];
    }
    EXPECT_EQ(got, want_sorted) << c.filter.dump() << " sorted by " << c.sort.dump();
  }
}

// Indexes added to and dropped from a collection in use: four writers on two gateways
// put and delete documents of a plain collection, over small shards, while indexes are
// built (one of them unique), a unique build fails, a storage node is killed and
// restarted, and an index is dropped. Afterwards every document has exactly its entries
// in each public index, the planner uses an index only once it is public, and a dropped
// one not at all.
TEST_F(ClusterKvTest, IndexesAreBuiltAndDroppedOnlineWhileTwoGatewaysWrite) {
  auto first = PutUntilServed("/v1/collections/default/keys/k0000", "first");
  ASSERT_TRUE(first && first->status == 200);
  SetSetting("schema_lease_ms=1000");
  SetSetting("shard_split_bytes=16384");
  cluster_->StartGateway(2);
  ASSERT_TRUE(cluster_->WaitReady("api-2", cluster_->gateway2().http, 60000)) << cluster_->Logs();
  httplib::Client http2("127.0.0.1", cluster_->gateway2().http);
  http2.set_read_timeout(60, 0);
  http_->set_read_timeout(60, 0);
  auto post = PostJson;
  auto [code, out] = post(*http_, "/v1/collections", {{"name", "things"}});
  ASSERT_EQ(code, 201) << out.dump();
  const std::string docs = "/v1/collections/things/keys/";
  // Documents: "n" shared by many, "u" unique to the key, "g" missing from some.
  auto doc_for = [](const std::string& key, std::mt19937& rng) {
    json d = {
        {"n", static_cast<int>(rng() % 8)}, {"u", "u-" + key}, {"pad", std::string(200, 'p')}};
    if (rng() % 3 != 0) d["g"] = std::string(1, static_cast<char>('a' + rng() % 4));
    return d;
  };
  {
    std::mt19937 rng(7);
    for (int i = 0; i < 150; ++i) {
      const std::string key = "t" + std::to_string(i);
      auto r = http_->Put(docs + key, doc_for(key, rng).dump(), "application/json");
      ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    }
  }

  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::vector<std::thread> writers;
  struct Joiner {  // the writers stop however the test ends
    std::atomic<bool>* stop;
    std::vector<std::thread>* threads;
    ~Joiner() {
      *stop = true;
      for (auto& t : *threads) {
        if (t.joinable()) t.join();
      }
    }
  } joiner{&stop, &writers};
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      httplib::Client c("127.0.0.1",
                        t % 2 == 0 ? cluster_->gateway().http : cluster_->gateway2().http);
      c.set_read_timeout(15, 0);
      std::mt19937 rng(300 + t);
      while (!stop) {
        const std::string key = "t" + std::to_string(rng() % 200);
        auto r = rng() % 4 != 0 ? c.Put(docs + key, doc_for(key, rng).dump(), "application/json")
                                : c.Delete(docs + key);
        if (!r) continue;
        if (r->status == 200) ++written;
        if (r->status >= 400 && r->status < 500 && r->status != 409) {
          ADD_FAILURE() << r->status << " " << r->body;
        }
      }
    });
  }
  auto wait_writes = [&](int more) {
    const int from = written;
    const auto start = std::chrono::steady_clock::now();
    while (written < from + more && std::chrono::steady_clock::now() - start < 60s) {
      std::this_thread::sleep_for(20ms);
    }
  };
  auto index_state = [&](const json& collection, const std::string& name) {
    for (const auto& i : collection["indexes"]) {
      if (i["name"] == name) return i["state"].get<std::string>();
    }
    return std::string("absent");
  };
  // A build may take up to 50 s, inside the clients' 60: on a busy machine a backfill
  // can outlast the default wait (the request timeout), and the answer is then 202.
  const std::string kIndexes = "/v1/collections/things/indexes?wait_ms=50000";
  wait_writes(50);
  // Built on one gateway while both write.
  std::tie(code, out) = post(*http_, kIndexes, {{"name", "by_n"}, {"fields", {"n"}}});
  ASSERT_EQ(code, 201) << out.dump();
  EXPECT_EQ(index_state(out, "by_n"), "public") << out.dump();
  wait_writes(50);
  // A unique one on the other, with a node killed during it.
  std::thread killer([&] {
    std::this_thread::sleep_for(300ms);
    cluster_->proc("storage-3")->Signal(SIGKILL);
    cluster_->proc("storage-3")->Wait();
  });
  std::tie(code, out) =
      post(http2, kIndexes, {{"name", "by_u"}, {"fields", {"u"}}, {"unique", true}});
  killer.join();
  ASSERT_EQ(code, 201) << out.dump();
  EXPECT_EQ(index_state(out, "by_u"), "public") << out.dump();
  // The same request again: the index as it is.
  std::tie(code, out) =
      post(http2, kIndexes, {{"name", "by_u"}, {"fields", {"u"}}, {"unique", true}});
  EXPECT_EQ(code, 201) << out.dump();
  std::tie(code, out) = post(http2, kIndexes, {{"name", "by_u"}, {"fields", {"n"}}});
  EXPECT_EQ(code, 409) << "another definition under a taken name: " << out.dump();
  cluster_->StartStorage(3);
  wait_writes(50);
  // A unique index the documents break: it fails, naming two of them, and can be dropped.
  std::tie(code, out) =
      post(*http_, kIndexes, {{"name", "n_unique"}, {"fields", {"n"}}, {"unique", true}});
  EXPECT_EQ(code, 409) << out.dump();
  EXPECT_EQ(out["error"]["reason"], "UNIQUE") << out.dump();
  auto described = http_->Get("/v1/collections/things");
  ASSERT_TRUE(described && described->status == 200);
  EXPECT_EQ(index_state(json::parse(described->body), "n_unique"), "failed") << described->body;
  // A compound index on a field some documents lack, then by_n dropped, all under writes.
  std::tie(code, out) = post(http2, kIndexes, {{"name", "by_g_n"}, {"fields", {"g", "n"}}});
  ASSERT_EQ(code, 201) << out.dump();
  auto dropped = http_->Delete("/v1/collections/things/indexes/n_unique");
  ASSERT_TRUE(dropped);
  EXPECT_EQ(dropped->status, 200) << dropped->body;
  dropped = http_->Delete("/v1/collections/things/indexes/by_n");
  ASSERT_TRUE(dropped);
  EXPECT_EQ(dropped->status, 200) << dropped->body;
  EXPECT_EQ(index_state(json::parse(dropped->body), "by_n"), "absent") << dropped->body;
  dropped = http_->Delete("/v1/collections/things/indexes/by_n");
  ASSERT_TRUE(dropped);
  EXPECT_EQ(dropped->status, 404) << dropped->body;
  wait_writes(50);
  stop = true;
  for (auto& w : writers) w.join();
  EXPECT_GT(written.load(), 250);
  SetSetting("shard_split_bytes=1073741824");

  // The truth: the documents as stored.
  auto scan = http_->Get("/v1/collections/things/keys?limit=10000");
  ASSERT_TRUE(scan && scan->status == 200);
  std::map<std::string, json> truth;
  const json scanned = json::parse(scan->body);
  for (const auto& item : scanned["items"]) truth[item["key"].get<std::string>()] = item["value"];
  ASSERT_GT(truth.size(), 50u);
  for (auto* c : {http_.get(), &http2}) {
    auto query = [&](const json& filter) {
      auto [qc, o] = post(*c, "/v1/collections/things/query",
                          {{"filter", filter}, {"explain", true}, {"limit", 10000}});
      EXPECT_EQ(qc, 200) << filter.dump() << " -> " << o.dump();
      return o;
    };
    auto check = [&](const json& filter, const std::string& index,
                     const std::function<bool(const json&)>& pred) {
      json o = query(filter);
      std::vector<std::string> want, got;
      for (const auto& [k, d] : truth) {
        if (pred(d)) want.push_back(k);
      }
      for (const auto& item : o["items"]) got.push_back(item["key"].get<std::string>());
      EXPECT_EQ(got, want) << filter.dump();
      if (index.empty()) {
        EXPECT_EQ(o["plan"]["plan"], "collection_scan") << filter.dump();
        return;
      }
      EXPECT_EQ(o["plan"]["index"], index) << filter.dump();
      // The entries in the range are exactly the matching documents: none missing, none
      // extra (an entry naming no document fails the query).
      EXPECT_EQ(o["plan"]["examined"].get<size_t>(), want.size()) << filter.dump();
    };
    for (const auto& [k, d] : truth) {
      const std::string u = d["u"].get<std::string>();
      check({{"u", u}}, "by_u", [&](const json& x) { return x["u"] == u; });
    }
    check({{"u", {{"gte", ""}}}}, "by_u", [](const json&) { return true; });
    for (std::string g : {"a", "b", "c", "d"}) {
      check({{"g", g}, {"n", {{"gte", 2}}}}, "by_g_n", [&](const json& x) {
        return x.contains("g") && x["g"] == g && x["n"].get<int>() >= 2;
      });
    }
    // by_n is gone: a filter on n alone scans the collection.
    check({{"n", 3}}, "", [](const json& x) { return x["n"] == 3; });
  }
}

// The two interleavings an online build must survive, replayed with fail points in a
// routed client (a router in this process): a plain write planned before the index was
// added and held until the index is public (its schema lease has ended: it is planned
// again and keeps the index), and a document changed between a backfill page's read and
// its commit (the page meets the writer's change of the document's entry, or its check on
// the document, and reads again; its view of the document leaves no entry).
TEST_F(ClusterKvTest, IndexBuildsMeetWritesPlannedBeforeAndDuringThem) {
  auto first = PutUntilServed("/v1/collections/default/keys/k0000", "first");
  ASSERT_TRUE(first && first->status == 200);
  ASSERT_TRUE(SetSetting("schema_lease_ms=500"));
  http_->set_read_timeout(60, 0);
  auto r = http_->Post("/v1/collections", R"({"name": "held"})", "application/json");
  ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "");
  const std::string docs = "/v1/collections/held/keys/";
  for (int i = 0; i < 20; ++i) {
    auto p = http_->Put(docs + "d" + std::to_string(i), json{{"n", i % 5}, {"k", i % 5}}.dump(),
                        "application/json");
    ASSERT_TRUE(p && p->status == 200);
  }
  std::unique_ptr<client::Client> c = RoutedClient();
  ASSERT_TRUE(c);
  // Warm the routed client's record of the collection: no index.
  ASSERT_TRUE(c->Put({"held", "d0", json{{"n", 0}}.dump()}).ok());
  // Matches of `filter` through the gateway, once its planner uses the new index (it
  // rereads the collection's record within half a lease).
  auto count = [&](const json& filter) {
    json o;
    for (int i = 0; i < 50; ++i) {
      auto q = http_->Post("/v1/collections/held/query",
                           json{{"filter", filter}, {"explain", true}}.dump(), "application/json");
      EXPECT_TRUE(q && q->status == 200) << (q ? q->body : "");
      o = q ? json::parse(q->body) : json();
      if (o["plan"]["plan"] == "index_scan") break;
      std::this_thread::sleep_for(100ms);
    }
    return std::make_pair(o["items"].size(), o["plan"]);
  };

  // 1. A plain write planned without the index, sent after the build made it public.
  {
    std::mutex mu;
    std::condition_variable cv;
    bool held = false, release = false;
    failpoint::Scoped fp("cluster_kv.plain_put_planned", [&](uint64_t) {
      std::unique_lock lock(mu);
      held = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
    });
    std::thread writer([&] {
      auto w = c->Put({"held", "late", json{{"n", 42}}.dump()});
      EXPECT_TRUE(w.ok()) << w.status().ToString();
    });
    {
      std::unique_lock lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return held; }));
    }
    r = http_->Post("/v1/collections/held/indexes", R"({"name": "by_n", "fields": ["n"]})",
                    "application/json");
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "");
    {
      std::lock_guard lock(mu);
      release = true;
    }
    cv.notify_all();
    writer.join();
  }
  auto [n42, plan] = count({{"n", 42}});
  EXPECT_EQ(plan["index"], "by_n") << plan.dump();
  EXPECT_EQ(n42, 1u) << "the held write went in without its entry";
  EXPECT_EQ(plan["examined"], 1) << plan.dump();

  // 2. A document rewritten (through the gateway, which keeps the building index) after
  // the first page of a build read it, before the page commits.
  {
    int pages = 0;
    failpoint::Scoped fp("cluster_index.page_read", [&](uint64_t) {
      if (pages++ != 0) return;
      auto p = http_->Put(docs + "d1", json{{"n", 77}, {"k", 77}}.dump(), "application/json");
      EXPECT_TRUE(p && p->status == 200) << (p ? p->body : "");
    });
    auto built = c->CreateIndex("held", {"by_k", {"k"}, false}, 30s);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    EXPECT_GE(pages, 2) << "the page that met the write was read again";
  }
  auto [k1, plan1] = count({{"k", 1}});
  EXPECT_EQ(plan1["index"], "by_k") << plan1.dump();
  // d1 is no longer k=1: the first page's view of it must not have left an entry.
  EXPECT_EQ(k1, 3u);
  EXPECT_EQ(plan1["examined"], 3) << plan1.dump();
  auto [k77, plan77] = count({{"k", 77}});
  EXPECT_EQ(k77, 1u);
  EXPECT_EQ(plan77["examined"], 1) << plan77.dump();

  // 3. A page read before its index was dropped, committed after the record it was
  // planned with ran out of lease: refused, so no entry lands in the removed index's
  // rows once their deletion may be due.
  uint32_t gone_id = 0;
  {
    bool dropped = false;
    failpoint::Scoped fp("cluster_index.page_read", [&](uint64_t) {
      if (dropped) return;
      dropped = true;
      auto info = c->DescribeCollection("held");
      ASSERT_TRUE(info.ok()) << info.status().ToString();
      for (const auto& i : info->indexes) {
        if (i.name == "by_gone") gone_id = i.id;
      }
      auto d = http_->Delete("/v1/collections/held/indexes/by_gone");
      EXPECT_TRUE(d && d->status == 200) << (d ? d->body : "no answer");
      std::this_thread::sleep_for(1500ms);  // well past the 500 ms lease
    });
    (void)c->CreateIndex("held", {"by_gone", {"n"}, false}, 30s);  // it was dropped meanwhile
    ASSERT_TRUE(dropped);
  }
  ASSERT_NE(gone_id, 0u);
  c.reset();
  http_.reset();
  for (int id = 1; id <= 3; ++id) {
    auto engine = KilledNodeEngine(id);
    ASSERT_TRUE(engine);
    EXPECT_EQ(CountKeys(*engine, mvcc::kVersionCf, gone_id), 0)
        << "node " << id << " holds entries of the dropped index";
  }
}

// A bulk load into an indexed collection over small shards, while another client
// rewrites some of the same documents: each bad line is reported with its number and
// the rest load; a retry with the ingest id skips what is in; and afterwards every
// document has exactly its index entries.
TEST_F(ClusterKvTest, BulkIngestReportsBadLinesResumesAndKeepsIndexesExact) {
  auto first = PutUntilServed("/v1/collections/default/keys/k0000", "first");
  ASSERT_TRUE(first && first->status == 200);
  ASSERT_TRUE(SetSetting("shard_split_bytes=32768"));
  auto post = [&](const std::string& path, const std::string& body) {
    auto r = http_->Post(path, body, "application/json");
    EXPECT_TRUE(r) << path;
    return std::make_pair(r ? r->status : 0, r ? json::parse(r->body, nullptr, false) : json());
  };
  auto [code, out] = post("/v1/collections", R"({"name": "items",
        "schema": {"fields": {"name": {"type": "string", "required": true},
                              "age": {"type": "integer"}, "email": {"type": ["string", "null"]}}},
        "indexes": [{"name": "by_age", "fields": ["age"]},
                    {"name": "by_email", "fields": ["email"], "unique": true}]})");
  ASSERT_EQ(code, 201) << out.dump();
  const std::string docs = "/v1/collections/items/keys/";
  ASSERT_EQ(
      http_->Put(docs + "x1", R"({"name":"x","age":1,"email":"e1"})", "application/json")->status,
      200);
  ASSERT_EQ(
      http_->Put(docs + "x2", R"({"name":"x","age":2,"email":"e2"})", "application/json")->status,
      200);

  const int kLines = 3000;
  const std::string pad(200, 'p');
  auto line = [&](int i) -> std::string {
    switch (i) {
      case 10:
        return R"({"_id":"x1","name":"moved","age":40,"email":"e1"})";
      case 11:
        return R"({"_id":"d11","name":"n","email":"e2"})";  // x2 holds e2
      case 12:
        return R"({"_id":"d12","name":"n","age":"old"})";  // schema
      case 13:
        return R"({"_id":"d13","name":"n","email":"dup"})";
      case 14:
        return R"({"_id":"d14","name":"n","email":"dup"})";  // line 13 holds it
      case 15:
        return R"({"_id":"d15", "name":)";  // not JSON
      case 2000:
        return R"({"_id":"d16","name":"again","age":7})";  // d16 again: wins
      default:
        break;
    }
    json d = {{"_id", "d" + std::to_string(i)}, {"name", "n"}, {"age", i % 50}, {"bio", pad}};
    if (i % 7 != 0) d["email"] = "m" + std::to_string(i);
    return d.dump();
  };
  std::string part1, part2;
  for (int i = 1; i <= kLines; ++i) (i <= 1500 ? part1 : part2) += line(i) + "\n";

  // Another client rewrites d1..d30 meanwhile (its own emails: w<i>).
  std::atomic<bool> stop{false};
  std::atomic<int> written_by_writer{0};
  std::thread writer;
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, writer};
  writer = std::thread([&] {
    httplib::Client c("127.0.0.1", cluster_->gateway().http);
    std::mt19937 rng(7);
    while (!stop) {
      const int i = 1 + static_cast<int>(rng() % 30);
      if (i >= 10 && i <= 16) continue;
      json d = {
          {"name", "w"}, {"age", static_cast<int>(rng() % 50)}, {"email", "w" + std::to_string(i)}};
      auto r = c.Put(docs + "d" + std::to_string(i), d.dump(), "application/json");
      if (r && r->status == 200) ++written_by_writer;
    }
  });
  http_->set_read_timeout(120, 0);
  std::tie(code, out) = post("/v1/collections/items/bulk?ingest_id=load", part1);
  ASSERT_EQ(code, 200) << out.dump();
  EXPECT_EQ(out["lines"], 1500);
  EXPECT_EQ(out["failed"], 4) << out.dump();
  EXPECT_EQ(out["written"], 1496);
  EXPECT_EQ(out["lines_done"], 1500);
  std::map<int, std::string> reasons;
  for (const auto& e : out["errors"]) reasons[e["line"].get<int>()] = e["reason"];
  EXPECT_EQ(reasons, (std::map<int, std::string>{
                         {11, "UNIQUE"}, {12, "SCHEMA"}, {14, "UNIQUE"}, {15, "NOT_JSON"}}))
      << out.dump();
  // The same part again: all of it is in.
  std::tie(code, out) = post("/v1/collections/items/bulk?ingest_id=load", part1);
  ASSERT_EQ(code, 200) << out.dump();
  EXPECT_EQ(out["skipped"], 1499) << "every record of those lines, refused ones too";
  EXPECT_EQ(out["written"], 0);
  std::tie(code, out) = post("/v1/collections/items/bulk?ingest_id=load&first_line=1501", part2);
  ASSERT_EQ(code, 200) << out.dump();
  EXPECT_EQ(out["written"], 1500);
  EXPECT_EQ(out["failed"], 0) << out.dump();
  stop = true;
  writer.join();
  EXPECT_GT(written_by_writer.load(), 0) << "the other client wrote nothing meanwhile";
  auto progress = http_->Get("/v1/collections/items/bulk/load");
  ASSERT_TRUE(progress && progress->status == 200);
  EXPECT_EQ(json::parse(progress->body)["lines_done"], kLines);

  // The truth, and every index against it.
  auto scan = http_->Get("/v1/collections/items/keys?limit=10000");
  ASSERT_TRUE(scan && scan->status == 200);
  std::map<std::string, json> truth;
  const json scanned = json::parse(scan->body);
  for (const auto& item : scanned["items"]) truth[item["key"].get<std::string>()] = item["value"];
  EXPECT_EQ(truth.size(), 2u + kLines - 2 - 4)
      << "x1, x2, and a document per line but x1's, d16's second and the 4 refused";
  EXPECT_EQ(truth["x1"]["name"], "moved");
  EXPECT_EQ(truth["d16"]["name"], "again");
  EXPECT_EQ(truth.count("d14"), 0u);
  std::map<std::string, std::string> email_holder;
  for (const auto& [k, d] : truth) {
    if (!d.contains("email") || !d["email"].is_string()) continue;
    auto [it, fresh] = email_holder.emplace(d["email"].get<std::string>(), k);
    EXPECT_TRUE(fresh) << k << " and " << it->second << " share " << it->first;
  }
  auto query = [&](const json& filter) {
    auto [c, o] = post("/v1/collections/items/query",
                       json{{"filter", filter}, {"explain", true}, {"limit", 10000}}.dump());
    EXPECT_EQ(c, 200) << o.dump();
    return o;
  };
  for (int a = 0; a < 50; ++a) {
    json o = query({{"age", a}});
    std::vector<std::string> want, got;
    for (const auto& [k, d] : truth) {
      if (d.contains("age") && d["age"] == a) want.push_back(k);
    }
    for (const auto& item : o["items"]) got.push_back(item["key"]);
    EXPECT_EQ(got, want) << "age " << a;
    EXPECT_EQ(o["plan"]["index"], "by_age");
    EXPECT_EQ(o["plan"]["examined"], want.size()) << "entries of age " << a << " are not exact";
  }
  size_t checked = 0;
  for (const auto& [email, holder] : email_holder) {
    if (checked++ % 10 != 0 && email.rfind("w", 0) != 0 && email != "e1" && email != "dup") {
      continue;  // a sample, plus every email the other client or the specials wrote
    }
    json o = query({{"email", email}});
    ASSERT_EQ(o["items"].size(), 1u) << email << " " << o.dump();
    EXPECT_EQ(o["items"][0]["key"], holder) << email;
    EXPECT_EQ(o["plan"]["examined"], 1) << email;
  }
}

// A gateway started with --services reads,bulk serves those families and refuses the
// others with 501 SERVICE_NOT_SERVED, over HTTP and gRPC; the catalog is always served.
TEST_F(ClusterKvTest, AGatewayServesOnlyTheFamiliesItIsGiven) {
  auto first = PutUntilServed("/v1/collections/default/keys/k1", "v1");
  ASSERT_TRUE(first && first->status == 200);
  const int http_port = FreePort(), grpc_port = FreePort();
  Process reader({BinDir() + "/gojodb-api", "--grpc-addr", Cluster::Addr(grpc_port), "--http-addr",
                  Cluster::Addr(http_port), "--controllers", cluster_->ControllerAddrs(),
                  "--services", "reads,bulk"},
                 TempDir("reads-gateway") + "/api.log");
  ASSERT_TRUE(WaitReady(http_port, &reader, 30000)) << reader.Log();
  httplib::Client c("127.0.0.1", http_port);
  auto reason = [](const httplib::Result& r) {
    auto j = json::parse(r->body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"].value("reason", "") : "";
  };
  auto get = c.Get("/v1/collections/default/keys/k1");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "v1");
  auto put = c.Put("/v1/collections/default/keys/k2", "v2", "text/plain");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 501) << put->body;
  EXPECT_EQ(reason(put), "SERVICE_NOT_SERVED") << put->body;
  auto agg = c.Post("/v1/collections/default/aggregate", R"({"aggregates":{"n":{"count":"*"}}})",
                    "application/json");
  ASSERT_TRUE(agg);
  EXPECT_EQ(agg->status, 501) << agg->body;
  auto bulk =
      c.Post("/v1/collections/default/bulk", "{\"_id\":\"b1\",\"x\":1}\n", "application/x-ndjson");
  ASSERT_TRUE(bulk);
  EXPECT_EQ(bulk->status, 200) << bulk->body;
  auto list = c.Get("/v1/collections");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  EXPECT_EQ(http_->Get("/v1/collections/default/keys/b1")->status, 200) << "the bulk line is in";
  auto grpc = client::Client::Connect({.addr = Cluster::Addr(grpc_port)});
  ASSERT_TRUE(grpc.ok());
  auto g = (*grpc)->Get({.collection = "default", .key = "k1"});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->value, "v1");
  auto p = (*grpc)->Put({.collection = "default", .key = "k3", .value = "v3"});
  EXPECT_EQ(p.status().code(), StatusCode::kUnimplemented) << p.status().ToString();
}

TEST_F(ClusterKvTest, StorageNodesAnswerEachItemOfABatch) {
  auto first = PutUntilServed("/v1/collections/default/keys/alpha", "one");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  auto stub = v1::ShardKv::NewStub(grpc::CreateChannel(Cluster::Addr(cluster_->storage(1).grpc),
                                                       grpc::InsecureChannelCredentials()));
  auto call = [&](const v1::ShardBatchRequest& req, v1::ShardBatchResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    return stub->Batch(&ctx, req, resp);
  };
  v1::ShardBatchRequest empty;
  v1::ShardBatchResponse resp;
  grpc::Status s = call(empty, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("1..1024"), std::string::npos) << s.error_message();

  v1::ShardBatchRequest big;
  for (int i = 0; i < 1025; ++i) big.add_items()->mutable_get()->set_row_key("k");
  s = call(big, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  v1::ShardBatchRequest mixed;
  mixed.add_items();                                    // no operation
  mixed.add_items()->mutable_get();                     // empty row key
  mixed.add_items()->mutable_write()->mutable_route();  // no mutations
  auto* missing = mixed.add_items()->mutable_get();     // a shard no node has
  missing->mutable_route()->set_shard(987654);
  missing->set_row_key("k");
  auto* w = mixed.add_items()->mutable_write();  // the same, a write
  w->mutable_route()->set_shard(987654);
  w->add_mutations()->set_row_key("k");
  resp.Clear();
  s = call(mixed, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.results_size(), 5);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(resp.results(i).code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT))
        << i << ": " << resp.results(i).message();
  }
  EXPECT_NE(resp.results(0).message().find("no operation"), std::string::npos);
  // The node's Raft loops report their work.
  httplib::Client node_http("127.0.0.1", cluster_->storage(1).http);
  auto metrics = node_http.Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* name :
       {"\ngojodb_storage_raft_loop_iterations ", "\ngojodb_storage_raft_log_writes ",
        "\ngojodb_storage_raft_synced_writes ", "\ngojodb_storage_raft_readies "}) {
    const size_t at = metrics->body.find(name);
    ASSERT_NE(at, std::string::npos) << name << " in\n" << metrics->body;
    EXPECT_GT(std::strtoull(metrics->body.c_str() + at + std::strlen(name), nullptr, 10), 0u)
        << name;
  }
  for (int i = 3; i < 5; ++i) {
    EXPECT_EQ(resp.results(i).code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE)) << i;
    EXPECT_EQ(resp.results(i).details().count("reason"), 1u) << i;
    if (resp.results(i).details().count("reason")) {
      EXPECT_EQ(resp.results(i).details().at("reason"), "SHARD_NOT_FOUND") << i;
    }
  }
}

TEST_F(ClusterKvTest, RoutedClientServesTheApiWithoutAGateway) {
  auto first = PutUntilServed("/v1/collections/default/keys/alpha", "one");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  cluster_->proc("api-1")->Signal(SIGKILL);
  cluster_->proc("api-1")->Wait();

  std::unique_ptr<client::Client> c = RoutedClient();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->routed());
  ASSERT_TRUE(c->Ready().ok()) << c->Ready().ToString();

  // What the gateway wrote is there; reads, writes, conditions, request ids, batches.
  auto got = c->Get({.collection = "default", .key = "alpha"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->found);
  EXPECT_EQ(got->value, "one");
  EXPECT_EQ(got->version, json::parse(first->body)["version"].get<uint64_t>());
  auto put = c->Put({.collection = "default", .key = "beta", .value = "b1"});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  auto stale = c->Put(
      {.collection = "default", .key = "beta", .value = "b2", .if_version = put->version - 1});
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition) << stale.status().ToString();
  auto cas =
      c->Put({.collection = "default", .key = "beta", .value = "b2", .if_version = put->version});
  ASSERT_TRUE(cas.ok()) << cas.status().ToString();
  auto again = c->Put({.collection = "default",
                       .key = "beta",
                       .value = "b2",
                       .if_version = put->version,
                       .request_id = "r-1"});
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  auto rid = c->Put({.collection = "default", .key = "gamma", .value = "g", .request_id = "r-2"});
  ASSERT_TRUE(rid.ok()) << rid.status().ToString();
  auto rid2 = c->Put({.collection = "default", .key = "gamma", .value = "g", .request_id = "r-2"});
  ASSERT_TRUE(rid2.ok()) << rid2.status().ToString();
  EXPECT_EQ(rid2->version, rid->version) << "a retried request id applied twice";
  kv::BatchRequest batch;
  batch.ops.push_back({kv::BatchOp::Kind::kPut, "default", "delta", "d", std::nullopt});
  batch.ops.push_back({kv::BatchOp::Kind::kDelete, "default", "alpha", "", std::nullopt});
  ASSERT_TRUE(c->Batch(batch).ok());
  auto gone = c->Get({.collection = "default", .key = "alpha"});
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->found);
  auto scan = c->Scan({.collection = "default"});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  std::vector<std::string> keys;
  for (const auto& item : scan->items) keys.push_back(item.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"beta", "delta", "gamma"}));
  EXPECT_GT(scan->read_ts, rid->version);
  // Bad input is refused with the right code, not sent anywhere.
  EXPECT_EQ(c->Put({.collection = "default", .key = "", .value = "v"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Get({.collection = "nope", .key = "k"}).status().code(), StatusCode::kNotFound);

  // The shard's leader dies: writes with request ids go on at the new leader.
  int leader = 0;
  for (int i = 0; i < 100 && leader == 0; ++i) {
    leader = cluster_->ShardLeader();
    if (leader == 0) std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(leader, 0) << "no storage node leads the shard";
  cluster_->proc("storage-" + std::to_string(leader))->Signal(SIGKILL);
  cluster_->proc("storage-" + std::to_string(leader))->Wait();
  std::map<std::string, std::string> acked;
  for (int i = 0; i < 30; ++i) {
    const std::string key = "after-" + std::to_string(i);
    auto w = c->Put({.collection = "default",
                     .key = key,
                     .value = "v" + std::to_string(i),
                     .request_id = "after-" + std::to_string(i)});
    ASSERT_TRUE(w.ok()) << key << ": " << w.status().ToString();
    acked[key] = "v" + std::to_string(i);
  }
  for (const auto& [key, value] : acked) {
    auto r = c->Get({.collection = "default", .key = key});
    ASSERT_TRUE(r.ok()) << key << ": " << r.status().ToString();
    EXPECT_TRUE(r->found) << key;
    EXPECT_EQ(r->value, value) << key;
  }
  EXPECT_GE(c->StorageStats()["map_fetches"], 1u);
}

TEST(ClusterKvFlagsTest, BadFlagsExitTwoWithOneLine) {
  const std::string bin = BinDir() + "/gojodb-api";
  const std::vector<std::vector<std::string>> cases = {
      {bin, "--http-addr", "127.0.0.1:1", "--grpc-addr", "127.0.0.1:2"},
      {bin, "--http-addr", "127.0.0.1:1", "--grpc-addr", "127.0.0.1:2", "--controllers", "nope"},
      {bin, "--http-addr", "127.0.0.1:1", "--grpc-addr", "127.0.0.1:2", "--controllers",
       "127.0.0.1:3", "--services", "reads,teleport"},
      {bin, "--http-addr", "x", "--grpc-addr", "127.0.0.1:2", "--controllers", "127.0.0.1:3"},
      {bin, "--http-addr", "127.0.0.1:1", "--grpc-addr", "127.0.0.1:2", "--controllers",
       "127.0.0.1:3", "--txn-lock-ttl-ms", "0"},
      {bin, "--http-addr", "127.0.0.1:1", "--grpc-addr", "127.0.0.1:2", "--controllers",
       "127.0.0.1:3", "--txn-idle-timeout-ms", "soon"},
  };
  for (const auto& argv : cases) {
    auto r = RunCommand(argv);
    EXPECT_EQ(r.status, 2) << argv.back() << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// A listening address is one process's: a second gateway given the gRPC or the HTTP
// address of a running one fails to start (exit 1, saying why) instead of sharing the
// port with it (SO_REUSEPORT would let the kernel split connections between the two).
TEST(ClusterKvFlagsTest, AnAddressInUseIsRefused) {
  const std::string bin = BinDir() + "/gojodb-api";
  const std::string dir = TempDir("port-in-use");
  const int grpc = FreePort(), http = FreePort(), nowhere = FreePort();
  auto addr = [](int port) { return "127.0.0.1:" + std::to_string(port); };
  Process first(
      {bin, "--grpc-addr", addr(grpc), "--http-addr", addr(http), "--controllers", addr(nowhere)},
      dir + "/first.log");
  httplib::Client probe("127.0.0.1", http);
  probe.set_connection_timeout(0, 200000);
  bool up = false;
  for (int i = 0; i < 150 && !up; ++i) {
    auto r = probe.Get("/healthz");
    up = r && r->status == 200;
    if (!up) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(up) << first.Log();
  for (const auto& [g, h] : {std::pair{grpc, FreePort()}, std::pair{FreePort(), http}}) {
    auto r = RunCommand(
        {bin, "--grpc-addr", addr(g), "--http-addr", addr(h), "--controllers", addr(nowhere)});
    EXPECT_EQ(r.status, 1) << r.err;
    // The last line says which address (gRPC may log its own line before it).
    const std::string last = r.err.substr(r.err.rfind('\n', r.err.size() - 2) + 1);
    EXPECT_EQ(last.rfind("gojodb-api: cannot listen on 127.0.0.1:", 0), 0u) << r.err;
  }
  EXPECT_TRUE(first.Running()) << first.Log();
  first.Signal(SIGTERM);
  EXPECT_EQ(first.Wait(), 0) << first.Log();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gojodb::testing
