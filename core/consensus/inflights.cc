#include "core/consensus/inflights.h"

#include "core/consensus/check.h"

namespace gojodb::consensus {

void Inflights::Add(LogIndex index, uint64_t bytes) {
  RAFT_CHECK(!Full(), "cannot add into a full inflights window");
  RAFT_CHECK(items_.empty() || items_.back().index < index, "inflight indexes must increase");
  items_.push_back({index, bytes});
  bytes_ += bytes;
}

void Inflights::FreeLE(LogIndex to) {
  while (!items_.empty() && items_.front().index <= to) {
    bytes_ -= items_.front().bytes;
    items_.pop_front();
  }
}

bool Inflights::Full() const {
  return items_.size() >= max_count_ || (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

void Inflights::Reset() {
  items_.clear();
  bytes_ = 0;
}

}  // namespace gojodb::consensus
