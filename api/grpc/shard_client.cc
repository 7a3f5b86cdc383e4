#include "api/grpc/shard_client.h"

#include <grpcpp/client_context.h>

#include "api/grpc/convert.h"
#include "gojodb/v1/shard.grpc.pb.h"

namespace gojodb::rpc {
namespace {

class GrpcShardClient final : public ShardClient {
 public:
  explicit GrpcShardClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::ShardKv::NewStub(std::move(channel))) {}

  Status Write(const v1::ShardWriteRequest& req, v1::ShardWriteResponse* resp,
               Deadline deadline) override {
    return Call(&v1::ShardKv::Stub::Write, req, resp, deadline);
  }
  Status Get(const v1::ShardGetRequest& req, v1::ShardGetResponse* resp,
             Deadline deadline) override {
    return Call(&v1::ShardKv::Stub::Get, req, resp, deadline);
  }
  Status Scan(const v1::ShardScanRequest& req, v1::ShardScanResponse* resp,
              Deadline deadline) override {
    return Call(&v1::ShardKv::Stub::Scan, req, resp, deadline);
  }
  Status Txn(const v1::ShardTxnRequest& req, v1::ShardTxnResponse* resp,
             Deadline deadline) override {
    return Call(&v1::ShardKv::Stub::Txn, req, resp, deadline);
  }
  Status Batch(const v1::ShardBatchRequest& req, v1::ShardBatchResponse* resp,
               Deadline deadline) override {
    return Call(&v1::ShardKv::Stub::Batch, req, resp, deadline);
  }
  Status Query(const v1::ShardQueryRequest& req, v1::ShardQueryResponse* resp,
               Deadline deadline) override {
    return Call(&v1::ShardKv::Stub::Query, req, resp, deadline);
  }

 private:
  template <typename Req, typename Resp>
  Status Call(grpc::Status (v1::ShardKv::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
              const Req& req, Resp* resp, Deadline deadline) {
    grpc::ClientContext ctx;
    resp->Clear();
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         deadline - std::chrono::steady_clock::now()));
    Status s = FromGrpc((stub_.get()->*method)(&ctx, req, resp), &ctx);
    if (!s.ok()) resp->Clear();
    return s;
  }

  const std::unique_ptr<v1::ShardKv::Stub> stub_;
};

}  // namespace

std::shared_ptr<ShardClient> NewGrpcShardClient(std::shared_ptr<grpc::Channel> channel) {
  return std::make_shared<GrpcShardClient>(std::move(channel));
}

}  // namespace gojodb::rpc
