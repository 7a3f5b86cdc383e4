// core/kv: the key-value operations every API front end serves.
//
// KvService is the seam between the API layers (gRPC, HTTP, and later the gateway's
// cluster client) and whatever executes the operations. KvStore implements it on one
// node's Engine. Errors are Status values with these codes:
//   INVALID_ARGUMENT  bad key, collection name, limit or request
//   RESOURCE_EXHAUSTED with detail reason=TOO_LARGE: key or value over its limit
//   NOT_FOUND         unknown collection
//   FAILED_PRECONDITION if_version did not match (detail current_version)
//   ALREADY_EXISTS    collection exists
//   OUT_OF_RANGE      snapshot read below the GC safe point
//   ABORTED           a transaction conflicted (retry it with a new one)
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "internal/status.h"

namespace gojodb::kv {

enum class Consistency { kLinearizable, kSnapshot, kStale };

struct Limits {
  size_t max_key_bytes = 4096;
  size_t max_value_bytes = 8u << 20;
  size_t default_scan_limit = 1000;
  size_t max_scan_limit = 10000;
  size_t max_batch_ops = 10000;
};

struct PutRequest {
  std::string collection;  // empty: "default"
  std::string key;
  std::string value;
  std::optional<uint64_t> if_version;  // 0: must not exist
  std::string request_id;              // empty: none
};

struct DeleteRequest {
  std::string collection;
  std::string key;
  std::optional<uint64_t> if_version;
  std::string request_id;
};

struct WriteResult {
  uint64_t version = 0;  // commit timestamp
  bool existed = false;  // Delete only: the key had a live value before this write
};

struct GetRequest {
  std::string collection;
  std::string key;
  Consistency consistency = Consistency::kLinearizable;
  uint64_t at = 0;  // with kSnapshot
};

struct GetResult {
  bool found = false;
  std::string value;
  uint64_t version = 0;
};

struct ScanRequest {
  std::string collection;
  std::string start;   // inclusive; empty: first key
  std::string end;     // exclusive; empty: past the last key
  std::string prefix;  // narrows [start, end) when set
  size_t limit = 0;    // 0: Limits::default_scan_limit
  bool reverse = false;
  Consistency consistency = Consistency::kLinearizable;
  uint64_t at = 0;
};

struct KeyValue {
  std::string key;
  std::string value;
  uint64_t version = 0;
};

struct ScanResult {
  std::vector<KeyValue> items;
  // Present when more rows remain: the next start (forward) or exclusive end (reverse).
  std::optional<std::string> next;
  uint64_t read_ts = 0;
};

// A query over a collection's documents (docs/architecture/documents.md, "Queries").
struct QueryRequest {
  std::string collection;
  std::string filter_json;                               // empty or "null": every document
  std::vector<std::pair<std::string, bool>> sort;        // field path, descending
  std::vector<std::string> projection;                   // field paths; empty: whole documents
  size_t limit = 0;                                      // 0: Limits::default_scan_limit
  std::string cursor;                                    // from the previous page
  Consistency consistency = Consistency::kLinearizable;  // or kSnapshot with `at`
  uint64_t at = 0;
  bool explain = false;
};
struct QueryResult {
  std::vector<KeyValue> items;  // values are documents (JSON text), projected
  std::string cursor;           // empty: no more
  uint64_t read_ts = 0;
  std::string plan_json;  // with explain
};

// A group-by over a collection's documents (docs/architecture/documents.md).
struct AggregateRequest {
  std::string collection;
  std::string filter_json;      // empty or "null": every document
  std::string group_by_json;    // a JSON array of field paths; empty: one group
  std::string aggregates_json;  // {"name": {"count": "*"}, "s": {"sum": "age"}, …}
  Consistency consistency = Consistency::kLinearizable;  // or kSnapshot with `at`
  uint64_t at = 0;
  bool explain = false;
};
struct AggregateResult {
  std::string groups_json;  // [{"key": {…}, "values": {…}}, …] in key order
  uint64_t read_ts = 0;
  std::string plan_json;  // with explain
};

// Bulk ingest (docs/architecture/documents.md, "Bulk ingest"): puts of whole documents,
// each accepted or refused on its own.
struct IngestRecord {
  uint64_t line = 0;  // where it came from, for errors
  std::string key;
  std::string value;  // a JSON document
};
struct IngestRequest {
  std::string collection;
  std::vector<IngestRecord> records;  // in line order; at most Limits::max_batch_ops
  // Non-empty: once the records are in, `last_line` is recorded as the ingest's progress.
  std::string ingest_id;
  uint64_t last_line = 0;
};
struct IngestError {
  uint64_t line = 0;
  Status status;
};
struct IngestResult {
  uint64_t written = 0;
  std::vector<IngestError> errors;  // records refused on their own, in line order
};

struct BatchOp {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string collection;
  std::string key;
  std::string value;
  std::optional<uint64_t> if_version;
};

struct BatchRequest {
  std::vector<BatchOp> ops;
  std::string request_id;
};

// --- Transactions (docs/architecture/transactions.md) ---

struct TxnRead {
  std::string collection;
  std::string key;
};

// A condition on a row as of the transaction's snapshot, held until it commits: exactly
// one of `version` (0: the row is absent), `value` or `exists`.
struct TxnCondition {
  std::string collection;
  std::string key;
  std::optional<uint64_t> version;
  std::optional<std::string> value;
  std::optional<bool> exists;
};

// A one-shot transaction: reads and conditions at one snapshot, then the ops, all
// committed at one timestamp or none (FAILED_PRECONDITION with detail "condition" = the
// index of the first failing condition, or "op" for an op's if_version).
struct TxnRequest {
  std::vector<TxnRead> reads;
  std::vector<BatchOp> ops;
  std::vector<TxnCondition> conditions;
};

struct TxnResult {
  uint64_t start_ts = 0;         // the snapshot the reads and conditions saw
  uint64_t commit_ts = 0;        // 0 when there were no ops
  std::vector<GetResult> reads;  // in the order asked
};

// An interactive transaction: its id (for the other calls) and snapshot.
struct TxnHandle {
  std::string id;
  uint64_t start_ts = 0;
};

struct IndexSpec {
  std::string name;
  std::vector<std::string> fields;
  bool unique = false;
  uint32_t id = 0;  // set by the catalog
  // Set by the catalog (docs/architecture/documents.md, "Index builds and drops"):
  // "delete_only", "building", "public", "failed" or "dropping". Empty means public.
  std::string state;
  uint64_t usable_from_ts = 0;  // public: complete for reads at or after it
  std::string build_resume;     // building: the user keys up to it have their entries
  std::string error;            // failed: why
};

inline constexpr const char* kIndexDeleteOnly = "delete_only";
inline constexpr const char* kIndexBuilding = "building";
inline constexpr const char* kIndexPublic = "public";
inline constexpr const char* kIndexFailed = "failed";
inline constexpr const char* kIndexDropping = "dropping";

struct CollectionSpec {
  std::string name;
  std::string schema_json;  // empty: none
  std::vector<IndexSpec> indexes;
};

struct CollectionInfo {
  std::string name;
  uint32_t id = 0;
  uint64_t created_at = 0;
  std::string schema_json;
  std::vector<IndexSpec> indexes;
  uint64_t schema_lease_ms = 0;
  uint64_t schema_version = 0;
  // A router's own: writes and plans with this record must commit (or read) below
  // it. 0: no bound (a single-process store, whose catalog changes under its lock).
  uint64_t lease_end_ts = 0;
};

class KvService {
 public:
  virtual ~KvService() = default;

  virtual Result<WriteResult> Put(const PutRequest& req) = 0;
  virtual Result<WriteResult> Delete(const DeleteRequest& req) = 0;
  virtual Result<GetResult> Get(const GetRequest& req) = 0;
  virtual Result<ScanResult> Scan(const ScanRequest& req) = 0;
  // All ops commit at one timestamp, or none does.
  virtual Result<WriteResult> Batch(const BatchRequest& req) = 0;

  // Transactions. A service that cannot run them answers UNIMPLEMENTED.
  virtual Result<TxnResult> Txn(const TxnRequest&) { return NoTransactions(); }
  // Interactive: begin, reads (at the snapshot, seeing the transaction's own writes),
  // buffered writes, then commit (answers the commit timestamp; 0 for no writes) or
  // rollback. NOT_FOUND for an id that is unknown, finished or expired.
  virtual Result<TxnHandle> BeginTxn() { return NoTransactions(); }
  virtual Result<GetResult> TxnGet(const std::string&, const TxnRead&) { return NoTransactions(); }
  virtual Status TxnWrite(const std::string&, const BatchOp&) { return NoTransactions(); }
  virtual Result<ScanResult> TxnScan(const std::string&, const ScanRequest&) {
    return NoTransactions();
  }
  virtual Result<uint64_t> CommitTxn(const std::string&) { return NoTransactions(); }
  virtual Status RollbackTxn(const std::string&) { return NoTransactions(); }

  // Documents: filtered, sorted, paged reads of a collection's documents.
  virtual Result<QueryResult> Query(const QueryRequest&) {
    return Status::Unimplemented("this service does not run queries");
  }
  virtual Result<AggregateResult> Aggregate(const AggregateRequest&) {
    return Status::Unimplemented("this service does not run aggregations");
  }
  // Writes a chunk of a bulk load. A record that cannot be written (schema, unique
  // index, size) is reported in `errors`, and the others are written; an error of the
  // whole call (unavailable, deadline) leaves an unknown part of them written.
  virtual Result<IngestResult> Ingest(const IngestRequest&) {
    return Status::Unimplemented("this service does not ingest");
  }
  // The last line an ingest id has recorded; NOT_FOUND for an id never used.
  virtual Result<uint64_t> IngestProgress(const std::string& /*collection*/,
                                          const std::string& /*ingest_id*/) {
    return Status::Unimplemented("this service does not ingest");
  }

  virtual Result<CollectionInfo> CreateCollection(const CollectionSpec& spec) = 0;
  virtual Result<std::vector<CollectionInfo>> ListCollections() = 0;
  virtual Result<CollectionInfo> DescribeCollection(const std::string& name) = 0;
  virtual Status DropCollection(const std::string& name) = 0;
  // Adds an index to a collection that may hold documents, built online; waits at most
  // `wait` for the build and answers the collection (the index public, or still
  // building). The same request again resumes an interrupted build.
  virtual Result<CollectionInfo> CreateIndex(const std::string& /*collection*/,
                                             const IndexSpec& /*index*/,
                                             std::chrono::milliseconds /*wait*/) {
    return Status::Unimplemented("this service cannot add an index to a collection");
  }
  virtual Result<CollectionInfo> DropIndex(const std::string& /*collection*/,
                                           const std::string& /*name*/) {
    return Status::Unimplemented("this service cannot drop an index");
  }

  virtual const Limits& limits() const = 0;
  // OK when the service can take requests.
  virtual Status Ready() = 0;
  // Storage statistics by name, for /metrics.
  virtual std::map<std::string, uint64_t> StorageStats() = 0;

 protected:
  static Status NoTransactions() {
    return Status::Unimplemented("this service does not run transactions");
  }
};

}  // namespace gojodb::kv
