// RaftLog: the log as the core sees it, stable storage plus the unstable tail, with
// the commit and applied cursors.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/consensus/storage.h"
#include "core/consensus/unstable.h"

namespace gojodb::consensus {

inline constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

// Invariant: applied <= committed <= LastIndex(). Not thread-safe.
class RaftLog {
 public:
  // REQUIRES: storage outlives the log.
  RaftLog(const Storage* storage, uint64_t max_applying_bytes);

  // Appends entries received from a leader after (index, log_term) if that entry
  // matches ours; returns the index of the last new entry, nullopt on mismatch.
  std::optional<LogIndex> MaybeAppend(LogIndex index, Term log_term, LogIndex committed,
                                      const std::vector<Entry>& ents);
  // Appends at the tail (truncating a conflicting suffix); returns LastIndex().
  LogIndex Append(const std::vector<Entry>& ents);
  // First index in ents whose term conflicts with ours (or is new); 0 if none.
  LogIndex FindConflict(const std::vector<Entry>& ents) const;
  // The largest index <= index whose term is <= term, with that term; used to skip a
  // whole term of mismatching entries in one round trip.
  std::pair<LogIndex, Term> FindConflictByTerm(LogIndex index, Term term) const;

  std::vector<Entry> UnstableEntries() const { return unstable_.entries(); }
  // Committed entries not yet applied, limited to max_applying_bytes.
  std::vector<Entry> NextCommittedEntries() const;
  bool HasNextCommittedEntries() const;
  bool HasPendingSnapshot() const { return unstable_.snapshot().has_value(); }
  const std::optional<Snapshot>& PendingSnapshot() const { return unstable_.snapshot(); }
  Result<Snapshot> GetSnapshot() const;

  LogIndex FirstIndex() const;
  LogIndex LastIndex() const;
  Term LastTerm() const;
  Result<Term> TermAt(LogIndex i) const;
  // TermAt, or Term{0} on error.
  Term ZeroTermOnError(LogIndex i) const;
  bool MatchTerm(LogIndex i, Term t) const;
  // Whether a log ending at (lasti, term) is at least as up to date as ours (§5.4.1).
  bool IsUpToDate(LogIndex lasti, Term term) const;

  void CommitTo(LogIndex to);
  // Commits max_index if its entry is of term `term` (only current-term entries are
  // committed by counting replicas, §5.4.2).
  bool MaybeCommit(LogIndex max_index, Term term);
  void AppliedTo(LogIndex i);
  void StableTo(LogIndex i, Term t) { unstable_.StableTo(i, t); }
  void StableSnapTo(LogIndex i) { unstable_.StableSnapTo(i); }
  void Restore(const Snapshot& s);

  // Entries in [lo, hi) up to max_bytes (at least one). ErrCompacted if lo is gone.
  Result<std::vector<Entry>> Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes) const;
  // Entries from i to the end, up to max_bytes.
  Result<std::vector<Entry>> EntriesFrom(LogIndex i, uint64_t max_bytes) const;
  std::vector<Entry> AllEntries() const;

  LogIndex committed() const { return committed_; }
  LogIndex applied() const { return applied_; }
  const Storage* storage() const { return storage_; }
  const Unstable& unstable() const { return unstable_; }
  std::string DebugString() const;

 private:
  Status CheckOutOfBounds(LogIndex lo, LogIndex hi) const;

  const Storage* storage_;
  Unstable unstable_;
  LogIndex committed_;
  LogIndex applied_;
  uint64_t max_applying_bytes_;
};

}  // namespace gojodb::consensus
