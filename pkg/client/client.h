// The C++ client library: GojoDB's gRPC API as a KvService.
//
// Two ways to reach a database:
//
// - Through a server (`addr`): a gojodb-standalone or a gateway (gojodb-api) answers the
//   KV, Catalog and Admin services of kv.proto.
//
//     auto c = gojodb::client::Client::Connect({.addr = "127.0.0.1:7001"});
//     auto w = (*c)->Put({.key = "k", .value = "v"});
//
// - Routed (`controllers`): the client caches the controller's shard map and sends each
//   key-value request straight to the storage node that holds the key's shard (its leader
//   for writes and linearizable reads), one network hop fewer than through a gateway. It
//   refreshes the map on NOT_LEADER, EPOCH_NOT_MATCH and SHARD_NOT_FOUND and on
//   unreachable nodes, and retries within the request deadline; scans across shards are
//   stitched at one read timestamp. This is the gateway's own routing (gateway::ClusterKv,
//   docs/architecture/storage-service.md), run in the client's process.
//
//     auto c = gojodb::client::Client::Connect(
//         {.controllers = {"127.0.0.1:7100", "127.0.0.1:7101", "127.0.0.1:7102"}});
//
//   Catalog calls go to the controllers' Catalog service, and the operator calls below
//   (ListNodes, GetShardMap, ...) to the first controller unless `addr` names another.
//
// Thread-safe: one Client may serve many threads (it shares its gRPC channels).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/kv/ingest_session.h"
#include "core/kv/kv_service.h"
#include "internal/status.h"

namespace gojodb::v1 {
class ClusterStatusResponse;
class GetShardMapResponse;
class GetTimestampsResponse;
class ListNodesResponse;
class Settings;
}  // namespace gojodb::v1

namespace gojodb::gateway {
class ClusterKv;
}  // namespace gojodb::gateway

namespace gojodb::client {

struct ClientOptions {
  std::string addr;  // host:port of a gateway or standalone server
  // host:port of the controller members: route requests by the shard map straight to
  // the storage nodes (see above). Empty: send everything to `addr`.
  std::vector<std::string> controllers;
  int timeout_ms = 10000;  // per-request deadline, retries included
  // Routed: how long a transaction's locks live without its coordinator (this client)
  // before others may roll it back (gateway::ClusterKvOptions::txn_lock_ttl).
  int txn_lock_ttl_ms = 3000;
  // The deadline of one ingest stream (OpenIngest), from its opening to its Finish.
  int stream_timeout_ms = 600000;
};

class Client final : public kv::KvService {
 public:
  // Does not wait for the server; the first call does.
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client() override;

  Result<kv::WriteResult> Put(const kv::PutRequest& req) override;
  Result<kv::WriteResult> Delete(const kv::DeleteRequest& req) override;
  Result<kv::GetResult> Get(const kv::GetRequest& req) override;
  Result<kv::ScanResult> Scan(const kv::ScanRequest& req) override;
  Result<kv::WriteResult> Batch(const kv::BatchRequest& req) override;

  // Transactions (docs/api/http.md#transactions). Routed, this client coordinates them
  // itself; otherwise the server does, and an interactive transaction lives on the
  // server that began it.
  Result<kv::TxnResult> Txn(const kv::TxnRequest& req) override;
  Result<kv::TxnHandle> BeginTxn() override;
  Result<kv::GetResult> TxnGet(const std::string& txn, const kv::TxnRead& read) override;
  Status TxnWrite(const std::string& txn, const kv::BatchOp& op) override;
  Result<kv::ScanResult> TxnScan(const std::string& txn, const kv::ScanRequest& req) override;
  Result<uint64_t> CommitTxn(const std::string& txn) override;
  Status RollbackTxn(const std::string& txn) override;

  // Documents (docs/architecture/documents.md).
  Result<kv::QueryResult> Query(const kv::QueryRequest& req) override;
  // The groups arrive over a stream and are joined into one result.
  Result<kv::AggregateResult> Aggregate(const kv::AggregateRequest& req) override;
  // One chunk as an ingest session of its own (routed or not, records at or below the
  // id's progress are skipped), within timeout_ms; a load of many chunks is better sent
  // with OpenIngest.
  Result<kv::IngestResult> Ingest(const kv::IngestRequest& req) override;
  Result<uint64_t> IngestProgress(const std::string& collection,
                                  const std::string& ingest_id) override;
  // A bulk load: one gRPC stream (each Add one message, sent once the server has room),
  // or, routed, an ingest session run in this process. An empty id records nothing.
  Result<std::unique_ptr<kv::IngestStream>> OpenIngest(const std::string& collection,
                                                       const std::string& ingest_id);

  Result<kv::CollectionInfo> CreateCollection(const kv::CollectionSpec& spec) override;
  Result<std::vector<kv::CollectionInfo>> ListCollections() override;
  Result<kv::CollectionInfo> DescribeCollection(const std::string& name) override;
  Status DropCollection(const std::string& name) override;
  // Adds an index to a collection in use, built online by the server; waits for the
  // build at most `wait` (0: the server's request timeout) and answers the collection
  // (the index "public", or still "building"). The same call again resumes a build.
  Result<kv::CollectionInfo> CreateIndex(const std::string& collection, const kv::IndexSpec& index,
                                         std::chrono::milliseconds wait) override;
  // Drops an index online; waits out the collection's schema lease (10 s by default).
  Result<kv::CollectionInfo> DropIndex(const std::string& collection,
                                       const std::string& name) override;

  const kv::Limits& limits() const override { return limits_; }
  // OK when the server answers ClusterStatus.
  Status Ready() override;
  // Routed: the route cache's counters (map_version, shards, retries, ...); else empty.
  std::map<std::string, uint64_t> StorageStats() override;

  Result<v1::ClusterStatusResponse> ClusterStatus();
  // Whether requests are routed by the shard map (`controllers` was given).
  bool routed() const { return routed_ != nullptr; }

  // The controller's operator API (gojodb.v1.Controller, controller.proto). The address
  // must be a controller's; any member answers and followers forward to the leader.
  Result<v1::ListNodesResponse> ListNodes();
  Status DecommissionNode(uint64_t node_id);
  // The current shard map (linearizable: after a read barrier on the controller it
  // reaches), without waiting for a newer one.
  Result<v1::GetShardMapResponse> GetShardMap();
  Status AddController(uint64_t id, const std::string& grpc_addr);
  Status RemoveController(uint64_t id);
  Result<v1::Settings> GetSettings();
  // patch_json: {"replication_factor": 5, ...}. Returns the settings after the change.
  Result<v1::Settings> UpdateSettings(const std::string& patch_json);
  // count: 1..65536 timestamps, first .. first+count-1.
  Result<v1::GetTimestampsResponse> GetTimestamps(uint32_t count);

 private:
  struct Stubs;
  explicit Client(const ClientOptions& options);
  ClientOptions options_;
  kv::Limits limits_;
  std::unique_ptr<Stubs> stubs_;
  std::unique_ptr<gateway::ClusterKv> routed_;  // routed mode only
  Result<std::unique_ptr<kv::IngestStream>> OpenStream(const std::string& collection,
                                                       const std::string& ingest_id,
                                                       int timeout_ms);
};

}  // namespace gojodb::client
