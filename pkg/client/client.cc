#include "pkg/client/client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "api/gateway/cluster_kv.h"
#include "api/grpc/convert.h"
#include "gojodb/v1/controller.grpc.pb.h"
#include "gojodb/v1/kv.grpc.pb.h"

namespace gojodb::client {

struct Client::Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::KV::Stub> kv;
  std::unique_ptr<v1::Catalog::Stub> catalog;
  std::unique_ptr<v1::Admin::Stub> admin;
  std::unique_ptr<v1::Controller::Stub> controller;
};

namespace {

// Calls `method` with a deadline and converts the status.
template <typename Stub, typename Req, typename Resp>
Status Call(const ClientOptions& o, Stub* stub,
            grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& req,
            Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o.timeout_ms));
  grpc::Status s = (stub->*method)(&ctx, req, resp);
  return rpc::FromGrpc(s, &ctx);
}

void SetVersion(const std::optional<uint64_t>& v, auto* msg) {
  if (v) msg->set_if_version(*v);
}

void ToProto(const kv::ScanRequest& r, v1::ScanRequest* req) {
  req->set_collection(r.collection);
  req->set_start(r.start);
  req->set_end(r.end);
  req->set_prefix(r.prefix);
  req->set_limit(static_cast<uint32_t>(std::min<size_t>(r.limit, UINT32_MAX)));
  req->set_reverse(r.reverse);
  req->set_consistency(rpc::ToProto(r.consistency));
  req->set_at(r.at);
}

kv::ScanResult FromProto(v1::ScanResponse resp) {
  kv::ScanResult out;
  for (auto& item : *resp.mutable_items()) {
    out.items.push_back(
        {std::move(*item.mutable_key()), std::move(*item.mutable_value()), item.version()});
  }
  if (resp.has_more()) out.next = resp.next();
  out.read_ts = resp.read_ts();
  return out;
}

kv::GetResult FromProto(v1::GetResponse resp) {
  kv::GetResult out;
  out.found = resp.found();
  if (out.found) {
    out.value = std::move(*resp.mutable_value());
    out.version = resp.version();
  }
  return out;
}

void ToProto(const kv::BatchOp& op, v1::BatchOp* p) {
  p->set_op(op.kind == kv::BatchOp::Kind::kPut ? v1::BatchOp::PUT : v1::BatchOp::DELETE);
  p->set_collection(op.collection);
  p->set_key(op.key);
  p->set_value(op.value);
  SetVersion(op.if_version, p);
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (options.addr.empty() && options.controllers.empty()) {
    return Status::InvalidArgument("no server or controller address given");
  }
  if (options.timeout_ms <= 0) return Status::InvalidArgument("timeout_ms must be positive");
  for (const auto& c : options.controllers) {
    if (c.empty()) return Status::InvalidArgument("an empty controller address was given");
  }
  rpc::TuneGrpcRuntime();
  ClientOptions o = options;
  if (o.addr.empty()) o.addr = o.controllers.front();
  std::unique_ptr<Client> client(new Client(o));
  if (!o.controllers.empty()) {
    gateway::ClusterKvOptions ro;
    ro.controllers = o.controllers;
    ro.request_timeout = std::chrono::milliseconds(o.timeout_ms);
    ro.attempt_timeout = std::min(ro.attempt_timeout, ro.request_timeout);
    ro.txn_lock_ttl = std::chrono::milliseconds(o.txn_lock_ttl_ms);
    ASSIGN_OR_RETURN(client->routed_, gateway::ClusterKv::Start(std::move(ro)));
    client->limits_ = client->routed_->limits();
  }
  return client;
}

Client::Client(const ClientOptions& options) : options_(options), stubs_(new Stubs) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  stubs_->channel =
      grpc::CreateCustomChannel(options.addr, grpc::InsecureChannelCredentials(), args);
  stubs_->kv = v1::KV::NewStub(stubs_->channel);
  stubs_->catalog = v1::Catalog::NewStub(stubs_->channel);
  stubs_->admin = v1::Admin::NewStub(stubs_->channel);
  stubs_->controller = v1::Controller::NewStub(stubs_->channel);
}

Client::~Client() = default;

Result<kv::WriteResult> Client::Put(const kv::PutRequest& r) {
  if (routed_) return routed_->Put(r);
  v1::PutRequest req;
  req.set_collection(r.collection);
  req.set_key(r.key);
  req.set_value(r.value);
  SetVersion(r.if_version, &req);
  req.set_request_id(r.request_id);
  v1::PutResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::Put, req, &resp));
  return kv::WriteResult{resp.version(), false};
}

Result<kv::WriteResult> Client::Delete(const kv::DeleteRequest& r) {
  if (routed_) return routed_->Delete(r);
  v1::DeleteRequest req;
  req.set_collection(r.collection);
  req.set_key(r.key);
  SetVersion(r.if_version, &req);
  req.set_request_id(r.request_id);
  v1::DeleteResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::Delete, req, &resp));
  return kv::WriteResult{resp.version(), resp.existed()};
}

Result<kv::GetResult> Client::Get(const kv::GetRequest& r) {
  if (routed_) return routed_->Get(r);
  v1::GetRequest req;
  req.set_collection(r.collection);
  req.set_key(r.key);
  req.set_consistency(rpc::ToProto(r.consistency));
  req.set_at(r.at);
  v1::GetResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::Get, req, &resp));
  return FromProto(std::move(resp));
}

Result<kv::ScanResult> Client::Scan(const kv::ScanRequest& r) {
  if (routed_) return routed_->Scan(r);
  v1::ScanRequest req;
  ToProto(r, &req);
  v1::ScanResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::Scan, req, &resp));
  return FromProto(std::move(resp));
}

Result<kv::WriteResult> Client::Batch(const kv::BatchRequest& r) {
  if (routed_) return routed_->Batch(r);
  v1::BatchRequest req;
  req.set_request_id(r.request_id);
  for (const auto& op : r.ops) ToProto(op, req.add_ops());
  v1::BatchResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::Batch, req, &resp));
  return kv::WriteResult{resp.version(), false};
}

Result<kv::TxnResult> Client::Txn(const kv::TxnRequest& r) {
  if (routed_) return routed_->Txn(r);
  v1::TxnRequest req;
  for (const auto& read : r.reads) {
    auto* k = req.add_reads();
    k->set_collection(read.collection);
    k->set_key(read.key);
  }
  for (const auto& op : r.ops) ToProto(op, req.add_ops());
  for (const auto& c : r.conditions) {
    auto* p = req.add_conditions();
    p->set_collection(c.collection);
    p->set_key(c.key);
    if (c.version) p->set_version(*c.version);
    if (c.value) p->set_value(*c.value);
    if (c.exists) p->set_exists(*c.exists);
  }
  v1::TxnResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::Txn, req, &resp));
  kv::TxnResult out;
  out.start_ts = resp.start_ts();
  out.commit_ts = resp.commit_ts();
  for (auto& g : *resp.mutable_reads()) out.reads.push_back(FromProto(std::move(g)));
  return out;
}

Result<kv::TxnHandle> Client::BeginTxn() {
  if (routed_) return routed_->BeginTxn();
  v1::BeginTxnRequest req;
  v1::BeginTxnResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::BeginTxn, req, &resp));
  return kv::TxnHandle{resp.txn(), resp.start_ts()};
}

Result<kv::GetResult> Client::TxnGet(const std::string& txn, const kv::TxnRead& read) {
  if (routed_) return routed_->TxnGet(txn, read);
  v1::TxnGetRequest req;
  req.set_txn(txn);
  req.mutable_key()->set_collection(read.collection);
  req.mutable_key()->set_key(read.key);
  v1::GetResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::TxnGet, req, &resp));
  return FromProto(std::move(resp));
}

Status Client::TxnWrite(const std::string& txn, const kv::BatchOp& op) {
  if (routed_) return routed_->TxnWrite(txn, op);
  v1::TxnWriteRequest req;
  req.set_txn(txn);
  ToProto(op, req.mutable_op());
  v1::TxnWriteResponse resp;
  return Call(options_, stubs_->kv.get(), &v1::KV::Stub::TxnWrite, req, &resp);
}

Result<kv::ScanResult> Client::TxnScan(const std::string& txn, const kv::ScanRequest& r) {
  if (routed_) return routed_->TxnScan(txn, r);
  v1::TxnScanRequest req;
  req.set_txn(txn);
  ToProto(r, req.mutable_scan());
  v1::ScanResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::TxnScan, req, &resp));
  return FromProto(std::move(resp));
}

Result<uint64_t> Client::CommitTxn(const std::string& txn) {
  if (routed_) return routed_->CommitTxn(txn);
  v1::CommitTxnRequest req;
  req.set_txn(txn);
  v1::CommitTxnResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::CommitTxn, req, &resp));
  return resp.commit_ts();
}

Status Client::RollbackTxn(const std::string& txn) {
  if (routed_) return routed_->RollbackTxn(txn);
  v1::RollbackTxnRequest req;
  req.set_txn(txn);
  v1::RollbackTxnResponse resp;
  return Call(options_, stubs_->kv.get(), &v1::KV::Stub::RollbackTxn, req, &resp);
}

namespace {

// An ingest stream to a server: each Add is one message.
class GrpcIngestStream final : public kv::IngestStream {
 public:
  GrpcIngestStream(v1::KV::Stub* stub, std::string collection, std::string ingest_id,
                   int timeout_ms)
      : collection_(std::move(collection)), ingest_id_(std::move(ingest_id)) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    writer_ = stub->Ingest(&ctx_, &resp_);
  }
  ~GrpcIngestStream() override {
    if (!finished_) {  // abandoned: the server drops what it has not written
      ctx_.TryCancel();
      (void)writer_->Finish();
    }
  }

  Status Add(std::vector<kv::IngestRecord> records, std::vector<kv::IngestError> refused,
             uint64_t last_line) override {
    if (finished_) return Status::FailedPrecondition("the ingest stream has finished");
    v1::IngestRequest m = Header();
    for (auto& r : records) {
      auto* p = m.add_records();
      p->set_key(std::move(r.key));
      p->set_value(std::move(r.value));
      p->set_line(r.line);
    }
    for (const auto& e : refused) rpc::ToProto(e, m.add_refused());
    m.set_last_line(last_line);
    if (!writer_->Write(m)) {
      // The server ended the stream: its error says why (an early OK cannot take this).
      Status s = End().status();
      return s.ok() ? Status::Unavailable("the server ended the ingest stream early") : s;
    }
    return Status::OK();
  }

  Result<kv::IngestSummary> Finish() override { return End(); }

 private:
  // The first message names the collection and the id.
  v1::IngestRequest Header() {
    v1::IngestRequest m;
    if (!sent_) {
      m.set_collection(collection_);
      m.set_ingest_id(ingest_id_);
      sent_ = true;
    }
    return m;
  }
  Result<kv::IngestSummary> End() {
    if (!finished_) {
      finished_ = true;
      if (!sent_) writer_->Write(Header());  // the server wants at least one message
      writer_->WritesDone();
      status_ = rpc::FromGrpc(writer_->Finish(), &ctx_);
    }
    if (!status_.ok()) return status_;
    return rpc::FromProto(resp_);
  }

  std::string collection_, ingest_id_;
  grpc::ClientContext ctx_;
  v1::IngestResponse resp_;
  std::unique_ptr<grpc::ClientWriter<v1::IngestRequest>> writer_;
  bool sent_ = false, finished_ = false;
  Status status_;
};

}  // namespace

Result<kv::QueryResult> Client::Query(const kv::QueryRequest& r) {
  if (routed_) return routed_->Query(r);
  v1::QueryRequest req;
  rpc::ToProto(r, &req);
  v1::QueryResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::Query, req, &resp));
  kv::QueryResult out;
  for (auto& item : *resp.mutable_items()) {
    out.items.push_back(
        {std::move(*item.mutable_key()), std::move(*item.mutable_value()), item.version()});
  }
  out.cursor = std::move(*resp.mutable_cursor());
  out.read_ts = resp.read_ts();
  out.plan_json = std::move(*resp.mutable_plan_json());
  return out;
}

Result<kv::AggregateResult> Client::Aggregate(const kv::AggregateRequest& r) {
  if (routed_) return routed_->Aggregate(r);
  v1::AggregateRequest req;
  RETURN_IF_ERROR(rpc::ToProto(r, &req));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(options_.timeout_ms));
  auto reader = stubs_->kv->Aggregate(&ctx, req);
  std::vector<v1::AggregateResponse> parts(1);
  while (reader->Read(&parts.back())) parts.emplace_back();
  parts.pop_back();
  RETURN_IF_ERROR(rpc::FromGrpc(reader->Finish(), &ctx));
  return rpc::JoinGroups(parts);
}

Result<kv::IngestResult> Client::Ingest(const kv::IngestRequest& r) {
  ASSIGN_OR_RETURN(auto stream, OpenStream(r.collection, r.ingest_id, options_.timeout_ms));
  RETURN_IF_ERROR(stream->Add(r.records, {}, r.last_line));
  ASSIGN_OR_RETURN(auto sum, stream->Finish());
  return kv::IngestResult{sum.written, std::move(sum.errors)};
}

Result<uint64_t> Client::IngestProgress(const std::string& collection,
                                        const std::string& ingest_id) {
  if (routed_) return routed_->IngestProgress(collection, ingest_id);
  v1::IngestProgressRequest req;
  req.set_collection(collection);
  req.set_ingest_id(ingest_id);
  v1::IngestProgressResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->kv.get(), &v1::KV::Stub::IngestProgress, req, &resp));
  return resp.lines_done();
}

Result<std::unique_ptr<kv::IngestStream>> Client::OpenIngest(const std::string& collection,
                                                             const std::string& ingest_id) {
  return OpenStream(collection, ingest_id, options_.stream_timeout_ms);
}

Result<std::unique_ptr<kv::IngestStream>> Client::OpenStream(const std::string& collection,
                                                             const std::string& ingest_id,
                                                             int timeout_ms) {
  if (routed_) {
    ASSIGN_OR_RETURN(auto session, kv::IngestSession::Open(routed_.get(), collection, ingest_id));
    return std::unique_ptr<kv::IngestStream>(new kv::IngestSession(std::move(session)));
  }
  return std::unique_ptr<kv::IngestStream>(
      new GrpcIngestStream(stubs_->kv.get(), collection, ingest_id, timeout_ms));
}

Result<kv::CollectionInfo> Client::CreateCollection(const kv::CollectionSpec& spec) {
  if (routed_) return routed_->CreateCollection(spec);
  v1::CreateCollectionRequest req;
  req.set_name(spec.name);
  req.set_schema_json(spec.schema_json);
  rpc::ToProto(spec.indexes, req.mutable_indexes());
  v1::CollectionInfo resp;
  RETURN_IF_ERROR(
      Call(options_, stubs_->catalog.get(), &v1::Catalog::Stub::CreateCollection, req, &resp));
  return rpc::FromProto(resp);
}

Result<std::vector<kv::CollectionInfo>> Client::ListCollections() {
  if (routed_) return routed_->ListCollections();
  v1::ListCollectionsRequest req;
  v1::ListCollectionsResponse resp;
  RETURN_IF_ERROR(
      Call(options_, stubs_->catalog.get(), &v1::Catalog::Stub::ListCollections, req, &resp));
  std::vector<kv::CollectionInfo> out;
  for (const auto& c : resp.collections()) out.push_back(rpc::FromProto(c));
  return out;
}

Result<kv::CollectionInfo> Client::DescribeCollection(const std::string& name) {
  if (routed_) return routed_->DescribeCollection(name);
  v1::DescribeCollectionRequest req;
  req.set_name(name);
  v1::CollectionInfo resp;
  RETURN_IF_ERROR(
      Call(options_, stubs_->catalog.get(), &v1::Catalog::Stub::DescribeCollection, req, &resp));
  return rpc::FromProto(resp);
}

Status Client::DropCollection(const std::string& name) {
  if (routed_) return routed_->DropCollection(name);
  v1::DropCollectionRequest req;
  req.set_name(name);
  v1::DropCollectionResponse resp;
  return Call(options_, stubs_->catalog.get(), &v1::Catalog::Stub::DropCollection, req, &resp);
}

Result<kv::CollectionInfo> Client::CreateIndex(const std::string& collection,
                                               const kv::IndexSpec& index,
                                               std::chrono::milliseconds wait) {
  if (routed_) return routed_->CreateIndex(collection, index, wait);
  v1::CreateIndexRequest req;
  req.set_collection(collection);
  auto* i = req.mutable_index();
  i->set_name(index.name);
  for (const auto& f : index.fields) i->add_fields(f);
  i->set_unique(index.unique);
  req.set_wait_ms(static_cast<uint64_t>(wait.count()));
  // The build waits out the collection's schema lease first: the call may take as long
  // as `wait`, and a little more for the answer.
  ClientOptions o = options_;
  o.timeout_ms += static_cast<int>(wait.count());
  v1::CollectionInfo resp;
  RETURN_IF_ERROR(Call(o, stubs_->catalog.get(), &v1::Catalog::Stub::CreateIndex, req, &resp));
  return rpc::FromProto(resp);
}

Result<kv::CollectionInfo> Client::DropIndex(const std::string& collection,
                                             const std::string& name) {
  if (routed_) return routed_->DropIndex(collection, name);
  v1::DropIndexRequest req;
  req.set_collection(collection);
  req.set_name(name);
  // A drop waits out the schema lease (at most ten minutes; ten seconds by default).
  ClientOptions o = options_;
  o.timeout_ms = std::max(o.timeout_ms, 600000);
  v1::CollectionInfo resp;
  RETURN_IF_ERROR(Call(o, stubs_->catalog.get(), &v1::Catalog::Stub::DropIndex, req, &resp));
  return rpc::FromProto(resp);
}

Result<v1::ClusterStatusResponse> Client::ClusterStatus() {
  if (routed_) return routed_->ClusterStatus();
  v1::ClusterStatusRequest req;
  v1::ClusterStatusResponse resp;
  RETURN_IF_ERROR(Call(options_, stubs_->admin.get(), &v1::Admin::Stub::ClusterStatus, req, &resp));
  return resp;
}

Status Client::Ready() {
  if (routed_) return routed_->Ready();
  return ClusterStatus().status();
}

std::map<std::string, uint64_t> Client::StorageStats() {
  if (routed_) return routed_->StorageStats();
  return {};
}

Result<v1::ListNodesResponse> Client::ListNodes() {
  v1::ListNodesRequest req;
  v1::ListNodesResponse resp;
  RETURN_IF_ERROR(
      Call(options_, stubs_->controller.get(), &v1::Controller::Stub::ListNodes, req, &resp));
  return resp;
}

Status Client::DecommissionNode(uint64_t node_id) {
  v1::DecommissionNodeRequest req;
  req.set_node_id(node_id);
  v1::DecommissionNodeResponse resp;
  return Call(options_, stubs_->controller.get(), &v1::Controller::Stub::DecommissionNode, req,
              &resp);
}

Result<v1::GetShardMapResponse> Client::GetShardMap() {
  v1::GetShardMapRequest req;  // known_version 0, wait_ms 0: the current map at once
  req.set_linearizable(true);  // a member that restarted may not have caught up yet
  v1::GetShardMapResponse resp;
  RETURN_IF_ERROR(
      Call(options_, stubs_->controller.get(), &v1::Controller::Stub::GetShardMap, req, &resp));
  return resp;
}

Status Client::AddController(uint64_t id, const std::string& grpc_addr) {
  v1::AddControllerRequest req;
  req.set_id(id);
  req.set_grpc_addr(grpc_addr);
  v1::AddControllerResponse resp;
  return Call(options_, stubs_->controller.get(), &v1::Controller::Stub::AddController, req, &resp);
}

Status Client::RemoveController(uint64_t id) {
  v1::RemoveControllerRequest req;
  req.set_id(id);
  v1::RemoveControllerResponse resp;
  return Call(options_, stubs_->controller.get(), &v1::Controller::Stub::RemoveController, req,
              &resp);
}

Result<v1::Settings> Client::GetSettings() {
  v1::GetSettingsRequest req;
  v1::Settings resp;
  RETURN_IF_ERROR(
      Call(options_, stubs_->controller.get(), &v1::Controller::Stub::GetSettings, req, &resp));
  return resp;
}

Result<v1::Settings> Client::UpdateSettings(const std::string& patch_json) {
  v1::UpdateSettingsRequest req;
  req.set_patch_json(patch_json);
  v1::Settings resp;
  RETURN_IF_ERROR(
      Call(options_, stubs_->controller.get(), &v1::Controller::Stub::UpdateSettings, req, &resp));
  return resp;
}

Result<v1::GetTimestampsResponse> Client::GetTimestamps(uint32_t count) {
  v1::GetTimestampsRequest req;
  req.set_count(count);
  v1::GetTimestampsResponse resp;
  RETURN_IF_ERROR(
      Call(options_, stubs_->controller.get(), &v1::Controller::Stub::GetTimestamps, req, &resp));
  return resp;
}

}  // namespace gojodb::client
