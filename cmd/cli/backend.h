// What the CLI talks to: the key-value operations plus the cluster status. The real one
// is the gRPC client library; tests substitute an in-memory one.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/kv/kv_service.h"
#include "gojodb/v1/kv.pb.h"
#include "internal/status.h"

namespace gojodb::cli {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual kv::KvService& kv() = 0;
  virtual Result<v1::ClusterStatusResponse> ClusterStatus() = 0;
};

// Makes a Backend for a server address and a per-request deadline.
using Connector =
    std::function<Result<std::unique_ptr<Backend>>(const std::string& addr, int timeout_ms)>;

// The Connector over pkg/client (gRPC). Connecting does not contact the server; the
// first request does.
Result<std::unique_ptr<Backend>> ConnectGrpc(const std::string& addr, int timeout_ms);

}  // namespace gojodb::cli
