// Tracks commits between "timestamp allocated" and "durably written", so that a read
// at timestamp T can wait until every commit at or below T is visible. Without this a
// scan at T could miss a write with a smaller timestamp that lands after the scan.
#pragma once

#include <condition_variable>
#include <mutex>
#include <set>

#include "core/mvcc/timestamp_oracle.h"

namespace gojodb::kv {

class CommitTracker {
 public:
  explicit CommitTracker(mvcc::TimestampOracle* tso) : tso_(tso) {}

  // Allocates a commit timestamp and marks it in flight. Pair with End().
  Result<mvcc::Timestamp> Begin() {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(mvcc::Timestamp ts, tso_->Next());
    inflight_.insert(ts);
    return ts;
  }

  // The commit at `ts` is written (or failed): reads may pass it.
  void End(mvcc::Timestamp ts) {
    std::lock_guard lock(mu_);
    inflight_.erase(ts);
    cv_.notify_all();
  }

  // Returns a timestamp T such that every commit acknowledged before this call has a
  // timestamp <= T and every commit at or below T is visible; waits for in-flight
  // commits below T.
  mvcc::Timestamp ReadTimestamp() {
    std::unique_lock lock(mu_);
    const mvcc::Timestamp ts = tso_->Last();
    cv_.wait(lock, [&] { return inflight_.empty() || *inflight_.begin() > ts; });
    return ts;
  }

  // Makes `ts` readable: later commits get larger timestamps, earlier ones are visible.
  Status WaitFor(mvcc::Timestamp ts) {
    std::unique_lock lock(mu_);
    RETURN_IF_ERROR(tso_->AdvancePast(ts));
    cv_.wait(lock, [&] { return inflight_.empty() || *inflight_.begin() > ts; });
    return Status::OK();
  }

 private:
  mvcc::TimestampOracle* const tso_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<mvcc::Timestamp> inflight_;  // GUARDED_BY(mu_)
};

}  // namespace gojodb::kv
