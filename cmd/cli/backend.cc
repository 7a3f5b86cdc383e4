#include "cmd/cli/backend.h"

#include "pkg/client/client.h"

namespace gojodb::cli {
namespace {

class GrpcBackend final : public Backend {
 public:
  explicit GrpcBackend(std::unique_ptr<client::Client> client) : client_(std::move(client)) {}
  kv::KvService& kv() override { return *client_; }
  Result<v1::ClusterStatusResponse> ClusterStatus() override { return client_->ClusterStatus(); }

 private:
  std::unique_ptr<client::Client> client_;
};

}  // namespace

Result<std::unique_ptr<Backend>> ConnectGrpc(const std::string& addr, int timeout_ms) {
  ASSIGN_OR_RETURN(auto c, client::Client::Connect({.addr = addr, .timeout_ms = timeout_ms}));
  return std::unique_ptr<Backend>(new GrpcBackend(std::move(c)));
}

}  // namespace gojodb::cli
