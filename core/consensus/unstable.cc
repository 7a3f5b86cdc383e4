#include "core/consensus/unstable.h"

#include "core/consensus/check.h"

namespace gojodb::consensus {

std::optional<LogIndex> Unstable::MaybeFirstIndex() const {
  if (snapshot_) return snapshot_->metadata.index + 1;
  return std::nullopt;
}

std::optional<LogIndex> Unstable::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + (entries_.size() - 1);
  if (snapshot_) return snapshot_->metadata.index;
  return std::nullopt;
}

std::optional<Term> Unstable::MaybeTerm(LogIndex i) const {
  if (i < offset_) {
    if (snapshot_ && snapshot_->metadata.index == i) return snapshot_->metadata.term;
    return std::nullopt;
  }
  auto last = MaybeLastIndex();
  if (!last || i > *last) return std::nullopt;
  return entries_[i - offset_].term;
}

void Unstable::StableTo(LogIndex i, Term t) {
  auto gt = MaybeTerm(i);
  if (!gt) return;
  // Only drop entries if the term still matches: a newer leader may have replaced them.
  if (*gt == t && i >= offset_) {
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<ptrdiff_t>(i + 1 - offset_));
    offset_ = i + 1;
  }
}

void Unstable::StableSnapTo(LogIndex i) {
  if (snapshot_ && snapshot_->metadata.index == i) snapshot_.reset();
}

void Unstable::Restore(const Snapshot& s) {
  offset_ = s.metadata.index + 1;
  entries_.clear();
  snapshot_ = s;
}

void Unstable::TruncateAndAppend(const std::vector<Entry>& ents) {
  if (ents.empty()) return;
  LogIndex after = ents[0].index;
  if (after == offset_ + entries_.size()) {
    entries_.insert(entries_.end(), ents.begin(), ents.end());
  } else if (after <= offset_) {
    // Replaces everything unstable: the log is truncated to `after`.
    offset_ = after;
    entries_ = ents;
  } else {
    entries_.resize(after - offset_);
    entries_.insert(entries_.end(), ents.begin(), ents.end());
  }
}

std::vector<Entry> Unstable::Slice(LogIndex lo, LogIndex hi) const {
  RAFT_CHECK(lo <= hi && lo >= offset_ && hi <= offset_ + entries_.size(),
             "unstable slice out of bounds");
  return std::vector<Entry>(entries_.begin() + static_cast<ptrdiff_t>(lo - offset_),
                            entries_.begin() + static_cast<ptrdiff_t>(hi - offset_));
}

}  // namespace gojodb::consensus
