#include "core/consensus/raft_log.h"

#include <algorithm>
#include <sstream>

#include "core/consensus/check.h"

namespace gojodb::consensus {

RaftLog::RaftLog(const Storage* storage, uint64_t max_applying_bytes)
    : storage_(storage), max_applying_bytes_(max_applying_bytes) {
  auto first = storage_->FirstIndex();
  auto last = storage_->LastIndex();
  RAFT_CHECK(first.ok() && last.ok(), "storage must report its first and last index");
  unstable_.set_offset(*last + 1);
  // Everything up to the snapshot is committed and applied.
  committed_ = *first - 1;
  applied_ = *first - 1;
}

std::optional<LogIndex> RaftLog::MaybeAppend(LogIndex index, Term log_term, LogIndex committed,
                                             const std::vector<Entry>& ents) {
  if (!MatchTerm(index, log_term)) return std::nullopt;
  LogIndex last_new = index + ents.size();
  LogIndex ci = FindConflict(ents);
  if (ci != LogIndex{}) {
    RAFT_CHECK(ci > committed_, "entry conflicts with a committed entry");
    LogIndex offset = index + 1;
    std::vector<Entry> rest(ents.begin() + static_cast<ptrdiff_t>(ci - offset), ents.end());
    Append(rest);
  }
  CommitTo(std::min(committed, last_new));
  return last_new;
}

LogIndex RaftLog::Append(const std::vector<Entry>& ents) {
  if (ents.empty()) return LastIndex();
  RAFT_CHECK(ents[0].index - 1 >= committed_, "appending would overwrite committed entries");
  unstable_.TruncateAndAppend(ents);
  return LastIndex();
}

LogIndex RaftLog::FindConflict(const std::vector<Entry>& ents) const {
  for (const Entry& e : ents) {
    if (!MatchTerm(e.index, e.term)) return e.index;
  }
  return LogIndex{};
}

std::pair<LogIndex, Term> RaftLog::FindConflictByTerm(LogIndex index, Term term) const {
  for (;; --index) {
    auto t = TermAt(index);
    if (!t.ok()) return {index, Term{}};
    if (*t <= term) return {index, *t};
    if (index == LogIndex{}) return {index, Term{}};
  }
}

std::vector<Entry> RaftLog::NextCommittedEntries() const {
  LogIndex off = std::max(applied_ + 1, FirstIndex());
  if (committed_ + 1 > off) {
    auto ents = Slice(off, committed_ + 1, max_applying_bytes_);
    RAFT_CHECK(ents.ok(), "unexpected error reading unapplied entries");
    return std::move(ents).value();
  }
  return {};
}

bool RaftLog::HasNextCommittedEntries() const {
  LogIndex off = std::max(applied_ + 1, FirstIndex());
  return committed_ + 1 > off;
}

Result<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_.snapshot()) return *unstable_.snapshot();
  return storage_->GetSnapshot();
}

LogIndex RaftLog::FirstIndex() const {
  if (auto i = unstable_.MaybeFirstIndex()) return *i;
  auto r = storage_->FirstIndex();
  RAFT_CHECK(r.ok(), "storage FirstIndex failed");
  return *r;
}

LogIndex RaftLog::LastIndex() const {
  if (auto i = unstable_.MaybeLastIndex()) return *i;
  auto r = storage_->LastIndex();
  RAFT_CHECK(r.ok(), "storage LastIndex failed");
  return *r;
}

Term RaftLog::LastTerm() const {
  auto t = TermAt(LastIndex());
  RAFT_CHECK(t.ok(), "unexpected error reading the last term");
  return *t;
}

Result<Term> RaftLog::TermAt(LogIndex i) const {
  // The valid range is [index of the dummy entry, last index].
  LogIndex dummy = FirstIndex() - 1;
  if (i < dummy) return ErrCompacted();
  if (i > LastIndex()) return ErrUnavailable();
  if (auto t = unstable_.MaybeTerm(i)) return *t;
  auto t = storage_->TermAt(i);
  if (t.ok()) return t;
  RAFT_CHECK(IsCompacted(t.status()) || IsUnavailable(t.status()), "unexpected storage error");
  return t;
}

Term RaftLog::ZeroTermOnError(LogIndex i) const {
  auto t = TermAt(i);
  return t.ok() ? *t : Term{};
}

bool RaftLog::MatchTerm(LogIndex i, Term t) const {
  auto got = TermAt(i);
  return got.ok() && *got == t;
}

bool RaftLog::IsUpToDate(LogIndex lasti, Term term) const {
  Term last_term = LastTerm();
  return term > last_term || (term == last_term && lasti >= LastIndex());
}

void RaftLog::CommitTo(LogIndex to) {
  if (committed_ < to) {
    RAFT_CHECK(LastIndex() >= to,
               "commit index is out of range; log corrupted, truncated or lost?");
    committed_ = to;
  }
}

bool RaftLog::MaybeCommit(LogIndex max_index, Term term) {
  if (max_index > committed_ && ZeroTermOnError(max_index) == term) {
    CommitTo(max_index);
    return true;
  }
  return false;
}

void RaftLog::AppliedTo(LogIndex i) {
  if (i == LogIndex{}) return;
  RAFT_CHECK(committed_ >= i && i >= applied_, "applied index out of range");
  applied_ = i;
}

void RaftLog::Restore(const Snapshot& s) {
  committed_ = s.metadata.index;
  unstable_.Restore(s);
}

Status RaftLog::CheckOutOfBounds(LogIndex lo, LogIndex hi) const {
  RAFT_CHECK(lo <= hi, "invalid slice");
  if (lo < FirstIndex()) return ErrCompacted();
  RAFT_CHECK(hi <= LastIndex() + 1, "slice out of bounds");
  return Status::OK();
}

Result<std::vector<Entry>> RaftLog::Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes) const {
  RETURN_IF_ERROR(CheckOutOfBounds(lo, hi));
  std::vector<Entry> ents;
  if (lo == hi) return ents;
  LogIndex uoff = unstable_.offset();
  if (lo < uoff) {
    auto stored = storage_->Entries(lo, std::min(hi, uoff), max_bytes);
    if (!stored.ok()) {
      if (IsCompacted(stored.status())) return stored.status();
      RAFT_CHECK(false, "unexpected storage error reading entries");
    }
    ents = std::move(stored).value();
    // Storage stopped early because of the size limit: do not add unstable entries.
    if (ents.size() < std::min(hi, uoff) - lo) return ents;
  }
  if (hi > uoff) {
    auto tail = unstable_.Slice(std::max(lo, uoff), hi);
    ents.insert(ents.end(), tail.begin(), tail.end());
  }
  LimitSize(&ents, max_bytes);
  return ents;
}

Result<std::vector<Entry>> RaftLog::EntriesFrom(LogIndex i, uint64_t max_bytes) const {
  if (i > LastIndex()) return std::vector<Entry>{};
  return Slice(i, LastIndex() + 1, max_bytes);
}

std::vector<Entry> RaftLog::AllEntries() const {
  auto r = EntriesFrom(FirstIndex(), kNoLimit);
  RAFT_CHECK(r.ok(), "unexpected error reading all entries");
  return std::move(r).value();
}

std::string RaftLog::DebugString() const {
  std::ostringstream os;
  os << "committed=" << committed_ << " applied=" << applied_
     << " unstable.offset=" << unstable_.offset() << " unstable.len=" << unstable_.entries().size();
  return os.str();
}

}  // namespace gojodb::consensus
