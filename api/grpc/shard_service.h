// ShardKvService: the gRPC face of a storage node's Store (gojodb.v1.ShardKv, see
// api/proto/gojodb/v1/shard.proto). A request's deadline is the client's, capped at
// the node's request timeout.
#pragma once

#include <chrono>

#include "core/sharding/store.h"
#include "gojodb/v1/shard.grpc.pb.h"

namespace gojodb::rpc {

class ShardKvService final : public v1::ShardKv::Service {
 public:
  ShardKvService(sharding::Store* store, std::chrono::milliseconds request_timeout)
      : store_(store), timeout_(request_timeout) {}

  grpc::Status Write(grpc::ServerContext* ctx, const v1::ShardWriteRequest* req,
                     v1::ShardWriteResponse* resp) override;
  grpc::Status Get(grpc::ServerContext* ctx, const v1::ShardGetRequest* req,
                   v1::ShardGetResponse* resp) override;
  grpc::Status Scan(grpc::ServerContext* ctx, const v1::ShardScanRequest* req,
                    v1::ShardScanResponse* resp) override;
  grpc::Status Txn(grpc::ServerContext* ctx, const v1::ShardTxnRequest* req,
                   v1::ShardTxnResponse* resp) override;
  grpc::Status Batch(grpc::ServerContext* ctx, const v1::ShardBatchRequest* req,
                     v1::ShardBatchResponse* resp) override;
  grpc::Status Query(grpc::ServerContext* ctx, const v1::ShardQueryRequest* req,
                     v1::ShardQueryResponse* resp) override;

  static constexpr int kMaxBatchItems = 1024;
  // A pushed-down query reads at most this many rows a call unless told fewer, and
  // returns matches of at most about this many bytes.
  static constexpr uint32_t kMaxQueryExamined = 20000;
  static constexpr size_t kMaxQueryBytes = 4 << 20;

 private:
  std::chrono::steady_clock::time_point Deadline(const grpc::ServerContext* ctx) const;
  Status DoGet(const v1::ShardGetRequest& req, std::chrono::steady_clock::time_point deadline,
               v1::ShardGetResponse* resp);

  sharding::Store* const store_;
  const std::chrono::milliseconds timeout_;
};

}  // namespace gojodb::rpc
