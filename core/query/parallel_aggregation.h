// An aggregation over a shard's rows on several cores (docs/architecture/documents.md,
// "Pushed to the shards"): one thread feeds the rows in order (the scan), and workers
// parse and aggregate whole batches of them, each into a ShardQueryRun of its own; the
// runs merge at the end. Aggregates do not depend on the order rows are added in, but a
// sum of fractions may differ in its last bits from one run to the next, as any
// parallel sum does.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/query/shard_query.h"

namespace gojodb::query {

class ParallelAggregation {
 public:
  // Rows per batch. A range of fewer rows is aggregated by the caller in Finish,
  // without a thread.
  static constexpr size_t kBatchRows = 256;

  // `q` (an aggregating query) must outlive this; workers >= 1. When the system has no
  // thread to give, fewer workers run, or none and the feeder folds every batch itself.
  ParallelAggregation(const ShardQuery& q, unsigned workers);
  ~ParallelAggregation();  // stops and joins the workers (Finish not called: an error)
  ParallelAggregation(const ParallelAggregation&) = delete;
  ParallelAggregation& operator=(const ParallelAggregation&) = delete;

  // One row's value, copied. A worker's error once one has failed, so the feeder stops.
  Status Add(std::string_view value);
  // Waits for the workers and merges every row added into `into`, a run of the same
  // query. The first error of any worker, or of the merge.
  Status Finish(ShardQueryRun* into);

 private:
  Status Push(std::vector<std::string> batch);
  void Work(ShardQueryRun* run);
  void Stop();

  const ShardQuery& q_;
  const unsigned workers_;
  std::vector<std::string> batch_;  // filling
  std::mutex mu_;
  std::condition_variable queued_;  // a batch queued, or done_
  std::condition_variable taken_;   // a batch taken off the queue, or a worker failed
  std::deque<std::vector<std::string>> queue_;
  bool done_ = false;
  Status error_;          // the first worker's error
  bool started_ = false;  // the first batch was pushed (the feeder's own)
  std::vector<std::unique_ptr<ShardQueryRun>> runs_;  // one per thread
  std::vector<std::thread> threads_;
  // Where batches go when no thread could be started (the feeder's own).
  std::unique_ptr<ShardQueryRun> inline_run_;
};

}  // namespace gojodb::query
