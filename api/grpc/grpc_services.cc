#include "api/grpc/grpc_services.h"

#include <chrono>
#include <optional>

#include "api/grpc/convert.h"

namespace gojodb::rpc {
namespace {

// Runs `fn` (returning Status), records metrics and converts the result.
template <typename Fn>
grpc::Status Serve(Metrics* metrics, const char* op, grpc::ServerContextBase* ctx, Fn&& fn) {
  auto start = std::chrono::steady_clock::now();
  Status s;
  try {
    s = fn();
  } catch (const std::exception& e) {
    s = Status::Internal(std::string("unexpected error: ") + e.what());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics->RecordRequest("grpc", op, std::string(StatusCodeName(s.code())), secs);
  AddDetailsToContext(s, ctx);
  return ToGrpc(s);
}

// KV operations run on `pool`, not on gRPC's few callback threads: they block (a write
// waits for its commit, a read for a read barrier); the reactor is finished from there. The request
// and response outlive the call until Finish.
template <typename Fn>
grpc::ServerUnaryReactor* ServeOnPool(ThreadPool* pool, Metrics* metrics, const char* op,
                                      grpc::CallbackServerContext* ctx, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  pool->Submit([=]() mutable { reactor->Finish(Serve(metrics, op, ctx, std::move(fn))); });
  return reactor;
}

std::optional<uint64_t> OptVersion(bool has, uint64_t v) {
  return has ? std::optional<uint64_t>(v) : std::nullopt;
}

Result<kv::BatchOp> OpOf(const v1::BatchOp& op, const std::string& where) {
  if (op.op() != v1::BatchOp::PUT && op.op() != v1::BatchOp::DELETE) {
    return Status::InvalidArgument(where + "op must be PUT or DELETE");
  }
  return kv::BatchOp{
      op.op() == v1::BatchOp::PUT ? kv::BatchOp::Kind::kPut : kv::BatchOp::Kind::kDelete,
      op.collection(), op.key(), op.value(), OptVersion(op.has_if_version(), op.if_version())};
}

void SetGet(kv::GetResult r, v1::GetResponse* resp) {
  resp->set_found(r.found);
  resp->set_value(std::move(r.value));
  resp->set_version(r.version);
}

void SetScan(kv::ScanResult r, v1::ScanResponse* resp) {
  for (auto& item : r.items) {
    auto* kv = resp->add_items();
    kv->set_key(std::move(item.key));
    kv->set_value(std::move(item.value));
    kv->set_version(item.version);
  }
  resp->set_has_more(r.next.has_value());
  if (r.next) resp->set_next(*r.next);
  resp->set_read_ts(r.read_ts);
}

kv::ScanRequest ScanOf(const v1::ScanRequest& req) {
  return {req.collection(),
          req.start(),
          req.end(),
          req.prefix(),
          req.limit(),
          req.reverse(),
          FromProto(req.consistency()),
          req.at()};
}

// Aggregate: the groups computed on the pool, then written one message after another.
class AggregateReactor final : public grpc::ServerWriteReactor<v1::AggregateResponse> {
 public:
  static constexpr size_t kMessageBytes = 1u << 20;

  AggregateReactor(kv::KvService* kv, Metrics* metrics, ThreadPool* pool,
                   grpc::CallbackServerContext* ctx, const v1::AggregateRequest* req) {
    pool->Submit([=, this] {
      grpc::Status s = Serve(metrics, "aggregate", ctx, [&]() -> Status {
        ASSIGN_OR_RETURN(auto a, FromProto(*req));
        ASSIGN_OR_RETURN(auto r, kv->Aggregate(a));
        ASSIGN_OR_RETURN(parts_, SplitGroups(r, kMessageBytes));
        return Status::OK();
      });
      if (!s.ok()) {
        Finish(s);
        return;
      }
      Next();
    });
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ == parts_.size()) {
      Finish(grpc::Status::OK);
      return;
    }
    StartWrite(&parts_[next_++]);
  }
  std::vector<v1::AggregateResponse> parts_;
  size_t next_ = 0;
};

// Ingest: each message is written through one ingest session before the next is read,
// so a client can run at most a message (and the transport's window) ahead.
class IngestReactor final : public grpc::ServerReadReactor<v1::IngestRequest> {
 public:
  IngestReactor(kv::KvService* kv, Metrics* metrics, ThreadPool* pool,
                grpc::CallbackServerContext* ctx, v1::IngestResponse* resp)
      : kv_(kv), metrics_(metrics), pool_(pool), ctx_(ctx), resp_(resp) {
    start_ = std::chrono::steady_clock::now();
    StartRead(&msg_);
  }
  void OnReadDone(bool ok) override {
    pool_->Submit([this, ok] {
      Status s;
      try {
        s = ok ? Take() : Finish();  // !ok: the client has sent everything (or went away)
      } catch (const std::exception& e) {
        s = Status::Internal(std::string("unexpected error: ") + e.what());
      }
      if (!ok || !s.ok()) {
        Done(s);
        return;
      }
      StartRead(&msg_);
    });
  }
  void OnDone() override { delete this; }

 private:
  Status Take() {
    if (!session_) {
      collection_ = msg_.collection();
      ingest_id_ = msg_.ingest_id();
      if (ingest_id_.size() > 128) {
        return Status::InvalidArgument("an ingest id takes at most 128 bytes");
      }
      ASSIGN_OR_RETURN(auto s, kv::IngestSession::Open(kv_, collection_, ingest_id_));
      session_.emplace(std::move(s));
    } else if ((!msg_.collection().empty() && msg_.collection() != collection_) ||
               (!msg_.ingest_id().empty() && msg_.ingest_id() != ingest_id_)) {
      return Status::InvalidArgument(
          "an ingest stream loads one collection under one id: a later message named "
          "another");
    }
    std::vector<kv::IngestRecord> records;
    records.reserve(msg_.records_size());
    for (auto& r : *msg_.mutable_records()) {
      const uint64_t line = r.line() != 0 ? r.line() : line_ + 1;
      line_ = std::max(line_, line);
      records.push_back({line, std::move(*r.mutable_key()), std::move(*r.mutable_value())});
    }
    std::vector<kv::IngestError> refused;
    for (const auto& e : msg_.refused()) {
      refused.push_back(FromProto(e));
      line_ = std::max(line_, e.line());
    }
    std::sort(refused.begin(), refused.end(),
              [](const auto& a, const auto& b) { return a.line < b.line; });
    line_ = std::max(line_, msg_.last_line());
    return session_->Add(std::move(records), std::move(refused), line_);
  }
  Status Finish() {
    if (!session_) {
      return Status::InvalidArgument("an ingest stream needs at least one message");
    }
    ASSIGN_OR_RETURN(auto sum, session_->Finish());
    ToProto(sum, resp_);
    return Status::OK();
  }
  void Done(const Status& s) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    metrics_->RecordRequest("grpc", "ingest", std::string(StatusCodeName(s.code())), secs);
    AddDetailsToContext(s, ctx_);
    ServerReadReactor::Finish(ToGrpc(s));
  }

  kv::KvService* kv_;
  Metrics* metrics_;
  ThreadPool* pool_;
  grpc::CallbackServerContext* ctx_;
  v1::IngestResponse* resp_;
  std::chrono::steady_clock::time_point start_;
  v1::IngestRequest msg_;
  std::string collection_, ingest_id_;
  std::optional<kv::IngestSession> session_;
  uint64_t line_ = 0;  // the highest line seen
};

}  // namespace

class GrpcServices::KvImpl final : public v1::KV::CallbackService {
 public:
  KvImpl(kv::KvService* kv, Metrics* m, ThreadPool* pool) : kv_(kv), m_(m), pool_(pool) {}

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const v1::PutRequest* req,
                                v1::PutResponse* resp) override {
    return ServeOnPool(pool_, m_, "put", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto r, kv_->Put({req->collection(), req->key(), req->value(),
                                         OptVersion(req->has_if_version(), req->if_version()),
                                         req->request_id()}));
      resp->set_version(r.version);
      return Status::OK();
    });
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::GetRequest* req,
                                v1::GetResponse* resp) override {
    // On the pool too: over a cluster a read waits for a read barrier and a network
    // round trip, which must not hold one of gRPC's few callback threads.
    return ServeOnPool(pool_, m_, "get", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto r, kv_->Get({req->collection(), req->key(),
                                         FromProto(req->consistency()), req->at()}));
      SetGet(std::move(r), resp);
      return Status::OK();
    });
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const v1::DeleteRequest* req,
                                   v1::DeleteResponse* resp) override {
    return ServeOnPool(pool_, m_, "delete", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto r, kv_->Delete({req->collection(), req->key(),
                                            OptVersion(req->has_if_version(), req->if_version()),
                                            req->request_id()}));
      resp->set_version(r.version);
      resp->set_existed(r.existed);
      return Status::OK();
    });
  }

  grpc::ServerUnaryReactor* Scan(grpc::CallbackServerContext* ctx, const v1::ScanRequest* req,
                                 v1::ScanResponse* resp) override {
    return ServeOnPool(pool_, m_, "scan", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto r, kv_->Scan(ScanOf(*req)));
      SetScan(std::move(r), resp);
      return Status::OK();
    });
  }

  grpc::ServerUnaryReactor* Batch(grpc::CallbackServerContext* ctx, const v1::BatchRequest* req,
                                  v1::BatchResponse* resp) override {
    return ServeOnPool(pool_, m_, "batch", ctx, [=, this]() -> Status {
      kv::BatchRequest b;
      b.request_id = req->request_id();
      for (int i = 0; i < req->ops_size(); ++i) {
        ASSIGN_OR_RETURN(auto op, OpOf(req->ops(i), "ops[" + std::to_string(i) + "]: "));
        b.ops.push_back(std::move(op));
      }
      ASSIGN_OR_RETURN(auto r, kv_->Batch(b));
      resp->set_version(r.version);
      return Status::OK();
    });
  }

  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx, const v1::TxnRequest* req,
                                v1::TxnResponse* resp) override {
    return ServeOnPool(pool_, m_, "txn", ctx, [=, this]() -> Status {
      kv::TxnRequest t;
      for (const auto& r : req->reads()) t.reads.push_back({r.collection(), r.key()});
      for (int i = 0; i < req->ops_size(); ++i) {
        ASSIGN_OR_RETURN(auto op, OpOf(req->ops(i), "ops[" + std::to_string(i) + "]: "));
        t.ops.push_back(std::move(op));
      }
      for (int i = 0; i < req->conditions_size(); ++i) {
        const auto& c = req->conditions(i);
        kv::TxnCondition out{c.collection(), c.key(), {}, {}, {}};
        switch (c.expect_case()) {
          case v1::TxnCondition::kVersion:
            out.version = c.version();
            break;
          case v1::TxnCondition::kValue:
            out.value = c.value();
            break;
          case v1::TxnCondition::kExists:
            out.exists = c.exists();
            break;
          default:
            return Status::InvalidArgument("conditions[" + std::to_string(i) +
                                           "]: give one of version, value and exists");
        }
        t.conditions.push_back(std::move(out));
      }
      ASSIGN_OR_RETURN(auto r, kv_->Txn(t));
      resp->set_start_ts(r.start_ts);
      resp->set_commit_ts(r.commit_ts);
      for (auto& g : r.reads) SetGet(std::move(g), resp->add_reads());
      return Status::OK();
    });
  }

  grpc::ServerUnaryReactor* BeginTxn(grpc::CallbackServerContext* ctx, const v1::BeginTxnRequest*,
                                     v1::BeginTxnResponse* resp) override {
    return ServeOnPool(pool_, m_, "txn_begin", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto h, kv_->BeginTxn());
      resp->set_txn(h.id);
      resp->set_start_ts(h.start_ts);
      return Status::OK();
    });
  }

  grpc::ServerUnaryReactor* TxnGet(grpc::CallbackServerContext* ctx, const v1::TxnGetRequest* req,
                                   v1::GetResponse* resp) override {
    return ServeOnPool(pool_, m_, "txn_get", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto r,
                       kv_->TxnGet(req->txn(), {req->key().collection(), req->key().key()}));
      SetGet(std::move(r), resp);
      return Status::OK();
    });
  }

  grpc::ServerUnaryReactor* TxnWrite(grpc::CallbackServerContext* ctx,
                                     const v1::TxnWriteRequest* req,
                                     v1::TxnWriteResponse*) override {
    return ServeOnPool(pool_, m_, "txn_write", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto op, OpOf(req->op(), ""));
      return kv_->TxnWrite(req->txn(), op);
    });
  }

  grpc::ServerUnaryReactor* TxnScan(grpc::CallbackServerContext* ctx, const v1::TxnScanRequest* req,
                                    v1::ScanResponse* resp) override {
    return ServeOnPool(pool_, m_, "txn_scan", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto r, kv_->TxnScan(req->txn(), ScanOf(req->scan())));
      SetScan(std::move(r), resp);
      return Status::OK();
    });
  }

  grpc::ServerUnaryReactor* CommitTxn(grpc::CallbackServerContext* ctx,
                                      const v1::CommitTxnRequest* req,
                                      v1::CommitTxnResponse* resp) override {
    return ServeOnPool(pool_, m_, "txn_commit", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto ts, kv_->CommitTxn(req->txn()));
      resp->set_commit_ts(ts);
      return Status::OK();
    });
  }

  grpc::ServerUnaryReactor* RollbackTxn(grpc::CallbackServerContext* ctx,
                                        const v1::RollbackTxnRequest* req,
                                        v1::RollbackTxnResponse*) override {
    return ServeOnPool(pool_, m_, "txn_rollback", ctx,
                       [=, this]() -> Status { return kv_->RollbackTxn(req->txn()); });
  }

  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* ctx, const v1::QueryRequest* req,
                                  v1::QueryResponse* resp) override {
    return ServeOnPool(pool_, m_, "query", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto r, kv_->Query(FromProto(*req)));
      for (auto& item : r.items) {
        auto* kv = resp->add_items();
        kv->set_key(std::move(item.key));
        kv->set_value(std::move(item.value));
        kv->set_version(item.version);
      }
      resp->set_cursor(std::move(r.cursor));
      resp->set_read_ts(r.read_ts);
      resp->set_plan_json(std::move(r.plan_json));
      return Status::OK();
    });
  }

  grpc::ServerWriteReactor<v1::AggregateResponse>* Aggregate(
      grpc::CallbackServerContext* ctx, const v1::AggregateRequest* req) override {
    return new AggregateReactor(kv_, m_, pool_, ctx, req);
  }

  grpc::ServerReadReactor<v1::IngestRequest>* Ingest(grpc::CallbackServerContext* ctx,
                                                     v1::IngestResponse* resp) override {
    return new IngestReactor(kv_, m_, pool_, ctx, resp);
  }

  grpc::ServerUnaryReactor* IngestProgress(grpc::CallbackServerContext* ctx,
                                           const v1::IngestProgressRequest* req,
                                           v1::IngestProgressResponse* resp) override {
    return ServeOnPool(pool_, m_, "ingest_progress", ctx, [=, this]() -> Status {
      ASSIGN_OR_RETURN(auto done, kv_->IngestProgress(req->collection(), req->ingest_id()));
      resp->set_lines_done(done);
      return Status::OK();
    });
  }

 private:
  kv::KvService* kv_;
  Metrics* m_;
  ThreadPool* pool_;
};

class GrpcServices::CatalogImpl final : public v1::Catalog::Service {
 public:
  CatalogImpl(kv::KvService* kv, Metrics* m) : kv_(kv), m_(m) {}

  grpc::Status CreateCollection(grpc::ServerContext* ctx, const v1::CreateCollectionRequest* req,
                                v1::CollectionInfo* resp) override {
    return Serve(m_, "create_collection", ctx, [&]() -> Status {
      ASSIGN_OR_RETURN(auto info, kv_->CreateCollection({req->name(), req->schema_json(),
                                                         FromProto(req->indexes())}));
      ToProto(info, resp);
      return Status::OK();
    });
  }
  grpc::Status ListCollections(grpc::ServerContext* ctx, const v1::ListCollectionsRequest*,
                               v1::ListCollectionsResponse* resp) override {
    return Serve(m_, "list_collections", ctx, [&]() -> Status {
      ASSIGN_OR_RETURN(auto list, kv_->ListCollections());
      for (const auto& c : list) ToProto(c, resp->add_collections());
      return Status::OK();
    });
  }
  grpc::Status DescribeCollection(grpc::ServerContext* ctx,
                                  const v1::DescribeCollectionRequest* req,
                                  v1::CollectionInfo* resp) override {
    return Serve(m_, "describe_collection", ctx, [&]() -> Status {
      ASSIGN_OR_RETURN(auto info, kv_->DescribeCollection(req->name()));
      ToProto(info, resp);
      return Status::OK();
    });
  }
  grpc::Status CreateIndex(grpc::ServerContext* ctx, const v1::CreateIndexRequest* req,
                           v1::CollectionInfo* resp) override {
    return Serve(m_, "create_index", ctx, [&]() -> Status {
      const auto& i = req->index();
      kv::IndexSpec spec{i.name(), {i.fields().begin(), i.fields().end()}, i.unique()};
      ASSIGN_OR_RETURN(auto info, kv_->CreateIndex(req->collection(), spec,
                                                   std::chrono::milliseconds(req->wait_ms())));
      ToProto(info, resp);
      return Status::OK();
    });
  }

  grpc::Status DropIndex(grpc::ServerContext* ctx, const v1::DropIndexRequest* req,
                         v1::CollectionInfo* resp) override {
    return Serve(m_, "drop_index", ctx, [&]() -> Status {
      ASSIGN_OR_RETURN(auto info, kv_->DropIndex(req->collection(), req->name()));
      ToProto(info, resp);
      return Status::OK();
    });
  }

  grpc::Status DropCollection(grpc::ServerContext* ctx, const v1::DropCollectionRequest* req,
                              v1::DropCollectionResponse*) override {
    return Serve(m_, "drop_collection", ctx, [&] { return kv_->DropCollection(req->name()); });
  }

 private:
  kv::KvService* kv_;
  Metrics* m_;
};

class GrpcServices::AdminImpl final : public v1::Admin::Service {
 public:
  AdminImpl(Metrics* m, StatusProvider status) : m_(m), status_(std::move(status)) {}
  grpc::Status ClusterStatus(grpc::ServerContext* ctx, const v1::ClusterStatusRequest*,
                             v1::ClusterStatusResponse* resp) override {
    return Serve(m_, "cluster_status", ctx, [&]() -> Status {
      *resp = status_();
      return Status::OK();
    });
  }

 private:
  Metrics* m_;
  StatusProvider status_;
};

GrpcServices::GrpcServices(kv::KvService* kv, Metrics* metrics, StatusProvider status)
    : pool_(std::make_unique<ThreadPool>(64)),
      kv_(std::make_unique<KvImpl>(kv, metrics, pool_.get())),
      catalog_(std::make_unique<CatalogImpl>(kv, metrics)),
      admin_(std::make_unique<AdminImpl>(metrics, std::move(status))) {}

GrpcServices::~GrpcServices() = default;

void GrpcServices::RegisterOn(grpc::ServerBuilder* builder) {
  builder->RegisterService(kv_.get());
  builder->RegisterService(catalog_.get());
  builder->RegisterService(admin_.get());
}

}  // namespace gojodb::rpc
