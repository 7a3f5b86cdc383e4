#include "tools/bench/etcd_target.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <thread>

#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace gojodb::bench {
namespace {

std::string GrpcError(const grpc::Status& s) {
  return "etcd " + std::to_string(static_cast<int>(s.error_code())) + ": " + s.error_message();
}

class EtcdConnection final : public Connection {
 public:
  EtcdConnection(const std::shared_ptr<grpc::Channel>& channel, int timeout_ms)
      : stub_(etcdserverpb::KV::NewStub(channel)), timeout_ms_(timeout_ms) {}

  OpResult Read(const std::string& key) override {
    etcdserverpb::RangeResponse resp;
    grpc::Status s = Get(key, &resp);
    if (!s.ok()) return OpResult::Error("range " + key + ": " + GrpcError(s));
    return resp.kvs_size() > 0 ? OpResult::Ok() : OpResult::NotFound();
  }

  OpResult Update(const std::string& key, const std::string& value) override {
    return Write("put", key, value);
  }

  OpResult Insert(const std::string& key, const std::string& value) override {
    return Write("insert", key, value);
  }

  OpResult Scan(const std::string& start, uint64_t count) override {
    etcdserverpb::RangeRequest req;
    req.set_key(start);
    req.set_range_end(std::string(1, '\0'));  // every key >= start
    req.set_limit(static_cast<int64_t>(count));
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    grpc::Status s = stub_->Range(&ctx, req, &resp);
    if (!s.ok()) return OpResult::Error("scan from " + start + ": " + GrpcError(s));
    return OpResult::Ok();
  }

  OpResult ReadModifyWrite(const std::string& key, const std::string& value) override {
    etcdserverpb::RangeResponse got;
    grpc::Status s = Get(key, &got);
    if (!s.ok()) return OpResult::Error("range " + key + ": " + GrpcError(s));
    if (got.kvs_size() == 0) return OpResult::NotFound();

    etcdserverpb::TxnRequest req;
    auto* cmp = req.add_compare();
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_target(etcdserverpb::Compare::MOD);
    cmp->set_key(key);
    cmp->set_mod_revision(got.kvs(0).mod_revision());
    auto* put = req.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    etcdserverpb::TxnResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    s = stub_->Txn(&ctx, req, &resp);
    if (!s.ok()) return OpResult::Error("txn " + key + ": " + GrpcError(s));
    return resp.succeeded() ? OpResult::Ok() : OpResult::Conflict();
  }

 private:
  void SetDeadline(grpc::ClientContext* ctx) const {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms_));
  }

  // A linearizable single-key Range (serializable = false, etcd's default).
  grpc::Status Get(const std::string& key, etcdserverpb::RangeResponse* resp) {
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    req.set_serializable(false);
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    return stub_->Range(&ctx, req, resp);
  }

  OpResult Write(const char* what, const std::string& key, const std::string& value) {
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    etcdserverpb::PutResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    grpc::Status s = stub_->Put(&ctx, req, &resp);
    if (!s.ok()) return OpResult::Error(std::string(what) + " " + key + ": " + GrpcError(s));
    return OpResult::Ok();
  }

  std::unique_ptr<etcdserverpb::KV::Stub> stub_;
  int timeout_ms_;
};

}  // namespace

EtcdTarget::EtcdTarget(EtcdTargetOptions options) : options_(std::move(options)) {}
EtcdTarget::~EtcdTarget() = default;

std::string EtcdTarget::Describe() const {
  std::string eps;
  for (const auto& e : options_.endpoints) eps += (eps.empty() ? "" : ",") + e;
  return "etcd " + eps + " (" + std::to_string(options_.endpoints.size()) +
         " gRPC channels, linearizable reads)";
}

Status EtcdTarget::Open() {
  if (options_.endpoints.empty()) return Status::InvalidArgument("no etcd endpoint given");
  for (const auto& e : options_.endpoints) {
    channels_.push_back(grpc::CreateChannel(e, grpc::InsecureChannelCredentials()));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (size_t i = 0; i < channels_.size(); ++i) {
    for (;;) {
      etcdserverpb::RangeResponse resp;
      etcdserverpb::RangeRequest req;
      req.set_key("gojodb-bench-probe");
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      grpc::Status s = etcdserverpb::KV::NewStub(channels_[i])->Range(&ctx, req, &resp);
      if (s.ok()) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::Unavailable("etcd " + options_.endpoints[i] +
                                   " is not ready: " + GrpcError(s));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return Status::OK();
}

std::unique_ptr<Connection> EtcdTarget::Connect(int thread) {
  const auto& channel = channels_[static_cast<size_t>(thread) % channels_.size()];
  return std::make_unique<EtcdConnection>(channel, options_.timeout_ms);
}

}  // namespace gojodb::bench
