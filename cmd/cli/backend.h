// What the CLI talks to: the key-value operations, the cluster status and the
// controller's operator API. The real one is the gRPC client library; tests substitute
// an in-memory one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/kv/ingest_session.h"
#include "core/kv/kv_service.h"
#include "gojodb/v1/controller.pb.h"
#include "gojodb/v1/kv.pb.h"
#include "internal/status.h"

namespace gojodb::cli {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual kv::KvService& kv() = 0;
  virtual Result<v1::ClusterStatusResponse> ClusterStatus() = 0;
  // A bulk load into `collection` (client::Client::OpenIngest).
  virtual Result<std::unique_ptr<kv::IngestStream>> OpenIngest(const std::string& collection,
                                                               const std::string& ingest_id) = 0;

  // The controller's operator API (controller.proto); only a controller serves it.
  virtual Result<v1::ListNodesResponse> ListNodes() = 0;
  virtual Status DecommissionNode(uint64_t node_id) = 0;
  virtual Result<v1::GetShardMapResponse> GetShardMap() = 0;
  virtual Status AddController(uint64_t id, const std::string& grpc_addr) = 0;
  virtual Status RemoveController(uint64_t id) = 0;
  virtual Result<v1::Settings> GetSettings() = 0;
  // patch_json: {"replication_factor": 5, ...}; returns the settings after the change.
  virtual Result<v1::Settings> UpdateSettings(const std::string& patch_json) = 0;
  // count: 1..65536.
  virtual Result<v1::GetTimestampsResponse> GetTimestamps(uint32_t count) = 0;
};

// Makes a Backend for a server address and a per-request deadline.
using Connector =
    std::function<Result<std::unique_ptr<Backend>>(const std::string& addr, int timeout_ms)>;

// The Connector over pkg/client (gRPC). Connecting does not contact the server; the
// first request does.
Result<std::unique_ptr<Backend>> ConnectGrpc(const std::string& addr, int timeout_ms);

}  // namespace gojodb::cli
