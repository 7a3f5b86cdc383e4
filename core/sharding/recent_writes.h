// What a shard's recent commands wrote, kept in memory so that a transactional write's
// conflict check ("has any of these rows a version above my start timestamp?") reads
// the engine only for the rows written lately, not for every row (docs/architecture/
// decisions.md, 33).
//
// A table of slots, each the highest timestamp written to any row that hashes to it
// since the table began, and a floor that every version older than the table is at or
// below. A row has no version above ts when the floor and its slot are both at or below
// ts. Two rows in one slot only make each look written later than it was, and the
// caller then reads the engine: what a check decides never depends on the table, only
// what it costs, so replicas with and without one decide alike.
//
// Not thread-safe: a shard's machine uses it on its loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace gojodb::sharding {

class RecentWrites {
 public:
  static constexpr size_t kDefaultSlots = size_t{1} << 18;  // 2 MiB

  // `floor`: a timestamp at or above every version the shard holds now. `slots`: a power
  // of two.
  explicit RecentWrites(uint64_t floor, size_t slots = kDefaultSlots);

  // A version of `row` at `ts`, written by the command being applied.
  void Record(std::string_view row, uint64_t ts) {
    uint64_t& slot = slots_[Slot(row)];
    if (ts > slot) slot = ts;
  }
  // True when `row` has no version above `ts`; false when it may have one.
  bool NothingAbove(std::string_view row, uint64_t ts) const {
    return floor_ <= ts && slots_[Slot(row)] <= ts;
  }

 private:
  size_t Slot(std::string_view row) const;

  const uint64_t floor_;
  const size_t mask_;
  std::unique_ptr<uint64_t[]> slots_;
};

}  // namespace gojodb::sharding
