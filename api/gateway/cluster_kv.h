// ClusterKv: the key-value API (kv::KvService) served over a cluster, the heart of the
// gateway `gojodb-api`. The HTTP and gRPC front ends of the standalone server run on it
// unchanged.
//
// - Routing. A RouteTable caches the controller's shard map; a background thread
//   long-polls GetShardMap for newer versions, and requests refresh it on demand. Each
//   request goes to the shard holding its row key (mvcc::EncodeRowKey of the default
//   tenant, the collection's id and the user key) over ShardKv (shard.proto), addressed
//   to the shard's id and epoch.
// - Errors from storage nodes (trailing metadata "gojodb-reason") correct the table and
//   the request is retried with a small backoff until the request deadline:
//   NOT_LEADER moves to the named leader, EPOCH_NOT_MATCH takes the node's descriptor
//   and refreshes the map, SHARD_NOT_FOUND and unreachable nodes refresh the map and try
//   another replica. After the deadline the answer is UNAVAILABLE. The operations' own
//   outcomes (FAILED_PRECONDITION with current_version, INVALID_ARGUMENT, ...) pass
//   through unchanged.
// - A write whose outcome is unknown (the node timed out, or the connection broke after
//   the request may have been sent) is retried only when it carries a request id, which
//   makes the retry apply once; otherwise the error is returned.
// - Collections live in the controller's catalog (the Catalog service of every
//   controller member); names map to ids through a small cache refreshed on a miss.
// - A batch within one shard is one write. A batch that spans shards is a transaction
//   (Percolator, docs/architecture/transactions.md): prewrite on every shard, commit of
//   the primary row (the commit point), then of the others. It is refused with ABORTED
//   on a write conflict or a row held by a live transaction (after a bounded wait,
//   txn_lock_wait, so no deadlock) and with FAILED_PRECONDITION on a failed condition;
//   nothing then applies.
// - A read or write that meets a transaction's lock resolves it through the lock's
//   primary (committed: roll the row forward; rolled back or expired: roll it back;
//   alive: a reader pushes the transaction's commit above its read and skips the lock,
//   a writer backs off) and retries within the deadline.
// - Scans take one read timestamp (a fresh one from the controller's TSO for
//   linearizable scans, `at` for snapshot scans) and walk the shards of the range in key
//   order (reverse order for reverse scans) at that timestamp. Stale scans read each
//   replica as of what it has applied and report read_ts 0.
//
// See docs/architecture/storage-service.md. Thread-safety: every public method may be
// called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/gateway/doc_util.h"
#include "api/gateway/node_batcher.h"
#include "core/document/document.h"
#include "core/kv/kv_service.h"
#include "core/query/query.h"
#include "core/sharding/route_table.h"
#include "core/txn/percolator.h"
#include "gojodb/v1/controller.grpc.pb.h"
#include "gojodb/v1/kv.grpc.pb.h"
#include "gojodb/v1/shard.pb.h"
#include "internal/thread_pool.h"

namespace gojodb::gateway {

struct ClusterKvOptions {
  // gRPC addresses of the controller members (any member answers).
  std::vector<std::string> controllers;
  // How long one client request may take, retries included.
  std::chrono::milliseconds request_timeout{10000};
  // Longest single call to a storage node for a read, or for a write that may be
  // retried (one with a request id); a stalled node is then left for another replica.
  std::chrono::milliseconds attempt_timeout{3000};
  // How long one long-poll of the shard map waits for a newer version.
  std::chrono::milliseconds map_wait{30000};
  // Backoff between retries: doubles from min to max, with jitter.
  std::chrono::milliseconds backoff_min{10};
  std::chrono::milliseconds backoff_max{500};
  // A cached collection id is looked up again after this long (so a collection
  // dropped and created again elsewhere is noticed).
  std::chrono::milliseconds collection_ttl{5000};
  // A query that gives no page limit is refused (400, reason LIMIT_REQUIRED) instead of
  // taking the default page size.
  bool require_query_limit = false;
  // A query sorted by the fields of an index that no condition narrows walks the whole
  // index in order; past this many documents examined without a full page (and 4 per
  // item of the page), it gives way to a collection scan.
  size_t query_walk_budget = 10000;
  // A bulk chunk of documents with secondary indexes is read and committed in parts of
  // this many documents, each part read and planned while the ones before it commit.
  size_t ingest_part_docs = 2500;
  // An unreachable node is tried last among a shard's replicas for this long.
  std::chrono::milliseconds node_suspect{1000};
  kv::Limits limits;
  // Gets to a storage node wait while this many calls of gets to it are out, then go out
  // together in one ShardKv.Batch call; writes likewise, apart from gets (0: every
  // request is its own call).
  int batch_in_flight = 1;
  // A transaction's locks live this long without a heartbeat: the longest another
  // request waits for a coordinator that vanished.
  std::chrono::milliseconds txn_lock_ttl{3000};
  // A transaction that meets a live transaction's lock while locking its rows waits at
  // most this long (from the start of its commit) for it to finish, then aborts.
  std::chrono::milliseconds txn_lock_wait{500};
  // An interactive transaction untouched this long is dropped (its writes were never
  // sent); at most this many are open at once (RESOURCE_EXHAUSTED beyond).
  std::chrono::milliseconds txn_idle_timeout{60000};
  size_t max_open_txns = 10000;
  // The GC hold: this often the router tells the controller its oldest open
  // transaction's start, keeping the GC from its snapshot for gc_hold_ttl.
  std::chrono::milliseconds gc_hold_interval{1000};
  std::chrono::milliseconds gc_hold_ttl{10000};
  // A further condition for Ready(), checked after the gateway's own (none if empty):
  // the standalone server waits for its shards' leaders.
  std::function<Status()> ready_check;
  // Storage nodes in this process, called directly instead of over gRPC (the
  // standalone server's node 1; decision 29). Each must outlive the ClusterKv.
  std::map<uint64_t, std::shared_ptr<rpc::ShardClient>> local_nodes;
  // The controller in this process, when there is one: timestamps are taken from it
  // directly (count → the first of `count` fresh ones), and from the controllers over
  // gRPC only when it fails (not its group's leader, say).
  std::function<Result<uint64_t>(uint32_t count)> local_timestamps;
};

// --- Pieces that need no network (tested on their own) ---

// The checks KvStore makes before a write (key, value size, request id, batch size).
// RESOURCE_EXHAUSTED with detail reason=TOO_LARGE for a key or value over its limit.
Status ValidatePut(const kv::PutRequest& req, const kv::Limits& limits);
Status ValidateDelete(const kv::DeleteRequest& req, const kv::Limits& limits);
Status ValidateBatch(const kv::BatchRequest& req, const kv::Limits& limits);
Status ValidateKey(std::string_view key, const kv::Limits& limits);
// The page size of a scan or query asking for `requested` rows (0: the default);
// INVALID_ARGUMENT above the maximum.
Result<size_t> PageLimit(size_t requested, const kv::Limits& limits);

// FNV-1a fingerprints of a request's fields, so that a request id reused for a
// different request is detected by the storage node.
uint64_t FingerprintPut(const kv::PutRequest& req);
uint64_t FingerprintDelete(const kv::DeleteRequest& req);
uint64_t FingerprintBatch(const kv::BatchRequest& req);

// What a storage node's answer asks of the gateway.
enum class NodeVerdict {
  kOutcome,        // OK or the operation's own result: return it
  kNotLeader,      // NOT_LEADER: retry at `leader` (0: unknown, try another replica)
  kEpochNotMatch,  // EPOCH_NOT_MATCH: take `descriptor`, refresh the map, retry
  kShardNotFound,  // SHARD_NOT_FOUND: forget the shard, refresh the map, retry
  kBusy,           // SERVER_BUSY or an UNAVAILABLE the node chose: back off, retry
  kUnreachable,    // the node could not be reached; the request was never sent
  kUnknown,        // timed out or lost in flight: a write may or may not have applied
};

struct NodeAnswer {
  NodeVerdict verdict = NodeVerdict::kOutcome;
  uint64_t leader = 0;
  std::optional<sharding::ShardRecord> descriptor;  // with kEpochNotMatch, if decodable
  // With kEpochNotMatch: the shard on that node that holds the request's key now (a
  // split's new shard), if the node has it.
  std::optional<sharding::ShardRecord> new_descriptor;
};

// Classifies the status of a ShardKv call (as rpc::FromGrpc returned it).
NodeAnswer ClassifyNodeError(const Status& s);
// Whether a write may be sent again after `verdict`: always for the errors a node
// answers before running the request, and for unknown outcomes only with a request id.
bool WriteRetryable(NodeVerdict verdict, bool has_request_id);

class ClusterKv final : public kv::KvService {
 public:
  // Starts the shard-map poller; the service is Ready() once the controller answered
  // with a map that has a shard.
  static Result<std::unique_ptr<ClusterKv>> Start(ClusterKvOptions options);
  ~ClusterKv() override;
  // The server is stopping: requests in flight stop retrying. Each ends at its next
  // step between attempts with its last error, or UNAVAILABLE, instead of trying until
  // its deadline (with the storage nodes going down too, that would hold the server's
  // stop for a whole request timeout). Calls out now still end as they would.
  void Shutdown() { shutting_down_ = true; }

  Result<kv::WriteResult> Put(const kv::PutRequest& req) override;
  Result<kv::WriteResult> Delete(const kv::DeleteRequest& req) override;
  Result<kv::GetResult> Get(const kv::GetRequest& req) override;
  Result<kv::ScanResult> Scan(const kv::ScanRequest& req) override;
  Result<kv::WriteResult> Batch(const kv::BatchRequest& req) override;

  // Transactions (cluster_txn.cc). One-shot, and interactive ones whose writes wait here,
  // in this process, until commit (so a session lives on the gateway that began it).
  Result<kv::TxnResult> Txn(const kv::TxnRequest& req) override;
  Result<kv::TxnHandle> BeginTxn() override;
  Result<kv::GetResult> TxnGet(const std::string& txn, const kv::TxnRead& read) override;
  Status TxnWrite(const std::string& txn, const kv::BatchOp& op) override;
  Result<kv::ScanResult> TxnScan(const std::string& txn, const kv::ScanRequest& req) override;
  Result<uint64_t> CommitTxn(const std::string& txn) override;
  Status RollbackTxn(const std::string& txn) override;

  // Documents (cluster_docs.cc).
  Result<kv::QueryResult> Query(const kv::QueryRequest& req) override;
  Result<kv::AggregateResult> Aggregate(const kv::AggregateRequest& req) override;
  // Bulk ingest (cluster_ingest.cc).
  Result<kv::IngestResult> Ingest(const kv::IngestRequest& req) override;
  Result<uint64_t> IngestProgress(const std::string& collection,
                                  const std::string& ingest_id) override;

  Result<kv::CollectionInfo> CreateCollection(const kv::CollectionSpec& spec) override;
  Result<std::vector<kv::CollectionInfo>> ListCollections() override;
  Result<kv::CollectionInfo> DescribeCollection(const std::string& name) override;
  Status DropCollection(const std::string& name) override;
  // Index builds and drops on collections in use (cluster_index.cc).
  Result<kv::CollectionInfo> CreateIndex(const std::string& collection, const kv::IndexSpec& index,
                                         std::chrono::milliseconds wait) override;
  Result<kv::CollectionInfo> DropIndex(const std::string& collection,
                                       const std::string& name) override;

  const kv::Limits& limits() const override { return options_.limits; }
  Status Ready() override;
  std::map<std::string, uint64_t> StorageStats() override;

  // The controller's Admin.ClusterStatus.
  Result<v1::ClusterStatusResponse> ClusterStatus();

  // Resolves, through its primary, a lock a storage node's GC found below a shard's
  // fence: a committed transaction's row is rolled forward, a rolled-back or expired
  // one's rolled back; a transaction still alive is left (OK) for the next round.
  Status ResolveAbandonedLock(const txn::LockedRow& locked);

 private:
  using Clock = std::chrono::steady_clock;
  struct ControllerConn {
    std::string addr;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Controller::Stub> controller;
    std::unique_ptr<v1::Catalog::Stub> catalog;
    std::unique_ptr<v1::Admin::Stub> admin;
  };
  struct CachedCollection {
    kv::CollectionInfo info;
    Clock::time_point fetched;
  };
  // How a request picks a shard's replica.
  enum class Target { kLeader, kAnyReplica };
  // A storage node's client, and the batchers that gather its gets and its writes (apart,
  // so that a read never waits for a call of writes, which takes a Raft round).
  struct NodeConn {
    std::shared_ptr<rpc::ShardClient> client;
    std::shared_ptr<NodeBatcher> reads;   // null: batching is off
    std::shared_ptr<NodeBatcher> writes;  // null: batching is off
  };
  // One call to a shard: receives the shard, the node's connection and the route,
  // returns the call's status (already converted with rpc::FromGrpc).
  using ShardCall = std::function<Status(const sharding::ShardRecord& shard, const NodeConn& node,
                                         Clock::time_point deadline)>;

  explicit ClusterKv(ClusterKvOptions options);

  // --- Controller ---
  // Calls `fn` on controller members, starting with the one that answered last, until
  // one answers with anything but UNAVAILABLE (or a per-call deadline); backs off and
  // goes round again until `deadline`.
  Status CallController(Clock::time_point deadline,
                        const std::function<Status(ControllerConn&, grpc::ClientContext*)>& fn);
  void PollLoop();
  // Installs a GetShardMap answer, then the descriptors learnt from storage nodes that
  // are newer than the map's.
  void InstallMap(const v1::GetShardMapResponse& resp);
  // Takes a descriptor a storage node answered with (EPOCH_NOT_MATCH) and keeps it until
  // the controller's map catches up, so that a map whose version moved on because of
  // other shards does not put this shard's older descriptor back.
  void Learn(const sharding::ShardRecord& d);
  // Fetches the map at once (at most one fetch at a time; a fetch that finished
  // recently counts).
  void RefreshMap(Clock::time_point deadline);
  Result<uint64_t> FreshTimestamp(Clock::time_point deadline);

  // --- Collections ---
  Result<kv::CollectionInfo> Describe(const std::string& name, Clock::time_point deadline);
  Result<uint32_t> CollectionId(const std::string& name, Clock::time_point deadline);
  // The collection's catalog record, cached for collection_ttl (and at most half its
  // schema lease); "" is the default one. Its lease_end_ts bounds the commit timestamps
  // of writes planned with it (docs/architecture/documents.md, "Index builds").
  Result<kv::CollectionInfo> Collection(const std::string& name, Clock::time_point deadline);
  // Drops the cached record, so that the next request rereads it.
  void ForgetCollection(const std::string& name);
  // A write refused because its collection record's lease ended before it committed
  // (ABORTED, reason SCHEMA_LEASE): reread the record and plan it again.
  static bool IsSchemaLeaseEnded(const Status& s);
  static Status SchemaLeaseEnded();

  // --- Index builds (cluster_index.cc) ---
  // Runs the build of index `id` of `collection` to its end (public or failed), from
  // the progress the catalog records; OK also when it is no longer building.
  Status BuildIndex(const std::string& collection, uint32_t id);
  // Waits until the timestamp oracle has passed `ts` (or the deadline).
  Status WaitForTimestamp(uint64_t ts, Clock::time_point deadline);
  // The controller's AddIndex, UpdateIndex or RemoveIndex.
  enum class IndexChange { kAdd, kUpdate, kRemove };
  Result<kv::CollectionInfo> ChangeIndex(IndexChange change, const std::string& collection,
                                         const kv::IndexSpec& index, Clock::time_point deadline);

  // Get and Scan of the rows under collection id `id` (a collection's, or an index's);
  // req.collection is not looked at.
  Result<kv::GetResult> GetById(uint32_t id, const kv::GetRequest& req, Clock::time_point deadline);
  Result<kv::ScanResult> ScanById(uint32_t id, const kv::ScanRequest& req, size_t limit,
                                  Clock::time_point deadline);
  // Snapshot reads of many keys under id `id` at `at`: one Batch call per shard for up
  // to 1,000 keys; a key the call cannot answer alone (a lock, a moved range) is read
  // again with GetById. Answers in the order of `keys` (cluster_ingest.cc).
  Result<std::vector<kv::GetResult>> MultiGetById(uint32_t id, const std::vector<std::string>& keys,
                                                  uint64_t at, Clock::time_point deadline);

  // --- Storage nodes ---
  std::optional<NodeConn> Node(uint64_t node);
  // Sends a get or a write to a node: through its batcher, or as its own call when
  // batching is off or the node has no Batch method.
  Status CallNode(const NodeConn& node, const v1::ShardBatchItem& item, Clock::time_point deadline,
                  v1::ShardBatchResult* out);
  void SuspectNode(uint64_t node);
  void TrustNode(uint64_t node);
  // The order in which to try a shard's replicas (leader hint first; unreachable
  // nodes last; learners only for kAnyReplica).
  std::vector<uint64_t> Candidates(const sharding::ShardRecord& shard, Target target);
  // Runs `call` against the shard holding `row_key` (or the shard `fixed` chooses),
  // retrying as the node's answers ask until `deadline`. `write`: the call changes
  // data; `has_request_id`: it is safe to resend after an unknown outcome.
  Status CallShard(std::string_view row_key, Target target, bool write, bool has_request_id,
                   Clock::time_point deadline, const ShardCall& call);
  // The same with the shard chosen by `locate` (a reverse scan wants the shard that
  // ends a range).
  Status CallShardAt(const std::function<Result<sharding::ShardRecord>()>& locate, Target target,
                     bool write, bool has_request_id, Clock::time_point deadline,
                     const ShardCall& call);
  // Sends a write whose mutations are on `row_keys` to the leader of their one shard.
  Result<kv::WriteResult> Write(v1::ShardWriteRequest req, std::vector<std::string> row_keys,
                                Clock::time_point deadline);
  // The same, and `req` comes back whole (its route set) whatever the outcome: a caller
  // that may send its mutations another way keeps them without a copy.
  Result<kv::WriteResult> WriteKeeping(v1::ShardWriteRequest* req,
                                       const std::vector<std::string>& row_keys,
                                       Clock::time_point deadline);
  // Acts on a node's error; false when the request should stop with `s`.
  bool HandleNodeError(const sharding::ShardRecord& shard, uint64_t node, const Status& s,
                       bool write, bool has_request_id, Clock::time_point deadline, int* rotate);
  void Backoff(int attempt, Clock::time_point deadline);

  // --- Documents (cluster_docs.cc) ---

  // Whether an op writes to a collection with a schema or indexes.
  Result<bool> WritesDocuments(const std::vector<kv::BatchOp>& ops, Clock::time_point deadline);
  // The mutations of a transaction at start_ts that applies `ops` (each key once): an op
  // on a plain collection as it is; one on a collection with rules checked against them
  // and with the entry changes its indexes need (its document read at start_ts). An
  // op's if_version is checked against start_ts (FAILED_PRECONDITION naming the op) and
  // kept on its row; a unique value another document holds at start_ts, or that two ops
  // claim, is refused (ABORTED, reason UNIQUE). Lowers *commit_below to the least lease
  // of the collections.
  Result<std::vector<txn::TxnMutation>> PlanOps(const std::vector<kv::BatchOp>& ops,
                                                uint64_t start_ts, Clock::time_point deadline,
                                                uint64_t* commit_below);
  // PlanOps and commit at a fresh start, again while other writes overtake it; returns
  // the commit timestamp (a batch that writes documents).
  Result<uint64_t> CommitOps(const std::vector<kv::BatchOp>& ops, Clock::time_point deadline);
  Result<kv::IngestResult> IngestOnce(const kv::IngestRequest& req, Clock::time_point deadline);
  Result<kv::TxnResult> TxnOnce(const kv::TxnRequest& req, Clock::time_point deadline);
  // One attempt of Batch with the collection records as cached.
  Result<kv::WriteResult> BatchOnce(const kv::BatchRequest& req, Clock::time_point deadline);
  // A put (value) or delete (nullopt) of a document with its index entries, as one
  // transaction, read again and retried while other writes overtake it.
  Result<kv::WriteResult> WriteDocument(const kv::CollectionInfo& info, const std::string& key,
                                        const std::optional<std::string>& value,
                                        std::optional<uint64_t> if_version,
                                        const std::string& request_id, Clock::time_point deadline);

  // Bulk ingest (cluster_ingest.cc): the records of a plain collection, grouped by
  // shard into one write each; those of a collection with rules, as one transaction
  // with their index entries. Refusals of single records go to `out->errors`.
  Status IngestRows(const kv::CollectionInfo& info, const std::vector<kv::IngestRecord>& records,
                    kv::IngestResult* out, Clock::time_point deadline);
  Status IngestDocuments(const kv::CollectionInfo& info,
                         const std::vector<kv::IngestRecord>& records, kv::IngestResult* out,
                         Clock::time_point deadline);

  // Rules from a record whose lease covers read_ts: `*rules` (taken from `planned`)
  // when its lease does, else those of a record read again.
  Status RulesAt(const kv::CollectionInfo& planned, uint64_t read_ts, Clock::time_point deadline,
                 DocRules* rules);
  // Calls `each` with every document the plan reads at read_ts (a collection scan from
  // document key `from`; an index scan range by range), until it answers false.
  using DocVisitor =
      std::function<Result<bool>(std::string key, std::string value, uint64_t version)>;
  Status ScanPlan(const kv::CollectionInfo& info, const query::Plan& plan, uint64_t read_ts,
                  const std::string& from, Clock::time_point deadline, const DocVisitor& each);
  // The document keys an index plan's entries name at read_ts, a page of entries at a
  // time (in index order).
  Status ScanIndexKeys(const query::Plan& plan, uint64_t read_ts, Clock::time_point deadline,
                       const std::function<Status(std::vector<std::string>& keys)>& each);

  // --- Queries pushed to the shards (cluster_query.cc) ---
  // Runs `tmpl` (ShardKv.Query: filter, projection, sort, limit or aggregation) over the
  // collection's rows of [lo, hi) (row keys), shard by shard in key order at `read_ts`
  // (tmpl.reverse, an index join read backward: from the last shard to the first),
  // resolving locks as a scan does. `each` gets every answer and may change the next
  // call's request (its limit, max_examined); false stops. UNIMPLEMENTED when a storage node does not
  // serve ShardKv.Query: the caller then reads the rows itself.
  using QueryAnswer =
      std::function<Result<bool>(v1::ShardQueryResponse& resp, v1::ShardQueryRequest* next)>;
  Status QueryRange(uint32_t id, std::string lo, std::string hi, uint64_t read_ts,
                    v1::ShardQueryRequest tmpl, Clock::time_point deadline,
                    const QueryAnswer& each);
  // The same over the whole collection, split into runs of shards that are queried at
  // once (at most kQueryFanOut); `each` may be called from several threads at a time.
  static constexpr size_t kQueryFanOut = 8;
  // The same for the documents `keys` (user keys, as an index scan names them): one call
  // per shard for up to 1,000 of them, calls to different shards at once. `each` may be
  // called from several threads at a time; the caller checks `missing`. With
  // tmpl.index_join set, `keys` are entries of that unique index (collection `id`) and
  // go as its entry_keys.
  Status QueryKeys(uint32_t id, const std::vector<std::string>& keys, uint64_t read_ts,
                   const v1::ShardQueryRequest& tmpl, Clock::time_point deadline,
                   const QueryAnswer& each);
  Status QueryCollection(uint32_t id, uint64_t read_ts, const v1::ShardQueryRequest& tmpl,
                         Clock::time_point deadline, const QueryAnswer& each);
  // The same for the documents of collection `id` an index plan names: each shard of the
  // index's ranges reads its entries and the documents among them it holds in one call
  // (ShardQueryRequest.index_join), and the documents it does not hold are read with
  // QueryKeys. A plan of point gets of a unique index sends its entries' keys to the
  // shards that hold them (QueryKeys), each of which joins them alike. Where a
  // storage node does not join, `reset` forgets what `each` took, and the entries are
  // read first, then the documents. `each` may be called from several threads at a time.
  // `joined`: whether every shard joined. `enough` (may be empty), asked once all the
  // documents of the entries walked so far have gone to `each`, ends the walk when true.
  Status QueryIndex(uint32_t id, const query::Plan& plan, uint64_t read_ts,
                    const v1::ShardQueryRequest& tmpl, Clock::time_point deadline,
                    const QueryAnswer& each, const std::function<void()>& reset, bool* joined,
                    const std::function<bool()>& enough = {});

  // --- Transactions (cluster_txn.cc) ---
  // Sends a transaction command on `rows` (all in one shard) to the shard's leader,
  // retried like a write with a request id (the commands are idempotent). FAILED_
  // PRECONDITION reason=ROWS_MOVED when the rows no longer share a shard.
  Result<txn::TxnOutcome> TxnCall(const std::vector<std::string>& rows, v1::ShardTxnRequest req,
                                  Clock::time_point deadline);
  // Groups row indexes by the shard holding each row, as the cached map says.
  Result<std::vector<std::vector<size_t>>> GroupByShard(const std::vector<std::string>& rows,
                                                        Clock::time_point deadline);
  // Resolves a lock met on `locked.row_key` through its primary. A reader at `read_ts`
  // (kMaxTimestamp: a linearizable read of the latest) adds the transaction to
  // `resolved` when it may skip the lock; a writer (resolved == nullptr) backs off
  // while the transaction lives. OK: retry the request.
  Status ResolveLock(const txn::LockedRow& locked, uint64_t read_ts,
                     std::vector<uint64_t>* resolved, int attempt, Clock::time_point deadline);
  // Runs `call` again after resolving every lock it meets, until it succeeds, fails
  // otherwise, or the deadline passes.
  Status WithLocksResolved(uint64_t read_ts, std::vector<uint64_t>* resolved,
                           Clock::time_point deadline, const std::function<Status()>& call);
  // Two-phase commit of `mutations` (rows of several shards) at `start_ts`; returns the
  // commit timestamp.
  // A commit timestamp at or above `commit_below` (0: no bound) rolls the transaction
  // back instead (SchemaLeaseEnded).
  Result<uint64_t> CommitTransaction(uint64_t start_ts, std::vector<txn::TxnMutation> mutations,
                                     Clock::time_point deadline, uint64_t commit_below = 0);
  // Commits `mutations` at `start_ts`: in one phase when they fall in one shard and
  // none only checks a row, else by CommitTransaction. Returns the commit timestamp.
  Result<uint64_t> CommitMutations(uint64_t start_ts, std::vector<txn::TxnMutation> mutations,
                                   Clock::time_point deadline, uint64_t commit_below = 0);
  // Keeps `start_ts` in the GC hold while it lives (a commit, a one-shot transaction).
  class ActiveStart {
   public:
    ActiveStart(ClusterKv* kv, uint64_t start_ts);
    ~ActiveStart();
    ActiveStart(const ActiveStart&) = delete;
    ActiveStart& operator=(const ActiveStart&) = delete;

   private:
    ClusterKv* const kv_;
    const uint64_t start_ts_;
  };
  // Renews the GC hold with the oldest open transaction's start (cluster_txn.cc).
  void HoldLoop();
  uint64_t OldestActiveStart();
  // An interactive transaction: its snapshot and the writes it buffers until commit.
  struct TxnSession {
    struct Write {
      bool is_delete = false;
      std::string value;
      uint32_t collection = 0;
      std::string collection_name;
      std::string key;
    };
    uint64_t start_ts = 0;
    std::mutex mu;                        // one call of the session at a time
    std::map<std::string, Write> writes;  // row key -> its last write; GUARDED_BY(mu)
    // The least schema lease end of the collections written (0: none); GUARDED_BY(mu)
    uint64_t commit_below = 0;
    Clock::time_point last_used;  // GUARDED_BY(txns_mu_)
  };
  // The open session `id`, touched; NOT_FOUND if unknown, finished or idle too long.
  Result<std::shared_ptr<TxnSession>> FindTxn(const std::string& id);
  // Commits `rows` of transaction start_ts at commit_ts, or rolls them back (commit_ts
  // 0), one call per shard; returns the first failure (the other shards are still
  // tried). A row left locked is resolved by whoever meets it.
  Status FinishRows(uint64_t start_ts, uint64_t commit_ts, const std::vector<std::string>& rows,
                    Clock::time_point deadline);
  Status DeadlineError(const std::string& what, const Status& last) const;
  // Whether a request with `deadline` should stop trying: its time is up, or the
  // server is shutting down.
  bool Expired(Clock::time_point deadline) const {
    return shutting_down_.load(std::memory_order_relaxed) || Clock::now() >= deadline;
  }

  const ClusterKvOptions options_;
  sharding::RouteTable routes_;

  std::vector<std::unique_ptr<ControllerConn>> controllers_;
  std::atomic<size_t> preferred_controller_{0};
  std::atomic<bool> controller_answered_{false};

  // FreshTimestamp's batching: callers join the open batch; one request per batch.
  std::mutex tso_mu_;
  std::condition_variable tso_cv_;
  bool tso_sending_ = false;     // GUARDED_BY(tso_mu_)
  uint64_t tso_open_ = 0;        // the batch callers join; GUARDED_BY(tso_mu_)
  uint64_t tso_open_count_ = 0;  // its callers so far; GUARDED_BY(tso_mu_)
  // batch -> (its first timestamp or error, callers yet to take theirs)
  std::map<uint64_t, std::pair<Result<uint64_t>, uint64_t>> tso_done_;  // GUARDED_BY(tso_mu_)

  std::mutex refresh_mu_;             // one on-demand map fetch at a time
  Clock::time_point last_refresh_{};  // GUARDED_BY(refresh_mu_)

  std::mutex nodes_mu_;
  std::map<uint64_t, std::string> node_addrs_;           // GUARDED_BY(nodes_mu_)
  std::map<std::string, NodeConn> conns_;                // GUARDED_BY(nodes_mu_)
  std::map<uint64_t, NodeConn> local_conns_;             // GUARDED_BY(nodes_mu_)
  std::atomic<bool> batch_unsupported_{false};           // a node answered Batch UNIMPLEMENTED
  std::map<uint64_t, Clock::time_point> suspect_until_;  // GUARDED_BY(nodes_mu_)

  std::mutex learnt_mu_;
  // shard id -> (descriptor, when learnt)
  std::map<uint64_t, std::pair<sharding::ShardRecord, Clock::time_point>>
      learnt_;  // GUARDED_BY(learnt_mu_)

  std::mutex catalog_mu_;
  std::map<std::string, CachedCollection> collections_;  // GUARDED_BY(catalog_mu_)

  std::mutex txns_mu_;
  std::map<std::string, std::shared_ptr<TxnSession>> txns_;  // GUARDED_BY(txns_mu_)
  std::multiset<uint64_t> active_starts_;                    // GUARDED_BY(txns_mu_)
  const std::string gc_holder_;  // this router's name in the controller's holds

  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> map_fetches_{0};
  std::atomic<uint64_t> unavailable_{0};

  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool stopping_ = false;                          // GUARDED_BY(poll_mu_)
  std::shared_ptr<grpc::ClientContext> poll_ctx_;  // GUARDED_BY(poll_mu_)
  std::thread poller_;
  std::thread gc_holder_thread_;

  // Commits of transactions' secondary rows, after the answer (declared last: drained
  // first, in the destructor, while everything it uses is still there).
  std::unique_ptr<ThreadPool> txn_pool_;

  // Index builds this router runs, by index id: callers wait on them (builds_mu_).
  struct Build {
    bool done = false;
    Status status;
  };
  std::mutex builds_mu_;
  std::condition_variable builds_cv_;
  std::map<uint32_t, std::shared_ptr<Build>> builds_;  // GUARDED_BY(builds_mu_)
  std::atomic<bool> stopping_builds_{false};
  std::atomic<bool> shutting_down_{false};
  std::unique_ptr<ThreadPool> build_pool_;  // declared last: drained first
};

}  // namespace gojodb::gateway
