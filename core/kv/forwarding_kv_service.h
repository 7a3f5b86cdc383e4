// A KvService that passes every call to another: the base of services that change a
// few calls (api/gateway/service_filter.h, test doubles) and pass the rest on.
#pragma once

#include "core/kv/kv_service.h"

namespace gojodb::kv {

class ForwardingKvService : public KvService {
 public:
  // `base` is not owned and must outlive this object.
  explicit ForwardingKvService(KvService* base) : base_(base) {}

  Result<WriteResult> Put(const PutRequest& r) override { return base_->Put(r); }
  Result<WriteResult> Delete(const DeleteRequest& r) override { return base_->Delete(r); }
  Result<GetResult> Get(const GetRequest& r) override { return base_->Get(r); }
  Result<ScanResult> Scan(const ScanRequest& r) override { return base_->Scan(r); }
  Result<WriteResult> Batch(const BatchRequest& r) override { return base_->Batch(r); }
  Result<TxnResult> Txn(const TxnRequest& r) override { return base_->Txn(r); }
  Result<TxnHandle> BeginTxn() override { return base_->BeginTxn(); }
  Result<GetResult> TxnGet(const std::string& t, const TxnRead& r) override {
    return base_->TxnGet(t, r);
  }
  Status TxnWrite(const std::string& t, const BatchOp& op) override {
    return base_->TxnWrite(t, op);
  }
  Result<ScanResult> TxnScan(const std::string& t, const ScanRequest& r) override {
    return base_->TxnScan(t, r);
  }
  Result<uint64_t> CommitTxn(const std::string& t) override { return base_->CommitTxn(t); }
  Status RollbackTxn(const std::string& t) override { return base_->RollbackTxn(t); }
  Result<QueryResult> Query(const QueryRequest& r) override { return base_->Query(r); }
  Result<AggregateResult> Aggregate(const AggregateRequest& r) override {
    return base_->Aggregate(r);
  }
  Result<IngestResult> Ingest(const IngestRequest& r) override { return base_->Ingest(r); }
  Result<uint64_t> IngestProgress(const std::string& c, const std::string& id) override {
    return base_->IngestProgress(c, id);
  }
  Result<CollectionInfo> CreateCollection(const CollectionSpec& s) override {
    return base_->CreateCollection(s);
  }
  Result<std::vector<CollectionInfo>> ListCollections() override {
    return base_->ListCollections();
  }
  Result<CollectionInfo> DescribeCollection(const std::string& n) override {
    return base_->DescribeCollection(n);
  }
  Status DropCollection(const std::string& n) override { return base_->DropCollection(n); }
  Result<CollectionInfo> CreateIndex(const std::string& c, const IndexSpec& i,
                                     std::chrono::milliseconds wait) override {
    return base_->CreateIndex(c, i, wait);
  }
  Result<CollectionInfo> DropIndex(const std::string& c, const std::string& n) override {
    return base_->DropIndex(c, n);
  }
  const Limits& limits() const override { return base_->limits(); }
  Status Ready() override { return base_->Ready(); }
  std::map<std::string, uint64_t> StorageStats() override { return base_->StorageStats(); }

 private:
  KvService* const base_;
};

}  // namespace gojodb::kv
