// The C++ client library: GojoDB's gRPC API as a KvService.
//
//   auto c = gojodb::client::Client::Connect({.addr = "127.0.0.1:7001"});
//   auto w = (*c)->Put({.key = "k", .value = "v"});
//
// Thread-safe: one Client may serve many threads (it shares one gRPC channel).
#pragma once

#include <memory>
#include <string>

#include "core/kv/kv_service.h"
#include "internal/status.h"

namespace gojodb::v1 {
class ClusterStatusResponse;
}

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

 private:
  struct Stubs;
  explicit Client(const ClientOptions& options);
  ClientOptions options_;
  kv::Limits limits_;
  std::unique_ptr<Stubs> stubs_;
};

}  // namespace gojodb::client
