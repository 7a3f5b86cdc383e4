#include "core/query/parallel_aggregation.h"

#include <system_error>

#include "internal/failpoint.h"

namespace gojodb::query {

ParallelAggregation::ParallelAggregation(const ShardQuery& q, unsigned workers)
    : q_(q), workers_(workers == 0 ? 1 : workers) {
  batch_.reserve(kBatchRows);
}

ParallelAggregation::~ParallelAggregation() { Stop(); }

void ParallelAggregation::Stop() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  queued_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

Status ParallelAggregation::Add(std::string_view value) {
  batch_.emplace_back(value);
  if (batch_.size() < kBatchRows) return Status::OK();
  std::vector<std::string> full;
  full.reserve(kBatchRows);
  full.swap(batch_);
  return Push(std::move(full));
}

Status ParallelAggregation::Push(std::vector<std::string> batch) {
  std::unique_lock lock(mu_);
  if (!started_) {
    started_ = true;
    for (unsigned i = 0; i < workers_; ++i) {
      auto run = std::make_unique<ShardQueryRun>(q_);
      // Tests make the system refuse the i-th thread here.
      if (!failpoint::Inject("query/aggregation_thread", i).ok()) break;
      try {
        threads_.emplace_back([this, r = run.get()] { Work(r); });
      } catch (const std::system_error&) {
        break;  // no more threads to be had now: fewer workers
      }
      runs_.push_back(std::move(run));
    }
  }
  if (threads_.empty()) {
    // Not one thread to be had: the batch is folded here, on the scan's thread.
    lock.unlock();
    if (!inline_run_) inline_run_ = std::make_unique<ShardQueryRun>(q_);
    for (const auto& value : batch) RETURN_IF_ERROR(inline_run_->Add({}, value, 0).status());
    return Status::OK();
  }
  // A few batches per worker in the queue at most: the scan waits for the workers
  // rather than holding the range in memory.
  taken_.wait(lock, [&] { return !error_.ok() || queue_.size() < 2 * threads_.size(); });
  RETURN_IF_ERROR(error_);
  queue_.push_back(std::move(batch));
  lock.unlock();
  queued_.notify_one();
  return Status::OK();
}

void ParallelAggregation::Work(ShardQueryRun* run) {
  for (;;) {
    std::vector<std::string> batch;
    {
      std::unique_lock lock(mu_);
      queued_.wait(lock, [&] { return done_ || !queue_.empty(); });
      if (queue_.empty()) return;  // done, and nothing left
      batch = std::move(queue_.front());
      queue_.pop_front();
    }
    taken_.notify_one();
    for (const auto& value : batch) {
      auto added = run->Add({}, value, 0);
      if (!added.ok()) {
        {
          std::lock_guard lock(mu_);
          if (error_.ok()) error_ = added.status();
          queue_.clear();
        }
        taken_.notify_all();
        return;
      }
    }
  }
}

Status ParallelAggregation::Finish(ShardQueryRun* into) {
  if (!batch_.empty()) {
    std::vector<std::string> rest;
    rest.swap(batch_);
    if (!started_) {
      // Fewer rows than a batch: folded here, on the caller's thread, with no thread.
      for (const auto& value : rest) RETURN_IF_ERROR(into->Add({}, value, 0).status());
    } else {
      RETURN_IF_ERROR(Push(std::move(rest)));
    }
  }
  Stop();
  RETURN_IF_ERROR(error_);
  for (const auto& run : runs_) RETURN_IF_ERROR(into->Absorb(*run));
  if (inline_run_) RETURN_IF_ERROR(into->Absorb(*inline_run_));
  return Status::OK();
}

}  // namespace gojodb::query
