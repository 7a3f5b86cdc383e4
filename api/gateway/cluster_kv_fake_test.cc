// ClusterKv against in-process fakes of the controller and of storage nodes (real gRPC
// on loopback): routing over several shards, leader hints that are wrong, descriptors
// that changed, scans stitched across shards and pages, batches that span shards (sent as
// transactions, not as writes), and writes whose outcome is unknown.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "api/gateway/cluster_kv.h"
#include "api/gateway/doc_util.h"
#include "api/grpc/convert.h"
#include "api/grpc/shard_convert.h"
#include "core/mvcc/key_codec.h"
#include "core/sharding/store.h"
#include "gojodb/v1/shard.grpc.pb.h"

namespace gojodb::gateway {
namespace {

using namespace std::chrono_literals;
using sharding::ShardRecord;

constexpr uint32_t kTenant = 1;
constexpr uint32_t kDefault = 1;

std::string Row(std::string_view user) { return mvcc::EncodeRowKey(kTenant, kDefault, user); }

ShardRecord Shard(uint64_t id, std::string start, std::string end, uint64_t leader) {
  ShardRecord d;
  d.id = id;
  d.start_key = std::move(start);
  d.end_key = std::move(end);
  d.epoch = {1, 1};
  d.replicas = {{1, false}, {2, false}};
  d.leader = leader;
  return d;
}

bool InRange(const ShardRecord& s, std::string_view row) {
  return row >= s.start_key && (s.end_key.empty() || row < s.end_key);
}

grpc::Status Fail(grpc::ServerContext* ctx, const Status& s) {
  rpc::AddDetailsToContext(s, ctx);
  return rpc::ToGrpc(s);
}

// The rows and the true shard descriptors, shared by every fake node.
struct World {
  struct Row {
    std::string user_key;
    std::string value;
    uint64_t version = 0;
  };
  std::mutex mu;
  std::map<std::string, Row> rows;              // by row key
  std::map<uint64_t, ShardRecord> shards;       // the truth
  std::map<std::string, uint64_t> request_ids;  // request id -> version
  uint64_t clock = 100;
  int tso_calls = 0;                         // GetTimestamps calls
  std::chrono::milliseconds tso_delay{0};    // each takes this long first
  int writes = 0;                            // applied write requests
  int unknown_write_faults = 0;              // writes to apply and then answer DEADLINE_EXCEEDED
  bool no_batch = false;                     // nodes answer Batch UNIMPLEMENTED (an older version)
  std::chrono::milliseconds batch_delay{0};  // each Batch call takes this long first
  int unary_calls = 0;                       // Write and Get calls
  int batch_calls = 0;                       // Batch calls, the items they carried, and the most
  int batch_items = 0;                       // that were out at once to one node
  int batch_in_flight_max = 0;
  size_t scan_cap = 1000;     // the most rows a node returns per call
  bool name_holders = false;  // EPOCH_NOT_MATCH names the shard that holds the key
};

class FakeNode final : public v1::ShardKv::Service {
 public:
  FakeNode(uint64_t id, World* w) : id_(id), w_(w) {}

  grpc::Status Write(grpc::ServerContext* ctx, const v1::ShardWriteRequest* req,
                     v1::ShardWriteResponse* resp) override {
    std::lock_guard lock(w_->mu);
    ++w_->unary_calls;
    Status s = DoWrite(*req, resp);
    return s.ok() ? grpc::Status::OK : Fail(ctx, s);
  }

  grpc::Status Get(grpc::ServerContext* ctx, const v1::ShardGetRequest* req,
                   v1::ShardGetResponse* resp) override {
    std::lock_guard lock(w_->mu);
    ++w_->unary_calls;
    Status s = DoGet(*req, resp);
    return s.ok() ? grpc::Status::OK : Fail(ctx, s);
  }

  // Each item as its own call would go; statuses in the results.
  grpc::Status Batch(grpc::ServerContext*, const v1::ShardBatchRequest* req,
                     v1::ShardBatchResponse* resp) override {
    std::chrono::milliseconds delay;
    {
      std::lock_guard lock(w_->mu);
      if (w_->no_batch) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no Batch here");
      ++w_->batch_calls;
      w_->batch_items += req->items_size();
      w_->batch_in_flight_max = std::max(w_->batch_in_flight_max, ++batch_in_flight_);
      delay = w_->batch_delay;
    }
    std::this_thread::sleep_for(delay);
    std::lock_guard lock(w_->mu);
    --batch_in_flight_;
    for (const auto& item : req->items()) {
      auto* r = resp->add_results();
      Status s = item.has_write() ? DoWrite(item.write(), r->mutable_write())
                                  : DoGet(item.get(), r->mutable_get());
      rpc::SetStatus(s, r);
    }
    return grpc::Status::OK;
  }

  Status DoWrite(const v1::ShardWriteRequest& request, v1::ShardWriteResponse* resp) {
    const auto* req = &request;
    auto d = Check(req->route(), /*leader=*/true, req->mutations(0).row_key());
    if (!d.ok()) return d.status();
    for (const auto& m : req->mutations()) {
      if (!InRange(*d, m.row_key())) return EpochNotMatch(*d, m.row_key());
    }
    if (!req->request_id().empty()) {
      if (auto it = w_->request_ids.find(req->request_id()); it != w_->request_ids.end()) {
        resp->set_version(it->second);
        return Status::OK();
      }
    }
    for (const auto& m : req->mutations()) {
      if (!m.has_if_version()) continue;
      auto it = w_->rows.find(m.row_key());
      const uint64_t current = it == w_->rows.end() ? 0 : it->second.version;
      if (current != m.if_version()) {
        return Status::FailedPrecondition("version mismatch")
            .WithDetail("current_version", std::to_string(current));
      }
    }
    const uint64_t ts = ++w_->clock;
    for (const auto& m : req->mutations()) {
      if (m.delete_()) {
        resp->set_existed(w_->rows.erase(m.row_key()) > 0);
      } else {
        std::string user;
        (void)mvcc::DecodeComparableBytes(
            std::string_view(m.row_key()).substr(mvcc::CollectionPrefix(kTenant, kDefault).size()),
            &user);
        w_->rows[m.row_key()] = {user, m.value(), ts};
      }
    }
    if (!req->request_id().empty()) w_->request_ids[req->request_id()] = ts;
    ++w_->writes;
    resp->set_version(ts);
    if (w_->unknown_write_faults > 0) {
      --w_->unknown_write_faults;
      return Status::DeadlineExceeded("the proposal did not apply in time");
    }
    return Status::OK();
  }

  Status DoGet(const v1::ShardGetRequest& request, v1::ShardGetResponse* resp) {
    const auto* req = &request;
    auto d = Check(req->route(), req->consistency() != v1::READ_STALE, req->row_key());
    if (!d.ok()) return d.status();
    if (!InRange(*d, req->row_key())) return EpochNotMatch(*d, req->row_key());
    if (auto it = w_->rows.find(req->row_key()); it != w_->rows.end()) {
      resp->set_found(true);
      resp->set_value(it->second.value);
      resp->set_version(it->second.version);
    }
    return Status::OK();
  }

  grpc::Status Scan(grpc::ServerContext* ctx, const v1::ShardScanRequest* req,
                    v1::ShardScanResponse* resp) override {
    std::lock_guard lock(w_->mu);
    ++scans;
    auto d = Check(req->route(), req->consistency() != v1::READ_STALE);
    if (!d.ok()) return Fail(ctx, d.status());
    const std::string prefix = mvcc::CollectionPrefix(req->tenant(), req->collection());
    std::string lo = mvcc::EncodeRowKey(req->tenant(), req->collection(), req->start());
    std::string hi = req->end().empty()
                         ? mvcc::PrefixSuccessor(prefix)
                         : mvcc::EncodeRowKey(req->tenant(), req->collection(), req->end());
    lo = std::max(lo, d->start_key);
    if (!d->end_key.empty()) hi = std::min(hi, d->end_key);
    std::vector<const World::Row*> in;
    for (auto it = w_->rows.lower_bound(lo); it != w_->rows.end() && it->first < hi; ++it) {
      in.push_back(&it->second);
    }
    if (req->reverse()) std::reverse(in.begin(), in.end());
    const size_t n = std::min<size_t>({in.size(), req->limit(), w_->scan_cap});
    for (size_t i = 0; i < n; ++i) {
      auto* item = resp->add_items();
      item->set_key(in[i]->user_key);
      item->set_value(in[i]->value);
      item->set_version(in[i]->version);
    }
    if (n < in.size()) {
      resp->set_has_next(true);
      resp->set_next(req->reverse() ? in[n - 1]->user_key : in[n]->user_key);
    }
    return grpc::Status::OK;
  }

  int scans = 0;

 private:
  // As a storage node answers: with the shard that holds `key` now, when asked to.
  Status EpochNotMatch(const ShardRecord& d, const std::string& key) {
    std::optional<ShardRecord> holder;
    if (w_->name_holders && !key.empty() && !InRange(d, key)) {
      for (const auto& [id, s] : w_->shards) {
        if (InRange(s, key)) holder = s;
      }
    }
    return sharding::EpochNotMatchError(d, holder);
  }

  Result<ShardRecord> Check(const v1::ShardRoute& route, bool leader, const std::string& key = "") {
    auto it = w_->shards.find(route.shard());
    if (it == w_->shards.end()) return sharding::ShardNotFoundError(route.shard());
    const ShardRecord& d = it->second;
    if (d.epoch.version != route.version()) return EpochNotMatch(d, key);
    if (leader && d.leader != id_) return sharding::NotLeaderError(d.id, d.leader);
    return d;
  }

  const uint64_t id_;
  World* const w_;
  int batch_in_flight_ = 0;  // GUARDED_BY(w_->mu)
};

// The controller's map (possibly stale), timestamps and catalog.
class FakeController final : public v1::Controller::Service, public v1::Catalog::Service {
 public:
  grpc::Status GetShardMap(grpc::ServerContext*, const v1::GetShardMapRequest* req,
                           v1::GetShardMapResponse* resp) override {
    std::unique_lock lock(mu);
    if (req->wait_ms() > 0) {
      cv.wait_for(lock, std::chrono::milliseconds(std::min<uint32_t>(req->wait_ms(), 200)),
                  [&] { return version > req->known_version(); });
    }
    resp->set_version(version);
    for (const auto& s : shards) {
      auto* p = resp->add_shards();
      p->set_id(s.id);
      p->set_start_key(s.start_key);
      p->set_end_key(s.end_key);
      p->set_conf_ver(s.epoch.conf_ver);
      p->set_version(s.epoch.version);
      for (const auto& r : s.replicas) p->add_replicas()->set_node(r.node);
      p->set_leader(s.leader);
    }
    for (const auto& [id, addr] : nodes) {
      auto* n = resp->add_nodes();
      n->set_id(id);
      n->set_grpc_addr(addr);
    }
    return grpc::Status::OK;
  }
  grpc::Status GetTimestamps(grpc::ServerContext*, const v1::GetTimestampsRequest* req,
                             v1::GetTimestampsResponse* resp) override {
    std::this_thread::sleep_for(world->tso_delay);
    std::lock_guard lock(world->mu);
    ++world->tso_calls;
    resp->set_first(++world->clock);
    world->clock += req->count() - 1;
    resp->set_count(req->count());
    return grpc::Status::OK;
  }
  grpc::Status DescribeCollection(grpc::ServerContext* ctx,
                                  const v1::DescribeCollectionRequest* req,
                                  v1::CollectionInfo* resp) override {
    if (req->name() != "default") {
      return Fail(ctx, Status::NotFound("collection '" + req->name() + "' does not exist"));
    }
    resp->set_name("default");
    resp->set_id(kDefault);
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::condition_variable cv;
  uint64_t version = 1;
  std::vector<ShardRecord> shards;
  std::map<uint64_t, std::string> nodes;
  World* world = nullptr;
};

class FakeClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Three shards of the default collection: [.., "h"), ["h", "p"), ["p", ..); node 2
    // leads all of them.
    const std::vector<ShardRecord> truth = {
        Shard(1, "", Row("h"), 2), Shard(2, Row("h"), Row("p"), 2), Shard(3, Row("p"), "", 2)};
    for (const auto& s : truth) world_.shards[s.id] = s;
    for (uint64_t id : {1, 2}) {
      nodes_[id] = std::make_unique<FakeNode>(id, &world_);
      grpc::ServerBuilder b;
      int port = 0;
      b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
      b.RegisterService(nodes_[id].get());
      servers_.push_back(b.BuildAndStart());
      ASSERT_NE(port, 0);
      controller_.nodes[id] = "127.0.0.1:" + std::to_string(port);
    }
    // The controller's map names node 1 as every shard's leader: a stale hint.
    for (auto s : truth) {
      s.leader = 1;
      controller_.shards.push_back(s);
    }
    controller_.world = &world_;
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(static_cast<v1::Controller::Service*>(&controller_));
    b.RegisterService(static_cast<v1::Catalog::Service*>(&controller_));
    servers_.push_back(b.BuildAndStart());
    ASSERT_NE(port, 0);

    ClusterKvOptions o;
    o.controllers = {"127.0.0.1:" + std::to_string(port)};
    o.request_timeout = 3s;
    o.map_wait = 200ms;
    auto kv = ClusterKv::Start(o);
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    kv_ = std::move(*kv);
    for (int i = 0; i < 200 && !kv_->Ready().ok(); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(kv_->Ready().ok()) << kv_->Ready().ToString();
  }
  void TearDown() override {
    kv_.reset();
    for (auto& s : servers_) s->Shutdown(std::chrono::system_clock::now() + 1s);
  }

  // The second shard moves to a new epoch and shrinks to ["h", "m"); a new shard 4 takes
  // ["m", "p"). The controller's map is left as it was.
  void SplitSecondShard() {
    std::lock_guard lock(world_.mu);
    auto& s = world_.shards[2];
    s.end_key = Row("m");
    s.epoch.version = 2;
    ShardRecord n = Shard(4, Row("m"), Row("p"), 2);
    n.epoch.version = 2;
    world_.shards[4] = n;
  }

  void PutAll(const std::string& keys) {
    for (char c : keys) {
      auto r = kv_->Put({"", std::string(1, c), std::string("v") + c, std::nullopt, ""});
      ASSERT_TRUE(r.ok()) << c << ": " << r.status().ToString();
    }
  }
  std::string Keys(const kv::ScanResult& r) {
    std::string out;
    for (const auto& i : r.items) out += i.key;
    return out;
  }
  // Pages through a scan with `limit` rows per page; returns the keys in order.
  std::string Paged(size_t limit, bool reverse, int* pages) {
    kv::ScanRequest req;
    req.limit = limit;
    req.reverse = reverse;
    std::string out;
    *pages = 0;
    for (;;) {
      auto r = kv_->Scan(req);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) return out;
      ++*pages;
      out += Keys(*r);
      if (!r->next) return out;
      (reverse ? req.end : req.start) = *r->next;
      if (*pages > 100) return out;
    }
  }

  World world_;
  FakeController controller_;
  std::map<uint64_t, std::unique_ptr<FakeNode>> nodes_;
  std::vector<std::unique_ptr<grpc::Server>> servers_;
  std::unique_ptr<ClusterKv> kv_;
};

// Without a schema a write builds only the members its indexes read (nested paths
// under them whole): the verdict and the index mutations are those of the whole
// document. With a schema the document is built whole, for the schema to check.
TEST(DocRulesTest, AWriteBuildsOnlyTheFieldsItsIndexesRead) {
  kv::CollectionInfo info;
  info.name = "c";
  info.id = 7;
  info.indexes = {{.name = "ab_c", .fields = {"a.b", "c"}, .id = 11},
                  {.name = "u", .fields = {"e"}, .unique = true, .id = 12},
                  {.name = "old", .fields = {"z"}, .id = 13, .state = kv::kIndexDeleteOnly}};
  auto rules = RulesOf(info);
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_EQ(rules->index_fields, (std::vector<std::string>{"a", "c", "e", "z"}));
  const std::vector<std::string> docs = {
      R"({"a": {"b": [1, 2], "x": 1}, "c": "s", "e": 5, "z": null, "big": "zzz"})",
      R"({"c": 1.5, "e": "u", "a": {"b": {"deep": [true]}}, "a": {"b": 2}})",
      R"({"other": 1, "z": [1, {"y": 2}]})",
      R"({"e": 18446744073709551615, "c": -7})",
  };
  for (size_t i = 0; i < docs.size(); ++i) {
    for (size_t j = 0; j < docs.size(); ++j) {
      auto whole_old = document::ParseDocument(docs[i]);
      auto whole_new = document::ParseDocument(docs[j]);
      auto some_old = rules->ParseForWrite(docs[i]);
      auto some_new = rules->ParseForWrite(docs[j]);
      ASSERT_TRUE(whole_old.ok() && whole_new.ok() && some_old.ok() && some_new.ok());
      EXPECT_FALSE(some_new->contains("big") || some_new->contains("other"));
      std::vector<txn::TxnMutation> want, got;
      std::vector<UniqueClaim> want_claims, got_claims;
      AppendEntryMutations(*rules, "k", &*whole_old, &*whole_new, &want, &want_claims);
      AppendEntryMutations(*rules, "k", &*some_old, &*some_new, &got, &got_claims);
      ASSERT_EQ(got.size(), want.size()) << i << " -> " << j;
      for (size_t m = 0; m < want.size(); ++m) {
        EXPECT_EQ(got[m].kind, want[m].kind);
        EXPECT_EQ(got[m].row_key, want[m].row_key);
        EXPECT_EQ(got[m].value, want[m].value);
        EXPECT_EQ(got[m].if_version, want[m].if_version);
      }
      EXPECT_EQ(got_claims.size(), want_claims.size());
      EXPECT_EQ(CheckDocument(*rules, "k", *some_new, 4096).ok(),
                CheckDocument(*rules, "k", *whole_new, 4096).ok());
    }
  }
  EXPECT_FALSE(rules->ParseForWrite(R"({"a": )").ok());
  EXPECT_FALSE(rules->ParseForWrite("[1]").ok());
  info.schema_json = R"({"fields": {"c": {"type": "string"}}})";
  auto with_schema = RulesOf(info);
  ASSERT_TRUE(with_schema.ok());
  auto whole = with_schema->ParseForWrite(docs[0]);
  ASSERT_TRUE(whole.ok());
  EXPECT_TRUE(whole->contains("big"));
}

TEST_F(FakeClusterTest, WritesAndReadsFindTheLeaderOfEachShard) {
  PutAll("aiz");  // one key in each shard
  EXPECT_EQ(world_.writes, 3);
  for (char c : std::string("aiz")) {
    for (auto consistency : {kv::Consistency::kLinearizable, kv::Consistency::kStale}) {
      auto g = kv_->Get({"", std::string(1, c), consistency, 0});
      ASSERT_TRUE(g.ok()) << g.status().ToString();
      EXPECT_TRUE(g->found);
      EXPECT_EQ(g->value, std::string("v") + c);
    }
  }
  auto missing = kv_->Get({"", "b", kv::Consistency::kLinearizable, 0});
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->found);
  EXPECT_EQ(kv_->Get({"nope", "b", kv::Consistency::kLinearizable, 0}).status().code(),
            StatusCode::kNotFound);

  // Outcomes pass through unchanged.
  auto cond = kv_->Put({"", "a", "x", 0, ""});
  EXPECT_EQ(cond.status().code(), StatusCode::kFailedPrecondition);
  bool named = false;
  for (const auto& [k, v] : cond.status().details()) named = named || k == "current_version";
  EXPECT_TRUE(named) << cond.status().ToString();

  auto del = kv_->Delete({"", "i", std::nullopt, ""});
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_TRUE(del->existed);
}

TEST_F(FakeClusterTest, ScansStitchShardsAndPages) {
  const std::string all = "abcdefghijklmnopqrstuvwxyz";
  PutAll(all);
  std::string rev(all.rbegin(), all.rend());

  auto r = kv_->Scan({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Keys(*r), all);
  EXPECT_FALSE(r->next.has_value());
  EXPECT_GT(r->read_ts, 0u);

  kv::ScanRequest req;
  req.reverse = true;
  r = kv_->Scan(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Keys(*r), rev);

  // Pages of every size, some ending exactly at a shard's end ("h" and "p" start shards).
  for (size_t limit : {1, 3, 7, 8, 16, 25, 26, 27}) {
    int pages = 0;
    EXPECT_EQ(Paged(limit, false, &pages), all) << limit;
    EXPECT_EQ(pages, static_cast<int>((all.size() + limit - 1) / limit)) << limit;
    EXPECT_EQ(Paged(limit, true, &pages), rev) << limit;
    EXPECT_EQ(pages, static_cast<int>((all.size() + limit - 1) / limit)) << limit;
  }

  // A page that fills exactly at a shard's end still says what comes next.
  req = {};
  req.limit = 7;  // a..g; the first shard also holds nothing else
  r = kv_->Scan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Keys(*r), "abcdefg");
  ASSERT_TRUE(r->next.has_value());
  EXPECT_EQ(*r->next, "h");

  // Nodes that answer fewer rows than asked.
  world_.scan_cap = 2;
  int pages = 0;
  EXPECT_EQ(Paged(5, false, &pages), all);
  EXPECT_EQ(Paged(5, true, &pages), rev);

  // Bounds and prefixes inside and across shards.
  req = {};
  req.start = "f";
  req.end = "r";
  r = kv_->Scan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Keys(*r), "fghijklmnopq");
  req.reverse = true;
  r = kv_->Scan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Keys(*r), "qponmlkjihgf");
  req = {};
  req.prefix = "p";
  r = kv_->Scan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Keys(*r), "p");

  // A snapshot scan reports its timestamp; a stale one reports 0.
  req = {};
  req.consistency = kv::Consistency::kSnapshot;
  req.at = 12345;
  r = kv_->Scan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->read_ts, 12345u);
  req.consistency = kv::Consistency::kStale;
  req.at = 0;
  r = kv_->Scan(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->read_ts, 0u);
  EXPECT_EQ(Keys(*r), all);
}

// Storage nodes of a version without ShardKv.Query (these fakes): queries and
// aggregations read the rows at the router instead, across the shards, with the same
// answers.
TEST_F(FakeClusterTest, QueriesOnNodesWithoutShardQueryRunAtTheRouter) {
  const std::string all = "abcdefghijklmnopqrstuvwxyz";
  for (size_t i = 0; i < all.size(); ++i) {
    const std::string doc =
        "{\"n\": " + std::to_string(i) + ", \"g\": " + std::to_string(i % 3) + "}";
    ASSERT_TRUE(kv_->Put({"", all.substr(i, 1), doc, std::nullopt, ""}).ok());
  }
  kv::QueryRequest q;
  q.filter_json = R"({"n": {"gte": 5}})";
  q.limit = 8;
  q.explain = true;
  std::string keys;
  for (int page = 0; page < 10; ++page) {
    auto r = kv_->Query(q);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(nlohmann::json::parse(r->plan_json)["pushed_down"], false) << r->plan_json;
    for (const auto& item : r->items) keys += item.key;
    if (r->cursor.empty()) break;
    q.cursor = r->cursor;
  }
  EXPECT_EQ(keys, all.substr(5));
  kv::AggregateRequest a;
  a.filter_json = R"({"n": {"lt": 20}})";
  a.group_by_json = R"(["g"])";
  a.aggregates_json = R"({"c": {"count": "*"}, "s": {"sum": "n"}})";
  a.explain = true;
  auto r = kv_->Aggregate(a);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(nlohmann::json::parse(r->groups_json), nlohmann::json::parse(R"([
      {"key": {"g": 0}, "values": {"c": 7, "s": 63}},
      {"key": {"g": 1}, "values": {"c": 7, "s": 70}},
      {"key": {"g": 2}, "values": {"c": 6, "s": 57}}])"));
  EXPECT_EQ(nlohmann::json::parse(r->plan_json)["pushed_down"], false) << r->plan_json;
}

TEST_F(FakeClusterTest, LinearizableScansTakeAFreshTimestampEachTime) {
  PutAll("ab");
  auto first = kv_->Scan({});
  ASSERT_TRUE(first.ok());
  PutAll("c");
  auto second = kv_->Scan({});
  ASSERT_TRUE(second.ok());
  EXPECT_GT(second->read_ts, first->read_ts);
  EXPECT_EQ(Keys(*second), "abc");
}

// A batch within one shard is one write; across shards it is a transaction, never a
// write per shard (the fakes have no Txn: it fails, and nothing was written).
TEST_F(FakeClusterTest, OnlyBatchesWithinOneShardAreOneWrite) {
  kv::BatchRequest b;
  b.ops.push_back({kv::BatchOp::Kind::kPut, "", "a", "1", std::nullopt});
  b.ops.push_back({kv::BatchOp::Kind::kPut, "", "b", "2", std::nullopt});
  auto ok = kv_->Batch(b);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();

  b.ops.push_back({kv::BatchOp::Kind::kPut, "", "z", "3", std::nullopt});
  const int writes = world_.writes;
  auto across = kv_->Batch(b);
  EXPECT_EQ(across.status().code(), StatusCode::kUnimplemented) << across.status().ToString();
  EXPECT_EQ(world_.writes, writes);  // no write was sent
}

TEST_F(FakeClusterTest, ChangedDescriptorsAreLearntFromTheNodes) {
  PutAll("j");
  SplitSecondShard();  // the controller's map does not know yet
  auto g = kv_->Get({"", "j", kv::Consistency::kLinearizable, 0});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_TRUE(g->found);

  // A key in the new shard is served once the controller's map has it.
  std::thread publish([&] {
    std::this_thread::sleep_for(300ms);
    std::lock_guard world(world_.mu);
    std::lock_guard lock(controller_.mu);
    controller_.shards.clear();
    for (const auto& [id, s] : world_.shards) controller_.shards.push_back(s);
    controller_.version = 2;
    controller_.cv.notify_all();
  });
  auto put = kv_->Put({"", "n", "vn", std::nullopt, ""});
  publish.join();
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  auto r = kv_->Scan({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Keys(*r), "jn");
}

// A node that names the shard now holding the key (a split's new shard) sends the
// request there at once: the controller's map never learns of the split in this test.
TEST_F(FakeClusterTest, AKeyInASplitsNewShardIsFoundThroughTheNode) {
  PutAll("j");
  {
    std::lock_guard lock(world_.mu);
    world_.name_holders = true;
  }
  SplitSecondShard();
  auto put = kv_->Put({"", "n", "vn", std::nullopt, ""});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  auto got = kv_->Get({"", "n", kv::Consistency::kLinearizable, 0});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "vn");
  std::lock_guard lock(controller_.mu);
  EXPECT_EQ(controller_.version, 1u) << "the map moved on; the test proves nothing";
}

TEST_F(FakeClusterTest, WritesWithUnknownOutcomesAreResentOnlyWithARequestId) {
  world_.unknown_write_faults = 1;
  auto put = kv_->Put({"", "a", "1", std::nullopt, ""});
  EXPECT_EQ(put.status().code(), StatusCode::kDeadlineExceeded) << put.status().ToString();
  EXPECT_EQ(world_.writes, 1);  // applied once, not resent

  world_.unknown_write_faults = 1;
  put = kv_->Put({"", "b", "2", std::nullopt, "rid-1"});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(world_.writes, 2);  // resent, and the request id made the retry apply once

  // Reads are always retried.
  auto g = kv_->Get({"", "b", kv::Consistency::kLinearizable, 0});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->version, put->version);
}

TEST_F(FakeClusterTest, AnUnreachableNodeIsPassedOver) {
  PutAll("a");
  // Node 1 (the map's stale leader hint) goes away; node 2 still answers.
  servers_[0]->Shutdown(std::chrono::system_clock::now());
  std::this_thread::sleep_for(200ms);
  auto g = kv_->Get({"", "a", kv::Consistency::kStale, 0});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_TRUE(g->found);
  auto put = kv_->Put({"", "b", "2", std::nullopt, ""});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
}

TEST_F(FakeClusterTest, RequestsWaitingForANodeGoOutTogether) {
  world_.batch_delay = 20ms;  // calls take a while, so that requests queue behind them
  constexpr int kThreads = 24;
  constexpr int kPerThread = 8;
  std::vector<std::map<std::string, uint64_t>> written(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Keys of all three shards (each led by node 2).
        const std::string key = std::string(1, "bkr"[i % 3]) + std::to_string(t * 100 + i);
        auto put = kv_->Put({"", key, "v" + key, std::nullopt, ""});
        ASSERT_TRUE(put.ok()) << key << ": " << put.status().ToString();
        written[t][key] = put->version;
        auto get = kv_->Get({"", key, kv::Consistency::kLinearizable, 0});
        ASSERT_TRUE(get.ok()) << key << ": " << get.status().ToString();
        EXPECT_TRUE(get->found) << key;
        EXPECT_EQ(get->value, "v" + key);
        EXPECT_EQ(get->version, put->version) << key;
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> versions;
  for (const auto& w : written) {
    for (const auto& [key, version] : w) versions.insert(version);
  }
  EXPECT_EQ(versions.size(), static_cast<size_t>(kThreads * kPerThread)) << "one write each";
  std::lock_guard lock(world_.mu);
  EXPECT_EQ(world_.writes, kThreads * kPerThread);
  EXPECT_EQ(world_.unary_calls, 0);
  // Requests went out together: fewer calls than requests, never more than two calls
  // out to the node at once (one of gets, one of writes).
  // (More items than requests: the map's stale leader hint sends the first requests of
  // each shard to node 1, which answers NOT_LEADER.)
  EXPECT_GE(world_.batch_items, 2 * kThreads * kPerThread);
  EXPECT_LT(world_.batch_calls * 2, world_.batch_items);
  EXPECT_LE(world_.batch_in_flight_max, 2);
}

TEST_F(FakeClusterTest, NodesWithoutBatchGetOneCallPerRequest) {
  world_.no_batch = true;
  PutAll("aiz");
  for (char c : std::string("aiz")) {
    auto g = kv_->Get({"", std::string(1, c), kv::Consistency::kLinearizable, 0});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(g->value, std::string("v") + c);
  }
  auto cond = kv_->Put({"", "a", "x", 0, ""});
  EXPECT_EQ(cond.status().code(), StatusCode::kFailedPrecondition) << cond.status().ToString();
  std::lock_guard lock(world_.mu);
  EXPECT_EQ(world_.batch_calls, 0);
  EXPECT_GE(world_.unary_calls, 7);
}

// A write of 256 KiB or more (a bulk load's part) is a batch already: it goes as its own
// call at once instead of waiting behind the node's batched call in flight.
TEST_F(FakeClusterTest, ALargeWriteDoesNotWaitBehindABatchedCall) {
  PutAll("at");  // node 2 learnt as the leader of shards 1 and 3
  int calls = 0;
  {
    std::lock_guard lock(world_.mu);
    world_.batch_delay = 2s;
    calls = world_.batch_calls;
  }
  std::thread small([&] {
    auto put = kv_->Put({"", "s", "small", std::nullopt, ""});
    EXPECT_TRUE(put.ok()) << put.status().ToString();
  });
  auto small_out = [&] {
    std::lock_guard lock(world_.mu);
    return world_.batch_calls > calls;
  };
  for (int i = 0; i < 200 && !small_out(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(small_out());
  auto big = kv_->Put({"", "b", std::string(300 << 10, 'x'), std::nullopt, ""});
  EXPECT_TRUE(big.ok()) << big.status().ToString();
  {
    std::lock_guard lock(world_.mu);
    EXPECT_EQ(world_.rows.count(Row("b")), 1u);
    EXPECT_EQ(world_.rows.count(Row("s")), 0u) << "the large write waited for the batched call";
    EXPECT_EQ(world_.unary_calls, 1);
  }
  small.join();
  std::lock_guard lock(world_.mu);
  EXPECT_EQ(world_.rows.count(Row("s")), 1u);
}

TEST_F(FakeClusterTest, ARequestThatFindsNoFreeCallByItsDeadlineIsNotSent) {
  world_.batch_delay = 1s;
  auto channel = grpc::CreateChannel(controller_.nodes[2], grpc::InsecureChannelCredentials());
  NodeBatcher::Options o;
  o.max_in_flight = 1;
  NodeBatcher batcher(rpc::NewGrpcShardClient(channel), o);
  auto write = [](const std::string& key) {
    v1::ShardBatchItem item;
    auto* w = item.mutable_write();
    w->mutable_route()->set_shard(1);
    w->mutable_route()->set_conf_ver(1);
    w->mutable_route()->set_version(1);
    auto* m = w->add_mutations();
    m->set_row_key(Row(key));
    m->set_value("v");
    return item;
  };
  std::thread first([&] {
    v1::ShardBatchResult r;
    const auto item = write("a");
    Status s = batcher.Call(item, std::chrono::steady_clock::now() + 5s, &r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(rpc::StatusOf(r).code(), StatusCode::kOk) << r.message();
  });
  for (int i = 0; i < 200 && batcher.calls() == 0; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(batcher.calls(), 1u);
  v1::ShardBatchResult r;
  const auto second = write("b");
  Status s = batcher.Call(second, std::chrono::steady_clock::now() + 100ms, &r);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_EQ(ClassifyNodeError(s).verdict, NodeVerdict::kBusy) << "safe to resend";
  first.join();
  EXPECT_EQ(batcher.calls(), 1u);
  std::lock_guard lock(world_.mu);
  EXPECT_EQ(world_.writes, 1);
  EXPECT_EQ(world_.rows.count(Row("b")), 0u);
}

// A server that stops does not wait for its requests to retry until their deadline.
TEST_F(FakeClusterTest, ShutdownEndsTheRetriesOfARequestInFlight) {
  {
    std::lock_guard lock(world_.mu);
    for (auto& [id, s] : world_.shards) s.leader = 0;
  }
  const auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] {
    std::this_thread::sleep_for(300ms);
    kv_->Shutdown();
  });
  auto put = kv_->Put({"", "a", "1", std::nullopt, ""});
  const auto took = std::chrono::steady_clock::now() - start;
  stopper.join();
  EXPECT_EQ(put.status().code(), StatusCode::kUnavailable) << put.status().ToString();
  // The request's deadline is 3 s away: it ended at the shutdown, not at its deadline.
  EXPECT_LT(took, 2s);
  auto after = kv_->Put({"", "b", "1", std::nullopt, ""});
  EXPECT_EQ(after.status().code(), StatusCode::kUnavailable) << after.status().ToString();
}

TEST_F(FakeClusterTest, NoLeaderAnywhereIsUnavailableAtTheDeadline) {
  {
    std::lock_guard lock(world_.mu);
    for (auto& [id, s] : world_.shards) s.leader = 0;
  }
  const auto start = std::chrono::steady_clock::now();
  auto put = kv_->Put({"", "a", "1", std::nullopt, ""});
  EXPECT_EQ(put.status().code(), StatusCode::kUnavailable) << put.status().ToString();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 2900ms);
  EXPECT_TRUE(put.status().details().empty()) << put.status().ToString();
}

// Linearizable scans take a fresh timestamp each. Concurrent ones share the controller
// calls (one per round trip), each still gets a timestamp of its own from a call sent
// after it asked, and every timestamp is above every one handed out before its call.
TEST_F(FakeClusterTest, FreshTimestampsShareTheControllersCalls) {
  world_.tso_delay = 20ms;
  constexpr int kThreads = 16, kEach = 5;
  std::mutex mu;
  std::vector<uint64_t> all;
  std::atomic<int> stale{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        uint64_t before;
        {
          std::lock_guard lock(world_.mu);
          before = world_.clock;  // handed out so far
        }
        auto r = kv_->Scan({});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        if (r->read_ts <= before) ++stale;
        std::lock_guard lock(mu);
        all.push_back(r->read_ts);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(stale.load(), 0);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "a timestamp was shared";
  EXPECT_EQ(all.size(), size_t{kThreads * kEach});
  EXPECT_LT(world_.tso_calls, kThreads * kEach / 2) << "calls were not shared";
}

}  // namespace
}  // namespace gojodb::gateway
