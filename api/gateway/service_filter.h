// The API families a gateway serves (gojodb-api --services): a KvService that passes
// the calls of the families it was given to another and refuses the rest with 501
// UNIMPLEMENTED, reason SERVICE_NOT_SERVED. HTTP and gRPC both go through it, so a
// gateway deployed for one family serves that family alone.
//
//   reads        Get, Scan, Query
//   writes       Put, Delete, Batch, transactions (one-shot and interactive)
//   bulk         Ingest, IngestProgress
//   aggregation  Aggregate
//
// The catalog (collections), readiness, limits and statistics are always served.
#pragma once

#include <set>
#include <string>

#include "core/kv/forwarding_kv_service.h"

namespace gojodb::gateway {

class ServiceFilter final : public kv::ForwardingKvService {
 public:
  // `base` is not owned and must outlive the filter.
  ServiceFilter(kv::KvService* base, std::set<std::string> served, std::string flag)
      : ForwardingKvService(base), served_(std::move(served)), flag_(std::move(flag)) {}

  Result<kv::WriteResult> Put(const kv::PutRequest& r) override {
    RETURN_IF_ERROR(Allow("writes"));
    return ForwardingKvService::Put(r);
  }
  Result<kv::WriteResult> Delete(const kv::DeleteRequest& r) override {
    RETURN_IF_ERROR(Allow("writes"));
    return ForwardingKvService::Delete(r);
  }
  Result<kv::GetResult> Get(const kv::GetRequest& r) override {
    RETURN_IF_ERROR(Allow("reads"));
    return ForwardingKvService::Get(r);
  }
  Result<kv::ScanResult> Scan(const kv::ScanRequest& r) override {
    RETURN_IF_ERROR(Allow("reads"));
    return ForwardingKvService::Scan(r);
  }
  Result<kv::WriteResult> Batch(const kv::BatchRequest& r) override {
    RETURN_IF_ERROR(Allow("writes"));
    return ForwardingKvService::Batch(r);
  }
  Result<kv::TxnResult> Txn(const kv::TxnRequest& r) override {
    RETURN_IF_ERROR(Allow("writes"));
    return ForwardingKvService::Txn(r);
  }
  Result<kv::TxnHandle> BeginTxn() override {
    RETURN_IF_ERROR(Allow("writes"));
    return ForwardingKvService::BeginTxn();
  }
  Result<kv::GetResult> TxnGet(const std::string& t, const kv::TxnRead& r) override {
    RETURN_IF_ERROR(Allow("writes"));
    return ForwardingKvService::TxnGet(t, r);
  }
  Status TxnWrite(const std::string& t, const kv::BatchOp& op) override {
    RETURN_IF_ERROR(Allow("writes"));
    return ForwardingKvService::TxnWrite(t, op);
  }
  Result<kv::ScanResult> TxnScan(const std::string& t, const kv::ScanRequest& r) override {
    RETURN_IF_ERROR(Allow("writes"));
    return ForwardingKvService::TxnScan(t, r);
  }
  Result<uint64_t> CommitTxn(const std::string& t) override {
    RETURN_IF_ERROR(Allow("writes"));
    return ForwardingKvService::CommitTxn(t);
  }
  Status RollbackTxn(const std::string& t) override {
    RETURN_IF_ERROR(Allow("writes"));
    return ForwardingKvService::RollbackTxn(t);
  }
  Result<kv::QueryResult> Query(const kv::QueryRequest& r) override {
    RETURN_IF_ERROR(Allow("reads"));
    return ForwardingKvService::Query(r);
  }
  Result<kv::AggregateResult> Aggregate(const kv::AggregateRequest& r) override {
    RETURN_IF_ERROR(Allow("aggregation"));
    return ForwardingKvService::Aggregate(r);
  }
  Result<kv::IngestResult> Ingest(const kv::IngestRequest& r) override {
    RETURN_IF_ERROR(Allow("bulk"));
    return ForwardingKvService::Ingest(r);
  }
  Result<uint64_t> IngestProgress(const std::string& c, const std::string& id) override {
    RETURN_IF_ERROR(Allow("bulk"));
    return ForwardingKvService::IngestProgress(c, id);
  }

 private:
  Status Allow(const char* family) const {
    if (served_.count(family)) return Status::OK();
    return Status::Unimplemented(std::string("this gateway does not serve ") + family +
                                 " (--services " + flag_ + "); send them to one that does")
        .WithDetail("reason", "SERVICE_NOT_SERVED");
  }

  const std::set<std::string> served_;
  const std::string flag_;
};

}  // namespace gojodb::gateway
