// Store: the shard replicas one storage node hosts, over the node's one Engine.
//
// Each replica is a RaftNode (group id = shard id) with a ShardMachine. Groups are
// spread over a small pool of RaftLoops (by shard id), so each loop persists all its
// groups' Readies with one fsync per iteration. The Store knows neither gRPC nor the
// controller: the server layer feeds it Raft messages (Deliver), the controller's
// commands (CreateReplica, AddReplica, ...) and client requests (Write, Get, Scan), and
// reads Describe() for heartbeats. See docs/architecture/storage-service.md.
//
// Errors a caller should act on carry the detail "reason":
//   UNAVAILABLE reason=NOT_LEADER       detail "leader" (0: unknown); retry there
//   UNAVAILABLE reason=EPOCH_NOT_MATCH  detail "descriptor" (base64 of EncodeDescriptor)
//   UNAVAILABLE without a reason, from Write: the write was queued but its outcome is
//     unknown (leadership moved, the node stopped); DEADLINE_EXCEEDED likewise
//   UNAVAILABLE reason=SHARD_NOT_FOUND  the shard is not on this node
//   UNAVAILABLE reason=NOT_LEADER leader=0, message naming the cause: the replica here
//     stopped because a write failed (a full disk): try another replica
//   ABORTED reason=LOCKED               a transaction's lock holds the row (txn::LockedFrom
//     gives it): resolve it through its primary, then retry
//   ABORTED reason=WRITE_CONFLICT       a one-phase transaction's row was written after
//     its start (detail conflict_ts)
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <thread>

#include "core/kv/kv_service.h"
#include "core/mvcc/mvcc.h"
#include "core/mvcc/timestamp_oracle.h"
#include "core/replication/raft_loop.h"
#include "core/replication/raft_node.h"
#include "core/sharding/shard_machine.h"
#include "internal/clock.h"

namespace gojodb::sharding {

struct StoreOptions {
  uint64_t node_id = 0;
  int loops = 2;  // RaftLoop threads
  std::chrono::milliseconds tick{20};
  int election_tick = 10;
  uint64_t snapshot_entries = 10000;
  uint64_t retain_entries = 1000;
  // The same bounds in bytes of log entries (replication::RaftNodeOptions): a bulk
  // load's entries, hundreds of KiB each, would otherwise stay in memory and in the raft
  // column family for snapshot_entries entries.
  uint64_t snapshot_bytes = 32ull << 20;
  uint64_t retain_bytes = 64ull << 20;
  uint64_t max_size_per_msg = 1 << 20;
  // Linearizable reads under the leader lease instead of a heartbeat round per batch
  // of reads (replication::RaftNodeOptions::lease_reads).
  bool lease_reads = false;
  // Automatic split: a shard this node leads is split in two once its rows take more
  // than split_bytes (0: never; SetSplitBytes changes it), checked at this interval.
  uint64_t split_bytes = 0;
  std::chrono::milliseconds split_check_interval{1000};
  // A request id makes a retry apply once for at least this long; the leaders of the
  // node's shards then delete older request records (0: keep them forever), checked at
  // this interval, examining up to `request_expiry_batch` records per command.
  std::chrono::milliseconds request_id_ttl{0};
  std::chrono::milliseconds request_expiry_interval{60000};
  uint64_t request_expiry_batch = 10000;
  // The safe point the engine's version GC filter reads (mvcc::NewVersionGcFilterFactory
  // on the write column family); null: versions are never collected. The store keeps it
  // at or below the cluster's safe point and every hosted shard's GC fence.
  std::shared_ptr<mvcc::SafePoint> gc_safe_point;
};

// Hands out new shard ids (the controller's); used by automatic splits.
using ShardIdAllocator = std::function<Result<uint64_t>()>;

// How a replica's Raft messages reach the other members: one Transport per group.
class GroupTransports {
 public:
  virtual ~GroupTransports() = default;
  virtual std::unique_ptr<replication::Transport> ForGroup(uint64_t group) = 0;
};

// Which shard and epoch a request was routed with.
struct Route {
  uint64_t shard = 0;
  controller::Epoch epoch;
};

// Detail values of the errors above, for the server layer.
inline constexpr std::string_view kReasonNotLeader = "NOT_LEADER";
inline constexpr std::string_view kReasonEpochNotMatch = "EPOCH_NOT_MATCH";
inline constexpr std::string_view kReasonShardNotFound = "SHARD_NOT_FOUND";
Status NotLeaderError(uint64_t shard, uint64_t leader);
// `holder`: the descriptor of another shard on the node that holds the key the request
// was about (a split's new shard), so the router can go there without asking the
// controller; sent as the detail "new_descriptor".
Status EpochNotMatchError(const ShardRecord& current,
                          const std::optional<ShardRecord>& holder = std::nullopt);
Status ShardNotFoundError(uint64_t shard);
// The reason detail of a status ("" if none).
std::string ReasonOf(const Status& s);

class Store {
 public:
  // Reopens every replica recorded in `engine`. Pointers are not owned and must
  // outlive the store.
  static Result<std::unique_ptr<Store>> Open(StoreOptions options, storage::Engine* engine,
                                             mvcc::TimestampOracle* tso, Clock* clock,
                                             GroupTransports* transports);
  ~Store();

  // --- The controller's commands ---
  // Creates this node's replica of a new shard whose members are d.replicas (the
  // voters bootstrap the group). OK if the replica exists.
  Status CreateReplica(const ShardRecord& d);
  // On the shard's leader: adds `node` as a learner, waits until it has caught up, and
  // promotes it to voter.
  Status AddReplica(uint64_t shard, uint64_t node, std::chrono::milliseconds timeout);
  // On the shard's leader: removes `node` from the group (hands leadership away first if
  // it is this node).
  Status RemoveReplica(uint64_t shard, uint64_t node, std::chrono::milliseconds timeout);
  Status TransferLeader(uint64_t shard, uint64_t node);
  // Drops this node's replica and its data (after the group removed it).
  Status DestroyReplica(uint64_t shard);

  // --- Request ids ---
  // On the shard's leader: deletes, on every replica, the request records of its rows
  // created before `cutoff_ms` (by this node's clock); returns how many. A retry of such
  // a request applies again. Done in commands of request_expiry_batch records each.
  Result<uint64_t> ExpireRequests(uint64_t shard, uint64_t cutoff_ms,
                                  std::chrono::steady_clock::time_point deadline);

  // --- Splits ---
  // On the shard's leader: splits it at `split_key` (a row key strictly inside its
  // range); keys from split_key on move to shard `new_id`, founded on every replica.
  Status Split(uint64_t shard, const std::string& split_key, uint64_t new_id,
               std::chrono::steady_clock::time_point deadline);
  // A row key near the middle of the shard's data (by bytes), and the bytes its rows
  // take (keys and values of every version); NOT_FOUND when the shard has fewer than
  // two rows.
  struct SplitPoint {
    std::string key;
    uint64_t bytes = 0;
  };
  Result<SplitPoint> FindSplitPoint(uint64_t shard) const;
  Result<std::string> SplitKey(uint64_t shard) const {
    ASSIGN_OR_RETURN(auto p, FindSplitPoint(shard));
    return p.key;
  }
  // Enables automatic splits (see StoreOptions::split_bytes).
  void SetShardIdAllocator(ShardIdAllocator allocate);
  void SetSplitBytes(uint64_t bytes) { split_bytes_ = bytes; }
  // One round of the split check (the background thread runs it); public for tests.
  void CheckSplits();
  // Expires old request records on the shards this node leads (request_id_ttl).
  void CheckRequestExpiry();

  // --- Garbage collection (docs/architecture/transactions.md, "Garbage collection") ---
  // On the shards this node leads: raises each one's GC fence to `fence` (the
  // controller's target) through its log. Shards not ready now are tried next time.
  void AdvanceGcFence(uint64_t fence, std::chrono::steady_clock::time_point deadline);
  // Locks below the GC fence of a shard this node leads, at most `limit`, for the node
  // to resolve through their primaries.
  Result<std::vector<txn::LockedRow>> LocksBelowFence(uint64_t shard, size_t limit);
  // The shards this node leads that hold no lock below their GC fence, with the fence:
  // below it, every transaction of the shard is resolved and none can start.
  struct GcResolved {
    uint64_t shard = 0;
    uint64_t version = 0;  // the epoch version the report is about
    uint64_t fence = 0;
  };
  std::vector<GcResolved> ResolvedGcFences() const;
  // The cluster's GC safe point (the controller's); raises the engine's safe point to
  // min(it, every initialized replica's fence). Never lowers it.
  void SetGcSafePoint(uint64_t safe_point);
  uint64_t gc_safe_point() const {
    return options_.gc_safe_point ? options_.gc_safe_point->ts.load() : 0;
  }

  // --- Dropped collections' rows (docs/architecture/documents.md, "Reclaiming dropped
  // collections and indexes") ---
  struct ReclaimRange {
    uint32_t tenant = 0;
    uint32_t id = 0;
  };
  struct Reclaimed {
    uint64_t shard = 0;
    uint64_t version = 0;  // the epoch version whose range the deletion covered
    uint32_t id = 0;
    auto operator<=>(const Reclaimed&) const = default;
  };
  // On the shards this node leads whose range meets one of `ranges` (the controller's
  // list of rows that may go): deletes those rows through the log (DropRows), once per
  // shard, epoch version and id. Shards not ready now are tried next time; what was
  // done for ids no longer listed is forgotten.
  void ReclaimRows(const std::vector<ReclaimRange>& ranges,
                   std::chrono::steady_clock::time_point deadline);
  // What ReclaimRows did, for the controller.
  std::vector<Reclaimed> ReclaimedRows() const;

  // --- From the transport ---
  // A message for a replica this node lacks creates it (a member being added) unless
  // the shard was removed from this node.
  void Deliver(uint64_t group, consensus::Message m);
  void ReportSnapshot(uint64_t group, consensus::NodeId to, bool ok);

  // --- Client requests ---
  // Applies `w` (its ts is assigned here) on the shard's leader. Outcomes of the
  // command (condition failed, request id reused) come back as statuses:
  // FAILED_PRECONDITION with detail current_version, INVALID_ARGUMENT.
  Result<WriteOutcome> Write(const Route& route, WriteCommand w,
                             std::chrono::steady_clock::time_point deadline);
  // Several writes, each as Write would apply it, with their own routes and deadlines:
  // all are proposed before any is waited for, so that they share the Raft loop's
  // iterations and the caller wakes once rather than once per write. Answers in order.
  struct RoutedWrite {
    Route route;
    WriteCommand command;
    std::chrono::steady_clock::time_point deadline;
  };
  std::vector<Result<WriteOutcome>> WriteAll(std::vector<RoutedWrite> writes);
  // The newest version of a row at `at` (kMaxTimestamp: the latest) or nullopt.
  // kLinearizable and kSnapshot are served by the leader, kStale by any replica.
  // A transaction's lock that may hide a version at `at` answers reason=LOCKED, unless
  // its start timestamp is in `resolved` (the caller resolved it as invisible here).
  Result<std::optional<mvcc::VersionedValue>> Get(const Route& route, std::string_view row_key,
                                                  kv::Consistency consistency, uint64_t at,
                                                  std::chrono::steady_clock::time_point deadline,
                                                  const std::vector<uint64_t>& resolved = {});
  // Rows of one collection in [start, end) ∩ the shard's range, at o.read_ts (a
  // kMaxTimestamp read_ts is allowed only with kStale). Locks as for Get.
  Result<mvcc::ScanOutput> Scan(const Route& route, mvcc::ScanOptions o,
                                kv::Consistency consistency,
                                std::chrono::steady_clock::time_point deadline,
                                const std::vector<uint64_t>& resolved = {});
  // The work of a query pushed to the shard (docs/architecture/documents.md): a
  // snapshot scan on the leader of [o.start, o.end) ∩ the shard's range at o.read_ts
  // that hands the rows to `visit` in key order (o.reverse: from the end backward), at
  // most o.limit of them, all from one engine snapshot. `visit` returns false to stop
  // after its row. Then the locks of the part visited are checked at the same snapshot
  // (LOCKED as Scan: what was visited does not count). Returns, when rows may remain,
  // where a next call starts (a user key; reverse: the next exclusive end).
  using RowVisitor = std::function<Result<bool>(const mvcc::ScanItem&)>;
  Result<std::optional<std::string>> ScanEach(const Route& route, mvcc::ScanOptions o,
                                              std::chrono::steady_clock::time_point deadline,
                                              const std::vector<uint64_t>& resolved,
                                              const RowVisitor& visit);
  // The same for the rows `row_keys` (all in the shard's range, else EPOCH_NOT_MATCH),
  // read at `read_ts` in the order given from one engine snapshot, each after its lock
  // check (LOCKED as Get): `visit` gets each row's newest version at read_ts (a
  // tombstone included), or nullopt where there is none, and returns false to stop.
  // Returns how many rows it visited.
  using VersionVisitor = std::function<Result<bool>(
      const std::string& row_key, const std::optional<mvcc::VersionedValue>& value)>;
  Result<size_t> GetEach(const Route& route, const std::vector<std::string>& row_keys,
                         uint64_t read_ts, std::chrono::steady_clock::time_point deadline,
                         const std::vector<uint64_t>& resolved, const VersionVisitor& visit);
  // --- Transactions (docs/architecture/transactions.md) ---
  // Applies a transaction command (EncodePrewriteCommand, EncodeTxnCommitCommand, ...)
  // on the shard's leader; `row` is one of its rows. The command's own refusals come
  // back in the outcome (outcome.ok() false), errors of routing and Raft as statuses.
  Result<txn::TxnOutcome> Txn(const Route& route, const std::string& command, std::string_view row,
                              std::chrono::steady_clock::time_point deadline);

  // --- Reports ---
  // The descriptor of every hosted replica; leader = this node where it leads.
  std::vector<ShardRecord> Describe() const;
  struct Stats {
    uint64_t shards = 0;
    uint64_t leaders = 0;
    // Replicas that stopped because a write failed (a full disk, say), and why the
    // first of them did. Their requests go to other replicas; restart the node once the
    // cause is fixed (the replica replays its log).
    uint64_t failed = 0;
    std::string failure;
    // The Raft loops' work since the start, summed over loops: iterations, engine writes
    // of Readies (and how many were synced), and the group Readies they carried.
    replication::RaftLoop::Stats loops;
    // Snapshots dropped because another replica here still held part of their range.
    uint64_t snapshots_deferred = 0;
    // Over this node's replicas: the entries their Raft logs hold (compaction bounds
    // them by count and by bytes), and the snapshots with data they installed from a
    // leader since they started (followers too far behind for the log, joiners).
    uint64_t raft_log_entries = 0;
    uint64_t snapshots_installed = 0;
    // Row ranges of dropped collections (DropRows) compacted away here, the compactions
    // that failed (their space comes back as compactions reach it), and the ranges
    // applied here whose compaction is queued or running.
    uint64_t dropped_ranges_compacted = 0;
    uint64_t dropped_range_errors = 0;
    uint64_t dropped_ranges_pending = 0;
  };
  Stats GetStats() const;
  // The replica's Raft status (tests, /metrics); NOT_FOUND if absent.
  Result<replication::GroupStatus> GroupStatusOf(uint64_t shard) const;
  Result<ShardRecord> DescriptorOf(uint64_t shard) const;
  uint64_t node_id() const { return options_.node_id; }

 private:
  struct Replica {
    std::unique_ptr<ShardMachine> machine;
    std::unique_ptr<replication::Transport> transport;
    std::unique_ptr<replication::RaftNode> node;
    // Held from taking a commit timestamp to queueing the proposal, so this leader's
    // writes enter the log in timestamp order.
    std::mutex order_mu;
    // The read floor (decision 28): the highest timestamp a snapshot read here read at,
    // or the fresh timestamp this leader took when its term began (floor_term). Its
    // writes commit above it. GUARDED_BY(order_mu).
    uint64_t read_floor = 0;
    uint64_t floor_term = 0;
    // The settled floor: a snapshot read at or below it waits for no write. A read that
    // raised the floor to T and then saw every proposal submitted before it apply
    // (WaitForProposed) settles T: a write at or below T was submitted before the raise,
    // so it has applied. Trusted only in the leader term it was settled in
    // (settled_term). GUARDED_BY(order_mu).
    uint64_t settled_floor = 0;
    uint64_t settled_term = 0;
    // The split check's last exact measure (background thread only): the engine's size
    // estimate is coarse for small ranges, so a shard it flags is measured by reading
    // it, and not again until enough new entries applied.
    uint64_t measured_at_applied = 0;
    uint64_t measured_bytes = 0;
    // The applied index at the split check before (background thread only): unchanged,
    // the shard took no write since.
    uint64_t checked_at_applied = 0;
  };

  Store(StoreOptions options, storage::Engine* engine, mvcc::TimestampOracle* tso, Clock* clock,
        GroupTransports* transports);
  Result<std::shared_ptr<Replica>> StartReplica(std::unique_ptr<ShardMachine> machine, bool join);
  std::shared_ptr<Replica> Find(uint64_t shard) const;
  // The splits applied here whose new shards are not founded yet; *complete is false
  // when a record could not be read.
  std::vector<SplitChild> RecordedChildren(bool* complete) const;
  // Whether `snap` (for `group`) covers rows of another initialized replica here, or of
  // a split's new shard not founded yet.
  bool SnapshotOverlapsAnother(uint64_t group, const consensus::Snapshot& snap);
  // The replica of route.shard, with the epoch checked; leader_only: this node leads.
  // `row_key` (if any): the key the request is about, for EPOCH_NOT_MATCH's holder.
  // A scan's replica, ready to read at o.read_ts, and its range clipped to the shard:
  // [lo, hi) in row keys, and o.start/o.end rewritten to match (user keys).
  struct ScanRange {
    std::shared_ptr<Replica> replica;
    std::string lo, hi;
  };
  Result<std::optional<ScanRange>> PrepareScan(const Route& route, mvcc::ScanOptions& o,
                                               kv::Consistency consistency,
                                               std::chrono::steady_clock::time_point deadline);
  Result<std::shared_ptr<Replica>> Check(const Route& route, bool leader_only,
                                         std::string_view row_key = {}) const;
  // EPOCH_NOT_MATCH with `current`, and the descriptor of the initialized replica here
  // whose range holds `row_key`, if another one does.
  Status EpochNotMatch(const ShardRecord& current, std::string_view row_key) const;
  // OUT_OF_RANGE when a read at `at` is below the replica's GC fence or the engine's
  // safe point (a replica that joined with a lower fence reads what others collected).
  Status CheckGcFence(const Replica& r, uint64_t at) const;
  // The replicas whose groups this node leads now.
  std::vector<std::shared_ptr<Replica>> LedReplicas() const;
  // The shard's replica if this node leads it (NOT_LEADER, SHARD_NOT_FOUND otherwise),
  // with its descriptor in the log: what a command the leader proposes needs.
  Result<std::shared_ptr<Replica>> LeaderReplica(uint64_t shard,
                                                 std::chrono::steady_clock::time_point deadline);
  // Write's steps: checks the route and ranges (and stamps w), then proposes it with a
  // fresh timestamp, then waits for its outcome (proposing it again with a newer
  // timestamp while a fence or a newer leader's writes overtake it).
  Result<std::shared_ptr<Replica>> PrepareWrite(const Route& route, WriteCommand& w,
                                                std::chrono::steady_clock::time_point deadline);
  Result<replication::RaftNode::Ticket> SubmitWrite(Replica& r, uint64_t shard, WriteCommand& w);
  Result<WriteOutcome> FinishWrite(Replica& r, uint64_t shard, WriteCommand& w,
                                   replication::RaftNode::Ticket ticket,
                                   std::chrono::steady_clock::time_point deadline);
  // Proposes `data` on the leader and returns the command's outcome.
  Result<WriteOutcome> ProposeCommand(Replica& r, const std::string& data,
                                      std::chrono::steady_clock::time_point deadline);
  // A replica that stopped: clients go to another replica.
  Status FailedReplicaError(uint64_t shard, const Status& why) const;
  // Puts the descriptor in the log once (see ShardMachine's Describe).
  Status EnsureDescribed(Replica& r, std::chrono::steady_clock::time_point deadline);
  // Founds the Raft groups of split children recorded in the engine.
  void FoundChildren();
  Status FoundChild(const SplitChild& child);
  void BackgroundLoop();
  void CompactLoop();
  // Hands back the space of rows DropRows deleted: drops the files wholly inside each
  // range, then compacts the range.
  void CompactDroppedRows(const std::vector<std::pair<std::string, std::string>>& ranges);
  // In a term this replica leads, before its first write: raises the read floor to a
  // fresh timestamp (above every read an earlier leader served). Returns the term, or
  // NOT_LEADER. REQUIRES: r.order_mu held.
  Result<uint64_t> SyncFloor(Replica& r, uint64_t shard);
  // Makes a read at `at` complete on the leader: a read barrier, then the read floor.
  Status PrepareRead(Replica& r, kv::Consistency c, uint64_t at,
                     std::chrono::steady_clock::time_point deadline);

  const StoreOptions options_;
  storage::Engine* const engine_;
  mvcc::TimestampOracle* const tso_;
  Clock* const clock_;
  GroupTransports* const transports_;
  std::vector<std::unique_ptr<replication::RaftLoop>> loops_;

  mutable std::shared_mutex mu_;
  mutable std::mutex reclaim_mu_;
  std::set<Reclaimed> reclaimed_;                          // GUARDED_BY(reclaim_mu_)
  std::map<uint64_t, std::shared_ptr<Replica>> replicas_;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> snapshots_deferred_{0};
  std::set<uint64_t> removed_;  // GUARDED_BY(mu_): tombstones
  std::mutex create_mu_;        // serializes replica creation and destruction

  std::atomic<uint64_t> split_bytes_{0};
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stopping_ = false;          // GUARDED_BY(bg_mu_)
  bool children_pending_ = false;  // GUARDED_BY(bg_mu_)
  std::atomic<uint64_t> dropped_ranges_compacted_{0};
  std::atomic<uint64_t> dropped_range_errors_{0};
  std::atomic<uint64_t> dropped_ranges_pending_{0};
  // Set as the store stops: a compaction of a dropped range in progress ends early
  // (a large one can take minutes); it and the ones queued keep their records
  // (DroppedRangeKey), and the next start queues them again.
  std::atomic<bool> compaction_cancel_{false};
  // Row ranges a DropRows deleted here, for the background thread to compact away.
  std::vector<std::pair<std::string, std::string>> dropped_ranges_;  // GUARDED_BY(bg_mu_)
  // When to try again children whose founding failed (max(): none failed).
  std::chrono::steady_clock::time_point children_retry_ =
      std::chrono::steady_clock::time_point::max();  // GUARDED_BY(bg_mu_)
  ShardIdAllocator allocate_;                        // GUARDED_BY(bg_mu_)
  std::set<uint64_t> unfounded_children_;            // GUARDED_BY(mu_): messages for them wait
  std::thread background_;
  // Compacts away the ranges DropRows deleted (dropped_ranges_): on a thread of its own,
  // so that a long compaction never holds up the founding of a split's new shard.
  std::thread compactor_;
};

}  // namespace gojodb::sharding
