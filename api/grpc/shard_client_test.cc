// A storage node's two ShardClients answer alike: each request, sent over gRPC to its
// ShardKvService and called on that service directly (the standalone server's path),
// gets the same status code, message and details and the same response.
#include "api/grpc/shard_client.h"

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/grpc/shard_service.h"
#include "core/document/document.h"
#include "core/mvcc/key_codec.h"
#include "core/mvcc/timestamp_oracle.h"
#include "core/sharding/shard_machine.h"
#include "core/storage_engine/rocksdb_engine.h"
#include "internal/clock.h"

namespace gojodb::rpc {
namespace {

using namespace std::chrono_literals;

// A one-member group sends nothing.
class NoTransports final : public sharding::GroupTransports {
 public:
  std::unique_ptr<replication::Transport> ForGroup(uint64_t) override {
    class Drop final : public replication::Transport {
     public:
      void Send(std::vector<consensus::Message>) override {}
    };
    return std::make_unique<Drop>();
  }
};

class ShardClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gojodb-shard-client-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    for (const char* sub : {"tso", "db"}) std::filesystem::create_directories(dir_ / sub);
    storage::EngineOptions eo;
    eo.path = (dir_ / "tso").string();
    tso_engine_ = std::move(storage::OpenEngine(eo)).value();
    tso_ = std::move(mvcc::LocalTimestampOracle::Open(tso_engine_.get(), SystemClock::Default()))
               .value();
    eo.path = (dir_ / "db").string();
    engine_ = std::move(storage::OpenEngine(eo)).value();
    sharding::StoreOptions so;
    so.node_id = 1;
    so.tick = 5ms;
    store_ = std::move(sharding::Store::Open(so, engine_.get(), tso_.get(), SystemClock::Default(),
                                             &transports_))
                 .value();
    sharding::ShardRecord d;
    d.id = 1;
    d.replicas.push_back({1, false});
    ASSERT_TRUE(store_->CreateReplica(d).ok());
    for (int i = 0; i < 400; ++i) {
      auto st = store_->GroupStatusOf(1);
      auto desc = store_->DescriptorOf(1);
      if (st.ok() && st->is_leader && desc.ok() && sharding::Initialized(*desc)) break;
      std::this_thread::sleep_for(5ms);
    }
    service_ = std::make_unique<ShardKvService>(store_.get(), 5000ms);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(port, 0);
    remote_ = NewGrpcShardClient(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                     grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Shutdown();
    server_.reset();
    service_.reset();
    store_.reset();
    engine_.reset();
    tso_.reset();
    tso_engine_.reset();
    std::filesystem::remove_all(dir_);
  }

  v1::ShardRoute Route(uint64_t shard = 1) {
    auto d = store_->DescriptorOf(shard);
    v1::ShardRoute r;
    r.set_shard(shard);
    if (d.ok()) {
      r.set_conf_ver(d->epoch.conf_ver);
      r.set_version(d->epoch.version);
    }
    return r;
  }
  static std::string Row(std::string_view key) { return mvcc::EncodeRowKey(0, 7, key); }

  // Sends `req` both ways, each into a response that holds what `*out` holds (an
  // earlier answer: a call replaces it, or clears it when it fails), expects the same
  // outcome, and leaves it in `*out`.
  template <typename Req, typename Resp>
  Status Both(Status (ShardClient::*method)(const Req&, Resp*, ShardClient::Deadline),
              const Req& req, Resp* out) {
    Resp over_grpc = *out, direct = *out;
    Status g = (remote_.get()->*method)(req, &over_grpc, std::chrono::steady_clock::now() + 5s);
    Status d = (static_cast<ShardClient*>(service_.get())->*method)(
        req, &direct, std::chrono::steady_clock::now() + 5s);
    EXPECT_EQ(g.code(), d.code()) << g.ToString() << " / " << d.ToString();
    EXPECT_EQ(g.message(), d.message());
    auto sorted = [](auto v) {
      std::sort(v.begin(), v.end());
      return v;
    };
    EXPECT_EQ(sorted(g.details()), sorted(d.details()));  // (metadata keeps no order)
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(over_grpc, direct))
        << over_grpc.ShortDebugString() << "\n"
        << direct.ShortDebugString();
    if (!g.ok()) EXPECT_EQ(direct.ByteSizeLong(), 0u) << "a failed call leaves no response";
    *out = std::move(direct);
    return d;
  }

  std::filesystem::path dir_;
  NoTransports transports_;
  std::unique_ptr<storage::Engine> tso_engine_, engine_;
  std::unique_ptr<mvcc::LocalTimestampOracle> tso_;
  std::unique_ptr<sharding::Store> store_;
  std::unique_ptr<ShardKvService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<ShardClient> remote_;
};

TEST_F(ShardClientTest, BothPathsAnswerAlike) {
  // Rows to read, written once (over gRPC).
  for (const char* k : {"a", "b", "c"}) {
    v1::ShardWriteRequest w;
    *w.mutable_route() = Route();
    auto* m = w.add_mutations();
    m->set_row_key(Row(k));
    m->set_value(k[0] == 'a' ? R"({"n":1})" : R"({"n":2})");
    v1::ShardWriteResponse wr;
    ASSERT_TRUE(remote_->Write(w, &wr, std::chrono::steady_clock::now() + 5s).ok());
  }
  const uint64_t ts = tso_->Next().value();

  v1::ShardGetRequest get;
  *get.mutable_route() = Route();
  get.set_row_key(Row("b"));
  get.set_consistency(v1::READ_SNAPSHOT);
  get.set_at(ts);
  v1::ShardGetResponse get_resp;
  ASSERT_TRUE(Both(&ShardClient::Get, get, &get_resp).ok());
  EXPECT_TRUE(get_resp.found());
  EXPECT_EQ(get_resp.value(), R"({"n":2})");

  // Routed with an old epoch: EPOCH_NOT_MATCH, with the descriptor in its details.
  v1::ShardGetRequest stale = get;
  stale.mutable_route()->set_version(get.route().version() + 1);
  Status s = Both(&ShardClient::Get, stale, &get_resp);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(s.details().empty());
  // A shard this node does not have.
  v1::ShardGetRequest unknown = get;
  unknown.mutable_route()->set_shard(99);
  EXPECT_FALSE(Both(&ShardClient::Get, unknown, &get_resp).ok());
  // A snapshot read with no timestamp.
  v1::ShardGetRequest no_ts = get;
  no_ts.set_at(0);
  EXPECT_EQ(Both(&ShardClient::Get, no_ts, &get_resp).code(), StatusCode::kInvalidArgument);

  // A conditional write whose condition fails changes nothing, both ways.
  v1::ShardWriteRequest cond;
  *cond.mutable_route() = Route();
  auto* m = cond.add_mutations();
  m->set_row_key(Row("a"));
  m->set_value("{}");
  m->set_has_if_version(true);
  m->set_if_version(1);
  v1::ShardWriteResponse wr;
  EXPECT_FALSE(Both(&ShardClient::Write, cond, &wr).ok());
  v1::ShardWriteRequest empty_write;
  *empty_write.mutable_route() = Route();
  EXPECT_EQ(Both(&ShardClient::Write, empty_write, &wr).code(), StatusCode::kInvalidArgument);

  v1::ShardScanRequest scan;
  *scan.mutable_route() = Route();
  scan.set_collection(7);
  scan.set_consistency(v1::READ_SNAPSHOT);
  scan.set_read_ts(ts);
  scan.set_limit(2);
  v1::ShardScanResponse scan_resp;
  ASSERT_TRUE(Both(&ShardClient::Scan, scan, &scan_resp).ok());
  EXPECT_EQ(scan_resp.items_size(), 2);
  EXPECT_TRUE(scan_resp.has_next());
  scan.set_limit(0);
  EXPECT_EQ(Both(&ShardClient::Scan, scan, &scan_resp).code(), StatusCode::kInvalidArgument);

  v1::ShardQueryRequest q;
  *q.mutable_route() = Route();
  q.set_collection(7);
  q.set_read_ts(ts);
  q.set_limit(10);
  q.set_filter_json(R"({"n":2})");
  v1::ShardQueryResponse q_resp;
  ASSERT_TRUE(Both(&ShardClient::Query, q, &q_resp).ok());
  EXPECT_EQ(q_resp.matches_size(), 2);
  q.add_keys("a");
  q.add_keys("zz");
  ASSERT_TRUE(Both(&ShardClient::Query, q, &q_resp).ok());
  EXPECT_EQ(q_resp.matches_size(), 0);
  EXPECT_EQ(q_resp.missing_size(), 1);
  q.set_filter_json(R"({"n":{"$nope":1}})");
  EXPECT_EQ(Both(&ShardClient::Query, q, &q_resp).code(), StatusCode::kInvalidArgument);

  v1::ShardBatchRequest batch;
  v1::ShardBatchResponse batch_resp;
  EXPECT_EQ(Both(&ShardClient::Batch, batch, &batch_resp).code(), StatusCode::kInvalidArgument);
  *batch.add_items()->mutable_get() = get;
  *batch.add_items()->mutable_get() = stale;
  batch.add_items();  // no operation
  ASSERT_TRUE(Both(&ShardClient::Batch, batch, &batch_resp).ok());
  ASSERT_EQ(batch_resp.results_size(), 3);
  EXPECT_EQ(batch_resp.results(0).code(), 0);
  EXPECT_NE(batch_resp.results(1).code(), 0);
  EXPECT_NE(batch_resp.results(2).code(), 0);

  // Snapshot gets of one shard at one timestamp are read together; each answers as a
  // Get of its own would.
  v1::ShardBatchRequest multi;
  for (const char* k : {"c", "a", "zz", "b"}) {
    auto* g = multi.add_items()->mutable_get();
    *g = get;
    g->set_row_key(Row(k));
  }
  ASSERT_TRUE(Both(&ShardClient::Batch, multi, &batch_resp).ok());
  ASSERT_EQ(batch_resp.results_size(), 4);
  for (int i = 0; i < 4; ++i) {
    v1::ShardGetResponse alone;
    ASSERT_TRUE(
        remote_->Get(multi.items(i).get(), &alone, std::chrono::steady_clock::now() + 5s).ok());
    EXPECT_EQ(batch_resp.results(i).code(), 0) << i;
    EXPECT_TRUE(
        google::protobuf::util::MessageDifferencer::Equals(batch_resp.results(i).get(), alone))
        << i << ": " << batch_resp.results(i).ShortDebugString();
  }
  EXPECT_TRUE(batch_resp.results(0).get().found());
  EXPECT_FALSE(batch_resp.results(2).get().found());
  // Read together through a stale route, they fail together: each gets its own error.
  for (auto& item : *multi.mutable_items()) item.mutable_get()->mutable_route()->set_version(99);
  ASSERT_TRUE(Both(&ShardClient::Batch, multi, &batch_resp).ok());
  for (const auto& r : batch_resp.results()) {
    EXPECT_EQ(r.code(), static_cast<int>(StatusCode::kUnavailable));
    EXPECT_EQ(r.details().at("reason"), "EPOCH_NOT_MATCH");
    EXPECT_FALSE(r.has_get());
  }

  v1::ShardTxnRequest txn;
  *txn.mutable_route() = Route();
  v1::ShardTxnResponse txn_resp;
  EXPECT_EQ(Both(&ShardClient::Txn, txn, &txn_resp).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gojodb::rpc

namespace gojodb::rpc {
namespace {

// An index scan joined to its documents: one call reads the entries and, in entry order,
// the documents of its shard; the others come back as `foreign`, absent ones as
// `missing`, and a call that stops at its limit resumes at the next entry.
TEST_F(ShardClientTest, AnIndexJoinReadsTheDocumentsOfItsShardAndNamesTheOthers) {
  document::IndexSpec by_n;
  by_n.name = "by_n";
  by_n.id = 8;
  by_n.fields.push_back(*document::ParsePath("n"));
  // Entry order (by n) differs from key order: f c e b d a, then zz, whose document
  // was never written.
  const std::vector<std::pair<std::string, int>> docs = {{"a", 5}, {"b", 3}, {"c", 1},
                                                         {"d", 4}, {"e", 2}, {"f", 0}};
  v1::ShardWriteRequest w;
  *w.mutable_route() = Route();
  auto add = [&](std::string row, std::string value) {
    auto* m = w.add_mutations();
    m->set_row_key(std::move(row));
    m->set_value(std::move(value));
  };
  for (const auto& [key, n] : docs) {
    const nlohmann::json doc = {{"n", n}};
    add(Row(key), doc.dump());
    auto e = document::EntryFor(by_n, key, doc);
    ASSERT_TRUE(e);
    add(mvcc::EncodeRowKey(0, 8, e->key), e->value);
  }
  auto lost = document::EntryFor(by_n, "zz", nlohmann::json{{"n", 6}});
  add(mvcc::EncodeRowKey(0, 8, lost->key), lost->value);
  // A unique index (id 9) on the same field: its entries name their documents in values.
  document::IndexSpec by_n_unique = by_n;
  by_n_unique.id = 9;
  by_n_unique.unique = true;
  std::map<int, std::string> unique_entry;  // n -> entry key
  for (const auto& [key, n] : docs) {
    auto e = document::EntryFor(by_n_unique, key, nlohmann::json{{"n", n}});
    ASSERT_TRUE(e);
    add(mvcc::EncodeRowKey(0, 9, e->key), e->value);
    unique_entry[n] = e->key;
  }
  auto lost_unique = document::EntryFor(by_n_unique, "zz", nlohmann::json{{"n", 6}});
  add(mvcc::EncodeRowKey(0, 9, lost_unique->key), lost_unique->value);
  unique_entry[6] = lost_unique->key;
  unique_entry[7] = document::EntryFor(by_n_unique, "none", nlohmann::json{{"n", 7}})->key;
  v1::ShardWriteResponse wr;
  ASSERT_TRUE(remote_->Write(w, &wr, std::chrono::steady_clock::now() + 5s).ok());
  // Shard 2 takes the documents from d on and every entry (collection 8 sorts after 7).
  ASSERT_TRUE(store_->Split(1, Row("d"), 2, std::chrono::steady_clock::now() + 5s).ok());
  for (int i = 0; i < 400; ++i) {
    auto st = store_->GroupStatusOf(2);
    if (st.ok() && st->is_leader) break;
    std::this_thread::sleep_for(5ms);
  }
  const uint64_t ts = tso_->Next().value();

  v1::ShardQueryRequest q;
  *q.mutable_route() = Route(2);
  q.set_collection(8);
  q.set_read_ts(ts);
  q.set_limit(10);
  q.set_filter_json(R"({"n": {"gte": 0}})");
  q.mutable_index_join()->set_collection(7);
  q.mutable_index_join()->set_fields(1);
  v1::ShardQueryResponse resp;
  auto keys = [](const auto& list) {
    std::string out;
    for (const auto& k : list) out += k + " ";
    return out;
  };
  auto matched = [](const v1::ShardQueryResponse& r) {
    std::string out;
    for (const auto& m : r.matches()) out += m.key() + " ";
    return out;
  };
  ASSERT_TRUE(Both(&ShardClient::Query, q, &resp).ok());
  EXPECT_TRUE(resp.joined());
  EXPECT_EQ(matched(resp), "f e d ");
  EXPECT_EQ(keys(resp.foreign()), "c b a ");
  EXPECT_EQ(keys(resp.missing()), "zz ");
  EXPECT_FALSE(resp.has_next());
  EXPECT_EQ(resp.examined(), 3u);
  EXPECT_EQ(resp.matches(0).value(), R"({"n":0})");

  // The filter still applies to each document.
  q.set_filter_json(R"({"n": {"gte": 1}})");
  ASSERT_TRUE(Both(&ShardClient::Query, q, &resp).ok());
  EXPECT_EQ(matched(resp), "e d ");

  // Two matches a call: the first stops at e, and the next starts at b's entry.
  q.set_filter_json("");
  q.set_limit(2);
  ASSERT_TRUE(Both(&ShardClient::Query, q, &resp).ok());
  EXPECT_EQ(matched(resp), "f e ");
  EXPECT_EQ(keys(resp.foreign()), "c ");
  EXPECT_TRUE(resp.missing().empty());
  ASSERT_TRUE(resp.has_next());
  q.set_start(resp.next());
  ASSERT_TRUE(Both(&ShardClient::Query, q, &resp).ok());
  EXPECT_EQ(matched(resp), "d ");
  EXPECT_EQ(keys(resp.foreign()), "b a ");
  EXPECT_EQ(keys(resp.missing()), "zz ");
  EXPECT_FALSE(resp.has_next());

  // At most max_examined entries a call: the rest is for the next one.
  q.clear_start();
  q.set_limit(10);
  q.set_max_examined(3);
  ASSERT_TRUE(Both(&ShardClient::Query, q, &resp).ok());
  EXPECT_EQ(matched(resp), "f e ");
  EXPECT_EQ(keys(resp.foreign()), "c ");
  EXPECT_TRUE(resp.has_next());
  q.set_max_examined(0);

  // Shard 1 holds none of the entries: nothing to join there.
  v1::ShardQueryRequest first = q;
  *first.mutable_route() = Route(1);
  ASSERT_TRUE(Both(&ShardClient::Query, first, &resp).ok());
  EXPECT_TRUE(resp.joined());
  EXPECT_EQ(resp.matches_size() + resp.foreign_size() + resp.missing_size(), 0);

  // Entries of the unique index read by key, in the order asked: n = 0 (f), 7 (no entry),
  // 5 (a, elsewhere), 6 (zz, no document), 4 (d).
  v1::ShardQueryRequest points = q;
  points.set_collection(9);
  points.mutable_index_join()->set_unique(true);
  for (int n : {0, 7, 5, 6, 4}) points.mutable_index_join()->add_entry_keys(unique_entry[n]);
  ASSERT_TRUE(Both(&ShardClient::Query, points, &resp).ok());
  EXPECT_TRUE(resp.joined());
  EXPECT_EQ(matched(resp), "f d ");
  EXPECT_EQ(keys(resp.foreign()), "a ");
  EXPECT_EQ(keys(resp.missing()), "zz ");
  EXPECT_EQ(resp.keys_read(), 5u);
  EXPECT_FALSE(resp.has_next());
  // One match a call: it stops at f, having taken the first entry and the absent one.
  points.set_limit(1);
  ASSERT_TRUE(Both(&ShardClient::Query, points, &resp).ok());
  EXPECT_EQ(matched(resp), "f ");
  EXPECT_TRUE(resp.foreign().empty());
  EXPECT_EQ(resp.keys_read(), 2u);
  points.set_limit(10);
  // Only a unique index's entries are read by key.
  v1::ShardQueryRequest bad = points;
  bad.mutable_index_join()->set_unique(false);
  EXPECT_EQ(Both(&ShardClient::Query, bad, &resp).code(), StatusCode::kInvalidArgument);

  // Bad joins.
  bad = q;
  bad.mutable_index_join()->set_fields(0);
  EXPECT_EQ(Both(&ShardClient::Query, bad, &resp).code(), StatusCode::kInvalidArgument);
  bad = q;
  bad.mutable_index_join()->set_fields(ShardKvService::kMaxJoinFields + 1);
  EXPECT_EQ(Both(&ShardClient::Query, bad, &resp).code(), StatusCode::kInvalidArgument);
  bad = q;
  bad.mutable_index_join()->set_collection(8);
  EXPECT_EQ(Both(&ShardClient::Query, bad, &resp).code(), StatusCode::kInvalidArgument);
  bad = q;
  bad.add_keys("a");
  EXPECT_EQ(Both(&ShardClient::Query, bad, &resp).code(), StatusCode::kInvalidArgument);
  // The entries of an index with more fields than the request says: the bytes left over
  // are no document key.
  bad = q;
  bad.mutable_index_join()->set_fields(2);
  EXPECT_FALSE(Both(&ShardClient::Query, bad, &resp).ok());
}

}  // namespace
}  // namespace gojodb::rpc
