#include "cmd/cli/backend.h"

#include "pkg/client/client.h"

namespace gojodb::cli {
namespace {

class GrpcBackend final : public Backend {
 public:
  explicit GrpcBackend(std::unique_ptr<client::Client> client) : client_(std::move(client)) {}
  kv::KvService& kv() override { return *client_; }
  Result<v1::ClusterStatusResponse> ClusterStatus() override { return client_->ClusterStatus(); }
  Result<std::unique_ptr<kv::IngestStream>> OpenIngest(const std::string& collection,
                                                       const std::string& ingest_id) override {
    return client_->OpenIngest(collection, ingest_id);
  }

  Result<v1::ListNodesResponse> ListNodes() override { return client_->ListNodes(); }
  Status DecommissionNode(uint64_t node_id) override { return client_->DecommissionNode(node_id); }
  Result<v1::GetShardMapResponse> GetShardMap() override { return client_->GetShardMap(); }
  Status AddController(uint64_t id, const std::string& grpc_addr) override {
    return client_->AddController(id, grpc_addr);
  }
  Status RemoveController(uint64_t id) override { return client_->RemoveController(id); }
  Result<v1::Settings> GetSettings() override { return client_->GetSettings(); }
  Result<v1::Settings> UpdateSettings(const std::string& patch_json) override {
    return client_->UpdateSettings(patch_json);
  }
  Result<v1::GetTimestampsResponse> GetTimestamps(uint32_t count) override {
    return client_->GetTimestamps(count);
  }

 private:
  std::unique_ptr<client::Client> client_;
};

}  // namespace

Result<std::unique_ptr<Backend>> ConnectGrpc(const std::string& addr, int timeout_ms) {
  ASSIGN_OR_RETURN(auto c, client::Client::Connect({.addr = addr, .timeout_ms = timeout_ms}));
  return std::unique_ptr<Backend>(new GrpcBackend(std::move(c)));
}

}  // namespace gojodb::cli
