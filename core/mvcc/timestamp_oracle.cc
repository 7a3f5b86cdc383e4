#include "core/mvcc/timestamp_oracle.h"

#include <algorithm>

namespace gojodb::mvcc {
namespace {
constexpr std::string_view kHighWaterKey = "\x01tso/high_water_ms";
constexpr uint64_t kMaxLogical = (uint64_t{1} << kLogicalBits) - 1;
}  // namespace

Result<std::unique_ptr<LocalTimestampOracle>> LocalTimestampOracle::Open(storage::Engine* engine,
                                                                         Clock* clock,
                                                                         uint64_t window_ms) {
  ASSIGN_OR_RETURN(auto stored, engine->Get({}, storage::ColumnFamily::kMeta, kHighWaterKey));
  uint64_t high_water = 0;
  if (stored) {
    if (stored->size() != 8) return Status::Corruption("timestamp high-water mark");
    high_water = ReadUint64(*stored);
  }
  return std::unique_ptr<LocalTimestampOracle>(
      new LocalTimestampOracle(engine, clock, window_ms, high_water));
}

LocalTimestampOracle::LocalTimestampOracle(storage::Engine* engine, Clock* clock,
                                           uint64_t window_ms, uint64_t high_water_ms)
    : engine_(engine),
      clock_(clock),
      window_ms_(window_ms),
      high_water_ms_(high_water_ms),
      // Everything up to the old mark may have been handed out before a restart.
      last_(high_water_ms == 0 ? 0 : ComposeTimestamp(high_water_ms, kMaxLogical)) {}

Status LocalTimestampOracle::Reserve(uint64_t physical_ms) {
  if (physical_ms <= high_water_ms_) return Status::OK();
  const uint64_t mark = physical_ms + window_ms_;
  std::string v;
  AppendUint64(&v, mark);
  storage::WriteBatch b;
  b.Put(storage::ColumnFamily::kMeta, kHighWaterKey, v);
  RETURN_IF_ERROR(engine_->Write({.sync = true}, b).WithContext("persist timestamp mark"));
  high_water_ms_ = mark;
  return Status::OK();
}

Result<Timestamp> LocalTimestampOracle::Next() {
  std::lock_guard lock(mu_);
  const uint64_t now = clock_->NowMillis();
  uint64_t physical = PhysicalMillis(last_);
  uint64_t logical = last_ & kMaxLogical;
  if (now > physical) {
    physical = now;
    logical = 0;
  } else if (logical < kMaxLogical) {
    ++logical;
  } else {
    ++physical;  // logical space exhausted: borrow from the next millisecond
    logical = 0;
  }
  RETURN_IF_ERROR(Reserve(physical));
  last_ = ComposeTimestamp(physical, logical);
  return last_;
}

Timestamp LocalTimestampOracle::Last() const {
  std::lock_guard lock(mu_);
  return last_;
}

Status LocalTimestampOracle::AdvancePast(Timestamp ts) {
  std::lock_guard lock(mu_);
  if (ts <= last_) return Status::OK();
  RETURN_IF_ERROR(Reserve(PhysicalMillis(ts) + 1));
  last_ = ts;
  return Status::OK();
}

}  // namespace gojodb::mvcc
