#include "core/consensus/storage.h"

#include <algorithm>
#include <iterator>

#include "core/consensus/check.h"

namespace gojodb::consensus {

namespace {
constexpr const char* kCompacted = "consensus: requested index is unavailable due to compaction";
constexpr const char* kUnavailable = "consensus: requested entry at index is unavailable";
constexpr const char* kSnapTemp = "consensus: snapshot is temporarily unavailable";
constexpr const char* kSnapOutOfDate =
    "consensus: requested index is older than the existing snapshot";
}  // namespace

Status ErrCompacted() { return Status::OutOfRange(kCompacted); }
Status ErrUnavailable() { return Status::NotFound(kUnavailable); }
Status ErrSnapshotTemporarilyUnavailable() { return Status::Unavailable(kSnapTemp); }
Status ErrSnapOutOfDate() { return Status::FailedPrecondition(kSnapOutOfDate); }

bool IsCompacted(const Status& s) { return s.code() == StatusCode::kOutOfRange; }
bool IsUnavailable(const Status& s) { return s.code() == StatusCode::kNotFound; }
bool IsSnapshotTemporarilyUnavailable(const Status& s) {
  return s.code() == StatusCode::kUnavailable;
}
bool IsSnapOutOfDate(const Status& s) { return s.code() == StatusCode::kFailedPrecondition; }

void LimitSize(std::vector<Entry>* ents, uint64_t max_bytes) {
  if (ents->empty()) return;
  uint64_t size = (*ents)[0].ByteSize();
  size_t limit = 1;
  for (; limit < ents->size(); ++limit) {
    size += (*ents)[limit].ByteSize();
    if (size > max_bytes) break;
  }
  ents->resize(limit);
}

MemoryStorage::MemoryStorage() { ents_.resize(1); }

Result<InitialState> MemoryStorage::GetInitialState() const {
  std::lock_guard<std::mutex> l(mu_);
  return InitialState{hard_state_, snapshot_.metadata.conf_state};
}

void MemoryStorage::SetHardState(const HardState& hs) {
  std::lock_guard<std::mutex> l(mu_);
  hard_state_ = hs;
}

void MemoryStorage::Bootstrap(const ConfState& cs) {
  std::lock_guard<std::mutex> l(mu_);
  snapshot_.metadata.conf_state = cs;
}

Result<std::vector<Entry>> MemoryStorage::Entries(LogIndex lo, LogIndex hi,
                                                  uint64_t max_bytes) const {
  std::lock_guard<std::mutex> l(mu_);
  LogIndex offset = ents_[0].index;
  if (lo <= offset) return ErrCompacted();
  if (hi > LastIndexLocked() + 1) return ErrUnavailable();
  std::vector<Entry> out;
  if (ents_.size() == 1) return out;  // only the dummy
  out.assign(ents_.begin() + static_cast<ptrdiff_t>(lo - offset),
             ents_.begin() + static_cast<ptrdiff_t>(hi - offset));
  LimitSize(&out, max_bytes);
  return out;
}

Result<Term> MemoryStorage::TermAt(LogIndex i) const {
  std::lock_guard<std::mutex> l(mu_);
  LogIndex offset = ents_[0].index;
  if (i < offset) return ErrCompacted();
  if (i - offset >= ents_.size()) return ErrUnavailable();
  return ents_[i - offset].term;
}

Result<LogIndex> MemoryStorage::FirstIndex() const {
  std::lock_guard<std::mutex> l(mu_);
  return FirstIndexLocked();
}

Result<LogIndex> MemoryStorage::LastIndex() const {
  std::lock_guard<std::mutex> l(mu_);
  return LastIndexLocked();
}

Result<Snapshot> MemoryStorage::GetSnapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  if (snapshot_unavailable_) return ErrSnapshotTemporarilyUnavailable();
  return snapshot_;
}

void MemoryStorage::SetSnapshotUnavailable(bool v) {
  std::lock_guard<std::mutex> l(mu_);
  snapshot_unavailable_ = v;
}

Status MemoryStorage::ApplySnapshot(const Snapshot& snap) {
  std::lock_guard<std::mutex> l(mu_);
  if (snapshot_.metadata.index >= snap.metadata.index) return ErrSnapOutOfDate();
  snapshot_ = snap;
  ents_.assign(1, Entry{snap.metadata.term, snap.metadata.index, EntryType::kNormal, {}});
  return Status::OK();
}

Result<Snapshot> MemoryStorage::CreateSnapshot(LogIndex i, const ConfState* cs, std::string data) {
  std::lock_guard<std::mutex> l(mu_);
  // The same index again only to add data to a snapshot that has none.
  if (i < snapshot_.metadata.index ||
      (i == snapshot_.metadata.index && (!snapshot_.data.empty() || data.empty()))) {
    return ErrSnapOutOfDate();
  }
  RAFT_CHECK(i <= LastIndexLocked(), "snapshot index is out of bound");
  LogIndex offset = ents_[0].index;
  snapshot_.metadata.index = i;
  snapshot_.metadata.term = ents_[i - offset].term;
  if (cs != nullptr) snapshot_.metadata.conf_state = *cs;
  snapshot_.data = std::move(data);
  return snapshot_;
}

LogIndex MemoryStorage::FirstIndexWithin(LogIndex last, uint64_t max_bytes) const {
  std::lock_guard<std::mutex> l(mu_);
  const LogIndex offset = ents_[0].index;
  last = std::min(last, LastIndexLocked());
  uint64_t bytes = 0;
  for (LogIndex i = last; i > offset; --i) {
    bytes += ents_[i - offset].data.size();
    if (bytes > max_bytes) return i + 1;
  }
  return FirstIndexLocked();
}

Status MemoryStorage::Compact(LogIndex compact_index) {
  std::lock_guard<std::mutex> l(mu_);
  LogIndex offset = ents_[0].index;
  if (compact_index <= offset) return ErrCompacted();
  RAFT_CHECK(compact_index <= LastIndexLocked(), "compact index is out of bound");
  size_t i = compact_index - offset;
  std::vector<Entry> rest;
  rest.reserve(ents_.size() - i);
  rest.push_back(Entry{ents_[i].term, ents_[i].index, EntryType::kNormal, {}});
  // Moved, not copied: the entries kept can be tens of MiB (a bulk load's).
  rest.insert(rest.end(), std::make_move_iterator(ents_.begin() + static_cast<ptrdiff_t>(i) + 1),
              std::make_move_iterator(ents_.end()));
  ents_ = std::move(rest);
  return Status::OK();
}

Status MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return Status::OK();
  std::lock_guard<std::mutex> l(mu_);
  LogIndex first = FirstIndexLocked();
  LogIndex last = entries.back().index;
  if (last < first) return Status::OK();  // entirely compacted already
  size_t skip = entries[0].index < first ? first - entries[0].index : 0;
  LogIndex start = entries[0].index + skip;
  if (start > LastIndexLocked() + 1) {
    return Status::Internal("consensus: missing log entries before appended ones");
  }
  ents_.resize(start - ents_[0].index);  // truncate a conflicting tail
  ents_.insert(ents_.end(), entries.begin() + static_cast<ptrdiff_t>(skip), entries.end());
  return Status::OK();
}

}  // namespace gojodb::consensus
