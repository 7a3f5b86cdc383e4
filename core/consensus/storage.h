// Storage: the core's read-only view of the persisted log, and MemoryStorage.
//
// The application writes to its storage while handling a Ready (entries, hard state,
// snapshot) and the core only reads through this interface. Errors are typed Status
// values; the core tells them apart with the Is* predicates below, so an
// implementation must build them with the Err* factories.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "core/consensus/messages.h"
#include "internal/status.h"

namespace gojodb::consensus {

// The requested index is older than the first available entry (compacted away).
Status ErrCompacted();
// The requested index is beyond the last entry.
Status ErrUnavailable();
// A snapshot is being produced; the caller should retry later.
Status ErrSnapshotTemporarilyUnavailable();
// A snapshot older than the one already held was offered.
Status ErrSnapOutOfDate();

bool IsCompacted(const Status& s);
bool IsUnavailable(const Status& s);
bool IsSnapshotTemporarilyUnavailable(const Status& s);
bool IsSnapOutOfDate(const Status& s);

struct InitialState {
  HardState hard_state;
  ConfState conf_state;
};

// The log as persisted. Indexes in [FirstIndex()-1, LastIndex()] have a term (the one
// before FirstIndex is the snapshot's); entries in [FirstIndex(), LastIndex()] exist.
// Thread-safety: called from the thread driving the RawNode; implementations used by
// other threads too must synchronize themselves.
class Storage {
 public:
  virtual ~Storage() = default;
  virtual Result<InitialState> GetInitialState() const = 0;
  // Entries in [lo, hi), at least one if any exist, and at most max_bytes in total
  // otherwise. ErrCompacted if lo < FirstIndex().
  virtual Result<std::vector<Entry>> Entries(LogIndex lo, LogIndex hi,
                                             uint64_t max_bytes) const = 0;
  // Term of entry i; i may be FirstIndex()-1. ErrCompacted below that, ErrUnavailable
  // above LastIndex().
  virtual Result<Term> TermAt(LogIndex i) const = 0;
  virtual Result<LogIndex> FirstIndex() const = 0;
  virtual Result<LogIndex> LastIndex() const = 0;
  // The most recent snapshot; ErrSnapshotTemporarilyUnavailable if one is being made.
  virtual Result<Snapshot> GetSnapshot() const = 0;
};

// Storage held in memory: for tests, the simulator, and as the in-memory tail of a
// durable log. Thread-safe (one internal mutex).
class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  Result<InitialState> GetInitialState() const override;
  Result<std::vector<Entry>> Entries(LogIndex lo, LogIndex hi, uint64_t max_bytes) const override;
  Result<Term> TermAt(LogIndex i) const override;
  Result<LogIndex> FirstIndex() const override;
  Result<LogIndex> LastIndex() const override;
  Result<Snapshot> GetSnapshot() const override;

  void SetHardState(const HardState& hs);
  // Seeds the membership of a brand-new group (empty log, snapshot index 0).
  void Bootstrap(const ConfState& cs);
  // Replaces everything with the snapshot. ErrSnapOutOfDate if it is older.
  Status ApplySnapshot(const Snapshot& snap);
  // Records a snapshot of the state machine at applied index i (<= LastIndex): above
  // the current snapshot's index, or at it to give data to a snapshot that has none.
  Result<Snapshot> CreateSnapshot(LogIndex i, const ConfState* cs, std::string data);
  // Discards entries before compact_index. ErrCompacted if already compacted.
  Status Compact(LogIndex compact_index);
  // The first index from which the entries up to `last` (at most LastIndex) hold no more
  // than max_bytes of data: FirstIndex when they all do, last + 1 when entry `last`
  // alone holds more.
  LogIndex FirstIndexWithin(LogIndex last, uint64_t max_bytes) const;
  // Appends entries, first truncating any existing entries at or after the first
  // new index. Entries must be contiguous with the existing log.
  Status Append(const std::vector<Entry>& entries);

  // Test hook: makes GetSnapshot() fail with ErrSnapshotTemporarilyUnavailable.
  void SetSnapshotUnavailable(bool v);

 private:
  LogIndex FirstIndexLocked() const { return ents_[0].index + 1; }
  LogIndex LastIndexLocked() const { return ents_[0].index + (ents_.size() - 1); }

  mutable std::mutex mu_;
  HardState hard_state_;
  Snapshot snapshot_;
  // ents_[0] is a dummy carrying the snapshot's index and term.
  std::vector<Entry> ents_;
  bool snapshot_unavailable_ = false;
};

// Keeps the longest prefix of ents whose total ByteSize() is <= max_bytes, but at
// least one entry.
void LimitSize(std::vector<Entry>* ents, uint64_t max_bytes);

}  // namespace gojodb::consensus
