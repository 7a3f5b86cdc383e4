#include "core/query/parallel_aggregation.h"

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
  if (threads_.empty()) {
    for (unsigned i = 0; i < workers_; ++i) {
      runs_.push_back(std::make_unique<ShardQueryRun>(q_));
      threads_.emplace_back([this, run = runs_.back().get()] { Work(run); });
    }
  }
  // A few batches per worker in the queue at most: the scan waits for the workers
  // rather than holding the range in memory.
  taken_.wait(lock, [&] { return !error_.ok() || queue_.size() < 2 * size_t{workers_}; });
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
  if (threads_.empty()) {
    // Fewer rows than a batch: here, on the caller's thread.
    for (const auto& value : batch_) RETURN_IF_ERROR(into->Add({}, value, 0).status());
    batch_.clear();
    return Status::OK();
  }
  if (!batch_.empty()) {
    Status pushed = Push(std::move(batch_));
    batch_.clear();
    RETURN_IF_ERROR(pushed);
  }
  Stop();
  RETURN_IF_ERROR(error_);
  for (const auto& run : runs_) RETURN_IF_ERROR(into->Absorb(*run));
  return Status::OK();
}

}  // namespace gojodb::query
