// Inflights: the flow-control window of MsgApp messages sent to one follower and not
// yet acknowledged, bounded by count and by bytes.
#pragma once

#include <cstdint>
#include <deque>

#include "core/consensus/types.h"

namespace gojodb::consensus {

class Inflights {
 public:
  // max_bytes == 0 means no byte limit.
  Inflights(size_t max_count, uint64_t max_bytes) : max_count_(max_count), max_bytes_(max_bytes) {}

  // Records a message whose last entry is `index` and whose entries total `bytes`.
  // REQUIRES: !Full(), and index larger than any recorded one.
  void Add(LogIndex index, uint64_t bytes);
  // Frees every message whose last index is <= to.
  void FreeLE(LogIndex to);
  bool Full() const;
  size_t Count() const { return items_.size(); }
  uint64_t bytes() const { return bytes_; }
  void Reset();

 private:
  struct Item {
    LogIndex index;
    uint64_t bytes;
  };
  size_t max_count_;
  uint64_t max_bytes_;
  std::deque<Item> items_;
  uint64_t bytes_ = 0;
};

}  // namespace gojodb::consensus
