// The gRPC services (KV, Catalog, Admin) over a KvService. Each handler converts the
// request, calls the service, converts the result; a Status becomes a gRPC status with
// its details as trailing metadata. No exception escapes a handler.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>

#include "core/kv/kv_service.h"
#include "gojodb/v1/kv.grpc.pb.h"
#include "internal/metrics.h"
#include "internal/thread_pool.h"

namespace gojodb::rpc {

class GrpcServices {
 public:
  using StatusProvider = std::function<v1::ClusterStatusResponse()>;
  // Pointers are not owned and must outlive this object.
  GrpcServices(kv::KvService* kv, Metrics* metrics, StatusProvider status);
  ~GrpcServices();

  // Registers every service on `builder`.
  void RegisterOn(grpc::ServerBuilder* builder);

  // Waits for every queued operation to finish. REQUIRES: the grpc::Server is shut
  // down, so no new operation can arrive.
  void Drain() { pool_.reset(); }

 private:
  class KvImpl;
  class CatalogImpl;
  class AdminImpl;
  std::unique_ptr<ThreadPool> pool_;  // runs KV operations that may block
  std::unique_ptr<KvImpl> kv_;
  std::unique_ptr<CatalogImpl> catalog_;
  std::unique_ptr<AdminImpl> admin_;
};

}  // namespace gojodb::rpc
