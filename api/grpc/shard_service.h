// ShardKvService: a storage node's Store behind gojodb.v1.ShardKv (see
// api/proto/gojodb/v1/shard.proto), served over gRPC and, as a ShardClient, called
// directly by a router in the same process. A request's deadline is the caller's,
// capped at the node's request timeout.
#pragma once

#include <chrono>
#include <functional>

#include "api/grpc/shard_client.h"
#include "core/sharding/store.h"
#include "gojodb/v1/shard.grpc.pb.h"

namespace gojodb::query {
class ShardQueryRun;
}

namespace gojodb::rpc {

class ShardKvService final : public v1::ShardKv::Service, public ShardClient {
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

  // ShardClient: the same methods as plain calls.
  Status Write(const v1::ShardWriteRequest& req, v1::ShardWriteResponse* resp,
               Deadline deadline) override;
  Status Get(const v1::ShardGetRequest& req, v1::ShardGetResponse* resp,
             Deadline deadline) override;
  Status Scan(const v1::ShardScanRequest& req, v1::ShardScanResponse* resp,
              Deadline deadline) override;
  Status Txn(const v1::ShardTxnRequest& req, v1::ShardTxnResponse* resp,
             Deadline deadline) override;
  Status Batch(const v1::ShardBatchRequest& req, v1::ShardBatchResponse* resp,
               Deadline deadline) override;
  Status Query(const v1::ShardQueryRequest& req, v1::ShardQueryResponse* resp,
               Deadline deadline) override;

  static constexpr int kMaxBatchItems = 1024;
  // A pushed-down query reads at most this many rows a call unless told fewer, and
  // returns matches of at most about this many bytes.
  static constexpr uint32_t kMaxQueryExamined = 20000;
  static constexpr size_t kMaxQueryBytes = 4 << 20;
  // An index join's index has at most this many fields (the catalog allows fewer).
  static constexpr uint32_t kMaxJoinFields = 32;

 private:
  static grpc::Status Reply(grpc::ServerContext* ctx, const Status& s);
  static Deadline GrpcDeadline(const grpc::ServerContext* ctx);
  // Runs `body` on a cleared `resp` with the deadline capped at the request timeout;
  // clears `resp` again when it fails.
  Status Run(Deadline deadline, google::protobuf::Message* resp,
             const std::function<Status(Deadline)>& body);
  Status DoGet(const v1::ShardGetRequest& req, Deadline deadline, v1::ShardGetResponse* resp);
  Status DoScan(const v1::ShardScanRequest& req, Deadline deadline, v1::ShardScanResponse* resp);
  Status DoBatch(const v1::ShardBatchRequest& req, Deadline deadline, v1::ShardBatchResponse* resp);
  Status DoQuery(const v1::ShardQueryRequest& req, Deadline deadline, v1::ShardQueryResponse* resp);
  Status JoinIndex(const v1::ShardQueryRequest& req, Deadline deadline, query::ShardQueryRun& run,
                   v1::ShardQueryResponse* resp);

  sharding::Store* const store_;
  const std::chrono::milliseconds timeout_;
};

}  // namespace gojodb::rpc
