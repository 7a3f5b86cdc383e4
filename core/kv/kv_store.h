// KvStore: KvService on one node's Engine (standalone mode, single replica).
//
// Writes: exclusive row latches serialize read-check-write (conditional writes, request
// ids); blind writes hold the latches shared and commit concurrently. The commit timestamp
// comes from the TimestampOracle; the version, and the request-id record when one is
// given, go to the engine in one batch, fsynced when sync_writes is on, before the
// write is acknowledged. Concurrent writers share fsyncs (the engine groups them).
// Reads: a point read sees the newest durable version; a scan reads at a timestamp
// chosen by the CommitTracker, so it is a consistent cut that includes every write
// acknowledged before it began. See docs/architecture/storage.md.
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <memory>
#include <shared_mutex>
#include <thread>

#include "core/kv/catalog.h"
#include "core/kv/commit_tracker.h"
#include "core/kv/kv_service.h"
#include "core/kv/latches.h"
#include "core/mvcc/mvcc.h"
#include "core/mvcc/timestamp_oracle.h"
#include "internal/clock.h"

namespace gojodb::kv {

struct KvStoreOptions {
  Limits limits;
  bool sync_writes = true;
  uint64_t gc_ttl_ms = 10 * 60 * 1000;          // versions kept readable this long
  uint64_t request_id_ttl_ms = 60 * 60 * 1000;  // a retry within this applies once
  uint64_t maintenance_interval_ms = 30 * 1000;
};

class KvStore final : public KvService {
 public:
  // None of the pointers is owned; all must outlive the store. `safe_point` is the one
  // the engine's GC compaction filter reads.
  static Result<std::unique_ptr<KvStore>> Open(storage::Engine* engine, mvcc::TimestampOracle* tso,
                                               Clock* clock,
                                               std::shared_ptr<mvcc::SafePoint> safe_point,
                                               KvStoreOptions options);
  ~KvStore() override;

  Result<WriteResult> Put(const PutRequest& req) override;
  Result<WriteResult> Delete(const DeleteRequest& req) override;
  Result<GetResult> Get(const GetRequest& req) override;
  Result<ScanResult> Scan(const ScanRequest& req) override;
  Result<WriteResult> Batch(const BatchRequest& req) override;

  Result<CollectionInfo> CreateCollection(const CollectionSpec& spec) override;
  Result<std::vector<CollectionInfo>> ListCollections() override;
  Result<CollectionInfo> DescribeCollection(const std::string& name) override;
  Status DropCollection(const std::string& name) override;

  const Limits& limits() const override { return options_.limits; }
  Status Ready() override { return Status::OK(); }
  std::map<std::string, uint64_t> StorageStats() override;

  // One round of background upkeep: advances the GC safe point and forgets expired
  // request ids. Runs periodically on its own thread; public for tests.
  Status RunMaintenance();

 private:
  KvStore(storage::Engine* engine, mvcc::TimestampOracle* tso, Clock* clock,
          std::shared_ptr<mvcc::SafePoint> safe_point, KvStoreOptions options,
          std::unique_ptr<Catalog> catalog);

  struct Mutation {  // one validated write
    bool is_delete = false;
    std::string row_key;
    std::string_view value;
    std::optional<uint64_t> if_version;
  };
  // Shared by Put, Delete and Batch.
  Result<WriteResult> Commit(const std::vector<Mutation>& mutations, const std::string& request_id,
                             uint64_t fingerprint);
  Result<uint32_t> CollectionId(const std::string& name) const;
  Status CheckKey(std::string_view key) const;
  Result<mvcc::Timestamp> ReadTimestamp(Consistency c, uint64_t at);
  void MaintenanceLoop();

  storage::Engine* const engine_;
  mvcc::TimestampOracle* const tso_;
  Clock* const clock_;
  const std::shared_ptr<mvcc::SafePoint> safe_point_;
  const KvStoreOptions options_;
  std::unique_ptr<Catalog> catalog_;
  CommitTracker tracker_;
  Latches latches_;
  // Writes hold it shared; dropping a collection holds it exclusively.
  std::shared_mutex ddl_mu_;

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stopping_ = false;  // GUARDED_BY(bg_mu_)
  std::thread maintenance_;
};

}  // namespace gojodb::kv
