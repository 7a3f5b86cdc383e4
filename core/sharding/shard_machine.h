// ShardMachine: the replicated state of one shard replica, the StateMachine of its Raft
// group. It applies the shard's commands to the rows of its key range with the MVCC
// version encoding of core/mvcc, on the node's shared Engine.
//
// Commands (the leader proposes them; every replica applies them identically):
//   Write  a commit timestamp and mutations (put/delete, each optionally conditional on
//          the row's current version) and an optional request id. Refused, with no
//          effect, when the timestamp is not above the shard's max_ts, when a condition
//          fails, when a key is outside the range, or when the request id was used for a
//          different request; a request id seen before answers as the first attempt did.
//   Fence  raises max_ts to a timestamp, so no later write commits at or below it. The
//          leader puts one before a prewrite when its in-memory read floor is above
//          max_ts (decision 28), so the prewrite's min_commit_ts is above its reads.
//   Split  {expected version, split key, new shard id}: the range ends at the split key
//          and epoch.version goes up by one; a record of the new shard (the "child":
//          [split key, old end), same replicas and conf_ver, the same new version, and
//          this shard's max_ts) is written in the same batch, and the Store founds the
//          child's Raft group from it. Refused (no change) on a version mismatch or a
//          key not strictly inside the range.
//   ExpireRequests  {cutoff_ms, resume key, limit}: deletes the request records of the
//          range's rows created before the cutoff, examining at most `limit` records
//          (the leader proposes it periodically, continuing where the last one stopped).
//   Txn    Percolator's commands on the range's rows (core/txn): Prewrite, Commit
//          (raises max_ts to its commit timestamp), Rollback, CheckTxnStatus, Heartbeat.
//          A Write also refuses rows that hold a transaction's lock (ABORTED, the lock in
//          the outcome), and with a start timestamp, rows written after it.
//   GcFence  {fence}: raises the shard's GC fence (docs/architecture/transactions.md,
//          "Garbage collection"). From then on a prewrite of a transaction that started
//          below it is refused (TOO_OLD), so the range's rollback markers below it are
//          deleted, and reads below it are refused; versions below the cluster's safe
//          point (never above any shard's fence) are collected by compaction.
//   DropRows  {tenant, id}: deletes every version, lock, rollback marker and request
//          record of the rows of a dropped collection or index (id above 0) within the
//          shard's range: range deletions, so the command is small whatever it removes.
//          Proposed once the GC safe point passes the drop's lease end (documents.md,
//          "Reclaiming dropped collections and indexes"); applying it again is harmless.
//   Describe  puts the descriptor in the log (the first leader proposes it), so that a
//          replica added later with an empty log learns its range by replaying the log.
//          A replica that has a descriptor keeps its own.
//
// Because every applied write's timestamp is above max_ts, versions of a shard increase
// in log order, so "the newest version" of a row is also the last one applied.
//
// Persistent layout: rows in the write column family, transactions' locks and rollback
// markers in the lock column family (both under row keys, so a range of rows is one
// range in each); in the meta column family, written in the same batch as the rows:
//   "sA" shard:u64be            applied index, max_ts, described, GC fence
//   "sD" shard:u64be            descriptor (range, epoch, replicas)
//   "sQ" row_key request_id     request record (fingerprint, version, created_ms, existed)
//   "sC" shard:u64be            a split's new shard, until the Store founds its group
//   "sK" lo_len:u32be lo hi     a range a drop deleted, until the Store compacts it
// (The Store keeps "sT" shard:u64be tombstones of replicas removed from the node.)
// Row keys are memcomparable and prefix-free, so request records sort by row and a
// range of rows maps to one range of records. See docs/architecture/storage-service.md.
//
// Thread-safety: Apply*/Restore/Snapshot run on the Raft loop's thread; the accessors
// may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/controller/state.h"
#include "core/mvcc/mvcc.h"
#include "core/replication/raft_node.h"
#include "core/sharding/recent_writes.h"
#include "core/storage_engine/engine.h"
#include "core/txn/percolator.h"

namespace gojodb::sharding {

using controller::ShardRecord;

struct Mutation {
  bool is_delete = false;
  std::string row_key;  // mvcc::EncodeRowKey
  std::string value;
  std::optional<uint64_t> if_version;  // 0: the row must not exist
};

struct WriteCommand {
  uint64_t ts = 0;  // commit timestamp
  // A transaction whose writes all fall in this shard (one phase): refused with a write
  // conflict if a written row has a version after it. 0: none.
  uint64_t start_ts = 0;
  std::string request_id;
  uint64_t fingerprint = 0;  // of the request, to detect a reused request id
  uint64_t created_ms = 0;
  std::vector<Mutation> mutations;
  // The proposer's bound, not replicated: the leader refuses to propose the write at a
  // timestamp at or above it (ABORTED, reason SCHEMA_LEASE). 0: none.
  uint64_t commit_below = 0;
};

// A command's outcome, handed back to the proposer. `code` is a StatusCode:
//   OK                   applied (or a retry of an applied request id)
//   FAILED_PRECONDITION  a condition failed; current_version and the op's index are set
//   INVALID_ARGUMENT     the request id was used for a different request
//   ABORTED              the timestamp is not above max_ts (retry with a newer one)
//   OUT_OF_RANGE         a key is outside the shard's range (the range changed)
// A transaction command's outcome is in `txn` (code OK unless the command was malformed
// or out of range); a Write refused by a lock or a write conflict has code ABORTED and
// `txn` says which.
struct WriteOutcome {
  StatusCode code = StatusCode::kOk;
  std::string message;
  uint64_t version = 0;
  bool existed = false;
  uint64_t current_version = 0;
  uint64_t max_ts = 0;
  // ExpireRequests: the records it deleted (in `version`), and the meta key to go on
  // after when it stopped at its limit (empty: it reached the end of the range).
  // DropRows: `version` 1 if the shard's range meets the rows, `current_version` the
  // epoch version whose range it covered.
  std::string resume_after;
  txn::TxnOutcome txn;
};

std::string EncodeWriteCommand(const WriteCommand& w);
std::string EncodeFenceCommand(uint64_t ts);
std::string EncodeGcFenceCommand(uint64_t fence);
std::string EncodeDropRowsCommand(uint32_t tenant, uint32_t id);
std::string EncodeDescribeCommand(const ShardRecord& d);
std::string EncodeSplitCommand(uint64_t expected_version, std::string_view split_key,
                               uint64_t new_id);
// Deletes the request records of the shard's rows created before `cutoff_ms` (the
// proposer's clock; every replica deletes the same ones), examining at most
// `max_examine` records after the meta key `resume_after` (empty: from the start). A
// retry of a request whose record is gone applies again.
std::string EncodeExpireRequestsCommand(uint64_t cutoff_ms, std::string_view resume_after,
                                        uint64_t max_examine);

// Percolator's commands (docs/architecture/transactions.md).
std::string EncodePrewriteCommand(const txn::PrewriteRequest& r);
// Whether an encoded command is a prewrite.
bool IsPrewriteCommand(std::string_view command);
std::string EncodeTxnCommitCommand(uint64_t start_ts, uint64_t commit_ts,
                                   const std::vector<std::string>& rows, bool primary);
std::string EncodeTxnRollbackCommand(uint64_t start_ts, const std::vector<std::string>& rows);
std::string EncodeCheckTxnStatusCommand(const txn::CheckStatusRequest& r);
std::string EncodeTxnHeartbeatCommand(std::string_view primary, uint64_t start_ts, uint64_t ttl_ms);

// A split's new shard, recorded by the parent's Split until the Store founds it.
struct SplitChild {
  ShardRecord descriptor;
  uint64_t max_ts = 0;
  uint64_t gc_fence = 0;
};
// The Raft log index (and term) every shard's group starts at, whether the controller
// created it or a split founded it: its log begins with a snapshot there, so a node
// that lacks the group can only join it by a snapshot, taken after everything the log
// held before the node was added. Never by replaying that history: a joiner replaying
// a split it took no part in would found the new shard as a replica its group does not
// know, holding the range as of the split.
inline constexpr uint64_t kInitialLogIndex = 5;
inline constexpr std::string_view kChildPrefix = "sC";
std::string ChildKey(uint64_t shard);
Result<SplitChild> DecodeChild(std::string_view in);
std::string EncodeOutcome(const WriteOutcome& o);
Result<WriteOutcome> DecodeOutcome(std::string_view in);

std::string EncodeDescriptor(const ShardRecord& d);
Result<ShardRecord> DecodeDescriptor(std::string_view in);

// A replica created for a member added to a running group has no descriptor until it
// replays the Describe command or installs a snapshot: its epoch is {0, 0}.
ShardRecord Uninitialized(uint64_t shard);
inline bool Initialized(const ShardRecord& d) { return d.epoch.version != 0; }

// Whether a row key lies in the shard's range.
bool InRange(const ShardRecord& d, std::string_view row_key);

// Whether the ranges of two initialized shards share a row key.
bool RangesOverlap(const ShardRecord& a, const ShardRecord& b);

// The descriptor a shard snapshot (ShardMachine::Snapshot) carries.
Result<ShardRecord> SnapshotDescriptor(std::string_view snapshot);

// The range of row-version keys (write column family) of the shard's rows: version keys
// are row_key + suffix, and row keys are prefix-free, so the row range bounds them too.
std::pair<std::string, std::string> RowRange(const ShardRecord& d);

// The record of a range [lo, hi) of rows a drop deleted on this node ("sK"): written
// with the deletion, removed once the Store has compacted the range, so that a
// compaction a stop or a crash cut short is queued again when the node starts.
inline constexpr std::string_view kDroppedRangePrefix = "sK";
std::string DroppedRangeKey(std::string_view lo, std::string_view hi);
// The range a DroppedRangeKey names; DATA_LOSS if the key is malformed.
Result<std::pair<std::string, std::string>> DecodeDroppedRangeKey(std::string_view key);

// Meta keys of a shard's records.
std::string AppliedKey(uint64_t shard);
std::string DescriptorKey(uint64_t shard);
inline constexpr std::string_view kDescriptorPrefix = "sD";

class ShardMachine final : public replication::StateMachine {
 public:
  // Loads the shard's applied index, max_ts and descriptor from `engine`; NOT_FOUND if
  // the shard has no descriptor there.
  static Result<std::unique_ptr<ShardMachine>> Load(storage::Engine* engine, uint64_t shard);
  // Writes the records of a new replica and returns its machine: applied index 0 for
  // a member a message created (`descriptor` Uninitialized(id)); kInitialLogIndex,
  // described, for a replica of a shard the controller creates.
  static Result<std::unique_ptr<ShardMachine>> Create(storage::Engine* engine,
                                                      const ShardRecord& descriptor,
                                                      uint64_t applied = 0);

  Status Apply(consensus::LogIndex index, std::string_view data) override;
  Status ApplyCommand(consensus::LogIndex index, std::string_view data,
                      std::string* result) override;
  consensus::LogIndex Applied() const override { return consensus::LogIndex(applied_.load()); }
  // The range's rows (every version) and request records, with the descriptor.
  Result<std::string> Snapshot() override;
  Status Restore(consensus::LogIndex index, std::string_view data) override;

  uint64_t id() const { return id_; }
  ShardRecord descriptor() const;
  uint64_t max_ts() const { return max_ts_.load(); }
  // Snapshot reads and transactions below it are refused (the GcFence command).
  uint64_t gc_fence() const { return gc_fence_.load(); }
  // Whether a Describe command has applied here (or the state came from a snapshot).
  bool described() const { return described_.load(); }
  // Called on the loop thread after a Split applied, with the new shard's id.
  void SetSplitListener(std::function<void(uint64_t child)> listener) {
    on_split_ = std::move(listener);
  }
  // Called on the loop thread after a DropRows applied, with the row range it deleted
  // (so that the node can hand the space back: Store compacts it).
  void SetRowsDroppedListener(std::function<void(std::string lo, std::string hi)> listener) {
    on_rows_dropped_ = std::move(listener);
  }
  // A split outdates the snapshots taken before it: they carry the range given away,
  // and a node holding the new shard refuses them (Store::Deliver).
  bool TakeSnapshotOutdated() override { return split_since_snapshot_.exchange(false); }
  // Writes the records of a split's new shard from its SplitChild record (applied index
  // kInitialLogIndex, described) and deletes that record, in one batch.
  static Status FoundChild(storage::Engine* engine, const SplitChild& child);

  // A membership change: the descriptor takes the new replicas and conf_ver + 1.
  Status ApplyConfState(consensus::LogIndex index, const consensus::ConfState& conf) override;

  // Deletes every record of the shard (rows in its range, request records, descriptor,
  // applied index) from the engine, in one batch, except rows in the ranges of `keep`
  // (the node's other replicas).
  static Status Destroy(storage::Engine* engine, const ShardRecord& descriptor,
                        const std::vector<ShardRecord>& keep = {});

 private:
  ShardMachine(storage::Engine* engine, ShardRecord d, uint64_t applied, uint64_t max_ts,
               bool described)
      : engine_(engine),
        id_(d.id),
        desc_(std::move(d)),
        applied_(applied),
        max_ts_(max_ts),
        described_(described) {}
  Status ApplyWrite(storage::WriteBatch* batch, std::string_view body, WriteOutcome* out);
  // Returns the child's id (0: refused, with `out` saying why).
  // Stages the split; *shrunk is this shard's descriptor after it, to take effect once
  // the batch is written (so that a child's range is never held by nobody: see
  // Store::SnapshotOverlapsAnother).
  Result<uint64_t> ApplySplit(storage::WriteBatch* batch, std::string_view body, WriteOutcome* out,
                              ShardRecord* shrunk);
  Status ApplyExpireRequests(storage::WriteBatch* batch, std::string_view body, WriteOutcome* out);
  // `dropped` receives the row range deleted (unchanged when none).
  Status ApplyDropRows(storage::WriteBatch* batch, std::string_view body, WriteOutcome* out,
                       std::pair<std::string, std::string>* dropped);
  // Returns the commit timestamp a Commit applied (0: none).
  Result<uint64_t> ApplyTxn(storage::WriteBatch* batch, std::string_view body, WriteOutcome* out);
  void StageApplied(storage::WriteBatch* batch, uint64_t index, uint64_t max_ts);
  // Tells recent_ of the versions `batch` writes (or drops it when idle).
  void RecordRecentWrites(const storage::WriteBatch& batch);

  storage::Engine* const engine_;
  const uint64_t id_;
  mutable std::mutex mu_;
  ShardRecord desc_;  // GUARDED_BY(mu_); written on the loop thread
  std::atomic<uint64_t> applied_;
  std::atomic<uint64_t> max_ts_;
  std::atomic<uint64_t> gc_fence_{0};
  std::atomic<bool> described_{false};
  std::function<void(uint64_t)> on_split_;
  std::function<void(std::string, std::string)> on_rows_dropped_;
  std::atomic<bool> split_since_snapshot_{false};
  // Conflict checks' shortcut (recent_writes.h), on the loop thread only: made by the
  // first transactional write of kRecentWritesFrom rows or more, and dropped once
  // kRecentWritesIdle commands in a row have not consulted it.
  static constexpr size_t kRecentWritesFrom = 64;
  static constexpr uint64_t kRecentWritesIdle = 4096;
  std::unique_ptr<RecentWrites> recent_;
  uint64_t recent_idle_ = 0;       // commands applied since it was last consulted
  bool recent_consulted_ = false;  // by the command being applied
};

}  // namespace gojodb::sharding
