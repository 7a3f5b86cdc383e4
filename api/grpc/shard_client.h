// ShardClient: a storage node's ShardKv methods as a router calls them. Two kinds:
//   - over gRPC (NewGrpcShardClient), for a node in another process;
//   - the node's ShardKvService itself, for a node in the same process (the standalone
//     server), so that a request runs on the caller's thread with no serialization, no
//     socket and no hand-off to the server's threads (decision 29).
// Both answer alike: OK with the response (it replaces whatever `resp` held), or the
// error as a Status with its details (NOT_LEADER's leader, EPOCH_NOT_MATCH's
// descriptor, ...), `resp` then cleared.
// A deadline bounds the call; the node caps it at its own request timeout.
#pragma once

#include <grpcpp/channel.h>

#include <chrono>
#include <memory>

#include "gojodb/v1/shard.pb.h"
#include "internal/status.h"

namespace gojodb::rpc {

class ShardClient {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  virtual ~ShardClient() = default;

  virtual Status Write(const v1::ShardWriteRequest& req, v1::ShardWriteResponse* resp,
                       Deadline deadline) = 0;
  virtual Status Get(const v1::ShardGetRequest& req, v1::ShardGetResponse* resp,
                     Deadline deadline) = 0;
  virtual Status Scan(const v1::ShardScanRequest& req, v1::ShardScanResponse* resp,
                      Deadline deadline) = 0;
  virtual Status Txn(const v1::ShardTxnRequest& req, v1::ShardTxnResponse* resp,
                     Deadline deadline) = 0;
  virtual Status Batch(const v1::ShardBatchRequest& req, v1::ShardBatchResponse* resp,
                       Deadline deadline) = 0;
  virtual Status Query(const v1::ShardQueryRequest& req, v1::ShardQueryResponse* resp,
                       Deadline deadline) = 0;
};

// A client of the ShardKv service at the other end of `channel`.
std::shared_ptr<ShardClient> NewGrpcShardClient(std::shared_ptr<grpc::Channel> channel);

}  // namespace gojodb::rpc
