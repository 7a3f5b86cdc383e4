// Percolator's per-shard transaction commands over MVCC rows: the records a shard keeps
// for transactions in flight and the commands that change them. The protocol, its
// crash points and why it neither blocks nor splits: docs/architecture/transactions.md.
//
// Records (column families of the node's Engine):
//   lock   row_key               the row's lock (EncodeLock)
//   lock   row_key ~start_ts     rollback marker: transaction start_ts never commits the row
//   write  row_key ~commit_ts    the committed version (mvcc::PutCommitted / DeleteCommitted)
//
// Every command reads the engine's latest state and stages its changes into a
// WriteBatch. A command either succeeds for all its rows or is refused (outcome.error
// set) with nothing staged, so the caller applies the batch or drops it as a unit.
// Commands are idempotent. No command reads a clock: time enters as timestamps in the
// request, so every replica of a shard decides alike.
//
// Thread-safety: a TxnRows is not thread-safe; commands of one shard must be applied
// in one order (its Raft log's) with each batch written before the next command runs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mvcc/mvcc.h"
#include "core/storage_engine/engine.h"
#include "internal/status.h"

namespace gojodb::txn {

using mvcc::Timestamp;
inline constexpr storage::ColumnFamily kLockCf = storage::ColumnFamily::kLock;

// What a lock will do to its row when its transaction commits.
enum class LockKind : uint8_t {
  kPut = 'P',
  kDelete = 'D',
  kCheck = 'C',  // nothing: holds the row so a condition on it stays true until commit
};

struct Lock {
  Timestamp start_ts = 0;
  std::string primary;          // the primary's row key: where the transaction's fate is decided
  uint64_t ttl_ms = 0;          // alive while physical(current_ts) < physical(start_ts) + ttl_ms
  Timestamp min_commit_ts = 0;  // the transaction commits at or above it
  LockKind kind = LockKind::kPut;
  std::string value;  // kPut: the value to commit
};
std::string EncodeLock(const Lock& lock);
Result<Lock> DecodeLock(std::string_view in);  // DATA_LOSS when malformed
std::string RollbackKey(std::string_view row_key, Timestamp start_ts);
// Whether a lock's TTL has run out at `current_ts` (a timestamp from the oracle).
bool Expired(const Lock& lock, Timestamp current_ts);

struct TxnMutation {
  LockKind kind = LockKind::kPut;
  std::string row_key;                 // mvcc::EncodeRowKey
  std::string value;                   // kPut
  std::optional<uint64_t> if_version;  // the row's newest version must be this (0: absent)
};

struct PrewriteRequest {
  Timestamp start_ts = 0;
  std::string primary;
  uint64_t ttl_ms = 0;
  std::vector<TxnMutation> mutations;  // rows distinct
};

struct CheckStatusRequest {
  std::string primary;
  Timestamp start_ts = 0;
  Timestamp current_ts = 0;  // judges the lock's TTL
  // A reader at caller_ts: an alive lock's min_commit_ts is raised above it (0 or
  // kMaxTimestamp: no push).
  Timestamp caller_ts = 0;
  // No lock, version or marker: write the marker (answer kRolledBack) instead of kNotFound.
  bool rollback_if_missing = false;
};

// Why a command was refused.
enum class TxnError : uint8_t {
  kNone = 0,
  kLocked,           // a row holds another transaction's lock (`lock`)
  kWriteConflict,    // a row has a version after start_ts (`conflict_ts`)
  kRolledBack,       // the transaction was rolled back on a row
  kCommitted,        // Rollback: the transaction committed a row (`commit_ts`)
  kLockNotFound,     // Commit/Heartbeat: no lock, version or marker of the transaction
  kCommitTsTooLow,   // Commit of the primary below its lock's min_commit_ts (`min_commit_ts`)
  kConditionFailed,  // a mutation's if_version is not the row's version (`conflict_ts`)
  kInvalid,          // a malformed request (`message`)
  kTooOld,           // Prewrite: start_ts is below the shard's GC fence (retry anew)
};
std::string_view TxnErrorName(TxnError e);                        // "LOCKED", "WRITE_CONFLICT", ...
std::optional<TxnError> TxnErrorFromName(std::string_view name);  // "" is kNone
// The status a client sees: ABORTED for conflicts and rolled-back transactions,
// FAILED_PRECONDITION for a failed condition, INVALID_ARGUMENT for a malformed request.
StatusCode TxnErrorCode(TxnError e);

// A transaction's fate, as CheckTxnStatus finds it on the primary.
enum class TxnState : uint8_t { kLocked, kCommitted, kRolledBack, kNotFound };
std::string_view TxnStateName(TxnState s);
std::optional<TxnState> TxnStateFromName(std::string_view name);

struct TxnOutcome {
  TxnError error = TxnError::kNone;
  std::string message;
  std::string row_key;          // the row a refusal is about
  std::optional<Lock> lock;     // kLocked: the lock met; CheckTxnStatus kLocked: the primary's
  Timestamp conflict_ts = 0;    // kWriteConflict: the newer version; kConditionFailed: current
  Timestamp commit_ts = 0;      // Commit, kCommitted, CheckTxnStatus kCommitted
  Timestamp min_commit_ts = 0;  // Prewrite: commit no lower; kCommitTsTooLow: the lock's
  TxnState state = TxnState::kNotFound;  // CheckTxnStatus
  bool ok() const { return error == TxnError::kNone; }
  // A Status for clients: OK; LockedError for kLocked with its lock; else TxnErrorCode
  // with the details "reason", "conflict_ts" (or "current_version"), "commit_ts".
  Status ToStatus() const;
};

// How a read at a timestamp treats locks.
struct ReadLockRules {
  Timestamp read_ts = mvcc::kMaxTimestamp;
  // Transactions the reader has resolved as not visible to it (their commit, if any,
  // is above read_ts, or they had not committed when it asked): their locks are skipped.
  std::vector<Timestamp> resolved;
  // A linearizable read (read_ts is the latest): a row's lock that is its own primary
  // means its transaction has not committed, so the read skips it.
  bool latest = false;
};

// The error a read or write answers when a row's lock must be resolved first: ABORTED,
// reason LOCKED, with the row and the lock (base64, details "lock_row" and "lock").
Status LockedError(std::string_view row_key, const Lock& lock);
struct LockedRow {
  std::string row_key;
  Lock lock;
};
// The row and lock of a LockedError; nullopt for any other status.
std::optional<LockedRow> LockedFrom(const Status& s);

class TxnRows {
 public:
  // `snapshot` (may be null: the latest state) is what the range reads (ReadBlockers,
  // LocksBelow) see, so that a caller can read locks and versions at one point.
  explicit TxnRows(storage::Engine* engine, const storage::Snapshot* snapshot = nullptr)
      : engine_(engine), snapshot_(snapshot) {}

  // Locks every mutation's row for transaction start_ts. `max_ts` is the shard's
  // highest fenced read timestamp: outcome.min_commit_ts = max(start_ts, max_ts) + 1.
  Result<TxnOutcome> Prewrite(const PrewriteRequest& r, Timestamp max_ts,
                              storage::WriteBatch* batch);
  // Turns the rows' locks of start_ts into versions at commit_ts. `primary`: the rows
  // are the primary's, and commit_ts must be at least its lock's min_commit_ts.
  Result<TxnOutcome> Commit(Timestamp start_ts, Timestamp commit_ts,
                            const std::vector<std::string>& rows, bool primary,
                            storage::WriteBatch* batch);
  // Removes the rows' locks of start_ts and marks the rows rolled back for it.
  Result<TxnOutcome> Rollback(Timestamp start_ts, const std::vector<std::string>& rows,
                              storage::WriteBatch* batch);
  // Decides and reports the fate of transaction start_ts from its primary's row.
  Result<TxnOutcome> CheckTxnStatus(const CheckStatusRequest& r, storage::WriteBatch* batch);
  // Raises the TTL of the primary's lock to ttl_ms (never lowers it); outcome.lock is
  // the lock after. Refused with kLockNotFound, kRolledBack or kCommitted otherwise.
  Result<TxnOutcome> Heartbeat(std::string_view primary, Timestamp start_ts, uint64_t ttl_ms,
                               storage::WriteBatch* batch);

  // The row's lock, if any.
  Result<std::optional<Lock>> LockOf(std::string_view row_key);
  // False only when no row from `first_row` to `last_row` (inclusive) has a lock or a
  // rollback marker: one seek, which gives up (true) after kMaxSkippedDeletes deleted
  // entries, so a caller that gets true looks each row up with LockOf.
  static constexpr uint64_t kMaxSkippedDeletes = 1000;
  bool MayHoldLocks(std::string_view first_row, std::string_view last_row);
  // The lock a read must resolve before it can read the row, if any.
  Result<std::optional<Lock>> ReadBlocker(std::string_view row_key, const ReadLockRules& rules);
  // Locks in [begin, end) of row keys that a read under `rules` must resolve, at most
  // `limit`, in key order, with their rows.
  Result<std::vector<std::pair<std::string, Lock>>> ReadBlockers(std::string_view begin,
                                                                 std::string_view end,
                                                                 const ReadLockRules& rules,
                                                                 size_t limit);

  // --- GC (docs/architecture/transactions.md, "Garbage collection") ---
  // Locks of every kind in [begin, end) whose transaction started before `fence`, at
  // most `limit`, in key order.
  Result<std::vector<LockedRow>> LocksBelow(std::string_view begin, std::string_view end,
                                            Timestamp fence, size_t limit);
  // Stages the deletion of the rollback markers in [begin, end) of transactions that
  // started before `fence` (a shard that refuses their prewrites no longer needs them);
  // returns how many.
  Result<uint64_t> DropMarkersBelow(std::string_view begin, std::string_view end, Timestamp fence,
                                    storage::WriteBatch* batch);

 private:
  // Calls fn(row, lock) for each lock in [begin, end), markers skipped, while it
  // answers true.
  Status ForEachLock(std::string_view begin, std::string_view end,
                     const std::function<bool(std::string_view, Lock)>& fn);
  Result<bool> HasRollbackMarker(std::string_view row_key, Timestamp start_ts);
  // When the row has no lock of start_ts: kCommitted, kRolledBack or kNotFound.
  Result<TxnOutcome> FateWithoutLock(std::string_view row_key, Timestamp start_ts);

  storage::Engine* const engine_;
  const storage::Snapshot* const snapshot_;
};

}  // namespace gojodb::txn
