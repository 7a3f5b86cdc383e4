// Unstable: the tail of the log (and possibly a snapshot) not yet persisted.
#pragma once

#include <optional>
#include <vector>

#include "core/consensus/messages.h"

namespace gojodb::consensus {

// entries[i] has index offset+i. A pending snapshot, if any, precedes the entries.
// Not thread-safe; owned by RaftLog.
class Unstable {
 public:
  // Index of the first entry implied by a pending snapshot.
  std::optional<LogIndex> MaybeFirstIndex() const;
  std::optional<LogIndex> MaybeLastIndex() const;
  std::optional<Term> MaybeTerm(LogIndex i) const;

  // Entries up to (i, t) were persisted; drops them if the term still matches.
  void StableTo(LogIndex i, Term t);
  void StableSnapTo(LogIndex i);
  void Restore(const Snapshot& s);
  void TruncateAndAppend(const std::vector<Entry>& ents);
  // Entries in [lo, hi); REQUIRES: offset <= lo <= hi <= offset + size.
  std::vector<Entry> Slice(LogIndex lo, LogIndex hi) const;

  const std::vector<Entry>& entries() const { return entries_; }
  const std::optional<Snapshot>& snapshot() const { return snapshot_; }
  LogIndex offset() const { return offset_; }
  void set_offset(LogIndex o) { offset_ = o; }

 private:
  std::optional<Snapshot> snapshot_;
  std::vector<Entry> entries_;
  LogIndex offset_;
};

}  // namespace gojodb::consensus
