// The C++ client library: GojoDB's gRPC API as a KvService.
//
//   auto c = gojodb::client::Client::Connect({.addr = "127.0.0.1:7001"});
//   auto w = (*c)->Put({.key = "k", .value = "v"});
//
// Thread-safe: one Client may serve many threads (it shares one gRPC channel).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/kv/kv_service.h"
#include "internal/status.h"

namespace gojodb::v1 {
class ClusterStatusResponse;
class GetShardMapResponse;
class GetTimestampsResponse;
class ListNodesResponse;
class Settings;
}  // namespace gojodb::v1

namespace gojodb::client {

struct ClientOptions {
  std::string addr;        // host:port of a gateway or standalone server
  int timeout_ms = 10000;  // per-request deadline
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

  Result<kv::CollectionInfo> CreateCollection(const kv::CollectionSpec& spec) override;
  Result<std::vector<kv::CollectionInfo>> ListCollections() override;
  Result<kv::CollectionInfo> DescribeCollection(const std::string& name) override;
  Status DropCollection(const std::string& name) override;

  const kv::Limits& limits() const override { return limits_; }
  // OK when the server answers ClusterStatus.
  Status Ready() override;
  std::map<std::string, uint64_t> StorageStats() override { return {}; }

  Result<v1::ClusterStatusResponse> ClusterStatus();

  // The controller's operator API (gojodb.v1.Controller, controller.proto). The address
  // must be a controller's; any member answers and followers forward to the leader.
  Result<v1::ListNodesResponse> ListNodes();
  Status DecommissionNode(uint64_t node_id);
  // The current shard map, without waiting for a newer one.
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
};

}  // namespace gojodb::client
